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
}

const IMMORTAL_UINT_MAX: u64 = u32::MAX as u64;

pub const FACTS: [Facts; (NEWEST - OLDEST + 1) as usize] = [
    Facts {
        minor: 10,
        gc_lists: true,
        preheader_flags: 0,
        preheader_bytes: 0,
        immortal_refcount: None,
    },
    Facts {
        minor: 11,
        gc_lists: true,
        preheader_flags: TPFLAGS_MANAGED_DICT,
        preheader_bytes: 2 * std::mem::size_of::<usize>() as u64,
        immortal_refcount: None,
    },
    Facts {
        minor: 12,
        gc_lists: true,
        preheader_flags: TPFLAGS_MANAGED_DICT | TPFLAGS_MANAGED_WEAKREF,
        preheader_bytes: 2 * std::mem::size_of::<usize>() as u64,
        immortal_refcount: Some(IMMORTAL_UINT_MAX),
    },
    Facts {
        minor: 13,
        gc_lists: true,
        preheader_flags: TPFLAGS_MANAGED_DICT | TPFLAGS_MANAGED_WEAKREF,
        preheader_bytes: 2 * std::mem::size_of::<usize>() as u64,
        immortal_refcount: Some(IMMORTAL_UINT_MAX),
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
