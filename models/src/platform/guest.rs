//! Guests: vCPUs pinned to pCPUs that halt when idle, each pCPU one server shared by its
//! vCPUs and the host's work there, the VM exits that costs (timed by reason), and the
//! interrupts of their assigned devices, posted (x86 VT-d posted interrupts, KVM
//! irq-bypass) into the vCPUs' descriptors or forwarded as vLPIs (ARM GICv4) to their vPEs.
//!
//! Who programs an assigned device's interrupts, and when, is the guests' decision
//! ([`Guests::provision`]); the programming itself (host vectors, IRTEs, ITS events, vPE
//! residency) is the chip's. The guests never call the chip: they queue [`ChipOp`]s that
//! the router applies after each guest step. Nor do they call the host CPU server: when a
//! host handler starts on a CPU, the router tells the guests ([`Guests::host_interrupt`],
//! with the handler's CPU time) and they schedule what it means for that pCPU.
//!
//! # What is modelled
//! - **A pCPU is one server.** At any time it runs host work or one of its vCPUs (or is
//!   idle). Host work: bursts (a renewal process per pCPU: exponential lengths and gaps),
//!   host interrupt handlers the host CPU server runs there (a host device's, VFIO's
//!   forward of a non-postable guest interrupt), the wake-up IRQ 0xf1 with its list walk
//!   and kicks (x86), the doorbell and its kick (ARM), and KVM's handling of each exit.
//!   Host work preempts the running vCPU at once (an interrupt: EXTERNAL_INTERRUPT; a
//!   burst: preemption); x86: SN = 1, the PIR accumulates; its handler pauses and resumes,
//!   with the PIR synced into the guest, when the host work ends. Host work arriving while
//!   host work runs extends it (an interrupt preempts a burst, which resumes after it).
//! - **vCPUs sharing a pCPU** take turns (the host scheduler): a runnable vCPU waits in the
//!   pCPU's run queue; at the end of a slice ([`KvmParams::slice`]) the running vCPU goes
//!   to the back of the queue if another is runnable (round robin); a woken vCPU preempts
//!   the running one when wake-up preemption is on, and otherwise waits. A switch is a
//!   preemption exit of the vCPU switched out.
//! - Each vCPU starts halted (blocked: NV = the wake-up vector 0xf1, on its pCPU's wake-up
//!   list). Interrupts it has to handle become guest jobs, served FIFO by the guest's
//!   handler (the device's service time and EOI cost). When its queue empties the vCPU
//!   halts (a HLT exit, whose cost the pCPU pays before it runs anything else), unless ON
//!   is set, in which case KVM refuses to block and it goes on.
//! - Delivery of a posted IRTE (`iommu::posted::PostedDelivery`): to a running vCPU, a
//!   notification on 0xf2 and no VM exit; to a preempted or waiting one, the PIR
//!   accumulates (a vector already pending merges) and is injected at its next VM entry;
//!   to a blocked one, the wake-up IRQ on its pCPU walks the pCPU's wake-up list and kicks
//!   the vCPU, which is runnable after the scheduler wake-up.
//! - **VM exits by reason** (`kvm.exit.<reason>` histograms, VMX spelling): each sample is
//!   the time from the exit to the vCPU's next VM entry, as `perf kvm stat` times them (a
//!   HLT's includes the halted time; exits not re-entered by the end are not recorded).
//!   A preemption (host work or another vCPU takes the pCPU) is timed as EXTERNAL_INTERRUPT,
//!   as perf counts it: VMX has no preemption exit; the host's tick or reschedule IPI makes
//!   the vCPU exit and the scheduler switches before the entry.
//!   EXTERNAL_INTERRUPT, HLT and preemption cost [`ExitCosts`](super::ExitCosts) of pCPU time on top of the
//!   host work; without APICv every EOI exits, an MSR_WRITE in x2APIC mode (WRMSR to
//!   `APIC_EOI`) or an APIC_ACCESS in xAPIC mode (a store to the APIC-access page, which
//!   KVM's `handle_apic_access` completes on its fast EOI path), and its cost lengthens
//!   the guest handler, unless PV EOI skips it by KVM's rule in `apic_sync_pv_eoi_to_guest`
//!   (nothing else pending in the IRR, one vector in service, and not a level-triggered
//!   IOAPIC vector: MSIs are edge), decided at each entry: a handler resumed with another
//!   interrupt now pending exits on its EOI after all. With APICv's virtual-interrupt delivery an edge EOI
//!   does not exit (EOI_INDUCED is for level-triggered vectors, which no modelled source
//!   raises). VT-d posting needs APICv: without it every assigned interrupt is remapped to
//!   VFIO's host vector on the vCPU's pCPU, forwarded and injected by KVM.
//! - **vCPU migration at a rate** (`GuestParams::migration`, [`Guests::on_migrate`]): the
//!   host scheduler moves the next vCPU to the next pCPU of the guest's set, host work on
//!   both pCPUs; the posted descriptor follows by KVM's rules (`vmx_vcpu_pi_load` rewrites
//!   NDST at the next load and sets ON for what was posted in flight; a halted vCPU's
//!   wake-up stays on the pCPU it halted on); no IRTE write. ARM GICv4: the vPE was made
//!   non-resident where the vCPU ran (`vgic_v4_put`: its vLPIs go to its pending table, with
//!   a doorbell only if it halted in WFI, rung on the pCPU it halted on); the next load on
//!   the new pCPU first moves the vPE there (`vgic_v4_load` → `its_vpe_set_affinity`: a
//!   VMOVP and its VSYNC on the ITS command queue, `ChipOp::VpeMove`), which KVM spins on as
//!   host work of that pCPU before the vPE is resident and the vCPU enters
//!   (`arm.vmovp_count`).
//! - **Guest IPIs at a rate** (`GuestParams::ipi`, [`Guests::on_ipi_due`]): each vCPU
//!   sends IPIs (vector 0xfd) round robin to its guest's other vCPUs, while it runs; a
//!   halted sender is woken as by its timer and sends at its entry. Without IPIv the x2APIC
//!   ICR write is an MSR_WRITE exit (host work on the sender's pCPU) from which KVM injects
//!   into the target (`PiHost::inject`); with IPIv the CPU posts to the target's descriptor
//!   (`PostedDelivery`: a blocked target through the wake-up IRQ). IPIs are counted apart
//!   from device interrupts (`kvm.ipi_*_count`); their PIR bit carries no guest job.
//! - The busy ledger: per pCPU, the end of the last busy interval (host work, or a vCPU's
//!   guest execution) and the busy time; an interval that starts before the last one ended
//!   is counted as an overlap, which the run's check ([`Guests::pcpu_busy`]) refuses.
//!
//! # What is not modelled (and why)
//! - Remapped (non-postable) delivery: multicast and lowest-priority with several
//!   destinations fall back to it (`iommu::posted::is_postable`); VFIO's host handler
//!   forwards such an interrupt (the router runs it on the host CPU) and KVM injects it
//!   through the posted descriptor ([`Guests::post_to_vcpu`]).
//! - Halt polling, vIRR merging of the same vector while the guest has not yet handled it
//!   (each notified interrupt is a guest job).
//! - A migration's cheaper path for a sleeping vCPU thread (Linux picks its CPU at the
//!   wake-up; here both pCPUs pay the cost whatever its state); wake-up preemption by a
//!   migrated vCPU (it waits in the target's run queue). ARM: several ITSs (GICv4.0's ITS
//!   list and VMOVP sequence numbers) and GICv4.1's shortcut that skips the VMOVP between
//!   redistributors sharing a vPE table (one ITS is modelled, `arm::its`); the first load of
//!   each vPE on its vCPU's initial pCPU (VMAPP maps it to CPU 0) sends its VMOVP untimed.
//! - EEVDF's virtual deadlines and lag: the scheduler is round robin with a fixed slice and
//!   a wake-up preemption switch, what it does for equal-weight vCPU threads that use up
//!   their slices. The scheduler wake-up (`wake_to_vm_entry`) is latency, not pCPU time.
//! - An EXTERNAL_INTERRUPT exit is treated like a preemption: x86 SN = 1 (ARM: the vPE
//!   non-resident) until the entry. KVM keeps the vCPU loaded through such an exit (SN = 0),
//!   so a posting meanwhile sends a notification the host handles, and the PIR is synced at
//!   the entry all the same: the latency is the one modelled, the interrupt is counted as
//!   accumulated rather than notified.
//! - The guest's IPI handler time, multicast IPIs, xAPIC ICR writes (refused without
//!   IPIv), and a running target's kick without APICv (injected as VFIO's forwards are,
//!   without an exit of the target); an ICR write's exit is, like EXTERNAL_INTERRUPT, a
//!   preemption of the sender (SN = 1 until its entry). MMIO, hypercalls and the userspace
//!   VMM's exits: no modelled source raises them here (provisioning's are timed in
//!   `provision`). The host CPU server's handler is not delayed by the EXTERNAL_INTERRUPT
//!   exit's cost (the vCPU is, by the whole of it).
//!
//! # Parameters and their sources
//! The posting costs (`iommu::posted::PostedParams`) have no published figures
//! (docs/sources.md#posted-costs: no number for the wake-up; halt polling saves "a few
//! micro-seconds"); scenarios must give them. Vector numbers: POSTED_INTR_VECTOR 0xf2,
//! POSTED_INTR_WAKEUP_VECTOR 0xf1 (arch/x86/include/asm/irq_vectors.h;
//! docs/sources.md#posted-vectors). The slice's default is EEVDF's base slice
//! (docs/sources.md#sched-base-slice); exit costs docs/sources.md#exit-costs, the PV EOI
//! rule docs/sources.md#pv-eoi; migration: docs/sources.md#vcpu-migration, its cost has no
//! published figure (docs/sources.md#migration-cost). Guest IPIs: the ICR write's exit cost
//! has no published figure in time (docs/sources.md#ipi-costs, cycles only).
//!
//! Host bursts draw from one stream per pCPU, `pcpu/<cpu>/host` (they drew from one per
//! vCPU, `guest/<name>/vcpu/<v>/host`, before a pCPU was one server): a pCPU's bursts do not
//! move when guests or vCPUs are added on other pCPUs, and the length and the next gap are
//! drawn together when a burst starts. Guest IPIs draw from one stream per vCPU,
//! `guest/<name>/vcpu/<v>/ipi`, created only for guests that send IPIs.

