//! irqsim benchmarks (TigerBeetle's bench habits): relative numbers for manual checks, a
//! smoke size run by `cargo test` so they never rot, a full size run by
//! `cargo run -p benches --release`, and a result checksum so that a speed-up cannot
//! silently change what is computed.
//!
//! - [`hold_bare`]: the hold model (pop the earliest (time, seq), push one successor at
//!   time + Exp(mean)) on a plain `std::collections::BinaryHeap` of `Reverse((t, seq,
//!   payload))`, pop then push: crates.md §7's baseline.
//! - [`hold_bare_peek_mut`]: the same, replacing the top through `peek_mut`: the bar.
//! - [`hold_engine`]: the same hold model through `sim::run` and `sim::EventQueue`. Same
//!   random increments, so both must pop the same sequence (equal checksums).
//! - `hold_nexosim` (with `--features nexosim`): the same hold model as a NeXosim 1.0 model
//!   that schedules itself (`nexosim_hold.rs` says how it maps); same checksum as
//!   [`hold_engine`].
//! - [`scenario`]: a catalog scenario's events per second, as `irqsim` reports it, with its
//!   interrupts per second, events per interrupt and peak memory per queue.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::Instant;

use sim::{DurationDist, EventQueue, RngStream, RunLimits, SimDuration, SimTime, World, mix64};

#[cfg(feature = "nexosim")]
mod nexosim_hold;
#[cfg(feature = "nexosim")]
pub use nexosim_hold::hold_nexosim;

/// One benchmark's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchResult {
    /// Events (hold operations) performed.
    pub event_count: u64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Digest of what was computed.
    pub checksum: u64,
    /// For a scenario: interrupts raised, and the queues of its devices (0 for the hold
    /// model).
    pub interrupts: u64,
    /// Its queues.
    pub queues: u64,
    /// For a scenario: the peak resident memory of a process that ran only it, in bytes
    /// (`None` until measured, or where the OS does not say; see [`peak_rss_bytes`]).
    pub memory_bytes: Option<u64>,
}

impl BenchResult {
    /// Events per wall-clock second.
    pub fn events_per_s(&self) -> f64 {
        self.event_count as f64 / self.wall_s
    }

    /// Events per interrupt raised (0 for the hold model).
    pub fn events_per_interrupt(&self) -> f64 {
        if self.interrupts == 0 { 0.0 } else { self.event_count as f64 / self.interrupts as f64 }
    }

    /// Peak memory growth per queue, in bytes.
    pub fn bytes_per_queue(&self) -> Option<f64> {
        self.memory_bytes.filter(|_| self.queues > 0).map(|b| b as f64 / self.queues as f64)
    }

    /// The hold model's result (no interrupts or queues).
    pub(crate) fn hold(event_count: u64, wall_s: f64, checksum: u64) -> BenchResult {
        BenchResult { event_count, wall_s, checksum, interrupts: 0, queues: 0, memory_bytes: None }
    }
}

/// This process's peak resident memory (Linux `VmHWM`), in bytes: the benchmark binary
/// measures a scenario's memory in a child process that runs only it (memory freed by one
/// run stays with the allocator, so a second run in the same process would not show its
/// own), as `irqsim`'s perf.json does for its own run.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Mean increment of the hold model: 1 µs in picoseconds, so ties are rare (crates.md §7).
const MEAN_INCREMENT: SimDuration = SimDuration::from_us(1);

pub(crate) fn increments() -> (RngStream, DurationDist) {
    (RngStream::new(12_345, "bench/hold"), DurationDist::exponential(MEAN_INCREMENT))
}

/// A bare heap of the hold model: `pending` events at exponential times, payload = index,
/// with the random stream, the increments and the next sequence number to go on with.
type BareHeap = BinaryHeap<Reverse<(u64, u64, u32)>>;

fn filled_heap(pending: u64) -> (BareHeap, RngStream, DurationDist, u64) {
    let (mut rng, exp) = increments();
    let mut heap = BinaryHeap::with_capacity(pending as usize + 1);
    for i in 0..pending {
        heap.push(Reverse((exp.sample(&mut rng).as_ps(), i, i as u32)));
    }
    (heap, rng, exp, pending)
}

