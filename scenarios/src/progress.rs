//! Progress of a sweep on standard error: a bar with the ETA on a terminal (indicatif),
//! and, when standard error is not a terminal (CI logs, batch jobs), a plain line at every
//! tenth of the runs or every 30 seconds, whichever comes first.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain line is printed at least.
const LINE_EVERY: Duration = Duration::from_secs(30);

/// The progress of `total` runs.
#[derive(Debug)]
pub struct Progress {
    total: u64,
    bar: Option<ProgressBar>,
    /// Plain lines: runs done (this process), when the last line was printed, and the last
    /// tenth reported.
    plain: Mutex<(u64, Instant, u64)>,
    started: Instant,
    /// Runs finished before (a resumed sweep).
    before: u64,
    /// Runs to report on (0 when quiet).
    todo: u64,
}

impl Progress {
    /// Shows the progress of `total` runs of which `before` were finished earlier; nothing
    /// for a single run, nor when `quiet`.
    pub fn new(total: u64, before: u64, quiet: bool) -> Self {
        let todo = if quiet { 0 } else { total.saturating_sub(before) };
        let terminal = std::io::stderr().is_terminal();
        let bar = (terminal && todo > 1).then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} elapsed, ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_position(before);
            bar
        });
        Self { total, bar, plain: Mutex::new((0, Instant::now(), 0)), started: Instant::now(), before, todo }
    }

    /// One more run finished.
    pub fn tick(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            return;
        }
        let todo = self.todo;
        if todo <= 1 {
            return;
        }
        let mut plain = self.plain.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        plain.0 += 1;
        let done = plain.0;
        let tenth = done * 10 / todo;
        if tenth > plain.2 || plain.1.elapsed() >= LINE_EVERY {
            plain.1 = Instant::now();
            plain.2 = tenth;
            let elapsed = self.started.elapsed().as_secs_f64();
            let eta = elapsed / done as f64 * (todo - done) as f64;
            eprintln!(
                "irqsim: {}/{} runs done ({:.0}%), {elapsed:.1} s elapsed, about {eta:.0} s to go",
                self.before + done,
                self.total,
                100.0 * (self.before + done) as f64 / self.total as f64
            );
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
