//! Roots, dominators, retained sizes and statistics by type.
//!
//! Retention roots are the modules in `sys.modules`, the frames on thread stacks and the
//! objects nothing in the heap refers to. A virtual root points at all of them; parts of the
//! heap no root reaches (cycles held only by references the gc cannot see) get a virtual edge
//! too, one per part, so that every node has a dominator and a retained size.

use super::Snapshot;
use crate::dominators::{dominators_adopting, retained_sizes, DomTree, Successors, NONE};
use crate::graph::{Graph, NodeId};
use crate::nodeset::NodeSet;
use rustc_hash::FxHashMap;

/// The heap's graph plus a virtual root (node `len()`).
struct Rooted<'a> {
    offsets: &'a [u32],
    targets: &'a [NodeId],
    root_edges: &'a [NodeId],
}

impl Successors for Rooted<'_> {
    fn len(&self) -> usize {
        self.offsets.len()
    }
    fn edge_count(&self) -> usize {
        self.targets.len() + self.root_edges.len()
    }
    fn successors(&self, v: u32) -> &[u32] {
        let v = v as usize;
        if v + 1 == self.offsets.len() {
            self.root_edges
        } else {
            &self.targets[self.offsets[v] as usize..self.offsets[v + 1] as usize]
        }
    }
}

/// Everything computed once per snapshot for retention questions.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Retention roots, flagged roots first, then objects with no referrer, in id order.
    pub roots: Vec<NodeId>,
    /// One node per part of the heap that no root reaches.
    pub unrooted: Vec<NodeId>,
    /// Immediate dominator per node (`NONE` when it is a root: dominated by the virtual root).
    pub idom: Vec<NodeId>,
    /// Retained bytes per node.
    pub retained: Vec<u64>,
    /// A bit per node (`v / 64`, `1 << v % 64`), set when no other node of its type (by long
    /// name) dominates it: the nodes whose retained bytes add up to their type's.
    pub first_of_type: Vec<u64>,
}

impl Analysis {
    /// Children of every node in the dominator tree as CSR arrays (`kids[off[v]..off[v + 1]]`,
    /// in id order); index `len()` is the virtual root.
    pub fn children(&self) -> (Vec<u32>, Vec<NodeId>) {
        let n = self.idom.len();
        let parent = |v: usize| match self.idom[v] {
            NONE => n,
            d => d as usize,
        };
        let mut off: Vec<u32> = crate::hugepages::zeroed(n + 2);
        for v in 0..n {
            off[parent(v) + 1] += 1;
        }
        for i in 0..n + 1 {
            off[i + 1] += off[i];
        }
        // Filled from the end of each list, backwards: `off[p + 1]` ends up where it started.
        let mut kids: Vec<NodeId> = crate::hugepages::zeroed(n);
        for v in (0..n).rev() {
            let end = &mut off[parent(v) + 1];
            *end -= 1;
            kids[*end as usize] = v as NodeId;
        }
        // Now `off[p + 1]` is where `p`'s list starts: shift back by one.
        off.copy_within(1..n + 2, 0);
        off[n + 1] = n as u32;
        (off, kids)
    }
}

