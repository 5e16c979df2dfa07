//! Statistics over a list of objects (no graph needed): counts per type, objects by type or by
//! address. The list is always one the Python layer owns (`gc.get_objects()` or a copy).

use crate::gcwalk::{self, list_types, prefetch, Heads};
use crate::names::{may_be_named, PlainMetaclasses, TypeNames};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyType};
use refgraph_core::stats::Histogram;

/// Add `types` (type addresses read by [`list_types`]) to `h`, remembering each new type.
pub fn count_known_types(
    py: Python<'_>,
    types: impl IntoIterator<Item = usize>,
    h: &mut Histogram<usize>,
    names: &mut TypeNames,
) -> PyResult<()> {
    let mut last = 0usize;
    let mut run = 0u64;
    for tp in types {
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

/// What a query looks at: a list the caller gave, or every object the collector tracks (walked
/// directly when [`gcwalk`] can, else `gc.get_objects()`).
pub enum Objects<'py> {
    List(Bound<'py, PyList>),
    Heap(Heads),
}

impl<'py> Objects<'py> {
    /// `objects`, or the whole heap when it is None.
    pub fn new(py: Python<'py>, objects: Option<Bound<'py, PyList>>) -> PyResult<Self> {
        Ok(match objects {
            Some(list) => Objects::List(list),
            None => match gcwalk::heads(py) {
                Some(h) => Objects::Heap(h),
                None => Objects::List(gcwalk::gc_objects(py)?),
            },
        })
    }

    /// The objects for which `wanted(address, type address)` holds, in order, as strong
    /// references. `wanted` must not run Python code. A walk of the heap stops once it has
    /// found `at_most` (each object is met once there; a list may repeat objects).
    fn select(
        &self,
        py: Python<'py>,
        wanted: impl Fn(usize, usize) -> bool,
        at_most: usize,
    ) -> Vec<Bound<'py, PyAny>> {
        let mut out = Vec::new();
        match self {
            Objects::List(list) => {
                for obj in list.iter() {
                    if wanted(obj.as_ptr() as usize, obj.get_type().as_ptr() as usize) {
                        out.push(obj);
                    }
                }
            }
            Objects::Heap(h) => {
                // SAFETY: GIL held; the closure only reads each object's type. Nothing runs
                // between the walk and taking references to the objects kept.
                let mut found: Vec<(u64, usize)> = Vec::new();
                unsafe {
                    gcwalk::visit_until(h, |o, place| {
                        if wanted(o as usize, ffi::Py_TYPE(o) as usize) {
                            found.push((place.key(), o as usize));
                        }
                        found.len() < at_most
                    })
                };
                found.sort_unstable();
                for (_, o) in found {
                    out.push(unsafe { Bound::from_borrowed_ptr(py, o as *mut ffi::PyObject) });
                }
            }
        }
        out
    }

    /// The first object whose address is `addr`.
    fn find(&self, py: Python<'py>, addr: usize) -> Option<Bound<'py, PyAny>> {
        match self {
            Objects::List(list) => list.iter().find(|o| o.as_ptr() as usize == addr),
            Objects::Heap(h) => {
                let mut found = None;
                // SAFETY: as in `select`.
                unsafe {
                    gcwalk::visit_until(h, |o, _| {
                        if o as usize == addr {
                            found = Some(Bound::from_borrowed_ptr(py, o));
                            return false;
                        }
                        true
                    })
                };
                found
            }
        }
    }
}

/// Count every gc-tracked object per type address into `h`, in first-appearance order (as over
/// `gc.get_objects()`), remembering each type; one walk, no list of objects or types.
fn count_heap_types(
    py: Python<'_>,
    heads: &Heads,
    h: &mut Histogram<usize>,
    names: &mut TypeNames,
) {
    // Per type: count, and the smallest place key it was met at (its first appearance).
    let mut per: rustc_hash::FxHashMap<usize, (u64, u64)> = Default::default();
    // Runs of one type, one per direction of the walk (the two ends are met alternately).
    let mut runs = [(0usize, 0u64, u64::MAX); 2];
    let flush = |per: &mut rustc_hash::FxHashMap<usize, (u64, u64)>, run: (usize, u64, u64)| {
        if run.1 > 0 {
            let e = per.entry(run.0).or_insert((0, u64::MAX));
            e.0 += run.1;
            e.1 = e.1.min(run.2);
        }
    };
    // SAFETY: GIL held; the closure only reads each object's type.
    unsafe {
        gcwalk::visit(heads, |o, place| {
            let tp = ffi::Py_TYPE(o) as usize;
            let run = &mut runs[place.is_from_tail() as usize];
            if run.0 != tp {
                flush(&mut per, *run);
                *run = (tp, 0, u64::MAX);
            }
            run.1 += 1;
            run.2 = run.2.min(place.key());
        })
    };
    for run in runs {
        flush(&mut per, run);
    }
    let mut order: Vec<(u64, usize, u64)> =
        per.into_iter().map(|(tp, (n, k))| (k, tp, n)).collect();
    order.sort_unstable();
    for (_, tp, n) in order {
        // SAFETY: the type was read from a live object and no Python code ran since;
        // from_borrowed_ptr takes a new reference, which `names` keeps.
        let t = unsafe { Bound::<PyAny>::from_borrowed_ptr(py, tp as *mut ffi::PyObject) };
        if let Ok(t) = t.cast::<PyType>() {
            names.keep(t);
        }
        h.add(tp, n);
    }
}

/// Count objects per type address, in first-appearance order, remembering each type.
/// With `filter`, only objects for which `filter(obj)` is true count (the callback may run any
/// code: each object is held by a strong reference while it runs).
pub fn count_types<'py>(
    py: Python<'py>,
    objects: Objects<'py>,
    filter: Option<&Bound<'py, PyAny>>,
    names: &mut TypeNames,
) -> PyResult<Histogram<usize>> {
    let mut h = Histogram::new();
    match filter {
        None => match &objects {
            Objects::Heap(heads) => count_heap_types(py, heads, &mut h, names),
            Objects::List(list) => {
                let types = list_types(py, list)?;
                count_known_types(py, types.iter().copied(), &mut h, names)?;
            }
        },
        Some(f) => {
            let objects = match objects {
                Objects::List(list) => list,
                Objects::Heap(_) => gcwalk::tracked_objects(py)?,
            };
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

/// `[(name, count)]` in first-appearance order of the names. `objects=None`: the whole heap.
#[pyfunction]
#[pyo3(signature = (objects, shortnames=true, filter=None))]
pub fn typestats(
    py: Python<'_>,
    objects: Option<Bound<'_, PyList>>,
    shortnames: bool,
    filter: Option<Bound<'_, PyAny>>,
) -> PyResult<Vec<(String, u64)>> {
    let mut names = TypeNames::default();
    let objects = Objects::new(py, objects)?;
    let h = count_types(py, objects, filter.as_ref(), &mut names)?;
    let mut by_name: Histogram<String> = Histogram::new();
    for (t, n) in h.entries() {
        by_name.add(names.name(*t, shortnames).to_string(), *n);
    }
    Ok(by_name.into_entries())
}

/// Objects whose type name equals `typename` (long names when it has a dot), in order.
#[pyfunction]
pub fn by_type<'py>(
    py: Python<'py>,
    objects: Option<Bound<'py, PyList>>,
    typename: &str,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let objects = Objects::new(py, objects)?;
    let mut names = TypeNames::default();
    let list = match &objects {
        Objects::Heap(h) => return by_type_in_heap(py, h, typename, &mut names),
        Objects::List(list) => list,
    };
    let types = list_types(py, list)?;
    count_known_types(py, types.iter().copied(), &mut Histogram::new(), &mut names)?;
    drop(types);
    names.resolve(py);
    let wanted = names.matching(typename);
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // Python code ran while resolving names: look at the objects again (the wanted types are
    // held by `names`, so their addresses still name them).
    Ok(objects.select(py, |_, tp| wanted.contains(&tp), usize::MAX))
}

/// `by_type` over the whole heap with one walk that records the address and type of each
/// object whose type may have that name ([`may_be_named`]: decided from the type's C name when
/// its metatype is `type` or a metaclass that reads names as `type` does), taking no
/// reference. When every such type's name can be read without running Python code (see
/// [`TypeNames::resolve_without_code`]), only the objects of the wanted types are then held.
/// Otherwise every object recorded is held (as `gc.get_objects()` would) before the rest of
/// the names are resolved, which may run Python code (a metaclass's `__name__`); then only
/// the objects of the wanted types are kept.
fn by_type_in_heap<'py>(
    py: Python<'py>,
    heads: &Heads,
    typename: &str,
    names: &mut TypeNames,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    // Each type met, and whether its objects may be wanted.
    let mut types: rustc_hash::FxHashMap<usize, bool> = Default::default();
    // Types met lately, by a few bits of their address: neighbours in the lists are seldom of
    // one type, and a probe of the map per object would cost more than the rest of the walk.
    let mut recent = [(0usize, false); 256];
    let metas = PlainMetaclasses::find(py);
    // SAFETY: GIL held; the closure only reads each object's type and its type's C name
    // (a live type: the object's), and runs no code.
    let walked: Vec<(usize, usize)> = unsafe {
        gcwalk::filter_map(heads, |o| {
            let tp = ffi::Py_TYPE(o) as usize;
            let slot = &mut recent[(tp >> 4 ^ tp >> 12) & 255];
            if slot.0 != tp {
                let maybe = *types
                    .entry(tp)
                    .or_insert_with(|| may_be_named(tp as *mut ffi::PyObject, typename, &metas));
                *slot = (tp, maybe);
            }
            slot.1.then_some((o as usize, tp))
        })
    };
    let types = types
        .into_iter()
        .filter_map(|(tp, maybe)| maybe.then_some(tp));
    for tp in types {
        // SAFETY: read from a live object, and no Python code ran since; a new reference,
        // which `names` keeps.
        let t = unsafe { Bound::<PyAny>::from_borrowed_ptr(py, tp as *mut ffi::PyObject) };
        names.keep(t.cast::<PyType>()?);
    }
    // Reading names allocates temporaries (strings, a mappingproxy, an exception): with the
    // collector off, none of that can start a collection, whose finalizers could run any code.
    // SAFETY: plain C calls with the GIL held.
    let was_enabled = unsafe { ffi::PyGC_Disable() };
    let all_read = names.resolve_without_code(py);
    if was_enabled != 0 {
        // Enabling only sets a flag: no collection starts here.
        unsafe { ffi::PyGC_Enable() };
    }
    if all_read {
        // No Python code ran since the walk: every address walked is still that object.
        let wanted = names.matching(typename);
        let (mut last_tp, mut last_wanted) = (0usize, false);
        let mut out = Vec::new();
        for (o, tp) in walked {
            if tp != last_tp {
                last_tp = tp;
                last_wanted = wanted.contains(&tp);
            }
            if last_wanted {
                // SAFETY: a live object (see above); a new reference.
                out.push(unsafe { Bound::from_borrowed_ptr(py, o as *mut ffi::PyObject) });
            }
        }
        return Ok(out);
    }
    // Nothing ran yet: take a reference to every object walked before any Python code runs.
    // SAFETY: as above.
    let held: Vec<(Bound<'py, PyAny>, usize)> = walked
        .into_iter()
        .map(|(o, tp)| unsafe { (Bound::from_borrowed_ptr(py, o as *mut ffi::PyObject), tp) })
        .collect();
    names.resolve(py);
    let wanted = names.matching(typename);
    // Objects whose type changed meanwhile (`__class__` assignment) are judged by the type
    // they had when walked, as with a list taken before the names were looked up. Dropping
    // the others touches each one's header: those a few items ahead are prefetched.
    const AHEAD: usize = 16;
    let mut out = Vec::new();
    let (mut last_tp, mut last_wanted) = (0usize, false);
    let mut rest = held.into_iter();
    while let Some((obj, tp)) = rest.next() {
        if let Some((ahead, _)) = rest.as_slice().get(AHEAD) {
            prefetch(ahead.as_ptr());
        }
        if tp != last_tp {
            last_tp = tp;
            last_wanted = wanted.contains(&tp);
        }
        if last_wanted {
            out.push(obj);
        }
    }
    Ok(out)
}

/// Number of objects whose type name equals `typename`.
#[pyfunction]
pub fn count(py: Python<'_>, objects: Option<Bound<'_, PyList>>, typename: &str) -> PyResult<u64> {
    let mut names = TypeNames::default();
    let objects = Objects::new(py, objects)?;
    let h = count_types(py, objects, None, &mut names)?;
    let wanted = names.matching(typename);
    Ok(h.entries()
        .iter()
        .filter(|(t, _)| wanted.contains(t))
        .map(|(_, n)| n)
        .sum())
}

/// The first object whose address is `addr`, or None. `objects=None`: the whole heap.
#[pyfunction]
pub fn at<'py>(
    py: Python<'py>,
    objects: Option<Bound<'py, PyList>>,
    addr: usize,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let objects = Objects::new(py, objects)?;
    if let Objects::Heap(h) = &objects {
        // Frozen objects pass the check but are not in `gc.get_objects()`: walk then.
        let frozen = py.import("gc")?.call_method0("get_freeze_count")?;
        if frozen.extract::<usize>()? == 0 {
            if let Some(o) = proven_at(py, h, addr) {
                return Ok(Some(o));
            }
        }
    }
    Ok(objects.find(py, addr))
}

/// The gc-tracked object at `addr` when its collector links prove it without a walk (else
/// None, which says nothing): what `at` tries first. For tests.
#[pyfunction]
pub fn at_without_walk(py: Python<'_>, addr: usize) -> Option<Bound<'_, PyAny>> {
    proven_at(py, &gcwalk::heads(py)?, addr)
}

/// [`gcwalk::tracked_at`] as a new reference.
fn proven_at<'py>(py: Python<'py>, h: &Heads, addr: usize) -> Option<Bound<'py, PyAny>> {
    let o = gcwalk::tracked_at(h, addr)?;
    // SAFETY: a live tracked object (proven by its collector links, GIL held, no Python code
    // ran since the check); from_borrowed_ptr takes a new reference.
    Some(unsafe { Bound::from_borrowed_ptr(py, o) })
}

/// Objects whose address is in `addrs`, in order. `objects=None`: the whole heap.
#[pyfunction]
pub fn at_addrs<'py>(
    py: Python<'py>,
    objects: Option<Bound<'py, PyList>>,
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
    let at_most = wanted.len();
    Ok(Objects::new(py, objects)?.select(py, |addr, _| wanted.contains(&addr), at_most))
}
