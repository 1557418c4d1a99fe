//! Progress on standard error: of a sweep's runs, or of a single run's simulated time. A
//! bar with the ETA on a terminal (indicatif), and, when standard error is not a terminal
//! (CI logs, batch jobs), a plain line at every tenth of the runs or every 30 seconds,
//! whichever comes first (a single run: every 30 seconds, so a short one says nothing).

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain line is printed at least.
const LINE_EVERY: Duration = Duration::from_secs(30);
/// How long a single run goes before its bar appears.
const BAR_AFTER: Duration = Duration::from_secs(2);

/// The progress of `total` runs.
#[derive(Debug)]
pub struct Progress {
    total: u64,
    bar: Option<ProgressBar>,
    /// Plain lines: runs done (this process), when the last line was printed, the last
    /// tenth reported; and a single run's bar, once it has taken a while.
    plain: Mutex<(u64, Instant, u64, Option<ProgressBar>)>,
    started: Instant,
    /// Runs finished before (a resumed sweep).
    before: u64,
    /// Runs to report on (0 when quiet).
    todo: u64,
    /// Say nothing.
    quiet: bool,
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
        Self {
            total,
            bar,
            plain: Mutex::new((0, Instant::now(), 0, None)),
            started: Instant::now(),
            before,
            todo,
            quiet,
        }
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

    /// A single run has done `fraction` of its simulated time (only when there is exactly
    /// one run to do).
    pub fn run_fraction(&self, fraction: f64) {
        if self.quiet || self.total.saturating_sub(self.before) != 1 {
            return;
        }
        let elapsed = self.started.elapsed();
        let mut plain = self.plain.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // The bar appears only once the run has taken a while: a short run shows nothing.
        if std::io::stderr().is_terminal() {
            if elapsed >= BAR_AFTER {
                let bar = plain.3.get_or_insert_with(|| {
                    let bar = ProgressBar::new(1000);
                    let style = ProgressStyle::with_template(
                        "{bar:40} {percent}% of simulated time, {elapsed} elapsed, ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style);
                    bar
                });
                bar.set_position((fraction * 1000.0) as u64);
            }
        } else if plain.1.elapsed() >= LINE_EVERY && fraction < 1.0 {
            plain.1 = Instant::now();
            let eta = elapsed.as_secs_f64() / fraction * (1.0 - fraction);
            eprintln!(
                "irqsim: {:.0}% of the simulated time done, {:.1} s elapsed, about {eta:.0} s to go",
                fraction * 100.0,
                elapsed.as_secs_f64()
            );
        }
    }

    /// Clears the bars.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let plain = self.plain.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bar) = &plain.3 {
            bar.finish_and_clear();
        }
    }
}
