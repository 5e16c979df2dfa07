//! Type statistics: counts per type, merged by name, in first-appearance order.

use crate::graph::TypeId;
use rustc_hash::FxHashMap;

/// Counts per key, remembering the order in which keys first appeared.
#[derive(Clone, Debug, Default)]
pub struct Histogram<K> {
    index: FxHashMap<K, usize>,
    entries: Vec<(K, u64)>,
}

impl<K: std::hash::Hash + Eq + Clone> Histogram<K> {
    pub fn new() -> Self {
        Histogram {
            index: Default::default(),
            entries: Vec::new(),
        }
    }

    /// Add `n` to `key`.
    pub fn add(&mut self, key: K, n: u64) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 += n,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, n));
            }
        }
    }

    /// Entries in first-appearance order.
    pub fn entries(&self) -> &[(K, u64)] {
        &self.entries
    }

    /// Consume into entries.
    pub fn into_entries(self) -> Vec<(K, u64)> {
        self.entries
    }

    /// Count for a key.
    pub fn get(&self, key: &K) -> u64 {
        self.index.get(key).map_or(0, |&i| self.entries[i].1)
    }
}

/// Count nodes per type id.
pub fn count_types(types: impl IntoIterator<Item = TypeId>) -> Histogram<TypeId> {
    let mut h = Histogram::new();
    for t in types {
        h.add(t, 1);
    }
    h
}

/// Merge per-type counts into per-name counts (types that share a name are lumped together, as
/// objgraph does with short names), keeping first-appearance order of the names.
pub fn by_name<'a>(
    counts: &Histogram<TypeId>,
    name_of: impl Fn(TypeId) -> &'a str,
) -> Vec<(&'a str, u64)> {
    let mut h: Histogram<&'a str> = Histogram::new();
    for &(t, n) in counts.entries() {
        h.add(name_of(t), n);
    }
    h.into_entries()
}

/// Sort `(name, count)` most frequent first; ties keep their order (a stable sort, as Python's
/// `sorted(..., reverse=True)`), then keep at most `limit`.
pub fn most_common<T: Clone>(entries: &[(T, u64)], limit: Option<usize>) -> Vec<(T, u64)> {
    let mut v = entries.to_vec();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    if let Some(l) = limit {
        v.truncate(l);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_and_sort_stably() {
        let h = count_types([2, 1, 2, 3, 1, 2, 4]);
        assert_eq!(h.entries(), &[(2, 3), (1, 2), (3, 1), (4, 1)]);
        let names = ["", "a", "b", "a", "c"];
        let merged = by_name(&h, |t| names[t as usize]);
        assert_eq!(merged, vec![("b", 3), ("a", 3), ("c", 1)]);
        let top = most_common(&merged, Some(2));
        assert_eq!(
            top,
            vec![("b", 3), ("a", 3)],
            "ties keep first-appearance order"
        );
        assert_eq!(most_common(&merged, None).len(), 3);
    }
}
