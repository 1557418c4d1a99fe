//! Runs a validated scenario and assembles its report: one entry per run (a sweep point in
//! one variant and one replication; one run without a sweep), each from a fresh platform
//! built with its seed. Runs go in parallel on a rayon pool and are collected in run order,
//! so the report is the same bytes whatever the thread count; a shard runs every N-th run.

use std::time::Instant;

use models::detect::section::DirectCost;
use models::platform::{Event, Platform, ProvisionMode};
use rayon::prelude::*;
use reports::{
    Conservation, CounterRow, PerfInfo, PointReport, ResourceRow, RunInfo, RunReport, ScenarioInfo, ShardInfo,
    TextTable,
};
use sha2::{Digest, Sha256};
use sim::{EventQueue, RunLimits, SimTime};

use crate::load::Scenario;
use crate::sweep::{Plan, Run};

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
    run_point_with_progress(scenario, seed, index, &|_| {})
}

/// Steps a run is cut into so that its progress can be shown; the run is the same as in one
/// piece (the engine stops before the first event after a step's end and the next step
/// starts there).
const PROGRESS_STEPS: u64 = 100;

/// [`run_point`], calling `progress` with the fraction of simulated time done after each
/// hundredth of it.
pub fn run_point_with_progress(
    scenario: &Scenario,
    seed: u64,
    index: u32,
    progress: &dyn Fn(f64),
) -> Result<(PointReport, Platform, EventQueue<Event>), String> {
    let (mut platform, mut queue) = Platform::new(&scenario.platform, seed);
    let end = SimTime::ZERO + scenario.duration;
    platform.end_at(end);
    // Without an event limit only the end stops a run where a CPU takes Lindley's
    // recursion (its devices' arrivals never end; checked below): it may record ahead.
    let ahead = scenario.event_limit.is_none() && platform.record_ahead_until(end);
    let total_ps = scenario.duration.as_ps();
    let mut budget = scenario.event_limit.unwrap_or(u64::MAX);
    let mut outcome = sim::RunOutcome { stop_reason: sim::StopReason::TimeEnd, event_count: 0, time_stop: queue.now() };
    for step in 1..=PROGRESS_STEPS {
        // The step's end in integer picoseconds; the last step ends exactly at `end`.
        let step_end = if step == PROGRESS_STEPS {
            end
        } else {
            SimTime::ZERO
                + sim::SimDuration::from_ps(
                    (u128::from(total_ps) * u128::from(step) / u128::from(PROGRESS_STEPS)) as u64,
                )
        };
        let part = sim::run(&mut platform, &mut queue, RunLimits { time_end: step_end, event_count_max: budget });
        budget -= part.event_count;
        outcome = sim::RunOutcome {
            stop_reason: part.stop_reason,
            event_count: outcome.event_count + part.event_count,
            time_stop: part.time_stop,
        };
        progress(step as f64 / PROGRESS_STEPS as f64);
        if part.stop_reason != sim::StopReason::TimeEnd {
            break;
        }
    }
    if ahead && outcome.time_stop != end {
        return Err(format!("point {index} stopped at {} before its end {end}", outcome.time_stop));
    }
    let c = platform.conservation(&queue);
    if !c.holds() {
        return Err(format!("interrupt conservation violated at point {index}: {c:?}"));
    }
    let elapsed = outcome.time_stop.elapsed().as_ps();
    for p in platform.pcpu_busy(outcome.time_stop) {
        if p.overlaps > 0 || p.busy_ps > elapsed {
            return Err(format!("pCPU {} busy intervals overlap at point {index}: {p:?} in {elapsed} ps", p.cpu.0));
        }
    }
    let snapshot = platform.metrics().snapshot();
    let (stages, counters, failures) = reports::point_from_metrics(&snapshot);
    let (remappable, compat) = direct_costs(scenario, &counters);
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
        variant: None,
        replication: 0,
        seed,
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
        tables: {
            let mut data = platform.table_rows();
            platform
                .tables()
                .into_iter()
                .map(|(name, text)| {
                    let (columns, rows) = match data.iter().position(|(n, _, _)| *n == name) {
                        Some(i) => {
                            let (_, columns, rows) = data.swap_remove(i);
                            (columns, rows)
                        }
                        None => (Vec::new(), Vec::new()),
                    };
                    TextTable { name, text, columns, rows, narrow: false, roles: Vec::new(), plot_row: Vec::new() }
                })
                .chain(
                    scenario
                        .detection
                        .iter()
                        .flat_map(|d| d.tables().into_iter().chain(d.cost_tables(remappable, compat)))
                        .map(|t| TextTable {
                            name: t.name,
                            text: t.text,
                            columns: t.columns,
                            rows: t.rows,
                            narrow: true,
                            roles: t.roles.into_iter().map(str::to_owned).collect(),
                            plot_row: t.plot_row,
                        }),
                )
                .chain(reports::kvm_exit_table(&snapshot))
                .collect()
        },
    };
    Ok((point, platform, queue))
}

