//! The report as a mail to a mailing list ([`email`]): plain text, every line at most 72
//! columns but the reproduce command (never broken), tables in ASCII. A subject-like first
//! line, the key table (the sweep's cells and variant differences, or one run's stages), an
//! ASCII histogram of end_to_end latency, the verdicts as kvm-unit-tests prints them, and a
//! footer that says exactly what ran and how to run it again.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::plain::{MAIL_WIDTH, Table, fit_mail, fmt_ns_short, wrap};
use crate::schema::{PointReport, RunReport};

/// Rows of the histogram at most: quarter-octave buckets are merged until they fit.
const HISTOGRAM_ROWS_MAX: usize = 12;
/// The longest bar, in characters.
const BAR_MAX: usize = 40;

/// Quarter-octave multipliers 2^(j/4) × 10^6, as the engine rounds them (sim's
/// `quarter_octave_bounds_ps`).
const QUARTER_OCTAVE: [u128; 4] = [1_000_000, 1_189_207, 1_414_214, 1_681_793];

/// The upper bound of quarter-octave bucket `k`, in nanoseconds: 1 ns × 2^(k/4) rounded to
/// the picosecond, in integers exactly as the engine draws it; 0 below bucket 0.
fn bound_ns(k: i64) -> f64 {
    let Ok(k) = u32::try_from(k) else { return 0.0 };
    ((QUARTER_OCTAVE[(k % 4) as usize] << (k / 4)) / 1_000) as f64 / 1_000.0
}

/// The bucket whose upper bound is `le_ns` (2^(k/4) ns).
fn bucket_index(le_ns: f64) -> i64 {
    if le_ns <= 1.0 { 0 } else { (4.0 * le_ns.log2()).round() as i64 }
}

/// The end_to_end histograms of `runs` added up, by bucket index.
fn pooled(runs: &[&PointReport]) -> BTreeMap<i64, u64> {
    let mut counts = BTreeMap::new();
    for p in runs {
        for st in p.stages.iter().filter(|st| st.stage == "end_to_end") {
            for b in &st.histogram {
                *counts.entry(bucket_index(b.le_ns)).or_insert(0) += b.count;
            }
        }
    }
    counts
}

/// How wide a row of `step` quarter octaves is, in words.
fn row_width(step: i64) -> String {
    match step {
        1 => "a quarter octave".into(),
        2 => "half an octave".into(),
        4 => "an octave".into(),
        _ => format!("{} octaves", step / 4),
    }
}

