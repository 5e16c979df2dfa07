//! What a snapshot keeps of `str` objects, by policy (see `refgraph_core::snapshot::strings`).
//!
//! [`StringNotes`] is fed every node of a capture while it is annotated: it remembers which
//! strings are used as names (keys of dicts, names in code objects) and which nodes are strs;
//! [`StringNotes::finish`] then gives the labels (text) and fingerprints the policy allows.
//! Runs no user code: dicts are read with `PyDict_Next`, code objects through the C getters of
//! the (final) code type, strings encoded by CPython.

use pyo3::ffi;
use pyo3::prelude::*;
use refgraph_core::graph::NodeId;
use refgraph_core::snapshot::strings::{is_name_like, Fingerprinter, StringPolicy, MAX_NAME};
use refgraph_core::snapshot::NO_LEN;
use rustc_hash::FxHashSet;
use std::sync::Mutex;

/// Characters of a string shown under the `all` policy.
const SHOWN: usize = 40;
/// Characters encoded at a time when fingerprinting a long string.
const CHUNK: isize = 1 << 16;

/// The fingerprint key of this process: 16 random bytes from `os.urandom`, kept only in memory.
/// A forked child makes its own (fingerprints are comparable between snapshots of one process).
static KEY: Mutex<Option<(u32, Fingerprinter)>> = Mutex::new(None);

pub fn process_fingerprinter(py: Python<'_>) -> PyResult<Fingerprinter> {
    let pid = std::process::id();
    let mut key = KEY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, f)) = key.as_ref() {
        if *p == pid {
            return Ok(f.clone());
        }
    }
    let random = py.import("os")?.call_method1("urandom", (16,))?;
    let random: [u8; 16] = random
        .extract::<Vec<u8>>()?
        .try_into()
        .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("os.urandom gave no 16 bytes"))?;
    let f = Fingerprinter::new(random);
    *key = Some((pid, f.clone()));
    Ok(f)
}

/// Call `f` with the UTF-8 bytes of `s[start:end]` (a str), encoded into a temporary bytes
/// object: unlike `PyUnicode_AsUTF8`, this leaves no cached UTF-8 copy inside the str (which
/// would change its size and the heap). None if it cannot be encoded.
fn with_utf8<R>(
    py: Python<'_>,
    s: *mut ffi::PyObject,
    start: isize,
    end: isize,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    // SAFETY: s is a live str (held by the capture); every result is a new reference or NULL.
    unsafe {
        let part = ffi::PyUnicode_Substring(s, start, end);
        if part.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let part = Bound::from_owned_ptr(py, part);
        let b = ffi::PyUnicode_AsEncodedString(
            part.as_ptr(),
            c"utf-8".as_ptr(),
            c"surrogatepass".as_ptr(),
        );
        if b.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let b = Bound::from_owned_ptr(py, b);
        let b = b.cast::<pyo3::types::PyBytes>().ok()?;
        Some(f(b.as_bytes()))
    }
}

