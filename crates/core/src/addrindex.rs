//! A map from object addresses to node ids, built for the capture's access pattern: millions of
//! lookups of addresses spread all over memory. Open addressing with linear probing in one flat
//! array (key and value side by side, four slots per cache line), and a prefetch so that the
//! lookups of an object's referents can overlap their cache misses.

/// Address → node id. Address 0 is never a valid key (it marks empty slots).
#[derive(Clone, Debug, Default)]
pub struct AddrIndex {
    slots: Vec<(u64, u32)>,
    mask: usize,
    len: usize,
}

#[inline(always)]
fn hash(addr: u64) -> u64 {
    // Objects are at least 16-byte aligned: the low bits carry nothing.
    (addr >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `cap` empty slots. A big table is looked up at random: with 4 KiB pages nearly every lookup
/// also misses the TLB, and filling it faults page by page; on Linux it asks for huge pages
/// (before any page is touched: a zeroed allocation that large is fresh from `mmap`).
fn zeroed_slots(cap: usize) -> Vec<(u64, u32)> {
    crate::hugepages::zeroed(cap)
}

impl AddrIndex {
    /// An index with room for `n` entries before it grows.
    pub fn with_capacity(n: usize) -> Self {
        // At most half full: short probe runs (a 3/4 load measured slower).
        let cap = (n.max(8) * 2).next_power_of_two();
        AddrIndex {
            slots: zeroed_slots(cap),
            mask: cap - 1,
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

    #[inline(always)]
    fn home(&self, addr: u64) -> usize {
        // The high bits of the product are the well-mixed ones.
        (hash(addr) >> 20) as usize & self.mask
    }

    /// Hint that `addr` will be looked up soon.
    #[inline(always)]
    pub fn prefetch(&self, addr: u64) {
        if self.slots.is_empty() {
            return;
        }
        let p = &self.slots[self.home(addr)] as *const (u64, u32);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint and never faults; p points into our own array.
        unsafe {
            std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }

    /// The id stored for `addr`.
    #[inline]
    pub fn get(&self, addr: u64) -> Option<u32> {
        if addr == 0 || self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(addr);
        loop {
            let (k, v) = self.slots[i];
            if k == addr {
                return Some(v);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Store `id` for `addr` unless it is already there. Returns false if it was (the old id
    /// stays). Address 0 cannot be stored.
    pub fn insert(&mut self, addr: u64, id: u32) -> bool {
        if addr == 0 {
            return false;
        }
        if self.slots.is_empty() || (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mut i = self.home(addr);
        loop {
            let k = self.slots[i].0;
            if k == addr {
                return false;
            }
            if k == 0 {
                self.slots[i] = (addr, id);
                self.len += 1;
                return true;
            }
            i = (i + 1) & self.mask;
        }
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, zeroed_slots(cap));
        self.mask = cap - 1;
        self.len = 0;
        for (k, v) in old {
            if k != 0 {
                self.insert(k, v);
            }
        }
    }
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
    }
}
