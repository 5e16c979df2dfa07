//! Visiting every object the garbage collector tracks without building `gc.get_objects()`.
//!
//! `gc.get_objects()` walks the collector's three generation lists and appends every object to
//! a new list (one reference taken per object); freeing that list drops them again. For a query
//! that only reads each object's type (`typestats`, `count`, `by_type`) or address (`at`,
//! `at_addrs`), that list is most of the cost. On the CPython versions whose collector layout is
//! known (3.10 to 3.13: three `gc_generation { PyGC_Head head; int threshold; int count; }`
//! structs in a row, each a circular list of `PyGC_Head`s placed just before their objects),
//! the lists are walked directly, in the same order as `gc.get_objects()`.
//!
//! The layout is never trusted blindly. The first time, the generation heads are found from a
//! freshly tracked list (the newest object links back to the head of generation 0), the walks
//! of generations 0 and 1 are checked in lock step against `gc.get_objects(generation)`,
//! dereferencing only the `PyGC_Head`s of objects that list holds, and the head of the oldest
//! generation (which holds nearly every object of a big heap: listing it would cost as much as
//! `gc.get_objects()`) is proven a list head in place: its neighbours, read through the kernel
//! ([`read_words`]: no fault whatever the address), link back to it. Where the kernel refuses
//! that read, the whole walk is checked against `gc.get_objects()` instead. Any difference,
//! any other Python version, or `REFGRAPH_GC_WALK=0` in the environment, and every caller
//! falls back to `gc.get_objects()`. A capture that makes the whole-heap check (or falls back)
//! takes that list's references over rather than walking the heap again and releasing the
//! list's.
//!
//! A walk runs no Python code and releases nothing: with the GIL held, the lists cannot change
//! under it. What the callback keeps must be a strong reference or a plain number.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;
use refgraph_core::numbering::Numbering;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::cpython::{GC_HEAD, GENERATION, GENERATIONS};

/// Addresses of the three generation heads, once checked.
#[derive(Clone, Copy)]
pub struct Heads([usize; GENERATIONS]);

/// 0: not checked yet; 1: not usable here; 2: `HEAD0` is the checked head of generation 0.
static STATE: AtomicU8 = AtomicU8::new(0);
static HEAD0: AtomicUsize = AtomicUsize::new(0);
/// How many objects the last walk met (to size the next listing).
static LAST_LEN: AtomicUsize = AtomicUsize::new(0);

/// How many objects the last walk met (0 before the first): the size to expect.
fn last_len() -> usize {
    LAST_LEN.load(Ordering::Relaxed)
}

/// How many objects a walk should expect to meet: what the last walk met, or before the first
/// walk, what the collector counted ([`collector_estimate`]); 0 when neither is known. Only
/// sizes arrays: a wrong guess costs time or untouched room, never a wrong result.
pub fn expected_len(py: Python<'_>) -> usize {
    match last_len() {
        // Where the kernel refuses to read this process's memory (some sandboxes), the
        // count cannot be read, and the first check of the lists would list the whole heap
        // only to be thrown away here: not made here then.
        0 if !kernel_reads() => 0,
        0 => heads(py)
            .and_then(|h| collector_estimate(py, h))
            .unwrap_or(0),
        n => n,
    }
}

/// Whether [`read_words`] works here (on a word pair of this thread's stack).
fn kernel_reads() -> bool {
    let probe = [0usize; 2];
    read_words(probe.as_ptr() as usize).is_some()
}

/// The collector's own count of the objects it tracks: the oldest generation's size at the
/// last full collection (`long_lived_total`), what moved there since (`long_lived_pending`)
/// and generation 0's count, read from its runtime state, 3.10 to 3.13:
/// `generations[3]`, `generation0` (a pointer to the first head), `permanent_generation`,
/// `generation_stats[3]` (three `Py_ssize_t`s each), `int collecting`, `garbage`,
/// `callbacks`, `long_lived_total`, `long_lived_pending`. Read through the kernel
/// ([`read_words`]), and only believed when the words around it are what they must be:
/// `generation0` the first head, and `garbage` and `callbacks` the very lists the `gc`
/// module exposes. Right after `gc.collect()` it is exact.
fn collector_estimate(py: Python<'_>, h: Heads) -> Option<usize> {
    const WORD: usize = std::mem::size_of::<usize>();
    let head0 = h.0[0];
    let generation0 = head0 + GENERATIONS * GENERATION;
    let stats = generation0 + WORD + GENERATION;
    let collecting = stats + GENERATIONS * 3 * WORD;
    let garbage = (collecting + std::mem::size_of::<std::ffi::c_int>()).next_multiple_of(WORD);
    let [first, _] = read_words(generation0)?;
    if first != head0 {
        return None;
    }
    let gc = py.import("gc").ok()?;
    let addr = |name| gc.getattr(name).ok().map(|o| o.as_ptr() as usize);
    let expected = [addr("garbage")?, addr("callbacks")?];
    if read_words(garbage)? != expected {
        return None;
    }
    let [total, pending] = read_words(garbage + 2 * WORD)?;
    // `gc_generation.count` of generation 0: the int after its head and threshold.
    let [ints, next] = read_words(head0 + GC_HEAD)?;
    let young = match (WORD, cfg!(target_endian = "little")) {
        (8, true) => (ints >> 32) as u32 as i32,
        (8, false) => ints as u32 as i32,
        _ => next as u32 as i32,
    };
    let total = (total as isize).max(0) as usize;
    let pending = (pending as isize).max(0) as usize;
    Some(total + pending + young.max(0) as usize)
}

