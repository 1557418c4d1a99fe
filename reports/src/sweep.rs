//! The sweep section that opens the summaries and the mail of a report with a sweep: the
//! axes, variants and replication seeds; one row per cell (a point in a variant) with the
//! end_to_end percentiles as mean ± 95% half width over the replications, the raise rate,
//! losses and failures; each variant against the baseline, paired by replication; the
//! warnings and failures of all runs, each with where it happened; and which runs are
//! shown in full (the first of each variant), since every run in full is far too long for
//! a sweep of hundreds of runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::plain::{MAIL_WIDTH, Table, fmt_ns_pm, fmt_ns_short, fmt_pct, fmt_si, wrap, wrap_items};
use crate::schema::{PointReport, RunReport, SweepInfo};
use crate::stats::{Cell, Estimate, Paired, cells, paired};

/// The metrics the sweep tables show, by their `points.csv` names.
const E2E_MEAN: &str = "latency.end_to_end.mean_ns";
const E2E_P50: &str = "latency.end_to_end.p50_ns";
const E2E_P99: &str = "latency.end_to_end.p99_ns";
const E2E_P999: &str = "latency.end_to_end.p999_ns";

/// Seeds listed before the rest are only counted.
const SEEDS_SHOWN: usize = 6;
/// Points listed in a warning's or failure's whereabouts before the rest are only counted.
const POINTS_SHOWN: usize = 12;
/// Distinct warnings listed before the rest are only counted (a warning's text carries the
/// run's numbers, so a large sweep can have many).
const WARNINGS_SHOWN: usize = 8;

/// One cell of the sweep and its estimates.
#[derive(Debug)]
struct CellRow<'a> {
    /// The point in the variant, with its runs.
    cell: Cell<'a>,
    /// end_to_end p50, p99 and p99.9.
    p50: Option<Estimate>,
    p99: Option<Estimate>,
    p999: Option<Estimate>,
    /// Raised interrupts per simulated second.
    rate: Option<Estimate>,
    /// Lost interrupts.
    lost: Option<Estimate>,
    /// Failures of every kind (`failures.total`).
    failures: Option<Estimate>,
    /// Whether a run of the cell has a warning.
    warned: bool,
}

/// The report's cells, in report order (point, then variant), with their estimates.
fn cell_rows(report: &RunReport) -> Vec<CellRow<'_>> {
    cells(report)
        .into_iter()
        .map(|cell| {
            let rate = Estimate::of(cell.runs.iter().map(|p| {
                let seconds = p.run.simulated_ns * 1e-9;
                if seconds > 0.0 { p.conservation.raised as f64 / seconds } else { f64::NAN }
            }));
            CellRow {
                p50: cell.estimate(E2E_P50),
                p99: cell.estimate(E2E_P99),
                p999: cell.estimate(E2E_P999),
                rate,
                lost: Estimate::of(cell.runs.iter().map(|p| p.conservation.lost as f64)),
                failures: cell.estimate("failures.total"),
                warned: cell.runs.iter().any(|p| !p.run.warnings.is_empty()),
                cell,
            }
        })
        .collect()
}

/// Short column headers for the axes: the last component of each path (`rate` for
/// `devices[0].arrival.rate`), the whole path where two axes would share one.
pub(crate) fn axis_headers(sweep: &SweepInfo) -> Vec<String> {
    let last = |path: &str| path.rsplit('.').next().unwrap_or(path).to_owned();
    let lasts: Vec<String> = sweep.axes.iter().map(|a| last(&a.path)).collect();
    sweep
        .axes
        .iter()
        .zip(&lasts)
        .map(|(a, l)| if lasts.iter().filter(|x| *x == l).count() > 1 { a.path.clone() } else { l.clone() })
        .collect()
}

/// Every run of the whole sweep (of every shard).
fn run_total(sweep: &SweepInfo) -> u64 {
    sweep.run_count().unwrap_or(u64::MAX)
}

