//! The platform as a [`World`]: components that own their state, and one router.
//!
//! ```text
//!  Raise ─devices─▶ MsiWrite ─chip.translate─▶ Route ─┬─ Lapic / Deliver ─chip.accept─▶ host CPU server
//!  (store: send,                                      ├─ DeliverIntid (ARM) ─────────────▶ host CPU server
//!   pending, merged)                                  ├─ PostToVcpu ─────▶ guests (posted descriptor)
//!                                                     ├─ Vlpi ───────────▶ guests (GICv4 vPE)
//!                                                     └─ Lost(reason)
//!  host CPU server: FIFO handler (HandlerDone) or posted-MSI demux (PostedStep)
//!     ├─ the CPU time of each handler it starts ─▶ guests (host work on that pCPU)
//!     └─ VFIO's handler for a non-postable guest interrupt ─▶ guests (KVM injection)
//! ```
//!
//! Where nothing but the writes themselves touches the VT-d unit and every write takes one
//! latency, a raise translates its own write (`Platform::end_at`, the folded path): `Raise`
//! then goes straight to `Deliver`.
//!
//! The components, each in its own module and each built once from the parameters:
//! `devices` (queues, stores, IMS pools, the host handler of each queue), `chip` (x86:
//! vector domain + VT-d; ARM: ITS or v2m), `cpu` (FIFO servers or the posted-MSI demux),
//! `guest` (vCPUs, the pCPUs as servers, posted delivery, vLPIs, host bursts, VM exits),
//! `control` (actions and the
//! resync after a move) and `build` (setup); `stats` counts what the kernel and rtla would
//! (handler runs and latency per CPU) and `procfs` prints their views of the run (with the
//! layouts of `tables`). A stage takes an interrupt and returns
//! where it goes next (`route::Route`, `route::Accept`); [`Platform::handle`] is the
//! only place that turns those answers into events or calls of the next stage. No stage
//! calls another, with two narrow exceptions: a server that starts a handler asks the
//! device for its cost through `route::HandlerWork` (the device's random stream, drawn in
//! the order handlers start), and the guests queue what they need of the chip (vPE
//! residency, the programming of an assigned queue: `guest::ChipOp`), which the router
//! applies after each guest step. A host CPU server returns the CPU time of each handler it
//! starts and the router passes it to the guests (`Guests::host_interrupt`), which decide
//! what it means for the vCPUs on that pCPU.
//!
//! # What is modelled
//! See each component. Interrupts are conserved: at the end, raised = delivered + lost +
//! merged + in flight, counted from the event queue, the stores' pending bits and the
//! servers' queues ([`Platform::conservation`]). A pCPU that runs vCPUs is one server: its busy
//! intervals never overlap ([`Platform::pcpu_busy`]).
//!
//! # What is not modelled (and why)
//! - LAPIC IRR coalescing in remappable mode: every raise is a FIFO job on its CPU, the
//!   queueing abstraction the M/M/1 and M/D/1 oracles check. Posted modes merge per vector
//!   in the PIR, as the hardware does.
//! - Preemption by higher-priority vectors, softirq/threaded handlers.
//!
//! # Parameters and their sources
//! Every parameter is set by the scenario (`params`); defaults and their sources live in
//! the scenario schema (scenarios crate) and docs/parameters.md.

mod accounting;
mod build;
mod chip;
mod control;
mod cpu;
mod devices;
mod guest;
mod metrics;
mod params;
mod procfs;
mod route;
mod stats;
mod tables;

use sim::{EventQueue, Metrics, SimDuration, SimTime, World};

pub use accounting::{Conservation, ResourceUse};
pub use guest::PcpuBusy;
pub use guest::provision::{
    GuestIms, GuestOrder, ImsMaskPath, KVM_MAX_IRQ_ROUTES, MSIX_MESSAGE_EXITS, ProvisionCosts, ProvisionMode,
    ProvisionParams, RoutesPer,
};
pub use params::{
    Action, ActionKind, CpuCostParams, DeviceParams, ExitCosts, GicMsiParams, GicParams, GuestMsiParams, GuestParams,
    HostQueueing, ImsPoolParams, IommuParams, IpiParams, IrqMode, KernelParams, KvmParams, MigrationParams,
    PlatformParams, PostedMsiConfig, spread_mask,
};

use chip::IrqChip;
use cpu::Cpus;
use cpu::lindley::Lindley;
use devices::{Devices, HostHandler};
use guest::Guests;
use guest::provision::VmmHold;
use guest::provision::{Provisioning, Reached};
use metrics::Ids;
use route::{Accept, HandlerWork, Job, Route, Work, WorkKind};

use crate::arm::its::LPI_INTID_BASE;
use crate::ids::{CpuId, QueueId, Vector};
use crate::pci::store::Raise;
use crate::x86::vector_matrix::VectorDomain;

