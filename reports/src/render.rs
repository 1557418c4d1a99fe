//! Renderings of a report: `summary.md` (Markdown tables) and plain text for email (72
//! columns, as mail is read and quoted; fixed-width tables; the reproduce line last).

use std::fmt::Write as _;

use crate::plain::{MAIL_WIDTH, fit_mail, fmt_ns_short, wrap};
use crate::schema::{PointReport, RunReport};

/// Formats nanoseconds compactly with three significant decimals.
fn fmt_ns(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.3}ms", v / 1_000_000.0)
    } else if v >= 1_000.0 {
        format!("{:.3}us", v / 1_000.0)
    } else {
        format!("{v:.1}ns")
    }
}

/// `point 0`, or `point 0 (path=value, …)` in a sweep.
pub(crate) fn point_title(p: &PointReport) -> String {
    if p.parameters.is_empty() {
        format!("point {}", p.index)
    } else {
        let params: Vec<String> = p.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("point {} ({})", p.index, params.join(", "))
    }
}

/// `text` as a code span in a Markdown table cell that shows (and copies) exactly `text`:
/// `|` escaped (GitHub tables split cells on it even in code), and a backtick fence longer
/// than any run of backticks inside.
fn code_cell(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{}{pad}{fence}", text.replace('|', "\\|"))
}

/// The Markdown summary (`summary.md`).
// Long: the sections in the order the reader sees them, each a few lines of table writing.
pub fn markdown(report: &RunReport) -> String {
    let mut s = String::new();
    let sc = &report.scenario;
    let _ = writeln!(s, "# irqsim report: {}\n", sc.name);
    if !sc.description.is_empty() {
        let _ = writeln!(s, "{}\n", sc.description.trim());
    }
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| scenario | {} |", code_cell(&sc.source));
    let _ = writeln!(s, "| scenario sha256 | `{}` |", sc.sha256);
    let _ = writeln!(s, "| seed | {} |", report.seed);
    let _ = writeln!(s, "| irqsim | {} |", report.irqsim_version);
    let _ = writeln!(s, "| reproduce | {} |\n", code_cell(&report.reproduce));
    if let Some(sweep) = &report.sweep {
        s.push_str(&crate::sweep::markdown_section(report, sweep));
        for p in crate::sweep::detail_runs(report) {
            markdown_point(&mut s, p, &crate::sweep::detail_title(p), 3, true);
        }
    } else {
        s.push_str(&crate::verdicts::markdown(report));
        for p in &report.points {
            markdown_point(&mut s, p, &point_title(p), 2, false);
        }
    }
    s
}

