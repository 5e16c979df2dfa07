//! Time the analysis after a capture on one thread and on several (best of 3 each): saving to
//! file bytes, loading them, retained sizes, statistics by type, a diff, on a random heap-like
//! graph: `cargo run --release -p refgraph-core --example parallel_10m [-- NODES [THREADS]]`.

use refgraph_core::graph::{flags, Graph, TypeInfo};
use refgraph_core::snapshot::{analysis, diff, file, Snapshot, NO_LEN};
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
    let threads: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let best = |pool: &rayon::ThreadPool, f: &(dyn Fn() -> u64 + Sync)| -> (f64, u64) {
        let mut out = (f64::MAX, 0);
        for _ in 0..3 {
            let t = Instant::now();
            let r = pool.install(f);
            out = (out.0.min(t.elapsed().as_secs_f64()), r);
        }
        out
    };
    let bytes = file::to_bytes(&s);
    println!("file: {:.1} MB", bytes.len() as f64 / 1e6);
    let a = analysis::analyse(&s, &mut |_, _| {});
    for k in [1, threads] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(k)
            .build()
            .expect("a pool");
        type Job<'a> = Box<dyn Fn() -> u64 + Sync + 'a>;
        let rows: Vec<(&str, Job)> = vec![
            ("to_bytes", Box::new(|| file::to_bytes(&s).len() as u64)),
            (
                "from_bytes",
                Box::new(|| file::from_bytes(&bytes).expect("loads").len() as u64),
            ),
            (
                "analyse",
                Box::new(|| analysis::analyse(&s, &mut |_, _| {}).retained[0]),
            ),
            (
                "type_stats",
                Box::new(|| analysis::type_stats(&s, Some(&a)).len() as u64),
            ),
            (
                "diff",
                Box::new(|| diff::diff(&s, &s, Some(&a)).len() as u64),
            ),
        ];
        for (name, f) in rows {
            let (t, r) = best(&pool, &*f);
            println!("{k} thread(s) {name:12} {t:6.2} s  ({r})");
        }
    }
}