/// The nodes something else in the heap refers to (self references excluded), a bit each.
///
/// The sources are split into ranges, one per task, each marking into its own set (a bit per
/// node: small enough to stay in the caches, where a count per node was a miss per edge);
/// the sets are then joined. The same set on any number of threads.
pub fn referred(g: &Graph) -> NodeSet {
    let n = g.len();
    let (offsets, targets) = g.referent_arrays();
    let mark = |range: std::ops::Range<usize>| {
        let mut set = NodeSet::new(n);
        for src in range {
            for &t in &targets[offsets[src] as usize..offsets[src + 1] as usize] {
                if t as usize != src {
                    set.insert(t);
                }
            }
        }
        set
    };
    // At most 8 sets of n bits, however many threads.
    let tasks = crate::threads::tasks_for(targets.len(), 1 << 20).min(8);
    if tasks <= 1 {
        return mark(0..n);
    }
    // Ranges of about as many edges each.
    let per = targets.len().div_ceil(tasks);
    let mut bounds = vec![0usize];
    for k in 1..tasks {
        let at = offsets.partition_point(|&o| (o as usize) < k * per).min(n);
        bounds.push(at.max(*bounds.last().unwrap_or(&0)));
    }
    bounds.push(n);
    let mut sets: Vec<Option<NodeSet>> = vec![None; tasks];
    let parts: Vec<(usize, &mut Option<NodeSet>)> = sets.iter_mut().enumerate().collect();
    crate::threads::for_each_part(parts, |(k, out)| {
        *out = Some(mark(bounds[k]..bounds[k + 1]));
    });
    let mut sets = sets.into_iter().flatten();
    let mut all = sets.next().unwrap_or_else(|| NodeSet::new(n));
    for s in sets {
        all.union_with(&s);
    }
    all
}

/// The retention roots of a snapshot.
pub fn roots(s: &Snapshot) -> Vec<NodeId> {
    let g = &s.graph;
    let referred = referred(g);
    let mut out: Vec<NodeId> = (0..g.len() as NodeId)
        .filter(|&n| s.is_flagged_root(n))
        .collect();
    out.extend((0..g.len() as NodeId).filter(|&n| !referred.contains(n) && !s.is_flagged_root(n)));
    out
}

/// Compute roots, the dominator tree and retained sizes. `progress(done, total)` is called now
/// and then.
pub fn analyse(s: &Snapshot, progress: &mut dyn FnMut(u64, u64)) -> Analysis {
    let g = &s.graph;
    let n = g.len();
    let roots = roots(s);
    // Parts no root reaches get one virtual edge each, to their lowest id (adopted).
    let (offsets, targets) = g.referent_arrays();
    let rooted = Rooted {
        offsets,
        targets,
        root_edges: &roots,
    };
    // The dominator tree is most of the work: nine tenths of the progress, the rest after it.
    let mut total = 1;
    let (tree, unrooted) = dominators_adopting(&rooted, n as u32, true, &mut |d, t| {
        total = t.max(1);
        progress(d.min(t) * 9 / 10, total)
    });
    let DomTree { mut idom, preorder } = tree;
    idom.truncate(n);
    for d in idom.iter_mut() {
        if *d as usize == n {
            *d = NONE;
        }
    }
    let mut a = Analysis {
        roots,
        unrooted,
        idom,
        retained: Vec::new(),
        first_of_type: Vec::new(),
    };
    // Which nodes count for their type's retained bytes, found while the sizes column (a
    // loaded snapshot's) is decoded on another thread: the walk's arrays are freed before
    // the sizes are summed, and the two together take less than the dominator pass did.
    a.first_of_type = crate::threads::run(|| {
        rayon::join(
            || first_of_their_type(s, &a),
            || {
                s.sizes.decoded();
            },
        )
        .0
    });
    let sizes = s.sizes.decoded();
    let retained = retained_sizes(&a.idom, &preorder, |v| sizes[v as usize]);
    drop(preorder);
    a.retained = retained;
    progress(total, total);
    a
}

/// The rows of the statistics by type: long type names in order of first appearance in the
/// type table, and the row of each type id.
fn rows_by_name(g: &Graph) -> (Vec<&str>, Vec<usize>) {
    let mut index: FxHashMap<&str, usize> = Default::default();
    let mut names: Vec<&str> = Vec::new();
    let mut row_of_type: Vec<usize> = Vec::with_capacity(g.type_table().len());
    for t in g.type_table() {
        let i = *index.entry(t.long_name.as_str()).or_insert_with(|| {
            names.push(t.long_name.as_str());
            names.len() - 1
        });
        row_of_type.push(i);
    }
    (names, row_of_type)
}

