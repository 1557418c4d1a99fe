//! The x86 local APIC as a server: one pending (IRR) bit per vector, the highest pending
//! vector taken next, and one handler run at a time (Linux runs hard-interrupt handlers
//! with interrupts off, so nothing nests).
//!
//! # What is modelled
//! - An interrupt that reaches a CPU whose IRR bit for its vector is already set merges
//!   into that bit (`interrupt.merged_irr_count`): the hardware keeps one pending bit, not a
//!   count. An interrupt arriving while its vector is *in service* sets the bit again.
//! - When the CPU is free it takes the highest pending vector (the LAPIC's priority is the
//!   vector: class = vector >> 4, then the vector), not the oldest.
//! - The handler run that serves a bit does the work of every raise merged into it: a
//!   driver drains its completion queue, so the run's time is the sum of one handler time
//!   per raise (drawn from the device's distribution in order), plus one EOI. Each raise's
//!   end-to-end latency ends when that run ends; `queue_wait`, `handler` and `eoi` are per
//!   run (per interrupt taken).
//!
//! # What is not modelled (and why)
//! - The TPR/PPR (Linux keeps the task priority at 0) and ISR nesting (no nesting with
//!   interrupts off in hard-IRQ context).
//! - The time from the IRR to the ISR (the interrupt acknowledge): part of `irq_entry`.
//!
//! # Parameters and their sources
//! The semantics are the SDM's (Vol. 3, "Interrupt Acceptance for Fixed Interrupts": IRR,
//! ISR, priority by vector; docs/sources.md#lapic-irr). No cost of its own.

use sim::{EventQueue, Metrics, SimDuration, SimTime};

use super::super::Event;
use super::super::metrics::{CoreIds, CpuIds};
use super::super::route::{Job, Pending, Work, WorkKind};
use crate::ids::{CpuId, Vector};

/// The interrupt a handler run serves: its queue, when the bit was set, and the raises
/// merged into it.
#[derive(Debug, Clone)]
pub(in crate::platform) struct Run {
    /// The first raise (the one that set the bit).
    pub job: Job,
    /// When the raises merged into the bit were made.
    pub merged: Vec<SimTime>,
}

impl Run {
    /// How many raises the run serves.
    pub fn raises(&self) -> u32 {
        1 + self.merged.len() as u32
    }

    /// When each of its raises was made, the first one first.
    pub fn raised_at(&self) -> impl Iterator<Item = SimTime> + '_ {
        std::iter::once(self.job.raised_at).chain(self.merged.iter().copied())
    }
}

/// One CPU's LAPIC, two cache lines aligned (each delivery reads and writes it: at
/// thousands of CPUs a miss per line touched).
#[derive(Debug, Clone)]
#[repr(align(64))]
struct Lapic {
    irr: Pending,
    /// Raises merged into a set IRR bit, by vector (few at a time).
    merged: Vec<(u8, SimTime)>,
    /// The run in service.
    in_service: Option<Run>,
}

const _: () = assert!(std::mem::size_of::<Lapic>() == 128);

/// Every CPU's LAPIC.
#[derive(Debug, Clone)]
pub(in crate::platform) struct LapicCpus {
    cpus: Vec<Lapic>,
    /// Taking one interrupt: the notification and the IDT entry/exit.
    entry: SimDuration,
    ids: CpuIds,
    core: CoreIds,
}

impl LapicCpus {
    pub fn new(cpu_count: u32, entry: SimDuration, ids: CpuIds, core: CoreIds) -> LapicCpus {
        let lapic = Lapic { irr: Pending::new(), merged: Vec::new(), in_service: None };
        LapicCpus { cpus: vec![lapic; cpu_count as usize], entry, ids, core }
    }

    /// Prefetches `cpu`'s LAPIC record, both its lines (an interrupt or a handler's end is
    /// due there next).
    #[inline(always)]
    pub fn prefetch(&self, cpu: CpuId) {
        if let Some(lapic) = self.cpus.get(cpu.0 as usize) {
            prefetch_index::prefetch_index(std::slice::from_ref(&lapic.irr), 0);
            prefetch_index::prefetch_index(std::slice::from_ref(&lapic.in_service), 0);
        }
    }

    /// Taking one interrupt costs this besides its handler and EOI.
    pub fn entry(&self) -> SimDuration {
        self.entry
    }

    /// An interrupt on `vector` reaches `cpu`: it sets the IRR bit or merges into it.
    /// Returns whether the CPU is idle and must start a run now.
    #[inline]
    pub fn arrive(&mut self, cpu: CpuId, vector: Vector, job: Job, m: &mut Metrics) -> bool {
        let lapic = &mut self.cpus[cpu.0 as usize];
        if !lapic.irr.post(vector, job) {
            lapic.merged.push((vector.0, job.raised_at));
            m.add(self.ids.merged_irr, 1);
        }
        lapic.in_service.is_none()
    }

