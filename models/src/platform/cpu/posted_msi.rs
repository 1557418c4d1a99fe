//! Host posted MSI (Linux 6.10+, `intremap=posted_msi`) on each CPU: the IOMMU posts device
//! MSIs into the CPU's descriptor; only the posting that sets ON sends a notification; the
//! notification handler (`sysvec_posted_msi_notification`) demuxes the PIR in passes, up
//! to the loop cap, then clears ON and makes a final pass before its EOI. The mechanism's
//! closed form is `x86::posted_msi`; a platform test checks this server against it under the
//! same fitted costs, a consistency check of two implementations rather than a reproduction
//! of the published figures (which the costs were fitted to).

use sim::{EventQueue, Metrics, SimDuration, SimTime};

use super::super::Event;
use super::super::metrics::{CoreIds, CpuIds};
use super::super::params::PostedMsiConfig;
use super::super::route::{Job, Pending, Work, WorkKind};
use crate::ids::{CpuId, QueueId, Vector};

/// Where a CPU is in its posted-MSI notification handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Taking the notification (notification + entry).
    Entry,
    /// Reading and clearing the PIR.
    Scan,
    /// Running the handler of `batch[next]`.
    Handler,
    /// The EOI that ends the notification.
    Eoi,
}

/// A CPU's posted-interrupt descriptor and its demux loop.
#[derive(Debug, Clone)]
struct PostedCpu {
    pir: Pending,
    /// Outstanding notification (ON set and the notification not yet taken).
    on: bool,
    notification_pending: bool,
    phase: Phase,
    passes: u32,
    final_pass: bool,
    /// The interrupts found by the current pass, ascending by vector.
    batch: Vec<Job>,
    next: usize,
    /// Notifications taken (the kernel's `posted_msi_notification_count`, `PMN:`).
    notifications: u64,
}

/// Every CPU's descriptor and demux loop.
#[derive(Debug, Clone)]
pub(in crate::platform) struct PostedMsiCpus {
    cpus: Vec<PostedCpu>,
    config: PostedMsiConfig,
    /// Taking the notification: the notification and the IDT entry/exit.
    entry: SimDuration,
    /// The EOI that ends a notification.
    eoi: SimDuration,
    ids: CpuIds,
    core: CoreIds,
}

impl PostedMsiCpus {
    pub fn new(
        cpu_count: u32,
        config: PostedMsiConfig,
        entry: SimDuration,
        eoi: SimDuration,
        ids: CpuIds,
        core: CoreIds,
    ) -> PostedMsiCpus {
        let cpu = PostedCpu {
            pir: Pending::new(),
            on: false,
            notification_pending: false,
            phase: Phase::Idle,
            passes: 0,
            final_pass: false,
            batch: Vec::new(),
            next: 0,
            notifications: 0,
        };
        PostedMsiCpus { cpus: vec![cpu; cpu_count as usize], config, entry, eoi, ids, core }
    }

    /// Interrupts in a PIR or in the current batch, all CPUs.
    pub fn at_cpu(&self) -> u64 {
        self.cpus
            .iter()
            .map(|p| {
                let in_batch = if p.phase == Phase::Handler { p.batch.len() - p.next } else { 0 };
                p.pir.count() + in_batch as u64
            })
            .sum()
    }

    /// Posted-MSI notifications `cpu` has taken.
    pub fn notifications(&self, cpu: CpuId) -> u64 {
        self.cpus[cpu.0 as usize].notifications
    }

    /// The IOMMU posts `vector` into the CPU's descriptor; only the posting that sets ON
    /// sends a notification. Returns the CPU time of the step it started (zero: none).
    pub fn post(
        &mut self,
        cpu: CpuId,
        vector: Vector,
        queue: QueueId,
        raised_at: SimTime,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) -> SimDuration {
        let pc = &mut self.cpus[cpu.0 as usize];
        if !pc.pir.post(vector, Job { queue, raised_at, arrived_at: q.now() }) {
            m.add(self.core.merged_pir, 1);
            return SimDuration::ZERO;
        }
        if !pc.on {
            pc.on = true;
            pc.notification_pending = true;
            if pc.phase == Phase::Idle {
                return self.start_notification(cpu, q, m);
            }
        }
        SimDuration::ZERO
    }