/// `3 points x 2 variants x 4 replications = 24 runs` (with `sep` for the times sign).
fn shape(sweep: &SweepInfo, sep: &str) -> String {
    let points = sweep.point_count;
    let mut s = format!("{points} point{}", if points == 1 { "" } else { "s" });
    if sweep.axes.len() > 1 {
        if sweep.combine == "zip" {
            let _ = write!(s, " ({} axes zipped)", sweep.axes.len());
        } else {
            let sizes: Vec<String> = sweep.axes.iter().map(|a| a.values.len().to_string()).collect();
            let _ = write!(s, " (grid of {})", sizes.join(sep));
        }
    }
    if !sweep.variants.is_empty() {
        let _ = write!(s, "{sep}{} variants", sweep.variants.len());
    }
    let r = sweep.replications;
    let _ = write!(s, "{sep}{r} replication{} = {} runs", if r == 1 { "" } else { "s" }, run_total(sweep));
    s
}

/// The replication seeds, the first few listed, and why they matter.
fn seeds_sentence(sweep: &SweepInfo) -> String {
    let mut shown: Vec<String> = sweep.seeds.iter().take(SEEDS_SHOWN).map(u64::to_string).collect();
    if sweep.seeds.len() > SEEDS_SHOWN {
        shown.push(format!("... ({} in all, in report.json)", sweep.seeds.len()));
    }
    let seeds = if sweep.seeds.len() == 1 { "seed" } else { "seeds" };
    let head = format!("replications: {}, {seeds} {}", sweep.replications, shown.join(", "));
    let place = match (sweep.point_count > 1, sweep.variants.len() > 1) {
        (true, true) => "at every point and in every variant",
        (true, false) => "at every point",
        (false, true) => "in every variant",
        (false, false) => return head,
    };
    if sweep.replications == 1 {
        format!("{head}, the same {place} (common random numbers)")
    } else {
        format!("{head}; replication r has the same seed {place} (common random numbers)")
    }
}

/// A variant's settings as `path=value` pairs.
fn variant_sets(set: &[(String, String)]) -> String {
    set.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// Which shard of the sweep a report holds (`shard 2/4, 3 of the 12 runs`), if it is one.
fn shard_line(report: &RunReport, sweep: &SweepInfo) -> Option<String> {
    report.shard.map(|shard| {
        format!("shard {}/{}, {} of the {} runs", shard.index, shard.count, report.points.len(), run_total(sweep))
    })
}

/// The sweep's shape, axes, variants and seeds, for the plain text.
pub(crate) fn text_overview(report: &RunReport, sweep: &SweepInfo) -> String {
    let mut s = wrap(&format!("sweep: {}", shape(sweep, " x ")), MAIL_WIDTH, "  ");
    if let Some(shard) = shard_line(report, sweep) {
        s.push_str(&wrap(&format!("this report: {shard}"), MAIL_WIDTH, "  "));
    }
    for axis in &sweep.axes {
        s.push_str(&wrap_items(&format!("axis {}: ", axis.path), &axis.values, ",", MAIL_WIDTH, "  "));
    }
    if !sweep.variants.is_empty() {
        let items: Vec<String> = sweep
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| match (i, v.set.is_empty()) {
                (0, true) => format!("{} (baseline)", v.name),
                (0, false) => format!("{} (baseline: {})", v.name, variant_sets(&v.set)),
                (_, true) => v.name.clone(),
                (_, false) => format!("{} ({})", v.name, variant_sets(&v.set)),
            })
            .collect();
        s.push_str(&wrap_items("variants: ", &items, ";", MAIL_WIDTH, "  "));
    }
    s.push_str(&wrap(&seeds_sentence(sweep), MAIL_WIDTH, "  "));
    s
}

/// `over the 4 replications`, `over one replication`, or, when the cells have different
/// numbers of runs (a shard), `over the replications (runs)`.
fn over(rows: &[CellRow<'_>]) -> (String, bool) {
    let n = rows.first().map_or(0, |r| r.cell.runs.len());
    if rows.iter().any(|r| r.cell.runs.len() != n) {
        ("over each cell's runs".to_owned(), true)
    } else if n == 1 {
        ("of one replication".to_owned(), false)
    } else {
        (format!("over the {n} replications"), false)
    }
}

/// The leading columns of a cell's row: point, axis values (unless a legend gives them),
/// variant, runs.
pub(crate) struct Lead<'s> {
    sweep: &'s SweepInfo,
    axes: bool,
    variant: bool,
    runs: bool,
    head: Vec<String>,
    right: Vec<bool>,
}