/// What the first guest of each message format that wrote its own messages
/// (`ImsDirect`) saw in the run, from its counters: (remappable, compatibility format).
/// A guest whose kernel fell back (no such counters) composed nothing.
fn direct_costs(scenario: &Scenario, counters: &[CounterRow]) -> (Option<DirectCost>, Option<DirectCost>) {
    let value = |name: String| counters.iter().find(|c| c.name == name).map(|c| c.value);
    let (mut remappable, mut compat) = (None, None);
    for d in &scenario.platform.devices {
        let (Some(p), Some(g)) = (d.provisioning, d.assigned_to) else { continue };
        let ProvisionMode::ImsDirect { remappable: r } = p.mode else { continue };
        let guest = &scenario.platform.guests[g as usize].name;
        let Some(lost) = value(format!("guest.{guest}.direct_lost_count")) else { continue };
        let cost = DirectCost {
            lost,
            misrouted: value(format!("guest.{guest}.direct_misrouted_count")).unwrap_or(0),
            cross_tenant: value(format!("guest.{guest}.direct_misrouted_tenant_count")).unwrap_or(0),
        };
        let slot = if r { &mut remappable } else { &mut compat };
        slot.get_or_insert(cost);
    }
    (remappable, compat)
}

/// How to run a plan.
pub struct Options<'a> {
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Run only this shard's runs (those whose ordinal is `index` modulo `count`).
    pub shard: Option<ShardInfo>,
    /// Runs already finished (an interrupted sweep resumed): by ordinal, not run again.
    pub finished: Vec<(u32, PointReport)>,
    /// Called from the worker threads as each run finishes, with its ordinal.
    pub on_done: &'a (dyn Fn(u32, &PointReport) + Sync),
    /// When there is one run to do: called with the fraction of its simulated time done,
    /// a hundred times along the way (a long single run shows progress too).
    pub run_progress: &'a (dyn Fn(f64) + Sync),
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").field("threads", &self.threads).field("shard", &self.shard).finish_non_exhaustive()
    }
}

/// The ordinals of the runs `shard` holds, of `run_count` in all.
pub fn shard_ordinals(run_count: u32, shard: Option<ShardInfo>) -> Vec<u32> {
    match shard {
        None => (0..run_count).collect(),
        Some(s) => (s.index..run_count).step_by(s.count as usize).collect(),
    }
}

/// Runs one run of the plan into its report entry, calling `progress` along the way.
pub fn run_one(plan: &Plan, run: &Run, progress: &dyn Fn(f64)) -> Result<PointReport, String> {
    let cell = &plan.cells[run.cell];
    // The first cell's scenario is kept; any other is built again from its overrides.
    let scenario = if cell.overrides == plan.cells[0].overrides { plan.first().clone() } else { plan.scenario(cell)? };
    let (mut point, _, _) = run_point_with_progress(&scenario, run.seed, cell.index, progress)?;
    point.parameters = cell.parameters.clone();
    point.variant = cell.variant.clone();
    point.replication = run.replication;
    Ok(point)
}

