//! Everything refgraph knows about CPython that depends on the interpreter's version: one table
//! per supported minor version, read at run time for the interpreter that loaded the extension
//! (one abi3 wheel serves them all), and exposed to Python as `_refgraph.cpython_facts()`.
//!
//! Values checked against the headers of each version (64-bit builds, default, not
//! free-threaded):
//! * `Include/internal/pycore_gc.h`: `PyGC_Head` is two words (`_gc_next`, `_gc_prev`) placed
//!   just before the object; `struct gc_generation { PyGC_Head head; int threshold; int count; }`
//!   and `NUM_GENERATIONS 3` in a row in the runtime state, 3.10 to 3.13 (3.13.0 shipped without
//!   the incremental collector; 3.14 has it: other lists, other layout).
//! * `Include/object.h`: `Py_TPFLAGS_MANAGED_DICT (1 << 4)` from 3.11 (the dict and values
//!   pointers sit before the `PyGC_Head`), `Py_TPFLAGS_MANAGED_WEAKREF (1 << 3)` from 3.12; the
//!   pre-header `sys.getsizeof` adds for either is two words (`_PyType_PreHeaderSize`).
//! * Instance dicts, for the edge names of snapshots ([`DictLayout`]): `Include/cpython/object.h`
//!   (`PyHeapTypeObject`: `ht_cached_keys`), `Include/internal/pycore_object.h` (managed dict
//!   and values pointers, 3.13 inline values), `Include/internal/pycore_dict.h`
//!   (`PyDictKeysObject`, `PyDictUnicodeEntry`, `PyDictValues`), `Include/cpython/funcobject.h`
//!   (`_Py_COMMON_FIELDS`), `Include/descrobject.h` (`Py_RELATIVE_OFFSET`).
//! * `Include/object.h` (PEP 683): from 3.12, immortal objects report a reference count of
//!   `UINT_MAX` on 64-bit builds, and increments or decrements leave it unchanged.
//!
//! To add 3.14 (or any newer version): read those headers at that version's tag. 3.14 changes
//! the collector (incremental, with other lists: the direct walk in `gcwalk.rs` must stay off
//! until its lists are understood; it falls back to `gc.get_objects()` by itself), the immortal
//! count (`_Py_IMMORTAL_INITIAL_REFCNT`, `3 << 30`, and "immortal" is a bit test), and offers
//! `sys.remote_exec`. Add a [`Facts`] row, raise [`NEWEST`], run the whole suite on it (the gc
//! walk checks its layout against `gc.get_objects()` before first use, and
//! `tests/test_gcwalk.py` says whether it was used).

use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::os::raw::c_ulong;

/// Oldest and newest minor versions of CPython 3 whose facts are in [`FACTS`].
pub const OLDEST: u8 = 10;
pub const NEWEST: u8 = 13;

/// Size of `PyGC_Head` (two words: `_gc_next`, `_gc_prev`), 3.10 to 3.13.
pub const GC_HEAD: usize = 2 * std::mem::size_of::<usize>();
/// Size of `struct gc_generation`: a `PyGC_Head` and two C ints.
pub const GENERATION: usize = GC_HEAD + 2 * std::mem::size_of::<std::ffi::c_int>();
/// Number of generation lists the collector keeps, one after another.
pub const GENERATIONS: usize = 3;

/// `Py_TPFLAGS_MANAGED_DICT`: the instance dict (or inline values) pointers live before the object.
pub const TPFLAGS_MANAGED_DICT: c_ulong = 1 << 4;
/// `Py_TPFLAGS_MANAGED_WEAKREF`: the weakref list pointer lives before the object.
pub const TPFLAGS_MANAGED_WEAKREF: c_ulong = 1 << 3;

/// What one minor version needs.
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    pub minor: u8,
    /// Whether the collector's generation lists have the 3.10-3.13 layout ([`GENERATION`]).
    pub gc_lists: bool,
    /// Type flags whose instances carry a pre-header before their `PyGC_Head`.
    pub preheader_flags: c_ulong,
    /// Bytes of that pre-header (what `sys.getsizeof` adds for it).
    pub preheader_bytes: u64,
    /// Reference count reported by immortal objects (`sys.getrefcount`), if the version has them.
    pub immortal_refcount: Option<u64>,
    /// Where instance dicts and inline values live (3.11+; edge names of snapshots).
    pub dict_layout: Option<DictLayout>,
}

const IMMORTAL_UINT_MAX: u64 = u32::MAX as u64;

/// Where CPython keeps an instance's managed dict and inline values (3.11+), and where a heap
/// type keeps its shared keys. One table per minor version, from that version's headers
/// (`Include/cpython/object.h`: `PyHeapTypeObject`; `Include/internal/pycore_object.h`:
/// `_PyObject_ManagedDictPointer`, `_PyObject_ValuesPointer`, `_PyObject_DictOrValuesPointer`,
/// `_PyObject_InlineValues`; `Include/internal/pycore_dict.h`: `PyDictKeysObject`,
/// `PyDictUnicodeEntry`, `PyDictValues`), 64-bit, default (GIL) build.
#[derive(Clone, Copy, Debug)]
pub struct DictLayout {
    /// `sizeof(PyHeapTypeObject)` (= `type.__basicsize__`): checked at run time.
    pub heap_type_size: usize,
    /// `offsetof(PyHeapTypeObject, ht_cached_keys)`; `ht_qualname` is 8 before it and
    /// `ht_name` 24 before it (checked against the class's `__name__`/`__qualname__`).
    pub cached_keys: usize,
    pub managed: Managed,
}

