//! The VM exits of a run in the layout of `perf kvm stat report`, built from the metrics
//! named `kvm.exit.<reason>` (histograms whose samples are the time from each exit to the
//! vCPU's next entry, in picoseconds) by name alone: the reason is the name's tail in
//! upper case, as perf decodes VMX exit reasons (`EXTERNAL_INTERRUPT`, `HLT`, `MSR_WRITE`)
//! and arm64 exit types and exception classes (`IRQ`, `DABT_LOW`, `SYS64`; `WFx` as the
//! kernel spells it).
//!
//! The table is a [`TextTable`] of the point (so the summary and the HTML page show it
//! verbatim, and `report.json` keeps it as data); the plain and mail text render its rows
//! in 72 columns ([`text_lines`]).

use std::fmt::Write as _;

use sim::MetricsSnapshot;

use crate::plain::fmt_ns_short;
use crate::schema::TextTable;

/// The table's name in the point's `tables`.
pub const TABLE_NAME: &str = "VM exits (perf kvm stat report)";

/// The prefix of an exit reason's metric.
const PREFIX: &str = "kvm.exit.";

/// The columns of the table's data: times in nanoseconds, `+-%` the relative standard
/// deviation of the mean as perf prints it.
const COLUMNS: [&str; 8] =
    ["VM-EXIT", "Samples", "Samples%", "Time%", "Min Time (ns)", "Max Time (ns)", "Avg time (ns)", "+-%"];

/// One exit reason's statistics.
struct Row {
    reason: String,
    samples: u64,
    total_ps: u128,
    min_ps: u64,
    max_ps: u64,
    /// 100 x (standard deviation of the mean) / mean, perf's `rel_stddev_stats`
    /// (0 with fewer than 2 samples).
    rel_stddev_pct: f64,
}

/// The VM-exit table of a run, or `None` when no `kvm.exit.*` metric has a sample. Rows by
/// samples, most first (perf's default sort), then by name.
pub fn table(snapshot: &MetricsSnapshot) -> Option<TextTable> {
    let mut rows: Vec<Row> = snapshot
        .histograms
        .iter()
        .filter(|h| h.count > 0)
        .filter_map(|h| {
            let reason = h.info.name.strip_prefix(PREFIX)?.to_ascii_uppercase();
            // arm64's WFI/WFE class, spelled as the kernel's exception-class table does.
            let reason = if reason == "WFX" { "WFx".to_owned() } else { reason };
            let n = h.count as f64;
            let mean = h.mean();
            // perf: the sample variance over n - 1, of the mean over n; the population
            // deviation σ gives σ² n / (n - 1) / n = σ² / (n - 1).
            let rel_stddev_pct =
                if h.count < 2 || mean == 0.0 { 0.0 } else { 100.0 * (h.stddev * h.stddev / (n - 1.0)).sqrt() / mean };
            Some(Row { reason, samples: h.count, total_ps: h.sum, min_ps: h.min, max_ps: h.max, rel_stddev_pct })
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    rows.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.reason.cmp(&b.reason)));
    let samples: u64 = rows.iter().map(|r| r.samples).sum();
    let time: u128 = rows.iter().map(|r| r.total_ps).sum();
    let pct = |part: f64, whole: f64| if whole == 0.0 { 0.0 } else { 100.0 * part / whole };
    let us = |ps: f64| ps / 1e6;
    // perf's print_result: "%20s %10llu %8.2f%% %8.2f%% %9.2fus %9.2fus %9.2fus ( +-%7.2f%% )".
    let mut text = String::from("Analyze events for all VMs, all VCPUs:\n\n");
    let _ = writeln!(
        text,
        "{:>20} {:>10} {:>9} {:>9} {:>11} {:>11} {:>16} \n",
        "VM-EXIT", "Samples", "Samples%", "Time%", "Min Time", "Max Time", "Avg time"
    );
    let mut data = Vec::new();
    for r in &rows {
        let samples_pct = pct(r.samples as f64, samples as f64);
        let time_pct = pct(r.total_ps as f64, time as f64);
        let avg_ps = r.total_ps as f64 / r.samples as f64;
        let _ = writeln!(
            text,
            "{:>20} {:>10} {:>8.2}% {:>8.2}% {:>9.2}us {:>9.2}us {:>9.2}us ( +-{:>7.2}% )",
            r.reason,
            r.samples,
            samples_pct,
            time_pct,
            us(r.min_ps as f64),
            us(r.max_ps as f64),
            us(avg_ps),
            r.rel_stddev_pct
        );
        data.push(vec![
            r.reason.clone(),
            r.samples.to_string(),
            format!("{samples_pct:.2}"),
            format!("{time_pct:.2}"),
            format!("{:.3}", r.min_ps as f64 / 1e3),
            format!("{:.3}", r.max_ps as f64 / 1e3),
            format!("{:.3}", avg_ps / 1e3),
            format!("{:.2}", r.rel_stddev_pct),
        ]);
    }
    let _ = write!(text, "\nTotal Samples:{samples}, Total events handled time:{:.2}us.", us(time as f64));
    Some(TextTable {
        name: TABLE_NAME.to_owned(),
        text,
        columns: COLUMNS.map(str::to_owned).to_vec(),
        rows: data,
        narrow: false,
        roles: Vec::new(),
        plot_row: Vec::new(),
    })
}