mod ipi;
mod migration;
pub(super) mod provision;

use std::collections::VecDeque;

use sim::{CounterId, DurationDist, EventQueue, HistogramId, Metrics, RngStream, SimDuration, SimTime, Unit};

use super::Event;
use super::chip::VpeMoved;
use super::metrics::{CoreIds, GuestIds};
use super::params::{GuestParams, KvmParams, spread_mask};
use super::route::{HandlerWork, Job, Pending, VlpiOutcome};
use crate::arm::its::VpeId;
use crate::ids::{CpuId, QueueId, Vector};
use crate::iommu::posted::{
    ApicMode, BlockOutcome, DeliveryPath, InjectOutcome, PiHost, PostedDelivery, PostedIrte, VcpuId, VcpuState,
};

/// The first vector a guest driver gets (device vectors start above the ISA range).
const GUEST_FIRST_VECTOR: u8 = 0x30;
/// The end (exclusive) of the guest's device vectors (its own local timer sits at 0xec).
const GUEST_LAST_VECTOR: u8 = 0xec;
/// No queue behind a guest vector.
const NO_QUEUE: u32 = u32::MAX;
/// A CPU that runs no vCPU.
const NO_PCPU: u32 = u32::MAX;
/// The guest IPIs' vector: Linux's RESCHEDULE_VECTOR 0xfd (arch/x86/include/asm/irq_vectors.h;
/// docs/sources.md#posted-vectors), outside the device vectors.
const IPI_VECTOR: Vector = Vector(0xfd);

/// The guest IPI counters, registered only when a guest sends IPIs (other reports unchanged).
#[derive(Debug, Clone, Copy)]
struct IpiIds {
    sent: CounterId,
    delivered: CounterId,
    merged: CounterId,
    exits: CounterId,
    wakeups: CounterId,
}

/// What a guest step asks of the interrupt chip. The guests never call the chip: they queue
/// these, and the router applies them in order after each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChipOp {
    /// Make the vPE resident on its pCPU (`vgic_v4_load`).
    VpeLoad { vpe: VpeId, pcpu: CpuId },
    /// Make it non-resident, with or without its doorbell (`vgic_v4_put`).
    VpePut { vpe: VpeId, doorbell: bool },
    /// KVM handled the vPE's doorbell interrupt.
    VpeDoorbellHandled { vpe: VpeId },
    /// KVM loads a migrated vCPU on `pcpu`, whose vPE the ITS maps elsewhere: the vPE's
    /// affinity first (`vgic_v4_load` → `its_vpe_set_affinity`: VMOVP + VSYNC), which KVM
    /// waits for; the router hands the completion back ([`Guests::vpe_moved`]).
    VpeMove { vpe: VpeId, vcpu: u32, pcpu: CpuId },
    /// VFIO and KVM program an assigned queue's interrupt for guest `vector` on `vcpu`
    /// (running on `pcpu`). x86: a host vector on the pCPU and an IRTE that posts to the
    /// vCPU's descriptor (or, not postable or without APICv (`posting` false), stays
    /// remapped to the host vector and VFIO forwards). ARM GICv4: the event mapped to the
    /// pCPU and forwarded to the vCPU's vPE as a vLPI.
    Assign { target: GuestVector, posting: bool },
}

/// Where an assigned queue's interrupt goes in its guest: guest `vector` on `vcpu`, which
/// runs on `pcpu`, and on ARM the vCPU's vPE. What VFIO and KVM program for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GuestVector {
    pub queue: QueueId,
    pub vcpu: u32,
    pub vector: Vector,
    pub pcpu: CpuId,
    /// The vCPU's vPE (ARM; `None` on x86).
    pub vpe: Option<VpeId>,
}

/// Why a vCPU left guest mode (the `kvm.exit.*` histogram its exit is timed in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExitReason {
    /// A host interrupt on its pCPU.
    ExternalInterrupt,
    /// It halted, idle.
    Hlt,
    /// Host work or another vCPU took its pCPU (timed as EXTERNAL_INTERRUPT: the host's
    /// tick or reschedule IPI is the exit; its cost is [`ExitCosts::preemption`](super::ExitCosts)).
    Preemption,
    /// The guest wrote the x2APIC ICR to send an IPI without IPIv (an MSR_WRITE exit; its
    /// cost is [`IpiParams::icr_exit`](super::IpiParams)).
    IcrWrite,
}

/// One vCPU.
#[derive(Debug, Clone)]
struct Vcpu {
    pcpu: CpuId,
    /// Its pCPU's index in `Guests::pcpus`.
    slot: u32,
    guest: u32,
    /// Guest interrupts waiting for, or in, the guest handler (front).
    jobs: VecDeque<Job>,
    /// The interrupts behind the PIR (x86) or the vPE's pending table (ARM) not yet synced
    /// into the guest.
    waiting: Pending,
    /// Interrupts notified to the running vCPU, on their way into vIRR (FIFO: the
    /// notification latency is the same for all).
    notified: VecDeque<Job>,
    /// The queue whose interrupt each guest vector is.
    vector_queue: Box<[u32; 256]>,
    next_vector: u8,
    /// A handler is running (not paused).
    handling: bool,
    /// Generation of the running handler's completion event; a pause bumps it.
    handler_gen: u32,
    handler_done_at: SimTime,
    /// The rest of a handler paused when the vCPU stopped running.
    paused_remaining: Option<SimDuration>,
    /// The running handler's EOI exits (x86 without APICv; PV EOI not armed).
    eoi_exit: bool,
    /// In guest mode on its pCPU now.
    running: bool,
    /// Runnable: its pCPU's current vCPU or in its run queue.
    runnable: bool,
    /// A wake-up is on its way (the scheduler makes it runnable then).
    entry_scheduled: bool,
    /// Generation of the scheduled wake-up event; a stale one is ignored.
    entry_gen: u32,
    /// The exit it has not yet re-entered from: why, and when.
    exited: Option<(ExitReason, SimTime)>,
    /// Posted-interrupt wake-up IRQs (vector 0xf1) its pCPU took for it (x86).
    wakeup_irqs: u64,
    /// Doorbell interrupts its vPE rang on its pCPU (ARM GICv4).
    doorbell_irqs: u64,
    /// Its IPI stream (`guest/<name>/vcpu/<v>/ipi`), when its guest sends IPIs.
    ipi_rng: Option<RngStream>,
    /// IPIs it sent (the round robin's position).
    ipi_sent: u64,
    /// IPIs due while it did not run, sent at its next entry.
    ipi_due: u32,
}

/// The busy intervals of one pCPU, checked as they close: one must not start before the
/// previous one ended.
#[derive(Debug, Clone, Copy, Default)]
struct Ledger {
    last_end: SimTime,
    busy_ps: u64,
    overlaps: u64,
}

