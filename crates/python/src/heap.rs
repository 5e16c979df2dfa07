//! `Heap`: one capture of the live heap, and the queries that run on it.

use crate::capture::{capture, refcount, Objects};
use crate::records::Visit;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use refgraph_core::chain::find_chain;
use refgraph_core::graph::{flags, Direction, Graph, NodeId};
use refgraph_core::nodeset::NodeSet;
use refgraph_core::subgraph::{walk, WalkHooks};
use rustc_hash::{FxHashMap, FxHashSet};

/// A capture of the whole heap: every gc-tracked object and what it refers to, held alive until
/// `close()` (or until the Heap is garbage).
#[pyclass(module = "refgraph._refgraph", unsendable)]
pub struct Heap {
    inner: Option<(Graph, Objects)>,
}

fn direction(backwards: bool) -> Direction {
    if backwards {
        Direction::Referrers
    } else {
        Direction::Referents
    }
}

impl Heap {
    fn parts(&self) -> PyResult<&(Graph, Objects)> {
        self.inner
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("this heap capture was closed"))
    }

    /// Node ids of objects by address, in the order given; objects not in the graph map to None.
    fn nodes_of(g: &Graph, addrs: &[u64]) -> Vec<Option<NodeId>> {
        let wanted: FxHashSet<u64> = addrs.iter().copied().collect();
        let mut found: FxHashMap<u64, NodeId> = Default::default();
        for (i, a) in g.addrs().iter().enumerate() {
            if wanted.contains(a) {
                found.entry(*a).or_insert(i as NodeId);
                if found.len() == wanted.len() {
                    break;
                }
            }
        }
        addrs.iter().map(|a| found.get(a).copied()).collect()
    }

    fn ignored(g: &Graph, addrs: &[u64]) -> NodeSet {
        let mut set = NodeSet::new(g.len());
        for n in Self::nodes_of(g, addrs).into_iter().flatten() {
            set.insert(n);
        }
        set
    }
}

struct PyHooks<'a, 'py> {
    py: Python<'py>,
    g: &'a Graph,
    objects: &'a Objects,
    filter: Option<&'a Bound<'py, PyAny>>,
    cull_modules: bool,
}

impl WalkHooks for PyHooks<'_, '_> {
    type Error = PyErr;
    fn filter(&mut self, node: NodeId) -> PyResult<bool> {
        match self.filter {
            None => Ok(true),
            Some(f) => f.call1((self.objects.get(self.py, node),))?.is_truthy(),
        }
    }
    fn cull(&mut self, node: NodeId) -> PyResult<bool> {
        Ok(self.cull_modules && self.g.has(node, flags::PROPER_MODULE))
    }
}

#[pymethods]
impl Heap {
    /// Capture the heap now. `untracked`: give nodes to objects the gc does not track (str,
    /// int, …) found as referents. `roots`: objects that must have nodes even if nothing tracked
    /// refers to them.
    #[new]
    #[pyo3(signature = (untracked=true, roots=None))]
    fn new(
        py: Python<'_>,
        untracked: bool,
        roots: Option<Vec<Bound<'_, PyAny>>>,
    ) -> PyResult<Self> {
        let roots = roots.unwrap_or_default();
        let (g, o) = capture(
            py,
            untracked,
            &roots,
            &mut crate::progress::Reporter::new(None),
            false,
            false,
            false,
            &mut |_| Vec::new(),
        )?;
        Ok(Heap {
            inner: Some((g, o)),
        })
    }

    /// Capture only what `roots` reach within `max_depth` references (for forward queries:
    /// `neighbours`, `find_chain` and `walk` with `backwards=False`).
    #[staticmethod]
    fn forward(py: Python<'_>, roots: Vec<Bound<'_, PyAny>>, max_depth: i64) -> PyResult<Self> {
        let max_depth = max_depth.clamp(0, u32::MAX as i64) as u32;
        let (g, o) = crate::capture::capture_forward(py, &roots, max_depth)?;
        Ok(Heap {
            inner: Some((g, o)),
        })
    }