/// One run in full under a heading of `level` (`##` for 2): how it ended, its latency per
/// stage, resources, failures, counters and the models' tables, in subsections one level
/// down; in a `sweep`, without the tables summarised over the replications.
fn markdown_point(s: &mut String, p: &PointReport, title: &str, level: usize, sweep: bool) {
    let head = "#".repeat(level);
    let sub = "#".repeat(level + 1);
    let _ = writeln!(s, "{head} {title}\n");
    let c = &p.conservation;
    let _ = writeln!(
        s,
        "Stopped at {} after {} events ({}). Interrupts: {} raised = {} delivered + {} lost + {} merged + {} in flight.\n",
        fmt_ns(p.run.simulated_ns),
        p.run.event_count,
        p.run.stop_reason,
        c.raised,
        c.delivered,
        c.lost,
        c.merged,
        c.in_flight
    );
    for w in &p.run.warnings {
        let _ = writeln!(s, "**Warning:** {w}\n");
    }
    let _ = writeln!(s, "{sub} Latency per stage\n");
    let _ = writeln!(s, "| stage | count | mean | p50 | p90 | p99 | p99.9 | max |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for st in p.stages.iter().filter(|st| st.count > 0) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            st.stage,
            st.count,
            fmt_ns(st.mean_ns),
            fmt_ns(st.p50_ns),
            fmt_ns(st.p90_ns),
            fmt_ns(st.p99_ns),
            fmt_ns(st.p999_ns),
            fmt_ns(st.max_ns)
        );
    }
    let _ = writeln!(s, "\n{sub} Resources\n");
    let _ = writeln!(s, "| resource | instances | min | mean | max | limit | max/limit |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    for r in &p.resources {
        let pct = if r.limit == 0 { 0.0 } else { 100.0 * f64::from(r.used_max) / f64::from(r.limit) };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {} | {} | {pct:.1}% |",
            r.name, r.instances, r.used_min, r.used_mean, r.used_max, r.limit
        );
    }
    let _ = writeln!(s, "\n{sub} Failures\n");
    if p.failures.is_empty() {
        let _ = writeln!(s, "None.");
    } else {
        let _ = writeln!(s, "| failure | count | reason | first | last |\n|---|---:|---|---|---|");
        let at = |l: &Option<crate::FailureLine>| {
            l.as_ref().map_or(String::new(), |l| format!("{}: `{}`", fmt_ns(l.at_ns), l.line))
        };
        for f in &p.failures {
            let _ = writeln!(s, "| {} | {} | {} | {} | {} |", f.name, f.count, f.reason, at(&f.first), at(&f.last));
        }
    }
    let _ = writeln!(s, "\n{sub} Counters\n");
    let _ = writeln!(s, "| counter | value | unit | description |\n|---|---:|---|---|");
    for c in &p.counters {
        let _ = writeln!(s, "| {} | {} | {} | {} |", c.name, c.value, c.unit, c.description);
    }
    for t in p.tables.iter().filter(|t| !sweep || t.roles.is_empty()) {
        let _ = writeln!(s, "\n{sub} {}\n\n```text\n{}\n```", t.name, t.text.trim_end());
    }
    s.push('\n');
}

/// The plain-text summary: what the CLI prints and what pastes into a mail (at most 72 columns but the reproduce line, a command that is never broken).
pub fn text(report: &RunReport) -> String {
    let mut s = String::new();
    let sc = &report.scenario;
    let _ = writeln!(s, "irqsim {}: scenario {} (seed {})", report.irqsim_version, sc.name, report.seed);
    if let Some(sweep) = &report.sweep {
        s.push_str(&crate::sweep::text_section(report, sweep));
        let details = crate::sweep::detail_runs(report);
        let _ = write!(s, "\n{}", wrap(&crate::sweep::details_intro(&details), MAIL_WIDTH, ""));
        for p in details {
            text_point(&mut s, p, &crate::sweep::detail_title(p), true);
        }
    } else {
        s.push_str(&crate::verdicts::text(report));
        for p in &report.points {
            text_point(&mut s, p, &point_title(p), false);
        }
    }
    let _ = writeln!(s, "\nsha256 {}", sc.sha256);
    // The reproduce line is a command: never broken, whatever its length.
    let _ = writeln!(s, "reproduce: {}", report.reproduce);
    // A word longer than a line (a path in a warning) is all that can be left too wide.
    fit_mail(&s)
}

