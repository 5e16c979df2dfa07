//! Records that cross the boundary between the extension and the Python package, with named
//! fields instead of positions. A leaf module: it imports nothing from the rest of the crate.
//!
//! Rust → Python: [`Visit`] (one step of `Heap.walk`), [`TypeRow`] (`Snapshot.typestats`),
//! [`DiffRow`] (`Snapshot.diff`), [`PathGroup`] (`Snapshot.paths`). Python → Rust:
//! [`ViewNode`] (a node for `View.from_walk`). The package turns the snapshot rows into its
//! public named tuples field by field (`refgraph/snapshot.py`), so a field renamed on one side
//! fails its tests rather than shifting values silently.

use pyo3::prelude::*;

/// One visit of `Heap.walk`, in visit order.
#[pyclass(module = "refgraph._refgraph", frozen, get_all)]
pub struct Visit {
    /// The object visited.
    pub obj: Py<PyAny>,
    /// Its distance from the nearest root.
    pub depth: u32,
    /// The neighbours drawn from it (referents, or referrers when walking backwards).
    pub neighbours: Vec<Py<PyAny>>,
    /// Neighbours left out by `too_many`.
    pub skipped: u64,
    /// Its reference count less the references the call's arguments hold (the capture's own
    /// references are included: see `Heap.held_references`).
    pub refcount: isize,
    /// What objgraph's loop variables would add to the count (see `WalkVisit::lingering`).
    pub lingering: u8,
}

/// One node of a drawing, as the Python package decorates it for `View.from_walk`.
#[pyclass(module = "refgraph._refgraph", frozen, get_all)]
pub struct ViewNode {
    /// The node's id in the DOT text.
    pub key: String,
    /// Its label (lines separated by `\n`).
    pub label: String,
    /// Its distance from the nearest root (sets the colour).
    pub depth: u32,
    /// A module (drawn in the modules' colour).
    pub module: bool,
    /// Highlighted by the user's `highlight` callable.
    pub highlighted: bool,
    /// Its class defines `__del__` (drawn in red).
    pub has_del: bool,
    /// Extra DOT attributes (`extra_node_attrs`), or None.
    pub attrs: Option<Vec<(String, String)>>,
    /// How many of the edges passed with it (in order) this node emitted.
    pub edges: usize,
    /// Neighbours left out by `too_many` (drawn as a "…" node when > 0).
    pub skipped: u64,
}

#[pymethods]
impl ViewNode {
    #[new]
    #[pyo3(signature = (key, label, depth, *, module=false, highlighted=false, has_del=false, attrs=None, edges=0, skipped=0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        key: String,
        label: String,
        depth: u32,
        module: bool,
        highlighted: bool,
        has_del: bool,
        attrs: Option<Vec<(String, String)>>,
        edges: usize,
        skipped: u64,
    ) -> Self {
        ViewNode {
            key,
            label,
            depth,
            module,
            highlighted,
            has_del,
            attrs,
            edges,
            skipped,
        }
    }
}

/// One type of `Snapshot.typestats`.
#[pyclass(module = "refgraph._refgraph", frozen, get_all)]
pub struct TypeRow {
    pub name: String,
    pub count: u64,
    /// Shallow bytes of its objects.
    pub shallow: u64,
    /// Bytes they retain (0 when retained sizes were not asked for).
    pub retained: u64,
}

/// One type of `Snapshot.diff`.
#[pyclass(module = "refgraph._refgraph", frozen, get_all)]
pub struct DiffRow {
    pub name: String,
    pub old_count: u64,
    pub new_count: u64,
    pub old_bytes: u64,
    pub new_bytes: u64,
    /// Objects of the newer snapshot at addresses the older one did not have for this type.
    pub new_objects: u64,
    pub new_objects_bytes: u64,
    /// Bytes the new objects retain that no other new object dominates.
    pub new_objects_retained: u64,
}

/// One group of `Snapshot.paths`: paths of the same shape.
#[pyclass(module = "refgraph._refgraph", frozen, get_all)]
pub struct PathGroup {
    /// Type names from the root to the target.
    pub shape: Vec<String>,
    /// Targets reached by a path of this shape.
    pub count: u64,
    /// Their shallow bytes.
    pub bytes: u64,
    /// One path of the group: `[(address, description)]` from the root to a target.
    pub example: Vec<(u64, String)>,
    /// The group's paths as a Python expression (`[...]` where they differ).
    pub expression: String,
    /// The name of each reference of the example (None if unnamed).
    pub edges: Vec<Option<String>>,
    /// The example's own expression.
    pub example_expression: String,
}
