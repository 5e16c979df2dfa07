//! The CPython extension `refgraph._refgraph`: captures the live heap into the core model and
//! exposes the queries.
//!
//! Modules, bottom up (each uses only those above it in this list):
//! * `records` — the records that cross the boundary with named fields (`Visit`, `ViewNode`,
//!   `TypeRow`, `DiffRow`, `PathGroup`); a leaf.
//! * `cpython` — facts that depend on the CPython version, one table per minor version.
//! * `gcwalk` — the list of tracked objects: the collector's lists walked directly, or
//!   `gc.get_objects()`; types of a list's items.
//! * `traverse` — calling `tp_traverse` (referents as borrowed pointers, dead ones skipped).
//! * `names` — type names as objgraph computes them.
//! * `capture` — the heap walked into the core graph, with strong references to every node.
//! * `annotate` — sizes, lengths, labels and globals of a capture's nodes, for snapshots.
//! * `stats`, `ids`, `leaks` — statistics over the tracked objects or a list (no graph).
//! * `heap`, `view`, `snapshot` — the Python classes: queries on a capture, DOT and drawings,
//!   snapshots.
//!
//! Unsafe CPython access lives in `traverse`, `gcwalk`, `capture`, `annotate`, `strings` and in marked
//! blocks of `names`, `stats`, `ids` and `leaks` that read list items and types without running Python
//! code; every block says why it is sound.

use pyo3::prelude::*;

mod annotate;
mod capture;
mod cpython;
mod edgenames;
mod gcwalk;
mod heap;
mod ids;
mod leaks;
mod names;
mod progress;
mod records;
mod rounds;
mod snapshot;
mod stats;
mod strings;
mod traverse;
mod view;

/// Short and long type name of a type, as objgraph computes them.
#[pyfunction]
fn type_names(tp: &Bound<'_, pyo3::types::PyType>) -> (String, String) {
    names::type_names(tp)
}

/// The names of a type as [`type_names`] gives them when they can be read without running any
/// Python code (what `by_type` needs to hold no object), else None.
#[pyfunction]
fn type_names_without_code(tp: &Bound<'_, pyo3::types::PyType>) -> Option<(String, String)> {
    names::names_without_code(tp)
}

/// Whether `by_type(typename)`'s walk keeps the objects of type `tp` to look at their names
/// (false: their names cannot be `typename`, read from the type's C name). For the tests.
#[pyfunction]
fn type_may_be_named(tp: &Bound<'_, pyo3::types::PyType>, typename: &str) -> bool {
    // SAFETY: GIL held, `tp` a live type.
    let metas = names::PlainMetaclasses::find(tp.py());
    unsafe { names::may_be_named(tp.as_ptr(), typename, &metas) }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `-3.2 MiB` (the snapshot drawings' format).
#[pyfunction]
fn human_bytes(n: i64) -> String {
    let text = refgraph_core::snapshot::human_bytes(n.unsigned_abs());
    if n < 0 {
        format!("-{text}")
    } else {
        text
    }
}

#[pymodule]
fn _refgraph(m: &Bound<'_, PyModule>) -> PyResult<()> {
    names::init(m.py())?;
    m.add_class::<heap::Heap>()?;
    m.add_class::<ids::IdTracker>()?;
    m.add_class::<view::View>()?;
    m.add_class::<snapshot::PySnapshot>()?;
    m.add_class::<rounds::Rounds>()?;
    m.add_class::<rounds::Screen>()?;
    m.add_class::<records::Visit>()?;
    m.add_class::<records::ViewNode>()?;
    m.add_class::<records::TypeRow>()?;
    m.add_class::<records::DiffRow>()?;
    m.add_class::<records::PathGroup>()?;
    m.add(
        "SnapshotError",
        m.py().get_type::<snapshot::SnapshotError>(),
    )?;
    m.add_function(wrap_pyfunction!(stats::typestats, m)?)?;
    m.add_function(wrap_pyfunction!(stats::by_type, m)?)?;
    m.add_function(wrap_pyfunction!(stats::count, m)?)?;
    m.add_function(wrap_pyfunction!(stats::at, m)?)?;
    m.add_function(wrap_pyfunction!(stats::at_without_walk, m)?)?;
    m.add_function(wrap_pyfunction!(stats::at_addrs, m)?)?;
    m.add_function(wrap_pyfunction!(leaks::leaking, m)?)?;
    m.add_function(wrap_pyfunction!(type_names, m)?)?;
    m.add_function(wrap_pyfunction!(type_names_without_code, m)?)?;
    m.add_function(wrap_pyfunction!(type_may_be_named, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::draw_chain, m)?)?;
    m.add_function(wrap_pyfunction!(traverse::traverse_pass, m)?)?;
    m.add_function(wrap_pyfunction!(capture::capture_threads_agree, m)?)?;
    m.add_function(wrap_pyfunction!(capture::capture_marks_agree, m)?)?;
    m.add_function(wrap_pyfunction!(gcwalk::gc_lists_sound, m)?)?;
    m.add_function(wrap_pyfunction!(traverse::dead_referents, m)?)?;
    m.add_function(wrap_pyfunction!(gcwalk::gc_walk_active, m)?)?;
    m.add_function(wrap_pyfunction!(gcwalk::gc_collector_estimate, m)?)?;
    m.add_function(wrap_pyfunction!(gcwalk::tracked_objects, m)?)?;
    m.add_function(wrap_pyfunction!(cpython::cpython_facts, m)?)?;
    m.add_function(wrap_pyfunction!(human_bytes, m)?)?;
    // The package version, from Cargo.toml's [workspace.package] (the one place it lives).
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
