//! Shortest retention paths: from a root to each target, grouped by the shape of the path.
//!
//! One breadth-first search from all roots at once gives every node its shortest path from some
//! root. Weak references do not keep anything alive, so the search never goes through one.

use super::{expr, Snapshot};
use crate::dominators::NONE;
use crate::edgenames::EdgeName;
use crate::graph::{flags, NodeId};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// Paths that look the same: same types along the way, same module globals, same attribute
/// names (indexes and dict keys may differ).
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
    /// The position of each edge of `example` among its source's referents (one fewer than
    /// the nodes), for [`Snapshot::edge_name`].
    pub example_edges: Vec<u32>,
    /// The paths as a Python expression ([`super::expr`]), with the indexes and keys that
    /// differ between them written `[...]`: `__main__.bus._listeners[...].__self__`.
    pub expression: String,
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
    let t = shortest_path_tree_edges(s, roots);
    (t.parent, t.reached)
}

/// A shortest-path tree from the roots, with the edge each node is reached by.
#[derive(Clone, Debug, Default)]
pub struct PathTree {
    /// Parent of every node (`NONE` for roots and for nodes no root reaches).
    pub parent: Vec<NodeId>,
    /// Position of the edge parent -> node among the parent's referents (0 for roots).
    pub edge: Vec<u32>,
    pub reached: Vec<bool>,
}

impl PathTree {
    /// The path from a root to `n` (root first) and its edge positions, if a root reaches `n`.
    pub fn path(&self, n: NodeId) -> Option<(Vec<NodeId>, Vec<u32>)> {
        if !self.reached[n as usize] {
            return None;
        }
        let mut path = vec![n];
        let mut edges = Vec::new();
        let mut v = n;
        while self.parent[v as usize] != NONE {
            edges.push(self.edge[v as usize]);
            v = self.parent[v as usize];
            path.push(v);
        }
        path.reverse();
        edges.reverse();
        Some((path, edges))
    }
}

/// [`shortest_path_tree`] that also records the edge each node is reached by.
pub fn shortest_path_tree_edges(s: &Snapshot, roots: &[NodeId]) -> PathTree {
    let g = &s.graph;
    let mut parent = vec![NONE; g.len()];
    let mut edge = vec![0u32; g.len()];
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
        for (k, &w) in g.referents(v).iter().enumerate() {
            if !reached[w as usize] {
                reached[w as usize] = true;
                parent[w as usize] = v;
                edge[w as usize] = k as u32;
                queue.push_back(w);
            }
        }
    }
    PathTree {
        parent,
        edge,
        reached,
    }
}

/// What an edge contributes to a path's group: attribute and local names, kinds of the
/// others (indexes and keys may differ within a group).
fn edge_key(s: &Snapshot, src: NodeId, k: u32) -> String {
    match s.edge_name(src, k as usize) {
        None => String::new(),
        Some(EdgeName::Attr(t)) => format!(".{t}"),
        Some(EdgeName::Local(t)) => format!("local {t}"),
        Some(EdgeName::Other(t)) => t.to_string(),
        Some(EdgeName::Cell(t)) => format!("closure {t}"),
        Some(EdgeName::Index(_)) => "[]".into(),
        Some(EdgeName::DictKey(_)) => "[key]".into(),
        Some(EdgeName::DictKeyObject(_)) => "key".into(),
        Some(EdgeName::SetMember) => "member".into(),
    }
}

/// The exact text of an edge's name, to tell which steps differ within a group.
fn edge_text(s: &Snapshot, src: NodeId, k: u32) -> Option<EdgeName<'_>> {
    s.edge_name(src, k as usize)
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

