//! The heap capture: every object the collector tracks (and, optionally, what they refer to
//! that it does not track) and their references, walked into the core graph model.
//!
//! Everything here runs with the GIL held and calls no Python code between taking the list of
//! tracked objects and returning, so the interpreter cannot change the heap under us.
//! Every object we record is kept alive by a strong reference for as long as the capture
//! lives ([`Objects`]), so later queries may call Python code (user callbacks, `repr`) safely.
//! Unsafe CPython access (list items, object types).

use crate::cpython::GC_HEAD;
use crate::gcwalk::{prefetch, tracked_refs_and_types, ListingRoom, Marks};
use crate::progress::Reporter;
use crate::traverse::{GcKind, TypeCache};
use pyo3::ffi;
use pyo3::prelude::*;
use refgraph_core::garbage::OutsideCounts;
use refgraph_core::graph::{
    flags, EdgeRoom, Graph, GraphBuilder, GraphError, NodeId, Resolver, RESOLVED,
};
use refgraph_core::hugepages::Warmer;
use refgraph_core::nodeset::NodeSet;
use rustc_hash::FxHashMap;
use std::ffi::{c_int, c_void};
use std::sync::atomic::Ordering::Relaxed;

/// Referent addresses per chunk of nodes (the unit of work handed to the second thread).
const CHUNK_EDGES: usize = 1 << 16;
/// Below this many nodes, the references are looked up on this thread (a thread costs more).
const PARALLEL_MIN: usize = 1 << 14;
/// From this many nodes on, a third thread faults in the reference arrays' pages ahead
/// ([`Pages::run_ahead`]). Measured in one process against the build before it: at 10M
/// objects 2.33 -> 2.01 s after pauses; at 3M the same; at 1M no gain shown (after 1.5 s
/// pauses, 30 rounds, medians 0.163 -> 0.183 s, where one build against itself differed by
/// 7%): below this, the first thread faults them in alone.
const PAGER_MIN: usize = 1 << 22;
/// From this many nodes on (listed objects), the first thread reads the nodes of listed
/// referents from their marks as it traverses ([`visit_resolving`]) instead of the second
/// thread after it ([`TrackedNodes::resolve`]). On a big heap the second thread's reads, of
/// objects its core has not touched, cost more a reference (at 30M objects 35 ns against 29 ns
/// at 10M; likely TLB misses whose page walks miss the cache, which this VM has no counters to
/// show); the first thread's are on the lines and pages of the reference counts it just read.
/// Measured in one process against the second thread's reads (medians): 30M objects 0.90 and
/// 0.91 of the time (6.48 against 7.12 s), 10M 0.94-1.02, 3M 1.05, 1M 1.09 (the first thread
/// is the busier one there).
const RESOLVE_INLINE_MIN: usize = 1 << 24;
/// Chunks handed to the second thread and not yet recorded, at most.
const IN_FLIGHT: usize = 3;
/// How many new nodes' objects are prefetched ahead while a chunk is recorded.
const FRESH_AHEAD: usize = 8;

/// The referents of a run of nodes, by address, and (once recorded by the lookups) the new
/// nodes they numbered.
#[derive(Default)]
struct Chunk {
    /// The run's first node.
    first: usize,
    /// For each node of the run, the end of its referents in `raw`.
    ends: Vec<usize>,
    /// The referents (borrowed: see [`Chunk::traverse`]); with the nodes of listed referents
    /// read as it traverses, those are [`RESOLVED`]` | ` their nodes instead: words to look
    /// up, never dereferenced.
    raw: Vec<*mut ffi::PyObject>,
    /// The referents the lookups numbered as new nodes, in id order.
    fresh: Vec<u64>,
    /// How many node ids existed once this chunk was looked up ([`Resolver::numbered`]).
    numbered: usize,
}

/// A chunk on its way to or from the second thread.
struct Sent(Chunk);

// SAFETY: the only non-`Send` part is `raw`'s object pointers, which the second thread reads as
// numbers (addresses to look up) and never dereferences.
unsafe impl Send for Sent {}

impl Chunk {
    /// The node after the run.
    fn end(&self) -> usize {
        self.first + self.ends.len()
    }

    /// Collect the referents of nodes `from..until`, stopping after [`CHUNK_EDGES`] addresses;
    /// with `found`, those that are listed objects as [`RESOLVED`]` | ` their nodes.
    ///
    /// # Safety
    /// GIL held; `object(i)` is a live object for each node in the range; the addresses are
    /// borrowed: no Python code may run until they are pushed; `found`'s marks are in place.
    unsafe fn traverse(
        &mut self,
        cache: &mut TypeCache,
        found: Option<&TrackedNodes>,
        mut counting: Option<&mut Counting>,
        from: usize,
        until: usize,
        object: impl Fn(usize) -> *mut ffi::PyObject,
    ) {
        // Object headers are cache misses: a few objects ahead are prefetched.
        const AHEAD: usize = 8;
        self.first = from;
        self.ends.clear();
        self.raw.clear();
        for i in from..until.min(from + AHEAD) {
            prefetch(object(i));
        }
        let mut kinds = KindCache::default();
        for i in from..until {
            if i + AHEAD < until {
                prefetch(object(i + AHEAD));
            }
            if let Some(c) = counting.as_deref_mut() {
                c.note(i, object(i), cache);
            }
            match found {
                Some(found) => {
                    let mut r = Resolving {
                        out: &mut self.raw,
                        found,
                        kinds: &mut kinds,
                    };
                    let arg = &mut r as *mut Resolving as *mut c_void;
                    cache.traverse_with(object(i), visit_resolving, arg);
                }
                None => cache.referents(object(i), &mut self.raw),
            }
            self.ends.push(self.raw.len());
            if self.raw.len() >= CHUNK_EDGES {
                break;
            }
        }
    }
}

/// One strong reference to each object of a vector, dropped with it.
struct OwnedRefs(Vec<*mut ffi::PyObject>);

impl Drop for OwnedRefs {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        Python::attach(|_py| release(&self.0));
        self.0.clear();
    }
}

/// Drop one reference to each object. Each is a header the cache has long lost: those a few
/// items ahead are prefetched (a prefetch never faults, even of an object freed meanwhile).
fn release(objects: &[*mut ffi::PyObject]) {
    const AHEAD: usize = 16;
    for (i, &o) in objects.iter().enumerate() {
        if let Some(&ahead) = objects.get(i + AHEAD) {
            prefetch(ahead);
        }
        // SAFETY: each pointer holds a reference its owner took; the GIL is held. Dropping may
        // free objects and run their finalizers, as freeing `gc.get_objects()` does; nothing
        // here is used afterwards.
        unsafe { ffi::Py_DecRef(o) };
    }
}