/// Everything that happens on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A queue's arrival process fires: the device raises the queue's interrupt.
    Raise {
        /// The raising queue.
        queue: QueueId,
    },
    /// The MSI write reaches the interrupt controller (or IOMMU).
    MsiWrite {
        /// The raising queue (its MSI-X entry holds the message).
        queue: QueueId,
        /// When the device raised it.
        raised_at: SimTime,
    },
    /// The (remapped) interrupt reaches the target CPU's LAPIC.
    Deliver {
        /// Target CPU.
        cpu: CpuId,
        /// Vector.
        vector: Vector,
        /// When the device raised it.
        raised_at: SimTime,
    },
    /// The CPU's current handler (and its EOI) finished.
    HandlerDone {
        /// The CPU.
        cpu: CpuId,
    },
    /// Scheduled action number `index` of [`PlatformParams::actions`].
    Action {
        /// Index into the actions.
        index: u32,
    },
    /// An ARM interrupt (LPI or SPI) becomes pending at a CPU.
    DeliverIntid {
        /// Target CPU (CPU ids fit in 16 bits: at most 65,536 CPUs).
        cpu: u16,
        /// The INTID.
        intid: u32,
        /// When the device raised it.
        raised_at: SimTime,
    },
    /// The IOMMU posts a vector into a vCPU's descriptor (after the IRTE lookup).
    PostToVcpu {
        /// The vCPU (descriptor id).
        vcpu: u32,
        /// The guest vector.
        vector: Vector,
        /// The IRTE's URG bit (notify even when SN is set).
        urgent: bool,
        /// When the device raised it.
        raised_at: SimTime,
    },
    /// A posted interrupt notified to a running vCPU reaches its vIRR.
    GuestInterrupt {
        /// The vCPU.
        vcpu: u32,
    },
    /// A woken vCPU becomes runnable on its pCPU; stale if `generation` is old.
    VcpuEntry {
        /// The vCPU.
        vcpu: u32,
        /// Which scheduled entry this is.
        generation: u32,
    },
    /// The guest handler running on a vCPU finished (stale if `generation` is old).
    GuestHandlerDone {
        /// The vCPU.
        vcpu: u32,
        /// Handler generation.
        generation: u32,
    },
    /// A burst of host work takes a pCPU that runs vCPUs.
    HostBurst {
        /// The pCPU.
        cpu: CpuId,
    },
    /// The host work holding a pCPU that runs vCPUs ends (stale if `generation` is old: it
    /// was extended).
    HostWorkEnd {
        /// The pCPU.
        cpu: CpuId,
        /// Which end this is.
        generation: u32,
    },
    /// The slice of the vCPU running on a pCPU ends (stale if `generation` is old).
    SliceEnd {
        /// The pCPU.
        cpu: CpuId,
        /// Which slice end this is.
        generation: u32,
    },
    /// The next step of a CPU's posted-MSI notification handler.
    PostedStep {
        /// The CPU.
        cpu: CpuId,
    },
    /// A queued message update reaches an IMS store in queue memory.
    StoreWrite {
        /// The queue whose entry is rewritten.
        queue: QueueId,
    },
    /// The oldest ITS command in flight (an affinity change) completed.
    ItsCommandDone,
    /// The next step of an assigned function's timed provisioning (a trapped write, a VFIO
    /// ioctl reaching the host, a vector's host setup or release done).
    Provision {
        /// The provisioned function (index in the provisioning's list).
        index: u32,
    },
    /// The cleanup of moved interrupts' old vectors runs on a CPU (the IPI up to 6.5, the
    /// timer from 6.6).
    VectorCleanup {
        /// The CPU whose old vectors are freed.
        cpu: CpuId,
    },
    /// The host scheduler migrates a guest's next vCPU to another pCPU (its `migration`).
    Migrate {
        /// The guest.
        guest: u32,
    },
    /// A vCPU's next guest IPI is due (`guests[].ipi`): sent now if it runs, else when it
    /// next enters the guest.
    IpiSend {
        /// The sending vCPU.
        vcpu: u32,
    },
}

impl Event {
    /// A stable name of the event's kind, for traces: it stays the same when variants are
    /// renamed or restructured, so a trace hash compares event order across refactors.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Raise { .. } => "raise",
            Event::MsiWrite { .. } => "msi_write",
            Event::Deliver { .. } => "deliver",
            Event::HandlerDone { .. } => "handler_done",
            Event::Action { .. } => "action",
            Event::DeliverIntid { .. } => "deliver_intid",
            Event::PostToVcpu { .. } => "post_to_vcpu",
            Event::GuestInterrupt { .. } => "guest_interrupt",
            Event::VcpuEntry { .. } => "vcpu_entry",
            Event::GuestHandlerDone { .. } => "guest_handler_done",
            Event::HostBurst { .. } => "host_burst",
            Event::HostWorkEnd { .. } => "host_work_end",
            Event::SliceEnd { .. } => "slice_end",
            Event::PostedStep { .. } => "posted_step",
            Event::StoreWrite { .. } => "store_write",
            Event::ItsCommandDone => "its_command_done",
            Event::VectorCleanup { .. } => "vector_cleanup",
            Event::Provision { .. } => "provision",
            Event::Migrate { .. } => "migrate",
            Event::IpiSend { .. } => "ipi_send",
        }
    }
}

