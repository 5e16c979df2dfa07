//! The heap walk: all unsafe access to CPython objects lives in this file.
//!
//! Everything here runs with the GIL held and calls no Python code between taking
//! `gc.get_objects()` and returning, so the interpreter cannot change the heap under us.
//! Every object we record is kept alive by a strong reference for as long as the capture
//! lives ([`Objects`]), so later queries may call Python code (user callbacks, `repr`) safely.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;
use refgraph_core::graph::{flags, Graph, GraphBuilder, NodeId};
use refgraph_core::snapshot::NO_LEN;
use rustc_hash::FxHashMap;
use std::os::raw::{c_int, c_void};

/// Strong references to every node of a capture, by node id.
pub struct Objects {
    /// `gc.get_objects()`: node `i < tracked` is `tracked_list[i]`.
    tracked_list: Py<PyList>,
    tracked: usize,
    /// Nodes found only as referents, in id order after the tracked ones.
    extra: Vec<Py<PyAny>>,
}

impl Objects {
    /// The object of a node (a new strong reference).
    pub fn get<'py>(&self, py: Python<'py>, n: NodeId) -> Bound<'py, PyAny> {
        let n = n as usize;
        if n < self.tracked {
            // The list is ours and never handed out, so its items cannot change.
            self.tracked_list
                .bind(py)
                .get_item(n)
                .expect("capture list is immutable")
        } else {
            self.extra[n - self.tracked].bind(py).clone()
        }
    }

    /// Number of references this capture holds on the object at `n` (1, for the list or `extra`).
    pub const HELD: isize = 1;
}

/// Per-type facts needed to walk an object, cached by type pointer.
#[derive(Clone, Copy)]
struct TypeFacts {
    traverse: Option<ffi::traverseproc>,
    have_gc: bool,
    is_gc: Option<unsafe extern "C" fn(*mut ffi::PyObject) -> c_int>,
}

#[derive(Default)]
pub struct TypeCache {
    facts: FxHashMap<usize, TypeFacts>,
}

impl TypeCache {
    /// # Safety
    /// `tp` must be a live type object and the GIL held.
    unsafe fn facts(&mut self, tp: *mut ffi::PyTypeObject) -> TypeFacts {
        *self.facts.entry(tp as usize).or_insert_with(|| {
            // PyType_GetSlot works on static types since 3.10.
            let trav = ffi::PyType_GetSlot(tp, ffi::Py_tp_traverse);
            let isgc = ffi::PyType_GetSlot(tp, ffi::Py_tp_is_gc);
            let flags = ffi::PyType_GetFlags(tp);
            TypeFacts {
                traverse: if trav.is_null() {
                    None
                } else {
                    Some(std::mem::transmute::<*mut c_void, ffi::traverseproc>(trav))
                },
                have_gc: flags & ffi::Py_TPFLAGS_HAVE_GC != 0,
                is_gc: if isgc.is_null() {
                    None
                } else {
                    Some(std::mem::transmute::<
                        *mut c_void,
                        unsafe extern "C" fn(*mut ffi::PyObject) -> c_int,
                    >(isgc))
                },
            }
        })
    }

    /// Whether `gc.get_referents(obj)` would traverse `obj` (the `PyObject_IS_GC` test).
    ///
    /// # Safety
    /// `obj` must be a live object and the GIL held.
    pub unsafe fn is_gc(&mut self, obj: *mut ffi::PyObject) -> bool {
        let f = self.facts(ffi::Py_TYPE(obj));
        f.have_gc && f.is_gc.is_none_or(|is_gc| is_gc(obj) != 0)
    }

    /// Append `obj`'s referents, in `tp_traverse` order, to `out`, if it is a gc object.
    ///
    /// # Safety
    /// `obj` must be a live object and the GIL held; no Python code may run until `out` is
    /// consumed (the pointers are borrowed).
    pub unsafe fn referents(&mut self, obj: *mut ffi::PyObject, out: &mut Vec<*mut ffi::PyObject>) {
        let f = self.facts(ffi::Py_TYPE(obj));
        if !(f.have_gc && f.is_gc.is_none_or(|is_gc| is_gc(obj) != 0)) {
            return;
        }
        if let Some(trav) = f.traverse {
            trav(
                obj,
                visit,
                out as *mut Vec<*mut ffi::PyObject> as *mut c_void,
            );
        }
    }
}