/// Group the shortest retention paths of `targets` by shape (types, globals and attribute
/// names along the way).
pub fn retention_paths(s: &Snapshot, roots: &[NodeId], targets: &[NodeId]) -> PathReport {
    let tree = shortest_path_tree_edges(s, roots);
    let mut report = PathReport::default();
    let mut index: FxHashMap<(Vec<String>, Vec<String>), usize> = Default::default();
    // Per group: which steps differ between its paths.
    let mut vary: Vec<Vec<bool>> = Vec::new();
    for &t in targets {
        let Some((path, edges)) = tree.path(t) else {
            report.unreachable += 1;
            continue;
        };
        let mut shape: Vec<String> = path.iter().map(|&n| step_name(s, n)).collect();
        // The target is described by its type alone, so that its instances group together.
        if let Some(last) = shape.last_mut() {
            *last = s.type_name(t).to_string();
        }
        let keys: Vec<String> = path
            .iter()
            .zip(&edges)
            .map(|(&n, &k)| edge_key(s, n, k))
            .collect();
        let bytes = s.sizes[t as usize];
        let key = (shape, keys);
        match index.get(&key) {
            Some(&i) => {
                let g = &mut report.groups[i];
                g.count += 1;
                g.bytes += bytes;
                for (j, flag) in vary[i].iter_mut().enumerate() {
                    if !*flag
                        && (g.example[j] != path[j]
                            || g.example_edges[j] != edges[j]
                            || g.example[j + 1] != path[j + 1])
                        && edge_text(s, g.example[j], g.example_edges[j])
                            != edge_text(s, path[j], edges[j])
                    {
                        *flag = true;
                    }
                }
            }
            None => {
                index.insert(key.clone(), report.groups.len());
                vary.push(vec![false; edges.len()]);
                report.groups.push(PathGroup {
                    shape: key.0,
                    count: 1,
                    bytes,
                    example: path,
                    example_edges: edges,
                    expression: String::new(),
                });
            }
        }
    }
    for (g, v) in report.groups.iter_mut().zip(&vary) {
        g.expression = expr::pattern_with_edges(s, &g.example, &g.example_edges, v);
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
        assert_eq!(g.example_edges, vec![0, 0, 0]);
        assert_eq!(g.expression, "app._cache[...]");
        // One record: its exact index.
        let one = retention_paths(&s, &r, &[5]);
        assert_eq!(one.groups[0].expression, "app._cache[2]");
        // The payloads: through `.payload`.
        let pay = retention_paths(&s, &r, &s.nodes_of_type("list")[1..]);
        assert_eq!(pay.groups[0].expression, "app._cache[...].payload");
    }

    #[test]
    fn attribute_names_split_groups() {
        use crate::edgenames::EdgeNamesBuilder;
        use crate::graph::from_edges;
        // 0 module -> 1 dict -> 2 Holder; 2 -.a-> 3 list, 2 -.b-> 4 list; 3 -> 5 Item, 4 -> 6 Item
        let mut g = from_edges(
            &[
                ("module", true),
                ("dict", true),
                ("Holder", true),
                ("list", true),
                ("list", true),
                ("Item", true),
                ("Item", true),
            ],
            &[&[1], &[2], &[3, 4], &[5], &[6], &[], &[]],
        );
        g.set_flags(0, flags::MODULE | flags::PROPER_MODULE);
        let mut b = EdgeNamesBuilder::with_capacity(6);
        for n in [
            EdgeName::Attr("__dict__"),
            EdgeName::DictKey("'h'"),
            EdgeName::Attr("a"),
            EdgeName::Attr("b"),
            EdgeName::Index(0),
            EdgeName::Index(0),
        ] {
            b.push(Some(n));
        }
        let s = Snapshot {
            sizes: vec![1; 7].into(),
            lens: vec![crate::snapshot::NO_LEN; 7].into(),
            labels: vec![(0, "m".into())].into(),
            names: b.finish().into(),
            graph: g,
            ..Default::default()
        };
        let rep = retention_paths(&s, &[0], &[5, 6]);
        let mut exprs: Vec<&str> = rep.groups.iter().map(|g| g.expression.as_str()).collect();
        exprs.sort();
        assert_eq!(exprs, vec!["m.h.a[0]", "m.h.b[0]"]);
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
            sizes: vec![1, 1, 1].into(),
            lens: vec![crate::snapshot::NO_LEN; 3].into(),
            graph: g,
            ..Default::default()
        };
        let rep = retention_paths(&s, &[0], &[2]);
        assert_eq!(rep.unreachable, 1);
        assert!(rep.groups.is_empty());
    }
}