impl<'s> Lead<'s> {
    /// With `axes`, a column per axis headed `axis_head`; `variant` and `runs` add those.
    pub(crate) fn new(sweep: &'s SweepInfo, axis_head: Option<Vec<String>>, variant: bool, runs: bool) -> Self {
        let mut head = vec!["pt".to_owned()];
        let mut right = vec![true];
        let axes = axis_head.is_some();
        for h in axis_head.unwrap_or_default() {
            head.push(h);
            right.push(false);
        }
        if variant {
            head.push("variant".into());
            right.push(false);
        }
        if runs {
            head.push("runs".into());
            right.push(true);
        }
        Self { sweep, axes, variant, runs, head, right }
    }

    pub(crate) fn cells(
        &self,
        index: u32,
        parameters: &[(String, String)],
        variant: Option<&str>,
        runs: usize,
    ) -> Vec<String> {
        let mut out = vec![index.to_string()];
        if self.axes {
            out.extend((0..self.sweep.axes.len()).map(|k| parameters.get(k).map_or(String::new(), |(_, v)| v.clone())));
        }
        if self.variant {
            out.push(variant.unwrap_or("").to_owned());
        }
        if self.runs {
            out.push(runs.to_string());
        }
        out
    }

    pub(crate) fn table(&self, more: &[(&str, bool)]) -> Table {
        let mut head = self.head.clone();
        let mut right = self.right.clone();
        for (h, r) in more {
            head.push((*h).to_owned());
            right.push(*r);
        }
        Table::new(head, right)
    }
}

/// The table in the mail width; when it does not fit, `None` if `fit`, else one record
/// per row.
fn render(table: &Table, fit: bool) -> Option<String> {
    if fit { table.render(MAIL_WIDTH) } else { Some(table.render_or_records(MAIL_WIDTH)) }
}

fn latency(e: Option<Estimate>, sep: &str) -> String {
    e.map_or_else(|| "-".to_owned(), |e| fmt_ns_pm(e.mean, e.half_width, sep))
}

fn mean_count(e: Option<Estimate>) -> String {
    e.map_or_else(|| "-".to_owned(), |e| fmt_si(e.mean))
}

