//! Growth by type between two snapshots of the same process.

use super::analysis::Analysis;
use super::Snapshot;
use crate::graph::NodeId;
use rustc_hash::FxHashMap;

/// One type's change between an old and a new snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffRow {
    /// Long type name.
    pub name: String,
    pub old_count: u64,
    pub new_count: u64,
    pub old_bytes: u64,
    pub new_bytes: u64,
    /// Objects of the new snapshot that were not in the old one (by address and type).
    pub new_objects: u64,
    /// Their shallow bytes.
    pub new_objects_bytes: u64,
    /// Bytes retained by those new objects that no other new object dominates: the growth this
    /// type is the owner of (0 without an analysis of the new snapshot).
    pub new_objects_retained: u64,
}

impl DiffRow {
    pub fn count_delta(&self) -> i64 {
        self.new_count as i64 - self.old_count as i64
    }
    pub fn bytes_delta(&self) -> i64 {
        self.new_bytes as i64 - self.old_bytes as i64
    }
}

/// Compare two snapshots by type. With an analysis of the new snapshot, rows are sorted by the
/// bytes retained by new objects that no other new object dominates — the owners of new
/// structures, so a leaking class comes before its instances' dicts, lists and strings — then by
/// growth in count, then in bytes, then by name. Types that did not change are left out.
pub fn diff(old: &Snapshot, new: &Snapshot, new_analysis: Option<&Analysis>) -> Vec<DiffRow> {
    diff_marking_new(old, new, new_analysis).0
}

/// [`diff`], and which objects of the new snapshot are new (not in the old one at the same
/// address with the same type), by node id.
pub fn diff_marking_new(
    old: &Snapshot,
    new: &Snapshot,
    new_analysis: Option<&Analysis>,
) -> (Vec<DiffRow>, Vec<bool>) {
    let mut rows: Vec<DiffRow> = Vec::new();
    let mut index: FxHashMap<String, usize> = Default::default();
    let mut row = |name: &str, rows: &mut Vec<DiffRow>| -> usize {
        if let Some(&i) = index.get(name) {
            return i;
        }
        rows.push(DiffRow {
            name: name.to_string(),
            ..Default::default()
        });
        index.insert(name.to_string(), rows.len() - 1);
        rows.len() - 1
    };
    let old_rows: Vec<usize> = old
        .graph
        .type_table()
        .iter()
        .map(|t| row(&t.long_name, &mut rows))
        .collect();
    let new_rows: Vec<usize> = new
        .graph
        .type_table()
        .iter()
        .map(|t| row(&t.long_name, &mut rows))
        .collect();
    let (is_new, sums) = crate::threads::run(|| {
        let is_new = new_objects(old, new, &old_rows, &new_rows);
        let sums = sum_rows(
            rows.len(),
            old,
            new,
            &old_rows,
            &new_rows,
            &is_new,
            new_analysis,
        );
        (is_new, sums)
    });
    for (r, s) in rows.iter_mut().zip(sums) {
        r.old_count = s[0];
        r.old_bytes = s[1];
        r.new_count = s[2];
        r.new_bytes = s[3];
        r.new_objects = s[4];
        r.new_objects_bytes = s[5];
        r.new_objects_retained = s[6];
    }
    rows.retain(|r| r.old_count != r.new_count || r.old_bytes != r.new_bytes || r.new_objects != 0);
    rows.sort_by(|a, b| {
        b.new_objects_retained
            .cmp(&a.new_objects_retained)
            .then(b.count_delta().cmp(&a.count_delta()))
            .then(b.bytes_delta().cmp(&a.bytes_delta()))
            .then(a.name.cmp(&b.name))
    });
    (rows, is_new)
}

/// Nodes per task when nodes are summed or matched in parallel.
const PIECE: usize = 1 << 16;

/// Which objects of `new` are not in `old` at the same address with the same type name's row.
/// When `old` has an address twice, its last node counts (as a map filled in node order would
/// have it). Both sides are sorted by address in parallel and merged in pieces.
fn new_objects(
    old: &Snapshot,
    new: &Snapshot,
    old_rows: &[usize],
    new_rows: &[usize],
) -> Vec<bool> {
    use rayon::prelude::*;
    let by_addr = |s: &Snapshot| {
        let mut v: Vec<(u64, NodeId)> = s
            .graph
            .addrs()
            .par_iter()
            .enumerate()
            .map(|(i, &a)| (a, i as NodeId))
            .collect();
        v.par_sort_unstable();
        v
    };
    let (old_sorted, new_sorted) = rayon::join(|| by_addr(old), || by_addr(new));
    // The row of the old object at each new object's address, in the new sorted order.
    let mut old_row = vec![usize::MAX; new_sorted.len()];
    old_row
        .par_chunks_mut(PIECE)
        .zip(new_sorted.par_chunks(PIECE))
        .for_each(|(out, part)| {
            let Some(first) = part.first() else { return };
            let mut j = old_sorted.partition_point(|x| x.0 < first.0);
            for (slot, &(a, _)) in out.iter_mut().zip(part) {
                while j < old_sorted.len() && old_sorted[j].0 < a {
                    j += 1;
                }
                // The last old node at this address.
                let mut k = j;
                while k + 1 < old_sorted.len() && old_sorted[k + 1].0 == a {
                    k += 1;
                }
                if k < old_sorted.len() && old_sorted[k].0 == a {
                    *slot = old_rows[old.graph.type_of(old_sorted[k].1) as usize];
                }
            }
        });
    let mut is_new = vec![false; new.len()];
    let flags: Vec<(NodeId, bool)> = new_sorted
        .par_iter()
        .zip(old_row.par_iter())
        .map(|(&(_, v), &r)| (v, r != new_rows[new.graph.type_of(v) as usize]))
        .collect();
    for (v, f) in flags {
        is_new[v as usize] = f;
    }
    is_new
}