/// The `tp_traverse` visitor of every walk: records each referent that is alive.
///
/// A referent whose reference count is 0 is not alive: it is never recorded, so no reference
/// is ever taken to it. Some traverse functions report such objects: CPython 3.12.0-3.12.5's
/// `_asyncio` module visits its free list of `FutureIter`s (gh-122695); taking a reference to
/// one and dropping it deallocates it a second time, which corrupts the free list (a hang in
/// the next `gc.collect()`) or the heap. Reading the count is safe: the memory of a free-list
/// entry stays allocated.
unsafe extern "C" fn visit(obj: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    // Py_VISIT never passes NULL, but be defensive.
    if !obj.is_null() && ffi::Py_REFCNT(obj) > 0 {
        (*(arg as *mut Vec<*mut ffi::PyObject>)).push(obj);
    }
    0
}

/// `gc.get_objects()` as a list.
pub fn gc_objects<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
    Ok(py
        .import("gc")?
        .call_method0("get_objects")?
        .cast_into::<PyList>()?)
}

/// Walk the whole heap into a graph. With `untracked`, objects found only as referents get
/// nodes too (and gc-type ones are traversed in turn); without it, edges to them are dropped.
///
/// `roots` that the gc does not track and no tracked object refers to (a fresh `{1: 2}` held
/// only by a local variable) get nodes too, so that walks can start from them.
pub fn capture(
    py: Python<'_>,
    untracked: bool,
    roots: &[Bound<'_, PyAny>],
) -> PyResult<(Graph, Objects)> {
    let list = crate::gcwalk::tracked_objects(py)?;
    let n = list.len();
    let mut cache = TypeCache::default();
    let mut builder = GraphBuilder::with_capacity(n + n / 2, n * 3);
    let mut extra: Vec<Py<PyAny>> = Vec::new();
    // SAFETY: the GIL is held, the list holds strong references to its items and no Python code
    // runs in this block (no callbacks, no decref that could free anything: `extra` only grows).
    unsafe {
        let lp = list.as_ptr();
        let types = crate::stats::list_types(py, &list)?;
        // Inserting a million addresses is a million cache misses in the index: the slots of
        // the addresses a few items ahead are prefetched (the addresses are in the list).
        const INSERT_AHEAD: usize = 16;
        for i in 0..n.min(INSERT_AHEAD) {
            builder.prefetch(ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t) as u64);
        }
        for (i, &tp) in types.iter().enumerate() {
            if i + INSERT_AHEAD < n {
                builder.prefetch(
                    ffi::PyList_GetItem(lp, (i + INSERT_AHEAD) as ffi::Py_ssize_t) as u64,
                );
            }
            let obj = ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            builder
                .add_tracked(obj as u64, tp as u64, flags::GC_TYPE)
                .map_err(graph_err)?;
        }
        drop(types);
        for r in roots {
            let p = r.as_ptr();
            if builder.lookup(p as u64).is_none() {
                let fl = if cache.is_gc(p) { flags::GC_TYPE } else { 0 };
                builder
                    .add_untracked(p as u64, ffi::Py_TYPE(p) as u64, fl)
                    .map_err(graph_err)?;
                extra.push(r.clone().unbind());
            }
        }
        // A two-stage pipeline: the referents of node `next + 1` are collected (and their
        // index slots prefetched) before those of `next` are looked up, so that the cache
        // misses of the address index overlap; object headers are prefetched further ahead.
        const AHEAD: usize = 8;
        let object = |i: usize, extra: &Vec<Py<PyAny>>| -> *mut ffi::PyObject {
            if i < n {
                ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t)
            } else {
                extra[i - n].as_ptr()
            }
        };
        for i in 0..n.min(AHEAD) {
            crate::stats::prefetch(object(i, &extra));
        }
        let mut buf: Vec<*mut ffi::PyObject> = Vec::with_capacity(64);
        let mut ahead: Vec<*mut ffi::PyObject> = Vec::with_capacity(64);
        let mut next: usize = 0;
        if next < builder.len() {
            cache.referents(object(0, &extra), &mut buf);
        }
        while next < builder.len() {
            let have_ahead = next + 1 < builder.len();
            ahead.clear();
            if have_ahead {
                if next + 1 + AHEAD < n {
                    crate::stats::prefetch(object(next + 1 + AHEAD, &extra));
                }
                cache.referents(object(next + 1, &extra), &mut ahead);
                for &r in &ahead {
                    builder.prefetch(r as u64);
                }
            }
            // Only objects seen for the first time are read (their type): the others are
            // known by address alone.
            builder
                .push_edges(
                    next as NodeId,
                    buf.iter().map(|&r| r as u64),
                    |addr| {
                        if !untracked {
                            return None;
                        }
                        let r = addr as *mut ffi::PyObject;
                        let fl = if cache.is_gc(r) { flags::GC_TYPE } else { 0 };
                        Some((ffi::Py_TYPE(r) as u64, fl))
                    },
                    |_, addr| {
                        extra.push(
                            Bound::from_borrowed_ptr(py, addr as *mut ffi::PyObject).unbind(),
                        );
                    },
                )
                .map_err(graph_err)?;
            next += 1;
            if have_ahead {
                std::mem::swap(&mut buf, &mut ahead);
            } else if next < builder.len() {
                // Nodes were discovered by the edges just pushed.
                buf.clear();
                cache.referents(object(next, &extra), &mut buf);
            }
        }
    }
    let graph = builder.finish();
    Ok((
        graph,
        Objects {
            tracked_list: list.unbind(),
            tracked: n,
            extra,
        },
    ))
}

