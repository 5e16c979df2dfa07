//! The heap walk: all unsafe access to CPython objects lives in this file.
//!
//! Everything here runs with the GIL held and calls no Python code between taking
//! `gc.get_objects()` and returning, so the interpreter cannot change the heap under us.
//! Every object we record is kept alive by a strong reference for as long as the capture
//! lives ([`Objects`]), so later queries may call Python code (user callbacks, `repr`) safely.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;
use refgraph_core::graph::{flags, Graph, GraphBuilder, NodeId};
use rustc_hash::FxHashMap;
use std::os::raw::{c_int, c_void};

/// Strong references to every node of a capture, by node id.
pub struct Objects {
    /// `gc.get_objects()`: node `i < tracked` is `tracked_list[i]`.
    tracked_list: Py<PyList>,
    tracked: usize,
    /// Nodes found only as referents, in id order after the tracked ones.
    extra: Vec<Py<PyAny>>,
}

impl Objects {
    /// The object of a node (a new strong reference).
    pub fn get<'py>(&self, py: Python<'py>, n: NodeId) -> Bound<'py, PyAny> {
        let n = n as usize;
        if n < self.tracked {
            // The list is ours and never handed out, so its items cannot change.
            self.tracked_list
                .bind(py)
                .get_item(n)
                .expect("capture list is immutable")
        } else {
            self.extra[n - self.tracked].bind(py).clone()
        }
    }

    /// Number of references this capture holds on the object at `n` (1, for the list or `extra`).
    pub const HELD: isize = 1;
}

/// Per-type facts needed to walk an object, cached by type pointer.
#[derive(Clone, Copy)]
struct TypeFacts {
    traverse: Option<ffi::traverseproc>,
    have_gc: bool,
    is_gc: Option<unsafe extern "C" fn(*mut ffi::PyObject) -> c_int>,
}

#[derive(Default)]
pub struct TypeCache {
    facts: FxHashMap<usize, TypeFacts>,
}

impl TypeCache {
    /// # Safety
    /// `tp` must be a live type object and the GIL held.
    unsafe fn facts(&mut self, tp: *mut ffi::PyTypeObject) -> TypeFacts {
        *self.facts.entry(tp as usize).or_insert_with(|| {
            // PyType_GetSlot works on static types since 3.10.
            let trav = ffi::PyType_GetSlot(tp, ffi::Py_tp_traverse);
            let isgc = ffi::PyType_GetSlot(tp, ffi::Py_tp_is_gc);
            let flags = ffi::PyType_GetFlags(tp);
            TypeFacts {
                traverse: if trav.is_null() {
                    None
                } else {
                    Some(std::mem::transmute::<*mut c_void, ffi::traverseproc>(trav))
                },
                have_gc: flags & ffi::Py_TPFLAGS_HAVE_GC != 0,
                is_gc: if isgc.is_null() {
                    None
                } else {
                    Some(std::mem::transmute::<
                        *mut c_void,
                        unsafe extern "C" fn(*mut ffi::PyObject) -> c_int,
                    >(isgc))
                },
            }
        })
    }

    /// Whether `gc.get_referents(obj)` would traverse `obj` (the `PyObject_IS_GC` test).
    ///
    /// # Safety
    /// `obj` must be a live object and the GIL held.
    pub unsafe fn is_gc(&mut self, obj: *mut ffi::PyObject) -> bool {
        let f = self.facts(ffi::Py_TYPE(obj));
        f.have_gc && f.is_gc.is_none_or(|is_gc| is_gc(obj) != 0)
    }

    /// Append `obj`'s referents, in `tp_traverse` order, to `out`, if it is a gc object.
    ///
    /// # Safety
    /// `obj` must be a live object and the GIL held; no Python code may run until `out` is
    /// consumed (the pointers are borrowed).
    pub unsafe fn referents(&mut self, obj: *mut ffi::PyObject, out: &mut Vec<*mut ffi::PyObject>) {
        let f = self.facts(ffi::Py_TYPE(obj));
        if !(f.have_gc && f.is_gc.is_none_or(|is_gc| is_gc(obj) != 0)) {
            return;
        }
        if let Some(trav) = f.traverse {
            trav(
                obj,
                visit,
                out as *mut Vec<*mut ffi::PyObject> as *mut c_void,
            );
        }
    }
}

unsafe extern "C" fn visit(obj: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    // Py_VISIT never passes NULL, but be defensive.
    if !obj.is_null() {
        (*(arg as *mut Vec<*mut ffi::PyObject>)).push(obj);
    }
    0
}

/// `gc.get_objects()` as a list.
pub fn gc_objects<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
    Ok(py
        .import("gc")?
        .call_method0("get_objects")?
        .cast_into::<PyList>()?)
}