    /// Release every reference the capture holds.
    fn close(&mut self) {
        self.inner = None;
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &mut self,
        _a: Option<Bound<'_, PyAny>>,
        _b: Option<Bound<'_, PyAny>>,
        _c: Option<Bound<'_, PyAny>>,
    ) {
        self.close();
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.parts()?.0.len())
    }

    /// Number of gc-tracked objects.
    #[getter]
    fn tracked_count(&self) -> PyResult<usize> {
        Ok(self.parts()?.0.tracked_count())
    }

    /// Number of references (referent edges).
    #[getter]
    fn edge_count(&self) -> PyResult<usize> {
        Ok(self.parts()?.0.edge_count())
    }

    /// Bytes used by the graph arrays.
    #[getter]
    fn nbytes(&self) -> PyResult<usize> {
        Ok(self.parts()?.0.heap_bytes())
    }

    /// References the capture holds on each object it records.
    #[getter]
    fn held_references(&self) -> isize {
        Objects::HELD
    }

    /// Whether an object is in the capture.
    fn __contains__(&self, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
        let g = &self.parts()?.0;
        Ok(g.find_once(obj.as_ptr() as u64).is_some())
    }

    /// Mark the given modules as proper modules (roots where `show_backrefs` stops).
    fn mark_proper_modules(&mut self, modules: Vec<Bound<'_, PyAny>>) -> PyResult<()> {
        let addrs: Vec<u64> = modules.iter().map(|m| m.as_ptr() as u64).collect();
        let (g, _) = self
            .inner
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("this heap capture was closed"))?;
        for n in Self::nodes_of(g, &addrs).into_iter().flatten() {
            g.set_flags(n, flags::PROPER_MODULE | flags::MODULE);
        }
        Ok(())
    }

    /// What `obj` refers to (as `gc.get_referents`), or what refers to it (as
    /// `gc.get_referrers`) with `backwards=True`.
    #[pyo3(signature = (obj, backwards=false))]
    fn neighbours<'py>(
        &self,
        py: Python<'py>,
        obj: &Bound<'py, PyAny>,
        backwards: bool,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let (g, o) = self.parts()?;
        Ok(match g.find_once(obj.as_ptr() as u64) {
            None => Vec::new(),
            Some(n) => g
                .neighbours(n, direction(backwards))
                .iter()
                .map(|&m| o.get(py, m))
                .collect(),
        })
    }

    /// Shortest chain from `obj` to an object accepted by `predicate` (or to a proper module
    /// with `proper_module=True`, without calling Python), following referents or, with
    /// `backwards`, referrers. Returns the chain from the match back to `obj`, or None.
    #[pyo3(signature = (obj, predicate, backwards, max_depth, ignore, proper_module=false))]
    #[allow(clippy::too_many_arguments)]
    fn find_chain<'py>(
        &self,
        py: Python<'py>,
        obj: &Bound<'py, PyAny>,
        predicate: Option<Bound<'py, PyAny>>,
        backwards: bool,
        max_depth: i64,
        ignore: Vec<u64>,
        proper_module: bool,
    ) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        let (g, o) = self.parts()?;
        let Some(start) = g.find_once(obj.as_ptr() as u64) else {
            return Err(PyValueError::new_err("object not in the capture"));
        };
        let ignored = Self::ignored(g, &ignore);
        let max_depth = max_depth.clamp(0, u32::MAX as i64) as u32;
        let found = find_chain(g, start, direction(backwards), max_depth, &ignored, |n| {
            if proper_module {
                return Ok(g.has(n, flags::PROPER_MODULE));
            }
            match &predicate {
                Some(p) => p.call1((o.get(py, n),))?.is_truthy(),
                None => Ok(false),
            }
        })?;
        Ok(found.map(|chain| chain.into_iter().map(|n| o.get(py, n)).collect()))
    }

    /// The bounded walk of `show_refs`/`show_backrefs`: a [`Visit`] record per object, in
    /// visit order.
    #[pyo3(signature = (roots, backwards, max_depth, too_many, ignore, filter=None, cull_modules=false))]
    #[allow(clippy::too_many_arguments)]
    fn walk<'py>(
        &self,
        py: Python<'py>,
        roots: Vec<Bound<'py, PyAny>>,
        backwards: bool,
        max_depth: i64,
        too_many: i64,
        ignore: Vec<u64>,
        filter: Option<Bound<'py, PyAny>>,
        cull_modules: bool,
    ) -> PyResult<Vec<Visit>> {
        let (g, o) = self.parts()?;
        let root_addrs: Vec<u64> = roots.iter().map(|r| r.as_ptr() as u64).collect();
        let mut root_refs: FxHashMap<u64, isize> = Default::default();
        for &a in &root_addrs {
            *root_refs.entry(a).or_default() += 1;
        }
        let mut root_nodes = Vec::with_capacity(root_addrs.len());
        for n in Self::nodes_of(g, &root_addrs) {
            root_nodes.push(n.ok_or_else(|| PyValueError::new_err("root not in the capture"))?);
        }
        let ignored = Self::ignored(g, &ignore);
        let mut hooks = PyHooks {
            py,
            g,
            objects: o,
            filter: filter.as_ref(),
            cull_modules,
        };
        let max_depth = max_depth.clamp(0, u32::MAX as i64) as u32;
        let too_many = too_many.max(0) as u64;
        let w = walk(
            g,
            &root_nodes,
            direction(backwards),
            max_depth,
            too_many,
            &ignored,
            &mut hooks,
        )?;
        // Reference counts are read before this function creates any new reference.
        let counts: Vec<isize> = w
            .visits
            .iter()
            .map(|v| {
                let obj = o.get(py, v.node);
                let addr = obj.as_ptr() as u64;
                // `obj` itself is one more reference; the roots vector holds one per occurrence.
                refcount(&obj) - 1 - root_refs.get(&addr).copied().unwrap_or(0)
            })
            .collect();
        Ok(w.visits
            .iter()
            .zip(counts)
            .map(|(v, rc)| Visit {
                obj: o.get(py, v.node).unbind(),
                depth: v.depth,
                neighbours: w.edges[v.edges.clone()]
                    .iter()
                    .map(|&n| o.get(py, n).unbind())
                    .collect(),
                skipped: v.skipped,
                refcount: rc,
                lingering: v.lingering,
            })
            .collect())
    }
}
