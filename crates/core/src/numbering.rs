//! Dense numbers for addresses: 0, 1, 2, … in the order they are first met.

use rustc_hash::FxHashMap;

/// Slots of the cache of recent addresses (a power of two).
const RECENT: usize = 64;

/// Numbers addresses (of types, mostly) in the order they are first met. A heap's objects
/// come in runs of a handful of types (an instance, its dict, their lists and strings): a
/// direct-mapped cache of recent addresses in front of the hash map saves a probe per object.
#[derive(Clone)]
pub struct Numbering {
    index: FxHashMap<u64, u32>,
    /// Recent addresses and their numbers, by the address's bits (address 0: an empty slot).
    recent: [(u64, u32); RECENT],
    /// The addresses in the order of their numbers.
    addrs: Vec<u64>,
}

impl Default for Numbering {
    fn default() -> Self {
        Numbering {
            index: Default::default(),
            recent: [(0, 0); RECENT],
            addrs: Vec::new(),
        }
    }
}

impl Numbering {
    /// Nothing numbered yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of `addr`: the one it was given when first met, else the next one (equal
    /// to [`Numbering::len`] before the call).
    #[inline]
    pub fn number(&mut self, addr: u64) -> u32 {
        // The high bits of the product are the well-mixed ones; objects (and types) are
        // 16-byte aligned, so the low four bits of the address say nothing.
        let slot = ((addr >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % RECENT;
        let (a, n) = self.recent[slot];
        if a == addr && a != 0 {
            return n;
        }
        let next = self.addrs.len() as u32;
        let n = *self.index.entry(addr).or_insert(next);
        if n == next {
            self.addrs.push(addr);
        }
        self.recent[slot] = (addr, n);
        n
    }

    /// How many addresses are numbered.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The numbered addresses, in the order of their numbers.
    pub fn addrs(&self) -> &[u64] {
        &self.addrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_order_of_first_appearance() {
        let mut n = Numbering::new();
        assert!(n.is_empty());
        // Addresses that share a cache slot (the same bits above the fourth), others that do
        // not, address 0, and each met again after the others evicted it from the cache.
        let addrs = [
            0x1000u64, 0x2000, 0x1000, 0, 0x1008, 0x3000, 0x2000, 0, 0x1008,
        ];
        let got: Vec<u32> = addrs.iter().map(|&a| n.number(a)).collect();
        assert_eq!(got, [0, 1, 0, 2, 3, 4, 1, 2, 3]);
        assert_eq!(n.addrs(), &[0x1000, 0x2000, 0, 0x1008, 0x3000]);
        assert_eq!(n.len(), 5);
    }

    #[test]
    fn many_addresses_agree_with_a_plain_map() {
        let mut n = Numbering::new();
        let mut plain: FxHashMap<u64, u32> = Default::default();
        // A pseudo-random sequence over 1,000 distinct addresses, enough to collide in the cache.
        let mut x = 12345u64;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = ((x >> 33) % 1000 + 1) * 16;
            let next = plain.len() as u32;
            let want = *plain.entry(a).or_insert(next);
            assert_eq!(n.number(a), want);
        }
        assert_eq!(n.len(), plain.len());
        for (i, &a) in n.addrs().iter().enumerate() {
            assert_eq!(plain[&a], i as u32);
        }
    }
}
