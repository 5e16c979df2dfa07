//! Cyclic garbage found on a captured graph, the way CPython's collector finds it, without
//! collecting: a node whose object has more references than the graph's edges to it is held
//! from outside the graph (a C stack, a module's static, an object the capture did not
//! traverse); what no such node reaches is garbage that `gc.collect()` would free.
//!
//! The capture gives each node's reference count less its own references
//! ([`OutsideCounts`]); [`unreachable`] takes the edges away and walks from the rest.

use crate::graph::{Graph, NodeId};
use crate::nodeset::NodeSet;
use rustc_hash::FxHashMap;

/// From this many edges on, they are taken from the counts on several threads: at 10M objects
/// (30M edges) 0.21 s on one thread, 0.16 s on two.
const PARALLEL_FROM: usize = 1 << 22;

/// Per node, in id order: its object's reference count less the references the capture holds
/// itself. One byte a node; counts from [`OutsideCounts::MANY`] on are kept whole beside, and
/// counts no graph's edges could take away (an immortal object's, from 3.12 on) are only
/// marked as [`OutsideCounts::ALWAYS`].
#[derive(Clone, Debug, Default)]
pub struct OutsideCounts {
    small: Vec<u8>,
    big: FxHashMap<NodeId, u64>,
}

impl OutsideCounts {
    /// A count of this or more is kept in the map.
    const MANY: u8 = u8::MAX;
    /// A count of [`OutsideCounts::ENDLESS`] or more: held whatever the edges.
    const ALWAYS: u8 = u8::MAX - 1;
    const ENDLESS: u64 = 1 << 31;

    /// How a count is kept: in one byte, or marked (and in the map for `MANY`).
    #[inline]
    fn byte_of(count: u64) -> u8 {
        if count >= Self::ENDLESS {
            Self::ALWAYS
        } else if count >= Self::ALWAYS as u64 {
            Self::MANY
        } else {
            count as u8
        }
    }

    /// Room for `n` nodes.
    pub fn with_capacity(n: usize) -> Self {
        OutsideCounts {
            small: Vec::with_capacity(n),
            big: Default::default(),
        }
    }

    /// Number of nodes counted.
    pub fn len(&self) -> usize {
        self.small.len()
    }

    /// True before the first node.
    pub fn is_empty(&self) -> bool {
        self.small.is_empty()
    }

    /// The count of the next node.
    #[inline]
    pub fn push(&mut self, count: u64) {
        let b = Self::byte_of(count);
        if b == Self::MANY {
            self.big.insert(self.small.len() as NodeId, count);
        }
        self.small.push(b);
    }

    /// Set the count of node `n` (already pushed) anew.
    pub fn set(&mut self, n: NodeId, count: u64) {
        let Some(c) = self.small.get_mut(n as usize) else {
            return;
        };
        *c = Self::byte_of(count);
        if *c == Self::MANY {
            self.big.insert(n, count);
        } else {
            self.big.remove(&n);
        }
    }

    /// Take one reference away from node `n` (an edge to it); a count never goes below 0
    /// (an object that visits what it does not own: the collector trusts it not to).
    #[inline]
    fn take_one(&mut self, n: NodeId) {
        let c = &mut self.small[n as usize];
        match *c {
            Self::MANY => {
                if let Some(b) = self.big.get_mut(&n) {
                    *b = b.saturating_sub(1);
                }
            }
            Self::ALWAYS => {}
            _ => *c = c.saturating_sub(1),
        }
    }

    /// Take one reference away from each node of `targets` (the graph's edges to it): on
    /// several threads for a big graph, each over a run of the edges, the same result as
    /// [`OutsideCounts::take_one`] for each.
    fn take_edges(&mut self, targets: &[NodeId], serial_below: usize) {
        use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
        let tasks = crate::threads::tasks_for(targets.len(), serial_below);
        if tasks <= 1 {
            for &t in targets {
                self.take_one(t);
            }
            return;
        }
        // SAFETY: `AtomicU8` has `u8`'s size and alignment; the slice is borrowed mutably,
        // so only these atomics touch it until they are dropped.
        let small: &[AtomicU8] =
            unsafe { &*(self.small.as_mut_slice() as *mut [u8] as *const [AtomicU8]) };
        // A few runs per thread, for balance.
        let pieces = tasks * 4;
        let run = targets.len().div_ceil(pieces);
        let many = crate::threads::map_reduce(
            pieces,
            |p| {
                let mut many: FxHashMap<NodeId, u64> = Default::default();
                for &t in &targets[(p * run).min(targets.len())..((p + 1) * run).min(targets.len())]
                {
                    let taken = small[t as usize].fetch_update(Relaxed, Relaxed, |c| {
                        (c != Self::MANY && c != Self::ALWAYS && c != 0).then(|| c - 1)
                    });
                    if taken == Err(Self::MANY) {
                        *many.entry(t).or_default() += 1;
                    }
                }
                many
            },
            FxHashMap::default,
            |mut a, b| {
                for (t, k) in b {
                    *a.entry(t).or_default() += k;
                }
                a
            },
        );
        for (t, k) in many {
            if let Some(b) = self.big.get_mut(&t) {
                *b = b.saturating_sub(k);
            }
        }
    }