    /// Takes the highest pending vector into service; `None` when nothing is pending.
    pub fn take_next(&mut self, cpu: CpuId) -> Option<&Run> {
        let lapic = &mut self.cpus[cpu.0 as usize];
        let vector = lapic.irr.highest()?;
        let job = lapic.irr.take(vector).expect("a set bit has its interrupt");
        let mut merged = Vec::new();
        lapic.merged.retain(|&(v, at)| {
            let mine = usize::from(v) == vector;
            if mine {
                merged.push(at);
            }
            !mine
        });
        lapic.in_service = Some(Run { job, merged });
        lapic.in_service.as_ref()
    }

    /// Starts the run in service with `work` (all its raises' handler time and one EOI);
    /// it ends with a `HandlerDone`. Returns the CPU time it takes.
    pub fn start(&mut self, cpu: CpuId, work: Work, q: &mut EventQueue<Event>, m: &mut Metrics) -> SimDuration {
        let run = self.cpus[cpu.0 as usize].in_service.as_ref().expect("a run in service");
        let busy = self.entry + work.service + work.eoi;
        if self.entry > SimDuration::ZERO {
            m.record(self.ids.irq_entry, self.entry.as_ps());
        }
        match work.kind {
            WorkKind::Driver => {
                m.record(self.core.queue_wait, q.now().since(run.job.arrived_at).as_ps());
                m.record(self.core.handler, work.service.as_ps());
                m.record(self.core.eoi, work.eoi.as_ps());
            }
            // One stage for the host's part: its wait, VFIO's handler and KVM's injection.
            WorkKind::VfioForward => {
                m.record(self.ids.vfio_forward, (q.now() + busy).since(run.job.arrived_at).as_ps());
            }
        }
        m.add(self.ids.cpu_busy_ps, busy.as_ps());
        q.schedule_in(busy, Event::HandlerDone { cpu });
        busy
    }

    /// The run in service finished: it is returned; whether another vector is pending.
    pub fn finish(&mut self, cpu: CpuId) -> (Run, bool) {
        let lapic = &mut self.cpus[cpu.0 as usize];
        let run = lapic.in_service.take().expect("a handler finished on an idle CPU");
        (run, lapic.irr.any())
    }

    /// Whether `vector` is pending in `cpu`'s IRR.
    pub fn pending(&self, cpu: CpuId, vector: Vector) -> bool {
        self.cpus[cpu.0 as usize].irr.is_set(vector)
    }

    /// Raises held by the LAPICs: set IRR bits, raises merged into them, runs in service.
    pub fn at_cpu(&self) -> u64 {
        self.cpus
            .iter()
            .map(|l| l.irr.count() + l.merged.len() as u64 + l.in_service.as_ref().map_or(0, |r| u64::from(r.raises())))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::QueueId;
    use sim::Metrics;

    fn ids(m: &mut Metrics) -> (CpuIds, CoreIds) {
        let all = crate::platform::metrics::register(m, false);
        (all.cpu, all.core)
    }

    fn job(queue: u32, at_ns: u64) -> Job {
        let at = SimTime::from_ps(at_ns * 1000);
        Job { queue: QueueId(queue), raised_at: at, arrived_at: at }
    }

    #[test]
    fn pending_vectors_merge_and_the_highest_is_served_first() {
        let mut m = Metrics::new();
        let (cpu_ids, core) = ids(&mut m);
        let mut lapic = LapicCpus::new(1, SimDuration::ZERO, cpu_ids, core);
        let cpu = CpuId(0);
        // A (vector 0x40) finds the CPU idle and is taken at once.
        assert!(lapic.arrive(cpu, Vector(0x40), job(0, 0), &mut m));
        assert_eq!(lapic.take_next(cpu).map(|r| (r.job.queue, r.raises())), Some((QueueId(0), 1)));
        // While it runs: B (0x35), C (0x50), then C again, which merges; A again sets its
        // bit anew (A is in service, not pending).
        assert!(!lapic.arrive(cpu, Vector(0x35), job(1, 10), &mut m));
        assert!(!lapic.arrive(cpu, Vector(0x50), job(2, 20), &mut m));
        assert!(!lapic.arrive(cpu, Vector(0x50), job(2, 30), &mut m));
        assert!(!lapic.arrive(cpu, Vector(0x40), job(0, 40), &mut m));
        assert_eq!(m.get(cpu_ids.merged_irr), 1);
        assert_eq!(lapic.at_cpu(), 5, "one in service, three bits, one merged raise");
        let (done, more) = lapic.finish(cpu);
        assert_eq!((done.job.queue, more), (QueueId(0), true));
        // Highest vector first: C with its merged raise, then A, then B (the oldest).
        let order: Vec<(u32, Vec<u64>)> = std::iter::from_fn(|| {
            let run = lapic.take_next(cpu)?;
            let entry = (run.job.queue.0, run.raised_at().map(|t| t.as_ps() / 1000).collect());
            lapic.finish(cpu);
            Some(entry)
        })
        .collect();
        assert_eq!(order, [(2, vec![20, 30]), (0, vec![40]), (1, vec![10])]);
        assert_eq!(lapic.at_cpu(), 0);
    }
}
