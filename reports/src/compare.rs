//! Two reports side by side for a reply ([`compare`]): for each cell (sweep point and
//! variant) both have, the key metrics of A and B, the change and whether it is
//! significant: a paired t interval over the replications when both used the same seeds
//! (common random numbers), Welch's t interval otherwise, no test with one run on a side.
//! 72 columns, ASCII.

use std::fmt::Write as _;

use crate::plain::{MAIL_WIDTH, Table, fit_mail, fmt_ns_short, fmt_si, wrap};
use crate::schema::RunReport;
use crate::stats::{Cell, Estimate, Welch, cells, metric};

/// How B − A is tested in a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// Runs with the same seed paired: a t interval on the per-replication differences.
    Paired,
    /// Independent samples: Welch's t interval.
    Welch,
    /// One run on a side: no test.
    One,
}

/// B − A of one metric in one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Delta {
    /// Mean of A's runs.
    a: f64,
    /// Mean of B's runs.
    b: f64,
    /// B − A and the half width of its 95% interval (`None`: no test possible).
    difference: f64,
    half_width: Option<f64>,
}

impl Delta {
    /// `yes`, `no`, or `n=1` without a test.
    fn significant(&self) -> &'static str {
        match self.half_width {
            None => "n=1",
            Some(h) if self.difference.abs() > h => "yes",
            Some(_) => "no",
        }
    }

    /// The change in percent of A, with the half width in the same terms when tested:
    /// `+11.5+-7.1%`.
    fn change(&self) -> String {
        if self.difference == 0.0 && self.half_width.is_none_or(|h| h == 0.0) {
            return "0%".into();
        }
        if self.a == 0.0 || !self.a.is_finite() || !self.difference.is_finite() {
            return "-".into();
        }
        let pct = 100.0 * self.difference / self.a.abs();
        match self.half_width {
            Some(h) => format!("{pct:+.1}+-{:.1}%", 100.0 * h / self.a.abs()),
            None => format!("{pct:+.1}%"),
        }
    }
}

/// B − A of `metric` over the runs of cells `a` and `b`: paired by replication with
/// [`Method::Paired`], Welch with [`Method::Welch`]; `None` when a side has no value.
fn delta(a: &Cell<'_>, b: &Cell<'_>, name: &str, method: Method) -> Option<Delta> {
    let values = |c: &Cell<'_>| -> Vec<f64> { c.runs.iter().map(|p| metric(p, name).unwrap_or(f64::NAN)).collect() };
    let (va, vb) = (values(a), values(b));
    let ea = Estimate::of(va.iter().copied())?;
    let eb = Estimate::of(vb.iter().copied())?;
    let (difference, half_width) = match method {
        Method::Paired => {
            let diffs = a.runs.iter().zip(&va).filter_map(|(pa, x)| {
                let k = b.runs.iter().position(|pb| pb.replication == pa.replication)?;
                Some(vb[k] - x)
            });
            match Estimate::of(diffs) {
                Some(d) => (d.mean, d.half_width),
                None => (eb.mean - ea.mean, None),
            }
        }
        Method::Welch => match Welch::of(&va, &vb) {
            Some(w) => (w.difference, Some(w.half_width)),
            None => (eb.mean - ea.mean, None),
        },
        Method::One => (eb.mean - ea.mean, None),
    };
    Some(Delta { a: ea.mean, b: eb.mean, difference, half_width })
}

/// The heading row of the resources, whose rows are their names indented.
const RESOURCES: &str = "most used per instance:";

/// The metrics compared: (label, metric name, a duration?); the resources' rows follow a
/// row labelled [`RESOURCES`] with no metric.
fn compared(a: &Cell<'_>, b: &Cell<'_>) -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = [
        ("end_to_end mean", "latency.end_to_end.mean_ns", true),
        ("end_to_end p50", "latency.end_to_end.p50_ns", true),
        ("end_to_end p99", "latency.end_to_end.p99_ns", true),
        ("end_to_end p99.9", "latency.end_to_end.p999_ns", true),
        ("raised", "conservation.raised", false),
        ("lost", "conservation.lost", false),
        ("failures", "failures.total", false),
    ]
    .map(|(l, m, d)| (l.to_owned(), m.to_owned(), d))
    .to_vec();
    let mut resources: Vec<&str> = Vec::new();
    for p in a.runs.iter().take(1).chain(b.runs.iter().take(1)) {
        for r in &p.resources {
            if !resources.contains(&r.name.as_str()) {
                resources.push(&r.name);
            }
        }
    }
    if !resources.is_empty() {
        out.push((RESOURCES.to_owned(), String::new(), false));
    }
    for r in resources {
        out.push((format!("  {r}"), format!("resource.{r}.used_max"), false));
    }
    out
}

