//! Write small valid snapshot files as seeds for the loader's fuzzer:
//! `cargo run -p refgraph-core --example fuzz_seeds -- fuzz/corpus/load`.

use refgraph_core::edgenames::{EdgeName, EdgeNamesBuilder};
use refgraph_core::graph::{flags, from_edges, NodeId};
use refgraph_core::snapshot::{file, Meta, Snapshot, NO_LEN};

fn snapshot(n: usize) -> Snapshot {
    // A module -> dict -> list -> n records, each with a str; one weakref; one cycle.
    let mut nodes: Vec<(&str, bool)> = vec![("module", true), ("dict", true), ("list", true)];
    nodes.extend(std::iter::repeat_n(("Record", true), n));
    nodes.push(("weakref", true));
    nodes.push(("tuple", true));
    nodes.push(("tuple", true));
    nodes.extend(std::iter::repeat_n(("str", false), n));
    let rec0 = 3u32;
    let weak = rec0 + n as u32;
    let cyc = weak + 1;
    let str0 = cyc + 2;
    let mut edges: Vec<Vec<NodeId>> = vec![vec![1], vec![2, weak], (rec0..weak).collect()];
    for i in 0..n as u32 {
        edges.push(vec![str0 + i]);
    }
    edges.push(vec![]);
    edges.push(vec![cyc + 1]);
    edges.push(vec![cyc]);
    let refs: Vec<&[NodeId]> = edges.iter().map(|e| e.as_slice()).collect();
    let mut graph = from_edges(&nodes, &refs);
    graph.set_flags(0, flags::MODULE | flags::PROPER_MODULE);
    graph.set_flags(weak, flags::WEAKREF);
    let len = graph.len();
    Snapshot {
        sizes: (0..len as u64).map(|i| 16 + i * 8).collect(),
        lens: (0..len)
            .map(|i| if i == 2 { n as u32 } else { NO_LEN })
            .collect(),
        labels: vec![(0, "app".into()), (str0, "'user0'".into())]
            .into_iter()
            .filter(|l| (l.0 as usize) < len)
            .collect::<Vec<_>>()
            .into(),
        globals: vec![(2, "app._cache".into())],
        names: Default::default(),
        meta: Meta {
            python: "3.11.7".into(),
            created: 1_795_000_000,
            pid: 1234,
            collected: true,
            untracked: true,
        },
        strings: Default::default(),
        graph,
    }
}

/// The same snapshot with edge names of every kind.
fn with_names(s: &Snapshot) -> Snapshot {
    let g = &s.graph;
    // Encoded as a capture encodes them, int dict keys by value.
    let mut b = EdgeNamesBuilder::encoding(g.edge_count());
    let kinds = [
        Some(EdgeName::Attr("__dict__")),
        Some(EdgeName::DictKey("'_cache'")),
        Some(EdgeName::DictKeyObject("(1, None)")),
        Some(EdgeName::SetMember),
        Some(EdgeName::Cell("x")),
        Some(EdgeName::Local("req")),
        Some(EdgeName::Other("weak callback")),
        None,
    ];
    let mut i = 0;
    for v in 0..g.len() as NodeId {
        for k in 0..g.referents(v).len() {
            if v == 3 {
                b.push_int_key(k % 2 == 1, -(k as i64) / 2);
            } else {
                b.push(if v == 2 {
                    Some(EdgeName::Index(k as u32))
                } else {
                    kinds[i % kinds.len()]
                });
            }
            i += 1;
        }
    }
    Snapshot {
        names: file::pack::built_names(b.build()),
        ..s.clone()
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus/load".into());
    std::fs::create_dir_all(&dir).expect("create the corpus folder");
    for n in [0usize, 1, 3, 10, 40] {
        let s = snapshot(n);
        let named = with_names(&s);
        for (s, stem) in [(s, "seed3"), (named, "seed3-named")] {
            s.validate().expect("a valid seed");
            let bytes = file::to_bytes(&s);
            file::from_bytes(&bytes).expect("the seed loads");
            let path = format!("{dir}/{stem}-{n}.rgsnap");
            std::fs::write(&path, &bytes).expect("write the seed");
            println!("{path}: {} bytes", bytes.len());
        }
    }
}