/// The points and their axis values, for tables too narrow to carry them.
fn text_legend(sweep: &SweepInfo, rows: &[CellRow<'_>]) -> String {
    let mut head = vec!["pt".to_owned()];
    head.extend(axis_headers(sweep));
    let mut right = vec![true];
    right.extend(sweep.axes.iter().map(|_| false));
    let mut table = Table::new(head, right);
    let mut seen = Vec::new();
    for r in rows {
        if seen.contains(&r.cell.index) {
            continue;
        }
        seen.push(r.cell.index);
        let mut cells = vec![r.cell.index.to_string()];
        cells.extend((0..sweep.axes.len()).map(|k| r.cell.parameters.get(k).map_or(String::new(), |(_, v)| v.clone())));
        table.row(cells);
    }
    format!("points:\n{}", table.render_or_records(MAIL_WIDTH))
}

/// One row per cell: the end_to_end percentiles (mean +- half width), raised per second,
/// lost and failures; in one table when it fits in the mail, else in two. With `axes`, a
/// column per axis.
fn text_cells(sweep: &SweepInfo, rows: &[CellRow<'_>], axes: bool, fit: bool) -> Option<String> {
    let (over, runs) = over(rows);
    let lead = Lead::new(sweep, axes.then(|| axis_headers(sweep)), !sweep.variants.is_empty(), runs);
    let warned = rows.iter().any(|r| r.warned);
    let latency_cols: &[(&str, bool)] = &[("p50", true), ("p99", true), ("p99.9", true)];
    let count_cols: &[(&str, bool)] = &[("raised/s", true), ("lost", true), ("failures", true)];
    let note_cols: &[(&str, bool)] = if warned { &[("note", false)] } else { &[] };
    let lead_cells = |r: &CellRow<'_>| lead.cells(r.cell.index, r.cell.parameters, r.cell.variant, r.cell.runs.len());
    let latencies = |r: &CellRow<'_>| vec![latency(r.p50, "+-"), latency(r.p99, "+-"), latency(r.p999, "+-")];
    let counts = |r: &CellRow<'_>| vec![mean_count(r.rate), mean_count(r.lost), mean_count(r.failures)];
    let note = |r: &CellRow<'_>| match (warned, r.warned) {
        (false, _) => vec![],
        (true, true) => vec!["warn".to_owned()],
        (true, false) => vec![String::new()],
    };
    let intervals = rows.iter().any(|r| r.p99.is_some_and(|e| e.half_width.is_some()));
    let pm = if intervals { " +- 95% half width" } else { "" };

    let mut s = String::new();
    let mut combined = lead.table(&[latency_cols, count_cols, note_cols].concat());
    for r in rows {
        combined.row([lead_cells(r), latencies(r), counts(r), note(r)].concat());
    }
    if let Some(table) = combined.render(MAIL_WIDTH) {
        let what = if intervals {
            format!("end_to_end latency (mean{pm}) and interrupts (mean)")
        } else {
            "end_to_end latency and interrupts".to_owned()
        };
        let title = format!("{what} {over}; raised/s: per simulated second; failures: of every kind");
        s.push_str(&wrap(&title, MAIL_WIDTH, ""));
        s.push_str(&table);
    } else {
        let mut lat = lead.table(&[latency_cols, note_cols].concat());
        let mut cnt = lead.table(count_cols);
        for r in rows {
            lat.row([lead_cells(r), latencies(r), note(r)].concat());
            cnt.row([lead_cells(r), counts(r)].concat());
        }
        s.push_str(&wrap(&format!("end_to_end latency, mean{pm} {over}:"), MAIL_WIDTH, ""));
        s.push_str(&render(&lat, fit)?);
        let title = format!("interrupts, mean {over} (raised/s: per simulated second; failures: of every kind):");
        s.push('\n');
        s.push_str(&wrap(&title, MAIL_WIDTH, ""));
        s.push_str(&render(&cnt, fit)?);
    }
    if let Some(table) = control_plane_table(&lead, rows) {
        s.push('\n');
        s.push_str(&wrap(&format!("guest control plane, mean {over}:"), MAIL_WIDTH, ""));
        s.push_str(&render(&table, fit)?);
    }
    if warned {
        s.push_str(&wrap("warn: a run of the cell has a warning (below)", MAIL_WIDTH, "  "));
    }
    Some(s)
}

/// The counters of the guest control plane a sweep's cell table shows, with their column
/// headers: host setups (`request_irq`), VFIO ioctls, VM exits and host CPU time of
/// setting up and changing guests' interrupts (docs/report-format.md, `provision.*`).
const CONTROL_PLANE_COLS: [(&str, &str); 4] = [
    ("provision.request_irq_count", "setups"),
    ("provision.vfio_set_irqs_count", "ioctls"),
    ("provision.exit_count", "exits"),
    ("provision.host_cpu_ps", "host cpu"),
];

/// The control-plane counters per cell (means over the replications), when a run of the
/// sweep has any; host CPU time as a duration.
fn control_plane_table(lead: &Lead<'_>, rows: &[CellRow<'_>]) -> Option<Table> {
    let has = |r: &CellRow<'_>| r.cell.runs.iter().any(|p| crate::stats::metric(p, CONTROL_PLANE_COLS[2].0).is_some());
    if !rows.iter().any(has) {
        return None;
    }
    let cols: Vec<(&str, bool)> = CONTROL_PLANE_COLS.iter().map(|(_, h)| (*h, true)).collect();
    let mut table = lead.table(&cols);
    for r in rows {
        let mut cells = lead.cells(r.cell.index, r.cell.parameters, r.cell.variant, r.cell.runs.len());
        for (metric, _) in CONTROL_PLANE_COLS {
            let e = r.cell.estimate(metric).filter(|e| e.mean.is_finite());
            cells.push(match e {
                Some(e) if metric.ends_with("_ps") => fmt_ns_short(e.mean / 1e3),
                e => mean_count(e),
            });
        }
        table.row(cells);
    }
    Some(table)
}