/// Escape a short string value for a label: control characters as Python escapes, at most
/// 40 characters, quoted (`'text'`, or `'text...` when cut).
pub fn short_str(s: &str) -> String {
    let mut out = String::from("'");
    for (i, c) in s.chars().enumerate() {
        if i == SHOWN {
            out.push_str("...");
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    if !out.ends_with("...") {
        out.push('\'');
    }
    out
}

/// Code-object attributes that hold names (C getters of the code type).
const CODE_NAMES: [&str; 6] = [
    "co_names",
    "co_varnames",
    "co_cellvars",
    "co_freevars",
    "co_name",
    "co_qualname",
];

/// Labels and fingerprints of the strs of a capture, as a policy allows.
pub struct StringNotes {
    policy: StringPolicy,
    fingerprinter: Fingerprinter,
    code_type: usize,
    /// Addresses of strs used as names: dict keys and names in code objects.
    names: FxHashSet<usize>,
    /// Keys put in `names` lately, by a few bits of their address: the same attribute names
    /// come back in dict after dict, and are not hashed and looked up again each time.
    recent: [usize; 64],
    /// `(node, len)` of the str nodes, in node order.
    strs: Vec<(NodeId, u32)>,
}

/// What [`StringNotes::finish`] gives.
pub struct StringLabels {
    /// `(node, label)` sorted by node.
    pub labels: Vec<(NodeId, String)>,
    /// `(node, fingerprint)` sorted by node.
    pub fingerprints: Vec<(NodeId, u64)>,
}

impl StringNotes {
    pub fn new(
        py: Python<'_>,
        policy: StringPolicy,
        fingerprinter: Fingerprinter,
    ) -> PyResult<Self> {
        let code_type = py.import("types")?.getattr("CodeType")?.as_ptr() as usize;
        Ok(StringNotes {
            policy,
            fingerprinter,
            code_type,
            names: Default::default(),
            recent: [0; 64],
            strs: Vec::new(),
        })
    }

    /// Look at a node that is not a str: remember the names a dict or a code object uses.
    ///
    /// # Safety
    /// `p` must be a live object held by the capture, and the GIL held.
    pub unsafe fn observe(&mut self, py: Python<'_>, p: *mut ffi::PyObject) {
        if self.policy != StringPolicy::Names {
            return;
        }
        if ffi::PyDict_Check(p) != 0 {
            let mut pos: ffi::Py_ssize_t = 0;
            let mut k: *mut ffi::PyObject = std::ptr::null_mut();
            let mut v: *mut ffi::PyObject = std::ptr::null_mut();
            // PyDict_Next returns borrowed references and runs no code.
            while ffi::PyDict_Next(p, &mut pos, &mut k, &mut v) != 0 {
                let slot = &mut self.recent[(k as usize >> 4) & 63];
                if *slot != k as usize && ffi::PyUnicode_CheckExact(k) != 0 {
                    self.names.insert(k as usize);
                    *slot = k as usize;
                }
            }
        } else if ffi::Py_TYPE(p) as usize == self.code_type {
            let code = Bound::from_borrowed_ptr(py, p);
            for attr in CODE_NAMES {
                let Ok(v) = code.getattr(attr) else {
                    ffi::PyErr_Clear();
                    continue;
                };
                if let Ok(t) = v.cast::<pyo3::types::PyTuple>() {
                    for item in t.iter() {
                        if ffi::PyUnicode_CheckExact(item.as_ptr()) != 0 {
                            self.names.insert(item.as_ptr() as usize);
                        }
                    }
                } else if ffi::PyUnicode_CheckExact(v.as_ptr()) != 0 {
                    self.names.insert(v.as_ptr() as usize);
                }
            }
        }
    }

    /// Note a str node and its length.
    pub fn add_str(&mut self, v: NodeId, len: u32) {
        if self.policy != StringPolicy::None {
            self.strs.push((v, len));
        }
    }

    /// Labels and fingerprints of the noted strs; `ptr(node)` gives each one's object (alive).
    pub fn finish(
        self,
        py: Python<'_>,
        ptr: impl Fn(NodeId) -> *mut ffi::PyObject,
    ) -> StringLabels {
        let mut out = StringLabels {
            labels: Vec::new(),
            fingerprints: Vec::new(),
        };
        for &(v, len) in &self.strs {
            let p = ptr(v);
            if p.is_null() || len == NO_LEN {
                continue;
            }
            let len = len as isize;
            match self.policy {
                StringPolicy::None => {}
                StringPolicy::All => {
                    // At most 41 characters are converted (41: to know that it was cut).
                    let end = len.min(SHOWN as isize + 1);
                    if let Some(l) =
                        with_utf8(py, p, 0, end, |b| short_str(&String::from_utf8_lossy(b)))
                    {
                        out.labels.push((v, l));
                    }
                }
                StringPolicy::Names => {
                    if len as usize <= MAX_NAME && self.names.contains(&(p as usize)) {
                        let name = with_utf8(py, p, 0, len, |b| {
                            std::str::from_utf8(b)
                                .ok()
                                .filter(|t| is_name_like(t))
                                .map(short_str)
                        });
                        if let Some(Some(l)) = name {
                            out.labels.push((v, l));
                            continue;
                        }
                    }
                    let mut state = self.fingerprinter.start();
                    let mut at = 0isize;
                    let mut ok = true;
                    while at < len {
                        let end = (at + CHUNK).min(len);
                        if with_utf8(py, p, at, end, |b| state.update(b)).is_none() {
                            ok = false;
                            break;
                        }
                        at = end;
                    }
                    if ok {
                        out.fingerprints.push((v, state.finish()));
                    }
                }
            }
        }
        out
    }

    /// May a module global with this name be recorded (`module.name`)?
    pub fn global_allowed(policy: StringPolicy, name: &str) -> bool {
        policy == StringPolicy::All || is_name_like(name)
    }
}
