//! Edge names for snapshots: how each referrer holds each referent, read from the live objects
//! without running user code and without changing them.
//!
//! For every node, a list of *candidates* `(pointer, name)` is read from the object — its
//! `T_OBJECT` members over the MRO (`__slots__`, a bound method's `__self__`/`__func__`, a weak
//! reference's `__callback__`, `functools.partial`'s parts, a class's `__mro__`/`__base__`), its
//! instance dict (`__dict__` at the type's dict offset, or the 3.11+ managed dict and inline
//! values, named from the class's shared keys), list/tuple items, dict entries, a cell's
//! contents, a function's getters, an exception's traceback/cause/context — and the node's
//! recorded referents (in `tp_traverse` order) are matched to them by pointer. A referent no
//! candidate explains stays unnamed. Pointers read from memory are only compared with the
//! referents, never followed; the only structures followed are a class's shared keys, after
//! checks that the layout is the one this Python version uses (see
//! [`crate::cpython::DictLayout`]).
//!
//! Nothing here calls a method of a user's class: attribute values come from C getters of
//! exact built-in types, dict keys are written by the C `repr` of exact str, int, float, bool,
//! None and bytes (short tuples of those), and other keys get a placeholder (`<Session>`).
//! Instance `__dict__`s are never requested (on 3.11–3.13 that would materialise a dict), and
//! the collector is disabled during the pass so that no finalizer runs.

use crate::capture::Objects;
use crate::cpython::{
    DictLayout, Managed, CELL_REF, DICT_KEYS_SPLIT, DK_INDICES, DK_KIND, DK_LOG2_INDEX_BYTES,
    DK_LOG2_SIZE, DK_NENTRIES, DK_USABLE, SHARED_KEYS_MAX_SIZE, TPFLAGS_INLINE_VALUES,
    TPFLAGS_MANAGED_DICT, UNICODE_ENTRY,
};
use crate::progress::Reporter;
use pyo3::ffi;
use pyo3::prelude::*;
use refgraph_core::addrindex::AddrIndex;
use refgraph_core::edgenames::{BuiltNames, EdgeKind, EdgeNamesBuilder};
use refgraph_core::graph::{Graph, NodeId, TypeId};
use refgraph_core::snapshot::strings::{is_name_like, StringPolicy};
use rustc_hash::FxHashMap;
use std::os::raw::c_int;

// ----------------------------------------------------------------------------- layouts

const WORD: usize = std::mem::size_of::<usize>();

unsafe fn read_word(p: *const u8) -> usize {
    std::ptr::read_unaligned(p as *const usize)
}

// ----------------------------------------------------------------------------- per type

#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    Plain,
    List,
    Tuple,
    Dict,
    Set,
    /// An exact `collections.deque`: its referents are its items, in order.
    Deque,
    Cell,
    /// A 3.10 frame: its fast locals follow the fixed part (`f_localsplus`).
    Frame310,
    Function,
    BuiltinMethod,
    Exception,
    Type,
}

#[derive(Clone, Copy)]
enum DictAt {
    None,
    /// `tp_dictoffset`: positive from the start, negative from the end of a var-sized object.
    Offset(isize),
    Managed,
}

struct TypeNamer {
    /// Heap types' instances refer to their type (`__class__`).
    heap: bool,
    /// `(offset, text id)` of object members over the MRO.
    members: Vec<(usize, u32)>,
    dict: DictAt,
    basicsize: usize,
    itemsize: usize,
    /// The class's shared keys (validated), for managed dicts: `(entry index -> text id)`.
    keys: Option<SharedKeys>,
    inline_values: bool,
    base: Base,
    /// Functions: offset of `func_globals`, when the members confirm the `_Py_COMMON_FIELDS`
    /// layout (globals, builtins, name, qualname, code, defaults, kwdefaults, closure, doc).
    func_globals: Option<usize>,
}

/// Fields of a function after `func_globals`, in words (`Include/cpython/funcobject.h`,
/// `_Py_COMMON_FIELDS`, 3.10–3.13).
const FUNC_FIELDS: [(&str, usize); 5] = [
    ("__name__", 2),
    ("__qualname__", 3),
    ("__code__", 4),
    ("__defaults__", 5),
    ("__kwdefaults__", 6),
];
const FUNC_CODE: usize = 4;
const FUNC_CLOSURE: usize = 7;

struct SharedKeys {
    addr: usize,
    /// Text id of the key at each entry index (`u32::MAX`: no usable key).
    names: Vec<u32>,
}

/// Objects and facts looked up once per pass.
struct Env {
    layout: Option<DictLayout>,
    mro: Py<PyAny>,
    dictoffset: Py<PyAny>,
    basicsize: Py<PyAny>,
    itemsize: Py<PyAny>,
    type_name: Py<PyAny>,
    type_qualname: Py<PyAny>,
    bases: Py<PyAny>,
    exc_args: Py<PyAny>,
    function: usize,
    builtin_method: usize,
    cell: usize,
    deque: usize,
    cell_ok: bool,
    frame: usize,
    minor: u8,
}

fn descr(py: Python<'_>, owner: &Bound<'_, PyAny>, name: &str) -> PyResult<Py<PyAny>> {
    let _ = py;
    Ok(owner.getattr("__dict__")?.get_item(name)?.unbind())
}

impl Env {
    fn new(py: Python<'_>) -> PyResult<Env> {
        let builtins = py.import("builtins")?;
        let type_ = builtins.getattr("type")?;
        let types = py.import("types")?;
        let cell = types.getattr("CellType")?;
        let minor = py.version_info().minor;
        let mut layout = crate::cpython::running(py)
            .and_then(|f| f.dict_layout)
            .filter(|_| WORD == 8);
        let heap_size: usize = type_.getattr("__basicsize__")?.extract()?;
        if layout.is_some_and(|l| l.heap_type_size != heap_size) {
            layout = None;
        }
        let cell_size: usize = cell.getattr("__basicsize__")?.extract()?;
        Ok(Env {
            layout,
            mro: descr(py, &type_, "__mro__")?,
            dictoffset: descr(py, &type_, "__dictoffset__")?,
            basicsize: descr(py, &type_, "__basicsize__")?,
            itemsize: descr(py, &type_, "__itemsize__")?,
            type_name: descr(py, &type_, "__name__")?,
            type_qualname: descr(py, &type_, "__qualname__")?,
            bases: descr(py, &type_, "__bases__")?,
            exc_args: descr(py, &builtins.getattr("BaseException")?, "args")?,
            function: types.getattr("FunctionType")?.as_ptr() as usize,
            builtin_method: types.getattr("BuiltinFunctionType")?.as_ptr() as usize,
            cell: cell.as_ptr() as usize,
            deque: py.import("collections")?.getattr("deque")?.as_ptr() as usize,
            frame: types.getattr("FrameType")?.as_ptr() as usize,
            minor,
            cell_ok: cell_size == CELL_REF + WORD,
        })
    }