impl Heads {
    fn from_head0(head0: usize) -> Heads {
        Heads(std::array::from_fn(|i| head0 + i * GENERATION))
    }
}

/// The checked generation heads, or None when the lists cannot be walked directly (then use
/// `gc.get_objects()`).
///
/// Nothing is locked while the check runs: it calls into Python (allocations may start a
/// collection, whose finalizers may run any code, even a refgraph query on this or another
/// thread); a query meanwhile simply checks too. The heads never move once found.
pub fn heads(py: Python<'_>) -> Option<Heads> {
    heads_and_list(py).0
}

/// [`heads`], and the `gc.get_objects()` list that the check walked when this call made the
/// check (None when it was made before, or failed before the list was made): a caller that
/// needs that list anyway saves a walk of the heap.
fn heads_and_list(py: Python<'_>) -> (Option<Heads>, Option<Bound<'_, PyList>>) {
    match STATE.load(Ordering::Acquire) {
        1 => return (None, None),
        2 => return (Some(Heads::from_head0(HEAD0.load(Ordering::Acquire))), None),
        _ => {}
    }
    let (found, list) = find_heads(py).unwrap_or((None, None));
    match found {
        Some(h) => {
            HEAD0.store(h.0[0], Ordering::Release);
            STATE.store(2, Ordering::Release);
        }
        None => STATE.store(1, Ordering::Release),
    }
    (found, list)
}

/// The collector's own count of the objects it tracks ([`collector_estimate`]), None when it
/// cannot be read here. For the tests.
#[pyfunction]
pub fn gc_collector_estimate(py: Python<'_>) -> Option<usize> {
    collector_estimate(py, heads(py)?)
}

/// Whether queries walk the collector's lists directly (for tests and the benchmark).
#[pyfunction]
pub fn gc_walk_active(py: Python<'_>) -> bool {
    heads(py).is_some()
}

/// Whether every generation list the walk reads is a sound doubly linked list with no mark
/// left in it ([`Marks`]): each `PyGC_Head`'s `_gc_prev` is the one before it (or the
/// list's head), and the walk from the head comes back to it. None when the lists are not
/// walked here. For the tests.
#[pyfunction]
pub fn gc_lists_sound(py: Python<'_>) -> Option<bool> {
    let h = heads(py)?;
    // SAFETY: GIL held, no Python code runs; only the checked heads and the `PyGC_Head`s they
    // link to are read.
    Some(unsafe {
        h.0.iter().all(|&head| {
            let mut before = head;
            let mut p = *(head as *const usize);
            loop {
                let link = *((p + std::mem::size_of::<usize>()) as *const usize);
                if link & MARK != 0 || link & !PREV_FLAGS != before {
                    return false;
                }
                if p == head {
                    return true;
                }
                before = p;
                p = *(p as *const usize);
            }
        })
    })
}

/// The checked heads (None: not usable here), and the `gc.get_objects()` list the check was
/// made against, if it was made.
fn find_heads(py: Python<'_>) -> PyResult<(Option<Heads>, Option<Bound<'_, PyList>>)> {
    if std::env::var_os("REFGRAPH_GC_WALK").is_some_and(|v| v == "0") {
        return Ok((None, None));
    }
    if !crate::cpython::running(py).is_some_and(|f| f.gc_lists) {
        return Ok((None, None));
    }
    // A new list is tracked at the tail of generation 0: its `_gc_next` is that head.
    let head0 = {
        let probe = PyList::empty(py);
        // SAFETY: `probe` is a live gc-tracked object we own; its PyGC_Head sits right before it.
        unsafe { *((probe.as_ptr() as usize - GC_HEAD) as *const usize) }
    };
    if head0 == 0 {
        return Ok((None, None));
    }
    let heads = Heads::from_head0(head0);
    let gc = py.import("gc")?;
    // The young generations, each against its own list.
    for g in 0..GENERATIONS - 1 {
        let objects = gc
            .call_method1("get_objects", (g,))?
            .cast_into::<PyList>()?;
        // SAFETY: GIL held, no Python code runs until the check ends; only the head and the
        // PyGC_Heads of objects held by `objects` are read.
        if !unsafe { check(&heads.0[g..g + 1], &objects) } {
            return Ok((None, None));
        }
    }
    if is_list_head(heads.0[GENERATIONS - 1]) {
        return Ok((Some(heads), None));
    }
    // The kernel would not tell: every list against the whole heap's.
    let objects = gc.call_method0("get_objects")?.cast_into::<PyList>()?;
    // SAFETY: as above.
    let ok = unsafe { check(&heads.0, &objects) };
    Ok((ok.then_some(heads), Some(objects)))
}