// Events sit in the queue by the million: keep them small.
const _: () = assert!(std::mem::size_of::<Event>() <= 16);

/// The longest handler run the arithmetic keeps (2^61 ps, about 27 days): a run of merged
/// raises in an extreme overload is capped here, which changes nothing a run can see (runs
/// last at most an hour) and keeps every event time far below `u64::MAX` picoseconds.
const RUN_WORK_MAX: u64 = 1 << 61;

/// The platform: its components and the run's metrics.
#[derive(Debug, Clone)]
pub struct Platform {
    devices: Devices,
    chip: IrqChip,
    cpus: Cpus,
    /// The CPUs (of `cpus`, FIFO) whose interrupts take Lindley's recursion instead of events.
    lindley: Lindley,
    /// The folded translation path (`build::fold`): the MSI write's one latency when every
    /// raise may be translated by the remapping unit at the raise; `None`: on events.
    fold_latency: Option<SimDuration>,
    /// The last raise time whose write reaches the unit by the run's end
    /// ([`Platform::end_at`]); raises after it go on events. `None`: the run's end is not
    /// known, every raise goes on events.
    fold_until: Option<SimTime>,
    /// Guests and their vCPUs (none on a host without VMs).
    guests: Option<Guests>,
    /// Assigned functions whose interrupts are provisioned in time (none: all programmed
    /// when the VM starts).
    provisioning: Option<Provisioning>,
    actions: Vec<Action>,
    metrics: Metrics,
    ids: Ids,
    /// Handler runs and latencies per CPU, as the kernel and rtla count them.
    stats: stats::IrqStats,
    /// What the kernel's views of the run need to know of the platform.
    view: procfs::View,
}

impl Platform {
    /// The run's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The x86 vector domain (matrix allocator and per-interrupt state); `None` on ARM.
    pub fn vector_domain(&self) -> Option<&VectorDomain> {
        match &self.chip {
            IrqChip::X86(chip) => Some(chip.domain()),
            IrqChip::Arm(_) => None,
        }
    }

    /// Device vectors `cpu` could hold at boot (x86; 0 on ARM).
    pub fn vector_capacity(&self, cpu: CpuId) -> u32 {
        match &self.chip {
            IrqChip::X86(chip) => chip.vector_capacity(cpu),
            IrqChip::Arm(_) => 0,
        }
    }

    /// How many queues the devices have (queue ids are 0..this, in topology order).
    pub fn queue_count(&self) -> u32 {
        self.devices.queue_count() as u32
    }

    /// Where a queue's interrupt goes now (`None`: not routed, or shut down): (CPU, vector)
    /// on x86, (CPU, 0) for an ARM LPI or SPI, (pCPU, guest vector) for a guest's.
    pub fn queue_target(&self, queue: QueueId) -> Option<(CpuId, Vector)> {
        self.chip.target(queue)
    }

    /// The message (address, data) a queue's store entry holds now.
    pub fn queue_message(&self, queue: QueueId) -> (u64, u32) {
        let write = self.devices.message(queue);
        (write.address, write.data)
    }

    /// Checks the interrupt chip's own accounting, for tests and fuzzing after a run: on x86
    /// the vector domain's (`VectorDomain::check_invariants`: matrix bitmaps and counts
    /// against every interrupt's state) and the VT-d unit's (`RemapUnit::check_invariants`:
    /// IRTE blocks and bitmaps, the entry cache, fault records, counters, the lock's queue of
    /// pending effects); on ARM the ITS's or the v2m frame's checks, which panic instead of
    /// returning an error. Conservation is [`Platform::conservation`].
    pub fn check_invariants(&self) -> Result<(), String> {
        self.chip.check_invariants()
    }

    /// Tells the platform that the run ends at `end` (handles no event after it): then, where
    /// the build allowed it (`build::fold`), each raise whose MSI write reaches the remapping
    /// unit by `end` is translated at the raise (the folded path: three events an interrupt
    /// instead of four), and `iommu.folded_path_count` says how many remapping units took it.
    /// Without this call every raise goes on events. Call it once, before the run.
    pub fn end_at(&mut self, end: SimTime) {
        let Some(latency) = self.fold_latency else { return };
        if self.fold_until.is_some() || end.as_ps() < latency.as_ps() {
            return;
        }
        self.fold_until = Some(SimTime::from_ps(end.as_ps() - latency.as_ps()));
        let IrqChip::X86(chip) = &self.chip else { unreachable!("the fold is x86") };
        self.metrics.add(self.ids.cpu.folded_units, chip.remap_unit_count());
    }