    /// `descr.__get__(obj)` of a C getter, or `None` if it fails.
    fn get<'py>(d: &Py<PyAny>, obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
        d.bind(obj.py()).call_method1("__get__", (obj,)).ok()
    }

    fn get_isize(&self, d: &Py<PyAny>, tp: &Bound<'_, PyAny>) -> isize {
        Self::get(d, tp)
            .and_then(|v| v.extract::<isize>().ok())
            .unwrap_or(0)
    }
}

/// Text of a str object without leaving a cached UTF-8 copy in it; None for anything else.
fn str_text(s: &Bound<'_, PyAny>) -> Option<String> {
    crate::annotate::utf8_uncached(s.cast::<pyo3::types::PyString>().ok()?)
}

/// The value of an int that fits in 64 bits; None (no exception left set) for a bigger one.
///
/// # Safety
/// `k` is a live int; the GIL is held.
unsafe fn int_value(k: *mut ffi::PyObject) -> Option<i64> {
    let mut overflow: c_int = 0;
    let v = ffi::PyLong_AsLongLongAndOverflow(k, &mut overflow);
    if overflow != 0 || (v == -1 && !ffi::PyErr_Occurred().is_null()) {
        ffi::PyErr_Clear();
        return None;
    }
    Some(v)
}

/// The decimal text of `v`, written at the end of `buf` (20 bytes hold `i64::MIN`).
fn decimal(v: i64, buf: &mut [u8; 20]) -> &str {
    let mut n = v.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    // Only ASCII digits and a sign were written.
    std::str::from_utf8(&buf[at..]).expect("ASCII")
}

/// The text of a temporary str (its UTF-8 cache dies with it).
unsafe fn temp_text(s: *mut ffi::PyObject) -> Option<String> {
    let mut len: ffi::Py_ssize_t = 0;
    let p = ffi::PyUnicode_AsUTF8AndSize(s, &mut len);
    if p.is_null() {
        ffi::PyErr_Clear();
        return None;
    }
    let bytes = std::slice::from_raw_parts(p as *const u8, len as usize);
    Some(String::from_utf8_lossy(bytes).into_owned())
}

struct Namer<'a> {
    py: Python<'a>,
    env: Env,
    b: EdgeNamesBuilder,
    types: Vec<Option<TypeNamer>>,
    /// Short type names by type address, for key placeholders.
    type_names: FxHashMap<usize, String>,
    /// Text id of a dict key's repr, by key address.
    key_text: FxHashMap<usize, u32>,
    /// Free variable names (text ids) of closure cells, by cell address (a cell's lookup is
    /// a miss at a random place in a big table: prefetched a few nodes ahead).
    cells: AddrIndex,
    /// `co_freevars` (text ids) by code object address.
    freevars: FxHashMap<usize, Vec<u32>>,
    /// Attribute text ids by the address of the name's text (a literal of this file: asked
    /// for once per object, hashing the address is cheaper than hashing the text; the same
    /// name at two addresses is interned once all the same).
    attr: FxHashMap<usize, u32>,
    /// The text ids of `__class__` and `__dict__` (asked for per object), `u32::MAX` until
    /// first used.
    class_attr: u32,
    dict_attr: u32,
    /// What the snapshot may keep of the program's strings (dict keys, attribute and variable
    /// names): everything (`All`), name-like ones (`Names`), or only module globals' names
    /// (`None`).
    policy: StringPolicy,
    /// The dict being named is a module's `__dict__` (its keys are global names).
    in_module_dict: bool,
    /// `__dict__` addresses of the modules of the capture.
    module_dicts: rustc_hash::FxHashSet<usize>,
    str_type: usize,
    int_type: usize,
    float_type: usize,
    bool_type: usize,
    bytes_type: usize,
    tuple_type: usize,
    none: usize,
}

const MAX_KEY_LEN: isize = 200;

impl<'a> Namer<'a> {
    fn attr_id(&mut self, name: &'static str) -> u32 {
        let key = name.as_ptr() as usize;
        if let Some(&i) = self.attr.get(&key) {
            return i;
        }
        let i = self.b.intern(name);
        self.attr.insert(key, i);
        i
    }

    fn class_attr(&mut self) -> u32 {
        if self.class_attr == u32::MAX {
            self.class_attr = self.attr_id("__class__");
        }
        self.class_attr
    }

    fn dict_attr(&mut self) -> u32 {
        if self.dict_attr == u32::MAX {
            self.dict_attr = self.attr_id("__dict__");
        }
        self.dict_attr
    }

