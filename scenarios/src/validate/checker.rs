//! The [`Checker`] every section's validation reports to (it collects all problems, each
//! with line, column, field path, the value and what is allowed), and the value parsers the
//! sections share: CPU lists and names.

use serde_saphyr::Spanned;
use sim::{PS_PER_S, SimDuration};

use models::ids::CpuId;

use crate::diagnostic::Diagnostic;
use crate::quantity::{parse_duration, parse_rate};

/// The longest single latency or cost a scenario may give (1 s): every `msi_write_latency`,
/// handler mean, standard deviation and EOI, CPU, IOMMU, ITS and guest cost.
///
/// Why this bound: the latest time a run can schedule anything is its end (at most
/// [`PERIOD_MAX`], under 2^52 ps) plus one delay, and the longest delay the models compute is a
/// sum of a few costs, some multiplied by a count that validation bounds (the vCPUs on a
/// wake-up list, at most `guests::VCPU_TOTAL_MAX` = 2^20; the IRTEs of one block, at most
/// 2^15; the vectors of one posted-MSI demux pass, at most 256). A cost of at most 1 s
/// (< 2^40 ps) times such a count stays below 2^60 ps, a sum of a handful of them with the
/// end below 2^62 ps, far below `u64::MAX` (about 2^64 ps, 213 days). Service-time samples of
/// exponential and lognormal distributions are capped by `sim::DurationDist` at 2^50 ps.
pub(crate) const COST_MAX: SimDuration = SimDuration::from_ps(PS_PER_S);
/// The longest run `duration` and the longest period (1 hour): on/off burst and silence
/// lengths, a guest's host-burst gap and length, and an action's time (which is at most the
/// run's duration). A period is added to a time at most once per step (the on/off next
/// window is at most `on + off` after the current time), so with [`COST_MAX`] no time
/// exceeds 2^62 ps; an hour of simulated interrupts is far more than any run can process
/// (see the event estimate in `main.rs`).
pub(crate) const PERIOD_MAX: SimDuration = SimDuration::from_ps(3_600 * PS_PER_S);
/// The fastest arrival rate: one per picosecond, the resolution of simulated time (a faster
/// rate's mean gap would be below 1 ps and could not be represented, only clamped).
pub(crate) const RATE_MAX_PER_S: f64 = PS_PER_S as f64;
/// The slowest arrival rate: one per [`PERIOD_MAX`] (a slower one's mean gap would exceed the
/// longest period, and its samples could overflow picosecond time).
pub(crate) const RATE_MIN_PER_S: f64 = 1.0 / 3_600.0;

/// Collects every problem found in a scenario instead of stopping at the first. Each error is
/// anchored at a value's location (its line and column in the file, or in an override) and
/// names the field path; the message says what was found and what is allowed.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// The problems so far, in the order they were found.
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// Fields that are accepted but have no effect, each with why (see [`Checker::ignored`]).
    pub(crate) warnings: Vec<Diagnostic>,
    /// The field paths the overrides set, as written (`platform.iommu.interrupt_remapping`).
    pub(crate) overridden: Vec<String>,
    /// Exit costs from the scenario's `exit_costs_from` file, the fallback of the exit-cost
    /// fields the scenario leaves out.
    pub(crate) file_costs: crate::vmexit::FileCosts,
}

