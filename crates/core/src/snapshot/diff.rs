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
    /// Bytes retained by those new objects (0 without an analysis of the new snapshot).
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

/// Compare two snapshots by type. Rows are sorted by growth in count, then by the bytes the
/// new objects retain (so that the owner of a leaked structure comes before its parts), then by
/// growth in bytes, then by name; types that did not change at all are left out.
pub fn diff(old: &Snapshot, new: &Snapshot, new_analysis: Option<&Analysis>) -> Vec<DiffRow> {
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
    for v in 0..new.len() as NodeId {
        let r = new_rows[new.graph.type_of(v) as usize];
        let size = new.sizes[v as usize];
        let e = &mut rows[r];
        e.new_count += 1;
        e.new_bytes += size;
        if old_at.get(&new.graph.addr(v)) != Some(&r) {
            e.new_objects += 1;
            e.new_objects_bytes += size;
            if let Some(a) = new_analysis {
                e.new_objects_retained += a.retained[v as usize];
            }
        }
    }
    rows.retain(|r| r.old_count != r.new_count || r.old_bytes != r.new_bytes || r.new_objects != 0);
    rows.sort_by(|a, b| {
        b.count_delta()
            .cmp(&a.count_delta())
            .then(b.new_objects_retained.cmp(&a.new_objects_retained))
            .then(b.bytes_delta().cmp(&a.bytes_delta()))
            .then(a.name.cmp(&b.name))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::analysis::analyse;
    use crate::snapshot::testing::leaky;

    #[test]
    fn the_leaking_type_comes_first() {
        let old = leaky(2);
        let new = leaky(5);
        let a = analyse(&new, &mut |_, _| {});
        let rows = diff(&old, &new, Some(&a));
        // Records and payload lists both grow by 3; Records retain their payloads.
        assert_eq!(rows[0].name, "app.Record");
        assert_eq!((rows[0].old_count, rows[0].new_count), (2, 5));
        assert_eq!(rows[0].bytes_delta(), 3 * 48);
        assert_eq!(rows[1].name, "list");
        assert_eq!(rows[1].count_delta(), 3);
        // Addresses are 8 * (id + 1) in test graphs: they moved, so many objects look new.
        assert!(rows[0].new_objects >= 3);
        assert!(diff(&new, &new, None).is_empty(), "no change, no rows");
    }
}
