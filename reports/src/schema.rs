//! The report.json schema (version 3; versions 1 and 2 still read) and its construction from an engine metrics snapshot.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sim::{MetricsSnapshot, Unit};

/// The `format` field of every report.
pub const FORMAT_NAME: &str = "irqsim-report";
/// The schema version; bumped on any incompatible change (docs/report-format.md).
pub const FORMAT_VERSION: u32 = 3;

/// One run of one scenario: every sweep point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] when written by this version.
    pub format_version: u32,
    /// The irqsim version that produced it.
    pub irqsim_version: String,
    /// Which scenario, exactly.
    pub scenario: ScenarioInfo,
    /// The run seed.
    pub seed: u64,
    /// The command that reproduces this report.
    pub reproduce: String,
    /// The sweep the points come from; absent for a scenario without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepInfo>,
    /// Which share of the sweep's runs this report holds, when it is one shard of several
    /// (`irqsim run --shard I/N`); absent when it holds them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// The scenario's `expect` lines, in the scenario's order; absent when it states none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<Expectation>,
    /// Each expectation judged at every sweep point and variant (`stats::judge`); absent
    /// without expectations, and in a shard (judged when the shards are merged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
    /// Results, one per run (a sweep point in one variant and one replication), ordered by
    /// point, then variant, then replication.
    pub points: Vec<PointReport>,
}

/// A sweep as it was run: its axes, how they combine, the replications and the variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepInfo {
    /// The axes, in the scenario's order.
    pub axes: Vec<AxisInfo>,
    /// `grid` (every combination) or `zip` (the axes' values taken together).
    pub combine: String,
    /// Points of the sweep (combinations of axis values).
    pub point_count: u32,
    /// Runs of each point in each variant, with seeds derived from the run seed.
    pub replications: u32,
    /// The seed of each replication, in replication order (the same for every point and
    /// variant: common random numbers).
    pub seeds: Vec<u64>,
    /// The named variants, in the scenario's order; the first is the baseline of every
    /// paired comparison. Empty without variants.
    pub variants: Vec<VariantInfo>,
}

/// One expectation of the scenario: a metric, a comparison and a threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// As written in the scenario (`end_to_end.p99 < 10us`).
    pub text: String,
    /// The metric it judges, by its `points.csv` name (`latency.end_to_end.p99_ns`).
    pub metric: String,
    /// `<`, `<=`, `>`, `>=`, `==` or `!=`.
    pub op: String,
    /// The threshold in the metric's unit (nanoseconds for latencies).
    pub threshold: f64,
}

/// Whether one expectation of the scenario held at one sweep point in one variant, as
/// kvm-unit-tests says PASS or FAIL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// The expectation as written in the scenario (`end_to_end.p99 < 10us`).
    pub expectation: String,
    /// The metric it judges, by its `points.csv` name (`latency.end_to_end.p99_ns`).
    pub metric: String,
    /// The point's index.
    pub point: u32,
    /// The variant, if the sweep has variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The metric's mean over the replications (`null` when no run has a value).
    #[serde(deserialize_with = "null_as_nan")]
    pub value: f64,
    /// Whether the expectation held (false when there is no value).
    pub held: bool,
}

impl SweepInfo {
    /// Runs of the whole sweep (points × variants × replications), `None` past `u64` (only
    /// an edited report gets there).
    pub fn run_count(&self) -> Option<u64> {
        u64::from(self.point_count)
            .checked_mul(self.variants.len().max(1) as u64)?
            .checked_mul(u64::from(self.replications))
    }
}

/// One sweep axis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxisInfo {
    /// The scenario field it sets, as a path (`devices[0].queues`), or a label axis's name.
    pub path: String,
    /// A label axis: it names the points and sets no field.
    #[serde(default, skip_serializing_if = "is_false")]
    pub label: bool,
    /// Its values, as written in the scenario.
    pub values: Vec<String>,
}

/// One named variant of a sweep: fields set on top of every point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantInfo {
    /// Its name.
    pub name: String,
    /// The fields it sets, `[path, value]`, in the scenario's order.
    pub set: Vec<(String, String)>,
}