/// The hold model on a bare `BinaryHeap`, `pending` events, `ops` pops+pushes.
pub fn hold_bare(pending: u64, ops: u64) -> BenchResult {
    let (mut heap, mut rng, exp, mut seq) = filled_heap(pending);
    let mut checksum = 0u64;
    let started = Instant::now();
    for _ in 0..ops {
        let Reverse((time, s, payload)) = heap.pop().expect("the hold model never empties");
        checksum = mix64(checksum ^ time ^ (s << 1) ^ u64::from(payload));
        heap.push(Reverse((time + exp.sample(&mut rng).as_ps(), seq, payload)));
        seq += 1;
    }
    let wall_s = started.elapsed().as_secs_f64();
    black_box(&heap);
    BenchResult::hold(ops, wall_s, checksum)
}

/// The hold model on a bare `BinaryHeap` that replaces the top through `peek_mut` (one
/// sift per event instead of a pop and a push): the fastest use of `std`'s heap, the bar the
/// engine's queue is held to.
pub fn hold_bare_peek_mut(pending: u64, ops: u64) -> BenchResult {
    let (mut heap, mut rng, exp, mut seq) = filled_heap(pending);
    let mut checksum = 0u64;
    let started = Instant::now();
    for _ in 0..ops {
        let mut top = heap.peek_mut().expect("the hold model never empties");
        let Reverse((time, s, payload)) = *top;
        checksum = mix64(checksum ^ time ^ (s << 1) ^ u64::from(payload));
        *top = Reverse((time + exp.sample(&mut rng).as_ps(), seq, payload));
        seq += 1;
    }
    let wall_s = started.elapsed().as_secs_f64();
    black_box(&heap);
    BenchResult::hold(ops, wall_s, checksum)
}

/// The hold model as a `sim::World`.
struct Hold {
    rng: RngStream,
    exp: DurationDist,
    checksum: u64,
    scheduled: u64,
}

impl World for Hold {
    type Event = u32;
    fn handle(&mut self, payload: u32, queue: &mut EventQueue<u32>) {
        let now = queue.now().as_ps();
        // The engine's sequence number of the popped event is implied by FIFO order; mix the
        // same fields as `hold_bare` except seq, which the engine keeps private.
        self.checksum = mix64(self.checksum ^ now ^ u64::from(payload));
        queue.schedule_in(self.exp.sample(&mut self.rng), payload);
        self.scheduled += 1;
    }
}

/// The hold model through the engine: `pending` events, `ops` events handled.
pub fn hold_engine(pending: u64, ops: u64) -> BenchResult {
    let (mut rng, exp) = increments();
    let mut queue = EventQueue::with_capacity(pending as usize + 1);
    for i in 0..pending {
        queue.schedule_at(SimTime::ZERO + exp.sample(&mut rng), i as u32);
    }
    let mut world = Hold { rng, exp, checksum: 0, scheduled: 0 };
    let started = Instant::now();
    let outcome = sim::run(&mut world, &mut queue, RunLimits { time_end: SimTime::MAX, event_count_max: ops });
    let wall_s = started.elapsed().as_secs_f64();
    assert_eq!(outcome.event_count, ops);
    BenchResult::hold(ops, wall_s, world.checksum)
}

/// The same checksum as [`hold_engine`] computed on a bare heap, to prove both pop the same
/// sequence (the engine's checksum leaves out the private sequence number).
pub fn hold_bare_checksum_without_seq(pending: u64, ops: u64) -> u64 {
    let (mut heap, mut rng, exp, mut seq) = filled_heap(pending);
    let mut checksum = 0u64;
    for _ in 0..ops {
        let Reverse((time, _, payload)) = heap.pop().expect("never empty");
        checksum = mix64(checksum ^ time ^ u64::from(payload));
        heap.push(Reverse((time + exp.sample(&mut rng).as_ps(), seq, payload)));
        seq += 1;
    }
    checksum
}

/// Runs catalog scenario `name` for `duration` of simulated time (its own duration when
/// `None`) and reports its throughput; the checksum digests the end-to-end latency sum.
pub fn scenario(name: &str, duration: Option<SimDuration>) -> BenchResult {
    scenario_text(name, scenarios::catalog::get(name).expect("a catalog scenario"), duration)
}

/// The SimPy comparison model (`benches/peers/mm1-1024.yaml`: FIFO CPUs on Lindley's
/// recursion), as [`scenario`] runs a catalog scenario.
pub fn peers_mm1(duration: Option<SimDuration>) -> BenchResult {
    scenario_text("mm1-1024", include_str!("../peers/mm1-1024.yaml"), duration)
}

