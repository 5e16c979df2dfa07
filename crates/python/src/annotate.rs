//! What a snapshot records besides the graph: shallow sizes, lengths of built-in containers,
//! flags (module, weakref, `__del__`), labels (names of modules, classes, functions; string
//! values) and the module globals that name objects. Reads objects of a capture through C getters
//! and C `__sizeof__`s only: no user code runs. Unsafe CPython access.

use crate::capture::Objects;
use crate::cpython;
use crate::progress::Reporter;
use crate::strings::StringNotes;
use pyo3::ffi;
use pyo3::prelude::*;
use refgraph_core::graph::{flags, NodeId, TypeInfo};
use refgraph_core::snapshot::strings::StringPolicy;
use refgraph_core::snapshot::NO_LEN;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// What a snapshot records about each node besides the graph: shallow sizes, lengths of
/// built-in containers and short labels.
pub struct Annotations {
    pub sizes: Vec<u64>,
    pub lens: Vec<u32>,
    /// Shared texts: most functions share their `__qualname__` with others made from the same
    /// code (at 10M objects, a million closures: a String each was 40 MB).
    pub labels: Vec<(NodeId, Arc<str>)>,
    /// `(node, fingerprint)` of the strs kept without their text.
    pub fingerprints: Vec<(NodeId, u64)>,
}

/// The two per-node columns the sizes pass fills, allocated before it so that another thread
/// may fault their pages in while this one starts ([`Columns::room`]). Written once, right
/// after they are made, as the capture's own arrays: on huge pages where those are
/// ([`refgraph_core::hugepages::wanted_for_capture`]).
pub struct Columns {
    sizes: Vec<u64>,
    lens: Vec<u32>,
}

impl Columns {
    /// Empty columns with room for `n` nodes.
    pub fn with_capacity(n: usize) -> Self {
        let huge = refgraph_core::hugepages::wanted_for_capture();
        Columns {
            sizes: refgraph_core::hugepages::with_capacity_if(n, huge),
            lens: refgraph_core::hugepages::with_capacity_if(n, huge),
        }
    }

    /// Where the columns' room lies, as `(address, bytes)` pairs: for
    /// [`refgraph_core::hugepages::populate`] on another thread (a stale range only wastes the
    /// hint).
    pub fn room(&self) -> [(usize, usize); 2] {
        [
            (self.sizes.as_ptr() as usize, self.sizes.capacity() * 8),
            (self.lens.as_ptr() as usize, self.lens.capacity() * 4),
        ]
    }
}

/// How the shallow size of a type's instances is computed.
enum SizeRule {
    /// `object.__sizeof__`: `basicsize + itemsize * len`, computed here.
    Formula { basic: u64, item: u64 },
    /// A C `__sizeof__` (the class's own, or the nearest built-in base's) taking no
    /// arguments (`list`, `dict`, `set`, `int`, `str`, …), called as calling the method calls
    /// it, without the call's machinery (`meth(obj, NULL)`); the descriptor that owns it is
    /// held.
    Direct {
        _descr: Py<PyAny>,
        meth: ffi::PyCFunction,
    },
    /// Any other such `__sizeof__`: C code, called as a method.
    Call(Py<PyAny>),
}

/// The start of CPython's `PyMethodDescrObject` (`Include/descrobject.h`, the same from 3.10
/// to 3.13): `PyDescr_COMMON` (the object header, `d_type`, `d_name`, `d_qualname`), then the
/// method's `PyMethodDef`.
#[repr(C)]
struct MethodDescr {
    header: [usize; 2],
    d_type: *mut ffi::PyObject,
    d_name: *mut ffi::PyObject,
    d_qualname: *mut ffi::PyObject,
    d_method: *mut ffi::PyMethodDef,
}

/// The method definition of `f` if it is a method of C code (exactly `PyMethodDescr_Type`)
/// that applies to instances of `tp`.
fn c_method(f: &Bound<'_, PyAny>, tp: *mut ffi::PyTypeObject) -> Option<*const ffi::PyMethodDef> {
    // SAFETY: f is alive; an object whose type is exactly PyMethodDescr_Type has the layout of
    // MethodDescr, and its PyMethodDef lives as long as the type that owns it (which `f`'s
    // owner keeps alive).
    unsafe {
        if ffi::Py_TYPE(f.as_ptr()) != &raw mut ffi::PyMethodDescr_Type {
            return None;
        }
        let descr = &*(f.as_ptr() as *const MethodDescr);
        let def = descr.d_method;
        // The method may be called on `tp`'s instances only if they are instances of the
        // type that defines it (what calling the descriptor checks first).
        if def.is_null()
            || descr.d_type.is_null()
            || ffi::PyType_IsSubtype(tp, descr.d_type as *mut ffi::PyTypeObject) == 0
        {
            return None;
        }
        Some(def)
    }
}

