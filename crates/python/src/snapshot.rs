//! `Snapshot`: a heap snapshot as Python sees it (the facade in `refgraph/snapshot.py` wraps it).

use crate::annotate::{annotate, module_globals, Columns};
use crate::capture::capture;
use crate::progress::Reporter;
use crate::records::{DiffRow, PathGroup, TypeRow};
use crate::strings::{process_fingerprinter, StringNotes};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use refgraph_core::edgenames::{BuiltNames, EdgeNamesBuilder};
use refgraph_core::graph::{flags, NodeId, PackedArrays};
use refgraph_core::snapshot::analysis::{analyse, roots, type_stats, Analysis};
use refgraph_core::snapshot::strings::StringPolicy;
use refgraph_core::snapshot::{
    diff, draw, file, leaks, paths, report, Meta, Snapshot, StringContent,
};
use std::sync::OnceLock;

pyo3::create_exception!(
    _refgraph,
    SnapshotError,
    PyValueError,
    "A snapshot file that cannot be read: truncated, corrupt, or not a snapshot."
);

#[pyclass(module = "refgraph._refgraph", name = "Snapshot", frozen)]
pub struct PySnapshot {
    snap: Snapshot,
    analysis: OnceLock<Analysis>,
    tree: OnceLock<paths::PathTree>,
}

fn file_err(e: file::FileError) -> PyErr {
    SnapshotError::new_err(e.0)
}

impl PySnapshot {
    fn wrap(snap: Snapshot) -> Self {
        PySnapshot {
            snap,
            analysis: OnceLock::new(),
            tree: OnceLock::new(),
        }
    }

    fn analysis(&self, progress: Option<&Bound<'_, PyAny>>) -> &Analysis {
        if let Some(a) = self.analysis.get() {
            return a;
        }
        // Computed without the GIL (other Python threads run meanwhile), taking it back only
        // to report progress; not inside the OnceLock, whose waiters would hold the GIL that
        // the progress report needs. Two threads may both compute it: the first result stays.
        let progress: Option<Py<PyAny>> = progress.map(|p| p.clone().unbind());
        let a = Python::attach(|py| {
            py.detach(|| {
                let mut last = u64::MAX;
                analyse(&self.snap, &mut |done, total| {
                    if let Some(p) = &progress {
                        let pct = (done * 100).checked_div(total).unwrap_or(100);
                        if pct != last {
                            last = pct;
                            // A progress display that fails must not break the analysis.
                            Python::attach(|py| {
                                let _ = p.bind(py).call1(("retained sizes", done, total));
                            });
                        }
                    }
                })
            })
        });
        let _ = self.analysis.set(a);
        self.analysis.get().expect("set just above")
    }

    /// Node ids for a target: an address (int) or a type name (str).
    fn targets(&self, target: &Bound<'_, PyAny>) -> PyResult<Vec<NodeId>> {
        if let Ok(addr) = target.extract::<u64>() {
            return Ok(self.snap.graph.find(addr).into_iter().collect());
        }
        if let Ok(name) = target.extract::<String>() {
            return Ok(self.snap.nodes_of_type(&name));
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "expected a type name (str) or an address (int), not {}",
            target.get_type().name()?
        )))
    }
}