    /// Tells the platform that the run stops at `end` and not before (no event limit): the
    /// CPUs on Lindley's recursion then record each interrupt departing by `end` at its
    /// raise (`cpu::lindley`, *Recording ahead*). Call it once, before the run, and only for
    /// a run that nothing but its end time stops. Returns whether any CPU records ahead
    /// (takes the recursion).
    pub fn record_ahead_until(&mut self, end: SimTime) -> bool {
        self.lindley.record_ahead_until(end);
        self.lindley.cpu_count() > 0
    }

    /// A raise on the folded path: its MSI write (recorded as [`Devices::send`] records it)
    /// is translated now at its arrival time, `now + latency`, and what the unit answers is
    /// followed from there: the LAPIC's `Deliver` at the arrival plus the lookup, or the loss
    /// counted now. Nothing but these translations touches the unit while the fold holds, and
    /// they reach it in raise order at nondecreasing times, as their `MsiWrite` events would.
    #[inline]
    fn folded(&mut self, queue: QueueId, now: SimTime, q: &mut EventQueue<Event>) {
        let latency = self.devices.send_at_once(queue, &mut self.metrics);
        let at = now + latency;
        let write = self.devices.message(queue);
        let IrqChip::X86(chip) = &mut self.chip else { unreachable!("the fold is x86") };
        match chip.translate(at, write, &mut self.metrics) {
            Route::HostVector { cpu, vector, after } => {
                q.schedule_at(at + after, Event::Deliver { cpu, vector, raised_at: now })
            }
            // Lost (a fault, or a posted IRTE without guests): counted now, not at `at`; the
            // run's end comes after `at`, so its counters are the same.
            route => self.follow(route, now, q),
        }
    }

    #[inline]
    fn lose(&mut self, reason: sim::CounterId) {
        self.metrics.add(self.ids.core.lost, 1);
        self.metrics.add(reason, 1);
    }

    /// Follows the chip's answer for an MSI write.
    #[inline]
    fn follow(&mut self, route: Route, raised_at: SimTime, q: &mut EventQueue<Event>) {
        match route {
            Route::Lapic { cpu, vector } => self.at_lapic(cpu, vector, raised_at, q),
            Route::HostVector { cpu, vector, after } => q.schedule_in(after, Event::Deliver { cpu, vector, raised_at }),
            Route::Intid { cpu, intid, after } => {
                let cpu = u16::try_from(cpu.0).expect("at most 65,536 CPUs");
                q.schedule_in(after, Event::DeliverIntid { cpu, intid, raised_at });
            }
            Route::PostedVcpu { vcpu, vector, urgent, after } => match self.guests {
                Some(_) => q.schedule_in(after, Event::PostToVcpu { vcpu, vector, urgent, raised_at }),
                // A posted IRTE without guests has no descriptor to post into.
                None => self.lose(self.ids.core.lost_no_handler),
            },
            Route::Vlpi { vpe, vintid, outcome, after } => {
                let vcpu = self.guests.as_ref().and_then(|g| g.vcpu_of_vpe(vpe));
                let delivered = match (vcpu, u8::try_from(vintid - LPI_INTID_BASE), self.guests.as_mut()) {
                    (Some(vcpu), Ok(vector), Some(guests)) => {
                        guests.vlpi_to_vcpu(vcpu, Vector(vector), outcome, after, raised_at, q, &mut self.metrics)
                    }
                    _ => false,
                };
                self.apply_chip_ops(q);
                if !delivered {
                    self.lose(self.ids.core.lost_no_handler);
                }
            }
            Route::Lost(reason) => self.lose(reason),
        }
    }

    /// An interrupt reaches a CPU's LAPIC (x86): the handler registered on the vector runs
    /// on the CPU's server; one that reached a CPU going offline is re-sent.
    #[inline]
    fn at_lapic(&mut self, mut cpu: CpuId, mut vector: Vector, raised_at: SimTime, q: &mut EventQueue<Event>) {
        let IrqChip::X86(chip) = &mut self.chip else { unreachable!("LAPICs are x86") };
        loop {
            match chip.accept(cpu, vector, q, &mut self.metrics) {
                Accept::Handler(queue) => return self.onto_host_cpu(cpu, vector, queue, raised_at, q),
                Accept::Retrigger { cpu: c, vector: v } => (cpu, vector) = (c, v),
                Accept::Lost(reason) => return self.lose(reason),
            }
        }
    }