/// `point (path=value, …), variant`, or `the run` for a report of one run.
fn cell_title(c: &Cell<'_>) -> String {
    match (c.parameters.is_empty(), c.variant) {
        (true, None) => "the run".to_owned(),
        (true, Some(v)) => format!("variant {v}"),
        (false, None) => c.label(),
        (false, Some(v)) => format!("{}, variant {v}", c.label()),
    }
}

/// A report's header lines: label, scenario, seed, runs, version, sha256.
fn describe(letter: &str, label: &str, r: &RunReport) -> String {
    let runs = r.points.len();
    let line = format!(
        "scenario {}, seed {}, {runs} run{}, irqsim {}",
        r.scenario.name,
        r.seed,
        if runs == 1 { "" } else { "s" },
        r.irqsim_version
    );
    let mut s = wrap(&format!("{letter}: {label}"), MAIL_WIDTH, "   ");
    s.push_str(&wrap(&format!("   {line}"), MAIL_WIDTH, "   "));
    let _ = writeln!(s, "sha256 {}", r.scenario.sha256);
    s
}

/// Reports `a` and `b` (labelled `a_label`, `b_label`, e.g. their folders) compared cell by
/// cell, for a reply: in 72 columns, for each cell both have (the same point parameters
/// and variant), the end_to_end mean, p50, p99 and p99.9, raised, lost, failures and each
/// resource's most used, as A's mean, B's mean, the change (B − A in % of A, ± the 95%
/// half width) and whether it is significant (the 95% interval of B − A leaves out zero).
///
/// The test: when both reports ran the same replication seeds (a sweep's `seeds` equal),
/// the t interval of the per-replication differences (the runs of replication r saw the
/// same random numbers); otherwise Welch's t interval (Welch–Satterthwaite degrees of
/// freedom, rounded down); `n=1` when a side has one run. The cells only one report has are
/// listed at the end. The reports may come from different scenarios (comparing an MSI-X
/// and an IMS scenario is the point): both names and hashes head the table.
///
/// Fails, with a sentence saying why, when the reports share no cell.
pub fn compare(a: &RunReport, a_label: &str, b: &RunReport, b_label: &str) -> Result<String, String> {
    let (ca, cb) = (cells(a), cells(b));
    let key = |c: &Cell<'_>| (c.parameters.to_vec(), c.variant.map(str::to_owned));
    let shared: Vec<(&Cell<'_>, &Cell<'_>)> =
        ca.iter().filter_map(|x| cb.iter().find(|y| key(y) == key(x)).map(|y| (x, y))).collect();
    if shared.is_empty() {
        let some = |cs: &[Cell<'_>]| cs.first().map_or_else(|| "no run".to_owned(), cell_title);
        return Err(format!(
            "{a_label} and {b_label} share no sweep point and variant to compare (the first of {a_label} is `{}`, of {b_label} `{}`): compare reports of the same sweep points",
            some(&ca),
            some(&cb)
        ));
    }
    // The replications' seeds; a report without a sweep ran one replication with its seed.
    let seeds = |r: &RunReport| r.sweep.as_ref().map_or_else(|| vec![r.seed], |s| s.seeds.clone());
    let same_seeds = !seeds(a).is_empty() && seeds(a) == seeds(b);

    let mut s = String::from("irqsim compare, B against A:\n");
    s.push_str(&describe("A", a_label, a));
    s.push_str(&describe("B", b_label, b));
    let test = if same_seeds {
        "paired: a t interval over the replications, as both reports used the same seeds"
    } else {
        "Welch: Welch's t interval, as the reports used different seeds"
    };
    let legend = format!(
        "A, B: means over each cell's runs. change: B - A in % of A, +- the 95% half width. signif.: whether the 95% interval of B - A leaves out 0 ({test}; n=1: one run on a side, no test)."
    );
    s.push_str(&wrap(&legend, MAIL_WIDTH, ""));

    for (x, y) in &shared {
        let (na, nb) = (x.runs.len(), y.runs.len());
        let method = if na < 2 || nb < 2 {
            Method::One
        } else if same_seeds {
            Method::Paired
        } else {
            Method::Welch
        };
        let how = match method {
            Method::Paired => "paired",
            Method::Welch => "Welch",
            Method::One => "no test",
        };
        let runs = if na == nb {
            format!("{na} run{} each", if na == 1 { "" } else { "s" })
        } else {
            format!("{na} vs {nb} runs")
        };
        let _ = write!(s, "\n{}", wrap(&format!("{}: {runs}, {how}", cell_title(x)), MAIL_WIDTH, "  "));
        let mut table = Table::new(
            ["metric", "A", "B", "change", "signif."].map(str::to_owned).to_vec(),
            vec![false, true, true, true, false],
        );
        for (label, name, duration) in compared(x, y) {
            if name.is_empty() {
                table.row(vec![label, String::new(), String::new(), String::new(), String::new()]);
                continue;
            }
            let shown = |v: f64| if duration { fmt_ns_short(v) } else { fmt_si(v) };
            match delta(x, y, &name, method) {
                Some(d) => table.row(vec![label, shown(d.a), shown(d.b), d.change(), d.significant().to_owned()]),
                None => {
                    let side = |c: &Cell<'_>| {
                        Estimate::of(c.runs.iter().map(|p| metric(p, &name).unwrap_or(f64::NAN)))
                            .map_or_else(|| "-".to_owned(), |e| shown(e.mean))
                    };
                    table.row(vec![label, side(x), side(y), "-".into(), "-".into()]);
                }
            }
        }
        s.push_str(&table.render_or_records(MAIL_WIDTH));
    }

    let mut only = String::new();
    for (letter, mine, theirs) in [("A", &ca, &cb), ("B", &cb, &ca)] {
        let cells: Vec<String> =
            mine.iter().filter(|x| !theirs.iter().any(|y| key(y) == key(x))).map(cell_title).collect();
        if !cells.is_empty() {
            only.push_str(&wrap(&format!("only in {letter}: {}", cells.join("; ")), MAIL_WIDTH, "  "));
        }
    }
    if !only.is_empty() {
        let _ = write!(s, "\n{only}");
    }
    // A word longer than a line (a long label) is all that can be left too wide.
    Ok(fit_mail(&s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::*;

    /// A run of point `index` (rate `rate`) in `variant`, replication `rep`, whose
    /// end_to_end p99 is `p99` ns.
    fn run(index: u32, rate: &str, variant: &str, rep: u32, seed: u64, p99: f64) -> PointReport {
        PointReport {
            index,
            parameters: vec![("devices[0].arrival.rate".into(), rate.into())],
            variant: Some(variant.into()),
            replication: rep,
            seed,
            run: RunInfo { stop_reason: "time_end".into(), event_count: 100, simulated_ns: 1e6, warnings: Vec::new() },
            conservation: Conservation { raised: 20, delivered: 20, lost: 0, merged: 0, in_flight: 0 },
            stages: vec![StageSummary {
                stage: "end_to_end".into(),
                description: "all".into(),
                count: 20,
                mean_ns: 1000.0,
                p50_ns: 900.0,
                p90_ns: 1500.0,
                p99_ns: p99,
                p999_ns: p99 + 100.0,
                max_ns: p99 + 200.0,
                histogram: vec![],
            }],
            failures: vec![],
            resources: vec![ResourceRow {
                name: "x86.vectors_per_cpu".into(),
                instances: 4,
                used_min: 1,
                used_mean: 2.0,
                used_max: 3,
                limit: 200,
            }],
            counters: vec![],
            tables: vec![],
        }
    }

    /// A sweep report over `rates` in variant `lapic` with `p99s[point][rep]`.
    fn report(name: &str, seeds: &[u64], rates: &[&str], p99s: &[&[f64]]) -> RunReport {
        let mut points = Vec::new();
        for (i, (rate, values)) in rates.iter().zip(p99s).enumerate() {
            for (r, &v) in values.iter().enumerate() {
                points.push(run(i as u32, rate, "lapic", r as u32, seeds[r], v));
            }
        }
        RunReport {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            irqsim_version: "0.1.0".into(),
            scenario: ScenarioInfo {
                name: name.into(),
                description: String::new(),
                source: format!("{name}.yaml"),
                sha256: "0".repeat(64),
                text: String::new(),
            },
            seed: seeds[0],
            reproduce: format!("irqsim run {name}.yaml --seed {}", seeds[0]),
            expect: Vec::new(),
            sweep: Some(SweepInfo {
                axes: vec![AxisInfo {
                    path: "devices[0].arrival.rate".into(),
                    label: false,
                    values: rates.iter().map(|r| (*r).to_owned()).collect(),
                }],
                combine: "grid".into(),
                point_count: rates.len() as u32,
                replications: seeds.len() as u32,
                seeds: seeds.to_vec(),
                variants: vec![VariantInfo { name: "lapic".into(), set: vec![] }],
            }),
            shard: None,
            verdicts: vec![],
            points,
        }
    }

    fn p99_row<'t>(out: &'t str, cell: &str) -> &'t str {
        let at = out.find(cell).unwrap_or_else(|| panic!("no {cell} in\n{out}"));
        out[at..].lines().find(|l| l.starts_with("end_to_end p99 ")).unwrap()
    }

    #[test]
    fn the_same_seeds_pair_the_replications() {
        // Per-replication differences 1, 2, 1, 2 ns: mean 1.5, s² = 1/3,
        // half width t(3) √(1/3 / 4) = 3.182 × 0.288675 = 0.918565.
        let a = report("msix", &[1, 2, 3, 4], &["20k/s"], &[&[10.0, 12.0, 14.0, 16.0]]);
        let b = report("ims", &[1, 2, 3, 4], &["20k/s"], &[&[11.0, 14.0, 15.0, 18.0]]);
        let (ca, cb) = (cells(&a), cells(&b));
        let d = delta(&ca[0], &cb[0], "latency.end_to_end.p99_ns", Method::Paired).unwrap();
        assert_eq!((d.a, d.b, d.difference), (13.0, 14.5, 1.5));
        assert!((d.half_width.unwrap() - 3.182 * (1.0f64 / 12.0).sqrt()).abs() < 1e-12, "{d:?}");
        assert_eq!(d.significant(), "yes");
        // The change: 1.5 / 13 = +11.5%, half width 0.9186 / 13 = 7.1%.
        assert_eq!(d.change(), "+11.5+-7.1%");
        let out = compare(&a, "msix", &b, "ims").unwrap();
        assert!(out.replace('\n', " ").contains("paired: a t interval over the replications"), "{out}");
        assert_eq!(
            p99_row(&out, "devices[0].arrival.rate=20k/s"),
            "end_to_end p99            13.0ns   14.5ns  +11.5+-7.1%  yes"
        );

        // The same numbers as independent samples are not significant: Welch, se² = 20/3/4
        // + 25/3/4 = 3.75, df = 3.75² / ((5/3)²/3 + (25/12)²/3) = 5.93, so 5: t = 2.571.
        let w = delta(&ca[0], &cb[0], "latency.end_to_end.p99_ns", Method::Welch).unwrap();
        assert_eq!(w.difference, 1.5);
        assert!((w.half_width.unwrap() - 2.571 * 3.75f64.sqrt()).abs() < 1e-12, "{w:?}");
        assert_eq!(w.significant(), "no");
    }

    #[test]
    fn different_seeds_take_welch_and_one_run_takes_no_test() {
        // a = 10, 12, 14; b = 13, 17, 21, 25: difference 7, half width 2.776 × √8 = 7.852
        // (stats::tests::welch_interval_by_hand): not significant.
        let a = report("a", &[1, 2, 3], &["20k/s", "60k/s"], &[&[10.0, 12.0, 14.0], &[5.0, 5.0, 5.0]]);
        let b = report("b", &[5, 6, 7, 8], &["20k/s", "120k/s"], &[&[13.0, 17.0, 21.0, 25.0], &[1.0; 4]]);
        let (ca, cb) = (cells(&a), cells(&b));
        let d = delta(&ca[0], &cb[0], "latency.end_to_end.p99_ns", Method::Welch).unwrap();
        assert_eq!(d.difference, 7.0);
        assert!((d.half_width.unwrap() - 2.776 * 8f64.sqrt()).abs() < 1e-12);
        let out = compare(&a, "a", &b, "b").unwrap();
        assert!(out.replace('\n', " ").contains("Welch: Welch's t interval, as the reports used"), "{out}");
        assert!(out.contains("3 vs 4 runs, Welch\n"), "{out}");
        assert_eq!(p99_row(&out, "20k/s"), "end_to_end p99            12.0ns   19.0ns  +58.3+-65.4%  no");
        // Unchanged counts: a zero-width interval that holds zero.
        assert!(out.contains("\nraised                        20       20            0%  no\n"), "{out}");
        // The cells only one report has are listed.
        assert!(out.contains("only in A: devices[0].arrival.rate=60k/s, variant lapic"), "{out}");
        assert!(out.contains("only in B: devices[0].arrival.rate=120k/s, variant lapic"), "{out}");

        let one = report("one", &[9], &["20k/s"], &[&[11.0]]);
        let out = compare(&a, "a", &one, "one").unwrap();
        assert_eq!(p99_row(&out, "20k/s"), "end_to_end p99            12.0ns   11.0ns   -8.3%  n=1");
        assert!(out.lines().all(|l| l.chars().count() <= MAIL_WIDTH), "{out}");
    }

    #[test]
    fn reports_with_no_cell_in_common_are_refused_with_a_reason() {
        let a = report("a", &[1, 2], &["20k/s"], &[&[1.0, 2.0]]);
        let b = report("b", &[1, 2], &["60k/s"], &[&[1.0, 2.0]]);
        let e = compare(&a, "A.json", &b, "B.json").unwrap_err();
        assert!(e.contains("share no sweep point and variant"), "{e}");
    }
}