/// The nodes no other node of their type (by long name) dominates, as a bit set: a walk of the
/// dominator tree keeping, per type, how many ancestors on the current path have it.
fn first_of_their_type(s: &Snapshot, a: &Analysis) -> Vec<u64> {
    let g = &s.graph;
    let n = g.len();
    let (names, row_of_type) = rows_by_name(g);
    let row_of = |v: NodeId| row_of_type[g.type_of(v) as usize];
    let mut first = vec![0u64; n.div_ceil(64)];
    let (child_off, children) = a.children();
    let mut active = vec![0u32; names.len()];
    // (node, next child index); the virtual root has no type.
    let mut stack: Vec<(u32, u32)> = vec![(n as u32, child_off[n])];
    while let Some(top) = stack.last_mut() {
        let (v, i) = *top;
        if i < child_off[v as usize + 1] {
            top.1 += 1;
            let c = children[i as usize];
            let r = row_of(c);
            if active[r] == 0 {
                first[c as usize / 64] |= 1 << (c % 64);
            }
            active[r] += 1;
            stack.push((c, child_off[c as usize]));
        } else {
            stack.pop();
            if (v as usize) < n {
                active[row_of(v)] -= 1;
            }
        }
    }
    first
}

/// One row of the statistics by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeRow {
    /// Long type name (`module.Class`; bare name for builtins).
    pub name: String,
    pub count: u64,
    /// Sum of shallow sizes.
    pub shallow: u64,
    /// Bytes retained by the objects of this type together: the retained sizes of the objects
    /// that no other object of the same type dominates (so nothing is counted twice).
    pub retained: u64,
}