/// Which shard of a sweep a report holds: the runs whose position in run order is `index`
/// modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// 0-based shard index.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

/// The scenario a report came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioInfo {
    /// The scenario's `name`.
    pub name: String,
    /// The scenario's `description`.
    pub description: String,
    /// Where it was read from (a path, or `builtin:NAME`).
    pub source: String,
    /// SHA-256 of the scenario file's bytes, hex.
    pub sha256: String,
    /// The scenario file itself, so that a report says exactly what ran and reruns without
    /// the file (empty in reports of format version 2 and earlier).
    #[serde(default)]
    pub text: String,
}

/// The results of one sweep point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointReport {
    /// 0-based point index (the combination of axis values; the same for each variant and
    /// replication of the point).
    pub index: u32,
    /// The swept parameters' values at this point (empty without a sweep), in axis order.
    pub parameters: Vec<(String, String)>,
    /// The sweep variant this run is in; absent without variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// 0-based replication (0 without replications).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replication: u32,
    /// The seed of this run's random streams.
    #[serde(default)]
    pub seed: u64,
    /// How the run ended.
    pub run: RunInfo,
    /// Where every raised interrupt ended up.
    pub conservation: Conservation,
    /// Per-stage latency, in pipeline order, end to end last.
    pub stages: Vec<StageSummary>,
    /// Modelled failures with a non-zero count.
    pub failures: Vec<Failure>,
    /// Use of each limited resource against its limit.
    pub resources: Vec<ResourceRow>,
    /// Every counter, in registration order.
    pub counters: Vec<CounterRow>,
    /// Fixed-layout text tables from the models (e.g. the kernel's irq matrix table).
    pub tables: Vec<TextTable>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A table a model renders in a fixed, familiar layout (kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextTable {
    /// What it is, e.g. `x86 vector matrix (/sys/kernel/debug/irq/domains/VECTOR)`.
    pub name: String,
    /// The table, lines separated by newlines.
    pub text: String,
    /// The same table as data, where the model gives it so (the interrupt sources, the
    /// vector matrix's per-CPU rows): the column names…
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// …and the rows, each a value per column, as text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Vec<String>>,
    /// The text is at most 72 columns wide, so the plain-text summary and the mail show it
    /// too (the other tables are in `summary.md` and `index.html` only).
    #[serde(default, skip_serializing_if = "is_false")]
    pub narrow: bool,
    /// Where the rows are numbers a sweep summarises over the replications of a cell: one
    /// role per column. `key` (text that names the row; rows of different runs are matched
    /// by their key cells; shown in every rendering), `detail` (text that goes with the key,
    /// too long for the mail: shown in `summary.md` and `index.html`), `share` (an exact
    /// fraction `n/d`, the same in every replication: shown as a percentage) and `mean` (a
    /// number or a fraction per run, `-` for none: the mean ± the 95% half width over the
    /// replications). Empty (absent) for a table that is only shown run by run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The key cells of the row a sweep's plot draws against the first axis (its shares and
    /// means over the replications, `plot-table`); empty (absent) for none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plot_row: Vec<String>,
}

/// How a point's run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    /// `time_end`, `queue_empty` or `event_count_max`.
    pub stop_reason: String,
    /// Events handled.
    pub event_count: u64,
    /// Simulated time covered, in nanoseconds.
    pub simulated_ns: f64,
    /// What a reader must know before trusting the numbers as steady-state values (an
    /// overloaded CPU, a run shorter than the queues' relaxation time); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Interrupt conservation at the end of a point: raised = delivered + lost + merged +
/// in_flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conservation {
    /// Raised by devices.
    pub raised: u64,
    /// Handled to completion.
    pub delivered: u64,
    /// Modelled losses.
    pub lost: u64,
    /// Merged into a pending bit that was already set (a masked MSI-X entry).
    pub merged: u64,
    /// Still on the way, pending in a masked entry, or queued at a CPU when the run stopped.
    pub in_flight: u64,
}

