//! State of `get_new_ids`: the addresses of all objects per type name, compactly (sorted
//! `u64` vectors instead of Python sets of ints).

use crate::gcwalk::list_types;
use crate::names::TypeNames;
use crate::stats::count_known_types;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;
use refgraph_core::stats::Histogram;
use rustc_hash::FxHashMap;

/// `(name, old, current, new, delta)`, as objgraph prints a row.
type Row = (String, usize, usize, usize, i64);

#[derive(Default)]
struct Entry {
    old: Vec<u64>,
    current: Vec<u64>,
    new: Vec<u64>,
}

/// Old and current addresses per class name, as objgraph's `_state` dict keeps them.
#[pyclass(module = "refgraph._refgraph")]
#[derive(Default)]
pub struct IdTracker {
    /// Names in first-seen order.
    order: Vec<String>,
    entries: FxHashMap<String, Entry>,
}

fn difference(a: &[u64], b: &[u64]) -> Vec<u64> {
    // Both sorted and deduplicated.
    let mut out = Vec::new();
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

#[pymethods]
impl IdTracker {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Take a new census of `objects`. Returns rows `(name, old, current, new, delta)` for every
    /// name with old or current objects (unordered; the caller sorts).
    fn update(
        &mut self,
        py: Python<'_>,
        objects: &Bound<'_, PyList>,
        shortnames: bool,
    ) -> PyResult<Vec<Row>> {
        // One pass over the list reads every type; the names are looked up (Python code may
        // run) before the list's items are read again, by address only.
        let types = list_types(py, objects)?;
        let mut names = TypeNames::default();
        count_known_types(py, types.iter().copied(), &mut Histogram::new(), &mut names)?;
        names.resolve(py);
        for e in self.entries.values_mut() {
            e.old = std::mem::take(&mut e.current);
            e.new.clear();
        }
        let mut slot: FxHashMap<usize, usize> = Default::default();
        let mut buckets: Vec<Vec<u64>> = Vec::new();
        let mut bucket_names: Vec<String> = Vec::new();
        let mut by_name: FxHashMap<String, usize> = Default::default();
        let lp = objects.as_ptr();
        let mut last_tp = 0usize;
        let mut last_b = 0usize;
        for (i, &tp) in types.iter().enumerate() {
            // SAFETY: GIL held, the list is ours and no Python code runs in this loop; only the
            // item pointer is read, not the object.
            let addr = unsafe {
                let obj = ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t);
                if obj.is_null() {
                    return Err(PyErr::fetch(py));
                }
                obj as u64
            };
            if tp != last_tp || i == 0 {
                last_tp = tp;
                last_b = *slot.entry(tp).or_insert_with(|| {
                    let name = names.name(tp, shortnames).to_string();
                    *by_name.entry(name.clone()).or_insert_with(|| {
                        buckets.push(Vec::new());
                        bucket_names.push(name);
                        buckets.len() - 1
                    })
                });
            }
            let b = last_b;
            buckets[b].push(addr);
        }
        for (name, mut addrs) in bucket_names.into_iter().zip(buckets) {
            addrs.sort_unstable();
            addrs.dedup();
            if !self.entries.contains_key(&name) {
                self.order.push(name.clone());
            }
            self.entries.entry(name).or_default().current = addrs;
        }
        let mut rows = Vec::new();
        let mut gone = Vec::new();
        for name in &self.order {
            let e = self.entries.get_mut(name).expect("ordered names exist");
            if e.old.is_empty() && e.current.is_empty() {
                gone.push(name.clone());
                continue;
            }
            e.new = difference(&e.current, &e.old);
            rows.push((
                name.clone(),
                e.old.len(),
                e.current.len(),
                e.new.len(),
                e.current.len() as i64 - e.old.len() as i64,
            ));
        }
        if !gone.is_empty() {
            for name in &gone {
                self.entries.remove(name);
            }
            self.order.retain(|n| self.entries.contains_key(n));
        }
        Ok(rows)
    }

    /// `[(name, [new addresses])]` for every known name, in first-seen order.
    fn new_ids(&self) -> Vec<(String, Vec<u64>)> {
        self.order
            .iter()
            .map(|n| (n.clone(), self.entries[n].new.clone()))
            .collect()
    }

    /// Bytes held by the tracker's address vectors.
    fn nbytes(&self) -> usize {
        self.entries
            .values()
            .map(|e| (e.old.capacity() + e.current.capacity() + e.new.capacity()) * 8)
            .sum()
    }
}
