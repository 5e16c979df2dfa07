//! Asking the kernel for transparent huge pages for big arrays read at random (the capture's
//! address index): fewer TLB misses and page faults. Only a hint; nothing changes elsewhere.

/// Advise huge pages for the whole 2 MiB pages inside `[ptr, ptr + len)`, unless
/// `REFGRAPH_HUGE_PAGES=0` is in the environment (to measure what they bring).
#[cfg(target_os = "linux")]
pub fn advise(ptr: *const u8, len: usize) {
    const HUGE: usize = 2 << 20;
    if std::env::var_os("REFGRAPH_HUGE_PAGES").is_some_and(|v| v == "0") {
        return;
    }
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
pub fn advise(_ptr: *const u8, _len: usize) {}

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

/// [`advise`] for the whole capacity of a vector (best before its pages are first written).
pub fn advise_vec<T>(v: &Vec<T>) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes >= 4 << 20 {
        advise(v.as_ptr() as *const u8, bytes);
    }
}

/// An empty vector with room for `n` items, on huge pages when it is big.
pub fn with_capacity<T>(n: usize) -> Vec<T> {
    let v = Vec::with_capacity(n);
    advise_vec(&v);
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
    let mut v = Vec::with_capacity(n);
    advise_vec(&v);
    v.resize(n, value);
    v
}

/// `vec![0; n]` on huge pages when it is big. A big zeroed allocation comes untouched from
/// `mmap` (the kernel zeroes each page on first use): advised before that, nothing is written
/// twice.
pub fn zeroed<T: Zeroable>(n: usize) -> Vec<T> {
    let v = T::zeroed_vec(n);
    advise_vec(&v);
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
    advise_vec(&v);
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
    fn big_and_small_vectors_hold_their_values() {
        for n in [0, 10, 3 << 20] {
            let z: Vec<u32> = super::zeroed(n);
            assert_eq!(z.len(), n);
            assert!(z.iter().all(|&x| x == 0));
            let f = super::filled(7u32, n);
            assert_eq!(f.len(), n);
            assert!(f.iter().all(|&x| x == 7));
        }
    }
}