/// Whether `h` is the head of a circular doubly linked list of `PyGC_Head`s, read only
/// through the kernel: [`linked_both_ways`] (an empty list's head links to itself both ways).
fn is_list_head(h: usize) -> bool {
    linked_both_ways(h).is_some()
}

/// `Some` when the `PyGC_Head` at `at`, read through the kernel ([`read_words`]: no fault
/// whatever the address), links to neighbours that link back to it: the next one's
/// `_gc_prev` and the previous one's `_gc_next` are `at`.
fn linked_both_ways(at: usize) -> Option<()> {
    let aligned = |p: usize| p != 0 && p % std::mem::size_of::<usize>() == 0;
    let [next, prev] = read_words(at)?;
    let prev = prev & !PREV_FLAGS;
    if !aligned(next) || !aligned(prev) {
        return None;
    }
    let [_, next_prev] = read_words(next)?;
    let [prev_next, _] = read_words(prev)?;
    (next_prev & !PREV_FLAGS == at && prev_next == at).then_some(())
}

/// Walk the lists of `heads`, in order, in lock step with `objects` (which
/// `gc.get_objects()` just returned for them), never following a link that does not lead to
/// the next object of `objects`.
unsafe fn check(heads: &[usize], objects: &Bound<'_, PyList>) -> bool {
    let lp = objects.as_ptr();
    let skip = lp as usize - GC_HEAD; // `objects` itself is tracked but not listed
    let n = objects.len();
    let gc_of = |i: usize| ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t) as usize - GC_HEAD;
    let mut i = 0;
    for &h in heads {
        let mut p = *(h as *const usize);
        while p != h {
            if p != skip {
                if i >= n || p != gc_of(i) {
                    return false;
                }
                i += 1;
            }
            // `p` is the PyGC_Head of a live object (checked above, or `objects` itself).
            p = *(p as *const usize);
        }
    }
    i == n
}

/// Low bits of `_gc_prev` that hold flags, not address bits.
const PREV_FLAGS: usize = 0b11;

/// Where a walk met an object: [`Place::key`]s sort in `gc.get_objects()` order.
#[derive(Clone, Copy)]
pub struct Place {
    generation: usize,
    from_tail: bool,
    step: usize,
}

impl Place {
    /// Met walking back from the tail.
    pub fn is_from_tail(self) -> bool {
        self.from_tail
    }

    /// Objects met from the head come first, in the order met; those met from the tail of the
    /// same list come after them, in reverse.
    pub fn key(self) -> u64 {
        let g = (self.generation as u64) << 61;
        if self.from_tail {
            g | (1 << 60) | ((1u64 << 60) - 1 - self.step as u64)
        } else {
            g | self.step as u64
        }
    }
}

/// Call `f` once with every gc-tracked object and its [`Place`].
///
/// Following a linked list is one cache miss after another, each waiting for the last; walking
/// each list from both ends at once (`_gc_next` from the head, `_gc_prev` from the tail) keeps
/// two misses in flight. A step back is taken only along a link that the forward walk would
/// take too (`_gc_next` of the node before points back; it shares the cache line): if one
/// does not, the rest of the list is walked forward only, to where the tail walk stopped.
///
/// # Safety
/// The GIL must be held and `f` must not run Python code, release the GIL, or free objects
/// (taking a new reference is fine: `f` is called exactly once per object).
pub unsafe fn visit(heads: &Heads, mut f: impl FnMut(*mut ffi::PyObject, Place)) {
    visit_until(heads, |o, place| {
        f(o, place);
        true
    })
}