/// The report header of `plan` run with `seed`: everything but the points.
pub fn report_header(plan: &Plan, source: &Source, seed: u64) -> RunReport {
    let first = plan.first();
    RunReport {
        format: reports::FORMAT_NAME.to_owned(),
        format_version: reports::FORMAT_VERSION,
        irqsim_version: crate::VERSION.to_owned(),
        scenario: ScenarioInfo {
            name: first.name.clone(),
            description: first.description.trim().to_owned(),
            source: source.label.clone(),
            sha256: sha256_hex(&source.bytes),
            text: String::from_utf8_lossy(&source.bytes).into_owned(),
        },
        seed,
        reproduce: format!("irqsim run {} --seed {seed}", source.run_args),
        sweep: plan.sweep.clone(),
        expect: first.expect.clone(),
        verdicts: Vec::new(),
        shard: None,
        points: Vec::new(),
    }
}

/// Runs the plan's runs (the shard's, less those finished) on `options.threads` threads
/// and assembles the report in run order.
pub fn run(plan: &Plan, source: &Source, seed: u64, options: Options<'_>) -> Result<RunResult, String> {
    let started = Instant::now();
    let wanted = shard_ordinals(plan.runs.len() as u32, options.shard);
    let finished: std::collections::BTreeSet<u32> = options.finished.iter().map(|(o, _)| *o).collect();
    let todo: Vec<&Run> = wanted.iter().filter(|o| !finished.contains(o)).map(|&o| &plan.runs[o as usize]).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.max(1))
        .build()
        .map_err(|e| format!("cannot start {} worker threads: {e}", options.threads))?;
    let todo_count = todo.len();
    let on_done = options.on_done;
    let run_progress = options.run_progress;
    let progress: &(dyn Fn(f64) + Sync) = if todo_count == 1 { &|f| run_progress(f) } else { &|_| {} };
    let fresh: Vec<(u32, PointReport)> = pool.install(|| {
        todo.par_iter()
            .map(|run| {
                let point = run_one(plan, run, progress)?;
                on_done(run.ordinal, &point);
                Ok((run.ordinal, point))
            })
            .collect::<Result<Vec<_>, String>>()
    })?;
    let wall_s = started.elapsed().as_secs_f64();
    let event_count: u64 = fresh.iter().map(|(_, p)| p.run.event_count).sum();
    let simulated_s: f64 = fresh.iter().map(|(_, p)| p.run.simulated_ns / 1e9).sum();
    let raised: u64 = fresh.iter().map(|(_, p)| p.conservation.raised).sum();
    let wanted: std::collections::BTreeSet<u32> = wanted.into_iter().collect();
    let mut all: Vec<(u32, PointReport)> =
        options.finished.into_iter().filter(|(o, _)| wanted.contains(o)).chain(fresh).collect();
    all.sort_by_key(|(o, _)| *o);
    let mut report = report_header(plan, source, seed);
    report.shard = options.shard;
    report.points = all.into_iter().map(|(_, p)| p).collect();
    // A shard holds only some runs of each point: its expectations are judged at the merge.
    if report.shard.is_none() {
        report.verdicts = reports::stats::judge(&report);
    }
    let queues: u64 = plan.first().platform.devices.iter().map(|d| u64::from(d.queue_count)).sum();
    let peak = peak_rss_bytes();
    let perf = PerfInfo {
        event_count,
        wall_s,
        events_per_s: if wall_s > 0.0 { event_count as f64 / wall_s } else { 0.0 },
        sim_per_wall: if wall_s > 0.0 { simulated_s / wall_s } else { 0.0 },
        peak_rss_bytes: peak,
        // Threads that had a run to do.
        threads: options.threads.clamp(1, todo_count.max(1)),
        events_per_interrupt: if raised > 0 { event_count as f64 / raised as f64 } else { 0.0 },
        bytes_per_queue: peak.filter(|_| queues > 0).map(|b| b as f64 / queues as f64),
    };
    Ok(RunResult { report, perf })
}

/// Runs every run of `plan` on `threads` threads: no shard, nothing resumed, no progress.
pub fn run_all(plan: &Plan, source: &Source, threads: usize) -> Result<RunResult, String> {
    let options = Options { threads, shard: None, finished: Vec::new(), on_done: &|_, _| {}, run_progress: &|_| {} };
    run(plan, source, plan.seed, options)
}

/// Peak resident set size of this process (Linux `VmHWM`), if the OS tells it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
