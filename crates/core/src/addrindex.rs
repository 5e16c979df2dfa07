//! A map from object addresses to node ids, built for the capture's access pattern: millions of
//! lookups of addresses spread all over memory. Open addressing with linear probing in one flat
//! array (key and value side by side, twelve bytes a slot), and a prefetch so that the
//! lookups of an object's referents can overlap their cache misses.

/// Address → node id. Address 0 is never a valid key (it marks empty slots).
///
/// A slot is 12 bytes (the address in two `u32` halves, then the id: `[u32; 3]`, so that a
/// zeroed table comes untouched from `calloc`), and the table's size is not rounded up to a
/// power of two (the home slot is found by multiplying, not masking): at 10 million objects
/// the index was the capture's largest array (16-byte slots, 2^25 of them: 512 MB), now about
/// 1.6 slots per entry of 12 bytes (about 19 bytes per node).
#[derive(Clone, Debug, Default)]
pub struct AddrIndex {
    slots: Vec<[u32; 3]>,
    len: usize,
}

#[inline(always)]
fn hash(addr: u64) -> u64 {
    // Objects are at least 16-byte aligned: the low bits carry nothing.
    (addr >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[inline(always)]
fn key(slot: &[u32; 3]) -> u64 {
    slot[0] as u64 | (slot[1] as u64) << 32
}

/// The slot where the probe for `addr` starts in a table of `cap` slots. The high bits of the
/// product are the well-mixed ones: scaled to the table's size (Lemire's multiply-shift), any
/// size works.
#[inline(always)]
fn home(addr: u64, cap: usize) -> usize {
    ((hash(addr) as u128 * cap as u128) >> 64) as usize
}

#[inline(always)]
fn prefetch_slot(slot: &[u32; 3]) {
    let p = slot as *const [u32; 3] as *const u8;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint and never faults; p points into our own array (and
    // p + 11 to the slot's last byte, on the next cache line for some slots).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch(p as *const i8, _MM_HINT_T0);
        _mm_prefetch(p.add(11) as *const i8, _MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Slots for `n` entries: at most 5/8 full (short probe runs; a load of 3/4 measured slower).
fn slots_for(n: usize) -> usize {
    (n.max(8) * 8).div_ceil(5)
}

/// `cap` empty slots. A big table is looked up at random: with 4 KiB pages nearly every lookup
/// also misses the TLB, and filling it faults page by page; on Linux it asks for huge pages
/// (before any page is touched: a zeroed allocation that large is fresh from `mmap`).
fn zeroed_slots(cap: usize) -> Vec<[u32; 3]> {
    crate::hugepages::zeroed(cap)
}

impl AddrIndex {
    /// An index with room for `n` entries before it grows.
    pub fn with_capacity(n: usize) -> Self {
        AddrIndex {
            slots: zeroed_slots(slots_for(n)),
            len: 0,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the table.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 12
    }

    #[inline(always)]
    fn home(&self, addr: u64) -> usize {
        home(addr, self.slots.len())
    }

    /// Hint that `addr` will be looked up soon.
    #[inline(always)]
    pub fn prefetch(&self, addr: u64) {
        if !self.slots.is_empty() {
            prefetch_slot(&self.slots[self.home(addr)]);
        }
    }

    /// The id stored for `addr`.
    #[inline]
    pub fn get(&self, addr: u64) -> Option<u32> {
        if addr == 0 || self.slots.is_empty() {
            return None;
        }
        let cap = self.slots.len();
        let mut i = self.home(addr);
        loop {
            let slot = &self.slots[i];
            let k = key(slot);
            if k == addr {
                return Some(slot[2]);
            }
            if k == 0 {
                return None;
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    /// The id stored for `addr` as `Ok`, or, if there is none, `Err(id)` once `id` is stored
    /// for it: a lookup and an insert in one probe. Address 0 cannot be stored (`Err(id)`,
    /// nothing stored).
    #[inline]
    pub fn get_or_insert(&mut self, addr: u64, id: u32) -> Result<u32, u32> {
        if addr == 0 {
            return Err(id);
        }
        if slots_for(self.len + 1) > self.slots.len() {
            self.grow();
        }
        let cap = self.slots.len();
        let mut i = self.home(addr);
        loop {
            let slot = &mut self.slots[i];
            let k = key(slot);
            if k == addr {
                return Ok(slot[2]);
            }
            if k == 0 {
                *slot = [addr as u32, (addr >> 32) as u32, id];
                self.len += 1;
                return Err(id);
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    /// Store `id` for `addr` unless it is already there. Returns false if it was (the old id
    /// stays). Address 0 cannot be stored.
    pub fn insert(&mut self, addr: u64, id: u32) -> bool {
        if addr == 0 {
            return false;
        }
        if slots_for(self.len + 1) > self.slots.len() {
            self.grow();
        }
        let cap = self.slots.len();
        let mut i = self.home(addr);
        loop {
            let k = key(&self.slots[i]);
            if k == addr {
                return false;
            }
            if k == 0 {
                self.slots[i] = [addr as u32, (addr >> 32) as u32, id];
                self.len += 1;
                return true;
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    /// Store ids `first`, `first + 1`, … for `addrs`, as [`AddrIndex::insert`] one after the
    /// other does (an address met again keeps its first id; 0 is skipped), with the slots of
    /// the addresses a few places ahead prefetched: each insert is a cache miss at a random
    /// place in a big table, and this way they overlap.
    pub fn insert_run(&mut self, addrs: &[u64], first: u32) {
        const AHEAD: usize = 16;
        let need = slots_for(self.len + addrs.len());
        if need > self.slots.len() {
            self.grow_to(need.max(self.slots.len() * 2));
        }
        for (k, &a) in addrs.iter().enumerate() {
            if let Some(&b) = addrs.get(k + AHEAD) {
                self.prefetch(b);
            }
            self.insert(a, first + k as u32);
        }
    }

    /// [`AddrIndex::insert_run`] on two threads: this one inserts the addresses whose first
    /// slot is in the first half of the table, a scoped second thread those of the second half,
    /// each probing only within its half; an address whose probe reaches its half's end is
    /// inserted afterwards, in order. Every address ends up with the same id as with
    /// `insert_run` (the first one, for an address met again: both meet it in the same order),
    /// though not always in the same slot. `also` runs on this thread after its half (work
    /// that does not need the index).
    pub fn insert_run_on_two<R>(
        &mut self,
        addrs: &[u64],
        first: u32,
        also: impl FnOnce() -> R,
    ) -> R {
        let need = slots_for(self.len + addrs.len());
        if need > self.slots.len() {
            self.grow_to(need.max(self.slots.len() * 2));
        }
        let cap = self.slots.len();
        let mid = cap / 2;
        let (low, high) = self.slots.split_at_mut(mid);
        let ((added_low, spilled_low), ((added_high, spilled_high), r)) = std::thread::scope(|s| {
            let upper = s.spawn(|| insert_in_half(high, mid, cap, addrs, first));
            let lower = insert_in_half(low, 0, cap, addrs, first);
            let r = also();
            (lower, (upper.join().expect("inserts do not panic"), r))
        });
        self.len += added_low + added_high;
        // Those that ran past their half, in id order (each list is in order; merged).
        let (mut i, mut j) = (0, 0);
        while i < spilled_low.len() || j < spilled_high.len() {
            let k = match (spilled_low.get(i), spilled_high.get(j)) {
                (Some(&a), Some(&b)) if a < b => {
                    i += 1;
                    a
                }
                (Some(&a), None) => {
                    i += 1;
                    a
                }
                (_, Some(&b)) => {
                    j += 1;
                    b
                }
                (None, None) => unreachable!(),
            };
            self.insert(addrs[k], first + k as u32);
        }
        r
    }

    fn grow(&mut self) {
        self.grow_to(slots_for(self.len + 1).max(self.slots.len() * 2));
    }

    fn grow_to(&mut self, cap: usize) {
        let old = std::mem::replace(&mut self.slots, zeroed_slots(cap));
        self.len = 0;
        for slot in old {
            let k = key(&slot);
            if k != 0 {
                self.insert(k, slot[2]);
            }
        }
    }
}

/// Insert into `half` (the slots `base..base + half.len()` of a table of `cap` slots) the
/// addresses of `addrs` whose first slot is there, ids from `first` in order, probing no further
/// than the half's end. Returns how many were added and the positions in `addrs` of those that
/// ran past the end.
fn insert_in_half(
    half: &mut [[u32; 3]],
    base: usize,
    cap: usize,
    addrs: &[u64],
    first: u32,
) -> (usize, Vec<usize>) {
    const AHEAD: usize = 16;
    let end = base + half.len();
    let mine = |a: u64| a != 0 && (base..end).contains(&home(a, cap));
    let mut added = 0;
    let mut spilled = Vec::new();
    // Prefetch the slots of this half's addresses a few of them ahead.
    let mut ahead = addrs.iter().enumerate().filter(|&(_, &a)| mine(a));
    for (_, &a) in ahead.by_ref().take(AHEAD) {
        prefetch_slot(&half[home(a, cap) - base]);
    }
    for (k, &a) in addrs.iter().enumerate() {
        if !mine(a) {
            continue;
        }
        if let Some((_, &b)) = ahead.next() {
            prefetch_slot(&half[home(b, cap) - base]);
        }
        let mut i = home(a, cap) - base;
        loop {
            if i == half.len() {
                spilled.push(k);
                break;
            }
            let slot = &mut half[i];
            let kk = key(slot);
            if kk == a {
                break;
            }
            if kk == 0 {
                *slot = [a as u32, (a >> 32) as u32, first + k as u32];
                added += 1;
                break;
            }
            i += 1;
        }
    }
    (added, spilled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashMap;

    #[test]
    fn agrees_with_a_hash_map() {
        let mut idx = AddrIndex::with_capacity(4);
        let mut reference: FxHashMap<u64, u32> = Default::default();
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for i in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Aligned addresses, with collisions on purpose (a small range).
            let addr = (x % 300_000) * 16 + 0x7f00_0000_0000;
            let fresh = !reference.contains_key(&addr);
            assert_eq!(idx.insert(addr, i), fresh);
            reference.entry(addr).or_insert(i);
            idx.prefetch(addr);
        }
        assert_eq!(idx.len(), reference.len());
        for (&k, &v) in &reference {
            assert_eq!(idx.get(k), Some(v));
        }
        assert_eq!(idx.get(8), None);
        assert_eq!(idx.get(0), None);
        assert!(!idx.insert(0, 1));
        assert!(AddrIndex::default().get(16).is_none());
        // A lookup and insert in one probe agrees with the map too, into a table that grows.
        let mut one = AddrIndex::default();
        let mut seen: FxHashMap<u64, u32> = Default::default();
        for i in 0..100_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let addr = (x % 150_000) * 16 + 0x7f00_0000_0000;
            let want = seen.get(&addr).copied().ok_or(i);
            assert_eq!(one.get_or_insert(addr, i), want);
            seen.entry(addr).or_insert(i);
        }
        assert_eq!(one.len(), seen.len());
        assert!(seen.iter().all(|(&k, &v)| one.get(k) == Some(v)));
        assert_eq!(one.get_or_insert(0, 5), Err(5));
        assert_eq!(one.get(0), None);
    }

    #[test]
    fn a_run_agrees_with_one_by_one() {
        // Clustered addresses (as objects in arenas), some repeated, one 0, into tables sized
        // exactly and too small (grown first).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let addrs: Vec<u64> = (0..300_000u64)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match i {
                    77 => 0,
                    _ if i % 1000 == 999 => (x % 1000) * 16 + 0x7f00_0000_0000,
                    _ => (i * 3 + x % 3) * 16 + 0x7f00_0000_0000 + (i / 4096) * (1 << 22),
                }
            })
            .collect();
        let mut one = AddrIndex::with_capacity(50);
        one.insert(0x7f00_0000_0010, 7);
        for (k, &a) in addrs.iter().enumerate() {
            one.insert(a, 1000 + k as u32);
        }
        for capacity in [50, addrs.len() + 1] {
            let mut run = AddrIndex::with_capacity(capacity);
            run.insert(0x7f00_0000_0010, 7);
            run.insert_run(&addrs, 1000);
            assert_eq!(run.len(), one.len());
            for &a in &addrs {
                assert_eq!(run.get(a), one.get(a), "{a:#x}");
            }
            assert_eq!(run.get(0x7f00_0000_0010), Some(7));
            // On two threads: the same ids for every address.
            let mut two = AddrIndex::with_capacity(capacity);
            two.insert(0x7f00_0000_0010, 7);
            assert_eq!(two.insert_run_on_two(&addrs, 1000, || 5), 5);
            assert_eq!(two.len(), one.len());
            for &a in &addrs {
                assert_eq!(two.get(a), one.get(a), "{a:#x}");
            }
            assert_eq!(two.get(0x7f00_0000_0010), Some(7));
        }
    }

    #[test]
    fn inserts_that_run_past_a_half_on_two_threads_are_found() {
        // Addresses whose first slot is the last of either half, met twice each: their probes
        // run past the half's end (inserted afterwards, in order, the first id kept).
        let n = 1000;
        let cap = slots_for(n);
        let (mid, last) = (cap / 2 - 1, cap - 1);
        let mut at_ends: Vec<u64> = (1..)
            .map(|i: u64| 0x7f00_0000_0000 + i * 16)
            .filter(|&a| home(a, cap) == mid || home(a, cap) == last)
            .take(40)
            .collect();
        at_ends.extend(at_ends.clone());
        let spread: Vec<u64> = (0..500u64).map(|i| 0x5500_0000_0000 + i * 4096).collect();
        let addrs: Vec<u64> = spread.iter().chain(&at_ends).copied().collect();
        let mut one = AddrIndex::with_capacity(n);
        one.insert_run(&addrs, 0);
        let mut two = AddrIndex::with_capacity(n);
        assert_eq!(two.slots.len(), cap);
        two.insert_run_on_two(&addrs, 0, || ());
        assert_eq!(two.len(), one.len());
        for (k, &a) in addrs.iter().enumerate() {
            assert_eq!(two.get(a), one.get(a), "{a:#x}");
            assert!(two.get(a).unwrap() as usize <= k, "the first id is kept");
        }
    }
}