    /// The interrupt of `queue` reaches `cpu` on `vector`: it sets (or merges into) the
    /// LAPIC's pending bit, is queued behind the handlers already there (FIFO), or is
    /// posted into the CPU's descriptor (host posted MSI).
    #[inline]
    fn onto_host_cpu(
        &mut self,
        cpu: CpuId,
        vector: Vector,
        queue: QueueId,
        raised_at: SimTime,
        q: &mut EventQueue<Event>,
    ) {
        let job = Job { queue, raised_at, arrived_at: q.now() };
        match &mut self.cpus {
            Cpus::Lapic(cpus) => {
                if cpus.arrive(cpu, vector, job, &mut self.metrics) {
                    self.start_host_handler(cpu, q);
                }
            }
            Cpus::Fifo(cpus) => {
                if cpus.arrive(cpu, job) {
                    self.start_host_handler(cpu, q);
                }
            }
            Cpus::PostedMsi(cpus) => {
                let busy = cpus.post(cpu, vector, queue, raised_at, q, &mut self.metrics);
                self.host_took(cpu, busy, q);
            }
        }
    }

    /// The host CPU server started `busy` of work on `cpu`: the guests learn it (it preempts
    /// the vCPU running there) and the chip applies what that asked of it.
    #[inline]
    fn host_took(&mut self, cpu: CpuId, busy: SimDuration, q: &mut EventQueue<Event>) {
        if busy == SimDuration::ZERO {
            return;
        }
        if let Some(guests) = self.guests.as_mut() {
            guests.host_interrupt(cpu, busy, q, &mut self.metrics);
            self.apply_chip_ops(q);
        }
    }

    /// The work of a handler run for `raises` interrupts of `queue`: the driver's handler
    /// once per raise (it drains its completion queue) and one EOI, or VFIO's forward of each.
    #[inline]
    fn host_work(&mut self, queue: QueueId, raises: u32) -> Work {
        match self.devices.host_handler(queue) {
            HostHandler::Driver => {
                let mut work = self.devices.driver_work(queue);
                for _ in 1..raises {
                    let more = self.devices.driver_work(queue).service.as_ps();
                    work.service = SimDuration::from_ps(work.service.as_ps().saturating_add(more).min(RUN_WORK_MAX));
                }
                work
            }
            HostHandler::VfioForward { vcpu, .. } => {
                let guests = self.guests.as_ref().expect("VFIO forwards to guests");
                let each = guests.remapped_forward_of(vcpu).as_ps();
                let service = SimDuration::from_ps(each.saturating_mul(u64::from(raises)).min(RUN_WORK_MAX));
                Work { service, eoi: SimDuration::ZERO, kind: WorkKind::VfioForward }
            }
        }
    }

    /// Starts the next handler on `cpu`: the FIFO's front, or the LAPIC's highest pending
    /// vector (none when nothing is pending).
    #[inline]
    fn start_host_handler(&mut self, cpu: CpuId, q: &mut EventQueue<Event>) {
        match &mut self.cpus {
            Cpus::Lapic(cpus) => {
                let Some(run) = cpus.take_next(cpu) else { return };
                let (queue, raises) = (run.job.queue, run.raises());
                let work = self.host_work(queue, raises);
                let Cpus::Lapic(cpus) = &mut self.cpus else { unreachable!() };
                let busy = cpus.start(cpu, work, q, &mut self.metrics);
                self.host_took(cpu, busy, q);
            }
            Cpus::Fifo(cpus) => {
                let job = cpus.current(cpu);
                let work = self.host_work(job.queue, 1);
                let Cpus::Fifo(cpus) = &mut self.cpus else { unreachable!() };
                let busy = cpus.start(cpu, job, work, q, &mut self.metrics);
                self.host_took(cpu, busy, q);
            }
            Cpus::PostedMsi(_) => unreachable!("posted MSI runs its own handlers"),
        }
    }

    /// One raise's handler work is done on `cpu`: it is delivered, or VFIO's forward hands it
    /// to KVM, which injects it through the vCPU's posted descriptor.
    // Always: one call per raise on the hottest path; left to itself the compiler stops
    // inlining it into the LAPIC's loop over a run's raises.
    #[inline(always)]
    fn host_handled(&mut self, queue: QueueId, raised_at: SimTime, cpu: CpuId, q: &mut EventQueue<Event>) {
        match self.devices.host_handler(queue) {
            HostHandler::VfioForward { vcpu, vector } => {
                self.metrics.add(self.ids.guest.kvm_remapped_fallback, 1);
                let guests = self.guests.as_mut().expect("VFIO forwards to guests");
                if !guests.inject(vcpu, vector, raised_at, q, &mut self.metrics) {
                    self.lose(self.ids.core.lost_no_handler);
                }
            }
            HostHandler::Driver => {
                let latency = q.now().since(raised_at).as_ps();
                self.metrics.add(self.ids.core.delivered, 1);
                self.metrics.record(self.ids.core.end_to_end, latency);
                self.stats.delivered(cpu.0, latency);
            }
        }
    }

