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
    // Old objects by address, with their type name's row.
    let mut old_at: FxHashMap<u64, usize> =
        FxHashMap::with_capacity_and_hasher(old.len(), Default::default());
    let old_rows: Vec<usize> = old
        .graph
        .type_table()
        .iter()
        .map(|t| row(&t.long_name, &mut rows))
        .collect();
    for v in 0..old.len() as NodeId {
        let r = old_rows[old.graph.type_of(v) as usize];
        rows[r].old_count += 1;
        rows[r].old_bytes += old.sizes[v as usize];
        old_at.insert(old.graph.addr(v), r);
    }
    let new_rows: Vec<usize> = new
        .graph
        .type_table()
        .iter()
        .map(|t| row(&t.long_name, &mut rows))
        .collect();
    let is_new: Vec<bool> = (0..new.len() as NodeId)
        .map(|v| old_at.get(&new.graph.addr(v)) != Some(&new_rows[new.graph.type_of(v) as usize]))
        .collect();
    for v in 0..new.len() as NodeId {
        let r = new_rows[new.graph.type_of(v) as usize];
        let size = new.sizes[v as usize];
        let e = &mut rows[r];
        e.new_count += 1;
        e.new_bytes += size;
        if is_new[v as usize] {
            e.new_objects += 1;
            e.new_objects_bytes += size;
            if let Some(a) = new_analysis {
                let d = a.idom[v as usize];
                if d == crate::dominators::NONE || !is_new[d as usize] {
                    e.new_objects_retained += a.retained[v as usize];
                }
            }
        }
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
            keep.iter().map(|&v| g.addr(v)).collect(),
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
            lens: keep.iter().map(|&v| s.lens[v as usize]).collect(),
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
