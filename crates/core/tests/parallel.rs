//! The analysis after a capture gives the same results on one thread as on several: the same
//! file bytes, the same loaded snapshot, the same dominators, retained sizes, statistics, diffs
//! and referrer index.

use refgraph_core::edgenames::{EdgeName, EdgeNamesBuilder};
use refgraph_core::graph::{flags, Graph, NodeId, TypeInfo};
use refgraph_core::snapshot::{analysis, diff, file, paths, Snapshot, NO_LEN};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A random heap-like snapshot: `n` nodes, a few edges each (near and far, some duplicated,
/// some self references), some untracked nodes at the end, roots flagged, unreachable cycles,
/// labels, edge names.
fn random_snapshot(seed: u64, n: usize) -> Snapshot {
    let mut rng = Rng(seed | 1);
    let tracked = n - n / 5;
    let mut offsets = vec![0u32];
    let mut targets = Vec::new();
    for v in 0..n {
        let k = rng.below(5);
        for _ in 0..k {
            let t = match rng.below(4) {
                0 => (v as u64 + 1 + rng.below(16)).min(n as u64 - 1),
                1 => v as u64,
                _ => rng.below(n as u64),
            };
            targets.push(t as NodeId);
            if rng.below(10) == 0 {
                targets.push(t as NodeId);
            }
        }
        offsets.push(targets.len() as u32);
    }
    let nt = 1 + rng.below(40) as usize;
    let table: Vec<TypeInfo> = (0..nt)
        .map(|i| TypeInfo {
            addr: 0x1000 + i as u64,
            short_name: format!("T{}", i % 30),
            // Some long names repeat: rows merge by name.
            long_name: format!("m.T{}", i % 30),
        })
        .collect();
    let types: Vec<u32> = (0..n).map(|_| rng.below(nt as u64) as u32).collect();
    let mut fl: Vec<u8> = (0..n)
        .map(|v| {
            if v < tracked {
                flags::TRACKED | flags::GC_TYPE
            } else {
                0
            }
        })
        .collect();
    for _ in 0..20 {
        fl[rng.below(tracked as u64) as usize] |= flags::ROOT;
    }
    fl[0] |= flags::PROPER_MODULE | flags::MODULE;
    let mut addr = 0x7f00_0000_0000u64;
    let addrs: Vec<u64> = (0..n)
        .map(|_| {
            addr += 16 * (1 + rng.below(8));
            addr
        })
        .collect();
    let graph = Graph::from_parts(addrs, types, fl, tracked as u32, offsets, targets, table)
        .expect("a valid graph");
    let mut names = EdgeNamesBuilder::with_capacity(graph.edge_count());
    for v in 0..n as NodeId {
        for (i, _) in graph.referents(v).iter().enumerate() {
            names.push(match rng.below(4) {
                0 => Some(EdgeName::Attr(["a", "b", "peer"][i % 3])),
                1 => Some(EdgeName::Index(i as u32)),
                _ => None,
            });
        }
    }
    let mut labels: Vec<(NodeId, String)> = (0..n as NodeId)
        .filter(|_| rng.below(50) == 0)
        .map(|v| (v, format!("label {v}")))
        .collect();
    labels.dedup_by_key(|l| l.0);
    Snapshot {
        sizes: (0..n).map(|_| 16 + rng.below(5000)).collect(),
        lens: (0..n)
            .map(|_| {
                if rng.below(3) == 0 {
                    NO_LEN
                } else {
                    rng.below(100) as u32
                }
            })
            .collect(),
        labels: labels.into(),
        globals: vec![(0, "m.g".into())],
        names: names.finish().into(),
        graph,
        ..Default::default()
    }
}

/// The same heap with some objects gone, some types changed and some new objects at new
/// addresses (edges dropped: the diff does not read them).
fn later(s: &Snapshot, seed: u64) -> Snapshot {
    let mut rng = Rng(seed | 1);
    let g = &s.graph;
    let nt = g.type_table().len() as u64;
    let mut addrs = Vec::new();
    let mut types = Vec::new();
    let mut sizes = Vec::new();
    for v in 0..s.len() as NodeId {
        match rng.below(10) {
            0 => continue,
            1 => {
                addrs.push(g.addr(v));
                types.push(rng.below(nt) as u32);
            }
            2 => {
                addrs.push(g.addr(v) + 8);
                types.push(g.type_of(v));
            }
            _ => {
                addrs.push(g.addr(v));
                types.push(g.type_of(v));
            }
        }
        sizes.push(s.sizes[v as usize] + rng.below(2));
    }
    let n = addrs.len();
    let graph = Graph::from_parts(
        addrs,
        types,
        vec![flags::TRACKED; n],
        n as u32,
        vec![0; n + 1],
        vec![],
        g.type_table().to_vec(),
    )
    .expect("a valid graph");
    Snapshot {
        graph,
        sizes: sizes.into(),
        lens: vec![NO_LEN; n].into(),
        ..Default::default()
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a pool")
}

/// Everything the parallel code computes, on a pool of `threads` threads.
#[derive(Debug, PartialEq)]
struct Results {
    bytes: Vec<u8>,
    addrs: Vec<u64>,
    types: Vec<u32>,
    edges: (Vec<u32>, Vec<u32>),
    referrers: Vec<Vec<NodeId>>,
    sizes: Vec<u64>,
    lens: Vec<u32>,
    labels: Vec<(NodeId, String)>,
    names_equal: bool,
    referred: Vec<bool>,
    roots: Vec<NodeId>,
    unrooted: Vec<NodeId>,
    idom: Vec<NodeId>,
    retained: Vec<u64>,
    first_of_type: Vec<u64>,
    type_stats: Vec<analysis::TypeRow>,
    diff: Vec<diff::DiffRow>,
    is_new: Vec<bool>,
    paths: String,
}

fn results(s: &Snapshot, old: &Snapshot, threads: usize) -> Results {
    pool(threads).install(|| {
        let bytes = file::to_bytes(s);
        let back = file::from_bytes(&bytes).expect("the file loads");
        let g = &back.graph;
        let a = analysis::analyse(&back, &mut |_, _| {});
        let (diff, is_new) = diff::diff_marking_new(old, &back, Some(&a));
        let targets = back.nodes_of_type("m.T3");
        let rep = paths::retention_paths(&back, &analysis::roots(&back), &targets);
        Results {
            addrs: g.addrs().to_vec(),
            types: g.types().to_vec(),
            edges: (
                g.referent_arrays().0.to_vec(),
                g.referent_arrays().1.to_vec(),
            ),
            referrers: (0..g.len() as NodeId)
                .map(|v| g.referrers(v).to_vec())
                .collect(),
            sizes: back.sizes.decoded().clone(),
            lens: back.lens.decoded().clone(),
            labels: back.labels.decoded().clone(),
            names_equal: back.names == s.names,
            referred: {
                let r = analysis::referred(g);
                (0..g.len() as NodeId).map(|v| r.contains(v)).collect()
            },
            roots: a.roots.clone(),
            unrooted: a.unrooted.clone(),
            idom: a.idom.clone(),
            retained: a.retained.clone(),
            first_of_type: a.first_of_type.clone(),
            type_stats: analysis::type_stats(&back, Some(&a)),
            diff,
            is_new,
            paths: format!("{rep:?}"),
            bytes,
        }
    })
}

#[test]
fn one_thread_and_several_give_the_same_results() {
    for (seed, n) in [(1u64, 1usize), (2, 37), (3, 5_000), (4, 600_000)] {
        let s = random_snapshot(seed, n);
        let old = later(&s, seed + 100);
        let serial = results(&s, &old, 1);
        // Big enough for every parallel part to run on several tasks (over 2^20 edges).
        assert!(n < 600_000 || s.graph.edge_count() > 1 << 20);
        // The file round-trips to the same snapshot.
        assert_eq!(serial.addrs, s.graph.addrs(), "n={n}");
        assert_eq!(*serial.sizes, *s.sizes);
        assert!(serial.names_equal);
        for threads in [2, 3, 8] {
            let par = results(&s, &old, threads);
            assert!(par == serial, "n={n}: {threads} threads differ from one");
        }
    }
}

#[test]
fn big_sections_are_stored_in_several_chunks() {
    let s = random_snapshot(9, 300_000);
    let bytes = file::to_bytes(&s);
    let entries = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    // 12 sections, the edge section over a chunk.
    assert!(entries > 12, "{entries} directory entries");
    assert_eq!(
        u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
        file::VERSION
    );
}

/// The columns and arrays a capture packs as it goes (`file::pack`) are written as they are: the file is
/// byte for byte the one written from the decoded columns, on any number of threads, and a
/// loaded file saved again is the same file.
#[test]
fn packed_columns_write_the_same_file() {
    let s = random_snapshot(11, 600_000);
    let expected = pool(1).install(|| file::to_bytes(&s));
    for threads in [1, 2, 3] {
        let packed = pool(threads).install(|| {
            let n = s.graph.len();
            let mut p = file::from_bytes(&expected).expect("the file loads");
            p.sizes = file::pack::sizes(&s.sizes);
            p.lens = file::pack::lens(&s.lens);
            p.labels = file::pack::labels(&s.labels, n);
            // Every other time from a builder that kept them encoded, as a capture's does.
            p.names = if threads % 2 == 1 {
                file::pack::names((*s.names).clone())
            } else {
                let mut b = EdgeNamesBuilder::encoding(s.graph.edge_count());
                for t in s.names.texts() {
                    b.intern(t);
                }
                let (kinds, values) = s.names.raw_parts();
                for (&k, &v) in kinds.iter().zip(values) {
                    b.push_raw(k, if k == 0 { 0 } else { v });
                }
                file::pack::built_names(b.build())
            };
            p.graph.set_addrs_packed(file::pack::addrs(s.graph.addrs()));
            let arrays = file::pack::arrays(p.graph.fixed_arrays());
            // The two parts packed on their own are the same.
            assert!(arrays.types == file::pack::types(p.graph.types()));
            assert!(arrays.edges == file::pack::edges(p.graph.fixed_arrays()));
            p.graph.keep_packed_arrays(arrays);
            assert!(p.sizes.peek().is_none() && p.names.peek().is_none());
            p
        });
        // Over a chunk each: several chunks written as they are.
        assert!(s.graph.len() > file::CHUNK / 2 && s.graph.edge_count() > 1 << 20);
        let bytes = pool(threads).install(|| file::to_bytes(&packed));
        assert!(
            bytes == expected,
            "{threads} threads: packed columns wrote other bytes"
        );
        assert!(*packed.sizes == *s.sizes);
        assert!(*packed.lens == *s.lens && *packed.labels == *s.labels && packed.names == s.names);
        // Decoded, they still write the same file.
        assert!(pool(threads).install(|| file::to_bytes(&packed)) == expected);
    }
    let back = file::from_bytes(&expected).unwrap();
    assert!(
        file::to_bytes(&back) == expected,
        "a loaded file saves as itself"
    );
}

#[test]
fn the_referrer_index_is_gc_referrers() {
    // Against a direct computation: tracked sources, each once, in id order.
    let s = random_snapshot(5, 600_000);
    assert!(
        s.graph.edge_count() > 1 << 20,
        "split into several target ranges"
    );
    let g = pool(4).install(|| file::from_bytes(&file::to_bytes(&s)).unwrap().graph);
    let mut expect: Vec<Vec<NodeId>> = vec![Vec::new(); g.len()];
    for v in 0..g.tracked_count() as NodeId {
        for &t in g.referents(v) {
            if expect[t as usize].last() != Some(&v) {
                expect[t as usize].push(v);
            }
        }
    }
    for v in 0..g.len() as NodeId {
        assert_eq!(g.referrers(v), &expect[v as usize][..], "node {v}");
    }
}

/// The history of a leak check (which objects are new, the lengths of old containers) is the
/// same on any number of threads: three snapshots of a heap with containers (types renamed
/// `list` and `dict`), the middle one with a third of their lengths halved, the first with
/// objects gone, retyped and moved.
#[test]
fn leak_history_is_the_same_on_any_number_of_threads() {
    use refgraph_core::snapshot::leaks::History;
    let s = random_snapshot(21, 300_000);
    let g = &s.graph;
    let n = g.len();
    let mut table = g.type_table().to_vec();
    for (t, name) in table.iter_mut().zip(["list", "dict"]) {
        t.long_name = name.into();
    }
    let (offsets, targets) = g.referent_arrays();
    let rebuilt = |lens: Vec<u32>| Snapshot {
        graph: Graph::from_parts(
            g.addrs().to_vec(),
            g.types().to_vec(),
            (0..n as NodeId).map(|v| g.flags(v)).collect::<Vec<u8>>(),
            g.tracked_count() as u32,
            offsets.to_vec(),
            targets.to_vec(),
            table.clone(),
        )
        .expect("a valid graph"),
        sizes: s.sizes.decoded().clone().into(),
        lens: lens.into(),
        ..Default::default()
    };
    let last = rebuilt(s.lens.decoded().clone());
    let mut rng = Rng(5);
    let mid = rebuilt(
        s.lens
            .iter()
            .map(|&l| {
                if l != NO_LEN && rng.below(3) == 0 {
                    l / 2
                } else {
                    l
                }
            })
            .collect(),
    );
    let first = later(&last, 7);
    let history = |threads: usize| {
        pool(threads)
            .install(|| History::from_snapshots(&[&first, &mid, &last]).expect("a history"))
    };
    let serial = history(1);
    assert!(serial.birth.contains(&0) && serial.birth.contains(&1));
    assert!(!serial.watched.is_empty() && !serial.lengths.is_empty());
    for threads in [2, 3, 8] {
        let par = history(threads);
        assert!(
            par.birth == serial.birth,
            "{threads} threads: births differ"
        );
        assert_eq!(par.watched, serial.watched, "{threads} threads");
        assert_eq!(par.lengths, serial.lengths, "{threads} threads");
    }
}
