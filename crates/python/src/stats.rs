//! Statistics over a list of objects (no graph needed): counts per type, objects by type or by
//! address. The list is always one the Python layer owns (`gc.get_objects()` or a copy).

use crate::names::TypeNames;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyType};
use refgraph_core::stats::Histogram;

/// Count objects per type address, in first-appearance order, remembering each type.
/// With `filter`, only objects for which `filter(obj)` is true count (the callback may run any
/// code: each object is held by a strong reference while it runs).
pub fn count_types(
    py: Python<'_>,
    objects: &Bound<'_, PyList>,
    filter: Option<&Bound<'_, PyAny>>,
    names: &mut TypeNames,
) -> PyResult<Histogram<usize>> {
    let mut h = Histogram::new();
    match filter {
        None => {
            let lp = objects.as_ptr();
            let n = objects.len();
            for i in 0..n {
                // SAFETY: GIL held; the list is ours and no Python code runs in this loop, so the
                // borrowed item and its type stay alive.
                let tp = unsafe {
                    let obj = ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t);
                    if obj.is_null() {
                        return Err(PyErr::fetch(py));
                    }
                    ffi::Py_TYPE(obj)
                };
                let key = tp as usize;
                if h.get(&key) == 0 {
                    // SAFETY: tp is a live type (see above); from_borrowed_ptr takes a new reference.
                    let t =
                        unsafe { Bound::<PyAny>::from_borrowed_ptr(py, tp as *mut ffi::PyObject) };
                    names.keep(t.cast::<PyType>()?);
                }
                h.add(key, 1);
            }
        }
        Some(f) => {
            let mut i = 0;
            while i < objects.len() {
                let obj = objects.get_item(i)?;
                i += 1;
                if !f.call1((&obj,))?.is_truthy()? {
                    continue;
                }
                let tp = obj.get_type();
                names.keep(&tp);
                h.add(tp.as_ptr() as usize, 1);
            }
        }
    }
    names.resolve(py);
    Ok(h)
}

/// `[(name, count)]` in first-appearance order of the names.
#[pyfunction]
#[pyo3(signature = (objects, shortnames=true, filter=None))]
pub fn typestats(
    py: Python<'_>,
    objects: &Bound<'_, PyList>,
    shortnames: bool,
    filter: Option<Bound<'_, PyAny>>,
) -> PyResult<Vec<(String, u64)>> {
    let mut names = TypeNames::default();
    let h = count_types(py, objects, filter.as_ref(), &mut names)?;
    let mut by_name: Histogram<String> = Histogram::new();
    for (t, n) in h.entries() {
        by_name.add(names.name(*t, shortnames).to_string(), *n);
    }
    Ok(by_name.into_entries())
}

/// Objects whose type name equals `typename` (long names when it has a dot), in list order.
#[pyfunction]
pub fn by_type<'py>(
    py: Python<'py>,
    objects: &Bound<'py, PyList>,
    typename: &str,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let mut names = TypeNames::default();
    count_types(py, objects, None, &mut names)?;
    let wanted = names.matching(typename);
    let mut out = Vec::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    for obj in objects.iter() {
        if wanted.contains(&(obj.get_type().as_ptr() as usize)) {
            out.push(obj);
        }
    }
    Ok(out)
}

/// Number of objects whose type name equals `typename`.
#[pyfunction]
pub fn count(py: Python<'_>, objects: &Bound<'_, PyList>, typename: &str) -> PyResult<u64> {
    let mut names = TypeNames::default();
    let h = count_types(py, objects, None, &mut names)?;
    let wanted = names.matching(typename);
    Ok(h.entries()
        .iter()
        .filter(|(t, _)| wanted.contains(t))
        .map(|(_, n)| n)
        .sum())
}

/// The first object whose address is `addr`, or None.
#[pyfunction]
pub fn at<'py>(objects: &Bound<'py, PyList>, addr: usize) -> Option<Bound<'py, PyAny>> {
    objects.iter().find(|o| o.as_ptr() as usize == addr)
}

/// Objects whose address is in `addrs`, in list order.
#[pyfunction]
pub fn at_addrs<'py>(
    objects: &Bound<'py, PyList>,
    addrs: &Bound<'py, PyAny>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let mut wanted = rustc_hash::FxHashSet::default();
    for a in addrs.try_iter()? {
        // Anything that is not an address can never equal one.
        if let Ok(v) = a?.extract::<usize>() {
            wanted.insert(v);
        }
    }
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    Ok(objects
        .iter()
        .filter(|o| wanted.contains(&(o.as_ptr() as usize)))
        .collect())
}
