//! Shortest reference chains by breadth-first search (`find_ref_chain`, `find_backref_chain`).

use crate::graph::{Direction, Graph, NodeId};
use crate::nodeset::NodeSet;
use std::collections::VecDeque;

const UNSEEN: u32 = u32::MAX;

/// Breadth-first search from `start` along `dir` for the nearest node accepted by `predicate`.
///
/// Mirrors objgraph's search exactly: the predicate is called on each node when it is taken off
/// the queue (the start node first), in BFS order; neighbours in `ignored` are skipped; nodes at
/// `max_depth` are tested but not expanded. Returns the chain from the matching node back to
/// `start` (both included), or `None` when nothing matched. An error from the predicate stops
/// the search and is returned.
pub fn find_chain<E>(
    g: &Graph,
    start: NodeId,
    dir: Direction,
    max_depth: u32,
    ignored: &NodeSet,
    mut predicate: impl FnMut(NodeId) -> Result<bool, E>,
) -> Result<Option<Vec<NodeId>>, E> {
    let n = g.len();
    let mut depth = vec![UNSEEN; n];
    let mut parent = vec![UNSEEN; n];
    let mut queue = VecDeque::new();
    depth[start as usize] = 0;
    queue.push_back(start);
    while let Some(target) = queue.pop_front() {
        if predicate(target)? {
            let mut chain = vec![target];
            let mut t = target;
            while parent[t as usize] != UNSEEN {
                t = parent[t as usize];
                chain.push(t);
            }
            return Ok(Some(chain));
        }
        let tdepth = depth[target as usize];
        if tdepth < max_depth {
            for &s in g.neighbours(target, dir) {
                if ignored.contains(s) || depth[s as usize] != UNSEEN {
                    continue;
                }
                depth[s as usize] = tdepth + 1;
                parent[s as usize] = target;
                queue.push_back(s);
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::from_edges;
    use std::convert::Infallible;

    fn line(n: usize) -> crate::graph::Graph {
        // 0 -> 1 -> 2 -> ... -> n-1, plus a shortcut 0 -> 3
        let nodes: Vec<(&str, bool)> = (0..n).map(|_| ("list", true)).collect();
        let mut edges: Vec<Vec<NodeId>> = (0..n)
            .map(|i| {
                if i + 1 < n {
                    vec![i as NodeId + 1]
                } else {
                    vec![]
                }
            })
            .collect();
        edges[0].push(3);
        let refs: Vec<&[NodeId]> = edges.iter().map(|e| e.as_slice()).collect();
        from_edges(&nodes, &refs)
    }

    #[test]
    fn finds_shortest_chain_both_ways() {
        let g = line(10);
        let none = NodeSet::new(g.len());
        let fwd = find_chain(&g, 0, Direction::Referents, 20, &none, |n| {
            Ok::<_, Infallible>(n == 5)
        })
        .unwrap()
        .unwrap();
        assert_eq!(fwd, vec![5, 4, 3, 0], "uses the shortcut");
        let back = find_chain(&g, 5, Direction::Referrers, 20, &none, |n| {
            Ok::<_, Infallible>(n == 0)
        })
        .unwrap()
        .unwrap();
        assert_eq!(back, vec![0, 3, 4, 5]);
    }

    #[test]
    fn respects_depth_ignore_and_order() {
        let g = line(10);
        let mut ignored = NodeSet::new(g.len());
        let mut seen = vec![];
        let r = find_chain(&g, 0, Direction::Referents, 2, &ignored, |n| {
            seen.push(n);
            Ok::<_, Infallible>(n == 9)
        })
        .unwrap();
        assert_eq!(r, None);
        assert_eq!(seen, vec![0, 1, 3, 2, 4], "BFS order, depth-limited");
        ignored.insert(3);
        // Node 4 is reachable only through the ignored node 3.
        let r = find_chain(&g, 0, Direction::Referents, 20, &ignored, |n| {
            Ok::<_, Infallible>(n == 4)
        })
        .unwrap();
        assert_eq!(r, None);
        // An error from the predicate stops the search.
        let r = find_chain(&g, 0, Direction::Referents, 20, &ignored, |n| {
            if n == 2 {
                Err("boom")
            } else {
                Ok(false)
            }
        });
        assert_eq!(r, Err("boom"));
    }
}
