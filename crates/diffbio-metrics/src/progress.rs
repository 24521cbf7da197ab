//! Progress reports of long computations.

/// What a long computation reports as it goes, stage by stage: `diffbio score` draws it on
/// stderr. Calls come from the computing thread, between parallel rounds of work.
pub trait Progress: Sync {
    /// A stage begins, with `total` units of work (tiles of the all-pairs pass, or 1).
    fn stage(&self, name: &'static str, total: u64);
    /// `units` more units of the current stage are done.
    fn advance(&self, units: u64);
}

/// No reports: what the functions without a `progress` argument use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// Runs `f` as a one-unit stage of `progress`.
pub(crate) fn step<R>(progress: &dyn Progress, name: &'static str, f: impl FnOnce() -> R) -> R {
    progress.stage(name, 1);
    let result = f();
    progress.advance(1);
    result
}