/// Strong references to every node of a capture, by node id.
pub struct Objects {
    /// The tracked objects in `gc.get_objects()` order: node `i < tracked.len()`.
    tracked: OwnedRefs,
    /// Nodes found only as referents, in id order after the tracked ones.
    extra: Vec<Py<PyAny>>,
    /// Every type of the graph's type table: an object's class can be changed (and its old
    /// class freed) by Python code that runs during the capture, a progress callback.
    _types: Vec<Py<PyAny>>,
    /// The objects of nodes removed as garbage ([`Objects::remove`]), released last.
    left_out: OwnedRefs,
}

impl Objects {
    /// The object of a node (a new strong reference).
    pub fn get<'py>(&self, py: Python<'py>, n: NodeId) -> Bound<'py, PyAny> {
        // SAFETY: the capture holds a reference to every node's object; the GIL is held.
        unsafe { Bound::from_borrowed_ptr(py, self.ptr(py, n as usize)) }
    }

    /// Number of references this capture holds on the object at `n` (1, for the list or `extra`).
    pub const HELD: isize = 1;

    /// Remove the nodes of `gone` (as [`Graph::remove_nodes`] does from the graph): their
    /// objects are released with the others, when the capture is dropped.
    fn remove(&mut self, gone: &NodeSet) {
        let n = self.tracked.0.len();
        let mut left_out = Vec::new();
        let mut i = 0;
        self.tracked.0.retain(|&o| {
            let keep = !gone.contains(i);
            if !keep {
                left_out.push(o);
            }
            i += 1;
            keep
        });
        let extra = std::mem::take(&mut self.extra);
        for (k, e) in extra.into_iter().enumerate() {
            if gone.contains((n + k) as NodeId) {
                left_out.push(e.into_ptr());
            } else {
                self.extra.push(e);
            }
        }
        self.left_out.0.extend(left_out);
    }
}

/// The addresses of a capture's nodes ([`Objects::addrs`]): the tracked objects', then the
/// others'.
#[derive(Clone, Copy)]
pub struct NodeAddrs<'a> {
    tracked: &'a [u64],
    extra: &'a [Py<PyAny>],
}

impl NodeAddrs<'_> {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.tracked.len() + self.extra.len()
    }

    /// The address of node `i` (< `len()`).
    #[inline]
    pub fn at(&self, i: usize) -> u64 {
        match self.tracked.get(i) {
            Some(&a) => a,
            None => self.extra[i - self.tracked.len()].as_ptr() as u64,
        }
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        let extra = std::mem::take(&mut self.extra);
        if extra.is_empty() {
            return;
        }
        // Each `Py` owns one reference: released in order, prefetched ahead.
        let raw: Vec<*mut ffi::PyObject> = extra.into_iter().map(Py::into_ptr).collect();
        Python::attach(|_py| release(&raw));
    }
}

impl Objects {
    /// The address of a node's object: the graph's address of the node, read from the
    /// capture's own references (no object is touched).
    #[inline]
    pub fn addr(&self, n: NodeId) -> usize {
        let n = n as usize;
        match self.tracked.0.get(n) {
            Some(&o) => o as usize,
            None => self.extra[n - self.tracked.0.len()].as_ptr() as usize,
        }
    }

    /// The nodes' addresses, to read on another thread (plain data: no object is touched).
    pub fn addrs(&self) -> NodeAddrs<'_> {
        NodeAddrs {
            tracked: words(&self.tracked.0),
            extra: &self.extra,
        }
    }

    /// Hint that [`Objects::addr`] of `n` will be read soon.
    #[inline]
    pub fn prefetch_addr(&self, n: NodeId) {
        let n = n as usize;
        let slot = match self.tracked.0.get(n) {
            Some(o) => o as *const _ as *mut ffi::PyObject,
            None => match self.extra.get(n - self.tracked.0.len()) {
                Some(e) => e as *const _ as *mut ffi::PyObject,
                None => return,
            },
        };
        prefetch(slot);
    }

    /// The nodes of the objects at `addrs` that the capture holds, found in one pass over
    /// the nodes' addresses in which a table of bits (set from the wanted addresses' hashes)
    /// rules out almost every node without a probe of `addrs`.
    pub fn nodes_at<T>(&self, addrs: &FxHashMap<u64, T>) -> FxHashMap<u64, NodeId> {
        let mut found: FxHashMap<u64, NodeId> = Default::default();
        if addrs.is_empty() {
            return found;
        }
        // About 64 bits per wanted address (at most 2^24 bits): few false hits.
        let bits = (addrs.len() * 64)
            .next_power_of_two()
            .clamp(1 << 12, 1 << 24);
        let shift = 64 - bits.trailing_zeros();
        let bit = |a: u64| (a >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift;
        let mut table = vec![0u64; bits / 64];
        for &a in addrs.keys() {
            let b = bit(a);
            table[(b / 64) as usize] |= 1 << (b % 64);
        }
        for (v, a) in node_addrs(&self.tracked.0, &self.extra).enumerate() {
            let b = bit(a);
            if table[(b / 64) as usize] & (1 << (b % 64)) != 0 && addrs.contains_key(&a) {
                found.entry(a).or_insert(v as NodeId);
            }
        }
        found
    }

    /// A borrowed pointer to the object of a node, valid while the capture lives.
    pub fn ptr(&self, _py: Python<'_>, n: usize) -> *mut ffi::PyObject {
        match self.tracked.0.get(n) {
            Some(&o) => o,
            None => self.extra[n - self.tracked.0.len()].as_ptr(),
        }
    }
}

