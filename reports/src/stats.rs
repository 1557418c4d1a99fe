//! Statistics over a report's runs: every metric of a run by name ([`metrics`], the names
//! `points.csv` uses), the runs of one sweep point in one variant ([`cells`]), means with
//! 95% Student-t confidence intervals over replications ([`Estimate`]), paired
//! differences between variants run with common random numbers ([`paired`]), and Welch's
//! interval for the difference of two independent sets of runs ([`Welch`]: two reports
//! run with different seeds).
//!
//! Why replications and not one long run: each replication is an independent run (its own
//! seed, its own warm-up), so the replication means are independent and identically
//! distributed, and the t interval over them is the method of independent replications
//! (Law, *Simulation Modeling and Analysis*, 5th ed., §9.4.1). A percentile is estimated
//! the same way: the mean of the replications' p99s, with their spread, never a percentile
//! of averaged histograms.
//!
//! Why paired differences: the variants of a sweep run replication `r` with the same seed,
//! so both see the same arrival and service draws where their models consume the streams
//! alike (common random numbers, Law §11.2). The difference of the two runs of one
//! replication then varies less than either run, and its t interval is narrower than the
//! one comparing two independent means.

use crate::schema::{PointReport, RunReport, Verdict};

/// The 97.5% quantile of Student's t distribution with `df` degrees of freedom: the factor
/// of a two-sided 95% confidence interval. Exact to three decimals from the standard table
/// for `df` up to 30; beyond, the Cornish-Fisher expansion in 1/df (Abramowitz and Stegun
/// 26.7.5), within 0.001 of the table there. `df` 0 has no interval: infinity.
pub fn t_975(df: u32) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df as usize - 1],
        _ => {
            let z: f64 = 1.959_963_984_540_054;
            let n = f64::from(df);
            let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
            z + (z3 + z) / (4.0 * n)
                + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * n * n)
                + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * n * n * n)
        }
    }
}

/// A mean over replications and its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Values it is over.
    pub n: u32,
    /// Their mean.
    pub mean: f64,
    /// Half the width of the 95% Student-t interval around the mean; `None` with one value.
    pub half_width: Option<f64>,
}

impl Estimate {
    /// The estimate from `values`, skipping NaN (a run where the metric has no value);
    /// `None` when no value is left.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let values: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
        let n = u32::try_from(values.len()).ok().filter(|&n| n > 0)?;
        let mean = values.iter().sum::<f64>() / f64::from(n);
        let half_width = (n >= 2).then(|| {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / f64::from(n - 1);
            t_975(n - 1) * (var / f64::from(n)).sqrt()
        });
        Some(Self { n, mean, half_width })
    }

    /// Whether the 95% interval leaves out zero (for a difference: the change is
    /// significant at the 5% level). Never with one value.
    pub fn excludes_zero(&self) -> bool {
        self.half_width.is_some_and(|h| self.mean.abs() > h)
    }

    /// Lower and upper ends of the interval (the mean twice with one value).
    pub fn interval(&self) -> (f64, f64) {
        let h = self.half_width.unwrap_or(0.0);
        (self.mean - h, self.mean + h)
    }
}

/// Welch's t interval for the difference of the means of two independent samples,
/// mean(b) − mean(a), when their variances may differ: the standard error
/// √(s²ₐ/nₐ + s²ᵦ/nᵦ) and the Welch–Satterthwaite degrees of freedom
/// (s²ₐ/nₐ + s²ᵦ/nᵦ)² / ((s²ₐ/nₐ)²/(nₐ−1) + (s²ᵦ/nᵦ)²/(nᵦ−1)), rounded down (the
/// conservative choice with a table of whole degrees of freedom).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// mean(b) − mean(a).
    pub difference: f64,
    /// Half the width of its 95% interval.
    pub half_width: f64,
    /// The degrees of freedom of the t quantile used.
    pub df: u32,
}

impl Welch {
    /// The interval of mean(b) − mean(a) from the two samples, skipping NaN; `None` unless
    /// each has at least two values. Two samples without spread have an interval of width
    /// zero (and `nₐ + nᵦ − 2` degrees of freedom).
    pub fn of(a: &[f64], b: &[f64]) -> Option<Self> {
        let moments = |x: &[f64]| {
            let x: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            (x.len(), mean, var / n)
        };
        let (na, ma, va) = moments(a);
        let (nb, mb, vb) = moments(b);
        if na < 2 || nb < 2 {
            return None;
        }
        let se2 = va + vb;
        let df = if se2 == 0.0 {
            (na + nb - 2) as f64
        } else {
            se2 * se2 / (va * va / (na - 1) as f64 + vb * vb / (nb - 1) as f64)
        };
        let df = (df.floor() as u32).max(1);
        Some(Self { difference: mb - ma, half_width: t_975(df) * se2.sqrt(), df })
    }

    /// Whether the 95% interval leaves out zero (the difference is significant at 5%).
    pub fn excludes_zero(&self) -> bool {
        self.difference.abs() > self.half_width
    }
}

/// A metric's value: a count (exact) or a real number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An exact count.
    Count(u64),
    /// A measured real (nanoseconds, a mean use).
    Real(f64),
}

