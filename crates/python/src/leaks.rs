//! `get_leaking_objects`: objects that no gc-tracked object refers to.

use crate::gcwalk::tracked_objects;
use crate::traverse::TypeCache;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;
use rustc_hash::FxHashSet;

/// Of `candidates` (default: every gc-tracked object), those that no gc-tracked object other
/// than `skip` refers to, in candidate order (duplicates kept).
#[pyfunction]
#[pyo3(signature = (candidates=None, skip=None))]
pub fn leaking<'py>(
    py: Python<'py>,
    candidates: Option<Bound<'py, PyList>>,
    skip: Option<Bound<'py, PyAny>>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let all = tracked_objects(py)?;
    let cands = candidates.unwrap_or_else(|| all.clone());
    // The candidate list itself refers to every candidate: never count it, nor the caller's
    // original collection.
    let skip_a = skip.map_or(0usize, |s| s.as_ptr() as usize);
    let skip_b = cands.as_ptr() as usize;
    let n = cands.len();
    // Candidates nothing refers to yet (addresses only: 8 bytes each).
    let mut unreferenced: FxHashSet<usize> =
        FxHashSet::with_capacity_and_hasher(n, Default::default());
    for o in cands.iter() {
        unreferenced.insert(o.as_ptr() as usize);
    }
    let mut cache = TypeCache::default();
    let mut buf = Vec::with_capacity(64);
    let ap = all.as_ptr();
    for i in 0..all.len() {
        // SAFETY: GIL held, `all` is ours, and no Python code runs in this loop: the borrowed
        // pointers stay valid.
        unsafe {
            let obj = ffi::PyList_GetItem(ap, i as ffi::Py_ssize_t);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            if obj as usize == skip_a || obj as usize == skip_b {
                continue;
            }
            buf.clear();
            cache.referents(obj, &mut buf);
        }
        for &r in &buf {
            unreferenced.remove(&(r as usize));
        }
    }
    Ok(cands
        .iter()
        .filter(|o| unreferenced.contains(&(o.as_ptr() as usize)))
        .collect())
}
