//! Worker threads for the analysis after a capture (saving, loading, retained sizes, diffs).
//!
//! Parallel work runs on a rayon pool: the pool of the calling thread when it already is a
//! rayon worker (a caller's own `ThreadPool::install`, which is how the tests compare one
//! thread with several), otherwise a pool made for the call with `REFGRAPH_THREADS` threads
//! (default: the number of cores the process may use) and joined before the call returns, so
//! that refgraph leaves no thread behind (nothing survives into a `fork()` child, nothing stays
//! in a process `refgraph attach` snapshots). Small inputs run on the calling thread. Results
//! never depend on the number of threads: work is split into pieces whose bounds depend only on
//! the data, and pieces are combined in order.

/// The environment variable that sets the number of threads (a positive integer).
pub const ENV: &str = "REFGRAPH_THREADS";

/// The number of threads [`run`] uses outside a pool: `REFGRAPH_THREADS` when it is a positive
/// integer, else the number of cores available to the process (at most 256).
pub fn configured() -> usize {
    std::env::var(ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .min(256)
}

/// Run `f`, whose parallel iterators and joins then use the calling worker's pool, or else a
/// pool of [`configured`] threads made for this call and joined before it returns: no thread
/// outlives a call (a process that forks, or a target of `refgraph attach`, is left without
/// refgraph's threads). If threads cannot be made, `f` runs on a pool of one, else on rayon's
/// global pool.
pub fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    run_on(configured(), f)
}

/// Run `f` on a pool of `threads` threads made for this call (see [`run`]): a capture's second
/// thread packs columns on a pool of one while the capture goes on on the first.
pub fn run_on<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    let mut f = Some(f);
    for threads in [threads.max(1), 1] {
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("refgraph-{i}"))
            .build_scoped(
                |t| t.run(),
                |pool| pool.install(|| f.take().expect("run once")()),
            );
        if let Ok(r) = built {
            return r;
        }
    }
    f.take().expect("not run yet")()
}

/// The number of threads refgraph's own work may use ([`configured`]): the capture looks
/// addresses up on a second thread when this is above 1.
pub fn count() -> usize {
    configured()
}

/// The number of threads [`run`] would use from here.
pub fn current() -> usize {
    if rayon::current_thread_index().is_some() {
        rayon::current_num_threads()
    } else {
        configured()
    }
}

/// How many tasks to split `n` items of work into: one (no thread at all) below `serial_below`.
pub fn tasks_for(n: usize, serial_below: usize) -> usize {
    if n < serial_below {
        1
    } else {
        current().clamp(1, 64)
    }
}

/// As [`tasks_for`], for work split by ranges of targets where every task reads all of the
/// input (the referrer index): with fewer than 4 threads that repeated reading costs more
/// than the threads bring (measured on 2 cores: retained sizes at 10M objects, when their
/// predecessor lists were made so, took 2.1-2.2 s on 2 threads against 1.8 s on one), so it
/// stays on one thread.
pub fn range_tasks_for(n: usize, serial_below: usize) -> usize {
    match tasks_for(n, serial_below) {
        t if t >= 4 => t,
        _ => 1,
    }
}

/// `f` on each part, in parallel when there are several (see [`run`]); on the calling thread
/// when there is one.
pub fn for_each_part<P: Send>(parts: Vec<P>, f: impl Fn(P) + Sync + Send) {
    if parts.len() <= 1 {
        parts.into_iter().for_each(f);
        return;
    }
    run(|| {
        use rayon::prelude::*;
        parts.into_par_iter().for_each(f)
    })
}

/// The sum of `map(i)` for `i` in `0..pieces` by `add` (which must be associative and
/// commutative, like integer sums); on the calling thread when there is one piece.
pub fn map_reduce<T: Send>(
    pieces: usize,
    map: impl Fn(usize) -> T + Sync + Send,
    zero: impl Fn() -> T + Sync + Send,
    add: impl Fn(T, T) -> T + Sync + Send,
) -> T {
    match pieces {
        0 => zero(),
        1 => map(0),
        _ => run(|| {
            use rayon::prelude::*;
            (0..pieces).into_par_iter().map(&map).reduce(&zero, &add)
        }),
    }
}

/// Test helper: run `f` on a fresh pool of `n` threads.
#[cfg(test)]
pub(crate) fn with_threads<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("a test pool")
        .install(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_uses_the_callers_pool() {
        assert_eq!(with_threads(3, || run(current)), 3);
        assert_eq!(with_threads(1, || run(rayon::current_num_threads)), 1);
        // Outside any pool: one made for the call, with the configured count, gone after it.
        assert_eq!(run(rayon::current_num_threads), configured());
        assert_eq!(rayon::current_thread_index(), None);
        assert_eq!(map_reduce(5, |i| i as u64, || 0, |a, b| a + b), 10);
        assert_eq!(map_reduce(1, |_| 7u64, || 0, |a, b| a + b), 7);
    }
}