/// [`visit`], stopping as soon as `f` returns false.
///
/// # Safety
/// As [`visit`].
pub unsafe fn visit_until(heads: &Heads, mut f: impl FnMut(*mut ffi::PyObject, Place) -> bool) {
    let next = |p: usize| *(p as *const usize);
    let prev = |p: usize| *((p + std::mem::size_of::<usize>()) as *const usize) & !PREV_FLAGS;
    let obj = |p: usize| (p + GC_HEAD) as *mut ffi::PyObject;
    for (generation, &h) in heads.0.iter().enumerate() {
        let head = |step| Place {
            generation,
            from_tail: false,
            step,
        };
        let tail = |step| Place {
            generation,
            from_tail: true,
            step,
        };
        let (mut i, mut j) = (0, 0);
        let mut fwd = next(h);
        if fwd == h {
            continue;
        }
        let mut bwd = prev(h);
        // The node the tail walk reached last: the forward walk stops there.
        let mut stop;
        loop {
            if fwd == bwd {
                if !f(obj(fwd), head(i)) {
                    return;
                }
                break;
            }
            let (after, before) = (next(fwd), prev(bwd));
            if !f(obj(fwd), head(i)) || !f(obj(bwd), tail(j)) {
                return;
            }
            i += 1;
            j += 1;
            stop = bwd;
            if after == bwd {
                break;
            }
            fwd = after;
            if before == h || next(before) != bwd {
                // Not a mirror of the forward links: finish forward only.
                while fwd != stop && fwd != h {
                    if !f(obj(fwd), head(i)) {
                        return;
                    }
                    i += 1;
                    fwd = next(fwd);
                }
                break;
            }
            bwd = before;
        }
    }
}

/// The gc-tracked object at `addr`, proven without a walk, or None when it cannot be proven
/// (the caller then walks: a None here says nothing).
///
/// `at(id(obj))` used to walk the lists until it met the address: half the heap on average.
/// Instead the address is checked in place, reading memory only through the kernel
/// (`process_vm_readv` on this process), which reports an unmapped or unreadable address as an
/// error instead of a fault: any integer can be passed without risk. The object is proven
/// tracked when its `PyGC_Head` (the two words before it) links to neighbours that link back
/// to it in both directions, as only a node of one of the collector's lists does; a freed
/// object has a zero `_gc_prev` (untracked), the generation heads themselves are excluded, and
/// its header must hold a reference count and a type pointer. Only then is the object
/// dereferenced.
///
/// Lists `gc.get_objects()` does not walk also pass: the permanent generation (the caller
/// checks `gc.get_freeze_count()`), and, during a collection, the list of objects being
/// finalized (only reachable by a finalizer calling `at` with the address of another object
/// of the same garbage: it is alive then, so returning it is safe).
pub fn tracked_at(heads: &Heads, addr: usize) -> Option<*mut ffi::PyObject> {
    const WORD: usize = std::mem::size_of::<usize>();
    let aligned = |p: usize| p != 0 && p % WORD == 0;
    if !aligned(addr) || addr < 4096 + GC_HEAD {
        return None;
    }
    let gc = addr - GC_HEAD;
    // The collector's state (the generation heads and what surrounds them) is no object.
    let state = heads.0[0].saturating_sub(64 * WORD)..heads.0[0] + 128 * WORD;
    if state.contains(&gc) {
        return None;
    }
    linked_both_ways(gc)?;
    let [refcnt, tp] = read_words(addr)?;
    if refcnt as isize <= 0 || !aligned(tp) {
        return None;
    }
    read_words(tp)?;
    Some(addr as *mut ffi::PyObject)
}

/// Two words at `addr`, read through the kernel: None where nothing readable is mapped (or
/// where the system forbids the call, as some container sandboxes do), never a fault.
fn read_words(addr: usize) -> Option<[usize; 2]> {
    #[cfg(target_os = "linux")]
    {
        static FORBIDDEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if FORBIDDEN.load(Ordering::Relaxed) {
            return None;
        }
        let mut buf = [0usize; 2];
        let size = std::mem::size_of_val(&buf);
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: size,
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: size,
        };
        // SAFETY: the kernel writes at most `size` bytes into `buf` and checks `addr` itself.
        let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        if n == size as isize {
            return Some(buf);
        }
        let err = std::io::Error::last_os_error().raw_os_error();
        if matches!(err, Some(libc::EPERM) | Some(libc::ENOSYS)) {
            FORBIDDEN.store(true, Ordering::Relaxed);
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = addr;
        None
    }
}

/// `f` of every gc-tracked object, in `gc.get_objects()` order.
///
/// # Safety
/// As [`visit`].
pub unsafe fn map<T>(heads: &Heads, mut f: impl FnMut(*mut ffi::PyObject) -> T) -> Vec<T> {
    filter_map(heads, |o| Some(f(o)))
}