impl Number {
    /// As a real number.
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Count(n) => n as f64,
            Self::Real(x) => x,
        }
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Real(x) => write!(f, "{x}"),
        }
    }
}

/// Every metric of a run by name, in a fixed order: `conservation.*`, then
/// `latency.<stage>.count` for every stage and
/// `latency.<stage>.{mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,max_ns}` for each stage with
/// samples, `resource.<name>.{used_min,used_mean,used_max,limit}`, `failures.total`
/// and every counter by its name.
pub fn metrics(p: &PointReport) -> Vec<(String, Number)> {
    let mut out = Vec::new();
    let c = &p.conservation;
    for (name, value) in [
        ("raised", c.raised),
        ("delivered", c.delivered),
        ("lost", c.lost),
        ("merged", c.merged),
        ("in_flight", c.in_flight),
    ] {
        out.push((format!("conservation.{name}"), Number::Count(value)));
    }
    for st in &p.stages {
        let stage = &st.stage;
        // A count is always a number (0 for a stage with no samples); its statistics exist
        // only with samples.
        out.push((format!("latency.{stage}.count"), Number::Count(st.count)));
        if st.count == 0 {
            continue;
        }
        for (name, value) in [
            ("mean_ns", st.mean_ns),
            ("p50_ns", st.p50_ns),
            ("p90_ns", st.p90_ns),
            ("p99_ns", st.p99_ns),
            ("p999_ns", st.p999_ns),
            ("max_ns", st.max_ns),
        ] {
            out.push((format!("latency.{stage}.{name}"), Number::Real(value)));
        }
    }
    for r in &p.resources {
        let name = &r.name;
        out.push((format!("resource.{name}.used_min"), Number::Count(u64::from(r.used_min))));
        out.push((format!("resource.{name}.used_mean"), Number::Real(r.used_mean)));
        out.push((format!("resource.{name}.used_max"), Number::Count(u64::from(r.used_max))));
        out.push((format!("resource.{name}.limit"), Number::Count(u64::from(r.limit))));
    }
    out.push(("failures.total".to_owned(), Number::Count(p.failures.iter().map(|f| f.count).sum())));
    for counter in &p.counters {
        out.push((counter.name.clone(), Number::Count(counter.value)));
    }
    out
}

/// One metric of a run by its name in [`metrics`]; `None` when the run has no such metric
/// (a stage with no samples).
pub fn metric(p: &PointReport, name: &str) -> Option<f64> {
    metrics(p).into_iter().find(|(n, _)| n == name).map(|(_, v)| v.as_f64())
}

/// The runs of one sweep point in one variant: its replications.
#[derive(Debug, Clone)]
pub struct Cell<'a> {
    /// The point's index.
    pub index: u32,
    /// The point's parameters.
    pub parameters: &'a [(String, String)],
    /// The variant, if the sweep has variants.
    pub variant: Option<&'a str>,
    /// Its runs, in replication order.
    pub runs: Vec<&'a PointReport>,
}

impl Cell<'_> {
    /// The estimate of `metric` over the replications.
    pub fn estimate(&self, metric: &str) -> Option<Estimate> {
        Estimate::of(self.runs.iter().map(|p| self::metric(p, metric).unwrap_or(f64::NAN)))
    }

    /// The point's parameters as `path=value, …` (empty without a sweep).
    pub fn label(&self) -> String {
        self.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    }
}

/// The report's runs grouped by (point, variant), in report order.
pub fn cells(report: &RunReport) -> Vec<Cell<'_>> {
    let mut out: Vec<Cell<'_>> = Vec::new();
    for p in &report.points {
        match out.last_mut() {
            Some(c) if c.index == p.index && c.variant == p.variant.as_deref() => c.runs.push(p),
            _ => out.push(Cell {
                index: p.index,
                parameters: &p.parameters,
                variant: p.variant.as_deref(),
                runs: vec![p],
            }),
        }
    }
    out
}

/// A variant against the baseline (the sweep's first variant) at one point.
#[derive(Debug, Clone)]
pub struct Paired<'a> {
    /// The point's index.
    pub index: u32,
    /// The point's parameters.
    pub parameters: &'a [(String, String)],
    /// The baseline variant.
    pub baseline: &'a str,
    /// The variant compared with it.
    pub variant: &'a str,
    /// The baseline's estimate.
    pub base: Estimate,
    /// The estimate of (variant − baseline) over the replications both have a value in.
    pub difference: Estimate,
}

/// For `metric`, every non-baseline variant against the baseline at every point, paired
/// by replication (same seed). Empty without at least two variants.
pub fn paired<'a>(report: &'a RunReport, metric: &str) -> Vec<Paired<'a>> {
    let cells = cells(report);
    let mut out = Vec::new();
    let Some(baseline) = report.sweep.as_ref().and_then(|s| s.variants.first()).map(|v| v.name.as_str()) else {
        return out;
    };
    for base in cells.iter().filter(|c| c.variant == Some(baseline)) {
        let Some(base_estimate) = base.estimate(metric) else { continue };
        for other in cells.iter().filter(|c| c.index == base.index && c.variant.is_some_and(|v| v != baseline)) {
            let diffs = base.runs.iter().filter_map(|b| {
                let o = other.runs.iter().find(|o| o.replication == b.replication)?;
                Some(self::metric(o, metric)? - self::metric(b, metric)?)
            });
            if let Some(difference) = Estimate::of(diffs) {
                out.push(Paired {
                    index: base.index,
                    parameters: base.parameters,
                    baseline,
                    variant: other.variant.unwrap_or_default(),
                    base: base_estimate,
                    difference,
                });
            }
        }
    }
    out
}

