//! The bounded breadth-first walk behind `show_refs`, `show_backrefs` and `show_chain`.

use crate::graph::{Direction, Graph, NodeId};
use crate::nodeset::NodeSet;
use std::collections::VecDeque;

/// Decisions the caller makes during the walk (user callbacks in the Python binding).
pub trait WalkHooks {
    type Error;
    /// Keep this neighbour? Called for each non-ignored neighbour of an expanded node, in order,
    /// before the `too_many` limit is applied (as objgraph calls its `filter`).
    fn filter(&mut self, node: NodeId) -> Result<bool, Self::Error>;
    /// Stop expanding at this node (objgraph stops `show_backrefs` at proper modules).
    fn cull(&mut self, node: NodeId) -> Result<bool, Self::Error>;
}

/// One node taken off the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkVisit {
    pub node: NodeId,
    pub depth: u32,
    /// Range into [`Walk::edges`]: the neighbours this visit drew an edge to, in order.
    pub edges: std::ops::Range<usize>,
    /// Neighbours left out by `too_many`.
    pub skipped: u64,
    /// References objgraph's walk still held on this object when it popped it: its loop
    /// variables keep the last drawn edge's two ends (`srcnode`, `tgtnode`) and the last
    /// neighbour it skipped (`source`). objgraph's `[refcount]` labels include them.
    pub lingering: u8,
}

/// The result of a walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    pub visits: Vec<WalkVisit>,
    /// Neighbour of each emitted edge (the other end is the visit's node).
    pub edges: Vec<NodeId>,
}

/// Walk from `roots` (duplicates are walked twice, as objgraph does) along `dir`, up to
/// `max_depth`, drawing at most `too_many` edges per node. `ignored` neighbours are skipped
/// silently.
pub fn walk<H: WalkHooks>(
    g: &Graph,
    roots: &[NodeId],
    dir: Direction,
    max_depth: u32,
    too_many: u64,
    ignored: &NodeSet,
    hooks: &mut H,
) -> Result<Walk, H::Error> {
    let mut seen = NodeSet::new(g.len());
    let mut depth_of: rustc_hash::FxHashMap<NodeId, u32> = Default::default();
    let mut queue = VecDeque::new();
    for &r in roots {
        seen.insert(r);
        depth_of.insert(r, 0);
        queue.push_back(r);
    }
    let mut out = Walk::default();
    // objgraph's loop variables: the last edge drawn (expanded node, neighbour) and the last
    // neighbour skipped with `continue` (cleared when an edge is drawn after it).
    let mut last_edge: Option<(NodeId, NodeId)> = None;
    let mut last_skipped: Option<NodeId> = None;
    while let Some(target) = queue.pop_front() {
        let tdepth = depth_of[&target];
        let mut lingering = 0u8;
        if let Some((a, b)) = last_edge {
            lingering += (a == target) as u8 + (b == target) as u8;
        }
        lingering += (last_skipped == Some(target)) as u8;
        let start = out.edges.len();
        let mut skipped = 0u64;
        if tdepth < max_depth && !hooks.cull(target)? {
            let mut n = 0u64;
            for &s in g.neighbours(target, dir) {
                last_skipped = Some(s);
                if ignored.contains(s) || !hooks.filter(s)? {
                    continue;
                }
                if n >= too_many {
                    skipped += 1;
                    continue;
                }
                last_skipped = None;
                last_edge = Some((target, s));
                out.edges.push(s);
                if seen.insert(s) {
                    depth_of.insert(s, tdepth + 1);
                    queue.push_back(s);
                }
                n += 1;
            }
        }
        out.visits.push(WalkVisit {
            node: target,
            depth: tdepth,
            edges: start..out.edges.len(),
            skipped,
            lingering,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::from_edges;
    use std::convert::Infallible;

    struct Hooks<'a> {
        keep: &'a dyn Fn(NodeId) -> bool,
        cull: &'a dyn Fn(NodeId) -> bool,
        filtered: Vec<NodeId>,
    }

    impl WalkHooks for Hooks<'_> {
        type Error = Infallible;
        fn filter(&mut self, node: NodeId) -> Result<bool, Infallible> {
            self.filtered.push(node);
            Ok((self.keep)(node))
        }
        fn cull(&mut self, node: NodeId) -> Result<bool, Infallible> {
            Ok((self.cull)(node))
        }
    }

    fn star() -> crate::graph::Graph {
        // 0 -> 1, 2, 3, 4, 5 ; 1 -> 0 (cycle) ; 2 -> 6 ; 6 -> 7
        from_edges(
            &[("x", true); 8],
            &[&[1, 2, 3, 4, 5], &[0], &[6], &[], &[], &[], &[7], &[]],
        )
    }

    #[test]
    fn too_many_and_depth_limit() {
        let g = star();
        let mut h = Hooks {
            keep: &|_| true,
            cull: &|_| false,
            filtered: vec![],
        };
        let w = walk(
            &g,
            &[0],
            Direction::Referents,
            2,
            3,
            &NodeSet::new(8),
            &mut h,
        )
        .unwrap();
        let nodes: Vec<_> = w.visits.iter().map(|v| (v.node, v.depth)).collect();
        assert_eq!(nodes, vec![(0, 0), (1, 1), (2, 1), (3, 1), (6, 2)]);
        assert_eq!(w.visits[0].skipped, 2);
        assert_eq!(&w.edges[w.visits[0].edges.clone()], &[1, 2, 3]);
        // The cycle edge 1 -> 0 is drawn even though 0 was seen.
        assert_eq!(&w.edges[w.visits[1].edges.clone()], &[0]);
        // Nodes at max_depth are not expanded.
        assert!(w.visits[4].edges.is_empty());
        // After expanding 0 (edges to 1, 2, 3; 4 and 5 skipped), node 1 is neither the last
        // edge's end nor the last skipped; after expanding 1 (edge 1 -> 0), node 2 is not
        // either; node 6 is the last edge drawn before it is popped (2 -> 6).
        let lingering: Vec<_> = w.visits.iter().map(|v| v.lingering).collect();
        assert_eq!(lingering, vec![0, 0, 0, 0, 1]);
    }

    #[test]
    fn filter_ignore_cull_and_duplicate_roots() {
        let g = star();
        let mut ignored = NodeSet::new(8);
        ignored.insert(3);
        let mut h = Hooks {
            keep: &|n| n != 4,
            cull: &|n| n == 2,
            filtered: vec![],
        };
        let w = walk(&g, &[0, 0], Direction::Referents, 5, 10, &ignored, &mut h).unwrap();
        let nodes: Vec<_> = w.visits.iter().map(|v| v.node).collect();
        assert_eq!(nodes, vec![0, 0, 1, 2, 5]);
        assert!(
            !h.filtered.contains(&3),
            "ignored nodes never reach the filter"
        );
        assert!(
            w.visits[3].edges.is_empty(),
            "culled node 2 is not expanded"
        );
        let back = walk(
            &g,
            &[7],
            Direction::Referrers,
            5,
            10,
            &NodeSet::new(8),
            &mut h,
        )
        .unwrap();
        let nodes: Vec<_> = back.visits.iter().map(|v| v.node).collect();
        assert_eq!(nodes, vec![7, 6, 2], "stops at the culled node");
    }
}
