//! The [`Checker`] every section's validation reports to (it collects all problems, each
//! with line, column, field path, the value and what is allowed), and the value parsers the
//! sections share: CPU lists and names.

use serde_saphyr::Spanned;
use sim::SimDuration;

use models::ids::CpuId;

use crate::diagnostic::Diagnostic;
use crate::quantity::{parse_duration, parse_rate};

/// Collects every problem found in a scenario instead of stopping at the first. Each error is
/// anchored at a value's location (its line and column in the file, or in an override) and
/// names the field path; the message says what was found and what is allowed.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// The problems so far, in the order they were found.
    pub(crate) diagnostics: Vec<Diagnostic>,
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

    /// Whether nothing was wrong so far.
    pub(crate) fn is_clean(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// A duration with a unit (`500ns`), or `None` after recording why not.
    pub(crate) fn duration(&mut self, value: &Spanned<String>, path: &str) -> Option<SimDuration> {
        parse_duration(&value.value).map_err(|e| self.error(value, path, e)).ok()
    }

    /// A duration that must not be zero.
    pub(crate) fn positive_duration(&mut self, value: &Spanned<String>, path: &str) -> Option<SimDuration> {
        let d = self.duration(value, path)?;
        if d == SimDuration::ZERO {
            self.error(value, path, format!("`{}` is zero; it must be positive", value.value));
            return None;
        }
        Some(d)
    }

    /// A rate with a unit (`60k/s`).
    pub(crate) fn rate(&mut self, value: &Spanned<String>, path: &str) -> Option<f64> {
        parse_rate(&value.value).map_err(|e| self.error(value, path, e)).ok()
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
