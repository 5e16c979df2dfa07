//! Statistics over a list of objects (no graph needed): counts per type, objects by type or by
//! address. The list is always one the Python layer owns (`gc.get_objects()` or a copy).

use crate::names::TypeNames;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyType};
use refgraph_core::stats::Histogram;

/// The type address of every item of `objects`, in order.
///
/// Objects lie all over memory: reading each one's type is a cache miss, so the next items are
/// prefetched while the current one is read.
pub fn list_types(py: Python<'_>, objects: &Bound<'_, PyList>) -> PyResult<Vec<usize>> {
    const AHEAD: usize = 16;
    let lp = objects.as_ptr();
    let n = objects.len();
    let mut out = Vec::with_capacity(n);
    // SAFETY: GIL held; no Python code runs in this loop, so the list (ours) and its borrowed
    // items stay as they are. Prefetching is only a hint and never faults.
    unsafe {
        let item = |i: usize| ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t);
        for i in 0..n.min(AHEAD) {
            prefetch(item(i));
        }
        for i in 0..n {
            if i + AHEAD < n {
                prefetch(item(i + AHEAD));
            }
            let obj = item(i);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            out.push(ffi::Py_TYPE(obj) as usize);
        }
    }
    Ok(out)
}

/// Hint that an object's header will be read soon (never faults, whatever the address).
#[inline(always)]
pub fn prefetch(p: *mut ffi::PyObject) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: _mm_prefetch is a hint; any address is allowed.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Add `types` (type addresses read by [`list_types`]) to `h`, remembering each new type.
fn count_known_types(
    py: Python<'_>,
    types: &[usize],
    h: &mut Histogram<usize>,
    names: &mut TypeNames,
) -> PyResult<()> {
    let mut last = 0usize;
    let mut run = 0u64;
    for &tp in types {
        if tp != last {
            if run > 0 {
                h.add(last, run);
            }
            if h.get(&tp) == 0 {
                // SAFETY: the types were read from live objects of a list nobody else can
                // change, and no Python code ran since; from_borrowed_ptr takes a new reference.
                let t = unsafe { Bound::<PyAny>::from_borrowed_ptr(py, tp as *mut ffi::PyObject) };
                names.keep(t.cast::<PyType>()?);
            }
            last = tp;
            run = 0;
        }
        run += 1;
    }
    if run > 0 {
        h.add(last, run);
    }
    Ok(())
}

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
            let types = list_types(py, objects)?;
            count_known_types(py, &types, &mut h, names)?;
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
    let types = list_types(py, objects)?;
    count_known_types(py, &types, &mut Histogram::new(), &mut names)?;
    names.resolve(py);
    let wanted = names.matching(typename);
    let mut out = Vec::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    // Python code ran while resolving names: index the list again, checking each item's type
    // against what was recorded (a changed list only changes what is returned).
    for (i, tp) in types.iter().enumerate() {
        if wanted.contains(tp) {
            if let Ok(obj) = objects.get_item(i) {
                if obj.get_type().as_ptr() as usize == *tp {
                    out.push(obj);
                }
            }
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
