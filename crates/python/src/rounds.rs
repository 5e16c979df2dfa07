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
use refgraph_core::snapshot::leaks::{steady, History, MAX_ROUNDS, OLD, UNKNOWN};
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
/// The round each new object was born in: the round noted before for an address that still
/// holds an object of the same type, else `round`. Keyed by address: `(round, type)`.
///
/// # Safety
/// Every address is that of a live object (met by a walk with no Python code run since); the
/// GIL is held. Only its type pointer is read.
unsafe fn note_births(
    new: impl Iterator<Item = u64>,
    before: &FxHashMap<u64, (u8, u64)>,
    round: u8,
) -> FxHashMap<u64, (u8, u64)> {
    let mut births: FxHashMap<u64, (u8, u64)> = Default::default();
    births.reserve(before.len() + 64);
    for a in new {
        let t = unsafe { ffi::Py_TYPE(a as *mut ffi::PyObject) } as u64;
        let b = match before.get(&a) {
            Some(&(b, bt)) if bt == t => b,
            _ => round,
        };
        births.insert(a, (b, t));
    }
    births
}

/// Count one more round (at most [`MAX_ROUNDS`]) and return its number.
fn next_round(rounds: &mut usize) -> PyResult<u8> {
    if *rounds >= MAX_ROUNDS {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "at most {MAX_ROUNDS} rounds"
        )));
    }
    *rounds += 1;
    Ok(*rounds as u8)
}

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
        let round = next_round(&mut self.rounds)?;
        let now = Self::tracked(py, self.old.len() + self.births.len())?;
        let mut j = 0;
        let old = &self.old;
        let new = now.iter().copied().filter(|&a| {
            while j < old.len() && old[j] < a {
                j += 1;
            }
            !(j < old.len() && old[j] == a)
        });
        // SAFETY: the walk just met these objects and no Python code has run since.
        self.births = unsafe { note_births(new, &self.births, round) };
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

/// What [`untracked_visit`] collects: the untracked containers met, and per type address
/// whether its objects can be one (a dict, set or bytearray, or a subclass).
#[derive(Default)]
struct UntrackedScan {
    found: Vec<*mut ffi::PyObject>,
    kinds: FxHashMap<usize, bool>,
}

/// The `tp_traverse` visitor of [`Screen::new`]: records live referents that are containers
/// ([`kind_of`]) the collector does not track (dicts of atomic values, bytearrays). Untracked
/// tuples are not followed (a tuple holding a dict or set stays tracked; a bytearray in an
/// untracked tuple is the one container the quick pass does not measure).
unsafe extern "C" fn untracked_visit(
    obj: *mut ffi::PyObject,
    arg: *mut std::os::raw::c_void,
) -> std::os::raw::c_int {
    if obj.is_null() || ffi::Py_REFCNT(obj) <= 0 {
        return 0;
    }
    let scan = &mut *(arg as *mut UntrackedScan);
    let tp = ffi::Py_TYPE(obj);
    let container = *scan.kinds.entry(tp as usize).or_insert_with(|| {
        ffi::PyType_GetFlags(tp) & ffi::Py_TPFLAGS_DICT_SUBCLASS != 0
            || ffi::PyByteArray_Check(obj) != 0
            || ffi::PyAnySet_Check(obj) != 0
    });
    if container && ffi::PyObject_GC_IsTracked(obj) == 0 {
        scan.found.push(obj);
    }
    0
}

/// Call `o`'s traverse function with [`untracked_visit`] into `scan`.
///
/// # Safety
/// `o` must be a live object and the GIL held; no Python code may run until `scan` is consumed.
unsafe fn traverse(
    cache: &mut FxHashMap<usize, Option<ffi::traverseproc>>,
    o: *mut ffi::PyObject,
    scan: &mut UntrackedScan,
) {
    let tp = ffi::Py_TYPE(o);
    let trav = *cache.entry(tp as usize).or_insert_with(|| {
        if ffi::PyType_GetFlags(tp) & ffi::Py_TPFLAGS_HAVE_GC == 0 {
            return None;
        }
        // PyType_GetSlot works on static types since 3.10.
        let p = ffi::PyType_GetSlot(tp, ffi::Py_tp_traverse);
        (!p.is_null())
            .then(|| std::mem::transmute::<*mut std::os::raw::c_void, ffi::traverseproc>(p))
    });
    if let Some(trav) = trav {
        trav(
            o,
            untracked_visit,
            scan as *mut UntrackedScan as *mut std::os::raw::c_void,
        );
    }
}

