//! A map from object addresses to node ids, built for the capture's access pattern: millions of
//! lookups of addresses spread all over memory. Open addressing with linear probing in one flat
//! array of 8-byte slots, and a prefetch so that the lookups of an object's referents can
//! overlap their cache misses.
//!
//! A slot holds a node id and only as much of its address as its place in the table does not
//! already say. An address (8-byte aligned, below 2^48: 45 bits once its low three zero bits
//! are dropped) is mixed by a multiplication modulo 2^45, which is a bijection; the product of
//! that hash `h` with the table's size `cap` gives the home slot (`h * cap >> 45`, any size
//! works) and a remainder `r` below 2^45; the hashes that share a home have remainders `cap`
//! apart, so `r >> s` (with `2^s <= cap`) tells them apart: that tag (`45 - s` bits), how far
//! the slot is from its home (the probe's length plus one, never 0: 0 is an empty slot) and the
//! id fill the slot. An address that does not fit that way (not aligned, too high), an id too
//! big for the slot's id bits (only in tables much smaller than their ids) or a probe longer
//! than the slot can say goes to a small hash map beside the table instead (`spill`), which
//! the table's lookups consult only when it has anything.

use rustc_hash::FxHashMap;

/// Bits of an address the slot's tag and place stand for: addresses below 2^48, 8-aligned.
const KEY_BITS: u32 = 45;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;
/// Odd, so that multiplying by it modulo 2^45 is a bijection.
const MULT: u64 = 0x9E37_79B9_7F4A_7C15 & KEY_MASK;
/// Its inverse modulo 2^45, to give an address back from a slot when the table grows.
const MULT_INV: u64 = inverse(MULT) & KEY_MASK;

