//! Worker threads for the analysis after a capture (saving, loading, retained sizes, diffs).
//!
//! Parallel work runs on a rayon pool: the pool of the calling thread when it already is a
//! rayon worker (a caller's own `ThreadPool::install`, which is how the tests compare one
//! thread with several), otherwise refgraph's own pool, made on first use with
//! `REFGRAPH_THREADS` threads (default: the number of cores the process may use). The pool is
//! per process: a child made by `fork()` (whose copy of the parent's pool has no threads) makes
//! its own. Results never depend on the number of threads: work is split into pieces whose
//! bounds depend only on the data, and pieces are combined in order.

use std::sync::{Arc, Mutex};

/// The environment variable that sets the number of threads (a positive integer).
pub const ENV: &str = "REFGRAPH_THREADS";

/// The number of threads refgraph's pool has (or will have when first used): `REFGRAPH_THREADS`
/// when it is a positive integer, else the number of cores available to the process.
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

struct Pool {
    pid: u32,
    threads: usize,
    pool: Arc<rayon::ThreadPool>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// refgraph's pool for this process, made (again) when first used, after a `fork()`, or when
/// `REFGRAPH_THREADS` changed.
fn pool() -> Option<Arc<rayon::ThreadPool>> {
    let pid = std::process::id();
    let threads = configured();
    let mut slot = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = slot.as_ref() {
        if p.pid == pid && p.threads == threads {
            return Some(p.pool.clone());
        }
    }
    if let Some(old) = slot.take() {
        if old.pid != pid {
            // The parent's pool: its threads do not exist here, so dropping it could wait for
            // them. Leak it (one small allocation per fork that uses refgraph).
            std::mem::forget(old);
        }
    }
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("refgraph-{i}"))
        .build()
        .ok()?;
    let pool = Arc::new(built);
    *slot = Some(Pool {
        pid,
        threads,
        pool: pool.clone(),
    });
    Some(pool)
}

/// Run `f`, whose parallel iterators and joins then use the calling worker's pool or
/// refgraph's own (see the module). If no pool can be made (threads refused), `f` runs on the
/// calling thread, on rayon's global pool.
pub fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    match pool() {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// The number of threads [`run`] would use from here.
pub fn current() -> usize {
    if rayon::current_thread_index().is_some() {
        rayon::current_num_threads()
    } else {
        configured()
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
        // Outside any pool: refgraph's own, with the configured count.
        assert_eq!(run(rayon::current_num_threads), configured());
    }
}