/// Latency summary of one stage, in nanoseconds. A stage with no samples has `count` 0 and
/// every statistic `null` in `report.json` (NaN in memory): there is no value, not a zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSummary {
    /// Stage name (`msi_write`, `remap`, …, `end_to_end`).
    pub stage: String,
    /// What the stage measures.
    pub description: String,
    /// Samples.
    pub count: u64,
    /// Exact mean.
    #[serde(deserialize_with = "null_as_nan")]
    pub mean_ns: f64,
    /// Median (3 significant digits).
    #[serde(deserialize_with = "null_as_nan")]
    pub p50_ns: f64,
    /// 90th percentile.
    #[serde(deserialize_with = "null_as_nan")]
    pub p90_ns: f64,
    /// 99th percentile.
    #[serde(deserialize_with = "null_as_nan")]
    pub p99_ns: f64,
    /// 99.9th percentile.
    #[serde(deserialize_with = "null_as_nan")]
    pub p999_ns: f64,
    /// Exact maximum.
    #[serde(deserialize_with = "null_as_nan")]
    pub max_ns: f64,
    /// The distribution, for the CDF and histograms: counts in buckets of a quarter octave
    /// (upper bounds 2^(k/4) ns, rounded to the picosecond), buckets with no sample left
    /// out, in increasing order. Only for `end_to_end`; empty elsewhere and in reports of
    /// format version 2 and earlier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histogram: Vec<Bucket>,
}

/// One histogram bucket: the samples above the previous bucket's bound and at most `le_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Upper bound (inclusive), in nanoseconds.
    pub le_ns: f64,
    /// Samples in the bucket.
    pub count: u64,
}

/// `null` (a stage with no samples) as NaN; serde_json writes NaN back as `null`.
fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A modelled failure and how often it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// Counter name.
    pub name: String,
    /// How many times.
    pub count: u64,
    /// Why, in the kernel's or the spec's words where there are some.
    pub reason: String,
    /// The first occurrence, as the kernel (or the fault log) would have printed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<FailureLine>,
    /// The last occurrence (absent when it happened once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<FailureLine>,
}

/// One occurrence of a failure: when, and the line with its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureLine {
    /// Simulated time, in nanoseconds.
    pub at_ns: f64,
    /// The line.
    pub line: String,
}

/// One limited resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRow {
    /// What is counted.
    pub name: String,
    /// Instances the limit applies to separately (CPUs, functions, IOMMUs).
    pub instances: u32,
    /// Least used on one instance.
    pub used_min: u32,
    /// Mean use per instance.
    pub used_mean: f64,
    /// Most used on one instance.
    pub used_max: u32,
    /// Limit per instance.
    pub limit: u32,
}

/// One counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterRow {
    /// Dotted name.
    pub name: String,
    /// Unit (`count`, `ps`).
    pub unit: String,
    /// Value.
    pub value: u64,
    /// What it counts.
    pub description: String,
}

/// Wall-clock facts about a run. Not deterministic, so never part of `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfInfo {
    /// Events handled over all points.
    pub event_count: u64,
    /// Wall-clock seconds spent simulating (building and running, not writing).
    pub wall_s: f64,
    /// Events per wall-clock second.
    pub events_per_s: f64,
    /// Simulated seconds per wall-clock second.
    pub sim_per_wall: f64,
    /// Peak resident memory of the process in bytes, where the OS tells it.
    pub peak_rss_bytes: Option<u64>,
    /// Events per raised interrupt, over all points (the cost unit of a run).
    #[serde(default)]
    pub events_per_interrupt: f64,
    /// Peak resident memory per queue of the scenario, where the OS tells it.
    #[serde(default)]
    pub bytes_per_queue: Option<f64>,
    /// Worker threads used for the points.
    pub threads: usize,
}

/// Rounds to whole picoseconds so that reports carry no spurious digits.
fn ns(ps: f64) -> f64 {
    (ps).round() / 1000.0
}

