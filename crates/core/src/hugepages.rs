//! Asking the kernel for transparent huge pages for big arrays (the capture's address index,
//! the analysis' arrays read at random): fewer TLB misses and page faults. Only a hint;
//! nothing changes elsewhere.
//!
//! A capture's own arrays (written once, in order or into its index, right after they are
//! made) do not get them in a virtual machine whose balloon hands free memory back to the host
//! (free page reporting, which gives back free blocks of a huge page's span about two seconds
//! after they are freed): there, a huge page after a pause comes back from the host at 0.2 to
//! 1.1 GB/s against 3 GB/s for small pages (512 MB faulted in after 3 s, on this project's
//! VM), and a capture of 10M objects after 3 s pauses took 1.805 s with them against 1.445 s
//! without. Arrays read at random afterwards keep them there too: at 30M objects `diff` took
//! 11.9 s with them against 16.9 s without (`load` 2.9 against 1.5 s, retained sizes 6.7
//! against 3.8 s: see benchmarks/scale-log.md).

use std::sync::OnceLock;

/// What the environment says: `REFGRAPH_HUGE_PAGES=0` (none) or `1` (wherever asked for), to
/// measure what they bring.
fn chosen() -> Option<bool> {
    match std::env::var_os("REFGRAPH_HUGE_PAGES") {
        Some(v) if v == "0" => Some(false),
        Some(v) if v == "1" => Some(true),
        _ => None,
    }
}

/// Whether big arrays read at random get huge pages: yes unless `REFGRAPH_HUGE_PAGES=0`.
pub fn wanted() -> bool {
    chosen().unwrap_or(true)
}

/// Whether a capture's arrays get huge pages: as [`wanted`], but not where the host takes
/// free memory back ([`host_takes_free_memory`], read once), unless `REFGRAPH_HUGE_PAGES=1`.
pub fn wanted_for_capture() -> bool {
    static HOST_TAKES: OnceLock<bool> = OnceLock::new();
    chosen().unwrap_or_else(|| !*HOST_TAKES.get_or_init(host_takes_free_memory))
}

/// Whether a virtio memory balloon with free page reporting (feature bit 5) is bound here:
/// the host then takes back the memory of free huge-page blocks and is slow to give it again.
#[cfg(target_os = "linux")]
pub fn host_takes_free_memory() -> bool {
    const BALLOON: &str = "0x0005";
    const REPORTING: usize = 5;
    let Ok(devices) = std::fs::read_dir("/sys/bus/virtio/devices") else {
        return false;
    };
    devices.flatten().any(|d| {
        let read = |f: &str| std::fs::read_to_string(d.path().join(f)).unwrap_or_default();
        read("device").trim() == BALLOON && feature_bit(&read("features"), REPORTING)
    })
}

/// Elsewhere: not known, so no.
#[cfg(not(target_os = "linux"))]
pub fn host_takes_free_memory() -> bool {
    false
}

/// Whether bit `bit` is set in a virtio device's `features` file (one '0' or '1' per bit,
/// bit 0 first).
fn feature_bit(features: &str, bit: usize) -> bool {
    features.trim().as_bytes().get(bit) == Some(&b'1')
}

