//! Lindley's recursion for FIFO CPUs that nothing preempts: one event per interrupt.
//!
//! # What is modelled
//! A CPU that runs its handlers one at a time in arrival order ([`super::FifoCpus`]) is a
//! FIFO single server: an interrupt that reaches it at `a` starts its handler at
//! `max(a, d)`, `d` the previous interrupt's departure, and departs `entry + service + eoi`
//! later (Lindley's recursion). When the path from the raise to the CPU is fixed (a constant
//! MSI write latency, a compatibility-format message decoded straight to a LAPIC, the
//! vector's handler never moving), an interrupt's whole path is known at its raise: this
//! computes it then, with no event for the MSI write, the arrival or the handler's end. The
//! handler's work is drawn at the raise from the queue's service stream, in the same order
//! as on the event path (a queue's raises reach its one CPU in raise order, and handlers
//! start in arrival order), so both paths draw the same values.
//!
//! What the event path records when its events run (the handler's stages when it starts;
//! delivery, end-to-end latency and the kernel's counts when it ends) is recorded here when
//! the clock passes those instants: at the CPU's next raise, and when a run stops
//! ([`sim::World::settle`]). It is counted here ([`sim::Tally`] per stage, counts of what
//! every interrupt adds the same: the entry cost, the MSI write, the counters) and added to
//! the metrics when a run stops, the same histograms and counters as recording each value
//! as it happens (nothing reads them during a run). An interrupt planned but not yet departed is at the CPU
//! (arrived) or in transit (its MSI write still on the way), as on the event path; at the end
//! of a run those departing after the end are not delivered. The report is the same
//! (stages, counters, tables) apart from the event count and the `cpu.lindley_path_count`
//! counter (a test runs scenarios both ways). A run stopped by its event limit is the
//! exception: the two paths count different events, so they stop at different instants
//! (and at the stop, this path records every departure at that instant, where the event
//! path may have run only some of the events due then).
//!
//! # Recording ahead
//! When the run is known to stop at an instant (`record_ahead_until`, which the runner calls
//! for a run that only a time ends), an interrupt that departs by then is recorded at its
//! raise, all of it: nothing can happen between its raise and that instant that would
//! change what it records, and nothing reads what was recorded before the run stops. Only
//! the interrupts departing after the end wait in their CPU's queue, to be recorded as the
//! clock passes them (their start, at the end) or counted in flight. What is recorded is the
//! same (the Lindley tests run each scenario both ways); the recursion's settle, with a branch
//! per job the clock passed and the job's trip through the queue, is left out of every
//! interrupt but the last few. A run with an event limit may stop earlier: it records on
//! the clock.
//!
//! # What is not modelled (and why)
//! A CPU takes this path only where nothing can reorder or preempt its arrivals: FIFO
//! queueing on x86 without a remapping unit (the IRTE cache's hit and miss latencies can
//! reorder arrivals), no guests (VFIO's forward hands interrupts on to vCPUs at the
//! handler's end), no scheduled actions (hotplug and affinity changes move interrupts and
//! mask entries), one MSI write latency for every queue it serves, and every queue's vector
//! settled (no move pending). Every other CPU runs on events, as does everything on ARM
//! (the ITS's translation latency depends on its caches) and the LAPIC model (IRR
//! coalescing: which handler runs next depends on what is pending then).
//!
//! # Parameters and their sources
//! None of its own: the CPU's entry cost and each device's latencies and handler work, as
//! on the event path.

use sim::{HistogramId, Metrics, SimDuration, SimTime, Tally};

use super::super::devices::Devices;
use super::super::metrics::{CoreIds, CpuIds};
use super::super::route::Work;
use super::super::stats::IrqStats;
use crate::ids::{CpuId, QueueId};

/// No route: the queue's interrupts take the event path.
const EVENT_PATH: u32 = u32::MAX;

/// One interrupt planned on a CPU: its path computed at its raise.
#[derive(Debug, Clone, Copy)]
struct Planned {
    /// The queue whose handler runs it.
    queue: QueueId,
    raised_at: SimTime,
    arrived_at: SimTime,
    /// When its handler starts: max(arrival, the previous departure).
    start: SimTime,
    service: SimDuration,
    eoi: SimDuration,
    /// When its handler and EOI are done.
    departs: SimTime,
}

/// A CPU's planned jobs in arrival order, those recorded on the clock (all of them in a run
/// with an event limit; otherwise only those departing after the end): a `Vec` read from
/// `head`, emptied when the last job departs (at rho < 1 a CPU empties often) and compacted
/// when the departed half outgrows the rest. Cheaper than a `VecDeque`'s wrap-around index
/// on every access.
#[derive(Debug, Clone, Default)]
struct Jobs {
    items: Vec<Planned>,
    head: usize,
}

