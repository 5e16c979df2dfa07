//! Time the retention analysis (roots, dominator tree, retained sizes) on a random heap-like
//! graph: `cargo run --release -p refgraph-core --example dominators_10m [-- NODES]`.

use refgraph_core::graph::{flags, Graph, TypeInfo};
use refgraph_core::snapshot::{analysis, Snapshot, NO_LEN};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    // xorshift, deterministic.
    let mut x: u64 = 0x2545f4914f6cdd1d;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let t0 = Instant::now();
    // Three edges per node: one to a nearby node (allocation locality), two anywhere.
    let mut offsets = Vec::with_capacity(n + 1);
    let mut targets = Vec::with_capacity(3 * n);
    offsets.push(0u32);
    for v in 0..n {
        let near = (v as u64 + 1 + rnd() % 16).min(n as u64 - 1) as u32;
        targets.push(near);
        targets.push((rnd() % n as u64) as u32);
        targets.push((rnd() % n as u64) as u32);
        offsets.push(targets.len() as u32);
    }
    let types: Vec<u32> = (0..n).map(|_| (rnd() % 4) as u32).collect();
    let mut fl = vec![flags::TRACKED | flags::GC_TYPE; n];
    for f in fl.iter_mut().take(100) {
        *f |= flags::PROPER_MODULE | flags::MODULE;
    }
    let table = (0..4)
        .map(|i| TypeInfo {
            addr: i,
            short_name: format!("t{i}"),
            long_name: format!("t{i}"),
        })
        .collect();
    let addrs: Vec<u64> = (0..n as u64).map(|i| 16 * (i + 1)).collect();
    let graph =
        Graph::from_parts(addrs, types, fl, n as u32, offsets, targets, table).expect("valid");
    let s = Snapshot {
        sizes: (0..n).map(|_| 16 + rnd() % 200).collect(),
        lens: vec![NO_LEN; n].into(),
        graph,
        ..Default::default()
    };
    println!(
        "graph: {} nodes, {} edges, built in {:.2} s",
        s.len(),
        s.graph.edge_count(),
        t0.elapsed().as_secs_f64()
    );
    let t1 = Instant::now();
    let a = analysis::analyse(&s, &mut |_, _| {});
    let dt = t1.elapsed().as_secs_f64();
    let total: u64 = s.total_bytes();
    let top = a.retained.iter().max().copied().unwrap_or(0);
    println!(
        "roots, dominator tree and retained sizes: {dt:.2} s ({} roots, {} unrooted parts, \
         largest retained {top} of {total} bytes)",
        a.roots.len(),
        a.unrooted.len()
    );
}
