//! Runs a validated scenario and assembles its report: one point per sweep point (one
//! point without a sweep), each from a fresh platform built with the run seed.

use std::time::Instant;

use models::platform::{Event, Platform};
use reports::{Conservation, PerfInfo, PointReport, ResourceRow, RunInfo, RunReport, ScenarioInfo, TextTable};
use sha2::{Digest, Sha256};
use sim::{EventQueue, RunLimits, SimTime};

use crate::load::Scenario;

/// Where a scenario came from, for the report header and the reproduce line.
#[derive(Debug, Clone)]
pub struct Source {
    /// A path, or `builtin:NAME`.
    pub label: String,
    /// The exact bytes that were parsed (hashed into the report).
    pub bytes: Vec<u8>,
    /// The command-line arguments that select this scenario again.
    pub run_args: String,
}

/// SHA-256 of `bytes`, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A run's result: the deterministic report and the wall-clock facts.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Goes to report.json.
    pub report: RunReport,
    /// Goes to perf.json and the console.
    pub perf: PerfInfo,
}

/// Runs one point of `scenario` with `seed`: builds the platform, runs it to its limits and
/// checks interrupt conservation. A conservation failure is a bug, returned as `Err`.
pub fn run_point(
    scenario: &Scenario,
    seed: u64,
    index: u32,
) -> Result<(PointReport, Platform, EventQueue<Event>), String> {
    let (mut platform, mut queue) = Platform::new(&scenario.platform, seed);
    let limits = RunLimits {
        time_end: SimTime::ZERO + scenario.duration,
        event_count_max: scenario.event_limit.unwrap_or(u64::MAX),
    };
    let outcome = sim::run(&mut platform, &mut queue, limits);
    let c = platform.conservation(&queue);
    if !c.holds() {
        return Err(format!("interrupt conservation violated at point {index}: {c:?}"));
    }
    let (stages, counters, failures) = reports::point_from_metrics(&platform.metrics().snapshot());
    let resources = platform
        .resources()
        .into_iter()
        .map(|r| ResourceRow {
            name: r.name.to_owned(),
            instances: r.instance_count,
            used_min: r.used_min,
            used_mean: (r.used_mean * 1000.0).round() / 1000.0,
            used_max: r.used_max,
            limit: r.limit,
        })
        .collect();
    let point = PointReport {
        index,
        parameters: Vec::new(),
        run: RunInfo {
            stop_reason: outcome.stop_reason.as_str().to_owned(),
            event_count: outcome.event_count,
            simulated_ns: outcome.time_stop.elapsed().as_ps() as f64 / 1000.0,
            warnings: scenario
                .warnings
                .iter()
                .cloned()
                .chain(platform.load_warnings(outcome.time_stop.elapsed()))
                .collect(),
        },
        conservation: Conservation {
            raised: c.raised,
            delivered: c.delivered,
            lost: c.lost,
            merged: c.merged,
            in_flight: c.in_transit + c.pending + c.at_cpu,
        },
        stages,
        failures,
        resources,
        counters,
        tables: platform.tables().into_iter().map(|(name, text)| TextTable { name: name.to_owned(), text }).collect(),
    };
    Ok((point, platform, queue))
}

/// Runs every point of `scenario` with `seed`.
pub fn run(scenario: &Scenario, source: &Source, seed: u64) -> Result<RunResult, String> {
    let started = Instant::now();
    let (point, _, _) = run_point(scenario, seed, 0)?;
    let points = vec![point];
    let wall_s = started.elapsed().as_secs_f64();
    let event_count: u64 = points.iter().map(|p| p.run.event_count).sum();
    let simulated_s: f64 = points.iter().map(|p| p.run.simulated_ns / 1e9).sum();
    let report = RunReport {
        format: reports::FORMAT_NAME.to_owned(),
        format_version: reports::FORMAT_VERSION,
        irqsim_version: env!("CARGO_PKG_VERSION").to_owned(),
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.trim().to_owned(),
            source: source.label.clone(),
            sha256: sha256_hex(&source.bytes),
        },
        seed,
        reproduce: format!("irqsim run {} --seed {seed}", source.run_args),
        points,
    };
    let raised: u64 = report.points.iter().map(|p| p.conservation.raised).sum();
    let queues: u64 = scenario.platform.devices.iter().map(|d| u64::from(d.queue_count)).sum();
    let peak = peak_rss_bytes();
    let perf = PerfInfo {
        event_count,
        wall_s,
        events_per_s: if wall_s > 0.0 { event_count as f64 / wall_s } else { 0.0 },
        sim_per_wall: if wall_s > 0.0 { simulated_s / wall_s } else { 0.0 },
        peak_rss_bytes: peak,
        threads: 1,
        events_per_interrupt: if raised > 0 { event_count as f64 / raised as f64 } else { 0.0 },
        bytes_per_queue: peak.filter(|_| queues > 0).map(|b| b as f64 / queues as f64),
    };
    Ok(RunResult { report, perf })
}

/// Peak resident set size of this process (Linux `VmHWM`), if the OS tells it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