    /// A host handler run finished: it counts once for its interrupt on this CPU (as the
    /// kernel counts one per flow-handler call, however many raises merged into it), each
    /// raise it served is handled, and the CPU takes the next.
    #[inline]
    fn on_handler_done(&mut self, cpu: CpuId, q: &mut EventQueue<Event>) {
        let more = match &mut self.cpus {
            Cpus::Lapic(cpus) => {
                let (run, more) = cpus.finish(cpu);
                self.stats.host_ran(&mut self.devices, run.job.queue, cpu.0);
                for raised_at in run.raised_at() {
                    self.host_handled(run.job.queue, raised_at, cpu, q);
                }
                more
            }
            Cpus::Fifo(cpus) => {
                let (job, more) = cpus.finish(cpu);
                self.stats.host_ran(&mut self.devices, job.queue, cpu.0);
                self.host_handled(job.queue, job.raised_at, cpu, q);
                more
            }
            Cpus::PostedMsi(_) => unreachable!("posted MSI runs its own handlers"),
        };
        if let IrqChip::X86(chip) = &mut self.chip {
            chip.after_handler(cpu, q);
        }
        if more {
            self.start_host_handler(cpu, q);
        }
    }

    /// A raise on Lindley's recursion: its MSI write, its arrival at `cpu` and its handler's
    /// work (drawn now, in the order its handlers start) are known at once.
    #[inline]
    fn planned(&mut self, cpu: CpuId, handler: QueueId, now: SimTime) {
        let work = self.devices.driver_work(handler);
        self.lindley.plan_job(cpu, handler, now, work, &mut self.stats, &mut self.devices);
    }

    fn on_posted_step(&mut self, cpu: CpuId, q: &mut EventQueue<Event>) {
        let Cpus::PostedMsi(cpus) = &mut self.cpus else { unreachable!("posted MSI steps") };
        let (done, start, busy) = cpus.step(cpu, q, &mut self.metrics);
        self.host_took(cpu, busy, q);
        if let Some(job) = done {
            self.stats.host_ran(&mut self.devices, job.queue, cpu.0);
            self.host_handled(job.queue, job.raised_at, cpu, q);
        }
        if let Some(job) = start {
            let work = self.host_work(job.queue, 1);
            let Cpus::PostedMsi(cpus) = &mut self.cpus else { unreachable!("posted MSI steps") };
            let busy = cpus.start_handler(cpu, job, work, q, &mut self.metrics);
            self.host_took(cpu, busy, q);
        }
    }

    /// A guest handler on `vcpu` delivered `job`'s interrupt: one run on the vCPU, and its
    /// latency on the pCPU the vCPU runs on.
    fn guest_handled(&mut self, vcpu: u32, job: Job, now: SimTime) {
        let pcpu = self.guests.as_ref().expect("guest handlers need guests").pcpu_of(vcpu);
        self.stats.guest.as_mut().expect("guests have their runs counted").record(job.queue.0, vcpu);
        self.stats.delivered(pcpu.0, now.since(job.raised_at).as_ps());
    }

    fn post_to_vcpu(&mut self, vcpu: u32, vector: Vector, urgent: bool, raised_at: SimTime, q: &mut EventQueue<Event>) {
        let guests = self.guests.as_mut().expect("posting needs guests");
        if !guests.post_to_vcpu(vcpu, vector, urgent, raised_at, q, &mut self.metrics) {
            self.lose(self.ids.core.lost_no_handler);
        }
    }

    /// Applies what the guests asked of the chip (vPE residency, doorbells, provisioning) and
    /// hands each vPE move's completion back to the guests (KVM waits for its VMOVP).
    #[inline]
    fn apply_chip_ops(&mut self, q: &mut EventQueue<Event>) {
        let Some(guests) = self.guests.as_mut().filter(|g| g.has_chip_ops()) else { return };
        for moved in self.chip.apply(guests.take_chip_ops(), q.now(), &mut self.devices, &mut self.metrics) {
            guests.vpe_moved(moved, q, &mut self.metrics);
        }
    }

    /// Runs one guest step (it may start guest handlers, whose work the devices draw), then
    /// applies the vPE operations it queued.
    fn guest_step(
        &mut self,
        q: &mut EventQueue<Event>,
        step: impl FnOnce(&mut Guests, &mut EventQueue<Event>, &mut Metrics, &mut Devices),
    ) {
        let guests = self.guests.as_mut().expect("guest events need guests");
        step(guests, q, &mut self.metrics, &mut self.devices);
        self.apply_chip_ops(q);
    }
}

/// From this many queues on, `Platform::handle` prefetches what the next pending events read
/// ([`Platform::prefetch_next`]): 4 MiB of queue lines alone, more than a core's L2, with the
/// IRTEs, vector tables and per-CPU records besides. Below it those lines mostly stay in the
/// caches and the peek would cost only its instructions (about 600 an interrupt in the
/// default scenario, 100 on Lindley's path: benches/runs/2026-11-30-scale-soa.md).
const PEEK_QUEUES_MIN: usize = 1 << 16;