impl Ledger {
    fn claim(&mut self, from: SimTime, to: SimTime) {
        if from < self.last_end {
            self.overlaps += 1;
        }
        self.last_end = self.last_end.max(to);
        self.busy_ps += to.since(from).as_ps();
    }
}

/// A pCPU that runs vCPUs: one server for its host work and its vCPUs.
#[derive(Debug, Clone)]
struct Pcpu {
    cpu: CpuId,
    /// The vCPU that holds the pCPU: running, or preempted by host work and resuming after.
    current: Option<u32>,
    /// Runnable vCPUs waiting for the pCPU, in order.
    runq: VecDeque<u32>,
    /// Host work holds the pCPU until then.
    host_until: Option<SimTime>,
    /// Since when host work has held it (without a break).
    host_from: SimTime,
    /// Generation of the host work's end event; an extension bumps it.
    host_gen: u32,
    /// Whether a slice end is scheduled, and its generation.
    slice_armed: bool,
    slice_gen: u32,
    /// When the current vCPU got the pCPU.
    stint_from: SimTime,
    /// When the running vCPU last entered guest mode.
    running_from: SimTime,
    /// The scheduler's slice and wake-up preemption (of the first guest on this pCPU).
    kvm: KvmParams,
    /// Host bursts: (gap, length) distributions, and the pCPU's stream.
    bursts: Option<(DurationDist, DurationDist)>,
    rng: RngStream,
    ledger: Ledger,
}

/// What one pCPU was busy with over a run (the invariant's inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcpuBusy {
    /// The pCPU.
    pub cpu: CpuId,
    /// Busy time (host work and guest execution) until the run's end, in picoseconds.
    pub busy_ps: u64,
    /// Busy intervals that started before the previous one ended (must be 0).
    pub overlaps: u64,
}

/// Where the vCPUs' interrupt state lives: VT-d posted-interrupt descriptors (x86) or GICv4
/// vPEs in the ITS (ARM; the ITS itself is the platform's chip).
#[derive(Debug, Clone)]
enum Backend {
    X86(PiHost),
    Arm {
        /// Each vCPU's state (the ITS knows residency, not halting).
        states: Vec<VcpuState>,
        /// Each vCPU's vPE.
        vpes: Vec<VpeId>,
        /// The pCPU each vPE's affinity names (`vpe->col_idx` as KVM last set it at a load:
        /// where its doorbell rings); its vCPU's pCPU until a migration moves the vCPU.
        vpe_on: Vec<CpuId>,
    },
}

/// All guests' vCPUs, their pCPUs, and the host side of posting.
#[derive(Debug, Clone)]
pub(super) struct Guests {
    backend: Backend,
    vcpus: Vec<Vcpu>,
    /// The pCPUs that run vCPUs, by CPU id.
    pcpus: Vec<Pcpu>,
    /// Each CPU's index in `pcpus` (`NO_PCPU`: it runs no vCPU).
    slot_of: Vec<u32>,
    params: Vec<GuestParams>,
    /// Operations for the chip, applied by the router after each guest step.
    chip_ops: Vec<ChipOp>,
    ids: GuestIds,
    core: CoreIds,
    /// Per guest, the vCPU (index in the guest) its next migration moves.
    migrate_next: Vec<u32>,
    /// Provisioning steps waiting for a vCPU to have no guest work: (vCPU, function index).
    idle_waiters: Vec<(u32, u32)>,
    /// `kvm.vcpu_migration_count`, registered when a guest migrates.
    migration_count: Option<CounterId>,
    /// `arm.vmovp_count`, registered when a guest migrates on ARM.
    vmovp_count: Option<CounterId>,
    /// The guest IPI counters, registered when a guest sends IPIs.
    ipi: Option<IpiIds>,
    /// Each guest's first vCPU.
    first_vcpu: Vec<u32>,
}

impl Guests {
    pub fn new(guests: &[GuestParams], pcpu_count: u32, arm: bool, seed: u64, ids: GuestIds, core: CoreIds) -> Guests {
        let mut vcpus = Vec::new();
        for (g, params) in guests.iter().enumerate() {
            for v in 0..params.vcpu_count {
                vcpus.push(Vcpu {
                    pcpu: params.pcpus[v as usize % params.pcpus.len()],
                    slot: NO_PCPU,
                    guest: g as u32,
                    jobs: VecDeque::new(),
                    waiting: Pending::new(),
                    notified: VecDeque::new(),
                    vector_queue: Box::new([NO_QUEUE; 256]),
                    next_vector: GUEST_FIRST_VECTOR,
                    handling: false,
                    handler_gen: 0,
                    handler_done_at: SimTime::ZERO,
                    paused_remaining: None,
                    eoi_exit: false,
                    running: false,
                    runnable: false,
                    entry_scheduled: false,
                    entry_gen: 0,
                    exited: None,
                    wakeup_irqs: 0,
                    doorbell_irqs: 0,
                    ipi_rng: params.ipi.map(|_| RngStream::new(seed, &format!("guest/{}/vcpu/{v}/ipi", params.name))),
                    ipi_sent: 0,
                    ipi_due: 0,
                });
            }
        }
        // The pCPUs that run vCPUs, ascending (with migration, every CPU of the guest's set:
        // a vCPU may move to any); the first guest on a pCPU sets its scheduler, the first
        // with bursts its host bursts.
        let mut used: Vec<CpuId> = vcpus.iter().map(|v| v.pcpu).collect();
        used.extend(guests.iter().filter(|g| g.migration.is_some()).flat_map(|g| g.pcpus.iter().copied()));
        used.sort_unstable();
        used.dedup();
        let mut slot_of = vec![NO_PCPU; pcpu_count.max(used.last().map_or(0, |c| c.0 + 1)) as usize];
        let pcpus: Vec<Pcpu> = used
            .iter()
            .enumerate()
            .map(|(i, &cpu)| {
                slot_of[cpu.0 as usize] = i as u32;
                let on = |g: &&GuestParams| {
                    let runs = if g.migration.is_some() { g.pcpus.len() } else { g.vcpu_count as usize };
                    g.pcpus.iter().take(runs).any(|&c| c == cpu)
                };
                let first = guests.iter().find(on).expect("a used pCPU has a guest");
                let bursts = guests
                    .iter()
                    .filter(on)
                    .find_map(|g| g.host_bursts)
                    .map(|(gap, length)| (DurationDist::exponential(gap), DurationDist::exponential(length)));
                Pcpu {
                    cpu,
                    current: None,
                    runq: VecDeque::new(),
                    host_until: None,
                    host_from: SimTime::ZERO,
                    host_gen: 0,
                    slice_armed: false,
                    slice_gen: 0,
                    stint_from: SimTime::ZERO,
                    running_from: SimTime::ZERO,
                    kvm: first.kvm,
                    bursts,
                    rng: RngStream::new(seed, &format!("pcpu/{}/host", cpu.0)),
                    ledger: Ledger::default(),
                }
            })
            .collect();
        for v in &mut vcpus {
            v.slot = slot_of[v.pcpu.0 as usize];
        }
        let backend = if arm {
            // The vPEs come from the ITS (`attach_vpes`); every vCPU starts halted in WFI.
            Backend::Arm {
                states: vcpus.iter().map(|v| VcpuState::Blocked { pcpu: v.pcpu }).collect(),
                vpes: Vec::new(),
                vpe_on: vcpus.iter().map(|v| v.pcpu).collect(),
            }
        } else {
            let mut pi = PiHost::new(vcpus.len() as u32, pcpu_count, ApicMode::X2Apic);
            for (i, vcpu) in vcpus.iter().enumerate() {
                // KVM creates vCPUs preempted; each is loaded once and halts, idle.
                let id = VcpuId(i as u32);
                pi.vcpu_load(id, vcpu.pcpu).expect("a new vCPU loads");
                let blocked = pi.vcpu_block(id).expect("a loaded vCPU may halt");
                assert!(matches!(blocked, BlockOutcome::Blocked { .. }), "nothing is pending at creation");
            }
            Backend::X86(pi)
        };
        Guests {
            backend,
            vcpus,
            pcpus,
            slot_of,
            params: guests.to_vec(),
            chip_ops: Vec::new(),
            ids,
            core,
            migrate_next: vec![0; guests.len()],
            migration_count: None,
            vmovp_count: None,
            idle_waiters: Vec::new(),
            ipi: None,
            first_vcpu: guests
                .iter()
                .scan(0, |first, g| {
                    let this = *first;
                    *first += g.vcpu_count;
                    Some(this)
                })
                .collect(),
        }
    }