impl Checker {
    /// Records a problem with the value at `at`.
    pub(crate) fn error<T>(&mut self, at: &Spanned<T>, path: impl Into<String>, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            line: at.referenced.line(),
            column: at.referenced.column(),
            path: path.into(),
            message: message.into(),
            from_override: None,
        });
    }

    /// Records a field that is accepted but has no effect.
    pub(crate) fn warn<T>(&mut self, at: &Spanned<T>, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            line: at.referenced.line(),
            column: at.referenced.column(),
            path: path.into(),
            message: message.into(),
            from_override: None,
        });
    }

    /// Whether an override set the field at `path` itself (not only a block around it).
    pub(crate) fn is_overridden(&self, path: &str) -> bool {
        self.overridden.iter().any(|o| o == path)
    }

    /// A field at `at` (`path`) that has no effect because of a switch (`switch`, the
    /// field path of what turned its block off or made it not apply): an error when the
    /// switch is written in the file, so that a contradiction in one file is not run
    /// silently; a warning when an override set the switch, so that a sweep axis that
    /// turns a block off does not make the point invalid because of the block's other
    /// fields. `why` says why it does not apply and what to do.
    pub(crate) fn ignored<T>(&mut self, at: &Spanned<T>, path: impl Into<String>, switch: &str, why: &str) {
        if self.is_overridden(switch) {
            self.warn(at, path, format!("ignored: {why}"));
        } else {
            self.error(at, path, why.to_owned());
        }
    }

    /// Whether nothing was wrong so far.
    pub(crate) fn is_clean(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// A latency or cost with a unit (`500ns`), at most [`COST_MAX`], or `None` after
    /// recording why not.
    pub(crate) fn duration(&mut self, value: &Spanned<String>, path: &str) -> Option<SimDuration> {
        self.duration_within(value, path, COST_MAX, "a single latency or cost")
    }

    /// A latency or cost that must not be zero.
    pub(crate) fn positive_duration(&mut self, value: &Spanned<String>, path: &str) -> Option<SimDuration> {
        let d = self.duration(value, path)?;
        self.nonzero(value, path, d)
    }

    /// A run length or period (`on`, `off`, host bursts, an action's time), at most
    /// [`PERIOD_MAX`].
    pub(crate) fn period(&mut self, value: &Spanned<String>, path: &str) -> Option<SimDuration> {
        self.duration_within(value, path, PERIOD_MAX, "a run or period")
    }

    /// A period that must not be zero.
    pub(crate) fn positive_period(&mut self, value: &Spanned<String>, path: &str) -> Option<SimDuration> {
        let d = self.period(value, path)?;
        self.nonzero(value, path, d)
    }

    /// A duration at most `max`; `what` names the kind of quantity in the message.
    fn duration_within(
        &mut self,
        value: &Spanned<String>,
        path: &str,
        max: SimDuration,
        what: &str,
    ) -> Option<SimDuration> {
        let d = parse_duration(&value.value).map_err(|e| self.error(value, path, e)).ok()?;
        if d > max {
            self.error(
                value,
                path,
                format!(
                    "`{}` exceeds {max}, the longest {what}; allowed 0 to {max} (longer values could overflow the run's picosecond clock)",
                    value.value
                ),
            );
            return None;
        }
        Some(d)
    }

    /// `d`, or `None` after recording that it is zero.
    fn nonzero(&mut self, value: &Spanned<String>, path: &str, d: SimDuration) -> Option<SimDuration> {
        if d == SimDuration::ZERO {
            self.error(value, path, format!("`{}` is zero; it must be positive", value.value));
            return None;
        }
        Some(d)
    }

    /// A rate with a unit (`60k/s`), between [`RATE_MIN_PER_S`] and [`RATE_MAX_PER_S`].
    pub(crate) fn rate(&mut self, value: &Spanned<String>, path: &str) -> Option<f64> {
        let rate = parse_rate(&value.value).map_err(|e| self.error(value, path, e)).ok()?;
        if rate > RATE_MAX_PER_S {
            let message = format!(
                "`{}` is faster than one per picosecond (1000G/s), the resolution of simulated time: its mean gap would be below 1ps; allowed 1/3600 /s to 1000G/s",
                value.value
            );
            self.error(value, path, message);
            return None;
        }
        if rate < RATE_MIN_PER_S {
            let message = format!(
                "`{}` is slower than one per hour: its mean gap would exceed {PERIOD_MAX}, the longest period; allowed 1/3600 /s to 1000G/s",
                value.value
            );
            self.error(value, path, message);
            return None;
        }
        Some(rate)
    }

    /// Checks a name (of the scenario, a device or a guest); false after recording why not.
    pub(crate) fn name(&mut self, name: &Spanned<String>, path: impl Into<String>) -> bool {
        let valid = is_valid_name(&name.value);
        if !valid {
            self.error(
                name,
                path,
                format!("`{}` is not a valid name; use 1 to 64 of a-z, 0-9, '-' and '_'", name.value),
            );
        }
        valid
    }
}

/// Parses a CPU list such as `0-7,16,32-47` (the kernel's cpulist format) or `all`.
pub(crate) fn parse_cpu_list(text: &str, cpu_count: u32) -> Result<Vec<CpuId>, String> {
    let text = text.trim();
    if text == "all" {
        return Ok((0..cpu_count).map(CpuId).collect());
    }
    let allowed = format!("a CPU list of CPUs 0 to {} like `0-7,16`, or `all`", cpu_count - 1);
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u32>(), hi.trim().parse::<u32>()) else {
            return Err(format!("`{text}` is not {allowed}"));
        };
        if lo > hi {
            return Err(format!("`{part}` in `{text}` is a backwards range; expected {allowed}"));
        }
        if hi >= cpu_count {
            return Err(format!(
                "CPU {hi} in `{text}` does not exist; the platform has {cpu_count} CPUs (0 to {})",
                cpu_count - 1
            ));
        }
        cpus.extend((lo..=hi).map(CpuId));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// 1 to 64 of a-z, 0-9, '-' and '_'.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let ids = |v: Vec<CpuId>| v.into_iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(ids(parse_cpu_list("0-3,8", 16).unwrap()), [0, 1, 2, 3, 8]);
        assert_eq!(ids(parse_cpu_list("all", 3).unwrap()), [0, 1, 2]);
        assert_eq!(ids(parse_cpu_list("3,1,1", 4).unwrap()), [1, 3]);
        assert!(parse_cpu_list("0-16", 16).unwrap_err().contains("CPU 16"));
        assert!(parse_cpu_list("5-2", 16).unwrap_err().contains("backwards"));
        assert!(parse_cpu_list("x", 16).unwrap_err().contains("CPU list"));
    }

    #[test]
    fn names() {
        assert!(is_valid_name("nvme-0_a"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("Bad Name"));
        assert!(!is_valid_name(&"a".repeat(65)));
    }
}
