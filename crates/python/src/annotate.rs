//! What a snapshot records besides the graph: shallow sizes, lengths of built-in containers,
//! flags (module, weakref, `__del__`), labels (names of modules, classes, functions; string
//! values) and the module globals that name objects. Reads objects of a capture through C getters
//! and C `__sizeof__`s only: no user code runs. Unsafe CPython access.

use crate::capture::Objects;
use crate::cpython;
use crate::progress::Reporter;
use crate::strings::StringNotes;
use crate::traverse::TypeCache;
use pyo3::ffi;
use pyo3::prelude::*;
use refgraph_core::graph::{flags, NodeId, TypeInfo};
use refgraph_core::snapshot::strings::StringPolicy;
use refgraph_core::snapshot::NO_LEN;
use rustc_hash::FxHashMap;

/// What a snapshot records about each node besides the graph: shallow sizes, lengths of
/// built-in containers and short labels.
pub struct Annotations {
    pub sizes: Vec<u64>,
    pub lens: Vec<u32>,
    pub labels: Vec<(NodeId, String)>,
    /// `(node, fingerprint)` of the strs kept without their text.
    pub fingerprints: Vec<(NodeId, u64)>,
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
    version: Option<cpython::Facts>,
    str_type: usize,
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
            version: cpython::running(py),
            str_type: builtins.getattr("str")?.as_ptr() as usize,
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
        // Bytes before the object for managed dicts (3.11+) and weakrefs (3.12+).
        let managed = match self.version {
            Some(v) if tflags & v.preheader_flags != 0 => v.preheader_bytes,
            _ => 0,
        };
        let addr = tp.as_ptr() as usize;
        let mut flags = 0u8;
        let kind = if self.sized.contains(&addr) {
            if addr == self.str_type {
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
pub fn utf8_uncached(s: &Bound<'_, pyo3::types::PyString>) -> Option<String> {
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

/// Sizes, lengths, labels and flags of every node of a capture. Runs no user code: sizes come
/// from `object.__sizeof__`'s formula or the C `__sizeof__` of the nearest built-in base class
/// (a class's own `__sizeof__` written in Python is not called), labels from the C getters
/// of modules, classes and functions, and from string values as `text`'s policy allows.
///
/// `progress` reports the phase `sizes`, between objects.
pub fn annotate(
    py: Python<'_>,
    node_flags: &mut [u8],
    type_table: &mut [TypeInfo],
    o: &Objects,
    mut text: StringNotes,
    progress: &mut Reporter<'_>,
) -> PyResult<Annotations> {
    let b = Builtins::new(py)?;
    let mut types: FxHashMap<usize, NodeFacts> = Default::default();
    // The types of `types`, held: the progress callback may change an object's class and free
    // its old one, whose address could then be reused by another type.
    let mut held_types: Vec<Py<PyAny>> = Vec::new();
    let mut cache = TypeCache::default();
    let n = node_flags.len();
    let mut sizes = Vec::with_capacity(n);
    let mut lens = Vec::with_capacity(n);
    let mut labels = Vec::new();
    progress.start("sizes", n as u64)?;
    // Every node's header is read, in node order, all over memory: a few ahead are prefetched.
    const AHEAD: usize = 8;
    for (v, node_flags) in node_flags.iter_mut().enumerate() {
        if progress.tick("sizes", v as u64, n as u64)? {
            cache = TypeCache::default();
        }
        if v + AHEAD < n {
            crate::gcwalk::prefetch(o.ptr(py, v + AHEAD));
        }
        let p = o.ptr(py, v);
        if p.is_null() {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: p is alive (held by the capture), the GIL is held.
        let tp = unsafe { ffi::Py_TYPE(p) } as usize;
        let facts = types.entry(tp).or_insert_with(|| {
            // SAFETY: the type of a live object is alive.
            let t = unsafe { Bound::from_borrowed_ptr(py, tp as *mut ffi::PyObject) };
            let facts = b.facts(&t);
            held_types.push(t.unbind());
            facts
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
            *node_flags |= facts.flags;
        }
        // SAFETY: p is alive, the GIL is held.
        unsafe { text.observe(py, p) };
        let label = match facts.kind {
            Kind::Plain | Kind::Sized => None,
            Kind::Str => {
                text.add_str(v as NodeId, len);
                None
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
    for info in type_table.iter_mut() {
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
    let strs = text.finish(py, |v| o.ptr(py, v as usize));
    labels.extend(strs.labels);
    labels.sort_unstable_by_key(|l| l.0);
    progress.end("sizes", n as u64)?;
    Ok(Annotations {
        sizes,
        lens,
        labels,
        fingerprints: strs.fingerprints,
    })
}

/// Names of module globals: for each module in order, its `name -> value` pairs whose value is
/// in the graph (not a module itself, not a dunder), first binding wins. Reads the modules'
/// dictionaries with `PyDict_Next` (no user code). Unless `policy` keeps all strings, a key
/// that does not look like a name is left out (it is data, not a name).
pub fn module_globals(
    py: Python<'_>,
    o: &Objects,
    modules: &[(String, Bound<'_, PyAny>)],
    policy: StringPolicy,
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
                if key.starts_with("__") || !StringNotes::global_allowed(policy, &key) {
                    continue;
                }
                wanted
                    .entry(val as u64)
                    .or_insert_with(|| format!("{mname}.{key}"));
            }
        }
    }
    let mut out: Vec<(NodeId, String)> = o
        .nodes_at(&wanted)
        .into_iter()
        .filter_map(|(a, v)| Some((v, wanted.remove(&a)?)))
        .collect();
    out.sort_unstable_by_key(|g| g.0);
    out
}