    /// The first vCPU of guest `guest`, and how many it has.
    pub fn vcpus_of(&self, guest: u32) -> (u32, u32) {
        let first = self.vcpus.iter().position(|v| v.guest == guest).expect("a guest has vCPUs") as u32;
        (first, self.params[guest as usize].vcpu_count)
    }

    /// The guest vCPU `vcpu` belongs to.
    pub fn guest_of_vcpu(&self, vcpu: u32) -> u32 {
        self.vcpus[vcpu as usize].guest
    }

    /// ARM: the vPEs of guest `guest`'s vCPUs, in order (from `Its::create_vm`).
    pub fn attach_vpes(&mut self, guest: u32, vpes: &[VpeId]) {
        let (first, count) = self.vcpus_of(guest);
        assert_eq!(vpes.len() as u32, count, "one vPE per vCPU");
        let Backend::Arm { vpes: all, .. } = &mut self.backend else { panic!("vPEs are an ARM thing") };
        if all.len() < (first + count) as usize {
            all.resize((first + count) as usize, VpeId(u32::MAX));
        }
        all[first as usize..(first + count) as usize].copy_from_slice(vpes);
    }

    /// ARM: whether guest `guest` got its vPEs (a VM whose `vgic_init` failed for want of
    /// vPE IDs has none and never runs).
    pub fn has_vpes(&self, guest: u32) -> bool {
        let (first, _) = self.vcpus_of(guest);
        matches!(&self.backend, Backend::Arm { vpes, .. } if vpes.get(first as usize).is_some_and(|v| v.0 != u32::MAX))
    }

    /// ARM: the vCPU whose vPE is `vpe`.
    pub fn vcpu_of_vpe(&self, vpe: VpeId) -> Option<u32> {
        let Backend::Arm { vpes, .. } = &self.backend else { return None };
        vpes.iter().position(|&v| v == vpe).map(|i| i as u32)
    }

    /// ARM: the vPE of a vCPU.
    pub fn vpe_of(&self, vcpu: u32) -> VpeId {
        let Backend::Arm { vpes, .. } = &self.backend else { panic!("vPEs are an ARM thing") };
        vpes[vcpu as usize]
    }

    /// Guest `guest`'s name.
    pub fn name_of(&self, guest: u32) -> &str {
        &self.params[guest as usize].name
    }

    /// The host's forwarding cost for `vcpu`'s guest (a non-postable interrupt).
    pub fn remapped_forward_of(&self, vcpu: u32) -> SimDuration {
        self.params[self.vcpus[vcpu as usize].guest as usize].remapped_forward
    }

    /// The pCPU a vCPU runs on.
    pub fn pcpu_of(&self, vcpu: u32) -> CpuId {
        self.vcpus[vcpu as usize].pcpu
    }

    /// How many guests there are.
    pub fn guest_count(&self) -> u32 {
        self.params.len() as u32
    }

    /// How many vCPUs all guests have.
    pub fn vcpu_count(&self) -> u32 {
        self.vcpus.len() as u32
    }

    /// Posted-interrupt wake-up IRQs (0xf1) taken on a vCPU's pCPU for it.
    pub fn wakeup_irqs(&self, vcpu: u32) -> u64 {
        self.vcpus[vcpu as usize].wakeup_irqs
    }

    /// Doorbells a vCPU's vPE rang on its pCPU (GICv4).
    pub fn doorbell_irqs(&self, vcpu: u32) -> u64 {
        self.vcpus[vcpu as usize].doorbell_irqs
    }

    /// The chip operations queued since the last call.
    pub fn take_chip_ops(&mut self) -> Vec<ChipOp> {
        std::mem::take(&mut self.chip_ops)
    }

    /// Whether chip operations are queued.
    #[inline]
    pub fn has_chip_ops(&self) -> bool {
        !self.chip_ops.is_empty()
    }

    /// Provides the interrupts of a device assigned to `guest` (queues `first_queue..` of
    /// `queue_count`): VFIO programs every queue when the VM starts, before the guest runs.
    /// Each queue is placed on a vCPU the way the guest kernel spreads managed interrupts
    /// (over all its vCPUs, the least-loaded of the queue's group, so several devices'
    /// queues cover every vCPU) with a guest vector there, and the chip is asked to program
    /// it (posted only with APICv); a vCPU whose vectors ran out leaves the queue without
    /// an interrupt (counted).
    pub fn provision(&mut self, guest: u32, first_queue: u32, queue_count: u32, m: &mut Metrics) {
        let (first, count) = self.vcpus_of(guest);
        let vcpus: Vec<CpuId> = (first..first + count).map(CpuId).collect();
        let posting = self.params[guest as usize].kvm.apicv;
        for q in 0..queue_count {
            let queue = QueueId(first_queue + q);
            // The guest kernel's managed spread (group_cpus_evenly over its vCPUs), and within
            // the queue's group the vCPU with the fewest device vectors, as the matrix's
            // matrix_find_best_cpu_managed picks (the first such on a tie).
            let group = spread_mask(&vcpus, q, queue_count);
            let vcpu = group.iter().map(|c| c.0).min_by_key(|&v| self.vcpus[v as usize].next_vector).expect("a group");
            let Some(vector) = self.alloc_vector(vcpu, queue) else {
                let name = &self.params[guest as usize].name;
                m.fail(self.ids.setup_guest_vector_fail, SimTime::ZERO, || {
                    format!("{name} vCPU {}: no free guest vector for queue id {}", vcpu - first, queue.0)
                });
                continue;
            };
            let vpe = match &self.backend {
                Backend::X86(_) => None,
                Backend::Arm { vpes, .. } => Some(vpes[vcpu as usize]),
            };
            let target = GuestVector { queue, vcpu, vector, pcpu: self.pcpu_of(vcpu), vpe };
            self.chip_ops.push(ChipOp::Assign { target, posting });
        }
    }

    /// Gives queue `queue` a guest vector on `vcpu`; `None` when the guest's vectors ran out.
    fn alloc_vector(&mut self, vcpu: u32, queue: QueueId) -> Option<Vector> {
        let v = &mut self.vcpus[vcpu as usize];
        let mut vector = v.next_vector;
        if vector == 0x80 {
            vector += 1; // the guest's IA32 syscall gate
        }
        if vector >= GUEST_LAST_VECTOR {
            return None;
        }
        v.next_vector = vector + 1;
        v.vector_queue[usize::from(vector)] = queue.0;
        Some(Vector(vector))
    }

    /// An affinity change: queue `queue`, now on `vcpu`, moves to the next vCPU of its guest
    /// (round robin) and gets a vector there: the one it had when it last ran there, else a
    /// new one. Its vector on `vcpu` stays registered, so interrupts already posted there
    /// are handled (Linux frees it once the move completes, `irq_complete_move`: not
    /// modelled, so a queue keeps one vector per vCPU it ran on). `None` when the new vCPU
    /// has no vector left.
    pub fn next_affinity(&mut self, vcpu: u32, queue: QueueId) -> Option<(u32, Vector, CpuId)> {
        let guest = self.vcpus[vcpu as usize].guest;
        let (first, count) = self.vcpus_of(guest);
        let to = first + (vcpu - first + 1) % count;
        let had = self.vcpus[to as usize].vector_queue.iter().position(|&q| q == queue.0);
        let vector = match had {
            Some(v) => Vector(v as u8),
            None => self.alloc_vector(to, queue)?,
        };
        Some((to, vector, self.pcpu_of(to)))
    }

    /// Interrupts held by vCPUs: queued, in service, or waiting in a PIR.
    pub fn at_vcpus(&self) -> u64 {
        self.vcpus.iter().map(|v| v.jobs.len() as u64 + v.waiting.count()).sum()
    }

    /// Scheduled starts of host bursts (one renewal process per pCPU whose guests have them).
    pub fn first_bursts(&mut self) -> Vec<(SimTime, CpuId)> {
        let mut out = Vec::new();
        for p in &mut self.pcpus {
            if let Some((gap, _)) = &p.bursts {
                out.push((SimTime::ZERO + gap.sample(&mut p.rng), p.cpu));
            }
        }
        out
    }