/// The `Some`s of `f` over every gc-tracked object, in `gc.get_objects()` order.
///
/// # Safety
/// As [`visit`].
pub unsafe fn filter_map<T>(
    heads: &Heads,
    mut f: impl FnMut(*mut ffi::PyObject) -> Option<T>,
) -> Vec<T> {
    // Room for every object of the last walk: growing a vector of a million items copies it
    // several times, while room never written costs no memory (its pages are never touched).
    let mut out = Vec::with_capacity(LAST_LEN.load(Ordering::Relaxed) / 8 * 9);
    // A tail walk's items, reversed into place at the end of each generation.
    let mut from_tail = Vec::new();
    let mut generation = 0;
    let mut walked = 0;
    visit(heads, |o, place| {
        walked += 1;
        if place.generation != generation {
            out.extend(from_tail.drain(..).rev());
            generation = place.generation;
        }
        if let Some(item) = f(o) {
            if place.from_tail {
                from_tail.push(item);
            } else {
                out.push(item);
            }
        }
    });
    out.extend(from_tail.drain(..).rev());
    LAST_LEN.store(walked, Ordering::Relaxed);
    out
}

/// What `gc.get_objects()` returns, built from a walk of the collector's lists when they can
/// be walked (about a third faster: two ends of each list are followed at once).
#[pyfunction(name = "gc_objects")]
pub fn tracked_objects(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    Ok(tracked_objects_and_types(py)?.0)
}

/// [`tracked_objects`], with the type address of each item when the lists were walked (read
/// during the walk, while each object's header is in the cache).
///
/// Each object gets its reference during the walk (its header is in the cache then), and the
/// list is made afterwards at its final size, with the collector disabled: its allocation cannot
/// start a collection (whose finalizers could run code), and as `gc.get_objects()` the list does
/// not hold itself.
pub fn tracked_objects_and_types(
    py: Python<'_>,
) -> PyResult<(Bound<'_, PyList>, Option<Vec<usize>>)> {
    let Some(h) = heads(py) else {
        return Ok((gc_objects(py)?, None));
    };
    // SAFETY: GIL held; the closure takes a reference to each object (which frees nothing) and
    // reads its type; the list steals those references. No Python code runs in between.
    unsafe {
        let was_enabled = ffi::PyGC_Disable();
        let walked = map(&h, |o| {
            ffi::Py_IncRef(o);
            (o, ffi::Py_TYPE(o) as usize)
        });
        let lp = ffi::PyList_New(walked.len() as ffi::Py_ssize_t);
        if lp.is_null() {
            for &(o, _) in &walked {
                ffi::Py_DecRef(o);
            }
            if was_enabled != 0 {
                ffi::PyGC_Enable();
            }
            return Err(PyErr::fetch(py));
        }
        let mut types = Vec::with_capacity(walked.len());
        for (i, (o, tp)) in walked.into_iter().enumerate() {
            ffi::PyList_SetItem(lp, i as ffi::Py_ssize_t, o);
            types.push(tp);
        }
        if was_enabled != 0 {
            // Only sets a flag: no collection starts here.
            ffi::PyGC_Enable();
        }
        let list = Bound::from_owned_ptr(py, lp).cast_into_unchecked::<PyList>();
        Ok((list, Some(types)))
    }
}

/// The types of listed objects: each as a number (an index into [`ListedTypes::distinct`],
/// the type addresses in the order they were first met), 4 bytes per object instead of 8.
pub struct ListedTypes {
    pub ids: Vec<u32>,
    numbering: Numbering,
}

impl ListedTypes {
    fn with_capacity(n: usize) -> Self {
        ListedTypes {
            ids: Vec::with_capacity(n),
            numbering: Numbering::new(),
        }
    }

    /// The number of type `t` (a nonzero address), given when first met.
    #[inline]
    fn number(&mut self, t: usize) -> u32 {
        self.numbering.number(t as u64)
    }

    /// The distinct type addresses, in the order of their numbers.
    pub fn distinct(&self) -> &[u64] {
        self.numbering.addrs()
    }
}

/// The arrays a listing of the tracked objects ([`tracked_refs_and_types`]) is written to,
/// made before it with room for as many objects as expected and an eighth more (the objects
/// met walking back from a list's tail wait in `tail` until the list ends), so that another
/// thread may fault their pages in while the walk writes them ([`ListingRoom::unwritten`]):
/// at 30M objects, grown as they filled, they cost the walk a second of fresh pages (and
/// copies) on this VM.
pub struct ListingRoom {
    objects: Vec<*mut ffi::PyObject>,
    types: ListedTypes,
    tail: Vec<(*mut ffi::PyObject, u32)>,
    expected: usize,
}

impl ListingRoom {
    /// Room for `expected` objects and an eighth more.
    pub fn new(expected: usize) -> Self {
        let cap = expected / 8 * 9;
        ListingRoom {
            objects: Vec::with_capacity(cap),
            types: ListedTypes::with_capacity(cap),
            tail: Vec::with_capacity(cap / 2),
            expected,
        }
    }