impl Jobs {
    #[inline]
    fn push_back(&mut self, job: Planned) {
        self.items.push(job);
    }

    #[inline]
    fn len(&self) -> usize {
        self.items.len() - self.head
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.head == self.items.len()
    }

    #[inline]
    fn front(&self) -> Option<&Planned> {
        self.items.get(self.head)
    }

    #[inline]
    fn pop_front(&mut self) {
        self.head += 1;
        if self.head == self.items.len() {
            self.items.clear();
            self.head = 0;
        } else if self.head >= 1024 && 2 * self.head >= self.items.len() {
            self.items.drain(..self.head);
            self.head = 0;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Planned> {
        self.items[self.head..].iter()
    }
}

/// One CPU on the recursion.
#[derive(Debug, Clone, Default)]
struct LindleyCpu {
    /// The last planned departure (the CPU is free from then on).
    free_at: SimTime,
    /// Planned interrupts not yet departed and not recorded ahead, in arrival order.
    jobs: Jobs,
    /// Whether the front job's start has been recorded (the clock passed it).
    front_started: bool,
    /// The MSI write latency of every queue that reaches it.
    msi_write: SimDuration,
    /// Raises planned here whose MSI write is not yet in the metrics.
    writes: u64,
}

/// What the CPUs on the recursion recorded since the last [`Lindley::settle`], kept here
/// rather than in the metrics registry and added to it there: each record then reads and
/// writes this struct only (no registry entry to look up per value), and what every
/// interrupt adds the same (the entry cost, the counters) is one count. The registry's
/// histograms and counters come out as if each value were recorded when it happened (they
/// do not depend on the order), and nothing reads them before the run stops
/// ([`sim::World::settle`]).
#[derive(Debug, Clone, Default)]
struct Recorded {
    queue_wait: Tally,
    handler: Tally,
    end_to_end: Tally,
    /// EOIs: the latest run of equal costs (value, how many), and the others.
    eoi_run: (u64, u64),
    eoi: Tally,
    /// Handlers started (each took the CPU's entry cost).
    started: u64,
    /// Interrupts delivered.
    delivered: u64,
}

/// The CPUs on Lindley's recursion and the route of each queue whose interrupts go there.
#[derive(Debug, Clone)]
pub(in crate::platform) struct Lindley {
    /// Per raising queue: the CPU (`EVENT_PATH`: none) and the queue whose handler runs.
    routes: Vec<(u32, QueueId)>,
    /// Per CPU (empty when no CPU takes this path).
    cpus: Vec<LindleyCpu>,
    /// Per CPU: whether it takes this path.
    on_path: Vec<bool>,
    /// Taking one interrupt: the notification and the IDT entry/exit.
    entry: SimDuration,
    /// Recorded since the last settle.
    recorded: Recorded,
    /// Interrupts departing by then are recorded at their raise (`SimTime::ZERO`: none).
    horizon: SimTime,
    ids: CpuIds,
    core: CoreIds,
    /// The devices' MSI write histogram.
    msi_write: HistogramId,
}

impl Lindley {
    /// No CPU on the recursion: every interrupt takes the event path.
    pub fn none(ids: CpuIds, core: CoreIds, msi_write: HistogramId) -> Lindley {
        Lindley {
            routes: Vec::new(),
            cpus: Vec::new(),
            on_path: Vec::new(),
            entry: SimDuration::ZERO,
            recorded: Recorded::default(),
            horizon: SimTime::ZERO,
            ids,
            core,
            msi_write,
        }
    }

    /// The CPUs that take the recursion given each raising queue's fixed route (`None`: not
    /// routed, or its path is not fixed) and MSI write latency, and the CPUs that queues
    /// without a fixed route reach (`event_cpus`): a CPU takes it when every queue reaching it
    /// has a fixed route and all share one latency (so its arrivals come in raise order).
    /// `msi_write` is the histogram of the MSI writes' latency.
    pub fn plan(
        cpu_count: u32,
        entry: SimDuration,
        routes: &[Option<(CpuId, QueueId, SimDuration)>],
        event_cpus: &[CpuId],
        ids: CpuIds,
        core: CoreIds,
        msi_write: HistogramId,
    ) -> Lindley {
        // Per CPU: the latency every queue seen so far agrees on; `Err` once one does not.
        let mut latency: Vec<Option<Result<SimDuration, ()>>> = vec![None; cpu_count as usize];
        for &(cpu, _, l) in routes.iter().flatten() {
            let Some(seen) = latency.get_mut(cpu.0 as usize) else { continue };
            *seen = match *seen {
                None => Some(Ok(l)),
                Some(Ok(before)) if before == l => Some(Ok(l)),
                _ => Some(Err(())),
            };
        }
        for cpu in event_cpus {
            if let Some(seen) = latency.get_mut(cpu.0 as usize) {
                *seen = Some(Err(()));
            }
        }
        let on_path: Vec<bool> = latency.iter().map(|l| matches!(l, Some(Ok(_)))).collect();
        let routes = routes
            .iter()
            .map(|r| match r {
                Some((cpu, handler, _)) if on_path.get(cpu.0 as usize) == Some(&true) => (cpu.0, *handler),
                _ => (EVENT_PATH, QueueId(0)),
            })
            .collect();
        let cpus = latency
            .iter()
            .map(|l| LindleyCpu { msi_write: l.and_then(Result::ok).unwrap_or_default(), ..LindleyCpu::default() })
            .collect();
        Lindley {
            routes,
            cpus,
            on_path,
            entry,
            recorded: Recorded::default(),
            horizon: SimTime::ZERO,
            ids,
            core,
            msi_write,
        }
    }

    /// How many CPUs take the recursion.
    pub fn cpu_count(&self) -> u64 {
        self.on_path.iter().filter(|&&on| on).count() as u64
    }

    /// Where `queue`'s interrupt is handled when it takes the recursion: its CPU and the
    /// queue whose handler runs (the owner of a shared vector).
    #[inline]
    pub fn route(&self, queue: QueueId) -> Option<(CpuId, QueueId)> {
        match self.routes.get(queue.0 as usize) {
            Some(&(cpu, handler)) if cpu != EVENT_PATH => Some((CpuId(cpu), handler)),
            _ => None,
        }
    }

    /// Records at its raise every interrupt that departs by `end`, the instant the run stops
    /// at (see *Recording ahead* in the module docs). Only for a run that stops there: one
    /// that may stop earlier (an event limit) must not call it.
    pub fn record_ahead_until(&mut self, end: SimTime) {
        self.horizon = end;
    }

    /// Plans an interrupt of `queue` raised at `now` reaching `cpu` after the CPU's MSI write
    /// latency with `work`, after recording what the CPU did up to `now`.
    #[inline]
    pub fn plan_job(
        &mut self,
        cpu: CpuId,
        queue: QueueId,
        now: SimTime,
        work: Work,
        stats: &mut IrqStats,
        devices: &mut Devices,
    ) {
        let entry = self.entry;
        let state = &mut self.cpus[cpu.0 as usize];
        // Jobs wait here only past the horizon (or without one): then on the clock.
        if !state.jobs.is_empty() {
            Self::settle_state(state, &mut self.recorded, cpu, now, stats, devices);
        }
        state.writes += 1;
        let arrived_at = now + state.msi_write;
        let start = arrived_at.max(state.free_at);
        let departs = start + entry + work.service + work.eoi;
        state.free_at = departs;
        let job = Planned { queue, raised_at: now, arrived_at, start, service: work.service, eoi: work.eoi, departs };
        if departs <= self.horizon {
            // Departs before the run stops: started and delivered, whatever else happens.
            debug_assert!(state.jobs.is_empty(), "departures keep arrival order");
            Self::record_start(&mut self.recorded, &job);
            Self::record_departure(&mut self.recorded, &job, cpu, stats, devices);
        } else {
            state.jobs.push_back(job);
            // A job alone is not started: `front_started` is cleared with every departure.
            debug_assert!(state.jobs.len() > 1 || !state.front_started);
        }
    }

    /// Records what every CPU on the recursion did up to `now`, and adds what was recorded
    /// since the last settle to the metrics.
    pub fn settle(&mut self, now: SimTime, m: &mut Metrics, stats: &mut IrqStats, devices: &mut Devices) {
        for c in 0..self.cpus.len() {
            let state = &mut self.cpus[c];
            if !state.jobs.is_empty() {
                Self::settle_state(state, &mut self.recorded, CpuId(c as u32), now, stats, devices);
            }
        }
        for state in &mut self.cpus {
            m.record_n(self.msi_write, state.msi_write.as_ps(), state.writes);
            state.writes = 0;
        }
        let r = &mut self.recorded;
        let (eoi, eoi_n) = r.eoi_run;
        r.eoi.record_n(eoi, eoi_n);
        r.eoi_run = (0, 0);
        if self.entry > SimDuration::ZERO {
            m.record_n(self.ids.irq_entry, self.entry.as_ps(), r.started);
        }
        // Each started handler's busy time is its entry, handler and EOI.
        let busy = u128::from(self.entry.as_ps()) * u128::from(r.started) + r.handler.sum() + r.eoi.sum();
        m.add(self.ids.cpu_busy_ps, busy as u64);
        m.add(self.core.delivered, r.delivered);
        (r.started, r.delivered) = (0, 0);
        m.add_tally(self.core.queue_wait, &mut r.queue_wait);
        m.add_tally(self.core.handler, &mut r.handler);
        m.add_tally(self.core.eoi, &mut r.eoi);
        m.add_tally(self.core.end_to_end, &mut r.end_to_end);
    }

    /// Records in `r` the handler starts and ends on `cpu` (its state `state`) at or before
    /// `now`, in order. Always inlined: out of line (it has two callers) its call and register
    /// saves cost more than the code they share.
    #[inline(always)]
    fn settle_state(
        state: &mut LindleyCpu,
        r: &mut Recorded,
        cpu: CpuId,
        now: SimTime,
        stats: &mut IrqStats,
        devices: &mut Devices,
    ) {
        // Bounded by the jobs planned on this CPU.
        while let Some(&job) = state.jobs.front() {
            if job.start > now {
                break;
            }
            if !state.front_started {
                state.front_started = true;
                Self::record_start(r, &job);
            }
            if job.departs > now {
                break;
            }
            state.jobs.pop_front();
            state.front_started = false;
            Self::record_departure(r, &job, cpu, stats, devices);
        }
    }

    /// Records `job`'s handler start: the entry, its wait and its handler's work.
    #[inline(always)]
    fn record_start(r: &mut Recorded, job: &Planned) {
        r.started += 1;
        r.queue_wait.record(job.start.since(job.arrived_at).as_ps());
        r.handler.record(job.service.as_ps());
        let eoi = job.eoi.as_ps();
        if r.eoi_run.0 == eoi {
            r.eoi_run.1 += 1;
        } else {
            let (value, n) = r.eoi_run;
            r.eoi.record_n(value, n);
            r.eoi_run = (eoi, 1);
        }
    }

    /// Records `job`'s departure from `cpu`: its delivery, end-to-end latency and its
    /// handler's run in its queue's line of `devices` (as the event path counts it:
    /// `IrqStats::host_ran`, inlined, where `RunCounts::record` was a call of 35 instructions
    /// an interrupt).
    #[inline(always)]
    fn record_departure(r: &mut Recorded, job: &Planned, cpu: CpuId, stats: &mut IrqStats, devices: &mut Devices) {
        stats.host_ran(devices, job.queue, cpu.0);
        let latency = job.departs.since(job.raised_at).as_ps();
        r.delivered += 1;
        r.end_to_end.record(latency);
        stats.delivered(cpu.0, latency);
    }

    /// Planned interrupts not yet departed: (still on their way at `now`, at their CPU).
    pub fn in_flight(&self, now: SimTime) -> (u64, u64) {
        let mut on_the_way = 0;
        let mut at_cpu = 0;
        for state in &self.cpus {
            for job in state.jobs.iter() {
                if job.arrived_at > now {
                    on_the_way += 1;
                } else {
                    at_cpu += 1;
                }
            }
        }
        (on_the_way, at_cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: u64) -> Planned {
        let t = SimTime::ZERO + SimDuration::from_ps(n);
        let d = SimDuration::ZERO;
        Planned { queue: QueueId(n as u32), raised_at: t, arrived_at: t, start: t, service: d, eoi: d, departs: t }
    }

    #[test]
    fn jobs_keep_arrival_order_through_emptying_and_compaction() {
        // 3,000 planned, 2,000 departed (compaction once 1,024 departed outnumber the rest),
        // 500 more planned, then all departed: FIFO throughout, empty at the end.
        let mut jobs = Jobs::default();
        let mut next_out = 0u32;
        let mut pop = |jobs: &mut Jobs| {
            assert_eq!(jobs.front().map(|j| j.queue), Some(QueueId(next_out)));
            jobs.pop_front();
            next_out += 1;
        };
        (0..3_000).for_each(|n| jobs.push_back(job(n)));
        (0..2_000).for_each(|_| pop(&mut jobs));
        assert_eq!(jobs.len(), 1_000);
        assert!(jobs.head < 1_024, "compacted");
        (3_000..3_500).for_each(|n| jobs.push_back(job(n)));
        assert_eq!(jobs.iter().map(|j| j.queue.0).collect::<Vec<_>>(), (2_000..3_500).collect::<Vec<_>>());
        (0..1_500).for_each(|_| pop(&mut jobs));
        assert!(jobs.is_empty() && jobs.items.is_empty() && jobs.head == 0);
    }
}