/// One run in the plain text, after a blank line: a title line (`title`, simulated time,
/// events), the interrupts' conservation, warnings, latency per stage, resources and
/// failures; the narrow tables but, in a `sweep`, those summarised over the replications.
pub(crate) fn text_point(s: &mut String, p: &PointReport, title: &str, sweep: bool) {
    let c = &p.conservation;
    let head = format!("{title}: {} simulated, {} events", fmt_ns(p.run.simulated_ns), p.run.event_count);
    let _ = write!(s, "\n{}", wrap(&head, MAIL_WIDTH, "  "));
    // Each "N word" stays whole; the line breaks between them.
    let items = [
        format!("{} raised", c.raised),
        format!("{} delivered", c.delivered),
        format!("{} lost", c.lost),
        format!("{} merged", c.merged),
        format!("{} in flight", c.in_flight),
    ];
    let mut line = String::from("interrupts:");
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() { format!("{item},") } else { item.clone() };
        if line.chars().count() + 1 + piece.chars().count() > MAIL_WIDTH {
            let _ = writeln!(s, "{line}");
            line = " ".repeat("interrupts:".len());
        }
        line.push(' ');
        line.push_str(&piece);
    }
    let _ = writeln!(s, "{line}");
    for w in &p.run.warnings {
        let _ = write!(s, "{}", wrap(&format!("warning: {w}"), MAIL_WIDTH, "  "));
    }
    // 16 + 9 + 5 × 9 = 70 columns.
    let _ =
        writeln!(s, "\n{:<16}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}", "stage", "count", "mean", "p50", "p99", "p99.9", "max");
    for st in p.stages.iter().filter(|st| st.count > 0) {
        let _ = writeln!(
            s,
            "{:<16}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
            st.stage,
            st.count,
            fmt_ns_short(st.mean_ns),
            fmt_ns_short(st.p50_ns),
            fmt_ns_short(st.p99_ns),
            fmt_ns_short(st.p999_ns),
            fmt_ns_short(st.max_ns)
        );
    }
    if let Some(t) = p.tables.iter().find(|t| t.name == crate::kvm_exits::TABLE_NAME) {
        let _ = write!(s, "\n{}", crate::kvm_exits::text_lines(t));
    }
    text_control_plane(s, p);
    if !p.resources.is_empty() {
        let _ = writeln!(s, "\n{:<32}{:>10}{:>10}{:>10}", "resource (per instance)", "max used", "limit", "instances");
        for r in &p.resources {
            let _ = writeln!(s, "{:<32}{:>10}{:>10}{:>10}", r.name, r.used_max, r.limit, r.instances);
        }
    }
    if !p.failures.is_empty() {
        let _ = writeln!(s, "\nfailures:");
        for f in &p.failures {
            // The count in 7 columns, the reason and its lines indented under it.
            let _ = write!(s, "{}", wrap(&format!("{:>7}  {}", f.count, f.reason), MAIL_WIDTH, "         "));
            for (which, l) in [("first", &f.first), ("last", &f.last)] {
                if let Some(l) = l {
                    let text = format!("{which} at {}: {}", fmt_ns(l.at_ns), l.line);
                    let _ = write!(s, "{}", wrap(&format!("         {text}"), MAIL_WIDTH, "           "));
                }
            }
        }
    }
    for t in p.tables.iter().filter(|t| t.narrow && (!sweep || t.roles.is_empty())) {
        let _ = write!(s, "\n{}\n{}\n", wrap(&format!("{}:", t.name), MAIL_WIDTH, "  "), t.text.trim_end());
    }
}

/// Counter families of the guest control plane: what setting up and changing a guest's
/// interrupts cost (provisioning's exits, ioctls, host setups and host CPU time; vCPU
/// migrations and, on arm, the VMOVPs that move their vPEs), the numbers a
/// trap-versus-hypercall argument quotes.
const CONTROL_PLANE: [&str; 3] = ["provision.", "kvm.vcpu_migration", "arm.vmovp"];