    /// The repr of a key that can be written as a literal, else `None`.
    ///
    /// # Safety
    /// `k` is alive and the GIL held.
    unsafe fn literal(&self, k: *mut ffi::PyObject, depth: u32) -> Option<String> {
        let t = ffi::Py_TYPE(k) as usize;
        if k as usize == self.none {
            return Some("None".into());
        }
        // Bytes contents are never kept; str keys as the string policy allows.
        if t == self.bytes_type {
            return None;
        }
        if t == self.str_type {
            if ffi::PyObject_Size(k) > MAX_KEY_LEN {
                ffi::PyErr_Clear();
                return None;
            }
            if self.policy != StringPolicy::All {
                let text = str_text(&Bound::from_borrowed_ptr(self.py, k))?;
                // A name-like string is an ASCII identifier: its repr is the text in quotes.
                return self.name_allowed(&text).then(|| format!("'{text}'"));
            }
        }
        let simple =
            t == self.str_type || t == self.float_type || t == self.bool_type || t == self.int_type;
        if t == self.int_type {
            let mut buf = [0u8; 20];
            return Some(decimal(int_value(k)?, &mut buf).to_string());
        }
        if simple {
            let r = ffi::PyObject_Repr(k);
            if r.is_null() {
                ffi::PyErr_Clear();
                return None;
            }
            let s = temp_text(r);
            ffi::Py_DecRef(r);
            return s;
        }
        if t == self.tuple_type && depth == 0 {
            let n = ffi::PyTuple_Size(k);
            if !(0..=4).contains(&n) {
                ffi::PyErr_Clear();
                return None;
            }
            let mut parts = Vec::with_capacity(n as usize);
            for i in 0..n {
                let item = ffi::PyTuple_GetItem(k, i);
                if item.is_null() {
                    ffi::PyErr_Clear();
                    return None;
                }
                parts.push(self.literal(item, depth + 1)?);
            }
            return Some(match parts.len() {
                1 => format!("({},)", parts[0]),
                _ => format!("({})", parts.join(", ")),
            });
        }
        None
    }

    /// May a name taken from the program's strings (a dict key, an attribute or variable
    /// name) be kept under the string policy?
    fn name_allowed(&self, name: &str) -> bool {
        match self.policy {
            StringPolicy::All => true,
            StringPolicy::Names => is_name_like(name),
            StringPolicy::None => self.in_module_dict && is_name_like(name),
        }
    }

    /// Text id of a variable name from a code object (a closure's free variable, a frame's
    /// local), `u32::MAX` when the policy does not keep it.
    fn code_name(&mut self, n: &Bound<'_, PyAny>) -> u32 {
        match str_text(n) {
            Some(t) if self.policy != StringPolicy::None && self.name_allowed(&t) => {
                self.b.intern(&t)
            }
            _ => u32::MAX,
        }
    }

    /// The name of a dict key as pushed: an exact int's value when the names are written as
    /// the file codes them (no text is interned for it: see
    /// [`EdgeNamesBuilder::push_int_key`]), else its text id ([`Namer::key`]).
    ///
    /// # Safety
    /// `k` is a live object; the GIL is held.
    unsafe fn dict_key(&mut self, k: *mut ffi::PyObject) -> Key {
        if self.b.is_encoding() && ffi::Py_TYPE(k) as usize == self.int_type {
            if let Some(v) = int_value(k) {
                return Key::Int(v);
            }
        }
        Key::Text(self.key(k))
    }

    /// Push the name of an edge to a dict's value (`object`: to its key object).
    fn push_key(&mut self, key: Key, object: bool) {
        match key {
            Key::Int(v) => self.b.push_int_key(object, v),
            Key::Text(id) => {
                let kind = if object {
                    EdgeKind::DictKeyObject
                } else {
                    EdgeKind::DictKey
                };
                self.b.push_raw(kind as u8, id)
            }
        }
    }

    /// Text id of a dict key: its literal repr or a `<Type>` placeholder.
    unsafe fn key(&mut self, k: *mut ffi::PyObject) -> u32 {
        // Exact ints (a cache keyed by ids or counters: a million distinct keys) are written
        // on the stack and interned, without a cache entry: each is a different object.
        if ffi::Py_TYPE(k) as usize == self.int_type {
            if let Some(v) = int_value(k) {
                let mut buf = [0u8; 20];
                return self.b.intern(decimal(v, &mut buf));
            }
        }
        // Under `none`, a module's keys are kept (global names) and others are not: not cached.
        let cache = !(self.policy == StringPolicy::None && self.in_module_dict);
        if let Some(&i) = self.key_text.get(&(k as usize)).filter(|_| cache) {
            return i;
        }
        let text = match self.literal(k, 0) {
            Some(s) => s,
            None => {
                let t = ffi::Py_TYPE(k) as usize;
                match self.type_names.get(&t) {
                    Some(n) => format!("<{n}>"),
                    None => "<object>".to_string(),
                }
            }
        };
        let i = self.b.intern(&text);
        if cache {
            self.key_text.insert(k as usize, i);
        }
        i
    }

    /// The facts of a type (computed once per type id).
    fn type_namer(&mut self, tid: TypeId, tp: *mut ffi::PyTypeObject) -> &TypeNamer {
        let i = tid as usize;
        if self.types.len() <= i {
            self.types.resize_with(i + 1, || None);
        }
        if self.types[i].is_none() {
            let t = self.build_type(tp);
            self.types[i] = Some(t);
        }
        self.types[i].as_ref().expect("just set")
    }