/// The C function of `f` if it is a method of C code ([`c_method`]) that takes no arguments.
fn noargs_method(f: &Bound<'_, PyAny>, tp: *mut ffi::PyTypeObject) -> Option<ffi::PyCFunction> {
    let def = c_method(f, tp)?;
    // SAFETY: a live method definition (see c_method).
    unsafe {
        const CALLING: std::os::raw::c_int = ffi::METH_VARARGS
            | ffi::METH_KEYWORDS
            | ffi::METH_NOARGS
            | ffi::METH_O
            | ffi::METH_FASTCALL
            | 0x0200 // METH_METHOD (3.9+; not in the limited API's list)
            | ffi::METH_CLASS
            | ffi::METH_STATIC;
        if (*def).ml_flags & CALLING != ffi::METH_NOARGS {
            return None;
        }
        Some((*def).ml_meth.PyCFunction)
    }
}

/// The bytes before an object that `sys.getsizeof` counts: its `PyGC_Head` if its type has
/// `Py_TPFLAGS_HAVE_GC`, and the pointers of managed dicts (3.11+) and weakrefs (3.12+).
#[derive(Clone, Copy)]
enum PreHeader {
    Fixed(u64),
    /// 3.10 (`_PyObject_IS_GC`): the `PyGC_Head` only if the type's `tp_is_gc` (types have
    /// one: no for static types) says yes for the object.
    IfGc(unsafe extern "C" fn(*mut ffi::PyObject) -> std::os::raw::c_int),
    /// 3.13+: nothing for a static type, an object of exactly `type` without
    /// `Py_TPFLAGS_HEAPTYPE`; the bytes for any other.
    UnlessStaticType(u64),
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
    /// What `sys.getsizeof` adds before the object.
    pre: PreHeader,
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

