//! Type names as objgraph computes them: `type.__name__` and `type.__module__ + '.' + name`.

use pyo3::prelude::*;
use pyo3::types::PyType;
use rustc_hash::FxHashMap;

/// A cache of type names keyed by type address. Holds a strong reference to each type so that
/// the address stays meaningful while the cache lives.
#[derive(Default)]
pub struct TypeNames {
    map: FxHashMap<usize, (Py<PyType>, String, String)>,
}

fn text(v: &Bound<'_, PyAny>) -> String {
    match v.extract::<String>() {
        Ok(s) => s,
        Err(_) => v
            .str()
            .and_then(|s| s.extract::<String>())
            .unwrap_or_else(|_| "?".into()),
    }
}

/// Short and long names of a type. A metaclass whose `__name__`/`__module__` raise does not
/// break the call: the name falls back to `?` and the module is dropped.
pub fn type_names(tp: &Bound<'_, PyType>) -> (String, String) {
    let short = match tp.getattr("__name__") {
        Ok(v) => text(&v),
        Err(_) => "?".into(),
    };
    let long = match tp.getattr("__module__") {
        Ok(m) if m.is_truthy().unwrap_or(false) => format!("{}.{}", text(&m), short),
        _ => short.clone(),
    };
    (short, long)
}

impl TypeNames {
    /// Remember a type (no Python code runs).
    pub fn keep(&mut self, tp: &Bound<'_, PyType>) {
        let key = tp.as_ptr() as usize;
        self.map
            .entry(key)
            .or_insert_with(|| (tp.clone().unbind(), String::new(), String::new()));
    }

    /// Resolve the names of every remembered type (runs Python attribute lookups).
    pub fn resolve(&mut self, py: Python<'_>) {
        for (tp, short, long) in self.map.values_mut() {
            if short.is_empty() {
                let (s, l) = type_names(tp.bind(py));
                *short = s;
                *long = l;
            }
        }
    }

    /// The name of a remembered, resolved type.
    pub fn name(&self, type_addr: usize, shortnames: bool) -> &str {
        match self.map.get(&type_addr) {
            Some((_, s, l)) => {
                if shortnames {
                    s
                } else {
                    l
                }
            }
            None => "?",
        }
    }

    /// Type addresses whose name equals `typename` (long names when it contains a dot).
    pub fn matching(&self, typename: &str) -> rustc_hash::FxHashSet<usize> {
        let long = typename.contains('.');
        self.map
            .iter()
            .filter(|(_, (_, s, l))| if long { l == typename } else { s == typename })
            .map(|(k, _)| *k)
            .collect()
    }
}