/// The metric parts of a point: stages from `latency.*_ps` histograms, all counters, and
/// failures from the non-zero counters registered as failure counters.
pub fn point_from_metrics(snapshot: &MetricsSnapshot) -> (Vec<StageSummary>, Vec<CounterRow>, Vec<Failure>) {
    let stages = snapshot
        .histograms
        .iter()
        .filter(|h| h.info.unit == Unit::Picoseconds)
        .filter_map(|h| {
            let stage = h.info.name.strip_prefix("latency.")?.strip_suffix("_ps")?;
            // No samples: no statistic (NaN, written as null), not a zero.
            let value = |v: f64| if h.count == 0 { f64::NAN } else { ns(v) };
            let q = |i: usize| value(h.quantiles[i] as f64);
            Some(StageSummary {
                stage: stage.to_owned(),
                description: h.info.description.clone(),
                count: h.count,
                mean_ns: value(h.mean()),
                p50_ns: q(0),
                p90_ns: q(1),
                p99_ns: q(2),
                p999_ns: q(3),
                max_ns: value(h.max as f64),
                histogram: if stage == "end_to_end" {
                    h.buckets.iter().map(|&(le, count)| Bucket { le_ns: ns(le as f64), count }).collect()
                } else {
                    Vec::new()
                },
            })
        })
        .collect();
    let counters = snapshot
        .counters
        .iter()
        .map(|(info, value)| CounterRow {
            name: info.name.clone(),
            unit: info.unit.as_str().to_owned(),
            value: *value,
            description: info.description.clone(),
        })
        .collect();
    let line = |e: &sim::FailureExample| FailureLine { at_ns: ns(e.at.as_ps() as f64), line: e.line.clone() };
    let failures = snapshot
        .counters
        .iter()
        .zip(&snapshot.examples)
        .filter(|((info, value), _)| *value > 0 && info.failure)
        .map(|((info, value), examples)| Failure {
            name: info.name.clone(),
            count: *value,
            reason: info.description.clone(),
            first: examples.as_ref().map(|e| line(&e.first)),
            last: examples.as_ref().filter(|_| *value > 1).map(|e| line(&e.last)),
        })
        .collect();
    (stages, counters, failures)
}

/// The most a `report.json` may weigh: the largest catalog report is under 50 KiB, so
/// 64 MiB is far beyond any real one and still refuses a wrong file before reading it all.
pub const REPORT_SIZE_MAX: u64 = 64 << 20;

/// Reads and checks a report file: a regular file of at most [`REPORT_SIZE_MAX`] bytes, in
/// the format this irqsim reads. A report of another format version is refused with both
/// versions named (before its fields are checked, so a newer report's new fields are not
/// reported as unknown).
pub fn read_report(path: &Path) -> Result<RunReport, String> {
    let bytes = crate::files::read_limited(path, REPORT_SIZE_MAX, "a report.json is at most a few MiB")?;
    let shown = path.display();
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{shown}: not a report.json (not JSON: {e})"))?;
    let format = value.get("format").and_then(serde_json::Value::as_str);
    if format != Some(FORMAT_NAME) {
        return Err(format!("{shown}: not an irqsim report (its `format` is not `{FORMAT_NAME}`)"));
    }
    let version = value.get("format_version").and_then(serde_json::Value::as_u64);
    let this = env!("CARGO_PKG_VERSION");
    match version {
        // Version 1 differs only in writing 0 where version 2 writes null (a stage with no
        // samples); version 2 only in having no sweep and no per-point seed (each point's
        // seed is the run seed): both read the same.
        Some(v) if v == u64::from(FORMAT_VERSION) || v == 1 || v == 2 => {}
        Some(v) if v > u64::from(FORMAT_VERSION) => {
            return Err(format!(
                "{shown}: the report is in format version {v}, newer than this irqsim ({this}) reads (version {FORMAT_VERSION}); render it with the irqsim that wrote it or a newer one"
            ));
        }
        Some(v) => {
            return Err(format!(
                "{shown}: the report is in format version {v}, older than this irqsim ({this}) reads (version {FORMAT_VERSION}); render it with the irqsim that wrote it, or run the scenario again"
            ));
        }
        None => return Err(format!("{shown}: the report has no whole-number `format_version`")),
    }
    let mut report: RunReport = serde_json::from_value(value)
        .map_err(|e| format!("{shown}: not a valid version {FORMAT_VERSION} report: {e}"))?;
    if version.is_some_and(|v| v < 3) {
        for p in &mut report.points {
            p.seed = report.seed;
        }
    }
    Ok(report)
}
