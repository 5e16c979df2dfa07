//! The CPython extension `refgraph._refgraph`: captures the live heap into the core model and
//! exposes the queries. All unsafe CPython access lives in `capture.rs`, `gcwalk.rs` (the
//! collector's lists) and the few marked blocks that read list items without running Python code.

use pyo3::prelude::*;

mod capture;
mod edgenames;
mod gcwalk;
mod heap;
mod ids;
mod leaks;
mod names;
mod rounds;
mod snapshot;
mod stats;
mod view;

/// Short and long type name of a type, as objgraph computes them.
#[pyfunction]
fn type_names(tp: &Bound<'_, pyo3::types::PyType>) -> (String, String) {
    names::type_names(tp)
}

#[pymodule]
fn _refgraph(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<heap::Heap>()?;
    m.add_class::<ids::IdTracker>()?;
    m.add_class::<view::View>()?;
    m.add_class::<snapshot::PySnapshot>()?;
    m.add_class::<rounds::Rounds>()?;
    m.add(
        "SnapshotError",
        m.py().get_type::<snapshot::SnapshotError>(),
    )?;
    m.add_function(wrap_pyfunction!(stats::typestats, m)?)?;
    m.add_function(wrap_pyfunction!(stats::by_type, m)?)?;
    m.add_function(wrap_pyfunction!(stats::count, m)?)?;
    m.add_function(wrap_pyfunction!(stats::at, m)?)?;
    m.add_function(wrap_pyfunction!(stats::at_addrs, m)?)?;
    m.add_function(wrap_pyfunction!(leaks::leaking, m)?)?;
    m.add_function(wrap_pyfunction!(type_names, m)?)?;
    m.add_function(wrap_pyfunction!(capture::traverse_pass, m)?)?;
    m.add_function(wrap_pyfunction!(gcwalk::gc_walk_active, m)?)?;
    m.add_function(wrap_pyfunction!(gcwalk::tracked_objects, m)?)?;
    Ok(())
}