#[derive(Clone, Copy, Debug)]
pub enum Managed {
    /// 3.11: `PyDictValues *` at `obj - 4 words`, the dict at `obj - 3 words`. Values are
    /// preceded by `[-1]` prefix size, `[-2]` used count, then the insertion order bytes.
    Split311,
    /// 3.12: a tagged word at `obj - 3 words`: the values pointer - 1 (odd), or the dict.
    /// Values as 3.11.
    Tagged312,
    /// 3.13: the dict at `obj - 3 words`; inline values right after the object header
    /// (`Py_TPFLAGS_INLINE_VALUES`): `capacity`, `size`, `embedded`, `valid` bytes, then the
    /// values from byte 8.
    Inline313,
}

/// `Py_TPFLAGS_INLINE_VALUES` (3.13+).
pub const TPFLAGS_INLINE_VALUES: c_ulong = 1 << 2;
/// `Py_RELATIVE_OFFSET` (3.12+): a member offset relative to the subclass's own data.
pub const PY_RELATIVE_OFFSET: std::ffi::c_int = 8;
/// `DICT_KEYS_SPLIT`.
pub const DICT_KEYS_SPLIT: u8 = 2;
/// `SHARED_KEYS_MAX_SIZE` (3.11–3.13).
pub const SHARED_KEYS_MAX_SIZE: isize = 30;
/// `PyDictKeysObject` field offsets (3.11–3.13, no free threading): `dk_log2_size`,
/// `dk_log2_index_bytes`, `dk_kind` bytes, `dk_usable`, `dk_nentries`, `dk_indices`.
pub const DK_LOG2_SIZE: usize = 8;
pub const DK_LOG2_INDEX_BYTES: usize = 9;
pub const DK_KIND: usize = 10;
pub const DK_USABLE: usize = 16;
pub const DK_NENTRIES: usize = 24;
pub const DK_INDICES: usize = 32;
/// `sizeof(PyDictUnicodeEntry)`: `me_key`, `me_value`.
pub const UNICODE_ENTRY: usize = 16;
/// `offsetof(PyCellObject, ob_ref)` (every version): checked with `cell.__basicsize__`.
pub const CELL_REF: usize = 16;

/// Python 3.11.
pub const LAYOUT_3_11: DictLayout = DictLayout {
    heap_type_size: 904,
    cached_keys: 872,
    managed: Managed::Split311,
};
/// Python 3.12.
pub const LAYOUT_3_12: DictLayout = DictLayout {
    heap_type_size: 920,
    cached_keys: 880,
    managed: Managed::Tagged312,
};
/// Python 3.13.
pub const LAYOUT_3_13: DictLayout = DictLayout {
    heap_type_size: 928,
    cached_keys: 880,
    managed: Managed::Inline313,
};

pub const FACTS: [Facts; (NEWEST - OLDEST + 1) as usize] = [
    Facts {
        minor: 10,
        gc_lists: true,
        preheader_flags: 0,
        preheader_bytes: 0,
        immortal_refcount: None,
        dict_layout: None,
    },
    Facts {
        minor: 11,
        gc_lists: true,
        preheader_flags: TPFLAGS_MANAGED_DICT,
        preheader_bytes: 2 * std::mem::size_of::<usize>() as u64,
        immortal_refcount: None,
        dict_layout: Some(LAYOUT_3_11),
    },
    Facts {
        minor: 12,
        gc_lists: true,
        preheader_flags: TPFLAGS_MANAGED_DICT | TPFLAGS_MANAGED_WEAKREF,
        preheader_bytes: 2 * std::mem::size_of::<usize>() as u64,
        immortal_refcount: Some(IMMORTAL_UINT_MAX),
        dict_layout: Some(LAYOUT_3_12),
    },
    Facts {
        minor: 13,
        gc_lists: true,
        preheader_flags: TPFLAGS_MANAGED_DICT | TPFLAGS_MANAGED_WEAKREF,
        preheader_bytes: 2 * std::mem::size_of::<usize>() as u64,
        immortal_refcount: Some(IMMORTAL_UINT_MAX),
        dict_layout: Some(LAYOUT_3_13),
    },
];

/// The facts of the running interpreter, or None when it is not a CPython 3 version listed
/// here (then every version-specific shortcut is off and the portable path is used).
pub fn running(py: Python<'_>) -> Option<Facts> {
    let v = py.version_info();
    let cpython = py
        .import("sys")
        .and_then(|s| s.getattr("implementation"))
        .and_then(|i| i.getattr("name"))
        .and_then(|n| n.extract::<String>())
        .is_ok_and(|n| n == "cpython");
    if !cpython || v.major != 3 || !(OLDEST..=NEWEST).contains(&v.minor) {
        return None;
    }
    FACTS.iter().copied().find(|f| f.minor == v.minor)
}

/// The facts of the running interpreter as a dict (empty when it is not a known version), for
/// the Python layer: `{"minor", "gc_lists", "preheader_bytes", "immortal_refcount"}`.
#[pyfunction]
pub fn cpython_facts(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    if let Some(f) = running(py) {
        d.set_item("minor", f.minor)?;
        d.set_item("gc_lists", f.gc_lists)?;
        d.set_item("preheader_bytes", f.preheader_bytes)?;
        d.set_item("immortal_refcount", f.immortal_refcount)?;
    }
    Ok(d)
}