/// The table's rows in at most 72 columns (the plain and mail text): the reason, samples,
/// their shares, and min, max and mean in the unit that suits each, with perf's `+-%`.
pub(crate) fn text_lines(t: &TextTable) -> String {
    // 18 + 8 + 7 + 7 + 8 + 8 + 8 + 8 = 72 columns.
    let mut s = format!(
        "{:<18}{:>8}{:>7}{:>7}{:>8}{:>8}{:>8}{:>8}\n",
        "VM-EXIT", "samples", "samp%", "time%", "min", "max", "avg", "+-%"
    );
    let ns = |v: &str| v.parse::<f64>().map_or_else(|_| v.to_owned(), fmt_ns_short);
    for r in t.rows.iter().filter(|r| r.len() == COLUMNS.len()) {
        let _ = writeln!(
            s,
            "{:<18}{:>8}{:>7}{:>7}{:>8}{:>8}{:>8}{:>8}",
            r[0],
            r[1],
            r[2],
            r[3],
            ns(&r[4]),
            ns(&r[5]),
            ns(&r[6]),
            format!("{}%", r[7])
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::{Metrics, Unit};

    #[test]
    fn exits_are_tabled_by_name_with_perf_statistics() {
        let mut m = Metrics::new();
        let hlt = m.histogram("kvm.exit.hlt", Unit::Picoseconds, "HLT");
        let ext = m.histogram("kvm.exit.external_interrupt", Unit::Picoseconds, "ext");
        let _unused = m.histogram("kvm.exit.msr_write", Unit::Picoseconds, "no samples: no row");
        let _other = m.histogram("latency.end_to_end_ps", Unit::Picoseconds, "not an exit");
        m.record(_other, 5);
        // HLT: 1 ns and 2 ns (mean 1.5 ns, population deviation 0.5 ns: the deviation of
        // the mean is 0.5 / sqrt(2 - 1) = 0.5 ns, 33.33% of the mean; values below 2,048 ps
        // are exact in the HDR buckets). EXTERNAL_INTERRUPT: three of 1 us (no spread).
        m.record(hlt, 1_000);
        m.record(hlt, 2_000);
        for _ in 0..3 {
            m.record(ext, 1_000_000);
        }
        let t = table(&m.snapshot()).unwrap();
        assert_eq!(t.name, TABLE_NAME);
        // Samples: 3 of 5 (60%) and 2 of 5; time: 3,000 ns of 3,003 (99.90%) and 3 (0.10%).
        assert_eq!(
            t.rows,
            [
                ["EXTERNAL_INTERRUPT", "3", "60.00", "99.90", "1000.000", "1000.000", "1000.000", "0.00"],
                ["HLT", "2", "40.00", "0.10", "1.000", "2.000", "1.500", "33.33"],
            ]
            .map(|r| r.map(str::to_owned).to_vec())
        );
        let lines: Vec<&str> = t.text.lines().collect();
        assert_eq!(lines[0], "Analyze events for all VMs, all VCPUs:");
        assert_eq!(
            lines[2],
            "             VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time         Avg time "
        );
        assert_eq!(
            lines[4],
            "  EXTERNAL_INTERRUPT          3    60.00%    99.90%      1.00us      1.00us      1.00us ( +-   0.00% )"
        );
        assert_eq!(
            lines[5],
            "                 HLT          2    40.00%     0.10%      0.00us      0.00us      0.00us ( +-  33.33% )"
        );
        assert_eq!(lines[7], "Total Samples:5, Total events handled time:3.00us.");
        let text = text_lines(&t);
        assert!(text.lines().all(|l| l.chars().count() <= 72), "{text}");
        assert_eq!(
            text.lines().nth(2).unwrap(),
            "HLT                      2  40.00   0.10   1.0ns   2.0ns   1.5ns  33.33%"
        );
    }

    #[test]
    fn no_exit_no_table() {
        let mut m = Metrics::new();
        m.histogram("kvm.exit.hlt", Unit::Picoseconds, "HLT");
        assert_eq!(table(&m.snapshot()), None);
    }
}