/// The inverse of odd `m` modulo 2^64 (Newton's iteration: each step doubles the bits that
/// are right; `m` itself is right in its low three bits).
const fn inverse(m: u64) -> u64 {
    let mut x = m;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2u64.wrapping_sub(m.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// The 45-bit hash of an address the slots can hold, or None.
#[inline(always)]
fn hash(addr: u64) -> Option<u64> {
    if addr & 7 != 0 || addr >> 48 != 0 || addr == 0 {
        return None;
    }
    Some((addr >> 3).wrapping_mul(MULT) & KEY_MASK)
}

/// What a table of `cap` slots stores where: `[tag | place + 1 | id]` from the high bits down.
#[derive(Clone, Copy, Debug, Default)]
struct Shape {
    cap: usize,
    /// `2^s <= cap`: the tag is `r >> s`.
    s: u32,
    /// The id's bits (up to 32).
    id_bits: u32,
    /// Where the tag starts.
    tag_shift: u32,
    /// The longest probe a slot can say (its place field's largest value).
    longest: usize,
}

impl Shape {
    fn new(cap: usize) -> Self {
        if cap == 0 {
            return Shape::default();
        }
        let s = usize::BITS - 1 - cap.leading_zeros();
        let id_bits = (s + 7).min(32);
        let tag_bits = KEY_BITS - s.min(KEY_BITS);
        let place_bits = 64 - tag_bits - id_bits;
        Shape {
            cap,
            s,
            id_bits,
            tag_shift: id_bits + place_bits,
            longest: ((1usize << place_bits.min(20)) - 1).min(cap),
        }
    }

    /// The home slot of hash `h`, and what a slot holding it at its home holds but the id.
    #[inline(always)]
    fn place(&self, h: u64) -> (usize, u64) {
        let p = h as u128 * self.cap as u128;
        let home = (p >> KEY_BITS) as usize;
        let tag = (p as u64 & KEY_MASK) >> self.s;
        (home, tag << self.tag_shift | self.step())
    }

    /// What one more slot along the probe adds to the slot's value.
    #[inline(always)]
    fn step(&self) -> u64 {
        1 << self.id_bits
    }

    /// The slot holding `id` at `back` places past its home, of which `place` gave `tag`.
    #[inline(always)]
    fn slot(&self, tag: u64, back: usize, id: u32) -> u64 {
        (tag + back as u64 * self.step()) | id as u64
    }

    #[inline(always)]
    fn id_mask(&self) -> u64 {
        (1 << self.id_bits) - 1
    }

    /// The address stored in slot `i` (not empty).
    fn address(&self, i: usize, slot: u64) -> u64 {
        let place_mask = (1u64 << (self.tag_shift - self.id_bits)) - 1;
        let back = ((slot >> self.id_bits) & place_mask) as usize - 1;
        let home = (i + self.cap - back) % self.cap;
        let tag = slot >> self.tag_shift;
        // The one hash with this home whose remainder starts with this tag: the first whose
        // product with cap reaches home·2^45 + tag·2^s.
        let low = (home as u128) << KEY_BITS | (tag as u128) << self.s;
        let h = low.div_ceil(self.cap as u128) as u64;
        (h.wrapping_mul(MULT_INV) & KEY_MASK) << 3
    }
}

/// Address → node id. Address 0 is never a valid key.
#[derive(Clone, Debug, Default)]
pub struct AddrIndex {
    slots: Vec<u64>,
    shape: Shape,
    /// Entries in the slots and in `spill`.
    len: usize,
    /// The entries the slots cannot hold (see the module's comment); nearly always empty.
    spill: FxHashMap<u64, u32>,
}

#[inline(always)]
fn prefetch_slot(slot: &u64) {
    let p = slot as *const u64 as *const i8;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint and never faults; p points into our own array.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch(p, _MM_HINT_T0);
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
fn zeroed_slots(cap: usize, huge: bool) -> Vec<u64> {
    crate::hugepages::zeroed_if(cap, huge)
}

/// Where a probe for an address ends in a run of slots.
enum Probe {
    /// Found, with its id.
    Found(u32),
    /// Not there: an empty slot at this index of the run.
    Empty(usize),
    /// Not there, and nowhere to put it in the run (its end reached, or the longest probe a
    /// slot can say).
    Full,
}

/// Probe `run` (slots `base..` of a table shaped `shape`) for hash `h`, going round to the run's
/// start at its end when `wrap`.
#[inline(always)]
fn probe(run: &[u64], base: usize, shape: &Shape, h: u64, wrap: bool) -> Probe {
    let (home, mut want) = shape.place(h);
    let keep = !shape.id_mask();
    let mut i = home - base;
    for _ in 0..shape.longest {
        let slot = run[i];
        if slot == 0 {
            return Probe::Empty(i);
        }
        if slot & keep == want {
            return Probe::Found((slot & shape.id_mask()) as u32);
        }
        want += shape.step();
        i += 1;
        if i == run.len() {
            if !wrap {
                return Probe::Full;
            }
            i = 0;
        }
    }
    Probe::Full
}

impl AddrIndex {
    /// An index with room for `n` entries before it grows.
    pub fn with_capacity(n: usize) -> Self {
        Self::with_slots(slots_for(n))
    }

    /// [`AddrIndex::with_capacity`], on huge pages only if `huge` (see
    /// [`crate::hugepages::wanted_for_capture`]).
    pub fn with_capacity_paged(n: usize, huge: bool) -> Self {
        Self::with_slots_paged(slots_for(n), huge)
    }

    fn with_slots(cap: usize) -> Self {
        Self::with_slots_paged(cap, crate::hugepages::wanted())
    }

    fn with_slots_paged(cap: usize, huge: bool) -> Self {
        AddrIndex {
            slots: zeroed_slots(cap, huge),
            shape: Shape::new(cap),
            len: 0,
            spill: FxHashMap::default(),
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

    /// Where the table's slots are: address and bytes (for faulting them in ahead).
    pub fn slots_memory(&self) -> (usize, usize) {
        (self.slots.as_ptr() as usize, self.slots.len() * 8)
    }

    /// Bytes of the table.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8 + self.spill.capacity() * 16
    }

    /// Hint that `addr` will be looked up soon.
    #[inline(always)]
    pub fn prefetch(&self, addr: u64) {
        if let (Some(h), false) = (hash(addr), self.slots.is_empty()) {
            prefetch_slot(&self.slots[self.shape.place(h).0]);
        }
    }

    /// The id stored for `addr`.
    #[inline]
    pub fn get(&self, addr: u64) -> Option<u32> {
        if let (Some(h), false) = (hash(addr), self.slots.is_empty()) {
            if let Probe::Found(id) = probe(&self.slots, 0, &self.shape, h, true) {
                return Some(id);
            }
        }
        if self.spill.is_empty() {
            None
        } else {
            self.spill.get(&addr).copied()
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
        if let Some(h) = hash(addr) {
            match probe(&self.slots, 0, &self.shape, h, true) {
                Probe::Found(old) => return Ok(old),
                Probe::Empty(i) if id as u64 <= self.shape.id_mask() => {
                    if let Some(&old) = self.spilled(addr) {
                        return Ok(old);
                    }
                    let (home, tag) = self.shape.place(h);
                    let back = (i + self.shape.cap - home) % self.shape.cap;
                    self.slots[i] = self.shape.slot(tag, back, id);
                    self.len += 1;
                    return Err(id);
                }
                _ => {}
            }
        }
        match self.spill.entry(addr) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(*e.get()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
                self.len += 1;
                Err(id)
            }
        }
    }

    #[inline(always)]
    fn spilled(&self, addr: u64) -> Option<&u32> {
        if self.spill.is_empty() {
            None
        } else {
            self.spill.get(&addr)
        }
    }

    /// Store `id` for `addr` unless it is already there. Returns false if it was (the old id
    /// stays). Address 0 cannot be stored.
    pub fn insert(&mut self, addr: u64, id: u32) -> bool {
        addr != 0 && self.get_or_insert(addr, id).is_err()
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
    /// each probing only within its half; an address whose probe reaches its half's end (or
    /// that the slots cannot hold) is inserted afterwards, in order. Every address ends up with
    /// the same id as with `insert_run` (the first one, for an address met again: both meet it
    /// in the same order), though not always in the same slot. `also` runs on this thread
    /// after its half (work that does not need the index).
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
        let shape = self.shape;
        let mid = shape.cap / 2;
        let spill = &self.spill;
        let (low, high) = self.slots.split_at_mut(mid);
        let ((added_low, spilled_low), ((added_high, spilled_high), r)) = std::thread::scope(|s| {
            let upper = s.spawn(|| insert_in_half(high, mid, &shape, spill, addrs, first));
            let lower = insert_in_half(low, 0, &shape, spill, addrs, first);
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
        let old = std::mem::replace(self, Self::with_slots(cap));
        for (i, &slot) in old.slots.iter().enumerate() {
            if slot != 0 {
                self.insert(
                    old.shape.address(i, slot),
                    (slot & old.shape.id_mask()) as u32,
                );
            }
        }
        for (&a, &id) in &old.spill {
            self.insert(a, id);
        }
    }
}

/// Insert into `half` (the slots `base..base + half.len()` of a table shaped `shape`) the
/// addresses of `addrs` whose first slot is there, ids from `first` in order, probing no further
/// than the half's end. Returns how many were added and the positions in `addrs` of those left
/// for afterwards: those that ran past the end, and those the slots cannot hold or that may be
/// in `spill` already.
fn insert_in_half(
    half: &mut [u64],
    base: usize,
    shape: &Shape,
    spill: &FxHashMap<u64, u32>,
    addrs: &[u64],
    first: u32,
) -> (usize, Vec<usize>) {
    const AHEAD: usize = 16;
    let end = base + half.len();
    let home = |h: u64| shape.place(h).0;
    let mine = |a: u64| hash(a).filter(|&h| (base..end).contains(&home(h)));
    let mut added = 0;
    let mut spilled = Vec::new();
    // Prefetch the slots of this half's addresses a few of them ahead.
    let mut ahead = addrs.iter().filter_map(|&a| mine(a));
    for h in ahead.by_ref().take(AHEAD) {
        prefetch_slot(&half[home(h) - base]);
    }
    for (k, &a) in addrs.iter().enumerate() {
        let Some(h) = mine(a) else {
            // Another half's, or not for the slots (inserted afterwards, with the others).
            if base == 0 && a != 0 && hash(a).is_none() {
                spilled.push(k);
            }
            continue;
        };
        if let Some(b) = ahead.next() {
            prefetch_slot(&half[home(b) - base]);
        }
        let id = first + k as u32;
        match probe(half, base, shape, h, false) {
            Probe::Found(_) => {}
            Probe::Empty(i)
                if id as u64 <= shape.id_mask()
                    && (spill.is_empty() || !spill.contains_key(&a)) =>
            {
                let (at, tag) = shape.place(h);
                half[i] = shape.slot(tag, base + i - at, id);
                added += 1;
            }
            _ => spilled.push(k),
        }
    }
    (added, spilled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashMap;

    fn home(a: u64, cap: usize) -> usize {
        Shape::new(cap).place(hash(a).unwrap()).0
    }

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

    /// Addresses of every kind the slots cannot hold (unaligned, at or above 2^48), ids too big
    /// for a small table's slots, and probes longer than a slot can say, mixed with ordinary
    /// ones: every way of filling an index agrees with a hash map, also after growing.
    #[test]
    fn what_the_slots_cannot_hold_is_still_found() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let addrs: Vec<u64> = (0..20_000u64)
            .map(|i| {
                let r = next();
                match i % 10 {
                    0 => 0x7f00_0000_0000 + (r % 5000) * 8 + 4, // unaligned
                    1 => (1 << 48) + (r % 5000) * 16,           // too high
                    2 => u64::MAX - (r % 3),
                    3 => 0x7f00_0000_0000 + (r % 5000) * 8 + 1,
                    _ => 0x5500_0000_0000 + (r % 8000) * 16,
                }
            })
            .collect();
        let mut reference: FxHashMap<u64, u32> = Default::default();
        for (k, &a) in addrs.iter().enumerate() {
            reference.entry(a).or_insert(k as u32 * 1000 + 3);
        }
        let check = |idx: &AddrIndex| {
            assert_eq!(idx.len(), reference.len());
            for (&a, &v) in &reference {
                assert_eq!(idx.get(a), Some(v), "{a:#x}");
            }
            for a in [8, 0x5500_0000_0008, 0x7f00_0000_0003, 1 << 50] {
                assert_eq!(idx.get(a), reference.get(&a).copied());
            }
            assert_eq!(idx.get(0), None);
        };
        // Ids up to 20 million in tables of a few thousand slots (ids past the slots' bits go
        // to the spill map), grown from small, one by one and with lookups in one probe.
        let mut one = AddrIndex::with_capacity(4);
        let mut both = AddrIndex::default();
        for (k, &a) in addrs.iter().enumerate() {
            let id = k as u32 * 1000 + 3;
            assert_eq!(one.insert(a, id), reference[&a] == id);
            let want = if reference[&a] == id {
                Err(id)
            } else {
                Ok(reference[&a])
            };
            assert_eq!(both.get_or_insert(a, id), want);
        }
        assert!(!one.spill.is_empty());
        check(&one);
        check(&both);
        // Runs of consecutive ids (the first of an address met again kept), in big and small
        // tables, on one thread and two; and with probes cut short (a slot that says at most
        // 3 places), so that many runs of slots fill up and their addresses spill.
        let first = 50_000u32;
        let mut runs: FxHashMap<u64, u32> = Default::default();
        for (k, &a) in addrs.iter().enumerate() {
            runs.entry(a).or_insert(first + k as u32);
        }
        for (capacity, longest) in [(10, None), (addrs.len(), None), (addrs.len(), Some(3))] {
            for on_two in [false, true] {
                let mut idx = AddrIndex::with_capacity(capacity);
                if let Some(l) = longest {
                    idx.shape.longest = l;
                }
                if on_two {
                    assert_eq!(idx.insert_run_on_two(&addrs, first, || 9), 9);
                } else {
                    idx.insert_run(&addrs, first);
                }
                assert_eq!(idx.len(), runs.len());
                if longest.is_some() {
                    assert!(idx.spill.len() > 1000, "{}", idx.spill.len());
                }
                for (&a, &v) in &runs {
                    assert_eq!(idx.get(a), Some(v), "{a:#x} {capacity} {on_two}");
                }
                // Grown: every slot's address given back.
                idx.grow_to(idx.slots.len() * 3 + 1);
                assert_eq!(idx.len(), runs.len());
                for (&a, &v) in &runs {
                    assert_eq!(idx.get(a), Some(v), "{a:#x} after growing");
                }
            }
        }
    }

    /// A slot gives back the address it was filled with, for addresses all over the 48-bit
    /// range and tables of many sizes.
    #[test]
    fn slots_give_their_addresses_back() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for cap in [8usize, 13, 100, 4096, 65_537, 1 << 20, (1 << 26) + 12_345] {
            let shape = Shape::new(cap);
            for _ in 0..2000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let a = (x & ((1 << 48) - 1)) & !7;
                let Some(h) = hash(a) else { continue };
                let (home, tag) = shape.place(h);
                assert!(home < cap);
                for back in [0usize, 1, 7] {
                    let i = (home + back) % cap;
                    let slot = shape.slot(tag, back, 5);
                    assert_eq!(shape.address(i, slot), a, "cap {cap}");
                }
            }
        }
        assert_eq!(MULT.wrapping_mul(MULT_INV) & KEY_MASK, 1);
    }
}
