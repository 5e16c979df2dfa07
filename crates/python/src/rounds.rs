//! `Rounds`: which objects exist after each round of a repeated workload, for `find_leaks`.
//!
//! Created after the warm-up, it takes a strong reference to every object alive then (the
//! collector's tracked objects and the untracked ones they refer to, as a capture finds them),
//! so that no new object can take the address of an old one: an address in that set is an old
//! object, exactly. After each round, [`Rounds::census`] walks the collector's lists (no graph,
//! no Python code) and notes the round each new tracked object was first seen in, and the
//! lengths of the old built-in containers. [`Rounds::release`] drops the old objects before the
//! final snapshot; then [`Rounds::history`] gives the core's [`History`] for that snapshot.

use crate::traverse::TypeCache;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;
use refgraph_core::graph::NodeId;
use refgraph_core::snapshot::leaks::{History, MAX_ROUNDS, OLD, UNKNOWN};
use refgraph_core::snapshot::Snapshot;
use rustc_hash::{FxHashMap, FxHashSet};

#[derive(Clone, Copy)]
enum Kind {
    List,
    Dict,
    Set,
    ByteArray,
    /// An exact `collections.deque`: its length is C code.
    Deque,
}

/// The state of a leak search between rounds.
#[pyclass(module = "refgraph._refgraph", unsendable)]
pub struct Rounds {
    /// The tracked objects alive before the first round (a strong reference each).
    held: Option<Py<PyList>>,
    /// The untracked objects they referred to (a strong reference each).
    held_extra: Vec<Py<PyAny>>,
    /// Addresses of all old objects, sorted.
    old: Vec<u64>,
    /// New tracked objects: address -> (round first seen, type address).
    births: FxHashMap<u64, (u8, u64)>,
    /// Old built-in containers: (address, type address, kind), sorted by address; valid while
    /// `held` is kept.
    watched: Vec<(u64, u64, Kind)>,
    /// Lengths of the watched containers: before the first round, then after each round.
    lengths: Vec<Vec<u32>>,
    rounds: usize,
}

unsafe fn kind_of(o: *mut ffi::PyObject, deque: *mut ffi::PyTypeObject) -> Option<Kind> {
    if ffi::PyList_Check(o) != 0 {
        Some(Kind::List)
    } else if ffi::PyDict_Check(o) != 0 {
        Some(Kind::Dict)
    } else if ffi::PySet_Check(o) != 0 {
        Some(Kind::Set)
    } else if ffi::PyByteArray_Check(o) != 0 {
        Some(Kind::ByteArray)
    } else if !deque.is_null() && ffi::Py_TYPE(o) == deque {
        Some(Kind::Deque)
    } else {
        None
    }
}

/// The length of a watched container; only C code runs (subclasses' `__len__` is not called).
unsafe fn length_of(o: *mut ffi::PyObject, kind: Kind) -> u32 {
    let l = match kind {
        Kind::List => ffi::PyList_Size(o),
        Kind::Dict => ffi::PyDict_Size(o),
        Kind::Set => ffi::PySet_Size(o),
        Kind::ByteArray => ffi::PyByteArray_Size(o),
        Kind::Deque => ffi::PyObject_Size(o),
    };
    if l < 0 {
        ffi::PyErr_Clear();
        return 0;
    }
    l.min(u32::MAX as isize) as u32
}

impl Rounds {
    /// The address of every tracked object, sorted.
    fn tracked(py: Python<'_>, hint: usize) -> PyResult<Vec<u64>> {
        let mut out: Vec<u64> = match crate::gcwalk::heads(py) {
            Some(h) => {
                let mut v = Vec::with_capacity(hint);
                // SAFETY: GIL held; the closure only copies addresses.
                unsafe { crate::gcwalk::visit(&h, |o, _| v.push(o as u64)) };
                v
            }
            None => {
                let list = crate::gcwalk::gc_objects(py)?;
                let lp = list.as_ptr();
                let mut v = Vec::with_capacity(list.len());
                // SAFETY: GIL held; the list holds its items; no Python code runs.
                unsafe {
                    for i in 0..list.len() {
                        let o = ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t);
                        if o.is_null() {
                            return Err(PyErr::fetch(py));
                        }
                        v.push(o as u64);
                    }
                }
                v
            }
        };
        out.sort_unstable();
        Ok(out)
    }

    fn census_round(&mut self, py: Python<'_>) -> PyResult<usize> {
        if self.held.is_none() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "the old objects were released",
            ));
        }
        if self.rounds >= MAX_ROUNDS {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "at most {MAX_ROUNDS} rounds"
            )));
        }
        self.rounds += 1;
        let round = self.rounds as u8;
        let now = Self::tracked(py, self.old.len() + self.births.len())?;
        let mut births: FxHashMap<u64, (u8, u64)> = Default::default();
        births.reserve(self.births.len() + 64);
        let mut j = 0;
        for &a in &now {
            while j < self.old.len() && self.old[j] < a {
                j += 1;
            }
            if j < self.old.len() && self.old[j] == a {
                continue;
            }
            // SAFETY: a new object the walk just met: no Python code has run since, so it is
            // alive; only its type pointer is read.
            let t = unsafe { ffi::Py_TYPE(a as *mut ffi::PyObject) } as u64;
            let b = match self.births.get(&a) {
                Some(&(b, bt)) if bt == t => b,
                _ => round,
            };
            births.insert(a, (b, t));
        }
        self.births = births;
        self.measure_lengths();
        Ok(self.births.len())
    }

    fn measure_lengths(&mut self) {
        if self.held.is_none() {
            return;
        }
        // SAFETY: every watched container is held by `held` or `held_extra`; GIL held.
        let ls = self
            .watched
            .iter()
            .map(|&(a, _, k)| unsafe { length_of(a as *mut ffi::PyObject, k) })
            .collect();
        self.lengths.push(ls);
    }
}

