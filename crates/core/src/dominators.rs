//! Dominator tree and retained sizes (Lengauer–Tarjan, on plain arrays).
//!
//! A node `d` dominates `v` when every path from the root to `v` goes through `d`. The
//! retained size of `v` is the total size of the nodes it dominates (itself included): what
//! would be freed if `v` were. Everything here is iterative (no recursion), so a 10⁶-deep
//! chain needs no stack.

/// "No node".
pub const NONE: u32 = u32::MAX;

/// The dominator tree of a graph given by its successor lists, from `root`.
#[derive(Clone, Debug)]
pub struct DomTree {
    /// Immediate dominator of each node (`NONE` for the root and for unreachable nodes).
    pub idom: Vec<u32>,
    /// Reachable nodes in DFS preorder (the root first): every node comes after its dominator.
    pub preorder: Vec<u32>,
}

/// Successor lists of a graph with nodes `0..len()`.
pub trait Successors {
    fn len(&self) -> usize;
    fn successors(&self, v: u32) -> &[u32];
    /// Total number of successors (a hint for reserving memory; 0 when unknown).
    fn edge_count(&self) -> usize {
        0
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A graph as CSR arrays: `targets[offsets[v]..offsets[v + 1]]` are `v`'s successors.
pub struct Csr<'a> {
    pub offsets: &'a [u32],
    pub targets: &'a [u32],
}

impl Successors for Csr<'_> {
    fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    fn edge_count(&self) -> usize {
        self.targets.len()
    }
    fn successors(&self, v: u32) -> &[u32] {
        let v = v as usize;
        &self.targets[self.offsets[v] as usize..self.offsets[v + 1] as usize]
    }
}

/// Compute the dominator tree of `g` from `root`, with `progress(done, total)` called now and
/// then. Nodes that `root` does not reach are left out (`NONE`).
pub fn dominators<G: Successors>(g: &G, root: u32, progress: &mut dyn FnMut(u64, u64)) -> DomTree {
    dominators_adopting(g, root, false, progress).0
}