    /// The room for the expected objects (not the eighth more), as `(address, bytes)` pieces
    /// in about the order the walk writes them: for [`refgraph_core::hugepages::Warmer`].
    /// Addresses only: stale once the arrays move (which only wastes the faulting).
    pub fn unwritten(&self) -> Vec<(usize, usize)> {
        fn room<T>(v: &Vec<T>, items: usize) -> (usize, usize) {
            let items = items.min(v.capacity());
            (v.as_ptr() as usize, items * std::mem::size_of::<T>())
        }
        let n = self.expected;
        refgraph_core::hugepages::interleaved(
            &[
                room(&self.objects, n),
                room(&self.types.ids, n),
                room(&self.tail, n / 2),
            ],
            2 << 20,
        )
    }
}

/// Every gc-tracked object in `gc.get_objects()` order, each with a new strong reference, and
/// its type (read during the walk, while its header is in the cache). No list is made
/// when the lists can be walked: the capture keeps the references itself, and reads them
/// without a call per item. Otherwise, or when this call checked the lists (the first in a
/// process, which needs `gc.get_objects()` for that), the list's references are taken over.
///
/// With `mark`, and when the lists are walked, each object's node number is also written into
/// its own `PyGC_Head` ([`Marks`]); the caller must restore them ([`Marks::restore`]) before
/// any Python code runs or any object is released.
///
/// The listing is written into `room` (grown if it is short).
pub fn tracked_refs_and_types(
    py: Python<'_>,
    mark: bool,
    room: ListingRoom,
) -> PyResult<(Vec<*mut ffi::PyObject>, ListedTypes, Option<Marks>)> {
    let h = match heads_and_list(py) {
        (_, Some(list)) => return take_items(py, list).map(|(o, t)| (o, t, None)),
        (Some(h), None) => h,
        (None, None) => return take_items(py, gc_objects(py)?).map(|(o, t)| (o, t, None)),
    };
    let ListingRoom {
        mut objects,
        mut types,
        mut tail,
        ..
    } = room;
    let mut generation = 0;
    let mut marking = Marking::new(&h, mark);
    // SAFETY: GIL held; the closure takes a reference to each object (which frees nothing and
    // allocates no Python object: no collection can start) and reads its type; marks are
    // written only as `Marking::visit` says.
    unsafe {
        visit(&h, |o, place| {
            if place.generation != generation {
                for (o, t) in tail.drain(..).rev() {
                    objects.push(o);
                    types.ids.push(t);
                }
                marking.end_of_list();
                generation = place.generation;
            }
            marking.visit(o, place);
            ffi::Py_IncRef(o);
            let t = types.number(ffi::Py_TYPE(o) as usize);
            if place.from_tail {
                tail.push((o, t));
            } else {
                objects.push(o);
                types.ids.push(t);
            }
        });
        marking.end_of_list();
    }
    for (o, t) in tail.drain(..).rev() {
        objects.push(o);
        types.ids.push(t);
    }
    LAST_LEN.store(objects.len(), Ordering::Relaxed);
    // A count far too high (objects freed since the collector last counted them all) left
    // room that the thread ahead may have faulted in: given back (kept for the whole capture
    // otherwise).
    if objects.capacity() > objects.len() / 4 * 5 + 4096 {
        objects.shrink_to_fit();
        types.ids.shrink_to_fit();
    }
    let marks = marking.done();
    Ok((objects, types, marks))
}

/// A node number written into an object's `_gc_prev` link (see [`Marks`]) has this bit, which
/// no real link has: `_gc_prev` holds the address of a `PyGC_Head` (a multiple of 8) and two
/// flag bits ([`PREV_FLAGS`]).
const MARK: usize = 0b100;

/// Where a mark ([`Marks`]) keeps its check bits: a hash of the object's address, so that a
/// word that only looks like a mark (the two words before a statically allocated object of a
/// gc type, if some extension made one without a `PyGC_Head`) is not taken for one.
const CHECK_SHIFT: usize = 6;
const CHECK_MASK: usize = (1 << 21) - 1;
/// Where a mark keeps its step from the end of its list (37 bits).
const STEP_SHIFT: usize = 27;