/// Statistics by long type name, in order of first appearance (callers sort). Retained bytes
/// are 0 without an analysis.
pub fn type_stats(s: &Snapshot, a: Option<&Analysis>) -> Vec<TypeRow> {
    let g = &s.graph;
    let (names, row_of_type) = rows_by_name(g);
    let mut rows: Vec<TypeRow> = names
        .into_iter()
        .map(|name| TypeRow {
            name: name.to_string(),
            count: 0,
            shallow: 0,
            retained: 0,
        })
        .collect();
    // Counts and shallow bytes, summed over pieces of nodes in parallel (integer sums).
    const PIECE: usize = 1 << 16;
    let zero = || vec![(0u64, 0u64); rows.len()];
    let (types, sizes) = (g.types(), s.sizes.decoded());
    let sums = crate::threads::map_reduce(
        g.len().div_ceil(PIECE),
        |p| {
            let mut acc = zero();
            let piece = p * PIECE..((p + 1) * PIECE).min(g.len());
            for (&t, &size) in types[piece.clone()].iter().zip(&sizes[piece]) {
                let r = &mut acc[row_of_type[t as usize]];
                r.0 += 1;
                r.1 += size;
            }
            acc
        },
        zero,
        |mut a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                x.0 += y.0;
                x.1 += y.1;
            }
            a
        },
    );
    for (r, (count, shallow)) in rows.iter_mut().zip(sums) {
        r.count = count;
        r.shallow = shallow;
    }
    if let Some(a) = a {
        // The retained bytes of the nodes first of their type, summed in parallel too.
        let words = &a.first_of_type;
        let zero = || vec![0u64; rows.len()];
        let sums = crate::threads::map_reduce(
            words.len().div_ceil(PIECE / 64),
            |p| {
                let mut acc = zero();
                let lo = p * (PIECE / 64);
                for (w, &bits) in words[lo..(lo + PIECE / 64).min(words.len())]
                    .iter()
                    .enumerate()
                {
                    let mut bits = bits;
                    while bits != 0 {
                        let v = (lo + w) * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        acc[row_of_type[types[v] as usize]] += a.retained[v];
                    }
                }
                acc
            },
            zero,
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            },
        );
        for (r, retained) in rows.iter_mut().zip(sums) {
            r.retained = retained;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::leaky;

    /// A graph of tracked nodes (one per entry of `types`) at made-up addresses.
    fn tracked_graph(
        types: Vec<u32>,
        offsets: Vec<u32>,
        targets: Vec<NodeId>,
        table: Vec<crate::graph::TypeInfo>,
    ) -> Graph {
        use crate::graph::flags;
        let n = types.len();
        Graph::from_parts(
            (0..n as u64).map(|i| 0x1000 + 16 * i).collect::<Vec<u64>>(),
            types,
            vec![flags::TRACKED | flags::GC_TYPE; n],
            n as u32,
            offsets,
            targets,
            table,
        )
        .expect("a valid graph")
    }

    /// Nodes in pairs, each referring to the other (but one pair in ten: self references
    /// only), with self references enough for the sets to be made on several tasks.
    #[test]
    fn referred_is_the_same_on_any_number_of_threads() {
        use crate::graph::TypeInfo;
        let n = 400_000usize;
        let (mut offsets, mut targets) = (vec![0u32], Vec::new());
        for v in 0..n {
            targets.extend([v as NodeId; 3]);
            if v / 2 % 10 != 0 {
                targets.push((v ^ 1) as NodeId);
            }
            offsets.push(targets.len() as u32);
        }
        assert!(targets.len() > 1 << 20);
        let table = vec![TypeInfo {
            addr: 1,
            short_name: "T".into(),
            long_name: "T".into(),
        }];
        let g = tracked_graph(vec![0; n], offsets, targets, table);
        let expected: Vec<bool> = (0..n).map(|v| v / 2 % 10 != 0).collect();
        for threads in [1, 2, 3, 8] {
            let set = crate::threads::with_threads(threads, || referred(&g));
            let got: Vec<bool> = (0..n as NodeId).map(|v| set.contains(v)).collect();
            assert!(got == expected, "{threads} threads");
        }
    }

    /// Nodes with many children inside others, types repeating along the paths, nodes with two
    /// referrers: the nodes first of their type are those no dominator of the same type has.
    #[test]
    fn first_of_their_type_against_the_dominators() {
        use crate::graph::TypeInfo;
        let w = 40_000;
        // 0 module -> 1 list -> w items; item 2 -> w items; each of those -> one child.
        let mut edges: Vec<Vec<NodeId>> = vec![vec![1], (2..2 + w as NodeId).collect()];
        let inner = 2 + w;
        edges.extend((0..w).map(|i| {
            if i == 0 {
                (inner as NodeId..(inner + w) as NodeId).collect()
            } else {
                vec![]
            }
        }));
        for i in 0..w {
            let mut e = vec![(inner + w + i) as NodeId];
            if i % 7 == 0 {
                e.push((2 + i) as NodeId); // a second referrer for an outer item
            }
            edges.push(e);
        }
        edges.extend((0..w).map(|_| vec![]));
        let n = edges.len();
        let names = ["M", "list", "A", "B"];
        let types: Vec<u32> = (0..n)
            .map(|v| match v {
                0 => 0,
                1 => 1,
                v => [2, 3, 1, 2, 2][v % 5],
            })
            .collect();
        let table = names
            .iter()
            .enumerate()
            .map(|(i, name)| TypeInfo {
                addr: 1 + i as u64,
                short_name: name.to_string(),
                long_name: name.to_string(),
            })
            .collect();
        let mut offsets = vec![0u32];
        let mut targets = Vec::new();
        for e in &edges {
            targets.extend_from_slice(e);
            offsets.push(targets.len() as u32);
        }
        let g = tracked_graph(types.clone(), offsets, targets, table);
        let s = Snapshot {
            sizes: vec![16; n].into(),
            lens: vec![crate::snapshot::NO_LEN; n].into(),
            graph: g,
            ..Default::default()
        };
        let a = analyse(&s, &mut |_, _| {});
        let (child_off, _) = a.children();
        assert_eq!(
            child_off[2] - child_off[1],
            w as u32,
            "node 1 has w children"
        );
        let expected: Vec<bool> = (0..n)
            .map(|v| {
                let mut d = a.idom[v];
                while d != NONE {
                    if types[d as usize] == types[v] {
                        return false;
                    }
                    d = a.idom[d as usize];
                }
                true
            })
            .collect();
        assert!(expected.iter().any(|&f| !f) && expected.iter().any(|&f| f));
        let got: Vec<bool> = (0..n)
            .map(|v| a.first_of_type[v / 64] >> (v % 64) & 1 == 1)
            .collect();
        assert!(got == expected);
    }

    #[test]
    fn retained_sizes_of_a_leaky_heap() {
        let s = leaky(3);
        let a = analyse(&s, &mut |_, _| {});
        // Roots: the module (flagged) and the weakref (no referrer).
        assert_eq!(a.roots, vec![0, 10]);
        assert!(a.unrooted.is_empty());
        // Record 3 retains itself and its payload list 6.
        assert_eq!(a.retained[3], 48 + 56);
        // The cache list retains the records and payloads.
        assert_eq!(a.retained[2], 56 + 3 * (48 + 56));
        assert_eq!(a.retained[0], s.total_bytes() - 80);
        assert_eq!(a.idom[6], 3);
        assert_eq!(a.idom[0], NONE);
        let rows = type_stats(&s, Some(&a));
        let rec = rows.iter().find(|r| r.name == "app.Record").unwrap();
        assert_eq!((rec.count, rec.shallow, rec.retained), (3, 144, 3 * 104));
        // Lists: the cache dominates the payloads, so only the cache counts.
        let list = rows.iter().find(|r| r.name == "list").unwrap();
        assert_eq!(list.count, 4);
        assert_eq!(list.retained, a.retained[2]);
        // Dicts: the module dict dominates the other dict.
        let dict = rows.iter().find(|r| r.name == "dict").unwrap();
        assert_eq!(dict.retained, a.retained[1]);
    }

    #[test]
    fn a_type_retains_what_its_first_objects_do() {
        use crate::graph::from_edges;
        // 0 (Root) -> 1 (Node) -> 2 (dict) -> 3 (Node) -> 4 (Node); 0 -> 5 (Node) -> 4 too,
        // so 4 hangs from the root, not from 3. Node counts 1 (which holds 2 and 3) and 4 and
        // 5 (their own bytes): nothing twice.
        let g = from_edges(
            &[
                ("Root", true),
                ("Node", true),
                ("dict", true),
                ("Node", true),
                ("Node", true),
                ("Node", true),
            ],
            &[&[1, 5], &[2], &[3], &[4], &[], &[4]],
        );
        let s = Snapshot {
            sizes: vec![1, 10, 100, 1000, 10000, 100000].into(),
            lens: vec![crate::snapshot::NO_LEN; 6].into(),
            graph: g,
            ..Default::default()
        };
        let a = analyse(&s, &mut |_, _| {});
        assert_eq!(a.retained[1], 1110);
        let first: Vec<bool> = (0..6).map(|v| a.first_of_type[0] >> v & 1 == 1).collect();
        assert_eq!(first, [true, true, true, false, true, true]);
        let rows = type_stats(&s, Some(&a));
        let row = |name: &str| {
            rows.iter()
                .find(|r| r.name.ends_with(name))
                .unwrap()
                .clone()
        };
        assert_eq!(row("Node").retained, 1110 + 10000 + 100000);
        assert_eq!(row("dict").retained, 1100);
        assert_eq!(row("Root").retained, 111111);
    }

    #[test]
    fn unrooted_cycles_get_a_virtual_root() {
        use crate::graph::from_edges;
        // 0 root list -> 1; 2 <-> 3 is a cycle nothing refers to.
        let g = from_edges(
            &[
                ("list", true),
                ("list", true),
                ("list", true),
                ("list", true),
            ],
            &[&[1], &[], &[3], &[2]],
        );
        let s = Snapshot {
            sizes: vec![10, 20, 30, 40].into(),
            lens: vec![crate::snapshot::NO_LEN; 4].into(),
            graph: g,
            ..Default::default()
        };
        let a = analyse(&s, &mut |_, _| {});
        assert_eq!(a.roots, vec![0]);
        assert_eq!(a.unrooted, vec![2]);
        assert_eq!(a.retained[2], 70);
        assert_eq!(a.retained[3], 40);
    }
}