/// Capture only what `roots` reach within `max_depth` references, breadth first: enough for
/// every forward query (`show_refs`, `find_ref_chain`) at that depth, without walking the
/// rest of the heap. The graph has referents only (no referrer index).
pub fn capture_forward(
    py: Python<'_>,
    roots: &[Bound<'_, PyAny>],
    max_depth: u32,
) -> PyResult<(Graph, Objects)> {
    let mut cache = TypeCache::default();
    let mut builder = GraphBuilder::with_capacity(roots.len() * 8, roots.len() * 16);
    let mut extra: Vec<Py<PyAny>> = Vec::new();
    let mut depth: Vec<u32> = Vec::new();
    // SAFETY: the GIL is held and no Python code runs in this block; every object recorded is
    // kept alive by `extra` (roots by the caller's references, referents by a new reference
    // taken when they are first seen, while their referrer is still alive).
    unsafe {
        for r in roots {
            let p = r.as_ptr();
            if builder.lookup(p as u64).is_none() {
                let fl = if cache.is_gc(p) { flags::GC_TYPE } else { 0 };
                builder
                    .add_untracked(p as u64, ffi::Py_TYPE(p) as u64, fl)
                    .map_err(graph_err)?;
                extra.push(r.clone().unbind());
                depth.push(0);
            }
        }
        let mut buf: Vec<*mut ffi::PyObject> = Vec::with_capacity(64);
        let mut next = 0usize;
        while next < builder.len() {
            buf.clear();
            let d = depth[next];
            if d < max_depth {
                cache.referents(extra[next].as_ptr(), &mut buf);
            }
            builder
                .push_edges(
                    next as NodeId,
                    buf.iter().map(|&r| r as u64),
                    |addr| {
                        let r = addr as *mut ffi::PyObject;
                        let fl = if cache.is_gc(r) { flags::GC_TYPE } else { 0 };
                        Some((ffi::Py_TYPE(r) as u64, fl))
                    },
                    |_, addr| {
                        extra.push(
                            Bound::from_borrowed_ptr(py, addr as *mut ffi::PyObject).unbind(),
                        );
                        depth.push(d + 1);
                    },
                )
                .map_err(graph_err)?;
            next += 1;
        }
    }
    let graph = builder.finish();
    Ok((
        graph,
        Objects {
            tracked_list: PyList::empty(py).unbind(),
            tracked: 0,
            extra,
        },
    ))
}

fn graph_err(e: refgraph_core::graph::GraphError) -> PyErr {
    pyo3::exceptions::PyMemoryError::new_err(e.to_string())
}

/// The reference count of an object as the interpreter reports it.
pub fn refcount(obj: &Bound<'_, PyAny>) -> isize {
    // SAFETY: obj is a live object and we hold the GIL.
    unsafe { ffi::Py_REFCNT(obj.as_ptr()) }
}

// ----------------------------------------------------------------------------- snapshots

/// What a snapshot records about each node besides the graph: shallow sizes, lengths of
/// built-in containers and short labels.
pub struct Annotations {
    pub sizes: Vec<u64>,
    pub lens: Vec<u32>,
    pub labels: Vec<(NodeId, String)>,
}

/// How the shallow size of a type's instances is computed.
enum SizeRule {
    /// `object.__sizeof__`: `basicsize + itemsize * len`, computed here.
    Formula { basic: u64, item: u64 },
    /// The `__sizeof__` of the nearest built-in (static) base type: C code, no user code.
    Call(Py<PyAny>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    /// An exact built-in container, str or bytes: its length is recorded.
    Sized,
    Str,
    Module,
    Type,
    Function,
}

struct NodeFacts {
    size: SizeRule,
    /// Bytes `sys.getsizeof` adds before the object for managed dicts and weakrefs.
    managed: u64,
    kind: Kind,
    flags: u8,
}

/// Objects looked up once per snapshot.
struct Builtins {
    object_sizeof: Py<PyAny>,
    basicsize: Py<PyAny>,
    itemsize: Py<PyAny>,
    mro: Py<PyAny>,
    type_dict: Py<PyAny>,
    type_qualname: Py<PyAny>,
    type_module: Py<PyAny>,
    type_name: Py<PyAny>,
    func_type: usize,
    func_qualname: Py<PyAny>,
    weakref_types: Vec<Py<PyAny>>,
    sized: Vec<usize>,
    minor: u8,
}

impl Builtins {
    fn new(py: Python<'_>) -> PyResult<Self> {
        let builtins = py.import("builtins")?;
        let object = builtins.getattr("object")?;
        let type_ = builtins.getattr("type")?;
        let tdict = type_.getattr("__dict__")?;
        let func = py.import("types")?.getattr("FunctionType")?;
        let weakref = py.import("weakref")?;
        let mut sized = Vec::new();
        for name in [
            "list",
            "tuple",
            "dict",
            "set",
            "frozenset",
            "str",
            "bytes",
            "bytearray",
        ] {
            sized.push(builtins.getattr(name)?.as_ptr() as usize);
        }
        Ok(Builtins {
            object_sizeof: object.getattr("__sizeof__")?.unbind(),
            basicsize: tdict.get_item("__basicsize__")?.unbind(),
            itemsize: tdict.get_item("__itemsize__")?.unbind(),
            mro: tdict.get_item("__mro__")?.unbind(),
            type_dict: tdict.get_item("__dict__")?.unbind(),
            type_qualname: tdict.get_item("__qualname__")?.unbind(),
            type_module: tdict.get_item("__module__")?.unbind(),
            type_name: tdict.get_item("__name__")?.unbind(),
            func_type: func.as_ptr() as usize,
            func_qualname: func.getattr("__dict__")?.get_item("__qualname__")?.unbind(),
            weakref_types: vec![
                weakref.getattr("ref")?.unbind(),
                weakref.getattr("ProxyType")?.unbind(),
                weakref.getattr("CallableProxyType")?.unbind(),
            ],
            sized,
            minor: py.version_info().minor,
        })
    }

    /// A descriptor of `type` or `function` applied to an object (C getters only).
    fn get<'py>(descr: &Py<PyAny>, obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
        descr.bind(obj.py()).call_method1("__get__", (obj,)).ok()
    }

    fn str_of(v: Option<Bound<'_, PyAny>>) -> Option<String> {
        let v = v?;
        let s = v.cast::<pyo3::types::PyString>().ok()?;
        utf8_uncached(s)
    }

    /// Facts about a type, found without running user code: the type's own getters and the
    /// dictionaries of its MRO are read, never attributes looked up through the instance.
    fn facts(&self, tp: &Bound<'_, PyAny>) -> NodeFacts {
        let py = tp.py();
        let tpp = tp.as_ptr() as *mut ffi::PyTypeObject;
        // SAFETY: tp is a live type object; the GIL is held.
        let tflags = unsafe { ffi::PyType_GetFlags(tpp) };
        let heap = tflags & ffi::Py_TPFLAGS_HEAPTYPE != 0;
        // The nearest static base: its __sizeof__ is C code.
        let mut base = tpp;
        // SAFETY: tp_base of a live type is a live type (or NULL for object).
        unsafe {
            while ffi::PyType_GetFlags(base) & ffi::Py_TPFLAGS_HEAPTYPE != 0 {
                let b = ffi::PyType_GetSlot(base, ffi::Py_tp_base) as *mut ffi::PyTypeObject;
                if b.is_null() {
                    break;
                }
                base = b;
            }
        }
        // SAFETY: base is a live type kept alive by tp's MRO.
        let base = unsafe { Bound::from_borrowed_ptr(py, base as *mut ffi::PyObject) };
        let size = match base.getattr("__sizeof__") {
            Ok(f) if f.is(self.object_sizeof.bind(py)) => {
                let num = |d: &Py<PyAny>| {
                    Self::get(d, tp)
                        .and_then(|v| v.extract::<u64>().ok())
                        .unwrap_or(0)
                };
                SizeRule::Formula {
                    basic: num(&self.basicsize),
                    item: num(&self.itemsize),
                }
            }
            Ok(f) => SizeRule::Call(f.unbind()),
            Err(_) => SizeRule::Formula { basic: 0, item: 0 },
        };
        // Bytes before the object for managed dicts (3.11) and weakrefs (3.12+).
        let managed_bits: std::os::raw::c_ulong = match self.minor {
            0..=10 => 0,
            11 => 1 << 4,
            _ => (1 << 4) | (1 << 3),
        };
        let managed = if tflags & managed_bits != 0 { 16 } else { 0 };
        let addr = tp.as_ptr() as usize;
        let mut flags = 0u8;
        let kind = if self.sized.contains(&addr) {
            if addr == self.sized[5] {
                Kind::Str
            } else {
                Kind::Sized
            }
        } else if addr == self.func_type {
            Kind::Function
        } else if unsafe { ffi::PyType_IsSubtype(tpp, &raw mut ffi::PyModule_Type) } != 0 {
            flags |= flags::MODULE;
            Kind::Module
        } else if unsafe { ffi::PyType_IsSubtype(tpp, &raw mut ffi::PyType_Type) } != 0 {
            Kind::Type
        } else {
            Kind::Plain
        };
        for w in &self.weakref_types {
            // SAFETY: both are live type objects.
            if unsafe { ffi::PyType_IsSubtype(tpp, w.as_ptr() as *mut ffi::PyTypeObject) } != 0 {
                flags |= flags::WEAKREF;
            }
        }
        if heap && self.defines(tp, "__del__") {
            flags |= flags::HAS_DEL;
        }
        NodeFacts {
            size,
            managed,
            kind,
            flags,
        }
    }

    /// Whether a class of `tp`'s MRO has `name` in its own dictionary.
    fn defines(&self, tp: &Bound<'_, PyAny>, name: &str) -> bool {
        let Some(mro) = Self::get(&self.mro, tp) else {
            return false;
        };
        let Ok(mro) = mro.cast_into::<pyo3::types::PyTuple>() else {
            return false;
        };
        mro.iter().any(|c| {
            Self::get(&self.type_dict, &c)
                .and_then(|d| d.cast_into::<pyo3::types::PyMappingProxy>().ok())
                .is_some_and(|d| d.contains(name).unwrap_or(false))
        })
    }
}

/// The text of a str, encoded into a temporary bytes object: unlike `PyUnicode_AsUTF8`, this
/// leaves no cached UTF-8 copy inside the str (which would change its size and the heap).
fn utf8_uncached(s: &Bound<'_, pyo3::types::PyString>) -> Option<String> {
    // SAFETY: s is a live str; the result is a new reference to a bytes object (or NULL).
    unsafe {
        let b = ffi::PyUnicode_AsEncodedString(
            s.as_ptr(),
            c"utf-8".as_ptr(),
            c"surrogatepass".as_ptr(),
        );
        if b.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let b = Bound::from_owned_ptr(s.py(), b);
        let b = b.cast::<pyo3::types::PyBytes>().ok()?;
        Some(String::from_utf8_lossy(b.as_bytes()).into_owned())
    }
}

/// Escape a short string value for a label: control characters as Python escapes, at most
/// 40 characters.
fn short_str(s: &str) -> String {
    let mut out = String::from("'");
    for (i, c) in s.chars().enumerate() {
        if i == 40 {
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

impl Objects {
    /// A borrowed pointer to the object of a node, valid while the capture lives.
    pub(crate) fn ptr(&self, py: Python<'_>, n: usize) -> *mut ffi::PyObject {
        if n < self.tracked {
            // SAFETY: the list is ours, immutable and holds a reference to each item.
            unsafe {
                ffi::PyList_GetItem(self.tracked_list.bind(py).as_ptr(), n as ffi::Py_ssize_t)
            }
        } else {
            self.extra[n - self.tracked].as_ptr()
        }
    }
}

/// Sizes, lengths, labels and flags of every node of a capture. Runs no user code: sizes come
/// from `object.__sizeof__`'s formula or the C `__sizeof__` of the nearest built-in base class
/// (a class's own `__sizeof__` written in Python is not called), labels from the C getters
/// of modules, classes and functions and from string values.
pub fn annotate(py: Python<'_>, g: &mut Graph, o: &Objects) -> PyResult<Annotations> {
    let b = Builtins::new(py)?;
    let mut types: FxHashMap<usize, NodeFacts> = Default::default();
    let mut cache = TypeCache::default();
    let n = g.len();
    let mut sizes = Vec::with_capacity(n);
    let mut lens = Vec::with_capacity(n);
    let mut labels = Vec::new();
    for v in 0..n {
        let p = o.ptr(py, v);
        if p.is_null() {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: p is alive (held by the capture), the GIL is held.
        let tp = unsafe { ffi::Py_TYPE(p) } as usize;
        let facts = types.entry(tp).or_insert_with(|| {
            // SAFETY: the type of a live object is alive.
            let t = unsafe { Bound::from_borrowed_ptr(py, tp as *mut ffi::PyObject) };
            b.facts(&t)
        });
        // SAFETY: as above; the calls below run C code only.
        let (size, len) = unsafe {
            let base = match &facts.size {
                SizeRule::Formula { basic, item } => {
                    let extra = if *item > 0 {
                        (ffi::Py_SIZE(p).unsigned_abs() as u64).saturating_mul(*item)
                    } else {
                        0
                    };
                    basic + extra
                }
                SizeRule::Call(f) => {
                    let r = ffi::PyObject_CallFunctionObjArgs(
                        f.as_ptr(),
                        p,
                        std::ptr::null_mut::<ffi::PyObject>(),
                    );
                    if r.is_null() {
                        ffi::PyErr_Clear();
                        0
                    } else {
                        let z = ffi::PyLong_AsSsize_t(r);
                        ffi::Py_DecRef(r);
                        if z < 0 {
                            ffi::PyErr_Clear();
                            0
                        } else {
                            z as u64
                        }
                    }
                }
            };
            let gc = if cache.is_gc(p) { 16 } else { 0 };
            let len = match facts.kind {
                Kind::Sized | Kind::Str => {
                    let l = ffi::PyObject_Size(p);
                    if l < 0 {
                        ffi::PyErr_Clear();
                        NO_LEN
                    } else {
                        l.min(NO_LEN as isize - 1) as u32
                    }
                }
                _ => NO_LEN,
            };
            (base + gc + facts.managed, len)
        };
        sizes.push(size);
        lens.push(len);
        if facts.flags != 0 {
            g.set_flags(v as NodeId, facts.flags);
        }
        let label = match facts.kind {
            Kind::Plain | Kind::Sized => None,
            Kind::Str => {
                // SAFETY: p is a live str.
                let s = unsafe { Bound::from_borrowed_ptr(py, p) };
                s.cast::<pyo3::types::PyString>().ok().and_then(|s| {
                    // At most 41 characters are converted.
                    if len != NO_LEN && len > 41 {
                        // SAFETY: s is a live str; the substring is a new reference.
                        let head = unsafe { ffi::PyUnicode_Substring(s.as_ptr(), 0, 41) };
                        if head.is_null() {
                            unsafe { ffi::PyErr_Clear() };
                            return None;
                        }
                        let head = unsafe { Bound::from_owned_ptr(py, head) };
                        let head = head.cast::<pyo3::types::PyString>().ok()?;
                        Some(short_str(&utf8_uncached(head)?))
                    } else {
                        Some(short_str(&utf8_uncached(s)?))
                    }
                })
            }
            Kind::Module => {
                // SAFETY: p is a live module; PyModule_GetNameObject reads its dict.
                unsafe {
                    let r = ffi::PyModule_GetNameObject(p);
                    if r.is_null() {
                        ffi::PyErr_Clear();
                        None
                    } else {
                        Builtins::str_of(Some(Bound::from_owned_ptr(py, r)))
                    }
                }
            }
            Kind::Type | Kind::Function => {
                // SAFETY: p is alive.
                let obj = unsafe { Bound::from_borrowed_ptr(py, p) };
                let (qd, md) = if facts.kind == Kind::Type {
                    (&b.type_qualname, Some(&b.type_module))
                } else {
                    (&b.func_qualname, None)
                };
                let q = Builtins::str_of(Builtins::get(qd, &obj));
                let m = md.and_then(|d| Builtins::str_of(Builtins::get(d, &obj)));
                match (m, q) {
                    (Some(m), Some(q)) if m != "builtins" => Some(format!("{m}.{q}")),
                    (_, q) => q,
                }
            }
        };
        if let Some(l) = label {
            labels.push((v as NodeId, l));
        }
    }
    // Type names from the type's own getters (a metaclass's __getattribute__ is not called):
    // `__name__`, and `module.qualname` (the bare qualname for builtins).
    for info in g.type_table_mut() {
        // SAFETY: every type in the table is the type of an object the capture holds.
        let t = unsafe { Bound::from_borrowed_ptr(py, info.addr as *mut ffi::PyObject) };
        let short = Builtins::str_of(Builtins::get(&b.type_name, &t)).unwrap_or_else(|| "?".into());
        let qual =
            Builtins::str_of(Builtins::get(&b.type_qualname, &t)).unwrap_or_else(|| short.clone());
        info.long_name = match Builtins::str_of(Builtins::get(&b.type_module, &t)) {
            Some(m) if m != "builtins" && !m.is_empty() => format!("{m}.{qual}"),
            _ => qual,
        };
        info.short_name = short;
    }
    Ok(Annotations {
        sizes,
        lens,
        labels,
    })
}

/// Names of module globals: for each module in order, its `name -> value` pairs whose value is
/// in the graph (not a module itself, not a dunder), first binding wins. Reads the modules'
/// dictionaries with `PyDict_Next` (no user code).
pub fn module_globals(
    py: Python<'_>,
    g: &Graph,
    modules: &[(String, Bound<'_, PyAny>)],
) -> Vec<(NodeId, String)> {
    let mut wanted: FxHashMap<u64, String> = Default::default();
    for (mname, m) in modules {
        // SAFETY: m is a live module; the dict is borrowed while m lives; PyDict_Next
        // returns borrowed references and runs no code.
        unsafe {
            if ffi::PyModule_Check(m.as_ptr()) == 0 {
                continue;
            }
            let d = ffi::PyModule_GetDict(m.as_ptr());
            if d.is_null() {
                ffi::PyErr_Clear();
                continue;
            }
            let mut pos: ffi::Py_ssize_t = 0;
            let mut k: *mut ffi::PyObject = std::ptr::null_mut();
            let mut val: *mut ffi::PyObject = std::ptr::null_mut();
            while ffi::PyDict_Next(d, &mut pos, &mut k, &mut val) != 0 {
                if ffi::PyUnicode_CheckExact(k) == 0 || ffi::PyModule_Check(val) != 0 {
                    continue;
                }
                let key = Bound::from_borrowed_ptr(py, k);
                let Ok(key) = key.cast::<pyo3::types::PyString>() else {
                    continue;
                };
                let Some(key) = utf8_uncached(key) else {
                    continue;
                };
                if key.starts_with("__") {
                    continue;
                }
                wanted
                    .entry(val as u64)
                    .or_insert_with(|| format!("{mname}.{key}"));
            }
        }
    }
    let mut out: Vec<(NodeId, String)> = Vec::with_capacity(wanted.len());
    for (i, a) in g.addrs().iter().enumerate() {
        if let Some(name) = wanted.remove(a) {
            out.push((i as NodeId, name));
        }
    }
    out
}

unsafe extern "C" fn count_visit(obj: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    // Counted like `visit` records: live referents only.
    if !obj.is_null() && ffi::Py_REFCNT(obj) > 0 {
        *(arg as *mut u64) += 1;
    }
    0
}

/// One `tp_traverse` pass over `gc.get_objects()` that only counts references: the floor the
/// capture is measured against in the benchmark. Returns the number of references.
#[pyfunction]
pub fn traverse_pass(py: Python<'_>) -> PyResult<u64> {
    let list = gc_objects(py)?;
    let mut cache = TypeCache::default();
    let mut edges = 0u64;
    // SAFETY: GIL held, the list holds every item, no Python code runs in the loop.
    unsafe {
        let lp = list.as_ptr();
        for i in 0..list.len() {
            let obj = ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            let f = cache.facts(ffi::Py_TYPE(obj));
            if !(f.have_gc && f.is_gc.is_none_or(|is_gc| is_gc(obj) != 0)) {
                continue;
            }
            if let Some(trav) = f.traverse {
                trav(obj, count_visit, &mut edges as *mut u64 as *mut c_void);
            }
        }
    }
    Ok(edges)
}