    /// Each pCPU's busy time and overlapping intervals until `now` (the run's end): the
    /// invariant is no overlap and busy time at most the run's length.
    pub fn pcpu_busy(&self, now: SimTime) -> Vec<PcpuBusy> {
        self.pcpus
            .iter()
            .map(|p| {
                let mut ledger = p.ledger;
                if let Some(until) = p.host_until {
                    ledger.claim(p.host_from.min(now), until.min(now));
                }
                if let Some(c) = p.current
                    && self.vcpus[c as usize].running
                {
                    ledger.claim(p.running_from, now);
                }
                PcpuBusy { cpu: p.cpu, busy_ps: ledger.busy_ps, overlaps: ledger.overlaps }
            })
            .collect()
    }

    fn vcpu_state(&self, vcpu: u32) -> VcpuState {
        match &self.backend {
            Backend::X86(pi) => pi.vcpu(VcpuId(vcpu)).state(),
            Backend::Arm { states, .. } => states[vcpu as usize],
        }
    }

    /// KVM loads the vCPU (x86: `vmx_vcpu_pi_load`; ARM: `vgic_v4_load`, the vPE resident).
    fn vcpu_load(&mut self, vcpu: u32) {
        let pcpu = self.vcpus[vcpu as usize].pcpu;
        match &mut self.backend {
            Backend::X86(pi) => {
                pi.vcpu_load(VcpuId(vcpu), pcpu).expect("a preempted or blocked vCPU loads");
            }
            Backend::Arm { states, vpes, .. } => {
                states[vcpu as usize] = VcpuState::Running { pcpu };
                self.chip_ops.push(ChipOp::VpeLoad { vpe: vpes[vcpu as usize], pcpu });
            }
        }
    }

    /// Host work preempts the running vCPU (x86: SN = 1; ARM: non-resident, no doorbell).
    fn vcpu_preempt(&mut self, vcpu: u32) {
        match &mut self.backend {
            Backend::X86(pi) => pi.vcpu_preempt(VcpuId(vcpu)).expect("a running vCPU is preempted"),
            Backend::Arm { states, vpes, .. } => {
                states[vcpu as usize] = VcpuState::Preempted;
                self.chip_ops.push(ChipOp::VpePut { vpe: vpes[vcpu as usize], doorbell: false });
            }
        }
    }

    /// The idle vCPU halts (x86 HLT: on the wake-up list; ARM WFI: non-resident with its
    /// doorbell), unless an interrupt is already pending for it.
    fn vcpu_block(&mut self, vcpu: u32) -> BlockOutcome {
        let pending = self.vcpus[vcpu as usize].waiting.any();
        let pcpu = self.vcpus[vcpu as usize].pcpu;
        match &mut self.backend {
            Backend::X86(pi) => pi.vcpu_block(VcpuId(vcpu)).expect("a running idle vCPU halts"),
            Backend::Arm { .. } if pending => BlockOutcome::Refused,
            Backend::Arm { states, vpes, .. } => {
                states[vcpu as usize] = VcpuState::Blocked { pcpu };
                self.chip_ops.push(ChipOp::VpePut { vpe: vpes[vcpu as usize], doorbell: true });
                BlockOutcome::Blocked { pcpu }
            }
        }
    }

    /// The guest's handler for `vector` on `vcpu`, if one is registered.
    fn queue_on(&self, vcpu: u32, vector: Vector) -> Option<QueueId> {
        match self.vcpus[vcpu as usize].vector_queue[usize::from(vector.0)] {
            NO_QUEUE => None,
            queue => Some(QueueId(queue)),
        }
    }

    /// The interrupt `vector` brings to `vcpu` at `now`: the job for the guest's handler
    /// registered on it, `Err(true)` when the vector is already pending there (counted as
    /// merged: the guest's handler will see both), `Err(false)` when no handler is
    /// registered (lost).
    fn admit(&self, vcpu: u32, vector: Vector, raised_at: SimTime, now: SimTime, m: &mut Metrics) -> Result<Job, bool> {
        let queue = self.queue_on(vcpu, vector).ok_or(false)?;
        if self.vcpus[vcpu as usize].waiting.is_set(vector) {
            m.add(self.core.merged_pir, 1);
            return Err(true);
        }
        Ok(Job { queue, raised_at, arrived_at: now })
    }

    /// A running vCPU was notified: `job` reaches its vIRR at `visible` (counted in `counter`).
    fn notify_running(
        &mut self,
        vcpu: u32,
        job: Job,
        visible: SimTime,
        counter: sim::CounterId,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) {
        self.vcpus[vcpu as usize].notified.push_back(job);
        m.add(counter, 1);
        m.record(self.ids.posted_delivery, visible.since(q.now()).as_ps());
        q.schedule_at(visible, Event::GuestInterrupt { vcpu });
    }

    /// A posted IRTE delivered `vector` for `vcpu`. Returns `false` when the guest has no
    /// handler on the vector (lost).
    #[allow(clippy::too_many_arguments)] // the posted request and the run's state
    pub fn post_to_vcpu(
        &mut self,
        vcpu: u32,
        vector: Vector,
        urgent: bool,
        raised_at: SimTime,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) -> bool {
        let now = q.now();
        let job = match self.admit(vcpu, vector, raised_at, now, m) {
            Ok(job) => job,
            Err(handled) => return handled,
        };
        let v = &self.vcpus[vcpu as usize];
        let params = self.params[v.guest as usize].posted;
        let Backend::X86(pi) = &mut self.backend else { panic!("VT-d posting is x86") };
        let delivery =
            PostedDelivery { params }.deliver(pi, PostedIrte { vcpu: VcpuId(vcpu), vector, urgent }, now, now);
        match delivery.path {
            DeliveryPath::NotifiedRunning => {
                let visible = delivery.visible_at.expect("a running vCPU sees it");
                self.notify_running(vcpu, job, visible, self.ids.kvm_notified, q, m);
            }
            DeliveryPath::Accumulated { .. } => {
                self.vcpus[vcpu as usize].waiting.post(vector, job);
                m.add(self.ids.kvm_accumulated, 1);
            }
            DeliveryPath::Coalesced => {
                // ON was already set (a wake-up is on its way): the new bit is synced with it.
                self.vcpus[vcpu as usize].waiting.post(vector, job);
            }
            DeliveryPath::Wakeup { pcpu, walk } => {
                let visible = delivery.visible_at.expect("a woken vCPU enters");
                self.vcpus[vcpu as usize].waiting.post(vector, job);
                self.vcpus[vcpu as usize].wakeup_irqs += 1;
                m.add(self.ids.kvm_wakeups, 1);
                m.add(self.ids.kvm_wakeup_walked, walk.walked as u64);
                // The wake-up handler (entry, list walk, kicks) is host work on that pCPU;
                // the scheduler wake-up after it is latency only.
                let handler = visible.since(now) - params.wake_to_vm_entry;
                self.host_interrupt(pcpu, handler, q, m);
                self.schedule_entry(vcpu, visible, q, m);
            }
        }
        true
    }

    /// KVM injects `vector` for `vcpu` in software (VFIO forwarded an interrupt it could not
    /// post: irqfd → `vmx_deliver_posted_interrupt`): a running vCPU is notified, a
    /// preempted one finds it at its next entry, a blocked one is woken by
    /// `kvm_vcpu_wake_up` (the kick and the scheduling; no wake-up vector, no list walk).
    /// Returns `false` when the guest has no handler on the vector (lost).
    pub fn inject(
        &mut self,
        vcpu: u32,
        vector: Vector,
        raised_at: SimTime,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) -> bool {
        let now = q.now();
        let job = match self.admit(vcpu, vector, raised_at, now, m) {
            Ok(job) => job,
            Err(handled) => return handled,
        };
        let params = self.params[self.vcpus[vcpu as usize].guest as usize].posted;
        let Backend::X86(pi) = &mut self.backend else { panic!("VFIO forwarding is x86") };
        match pi.inject(VcpuId(vcpu), vector) {
            InjectOutcome::Notified => {
                // The PIR bit goes to vIRR with the notification.
                pi.sync_pir(VcpuId(vcpu));
                self.notify_running(vcpu, job, now + params.notify_running, self.ids.kvm_injected_notified, q, m);
            }
            InjectOutcome::Accumulated => {
                self.vcpus[vcpu as usize].waiting.post(vector, job);
                m.add(self.ids.kvm_accumulated, 1);
            }
            InjectOutcome::AlreadyPending => {
                self.vcpus[vcpu as usize].waiting.post(vector, job);
            }
            InjectOutcome::WokenUp => {
                self.vcpus[vcpu as usize].waiting.post(vector, job);
                m.add(self.ids.kvm_injected_wakeup, 1);
                self.schedule_entry(vcpu, now + params.kick + params.wake_to_vm_entry, q, m);
            }
        }
        true
    }