impl Platform {
    /// Prefetches the lines that the events due next read first: a raise's queue line and
    /// IRTE, a delivery's vector-table slot, queue line and LAPIC record, a handler end's
    /// LAPIC record and latency histogram, for the events one of which runs after this one
    /// ([`EventQueue::next_candidates`]: the heap root's children). At a million queues each
    /// of those lines is a cache miss on which the event would wait; one to four events ahead
    /// (a few hundred nanoseconds) is time enough for it to arrive, where a prefetch
    /// thousands of interrupts ahead (the raise's own, `Devices::raise`) may be evicted
    /// again before it is used. The IRTE and the delivery's queue line are found by reading
    /// a line that may itself be on its way (the queue line, the vector slot), which holds
    /// up what follows: that is done for the earliest candidate only, the event that runs
    /// next (for all four it took 1.10× the time, benches/runs/2026-11-30-scale-soa.md). A
    /// prefetch is a hint: what the run computes does not depend on it (the reports are
    /// the same bytes with and without). Out of line, so that `handle`'s code stays as it was
    /// for the scenarios below the threshold.
    #[inline(never)]
    fn prefetch_next(&self, q: &EventQueue<Event>) {
        let mut next: Option<(SimTime, Event)> = None;
        for (at, event) in q.next_candidates() {
            if next.is_none_or(|(t, _)| at < t) {
                next = Some((at, *event));
            }
            match *event {
                Event::Raise { queue } => self.devices.prefetch(queue),
                Event::Deliver { cpu, vector, .. } => {
                    if let IrqChip::X86(chip) = &self.chip {
                        chip.prefetch_handler(cpu, vector);
                    }
                    if let Cpus::Lapic(cpus) = &self.cpus {
                        cpus.prefetch(cpu);
                    }
                }
                Event::HandlerDone { cpu } => {
                    self.stats.prefetch_latency(cpu.0);
                    if let Cpus::Lapic(cpus) = &self.cpus {
                        cpus.prefetch(cpu);
                    }
                }
                _ => {}
            }
        }
        // What is read from a line that may still be on its way: only for the next event.
        match next {
            Some((_, Event::Raise { queue })) => self.prefetch_irte(queue),
            Some((_, Event::Deliver { cpu, vector, .. })) => {
                if let IrqChip::X86(chip) = &self.chip
                    && let Some(queue) = chip.queue_at(cpu, vector)
                {
                    self.devices.prefetch(queue);
                }
            }
            _ => {}
        }
    }

    /// Prefetches the IRTE of a raise due next, on the folded path (where the raise's own
    /// event translates its write). Its index is in the queue's line, which this reads:
    /// prefetched when the raise was scheduled, it is there or on its way, and the raise
    /// would wait on it anyway.
    #[inline(always)]
    fn prefetch_irte(&self, queue: QueueId) {
        if self.fold_until.is_some()
            && let IrqChip::X86(chip) = &self.chip
        {
            chip.prefetch_translation(&self.devices.message(queue));
        }
    }

    /// Whose target a translated route reaches: a guest (posted to one of its vCPUs, or a
    /// host vector whose VFIO handler forwards to it), the host, or nobody (lost).
    fn reached(&self, route: &Route) -> Reached {
        let guests = self.guests.as_ref();
        match *route {
            Route::Lost(_) => Reached::Lost,
            Route::PostedVcpu { vcpu, .. } => guests.map_or(Reached::Host, |g| Reached::Guest(g.guest_of_vcpu(vcpu))),
            Route::HostVector { cpu, vector, .. } | Route::Lapic { cpu, vector } => {
                let IrqChip::X86(chip) = &self.chip else { return Reached::Host };
                match chip.queue_at(cpu, vector).and_then(|queue| self.devices.params_of(queue).assigned_to) {
                    Some(guest) => Reached::Guest(guest),
                    None => Reached::Host,
                }
            }
            // Validation keeps provisioning on x86.
            Route::Intid { .. } | Route::Vlpi { .. } => Reached::Host,
        }
    }
}

impl World for Platform {
    type Event = Event;