/// The end_to_end p99 and mean of each variant against the baseline, paired by
/// replication: `p99` row then `mean` row for each point and variant.
fn paired_rows(report: &RunReport) -> Vec<(&'static str, Paired<'_>)> {
    let mean = paired(report, E2E_MEAN);
    let mut out = Vec::new();
    for p in paired(report, E2E_P99) {
        let m = mean.iter().find(|m| m.index == p.index && m.variant == p.variant).cloned();
        out.push(("p99", p));
        if let Some(m) = m {
            out.push(("mean", m));
        }
    }
    out
}

/// `yes` when the interval of the difference leaves out zero, `no` when not, `n=1` when
/// there is no interval (one replication).
fn significant(d: &Estimate) -> &'static str {
    if d.half_width.is_none() {
        "n=1"
    } else if d.excludes_zero() {
        "yes"
    } else {
        "no"
    }
}

/// Each variant against the baseline; empty with fewer than two variants. With `axes`, a
/// column per axis.
fn text_paired(report: &RunReport, sweep: &SweepInfo, axes: bool, fit: bool) -> Option<String> {
    let [base, rest @ ..] = sweep.variants.as_slice() else { return Some(String::new()) };
    let rows = paired_rows(report);
    if rest.is_empty() || rows.is_empty() {
        return Some(String::new());
    }
    let many = rest.len() > 1;
    let difference = if many { "difference".to_owned() } else { format!("{} - {}", rest[0].name, base.name) };
    let lead = Lead::new(sweep, axes.then(|| axis_headers(sweep)), many, false);
    let mut table = lead.table(&[
        ("metric", false),
        (base.name.as_str(), true),
        (difference.as_str(), true),
        ("change", true),
        ("significant", false),
    ]);
    for (metric, p) in &rows {
        let d = &p.difference;
        let mut cells = lead.cells(p.index, p.parameters, Some(p.variant), 0);
        cells.extend([
            (*metric).to_owned(),
            fmt_ns_short(p.base.mean),
            fmt_ns_pm(d.mean, d.half_width, "+-"),
            fmt_pct(d.mean / p.base.mean),
            significant(d).to_owned(),
        ]);
        table.row(cells);
    }
    let who = if many { format!("each variant - {}", base.name) } else { difference.clone() };
    let title = if rows.iter().any(|(_, p)| p.difference.half_width.is_some()) {
        format!(
            "{who} in end_to_end latency, paired by replication (same seed): mean +- 95% half width; significant: the interval leaves out 0"
        )
    } else {
        format!("{who} in end_to_end latency, run against run (same seed); one replication: no interval, no test (n=1)")
    };
    let mut s = wrap(&title, MAIL_WIDTH, "");
    s.push_str(&render(&table, fit)?);
    Some(s)
}

/// The cell tables and the paired differences, a blank line between: with a column per
/// axis when every table fits in the mail so, else with a legend of the points first.
pub(crate) fn text_tables(report: &RunReport, sweep: &SweepInfo) -> String {
    let rows = cell_rows(report);
    let join = |cells: String, paired: String| if paired.is_empty() { cells } else { format!("{cells}\n{paired}") };
    if !sweep.axes.is_empty()
        && let (Some(cells), Some(paired)) =
            (text_cells(sweep, &rows, true, true), text_paired(report, sweep, true, true))
    {
        return join(cells, paired);
    }
    let legend = if sweep.axes.is_empty() { String::new() } else { format!("{}\n", text_legend(sweep, &rows)) };
    let cells = text_cells(sweep, &rows, false, false).unwrap_or_default();
    let paired = text_paired(report, sweep, false, false).unwrap_or_default();
    format!("{legend}{}", join(cells, paired))
}

/// A warning or a failure and the runs it happened in.
#[derive(Debug)]
struct Note<'a> {
    /// The warning's text, or the failure's counter name.
    what: &'a str,
    /// The failure's reason (empty for a warning).
    reason: &'a str,
    /// The runs, in report order, and the failure's count in each (1 for a warning).
    runs: Vec<(&'a PointReport, u64)>,
}