    /// A woken vCPU becomes runnable at `visible`, unless a wake-up is already on its way.
    fn schedule_entry(&mut self, vcpu: u32, visible: SimTime, q: &mut EventQueue<Event>, m: &mut Metrics) {
        if self.wake_at(vcpu, visible, q) {
            m.record(self.ids.posted_delivery, visible.since(q.now()).as_ps());
        }
    }

    /// Schedules the vCPU's wake-up at `visible`, unless one is on its way or it is runnable;
    /// whether it did.
    fn wake_at(&mut self, vcpu: u32, visible: SimTime, q: &mut EventQueue<Event>) -> bool {
        let v = &mut self.vcpus[vcpu as usize];
        if v.entry_scheduled || v.runnable {
            return false;
        }
        v.entry_scheduled = true;
        v.entry_gen += 1;
        q.schedule_at(visible, Event::VcpuEntry { vcpu, generation: v.entry_gen });
        true
    }

    /// ARM GICv4: the ITS delivered a vLPI for `vcpu` (`translation` after the device's
    /// write): straight into the resident vPE, or into its pending table, with or without a
    /// doorbell to the host. Returns `false` when the guest has no handler on the vector.
    #[allow(clippy::too_many_arguments)] // the vLPI, its outcome and the run's state
    pub fn vlpi_to_vcpu(
        &mut self,
        vcpu: u32,
        vector: Vector,
        outcome: VlpiOutcome,
        translation: SimDuration,
        raised_at: SimTime,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) -> bool {
        let now = q.now();
        let Some(queue) = self.queue_on(vcpu, vector) else { return false };
        let job = Job { queue, raised_at, arrived_at: now };
        let params = self.params[self.vcpus[vcpu as usize].guest as usize].posted;
        if outcome == VlpiOutcome::Direct {
            self.notify_running(vcpu, job, now + translation, self.ids.kvm_vlpi_direct, q, m);
            return true;
        }
        let v = &mut self.vcpus[vcpu as usize];
        if !v.waiting.post(vector, job) {
            m.add(self.core.merged_pir, 1); // already pending in the vPE's table
            return true;
        }
        if outcome == VlpiOutcome::Pending {
            m.add(self.ids.kvm_vlpi_pending, 1);
            return true;
        }
        // The doorbell (a physical LPI) reaches the host; KVM's handler kicks the vCPU. The
        // handler (its entry and the kick) is host work on the pCPU.
        m.add(self.ids.kvm_vlpi_doorbell, 1);
        self.vcpus[vcpu as usize].doorbell_irqs += 1;
        let vpe = self.vpe_of(vcpu);
        self.chip_ops.push(ChipOp::VpeDoorbellHandled { vpe });
        // The doorbell rings where the vPE's affinity points: the pCPU it was last loaded on
        // (a halted vCPU migrated since is moved by the VMOVP of its next load).
        let Backend::Arm { vpe_on, .. } = &self.backend else { unreachable!("vLPIs are ARM") };
        let pcpu = vpe_on[vcpu as usize];
        self.host_interrupt(pcpu, params.wakeup_irq_entry + params.kick, q, m);
        let visible = now + translation + params.wakeup_irq_entry + params.kick + params.wake_to_vm_entry;
        self.schedule_entry(vcpu, visible, q, m);
        true
    }

    /// A notified interrupt reaches the running guest's vIRR.
    pub fn on_guest_interrupt(
        &mut self,
        vcpu: u32,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
        work: &mut impl HandlerWork,
    ) {
        let v = &mut self.vcpus[vcpu as usize];
        let mut job = v.notified.pop_front().expect("a notification carries an interrupt");
        job.arrived_at = q.now();
        v.jobs.push_back(job);
        self.run_guest(vcpu, q, m, work);
    }

    /// A woken vCPU is due to become runnable (stale if `generation` is old): it takes its
    /// pCPU if the pCPU is idle, preempts the running vCPU with wake-up preemption on, or
    /// waits in the run queue.
    pub fn on_vcpu_entry_event(
        &mut self,
        vcpu: u32,
        generation: u32,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
        work: &mut impl HandlerWork,
    ) {
        let v = &mut self.vcpus[vcpu as usize];
        if !v.entry_scheduled || v.entry_gen != generation {
            return;
        }
        v.entry_scheduled = false;
        v.runnable = true;
        let slot = v.slot as usize;
        let p = &mut self.pcpus[slot];
        match p.current {
            None => {
                p.current = Some(vcpu);
                p.stint_from = q.now();
                self.dispatch(slot, q, m, work);
            }
            Some(c) if p.kvm.wakeup_preemption && self.vcpus[c as usize].running => {
                p.runq.push_back(c);
                self.switch_to(slot, vcpu, q, m, work);
            }
            Some(_) => {
                p.runq.push_back(vcpu);
                self.arm_slice(slot, q);
            }
        }
    }

    /// The exit cost of `reason` for `vcpu`'s guest.
    fn exit_cost(&self, vcpu: u32, reason: ExitReason) -> SimDuration {
        let params = &self.params[self.vcpus[vcpu as usize].guest as usize];
        let costs = params.kvm.exit_costs;
        match reason {
            ExitReason::ExternalInterrupt => costs.external_interrupt,
            ExitReason::Hlt => costs.hlt,
            ExitReason::Preemption => costs.preemption,
            ExitReason::IcrWrite => params.ipi.map_or(SimDuration::ZERO, |i| i.icr_exit),
        }
    }

    fn exit_histogram(&self, reason: ExitReason) -> HistogramId {
        match reason {
            // VMX has no preemption exit: the host's tick or reschedule IPI makes the vCPU
            // exit (EXTERNAL_INTERRUPT) and the scheduler switches before the entry.
            ExitReason::ExternalInterrupt | ExitReason::Preemption => self.ids.exits.external_interrupt,
            ExitReason::Hlt => self.ids.exits.hlt,
            ExitReason::IcrWrite => self.ids.exits.msr_write,
        }
    }

    /// The running vCPU leaves guest mode at `now`: its guest execution closes in the ledger
    /// and its handler pauses.
    fn stop_running(&mut self, vcpu: u32, reason: ExitReason, now: SimTime) {
        let v = &mut self.vcpus[vcpu as usize];
        debug_assert!(v.running, "only a running vCPU exits");
        v.running = false;
        v.exited = Some((reason, now));
        if v.handling {
            v.handling = false;
            v.paused_remaining = Some(v.handler_done_at.since(now));
        }
        let p = &mut self.pcpus[v.slot as usize];
        p.ledger.claim(p.running_from, now);
    }

    /// Host work of `length` takes pCPU `slot` now: the running vCPU exits (`reason`) and
    /// the exit's cost is host work too; host work already running is extended.
    fn take_pcpu(
        &mut self,
        slot: usize,
        length: SimDuration,
        reason: ExitReason,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) {
        let now = q.now();
        let mut length = length;
        let p = &self.pcpus[slot];
        let until = match p.host_until {
            Some(until) => until + length,
            None => {
                if let Some(c) = p.current.filter(|&c| self.vcpus[c as usize].running) {
                    self.stop_running(c, reason, now);
                    self.vcpu_preempt(c);
                    if reason != ExitReason::IcrWrite {
                        m.add(self.ids.kvm_preemptions, 1);
                    }
                    length = length + self.exit_cost(c, reason);
                }
                self.pcpus[slot].host_from = now;
                now + length
            }
        };
        let p = &mut self.pcpus[slot];
        p.host_until = Some(until);
        p.host_gen += 1;
        q.schedule_at(until, Event::HostWorkEnd { cpu: p.cpu, generation: p.host_gen });
    }

    /// The host CPU server started a handler of `length` on `cpu` (a host device's, VFIO's
    /// forward), or the wake-up IRQ or a doorbell arrived there: on a pCPU that runs vCPUs
    /// it is host work that preempts the running vCPU (EXTERNAL_INTERRUPT).
    pub fn host_interrupt(&mut self, cpu: CpuId, length: SimDuration, q: &mut EventQueue<Event>, m: &mut Metrics) {
        match self.slot_of.get(cpu.0 as usize) {
            Some(&slot) if slot != NO_PCPU => {
                self.take_pcpu(slot as usize, length, ExitReason::ExternalInterrupt, q, m)
            }
            _ => {}
        }
    }

    /// Whether `vcpu` has guest interrupts to handle: queued or in service, pending in its
    /// PIR or vPE, notified on their way, or a wake-up on its way.
    pub fn has_guest_work(&self, vcpu: u32) -> bool {
        let v = &self.vcpus[vcpu as usize];
        !v.jobs.is_empty() || v.waiting.any() || !v.notified.is_empty() || v.entry_scheduled
    }

