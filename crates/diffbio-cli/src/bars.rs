//! `diffbio score`'s progress on a terminal.

use diffbio_metrics::Progress;

/// Progress drawn on stderr: a bar per stage with its count, rate and time left. Nothing is
/// drawn when stderr is not a terminal (indicatif's stderr target hides itself there).
pub struct Bars {
    current: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            current: std::sync::Mutex::new(None),
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for Bars {
    fn stage(&self, name: &'static str, total: u64) {
        let style = indicatif::ProgressStyle::with_template(
            "{msg:40} {bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}]",
        )
        .expect("a valid template");
        let bar = indicatif::ProgressBar::new(total)
            .with_style(style)
            .with_message(name);
        // Drawn now and twice a second, not only when a unit of work completes (the first
        // round of the all-pairs pass takes seconds at 10⁶ cells).
        bar.enable_steady_tick(std::time::Duration::from_millis(500));
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = current.replace(bar) {
            done.finish();
        }
    }

    fn advance(&self, units: u64) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = current.as_ref() {
            bar.inc(units);
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some(bar) = self.current.get_mut().ok().and_then(|b| b.take()) {
            bar.finish_and_clear();
        }
    }
}