/// The check bits of the mark of the object at `addr`.
#[inline]
fn check_bits(addr: usize) -> usize {
    (((addr >> 4) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 43) as usize & CHECK_MASK
}

/// Node numbers written into the collector's own links for the length of a capture, so that
/// the capture finds the node of a tracked object from the object itself (a read of its
/// `PyGC_Head`, on the cache line of its reference count, which `tp_traverse`'s visitor has
/// just read) instead of looking its address up in an index of every object.
///
/// Each listed object's `_gc_prev` (the link to the object before it in its generation's
/// list) is replaced by a mark: [`MARK`], its two flag bits kept, its generation, which end of
/// the list the walk met it from, its step from that end (which give its node once the walk
/// has counted each list) and check bits made from its address ([`check_bits`]). A mark is
/// written only once the old link is proven to be the `PyGC_Head` of the object before it in
/// node order (or the list's head), so [`Marks::restore`] puts back exactly what was there
/// from the node order alone. If one link
/// is not what the walk expects, marking stops there ([`Marks::complete`] is false): the
/// caller restores the marks written and uses the index.
///
/// While marks are in place nothing may read the links but the capture: no Python code may
/// run (a collection reads and rewrites them), no object may be tracked, untracked or freed,
/// and the GIL must stay held (another thread could do either).
pub struct Marks {
    heads: Heads,
    /// The first node of each generation's list, in node order.
    base: [usize; GENERATIONS],
    /// How many nodes each generation's list has.
    count: [usize; GENERATIONS],
    complete: bool,
    restored: bool,
}

/// The state of a walk that marks ([`tracked_refs_and_types`] with `mark`).
struct Marking {
    on: bool,
    ok: bool,
    heads: Heads,
    count: [usize; GENERATIONS],
    /// The `PyGC_Head` of the last object met from the head of the current list (the list's
    /// head before the first).
    last_from_head: usize,
    /// The last object met from the tail, not marked yet: its `PyGC_Head`, old link, mark. Its
    /// old link must be the next object met from the tail, or the last met from the head.
    pending: Option<(usize, usize, usize)>,
}

impl Marking {
    fn new(heads: &Heads, on: bool) -> Marking {
        Marking {
            on,
            ok: on,
            heads: *heads,
            count: [0; GENERATIONS],
            last_from_head: heads.0[0],
            pending: None,
        }
    }

    /// Settle the pending mark against the `PyGC_Head` that must precede it.
    ///
    /// # Safety
    /// As [`Marking::visit`].
    unsafe fn settle(&mut self, before: usize) {
        if let Some((at, old, mark)) = self.pending.take() {
            if self.ok && old & !PREV_FLAGS == before {
                *((at + std::mem::size_of::<usize>()) as *mut usize) = mark;
            } else {
                self.ok = false;
            }
        }
    }

    /// The walk met object `o` at `place`.
    ///
    /// # Safety
    /// The GIL is held, `o` is a listed object met by [`visit`], and no Python code runs
    /// until the marks are restored.
    #[inline]
    unsafe fn visit(&mut self, o: *mut ffi::PyObject, place: Place) {
        if !self.on {
            return;
        }
        let g = place.generation;
        self.count[g] += 1;
        if self.count[g] == 1 {
            self.last_from_head = self.heads.0[g];
        }
        let at = o as usize - GC_HEAD;
        let link = (at + std::mem::size_of::<usize>()) as *mut usize;
        let old = *link;
        let mark = (place.step << STEP_SHIFT)
            | (check_bits(o as usize) << CHECK_SHIFT)
            | ((place.from_tail as usize) << 5)
            | (g << 3)
            | MARK
            | (old & PREV_FLAGS);
        if place.from_tail {
            self.settle(at);
            self.pending = Some((at, old, mark));
        } else {
            if self.ok && old & MARK == 0 && old & !PREV_FLAGS == self.last_from_head {
                *link = mark;
            } else {
                self.ok = false;
            }
            self.last_from_head = at;
        }
    }

    /// The walk is done with a list.
    ///
    /// # Safety
    /// As [`Marking::visit`].
    unsafe fn end_of_list(&mut self) {
        if self.on {
            self.settle(self.last_from_head);
        }
    }

    fn done(self) -> Option<Marks> {
        if !self.on {
            return None;
        }
        let mut base = [0; GENERATIONS];
        for g in 1..GENERATIONS {
            base[g] = base[g - 1] + self.count[g - 1];
        }
        Some(Marks {
            heads: self.heads,
            base,
            count: self.count,
            complete: self.ok,
            restored: false,
        })
    }
}

impl Marks {
    /// Whether every listed object is marked (else the caller restores at once and uses the
    /// index).
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// The node whose mark `link` is, if it is one: `link` is the `_gc_prev` word of the
    /// object at `addr`.
    #[inline]
    pub fn node_of(&self, link: usize, addr: usize) -> Option<usize> {
        if link & MARK == 0 || (link >> CHECK_SHIFT) & CHECK_MASK != check_bits(addr) {
            return None;
        }
        let g = (link >> 3) & 0b11;
        let count = *self.count.get(g)?;
        let step = link >> STEP_SHIFT;
        let at = if link & (1 << 5) != 0 {
            count.checked_sub(step + 1)?
        } else {
            step
        };
        (at < count).then(|| self.base[g] + at)
    }

    /// The node of `o`, a gc object (its type has `Py_TPFLAGS_HAVE_GC` and its `tp_is_gc`, if
    /// any, says so), if it is a listed one.
    ///
    /// # Safety
    /// `o` is a live gc object; the marks are in place.
    #[inline]
    pub unsafe fn node_of_object(&self, o: *const ffi::PyObject) -> Option<usize> {
        self.node_of(
            *((o as usize - std::mem::size_of::<usize>()) as *const usize),
            o as usize,
        )
    }

    /// Put back every link a mark replaced: the `PyGC_Head` of the node before (or the list's
    /// head) and the flag bits the mark kept. `objects` are the listed objects, in node
    /// order. A big heap is restored by halves on two threads. A second call does nothing.
    ///
    /// # Safety
    /// The GIL is held, `objects` are those [`tracked_refs_and_types`] returned with these
    /// marks, alive, and no Python code ran since.
    pub unsafe fn restore(&mut self, objects: &[*mut ffi::PyObject], threads: usize) {
        if self.restored {
            return;
        }
        self.restored = true;
        let n = objects
            .len()
            .min(self.base[GENERATIONS - 1] + self.count[GENERATIONS - 1]);
        if threads < 2 || n < 1 << 16 {
            self.restore_range(objects, 0, n);
            return;
        }
        let half = n / 2;
        let this = &*self;
        /// The objects' addresses, for the other thread (it writes only their links).
        struct Addrs<'a>(&'a [*mut ffi::PyObject]);
        // SAFETY: the other thread writes only the links of its half's objects, which no
        // one else reads or writes meanwhile (this thread holds the GIL and restores the
        // other half).
        unsafe impl Send for Addrs<'_> {}
        let theirs = Addrs(objects);
        std::thread::scope(|s| {
            // A thread the system will not make: this one restores both halves.
            let other = std::thread::Builder::new().spawn_scoped(s, move || {
                let theirs = theirs;
                this.restore_range(theirs.0, half, n)
            });
            this.restore_range(objects, 0, half);
            if other.is_err() {
                this.restore_range(objects, half, n);
            }
        });
    }

    /// [`Marks::restore`] for nodes `from..to`.
    unsafe fn restore_range(&self, objects: &[*mut ffi::PyObject], from: usize, to: usize) {
        const AHEAD: usize = 16;
        let header = |i: usize| objects[i] as usize - GC_HEAD;
        for g in 0..GENERATIONS {
            let (lo, hi) = (
                self.base[g].max(from),
                (self.base[g] + self.count[g]).min(to),
            );
            if lo >= hi {
                continue;
            }
            let mut before = if lo == self.base[g] {
                self.heads.0[g]
            } else {
                header(lo - 1)
            };
            for i in lo..hi {
                if let Some(&o) = objects.get(i + AHEAD) {
                    prefetch((o as usize - GC_HEAD) as *mut ffi::PyObject);
                }
                let at = header(i);
                let link = (at + std::mem::size_of::<usize>()) as *mut usize;
                let v = *link;
                if v & MARK != 0 {
                    *link = before | (v & PREV_FLAGS);
                }
                before = at;
            }
        }
    }
}