#[pymethods]
impl Rounds {
    /// Take the old objects: everything alive now.
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let list = crate::gcwalk::tracked_objects(py)?;
        let deque = py
            .import("collections")?
            .getattr("deque")?
            .as_ptr()
            .cast::<ffi::PyTypeObject>();
        let n = list.len();
        let mut old: Vec<u64> = Vec::with_capacity(n + n / 2);
        let mut watched = Vec::new();
        let mut held_extra: Vec<Py<PyAny>> = Vec::new();
        let mut seen_extra: FxHashSet<u64> = Default::default();
        let mut cache = TypeCache::default();
        let mut buf: Vec<*mut ffi::PyObject> = Vec::with_capacity(64);
        // SAFETY: GIL held; `list` holds every tracked object and `held_extra` every untracked
        // one found, each taken while its referrer is alive; no Python code runs in the loop
        // (`deque` stays alive: it is a type of the collections module).
        unsafe {
            let lp = list.as_ptr();
            let mut visit_one =
                |o: *mut ffi::PyObject,
                 extra: &mut Vec<Py<PyAny>>,
                 old: &mut Vec<u64>,
                 watched: &mut Vec<(u64, u64, Kind)>| {
                    old.push(o as u64);
                    if let Some(k) = kind_of(o, deque) {
                        watched.push((o as u64, ffi::Py_TYPE(o) as u64, k));
                    }
                    buf.clear();
                    cache.referents(o, &mut buf);
                    for &r in &buf {
                        if ffi::PyObject_GC_IsTracked(r) == 0 && seen_extra.insert(r as u64) {
                            extra.push(Bound::from_borrowed_ptr(py, r).unbind());
                        }
                    }
                };
            for i in 0..n {
                let o = ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t);
                if o.is_null() {
                    return Err(PyErr::fetch(py));
                }
                visit_one(o, &mut held_extra, &mut old, &mut watched);
            }
            // Untracked objects found so far, and what untracked containers refer to.
            let mut i = 0;
            while i < held_extra.len() {
                let o = held_extra[i].as_ptr();
                visit_one(o, &mut held_extra, &mut old, &mut watched);
                i += 1;
            }
        }
        old.sort_unstable();
        old.dedup();
        watched.sort_unstable_by_key(|w| w.0);
        watched.dedup_by_key(|w| w.0);
        let mut r = Rounds {
            held: Some(list.unbind()),
            held_extra,
            old,
            births: Default::default(),
            watched,
            lengths: Vec::new(),
            rounds: 0,
        };
        r.measure_lengths();
        Ok(r)
    }

    /// Note what exists after a round. Returns the number of new tracked objects alive.
    fn census(mut slf: PyRefMut<'_, Self>) -> PyResult<usize> {
        let py = slf.py();
        // This object itself is not part of the work.
        let me = slf.as_ptr() as u64;
        let this = &mut *slf;
        if let Err(i) = this.old.binary_search(&me) {
            this.old.insert(i, me);
        }
        this.census_round(py)
    }

    /// Drop the references to the old objects (before the final snapshot).
    fn release(&mut self) {
        self.held = None;
        self.held_extra = Vec::new();
    }

    /// Rounds measured so far.
    #[getter]
    fn rounds(&self) -> usize {
        self.rounds
    }

    /// Bytes this state holds (addresses, births, lengths).
    fn nbytes(&self) -> usize {
        self.old.capacity() * 8
            + self.births.capacity() * 24
            + self.watched.capacity() * 24
            + self.held_extra.capacity() * 8
            + self.lengths.iter().map(|l| l.capacity() * 4).sum::<usize>()
    }
}

impl Rounds {
    /// The history of the final snapshot: each node's birth round, lengths of the old
    /// containers it still has.
    pub fn history(&self, s: &Snapshot) -> History {
        let g = &s.graph;
        let types = g.type_table();
        let mut birth = vec![OLD; s.len()];
        for v in 0..s.len() as NodeId {
            let a = g.addr(v);
            if self.old.binary_search(&a).is_ok() {
                continue;
            }
            birth[v as usize] = match self.births.get(&a) {
                Some(&(b, t)) if types[g.type_of(v) as usize].addr == t => b,
                _ => UNKNOWN,
            };
        }
        let mut lengths = Vec::new();
        let mut watched = Vec::new();
        for v in 0..s.len() as NodeId {
            if birth[v as usize] != OLD {
                continue;
            }
            let a = g.addr(v);
            let Ok(i) = self.watched.binary_search_by_key(&a, |w| w.0) else {
                continue;
            };
            if types[g.type_of(v) as usize].addr != self.watched[i].1 {
                continue;
            }
            watched.push(v);
            let ls: Vec<u32> = self.lengths.iter().map(|l| l[i]).collect();
            if ls.iter().any(|&l| l != ls[0]) {
                lengths.push((v, ls));
            }
        }
        watched.sort_unstable();
        lengths.sort_unstable_by_key(|e: &(NodeId, Vec<u32>)| e.0);
        History {
            rounds: self.rounds.max(1),
            birth,
            lengths,
            watched,
            library: Vec::new(),
        }
    }
}