/// An ASCII histogram of `counts` (by quarter-octave bucket) under `title`: at most
/// [`HISTOGRAM_ROWS_MAX`] rows, each a range of latency (merged quarter octaves, so that
/// row bounds are bucket bounds), its count, the cumulative share, a bar of `#` (`.` for a
/// count too small for one), and which of p50, p99 and p99.9 fall in the row. Empty
/// without samples.
pub(crate) fn histogram(title: &str, counts: &BTreeMap<i64, u64>) -> String {
    let (Some((&first, _)), Some((&last, _))) = (counts.first_key_value(), counts.last_key_value()) else {
        return String::new();
    };
    let total: u64 = counts.values().sum();
    if total == 0 {
        return String::new();
    }
    // Row g holds buckets (g-1)·step < k ≤ g·step, so its upper bound is bucket g·step's.
    let group = |k: i64, step: i64| (k + step - 1).div_euclid(step);
    let mut step = 1;
    while group(last, step) - group(first, step) + 1 > HISTOGRAM_ROWS_MAX as i64 {
        step *= 2;
    }
    let (g0, g1) = (group(first, step), group(last, step));
    let mut rows: Vec<(f64, f64, u64)> = (g0..=g1).map(|g| (bound_ns((g - 1) * step), bound_ns(g * step), 0)).collect();
    for (&k, &n) in counts {
        rows[(group(k, step) - g0) as usize].2 += n;
    }
    let most = rows.iter().map(|r| r.2).max().unwrap_or(1).max(1);
    // The text columns first (range, count, cumulative share, marks), so that the bars
    // get what is left of the width.
    let mut cum = 0u64;
    let mut text: Vec<[String; 4]> = Vec::new();
    let mut marks_left = vec![(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")];
    for &(lo, hi, n) in &rows {
        cum += n;
        let share = cum as f64 / total as f64;
        let range = if lo == 0.0 {
            format!("<={}", fmt_ns_short(hi))
        } else {
            format!("{}-{}", fmt_ns_short(lo), fmt_ns_short(hi))
        };
        // Rounded down, so that only the last row says 100%.
        let pct = 100.0 * share;
        let pct = if pct >= 99.0 {
            format!("{:.2}%", (pct * 100.0).floor() / 100.0)
        } else {
            format!("{:.1}%", (pct * 10.0).floor() / 10.0)
        };
        let marks: Vec<&str> = marks_left.iter().filter(|(q, _)| share >= *q).map(|(_, m)| *m).collect();
        marks_left.retain(|(q, _)| share < *q);
        text.push([range, n.to_string(), pct, marks.join(" ")]);
    }
    let width = |i: usize, least: usize| text.iter().map(|t| t[i].chars().count()).max().unwrap_or(0).max(least);
    let used = width(0, "range".len()) + width(1, "count".len()) + width(2, "cum".len()) + width(3, 0) + 4 * 2;
    let bar_max = MAIL_WIDTH.saturating_sub(used).clamp(1, BAR_MAX);
    let mut table =
        Table::new(["range", "count", "cum", "", ""].map(str::to_owned).to_vec(), vec![true, true, true, false, false]);
    for ([range, n, pct, marks], &(_, _, count)) in text.into_iter().zip(&rows) {
        let len = (count as f64 / most as f64 * bar_max as f64).round() as usize;
        let bar = if len == 0 && count > 0 { ".".to_owned() } else { "#".repeat(len) };
        table.row(vec![range, n, pct, bar, marks]);
    }
    let mut s = wrap(&format!("{title}: {total} samples, rows {} wide:", row_width(step)), MAIL_WIDTH, "");
    s.push_str(&table.render_or_records(MAIL_WIDTH));
    s
}

/// `first..last (n)` for many values, else all of them.
fn values_short(values: &[String]) -> String {
    match values {
        [first, .., last] if values.len() > 3 => format!("{first}..{last} ({})", values.len()),
        _ => values.join(", "),
    }
}

/// The subject-like first line: the scenario and what was swept, as much of it as fits.
fn subject(report: &RunReport) -> String {
    let name = &report.scenario.name;
    let Some(sweep) = &report.sweep else {
        return fit(format!("irqsim {name}: one run, seed {}", report.seed));
    };
    let r = sweep.replications;
    let reps = format!("{r} replication{}", if r == 1 { "" } else { "s" });
    let variants = match sweep.variants.as_slice() {
        [] => None,
        [one] => Some(format!("variant {}", one.name)),
        [a, b] => Some(format!("{} vs {}", a.name, b.name)),
        [a, b, c] => Some(format!("{} vs {} vs {}", a.name, b.name, c.name)),
        many => Some(format!("{} variants", many.len())),
    };
    let short = crate::sweep::axis_headers(sweep);
    let range = |a: &crate::AxisInfo| match a.values.as_slice() {
        [first, .., last] => format!("{first}..{last}"),
        _ => a.values.join(", "),
    };
    let styles: [Vec<String>; 4] = [
        sweep.axes.iter().map(|a| format!("{} in {}", a.path, values_short(&a.values))).collect(),
        sweep.axes.iter().zip(&short).map(|(a, h)| format!("{h} in {}", values_short(&a.values))).collect(),
        sweep.axes.iter().zip(&short).map(|(a, h)| format!("{h} {}", range(a))).collect(),
        vec![format!("{} axes, {} points", sweep.axes.len(), sweep.point_count)],
    ];
    for axes in styles {
        let mut parts = Vec::new();
        if !sweep.axes.is_empty() {
            parts.push(axes.join(" x "));
        }
        parts.extend(variants.clone());
        parts.push(reps.clone());
        let body = parts.join("; ");
        for line in [format!("irqsim {name}: {body}"), format!("{name}: {body}")] {
            if line.chars().count() <= MAIL_WIDTH {
                return line;
            }
        }
    }
    fit(format!("irqsim {name}: a sweep of {} runs", report.points.len()))
}

/// `line` cut to the mail width with `...` when longer.
fn fit(line: String) -> String {
    if line.chars().count() <= MAIL_WIDTH {
        return line;
    }
    let cut: String = line.chars().take(MAIL_WIDTH - 3).collect();
    format!("{cut}...")
}

/// The histogram of a sweep's first cell (the first point in the baseline variant), its
/// replications pooled.
fn sweep_histogram(report: &RunReport) -> String {
    let cells = crate::stats::cells(report);
    let Some(cell) = cells.first() else { return String::new() };
    let mut title = format!("end_to_end latency at point {}", cell.index);
    if !cell.parameters.is_empty() {
        let _ = write!(title, " ({})", cell.label());
    }
    if let Some(v) = cell.variant {
        let _ = write!(title, " in {v}");
    }
    let n = cell.runs.len();
    if n > 1 {
        let _ = write!(title, ", its {n} runs pooled");
    }
    histogram(&title, &pooled(&cell.runs))
}

/// The report as a mail: plain text, every line at most 72 columns (characters) but the
/// reproduce line, which is a command and never broken. `version_line` names the irqsim
/// that renders it (`irqsim 0.1.0 (commit abc1234)`); the report's own version is added
/// when it differs.
///
/// In order: a subject-like line (the scenario and what was swept), the description; for a
/// sweep, its axes, variants and seeds, the table of cells (end_to_end p50, p99, p99.9 as
/// mean ± 95% half width, raised per second, lost, failures), each variant against the
/// baseline (paired by replication), the warnings and failures of all runs, and the
/// histogram of the first cell; for one run, its stage table, resources and failures and
/// its histogram; then the verdicts (`PASS: …`, `FAIL: …`, `SUMMARY: n tests, m failed`)
/// and the footer: version, scenario and its sha256, seed and the reproduce command.
pub fn email(report: &RunReport, version_line: &str) -> String {
    let mut s = subject(report);
    s.push('\n');
    let sc = &report.scenario;
    if !sc.description.trim().is_empty() {
        s.push('\n');
        s.push_str(&wrap(sc.description.trim(), MAIL_WIDTH, ""));
    }
    let histogram = if let Some(sweep) = &report.sweep {
        let _ =
            write!(s, "\n{}\n{}", crate::sweep::text_overview(report, sweep), crate::sweep::text_tables(report, sweep));
        let notes = crate::sweep::text_notes(report, sweep);
        if !notes.is_empty() {
            let _ = write!(s, "\n{notes}");
        }
        s.push_str(&crate::replicated::text(report, sweep));
        sweep_histogram(report)
    } else {
        for p in &report.points {
            crate::render::text_point(&mut s, p, &crate::render::point_title(p), false);
        }
        report.points.first().map_or_else(String::new, |p| histogram("end_to_end latency", &pooled(&[p])))
    };
    if !histogram.is_empty() {
        let _ = write!(s, "\n{histogram}");
    }
    s.push_str(&crate::verdicts::text(report));

    s.push('\n');
    s.push_str(&wrap(version_line, MAIL_WIDTH, "  "));
    if !version_line.contains(&report.irqsim_version) {
        s.push_str(&wrap(&format!("(the report was written by irqsim {})", report.irqsim_version), MAIL_WIDTH, "  "));
    }
    // A source path too long for a line is in the reproduce line anyway.
    let from = format!("scenario {} from {}", sc.name, sc.source);
    let from = if from.chars().count() <= MAIL_WIDTH { from } else { format!("scenario {}", sc.name) };
    s.push_str(&wrap(&from, MAIL_WIDTH, "  "));
    let _ = writeln!(s, "sha256 {}", sc.sha256);
    if report.sweep.is_some() {
        let _ = writeln!(s, "seed {} (the replications' seeds derive from it)", report.seed);
    } else {
        let _ = writeln!(s, "seed {}", report.seed);
    }
    // The reproduce line is a command: never broken, whatever its length.
    let _ = writeln!(s, "reproduce: {}", report.reproduce);
    // A word longer than a line (a path in a warning) is all that can be left too wide.
    fit_mail(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_are_the_engines() {
        // The bounds the engine wrote in a report: 2^(39/4) ns and 2^10 ns.
        assert_eq!(bound_ns(39), 861.078);
        assert_eq!(bound_ns(40), 1024.0);
        assert_eq!(bound_ns(41), 1217.747);
        assert_eq!(bound_ns(0), 1.0);
        assert_eq!(bound_ns(-1), 0.0);
        for k in [0, 1, 39, 40, 41, 75, 120] {
            assert_eq!(bucket_index(bound_ns(k)), k);
        }
        assert_eq!(bucket_index(0.5), 0);
    }

    #[test]
    fn histogram_rows_merge_buckets_and_mark_the_percentiles() {
        // Buckets 40..=43, (861ns, 1.722us], and 48, (3.444us, 4.096us]: 9 rows of a
        // quarter octave, the empty ones shown; p99 and p99.9 both in the fourth row
        // (999 of 1000 samples at or below 1.722us).
        let counts: BTreeMap<i64, u64> = [(40, 10), (41, 500), (42, 400), (43, 89), (48, 1)].into();
        let expected = "\
t: 1000 samples, rows a quarter octave wide:
          range  count      cum
861.1ns-1.024us     10     1.0%  #
1.024us-1.218us    500    51.0%  ############################  p50
1.218us-1.448us    400    91.0%  ######################
1.448us-1.722us     89   99.90%  #####                         p99 p99.9
1.722us-2.048us      0   99.90%
2.048us-2.435us      0   99.90%
2.435us-2.896us      0   99.90%
2.896us-3.444us      0   99.90%
3.444us-4.096us      1  100.00%  .
";
        assert_eq!(histogram("t", &counts), expected);
        // 61 quarter octaves merge into rows of 2 octaves (8 buckets) whose bounds are
        // powers of 4 ns; bucket 0 (everything up to 1 ns) is a row of its own.
        let wide: BTreeMap<i64, u64> = (0..=60).map(|k| (k, 1)).collect();
        let h = histogram("w", &wide);
        assert!(h.starts_with("w: 61 samples, rows 2 octaves wide:\n"), "{h}");
        assert_eq!(h.lines().count(), 2 + 9, "{h}");
        assert!(h.lines().nth(2).unwrap().starts_with("        <=1.0ns      1"), "{h}");
        assert!(h.lines().nth(3).unwrap().starts_with("    1.0ns-4.0ns      8"), "{h}");
        assert!(h.lines().last().unwrap().starts_with("16.38us-65.54us      4  100.00%"), "{h}");
        assert!(h.lines().all(|l| l.chars().count() <= MAIL_WIDTH), "{h}");
        assert_eq!(histogram("none", &BTreeMap::new()), "");
    }
}