/// Walk the whole heap into a graph. With `untracked`, objects found only as referents get
/// nodes too (and gc-type ones are traversed in turn); without it, edges to them are dropped.
///
/// `roots` that the gc does not track and no tracked object refers to (a fresh `{1: 2}` held
/// only by a local variable) get nodes too, so that walks can start from them.
///
/// `progress` reports the phases `walk` (the tracked objects) and `references`. Its callable
/// runs only where every object the capture goes on to read is held; the types seen so far are
/// held before it runs and the type cache is dropped after.
///
/// With `addrs_later`, the graph has no addresses yet: the caller gives them with
/// `Graph::set_addrs_packed` (packed from [`Objects::addrs`]) before it uses the graph, and
/// never holds a column of them (8 bytes a node).
///
/// With `leave_out_garbage`, the objects that `gc.collect()` would free (cyclic garbage and
/// what only it refers to) get no node: they are found on the graph
/// ([`refgraph_core::garbage`]) from each object's reference count, read as it is traversed,
/// instead of collecting first (on a big heap the collection costs half as much as the
/// capture: at 30M objects 8 to 10 s). What the collector would not collect is kept: objects
/// `gc.freeze()` put aside and what they refer to, and any object held from outside the
/// objects the capture traverses. While the garbage is found (on one thread), another faults
/// in the pages of `room_after(nodes)`: memory the caller writes next (`(address, bytes)`
/// pieces; the caller makes it for the nodes there are before the garbage leaves).
#[allow(clippy::too_many_arguments)]
pub fn capture(
    py: Python<'_>,
    untracked: bool,
    roots: &[Bound<'_, PyAny>],
    progress: &mut Reporter<'_>,
    addrs_later: bool,
    leave_out_garbage: bool,
    follow_code: bool,
    room_after: &mut dyn FnMut(usize) -> Vec<(usize, usize)>,
) -> PyResult<(Graph, Objects)> {
    let threads = refgraph_core::threads::count();
    let code = follow_code
        .then(|| crate::traverse::code_type(py))
        .transpose()?;
    let (mut g, mut objects, counts) = capture_with(
        py,
        untracked,
        roots,
        progress,
        threads,
        addrs_later,
        PAGER_MIN,
        RESOLVE_INLINE_MIN,
        true,
        leave_out_garbage,
        code,
    )?;
    if let Some(counts) = counts {
        // The walk that finds the garbage runs on one thread: another faults in the pages of
        // what comes next meanwhile (made by `room_after` for the nodes as they are before
        // the garbage leaves).
        let warmer = (threads > 1)
            .then(|| Warmer::start(room_after(g.len())))
            .flatten();
        // Progress may run Python code here: the walk reads only the graph and the counts
        // (read before), and every node's object is held.
        let n = g.len() as u64;
        progress.start("garbage", n)?;
        let gone = refgraph_core::garbage::unreachable_reporting(&g, counts, &mut |done| {
            progress.tick("garbage", done, n).map(|_| ())
        })?;
        progress.end("garbage", n)?;
        drop(warmer);
        if let Some(gone) = gone {
            g.remove_nodes(&gone);
            objects.remove(&gone);
        }
    }
    Ok((g, objects))
}

/// Whether a capture on one thread and one on two (with a third faulting pages in ahead, for
/// a heap of any size) give the same graph (same nodes in the same order, same types, flags
/// and references), taken one after the other with no Python code run in between but
/// `progress`, which the second capture reports to (it must not change the heap). For the
/// tests.
#[pyfunction]
#[pyo3(signature = (progress=None))]
pub fn capture_threads_agree(py: Python<'_>, progress: Option<Bound<'_, PyAny>>) -> PyResult<bool> {
    let one = {
        let (g, _objects, _) = capture_with(
            py,
            true,
            &[],
            &mut Reporter::new(None),
            1,
            false,
            0,
            0,
            false,
            false,
            None,
        )?;
        graph_parts(&g)
    };
    // The capture on two threads with the third faulting pages in ahead, whatever the size.
    let (g, _objects, _) = capture_with(
        py,
        true,
        &[],
        &mut Reporter::new(progress),
        2,
        false,
        0,
        0,
        false,
        false,
        None,
    )?;
    Ok(one == graph_parts(&g))
}

/// Every node's address and type address, then its flags, then the referent arrays.
fn graph_parts(g: &Graph) -> (Vec<u64>, Vec<u8>, Vec<u32>) {
    let (offsets, targets) = g.referent_arrays();
    let nodes = g
        .addrs()
        .iter()
        .zip(g.types())
        .flat_map(|(&a, &t)| [a, g.type_table()[t as usize].addr])
        .collect();
    let edges = offsets.iter().chain(targets).copied().collect();
    (nodes, g.all_flags().to_vec(), edges)
}

/// Whether a capture that finds tracked nodes from the marks in the collector's links
/// ([`Marks`]) gives the same graph as one that looks every address up in the index, on
/// `threads` threads (the third faulting pages in ahead at any size), with `roots` (as
/// [`capture`] takes them), the marks read as the objects are traversed if `inline` (as for a
/// big heap, [`RESOLVE_INLINE_MIN`]) else after; and whether the marks were used (None when
/// they could not be: `gc.get_objects()` was used, or a type's `tp_is_gc` is not `type`'s).
/// For the tests.
#[pyfunction]
#[pyo3(signature = (threads, roots=Vec::new(), inline=false))]
pub fn capture_marks_agree(
    py: Python<'_>,
    threads: usize,
    roots: Vec<Bound<'_, PyAny>>,
    inline: bool,
) -> PyResult<(bool, Option<bool>)> {
    let inline_min = if inline { 0 } else { usize::MAX };
    let parts = |marks: bool| -> PyResult<_> {
        let mut none = Reporter::new(None);
        let (g, _objects, _) = capture_with(
            py, true, &roots, &mut none, threads, false, 0, inline_min, marks, false, None,
        )?;
        Ok(graph_parts(&g))
    };
    let indexed = parts(false)?;
    MARKED.store(0, Relaxed);
    let marked = parts(true)?;
    let used = match MARKED.load(Relaxed) {
        1 => Some(false),
        2 => Some(true),
        _ => None,
    };
    Ok((indexed == marked, used))
}

/// How the last capture that tried marks went (for [`capture_marks_agree`]): 0 not used, 1
/// marked but not complete or not usable (restored at once), 2 used.
static MARKED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Whether captures may mark the collector's links ([`Marks`]): not with
/// `REFGRAPH_GC_MARKS=0` in the environment.
fn marks_allowed() -> bool {
    std::env::var_os("REFGRAPH_GC_MARKS").is_none_or(|v| v != "0")
}

#[allow(clippy::too_many_arguments)]
fn capture_with(
    py: Python<'_>,
    untracked: bool,
    roots: &[Bound<'_, PyAny>],
    progress: &mut Reporter<'_>,
    threads: usize,
    addrs_later: bool,
    pager_min: usize,
    inline_min: usize,
    marks: bool,
    count: bool,
    code: Option<usize>,
) -> PyResult<(Graph, Objects, Option<OutsideCounts>)> {
    // Marks only where no Python code runs until they are restored: not with a progress
    // callback.
    let mark = marks && !progress.active() && marks_allowed();
    // A big capture makes its builder first, sized as the last walk met or (before any) as
    // the collector counts ([`crate::gcwalk::expected_len`]), and another thread faults in
    // the pages the last capture wrote while this thread lists the objects (the other core
    // has nothing else to do then), instead of the capture's threads stopping at each fresh
    // page later (0.04 to 0.14 s of 1.4 to 1.9 s at 10M objects). Used only with the marks
    // (its index leaves the tracked nodes out) and for about as many objects.
    let guess = crate::gcwalk::expected_len(py);
    let early = (mark && threads > 1 && guess >= pager_min.max(PARALLEL_MIN))
        .then(|| {
            let mut b = GraphBuilder::for_capture(guess + guess / 2, edges_to_reserve(guess));
            b.set_threads(threads);
            b.leave_tracked_out_of_index(guess / 2 + roots.len()).ok()?;
            Some(b)
        })
        .flatten();
    let room = ListingRoom::new(guess);
    // The listing's room first (the walk writes it from its start), then the builder's.
    // Before the first capture, what is sure to come: a node for each tracked object, and
    // two references each (the benchmark's heap has 3.3).
    let warmer = early.as_ref().and_then(|b| {
        let per_tracked = match EDGES_PER_TRACKED.load(Relaxed) {
            0 => 2 * 16,
            e => e,
        };
        let nodes = match LAST_NODES.load(Relaxed) {
            0 => guess,
            n => n,
        };
        let mut ranges = room.unwritten();
        ranges.extend(b.unwritten(nodes, guess.saturating_mul(per_tracked) / 16));
        Warmer::start(ranges)
    });
    // The tracked objects, each with a reference of ours (released with `tracked`, also on
    // an early return), and their types.
    let (objects, types, marks) = tracked_refs_and_types(py, mark, room)?;
    drop(warmer);
    let tracked = OwnedRefs(objects);
    // Declared after `tracked`, so dropped (restoring the links) before it releases anything.
    let mut unmark = Unmark {
        marks,
        objects: &tracked.0,
        threads,
    };
    // The tracked nodes are found from the marks only when every listed object is marked and
    // every listed type tells its gc objects without a call: else the links are restored now
    // and every address is looked up in the index.
    let kinds = match &unmark.marks {
        Some(m) if m.complete() => gc_kinds(types.distinct()),
        _ => None,
    };
    if unmark.marks.is_some() {
        MARKED.store(if kinds.is_some() { 2 } else { 1 }, Relaxed);
    }
    if kinds.is_none() {
        // SAFETY: GIL held, no Python code run since the listing.
        unsafe { unmark.restore() };
    }
    let n = tracked.0.len();
    let mut counting = count.then(|| Counting::new(n));
    let mut held_types: Vec<Py<PyAny>> = Vec::new();
    // Progress reports run Python code, which may change objects' classes: the graph keeps
    // the classes the objects had when they were listed (not read again for each run of the
    // walk: at 30M objects, 30M cache misses), each held from now on. The listing holds most
    // of them already, but not a class `gc.freeze()` put out of the collector's lists, which a
    // callback could unfreeze and free.
    let listed_types = if progress.active() {
        hold_all(py, types.distinct())
    } else {
        Vec::new()
    };
    let mut cache: TypeCache;
    // The nodes' addresses are those of `tracked` and `extra`: given to the graph at the end.
    // The early builder if it fits (else freed now, before another is made).
    let early = early.filter(|_| kinds.is_some() && n.abs_diff(guess) <= guess / 8);
    let mut builder = match early {
        Some(b) => b,
        None => {
            let mut b = GraphBuilder::for_capture(n + n / 2, edges_to_reserve(n));
            b.set_threads(threads);
            if kinds.is_some() {
                b.leave_tracked_out_of_index(n / 2 + roots.len())
                    .map_err(graph_err)?;
            }
            b
        }
    };
    // Room for as many as the builder reserves, instead of growing by doubling (pages never
    // written cost nothing).
    let mut extra: Vec<Py<PyAny>> = Vec::with_capacity(n / 2);
    // SAFETY: the GIL is held, `tracked` holds strong references to its items and no Python
    // code runs in this block (no callbacks, no decref that could free anything: `extra` only
    // grows).
    unsafe {
        let items = &tracked.0;
        // Inserting a million addresses is a million cache misses in the index, which overlap
        // when done in one run (`add_tracked_run`), or in runs of a percent when progress is
        // reported (the types listed are held: see above).
        progress.start("walk", n as u64)?;
        let run = if progress.active() {
            (n / 100).max(1024)
        } else {
            n.max(1)
        };
        for (r, objects) in items.chunks(run).enumerate() {
            let from = r * run;
            let tps = &types.ids[from..from + objects.len()];
            builder
                .add_tracked_run_numbered(words(objects), tps, types.distinct(), flags::GC_TYPE)
                .map_err(graph_err)?;
            let done = (from + objects.len()) as u64;
            if progress.due(done) {
                hold_types(py, &builder, &mut held_types);
                progress.tick("walk", done, n as u64)?;
            }
        }
        drop(types);
        hold_types(py, &builder, &mut held_types);
        progress.end("walk", n as u64)?;
        cache = TypeCache::following(code);
        for r in roots {
            let p = r.as_ptr();
            let is_gc = cache.is_gc(p);
            let listed = || match (&unmark.marks, &kinds) {
                (Some(m), Some(_)) => is_gc && m.node_of_object(p).is_some(),
                _ => false,
            };
            if builder.lookup(p as u64).is_none() && !listed() {
                let fl = if is_gc { flags::GC_TYPE } else { 0 };
                builder
                    .add_untracked(p as u64, ffi::Py_TYPE(p) as u64, fl)
                    .map_err(graph_err)?;
                extra.push(r.clone().unbind());
            }
        }
        // The tracked nodes of referents, found from their objects (see `TrackedNodes`): on
        // a big heap by this thread as it traverses them, else by the thread that looks the
        // others up.
        let tracked_nodes = match (&unmark.marks, kinds) {
            (Some(marks), Some(kinds)) => Some(TrackedNodes { marks, kinds }),
            _ => None,
        };
        let found = tracked_nodes.as_ref();
        // Read by this thread as it traverses, or by the lookups after it.
        let inline = found.filter(|_| builder.len() >= inline_min);
        let after = found.filter(|_| inline.is_none());
        // Two threads: this one (holding the GIL) calls `tp_traverse` on chunks of nodes and
        // writes their referents' addresses down; a second one looks up those addresses in the
        // address index (plain data, no Python), chunk after chunk in order, numbering those
        // not found as the nodes to come (with `untracked`), and writes the chunk's edges; as
        // each chunk comes back, this one adds the new nodes it numbered (reading their types
        // and taking a reference to each), and traverses the next chunks meanwhile (up to
        // `IN_FLIGHT` ahead, over the nodes that exist). The graph is the same as when one
        // thread does it all (`REFGRAPH_THREADS=1`).
        let object = |i: usize, extra: &Vec<Py<PyAny>>| -> *mut ffi::PyObject {
            match items.get(i) {
                Some(&o) => o,
                None => extra[i - n].as_ptr(),
            }
        };
        hold_types(py, &builder, &mut held_types);
        let threaded = threads > 1 && builder.len() >= PARALLEL_MIN;
        let ahead = builder.len() >= pager_min;
        if threaded {
            // Before each report, the second thread finishes the chunks it has while this one
            // waits, then waits for the next chunk: about 4 ms each time at 10M (estimated: the
            // pass took about 0.4 s longer with 100 reports than the bare capture's).
            progress.fewer_steps(25);
        }
        progress.start("references", builder.len() as u64)?;
        cache = TypeCache::following(code);
        let mut resolver = builder.take_resolver(untracked).map_err(graph_err)?;
        let mut lane = References {
            counting: counting.as_mut(),
            builder: &mut builder,
            cache: &mut cache,
            extra: &mut extra,
            held_types: &mut held_types,
            progress,
            py,
            found: inline,
            traversed: 0,
            in_flight: 0,
            spare: Vec::new(),
        };
        let walked = if threaded {
            // The second thread writes the edges, into fresh pages that the kernel zeroes on
            // first write (at 30M objects a fifth of its time, while this thread had time to
            // spare): they are faulted in ahead ([`Pages`]), for a big heap by a third thread
            // that runs when a core is idle, else by this one as it sends each chunk.
            let pages = Pages::new(resolver.edge_room());
            let mut sent_edges = 0;
            let (to_worker, requests) = std::sync::mpsc::sync_channel::<Sent>(IN_FLIGHT);
            let (answers, from_worker) = std::sync::mpsc::sync_channel::<Sent>(IN_FLIGHT);
            let (walked, back) = std::thread::scope(|s| {
                let pages = &pages;
                if ahead {
                    s.spawn(move || pages.run_ahead());
                }
                // Stops the third thread however this closure ends (the scope waits for it).
                let _stop = pages.stop_on_drop();
                let worker = s.spawn(move || -> (Resolver, Result<(), GraphError>) {
                    for Sent(mut c) in requests {
                        if let Some(found) = after {
                            // See `TrackedNodes::resolve`: the chunk's objects are alive (the
                            // first thread runs no Python code while it is out).
                            found.resolve(words_mut(&mut c.raw));
                        }
                        let (first, raw) = (c.first as NodeId, words(&c.raw));
                        let pushed = resolver.push_referents(first, &c.ends, raw, &mut c.fresh);
                        if let Err(e) = pushed {
                            return (resolver, Err(e));
                        }
                        c.numbered = resolver.numbered();
                        if answers.send(Sent(c)).is_err() {
                            break;
                        }
                    }
                    (resolver, Ok(()))
                });
                let walked = lane.run(
                    &object,
                    |c| {
                        sent_edges += c.raw.len();
                        pages.upto(sent_edges, c.first + c.ends.len());
                        to_worker.send(Sent(c)).is_ok()
                    },
                    || from_worker.recv().ok().map(|Sent(c)| c),
                );
                // The second thread ends once no more chunks can come.
                drop(to_worker);
                drop(from_worker);
                (walked, worker.join().expect("address lookups do not panic"))
            });
            let (r, looked_up) = back;
            resolver = r;
            // A failed lookup (too many nodes) is the cause of a walk that stopped short.
            looked_up.map_err(graph_err)?;
            walked
        } else {
            let done = std::cell::RefCell::new(std::collections::VecDeque::new());
            let mut failed = None;
            let walked = lane.run(
                &object,
                |mut c| {
                    if let Some(found) = after {
                        found.resolve(words_mut(&mut c.raw));
                    }
                    let (first, raw) = (c.first as NodeId, words(&c.raw));
                    let looked_up = resolver.push_referents(first, &c.ends, raw, &mut c.fresh);
                    c.numbered = resolver.numbered();
                    match looked_up {
                        Ok(()) => done.borrow_mut().push_back(c),
                        Err(e) => failed = Some(e),
                    }
                    failed.is_none()
                },
                || done.borrow_mut().pop_front(),
            );
            if let Some(e) = failed {
                return Err(graph_err(e));
            }
            walked
        };
        // A walk stopped by its progress callback leaves nodes numbered and not added: its
        // error is the one to report.
        let returned = builder.return_resolver(resolver);
        walked?;
        returned.map_err(graph_err)?;
        // No lookup reads the links any more (the second thread has ended): restored before
        // anything else.
        drop(tracked_nodes);
        unmark.restore();
    }
    drop(unmark);
    hold_types(py, &builder, &mut held_types);
    progress.end("references", builder.len() as u64)?;
    let graph = if addrs_later {
        builder.finish_addrs_later()
    } else {
        builder.finish_with_addrs(|_| node_addrs(&tracked.0, &extra).collect())
    };
    remember_edges(n, graph.edge_count());
    LAST_NODES.store(graph.len(), Relaxed);
    held_types.extend(listed_types);
    let object = |i: usize| match tracked.0.get(i) {
        Some(&o) => o,
        None => extra[i - n].as_ptr(),
    };
    // SAFETY: every node's object is held; the GIL is held.
    let counts = counting.map(|c| unsafe { c.finish(object, &held_types) });
    Ok((
        graph,
        Objects {
            tracked,
            extra,
            _types: held_types,
            left_out: OwnedRefs(Vec::new()),
        },
        counts,
    ))
}

/// What a capture notes to leave garbage out without collecting
/// ([`refgraph_core::garbage`]): each node's reference count less the capture's own reference,
/// read as the node is traversed, and which nodes are classes (the capture holds references
/// to some classes too: counted once it holds all it will, [`Counting::finish`]).
struct Counting {
    counts: OutsideCounts,
    classes: Vec<NodeId>,
    /// Nodes from here on were not listed: found as referents.
    listed: usize,
}

impl Counting {
    fn new(listed: usize) -> Self {
        Counting {
            counts: OutsideCounts::with_capacity(listed + listed / 2),
            classes: Vec::new(),
            listed,
        }
    }

    /// Note node `i`'s object `o`, traversed now (nodes are noted in id order).
    ///
    /// # Safety
    /// GIL held; `o` is node `i`'s live object, held by the capture.
    #[inline]
    unsafe fn note(&mut self, i: usize, o: *mut ffi::PyObject, cache: &mut TypeCache) {
        debug_assert_eq!(i, self.counts.len());
        if cache.is_class(o) {
            self.classes.push(i as NodeId);
        }
        self.counts.push(Self::outside(i, o, self.listed, 0));
    }

    /// The references to `o` (node `i`) from elsewhere than the capture, which holds `ours`
    /// besides its one for the node. One not listed that the collector tracks was put aside
    /// by `gc.freeze()` (the collector's lists leave it out, and it does not collect it): held.
    unsafe fn outside(i: usize, o: *mut ffi::PyObject, listed: usize, ours: isize) -> u64 {
        if i >= listed && ffi::PyObject_GC_IsTracked(o) != 0 {
            return u64::MAX;
        }
        (ffi::Py_REFCNT(o) - Objects::HELD - ours).max(0) as u64
    }

    /// The counts, with each class's read again now that `held`, the capture's references to
    /// types, are all taken.
    ///
    /// # Safety
    /// GIL held; `object(i)` is node `i`'s live object, held by the capture.
    unsafe fn finish(
        mut self,
        object: impl Fn(usize) -> *mut ffi::PyObject,
        held: &[Py<PyAny>],
    ) -> OutsideCounts {
        let mut ours: FxHashMap<usize, isize> = Default::default();
        for t in held {
            *ours.entry(t.as_ptr() as usize).or_default() += 1;
        }
        for &v in &self.classes {
            let o = object(v as usize);
            let count = Self::outside(
                v as usize,
                o,
                self.listed,
                ours.get(&(o as usize)).copied().unwrap_or(0),
            );
            self.counts.set(v, count);
        }
        self.counts
    }
}

/// The reference pass of a capture: chunks of nodes traversed on this thread, handed to the
/// lookups (`send`: on the second thread, or done at once) and recorded in order as they come
/// back (`receive`).
struct References<'a, 'py, 'p> {
    /// Given, each node's reference count is noted as it is traversed.
    counting: Option<&'a mut Counting>,
    builder: &'a mut GraphBuilder,
    cache: &'a mut TypeCache,
    extra: &'a mut Vec<Py<PyAny>>,
    held_types: &'a mut Vec<Py<PyAny>>,
    progress: &'a mut Reporter<'p>,
    py: Python<'py>,
    /// Given, the nodes of listed referents are read as they are traversed.
    found: Option<&'a TrackedNodes<'a>>,
    /// Nodes before it are traversed: recorded, or in a chunk sent and not yet recorded.
    traversed: usize,
    /// Chunks sent and not yet recorded.
    in_flight: usize,
    spare: Vec<Chunk>,
}

impl References<'_, '_, '_> {
    /// Traverse every node (those added on the way too) and record its references.
    ///
    /// # Safety
    /// GIL held; `object(i, extra)` is a live object for every node `i`; the nodes' objects
    /// are held (`extra` holds those this pass adds). Python code runs only in progress
    /// reports, when no chunk is out.
    unsafe fn run(
        &mut self,
        object: &impl Fn(usize, &Vec<Py<PyAny>>) -> *mut ffi::PyObject,
        mut send: impl FnMut(Chunk) -> bool,
        mut receive: impl FnMut() -> Option<Chunk>,
    ) -> PyResult<()> {
        loop {
            while self.in_flight < IN_FLIGHT && self.traversed < self.builder.len() {
                let mut c = self.spare.pop().unwrap_or_default();
                let extra = &*self.extra;
                c.traverse(
                    self.cache,
                    self.found,
                    self.counting.as_deref_mut(),
                    self.traversed,
                    self.builder.len(),
                    |i| object(i, extra),
                );
                self.traversed = c.end();
                if !send(c) {
                    return Err(lookups_stopped());
                }
                self.in_flight += 1;
            }
            if self.in_flight == 0 {
                return Ok(());
            }
            let mut done = self.record_next(&mut receive)?;
            if self.progress.due(done as u64) {
                // Python code runs: the chunks out hold borrowed addresses (of objects alive
                // now, with no Python code run since they were traversed): recorded first.
                while self.in_flight > 0 {
                    done = self.record_next(&mut receive)?;
                }
                hold_types(self.py, self.builder, self.held_types);
                let len = self.builder.len() as u64;
                self.progress.tick("references", done as u64, len)?;
                *self.cache = TypeCache::following(self.cache.follows());
            }
        }
    }

    /// Record the next chunk that comes back from the lookups; returns the node after it.
    ///
    /// # Safety
    /// As [`References::run`].
    unsafe fn record_next(
        &mut self,
        receive: &mut impl FnMut() -> Option<Chunk>,
    ) -> PyResult<usize> {
        let mut c = receive().ok_or_else(lookups_stopped)?;
        self.in_flight -= 1;
        self.builder
            .reserve_numbered(c.numbered)
            .map_err(graph_err)?;
        record(self.py, self.builder, self.cache, self.extra, &c)?;
        let end = c.end();
        // A chunk holds all the referents of its last node: one of a big container's (the
        // benchmark heap's list of millions of records) made it tens of MB, kept until the
        // pass ends unless given back now.
        c.raw.shrink_to(2 * CHUNK_EDGES);
        c.fresh.shrink_to(2 * CHUNK_EDGES);
        self.spare.push(c);
        Ok(end)
    }
}