impl Note<'_> {
    /// `848 per run` or `1 to 9 per run`.
    fn per_run(&self) -> String {
        let min = self.runs.iter().map(|r| r.1).min().unwrap_or(0);
        let max = self.runs.iter().map(|r| r.1).max().unwrap_or(0);
        if min == max { format!("{min} per run") } else { format!("{min} to {max} per run") }
    }
}

fn add<'a>(notes: &mut Vec<Note<'a>>, what: &'a str, reason: &'a str, p: &'a PointReport, count: u64) {
    match notes.iter_mut().find(|n| n.what == what) {
        Some(n) => n.runs.push((p, count)),
        None => notes.push(Note { what, reason, runs: vec![(p, count)] }),
    }
}

/// The distinct warnings of all runs, in order of first appearance.
fn warnings(report: &RunReport) -> Vec<Note<'_>> {
    let mut notes = Vec::new();
    for p in &report.points {
        for w in &p.run.warnings {
            add(&mut notes, w, "", p, 1);
        }
    }
    notes
}

/// The failures of all runs by counter name, in order of first appearance.
fn failures(report: &RunReport) -> Vec<Note<'_>> {
    let mut notes = Vec::new();
    for p in &report.points {
        for f in &p.failures {
            add(&mut notes, &f.name, &f.reason, p, f.count);
        }
    }
    notes
}

/// Where a note happened: `in all 24 runs`, or `in 6 of 24 runs, at points 1, 3 (fifo)`
/// (a point without variants named happened in each of its variants).
fn whereabouts(report: &RunReport, sweep: &SweepInfo, note: &Note<'_>) -> String {
    let total = report.points.len();
    let k = note.runs.len();
    if k == total {
        return format!("in all {total} runs");
    }
    let mut by_point: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for (p, _) in &note.runs {
        let variants = by_point.entry(p.index).or_default();
        let v = p.variant.as_deref().unwrap_or("");
        if !variants.contains(&v) {
            variants.push(v);
        }
    }
    let mut items: Vec<String> = by_point
        .iter()
        .take(POINTS_SHOWN)
        .map(|(pt, vs)| {
            if sweep.variants.len() <= 1 || vs.len() == sweep.variants.len() {
                pt.to_string()
            } else {
                format!("{pt} ({})", vs.join(", "))
            }
        })
        .collect();
    if by_point.len() > POINTS_SHOWN {
        items.push(format!("and {} more", by_point.len() - POINTS_SHOWN));
    }
    let points = if by_point.len() == 1 { "point" } else { "points" };
    format!("in {k} of {total} runs, at {points} {}", items.join(", "))
}

/// The warnings and failures of all runs with where they happened; empty when there are
/// none.
pub(crate) fn text_notes(report: &RunReport, sweep: &SweepInfo) -> String {
    let mut s = String::new();
    let warnings = warnings(report);
    if !warnings.is_empty() {
        s.push_str("warnings:\n");
        for n in warnings.iter().take(WARNINGS_SHOWN) {
            s.push_str(&wrap(&format!("  {}", n.what), MAIL_WIDTH, "    "));
            s.push_str(&wrap(&format!("    {}", whereabouts(report, sweep, n)), MAIL_WIDTH, "    "));
        }
        if warnings.len() > WARNINGS_SHOWN {
            let more = format!("  and {} more distinct warnings (report.json)", warnings.len() - WARNINGS_SHOWN);
            s.push_str(&wrap(&more, MAIL_WIDTH, "    "));
        }
    }
    let failures = failures(report);
    if !failures.is_empty() {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str("failures:\n");
        for n in &failures {
            let line = format!("  {}: {}, {}", n.what, n.per_run(), whereabouts(report, sweep, n));
            s.push_str(&wrap(&line, MAIL_WIDTH, "    "));
            s.push_str(&wrap(&format!("    {}", n.reason), MAIL_WIDTH, "    "));
        }
    }
    s
}