    /// Provisioning step `index` waits until `vcpu` has no guest work (the guest driver goes
    /// on with interrupts enabled only once they are handled): an `Event::Provision` is
    /// scheduled when the vCPU next goes idle.
    pub fn wait_idle(&mut self, vcpu: u32, index: u32) {
        self.idle_waiters.push((vcpu, index));
    }

    /// Host work of `length` that is not an interrupt (provisioning's exits, ioctls and host
    /// setup on the exiting vCPU's thread) takes `cpu`, a pCPU that runs vCPUs: it preempts
    /// the running vCPU, or extends the host work there. Returns when it ends.
    pub fn host_work(
        &mut self,
        cpu: CpuId,
        length: SimDuration,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) -> SimTime {
        let slot = self.slot_of[cpu.0 as usize] as usize;
        self.take_pcpu(slot, length, ExitReason::Preemption, q, m);
        self.pcpus[slot].host_until.expect("host work holds the pCPU")
    }

    /// A burst of host work takes the pCPU; the next is drawn now (a renewal process of
    /// burst plus gap).
    pub fn on_host_burst(&mut self, cpu: CpuId, q: &mut EventQueue<Event>, m: &mut Metrics) {
        let slot = self.slot_of[cpu.0 as usize] as usize;
        let p = &mut self.pcpus[slot];
        let (gap, length) = p.bursts.clone().expect("bursts configured");
        let length = length.sample(&mut p.rng);
        let next = q.now() + length + gap.sample(&mut p.rng);
        q.schedule_at(next, Event::HostBurst { cpu });
        self.take_pcpu(slot, length, ExitReason::Preemption, q, m);
    }

    /// The host work on `cpu` ends (unless `generation` is stale: it was extended): the
    /// pCPU runs its current vCPU again, or the next runnable one.
    pub fn on_host_work_end(
        &mut self,
        cpu: CpuId,
        generation: u32,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
        work: &mut impl HandlerWork,
    ) {
        let slot = self.slot_of[cpu.0 as usize] as usize;
        let p = &mut self.pcpus[slot];
        if p.host_gen != generation || p.host_until.is_none() {
            return;
        }
        let until = p.host_until.take().expect("host work");
        p.ledger.claim(p.host_from, until);
        self.dispatch(slot, q, m, work);
    }

    /// The slice of the vCPU running on `cpu` ends (unless stale): the next runnable vCPU
    /// takes the pCPU, the current one goes to the back of the run queue.
    pub fn on_slice_end(
        &mut self,
        cpu: CpuId,
        generation: u32,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
        work: &mut impl HandlerWork,
    ) {
        let slot = self.slot_of[cpu.0 as usize] as usize;
        let p = &mut self.pcpus[slot];
        if p.slice_gen != generation || !p.slice_armed {
            return;
        }
        p.slice_armed = false;
        if p.host_until.is_some() || p.runq.is_empty() {
            return; // the end of the host work re-arms it
        }
        let (Some(current), Some(next)) = (p.current, p.runq.pop_front()) else { return };
        p.runq.push_back(current);
        self.switch_to(slot, next, q, m, work);
    }

    /// Schedules the end of the current vCPU's slice if another vCPU waits for the pCPU.
    fn arm_slice(&mut self, slot: usize, q: &mut EventQueue<Event>) {
        let p = &mut self.pcpus[slot];
        if p.slice_armed || p.runq.is_empty() || p.current.is_none() || p.host_until.is_some() {
            return;
        }
        p.slice_armed = true;
        p.slice_gen += 1;
        let at = (p.stint_from + p.kvm.slice).max(q.now());
        q.schedule_at(at, Event::SliceEnd { cpu: p.cpu, generation: p.slice_gen });
    }

    /// `next` takes pCPU `slot` from the current vCPU (already put back in the run queue by
    /// the caller): a preemption exit if it was running, whose cost the pCPU pays before
    /// `next` enters.
    fn switch_to(
        &mut self,
        slot: usize,
        next: u32,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
        work: &mut impl HandlerWork,
    ) {
        let now = q.now();
        let mut cost = SimDuration::ZERO;
        if let Some(c) = self.pcpus[slot].current.filter(|&c| self.vcpus[c as usize].running) {
            self.stop_running(c, ExitReason::Preemption, now);
            self.vcpu_preempt(c);
            m.add(self.ids.kvm_preemptions, 1);
            cost = self.exit_cost(c, ExitReason::Preemption);
        }
        let p = &mut self.pcpus[slot];
        p.current = Some(next);
        p.stint_from = now;
        p.slice_armed = false;
        p.slice_gen += 1;
        if cost > SimDuration::ZERO {
            self.take_pcpu(slot, cost, ExitReason::Preemption, q, m);
        } else {
            self.dispatch(slot, q, m, work);
        }
    }

    /// The pCPU is free of host work: its current vCPU (or the first runnable one) enters
    /// the guest.
    fn dispatch(&mut self, slot: usize, q: &mut EventQueue<Event>, m: &mut Metrics, work: &mut impl HandlerWork) {
        let now = q.now();
        let p = &mut self.pcpus[slot];
        if p.host_until.is_some() {
            return;
        }
        let vcpu = match p.current {
            Some(c) => c,
            None => {
                let Some(next) = p.runq.pop_front() else { return };
                p.current = Some(next);
                p.stint_from = now;
                next
            }
        };
        if self.vcpus[vcpu as usize].running {
            return;
        }
        self.arm_slice(slot, q);
        self.enter_guest(vcpu, q, m, work);
    }

    /// The vCPU enters the guest: it is loaded, its exit (if any) is timed, its PIR synced
    /// into the guest, and its paused handler resumes.
    fn enter_guest(&mut self, vcpu: u32, q: &mut EventQueue<Event>, m: &mut Metrics, work: &mut impl HandlerWork) {
        let now = q.now();
        if self.vpe_elsewhere(vcpu, q, m) {
            return; // the load waits for the vPE's VMOVP first
        }
        if !matches!(self.vcpu_state(vcpu), VcpuState::Running { .. }) {
            self.vcpu_load(vcpu);
            m.add(self.ids.kvm_entries, 1);
        }
        if let Some((reason, at)) = self.vcpus[vcpu as usize].exited.take() {
            m.record(self.exit_histogram(reason), now.since(at).as_ps());
        }
        let v = &mut self.vcpus[vcpu as usize];
        v.running = true;
        self.pcpus[v.slot as usize].running_from = now;
        self.sync_into_guest(vcpu, now, m);
        // KVM re-decides PV EOI at every entry (`apic_sync_pv_eoi_from_guest` at the exit
        // cleared it): an interrupt now pending behind the paused handler makes its EOI exit.
        let eoi_exit_now = self.vcpus[vcpu as usize].paused_remaining.is_some()
            && !self.vcpus[vcpu as usize].eoi_exit
            && self.eoi_exits(vcpu);
        let eoi_histogram = self.eoi_exit_histogram(self.vcpus[vcpu as usize].guest);
        let v = &mut self.vcpus[vcpu as usize];
        if let Some(mut rest) = v.paused_remaining.take() {
            if eoi_exit_now {
                let cost = self.params[v.guest as usize].kvm.exit_costs.eoi;
                m.record(eoi_histogram, cost.as_ps());
                v.eoi_exit = true;
                rest = rest + cost;
            }
            v.handling = true;
            v.handler_gen += 1;
            v.handler_done_at = now + rest;
            let generation = v.handler_gen;
            q.schedule_at(now + rest, Event::GuestHandlerDone { vcpu, generation });
        }
        self.flush_ipis(vcpu, q, m);
        self.run_guest(vcpu, q, m, work);
    }

    /// Moves the pending interrupts into the guest's handler queue (x86: the PIR synced into
    /// vIRR; ARM: the vPE's pending vLPIs, taken by the now-resident vPE), ascending.
    fn sync_into_guest(&mut self, vcpu: u32, now: SimTime, m: &mut Metrics) {
        let ipi = self.ipi;
        let v = &mut self.vcpus[vcpu as usize];
        let start = v.jobs.len();
        match &mut self.backend {
            Backend::X86(pi) => {
                for (word, mut bits) in pi.sync_pir(VcpuId(vcpu)).into_iter().enumerate() {
                    while bits != 0 {
                        let vector = word * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        if vector == usize::from(IPI_VECTOR.0)
                            && let Some(ids) = ipi
                        {
                            m.add(ids.delivered, 1); // a guest IPI: no device job behind it
                            continue;
                        }
                        v.jobs.push_back(v.waiting.take(vector).expect("a pending bit has its interrupt"));
                    }
                }
            }
            Backend::Arm { .. } => {
                let mut jobs = Vec::new();
                v.waiting.drain_into(&mut jobs);
                v.jobs.extend(jobs);
            }
        }
        for job in v.jobs.iter_mut().skip(start) {
            job.arrived_at = now;
        }
    }