#[pymethods]
impl PySnapshot {
    /// Capture the live heap. `roots`: frames on thread stacks (flagged as roots); `modules`:
    /// `(name, module)` of the modules in `sys.modules` under their own name; `strings`: the
    /// string policy (`"names"`, `"all"` or `"none"`); `names`: record edge names
    /// (`crate::edgenames`); `progress`: called as `progress(phase, done, total)` for the phases
    /// `walk`, `references`, `sizes` and `names` (see `crate::progress`); an exception it raises
    /// ends the capture and is raised here. `pack`: with a second thread, pack the columns as
    /// the file stores them as the capture goes (less held, `save` has little left to do; a
    /// snapshot analysed at once and never saved is taken faster without). `find_garbage`:
    /// leave out what `gc.collect()` would free, found on the captured graph
    /// (`crate::capture::capture`); `collected` is what the file records (the garbage left
    /// out, either way).
    #[staticmethod]
    #[pyo3(signature = (untracked, roots, modules, collected, python, pid, created, strings, names=true, progress=None, pack=true, find_garbage=false))]
    #[allow(clippy::too_many_arguments)]
    fn capture(
        py: Python<'_>,
        untracked: bool,
        roots: Vec<Bound<'_, PyAny>>,
        modules: Vec<(String, Bound<'_, PyAny>)>,
        collected: bool,
        python: String,
        pid: u32,
        created: u64,
        strings: &str,
        names: bool,
        progress: Option<Bound<'_, PyAny>>,
        pack: bool,
        find_garbage: bool,
    ) -> PyResult<Self> {
        let policy = StringPolicy::parse(strings).ok_or_else(|| {
            PyValueError::new_err(format!(
                "strings must be 'names', 'all' or 'none', not {strings:?}"
            ))
        })?;
        let fingerprinter = process_fingerprinter(py)?;
        let key_id = match policy {
            StringPolicy::Names => fingerprinter.key_id(),
            _ => 0,
        };
        let text = StringNotes::new(py, policy, fingerprinter)?;
        let mut all_roots = roots.clone();
        all_roots.extend(modules.iter().map(|m| m.1.clone()));
        let mut progress = Reporter::new(progress);
        // With a second thread, what is complete is packed as the file stores it while this
        // thread goes on: the addresses (straight from the capture's references to the
        // objects: the graph never holds a column of them) and the type ids during the sizes
        // pass; the sizes, lengths and labels, then the references during the names pass (the
        // longer one); the names while the objects are released. The snapshot then holds
        // less, and `save` writes them as they are.
        let second = refgraph_core::threads::count() > 1;
        let pack = pack && second;
        // The sizes pass's two columns, made before the garbage is found (for as many nodes
        // as there are then), so that their pages are faulted in meanwhile. (The names'
        // buffer is not: faulted in then, it saved 0.25 s of the names pass at 30M objects
        // but raised the capture's peak from 59 to 67 bytes a tracked object.)
        let mut made: Option<Columns> = None;
        let (mut g, objects) = capture(
            py,
            untracked,
            &all_roots,
            &mut progress,
            pack,
            find_garbage,
            true,
            &mut |n| made.insert(Columns::with_capacity(n)).room().to_vec(),
        )?;
        let n = g.len();
        let addrs = objects.addrs();
        debug_assert_eq!(addrs.len(), n);
        let (notes, addrs) = {
            let (node_flags, type_table, type_ids) = g.annotation_parts();
            // The sizes pass's two columns: with a second thread, it first faults their fresh
            // pages in (each costs the thread that first writes it a stop to have it zeroed: a
            // third of the pass's time at 10M objects), then packs the addresses.
            let columns = made.unwrap_or_else(|| Columns::with_capacity(n));
            let room = columns.room();
            std::thread::scope(|scope| {
                let worker = second.then(|| {
                    scope.spawn(move || {
                        on_second(move || {
                            let never = std::sync::atomic::AtomicBool::new(false);
                            refgraph_core::hugepages::populate_ranges(&room, &never);
                            // The addresses, then the type ids, a part of what the names
                            // pass has to pack meanwhile, the longer part.
                            pack.then(|| {
                                let packed = file::pack::addrs_of(n, |i| addrs.at(i));
                                (packed, file::pack::types(type_ids))
                            })
                        })
                    })
                });
                let notes = annotate(
                    py,
                    node_flags,
                    type_table,
                    &objects,
                    text,
                    columns,
                    &mut progress,
                );
                let addrs = worker.and_then(|w| w.join().expect("packing does not panic"));
                notes.map(|notes| (notes, addrs))
            })?
        };
        let types_packed = addrs.map(|(addrs, types)| {
            g.set_addrs_packed(addrs);
            types
        });
        // The few nodes that are frames or modules.
        let mut marks: rustc_hash::FxHashMap<u64, u8> = Default::default();
        for r in &roots {
            *marks.entry(r.as_ptr() as u64).or_default() |= flags::ROOT;
        }
        for m in &modules {
            *marks.entry(m.1.as_ptr() as u64).or_default() |= flags::PROPER_MODULE | flags::MODULE;
        }
        let mut objects = Some(objects);
        let (arrays, sizes, lens, labels, names, marked, globals) =
            std::thread::scope(|scope| -> PyResult<_> {
                let columns = (notes.sizes, notes.lens, notes.labels);
                let fixed = g.fixed_arrays();
                // The packed columns (the sizes first: they are freed once packed), or (with one
                // thread) the columns themselves.
                let worker = if pack {
                    Ok(scope.spawn(move || {
                        on_second(move || {
                            let (sizes, lens, labels) = columns;
                            let sizes = file::pack::sizes(&{ sizes });
                            let lens = file::pack::lens(&{ lens });
                            let labels = file::pack::labels(&{ labels }, n);
                            let arrays = types_packed.map(|types| PackedArrays {
                                types,
                                edges: file::pack::edges(fixed),
                            });
                            (arrays, sizes, lens, labels)
                        })
                    }))
                } else {
                    Err(columns)
                };
                let held = objects
                    .as_ref()
                    .expect("the objects are held until released below");
                let names = if names {
                    // Kept as the file encodes them when they are to be packed (half the bytes).
                    crate::edgenames::name_edges(
                        py,
                        &g,
                        held,
                        policy,
                        pack.then(|| EdgeNamesBuilder::encoding(g.referent_arrays().1.len())),
                        &mut progress,
                    )?
                } else {
                    BuiltNames::Names(Default::default())
                };
                // What still reads the objects, then their release, while the second thread
                // packs (the marks are set on the graph once it is done reading it). The
                // nodes of the marked objects and of the globals' values, in one pass.
                let mut global_names = module_globals(py, &modules, policy);
                let wanted: rustc_hash::FxHashMap<u64, ()> = marks
                    .keys()
                    .chain(global_names.keys())
                    .map(|&a| (a, ()))
                    .collect();
                let found = held.nodes_at(&wanted);
                let marked: Vec<(NodeId, u8)> = marks
                    .iter()
                    .filter_map(|(a, &f)| Some((*found.get(a)?, f)))
                    .collect();
                let mut globals: Vec<(NodeId, String)> = found
                    .iter()
                    .filter_map(|(a, &v)| Some((v, global_names.remove(a)?)))
                    .collect();
                globals.sort_unstable_by_key(|g| g.0);
                let names = if pack {
                    Ok(scope.spawn(move || on_second(move || file::pack::built_names(names))))
                } else {
                    Err(names)
                };
                drop(objects.take());
                let (arrays, sizes, lens, labels) = match worker {
                    Ok(w) => w.join().expect("packing does not panic"),
                    Err((sizes, lens, labels)) => {
                        let labels: Vec<_> = labels
                            .into_iter()
                            .map(|(v, l)| (v, l.to_string()))
                            .collect();
                        (None, sizes.into(), lens.into(), labels.into())
                    }
                };
                let names = match names {
                    Ok(w) => w.join().expect("packing does not panic"),
                    Err(BuiltNames::Names(names)) => names.into(),
                    Err(encoded) => file::pack::built_names(encoded),
                };
                Ok((arrays, sizes, lens, labels, names, marked, globals))
            })?;
        if let Some(arrays) = arrays {
            g.keep_packed_arrays(arrays);
        }
        for (v, f) in marked {
            g.set_flags(v, f);
        }
        let snap = Snapshot {
            graph: g,
            sizes,
            lens,
            labels,
            globals,
            names,
            meta: Meta {
                python,
                created,
                pid,
                collected,
                untracked,
            },
            strings: StringContent {
                policy,
                key_id,
                fingerprints: notes.fingerprints,
            },
        };
        snap.validate().map_err(PyValueError::new_err)?;
        Ok(Self::wrap(snap))
    }

    /// Read a snapshot file; `progress` is called as `progress("loading", done, total)` after
    /// each step of the decoding (an exception it raises is ignored).
    #[staticmethod]
    #[pyo3(signature = (path, progress=None))]
    fn load(
        py: Python<'_>,
        path: std::path::PathBuf,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        // The file is read, checked and decoded without the GIL.
        let bytes = py.detach(|| std::fs::read(&path)).map_err(|e| {
            PyOSError::new_err((e.raw_os_error().unwrap_or(0), e.to_string(), path.clone()))
        })?;
        let progress: Option<Py<PyAny>> = progress.map(Bound::unbind);
        let snap = py
            .detach(|| {
                file::from_vec_reporting(bytes, &mut |done, total| {
                    if let Some(p) = &progress {
                        // A progress display that fails must not break the load.
                        Python::attach(|py| {
                            let _ = p.bind(py).call1(("loading", done, total));
                        });
                    }
                })
            })
            .map_err(|e| SnapshotError::new_err(format!("{}: {}", path.display(), e.0)))?;
        Ok(Self::wrap(snap))
    }

    /// Decode the bytes of a snapshot file.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let snap = py.detach(|| file::from_bytes(data)).map_err(file_err)?;
        Ok(Self::wrap(snap))
    }

