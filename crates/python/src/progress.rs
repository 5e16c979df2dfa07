//! Progress of a capture reported to a Python callable as `progress(phase, done, total)`.
//!
//! The callable is Python code run in the middle of a capture: it may change or free any
//! object the capture does not hold. Callers call [`Reporter::tick`] only where everything they
//! go on to use is held by the capture, and drop what they cached by address of something not
//! held (type caches keyed by type pointer) when it returns true.

use pyo3::prelude::*;

/// Calls the callable about once per percent of each phase (never when there is none), or
/// in fewer steps for a phase that asks for them.
pub struct Reporter<'py> {
    callable: Option<Bound<'py, PyAny>>,
    /// `done` at or above which the next call is due.
    next_at: u64,
    /// Calls per phase, about (100 unless [`Reporter::fewer_steps`] was called for it).
    steps: u64,
}

impl<'py> Reporter<'py> {
    pub fn new(callable: Option<Bound<'py, PyAny>>) -> Self {
        Reporter {
            callable,
            next_at: u64::MAX,
            steps: 100,
        }
    }

    /// Report the next phase in about `steps` calls instead of a hundred (until it ends).
    pub fn fewer_steps(&mut self, steps: u64) {
        self.steps = steps.clamp(1, 100);
    }

    /// True when there is a callable to report to.
    pub fn active(&self) -> bool {
        self.callable.is_some()
    }

    /// True when [`Reporter::tick`] at `done` would call the callable.
    #[inline]
    pub fn due(&self, done: u64) -> bool {
        done >= self.next_at
    }

    /// Report the start of a phase (`done` 0).
    pub fn start(&mut self, phase: &str, total: u64) -> PyResult<()> {
        self.call(phase, 0, total)
    }

    /// Report `done` of `total` if a percent passed since the last report. True if the callable
    /// ran (Python code ran: see the module's documentation). An exception it raised is
    /// returned.
    #[inline]
    pub fn tick(&mut self, phase: &str, done: u64, total: u64) -> PyResult<bool> {
        if done < self.next_at {
            return Ok(false);
        }
        self.call(phase, done.min(total), total)?;
        Ok(true)
    }

    /// Report the end of a phase (`done == total`).
    pub fn end(&mut self, phase: &str, total: u64) -> PyResult<()> {
        self.call(phase, total, total)?;
        self.next_at = u64::MAX;
        self.steps = 100;
        Ok(())
    }

    fn call(&mut self, phase: &str, done: u64, total: u64) -> PyResult<()> {
        if let Some(f) = &self.callable {
            f.call1((phase, done, total))?;
            self.next_at = done.saturating_add((total / self.steps).max(1));
        }
        Ok(())
    }
}
