//! Where `diffbio score`'s time goes: the wall time of each stage (`--timings`).

use std::sync::Mutex;
use std::time::Instant;

use diffbio_metrics::Progress;

/// A [`Progress`] that passes every report on to `inner` and notes when each stage began;
/// a stage lasts until the next one begins (or [`StageTimer::finish`]).
pub struct StageTimer<'a> {
    inner: &'a dyn Progress,
    starts: Mutex<Vec<(&'static str, Instant)>>,
}

impl<'a> StageTimer<'a> {
    /// Times the stages reported through it, passing them on to `inner`.
    pub fn new(inner: &'a dyn Progress) -> Self {
        Self {
            inner,
            starts: Mutex::new(Vec::new()),
        }
    }

    /// Each stage's name and wall time in seconds, in the order they ran.
    pub fn finish(self) -> Vec<(&'static str, f64)> {
        let end = Instant::now();
        let starts = self.starts.into_inner().unwrap_or_else(|e| e.into_inner());
        let ends = starts.iter().skip(1).map(|&(_, t)| t).chain([end]);
        starts
            .iter()
            .zip(ends)
            .map(|(&(name, start), end)| (name, (end - start).as_secs_f64()))
            .collect()
    }
}

impl Progress for StageTimer<'_> {
    fn stage(&self, name: &'static str, total: u64) {
        let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
        starts.push((name, Instant::now()));
        self.inner.stage(name, total);
    }

    fn advance(&self, units: u64) {
        self.inner.advance(units);
    }
}