    /// A descriptor of `type` or `function` applied to an object (C getters only), as
    /// `descr.__get__(obj)` does it: its type's `tp_descr_get` slot, called directly.
    fn get<'py>(descr: &Py<PyAny>, obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
        // SAFETY: descr and obj are alive, the GIL is held; a tp_descr_get slot has this
        // signature and returns a new reference or NULL with an exception set.
        unsafe {
            let d = descr.as_ptr();
            let f = ffi::PyType_GetSlot(ffi::Py_TYPE(d), ffi::Py_tp_descr_get);
            if f.is_null() {
                return None;
            }
            let f = std::mem::transmute::<*mut std::os::raw::c_void, ffi::descrgetfunc>(f);
            let r = f(d, obj.as_ptr(), std::ptr::null_mut());
            if r.is_null() {
                ffi::PyErr_Clear();
                return None;
            }
            Some(Bound::from_owned_ptr(obj.py(), r))
        }
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
        // A C `__sizeof__` found first in the MRO (a class of a C extension made with
        // `PyType_FromSpec` is a heap type, `_struct.Struct` for one) is called; a `__sizeof__`
        // written in Python is not, the nearest static base's is.
        let own = self
            .first_sizeof(tp)
            .filter(|f| !f.is(self.object_sizeof.bind(py)) && c_method(f, tpp).is_some());
        // Otherwise the nearest static base's: object's formula, or its C method.
        let direct = |f: Bound<'_, PyAny>| match noargs_method(&f, tpp) {
            Some(meth) => SizeRule::Direct {
                _descr: f.unbind(),
                meth,
            },
            None => SizeRule::Call(f.unbind()),
        };
        let size = match (own, base.getattr("__sizeof__")) {
            (Some(f), _) => direct(f),
            (None, Ok(f)) if f.is(self.object_sizeof.bind(py)) => {
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
            (None, Ok(f)) => direct(f),
            (None, Err(_)) => SizeRule::Formula { basic: 0, item: 0 },
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
        let pre = self.pre_header(tpp, tflags);
        NodeFacts {
            size,
            pre,
            kind,
            flags,
        }
    }

    /// What `sys.getsizeof` adds before an object of type `tpp` (`_PySys_GetSizeOf`).
    fn pre_header(&self, tpp: *mut ffi::PyTypeObject, tflags: std::os::raw::c_ulong) -> PreHeader {
        let minor = self.version.map_or(cpython::NEWEST, |v| v.minor);
        let gc = if tflags & ffi::Py_TPFLAGS_HAVE_GC != 0 {
            cpython::GC_HEAD as u64
        } else {
            0
        };
        if minor == 10 {
            // SAFETY: tpp is a live type; PyType_GetSlot works on static types since 3.10.
            let is_gc = unsafe { ffi::PyType_GetSlot(tpp, ffi::Py_tp_is_gc) };
            return if gc == 0 || is_gc.is_null() {
                PreHeader::Fixed(gc)
            } else {
                // SAFETY: a tp_is_gc slot has this signature.
                PreHeader::IfGc(unsafe {
                    std::mem::transmute::<
                        *mut std::os::raw::c_void,
                        unsafe extern "C" fn(*mut ffi::PyObject) -> std::os::raw::c_int,
                    >(is_gc)
                })
            };
        }
        let managed = match self.version {
            Some(v) if tflags & v.preheader_flags != 0 => v.preheader_bytes,
            _ => 0,
        };
        if minor >= 13 && tpp == &raw mut ffi::PyType_Type {
            PreHeader::UnlessStaticType(gc + managed)
        } else {
            PreHeader::Fixed(gc + managed)
        }
    }

    /// The first `__sizeof__` in the own dictionaries of `tp`'s MRO.
    fn first_sizeof<'py>(&self, tp: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
        let mro = Self::get(&self.mro, tp)?;
        let mro = mro.cast_into::<pyo3::types::PyTuple>().ok()?;
        mro.iter().find_map(|c| {
            Self::get(&self.type_dict, &c)
                .and_then(|d| d.cast_into::<pyo3::types::PyMappingProxy>().ok())
                .and_then(|d| d.as_any().get_item("__sizeof__").ok())
        })
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

/// The size a `__sizeof__` returned (a new reference, or NULL with an exception set), 0 if it
/// failed or is not a non-negative int.
///
/// # Safety
/// The GIL is held.
unsafe fn size_result(r: *mut ffi::PyObject) -> u64 {
    if r.is_null() {
        ffi::PyErr_Clear();
        return 0;
    }
    let z = ffi::PyLong_AsSsize_t(r);
    ffi::Py_DecRef(r);
    // A result with an exception set too (which the call machinery would have turned into an
    // error) counts as a failure.
    if z < 0 || !ffi::PyErr_Occurred().is_null() {
        ffi::PyErr_Clear();
        0
    } else {
        z as u64
    }
}

/// Sizes, lengths, labels and flags of every node of a capture. Runs no user code: sizes come
/// from `object.__sizeof__`'s formula or a C `__sizeof__` (the first of the MRO if it is C
/// code, else the nearest built-in base class's: a `__sizeof__` written in Python is not
/// called), labels from the C getters
/// of modules, classes and functions, and from string values as `text`'s policy allows.
///
/// `progress` reports the phase `sizes`, between objects. The sizes and lengths are pushed
/// onto `columns` (see [`Columns`]).
pub fn annotate(
    py: Python<'_>,
    node_flags: &mut [u8],
    type_table: &mut [TypeInfo],
    o: &Objects,
    mut text: StringNotes,
    columns: Columns,
    progress: &mut Reporter<'_>,
) -> PyResult<Annotations> {
    let b = Builtins::new(py)?;
    let mut types: FxHashMap<usize, NodeFacts> = Default::default();
    // The types of `types`, held: the progress callback may change an object's class and free
    // its old one, whose address could then be reused by another type.
    let mut held_types: Vec<Py<PyAny>> = Vec::new();
    let n = node_flags.len();
    let Columns {
        mut sizes,
        mut lens,
    } = columns;
    sizes.reserve_exact(n);
    lens.reserve_exact(n);
    let mut labels = Vec::new();
    // The text of each function's `__qualname__` (a str most functions share with others made
    // from the same code), by the str's address; the str is held while it is a key, and the
    // map is cleared when Python code may have run (a progress report).
    let mut qualnames: FxHashMap<usize, (Py<PyAny>, Option<Arc<str>>)> = Default::default();
    progress.start("sizes", n as u64)?;
    // Every node's header is read, in node order, all over memory: a few ahead are prefetched.
    const AHEAD: usize = 8;
    for (v, node_flags) in node_flags.iter_mut().enumerate() {
        if progress.tick("sizes", v as u64, n as u64)? {
            qualnames.clear();
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
                SizeRule::Direct { meth, .. } => size_result(meth(p, std::ptr::null_mut())),
                SizeRule::Call(f) => size_result(ffi::PyObject_CallFunctionObjArgs(
                    f.as_ptr(),
                    p,
                    std::ptr::null_mut::<ffi::PyObject>(),
                )),
            };
            let pre = match facts.pre {
                PreHeader::Fixed(b) => b,
                PreHeader::IfGc(is_gc) if is_gc(p) != 0 => cpython::GC_HEAD as u64,
                PreHeader::IfGc(_) => 0,
                PreHeader::UnlessStaticType(b) => {
                    let heap = ffi::PyType_GetFlags(p as *mut ffi::PyTypeObject)
                        & ffi::Py_TPFLAGS_HEAPTYPE;
                    if heap != 0 {
                        b
                    } else {
                        0
                    }
                }
            };
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
            (base + pre, len)
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
                        Builtins::str_of(Some(Bound::from_owned_ptr(py, r))).map(Arc::from)
                    }
                }
            }
            Kind::Function => {
                // SAFETY: p is alive.
                let obj = unsafe { Bound::from_borrowed_ptr(py, p) };
                Builtins::get(&b.func_qualname, &obj).and_then(|q| {
                    qualnames
                        .entry(q.as_ptr() as usize)
                        .or_insert_with(|| {
                            (q.clone().unbind(), Builtins::str_of(Some(q)).map(Arc::from))
                        })
                        .1
                        .clone()
                })
            }
            Kind::Type => {
                // SAFETY: p is alive.
                let obj = unsafe { Bound::from_borrowed_ptr(py, p) };
                let q = Builtins::str_of(Builtins::get(&b.type_qualname, &obj));
                let m = Builtins::str_of(Builtins::get(&b.type_module, &obj));
                match (m, q) {
                    (Some(m), Some(q)) if m != "builtins" => Some(format!("{m}.{q}").into()),
                    (_, q) => q.map(Arc::from),
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
    // Both lists are in node order (a str is never labelled above): merged, not sorted (at
    // 30M objects, 2.7M function labels took 0.18 s to sort).
    debug_assert!(strs.labels.is_sorted_by_key(|l| l.0) && labels.is_sorted_by_key(|l| l.0));
    let labels = merge_by_node(
        labels,
        strs.labels
            .into_iter()
            .map(|(v, l)| (v, Arc::from(l)))
            .collect(),
    );
    progress.end("sizes", n as u64)?;
    Ok(Annotations {
        sizes,
        lens,
        labels,
        fingerprints: strs.fingerprints,
    })
}

/// Two lists of labels sorted by node, merged into one sorted by node (a node in both: the
/// first list's label first), in the first list's buffer: from its end, the second list's
/// labels go in place and the first's move up past them (no copy of the first list, which
/// holds a label per function).
fn merge_by_node(
    mut a: Vec<(NodeId, Arc<str>)>,
    b: Vec<(NodeId, Arc<str>)>,
) -> Vec<(NodeId, Arc<str>)> {
    if b.is_empty() {
        return a;
    }
    let n = a.len();
    a.resize(n + b.len(), (0, Arc::from("")));
    let (mut i, mut k) = (n, a.len());
    for y in b.into_iter().rev() {
        while i > 0 && a[i - 1].0 > y.0 {
            i -= 1;
            k -= 1;
            a.swap(i, k);
        }
        k -= 1;
        a[k] = y;
    }
    a
}

/// Names of module globals, by the address of their value: for each module in order, its
/// `name -> value` pairs (not a module itself, not a dunder), first binding wins; those
/// whose value is in the graph are kept ([`Objects::nodes_at`]). Reads the modules'
/// dictionaries with `PyDict_Next` (no user code). Unless `policy` keeps all strings, a key
/// that does not look like a name is left out (it is data, not a name).
pub fn module_globals(
    py: Python<'_>,
    modules: &[(String, Bound<'_, PyAny>)],
    policy: StringPolicy,
) -> FxHashMap<u64, String> {
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
    wanted
}