    /// Whether the EOI of the handler starting on `vcpu` exits (x86 without APICv: an
    /// x2APIC MSR write), or PV EOI lets the guest skip it: KVM arms PV EOI before the entry
    /// only when no other interrupt is pending in the IRR (`apic_sync_pv_eoi_to_guest`;
    /// MSIs are edge, so never an IOAPIC-handled vector).
    fn eoi_exits(&self, vcpu: u32) -> bool {
        let v = &self.vcpus[vcpu as usize];
        let kvm = self.params[v.guest as usize].kvm;
        if kvm.apicv || !matches!(self.backend, Backend::X86(_)) {
            return false;
        }
        let others_pending = v.jobs.len() > 1 || v.waiting.any() || !v.notified.is_empty();
        !kvm.pv_eoi || others_pending
    }

    /// The exit a guest's EOI makes without APICv: x2APIC's WRMSR to `APIC_EOI` (MSR_WRITE)
    /// or xAPIC's store to the APIC-access page (APIC_ACCESS; KVM's `handle_apic_access`
    /// takes its fast EOI path, `kvm_lapic_set_eoi`, without emulating the instruction).
    fn eoi_exit_histogram(&self, guest: u32) -> HistogramId {
        match self.params[guest as usize].kvm.apic_mode {
            ApicMode::X2Apic => self.ids.exits.msr_write,
            ApicMode::XApic => self.ids.exits.apic_access.expect("registered when a guest uses xAPIC"),
        }
    }

    /// Starts the next guest handler, or halts the idle vCPU.
    fn run_guest(&mut self, vcpu: u32, q: &mut EventQueue<Event>, m: &mut Metrics, work: &mut impl HandlerWork) {
        let now = q.now();
        let v = &mut self.vcpus[vcpu as usize];
        if !v.running || v.handling || v.paused_remaining.is_some() {
            return;
        }
        let Some(job) = v.jobs.front().copied() else {
            if !v.notified.is_empty() {
                return; // a notified interrupt is on its way into vIRR: HLT would not block
            }
            if self.idle_waiters.iter().any(|&(w, _)| w == vcpu) {
                // The driver goes on: its next exit follows (the vCPU halts meanwhile).
                for &(_, index) in self.idle_waiters.iter().filter(|&&(w, _)| w == vcpu) {
                    q.schedule_at(now, Event::Provision { index });
                }
                self.idle_waiters.retain(|&(w, _)| w != vcpu);
            }
            // Idle: the guest halts (HLT exit); KVM refuses to block with ON set.
            match self.vcpu_block(vcpu) {
                BlockOutcome::Blocked { .. } => self.halt(vcpu, q, m, work),
                BlockOutcome::Refused => {
                    self.sync_into_guest(vcpu, now, m);
                    self.run_guest(vcpu, q, m, work);
                }
            }
            return;
        };
        let w = work.driver_work(job.queue);
        let eoi_exits = self.eoi_exits(vcpu);
        self.vcpus[vcpu as usize].eoi_exit = eoi_exits;
        let eoi_exit = if eoi_exits {
            let guest = self.vcpus[vcpu as usize].guest;
            let cost = self.params[guest as usize].kvm.exit_costs.eoi;
            m.record(self.eoi_exit_histogram(guest), cost.as_ps());
            cost
        } else {
            SimDuration::ZERO
        };
        m.record(self.core.queue_wait, now.since(job.arrived_at).as_ps());
        m.record(self.core.handler, w.service.as_ps());
        m.record(self.core.eoi, w.eoi.as_ps());
        let v = &mut self.vcpus[vcpu as usize];
        v.handling = true;
        v.handler_gen += 1;
        let busy = w.service + w.eoi + eoi_exit;
        v.handler_done_at = now + busy;
        let generation = v.handler_gen;
        q.schedule_in(busy, Event::GuestHandlerDone { vcpu, generation });
    }

    /// The vCPU blocked (HLT): it leaves its pCPU, which pays the exit's cost and then runs
    /// the next runnable vCPU.
    fn halt(&mut self, vcpu: u32, q: &mut EventQueue<Event>, m: &mut Metrics, work: &mut impl HandlerWork) {
        m.add(self.ids.kvm_hlt_exits, 1);
        self.stop_running(vcpu, ExitReason::Hlt, q.now());
        let v = &mut self.vcpus[vcpu as usize];
        v.runnable = false;
        let slot = v.slot as usize;
        let p = &mut self.pcpus[slot];
        p.current = None;
        p.slice_armed = false;
        p.slice_gen += 1;
        let cost = self.exit_cost(vcpu, ExitReason::Hlt);
        if cost > SimDuration::ZERO {
            self.take_pcpu(slot, cost, ExitReason::Hlt, q, m);
        } else {
            self.dispatch(slot, q, m, work);
        }
    }

    /// The guest handler on `vcpu` finished (unless `generation` is stale: paused and
    /// resumed under a new one): returns the interrupt it delivered.
    pub fn on_guest_handler_done(
        &mut self,
        vcpu: u32,
        generation: u32,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
        work: &mut impl HandlerWork,
    ) -> Option<Job> {
        let v = &mut self.vcpus[vcpu as usize];
        if generation != v.handler_gen || !v.handling {
            return None;
        }
        v.handling = false;
        let job = v.jobs.pop_front().expect("a handler finished with a job");
        m.add(self.core.delivered, 1);
        m.record(self.core.end_to_end, q.now().since(job.raised_at).as_ps());
        self.run_guest(vcpu, q, m, work);
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iommu::posted::PostedParams;

    fn guest(vcpus: u32) -> GuestParams {
        GuestParams {
            name: "vm".into(),
            vcpu_count: vcpus,
            pcpus: (0..vcpus).map(CpuId).collect(),
            host_bursts: None,
            posted: PostedParams {
                notify_running: SimDuration::ZERO,
                wakeup_irq_entry: SimDuration::ZERO,
                wakeup_list_entry: SimDuration::ZERO,
                kick: SimDuration::ZERO,
                wake_to_vm_entry: SimDuration::ZERO,
            },
            remapped_forward: SimDuration::ZERO,
            kvm: KvmParams {
                apicv: true,
                pv_eoi: false,
                slice: SimDuration::from_us(3_000),
                wakeup_preemption: true,
                apic_mode: ApicMode::X2Apic,
                ipiv: false,
                exit_costs: crate::platform::ExitCosts {
                    external_interrupt: SimDuration::ZERO,
                    hlt: SimDuration::ZERO,
                    eoi: SimDuration::ZERO,
                    preemption: SimDuration::ZERO,
                },
            },
            migration: None,
            ipi: None,
        }
    }

    /// The vCPU each provisioned queue landed on, in order.
    fn placement(vcpus: u32, devices: &[u32]) -> Vec<Vec<u32>> {
        let mut m = Metrics::new();
        let all = crate::platform::metrics::register(&mut m, false);
        let mut g = Guests::new(&[guest(vcpus)], vcpus, false, 1, all.guest, all.core);
        let mut first = 0;
        devices
            .iter()
            .map(|&queues| {
                g.provision(0, first, queues, &mut m);
                first += queues;
                g.take_chip_ops()
                    .into_iter()
                    .map(|op| match op {
                        ChipOp::Assign { target, .. } => target.vcpu,
                        other => panic!("{other:?}"),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn devices_with_fewer_queues_than_vcpus_together_cover_every_vcpu() {
        // Two 4-queue devices on 8 vCPUs: queue q's group is vCPUs {2q, 2q+1}; the first
        // device takes the first of each pair, the second the one left with fewer vectors.
        // (By queue index alone, both devices used vCPUs 0-3 and 4-7 got no interrupt.)
        assert_eq!(placement(8, &[4, 4]), [vec![0, 2, 4, 6], vec![1, 3, 5, 7]]);
        // At least as many queues as vCPUs: queue q on vCPU q mod n, as group_cpus_evenly.
        assert_eq!(placement(4, &[6]), [vec![0, 1, 2, 3, 0, 1]]);
    }
}