/// Like [`dominators`]; with `adopt`, every part of the graph the root does not reach is
/// hung under the root by a virtual edge to its lowest-numbered node (returned, in order).
///
/// The algorithm is semi-NCA (semi-dominators as in Lengauer–Tarjan, with path compression,
/// then immediate dominators as nearest common ancestors), on arrays indexed by DFS number,
/// the per-vertex working state packed together for locality.
pub fn dominators_adopting<G: Successors>(
    g: &G,
    root: u32,
    adopt: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> (DomTree, Vec<u32>) {
    let n = g.len();
    // 1. Depth-first numbering (preorder), iteratively; adopted parts continue the numbering.
    //    Every edge met on the way is recorded in dfnum space as a forward CSR: when a vertex
    //    is numbered `dv`, its successors get the slots `out[out_off[dv]..out_off[dv + 1]]`
    //    (vertices are numbered in order, so the ranges follow each other), and successor `i`
    //    writes its target's dfnum to slot `out_off[dv] + i` when the DFS handles it (each
    //    successor of a reached vertex once: every slot is written). 4 bytes per edge plus 4
    //    per vertex, where (source, target) pairs took 8 per edge. The virtual edges of the
    //    adopted parts, `(0, ds)`, are in no successor list: their targets are kept apart.
    //    The predecessor lists are built from this sequential record instead of walking the
    //    graph again.
    //    Big arrays are sized once and backed by huge pages where the system allows: at tens
    //    of millions of nodes, growing them and faulting their pages in 4 KiB at a time took a
    //    quarter of the time.
    use crate::hugepages;
    let mut dfnum = hugepages::filled(NONE, n);
    let mut vertex: Vec<u32> = hugepages::with_capacity(n);
    let mut parent: Vec<u32> = hugepages::with_capacity(n); // by dfnum, parent's dfnum
    let mut adopted: Vec<u32> = Vec::new();
    // By dfnum, the first slot of the vertex's successors in `out`.
    let mut out_off: Vec<u32> = hugepages::with_capacity(n + 1);
    // Zeroed: pages are only faulted in where slots are written (the hint is too big when some
    // nodes are not reached). Grown when the hint is too small (or unknown).
    let mut out: Vec<u32> = hugepages::zeroed(g.edge_count());
    // Slots reserved so far.
    let mut total = 0usize;
    // The dfnums of the adopted parts' starts (virtual edges from 0).
    let mut virtual_targets: Vec<u32> = Vec::new();
    // (node, next successor, dfnum, first slot)
    let mut stack: Vec<(u32, u32, u32, u32)> = Vec::new();
    // Number `v` as `dv`: reserve its slots, return its stack entry.
    let mut enter = |v: u32, dv: u32, out_off: &mut Vec<u32>, out: &mut Vec<u32>| {
        let base = total;
        out_off.push(base as u32);
        total += g.successors(v).len();
        if total > out.len() {
            out.resize(total.max(2 * out.len()), 0);
        }
        (v, 0, dv, base as u32)
    };
    let mut next_unseen = 0usize;
    let mut start = Some(root);
    while let Some(s) = start {
        let ds = vertex.len() as u32;
        dfnum[s as usize] = ds;
        if ds == 0 {
            parent.push(NONE);
        } else {
            parent.push(0);
            virtual_targets.push(ds);
        }
        vertex.push(s);
        stack.push(enter(s, ds, &mut out_off, &mut out));
        while let Some(top) = stack.last_mut() {
            let (v, i, dv, base) = *top;
            let succ = g.successors(v);
            if (i as usize) < succ.len() {
                top.1 += 1;
                let w = succ[i as usize];
                let mut dw = dfnum[w as usize];
                if dw == NONE {
                    dw = vertex.len() as u32;
                    dfnum[w as usize] = dw;
                    parent.push(dv);
                    vertex.push(w);
                    stack.push(enter(w, dw, &mut out_off, &mut out));
                }
                out[(base + i) as usize] = dw;
            } else {
                stack.pop();
            }
        }
        start = None;
        if adopt {
            while next_unseen < n && dfnum[next_unseen] != NONE {
                next_unseen += 1;
            }
            if next_unseen < n {
                adopted.push(next_unseen as u32);
                start = Some(next_unseen as u32);
            }
        }
    }
    drop(stack);
    drop(dfnum);
    out_off.push(total as u32);
    out.truncate(total);
    let count = vertex.len();
    progress(count as u64 / 4, 2 * count as u64);

    // 2. Predecessors in dfnum space: a counting sort of the recorded edges by target, the
    //    targets split into ranges, one per task (each reads every edge, writes its own range:
    //    the same lists on any number of threads).
    let (pred_off, preds) = predecessors(&out_off, &out, &virtual_targets);
    drop(out);
    drop(out_off);
    progress(count as u64 / 2, 2 * count as u64);

    // 3. Semi-dominators, by dfnum. `cell[v] = [ancestor, label, semi]`.
    let mut cell: Vec<[u32; 3]> = hugepages::with_capacity(count);
    cell.extend((0..count as u32).map(|v| [NONE, v, v]));
    let mut path: Vec<u32> = Vec::new();
    let step = (count / 64).max(1);
    for w in (1..count).rev() {
        if w % step == 0 {
            progress((2 * count - w) as u64 * 3 / 4, 2 * count as u64);
        }
        let mut best = cell[w][2];
        for &v in &preds[pred_off[w] as usize..pred_off[w + 1] as usize] {
            // eval(v): minimum semi on the compressed forest path above v. Vertices numbered
            // below w are not processed yet: their semi is their own number (no memory read).
            let sv = if (v as usize) < w {
                v
            } else if cell[v as usize][0] == NONE {
                cell[v as usize][2]
            } else {
                path.clear();
                let mut x = v;
                while cell[cell[x as usize][0] as usize][0] != NONE {
                    path.push(x);
                    x = cell[x as usize][0];
                }
                while let Some(x) = path.pop() {
                    let a = cell[x as usize][0] as usize;
                    let (a_anc, a_label) = (cell[a][0], cell[a][1]);
                    let xl = cell[x as usize][1];
                    if cell[a_label as usize][2] < cell[xl as usize][2] {
                        cell[x as usize][1] = a_label;
                    }
                    cell[x as usize][0] = a_anc;
                }
                cell[cell[v as usize][1] as usize][2]
            };
            if sv < best {
                best = sv;
            }
        }
        cell[w][2] = best;
        cell[w][0] = parent[w];
    }
    drop(preds);
    drop(pred_off);
    // 4. Immediate dominators: the nearest ancestor of the parent not below the semi-dominator.
    let mut idom: Vec<u32> = hugepages::zeroed(count);
    for w in 1..count {
        let s = cell[w][2];
        let mut x = parent[w];
        while x > s {
            x = idom[x as usize];
        }
        idom[w] = x;
    }
    drop(cell);
    progress(2 * count as u64, 2 * count as u64);

    // Back to node ids.
    let mut out = hugepages::filled(NONE, n);
    for w in 1..count {
        out[vertex[w] as usize] = vertex[idom[w] as usize];
    }
    (
        DomTree {
            idom: out,
            preorder: vertex,
        },
        adopted,
    )
}

/// Predecessor lists (CSR) of the recorded edges over `count = out_off.len() - 1` vertices:
/// vertex `s`'s successors `out[out_off[s]..out_off[s + 1]]`, plus a virtual edge from 0 to each
/// of `virtual_targets`. Each list holds its sources in increasing order (a source once per
/// edge), the virtual edge's 0 last.
fn predecessors(out_off: &[u32], out: &[u32], virtual_targets: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let count = out_off.len() - 1;
    let edges = out.len() + virtual_targets.len();
    let tasks = crate::threads::range_tasks_for(edges, 1 << 20);
    let span = count.div_ceil(tasks).max(1);
    let mut pred_off: Vec<u32> = crate::hugepages::zeroed(count + 1);
    let parts: Vec<(usize, &mut [u32])> = pred_off[1..].chunks_mut(span).enumerate().collect();
    crate::threads::for_each_part(parts, |(i, part)| {
        let lo = (i * span) as u32;
        let hi = lo + part.len() as u32;
        for &t in out.iter().chain(virtual_targets) {
            if t >= lo && t < hi {
                part[(t - lo) as usize] += 1;
            }
        }
    });
    for i in 0..count {
        pred_off[i + 1] += pred_off[i];
    }
    let mut preds: Vec<u32> = crate::hugepages::zeroed(edges);
    let mut parts: Vec<(usize, &mut [u32])> = Vec::new();
    let mut rest = &mut preds[..];
    for lo in (0..count).step_by(span) {
        let hi = (lo + span).min(count);
        let (p, r) = rest.split_at_mut((pred_off[hi] - pred_off[lo]) as usize);
        rest = r;
        parts.push((lo, p));
    }
    let pred_off_ref = &pred_off;
    crate::threads::for_each_part(parts, |(lo, part)| {
        let hi = (lo + span).min(count);
        let base = pred_off_ref[lo];
        let mut fill: Vec<u32> = pred_off_ref[lo..hi].iter().map(|&o| o - base).collect();
        let (lo32, hi32) = (lo as u32, hi as u32);
        let mut add = |s: u32, t: u32| {
            if t >= lo32 && t < hi32 {
                let f = &mut fill[(t - lo32) as usize];
                part[*f as usize] = s;
                *f += 1;
            }
        };
        for s in 0..count {
            for &t in &out[out_off[s] as usize..out_off[s + 1] as usize] {
                add(s as u32, t);
            }
        }
        for &t in virtual_targets {
            add(0, t);
        }
    });
    (pred_off, preds)
}

impl DomTree {
    /// Retained size of every node: its own size plus the retained sizes of the nodes it
    /// immediately dominates. Unreachable nodes retain 0.
    pub fn retained(&self, sizes: impl Fn(u32) -> u64) -> Vec<u64> {
        let mut r: Vec<u64> = crate::hugepages::zeroed(self.idom.len());
        for &v in &self.preorder {
            r[v as usize] = sizes(v);
        }
        for &v in self.preorder.iter().skip(1).rev() {
            let d = self.idom[v as usize];
            r[d as usize] += r[v as usize];
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    struct Lists(Vec<Vec<u32>>);
    impl Successors for Lists {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn successors(&self, v: u32) -> &[u32] {
            &self.0[v as usize]
        }
    }

    fn reachable(g: &Lists, root: u32, removed: Option<u32>) -> Vec<bool> {
        let mut seen = vec![false; g.len()];
        if Some(root) == removed {
            return seen;
        }
        let mut stack = vec![root];
        seen[root as usize] = true;
        while let Some(v) = stack.pop() {
            for &w in g.successors(v) {
                if Some(w) != removed && !seen[w as usize] {
                    seen[w as usize] = true;
                    stack.push(w);
                }
            }
        }
        seen
    }

    #[test]
    fn retained_sizes_equal_brute_force_on_random_graphs() {
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for case in 0..400 {
            let n = 1 + rng.below(14) as usize;
            let m = rng.below((n * 3) as u64 + 1) as usize;
            let mut lists = vec![Vec::new(); n];
            for _ in 0..m {
                let a = rng.below(n as u64) as usize;
                let b = rng.below(n as u64) as u32;
                lists[a].push(b);
            }
            let g = Lists(lists);
            let sizes: Vec<u64> = (0..n).map(|_| 1 + rng.below(100)).collect();
            let tree = dominators(&g, 0, &mut |_, _| {});
            let retained = tree.retained(|v| sizes[v as usize]);
            let base = reachable(&g, 0, None);
            for v in 0..n as u32 {
                if !base[v as usize] {
                    assert_eq!(retained[v as usize], 0, "case {case}: unreachable {v}");
                    assert_eq!(tree.idom[v as usize], NONE);
                    continue;
                }
                // Brute force: remove v, whatever becomes unreachable is retained by v.
                let after = reachable(&g, 0, Some(v));
                let expect: u64 = (0..n)
                    .filter(|&u| base[u] && !after[u])
                    .map(|u| sizes[u])
                    .sum();
                assert_eq!(retained[v as usize], expect, "case {case}: node {v}");
                // And the immediate dominator is the closest strict dominator.
                if v != 0 {
                    let d = tree.idom[v as usize];
                    assert!(!reachable(&g, 0, Some(d))[v as usize], "case {case}: idom");
                }
            }
        }
    }

    #[test]
    fn adopting_unreached_parts_equals_virtual_edges() {
        let mut rng = Rng(77);
        for _ in 0..300 {
            let n = 2 + rng.below(12) as usize;
            let mut lists = vec![Vec::new(); n + 1];
            for _ in 0..rng.below(2 * n as u64) {
                let a = rng.below(n as u64) as usize;
                lists[a].push(rng.below(n as u64) as u32);
            }
            // Node n is the root; it reaches node 0 only.
            lists[n].push(0);
            let g = Lists(lists.clone());
            let (tree, adopted) = dominators_adopting(&g, n as u32, true, &mut |_, _| {});
            // The same with the virtual edges written out.
            lists[n].extend(adopted.iter().copied());
            let explicit = dominators(&Lists(lists), n as u32, &mut |_, _| {});
            assert_eq!(tree.idom, explicit.idom);
            assert!(tree.idom[..n].iter().all(|&d| d != NONE));
        }
    }

    #[test]
    fn several_adopted_parts_with_duplicate_edges_and_self_loops() {
        // Reached from 0: 1, 2. Unreached parts start at 3 (reaching 4 and 6), 5 and 7; 2 is
        // also reached through 6, and 6 from both 4 and 5.
        let lists = vec![
            vec![1],
            vec![1, 2, 2],
            vec![],
            vec![4],
            vec![3, 4, 6],
            vec![6, 6],
            vec![2],
            vec![],
        ];
        let g = Lists(lists.clone());
        let (tree, adopted) = dominators_adopting(&g, 0, true, &mut |_, _| {});
        assert_eq!(adopted, vec![3, 5, 7]);
        assert_eq!(tree.idom, vec![NONE, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(tree.preorder, vec![0, 1, 2, 3, 4, 6, 5, 7]);
        let r = tree.retained(|_| 1);
        assert_eq!((r[0], r[1], r[3], r[4], r[5]), (8, 1, 2, 1, 1));
        let (plain, none) = dominators_adopting(&g, 0, false, &mut |_, _| {});
        assert!(none.is_empty());
        assert_eq!(plain.idom, vec![NONE, 0, 1, NONE, NONE, NONE, NONE, NONE]);
    }

    /// Lists with a chosen edge-count hint, right or wrong.
    struct Hinted<'a>(&'a [Vec<u32>], usize);
    impl Successors for Hinted<'_> {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn edge_count(&self) -> usize {
            self.1
        }
        fn successors(&self, v: u32) -> &[u32] {
            &self.0[v as usize]
        }
    }

    #[test]
    fn edge_count_hint_does_not_change_the_result() {
        let mut rng = Rng(4242);
        let mut several_parts = 0;
        for _ in 0..300 {
            let n = 1 + rng.below(16) as usize;
            let mut lists = vec![Vec::new(); n];
            for _ in 0..rng.below(3 * n as u64) {
                let a = rng.below(n as u64) as usize;
                let b = match rng.below(4) {
                    0 => a as u32, // self loop
                    _ => rng.below(n as u64) as u32,
                };
                lists[a].push(b);
                if rng.below(4) == 0 {
                    lists[a].push(b); // duplicate edge
                }
            }
            let m: usize = lists.iter().map(Vec::len).sum();
            let root = rng.below(n as u64) as u32;
            for adopt in [false, true] {
                let want = dominators_adopting(&Hinted(&lists, m), root, adopt, &mut |_, _| {});
                several_parts += usize::from(want.1.len() > 1);
                for hint in [0, 1, m / 2, m + 1, 2 * m + 100] {
                    let got =
                        dominators_adopting(&Hinted(&lists, hint), root, adopt, &mut |_, _| {});
                    assert_eq!(got.0.idom, want.0.idom);
                    assert_eq!(got.0.preorder, want.0.preorder);
                    assert_eq!(got.1, want.1);
                }
            }
        }
        assert!(several_parts > 10, "{several_parts}");
    }

    #[test]
    fn deep_chain_needs_no_recursion() {
        let n = 1_000_000u32;
        let lists: Vec<Vec<u32>> = (0..n)
            .map(|i| if i + 1 < n { vec![i + 1] } else { vec![] })
            .collect();
        let g = Lists(lists);
        let tree = dominators(&g, 0, &mut |_, _| {});
        let r = tree.retained(|_| 1);
        assert_eq!(r[0], n as u64);
        assert_eq!(r[n as usize - 1], 1);
        assert_eq!(tree.idom[5], 4);
    }

    #[test]
    fn diamond_and_cycle() {
        // 0 -> 1, 2; 1 -> 3; 2 -> 3; 3 -> 4; 4 -> 3
        let g = Lists(vec![vec![1, 2], vec![3], vec![3], vec![4], vec![3]]);
        let tree = dominators(&g, 0, &mut |_, _| {});
        assert_eq!(tree.idom, vec![NONE, 0, 0, 0, 3]);
        let csr_off = [0u32, 2, 3, 4, 5, 6];
        let csr_t = [1u32, 2, 3, 3, 4, 3];
        let t2 = dominators(
            &Csr {
                offsets: &csr_off,
                targets: &csr_t,
            },
            0,
            &mut |_, _| {},
        );
        assert_eq!(t2.idom, tree.idom);
    }
}