/// The sweep section of the plain text, a blank line before each part: overview, cells,
/// paired differences, warnings and failures, verdicts.
pub(crate) fn text_section(report: &RunReport, sweep: &SweepInfo) -> String {
    let mut s = format!("\n{}\n{}", text_overview(report, sweep), text_tables(report, sweep));
    let notes = text_notes(report, sweep);
    if !notes.is_empty() {
        s.push('\n');
        s.push_str(&notes);
    }
    s.push_str(&crate::replicated::text(report, sweep));
    s.push_str(&crate::verdicts::text(report));
    s
}

/// The runs shown in full: the first run of each variant (point 0, replication 0 in a
/// whole sweep), in variant order.
pub(crate) fn detail_runs(report: &RunReport) -> Vec<&PointReport> {
    let variants: Vec<Option<&str>> = match &report.sweep {
        Some(s) if !s.variants.is_empty() => s.variants.iter().map(|v| Some(v.name.as_str())).collect(),
        _ => vec![None],
    };
    variants.into_iter().filter_map(|v| report.points.iter().find(|p| p.variant.as_deref() == v)).collect()
}

/// The title of a run shown in full: its point, variant and replication.
pub(crate) fn detail_title(p: &PointReport) -> String {
    let mut s = crate::render::point_title(p);
    if let Some(v) = &p.variant {
        let _ = write!(s, ", variant {v}");
    }
    let _ = write!(s, ", replication {}", p.replication);
    s
}

/// The line before the runs shown in full.
pub(crate) fn details_intro(details: &[&PointReport]) -> String {
    let which = if details.len() > 1 { "the first run of each variant" } else { "the first run" };
    format!("{which} in full (every run's numbers are in points.csv):")
}