/// The items of `list` (fresh from `gc.get_objects()`) with a strong reference each, and
/// their types ([`list_types`]). When this caller holds the only reference to the list, the
/// list's own references are taken over and the list left empty (nothing to release twice:
/// freeing it then frees only its array); otherwise each item gets a reference of its own.
fn take_items(
    py: Python<'_>,
    list: Bound<'_, PyList>,
) -> PyResult<(Vec<*mut ffi::PyObject>, ListedTypes)> {
    let addrs = list_types(py, &list)?;
    let mut types = ListedTypes::with_capacity(addrs.len());
    for &t in &addrs {
        let id = types.number(t);
        types.ids.push(id);
    }
    drop(addrs);
    let lp = list.as_ptr();
    // SAFETY: GIL held; no Python code runs until the list is dropped, so the list and its
    // borrowed items (none NULL: `list_types` read each one) stay as they are.
    let objects: Vec<*mut ffi::PyObject> = unsafe {
        let objects = (0..types.ids.len())
            .map(|i| ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t))
            .collect();
        if ffi::Py_REFCNT(lp) == 1 {
            // The list's size is a field of every variable-size object (`PyVarObject`): at 0,
            // freeing the list releases no item; the references are now `objects`'.
            (*lp.cast::<ffi::PyVarObject>()).ob_size = 0;
        } else {
            for &o in &objects {
                ffi::Py_IncRef(o);
            }
        }
        objects
    };
    drop(list);
    LAST_LEN.store(objects.len(), Ordering::Relaxed);
    Ok((objects, types))
}

/// `gc.get_objects()` as a list.
pub fn gc_objects<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
    Ok(py
        .import("gc")?
        .call_method0("get_objects")?
        .cast_into::<PyList>()?)
}

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