/// A quick first pass of a leak search that tells whether anything could have grown, at a cost
/// proportional to the new objects rather than to the heap.
///
/// Created after the warm-up, before `gc.freeze()` moves every tracked object out of the
/// collector's generations; then the generations hold only what the rounds created (and old
/// objects the collector starts tracking again), and a collection frees only their garbage.
/// After each round (and a collection), [`Screen::census`] walks the generations and notes the
/// round each tracked object was first seen in, and measures the old containers (tracked ones
/// and the untracked ones they refer to, held strongly meanwhile). [`Screen::grew`] is false
/// only when neither the surviving new objects nor any container length grew steadily: then
/// the full search ([`Rounds`] and a snapshot) would find no suspect either.
#[pyclass(module = "refgraph._refgraph", unsendable)]
pub struct Screen {
    /// The old containers whose length is measured (a strong reference each).
    watched: Vec<(Py<PyAny>, Kind)>,
    /// Whether `watched` was dropped.
    released: bool,
    /// Their lengths: before the first round, then after each round.
    lengths: Vec<Vec<u32>>,
    /// Tracked objects seen in the generations: address -> (round first seen, type address).
    births: FxHashMap<u64, (u8, u64)>,
    rounds: usize,
}

impl Screen {
    /// The tracked objects of the last census still alive, with their birth rounds, and those
    /// of them that only replace others in an old container whose length did not grow: the
    /// full search does not count a non-growing container's own objects unless all of them
    /// were born in one round (say, the keys an LRU cache re-inserts on every hit).
    ///
    /// One walk of every tracked object (after `gc.unfreeze()`) finds who refers to the new
    /// ones. A new object is set aside when nothing new refers to it, exactly one old object
    /// does, that one is a watched container of constant length, and the new objects set
    /// aside under it were born in two rounds or more; then, new objects that only those set
    /// aside under one container refer to (what they retain alone).
    /// Returns the rounds (as a mask) the new objects not set aside were born in.
    fn unreplaced_mask(&self, py: Python<'_>) -> PyResult<u64> {
        let mut alive: Vec<(u64, u8)> = Vec::new();
        // New object -> the new objects referring to it; -> (old referrers, the first one).
        let mut young_refs: FxHashMap<u64, Vec<u64>> = Default::default();
        let mut old_refs: FxHashMap<u64, (u32, u64)> = Default::default();
        let mut cache = TypeCache::default();
        let mut buf: Vec<*mut ffi::PyObject> = Vec::with_capacity(64);
        let births = &self.births;
        // Is `o` (alive) a new object of the census, by address and type?
        let is_new = |o: *mut ffi::PyObject| -> Option<u8> {
            let &(b, t) = births.get(&(o as u64))?;
            // SAFETY: `o` is alive (met by the walk or reported alive by a traverse function).
            (unsafe { ffi::Py_TYPE(o) } as u64 == t).then_some(b)
        };
        // SAFETY: GIL held; no Python code runs during the walk; every object is alive when
        // met, and its referents (live ones only) while its traverse function reports them.
        let mut on_object = |o: *mut ffi::PyObject| unsafe {
            let me = is_new(o);
            if let Some(b) = me {
                alive.push((o as u64, b));
            }
            buf.clear();
            cache.referents(o, &mut buf);
            for &r in &buf {
                if r == o || is_new(r).is_none() {
                    continue;
                }
                if me.is_some() {
                    young_refs.entry(r as u64).or_default().push(o as u64);
                } else {
                    let e = old_refs.entry(r as u64).or_insert((0, o as u64));
                    e.0 += 1;
                }
            }
        };
        match crate::gcwalk::heads(py) {
            // SAFETY: as above.
            Some(h) => unsafe { crate::gcwalk::visit(&h, |o, _| on_object(o)) },
            None => {
                let list = crate::gcwalk::gc_objects(py)?;
                let lp = list.as_ptr();
                for i in 0..list.len() {
                    // SAFETY: the list holds its items; GIL held.
                    let o = unsafe { ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t) };
                    if o.is_null() {
                        return Err(PyErr::fetch(py));
                    }
                    if o != lp {
                        on_object(o);
                    }
                }
            }
        }
        // Watched containers of constant length, by address.
        let first = &self.lengths[0];
        let last = &self.lengths[self.lengths.len() - 1];
        let constant: FxHashSet<u64> = self
            .watched
            .iter()
            .enumerate()
            .filter(|&(i, _)| last[i] <= first[i])
            .map(|(_, (o, _))| o.as_ptr() as u64)
            .collect();
        let mut group: FxHashMap<u64, u64> = Default::default();
        let mut group_mask: FxHashMap<u64, u64> = Default::default();
        for &(a, b) in &alive {
            if young_refs.contains_key(&a) {
                continue;
            }
            if let Some(&(1, c)) = old_refs.get(&a) {
                if constant.contains(&c) {
                    group.insert(a, c);
                    *group_mask.entry(c).or_default() |= 1u64 << (b - 1);
                }
            }
        }
        group.retain(|_, c| group_mask[c].count_ones() >= 2);
        // What only objects set aside under one container refer to.
        loop {
            let mut added = Vec::new();
            for &(a, _) in &alive {
                if group.contains_key(&a) || old_refs.contains_key(&a) {
                    continue;
                }
                let Some(parents) = young_refs.get(&a) else {
                    continue;
                };
                let mut g = None;
                let all_one = parents.iter().all(|p| match (group.get(p), g) {
                    (Some(&c), None) => {
                        g = Some(c);
                        true
                    }
                    (Some(&c), Some(h)) => c == h,
                    (None, _) => false,
                });
                if all_one {
                    if let Some(c) = g {
                        added.push((a, c));
                    }
                }
            }
            if added.is_empty() {
                break;
            }
            group.extend(added);
        }
        Ok(alive
            .iter()
            .filter(|(a, _)| !group.contains_key(a))
            .fold(0u64, |m, &(_, b)| m | (1u64 << (b - 1))))
    }

    /// Did watched container `i` grow in a steady pattern of rounds (whatever it did in the
    /// others)?
    fn grew_steadily(&self, i: usize) -> bool {
        let mut m = 0u64;
        for r in 1..self.lengths.len() {
            if self.lengths[r][i] > self.lengths[r - 1][i] {
                m |= 1 << (r - 1);
            }
        }
        steady(m, self.rounds)
    }

    fn measure(&mut self) {
        // SAFETY: every watched container is held by `watched`; GIL held; only C code runs.
        let ls = self
            .watched
            .iter()
            .map(|(o, k)| unsafe { length_of(o.as_ptr(), *k) })
            .collect();
        self.lengths.push(ls);
    }
}