    fn build_type(&mut self, tpp: *mut ffi::PyTypeObject) -> TypeNamer {
        let py = self.py;
        // SAFETY: tp is the type of a live object, so alive; the GIL is held.
        let tp = unsafe { Bound::from_borrowed_ptr(py, tpp as *mut ffi::PyObject) };
        let tflags = unsafe { ffi::PyType_GetFlags(tpp) };
        let heap = tflags & ffi::Py_TPFLAGS_HEAPTYPE != 0;
        let basicsize = self.env.get_isize(&self.env.basicsize, &tp).max(0) as usize;
        let itemsize = self.env.get_isize(&self.env.itemsize, &tp).max(0) as usize;
        // Members of every class of the MRO (a subclass's layout extends its bases').
        let mut members: Vec<(usize, u32)> = Vec::new();
        let mut by_name: Vec<(String, usize)> = Vec::new();
        let mro: Vec<Bound<'_, PyAny>> = Env::get(&self.env.mro, &tp)
            .and_then(|m| m.cast_into::<pyo3::types::PyTuple>().ok())
            .map(|t| t.iter().collect())
            .unwrap_or_default();
        for c in &mro {
            // SAFETY: c is a live type (held by the MRO tuple); tp_members of a type is a
            // static or type-owned array ending with a NULL name.
            unsafe {
                if ffi::PyType_Check(c.as_ptr()) == 0 {
                    continue;
                }
                let tp = c.as_ptr() as *mut ffi::PyTypeObject;
                for (off, name) in crate::traverse::object_members(tp) {
                    if off as usize + WORD > basicsize {
                        continue;
                    }
                    let name = std::ffi::CStr::from_ptr(name)
                        .to_string_lossy()
                        .into_owned();
                    if members.iter().any(|&(o, _)| o == off as usize) {
                        continue;
                    }
                    by_name.push((name.clone(), off as usize));
                    let id = self.b.intern(&name);
                    members.push((off as usize, id));
                }
            }
        }
        let managed = tflags & TPFLAGS_MANAGED_DICT != 0;
        let dict = if managed && self.env.layout.is_some() {
            DictAt::Managed
        } else if managed {
            DictAt::None
        } else {
            match self.env.get_isize(&self.env.dictoffset, &tp) {
                0 => DictAt::None,
                o if o > 0 && (o as usize) + WORD <= basicsize => DictAt::Offset(o),
                o if o < 0 => DictAt::Offset(o),
                _ => DictAt::None,
            }
        };
        let keys = if managed && heap {
            self.shared_keys(&tp)
        } else {
            None
        };
        let inline_values = tflags & TPFLAGS_INLINE_VALUES != 0
            && matches!(
                self.env.layout,
                Some(DictLayout {
                    managed: Managed::Inline313,
                    ..
                })
            )
            && basicsize == 2 * WORD;
        let addr = tpp as usize;
        // SAFETY: live types.
        let sub = |other: *mut ffi::PyTypeObject| unsafe { ffi::PyType_IsSubtype(tpp, other) != 0 };
        let base = unsafe {
            if addr == self.env.deque {
                Base::Deque
            } else if addr == self.env.cell && self.env.cell_ok {
                Base::Cell
            } else if addr == self.env.frame && self.env.minor == 10 && itemsize == WORD {
                Base::Frame310
            } else if addr == self.env.function {
                Base::Function
            } else if addr == self.env.builtin_method {
                Base::BuiltinMethod
            } else if sub(&raw mut ffi::PyList_Type) {
                Base::List
            } else if sub(&raw mut ffi::PyTuple_Type) {
                Base::Tuple
            } else if sub(&raw mut ffi::PyDict_Type) {
                Base::Dict
            } else if sub(&raw mut ffi::PySet_Type) || sub(&raw mut ffi::PyFrozenSet_Type) {
                Base::Set
            } else if sub(ffi::PyExc_BaseException as *mut ffi::PyTypeObject) {
                Base::Exception
            } else if sub(&raw mut ffi::PyType_Type) {
                Base::Type
            } else {
                Base::Plain
            }
        };
        let offset_of = |n: &str| by_name.iter().find(|m| m.0 == n).map(|m| m.1);
        let func_globals = match (
            base,
            offset_of("__globals__"),
            offset_of("__builtins__"),
            offset_of("__closure__"),
            offset_of("__doc__"),
        ) {
            (Base::Function, Some(g), Some(b), Some(c), Some(d))
                if b == g + WORD
                    && c == g + FUNC_CLOSURE * WORD
                    && d == g + (FUNC_CLOSURE + 1) * WORD =>
            {
                Some(g)
            }
            _ => None,
        };
        TypeNamer {
            heap,
            members,
            dict,
            basicsize,
            itemsize,
            keys,
            inline_values,
            base,
            func_globals,
        }
    }

    /// The shared keys of a heap type with a managed dict, after checking the layout: the
    /// words before `ht_cached_keys` must be the class's `__qualname__` and `__name__`, and
    /// the keys must look like split keys.
    fn shared_keys(&mut self, tp: &Bound<'_, PyAny>) -> Option<SharedKeys> {
        let layout = self.env.layout?;
        let name = Env::get(&self.env.type_name, tp)?;
        let qualname = Env::get(&self.env.type_qualname, tp)?;
        let base = tp.as_ptr() as *const u8;
        // SAFETY: tp is a live heap type, whose object is `heap_type_size` bytes (checked
        // against type.__basicsize__ when the layout was chosen); the reads are inside it.
        let keys = unsafe {
            if read_word(base.add(layout.cached_keys - WORD)) != qualname.as_ptr() as usize
                || read_word(base.add(layout.cached_keys - 3 * WORD)) != name.as_ptr() as usize
            {
                return None;
            }
            read_word(base.add(layout.cached_keys))
        };
        if keys == 0 {
            return None;
        }
        let k = keys as *const u8;
        // SAFETY: the class's cached keys, found at the checked offset, are a live
        // PyDictKeysObject held by the class; every read below is bounds checked against its
        // own header first.
        unsafe {
            let log2_size = *k.add(DK_LOG2_SIZE);
            let log2_index_bytes = *k.add(DK_LOG2_INDEX_BYTES);
            let kind = *k.add(DK_KIND);
            let usable = read_word(k.add(DK_USABLE)) as isize;
            let nentries = read_word(k.add(DK_NENTRIES)) as isize;
            if kind != DICT_KEYS_SPLIT
                || !(3..=7).contains(&log2_size)
                || log2_index_bytes < log2_size
                || log2_index_bytes > log2_size + 3
                || !(0..=SHARED_KEYS_MAX_SIZE).contains(&nentries)
                || usable < 0
                || nentries + usable > (2 << log2_size) / 3
            {
                return None;
            }
            let entries = k.add(DK_INDICES + (1usize << log2_index_bytes));
            let mut names = Vec::with_capacity(nentries as usize);
            for i in 0..nentries as usize {
                let key = read_word(entries.add(i * UNICODE_ENTRY)) as *mut ffi::PyObject;
                if key.is_null() || ffi::PyUnicode_CheckExact(key) == 0 {
                    names.push(u32::MAX);
                    continue;
                }
                let key = Bound::from_borrowed_ptr(self.py, key);
                match str_text(&key) {
                    Some(t) if self.name_allowed(&t) => names.push(self.b.intern(&t)),
                    _ => names.push(u32::MAX),
                }
            }
            Some(SharedKeys { addr: keys, names })
        }
    }
}

type Cand = (usize, u8, u32);

/// A dict key's name: a text id, or an int's value.
#[derive(Clone, Copy)]
enum Key {
    Text(u32),
    Int(i64),
}

