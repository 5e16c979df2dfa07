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
pub trait Successors: Sync {
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
/// then immediate dominators as nearest common ancestors), on arrays indexed by DFS number.
pub fn dominators_adopting<G: Successors>(
    g: &G,
    root: u32,
    adopt: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> (DomTree, Vec<u32>) {
    let n = g.len();
    assert!(n < FIRST as usize, "a graph of 2^31 nodes or more");
    // 1. Depth-first numbering (preorder), iteratively; adopted parts continue the numbering.
    //    Semi-dominators only need, for each vertex `w`, the smallest predecessor numbered
    //    below it (such a predecessor `v` counts as itself) and the predecessors numbered above
    //    it (each needs an evaluation on the forest). Both numbers are known when the DFS meets
    //    an edge, so the first kind is folded into `semi[w]` at once (the tree edge from the
    //    parent included, and the virtual edge from 0 to each adopted part) and the second
    //    kind is only counted; step 2 lists them. On a heap about half the edges are of the
    //    second kind. Self loops change nothing.
    //    Big arrays are sized once and backed by huge pages where the system allows: at tens
    //    of millions of nodes, growing them and faulting their pages in 4 KiB at a time took a
    //    quarter of the time.
    use crate::hugepages;
    let mut dfnum = hugepages::filled_par(NONE, n);
    let mut vertex: Vec<u32> = hugepages::with_capacity(n);
    // By dfnum, the parent's dfnum.
    let mut parent: Vec<u32> = hugepages::with_capacity(n);
    // By dfnum: the smallest predecessor numbered below (the parent, or an ancestor with an
    // edge to it); becomes the semi-dominator in step 3.
    let mut semi: Vec<u32> = hugepages::with_capacity(n);
    // By dfnum: how many predecessors are numbered above; then where their list ends.
    let mut pred_end: Vec<u32> = hugepages::zeroed(n + 1);
    let mut adopted: Vec<u32> = Vec::new();
    // Each page of these four arrays the DFS writes first costs it a stop to have the page
    // zeroed (a fault of a huge page on this project's VM: 0.2–1.7 s a GB, depending on
    // whether the host still backs it; a quarter of the DFS's time at 41M nodes). They are
    // written in DFS order: a second thread faults them in ahead.
    let bytes = n * std::mem::size_of::<u32>();
    let warmer = (n >= WARM_FROM && crate::threads::current() > 1)
        .then(|| {
            hugepages::Warmer::start(hugepages::interleaved(
                &[
                    (vertex.as_ptr() as usize, bytes),
                    (parent.as_ptr() as usize, bytes),
                    (semi.as_ptr() as usize, bytes),
                    (pred_end.as_ptr() as usize, bytes + 4),
                ],
                2 << 20,
            ))
        })
        .flatten();
    // (node, next successor, dfnum)
    let mut stack: Vec<(u32, u32, u32)> = Vec::new();
    let mut next_unseen = 0usize;
    let mut start = Some(root);
    while let Some(s) = start {
        let ds = vertex.len() as u32;
        dfnum[s as usize] = ds;
        // The root's entries are never read; an adopted part hangs from 0 by a virtual edge.
        parent.push(if ds == 0 { NONE } else { 0 });
        semi.push(0);
        vertex.push(s);
        stack.push((s, 0, ds));
        while let Some(top) = stack.last_mut() {
            let (v, i, dv) = *top;
            let succ = g.successors(v);
            if (i as usize) < succ.len() {
                top.1 += 1;
                let w = succ[i as usize];
                let dw = dfnum[w as usize];
                if dw == NONE {
                    let dw = vertex.len() as u32;
                    dfnum[w as usize] = dw;
                    parent.push(dv);
                    semi.push(dv);
                    vertex.push(w);
                    stack.push((w, 0, dw));
                } else if dw > dv {
                    let s = &mut semi[dw as usize];
                    if dv < *s {
                        *s = dv;
                    }
                } else if dw < dv {
                    pred_end[dw as usize] += 1;
                }
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
    drop(warmer);
    let count = vertex.len();
    progress(count as u64 / 4, 2 * count as u64);

    // 2. The predecessors numbered above each vertex, read from the graph again in node order
    //    (its arrays sequentially, the DFS numbers at random), where keeping a record of the
    //    edges during the DFS took as much memory again: `preds` holds the lists one after the
    //    other by increasing target, the first entry of each flagged with `FIRST`, and `has`
    //    says which vertices have one (a bit each, where offsets took 4 bytes).
    pred_end.truncate(count + 1);
    let (preds, has) = predecessors(g, &dfnum, pred_end);
    drop(dfnum);
    progress(count as u64 / 2, 2 * count as u64);

    // 3. Semi-dominators, by dfnum, with the forest of processed vertices in `forest[v] =
    //    [ancestor, label]`. Every predecessor left is numbered above `w`, so already
    //    processed and linked: its value is the smallest semi on its compressed forest path.
    //    The lists are read backwards, as the vertices are.
    let mut forest: Vec<[u32; 2]> = hugepages::with_capacity(count);
    forest.extend((0..count as u32).map(|v| [NONE, v]));
    let mut path: Vec<u32> = Vec::new();
    let step = (count / 64).max(1);
    let mut pos = preds.len();
    for w in (1..count).rev() {
        if w % step == 0 {
            progress((2 * count - w) as u64 * 3 / 4, 2 * count as u64);
        }
        let mut best = semi[w];
        let mut more = has[w / 64] >> (w % 64) & 1 == 1;
        while more {
            pos -= 1;
            let v = preds[pos] & !FIRST;
            more = preds[pos] & FIRST == 0;
            let sv = if forest[v as usize][0] == NONE {
                semi[v as usize]
            } else {
                path.clear();
                let mut x = v;
                while forest[forest[x as usize][0] as usize][0] != NONE {
                    path.push(x);
                    x = forest[x as usize][0];
                }
                while let Some(x) = path.pop() {
                    let [a_anc, a_label] = forest[forest[x as usize][0] as usize];
                    let xl = forest[x as usize][1];
                    if semi[a_label as usize] < semi[xl as usize] {
                        forest[x as usize][1] = a_label;
                    }
                    forest[x as usize][0] = a_anc;
                }
                semi[forest[v as usize][1] as usize]
            };
            if sv < best {
                best = sv;
            }
        }
        semi[w] = best;
        forest[w][0] = parent[w];
    }
    drop(preds);
    drop(has);
    drop(forest);
    // 4. Immediate dominators: the nearest ancestor of the parent not below the semi-dominator.
    //    Written over the parents (a vertex's parent is read once, before its entry is
    //    overwritten; the walk up reads only vertices numbered before it, already done): no
    //    fresh array, whose pages would have to be faulted in.
    let mut idom = parent;
    for w in 1..count {
        let s = semi[w];
        let mut x = idom[w];
        while x > s {
            x = idom[x as usize];
        }
        idom[w] = x;
    }
    progress(2 * count as u64, 2 * count as u64);

    // Back to node ids, in the semi-dominators' array (made with room for every node).
    let mut out = semi;
    out.clear();
    out.resize(n, NONE);
    for w in 1..count {
        out[vertex[w] as usize] = vertex[idom[w] as usize];
    }
    drop(idom);
    (
        DomTree {
            idom: out,
            preorder: vertex,
        },
        adopted,
    )
}

/// Flags the first entry of each predecessor list (DFS numbers stay below 2^31).
const FIRST: u32 = 1 << 31;

/// From how many nodes a second thread faults in the DFS's arrays (tests/parallel.rs
/// compares results with and without it).
const WARM_FROM: usize = 1 << 19;

/// Predecessor lists of the edges of `g` that go to a vertex numbered earlier in the DFS
/// (`dfnum`), given `counts[w]`, how many such edges reach `w` (one entry more than the
/// vertices, 0). Returns the lists one after the other by increasing target, sources in
/// dfnum space (a source once per edge), the first entry of each list flagged with [`FIRST`];
/// and a bit per vertex, set when its list is not empty.
///
/// On several threads the sources are split into ranges, one per task, and each edge claims
/// its place in its target's list with an atomic decrement: the order within a list then
/// depends on the threads' timing, but the lists hold the same sources, and the semi-dominators
/// read from them (minima over each list) are the same on any number of threads.
fn predecessors<G: Successors>(g: &G, dfnum: &[u32], mut counts: Vec<u32>) -> (Vec<u32>, Vec<u64>) {
    let count = counts.len() - 1;
    // Inclusive prefix sums: `counts[w]` is where `w`'s list ends; filled from the end, it
    // ends where the list starts.
    let mut total = 0u32;
    for c in counts[..count].iter_mut() {
        total += *c;
        *c = total;
    }
    counts[count] = total;
    let mut preds: Vec<u32> = crate::hugepages::zeroed(total as usize);
    let n = g.len();
    let tasks = crate::threads::tasks_for(g.edge_count(), 1 << 20);
    if tasks <= 1 {
        back_edges(g, dfnum, 0..n as u32, |dw, dv| {
            let e = &mut counts[dw as usize];
            *e -= 1;
            preds[*e as usize] = dv;
        });
    } else {
        let ends = atomic_view(&mut counts[..count]);
        let slots = atomic_view(&mut preds);
        // Eight ranges a task, for the threads to even out.
        let pieces = tasks * 8;
        let span = n.div_ceil(pieces).max(1);
        let ranges: Vec<(usize, usize)> = (0..n)
            .step_by(span)
            .map(|lo| (lo, (lo + span).min(n)))
            .collect();
        crate::threads::for_each_part(ranges, |(lo, hi)| {
            use std::sync::atomic::Ordering::Relaxed;
            back_edges(g, dfnum, lo as u32..hi as u32, |dw, dv| {
                let at = ends[dw as usize].fetch_sub(1, Relaxed) - 1;
                slots[at as usize].store(dv, Relaxed);
            });
        });
    }
    let mut has = vec![0u64; count.div_ceil(64)];
    for w in 0..count {
        if counts[w] < counts[w + 1] {
            preds[counts[w] as usize] |= FIRST;
            has[w / 64] |= 1 << (w % 64);
        }
    }
    (preds, has)
}

/// `f(dw, dv)` for each edge from a node of `sources` (reached by the DFS) to a vertex numbered
/// earlier, in DFS numbers: `dv` the source's, `dw` the target's.
#[inline(always)]
fn back_edges<G: Successors>(
    g: &G,
    dfnum: &[u32],
    sources: std::ops::Range<u32>,
    mut f: impl FnMut(u32, u32),
) {
    for v in sources {
        let dv = dfnum[v as usize];
        if dv == NONE {
            continue;
        }
        for &w in g.successors(v) {
            let dw = dfnum[w as usize];
            if dw < dv {
                f(dw, dv);
            }
        }
    }
}

/// `v` seen as atomics, for threads that each claim and write their own entries.
fn atomic_view(v: &mut [u32]) -> &[std::sync::atomic::AtomicU32] {
    use std::sync::atomic::AtomicU32;
    const _: () = assert!(std::mem::align_of::<AtomicU32>() == std::mem::align_of::<u32>());
    // SAFETY: AtomicU32 has the size and bit validity of u32, and (checked above) its
    // alignment; the exclusive borrow means nothing else reads or writes `v` while the
    // shared atomic view lives (what the unstable `AtomicU32::from_mut_slice` does).
    unsafe { &*(v as *mut [u32] as *const [AtomicU32]) }
}

impl DomTree {
    /// Retained size of every node: its own size plus the retained sizes of the nodes it
    /// immediately dominates. Unreachable nodes retain 0.
    pub fn retained(&self, sizes: impl Fn(u32) -> u64) -> Vec<u64> {
        retained_sizes(&self.idom, &self.preorder, sizes)
    }
}

/// Retained sizes of nodes `0..idom.len()` from a dominator tree given as immediate
/// dominators (`NONE`, or a node past the end, for none) and an order in which every node comes
/// after its dominator: each node's own size, plus its dominated nodes' retained sizes.
/// Nodes of `preorder` past the end (a virtual root) are skipped; nodes not in it retain 0.
pub fn retained_sizes(idom: &[u32], preorder: &[u32], sizes: impl Fn(u32) -> u64) -> Vec<u64> {
    let n = idom.len();
    let mut r: Vec<u64> = crate::hugepages::zeroed(n);
    if preorder.iter().filter(|&&v| (v as usize) < n).count() == n {
        // Every node is reached (the nodes of a preorder are distinct): in order.
        for (v, x) in r.iter_mut().enumerate() {
            *x = sizes(v as u32);
        }
    } else {
        for &v in preorder.iter().filter(|&&v| (v as usize) < n) {
            r[v as usize] = sizes(v);
        }
    }
    for &v in preorder.iter().rev().filter(|&&v| (v as usize) < n) {
        let d = idom[v as usize] as usize;
        if d < n {
            r[d] += r[v as usize];
        }
    }
    r
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
