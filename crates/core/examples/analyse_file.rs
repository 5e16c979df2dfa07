//! Time loading a snapshot file and its retention analysis, with the peak resident memory
//! after each step: `cargo run --release -p refgraph-core --example analyse_file -- FILE`.
//! The analysis' progress marks its steps (DFS, predecessor lists, semi-dominators, immediate
//! dominators, the rest).

use refgraph_core::snapshot::{analysis, file};
use std::time::Instant;

/// Resident and peak resident memory in MB (Linux; 0 elsewhere).
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let path = std::env::args().nth(1).expect("a snapshot file");
    let t0 = Instant::now();
    let s = file::load(std::path::Path::new(&path)).expect("load");
    let (rss, peak) = memory();
    println!(
        "load      {:6.2} s  rss {rss} MB, peak {peak} MB",
        t0.elapsed().as_secs_f64()
    );
    let t1 = Instant::now();
    let mut step = 0;
    let a = analysis::analyse(&s, &mut |d, t| {
        // The steps' ends: 9/10 of 1/8 (the DFS), 1/4 (predecessor lists), 3/4
        // (semi-dominators) and 1 (immediate dominators: the tree), then the rest.
        let marks = [t * 9 / 80, t * 9 / 40, t * 27 / 40, t * 9 / 10, t];
        while step < marks.len() && d >= marks[step] {
            let (rss, peak) = memory();
            let t = t1.elapsed().as_secs_f64();
            println!(
                "  step {} at {t:6.2} s  rss {rss} MB, peak {peak} MB",
                step + 1
            );
            step += 1;
        }
    });
    println!("analyse   {:6.2} s", t1.elapsed().as_secs_f64());
    let t2 = Instant::now();
    let rows = analysis::type_stats(&s, Some(&a));
    println!(
        "typestats {:6.2} s  ({} rows)",
        t2.elapsed().as_secs_f64(),
        rows.len()
    );
}