/// The error of a reference pass whose lookups stopped (the lookups' own error is reported
/// instead when there is one).
fn lookups_stopped() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("the capture's address lookups stopped")
}

/// Capture only what `roots` reach within `max_depth` references, breadth first: enough for
/// every forward query (`show_refs`, `find_ref_chain`) at that depth, without walking the
/// rest of the heap. The graph has referents only (no referrer index).
pub fn capture_forward(
    py: Python<'_>,
    roots: &[Bound<'_, PyAny>],
    max_depth: u32,
) -> PyResult<(Graph, Objects)> {
    let mut cache = TypeCache::default();
    let mut builder = GraphBuilder::with_capacity(roots.len() * 8, roots.len() * 16);
    let mut extra: Vec<Py<PyAny>> = Vec::new();
    let mut depth: Vec<u32> = Vec::new();
    // SAFETY: the GIL is held and no Python code runs in this block; every object recorded is
    // kept alive by `extra` (roots by the caller's references, referents by a new reference
    // taken when they are first seen, while their referrer is still alive).
    unsafe {
        for r in roots {
            let p = r.as_ptr();
            if builder.lookup(p as u64).is_none() {
                let fl = if cache.is_gc(p) { flags::GC_TYPE } else { 0 };
                builder
                    .add_untracked(p as u64, ffi::Py_TYPE(p) as u64, fl)
                    .map_err(graph_err)?;
                extra.push(r.clone().unbind());
                depth.push(0);
            }
        }
        let mut buf: Vec<*mut ffi::PyObject> = Vec::with_capacity(64);
        let mut next = 0usize;
        while next < builder.len() {
            buf.clear();
            let d = depth[next];
            if d < max_depth {
                cache.referents(extra[next].as_ptr(), &mut buf);
            }
            builder
                .push_edges(
                    next as NodeId,
                    buf.iter().map(|&r| r as u64),
                    |addr| {
                        let r = addr as *mut ffi::PyObject;
                        let fl = if cache.is_gc(r) { flags::GC_TYPE } else { 0 };
                        Some((ffi::Py_TYPE(r) as u64, fl))
                    },
                    |_, addr| {
                        extra.push(
                            Bound::from_borrowed_ptr(py, addr as *mut ffi::PyObject).unbind(),
                        );
                        depth.push(d + 1);
                    },
                )
                .map_err(graph_err)?;
            next += 1;
        }
    }
    let graph = builder.finish();
    Ok((
        graph,
        Objects {
            tracked: OwnedRefs(Vec::new()),
            extra,
            _types: Vec::new(),
            left_out: OwnedRefs(Vec::new()),
        },
    ))
}

/// Add the new nodes a chunk's lookups numbered (`Resolver::push_referents`, which recorded
/// its edges), each held by a new reference in `extra`: only those objects are read (their
/// type); the others are known by address alone.
///
/// # Safety
/// GIL held; the chunk was traversed with no Python code run since (its addresses are of live
/// objects), and none runs here.
unsafe fn record(
    py: Python<'_>,
    builder: &mut GraphBuilder,
    cache: &mut TypeCache,
    extra: &mut Vec<Py<PyAny>>,
    chunk: &Chunk,
) -> PyResult<()> {
    // Each new object's header is a cache miss: those a few places ahead are prefetched.
    for &a in chunk.fresh.iter().take(FRESH_AHEAD) {
        prefetch(a as *mut ffi::PyObject);
    }
    for (k, &a) in chunk.fresh.iter().enumerate() {
        if let Some(&ahead) = chunk.fresh.get(k + FRESH_AHEAD) {
            prefetch(ahead as *mut ffi::PyObject);
        }
        let r = a as *mut ffi::PyObject;
        let fl = if cache.is_gc(r) { flags::GC_TYPE } else { 0 };
        builder
            .add_reserved(a, ffi::Py_TYPE(r) as u64, fl)
            .map_err(graph_err)?;
        extra.push(Bound::from_borrowed_ptr(py, r).unbind());
    }
    Ok(())
}

/// The nodes of the last whole-heap capture (for the next one's [`Warmer`]).
static LAST_NODES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// References per tracked object in the last whole-heap capture, in sixteenths (0: none yet).
static EDGES_PER_TRACKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Room for the references of a capture of `tracked` objects: a tenth more than four per
/// object, or than the last capture had per object if that was more. The reference array is
/// one of the capture's largest: when it outgrew its room near the end (three per object
/// reserved, 3.3 met), the capture's peak at 30M objects was 180 MB higher (measured); room
/// never written is never touched, so costs nothing.
fn edges_to_reserve(tracked: usize) -> usize {
    use std::sync::atomic::Ordering;
    let sixteenths = EDGES_PER_TRACKED.load(Ordering::Relaxed).max(4 * 16);
    tracked.saturating_mul(sixteenths + sixteenths / 10) / 16
}

fn remember_edges(tracked: usize, edges: usize) {
    use std::sync::atomic::Ordering;
    if let Some(sixteenths) = edges.saturating_mul(16).checked_div(tracked) {
        EDGES_PER_TRACKED.store(sixteenths, Ordering::Relaxed);
    }
}

/// The pages of the reference arrays' room ([`EdgeRoom`]) faulted in ahead of the second
/// thread's writes, in blocks of a huge page's span, each by one thread only (so no page is
/// zeroed twice): by a third thread, [`Pages::run_ahead`], up to [`Pages::AHEAD`] items beyond
/// the chunks sent, at the lowest priority (it runs when a core is idle: the second thread
/// waits for chunks for much of a capture); and by the first thread as it sends a chunk
/// ([`Pages::upto`]), for the blocks the chunk's referents and node ends fall in that no one
/// has faulted in yet. After a pause, this machine's fresh pages wait for the host (its
/// balloon had handed them back) before they are zeroed: that wait now falls mostly on the
/// third thread instead of the first, which the capture waits for.
struct Pages {
    room: EdgeRoom,
    /// The next block to fault in, for the referents and for the node ends.
    next: [std::sync::atomic::AtomicUsize; 2],
    /// How far the chunks sent reach, in referents and in node ends.
    sent: [std::sync::atomic::AtomicUsize; 2],
    /// Set when the pass is over: [`Pages::run_ahead`] returns.
    stop: std::sync::atomic::AtomicBool,
}

/// Run the calling thread at the lowest priority the system gives (Linux's `SCHED_IDLE`:
/// only when a core is idle).
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sets this thread's own policy (0: the calling thread); a refusal is ignored.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// Sets its flag when dropped: stops a thread that faults pages in ahead.
struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

impl Pages {
    /// Items the third thread faults in beyond the chunks sent: two blocks, tens of
    /// milliseconds ahead of the writes, near enough that the zeroed lines are still in the
    /// cache when they are written (16 blocks ahead made captures slower back to back).
    const AHEAD: usize = 1 << 20;

    fn new(room: EdgeRoom) -> Pages {
        Pages {
            room,
            next: Default::default(),
            sent: Default::default(),
            stop: Default::default(),
        }
    }

    fn stop_on_drop(&self) -> StopOnDrop<'_> {
        StopOnDrop(&self.stop)
    }

    /// Claim every block of `which` through block `last` that no one has claimed yet,
    /// faulting each in; whether any was.
    fn claim_through(&self, which: usize, last: usize) -> bool {
        let mut did = false;
        loop {
            let k = self.next[which].load(Relaxed);
            if k > last {
                return did;
            }
            if self.next[which]
                .compare_exchange(k, k + 1, Relaxed, Relaxed)
                .is_ok()
            {
                self.room.prefault_block(which, k);
                did = true;
            }
        }
    }

    /// A chunk is sent: the referents up to `edges` and the node ends up to `nodes` (counted
    /// as [`EdgeRoom::block_of`] counts) will be written.
    fn upto(&self, edges: usize, nodes: usize) {
        for (which, end) in [(0, edges), (1, nodes)] {
            self.sent[which].store(end, Relaxed);
            if end > 0 {
                self.claim_through(which, self.room.block_of(which, end - 1));
            }
        }
    }

    /// The third thread: fault in blocks ahead of the chunks sent until stopped, at the
    /// lowest priority the system gives (Linux's `SCHED_IDLE`: only when a core is idle).
    fn run_ahead(&self) {
        lowest_priority();
        while !self.stop.load(Relaxed) {
            let did = (0..2).any(|which| {
                let goal = self.sent[which].load(Relaxed) + Self::AHEAD;
                let k = self.next[which].load(Relaxed);
                k <= self.room.block_of(which, goal) && self.claim_through(which, k)
            });
            if !did {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
    }
}

/// Take a reference to each type the builder saw since the last call. Without Python code run
/// since then, they are all types of live objects.
fn hold_types(py: Python<'_>, builder: &GraphBuilder, held: &mut Vec<Py<PyAny>>) {
    for t in &builder.type_table()[held.len()..] {
        // SAFETY: the type of an object that was alive when it was added, with no Python code
        // run since (see above); the GIL is held.
        held.push(unsafe { Bound::from_borrowed_ptr(py, t.addr as *mut ffi::PyObject) }.unbind());
    }
}

/// A strong reference to each of `types`: addresses of the types of live objects, read with
/// no Python code run since.
fn hold_all(py: Python<'_>, types: &[u64]) -> Vec<Py<PyAny>> {
    types
        .iter()
        // SAFETY: the type of a live object, read with no Python code run since (above); the
        // GIL is held.
        .map(|&t| unsafe { Bound::from_borrowed_ptr(py, t as *mut ffi::PyObject) }.unbind())
        .collect()
}

/// An object pointer or a `usize`: 8 bytes whose bits are an address.
trait Word: Copy {}
impl Word for *mut ffi::PyObject {}
impl Word for usize {}

/// Pointers or `usize`s as the `u64` addresses the core takes (the same bits).
fn words<T: Word>(items: &[T]) -> &[u64] {
    const { assert!(std::mem::size_of::<T>() == 8 && std::mem::align_of::<T>() == 8) };
    // SAFETY: T is a pointer or usize (initialized, 8 bytes, 8-aligned: checked above), whose
    // bits are a valid u64; the slice borrows `items`.
    unsafe { std::slice::from_raw_parts(items.as_ptr() as *const u64, items.len()) }
}

/// [`words`], to rewrite in place.
fn words_mut<T: Word>(items: &mut [T]) -> &mut [u64] {
    const { assert!(std::mem::size_of::<T>() == 8 && std::mem::align_of::<T>() == 8) };
    // SAFETY: as in `words`; any u64 written is a valid pointer or usize bit pattern (never
    // dereferenced as one: see `TrackedNodes::resolve`).
    unsafe { std::slice::from_raw_parts_mut(items.as_mut_ptr() as *mut u64, items.len()) }
}

/// The marks of a capture's listing ([`Marks`]), restored when this is dropped if they were
/// not before: however the capture ends, before its references are released.
struct Unmark<'a> {
    marks: Option<Marks>,
    objects: &'a [*mut ffi::PyObject],
    threads: usize,
}

impl Unmark<'_> {
    /// # Safety
    /// GIL held; no Python code run since the listing.
    unsafe fn restore(&mut self) {
        if let Some(m) = &mut self.marks {
            m.restore(self.objects, self.threads);
        }
    }
}