/// Name the edges of every node of a capture: into `encoding` (an
/// [`EdgeNamesBuilder::encoding`] for the capture's references) to be packed as the file
/// codes them, else into a plain builder.
///
/// `progress` reports the phase `names`, between objects (with the collector disabled again
/// after each call).
pub fn name_edges(
    py: Python<'_>,
    g: &Graph,
    o: &Objects,
    policy: StringPolicy,
    encoding: Option<EdgeNamesBuilder>,
    progress: &mut Reporter<'_>,
) -> PyResult<BuiltNames> {
    let env = Env::new(py)?;
    let (_, targets) = g.referent_arrays();
    let mut n = Namer {
        py,
        env,
        b: encoding.unwrap_or_else(|| EdgeNamesBuilder::with_capacity(targets.len())),
        types: Vec::new(),
        type_names: g
            .type_table()
            .iter()
            .map(|t| (t.addr as usize, t.short_name.clone()))
            .collect(),
        key_text: Default::default(),
        policy,
        in_module_dict: false,
        module_dicts: Default::default(),
        cells: AddrIndex::with_capacity(0),
        freevars: Default::default(),
        attr: Default::default(),
        class_attr: u32::MAX,
        dict_attr: u32::MAX,
        str_type: &raw mut ffi::PyUnicode_Type as usize,
        int_type: &raw mut ffi::PyLong_Type as usize,
        float_type: &raw mut ffi::PyFloat_Type as usize,
        bool_type: &raw mut ffi::PyBool_Type as usize,
        bytes_type: &raw mut ffi::PyBytes_Type as usize,
        tuple_type: &raw mut ffi::PyTuple_Type as usize,
        // SAFETY: Py_None is a static object.
        none: unsafe { ffi::Py_None() } as usize,
    };
    // No finalizer may run while objects are read (temporaries are allocated for key reprs).
    // SAFETY: plain C calls with the GIL held.
    let was_enabled = unsafe { ffi::PyGC_Disable() };
    let result = n.run(g, o, progress);
    if was_enabled != 0 {
        unsafe { ffi::PyGC_Enable() };
    }
    result?;
    progress.end("names", g.len() as u64)?;
    Ok(n.b.build())
}