/// Whether `value` stands in relation `op` to `threshold` (false for NaN or an unknown op).
pub fn holds(value: f64, op: &str, threshold: f64) -> bool {
    match op {
        "<" => value < threshold,
        "<=" => value <= threshold,
        ">" => value > threshold,
        ">=" => value >= threshold,
        "==" => value == threshold,
        "!=" => !value.is_nan() && value != threshold,
        _ => false,
    }
}

/// Every expectation of the report judged at every cell (point, variant), in expectation
/// order then cell order: the metric's mean over the cell's replications against the
/// threshold. A cell where the metric has no value (a stage with no samples, a name no run
/// has) fails, with the value `NaN`.
pub fn judge(report: &RunReport) -> Vec<Verdict> {
    let cells = cells(report);
    let mut out = Vec::new();
    for e in &report.expect {
        for c in &cells {
            let value = c.estimate(&e.metric).map_or(f64::NAN, |est| est.mean);
            out.push(Verdict {
                expectation: e.text.clone(),
                metric: e.metric.clone(),
                point: c.index,
                variant: c.variant.map(str::to_owned),
                value,
                held: holds(value, &e.op, e.threshold),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_table_and_the_normal_limit() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(9), 2.262);
        // Beyond the table: the expansion against the published values for 40, 60, 120.
        for (df, table) in [(31, 2.040), (40, 2.021), (60, 2.000), (120, 1.980)] {
            assert!((t_975(df) - table).abs() < 0.001, "df {df}: {} vs {table}", t_975(df));
        }
        // The expansion meets the table at 30.
        let n = 30.0f64;
        let z: f64 = 1.959_963_984_540_054;
        let cf = z + (z.powi(3) + z) / (4.0 * n) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n);
        assert!((cf - 2.042).abs() < 0.001);
        assert!(t_975(0).is_infinite());
    }

    #[test]
    fn estimate_is_the_t_interval() {
        // 1, 2, 3, 4, 5: mean 3, s² = 2.5, s/√5 = 0.7071, t(4) = 2.776.
        let e = Estimate::of([1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(e.n, 5);
        assert_eq!(e.mean, 3.0);
        let h = e.half_width.unwrap();
        assert!((h - 2.776 * (0.5f64).sqrt()).abs() < 1e-12, "{h}");
        assert!(e.excludes_zero());
        // NaN is skipped; one value has no interval and is never significant.
        let one = Estimate::of([f64::NAN, 7.0]).unwrap();
        assert_eq!((one.n, one.mean, one.half_width), (1, 7.0, None));
        assert!(!one.excludes_zero());
        assert!(Estimate::of([f64::NAN]).is_none());
        // A spread that straddles zero.
        assert!(!Estimate::of([-1.0, 1.0, 0.5]).unwrap().excludes_zero());
    }

    #[test]
    fn comparisons_hold_as_written_and_nan_never_holds() {
        assert!(holds(9.0, "<", 10.0) && !holds(10.0, "<", 10.0) && holds(10.0, "<=", 10.0));
        assert!(holds(11.0, ">", 10.0) && holds(10.0, ">=", 10.0) && holds(0.0, "==", 0.0));
        assert!(holds(1.0, "!=", 0.0) && !holds(0.0, "!=", 0.0));
        for op in ["<", "<=", ">", ">=", "==", "!="] {
            assert!(!holds(f64::NAN, op, 0.0), "{op}");
        }
        assert!(!holds(1.0, "~", 1.0));
    }

    #[test]
    fn welch_interval_by_hand() {
        // a = 10, 12, 14: mean 12, s²/n = 4/3. b = 13, 17, 21, 25: mean 19, s²/n = 80/3/4
        // = 20/3. se² = 8; df = 64 / ((4/3)²/2 + (20/3)²/3) = 4.0755, so 4: t = 2.776.
        let w = Welch::of(&[10.0, 12.0, 14.0], &[13.0, 17.0, 21.0, 25.0]).unwrap();
        assert_eq!((w.difference, w.df), (7.0, 4));
        assert!((w.half_width - 2.776 * 8f64.sqrt()).abs() < 1e-12, "{w:?}");
        assert!(!w.excludes_zero());
        // One value on a side: no interval. No spread: a zero-width interval.
        assert!(Welch::of(&[1.0], &[2.0, 3.0]).is_none());
        let exact = Welch::of(&[4.0, 4.0], &[5.0, 5.0, 5.0]).unwrap();
        assert_eq!((exact.difference, exact.half_width, exact.df), (1.0, 0.0, 3));
        assert!(exact.excludes_zero());
    }
}
