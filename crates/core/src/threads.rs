//! How many threads refgraph's own work may use: `REFGRAPH_THREADS` (a number ≥ 1) or, when
//! unset or not a number, the cores this process may run on. `REFGRAPH_THREADS=1` does
//! everything on the calling thread; results are the same either way.

/// The number of threads to use (at least 1), read from the environment at each call.
pub fn count() -> usize {
    match std::env::var("REFGRAPH_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        Some(n) if n >= 1 => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}
