//! Type names as objgraph computes them: `type.__name__` and `type.__module__ + '.' + name`.

use pyo3::prelude::*;
use pyo3::types::{PyMappingProxy, PyString, PyTuple, PyType};
use pyo3::{ffi, intern};
use rustc_hash::FxHashMap;

/// A cache of type names keyed by type address. Holds a strong reference to each type so that
/// the address stays meaningful while the cache lives.
#[derive(Default)]
pub struct TypeNames {
    map: FxHashMap<usize, (Py<PyType>, String, String)>,
}

fn text(v: &Bound<'_, PyAny>) -> String {
    match v.extract::<String>() {
        Ok(s) => s,
        Err(_) => v
            .str()
            .and_then(|s| s.extract::<String>())
            .unwrap_or_else(|_| "?".into()),
    }
}

/// Short and long names of a type. A metaclass whose `__name__`/`__module__` raise does not
/// break the call: the name falls back to `?` and the module is dropped.
pub fn type_names(tp: &Bound<'_, PyType>) -> (String, String) {
    let short = match tp.getattr("__name__") {
        Ok(v) => text(&v),
        Err(_) => "?".into(),
    };
    let long = match tp.getattr("__module__") {
        Ok(m) if m.is_truthy().unwrap_or(false) => format!("{}.{}", text(&m), short),
        _ => short.clone(),
    };
    (short, long)
}

/// A type's `__dict__` (a mappingproxy) when every key in it is an exact `str`: then looking a
/// `str` up in it runs no Python code (a key of another type with an equal hash would run its
/// `__eq__`). Reading it runs none when the metatype's attribute lookup is `type`'s and finds
/// `type`'s `__dict__` getter (checked by the callers).
fn str_keyed_dict<'py>(tp: &Bound<'py, PyType>) -> Option<Bound<'py, PyAny>> {
    let proxy = tp.getattr(intern!(tp.py(), "__dict__")).ok()?;
    if !proxy.is_exact_instance_of::<PyMappingProxy>() {
        return None;
    }
    for k in proxy.try_iter().ok()? {
        if !k.ok()?.is_exact_instance_of::<PyString>() {
            return None;
        }
    }
    Some(proxy)
}

/// `tp_getattro` of a class that defines `__getattr__` (CPython's `slot_tp_getattr_hook`, which
/// calls `__getattr__` only when the lookup through `__getattribute__` raises), read from a
/// class made for the purpose at import.
static GETATTR_HOOK: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Read [`GETATTR_HOOK`] (at import: a class with a `__getattr__` is made and kept).
/// Once per process: the module may be initialised again (each `refgraph attach` imports it
/// anew in the target), and a class made each time would pile up.
pub fn init(py: Python<'_>) -> PyResult<()> {
    if GETATTR_HOOK.get().is_some() {
        return Ok(());
    }
    let dict = pyo3::types::PyDict::new(py);
    // Any callable: only its presence decides the slot.
    dict.set_item("__getattr__", py.import("builtins")?.getattr("len")?)?;
    let probe = py
        .get_type::<PyType>()
        .call1(("_GetattrHookProbe", PyTuple::empty(py), dict))?;
    let probe = probe.cast_into::<PyType>()?;
    // SAFETY: a live type object, kept alive for the life of the process below.
    let slot = unsafe { ffi::PyType_GetSlot(probe.as_type_ptr(), ffi::Py_tp_getattro) } as usize;
    let _ = GETATTR_HOOK.set(slot);
    // A class made by `type()` has for C name the UTF-8 text of its `__name__` (the very
    // buffer `PyUnicode_AsUTF8AndSize` gives): read where `tp_name` should be, it proves the
    // layout (any build whose object header differs fails: then C names are never read).
    // Not proven (nothing read later) if anything here fails; the import goes on.
    let proven = probe.getattr("__name__").is_ok_and(|name| {
        // SAFETY: `name` is a live str (an ASCII one: its UTF-8 is its own buffer, so no
        // error can be left set); the word read lies inside the type object (a type object
        // is hundreds of bytes long in every build).
        unsafe {
            let utf8 = ffi::PyUnicode_AsUTF8AndSize(name.as_ptr(), std::ptr::null_mut());
            let word = *((probe.as_ptr() as usize + TP_NAME) as *const usize);
            !utf8.is_null() && word == utf8 as usize
        }
    });
    let _ = C_NAMES.set(proven);
    std::mem::forget(probe.unbind());
    Ok(())
}