#[pymethods]
impl Screen {
    /// Take and measure the containers alive now (call it before `gc.freeze()`).
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let deque = py
            .import("collections")?
            .getattr("deque")?
            .as_ptr()
            .cast::<ffi::PyTypeObject>();
        let mut watched: Vec<(Py<PyAny>, Kind)> = Vec::new();
        let mut scan = UntrackedScan::default();
        let mut cache: FxHashMap<usize, Option<ffi::traverseproc>> = Default::default();
        let mut seen: FxHashSet<u64> = Default::default();
        // SAFETY: GIL held; no Python code runs until the end of the block: every object the
        // walk meets is alive, and so is every referent its traverse function reports (the
        // untracked containers found are held by their referrers, which nothing frees
        // meanwhile, then by `watched`). `deque` is a type of the collections module.
        unsafe {
            let mut on_tracked = |o: *mut ffi::PyObject,
                                  watched: &mut Vec<(Py<PyAny>, Kind)>,
                                  scan: &mut UntrackedScan| {
                if let Some(k) = kind_of(o, deque) {
                    watched.push((Bound::from_borrowed_ptr(py, o).unbind(), k));
                }
                traverse(&mut cache, o, scan);
            };
            match crate::gcwalk::heads(py) {
                Some(h) => crate::gcwalk::visit(&h, |o, _| on_tracked(o, &mut watched, &mut scan)),
                None => {
                    let list = crate::gcwalk::gc_objects(py)?;
                    let lp = list.as_ptr();
                    for i in 0..list.len() {
                        let o = ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t);
                        if o.is_null() {
                            return Err(PyErr::fetch(py));
                        }
                        on_tracked(o, &mut watched, &mut scan);
                    }
                }
            }
            // The untracked containers, and the bytearrays untracked dicts refer to.
            let mut i = 0;
            while i < scan.found.len() {
                let o = scan.found[i];
                i += 1;
                if !seen.insert(o as u64) {
                    continue;
                }
                if let Some(k) = kind_of(o, deque) {
                    watched.push((Bound::from_borrowed_ptr(py, o).unbind(), k));
                }
                traverse(&mut cache, o, &mut scan);
            }
        }
        let mut s = Screen {
            watched,
            released: false,
            lengths: Vec::new(),
            births: Default::default(),
            rounds: 0,
        };
        s.measure();
        Ok(s)
    }

    /// Note the tracked objects in the collector's generations and measure the containers
    /// (after a round and a collection, with the old objects frozen). Returns how many tracked
    /// objects the generations hold.
    fn census(&mut self, py: Python<'_>) -> PyResult<usize> {
        if self.released {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "the containers were released",
            ));
        }
        let round = next_round(&mut self.rounds)?;
        let now = Rounds::tracked(py, self.births.len() + 64)?;
        // SAFETY: the walk just met these objects and no Python code has run since.
        self.births = unsafe { note_births(now.iter().copied(), &self.births, round) };
        self.measure();
        Ok(self.births.len())
    }

    /// Could the full search find a suspect? True when a container's length grew steadily (in
    /// the rounds it grew, whatever it did in the others), or when the tracked objects born in
    /// the rounds and alive now show steady growth together, not counting those that only
    /// replace others in an old container of constant length (see [`Screen::unreplaced_mask`]).
    /// Call it after `gc.unfreeze()`: that last test walks the whole heap.
    fn grew(&self, py: Python<'_>) -> PyResult<bool> {
        let rounds = self.rounds;
        if rounds == 0 {
            return Ok(false);
        }
        if self.released {
            return Ok(true);
        }
        if (0..self.watched.len()).any(|i| self.grew_steadily(i)) {
            return Ok(true);
        }
        let mask = self
            .births
            .values()
            .fold(0u64, |m, &(b, _)| m | (1u64 << (b - 1)));
        if !steady(mask, rounds) {
            return Ok(false);
        }
        Ok(steady(self.unreplaced_mask(py)?, rounds))
    }

    /// How many of the tracked objects seen in the last census were first seen in each round
    /// (index 0: round 1).
    fn survivors(&self) -> Vec<usize> {
        let mut out = vec![0; self.rounds];
        for &(b, _) in self.births.values() {
            out[b as usize - 1] += 1;
        }
        out
    }

    /// The containers whose length grew steadily, with their lengths before the first round
    /// and after each (what makes [`Screen::grew`] true besides the survivors).
    fn grown<'py>(&self, py: Python<'py>) -> Vec<(Bound<'py, PyAny>, Vec<u32>)> {
        (0..self.watched.len())
            .filter(|&i| self.grew_steadily(i))
            .map(|i| {
                (
                    self.watched[i].0.bind(py).clone(),
                    self.lengths.iter().map(|l| l[i]).collect(),
                )
            })
            .collect()
    }

    /// Tracked objects seen in the last census.
    #[getter]
    fn new_objects(&self) -> usize {
        self.births.len()
    }

    /// Containers measured.
    #[getter]
    fn containers(&self) -> usize {
        self.watched.len()
    }

    /// Drop the references to the containers.
    fn release(&mut self) {
        self.watched = Vec::new();
        self.released = true;
    }
}
