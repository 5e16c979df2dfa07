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
    fn successors(&self, v: u32) -> &[u32] {
        let v = v as usize;
        &self.targets[self.offsets[v] as usize..self.offsets[v + 1] as usize]
    }
}

/// Compute the dominator tree of `g` from `root`, with `progress(done, total)` called now and
/// then (total is twice the number of reachable nodes).
pub fn dominators<G: Successors>(g: &G, root: u32, progress: &mut dyn FnMut(u64, u64)) -> DomTree {
    let n = g.len();
    // 1. Depth-first numbering (preorder), iteratively.
    let mut dfnum = vec![NONE; n];
    let mut vertex: Vec<u32> = Vec::new();
    let mut parent: Vec<u32> = Vec::new(); // by dfnum, parent's dfnum
    let mut stack: Vec<(u32, u32)> = vec![(root, 0)];
    dfnum[root as usize] = 0;
    vertex.push(root);
    parent.push(NONE);
    while let Some(top) = stack.last_mut() {
        let (v, i) = *top;
        let succ = g.successors(v);
        if (i as usize) < succ.len() {
            top.1 += 1;
            let w = succ[i as usize];
            if dfnum[w as usize] == NONE {
                dfnum[w as usize] = vertex.len() as u32;
                parent.push(dfnum[v as usize]);
                vertex.push(w);
                stack.push((w, 0));
            }
        } else {
            stack.pop();
        }
    }
    drop(stack);
    let count = vertex.len();
    progress(count as u64 / 2, 2 * count as u64);

    // 2. Predecessors in dfnum space (only reachable sources).
    let mut pred_off = vec![0u32; count + 1];
    for (d, &v) in vertex.iter().enumerate() {
        let _ = d;
        for &w in g.successors(v) {
            pred_off[dfnum[w as usize] as usize + 1] += 1;
        }
    }
    for i in 0..count {
        pred_off[i + 1] += pred_off[i];
    }
    let mut fill = pred_off.clone();
    let mut preds = vec![0u32; pred_off[count] as usize];
    for (d, &v) in vertex.iter().enumerate() {
        for &w in g.successors(v) {
            let t = dfnum[w as usize] as usize;
            preds[fill[t] as usize] = d as u32;
            fill[t] += 1;
        }
    }
    drop(fill);
    progress(count as u64, 2 * count as u64);

    // 3. Semi-dominators and immediate dominators, everything by dfnum.
    let mut semi: Vec<u32> = (0..count as u32).collect();
    let mut label: Vec<u32> = (0..count as u32).collect();
    let mut ancestor = vec![NONE; count];
    let mut idom = vec![NONE; count];
    let mut bucket_head = vec![NONE; count];
    let mut bucket_next = vec![NONE; count];
    let mut path: Vec<u32> = Vec::new();

    // eval(v): the vertex of minimum semi on the forest path above v, with path compression.
    let eval = |v: u32,
                ancestor: &mut [u32],
                label: &mut [u32],
                semi: &[u32],
                path: &mut Vec<u32>|
     -> u32 {
        if ancestor[v as usize] == NONE {
            return v;
        }
        path.clear();
        let mut x = v;
        while ancestor[ancestor[x as usize] as usize] != NONE {
            path.push(x);
            x = ancestor[x as usize];
        }
        while let Some(x) = path.pop() {
            let a = ancestor[x as usize] as usize;
            if semi[label[a] as usize] < semi[label[x as usize] as usize] {
                label[x as usize] = label[a];
            }
            ancestor[x as usize] = ancestor[a];
        }
        label[v as usize]
    };

    let step = (count / 64).max(1);
    for w in (1..count).rev() {
        if w % step == 0 {
            progress((2 * count - w) as u64, 2 * count as u64);
        }
        for &v in &preds[pred_off[w] as usize..pred_off[w + 1] as usize] {
            let u = eval(v, &mut ancestor, &mut label, &semi, &mut path);
            if semi[u as usize] < semi[w] {
                semi[w] = semi[u as usize];
            }
        }
        let s = semi[w] as usize;
        bucket_next[w] = bucket_head[s];
        bucket_head[s] = w as u32;
        let p = parent[w];
        ancestor[w] = p;
        let mut v = bucket_head[p as usize];
        bucket_head[p as usize] = NONE;
        while v != NONE {
            let next = bucket_next[v as usize];
            let u = eval(v, &mut ancestor, &mut label, &semi, &mut path);
            idom[v as usize] = if semi[u as usize] < semi[v as usize] {
                u
            } else {
                p
            };
            v = next;
        }
    }
    for w in 1..count {
        if idom[w] != semi[w] {
            idom[w] = idom[idom[w] as usize];
        }
    }
    progress(2 * count as u64, 2 * count as u64);

    // Back to node ids.
    let mut out = vec![NONE; n];
    for w in 1..count {
        out[vertex[w] as usize] = vertex[idom[w] as usize];
    }
    DomTree {
        idom: out,
        preorder: vertex,
    }
}

impl DomTree {
    /// Retained size of every node: its own size plus the retained sizes of the nodes it
    /// immediately dominates. Unreachable nodes retain 0.
    pub fn retained(&self, sizes: impl Fn(u32) -> u64) -> Vec<u64> {
        let mut r = vec![0u64; self.idom.len()];
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

    /// A small xorshift generator (deterministic, no dependency).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
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