/// Per row: old count, old bytes, new count, new bytes, new objects, their bytes, their
/// retained bytes; summed over pieces of nodes in parallel (integer sums: the same in any
/// order).
#[allow(clippy::too_many_arguments)]
fn sum_rows(
    rows: usize,
    old: &Snapshot,
    new: &Snapshot,
    old_rows: &[usize],
    new_rows: &[usize],
    is_new: &[bool],
    new_analysis: Option<&Analysis>,
) -> Vec<[u64; 7]> {
    use rayon::prelude::*;
    let add = |mut a: Vec<[u64; 7]>, b: Vec<[u64; 7]>| {
        for (x, y) in a.iter_mut().zip(b) {
            for k in 0..7 {
                x[k] += y[k];
            }
        }
        a
    };
    let zero = || vec![[0u64; 7]; rows];
    let olds = (0..old.len().div_ceil(PIECE))
        .into_par_iter()
        .map(|p| {
            let mut acc = zero();
            for v in p * PIECE..((p + 1) * PIECE).min(old.len()) {
                let r = &mut acc[old_rows[old.graph.type_of(v as NodeId) as usize]];
                r[0] += 1;
                r[1] += old.sizes[v];
            }
            acc
        })
        .reduce(zero, add);
    let news = (0..new.len().div_ceil(PIECE))
        .into_par_iter()
        .map(|p| {
            let mut acc = zero();
            for v in p * PIECE..((p + 1) * PIECE).min(new.len()) {
                let e = &mut acc[new_rows[new.graph.type_of(v as NodeId) as usize]];
                let size = new.sizes[v];
                e[2] += 1;
                e[3] += size;
                if is_new[v] {
                    e[4] += 1;
                    e[5] += size;
                    if let Some(a) = new_analysis {
                        let d = a.idom[v];
                        if d == crate::dominators::NONE || !is_new[d as usize] {
                            e[6] += a.retained[v];
                        }
                    }
                }
            }
            acc
        })
        .reduce(zero, add);
    add(olds, news)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::analysis::analyse;
    use crate::snapshot::testing::leaky;

    /// The same heap as `s` without some nodes (edges are not needed by the diff).
    fn without(s: &Snapshot, gone: &[NodeId]) -> Snapshot {
        let keep: Vec<NodeId> = (0..s.len() as NodeId)
            .filter(|v| !gone.contains(v))
            .collect();
        let g = &s.graph;
        let graph = crate::graph::Graph::from_parts(
            keep.iter().map(|&v| g.addr(v)).collect::<Vec<_>>(),
            keep.iter().map(|&v| g.type_of(v)).collect(),
            keep.iter().map(|&v| g.flags(v)).collect(),
            keep.len() as u32,
            vec![0; keep.len() + 1],
            vec![],
            g.type_table().to_vec(),
        )
        .unwrap();
        Snapshot {
            graph,
            sizes: keep.iter().map(|&v| s.sizes[v as usize]).collect(),
            lens: keep
                .iter()
                .map(|&v| s.lens[v as usize])
                .collect::<Vec<_>>()
                .into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_leaking_type_comes_first() {
        // leaky(5): 3..8 are Records, 8..13 their payload lists; three of each are new.
        let new = leaky(5);
        let old = without(&new, &[5, 6, 7, 10, 11, 12]);
        let a = analyse(&new, &mut |_, _| {});
        let rows = diff(&old, &new, Some(&a));
        // Records and payload lists both grow by 3; Records own their payloads.
        assert_eq!(rows[0].name, "app.Record", "{rows:#?}");
        assert_eq!((rows[0].old_count, rows[0].new_count), (2, 5));
        assert_eq!(rows[0].bytes_delta(), 3 * 48);
        assert_eq!(rows[1].name, "list");
        assert_eq!(rows[1].count_delta(), 3);
        assert_eq!(rows[0].new_objects, 3);
        assert_eq!(rows[0].new_objects_retained, 3 * (48 + 56));
        // The payload lists are new too, but owned by new Records.
        assert_eq!(rows[1].new_objects, 3);
        assert_eq!(rows[1].new_objects_retained, 0);
        assert!(diff(&new, &new, None).is_empty(), "no change, no rows");
    }
}