/// Where `PyTypeObject.tp_name` sits: after `PyObject_VAR_HEAD` (reference count, type, size)
/// in the default builds of 3.10 to 3.13 (`Include/cpython/object.h`). Proven at import on a
/// class made for the purpose ([`C_NAMES`]) before anything reads it.
const TP_NAME: usize = 3 * std::mem::size_of::<usize>();

/// Whether `tp_name` was found at [`TP_NAME`] (see [`init`]).
static C_NAMES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// The metaclasses, other than `type`, through which a class's `__name__` is `type`'s getter
/// ([`plain_metaclass`]: `ABCMeta`, `EnumType`, typing's, ctypes'...), found among
/// `type`'s subclasses, each held (its address stays its own while this lives). Made before a
/// walk that asks [`may_be_named`]; reading them runs no Python code, and the collector is off
/// meanwhile (a finalizer could otherwise change a metaclass after it was looked at).
pub struct PlainMetaclasses<'py> {
    _held: Vec<Bound<'py, PyType>>,
    addrs: rustc_hash::FxHashSet<usize>,
}

impl<'py> PlainMetaclasses<'py> {
    pub fn find(py: Python<'py>) -> PlainMetaclasses<'py> {
        // SAFETY: plain C calls with the GIL held.
        let was_enabled = unsafe { ffi::PyGC_Disable() };
        let found = plain_metaclasses(py);
        if was_enabled != 0 {
            // Enabling only sets a flag: no collection starts here.
            unsafe { ffi::PyGC_Enable() };
        }
        let addrs = found.iter().map(|m| m.as_ptr() as usize).collect();
        PlainMetaclasses {
            _held: found,
            addrs,
        }
    }

    fn contains(&self, meta: usize) -> bool {
        self.addrs.contains(&meta)
    }
}

/// Every subclass of `type`, at any depth, that is a [`plain_metaclass`]. A subclass of one
/// that is not plain is not plain either (its MRO holds it), so those are not searched.
fn plain_metaclasses(py: Python<'_>) -> Vec<Bound<'_, PyType>> {
    let tp_type = py.get_type::<PyType>();
    // `type.__subclasses__` taken from `type` itself and called with each class: asking a class
    // for its own would go through its metaclass's attribute lookup.
    let Ok(subclasses) = tp_type.getattr(intern!(py, "__subclasses__")) else {
        return Vec::new();
    };
    let mut seen = rustc_hash::FxHashSet::default();
    let mut todo = vec![tp_type];
    let mut plain = Vec::new();
    while let Some(t) = todo.pop() {
        let Ok(list) = subclasses.call1((&t,)) else {
            continue;
        };
        let Ok(list) = list.cast_into::<pyo3::types::PyList>() else {
            continue;
        };
        for sub in list.iter() {
            let Ok(sub) = sub.cast_into::<PyType>() else {
                continue;
            };
            if seen.insert(sub.as_ptr() as usize) && plain_metaclass(&sub) {
                plain.push(sub.clone());
                todo.push(sub);
            }
        }
    }
    plain
}

/// Whether objects of type `tp` may be named `typename` (a short name, or a long one when it
/// has a dot), decided without running any code or making any object (so it may be asked in
/// the middle of a walk of the collector's lists): false only when the names of `tp` cannot
/// end with the last part of `typename`. For a type whose metatype is `type` or one of
/// `metas`, `__name__` is `type`'s getter: its C name cut after the last dot (a static type)
/// or the text that C name holds (a class, whose C name follows every assignment to
/// `__name__`); a long name ends with `'.' + __name__`. Any other metatype may compute
/// `__name__`: always true.
///
/// # Safety
/// GIL held; `tp` a live type object.
pub unsafe fn may_be_named(
    tp: *mut ffi::PyObject,
    typename: &str,
    metas: &PlainMetaclasses<'_>,
) -> bool {
    if C_NAMES.get() != Some(&true) {
        return true;
    }
    let meta = ffi::Py_TYPE(tp);
    if meta != &raw mut ffi::PyType_Type && !metas.contains(meta as usize) {
        return true;
    }
    let c_name = *((tp as usize + TP_NAME) as *const *const std::ffi::c_char);
    if c_name.is_null() {
        return true;
    }
    fn last(s: &[u8]) -> &[u8] {
        s.rsplit(|&b| b == b'.').next().unwrap_or(s)
    }
    last(std::ffi::CStr::from_ptr(c_name).to_bytes()) == last(typename.as_bytes())
}

/// Whether a metaclass reads its instances' `__name__` and `__dict__` exactly as `type` does,
/// with no Python code: every class of its MRO before `type` (`ABCMeta`, `EnumType`, typing's
/// `_ProtocolMeta`, ...) is a class whose metatype is `type`, with a `str`-keyed `__dict__` that
/// defines no `__name__`, `__dict__` or `__getattribute__` and no `__module__` but a `str`; its
/// attribute lookup is `type`'s, or `type`'s followed by a `__getattr__` (called only when that
/// raises, which `type`'s getters for `__name__` and `__dict__` never do). Checked on the
/// structure, not on the names (a class named `ABCMeta` can define anything).
fn plain_metaclass(meta: &Bound<'_, PyType>) -> bool {
    let py = meta.py();
    let tp_type = py.get_type::<PyType>();
    // SAFETY: both are live type objects; PyType_GetSlot works on static types since 3.10.
    let getattro = unsafe { ffi::PyType_GetSlot(meta.as_type_ptr(), ffi::Py_tp_getattro) };
    let type_getattro = unsafe { ffi::PyType_GetSlot(tp_type.as_type_ptr(), ffi::Py_tp_getattro) };
    if getattro != type_getattro && GETATTR_HOOK.get() != Some(&(getattro as usize)) {
        return false;
    }
    if !meta.get_type().is(&tp_type) {
        return false;
    }
    // Its metatype is `type`: `__mro__` is `type`'s C getter.
    let Some(mro) = meta
        .getattr(intern!(py, "__mro__"))
        .ok()
        .and_then(|m| m.cast_into::<PyTuple>().ok())
    else {
        return false;
    };
    let n = mro.len();
    let object = py.get_type::<PyAny>();
    if n < 3
        || !mro.get_item(n - 2).is_ok_and(|t| t.is(&tp_type))
        || !mro.get_item(n - 1).is_ok_and(|t| t.is(&object))
    {
        return false;
    }
    for class in mro.iter().take(n - 2) {
        let Ok(class) = class.cast_into::<PyType>() else {
            return false;
        };
        // `__dict__` of a class whose metatype is `type`: `type`'s C getter.
        if !class.get_type().is(&tp_type) {
            return false;
        }
        let Some(dict) = str_keyed_dict(&class) else {
            return false;
        };
        // Lookups in a str-keyed dict run no Python code.
        for key in [
            intern!(py, "__name__"),
            intern!(py, "__dict__"),
            intern!(py, "__getattribute__"),
        ] {
            if dict.contains(key).unwrap_or(true) {
                return false;
            }
        }
        if let Ok(m) = dict.get_item(intern!(py, "__module__")) {
            if !m.is_exact_instance_of::<PyString>() {
                return false;
            }
        }
    }
    true
}

/// Short and long names of `tp`, the same as [`type_names`], when reading them runs no Python
/// code at all: its metatype is `type` or a [`plain_metaclass`]; a heap type has a `__dict__`
/// with `str` keys only, holding its `__module__` (a `str`); its `__name__` is a `str`. None,
/// having run no Python code, when any of that does not hold.
pub fn names_without_code(tp: &Bound<'_, PyType>) -> Option<(String, String)> {
    let py = tp.py();
    let meta = tp.get_type();
    let plain_type = meta.is(py.get_type::<PyType>());
    if !plain_type && !plain_metaclass(&meta) {
        return None;
    }
    // SAFETY: a live type object.
    let heap = unsafe { ffi::PyType_GetFlags(tp.as_type_ptr()) } & ffi::Py_TPFLAGS_HEAPTYPE != 0;
    // `type`'s `__module__` getter: a heap type's entry in its `__dict__` (found there first by a
    // plain metaclass's lookup too); a static type's cut from its C name.
    let module = if heap {
        let dict = str_keyed_dict(tp)?;
        match dict.get_item(intern!(py, "__module__")) {
            Ok(m) => Some(m),
            Err(_) if plain_type => None,
            // A plain metaclass would go on looking in the bases' dictionaries.
            Err(_) => return None,
        }
    } else if plain_type {
        tp.getattr(intern!(py, "__module__")).ok()
    } else {
        return None;
    };
    // `type`'s `__name__` getter (a data descriptor: found before anything of the type's own).
    let name = tp.getattr(intern!(py, "__name__")).ok()?;
    if !name.is_exact_instance_of::<PyString>() {
        return None;
    }
    let short = text(&name);
    let long = match module {
        Some(m) if !m.is_exact_instance_of::<PyString>() => return None,
        Some(m) if m.is_truthy().unwrap_or(false) => format!("{}.{}", text(&m), short),
        _ => short.clone(),
    };
    Some((short, long))
}

impl TypeNames {
    /// Remember a type (no Python code runs).
    pub fn keep(&mut self, tp: &Bound<'_, PyType>) {
        let key = tp.as_ptr() as usize;
        self.map
            .entry(key)
            .or_insert_with(|| (tp.clone().unbind(), String::new(), String::new()));
    }

    /// Resolve the names of every remembered type (runs Python attribute lookups).
    pub fn resolve(&mut self, py: Python<'_>) {
        for (tp, short, long) in self.map.values_mut() {
            if short.is_empty() {
                let (s, l) = type_names(tp.bind(py));
                *short = s;
                *long = l;
            }
        }
    }

    /// Resolve the names of the remembered types whose names can be read without running Python
    /// code ([`names_without_code`]); true when that was every one. Runs no Python code.
    pub fn resolve_without_code(&mut self, py: Python<'_>) -> bool {
        let mut all = true;
        for (tp, short, long) in self.map.values_mut() {
            if short.is_empty() {
                match names_without_code(tp.bind(py)) {
                    Some((s, l)) => {
                        *short = s;
                        *long = l;
                    }
                    None => all = false,
                }
            }
        }
        all
    }

    /// The name of a remembered, resolved type.
    pub fn name(&self, type_addr: usize, shortnames: bool) -> &str {
        match self.map.get(&type_addr) {
            Some((_, s, l)) => {
                if shortnames {
                    s
                } else {
                    l
                }
            }
            None => "?",
        }
    }

    /// Type addresses whose name equals `typename` (long names when it contains a dot).
    pub fn matching(&self, typename: &str) -> rustc_hash::FxHashSet<usize> {
        let long = typename.contains('.');
        self.map
            .iter()
            .filter(|(_, (_, s, l))| if long { l == typename } else { s == typename })
            .map(|(k, _)| *k)
            .collect()
    }
}