    /// The CPU takes the posted-MSI notification (POSTED_MSI_NOTIFICATION_VECTOR).
    fn start_notification(&mut self, cpu: CpuId, q: &mut EventQueue<Event>, m: &mut Metrics) -> SimDuration {
        let pc = &mut self.cpus[cpu.0 as usize];
        pc.notification_pending = false;
        pc.notifications += 1;
        pc.phase = Phase::Entry;
        pc.passes = 0;
        pc.final_pass = false;
        m.record(self.ids.irq_entry, self.entry.as_ps());
        m.add(self.ids.cpu_busy_ps, self.entry.as_ps());
        q.schedule_in(self.entry, Event::PostedStep { cpu });
        self.entry
    }

    /// Starts a demux pass: a loop pass while the cap allows, else clear ON and the final
    /// pass; after the final pass, the EOI.
    fn begin_pass(&mut self, cpu: CpuId, found_last: bool, q: &mut EventQueue<Event>, m: &mut Metrics) -> SimDuration {
        let pc = &mut self.cpus[cpu.0 as usize];
        if pc.final_pass {
            pc.phase = Phase::Eoi;
            m.record(self.core.eoi, self.eoi.as_ps());
            m.add(self.ids.cpu_busy_ps, self.eoi.as_ps());
            q.schedule_in(self.eoi, Event::PostedStep { cpu });
            return self.eoi;
        }
        if !(found_last && pc.passes < self.config.loop_cap.saturating_sub(1)) {
            pc.on = false;
            pc.final_pass = true;
        }
        pc.phase = Phase::Scan;
        pc.passes += 1;
        m.add(self.ids.cpu_busy_ps, self.config.pir_scan.as_ps());
        q.schedule_in(self.config.pir_scan, Event::PostedStep { cpu });
        self.config.pir_scan
    }

    /// The next step of the notification handler. Returns the interrupt whose handler just
    /// finished (the router delivers it, or VFIO forwards it) and the one whose handler must
    /// start now (the router asks for its work and calls [`Self::start_handler`]), and the
    /// CPU time of the step it started (zero: none, or the handler's, which
    /// [`Self::start_handler`] returns).
    pub fn step(
        &mut self,
        cpu: CpuId,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) -> (Option<Job>, Option<Job>, SimDuration) {
        let pc = &mut self.cpus[cpu.0 as usize];
        match pc.phase {
            Phase::Idle => unreachable!("a posted step on an idle CPU"),
            // The first pass always runs (found_last = true lets it count as a loop pass).
            Phase::Entry => return (None, None, self.begin_pass(cpu, true, q, m)),
            Phase::Scan => {
                let mut batch = std::mem::take(&mut pc.batch);
                batch.clear();
                pc.pir.drain_into(&mut batch);
                pc.batch = batch;
                pc.next = 0;
                if pc.batch.is_empty() {
                    return (None, None, self.begin_pass(cpu, false, q, m));
                }
                pc.phase = Phase::Handler;
                return (None, Some(pc.batch[0]), SimDuration::ZERO);
            }
            Phase::Handler => {
                let job = pc.batch[pc.next];
                pc.next += 1;
                if pc.next < pc.batch.len() {
                    return (Some(job), Some(pc.batch[pc.next]), SimDuration::ZERO);
                }
                return (Some(job), None, self.begin_pass(cpu, true, q, m));
            }
            Phase::Eoi => {
                pc.phase = Phase::Idle;
                if pc.notification_pending {
                    return (None, None, self.start_notification(cpu, q, m));
                }
            }
        }
        (None, None, SimDuration::ZERO)
    }

    /// Runs the handler of `job` (the batch's next) for `work.service`; the EOI comes once,
    /// at the end of the notification. Returns its CPU time.
    pub fn start_handler(
        &mut self,
        cpu: CpuId,
        job: Job,
        work: Work,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) -> SimDuration {
        match work.kind {
            WorkKind::Driver => {
                m.record(self.core.queue_wait, q.now().since(job.arrived_at).as_ps());
                m.record(self.core.handler, work.service.as_ps());
            }
            WorkKind::VfioForward => {
                let done = q.now() + work.service;
                m.record(self.ids.vfio_forward, done.since(job.arrived_at).as_ps());
            }
        }
        m.add(self.ids.cpu_busy_ps, work.service.as_ps());
        q.schedule_in(work.service, Event::PostedStep { cpu });
        work.service
    }
}