    /// Whether node `n` has a reference left: one from outside the graph.
    #[inline]
    fn held_from_outside(&self, n: usize) -> bool {
        match self.small[n] {
            0 => false,
            Self::MANY => self.big.get(&(n as NodeId)).is_none_or(|&b| b > 0),
            _ => true,
        }
    }
}

/// The nodes that nothing held from outside the graph reaches (`counts` less the graph's own
/// edges is what holds each node from outside), or `None` when every node is reached (or the
/// counts are not one per node: nothing is called garbage then).
pub fn unreachable(g: &Graph, counts: OutsideCounts) -> Option<NodeSet> {
    let mut never = |_: u64| Ok::<(), std::convert::Infallible>(());
    match unreachable_reporting(g, counts, &mut never) {
        Ok(gone) => gone,
        Err(e) => match e {},
    }
}

/// [`unreachable`], calling `report(done)` every [`REPORT_EVERY`] nodes of the walk (`done`
/// nodes walked of the graph's; not during the edges' subtraction, which comes first); an
/// error it returns ends the walk and is returned.
pub fn unreachable_reporting<E>(
    g: &Graph,
    mut counts: OutsideCounts,
    report: &mut dyn FnMut(u64) -> Result<(), E>,
) -> Result<Option<NodeSet>, E> {
    let n = g.len();
    if counts.len() != n {
        return Ok(None);
    }
    let (offsets, targets) = g.referent_arrays();
    counts.take_edges(targets, PARALLEL_FROM);
    // Walked in id order, each node reached before its turn waits for it (most references
    // are read in order, as the arrays are laid out); one reached after its turn is walked
    // from at once, depth first.
    let mut alive = NodeSet::new(n);
    let mut stack: Vec<NodeId> = Vec::new();
    let referents =
        |v: NodeId| &targets[offsets[v as usize] as usize..offsets[v as usize + 1] as usize];
    for v in 0..n as NodeId {
        if v % REPORT_EVERY == 0 && v > 0 {
            report(v as u64)?;
        }
        if !alive.contains(v) {
            if !counts.held_from_outside(v as usize) {
                continue;
            }
            alive.insert(v);
        }
        for &t in referents(v) {
            if alive.insert(t) && t < v {
                stack.push(t);
                while let Some(u) = stack.pop() {
                    for &w in referents(u) {
                        if alive.insert(w) && w < v {
                            stack.push(w);
                        }
                    }
                }
            }
        }
    }
    Ok((alive.count() < n).then(|| alive.complement()))
}

