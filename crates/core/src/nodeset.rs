//! A dense set of node ids (one bit per node).

use crate::graph::NodeId;

/// A bit set over `0..len` node ids.
#[derive(Clone, Debug, Default)]
pub struct NodeSet {
    bits: Vec<u64>,
    len: usize,
}

impl NodeSet {
    /// An empty set for a graph of `len` nodes.
    pub fn new(len: usize) -> Self {
        NodeSet {
            bits: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Insert a node; ids out of range are ignored. Returns true if it was not there.
    pub fn insert(&mut self, n: NodeId) -> bool {
        let i = n as usize;
        if i >= self.len {
            return false;
        }
        let (w, b) = (i / 64, 1u64 << (i % 64));
        let was = self.bits[w] & b != 0;
        self.bits[w] |= b;
        !was
    }

    /// Membership test; ids out of range are not members.
    pub fn contains(&self, n: NodeId) -> bool {
        let i = n as usize;
        i < self.len && self.bits[i / 64] & (1u64 << (i % 64)) != 0
    }

    /// Add every member of `other` (a set of the same length).
    pub fn union_with(&mut self, other: &NodeSet) {
        debug_assert_eq!(self.len, other.len);
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a |= b;
        }
    }

    /// The members' bits, 64 nodes a word (node `i` is bit `i % 64` of word `i / 64`).
    pub fn words(&self) -> &[u64] {
        &self.bits
    }

    /// The set of the nodes of `0..len` that are not members.
    pub fn complement(&self) -> NodeSet {
        let mut bits: Vec<u64> = self.bits.iter().map(|w| !w).collect();
        if self.len % 64 != 0 {
            if let Some(last) = bits.last_mut() {
                *last &= (1u64 << (self.len % 64)) - 1;
            }
        }
        NodeSet {
            bits,
            len: self.len,
        }
    }

    /// Number of members.
    pub fn count(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complement_stays_within_the_length() {
        for len in [0, 1, 63, 64, 65, 130] {
            let mut s = NodeSet::new(len);
            for v in (0..len as NodeId).step_by(3) {
                s.insert(v);
            }
            let c = s.complement();
            assert_eq!(c.count(), len - s.count());
            for v in 0..len as NodeId + 70 {
                assert_eq!(c.contains(v), (v as usize) < len && !s.contains(v));
            }
        }
    }

    #[test]
    fn insert_and_contains() {
        let mut s = NodeSet::new(130);
        assert!(s.insert(0));
        assert!(s.insert(129));
        assert!(!s.insert(129));
        assert!(!s.insert(500));
        assert!(s.contains(0) && s.contains(129));
        assert!(!s.contains(64) && !s.contains(500));
        assert_eq!(s.count(), 2);
        let mut t = NodeSet::new(130);
        t.insert(64);
        t.insert(0);
        s.union_with(&t);
        assert!(s.contains(64) && s.contains(0) && s.contains(129));
        assert_eq!(s.count(), 3);
    }
}
