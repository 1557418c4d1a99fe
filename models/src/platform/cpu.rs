//! The host CPUs as servers, chosen once when the platform is built: each CPU's local APIC
//! holds one pending bit per vector and runs the highest pending vector's handler next
//! ([`lapic::LapicCpus`], x86 remappable or compatibility MSIs, the default); or runs every
//! interrupt as its own job in arrival order ([`FifoCpus`]: the queueing oracle, and ARM's
//! LPIs); or demuxes a posted-interrupt descriptor in one notification handler
//! ([`posted_msi::PostedMsiCpus`], Linux 6.10+ host posted MSI).
//!
//! A server decides *when* a handler starts; the router asks the device (or VFIO) what it
//! costs ([`Work`]) and hands it back.

pub(super) mod lapic;
pub(super) mod lindley;
pub(super) mod posted_msi;

use std::collections::VecDeque;

use sim::{EventQueue, Metrics, SimDuration};

use super::Event;
use super::metrics::{CoreIds, CpuIds};
use super::route::{Job, Work, WorkKind};
use crate::ids::CpuId;

/// The host CPUs.
#[derive(Debug, Clone)]
pub(super) enum Cpus {
    /// The LAPIC: IRR bits, highest vector first.
    Lapic(lapic::LapicCpus),
    /// One FIFO handler queue per CPU.
    Fifo(FifoCpus),
    /// Host posted MSI: a descriptor and a demux loop per CPU.
    PostedMsi(posted_msi::PostedMsiCpus),
}

impl Cpus {
    /// CPU time taken per interrupt besides its handler and EOI (notification and IDT entry);
    /// with posted MSI it is paid per notification, so `None`.
    pub fn entry_per_interrupt(&self) -> Option<SimDuration> {
        match self {
            Cpus::Lapic(cpus) => Some(cpus.entry()),
            Cpus::Fifo(cpus) => Some(cpus.entry),
            Cpus::PostedMsi(_) => None,
        }
    }

    /// Whether an interrupt of `queue` on `vector` waits on `cpu` for its handler (pending
    /// in the IRR, not yet in service). With posted MSI interrupts wait in the PIR instead.
    pub fn waiting(&self, cpu: CpuId, queue: crate::ids::QueueId, vector: crate::ids::Vector) -> bool {
        match self {
            Cpus::Lapic(cpus) => cpus.pending(cpu, vector),
            Cpus::Fifo(cpus) => cpus.jobs[cpu.0 as usize].iter().skip(1).any(|j| j.queue == queue),
            Cpus::PostedMsi(_) => false,
        }
    }

    /// Interrupts waiting for, or in, a handler on any CPU.
    pub fn at_cpu(&self) -> u64 {
        match self {
            Cpus::Lapic(cpus) => cpus.at_cpu(),
            Cpus::Fifo(cpus) => cpus.jobs.iter().map(|j| j.len() as u64).sum(),
            Cpus::PostedMsi(cpus) => cpus.at_cpu(),
        }
    }
}

/// Each CPU runs handlers one at a time in arrival order (non-preemptive).
#[derive(Debug, Clone)]
pub(super) struct FifoCpus {
    /// Interrupts waiting or in service (front), per CPU.
    jobs: Vec<VecDeque<Job>>,
    /// Taking one interrupt: the notification and the IDT entry/exit.
    entry: SimDuration,
    ids: CpuIds,
    core: CoreIds,
}

impl FifoCpus {
    pub fn new(cpu_count: u32, entry: SimDuration, ids: CpuIds, core: CoreIds) -> FifoCpus {
        FifoCpus { jobs: (0..cpu_count).map(|_| VecDeque::new()).collect(), entry, ids, core }
    }

    /// An interrupt reaches `cpu`; returns whether its handler starts now (the CPU was idle).
    #[inline]
    pub fn arrive(&mut self, cpu: CpuId, job: Job) -> bool {
        let jobs = &mut self.jobs[cpu.0 as usize];
        jobs.push_back(job);
        jobs.len() == 1
    }

    /// The interrupt whose handler runs (or is about to run) on `cpu`.
    #[inline]
    pub fn current(&self, cpu: CpuId) -> Job {
        *self.jobs[cpu.0 as usize].front().expect("a handler starts only with a job")
    }

    /// Starts the handler of `job` (the current one) with `work`; it ends with a `HandlerDone`.
    /// Returns the CPU time it takes.
    #[inline]
    pub fn start(
        &mut self,
        cpu: CpuId,
        job: Job,
        work: Work,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) -> SimDuration {
        let busy = self.entry + work.service + work.eoi;
        if self.entry > SimDuration::ZERO {
            m.record(self.ids.irq_entry, self.entry.as_ps());
        }
        match work.kind {
            WorkKind::Driver => {
                m.record(self.core.queue_wait, q.now().since(job.arrived_at).as_ps());
                m.record(self.core.handler, work.service.as_ps());
                m.record(self.core.eoi, work.eoi.as_ps());
            }
            // One stage for the host's part: its wait, VFIO's handler and KVM's injection.
            WorkKind::VfioForward => m.record(self.ids.vfio_forward, (q.now() + busy).since(job.arrived_at).as_ps()),
        }
        m.add(self.ids.cpu_busy_ps, busy.as_ps());
        q.schedule_in(busy, Event::HandlerDone { cpu });
        busy
    }

    /// The current handler finished: its interrupt, and whether another one waits.
    #[inline]
    pub fn finish(&mut self, cpu: CpuId) -> (Job, bool) {
        let jobs = &mut self.jobs[cpu.0 as usize];
        let job = jobs.pop_front().expect("a handler finished on an idle CPU");
        (job, !jobs.is_empty())
    }
}