/// How often [`unreachable_reporting`] reports, in nodes.
pub const REPORT_EVERY: NodeId = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::from_edges;

    fn counts(c: &[u64]) -> OutsideCounts {
        let mut o = OutsideCounts::with_capacity(c.len());
        for &x in c {
            o.push(x);
        }
        o
    }

    fn members(s: &NodeSet, n: usize) -> Vec<NodeId> {
        (0..n as NodeId).filter(|&v| s.contains(v)).collect()
    }

    /// 0 -> 1 -> 2 -> 1 (a cycle held by 0, which is held from outside); 3 <-> 4 a cycle
    /// nothing holds, which holds 5 (a leaf) and 1; 6 refers to itself only.
    fn sample() -> Graph {
        from_edges(
            &[
                ("module", true),
                ("A", true),
                ("B", true),
                ("C", true),
                ("D", true),
                ("str", false),
                ("E", false),
            ],
            &[&[1], &[2], &[1], &[4, 5], &[3, 1], &[], &[6]],
        )
    }

    #[test]
    fn the_walk_reports_as_it_goes_and_an_error_ends_it() {
        // A chain of 5000 nodes from node 0 (held from outside), the last one garbage (a
        // cycle of its own that nothing else refers to).
        let n = 5000usize;
        let kinds = vec![("T", true); n];
        let mut lists: Vec<Vec<NodeId>> = (0..n as NodeId).map(|v| vec![v + 1]).collect();
        lists[n - 2] = vec![];
        lists[n - 1] = vec![n as NodeId - 1];
        let edges: Vec<&[NodeId]> = lists.iter().map(|l| &l[..]).collect();
        let g = from_edges(&kinds, &edges);
        // One reference each: node 0's from outside, the others' from the chain (the last
        // node's from itself).
        let c = || counts(&vec![1u64; n]);
        let mut seen = Vec::new();
        let gone = unreachable_reporting(&g, c(), &mut |done| {
            seen.push(done);
            Ok::<(), ()>(())
        });
        let want: Vec<u64> = (1..=4).map(|k| k * REPORT_EVERY as u64).collect();
        assert_eq!(seen, want);
        assert_eq!(
            members(&gone.unwrap().expect("garbage"), n),
            vec![n as NodeId - 1]
        );
        let mut calls = 0;
        let stopped = unreachable_reporting(&g, c(), &mut |done| {
            calls += 1;
            if done >= 2 * REPORT_EVERY as u64 {
                Err(done)
            } else {
                Ok(())
            }
        });
        assert_eq!(stopped.err(), Some(2 * REPORT_EVERY as u64));
        assert_eq!(calls, 2);
    }

    #[test]
    fn a_cycle_nothing_holds_is_garbage_with_what_only_it_holds() {
        let g = sample();
        // Reference counts as the edges give them (1 has three referrers), plus one from
        // outside for node 0.
        let dead = unreachable(&g, counts(&[1, 3, 1, 1, 1, 1, 1])).expect("garbage");
        assert_eq!(members(&dead, g.len()), vec![3, 4, 5, 6]);
    }

    #[test]
    fn one_reference_from_outside_keeps_a_cycle_and_what_it_holds() {
        let g = sample();
        // Node 4 has one more reference than edges to it: the cycle 3 <-> 4 is alive, and 5.
        let dead = unreachable(&g, counts(&[1, 3, 1, 1, 2, 1, 1])).expect("garbage");
        assert_eq!(members(&dead, g.len()), vec![6]);
        assert!(unreachable(&g, counts(&[1, 3, 1, 1, 2, 1, 2])).is_none());
    }

    #[test]
    fn nodes_reached_before_their_turn_and_after_it() {
        // 3 (held) -> 1 -> 0 -> 2: the walk meets 1 and 0 after their turn, 2 after 0's
        // turn but before its own; 4 <-> 5 unreached.
        let g = from_edges(
            &[
                ("a", true),
                ("b", true),
                ("c", true),
                ("d", true),
                ("e", true),
                ("f", true),
            ],
            &[&[2], &[0], &[], &[1], &[5], &[4]],
        );
        let dead = unreachable(&g, counts(&[0, 0, 0, 1, 0, 0])).expect("garbage");
        assert_eq!(members(&dead, g.len()), vec![4, 5]);
    }

    #[test]
    fn big_counts_are_kept_whole() {
        // Node 1 has 300 edges to it from node 0 and as many references: garbage with 0
        // (nothing holds 0); with one reference more, alive and 0 garbage.
        let many: Vec<NodeId> = vec![1; 300];
        let g = from_edges(&[("list", true), ("obj", true)], &[&many, &[]]);
        let dead = unreachable(&g, counts(&[0, 300])).expect("garbage");
        assert_eq!(members(&dead, 2), vec![0, 1]);
        let dead = unreachable(&g, counts(&[0, 301])).expect("garbage");
        assert_eq!(members(&dead, 2), vec![0]);
        let mut c = counts(&[0, 301]);
        c.set(1, 300);
        assert_eq!(
            members(&unreachable(&g, c).expect("garbage"), 2),
            vec![0, 1]
        );
        let mut c = counts(&[0, 300]);
        c.set(0, 1);
        assert!(unreachable(&g, c).is_none());
        // An immortal object's count (3.12+), or one marked held: never taken to 0.
        for always in [u32::MAX as u64 - 1, u64::MAX] {
            let dead = unreachable(&g, counts(&[0, always])).expect("garbage");
            assert_eq!(members(&dead, 2), vec![0]);
        }
        let mut c = counts(&[0, 5]);
        c.set(1, u64::MAX);
        assert_eq!(members(&unreachable(&g, c).expect("garbage"), 2), vec![0]);
    }

    #[test]
    fn edges_taken_on_several_threads_as_on_one() {
        // 5,000 nodes, 60,000 edges from a simple generator; counts around the number of
        // edges to each node, some big, some below it (they stop at 0).
        let n = 5000u32;
        let mut x = 12345u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut targets: Vec<NodeId> = (0..60_000).map(|_| (next() % n as u64) as NodeId).collect();
        targets.extend(std::iter::repeat_n(7, 600)); // node 7 gets a big count
        targets.extend(std::iter::repeat_n(8, 300)); // node 8 an endless one
        let mut edges_to = vec![0u64; n as usize];
        for &t in &targets {
            edges_to[t as usize] += 1;
        }
        let mut start = OutsideCounts::with_capacity(n as usize);
        for e in &edges_to {
            start.push((e + next() % 3).saturating_sub(next() % 2));
        }
        start.set(8, u64::MAX);
        let mut one = start.clone();
        one.take_edges(&targets, usize::MAX);
        for threads in [2, 3] {
            let mut many = start.clone();
            crate::threads::with_threads(threads, || many.take_edges(&targets, 0));
            assert_eq!(many.small, one.small);
            assert_eq!(many.big, one.big);
        }
        assert!(one.big.contains_key(&7) && one.held_from_outside(8));
        assert!(one.small.contains(&0) && one.small.iter().any(|&c| c > 0));
    }

    #[test]
    fn counts_that_do_not_fit_call_nothing_garbage() {
        let g = sample();
        assert!(unreachable(&g, counts(&[0, 0])).is_none());
    }
}