/// The run's non-zero control-plane counters, one a line (a time in picoseconds shown as a
/// duration), after a blank line; nothing when the run has none.
fn text_control_plane(s: &mut String, p: &PointReport) {
    let rows: Vec<_> =
        p.counters.iter().filter(|c| c.value > 0 && CONTROL_PLANE.iter().any(|f| c.name.starts_with(f))).collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n{:<56}{:>14}", "control plane", "total");
    for c in rows {
        let value = if c.unit == "ps" { fmt_ns(c.value as f64 / 1e3) } else { c.value.to_string() };
        let _ = writeln!(s, "{:<56}{:>14}", c.name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::*;

    fn sample() -> RunReport {
        RunReport {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            irqsim_version: "0.1.0".into(),
            scenario: ScenarioInfo {
                name: "t".into(),
                description: "d".into(),
                source: "t.yaml".into(),
                sha256: "ab".into(),
                text: "name: t\n".into(),
            },
            seed: 7,
            reproduce: "irqsim run t.yaml --seed 7".into(),
            sweep: None,
            shard: None,
            expect: Vec::new(),
            verdicts: Vec::new(),
            points: vec![PointReport {
                index: 0,
                parameters: vec![],
                variant: None,
                replication: 0,
                seed: 7,
                run: RunInfo {
                    stop_reason: "time_end".into(),
                    event_count: 10,
                    simulated_ns: 1_000_000.0,
                    warnings: Vec::new(),
                },
                conservation: Conservation { raised: 3, delivered: 2, lost: 0, merged: 0, in_flight: 1 },
                stages: vec![StageSummary {
                    stage: "end_to_end".into(),
                    description: "all".into(),
                    count: 2,
                    mean_ns: 1500.0,
                    p50_ns: 1500.0,
                    p90_ns: 1500.0,
                    p99_ns: 1500.0,
                    p999_ns: 1500.0,
                    max_ns: 1500.0,
                    histogram: vec![Bucket { le_ns: 1000.0, count: 1 }, Bucket { le_ns: 1681.793, count: 1 }],
                }],
                failures: vec![Failure {
                    name: "x.lost.y".into(),
                    count: 1,
                    reason: "because".into(),
                    first: None,
                    last: None,
                }],
                resources: vec![ResourceRow {
                    name: "x86.vectors_per_cpu".into(),
                    instances: 2,
                    used_min: 1,
                    used_mean: 1.5,
                    used_max: 2,
                    limit: 203,
                }],
                counters: vec![],
                tables: vec![TextTable {
                    name: "matrix".into(),
                    text: "| CPU | avl |".into(),
                    columns: Vec::new(),
                    rows: Vec::new(),
                    narrow: false,
                    roles: Vec::new(),
                    plot_row: Vec::new(),
                }],
            }],
        }
    }

    #[test]
    fn the_control_plane_block_lists_its_non_zero_counters_in_order() {
        let mut r = sample();
        let row = |name: &str, unit: &str, value: u64| CounterRow {
            name: name.into(),
            unit: unit.into(),
            value,
            description: String::new(),
        };
        r.points[0].counters = vec![
            row("kvm.hlt_exit_count", "count", 5),
            row("provision.exit_count", "count", 154),
            row("provision.host_cpu_ps", "ps", 2_191_800_000),
            row("provision.mask_count", "count", 0),
            row("kvm.vcpu_migration_count", "count", 6),
            row("arm.vmovp_count", "count", 6),
        ];
        let mut s = String::new();
        text_control_plane(&mut s, &r.points[0]);
        let want = [
            "",
            "control plane                                                    total",
            "provision.exit_count                                               154",
            "provision.host_cpu_ps                                          2.192ms",
            "kvm.vcpu_migration_count                                             6",
            "arm.vmovp_count                                                      6",
            "",
        ];
        assert_eq!(s, want.join("\n"));
        // A run without such counters gets no block.
        let mut none = String::new();
        r.points[0].counters.retain(|c| c.name.starts_with("kvm.hlt"));
        text_control_plane(&mut none, &r.points[0]);
        assert_eq!(none, "");
    }

    #[test]
    fn text_fits_in_a_mail() {
        let t = text(&sample());
        assert!(t.lines().filter(|l| !l.starts_with("reproduce:")).all(|l| l.chars().count() <= MAIL_WIDTH), "{t}");
        assert!(
            t.contains("end_to_end") && t.contains("1.500us") && t.contains("reproduce: irqsim run t.yaml --seed 7"),
            "{t}"
        );
        assert!(t.contains("because"));
    }

    #[test]
    fn markdown_has_every_section() {
        let m = markdown(&sample());
        for needle in [
            "# irqsim report: t",
            "### Latency per stage",
            "| end_to_end | 2 | 1.500us",
            "### Resources",
            "because",
            "seed | 7",
        ] {
            assert!(m.contains(needle), "missing {needle:?} in\n{m}");
        }
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = sample();
        let json = serde_json::to_string_pretty(&r).unwrap();
        let back: RunReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