impl Drop for Unmark<'_> {
    fn drop(&mut self) {
        // SAFETY: the capture holds the GIL from the listing to its end and runs no Python
        // code while marks are in place (see `capture_with`).
        unsafe { self.restore() };
    }
}

/// How the tracked objects of each listed type tell they are gc objects: None if one type
/// has a `tp_is_gc` other than `type`'s (which only the GIL's holder may call) or is not a gc
/// type at all.
fn gc_kinds(types: &[u64]) -> Option<FxHashMap<u64, GcKind>> {
    let mut cache = TypeCache::default();
    types
        .iter()
        .map(|&t| {
            // SAFETY: the type of a listed object (held), GIL held.
            match unsafe { cache.gc_kind(t as *mut ffi::PyTypeObject) } {
                Some(GcKind::NotGc) | None => None,
                Some(k) => Some((t, k)),
            }
        })
        .collect()
}

/// Finds the nodes of referents that are listed tracked objects from the objects themselves:
/// a listed object's `_gc_prev` link holds its node ([`Marks`]) while the capture runs.
struct TrackedNodes<'a> {
    marks: &'a Marks,
    /// Every listed type (any other type has no listed object).
    kinds: FxHashMap<u64, GcKind>,
}

impl TrackedNodes<'_> {
    /// Replace each referent address of `raw` that is a listed object by [`RESOLVED`]` | `its
    /// node; the others are left for the index. Reads each referent's type, and the link of
    /// those of a listed type that are gc objects (the two words before them are then their
    /// `PyGC_Head`): on the cache lines of the reference counts the first thread's visitor
    /// just read. Runs on the second thread without the GIL: reads only.
    ///
    /// # Safety
    /// Every address in `raw` is of a live object, and stays so while this runs: the first
    /// thread (which holds the GIL) runs no Python code while a chunk is out; the marks are
    /// in place.
    unsafe fn resolve(&self, raw: &mut [u64]) {
        const AHEAD: usize = 16;
        let mut last: (u64, Option<GcKind>) = (0, None);
        for j in 0..raw.len() {
            if let Some(&b) = raw.get(j + AHEAD) {
                prefetch((b as usize).wrapping_sub(GC_HEAD) as *mut ffi::PyObject);
            }
            let o = raw[j] as *mut ffi::PyObject;
            let tp = ffi::Py_TYPE(o) as u64;
            let kind = if tp == last.0 {
                last.1
            } else {
                let k = self.kinds.get(&tp).copied();
                last = (tp, k);
                k
            };
            if kind.is_some_and(|k| k.is_gc(o)) {
                if let Some(id) = self.marks.node_of_object(o) {
                    raw[j] = RESOLVED | id as u64;
                }
            }
        }
    }
}