/// [`scenario`] for a scenario's text.
fn scenario_text(name: &str, text: &str, duration: Option<SimDuration>) -> BenchResult {
    let mut s = scenarios::load(name, text).expect("bench scenarios are valid");
    if let Some(d) = duration {
        s.duration = d;
    }
    let started = Instant::now();
    let (point, _, _) = scenarios::runner::run_point(&s, s.seed, 0).expect("conservation holds");
    let wall_s = started.elapsed().as_secs_f64();
    let e2e = point.stages.iter().find(|st| st.stage == "end_to_end").expect("end_to_end stage");
    BenchResult {
        event_count: point.run.event_count,
        wall_s,
        checksum: mix64(e2e.mean_ns.to_bits() ^ e2e.count),
        interrupts: point.conservation.raised,
        queues: s.platform.devices.iter().map(|d| u64::from(d.queue_count)).sum(),
        memory_bytes: None,
    }
}

/// Runs every run of catalog sweep `name` on `threads` worker threads and reports the
/// throughput over all runs; the checksum digests the report, which must be the same bytes
/// whatever the thread count.
pub fn sweep(name: &str, threads: usize) -> BenchResult {
    let text = scenarios::catalog::get(name).expect("a catalog scenario");
    let plan = scenarios::sweep::plan(name, text, None).expect("catalog scenarios are valid");
    let source = scenarios::runner::Source {
        label: format!("builtin:{name}"),
        bytes: text.as_bytes().to_vec(),
        run_args: format!("--builtin {name}"),
    };
    let started = Instant::now();
    let result = scenarios::runner::run_all(&plan, &source, threads).expect("conservation holds");
    let wall_s = started.elapsed().as_secs_f64();
    let json = serde_json::to_vec(&result.report).expect("a report serialises");
    let interrupts = result.report.points.iter().map(|p| p.conservation.raised).sum();
    BenchResult {
        event_count: result.perf.event_count,
        wall_s,
        checksum: sim::fnv1a64(&json),
        interrupts,
        queues: 0,
        memory_bytes: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Smoke size: runs under `cargo test` so the benchmarks keep compiling and agreeing.
    #[test]
    fn smoke_engine_and_bare_heap_pop_the_same_sequence() {
        let engine = hold_engine(1_000, 20_000);
        assert_eq!(engine.checksum, hold_bare_checksum_without_seq(1_000, 20_000));
        assert_eq!(hold_bare(1_000, 20_000).event_count, 20_000);
        // Replacing the top pops the same (time, seq) sequence as pop + push.
        assert_eq!(hold_bare_peek_mut(1_000, 20_000).checksum, hold_bare(1_000, 20_000).checksum);
    }

    /// NeXosim's hold model pops the engine's sequence (with `--features nexosim`).
    #[cfg(feature = "nexosim")]
    #[test]
    fn smoke_nexosim_pops_the_engines_sequence() {
        let nexosim = hold_nexosim(1_000, 20_000);
        assert_eq!(nexosim.event_count, 20_000);
        assert_eq!(nexosim.checksum, hold_engine(1_000, 20_000).checksum);
        // 64k pending over about 1 us: many events share a picosecond, and the 200,000th's
        // step runs the others at its time too (not counted).
        assert_eq!(hold_nexosim(65_536, 200_000).checksum, hold_engine(65_536, 200_000).checksum);
    }

    #[test]
    fn a_sweep_is_the_same_report_on_one_or_two_threads() {
        assert_eq!(sweep("queue-scaling", 1).checksum, sweep("queue-scaling", 2).checksum);
    }

    #[test]
    fn smoke_peers_model_takes_one_event_per_interrupt() {
        let r = peers_mm1(Some(SimDuration::from_ms(1)));
        // 1,024 queues at 7,812.5/s for 1 ms: about 8,000 interrupts, each one event.
        assert_eq!(r.event_count, r.interrupts);
        assert_eq!(r.queues, 1024);
    }

    #[test]
    fn smoke_default_scenario() {
        let r = scenario(scenarios::catalog::default_name(), Some(SimDuration::from_ms(1)));
        assert!(r.event_count > 10_000);
    }
}