    /// The router: the only place that turns a stage's answer into the next step.
    // Long: one arm per event kind, kept together so that the dispatch is read in one place.
    fn handle(&mut self, event: Event, q: &mut EventQueue<Event>) {
        if self.devices.queue_count() >= PEEK_QUEUES_MIN {
            self.prefetch_next(q);
        }
        match event {
            Event::Raise { queue } => match self.devices.raise(queue, q, &mut self.metrics) {
                // A trapped vector the guest masked: the VMM keeps the raise.
                Raise::Send
                    if let Some(hold) = self.provisioning.as_mut().map(|p| p.vmm_hold(queue))
                        && hold != VmmHold::Open =>
                {
                    if hold == VmmHold::Merged {
                        self.metrics.add(self.ids.devices.pending_merged, 1);
                    }
                }
                Raise::Send => match self.lindley.route(queue) {
                    Some((cpu, handler)) => self.planned(cpu, handler, q.now()),
                    None if self.fold_until.is_some_and(|until| q.now() <= until) => self.folded(queue, q.now(), q),
                    None => self.devices.send(queue, q.now(), q, &mut self.metrics),
                },
                Raise::Pending | Raise::Merged => {}
                Raise::MaskedDropped => self.lose(self.devices.lost_ims_masked()),
                Raise::Dropped => {
                    let reason = self.provisioning.as_ref().expect("only provisioning disables MSI-X").lost_disabled();
                    self.lose(reason);
                }
            },
            Event::MsiWrite { queue, raised_at } => {
                let write = self.devices.message(queue);
                let route = match &mut self.chip {
                    IrqChip::X86(chip) => chip.translate(q.now(), write, &mut self.metrics),
                    IrqChip::Arm(chip) => chip.translate(write, &mut self.metrics),
                };
                if let Some(guest) = self.provisioning.as_ref().and_then(|p| p.direct_guest(queue)) {
                    let reached = self.reached(&route);
                    let provisioning = self.provisioning.as_ref().expect("checked above");
                    provisioning.observe(guest, queue, reached, q.now(), &mut self.metrics);
                }
                self.follow(route, raised_at, q);
            }
            Event::Deliver { cpu, vector, raised_at } => self.at_lapic(cpu, vector, raised_at, q),
            Event::DeliverIntid { cpu, intid, raised_at } => {
                let IrqChip::Arm(chip) = &self.chip else { unreachable!("INTIDs are ARM") };
                match chip.accept(intid) {
                    Accept::Handler(queue) => self.onto_host_cpu(CpuId(u32::from(cpu)), Vector(0), queue, raised_at, q),
                    Accept::Retrigger { .. } => unreachable!("no hotplug on ARM"),
                    Accept::Lost(reason) => self.lose(reason),
                }
            }
            Event::HandlerDone { cpu } => self.on_handler_done(cpu, q),
            Event::PostedStep { cpu } => self.on_posted_step(cpu, q),
            Event::Action { index } => self.on_action(index, q),
            Event::StoreWrite { queue } => self.devices.on_store_write(queue),
            Event::VectorCleanup { cpu } => {
                let IrqChip::X86(chip) = &mut self.chip else { unreachable!("vector cleanup is x86") };
                // Interrupts on their way to this CPU's LAPIC, by vector.
                let mut arriving = [false; 256];
                for (_, e) in q.iter() {
                    if let Event::Deliver { cpu: c, vector, .. } = e
                        && *c == cpu
                    {
                        arriving[usize::from(vector.0)] = true;
                    }
                }
                let cpus = &self.cpus;
                let pending =
                    |queue, vector: Vector| arriving[usize::from(vector.0)] || cpus.waiting(cpu, queue, vector);
                chip.run_cleanup(cpu, pending, q, &mut self.metrics);
            }
            Event::ItsCommandDone => {
                let IrqChip::Arm(chip) = &mut self.chip else { unreachable!("ITS commands are ARM") };
                chip.on_command_done(q.now(), &mut self.metrics);
            }
            Event::Provision { index } => self.on_provision(index, q),
            Event::PostToVcpu { vcpu, vector, urgent, raised_at } => {
                self.post_to_vcpu(vcpu, vector, urgent, raised_at, q)
            }
            Event::GuestInterrupt { vcpu } => self.guest_step(q, |g, q, m, d| g.on_guest_interrupt(vcpu, q, m, d)),
            Event::VcpuEntry { vcpu, generation } => {
                self.guest_step(q, |g, q, m, d| g.on_vcpu_entry_event(vcpu, generation, q, m, d))
            }
            Event::GuestHandlerDone { vcpu, generation } => {
                let mut done = None;
                self.guest_step(q, |g, q, m, d| done = g.on_guest_handler_done(vcpu, generation, q, m, d));
                if let Some(job) = done {
                    self.guest_handled(vcpu, job, q.now());
                }
            }
            Event::HostBurst { cpu } => self.guest_step(q, |g, q, m, _| g.on_host_burst(cpu, q, m)),
            Event::HostWorkEnd { cpu, generation } => {
                self.guest_step(q, |g, q, m, d| g.on_host_work_end(cpu, generation, q, m, d))
            }
            Event::SliceEnd { cpu, generation } => {
                self.guest_step(q, |g, q, m, d| g.on_slice_end(cpu, generation, q, m, d))
            }
            Event::Migrate { guest } => self.guest_step(q, |g, q, m, _| g.on_migrate(guest, q, m)),
            Event::IpiSend { vcpu } => self.guest_step(q, |g, q, m, d| g.on_ipi_due(vcpu, q, m, d)),
        }
    }

    /// Records what the CPUs on Lindley's recursion did up to `now`.
    fn settle(&mut self, now: SimTime) {
        self.lindley.settle(now, &mut self.metrics, &mut self.stats, &mut self.devices);
    }
}