/// What [`visit_resolving`] writes to.
struct Resolving<'a> {
    out: &'a mut Vec<*mut ffi::PyObject>,
    found: &'a TrackedNodes<'a>,
    kinds: &'a mut KindCache,
}

/// The kinds of the referents' types ([`TrackedNodes::kinds`]), by type: a direct-mapped
/// cache in front of the map (a hash probe per reference showed in profiles).
struct KindCache([(u64, Option<GcKind>); 64]);

impl Default for KindCache {
    fn default() -> Self {
        KindCache([(0, None); 64])
    }
}

impl KindCache {
    #[inline]
    fn get(&mut self, tp: u64, found: &TrackedNodes) -> Option<GcKind> {
        let slot = &mut self.0[(tp >> 4) as usize % 64];
        if slot.0 != tp {
            *slot = (tp, found.kinds.get(&tp).copied());
        }
        slot.1
    }
}

/// The `tp_traverse` visitor of a capture that reads the nodes of listed referents as it
/// traverses: records each referent that is alive (as [`crate::traverse`]'s visitor does) as
/// [`RESOLVED`]` | ` its node if it is a listed object, else by address (for the index). The
/// type and the mark (`_gc_prev`, the word before the object) are on the line, or the line
/// before, of the reference count just read.
///
/// # Safety
/// `arg` is a [`Resolving`]; the GIL is held and the marks are in place; `obj`, if not NULL,
/// is an object whose memory is allocated (a live one, or a free-list entry whose count is 0).
unsafe extern "C" fn visit_resolving(obj: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    if obj.is_null() || ffi::Py_REFCNT(obj) <= 0 {
        return 0;
    }
    let r = &mut *(arg as *mut Resolving);
    let listed = match r.kinds.get(ffi::Py_TYPE(obj) as u64, r.found) {
        Some(k) if k.is_gc(obj) => r.found.marks.node_of_object(obj),
        _ => None,
    };
    r.out.push(match listed {
        Some(id) => (RESOLVED | id as u64) as usize as *mut ffi::PyObject,
        None => obj,
    });
    0
}

/// The nodes' addresses in id order: the tracked objects', then the others' (a capture's
/// references are its objects' addresses).
fn node_addrs<'a>(
    tracked: &'a [*mut ffi::PyObject],
    extra: &'a [Py<PyAny>],
) -> impl Iterator<Item = u64> + 'a {
    let others = extra.iter().map(|o| o.as_ptr() as u64);
    words(tracked).iter().copied().chain(others)
}

fn graph_err(e: refgraph_core::graph::GraphError) -> PyErr {
    pyo3::exceptions::PyMemoryError::new_err(e.to_string())
}

/// The reference count of an object as the interpreter reports it.
pub fn refcount(obj: &Bound<'_, PyAny>) -> isize {
    // SAFETY: obj is a live object and we hold the GIL.
    unsafe { ffi::Py_REFCNT(obj.as_ptr()) }
}
