//! `View`: a drawable graph built by the Python layer, written as DOT (and drawn natively).

use crate::records::ViewNode;
use pyo3::prelude::*;
use refgraph_core::view::{self, EdgeLabel, Hsv};

/// `(from, to, label)` with label `(text, weight)`.
type PyEdge = (String, String, Option<(String, Option<u32>)>);

use view::{node_fill, MARKER_DARK_RED as DARK_RED, MARKER_RED as RED};

/// A graph ready to be written: visits in walk order, each followed by the edges it emitted.
#[pyclass(module = "refgraph._refgraph", frozen)]
pub struct View {
    pub(crate) inner: view::View,
}

#[pymethods]
impl View {
    /// Build from a decorated walk (a [`ViewNode`] per visit, each followed in `edges` by the
    /// `(from, to, label)` edges it emitted); colours are computed here from depth and flags.
    #[staticmethod]
    fn from_walk(
        roots: Vec<String>,
        visits: Vec<PyRef<'_, ViewNode>>,
        edges: Vec<PyEdge>,
        backrefs: bool,
        max_depth: i64,
    ) -> PyResult<Self> {
        let mut out = view::View {
            roots,
            visits: Vec::with_capacity(visits.len()),
            edges: Vec::with_capacity(edges.len()),
            backrefs,
        };
        let mut next = 0usize;
        for v in visits {
            let (depth, skipped) = (v.depth, v.skipped);
            let end = next + v.edges;
            if end > edges.len() {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "visits claim more edges than were given",
                ));
            }
            out.visits.push(view::Visit {
                key: v.key.clone(),
                label: v.label.clone(),
                depth,
                fill: node_fill(depth as i64, max_depth, v.module, v.highlighted),
                has_del: v.has_del,
                attrs: v.attrs.clone(),
                edges: next..end,
                too_many: (skipped > 0).then(|| {
                    (
                        skipped,
                        Hsv::gradient(RED, DARK_RED, depth as i64 + 1, max_depth),
                    )
                }),
            });
            next = end;
        }
        for (from, to, label) in edges {
            out.edges.push(view::Edge {
                from,
                to,
                label: label.map(|(text, weight)| EdgeLabel { text, weight }),
            });
        }
        Ok(View { inner: out })
    }

    /// objgraph's DOT text.
    fn dot(&self) -> String {
        refgraph_core::dot::write_dot(&self.inner)
    }

    /// The graph drawn as an SVG document (no Graphviz needed).
    fn svg(&self, py: Python<'_>) -> String {
        py.detach(|| refgraph_core::render::to_svg(&self.inner))
    }

    /// The graph drawn as PNG bytes (no Graphviz needed).
    fn png<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let data = py
            .detach(|| refgraph_core::render::to_png(&self.inner))
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        Ok(pyo3::types::PyBytes::new(py, &data))
    }

    /// Number of visits (what objgraph reports as "N nodes").
    fn __len__(&self) -> usize {
        self.inner.visits.len()
    }
}