impl Namer<'_> {
    fn run(&mut self, g: &Graph, o: &Objects, progress: &mut Reporter<'_>) -> PyResult<()> {
        let py = self.py;
        let func_tid = g
            .type_table()
            .iter()
            .position(|t| t.addr as usize == self.env.function);
        // The modules' dicts: under the `none` policy only their keys (global names) are kept.
        for v in 0..g.len() as NodeId {
            if g.has(v, refgraph_core::graph::flags::MODULE) {
                // SAFETY: a live module held by the capture; PyModule_GetDict runs no code.
                unsafe {
                    let d = ffi::PyModule_GetDict(o.ptr(py, v as usize));
                    if d.is_null() {
                        ffi::PyErr_Clear();
                    } else {
                        self.module_dicts.insert(d as usize);
                    }
                }
            }
        }
        // Closures first: a cell may come before its function. The functions are read all
        // over memory: each one's fields a few functions ahead are prefetched.
        if let Some(ft) = func_tid {
            let funcs: Vec<NodeId> = (0..g.len() as NodeId)
                .filter(|&v| g.type_of(v) as usize == ft)
                .collect();
            if let Some(&f) = funcs.first() {
                // SAFETY: a live function held by the capture.
                unsafe { self.type_namer(ft as TypeId, ffi::Py_TYPE(o.ptr(py, f as usize))) };
            }
            let fields = self.types[ft]
                .as_ref()
                .and_then(|t| t.func_globals)
                .map_or(0, |g| g + FUNC_CODE * WORD);
            const AHEAD: usize = 8;
            let mut cells = Vec::new();
            for (i, &v) in funcs.iter().enumerate() {
                if let Some(&a) = funcs.get(i + AHEAD) {
                    let a = o.ptr(py, a as usize);
                    crate::gcwalk::prefetch(a);
                    crate::gcwalk::prefetch(a.wrapping_byte_add(fields));
                }
                // SAFETY: a live function held by the capture.
                unsafe { self.closure_names(o.ptr(py, v as usize), ft as TypeId, &mut cells) };
            }
            // Indexed at once (each insert is a miss at a random place: the slots of those
            // a few ahead are prefetched), in a table of the right size. The first name
            // given to a cell stays.
            self.cells = AddrIndex::with_capacity(cells.len() * 2);
            const SLOTS_AHEAD: usize = 16;
            for (i, &(cell, id)) in cells.iter().enumerate() {
                if let Some(&(a, _)) = cells.get(i + SLOTS_AHEAD) {
                    self.cells.prefetch(a);
                }
                self.cells.insert(cell, id);
            }
        }
        // Module dicts are exact dicts: only those are looked up.
        let dict_tid = g
            .type_table()
            .iter()
            .position(|t| t.addr as usize == &raw mut ffi::PyDict_Type as usize)
            .map(|t| t as TypeId);
        // Cells are looked up in `cells` (when the layout is known: `Base::Cell`).
        let cell_tid = g
            .type_table()
            .iter()
            .position(|t| t.addr as usize == self.env.cell)
            .filter(|_| self.env.cell_ok && !self.cells.is_empty())
            .map(|t| t as TypeId);
        let mut cands: Vec<Cand> = Vec::new();
        let mut used: Vec<bool> = Vec::new();
        // Referents are compared by address: the capture's pointers are the nodes' addresses
        // (the graph's own column may already be packed away by the second thread).
        const AHEAD: u32 = 4;
        let total = g.len() as u64;
        progress.start("names", total)?;
        for v in 0..g.len() as NodeId {
            if progress.tick("names", v as u64, total)? {
                // The callback may have enabled the collector: no finalizer may run below.
                // SAFETY: a plain C call with the GIL held.
                unsafe { ffi::PyGC_Disable() };
            }
            // The referents' addresses of a node a few ahead are random reads: prefetched.
            if v + AHEAD < g.len() as NodeId {
                let ahead = g.referents(v + AHEAD);
                if !ahead.is_empty() {
                    // Its header too (it is read below only for nodes with referents).
                    let a = o.ptr(py, (v + AHEAD) as usize);
                    crate::gcwalk::prefetch(a);
                    if cell_tid.is_some() && Some(g.type_of(v + AHEAD)) == cell_tid {
                        self.cells.prefetch(a as u64);
                    }
                }
                for &r in ahead {
                    o.prefetch_addr(r);
                }
            }
            let refs = g.referents(v);
            if refs.is_empty() {
                continue;
            }
            let p = o.ptr(py, v as usize);
            self.in_module_dict = Some(g.type_of(v)) == dict_tid
                && !self.module_dicts.is_empty()
                && self.module_dicts.contains(&(p as usize));
            // SAFETY: p is alive (held by the capture) and the GIL is held.
            if unsafe { self.exact_container(p, o, refs) } {
                continue;
            }
            cands.clear();
            // SAFETY: as above.
            let fallback = unsafe { self.candidates(p, g.type_of(v), &mut cands) };
            self.assign(o, refs, &cands, &mut used, fallback);
        }
        Ok(())
    }

    /// Exact lists, tuples and dicts, named in step with their traversal order without a
    /// candidate list (a million-item container would otherwise need one as large). False,
    /// with nothing pushed, when the object is not one or its referents do not line up.
    ///
    /// # Safety
    /// `p` is alive; the GIL is held.
    unsafe fn exact_container(
        &mut self,
        p: *mut ffi::PyObject,
        o: &Objects,
        refs: &[NodeId],
    ) -> bool {
        let start = self.b.mark();
        let ok = if ffi::PyList_CheckExact(p) != 0 || ffi::PyTuple_CheckExact(p) != 0 {
            // Both are traversed from the last item.
            let list = ffi::PyList_CheckExact(p) != 0;
            let n = if list {
                ffi::PyList_Size(p)
            } else {
                ffi::PyTuple_Size(p)
            };
            let mut i = n;
            let mut ok = true;
            for &r in refs {
                let a = o.addr(r);
                // Items that are not referents (dropped untracked objects) are skipped.
                loop {
                    i -= 1;
                    if i < 0 {
                        ok = false;
                        break;
                    }
                    let item = if list {
                        ffi::PyList_GetItem(p, i)
                    } else {
                        ffi::PyTuple_GetItem(p, i)
                    };
                    if item as usize == a {
                        self.b.push_raw(EdgeKind::Index as u8, i as u32);
                        break;
                    }
                }
                if !ok {
                    break;
                }
            }
            ok
        } else if ffi::PyDict_CheckExact(p) != 0 {
            // Each entry's value, then (for keys other than str) its key.
            let mut pos: ffi::Py_ssize_t = 0;
            let mut k: *mut ffi::PyObject = std::ptr::null_mut();
            let mut val: *mut ffi::PyObject = std::ptr::null_mut();
            let mut have = false;
            let mut key = Key::Text(0);
            let mut ok = true;
            for &r in refs {
                let a = o.addr(r);
                if have && k as usize == a && val as usize != a {
                    self.push_key(key, true);
                    have = false;
                    continue;
                }
                loop {
                    if ffi::PyDict_Next(p, &mut pos, &mut k, &mut val) == 0 {
                        ok = false;
                        break;
                    }
                    if val as usize == a {
                        key = self.dict_key(k);
                        have = true;
                        self.push_key(key, false);
                        break;
                    }
                }
                if !ok {
                    break;
                }
            }
            ok
        } else {
            return false;
        };
        ffi::PyErr_Clear();
        if !ok {
            self.b.truncate(start);
        }
        ok
    }

    /// Push the address and free variable name of each cell of a function's closure to `out`.
    ///
    /// # Safety
    /// `f` is a live function of type id `tid`; the GIL is held.
    unsafe fn closure_names(
        &mut self,
        f: *mut ffi::PyObject,
        tid: TypeId,
        out: &mut Vec<(u64, u32)>,
    ) {
        let py = self.py;
        self.type_namer(tid, ffi::Py_TYPE(f));
        let g = self.types[tid as usize]
            .as_ref()
            .and_then(|t| t.func_globals);
        // The function's own fields (checked layout), else its getters.
        let (closure, code) = match g {
            Some(g) => {
                let at = |w: usize| read_word((f as *const u8).add(g + w * WORD));
                (
                    at(FUNC_CLOSURE) as *mut ffi::PyObject,
                    at(FUNC_CODE) as *mut ffi::PyObject,
                )
            }
            None => {
                let fb = Bound::from_borrowed_ptr(py, f);
                match (fb.getattr("__closure__"), fb.getattr("__code__")) {
                    // Both stay alive: the function holds them.
                    (Ok(c), Ok(k)) if !c.is_none() => (c.as_ptr(), k.as_ptr()),
                    _ => return,
                }
            }
        };
        if closure.is_null() || code.is_null() || ffi::PyTuple_Check(closure) == 0 {
            return;
        }
        if !self.freevars.contains_key(&(code as usize)) {
            let code_b = Bound::from_borrowed_ptr(py, code);
            let ids: Vec<u32> = code_b
                .getattr("co_freevars")
                .ok()
                .and_then(|t| t.cast_into::<pyo3::types::PyTuple>().ok())
                .map(|t| t.iter().map(|n| self.code_name(&n)).collect())
                .unwrap_or_default();
            self.freevars.insert(code as usize, ids);
        }
        let names = &self.freevars[&(code as usize)];
        let n = ffi::PyTuple_Size(closure);
        for (i, &id) in names.iter().enumerate().take(n.max(0) as usize) {
            let cell = ffi::PyTuple_GetItem(closure, i as ffi::Py_ssize_t);
            if !cell.is_null() && id != u32::MAX {
                out.push((cell as u64, id));
            }
        }
        ffi::PyErr_Clear();
    }

    /// The fast locals of a 3.10 frame, named by its code's `co_varnames`, `co_cellvars` and
    /// `co_freevars` (`f_localsplus` is the last field: it starts one word before
    /// `frame.__basicsize__` and holds `ob_size` words).
    ///
    /// # Safety
    /// `p` is a live frame of type id `tid`; the GIL is held.
    unsafe fn frame_locals(
        &mut self,
        p: *mut ffi::PyObject,
        tid: TypeId,
        basicsize: usize,
        out: &mut Vec<Cand>,
    ) {
        let t = self.types[tid as usize].as_ref().expect("built");
        let Some(&(code_off, _)) = t
            .members
            .iter()
            .find(|&&(_, id)| self.b.text(id) == "f_code")
        else {
            return;
        };
        let code = read_word((p as *const u8).add(code_off)) as *mut ffi::PyObject;
        if code.is_null() {
            return;
        }
        let names = match self.freevars.get(&(code as usize | 1)) {
            Some(n) => n.clone(),
            None => {
                // SAFETY: the frame's own f_code field (a member): a live code object.
                let c = Bound::from_borrowed_ptr(self.py, code);
                let mut ids = Vec::new();
                for attr in ["co_varnames", "co_cellvars", "co_freevars"] {
                    let Some(t) = c
                        .getattr(attr)
                        .ok()
                        .and_then(|t| t.cast_into::<pyo3::types::PyTuple>().ok())
                    else {
                        ids.clear();
                        break;
                    };
                    for n in t.iter() {
                        ids.push(self.code_name(&n));
                    }
                }
                // Keyed by the code's address with the low bit set (apart from co_freevars).
                self.freevars.insert(code as usize | 1, ids.clone());
                ids
            }
        };
        let n = (ffi::Py_SIZE(p).max(0) as usize).min(names.len());
        let locals = (p as *const u8).add(basicsize - WORD);
        for (i, &id) in names.iter().enumerate().take(n) {
            let v = read_word(locals.add(i * WORD));
            if v != 0 && id != u32::MAX {
                out.push((v, EdgeKind::Local as u8, id));
            }
        }
    }

    /// Fill `out` with the object's named pointers, in the order `tp_traverse` most likely
    /// visits them. Returns the name of referents no candidate explains (set members, deque
    /// items), if the type has one.
    ///
    /// # Safety
    /// `p` is a live object of type id `tid`; the GIL is held; the collector is disabled.
    unsafe fn candidates(
        &mut self,
        p: *mut ffi::PyObject,
        tid: TypeId,
        out: &mut Vec<Cand>,
    ) -> Fallback {
        let py = self.py;
        let tp = ffi::Py_TYPE(p);
        self.type_namer(tid, tp);
        let t = self.types[tid as usize].as_ref().expect("built above");
        let attr = EdgeKind::Attr as u8;
        let base_ptr = p as *const u8;
        let (heap, base, dict, basicsize, itemsize, inline_values, func_globals) = (
            t.heap,
            t.base,
            t.dict,
            t.basicsize,
            t.itemsize,
            t.inline_values,
            t.func_globals,
        );
        if heap {
            let id = self.class_attr();
            out.push((tp as usize, attr, id));
        }
        let t = self.types[tid as usize].as_ref().expect("built above");
        for &(off, id) in &t.members {
            let v = read_word(base_ptr.add(off));
            if v != 0 {
                out.push((v, attr, id));
            }
        }
        // The instance dict and inline values.
        match dict {
            DictAt::None => {}
            DictAt::Offset(off) => {
                let at = if off > 0 {
                    Some(off as usize)
                } else {
                    // _PyObject_VAR_SIZE(tp, |ob_size|) + tp_dictoffset, word aligned.
                    let n = ffi::Py_SIZE(p).unsigned_abs();
                    let size = (basicsize + n * itemsize).div_ceil(WORD) * WORD;
                    let at = size as isize + off;
                    (at >= 2 * WORD as isize && at as usize + WORD <= size).then_some(at as usize)
                };
                if let Some(at) = at {
                    let d = read_word(base_ptr.add(at));
                    if d != 0 {
                        let id = self.dict_attr();
                        out.push((d, attr, id));
                    }
                }
            }
            DictAt::Managed => self.managed(p, tid, inline_values, out),
        }
        let kind_index = EdgeKind::Index as u8;
        match base {
            Base::List => {
                // list_traverse visits the items from the last.
                let n = ffi::PyList_Size(p);
                for i in (0..n.max(0)).rev() {
                    let item = ffi::PyList_GetItem(p, i);
                    if !item.is_null() {
                        out.push((item as usize, kind_index, i as u32));
                    }
                }
                ffi::PyErr_Clear();
            }
            Base::Tuple => {
                // tupletraverse visits the items from the last.
                let n = ffi::PyTuple_Size(p);
                for i in (0..n.max(0)).rev() {
                    let item = ffi::PyTuple_GetItem(p, i);
                    if !item.is_null() {
                        out.push((item as usize, kind_index, i as u32));
                    }
                }
                ffi::PyErr_Clear();
            }
            Base::Dict => {
                let mut pos: ffi::Py_ssize_t = 0;
                let mut k: *mut ffi::PyObject = std::ptr::null_mut();
                let mut val: *mut ffi::PyObject = std::ptr::null_mut();
                while ffi::PyDict_Next(p, &mut pos, &mut k, &mut val) != 0 {
                    let id = self.key(k);
                    out.push((val as usize, EdgeKind::DictKey as u8, id));
                    out.push((k as usize, EdgeKind::DictKeyObject as u8, id));
                }
            }
            Base::Set => return Fallback::SetMember,
            Base::Deque => return Fallback::Position,
            Base::Cell => {
                let v = read_word(base_ptr.add(CELL_REF));
                if v != 0 {
                    match self.cells.get(p as u64) {
                        Some(id) => out.push((v, EdgeKind::Cell as u8, id)),
                        None => {
                            let id = self.attr_id("cell_contents");
                            out.push((v, attr, id));
                        }
                    }
                }
            }
            Base::Frame310 => self.frame_locals(p, tid, basicsize, out),
            Base::Function => match func_globals {
                Some(g) => {
                    for (name, words) in FUNC_FIELDS {
                        let v = read_word(base_ptr.add(g + words * WORD));
                        if v != 0 {
                            let id = self.attr_id(name);
                            out.push((v, attr, id));
                        }
                    }
                }
                None => {
                    let f = Bound::from_borrowed_ptr(py, p);
                    for (name, _) in FUNC_FIELDS {
                        if let Ok(v) = f.getattr(name) {
                            if !v.is_none() {
                                let id = self.attr_id(name);
                                out.push((v.as_ptr() as usize, attr, id));
                            }
                        }
                    }
                }
            },
            Base::BuiltinMethod => {
                let f = Bound::from_borrowed_ptr(py, p);
                if let Ok(v) = f.getattr("__self__") {
                    let id = self.attr_id("__self__");
                    out.push((v.as_ptr() as usize, attr, id));
                }
            }
            Base::Exception => {
                for (name, get) in [
                    (
                        "__traceback__",
                        ffi::PyException_GetTraceback as unsafe extern "C" fn(_) -> _,
                    ),
                    ("__cause__", ffi::PyException_GetCause),
                    ("__context__", ffi::PyException_GetContext),
                ] {
                    let v = get(p);
                    if !v.is_null() {
                        let id = self.attr_id(name);
                        out.push((v as usize, attr, id));
                        ffi::Py_DecRef(v);
                    }
                }
                let e = Bound::from_borrowed_ptr(py, p);
                if let Some(a) = Env::get(&self.env.exc_args, &e) {
                    let id = self.attr_id("args");
                    out.push((a.as_ptr() as usize, attr, id));
                }
            }
            Base::Type => {
                // `__mro__` is a member up to 3.12, a getter from 3.13.
                let t = Bound::from_borrowed_ptr(py, p);
                if let Some(m) = Env::get(&self.env.mro, &t) {
                    let id = self.attr_id("__mro__");
                    out.push((m.as_ptr() as usize, attr, id));
                }
                if let Some(b) = Env::get(&self.env.bases, &t) {
                    let id = self.attr_id("__bases__");
                    out.push((b.as_ptr() as usize, attr, id));
                }
            }
            Base::Plain => {}
        }
        Fallback::None
    }

    /// Candidates of a managed dict: the dict itself, or the inline values named by the
    /// class's shared keys.
    unsafe fn managed(
        &mut self,
        p: *mut ffi::PyObject,
        tid: TypeId,
        inline: bool,
        out: &mut Vec<Cand>,
    ) {
        let Some(layout) = self.env.layout else {
            return;
        };
        let attr = EdgeKind::Attr as u8;
        let at = |words: usize| (p as *const u8).sub(words * WORD);
        let (dict, values) = match layout.managed {
            Managed::Split311 => (read_word(at(3)), read_word(at(4))),
            Managed::Tagged312 => {
                let w = read_word(at(3));
                if w & 1 == 1 {
                    // `_PyDictOrValues_GetValues`: stored as `values - 1`.
                    (0, w + 1)
                } else {
                    (w, 0)
                }
            }
            Managed::Inline313 => {
                let v = if inline {
                    (p as *const u8).add(2 * WORD) as usize
                } else {
                    0
                };
                (read_word(at(3)), v)
            }
        };
        if dict != 0 {
            let id = self.dict_attr();
            out.push((dict, attr, id));
        }
        if values == 0 {
            return;
        }
        let t = self.types[tid as usize].as_ref().expect("built");
        let Some(keys) = &t.keys else {
            return;
        };
        let names = &keys.names;
        let _ = keys.addr;
        let vp = values as *const u8;
        match layout.managed {
            Managed::Split311 | Managed::Tagged312 => {
                // Only the slots listed in the insertion order were ever written.
                let prefix = *vp.sub(1) as usize;
                let used = *vp.sub(2) as usize;
                if used + 2 > prefix || prefix > 64 {
                    return;
                }
                for j in 0..used {
                    let ix = *vp.sub(3 + j) as usize;
                    let Some(&id) = names.get(ix) else {
                        continue;
                    };
                    let v = read_word(vp.add(ix * WORD));
                    if v != 0 && id != u32::MAX {
                        out.push((v, attr, id));
                    }
                }
            }
            Managed::Inline313 => {
                let capacity = *vp as usize;
                let valid = *vp.add(3);
                if valid == 0 {
                    return;
                }
                for (ix, &id) in names.iter().enumerate().take(capacity) {
                    let v = read_word(vp.add(WORD + ix * WORD));
                    if v != 0 && id != u32::MAX {
                        out.push((v, attr, id));
                    }
                }
            }
        }
    }

    /// Match the referents of a node with its candidates by pointer, in order, and push one
    /// name per referent.
    fn assign(
        &mut self,
        o: &Objects,
        refs: &[NodeId],
        cands: &[Cand],
        used: &mut Vec<bool>,
        fallback: Fallback,
    ) {
        used.clear();
        used.resize(cands.len(), false);
        let mut cursor = 0usize;
        let mut index: Option<FxHashMap<usize, Vec<u32>>> = None;
        // Items of a deque: the referents no candidate explains, in order (3.13's deque, a heap
        // type, visits its type first).
        let mut position = 0u32;
        for &r in refs {
            let a = o.addr(r);
            let mut found = None;
            for step in 0..2 {
                let j = cursor + step;
                if j < cands.len() && !used[j] && cands[j].0 == a {
                    found = Some(j);
                    cursor = j + 1;
                    break;
                }
            }
            if found.is_none() && !cands.is_empty() {
                if cands.len() <= 16 {
                    found = (0..cands.len()).find(|&j| !used[j] && cands[j].0 == a);
                } else {
                    let idx = index.get_or_insert_with(|| {
                        let mut m: FxHashMap<usize, Vec<u32>> = Default::default();
                        for (j, c) in cands.iter().enumerate().rev() {
                            m.entry(c.0).or_default().push(j as u32);
                        }
                        m
                    });
                    if let Some(list) = idx.get_mut(&a) {
                        while let Some(j) = list.pop() {
                            if !used[j as usize] {
                                found = Some(j as usize);
                                break;
                            }
                        }
                    }
                }
            }
            match found {
                Some(j) => {
                    used[j] = true;
                    self.b.push_raw(cands[j].1, cands[j].2);
                }
                None => match fallback {
                    Fallback::SetMember => self.b.push_raw(EdgeKind::SetMember as u8, 0),
                    Fallback::Position => {
                        self.b.push_raw(EdgeKind::Index as u8, position);
                        position += 1;
                    }
                    Fallback::None => self.b.push_raw(0, 0),
                },
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Fallback {
    None,
    SetMember,
    Position,
}