    /// The bytes of a snapshot file; `progress` is called as `progress("saving", done, total)`
    /// as they are encoded and compressed (an exception it raises is ignored).
    #[pyo3(signature = (progress=None))]
    fn to_bytes<'py>(
        &self,
        py: Python<'py>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let progress: Option<Py<PyAny>> = progress.map(Bound::unbind);
        let mut report = |done, total| {
            if let Some(p) = &progress {
                // A progress display that fails must not break the encoding.
                Python::attach(|py| {
                    let _ = p.bind(py).call1(("saving", done, total));
                });
            }
        };
        let bytes = py.detach(|| {
            file::to_buffer_reporting(&self.snap, &mut report, |len, fill| {
                // Written straight into the new `bytes` (no other buffer of the whole file
                // to copy from: at 30M objects 220 MB less), without the GIL: no Python code
                // can see the object before it is returned.
                Python::attach(|py| {
                    PyBytes::new_with(py, len, |buf| {
                        py.detach(|| fill(buf));
                        Ok(())
                    })
                    .map(Bound::unbind)
                })
            })
        })?;
        Ok(bytes.into_bound(py))
    }

    fn __len__(&self) -> usize {
        self.snap.len()
    }

    /// Facts about the snapshot as a dict; `problems` lists the sections of a loaded file that
    /// could not be decoded (only when there are). Without `names`, leaves out
    /// `named_references` and `name_bytes` and decodes no column a loaded snapshot keeps packed
    /// (`problems` then lists only what earlier queries found).
    #[pyo3(signature = (names=true))]
    fn info<'py>(&self, py: Python<'py>, names: bool) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.snap;
        let d = PyDict::new(py);
        d.set_item("objects", s.len())?;
        d.set_item("tracked", s.graph.tracked_count())?;
        d.set_item("references", s.graph.edge_count())?;
        if names {
            d.set_item("named_references", s.names.named_count())?;
            d.set_item("name_bytes", s.names.heap_bytes())?;
            // Every packed column decoded, so that `problems` is complete.
            let _ = (s.graph.addrs().len(), s.lens.len(), s.labels.len());
        }
        d.set_item("types", s.graph.type_table().len())?;
        d.set_item("bytes", s.total_bytes())?;
        d.set_item("python", &s.meta.python)?;
        d.set_item("created", s.meta.created)?;
        d.set_item("pid", s.meta.pid)?;
        d.set_item("collected", s.meta.collected)?;
        d.set_item("untracked", s.meta.untracked)?;
        d.set_item("strings", s.strings.policy.as_str())?;
        d.set_item("fingerprints", s.strings.fingerprints.len())?;
        let n = s.len() as NodeId;
        d.set_item(
            "modules",
            (0..n)
                .filter(|&v| s.graph.has(v, flags::PROPER_MODULE))
                .count(),
        )?;
        d.set_item(
            "thread_frames",
            (0..n).filter(|&v| s.graph.has(v, flags::ROOT)).count(),
        )?;
        d.set_item(
            "with_del",
            (0..n).filter(|&v| s.graph.has(v, flags::HAS_DEL)).count(),
        )?;
        let problems = s.problems();
        if !problems.is_empty() {
            d.set_item("problems", problems)?;
        }
        Ok(d)
    }

    /// A [`TypeRow`] per type (name, count, shallow bytes, retained bytes) in first-appearance order;
    /// retained bytes are computed (once) only when `retained` is true, else 0.
    #[pyo3(signature = (retained=true, progress=None))]
    fn typestats(&self, retained: bool, progress: Option<Bound<'_, PyAny>>) -> Vec<TypeRow> {
        let a = retained.then(|| self.analysis(progress.as_ref()));
        Python::attach(|py| py.detach(|| type_stats(&self.snap, a)))
            .into_iter()
            .map(|r| TypeRow {
                name: r.name,
                count: r.count,
                shallow: r.shallow,
                retained: r.retained,
            })
            .collect()
    }

    /// Changes by type from `old` to this snapshot, a [`DiffRow`] per type, biggest growth
    /// first.
    #[pyo3(signature = (old, progress=None))]
    fn diff(&self, old: &PySnapshot, progress: Option<Bound<'_, PyAny>>) -> Vec<DiffRow> {
        let a = self.analysis(progress.as_ref());
        Python::attach(|py| py.detach(|| diff::diff(&old.snap, &self.snap, Some(a))))
            .into_iter()
            .map(|r| DiffRow {
                name: r.name,
                old_count: r.old_count,
                new_count: r.new_count,
                old_bytes: r.old_bytes,
                new_bytes: r.new_bytes,
                new_objects: r.new_objects,
                new_objects_bytes: r.new_objects_bytes,
                new_objects_retained: r.new_objects_retained,
            })
            .collect()
    }

    /// Shortest retention paths from roots to the target (a type name or an address), grouped
    /// by shape: `(groups, unreachable, targets)` with a [`PathGroup`] per group.
    fn paths(&self, target: &Bound<'_, PyAny>) -> PyResult<(Vec<PathGroup>, u64, usize)> {
        let targets = self.targets(target)?;
        let s = &self.snap;
        let rep = Python::attach(|py| py.detach(|| paths::retention_paths(s, &roots(s), &targets)));
        Ok((
            rep.groups
                .into_iter()
                .map(|g| {
                    let edges = g
                        .example
                        .iter()
                        .zip(&g.example_edges)
                        .map(|(&n, &k)| s.edge_name(n, k as usize).map(|e| e.label()))
                        .collect();
                    let exact = refgraph_core::snapshot::expr::pattern_with_edges(
                        s,
                        &g.example,
                        &g.example_edges,
                        &[],
                    );
                    PathGroup {
                        shape: g.shape,
                        count: g.count,
                        bytes: g.bytes,
                        example: g
                            .example
                            .iter()
                            .map(|&n| (s.graph.addr(n), s.describe(n)))
                            .collect(),
                        expression: g.expression,
                        edges,
                        example_expression: exact,
                    }
                })
                .collect(),
            rep.unreachable,
            targets.len(),
        ))
    }

    /// The shortest retention path to the object at an address as a Python expression
    /// (`__main__.bus._listeners[3].__self__`), or None when no root reaches it.
    fn expression(&self, addr: u64) -> Option<String> {
        let n = self.snap.graph.find(addr)?;
        let tree = self
            .tree
            .get_or_init(|| paths::shortest_path_tree_edges(&self.snap, &roots(&self.snap)));
        let (path, edges) = tree.path(n)?;
        Some(refgraph_core::snapshot::expr::pattern_with_edges(
            &self.snap,
            &path,
            &edges,
            &[],
        ))
    }

    /// `[(address, name)]`: what the object at an address refers to, in `tp_traverse` order,
    /// with the name of each reference (`.x`, `['k']`, `[3]`, …; None when unnamed).
    fn referents(&self, addr: u64) -> Option<Vec<(u64, Option<String>)>> {
        let n = self.snap.graph.find(addr)?;
        Some(
            self.snap
                .graph
                .referents(n)
                .iter()
                .enumerate()
                .map(|(k, &m)| {
                    (
                        self.snap.graph.addr(m),
                        self.snap.edge_name(n, k).map(|e| e.label()),
                    )
                })
                .collect(),
        )
    }

    /// Leak suspects of this snapshot, the heap after the last round of work: with `rounds`
    /// (the census of a live search) or `older` snapshots of the same process (oldest first).
    /// Returns `(rounds, new objects, [suspect dict])`.
    /// `library`: top-level modules whose types are not the program's (the standard library).
    #[pyo3(signature = (rounds=None, older=Vec::new(), sample=50, library=Vec::new()))]
    fn leak_suspects<'py>(
        &self,
        py: Python<'py>,
        rounds: Option<PyRef<'py, crate::rounds::Rounds>>,
        older: Vec<PyRef<'py, PySnapshot>>,
        sample: usize,
        library: Vec<String>,
    ) -> PyResult<(usize, u64, Vec<Bound<'py, PyDict>>)> {
        let s = &self.snap;
        let mut history = match rounds {
            Some(r) => r.history(s),
            None => {
                let mut all: Vec<&Snapshot> = older.iter().map(|o| &o.snap).collect();
                all.push(s);
                leaks::History::from_snapshots(&all).map_err(PyValueError::new_err)?
            }
        };
        history.library = library;
        let a = self.analysis(None);
        let report = py.detach(|| leaks::find_suspects(s, a, &history, sample));
        let mut out = Vec::new();
        for sp in &report.suspects {
            let d = PyDict::new(py);
            if sp.holder == leaks::OUTSIDE {
                d.set_item(
                    "holder",
                    "<no object of the heap: C code or the interpreter>",
                )?;
                d.set_item("holder_address", py.None())?;
                d.set_item("holder_type", "")?;
            } else {
                let to_holder = &sp.path[..=sp.holder_step];
                d.set_item("holder", leaks::holder_expression(s, to_holder))?;
                d.set_item("holder_address", s.graph.addr(sp.holder))?;
                d.set_item("holder_type", s.type_name(sp.holder))?;
            }
            d.set_item("new_objects", sp.new_objects)?;
            d.set_item("bytes", sp.bytes)?;
            d.set_item("share", sp.share)?;
            d.set_item("types", sp.types.clone())?;
            let steps: Vec<(u64, String, String, Option<String>)> = sp
                .path
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let edge = sp.path.get(i + 1).and_then(|&m| leaks::edge_name(s, n, m));
                    (
                        s.graph.addr(n),
                        s.type_name(n).to_string(),
                        leaks::step_label(s, n),
                        edge,
                    )
                })
                .collect();
            d.set_item("path", steps)?;
            d.set_item(
                "holder_step",
                (sp.holder != leaks::OUTSIDE).then_some(sp.holder_step),
            )?;
            d.set_item("lengths", sp.lengths)?;
            let sample: Vec<(u64, String)> = sp
                .sample
                .iter()
                .map(|&n| (s.graph.addr(n), s.short_type_name(n).to_string()))
                .collect();
            d.set_item("sample", sample)?;
            out.push(d);
        }
        Ok((report.rounds, report.new_objects, out))
    }

    /// Retained bytes of the object at an address (None if it is not in the snapshot).
    #[pyo3(signature = (addr, progress=None))]
    fn retained_size(&self, addr: u64, progress: Option<Bound<'_, PyAny>>) -> Option<u64> {
        let n = self.snap.graph.find(addr)?;
        Some(self.analysis(progress.as_ref()).retained[n as usize])
    }

    /// Shallow size of the object at an address.
    fn size(&self, addr: u64) -> Option<u64> {
        let n = self.snap.graph.find(addr)?;
        Some(self.snap.sizes[n as usize])
    }

    /// One-line description of the object at an address.
    fn describe(&self, addr: u64) -> Option<String> {
        let n = self.snap.graph.find(addr)?;
        Some(self.snap.describe(n))
    }

    /// Addresses of the objects of a type (long name with a dot, else short name).
    fn addresses(&self, typename: &str) -> Vec<u64> {
        self.snap
            .nodes_of_type(typename)
            .into_iter()
            .map(|n| self.snap.graph.addr(n))
            .collect()
    }

    /// Draw what refers to the first `count` targets (or what they refer to, with
    /// `backrefs=False`) as `fmt` ('svg', 'png' or 'dot'). Returns `(data, nodes)`; None when
    /// there is no such object.
    #[pyo3(signature = (target, fmt, count=1, backrefs=true, max_depth=5, too_many=10))]
    #[allow(clippy::too_many_arguments)]
    fn graph<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        fmt: &str,
        count: usize,
        backrefs: bool,
        max_depth: u32,
        too_many: u64,
    ) -> PyResult<Option<(Bound<'py, PyBytes>, usize)>> {
        let mut targets = self.targets(target)?;
        if targets.is_empty() {
            return Ok(None);
        }
        targets.truncate(count.max(1));
        let view = draw::view(&self.snap, &targets, backrefs, max_depth, too_many);
        let nodes = view.merged().0.len();
        let data = match fmt {
            "svg" => py.detach(|| refgraph_core::render::to_svg(&view).into_bytes()),
            "dot" => refgraph_core::dot::write_dot(&view).into_bytes(),
            "png" => py
                .detach(|| refgraph_core::render::to_png(&view))
                .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?,
            other => {
                return Err(PyValueError::new_err(format!(
                    "cannot draw {other:?}: use svg, png or dot"
                )))
            }
        };
        Ok(Some((PyBytes::new(py, &data), nodes)))
    }

    /// The data of the HTML report (JSON text, safe inside a `<script>` block): statistics by
    /// type (with the change since `base`), the biggest part of the dominator tree and the
    /// retainers of the biggest objects.
    #[pyo3(signature = (base=None, progress=None))]
    fn report_json(
        &self,
        py: Python<'_>,
        base: Option<&PySnapshot>,
        progress: Option<Bound<'_, PyAny>>,
    ) -> String {
        let a = self.analysis(progress.as_ref());
        let limits = report::Limits::default();
        py.detach(|| report::report_json(&self.snap, a, base.map(|b| &b.snap), &limits))
    }
}

/// Draw a chain of objects natively as SVG: `steps` are `(type name, label, name of the
/// reference to the next step or None)`, root first.
#[pyfunction]
pub fn draw_chain(py: Python<'_>, steps: Vec<(String, String, Option<String>)>) -> String {
    py.detach(|| refgraph_core::render::to_svg(&report::chain_view(&steps)))
}

/// `f` on a pool of one thread made for it: a capture's second thread, packing columns while
/// the first goes on (see `PySnapshot::capture`).
fn on_second<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    refgraph_core::threads::run_on(1, f)
}