/// `|` escaped for a Markdown table cell.
fn md(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A Markdown table from a header, alignments (`true`: right) and rows.
fn md_table(head: &[String], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n", head.iter().map(|h| md(h)).collect::<Vec<_>>().join(" | "));
    let rules: Vec<&str> = right.iter().map(|&r| if r { "---:" } else { "---" }).collect();
    let _ = writeln!(s, "|{}|", rules.join("|"));
    for row in rows {
        let _ = writeln!(s, "| {} |", row.iter().map(|c| md(c)).collect::<Vec<_>>().join(" | "));
    }
    s
}

/// The sweep section of `summary.md`: the sweep, expectations, results per cell, variants
/// against the baseline, warnings and failures of all runs, and the heading of the runs
/// shown in full.
pub(crate) fn markdown_section(report: &RunReport, sweep: &SweepInfo) -> String {
    let mut s = String::from("## Sweep\n\n");
    let _ = write!(s, "{}.", shape(sweep, " × "));
    if let Some(shard) = shard_line(report, sweep) {
        let _ = write!(s, " This report: {shard}.");
    }
    s.push_str("\n\n");
    let axes: Vec<Vec<String>> =
        sweep.axes.iter().map(|a| vec![format!("`{}`", a.path), a.values.join(", ")]).collect();
    if !axes.is_empty() {
        s.push_str(&md_table(&["axis".into(), "values".into()], &[false, false], &axes));
        s.push('\n');
    }
    if !sweep.variants.is_empty() {
        let rows: Vec<Vec<String>> = sweep
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let name = if i == 0 { format!("{} (baseline)", v.name) } else { v.name.clone() };
                let sets = v.set.iter().map(|(k, v)| format!("`{k}={v}`")).collect::<Vec<_>>().join(", ");
                let sets = if sets.is_empty() { "(nothing)".to_owned() } else { sets };
                vec![name, sets]
            })
            .collect();
        s.push_str(&md_table(&["variant".into(), "sets".into()], &[false, false], &rows));
        s.push('\n');
    }
    let mut seeds = seeds_sentence(sweep);
    if let Some(first) = seeds.get(..1) {
        seeds = format!("{}{}", first.to_uppercase(), &seeds[1..]);
    }
    let against = if sweep.variants.len() > 1 { ", so the variants are compared run against run" } else { "" };
    let _ = writeln!(s, "{seeds}{against}.\n");
    s.push_str(&crate::verdicts::markdown(report));

    let rows = cell_rows(report);
    let (over, runs) = over(&rows);
    let _ = writeln!(s, "## Results per point and variant\n");
    let _ = writeln!(
        s,
        "Mean {over}; end_to_end latencies ± the half width of their 95% confidence interval (Student t). raised/s: interrupts raised per simulated second; failures: of every kind.\n"
    );
    let lead =
        Lead::new(sweep, Some(sweep.axes.iter().map(|a| a.path.clone()).collect()), !sweep.variants.is_empty(), runs);
    let warned = rows.iter().any(|r| r.warned);
    let mut head = lead.head.clone();
    "point".clone_into(&mut head[0]);
    let mut right = lead.right.clone();
    for (h, r) in [
        ("end_to_end p50", true),
        ("p99", true),
        ("p99.9", true),
        ("raised/s", true),
        ("lost", true),
        ("failures", true),
    ] {
        head.push(h.into());
        right.push(r);
    }
    if warned {
        head.push("note".into());
        right.push(false);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = lead.cells(r.cell.index, r.cell.parameters, r.cell.variant, r.cell.runs.len());
            cells.extend([
                latency(r.p50, " ± "),
                latency(r.p99, " ± "),
                latency(r.p999, " ± "),
                mean_count(r.rate),
                mean_count(r.lost),
                mean_count(r.failures),
            ]);
            if warned {
                cells.push(if r.warned { "warning (below)".into() } else { String::new() });
            }
            cells
        })
        .collect();
    s.push_str(&md_table(&head, &right, &table));
    s.push('\n');

    let pairs = paired_rows(report);
    if let (Some(base), false) = (sweep.variants.first(), pairs.is_empty()) {
        let _ = writeln!(s, "## Variants against the baseline ({})\n", base.name);
        let _ = writeln!(
            s,
            "The end_to_end latency of each variant minus the baseline's, replication by replication (the same seed): the mean difference ± the half width of its 95% confidence interval (Student t); significant when the interval leaves out zero.\n"
        );
        let mut head = vec!["point".to_owned()];
        let mut right = vec![true];
        for a in &sweep.axes {
            head.push(a.path.clone());
            right.push(false);
        }
        for (h, r) in [
            ("variant", false),
            ("end_to_end", false),
            (base.name.as_str(), true),
            ("difference", true),
            ("change", true),
            ("significant", false),
        ] {
            head.push(h.into());
            right.push(r);
        }
        let table: Vec<Vec<String>> = pairs
            .iter()
            .map(|(metric, p)| {
                let mut cells = vec![p.index.to_string()];
                cells.extend(
                    (0..sweep.axes.len()).map(|k| p.parameters.get(k).map_or(String::new(), |(_, v)| v.clone())),
                );
                let d = &p.difference;
                cells.extend([
                    p.variant.to_owned(),
                    (*metric).to_owned(),
                    fmt_ns_short(p.base.mean),
                    fmt_ns_pm(d.mean, d.half_width, " ± "),
                    fmt_pct(d.mean / p.base.mean),
                    significant(d).to_owned(),
                ]);
                cells
            })
            .collect();
        s.push_str(&md_table(&head, &right, &table));
        s.push('\n');
    }

    let warnings = warnings(report);
    if !warnings.is_empty() {
        let _ = writeln!(s, "## Warnings\n");
        let rows: Vec<Vec<String>> =
            warnings.iter().map(|n| vec![n.what.to_owned(), whereabouts(report, sweep, n)]).collect();
        s.push_str(&md_table(&["warning".into(), "runs".into()], &[false, false], &rows));
        s.push('\n');
    }
    let failures = failures(report);
    if !failures.is_empty() {
        let _ = writeln!(s, "## Failures in all runs\n");
        let rows: Vec<Vec<String>> = failures
            .iter()
            .map(|n| vec![n.what.to_owned(), n.per_run(), whereabouts(report, sweep, n), n.reason.to_owned()])
            .collect();
        s.push_str(&md_table(&["failure".into(), "count".into(), "runs".into(), "reason".into()], &[false; 4], &rows));
        s.push('\n');
    }
    s.push_str(&crate::replicated::markdown(report));
    let details = detail_runs(report);
    let which = if details.len() > 1 { "The first run of each variant" } else { "The first run" };
    let _ = writeln!(s, "## Runs in full\n\n{which}; every run's numbers are in `points.csv`.\n");
    s
}