/// Advise huge pages for the whole 2 MiB pages inside `[ptr, ptr + len)`.
#[cfg(target_os = "linux")]
fn advise_now(ptr: *const u8, len: usize) {
    const HUGE: usize = 2 << 20;
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + len) / HUGE * HUGE;
    if end > start {
        // SAFETY: madvise only changes how the kernel backs these pages of our own allocation;
        // MADV_HUGEPAGE never changes their contents. Failure (no THP) is ignored.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

/// Elsewhere: nothing to do.
#[cfg(not(target_os = "linux"))]
fn advise_now(_ptr: *const u8, _len: usize) {}

/// Fault in the pages of `[ptr, ptr + len)` ready to be written (`MADV_POPULATE_WRITE`, Linux
/// 5.14+), so that the thread that writes there later does not stop to have each fresh page
/// zeroed: for another thread with time to spare. The memory's contents do not change (the
/// kernel only maps the pages, as a first write would); whole pages around the range are
/// faulted in, a range no longer mapped is refused by the kernel, and every failure is
/// ignored: only the time of the first writes moves.
#[cfg(target_os = "linux")]
pub fn populate(ptr: usize, len: usize) {
    const PAGE: usize = 4096;
    if len == 0 {
        return;
    }
    let start = ptr / PAGE * PAGE;
    let end = (ptr + len).next_multiple_of(PAGE);
    // SAFETY: MADV_POPULATE_WRITE maps pages as a write fault would, without writing: no
    // memory's contents change, whoever owns it.
    unsafe {
        libc::madvise(
            start as *mut libc::c_void,
            end - start,
            libc::MADV_POPULATE_WRITE,
        );
    }
}

/// Elsewhere: nothing to do.
#[cfg(not(target_os = "linux"))]
pub fn populate(_ptr: usize, _len: usize) {}

/// [`populate`] each of `ranges` (address, bytes) in order, a huge page's span at a time,
/// until all are done or `stop` is set (checked between spans): for a thread that faults in
/// memory others are about to write.
pub fn populate_ranges(ranges: &[(usize, usize)], stop: &std::sync::atomic::AtomicBool) {
    const SPAN: usize = 2 << 20;
    for &(at, len) in ranges {
        let end = at + len;
        let mut p = at;
        while p < end {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let step = SPAN.min(end - p);
            populate(p, step);
            p += step;
        }
    }
}

/// `ranges` (address, bytes) cut into pieces of `span` bytes taken in turn, the first piece
/// of each range, then the second of each, and so on: for [`populate_ranges`] when several
/// arrays are written at the same pace (as the DFS writes its arrays by DFS number), so that
/// each has its next pages faulted in at about the same time.
pub fn interleaved(ranges: &[(usize, usize)], span: usize) -> Vec<(usize, usize)> {
    let span = span.max(1);
    let longest = ranges.iter().map(|r| r.1).max().unwrap_or(0);
    let mut out = Vec::new();
    for off in (0..longest).step_by(span) {
        for &(at, len) in ranges {
            if off < len {
                out.push((at + off, span.min(len - off)));
            }
        }
    }
    out
}

/// A thread that faults in pages of memory about to be written ([`populate_ranges`]) until
/// done or stopped (when dropped, which waits for it): for memory the calling thread is
/// about to write while the other core has nothing to do.
pub struct Warmer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Warmer {
    /// Start faulting in `ranges` (address, bytes); None if no thread could be had.
    pub fn start(ranges: Vec<(usize, usize)>) -> Option<Warmer> {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("refgraph-warmer".into())
            .spawn(move || populate_ranges(&ranges, &stopped))
            .ok()?;
        Some(Warmer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Warmer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Huge pages for the whole capacity of a big vector if `huge` (else nothing): best before
/// its pages are first written.
pub fn advise_vec_if<T>(v: &Vec<T>, huge: bool) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if huge && bytes >= 4 << 20 {
        advise_now(v.as_ptr() as *const u8, bytes);
    }
}

/// An empty vector with room for `n` items, on huge pages when it is big.
pub fn with_capacity<T>(n: usize) -> Vec<T> {
    with_capacity_if(n, wanted())
}

/// [`with_capacity`], on huge pages if `huge`.
pub fn with_capacity_if<T>(n: usize, huge: bool) -> Vec<T> {
    let v = Vec::with_capacity(n);
    advise_vec_if(&v, huge);
    v
}

/// A copy of `items`, on huge pages when it is big.
pub fn copied<T: Copy>(items: &[T]) -> Vec<T> {
    let mut v = with_capacity(items.len());
    v.extend_from_slice(items);
    v
}

/// `vec![value; n]`, on huge pages when it is big.
pub fn filled<T: Clone>(value: T, n: usize) -> Vec<T> {
    let mut v = with_capacity(n);
    v.resize(n, value);
    v
}

/// [`filled`], written by the threads of [`crate::threads::run`] when big: much of the time of
/// writing a fresh array is the kernel zeroing its pages for the thread that first writes
/// each, which the threads then share.
pub fn filled_par<T: Clone + Send + Sync>(value: T, n: usize) -> Vec<T> {
    use rayon::prelude::*;
    if n < 1 << 19 {
        return filled(value, n);
    }
    let mut v = with_capacity(n);
    crate::threads::run(|| v.par_extend(rayon::iter::repeat_n(value, n)));
    v
}

/// `vec![0; n]` on huge pages when it is big. A big zeroed allocation comes untouched from
/// `mmap` (the kernel zeroes each page on first use): advised before that, nothing is written
/// twice.
pub fn zeroed<T: Zeroable>(n: usize) -> Vec<T> {
    zeroed_if(n, wanted())
}

/// [`zeroed`], on huge pages if `huge`.
pub fn zeroed_if<T: Zeroable>(n: usize, huge: bool) -> Vec<T> {
    let v = T::zeroed_vec(n);
    advise_vec_if(&v, huge);
    v
}

/// `n` zero bytes on huge pages when big, or None when the memory cannot be had (a size read
/// from a file may be absurd: that must be an error, not an abort).
pub fn try_zeroed_bytes(n: usize) -> Option<Vec<u8>> {
    if n == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u8>(n).ok()?;
    // SAFETY: a non-zero size; the allocation is zeroed, so all `n` bytes are initialised, and
    // a Vec<u8> frees it with the same layout (align 1).
    let v = unsafe {
        let p = std::alloc::alloc_zeroed(layout);
        if p.is_null() {
            return None;
        }
        Vec::from_raw_parts(p, n, n)
    };
    advise_vec_if(&v, wanted());
    Some(v)
}

/// Types whose zeroed vector `vec!` allocates already zeroed (`calloc`).
pub trait Zeroable: Sized {
    /// `vec![0; n]`.
    fn zeroed_vec(n: usize) -> Vec<Self>;
}

impl Zeroable for u32 {
    fn zeroed_vec(n: usize) -> Vec<u32> {
        vec![0; n]
    }
}

impl Zeroable for u64 {
    fn zeroed_vec(n: usize) -> Vec<u64> {
        vec![0; n]
    }
}

impl Zeroable for [u32; 3] {
    fn zeroed_vec(n: usize) -> Vec<[u32; 3]> {
        vec![[0; 3]; n]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_features_file_tells_free_page_reporting() {
        // This project's VM's balloon: bits 1, 2, 5 and 7 set; 5 is free page reporting.
        let balloon = "0110010100000000000000000000000010000000\n";
        assert!(super::feature_bit(balloon, 5));
        assert!(!super::feature_bit(balloon, 3));
        assert!(!super::feature_bit("0110", 5));
        assert!(!super::feature_bit("", 5));
    }

    #[test]
    fn interleaved_takes_each_range_in_turn() {
        let spans = super::interleaved(&[(1000, 25), (5000, 10), (9000, 0)], 10);
        assert_eq!(
            spans,
            [(1000, 10), (5000, 10), (1010, 10), (1020, 5)],
            "every byte once, in pieces of at most 10"
        );
        assert!(super::interleaved(&[], 10).is_empty());
    }

    #[test]
    fn a_warmer_stops_when_dropped() {
        let mut v: Vec<u32> = super::with_capacity(8 << 20);
        v.extend(0..1 << 20);
        let spans = super::interleaved(&[(v.as_ptr() as usize, 32 << 20)], 2 << 20);
        // Dropped at once or after it is done: either way it returns, what was written is
        // unchanged, and the rest can be written after it.
        drop(super::Warmer::start(spans.clone()));
        let w = super::Warmer::start(spans);
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(w);
        assert!(v.iter().copied().eq(0..1 << 20));
        v.extend(1 << 20..8 << 20);
        assert!(v.iter().copied().eq(0..8 << 20));
    }

    #[test]
    fn populated_memory_keeps_its_contents() {
        let mut v: Vec<u32> = super::with_capacity(3 << 20);
        v.extend(0..1000);
        let (ptr, cap) = (v.as_ptr() as usize, v.capacity() * 4);
        // The written part, the spare room, a range past the end, and nothing.
        super::populate(ptr, cap);
        super::populate(ptr + 10, 100);
        super::populate(ptr + cap, 1 << 20);
        super::populate(ptr, 0);
        assert!(v.iter().copied().eq(0..1000));
        v.extend(1000..(3 << 20));
        assert!(v.iter().copied().eq(0..(3 << 20)));
    }

    #[test]
    fn ranges_populated_keep_their_contents() {
        use std::sync::atomic::AtomicBool;
        let mut a: Vec<u64> = super::with_capacity(1 << 20);
        a.extend(0..1000);
        let mut b: Vec<u8> = Vec::with_capacity(5 << 20);
        b.extend(std::iter::repeat_n(7, 100));
        let room = |v_ptr: usize, len: usize, cap: usize, size: usize| {
            (v_ptr + len * size, (cap - len) * size)
        };
        let ranges = [
            room(a.as_ptr() as usize, a.len(), a.capacity(), 8),
            room(b.as_ptr() as usize, b.len(), b.capacity(), 1),
            (a.as_ptr() as usize, 0),
        ];
        super::populate_ranges(&ranges, &AtomicBool::new(false));
        super::populate_ranges(&ranges, &AtomicBool::new(true));
        assert!(a.iter().copied().eq(0..1000));
        assert!(b.iter().all(|&x| x == 7));
        a.extend(1000..(1 << 20));
        assert!(a.iter().copied().eq(0..(1 << 20)));
    }

    #[test]
    fn big_and_small_vectors_hold_their_values() {
        for n in [0, 10, 3 << 20] {
            let z: Vec<u32> = super::zeroed(n);
            assert_eq!(z.len(), n);
            assert!(z.iter().all(|&x| x == 0));
            let f = super::filled(7u32, n);
            assert_eq!(f.len(), n);
            assert!(f.iter().all(|&x| x == 7));
            for huge in [false, true] {
                let mut w: Vec<u64> = super::with_capacity_if(n, huge);
                assert!(w.is_empty() && w.capacity() >= n);
                w.extend((0..n as u64).map(|x| x * 3));
                assert!(w.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
            }
        }
    }
}