/// Walk the whole heap into a graph. With `untracked`, objects found only as referents get
/// nodes too (and gc-type ones are traversed in turn); without it, edges to them are dropped.
///
/// `roots` that the gc does not track and no tracked object refers to (a fresh `{1: 2}` held
/// only by a local variable) get nodes too, so that walks can start from them.
pub fn capture(
    py: Python<'_>,
    untracked: bool,
    roots: &[Bound<'_, PyAny>],
) -> PyResult<(Graph, Objects)> {
    let list = gc_objects(py)?;
    let n = list.len();
    let mut cache = TypeCache::default();
    let mut builder = GraphBuilder::with_capacity(n + n / 2, n * 3);
    let mut extra: Vec<Py<PyAny>> = Vec::new();
    // SAFETY: the GIL is held, the list holds strong references to its items and no Python code
    // runs in this block (no callbacks, no decref that could free anything: `extra` only grows).
    unsafe {
        let lp = list.as_ptr();
        let types = crate::stats::list_types(py, &list)?;
        for (i, &tp) in types.iter().enumerate() {
            let obj = ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            builder
                .add_tracked(obj as u64, tp as u64, flags::GC_TYPE)
                .map_err(graph_err)?;
        }
        drop(types);
        for r in roots {
            let p = r.as_ptr();
            if builder.lookup(p as u64).is_none() {
                let fl = if cache.is_gc(p) { flags::GC_TYPE } else { 0 };
                builder
                    .add_untracked(p as u64, ffi::Py_TYPE(p) as u64, fl)
                    .map_err(graph_err)?;
                extra.push(r.clone().unbind());
            }
        }
        let mut buf: Vec<*mut ffi::PyObject> = Vec::with_capacity(64);
        let mut next: usize = 0;
        while next < builder.len() {
            let obj: *mut ffi::PyObject = if next < n {
                ffi::PyList_GetItem(lp, next as ffi::Py_ssize_t)
            } else {
                extra[next - n].as_ptr()
            };
            buf.clear();
            cache.referents(obj, &mut buf);
            // Only objects seen for the first time are read (their type): the others are
            // known by address alone.
            builder
                .push_edges(
                    next as NodeId,
                    buf.iter().map(|&r| r as u64),
                    |addr| {
                        if !untracked {
                            return None;
                        }
                        let r = addr as *mut ffi::PyObject;
                        let fl = if cache.is_gc(r) { flags::GC_TYPE } else { 0 };
                        Some((ffi::Py_TYPE(r) as u64, fl))
                    },
                    |_, addr| {
                        extra.push(
                            Bound::from_borrowed_ptr(py, addr as *mut ffi::PyObject).unbind(),
                        );
                    },
                )
                .map_err(graph_err)?;
            next += 1;
        }
    }
    let graph = builder.finish();
    Ok((
        graph,
        Objects {
            tracked_list: list.unbind(),
            tracked: n,
            extra,
        },
    ))
}

/// Capture only what `roots` reach within `max_depth` references, breadth first: enough for
/// every forward query (`show_refs`, `find_ref_chain`) at that depth, without walking the
/// rest of the heap. The graph has referents only (no referrer index).
pub fn capture_forward(
    py: Python<'_>,
    roots: &[Bound<'_, PyAny>],
    max_depth: u32,
) -> PyResult<(Graph, Objects)> {
    let mut cache = TypeCache::default();
    let mut builder = GraphBuilder::with_capacity(roots.len() * 8, roots.len() * 16);
    let mut extra: Vec<Py<PyAny>> = Vec::new();
    let mut depth: Vec<u32> = Vec::new();
    // SAFETY: the GIL is held and no Python code runs in this block; every object recorded is
    // kept alive by `extra` (roots by the caller's references, referents by a new reference
    // taken when they are first seen, while their referrer is still alive).
    unsafe {
        for r in roots {
            let p = r.as_ptr();
            if builder.lookup(p as u64).is_none() {
                let fl = if cache.is_gc(p) { flags::GC_TYPE } else { 0 };
                builder
                    .add_untracked(p as u64, ffi::Py_TYPE(p) as u64, fl)
                    .map_err(graph_err)?;
                extra.push(r.clone().unbind());
                depth.push(0);
            }
        }
        let mut buf: Vec<*mut ffi::PyObject> = Vec::with_capacity(64);
        let mut next = 0usize;
        while next < builder.len() {
            buf.clear();
            let d = depth[next];
            if d < max_depth {
                cache.referents(extra[next].as_ptr(), &mut buf);
            }
            builder
                .push_edges(
                    next as NodeId,
                    buf.iter().map(|&r| r as u64),
                    |addr| {
                        let r = addr as *mut ffi::PyObject;
                        let fl = if cache.is_gc(r) { flags::GC_TYPE } else { 0 };
                        Some((ffi::Py_TYPE(r) as u64, fl))
                    },
                    |_, addr| {
                        extra.push(
                            Bound::from_borrowed_ptr(py, addr as *mut ffi::PyObject).unbind(),
                        );
                        depth.push(d + 1);
                    },
                )
                .map_err(graph_err)?;
            next += 1;
        }
    }
    let graph = builder.finish();
    Ok((
        graph,
        Objects {
            tracked_list: PyList::empty(py).unbind(),
            tracked: 0,
            extra,
        },
    ))
}

fn graph_err(e: refgraph_core::graph::GraphError) -> PyErr {
    pyo3::exceptions::PyMemoryError::new_err(e.to_string())
}

/// The reference count of an object as the interpreter reports it.
pub fn refcount(obj: &Bound<'_, PyAny>) -> isize {
    // SAFETY: obj is a live object and we hold the GIL.
    unsafe { ffi::Py_REFCNT(obj.as_ptr()) }
}
