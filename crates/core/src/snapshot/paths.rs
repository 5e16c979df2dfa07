//! Shortest retention paths: from a root to each target, grouped by the shape of the path.
//!
//! One breadth-first search from all roots at once gives every node its shortest path from some
//! root. Weak references do not keep anything alive, so the search never goes through one.

use super::Snapshot;
use crate::dominators::NONE;
use crate::graph::{flags, NodeId};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// Paths that look the same: same types along the way, same module globals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathGroup {
    /// One step per node, root first: the type name, with the module name for modules and
    /// the global's name for objects bound to a module global.
    pub shape: Vec<String>,
    /// Targets retained along this shape.
    pub count: u64,
    /// Their shallow bytes.
    pub bytes: u64,
    /// One such path, root first, ending at a target.
    pub example: Vec<NodeId>,
}

/// All groups, most targets first, and how many targets no root reaches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathReport {
    pub groups: Vec<PathGroup>,
    pub unreachable: u64,
}

/// Parent of every node on a shortest path from `roots` (`NONE` for roots and for nodes no
/// root reaches; `reached` tells them apart).
pub fn shortest_path_tree(s: &Snapshot, roots: &[NodeId]) -> (Vec<NodeId>, Vec<bool>) {
    let g = &s.graph;
    let mut parent = vec![NONE; g.len()];
    let mut reached = vec![false; g.len()];
    let mut queue: VecDeque<NodeId> = VecDeque::new();
    for &r in roots {
        if !reached[r as usize] {
            reached[r as usize] = true;
            queue.push_back(r);
        }
    }
    while let Some(v) = queue.pop_front() {
        if g.has(v, flags::WEAKREF) {
            continue;
        }
        for &w in g.referents(v) {
            if !reached[w as usize] {
                reached[w as usize] = true;
                parent[w as usize] = v;
                queue.push_back(w);
            }
        }
    }
    (parent, reached)
}

/// One step of a path shape.
pub fn step_name(s: &Snapshot, n: NodeId) -> String {
    let t = s.type_name(n);
    if s.graph.has(n, flags::MODULE) {
        if let Some(l) = s.label(n) {
            return format!("{t} {l}");
        }
    }
    match s.global_name(n) {
        Some(gname) => format!("{t} {gname}"),
        None => t.to_string(),
    }
}

/// Group the shortest retention paths of `targets` by shape.
pub fn retention_paths(s: &Snapshot, roots: &[NodeId], targets: &[NodeId]) -> PathReport {
    let (parent, reached) = shortest_path_tree(s, roots);
    let mut report = PathReport::default();
    let mut index: FxHashMap<Vec<String>, usize> = Default::default();
    for &t in targets {
        if !reached[t as usize] {
            report.unreachable += 1;
            continue;
        }
        let mut path = vec![t];
        let mut v = t;
        while parent[v as usize] != NONE {
            v = parent[v as usize];
            path.push(v);
        }
        path.reverse();
        let mut shape: Vec<String> = path.iter().map(|&n| step_name(s, n)).collect();
        // The target is described by its type alone, so that its instances group together.
        if let Some(last) = shape.last_mut() {
            *last = s.type_name(t).to_string();
        }
        let bytes = s.sizes[t as usize];
        match index.get(&shape) {
            Some(&i) => {
                report.groups[i].count += 1;
                report.groups[i].bytes += bytes;
            }
            None => {
                index.insert(shape.clone(), report.groups.len());
                report.groups.push(PathGroup {
                    shape,
                    count: 1,
                    bytes,
                    example: path,
                });
            }
        }
    }
    report.groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.example.len().cmp(&b.example.len()))
    });
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::analysis::roots;
    use crate::snapshot::testing::leaky;

    #[test]
    fn records_are_held_by_the_module_cache() {
        let s = leaky(4);
        let r = roots(&s);
        let targets = s.nodes_of_type("Record");
        assert_eq!(targets.len(), 4);
        let rep = retention_paths(&s, &r, &targets);
        assert_eq!(rep.unreachable, 0);
        assert_eq!(rep.groups.len(), 1);
        let g = &rep.groups[0];
        assert_eq!(g.count, 4);
        assert_eq!(g.bytes, 4 * 48);
        assert_eq!(
            g.shape,
            vec!["module app", "dict", "list app._cache", "app.Record"]
        );
        assert_eq!(g.example, vec![0, 1, 2, 3]);
    }

    #[test]
    fn weak_references_do_not_retain() {
        use crate::graph::from_edges;
        // 0 module -> 1 weakref -> 2 list (the weakref's callback, say); 2 has no other referrer.
        let mut g = from_edges(
            &[("module", true), ("weakref", true), ("list", true)],
            &[&[1], &[2], &[]],
        );
        g.set_flags(0, flags::MODULE | flags::PROPER_MODULE);
        g.set_flags(1, flags::WEAKREF);
        let s = Snapshot {
            sizes: vec![1, 1, 1],
            lens: vec![crate::snapshot::NO_LEN; 3],
            graph: g,
            ..Default::default()
        };
        let rep = retention_paths(&s, &[0], &[2]);
        assert_eq!(rep.unreachable, 1);
        assert!(rep.groups.is_empty());
    }
}
