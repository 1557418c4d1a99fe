//! The bare-metal x86 platform: devices raise MSI-X interrupts that travel through an
//! optional interrupt-remapping unit to a CPU, whose handler serves them one at a time.
//!
//! ```text
//!  Raise ──msi_write──▶ MsiWrite ──remap──▶ Deliver ──queue_wait──▶ handler ──eoi──▶ done
//!  (queue's arrival     (IOMMU decodes the   (LAPIC of the    (FIFO, non-preemptive,
//!   process fires)       message, IRTE)       target CPU)      one per CPU)
//! ```
//!
//! # What is modelled
//! - Each queue of each device owns one MSI-X entry. At build time the OS spreads the queues
//!   over the device's CPU list (queue *i* → CPU list[*i* mod len], the managed-affinity
//!   spread for one node), allocates a vector on that CPU and programs the entry: with
//!   interrupt remapping, an IRTE plus a remappable-format message; without, a
//!   compatibility-format message straight to the CPU.
//! - A raise becomes an MSI write after `msi_write_latency`; the remapping unit decodes it and
//!   looks up the IRTE (`lookup_latency`), or blocks it with a VT-d fault reason; the LAPIC
//!   finds the handler for the vector; the CPU runs handlers in arrival order, each for a
//!   service time drawn from the device's distribution plus the EOI cost.
//! - Latency is recorded per stage and end to end. Interrupts are conserved: at the end,
//!   raised = delivered + lost + in flight, counted from the event queue and CPU queues
//!   ([`Platform::conservation`]).
//!
//! # What is not modelled (and why)
//! - IRR coalescing: a real LAPIC holds one pending interrupt per vector, so raises of a
//!   vector that is already pending merge. Here every raise is a job in the CPU's FIFO, the
//!   queueing abstraction the M/M/1 and M/D/1 oracles check. The device and APIC models
//!   bring IRR/ISR semantics.
//! - Preemption by higher-priority vectors, softirq/threaded handlers, masking and the PBA.
//!
//! # Parameters and their sources
//! Every parameter is set by the scenario; defaults and their sources live in the scenario
//! schema (scenarios crate) and docs/parameters.md.

mod arm;
mod guest;

use std::collections::VecDeque;

use sim::{CounterId, DurationDist, EventQueue, HistogramId, Metrics, RngStream, SimDuration, SimTime, Unit, World};

use crate::arm::its::{GicVersion, ItsCosts};
use crate::ids::{CpuId, DeviceId, QueueId, Vector};
use crate::iommu::posted::{
    FallbackReason, GuestDestination, MsiDeliveryMode, Postability, PostedParams, VectorHashing, is_postable,
};
use crate::iommu::remap::{
    FaultDisposition, InterruptMessage, IommuId, IrteEntry, PiDescId, RemapFault, RemapParams, RemapRequest,
    RemapTarget, RemapUnit, RemapUnsourced, SourceQualifier, SourceValidation,
};
use crate::kernel::KernelVersion;
use crate::pci::store::{MSI_VECTORS_MAX, MSIX_TABLE_ENTRIES_MAX, MessageStore, Raise, StoreKind};
use crate::workload::{ArrivalParams, Arrivals};
use crate::x86::msi::{self, MsiMessage};
use crate::x86::vector_matrix::{
    Activation, CpuSet, DomainWarning, IrqId, KernelEra, MatrixError, MatrixParams, NodeId, VectorDomain,
};

/// Interrupt-remapping settings (one IOMMU). Values without a published figure are the
/// scenario's to choose (calibration.md §3).
#[derive(Debug, Clone, PartialEq)]
pub struct IommuParams {
    /// IRTE lookup when the entry is not cached: the table read.
    pub lookup_latency: SimDuration,
    /// Entries in the IRTE table (65,536 in Linux).
    pub table_entries: u32,
    /// The interrupt entry cache; `None`: every lookup reads the table.
    pub cache: Option<IrteCacheParams>,
    /// Costs of `modify_irte` under the global `irq_2_ir_lock`.
    pub update: IrteUpdateParams,
    /// Fault recording registers (CAP.NFR + 1, 1 to 256).
    pub fault_recording_registers: u16,
    /// ECAP.MHMV: log2 of the largest IRTE block (multi-MSI), 0 to 15.
    pub max_handle_mask: u8,
    /// Host posted MSI (Linux 6.10+, `intremap=posted_msi`); `None`: remappable mode.
    pub posted_msi: Option<PostedMsiConfig>,
    /// Remapping units (DRHDs), each with its own IRTE table, cache and fault registers;
    /// they share the global IRTE update lock and the fault log's rate limit.
    pub units: u16,
}

/// Host posted MSI: device MSIs are posted into a per-CPU descriptor and demuxed by one
/// notification handler (`sysvec_posted_msi_notification`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostedMsiConfig {
    /// `MAX_POSTED_MSI_COALESCING_LOOP` (3 in Linux); as merged, the loop runs at most
    /// cap − 1 passes before clearing ON, then the final pass.
    pub loop_cap: u32,
    /// One demux pass over the PIR (read the four words, xchg the non-zero ones).
    pub pir_scan: SimDuration,
}

/// CPU time per interrupt taken, besides the handler and the EOI. Zero means it is folded
/// into the handler's service time (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuCostParams {
    /// IDT entry and exit (`irq_enter` / `irq_exit`).
    pub irq_entry_exit: SimDuration,
    /// Taking the interrupt itself (the strongly ordered notification): per MSI in
    /// remappable mode, per notification with posted MSI.
    pub notification: SimDuration,
}

/// The interrupt entry cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrteCacheParams {
    /// Entries (LRU).
    pub entries: u32,
    /// Lookup on a hit.
    pub hit_latency: SimDuration,
}

/// What one IRTE update costs while holding the global lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IrteUpdateParams {
    /// Writing a remapped-format IRTE.
    pub irte_write: SimDuration,
    /// The synchronous interrupt-entry-cache invalidation and wait (`qi_flush_iec`).
    pub iec_invalidation: SimDuration,
}

/// The ARM interrupt controller: a GICv3/v4 with MSIs through an ITS or a GICv2m frame.
#[derive(Debug, Clone, PartialEq)]
pub struct GicParams {
    /// GIC revision (GICv4 adds direct vLPI injection).
    pub version: GicVersion,
    /// How device MSIs become interrupts.
    pub msi: GicMsiParams,
}

/// The MSI controller of a GIC platform.
#[derive(Debug, Clone, PartialEq)]
pub enum GicMsiParams {
    /// An ITS: DeviceID/EventID → LPI → collection (CPU).
    Its {
        /// Command costs (no published latency).
        costs: ItsCosts,
        /// GITS_TRANSLATER write to the LPI pending at the redistributor.
        translation_latency: SimDuration,
        /// INTID bits the GIC reports (Linux uses at most 16).
        lpi_id_bits: u32,
    },
    /// A GICv2m frame: each MSI sets one SPI of a fixed pool.
    V2m {
        /// SPIs in the frame.
        spis: u32,
        /// MSI write to the SPI pending at the distributor.
        latency: SimDuration,
    },
}

/// A guest: vCPUs pinned to pCPUs, receiving its assigned devices' interrupts through
/// VT-d posted interrupts.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestParams {
    /// Name (reports, RNG stream paths).
    pub name: String,
    /// vCPUs.
    pub vcpu_count: u32,
    /// pCPUs; vCPU i runs on `pcpus[i mod len]`.
    pub pcpus: Vec<CpuId>,
    /// Host work preempting the vCPUs: (mean gap, mean length) of bursts on each pCPU.
    pub host_bursts: Option<(SimDuration, SimDuration)>,
    /// Posting and wake-up costs.
    pub posted: PostedParams,
    /// CPU time on the pCPU for an interrupt that could not be posted: VFIO's host handler
    /// and KVM's injection (irqfd), before the vCPU is notified.
    pub remapped_forward: SimDuration,
}

/// How a guest programmed an assigned device's MSIs: KVM posts them only with a single
/// destination vCPU (`iommu::posted::is_postable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestMsiParams {
    /// Fixed or lowest-priority delivery.
    pub mode: MsiDeliveryMode,
    /// vCPUs the destination matches.
    pub destinations: u32,
    /// KVM's `vector_hashing` (lowest priority with several destinations posted to one).
    pub vector_hashing: bool,
}

impl GuestMsiParams {
    /// A fixed interrupt to one vCPU, which is always postable.
    pub const UNICAST: GuestMsiParams =
        GuestMsiParams { mode: MsiDeliveryMode::Fixed, destinations: 1, vector_hashing: false };

    /// KVM's decision for this programming.
    pub fn postability(self) -> Postability {
        let hashing = if self.vector_hashing { VectorHashing::Enabled } else { VectorHashing::Disabled };
        is_postable(self.mode, GuestDestination::Vcpus(self.destinations), hashing)
    }
}

/// How a device's interrupts are allocated (Linux `PCI_IRQ_AFFINITY` or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqMode {
    /// Managed (NVMe/blk-mq): one vector reserved on every CPU of each queue's mask at
    /// allocation; shut down, not migrated, when its CPUs go offline.
    Managed,
    /// Reservation mode: a global reservation at allocation, the vector at activation on the
    /// CPU with the most free vectors, with the node/affinity fallbacks.
    NonManaged,
}

/// The kernel whose vector allocator is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelParams {
    /// The release: every release-dependent behaviour is read from it.
    pub version: KernelVersion,
    /// A legacy PIC exists (cascade vector on every CPU, ISA vectors on the boot CPU).
    pub legacy_pic: bool,
    /// IA32 emulation is built in: vector 0x80 is the int 0x80 system-call gate.
    pub ia32_emulation: bool,
}

impl KernelParams {
    /// The vector allocator's era of this release (the allocatable range and hotplug
    /// behaviour differ).
    pub fn era(&self) -> KernelEra {
        self.version.vector_era()
    }
}

/// Something the scenario does at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// Take a CPU offline (managed interrupts shut down, others migrate).
    CpuOffline(CpuId),
    /// Bring a CPU back (managed interrupts whose mask it is in restart).
    CpuOnline(CpuId),
    /// Change the affinity of every interrupt of a device (non-managed only), as
    /// irqbalance or a write to /proc/irq/N/smp_affinity does.
    SetAffinity {
        /// The device.
        device: DeviceId,
        /// The new mask.
        cpus: Vec<CpuId>,
    },
}

/// A scheduled action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// When.
    pub at: SimTime,
    /// What.
    pub kind: ActionKind,
}

/// One device function and its queues.
#[derive(Debug, Clone)]
pub struct DeviceParams {
    /// Name used in reports and RNG stream paths; unique in the topology.
    pub name: String,
    /// Queues, each with its own MSI-X entry (at most 2,048).
    pub queue_count: u32,
    /// Device raise to MSI write arriving at the interrupt controller / IOMMU.
    pub msi_write_latency: SimDuration,
    /// When each queue raises interrupts.
    pub arrival: ArrivalParams,
    /// Handler service time per interrupt.
    pub service: DurationDist,
    /// CPU time of the EOI write after the handler.
    pub eoi_cost: SimDuration,
    /// CPUs the queues are spread over, in order.
    pub affinity: Vec<CpuId>,
    /// Managed or reservation-mode interrupts.
    pub irq_mode: IrqMode,
    /// The device's NUMA node (non-managed fallback order), if any.
    pub numa_node: Option<u32>,
    /// Where the interrupt messages live.
    pub store: StoreKind,
    /// The IMS slot pool this function draws from (`PlatformParams::ims_pools` index); IMS
    /// in device memory belongs to the device and is shared by its ADIs.
    pub ims_pool: Option<u32>,
    /// Time for a message update to land in the store (IMS in queue memory is written
    /// through a device command queue; zero for the others).
    pub store_update_latency: SimDuration,
    /// PCI requester id (bus << 8 | device << 3 | function): what remapping can verify.
    pub requester_id: u16,
    /// PASID of a SIOV ADI (ADIs share their function's requester id).
    pub pasid: Option<u32>,
    /// The guest (index into `PlatformParams::guests`) the device is assigned to: its queues
    /// are spread over the guest's vCPUs and posted.
    pub assigned_to: Option<u32>,
    /// How the guest programmed the device's MSIs (assigned devices).
    pub guest_msi: GuestMsiParams,
    /// The remapping unit (DRHD) whose scope holds the device.
    pub iommu_unit: u16,
}

/// A device's IMS slot array, shared by the functions and ADIs that use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImsPoolParams {
    /// The owning device's name.
    pub name: String,
    /// Slots (up to 16,128 for IDXD-like device memory).
    pub slots: u32,
}

/// The whole platform.
#[derive(Debug, Clone)]
pub struct PlatformParams {
    /// Logical CPUs (APIC id = index).
    pub cpu_count: u32,
    /// Interrupt remapping; `None` means messages go straight to the LAPICs.
    pub remapping: Option<IommuParams>,
    /// Devices in topology order.
    pub devices: Vec<DeviceParams>,
    /// The kernel's vector allocator.
    pub kernel: KernelParams,
    /// NUMA nodes; CPUs are split evenly and contiguously between them.
    pub numa_node_count: u32,
    /// Scheduled actions, in time order.
    pub actions: Vec<Action>,
    /// IMS slot pools referenced by devices.
    pub ims_pools: Vec<ImsPoolParams>,
    /// `Some` for an ARM platform (then `remapping` is `None` and the x86 vector allocator
    /// is not used).
    pub gic: Option<GicParams>,
    /// CPU time per interrupt taken, besides handler and EOI.
    pub cpu_costs: CpuCostParams,
    /// Guests (x86 with interrupt remapping).
    pub guests: Vec<GuestParams>,
}

impl PlatformParams {
    /// The CPUs of each NUMA node (contiguous, as even as possible).
    pub fn node_cpus(&self) -> Vec<Vec<CpuId>> {
        let nodes = self.numa_node_count.max(1);
        (0..nodes)
            .map(|n| {
                let lo = u64::from(n) * u64::from(self.cpu_count) / u64::from(nodes);
                let hi = u64::from(n + 1) * u64::from(self.cpu_count) / u64::from(nodes);
                (lo as u32..hi as u32).map(CpuId).collect()
            })
            .collect()
    }
}

/// The CPUs of queue `queue` of `queue_count` spread over `cpus`, the way Linux's
/// `group_cpus_evenly` does for one node: with at least as many queues as CPUs, queue *i*
/// gets CPU *i* mod *n*; with fewer, each queue gets a contiguous group of CPUs.
pub fn spread_mask(cpus: &[CpuId], queue: u32, queue_count: u32) -> Vec<CpuId> {
    let n = cpus.len() as u64;
    let (q, count) = (u64::from(queue), u64::from(queue_count));
    if count >= n {
        vec![cpus[(q % n) as usize]]
    } else {
        (0..n).filter(|&i| i * count / n == q).map(|i| cpus[i as usize]).collect()
    }
}

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
    /// A vCPU enters the guest (after a wake-up).
    VcpuEntry {
        /// The vCPU.
        vcpu: u32,
    },
    /// The guest handler running on a vCPU finished (stale if `generation` is old).
    GuestHandlerDone {
        /// The vCPU.
        vcpu: u32,
        /// Handler generation.
        generation: u32,
    },
    /// Host work takes a vCPU's pCPU.
    HostBurst {
        /// The vCPU.
        vcpu: u32,
    },
    /// That host work ends.
    HostBurstEnd {
        /// The vCPU.
        vcpu: u32,
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
            Event::HostBurstEnd { .. } => "host_burst_end",
            Event::PostedStep { .. } => "posted_step",
            Event::StoreWrite { .. } => "store_write",
        }
    }
}

// Events sit in the queue by the million: keep them small.
const _: () = assert!(std::mem::size_of::<Event>() <= 16);

#[derive(Debug, Clone)]
struct Queue {
    device: DeviceId,
    entry: u32,
    /// The queue's interrupt in the vector domain (`None` when allocation failed).
    irq: Option<IrqId>,
    /// The IRTE index (with remapping).
    irte: Option<u32>,
    /// The handle and subhandle the store entry carries (with remapping).
    irte_message: Option<(u16, Option<u16>)>,
    /// Where its interrupt goes now (`None`: not started or shut down).
    target: Option<(CpuId, Vector)>,
    /// A message on its way to an IMS store in queue memory.
    message_in_flight: Option<(u64, u32)>,
    /// ARM: the queue's ITS event or v2m SPI.
    arm_interrupt: Option<u32>,
    /// An assigned device's interrupt that could not be posted: the host forwards it to this
    /// vCPU and guest vector.
    forward_to: Option<(u32, Vector)>,
    arrivals: Arrivals,
    service_rng: RngStream,
}

#[derive(Debug, Clone)]
struct Device {
    params: DeviceParams,
    store: MessageStore,
    /// The first queue of this device (queue ids are contiguous per device).
    first_queue: u32,
}

#[derive(Debug, Clone, Copy)]
struct Job {
    queue: QueueId,
    raised_at: SimTime,
    arrived_at: SimTime,
}

const NO_QUEUE: u32 = u32::MAX;

/// Where a CPU is in its posted-MSI notification handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostedPhase {
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

/// A CPU's posted-interrupt descriptor (host posted MSI) and its demux loop.
#[derive(Debug, Clone)]
struct PostedCpu {
    /// PIR: one bit per vector.
    pir: [u64; 4],
    /// The interrupt behind each set PIR bit (the first one posted; later ones merged).
    waiting: Box<[Option<Job>; 256]>,
    /// Outstanding notification (ON set and the notification not yet taken).
    on: bool,
    notification_pending: bool,
    phase: PostedPhase,
    passes: u32,
    final_pass: bool,
    /// The interrupts found by the current pass, ascending by vector.
    batch: Vec<Job>,
    next: usize,
}

#[derive(Debug, Clone)]
struct Cpu {
    /// Interrupts waiting or in service (front).
    jobs: VecDeque<Job>,
    /// With host posted MSI.
    posted: Option<PostedCpu>,
    /// The handler registered on each vector, as a queue id (`NO_QUEUE` when none).
    vector_queue: Box<[u32; 256]>,
    /// Device vectors this CPU could hold at boot (the per-CPU limit).
    vector_capacity: u32,
}

#[derive(Debug, Clone, Copy)]
struct Ids {
    raised: CounterId,
    delivered: CounterId,
    lost: CounterId,
    lost_remap: [CounterId; 7],
    fault_recorded: CounterId,
    fault_overflow: CounterId,
    fault_fpd: CounterId,
    fault_logged: CounterId,
    fault_suppressed: CounterId,
    cache_hit: CounterId,
    cache_miss: CounterId,
    irte_updates: CounterId,
    lost_not_interrupt: CounterId,
    lost_no_handler: CounterId,
    pending_merged: CounterId,
    retriggered: CounterId,
    cpu_busy_ps: CounterId,
    setup_routed: CounterId,
    setup_reserve_fail: CounterId,
    setup_vector_fail: CounterId,
    setup_irte_fail: CounterId,
    setup_ims_slot_fail: CounterId,
    multi_msi_fallback: CounterId,
    affinity_broken: CounterId,
    managed_shutdown: CounterId,
    managed_restart: CounterId,
    migrated: CounterId,
    migration_failed: CounterId,
    unplug_refused: CounterId,
    unplug_busy: CounterId,
    no_longer_affine: CounterId,
    affinity_refused: CounterId,
    reservation_exceeds: CounterId,
    vector_leaked: CounterId,
    moves_completed: CounterId,
    msi_write: HistogramId,
    remap: HistogramId,
    queue_wait: HistogramId,
    handler: HistogramId,
    eoi: HistogramId,
    end_to_end: HistogramId,
    irte_lock_wait: HistogramId,
    irte_update: HistogramId,
    irq_entry: HistogramId,
    merged_pir: CounterId,
    posted_delivery: HistogramId,
    kvm_notified: CounterId,
    kvm_accumulated: CounterId,
    kvm_wakeups: CounterId,
    kvm_wakeup_walked: CounterId,
    kvm_entries: CounterId,
    kvm_hlt_exits: CounterId,
    kvm_preemptions: CounterId,
    setup_guest_vector_fail: CounterId,
    kvm_vlpi_direct: CounterId,
    kvm_remapped_fallback: CounterId,
    kvm_vlpi_doorbell: CounterId,
    kvm_vlpi_pending: CounterId,
    its_translate: HistogramId,
    its_command_wait: HistogramId,
    its_command: HistogramId,
    lost_its: [CounterId; 6],
    arm_lpi_exhausted: CounterId,
    arm_events_exhausted: CounterId,
    arm_v2m_exhausted: CounterId,
    its_round_trips: CounterId,
    its_timeouts: CounterId,
}

impl Ids {
    fn register(m: &mut Metrics) -> Ids {
        let c = |m: &mut Metrics, name: &str, desc: &str| m.counter(name, Unit::Count, desc);
        let f = |m: &mut Metrics, name: &str, reason: &str| m.failure_counter(name, reason);
        let h = |m: &mut Metrics, name: &str, desc: &str| m.histogram(name, Unit::Picoseconds, desc);
        Ids {
            raised: c(m, "interrupt.raised_count", "interrupts raised by devices"),
            delivered: c(m, "interrupt.delivered_count", "interrupts whose handler and EOI completed"),
            lost: c(m, "interrupt.lost_count", "interrupts that never reached a handler (all reasons)"),
            lost_remap: RemapFault::ALL
                .map(|fault| f(m, &format!("interrupt.lost.remap_fault_{:#04x}_count", fault.code()), fault.reason())),
            fault_recorded: c(m, "iommu.fault_recorded_count", "remapping faults stored in a fault recording register"),
            fault_overflow: f(
                m,
                "iommu.fault_record_overflow_count",
                "Primary Fault Overflow: no free fault recording register, the fault record is lost",
            ),
            fault_fpd: c(
                m,
                "iommu.fault_unrecorded_fpd_count",
                "remapping faults not recorded because the IRTE has FPD set",
            ),
            fault_logged: c(m, "iommu.fault_log_line_count", "lines the kernel's DMAR fault handler printed"),
            fault_suppressed: c(
                m,
                "iommu.fault_log_suppressed_count",
                "fault messages the kernel's rate limit (10 per 5 s) suppressed",
            ),
            cache_hit: c(m, "iommu.irte_cache_hit_count", "IRTE lookups served by the interrupt entry cache"),
            cache_miss: c(m, "iommu.irte_cache_miss_count", "IRTE lookups that read the table"),
            irte_updates: c(
                m,
                "iommu.irte_update_count",
                "IRTE updates through modify_irte (global lock + IEC invalidation)",
            ),
            lost_not_interrupt: f(
                m,
                "interrupt.lost.not_interrupt_address_count",
                "MSI writes outside the 0xFEEx_xxxx interrupt window",
            ),
            lost_no_handler: f(m, "interrupt.lost.no_handler_count", "No irq handler for vector"),
            pending_merged: c(
                m,
                "interrupt.merged_pending_count",
                "raises while the MSI-X entry was masked and its pending bit already set (merged, not lost)",
            ),
            retriggered: c(
                m,
                "interrupt.retriggered_count",
                "interrupts that reached a CPU after it went offline and were re-sent to the new target",
            ),
            cpu_busy_ps: m.counter("cpu.busy_ps", Unit::Picoseconds, "CPU time spent in handlers and EOIs, all CPUs"),
            setup_routed: c(m, "setup.queue_routed_count", "queues with a working interrupt at the start"),
            setup_reserve_fail: f(
                m,
                "setup.vector_reserve_fail_count",
                "managed interrupts refused at allocation: a CPU of the mask has no free vector (-ENOSPC)",
            ),
            setup_vector_fail: f(
                m,
                "setup.vector_alloc_fail_count",
                "queues left without an interrupt: no free vector on any CPU (-ENOSPC)",
            ),
            setup_irte_fail: f(
                m,
                "setup.irte_alloc_fail_count",
                "queues left without an interrupt: can't allocate an IRTE",
            ),
            setup_ims_slot_fail: f(
                m,
                "setup.ims_slot_fail_count",
                "queues left without an interrupt: the device's IMS slots are all in use",
            ),
            multi_msi_fallback: f(
                m,
                "setup.multi_msi_fallback_count",
                "multi-vector MSI needs interrupt remapping on x86 (contiguous vectors: -ENOSYS); one vector shared by all queues",
            ),
            affinity_broken: f(m, "x86.affinity_broken_count", "Affinity broken due to vector space exhaustion"),
            managed_shutdown: f(
                m,
                "x86.managed_shutdown_count",
                "managed interrupts shut down: no online CPU left in their mask",
            ),
            managed_restart: c(
                m,
                "x86.managed_restart_count",
                "managed interrupts restarted when a CPU of their mask came back",
            ),
            migrated: c(m, "x86.migrated_count", "interrupts migrated off an outgoing CPU"),
            migration_failed: f(m, "x86.migration_failed_count", "IRQ set affinity failed at CPU offline; left stale"),
            unplug_refused: f(
                m,
                "x86.unplug_refused_count",
                "CPU %u has %u vectors, %u available. Cannot disable CPU (the other CPUs cannot absorb its vectors)",
            ),
            unplug_busy: f(
                m,
                "x86.unplug_busy_count",
                "CPU unplug refused (-EBUSY): the boot CPU or the last online CPU",
            ),
            no_longer_affine: f(
                m,
                "x86.no_longer_affine_count",
                "IRQ %u: no longer affine to CPU%u (moved off an offline CPU to a CPU outside its mask)",
            ),
            affinity_refused: f(
                m,
                "x86.set_affinity_fail_count",
                "affinity changes refused (-EBUSY while a move is pending, -ENOSPC, or managed)",
            ),
            reservation_exceeds: f(
                m,
                "x86.reservation_exceeds_count",
                "Interrupt reservation exceeds available resources",
            ),
            vector_leaked: f(
                m,
                "x86.vector_leaked_count",
                "old vectors of moves leaked because their CPU went offline (before 6.10)",
            ),
            moves_completed: c(
                m,
                "x86.move_completed_count",
                "vector moves completed by the first interrupt on the new vector",
            ),
            msi_write: h(m, "latency.msi_write_ps", "device raise to MSI write at the interrupt controller"),
            remap: h(m, "latency.remap_ps", "IRTE lookup in the interrupt-remapping unit"),
            queue_wait: h(m, "latency.queue_wait_ps", "arrival at the CPU to the handler starting"),
            irq_entry: h(
                m,
                "latency.irq_entry_ps",
                "taking the interrupt: notification + IDT entry/exit (per interrupt, or per posted notification)",
            ),
            handler: h(m, "latency.handler_ps", "handler service time"),
            eoi: h(m, "latency.eoi_ps", "EOI write"),
            end_to_end: h(m, "latency.end_to_end_ps", "device raise to EOI done"),
            irte_lock_wait: h(m, "latency.irte_lock_wait_ps", "IRTE update: waiting for the global irq_2_ir_lock"),
            irte_update: h(
                m,
                "latency.irte_update_ps",
                "IRTE update: request to IEC invalidation done (wait included)",
            ),
            merged_pir: c(
                m,
                "interrupt.merged_pir_count",
                "posted MSIs whose vector was already pending in the PIR (coalesced into one handler call)",
            ),
            posted_delivery: h(
                m,
                "latency.posted_delivery_ps",
                "posting to the guest seeing the interrupt (notification to a running vCPU, or wake-up, kick and scheduling)",
            ),
            kvm_notified: c(
                m,
                "kvm.posted_notified_running_count",
                "posted interrupts notified to a running vCPU (no VM exit)",
            ),
            kvm_accumulated: c(
                m,
                "kvm.posted_accumulated_count",
                "posted interrupts left in the PIR of a preempted vCPU (SN=1), injected at its next VM entry",
            ),
            kvm_wakeups: c(
                m,
                "kvm.posted_wakeup_count",
                "posted interrupts that woke a blocked vCPU (wake-up vector 0xf1)",
            ),
            kvm_wakeup_walked: c(
                m,
                "kvm.wakeup_list_entries_walked_count",
                "wake-up list entries the wake-up handler visited",
            ),
            kvm_entries: c(m, "kvm.vm_entry_count", "VM entries of halted or preempted vCPUs"),
            kvm_hlt_exits: c(m, "kvm.hlt_exit_count", "VM exits on HLT: an idle vCPU blocked"),
            kvm_preemptions: c(m, "kvm.preemption_count", "running vCPUs preempted by host work (a VM exit each)"),
            setup_guest_vector_fail: f(m, "setup.guest_vector_fail_count", "a guest vCPU ran out of device vectors"),
            kvm_remapped_fallback: c(
                m,
                "kvm.remapped_fallback_count",
                "guest interrupts that could not be posted (multicast, lowest priority to several vCPUs, broadcast): remapped to the host, forwarded by VFIO and injected by KVM",
            ),
            kvm_vlpi_direct: c(m, "kvm.vlpi_direct_count", "ARM GICv4: vLPIs injected into a resident vPE (no exit)"),
            kvm_vlpi_doorbell: c(
                m,
                "kvm.vlpi_doorbell_count",
                "ARM GICv4: vLPIs for a non-resident vPE that rang its doorbell",
            ),
            kvm_vlpi_pending: c(
                m,
                "kvm.vlpi_pending_count",
                "ARM GICv4: vLPIs left in a non-resident vPE's pending table with no doorbell",
            ),
            its_translate: h(
                m,
                "latency.its_translate_ps",
                "ARM: GITS_TRANSLATER write (or v2m SETSPI) to the interrupt pending at the CPU",
            ),
            its_command_wait: h(
                m,
                "latency.its_command_wait_ps",
                "ARM: waiting for the ITS lock and command-queue slots",
            ),
            its_command: h(
                m,
                "latency.its_command_ps",
                "ARM: an ITS operation (command + SYNC round trips, wait included)",
            ),
            lost_its: [
                ("unmapped_device", "ITS: no MAPD for the DeviceID; the write is dropped"),
                ("event_out_of_range", "ITS: EventID beyond the device's ITT; the write is dropped"),
                ("unmapped_event", "ITS: no ITT entry for the EventID; the write is dropped"),
                ("collection_unmapped", "ITS: the collection has no MAPC; the write is dropped"),
                ("lpi_disabled", "ITS: the LPI is disabled in the property table"),
                ("vpe_unmapped", "ITS: the vPE has no VMAPP"),
            ]
            .map(|(what, reason)| f(m, &format!("interrupt.lost.its_{what}_count"), reason)),
            arm_lpi_exhausted: f(
                m,
                "setup.lpi_exhausted_count",
                "ARM: no free LPI range (its_lpi_alloc -ENOSPC, its_msi_prepare -ENOMEM): the device gets no MSIs",
            ),
            arm_events_exhausted: f(
                m,
                "setup.its_events_exhausted_count",
                "ARM: no free event in the device's LPI block (its_alloc_device_irq -ENOSPC)",
            ),
            arm_v2m_exhausted: f(
                m,
                "setup.v2m_spi_exhausted_count",
                "ARM GICv2m: no free SPI in the MSI frame (-ENOSPC)",
            ),
            its_round_trips: c(
                m,
                "arm.its_command_round_trip_count",
                "ITS commands waited for (each followed by SYNC)",
            ),
            its_timeouts: f(m, "arm.its_queue_timeout_count", "ITS queue timeout"),
        }
    }
}

/// The bare-metal platform as a [`World`].
#[derive(Debug, Clone)]
pub struct Platform {
    remap: Option<RemapUnit>,
    posted_msi: Option<PostedMsiConfig>,
    cpu_costs: CpuCostParams,
    /// ARM platforms: the GIC's MSI controller.
    arm: Option<arm::ArmGic>,
    /// Guests and their vCPUs.
    guests: Option<guest::Guests>,
    domain: VectorDomain,
    devices: Vec<Device>,
    queues: Vec<Queue>,
    /// The queue of each domain interrupt, indexed by `IrqId`.
    irq_queue: Vec<QueueId>,
    cpus: Vec<Cpu>,
    actions: Vec<Action>,
    /// Slots left in each IMS pool.
    ims_free: Vec<u32>,
    ims_pools: Vec<ImsPoolParams>,
    metrics: Metrics,
    ids: Ids,
}

/// Where every raised interrupt is at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conservation {
    /// Raised by devices.
    pub raised: u64,
    /// Handler and EOI done.
    pub delivered: u64,
    /// Blocked or dropped on the way (modelled failures).
    pub lost: u64,
    /// Merged into an already-pending MSI-X pending bit.
    pub merged: u64,
    /// Still travelling: MSI writes and deliveries in the event queue.
    pub in_transit: u64,
    /// Held as a pending bit in a masked MSI-X entry.
    pub pending: u64,
    /// Waiting for, or in, a handler on a CPU.
    pub at_cpu: u64,
}

impl Conservation {
    /// Raised = delivered + lost + merged + in transit + pending + at a CPU.
    pub fn holds(&self) -> bool {
        self.raised == self.delivered + self.lost + self.merged + self.in_transit + self.pending + self.at_cpu
    }
}

/// Use of one limited resource, over its instances (CPUs, functions, IOMMUs).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceUse {
    /// What is counted, e.g. `x86.vectors_per_cpu`.
    pub name: &'static str,
    /// Instances the limit applies to separately.
    pub instance_count: u32,
    /// Least used on any instance.
    pub used_min: u32,
    /// Mean use per instance.
    pub used_mean: f64,
    /// Most used on any instance.
    pub used_max: u32,
    /// The limit per instance.
    pub limit: u32,
}

impl ResourceUse {
    fn over<I: IntoIterator<Item = u32>>(name: &'static str, limit: u32, values: I) -> ResourceUse {
        let values: Vec<u32> = values.into_iter().collect();
        let n = values.len() as u32;
        let sum: u64 = values.iter().map(|&v| u64::from(v)).sum();
        ResourceUse {
            name,
            instance_count: n,
            used_min: values.iter().copied().min().unwrap_or(0),
            used_mean: if n == 0 { 0.0 } else { sum as f64 / f64::from(n) },
            used_max: values.iter().copied().max().unwrap_or(0),
            limit,
        }
    }
}

/// Why KVM could not post, in words for the sources table.
fn fallback_words(reason: FallbackReason, msi: GuestMsiParams) -> String {
    match reason {
        FallbackReason::DeliveryMode => "delivery mode".to_owned(),
        FallbackReason::Broadcast => "broadcast".to_owned(),
        FallbackReason::Multicast => format!("fixed to {} vCPUs", msi.destinations),
        FallbackReason::LowestPriorityMultipleDestinations => format!("lowest priority to {} vCPUs", msi.destinations),
        FallbackReason::NoDestination => "no destination".to_owned(),
    }
}

/// The remapping unit for `params`: Linux's settings (x2APIC mode, compatibility format
/// blocked, the kernel's fault-log rate limit) with the scenario's unsourced values.
fn remap_unit(params: &IommuParams) -> RemapUnit {
    let cache = params.cache.unwrap_or(IrteCacheParams { entries: 0, hit_latency: params.lookup_latency });
    let mut remap = RemapParams::linux_defaults(RemapUnsourced {
        max_handle_mask: params.max_handle_mask,
        fault_recording_registers: params.fault_recording_registers,
        iec_entries: cache.entries,
        iec_hit_latency: cache.hit_latency,
        iec_miss_latency: params.lookup_latency,
        irte_write: params.update.irte_write,
        irte_write_posted: params.update.irte_write,
        iec_invalidation: params.update.iec_invalidation,
        irte_alloc: SimDuration::ZERO,
    });
    remap.table_entries = params.table_entries;
    remap.iommu_count = params.units;
    RemapUnit::new(remap).expect("validated remapping parameters")
}

fn cpu_set(cpus: &[CpuId]) -> CpuSet {
    cpus.iter().copied().collect()
}

impl Platform {
    /// Builds the platform, allocates and activates every queue's interrupt the way Linux
    /// does (`pci_alloc_irq_vectors` reserves all of a device's vectors, `request_irq`
    /// activates them), programs the MSI-X entries (and IRTEs), and schedules each routed
    /// queue's first arrival and every action. Parameters must be valid (the scenario
    /// validator ensures it).
    pub fn new(params: &PlatformParams, seed: u64) -> (Platform, EventQueue<Event>) {
        assert!(params.cpu_count > 0, "a platform needs at least one CPU");
        let mut metrics = Metrics::new();
        let ids = Ids::register(&mut metrics);
        let nodes: Vec<CpuSet> = params.node_cpus().iter().map(|n| cpu_set(n)).collect();
        let matrix_params = MatrixParams {
            cpu_count: params.cpu_count,
            era: params.kernel.era(),
            legacy_pic: params.kernel.legacy_pic,
            ia32_emulation: params.kernel.ia32_emulation,
        };
        let domain = VectorDomain::new(matrix_params, nodes);
        let posted = params.remapping.as_ref().and_then(|r| r.posted_msi);
        let cpus = (0..params.cpu_count)
            .map(|c| {
                let map = domain.matrix().cpumap(CpuId(c)).expect("every CPU has a cpumap");
                Cpu {
                    jobs: VecDeque::new(),
                    posted: posted.map(|_| PostedCpu {
                        pir: [0; 4],
                        waiting: Box::new([None; 256]),
                        on: false,
                        notification_pending: false,
                        phase: PostedPhase::Idle,
                        passes: 0,
                        final_pass: false,
                        batch: Vec::new(),
                        next: 0,
                    }),
                    vector_queue: Box::new([NO_QUEUE; 256]),
                    vector_capacity: map.available(),
                }
            })
            .collect();
        let mut platform = Platform {
            remap: params.remapping.as_ref().map(remap_unit),
            posted_msi: params.remapping.as_ref().and_then(|r| r.posted_msi),
            cpu_costs: params.cpu_costs,
            arm: params.gic.as_ref().map(|gic| arm::ArmGic::new(gic, params.cpu_count)),
            guests: (!params.guests.is_empty())
                .then(|| guest::Guests::new(&params.guests, params.cpu_count, params.gic.is_some(), seed)),
            domain,
            devices: Vec::with_capacity(params.devices.len()),
            queues: Vec::new(),
            irq_queue: Vec::new(),
            cpus,
            actions: params.actions.clone(),
            ims_free: params.ims_pools.iter().map(|p| p.slots).collect(),
            ims_pools: params.ims_pools.clone(),
            metrics,
            ids,
        };
        let mut event_queue = EventQueue::with_capacity(1024);
        if let (Some(guests), Some(gic)) = (platform.guests.as_mut(), platform.arm.as_mut()) {
            // KVM creates the VM's vPEs (VMAPP); each vCPU starts halted in WFI with its
            // doorbell armed.
            for (g, guest) in params.guests.iter().enumerate() {
                let its = gic.its_mut();
                let vm = its.create_vm(SimTime::ZERO, guest.vcpu_count).expect("doorbell LPIs for a VM");
                guests.attach_vpes(g as u32, &vm.vpes);
                let (first, _) = guests.vcpus_of(g as u32);
                for (i, &vpe) in vm.vpes.iter().enumerate() {
                    let pcpu = guests.pcpu_of(first + i as u32);
                    its.vcpu_load(SimTime::ZERO, vpe, pcpu).expect("a new vPE loads");
                    its.vcpu_put(SimTime::ZERO, vpe, true).expect("a loaded vPE halts");
                }
            }
        }
        for (device_index, dp) in params.devices.iter().enumerate() {
            platform.add_device(DeviceId(device_index as u32), dp, seed);
        }
        platform.take_domain_warnings();
        for index in 0..platform.queues.len() {
            let owner = platform.owner(QueueId(index as u32));
            if platform.queues[owner.0 as usize].target.is_some() {
                platform.metrics.add(platform.ids.setup_routed, 1);
                let first = platform.queues[index].arrivals.first();
                event_queue.schedule_at(first, Event::Raise { queue: QueueId(index as u32) });
            }
        }
        if let Some(guests) = platform.guests.as_mut() {
            for (at, vcpu) in guests.first_bursts() {
                event_queue.schedule_at(at, Event::HostBurst { vcpu });
            }
        }
        for (index, action) in platform.actions.iter().enumerate() {
            event_queue.schedule_at(action.at, Event::Action { index: index as u32 });
        }
        (platform, event_queue)
    }

    fn add_device(&mut self, device: DeviceId, dp: &DeviceParams, seed: u64) {
        if self.arm.is_some() {
            self.add_device_arm(device, dp, seed);
            return;
        }
        if let Some(guest) = dp.assigned_to {
            self.add_assigned_device(device, dp, guest, seed);
            return;
        }
        assert!(!dp.affinity.is_empty() && dp.store.entries_max().is_none_or(|m| dp.queue_count <= m));
        // Multi-vector MSI without remapping: one vector, shared by every queue.
        let shared = dp.store == StoreKind::Msi && dp.queue_count > 1 && self.remap.is_none();
        if shared {
            self.metrics.add(self.ids.multi_msi_fallback, 1);
        }
        let interrupts = if shared { 1 } else { dp.queue_count };
        assert!(dp.store != StoreKind::Msi || interrupts <= MSI_VECTORS_MAX);
        let first_queue = self.push_device(device, dp, interrupts, seed);
        // pci_alloc_irq_vectors: every interrupt of the device is allocated (reserved) before
        // any is activated.
        for q in 0..interrupts {
            if !self.take_ims_slot(dp) {
                continue;
            }
            let mask = cpu_set(&spread_mask(&dp.affinity, q, interrupts));
            let allocated = match dp.irq_mode {
                IrqMode::Managed => self.domain.alloc_irq_managed(mask),
                IrqMode::NonManaged => self.domain.alloc_irq(mask, dp.numa_node.map(NodeId)),
            };
            match allocated {
                Ok(id) => {
                    assert_eq!(id.0 as usize, self.irq_queue.len(), "interrupts are allocated in queue order");
                    self.irq_queue.push(QueueId(first_queue + q));
                    self.queues[(first_queue + q) as usize].irq = Some(id);
                }
                Err(MatrixError::NoSpace) => self.metrics.add(self.ids.setup_reserve_fail, 1),
                Err(e) => panic!("allocating a validated interrupt failed: {e}"),
            }
        }
        self.alloc_irtes(first_queue as usize, dp);
        for index in first_queue as usize..self.queues.len() {
            let queue = QueueId(index as u32);
            let Some(irq) = self.queues[index].irq else { continue };
            if self.remap.is_some() && self.queues[index].irte.is_none() {
                continue;
            }
            self.activate(queue, irq);
        }
    }

    /// Allocates IRTEs for a new device's interrupts, as `intel_irq_remapping_alloc` does at
    /// allocation time: one naturally aligned power-of-two block for multi-vector MSI (the
    /// store carries one handle and consecutive subhandles), one entry per vector otherwise.
    fn alloc_irtes(&mut self, first_queue: usize, dp: &DeviceParams) {
        let Some(unit) = self.remap.as_mut() else { return };
        let table = unit.table_mut(IommuId(dp.iommu_unit));
        let with_irq: Vec<usize> = (first_queue..self.queues.len()).filter(|&i| self.queues[i].irq.is_some()).collect();
        if dp.store == StoreKind::Msi && !with_irq.is_empty() {
            match table.alloc_block(with_irq.len() as u32) {
                Ok(block) => {
                    for (sub, &i) in with_irq.iter().enumerate() {
                        self.queues[i].irte = Some(block.base + sub as u32);
                        self.queues[i].irte_message = Some((block.base as u16, Some(sub as u16)));
                    }
                }
                Err(_) => self.metrics.add(self.ids.setup_irte_fail, with_irq.len() as u64),
            }
            return;
        }
        for i in with_irq {
            match table.alloc_block(1) {
                Ok(block) => {
                    self.queues[i].irte = Some(block.base);
                    self.queues[i].irte_message = Some((block.base as u16, None));
                }
                Err(_) => self.metrics.add(self.ids.setup_irte_fail, 1),
            }
        }
    }

    /// A device assigned to a guest (VFIO): each queue gets a guest vector on a vCPU (spread
    /// over the guest's vCPUs), a host vector (VFIO still `request_irq()`s one before
    /// irq-bypass switches the IRTE to posted mode; calibration.md claim C6, unverified) and a
    /// posted IRTE pointing at the vCPU's descriptor.
    fn add_assigned_device(&mut self, device: DeviceId, dp: &DeviceParams, guest: u32, seed: u64) {
        let first_queue = self.push_device(device, dp, dp.queue_count, seed);
        let source = SourceValidation::RequesterId { sid: dp.requester_id, sq: SourceQualifier::All16 };
        for q in 0..dp.queue_count {
            let queue_id = QueueId(first_queue + q);
            let guests = self.guests.as_mut().expect("assigned devices need guests");
            let Some((vcpu, vector)) = guests.assign_queue(guest, q, queue_id) else {
                self.metrics.add(self.ids.setup_guest_vector_fail, 1);
                continue;
            };
            // The host vector VFIO requests (non-managed, on the vCPU's pCPU).
            let pcpu = guests.pcpu_of(vcpu);
            let host = match self.domain.alloc_irq(cpu_set(&[pcpu]), None) {
                Ok(irq) => {
                    self.irq_queue.push(queue_id);
                    match self.domain.activate(irq).expect("activating an allocated interrupt") {
                        Activation::Assigned { cpu, vector: host_vector, affinity_broken } => {
                            if affinity_broken {
                                self.metrics.add(self.ids.affinity_broken, 1);
                            }
                            (cpu, host_vector)
                        }
                        Activation::NoSpace | Activation::ManagedShutdown => {
                            self.metrics.add(self.ids.setup_vector_fail, 1);
                            continue;
                        }
                    }
                }
                Err(_) => {
                    self.metrics.add(self.ids.setup_vector_fail, 1);
                    continue;
                }
            };
            let unit = self.remap.as_mut().expect("guests need interrupt remapping");
            let table = unit.table_mut(IommuId(dp.iommu_unit));
            let Ok(block) = table.alloc_block(1) else {
                self.metrics.add(self.ids.setup_irte_fail, 1);
                continue;
            };
            let posted = matches!(dp.guest_msi.postability(), Postability::Posted);
            let entry = if posted {
                IrteEntry::posted(PiDescId(vcpu), vector, false)
            } else {
                // Not postable: the IRTE stays remapped to VFIO's host vector.
                IrteEntry::remapped(host.0, host.1)
            };
            table.set_entry(block.base, entry.with_source(source)).expect("an allocated IRTE");
            let (address, data) = msi::compose_remappable(block.base as u16);
            let queue = &mut self.queues[queue_id.0 as usize];
            queue.irte = Some(block.base);
            if posted {
                queue.target = Some((pcpu, vector));
            } else {
                queue.target = Some(host);
                queue.forward_to = Some((vcpu, vector));
                self.cpus[host.0.0 as usize].vector_queue[usize::from(host.1.0)] = queue_id.0;
            }
            let store = &mut self.devices.last_mut().expect("just pushed").store;
            store.write_message(q, address, data);
            store.unmask(q);
        }
    }

    /// Adds a device's queues, each with its own arrival and service random streams, and the
    /// device with a store of `store_entries` entries (queue q uses entry min(q, entries − 1):
    /// a shared vector when there are fewer entries than queues). Returns the first queue.
    fn push_device(&mut self, device: DeviceId, dp: &DeviceParams, store_entries: u32, seed: u64) -> u32 {
        let first_queue = self.queues.len() as u32;
        for q in 0..dp.queue_count {
            let path = format!("device/{}/queue/{q}", dp.name);
            self.queues.push(Queue {
                device,
                entry: q.min(store_entries - 1),
                irq: None,
                irte: None,
                irte_message: None,
                arm_interrupt: None,
                forward_to: None,
                target: None,
                message_in_flight: None,
                arrivals: Arrivals::new(&dp.arrival, RngStream::new(seed, &format!("{path}/arrival"))),
                service_rng: RngStream::new(seed, &format!("{path}/service")),
            });
        }
        self.devices.push(Device {
            params: dp.clone(),
            store: MessageStore::new(dp.store, store_entries),
            first_queue,
        });
        first_queue
    }

    /// Takes one slot from the device's IMS pool, if it draws from one.
    fn take_ims_slot(&mut self, dp: &DeviceParams) -> bool {
        let Some(pool) = dp.ims_pool else { return true };
        let free = &mut self.ims_free[pool as usize];
        if *free == 0 {
            self.metrics.add(self.ids.setup_ims_slot_fail, 1);
            return false;
        }
        *free -= 1;
        true
    }

    /// The queue whose interrupt a queue raises (itself, or the owner of a shared vector).
    fn owner(&self, queue_id: QueueId) -> QueueId {
        let queue = &self.queues[queue_id.0 as usize];
        QueueId(self.devices[queue.device.0 as usize].first_queue + queue.entry)
    }

    /// Activates a queue's interrupt and programs its route.
    fn activate(&mut self, queue: QueueId, irq: IrqId) {
        match self.domain.activate(irq).expect("activating an allocated interrupt") {
            Activation::Assigned { cpu, vector, affinity_broken } => {
                if affinity_broken {
                    self.metrics.add(self.ids.affinity_broken, 1);
                }
                self.route(queue, cpu, vector, None);
                self.unmask(queue);
            }
            Activation::NoSpace => self.metrics.add(self.ids.setup_vector_fail, 1),
            Activation::ManagedShutdown => self.metrics.add(self.ids.managed_shutdown, 1),
        }
    }

    /// Points a queue's interrupt at (cpu, vector): the IRTE with remapping, the MSI-X
    /// entry's message without; registers the handler on the vector.
    fn route(&mut self, queue_id: QueueId, cpu: CpuId, vector: Vector, mut q: Option<&mut EventQueue<Event>>) {
        let queue = &mut self.queues[queue_id.0 as usize];
        queue.target = Some((cpu, vector));
        self.cpus[cpu.0 as usize].vector_queue[usize::from(vector.0)] = queue_id.0;
        let requester_id = self.devices[queue.device.0 as usize].params.requester_id;
        let iommu = IommuId(self.devices[queue.device.0 as usize].params.iommu_unit);
        let (address, data) = match (self.remap.as_mut(), queue.irte, queue.irte_message) {
            (Some(unit), Some(index), Some((handle, subhandle))) => {
                // Linux's set_msi_sid: verify the full requester id (SVT=1, SQ=0).
                let source = SourceValidation::RequesterId { sid: requester_id, sq: SourceQualifier::All16 };
                let entry = IrteEntry::remapped(cpu, vector).with_source(source);
                match q.as_deref_mut() {
                    None => unit.table_mut(iommu).set_entry(index, entry).expect("an allocated IRTE"),
                    Some(q) => {
                        let timing = unit.request_update(q.now(), iommu, index, entry).expect("an allocated IRTE");
                        self.metrics.add(self.ids.irte_updates, 1);
                        self.metrics.record(self.ids.irte_lock_wait, timing.lock_wait.as_ps());
                        self.metrics.record(self.ids.irte_update, timing.done.since(q.now()).as_ps());
                    }
                }
                match subhandle {
                    Some(sub) => msi::compose_remappable_subhandle(handle, sub),
                    None => msi::compose_remappable(handle),
                }
            }
            _ => msi::compose_compat(
                u8::try_from(cpu.0).expect("validation keeps CPUs below 256 without remapping"),
                vector.0,
            ),
        };
        let device = &mut self.devices[queue.device.0 as usize];
        let current = device.store.entry(queue.entry);
        let latency = device.params.store_update_latency;
        match q {
            // IMS in queue memory: the new message goes through the device's command queue;
            // until it lands, raises use the old message (whose vector the move keeps).
            Some(q)
                if device.store.kind() == StoreKind::ImsQueue && (current.address, current.data) != (address, data) =>
            {
                queue.message_in_flight = Some((address, data));
                q.schedule_in(latency, Event::StoreWrite { queue: queue_id });
            }
            _ => device.store.write_message(queue.entry, address, data),
        }
    }

    fn on_store_write(&mut self, queue_id: QueueId) {
        let queue = &mut self.queues[queue_id.0 as usize];
        if let Some((address, data)) = queue.message_in_flight.take() {
            self.devices[queue.device.0 as usize].store.write_message(queue.entry, address, data);
        }
    }

    /// Unmasks a queue's MSI-X entry; a pending bit set while masked sends its message now.
    fn unmask(&mut self, queue_id: QueueId) -> Option<QueueId> {
        let queue = &self.queues[queue_id.0 as usize];
        let pending = self.devices[queue.device.0 as usize].store.unmask(queue.entry);
        pending.then_some(queue_id)
    }

    fn take_domain_warnings(&mut self) {
        for warning in self.domain.take_warnings() {
            match warning {
                DomainWarning::ReservationExceedsAvailable => self.metrics.add(self.ids.reservation_exceeds, 1),
                // Counted where the outcome is handled (activation, offline).
                DomainWarning::AffinityBroken { .. }
                | DomainWarning::NoLongerAffine { .. }
                | DomainWarning::SetAffinityFailed { .. }
                | DomainWarning::ManagedStartupNoVector { .. }
                | DomainWarning::ReservedExceedsAvailable { .. } => {}
            }
        }
    }

    /// The run's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The vector domain (matrix allocator and per-interrupt state).
    pub fn vector_domain(&self) -> &VectorDomain {
        &self.domain
    }

    /// Where every raised interrupt is, counted independently from the event queue, the
    /// MSI-X pending bits and the CPU queues.
    pub fn conservation(&self, queue: &EventQueue<Event>) -> Conservation {
        let in_transit = queue.iter().filter(|(_, e)| {
            matches!(
                e,
                Event::MsiWrite { .. }
                    | Event::Deliver { .. }
                    | Event::DeliverIntid { .. }
                    | Event::GuestInterrupt { .. }
                    | Event::PostToVcpu { .. }
            )
        });
        Conservation {
            raised: self.metrics.get(self.ids.raised),
            delivered: self.metrics.get(self.ids.delivered),
            lost: self.metrics.get(self.ids.lost),
            merged: self.metrics.get(self.ids.pending_merged) + self.metrics.get(self.ids.merged_pir),
            in_transit: in_transit.count() as u64,
            pending: self.devices.iter().map(|d| u64::from(d.store.pending_count())).sum(),
            at_cpu: self
                .cpus
                .iter()
                .map(|c| {
                    let posted = c.posted.as_ref().map_or(0, |p| {
                        let waiting: u32 = p.pir.iter().map(|w| w.count_ones()).sum();
                        let in_batch = if p.phase == PostedPhase::Handler { p.batch.len() - p.next } else { 0 };
                        u64::from(waiting) + in_batch as u64
                    });
                    c.jobs.len() as u64 + posted
                })
                .sum::<u64>()
                + self.guests.as_ref().map_or(0, guest::Guests::at_vcpus),
        }
    }

    /// Use of every limited resource against its limit.
    pub fn resources(&self) -> Vec<ResourceUse> {
        let mut out = match &self.arm {
            Some(gic) => gic.resources(),
            None => self.x86_resources(),
        };
        out.extend(self.store_resources());
        out
    }

    fn x86_resources(&self) -> Vec<ResourceUse> {
        let matrix = self.domain.matrix();
        let allocated = (0..self.cpus.len() as u32).map(|c| matrix.allocated(CpuId(c)));
        let limit = self.cpus.iter().map(|c| c.vector_capacity).max().unwrap_or(0);
        let mut out = vec![
            ResourceUse::over("x86.vectors_per_cpu", limit, allocated),
            ResourceUse::over(
                "x86.vector_reservations_global",
                matrix.available(None) + matrix.reserved(),
                [matrix.reserved()],
            ),
        ];
        if let Some(unit) = &self.remap {
            let units = unit.params().iommu_count;
            let capacity = unit.table(IommuId(0)).capacity();
            let used = (0..units).map(|i| unit.table(IommuId(i)).used());
            out.push(ResourceUse::over("iommu.irtes_per_iommu", capacity, used));
        }
        out
    }

    fn store_resources(&self) -> Vec<ResourceUse> {
        let mut out = Vec::new();
        let per_kind =
            |kind: StoreKind| self.devices.iter().filter(move |d| d.store.kind() == kind).map(|d| d.store.len());
        if self.devices.iter().any(|d| d.store.kind() == StoreKind::Msix) {
            out.push(ResourceUse::over(
                "pci.msix_entries_per_function",
                MSIX_TABLE_ENTRIES_MAX,
                per_kind(StoreKind::Msix),
            ));
        }
        if self.devices.iter().any(|d| d.store.kind() == StoreKind::Msi) {
            out.push(ResourceUse::over("pci.msi_vectors_per_function", MSI_VECTORS_MAX, per_kind(StoreKind::Msi)));
        }
        for (pool, free) in self.ims_pools.iter().zip(&self.ims_free) {
            out.push(ResourceUse::over("pci.ims_slots_per_device", pool.slots, [pool.slots - free]));
        }
        out
    }

    /// Tables in fixed, familiar layouts: the interrupt sources and, on x86, the kernel's irq
    /// matrix (debugfs layout).
    pub fn tables(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("Interrupt sources", self.sources_table())];
        if self.arm.is_none() {
            out.push((
                "x86 vector matrix at the end (the layout of /sys/kernel/debug/irq/domains/VECTOR)",
                self.matrix_table(),
            ));
        }
        out
    }

    /// The interrupt sources: one line per function or ADI with its requester id (as
    /// `bus:dev.fn`), PASID, store and how many of its queues have a working interrupt.
    pub fn sources_table(&self) -> String {
        let mut out =
            String::from("| source | requester id | pasid | store | entries | queues | routed | guest delivery |\n");
        for device in &self.devices {
            let p = &device.params;
            let rid = p.requester_id;
            let routed = (0..p.queue_count)
                .filter(|&q| {
                    let owner = self.owner(QueueId(device.first_queue + q));
                    self.queues[owner.0 as usize].target.is_some()
                })
                .count();
            let delivery = match (p.assigned_to, &self.guests) {
                (Some(g), Some(guests)) => {
                    let how = match p.guest_msi.postability() {
                        Postability::Posted if self.arm.is_some() => "vLPI".to_owned(),
                        Postability::Posted => "posted".to_owned(),
                        Postability::Remapped(reason) => format!("remapped ({})", fallback_words(reason, p.guest_msi)),
                    };
                    format!("{} {how}", guests.name_of(g))
                }
                _ => "-".to_owned(),
            };
            out.push_str(&format!(
                "| {} | {:02x}:{:02x}.{} | {} | {} | {} | {} | {routed} | {delivery} |\n",
                p.name,
                rid >> 8,
                (rid >> 3) & 0x1f,
                rid & 0x7,
                p.pasid.map_or("-".to_owned(), |v| v.to_string()),
                device.store.kind().as_str(),
                device.store.len(),
                p.queue_count,
            ));
        }
        out
    }

    /// The kernel's irq matrix debugfs table for the current state.
    pub fn matrix_table(&self) -> String {
        self.domain.debug_table()
    }

    fn lose(&mut self, reason: CounterId) {
        self.metrics.add(self.ids.lost, 1);
        self.metrics.add(reason, 1);
    }

    fn on_raise(&mut self, queue_id: QueueId, q: &mut EventQueue<Event>) {
        let now = q.now();
        let queue = &mut self.queues[queue_id.0 as usize];
        let next = queue.arrivals.next_after(now);
        q.schedule_at(next, Event::Raise { queue: queue_id });
        self.metrics.add(self.ids.raised, 1);
        let (device, entry) = (queue.device, queue.entry);
        match self.devices[device.0 as usize].store.raise(entry) {
            Raise::Send => self.send_msi(queue_id, now, q),
            Raise::Pending => {}
            Raise::Merged => self.metrics.add(self.ids.pending_merged, 1),
        }
    }

    fn send_msi(&mut self, queue_id: QueueId, raised_at: SimTime, q: &mut EventQueue<Event>) {
        let device = self.queues[queue_id.0 as usize].device;
        let latency = self.devices[device.0 as usize].params.msi_write_latency;
        self.metrics.record(self.ids.msi_write, latency.as_ps());
        q.schedule_in(latency, Event::MsiWrite { queue: queue_id, raised_at });
    }

    fn on_msi_write(&mut self, queue_id: QueueId, raised_at: SimTime, q: &mut EventQueue<Event>) {
        if self.arm.is_some() {
            self.on_msi_write_arm(queue_id, raised_at, q);
            return;
        }
        let queue = &self.queues[queue_id.0 as usize];
        let device = &self.devices[queue.device.0 as usize];
        let entry = device.store.entry(queue.entry);
        let requester_id = device.params.requester_id;
        let message = msi::decode(entry.address, entry.data);
        let Some(unit) = self.remap.as_mut() else {
            match message {
                MsiMessage::Compat { dest_apic_id, vector } => {
                    self.deliver(CpuId(u32::from(dest_apic_id)), Vector(vector), raised_at, q);
                }
                // Without a remapping unit a remappable-format write has no meaning.
                MsiMessage::Remappable { .. } | MsiMessage::NotInterrupt => self.lose(self.ids.lost_not_interrupt),
            }
            return;
        };
        let message = match message {
            MsiMessage::NotInterrupt => {
                self.lose(self.ids.lost_not_interrupt);
                return;
            }
            MsiMessage::Compat { dest_apic_id, vector } => {
                InterruptMessage::Compatibility { dest_apic_id, vector: Vector(vector) }
            }
            MsiMessage::Remappable { handle, subhandle } => {
                InterruptMessage::Remappable { handle, subhandle, reserved_bits_set: false }
            }
        };
        let now = q.now();
        let iommu = IommuId(device.params.iommu_unit);
        let translation = unit.translate(now, iommu, &RemapRequest { requester_id, message });
        self.metrics.record(self.ids.remap, translation.latency.as_ps());
        match translation.cache {
            crate::iommu::remap::CacheOutcome::Hit => self.metrics.add(self.ids.cache_hit, 1),
            crate::iommu::remap::CacheOutcome::Miss => self.metrics.add(self.ids.cache_miss, 1),
            crate::iommu::remap::CacheOutcome::NotLooked => {}
        }
        match translation.result {
            Ok(RemapTarget::Remapped { dest, vector } | RemapTarget::Compatibility { dest, vector }) => {
                q.schedule_in(translation.latency, Event::Deliver { cpu: dest, vector, raised_at });
            }
            Ok(RemapTarget::Posted { descriptor, vector, urgent }) => {
                if self.guests.is_some() {
                    let vcpu = descriptor.0;
                    q.schedule_in(translation.latency, Event::PostToVcpu { vcpu, vector, urgent, raised_at });
                } else {
                    self.lose(self.ids.lost_no_handler);
                }
            }
            Err(fault) => {
                self.metrics.add(self.ids.lost, 1);
                self.metrics.add(self.ids.lost_remap[fault.index()], 1);
                match translation.fault {
                    Some(FaultDisposition::Recorded { raise_fault_event }) => {
                        self.metrics.add(self.ids.fault_recorded, 1);
                        if raise_fault_event {
                            // The DMAR fault interrupt runs dmar_fault(), which drains the records.
                            let report = unit.service_faults(now, iommu);
                            let logged = u64::from(report.status_logged) + u64::from(report.records_logged);
                            self.metrics.add(self.ids.fault_logged, logged);
                            self.metrics.add(self.ids.fault_suppressed, u64::from(report.suppressed));
                        }
                    }
                    Some(FaultDisposition::LostOverflow) => self.metrics.add(self.ids.fault_overflow, 1),
                    Some(FaultDisposition::NotRecordedFpd) => self.metrics.add(self.ids.fault_fpd, 1),
                    Some(FaultDisposition::Collapsed) | None => {}
                }
            }
        }
    }

    fn deliver(&mut self, cpu_id: CpuId, vector: Vector, raised_at: SimTime, q: &mut EventQueue<Event>) {
        let Some(cpu) = self.cpus.get(cpu_id.0 as usize) else {
            self.lose(self.ids.lost_no_handler);
            return;
        };
        let queue = cpu.vector_queue[usize::from(vector.0)];
        if queue == NO_QUEUE {
            self.lose(self.ids.lost_no_handler);
            return;
        }
        let queue_id = QueueId(queue);
        let target = self.queues[queue as usize].target;
        if !self.domain.cpu_online_mask().contains(cpu_id) {
            // fixup_irqs: an interrupt that reaches a CPU on its way down is re-sent to the
            // interrupt's current target.
            match target {
                Some((cpu, vector)) if self.domain.cpu_online_mask().contains(cpu) => {
                    self.metrics.add(self.ids.retriggered, 1);
                    self.deliver(cpu, vector, raised_at, q);
                }
                _ => self.lose(self.ids.lost_no_handler),
            }
            return;
        }
        if target == Some((cpu_id, vector)) {
            self.complete_move(queue_id);
        }
        if self.posted_msi.is_some() {
            self.post(cpu_id, vector, queue_id, raised_at, q);
        } else {
            self.enqueue(cpu_id, queue_id, raised_at, q);
        }
    }

    /// Host posted MSI: the IOMMU posts the vector into the CPU's descriptor; only the
    /// posting that sets ON sends a notification.
    fn post(&mut self, cpu_id: CpuId, vector: Vector, queue: QueueId, raised_at: SimTime, q: &mut EventQueue<Event>) {
        let now = q.now();
        let pc = self.cpus[cpu_id.0 as usize].posted.as_mut().expect("posted MSI on");
        let (word, bit) = (usize::from(vector.0 / 64), 1u64 << (vector.0 % 64));
        if pc.pir[word] & bit != 0 {
            self.metrics.add(self.ids.merged_pir, 1);
            return;
        }
        pc.pir[word] |= bit;
        pc.waiting[usize::from(vector.0)] = Some(Job { queue, raised_at, arrived_at: now });
        if !pc.on {
            pc.on = true;
            pc.notification_pending = true;
            if pc.phase == PostedPhase::Idle {
                self.start_notification(cpu_id, q);
            }
        }
    }

    /// The CPU takes the posted-MSI notification (POSTED_MSI_NOTIFICATION_VECTOR).
    fn start_notification(&mut self, cpu_id: CpuId, q: &mut EventQueue<Event>) {
        let cost = self.cpu_costs.notification + self.cpu_costs.irq_entry_exit;
        let pc = self.cpus[cpu_id.0 as usize].posted.as_mut().expect("posted MSI on");
        pc.notification_pending = false;
        pc.phase = PostedPhase::Entry;
        pc.passes = 0;
        pc.final_pass = false;
        self.metrics.record(self.ids.irq_entry, cost.as_ps());
        self.metrics.add(self.ids.cpu_busy_ps, cost.as_ps());
        q.schedule_in(cost, Event::PostedStep { cpu: cpu_id });
    }

    /// Starts a demux pass: a loop pass while the cap allows, else clear ON and the final pass.
    fn begin_pass(&mut self, cpu_id: CpuId, found_last: bool, q: &mut EventQueue<Event>) {
        let config = self.posted_msi.expect("posted MSI on");
        let pc = self.cpus[cpu_id.0 as usize].posted.as_mut().expect("posted MSI on");
        if pc.final_pass {
            pc.phase = PostedPhase::Eoi;
            let eoi = self.eoi_cost_posted();
            self.metrics.record(self.ids.eoi, eoi.as_ps());
            self.metrics.add(self.ids.cpu_busy_ps, eoi.as_ps());
            q.schedule_in(eoi, Event::PostedStep { cpu: cpu_id });
            return;
        }
        if !(found_last && pc.passes < config.loop_cap.saturating_sub(1)) {
            pc.on = false;
            pc.final_pass = true;
        }
        pc.phase = PostedPhase::Scan;
        pc.passes += 1;
        self.metrics.add(self.ids.cpu_busy_ps, config.pir_scan.as_ps());
        q.schedule_in(config.pir_scan, Event::PostedStep { cpu: cpu_id });
    }

    /// The EOI cost of a posted notification: every device uses the same APIC, so take the
    /// first device's EOI cost.
    fn eoi_cost_posted(&self) -> SimDuration {
        self.devices.first().map_or(SimDuration::ZERO, |d| d.params.eoi_cost)
    }

    fn on_posted_step(&mut self, cpu_id: CpuId, q: &mut EventQueue<Event>) {
        let now = q.now();
        let pc = self.cpus[cpu_id.0 as usize].posted.as_mut().expect("posted MSI on");
        match pc.phase {
            PostedPhase::Idle => unreachable!("a posted step on an idle CPU"),
            // The first pass always runs (found_last = true lets it count as a loop pass).
            PostedPhase::Entry => self.begin_pass(cpu_id, true, q),
            PostedPhase::Scan => {
                let mut batch = std::mem::take(&mut pc.batch);
                batch.clear();
                for (word_index, word) in pc.pir.iter_mut().enumerate() {
                    let mut bits = std::mem::take(word);
                    while bits != 0 {
                        let vector = word_index * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        batch.push(pc.waiting[vector].take().expect("a set PIR bit has its interrupt"));
                    }
                }
                pc.batch = batch;
                pc.next = 0;
                if pc.batch.is_empty() {
                    self.begin_pass(cpu_id, false, q);
                } else {
                    pc.phase = PostedPhase::Handler;
                    self.start_posted_handler(cpu_id, q);
                }
            }
            PostedPhase::Handler => {
                let job = pc.batch[pc.next];
                pc.next += 1;
                let more = pc.next < pc.batch.len();
                self.metrics.add(self.ids.delivered, 1);
                self.metrics.record(self.ids.end_to_end, now.since(job.raised_at).as_ps());
                if more {
                    self.start_posted_handler(cpu_id, q);
                } else {
                    self.begin_pass(cpu_id, true, q);
                }
            }
            PostedPhase::Eoi => {
                pc.phase = PostedPhase::Idle;
                if pc.notification_pending {
                    self.start_notification(cpu_id, q);
                }
            }
        }
    }

    fn start_posted_handler(&mut self, cpu_id: CpuId, q: &mut EventQueue<Event>) {
        let now = q.now();
        let pc = self.cpus[cpu_id.0 as usize].posted.as_ref().expect("posted MSI on");
        let job = pc.batch[pc.next];
        let queue = &mut self.queues[job.queue.0 as usize];
        let service = self.devices[queue.device.0 as usize].params.service.sample(&mut queue.service_rng);
        self.metrics.record(self.ids.queue_wait, now.since(job.arrived_at).as_ps());
        self.metrics.record(self.ids.handler, service.as_ps());
        self.metrics.add(self.ids.cpu_busy_ps, service.as_ps());
        q.schedule_in(service, Event::PostedStep { cpu: cpu_id });
    }

    /// The interrupt of `queue_id` is taken on `cpu_id`: its handler runs after the ones
    /// already waiting there.
    fn enqueue(&mut self, cpu_id: CpuId, queue_id: QueueId, raised_at: SimTime, q: &mut EventQueue<Event>) {
        let cpu = &mut self.cpus[cpu_id.0 as usize];
        cpu.jobs.push_back(Job { queue: queue_id, raised_at, arrived_at: q.now() });
        if cpu.jobs.len() == 1 {
            self.start_handler(cpu_id, q);
        }
    }

    /// The first interrupt on a moved interrupt's new vector frees the old one.
    fn complete_move(&mut self, queue_id: QueueId) {
        let Some(irq) = self.queues[queue_id.0 as usize].irq else {
            return;
        };
        let Some((old_cpu, old_vector)) = self.domain.irq(irq).and_then(|d| d.prev_vector()) else {
            return;
        };
        let leaked_before = self.domain.leaked_vectors().len();
        self.domain.complete_move(irq).expect("completing a pending move");
        self.metrics.add(self.ids.moves_completed, 1);
        if self.domain.leaked_vectors().len() > leaked_before {
            self.metrics.add(self.ids.vector_leaked, 1);
        }
        let slot = &mut self.cpus[old_cpu.0 as usize].vector_queue[usize::from(old_vector.0)];
        if *slot == queue_id.0 {
            *slot = NO_QUEUE;
        }
    }

    fn start_handler(&mut self, cpu_id: CpuId, q: &mut EventQueue<Event>) {
        let now = q.now();
        let job = *self.cpus[cpu_id.0 as usize].jobs.front().expect("a handler starts only with a job");
        let queue = &mut self.queues[job.queue.0 as usize];
        let device = &self.devices[queue.device.0 as usize].params;
        let (service, eoi) = match (queue.forward_to, &self.guests) {
            (Some((vcpu, _)), Some(guests)) => (guests.remapped_forward_of(vcpu), SimDuration::ZERO),
            _ => (device.service.sample(&mut queue.service_rng), device.eoi_cost),
        };
        let entry = self.cpu_costs.notification + self.cpu_costs.irq_entry_exit;
        self.metrics.record(self.ids.queue_wait, now.since(job.arrived_at).as_ps());
        if entry > SimDuration::ZERO {
            self.metrics.record(self.ids.irq_entry, entry.as_ps());
        }
        self.metrics.record(self.ids.handler, service.as_ps());
        self.metrics.record(self.ids.eoi, eoi.as_ps());
        self.metrics.add(self.ids.cpu_busy_ps, (entry + service + eoi).as_ps());
        q.schedule_in(entry + service + eoi, Event::HandlerDone { cpu: cpu_id });
    }

    fn on_handler_done(&mut self, cpu_id: CpuId, q: &mut EventQueue<Event>) {
        let cpu = &mut self.cpus[cpu_id.0 as usize];
        let job = cpu.jobs.pop_front().expect("a handler finished on an idle CPU");
        let more = !cpu.jobs.is_empty();
        if let Some((vcpu, vector)) = self.queues[job.queue.0 as usize].forward_to {
            // VFIO's handler signalled the irqfd; KVM injects through the posted descriptor.
            self.metrics.add(self.ids.kvm_remapped_fallback, 1);
            self.post_to_vcpu(vcpu, vector, false, job.raised_at, q);
        } else {
            self.metrics.add(self.ids.delivered, 1);
            self.metrics.record(self.ids.end_to_end, q.now().since(job.raised_at).as_ps());
        }
        if more {
            self.start_handler(cpu_id, q);
        }
    }

    /// Re-reads each interrupt's vector from the domain after an operation that may have
    /// moved, shut down or restarted some, and reprograms the routes that changed.
    fn resync(&mut self, irqs: &[IrqId], q: &mut EventQueue<Event>) {
        for &irq in irqs {
            let queue_id = self.irq_queue[irq.0 as usize];
            let device = self.queues[queue_id.0 as usize].device;
            if self.devices[device.0 as usize].params.assigned_to.is_some() {
                // VFIO's host vector moved; the posted IRTE does not follow it.
                continue;
            }
            let now_at = self.domain.irq(irq).and_then(|d| d.vector());
            let before = self.queues[queue_id.0 as usize].target;
            if now_at == before {
                continue;
            }
            match now_at {
                Some((cpu, vector)) => {
                    self.route(queue_id, cpu, vector, Some(q));
                    if self.unmask(queue_id).is_some() {
                        let now = q.now();
                        self.send_msi(queue_id, now, q);
                    }
                }
                None => {
                    // Shut down: masked, raises accumulate in the pending bit.
                    let queue = &mut self.queues[queue_id.0 as usize];
                    queue.target = None;
                    self.devices[queue.device.0 as usize].store.mask(queue.entry);
                }
            }
        }
    }

    fn on_action(&mut self, index: u32, q: &mut EventQueue<Event>) {
        let action = self.actions[index as usize].clone();
        match action.kind {
            ActionKind::SetAffinity { device, cpus } if self.arm.is_some() => self.set_affinity_arm(device, &cpus, q),
            // The scenario validator refuses hotplug on ARM (not modelled there).
            ActionKind::CpuOffline(_) | ActionKind::CpuOnline(_) if self.arm.is_some() => {}
            ActionKind::CpuOffline(cpu) => match self.domain.offline(cpu) {
                Ok(report) => {
                    self.metrics.add(self.ids.migrated, report.migrated.len() as u64);
                    self.metrics.add(self.ids.no_longer_affine, report.affinity_broken.len() as u64);
                    self.metrics.add(self.ids.managed_shutdown, report.shutdown.len() as u64);
                    self.metrics.add(self.ids.migration_failed, report.failed.len() as u64);
                    let touched: Vec<IrqId> = report.migrated.iter().chain(&report.shutdown).copied().collect();
                    self.resync(&touched, q);
                }
                Err(MatrixError::CannotUnplug { .. }) => self.metrics.add(self.ids.unplug_refused, 1),
                Err(MatrixError::Busy) => self.metrics.add(self.ids.unplug_busy, 1),
                // Already offline (a scenario may take a CPU down twice): nothing to do.
                Err(MatrixError::Invalid | MatrixError::NoSpace) => {}
            },
            ActionKind::CpuOnline(cpu) => {
                // An error means it is already online (a scenario may bring a CPU up twice).
                if let Ok(restarted) = self.domain.online(cpu) {
                    self.metrics.add(self.ids.managed_restart, restarted.len() as u64);
                    self.resync(&restarted, q);
                }
            }
            ActionKind::SetAffinity { device, cpus } => {
                let mask = cpu_set(&cpus);
                let irqs: Vec<IrqId> =
                    self.queues.iter().filter(|queue| queue.device == device).filter_map(|queue| queue.irq).collect();
                let mut moved = Vec::new();
                for irq in irqs {
                    match self.domain.set_affinity(irq, mask.clone()) {
                        Ok(()) => moved.push(irq),
                        Err(_) => self.metrics.add(self.ids.affinity_refused, 1),
                    }
                }
                self.resync(&moved, q);
            }
        }
        self.take_domain_warnings();
    }
}

impl World for Platform {
    type Event = Event;

    fn handle(&mut self, event: Event, q: &mut EventQueue<Event>) {
        match event {
            Event::Raise { queue } => self.on_raise(queue, q),
            Event::MsiWrite { queue, raised_at } => self.on_msi_write(queue, raised_at, q),
            Event::Deliver { cpu, vector, raised_at } => self.deliver(cpu, vector, raised_at, q),
            Event::HandlerDone { cpu } => self.on_handler_done(cpu, q),
            Event::Action { index } => self.on_action(index, q),
            Event::StoreWrite { queue } => self.on_store_write(queue),
            Event::PostedStep { cpu } => self.on_posted_step(cpu, q),
            Event::GuestInterrupt { vcpu } => self.on_guest_interrupt(vcpu, q),
            Event::PostToVcpu { vcpu, vector, urgent, raised_at } => {
                self.post_to_vcpu(vcpu, vector, urgent, raised_at, q)
            }
            Event::VcpuEntry { vcpu } => self.on_vcpu_entry(vcpu, q),
            Event::GuestHandlerDone { vcpu, generation } => self.on_guest_handler_done(vcpu, generation, q),
            Event::HostBurst { vcpu } => self.on_host_burst(vcpu, q),
            Event::HostBurstEnd { vcpu } => self.on_host_burst_end(vcpu, q),
            Event::DeliverIntid { cpu, intid, raised_at } => {
                self.deliver_intid(CpuId(u32::from(cpu)), intid, raised_at, q)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iommu::remap::INTR_REMAP_TABLE_ENTRIES;
    use sim::{RunLimits, run};

    fn one_device(queue_count: u32, cpus: u32, remap: bool) -> PlatformParams {
        PlatformParams {
            cpu_count: cpus,
            remapping: remap.then_some(IommuParams {
                lookup_latency: SimDuration::from_ns(100),
                table_entries: INTR_REMAP_TABLE_ENTRIES,
                cache: None,
                update: IrteUpdateParams::default(),
                fault_recording_registers: 1,
                max_handle_mask: 15,
                posted_msi: None,
                units: 1,
            }),
            devices: vec![DeviceParams {
                name: "d".into(),
                queue_count,
                msi_write_latency: SimDuration::from_ns(500),
                arrival: ArrivalParams::Constant { rate_per_s: 1_000.0 },
                service: DurationDist::constant(SimDuration::from_ns(1_000)),
                eoi_cost: SimDuration::from_ns(50),
                affinity: (0..cpus).map(CpuId).collect(),
                irq_mode: IrqMode::NonManaged,
                numa_node: None,
                store: StoreKind::Msix,
                ims_pool: None,
                store_update_latency: SimDuration::ZERO,
                requester_id: 0x0100,
                pasid: None,
                assigned_to: None,
                guest_msi: GuestMsiParams::UNICAST,
                iommu_unit: 0,
            }],
            kernel: KernelParams { version: KernelVersion::new(6, 10), legacy_pic: false, ia32_emulation: true },
            numa_node_count: 1,
            actions: Vec::new(),
            ims_pools: Vec::new(),
            gic: None,
            cpu_costs: CpuCostParams::default(),
            guests: Vec::new(),
        }
    }

    fn posted_costs() -> PostedParams {
        PostedParams {
            notify_running: SimDuration::from_ns(50),
            wakeup_irq_entry: SimDuration::from_ns(300),
            wakeup_list_entry: SimDuration::from_ns(20),
            kick: SimDuration::from_ns(200),
            wake_to_vm_entry: SimDuration::from_ns(3_000),
        }
    }

    /// One guest of `vcpus` vCPUs on pCPUs `pcpus`, with the device assigned to it.
    fn with_guest(mut params: PlatformParams, vcpus: u32, pcpus: &[u32]) -> PlatformParams {
        params.guests = vec![GuestParams {
            name: "vm0".into(),
            vcpu_count: vcpus,
            pcpus: pcpus.iter().map(|&c| CpuId(c)).collect(),
            host_bursts: None,
            posted: posted_costs(),
            remapped_forward: SimDuration::from_ns(1_500),
        }];
        params.devices[0].assigned_to = Some(0);
        params
    }

    fn arm_its(queue_count: u32, cpus: u32) -> PlatformParams {
        let mut params = one_device(queue_count, cpus, false);
        params.gic = Some(GicParams {
            version: GicVersion::V3,
            msi: GicMsiParams::Its {
                costs: ItsCosts {
                    command: SimDuration::from_ns(100),
                    sync: SimDuration::from_ns(400),
                    direct_inv: SimDuration::from_ns(200),
                },
                translation_latency: SimDuration::from_ns(80),
                lpi_id_bits: 16,
            },
        });
        params
    }

    fn run_to(p: &mut Platform, q: &mut EventQueue<Event>, ps: u64) {
        run(p, q, RunLimits { time_end: SimTime::from_ps(ps), event_count_max: u64::MAX });
    }

    fn counter(p: &Platform, name: &str) -> u64 {
        p.metrics().snapshot().counters.iter().find(|(i, _)| i.name == name).map(|(_, v)| *v).unwrap()
    }

    #[test]
    fn one_interrupt_takes_the_sum_of_its_stages() {
        for remap in [false, true] {
            let (mut p, mut q) = Platform::new(&one_device(1, 1, remap), 1);
            run_to(&mut p, &mut q, sim::PS_PER_S / 100);
            let s = p.metrics().snapshot();
            let e2e = s.histograms.iter().find(|h| h.info.name == "latency.end_to_end_ps").unwrap();
            let expected = 500 + if remap { 100 } else { 0 } + 1_000 + 50;
            assert_eq!((e2e.min, e2e.max), (expected * 1000, expected * 1000), "remap={remap}");
            assert!(p.conservation(&q).holds());
        }
    }

    #[test]
    fn spread_masks_follow_group_cpus_evenly() {
        let cpus: Vec<CpuId> = (0..4).map(CpuId).collect();
        assert_eq!(spread_mask(&cpus, 5, 8), [CpuId(1)]);
        assert_eq!(spread_mask(&cpus, 1, 2), [CpuId(2), CpuId(3)]);
        let all: Vec<CpuId> = (0..3).flat_map(|q| spread_mask(&cpus, q, 3)).collect();
        assert_eq!(all, cpus, "fewer queues than CPUs: every CPU in exactly one group");
    }

    #[test]
    fn vector_exhaustion_is_counted_not_fatal() {
        // 300 non-managed queues on one CPU: the CPU's allocatable vectors get one each.
        let (p, _) = Platform::new(&one_device(300, 1, true), 1);
        let capacity = u64::from(p.cpus[0].vector_capacity);
        assert_eq!(counter(&p, "setup.queue_routed_count"), capacity);
        assert_eq!(counter(&p, "setup.vector_alloc_fail_count"), 300 - capacity);
        let vectors = &p.resources()[0];
        assert_eq!((u64::from(vectors.used_max), u64::from(vectors.limit)), (capacity, capacity));
    }

    #[test]
    fn non_managed_overflow_breaks_affinity_to_other_cpus() {
        // 2 CPUs, every queue affine to CPU 1 only: CPU 1 fills, then the fallback to all
        // online CPUs places the rest on CPU 0 with the affinity broken.
        let mut params = one_device(300, 2, true);
        params.devices[0].affinity = vec![CpuId(1)];
        let (p, _) = Platform::new(&params, 1);
        let cap1 = u64::from(p.cpus[1].vector_capacity);
        assert_eq!(counter(&p, "x86.affinity_broken_count"), 300 - cap1);
        assert_eq!(counter(&p, "setup.queue_routed_count"), 300);
    }

    #[test]
    fn conservation_holds_mid_flight() {
        let mut params = one_device(64, 4, true);
        params.devices[0].arrival = ArrivalParams::Poisson { rate_per_s: 200_000.0 };
        let (mut p, mut q) = Platform::new(&params, 9);
        for end_ns in [1_000u64, 10_000, 123_457, 1_000_000] {
            run_to(&mut p, &mut q, end_ns * 1000);
            let c = p.conservation(&q);
            assert!(c.holds(), "{c:?}");
        }
        let c = p.conservation(&q);
        assert!(c.delivered > 0 && c.at_cpu + c.in_transit > 0, "{c:?}");
    }

    #[test]
    fn managed_interrupts_shut_down_and_restart_with_their_cpu() {
        for remap in [false, true] {
            let mut params = one_device(4, 4, remap);
            params.devices[0].irq_mode = IrqMode::Managed;
            params.devices[0].arrival = ArrivalParams::Poisson { rate_per_s: 1_000_000.0 };
            params.actions = vec![
                Action { at: SimTime::from_ps(100_000_000), kind: ActionKind::CpuOffline(CpuId(2)) },
                Action { at: SimTime::from_ps(200_000_000), kind: ActionKind::CpuOnline(CpuId(2)) },
            ];
            let (mut p, mut q) = Platform::new(&params, 3);
            run_to(&mut p, &mut q, 150_000_000);
            assert_eq!(counter(&p, "x86.managed_shutdown_count"), 1);
            // Queue 2's entry is masked: its raises wait in the pending bit (one) or merge.
            assert!(counter(&p, "interrupt.merged_pending_count") > 0);
            let c = p.conservation(&q);
            assert!(c.holds() && c.pending == 1, "{c:?}");
            run_to(&mut p, &mut q, 300_000_000);
            assert_eq!(counter(&p, "x86.managed_restart_count"), 1);
            let c = p.conservation(&q);
            assert!(c.holds() && c.pending == 0, "{c:?}");
            assert_eq!(counter(&p, "interrupt.lost_count"), 0, "remap={remap}");
            p.vector_domain().check_invariants().unwrap();
        }
    }

    #[test]
    fn a_move_holds_two_vectors_until_the_first_interrupt_on_the_new_one() {
        let mut params = one_device(1, 4, true);
        params.devices[0].affinity = vec![CpuId(1)];
        params.devices[0].arrival = ArrivalParams::Constant { rate_per_s: 1_000_000.0 };
        params.actions = vec![Action {
            at: SimTime::from_ps(10_000_000),
            kind: ActionKind::SetAffinity { device: DeviceId(0), cpus: vec![CpuId(3)] },
        }];
        let (mut p, mut q) = Platform::new(&params, 1);
        let allocated = |p: &Platform| (0..4).map(|c| p.domain.matrix().allocated(CpuId(c))).sum::<u32>();
        run_to(&mut p, &mut q, 10_000_000);
        assert_eq!(allocated(&p), 2, "old and new vector held during the move");
        run_to(&mut p, &mut q, 20_000_000);
        assert_eq!(allocated(&p), 1, "the first interrupt on the new vector freed the old one");
        assert_eq!(counter(&p, "x86.move_completed_count"), 1);
        assert_eq!(p.queues[0].target.map(|t| t.0), Some(CpuId(3)));
        assert!(p.conservation(&q).holds());
    }

    #[test]
    fn multi_msi_needs_remapping_else_one_shared_vector() {
        for remap in [false, true] {
            let mut params = one_device(8, 4, remap);
            params.devices[0].store = StoreKind::Msi;
            params.devices[0].arrival = ArrivalParams::Poisson { rate_per_s: 100_000.0 };
            let (mut p, mut q) = Platform::new(&params, 2);
            run_to(&mut p, &mut q, 1_000_000_000);
            let vectors: u32 = (0..4).map(|c| p.domain.matrix().allocated(CpuId(c))).sum();
            assert_eq!(counter(&p, "setup.multi_msi_fallback_count"), u64::from(!remap));
            assert_eq!(vectors, if remap { 8 } else { 1 }, "remap={remap}");
            // Every queue still raises and is handled, through the shared vector if need be.
            assert_eq!(counter(&p, "setup.queue_routed_count"), 8);
            assert!(counter(&p, "interrupt.delivered_count") > 0);
            assert!(p.conservation(&q).holds());
        }
    }

    #[test]
    fn adis_share_the_device_ims_slots() {
        // Three ADIs of 40 queues each draw from one pool of 100 slots: 20 queues go without.
        let mut params = one_device(40, 4, true);
        params.ims_pools = vec![ImsPoolParams { name: "dsa".into(), slots: 100 }];
        let mut adi = params.devices[0].clone();
        adi.store = StoreKind::ImsDevice;
        adi.ims_pool = Some(0);
        params.devices =
            (0..3u32).map(|i| DeviceParams { name: format!("adi{i}"), pasid: Some(i + 1), ..adi.clone() }).collect();
        let (p, _) = Platform::new(&params, 1);
        assert_eq!(counter(&p, "setup.ims_slot_fail_count"), 20);
        assert_eq!(counter(&p, "setup.queue_routed_count"), 100);
        let pool = p.resources().into_iter().find(|r| r.name == "pci.ims_slots_per_device").unwrap();
        assert_eq!((pool.used_max, pool.limit), (100, 100));
    }

    #[test]
    fn queue_memory_ims_updates_land_after_the_command_latency() {
        let mut params = one_device(1, 4, false);
        params.devices[0].store = StoreKind::ImsQueue;
        params.devices[0].store_update_latency = SimDuration::from_us(5);
        params.devices[0].affinity = vec![CpuId(1)];
        params.devices[0].arrival = ArrivalParams::Constant { rate_per_s: 1_000_000.0 };
        params.actions = vec![Action {
            at: SimTime::from_ps(10_000_000),
            kind: ActionKind::SetAffinity { device: DeviceId(0), cpus: vec![CpuId(2)] },
        }];
        let (mut p, mut q) = Platform::new(&params, 1);
        run_to(&mut p, &mut q, 14_000_000);
        let dest = |p: &Platform| match msi::decode(p.devices[0].store.entry(0).address, 0) {
            MsiMessage::Compat { dest_apic_id, .. } => dest_apic_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(dest(&p), 1, "4us after the change the old message is still in the store");
        assert_eq!(counter(&p, "x86.move_completed_count"), 0, "nothing reached the new vector yet");
        run_to(&mut p, &mut q, 20_000_000);
        assert_eq!(dest(&p), 2);
        assert_eq!(counter(&p, "x86.move_completed_count"), 1);
        assert!(p.conservation(&q).holds());
    }

    #[test]
    fn each_remapping_unit_has_its_own_irte_table() {
        // Two devices behind two DRHDs: a 16-entry table each holds 16 interrupts, not 32.
        let mut params = one_device(20, 4, true);
        let iommu = params.remapping.as_mut().unwrap();
        iommu.units = 2;
        iommu.table_entries = 16;
        let d = params.devices[0].clone();
        params.devices = vec![
            DeviceParams { name: "a".into(), iommu_unit: 0, ..d.clone() },
            DeviceParams { name: "b".into(), iommu_unit: 1, requester_id: 0x200, ..d },
        ];
        let (mut p, mut q) = Platform::new(&params, 1);
        assert_eq!(counter(&p, "setup.irte_alloc_fail_count"), 2 * (20 - 16));
        let irtes = p.resources().into_iter().find(|r| r.name == "iommu.irtes_per_iommu").unwrap();
        assert_eq!((irtes.instance_count, irtes.used_max, irtes.limit), (2, 16, 16));
        run_to(&mut p, &mut q, sim::PS_PER_S / 100);
        assert!(counter(&p, "interrupt.delivered_count") > 0);
        assert_eq!(counter(&p, "interrupt.lost_count"), 0, "each device's handles resolve in its own unit's table");
    }

    #[test]
    fn cached_irtes_are_looked_up_faster() {
        let mut params = one_device(2, 2, true);
        let iommu = params.remapping.as_mut().unwrap();
        iommu.cache = Some(IrteCacheParams { entries: 1, hit_latency: SimDuration::from_ns(20) });
        // One queue: after the first miss every lookup hits.
        params.devices[0].queue_count = 1;
        let (mut p, mut q) = Platform::new(&params, 1);
        run_to(&mut p, &mut q, sim::PS_PER_S / 100);
        assert_eq!(counter(&p, "iommu.irte_cache_miss_count"), 1);
        let hits = counter(&p, "iommu.irte_cache_hit_count");
        assert!(hits > 5);
        let remap = p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == "latency.remap_ps").unwrap();
        assert_eq!((remap.min, remap.max, remap.sum), (20_000, 100_000, u128::from(hits) * 20_000 + 100_000));
    }

    #[test]
    fn a_mass_affinity_change_queues_on_the_global_irte_lock() {
        // 64 interrupts moved at once: each update holds the lock for write + invalidation,
        // so update k waits k * hold (k = 0..63), as modify_irte serialises on irq_2_ir_lock.
        let mut params = one_device(64, 8, true);
        let hold_ns = 200 + 2_000;
        params.remapping.as_mut().unwrap().update =
            IrteUpdateParams { irte_write: SimDuration::from_ns(200), iec_invalidation: SimDuration::from_ns(2_000) };
        params.devices[0].affinity = (0..4).map(CpuId).collect();
        params.actions = vec![Action {
            at: SimTime::from_ps(1_000_000),
            kind: ActionKind::SetAffinity { device: DeviceId(0), cpus: (4..8).map(CpuId).collect() },
        }];
        let (mut p, mut q) = Platform::new(&params, 1);
        run_to(&mut p, &mut q, 400_000_000);
        assert_eq!(counter(&p, "iommu.irte_update_count"), 64);
        let h = |name: &str| p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == name).unwrap();
        let wait = h("latency.irte_lock_wait_ps");
        assert_eq!((wait.min, wait.max), (0, 63 * hold_ns * 1000));
        assert_eq!(wait.sum, (0..64u128).map(|k| k * u128::from(hold_ns) * 1000).sum::<u128>());
        assert_eq!(h("latency.irte_update_ps").max, 64 * hold_ns * 1000);
        assert!(p.conservation(&q).holds());
        assert_eq!(counter(&p, "interrupt.lost_count"), 0);
        assert!(p.queues.iter().all(|queue| queue.target.is_some_and(|(cpu, _)| cpu.0 >= 4)));
    }

    #[test]
    fn arm_its_delivers_lpis_through_the_translation() {
        let (mut p, mut q) = Platform::new(&arm_its(1, 2), 1);
        run_to(&mut p, &mut q, sim::PS_PER_S / 100);
        let e2e =
            p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == "latency.end_to_end_ps").unwrap();
        let expected = (500 + 80 + 1_000 + 50) * 1000;
        assert_eq!((e2e.min, e2e.max), (expected, expected));
        assert!(e2e.count > 5 && p.conservation(&q).holds());
        let lpis = p.resources().into_iter().find(|r| r.name == "arm.lpis").unwrap();
        // its_pci_msi_prepare rounds to a power of two (32 at least only for DeviceID 0).
        assert_eq!((lpis.used_max, lpis.limit), (1, 57_344));
        assert!(p.tables().iter().all(|(name, _)| !name.contains("x86")), "no x86 matrix on ARM");
    }

    #[test]
    fn gicv2m_runs_out_after_its_64_spis() {
        let mut params = arm_its(128, 4);
        params.gic.as_mut().unwrap().msi = GicMsiParams::V2m { spis: 64, latency: SimDuration::from_ns(60) };
        let (mut p, mut q) = Platform::new(&params, 1);
        assert_eq!(counter(&p, "setup.v2m_spi_exhausted_count"), 64);
        assert_eq!(counter(&p, "setup.queue_routed_count"), 64);
        run_to(&mut p, &mut q, sim::PS_PER_S / 100);
        assert!(counter(&p, "interrupt.delivered_count") > 0 && p.conservation(&q).holds());
    }

    #[test]
    fn arm_affinity_changes_are_movi_round_trips_on_the_command_queue() {
        let mut params = arm_its(8, 8);
        params.devices[0].affinity = (0..4).map(CpuId).collect();
        params.actions = vec![Action {
            at: SimTime::from_ps(1_000_000),
            kind: ActionKind::SetAffinity { device: DeviceId(0), cpus: (4..8).map(CpuId).collect() },
        }];
        let (mut p, mut q) = Platform::new(&params, 1);
        run_to(&mut p, &mut q, 100_000_000);
        assert_eq!(counter(&p, "arm.its_command_round_trip_count"), 8, "one MOVI (+SYNC) per event");
        assert!(p.queues.iter().all(|queue| queue.target.is_some_and(|(cpu, _)| cpu.0 >= 4)));
        let cmd =
            p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == "latency.its_command_ps").unwrap();
        assert_eq!(cmd.count, 8);
        assert!(cmd.min >= 500_000, "a MOVI + SYNC takes at least command + sync: {}", cmd.min);
        assert!(p.conservation(&q).holds());
        assert_eq!(counter(&p, "interrupt.lost_count"), 0);
    }

    #[test]
    fn the_lpi_budget_binds_before_any_per_cpu_limit_on_arm() {
        // 57,344 LPIs, each 2,048-vector function takes a 2,048 block: 28 fit, the rest fail.
        let mut params = arm_its(2048, 4);
        params.devices[0].arrival = ArrivalParams::Constant { rate_per_s: 10.0 };
        let device = params.devices[0].clone();
        params.devices = (0..30u16)
            .map(|i| DeviceParams { name: format!("f{i}"), requester_id: 0x100 * (i + 1), ..device.clone() })
            .collect();
        let (p, _) = Platform::new(&params, 1);
        let fit = 57_344 / 2048;
        assert_eq!(counter(&p, "setup.queue_routed_count"), fit * 2048);
        assert_eq!(counter(&p, "setup.lpi_exhausted_count"), (30 - fit) * 2048);
    }

    /// Two saturating MSI sources pinned to one CPU, with the costs fitted to Jacob Pan's
    /// posted-MSI figures (`x86::posted_msi`): handler calls per second in a window.
    fn posted_msi_saturation(posted: Option<PostedMsiConfig>) -> f64 {
        let fit = crate::x86::posted_msi::PostedMsiParams::fit_pan_2023();
        let mut params = one_device(1, 1, true);
        params.remapping.as_mut().unwrap().posted_msi = posted;
        params.cpu_costs = CpuCostParams { irq_entry_exit: fit.irq_entry_exit, notification: fit.notification };
        let d = &mut params.devices[0];
        d.service = DurationDist::constant(fit.handler);
        d.eoi_cost = fit.eoi;
        d.arrival = ArrivalParams::Poisson { rate_per_s: 100e6 };
        d.msi_write_latency = SimDuration::ZERO;
        params.remapping.as_mut().unwrap().lookup_latency = SimDuration::ZERO;
        params.devices =
            vec![DeviceParams { name: "wq0".into(), ..d.clone() }, DeviceParams { name: "wq1".into(), ..d.clone() }];
        let (mut p, mut q) = Platform::new(&params, 1);
        run_to(&mut p, &mut q, 100_000_000); // 100 us warm-up
        let before = counter(&p, "interrupt.delivered_count");
        run_to(&mut p, &mut q, 1_100_000_000); // a 1 ms window
        let c = p.conservation(&q);
        assert!(c.holds(), "{c:?}");
        (counter(&p, "interrupt.delivered_count") - before) as f64 / 1e-3
    }

    #[test]
    fn posted_msi_reproduces_the_published_gap_by_its_own_mechanism() {
        use crate::x86::posted_msi::{CapSemantics, MsiMode, PostedMsiParams};
        let fit = PostedMsiParams::fit_pan_2023();
        let remappable = posted_msi_saturation(None);
        let posted = posted_msi_saturation(Some(PostedMsiConfig { loop_cap: 3, pir_scan: fit.pir_scan }));
        // The platform agrees with the posted-MSI model's closed form (Linux 6.10+ cap
        // semantics), to within the window's edge effects (0.5%).
        let merged = fit.with_loop_cap(3, CapSemantics::Merged);
        let expected_remappable = merged.saturation_irq_per_s(MsiMode::Remappable, 2);
        let expected_posted = merged.saturation_irq_per_s(MsiMode::Posted, 2);
        assert!((remappable / expected_remappable - 1.0).abs() < 0.005, "{remappable} vs {expected_remappable}");
        assert!((posted / expected_posted - 1.0).abs() < 0.005, "{posted} vs {expected_posted}");
        // Direction and rough size of the published gap (5.157 -> 8.987 M IRQ/s, 1.74x).
        let ratio = posted / remappable;
        assert!((1.5..=2.2).contains(&ratio), "posted/remappable {ratio}");
    }

    #[test]
    fn posted_to_a_halted_vcpu_takes_the_wakeup_path() {
        // A rare interrupt always finds its vCPU halted: wake-up IRQ + one list entry + kick
        // + scheduling to VM entry, then the guest handler; the vCPU halts again after.
        let (mut p, mut q) = Platform::new(&with_guest(one_device(1, 2, true), 1, &[1]), 1);
        run_to(&mut p, &mut q, sim::PS_PER_S / 100);
        let c = posted_costs();
        let wake = c.wakeup_irq_entry + c.wakeup_list_entry + c.kick + c.wake_to_vm_entry;
        let expected = (SimDuration::from_ns(500 + 100 + 1_000 + 50) + wake).as_ps();
        let e2e =
            p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == "latency.end_to_end_ps").unwrap();
        assert_eq!((e2e.min, e2e.max), (expected, expected));
        let delivered = counter(&p, "interrupt.delivered_count");
        assert!(delivered > 5);
        assert_eq!(counter(&p, "kvm.posted_wakeup_count"), delivered);
        assert_eq!(counter(&p, "kvm.hlt_exit_count"), delivered, "it halts after every interrupt");
        assert!(p.conservation(&q).holds());
        // VFIO's host vector is still taken on the vCPU's pCPU.
        assert_eq!(p.domain.matrix().allocated(CpuId(1)), 1);
    }

    #[test]
    fn the_wakeup_handler_walks_every_vcpu_blocked_on_the_pcpu() {
        // Four vCPUs on one pCPU, all halted: each wake-up walks the whole list.
        let (mut p, mut q) = Platform::new(&with_guest(one_device(1, 2, true), 4, &[1]), 1);
        run_to(&mut p, &mut q, sim::PS_PER_S / 100);
        let wakeups = counter(&p, "kvm.posted_wakeup_count");
        assert!(wakeups > 0);
        assert_eq!(counter(&p, "kvm.wakeup_list_entries_walked_count"), 4 * wakeups);
    }

    #[test]
    fn a_busy_vcpu_is_notified_without_exits_and_a_preempted_one_accumulates() {
        let mut params = with_guest(one_device(4, 2, true), 1, &[1]);
        params.devices[0].arrival = ArrivalParams::Poisson { rate_per_s: 300_000.0 };
        params.guests[0].host_bursts = Some((SimDuration::from_us(100), SimDuration::from_us(20)));
        let (mut p, mut q) = Platform::new(&params, 7);
        run_to(&mut p, &mut q, sim::PS_PER_S / 50);
        assert!(counter(&p, "kvm.posted_notified_running_count") > 0, "interrupts reach the running vCPU");
        assert!(counter(&p, "kvm.posted_accumulated_count") > 0, "interrupts wait in the PIR of a preempted vCPU");
        assert!(counter(&p, "kvm.preemption_count") > 0);
        let c = p.conservation(&q);
        assert!(c.holds(), "{c:?}");
        assert_eq!(counter(&p, "interrupt.lost_count"), 0);
        // A preemption of up to tens of microseconds shows in the tail.
        let e2e =
            p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == "latency.end_to_end_ps").unwrap();
        assert!(e2e.max > 20_000_000, "max {}", e2e.max);
    }

    #[test]
    fn interrupts_that_cannot_be_posted_fall_back_to_remapped_delivery() {
        let guest_msi = |mode, destinations, vector_hashing| GuestMsiParams { mode, destinations, vector_hashing };
        let c = posted_costs();
        let wake = c.wakeup_irq_entry + c.wakeup_list_entry + c.kick + c.wake_to_vm_entry;
        let base = SimDuration::from_ns(500 + 100 + 1_000 + 50) + wake;
        let forward = SimDuration::from_ns(1_500);
        for (msi, expected_fallback) in [
            (guest_msi(MsiDeliveryMode::LowestPriority, 2, false), true),
            (guest_msi(MsiDeliveryMode::LowestPriority, 2, true), false),
            (guest_msi(MsiDeliveryMode::Fixed, 2, false), true),
            (GuestMsiParams::UNICAST, false),
        ] {
            let mut params = with_guest(one_device(1, 2, true), 1, &[1]);
            params.devices[0].guest_msi = msi;
            let (mut p, mut q) = Platform::new(&params, 1);
            run_to(&mut p, &mut q, sim::PS_PER_S / 100);
            let delivered = counter(&p, "interrupt.delivered_count");
            assert!(delivered > 5, "{msi:?}");
            assert_eq!(
                counter(&p, "kvm.remapped_fallback_count"),
                if expected_fallback { delivered } else { 0 },
                "{msi:?}"
            );
            // The fallback adds the host's forwarding before the same wake-up path.
            let expected = (if expected_fallback { base + forward } else { base }).as_ps();
            let e2e =
                p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == "latency.end_to_end_ps").unwrap();
            assert_eq!((e2e.min, e2e.max), (expected, expected), "{msi:?}");
            assert!(p.conservation(&q).holds());
        }
    }

    fn arm_guest(version: GicVersion) -> PlatformParams {
        let mut params = with_guest(arm_its(1, 2), 1, &[1]);
        params.remapping = None;
        params.gic.as_mut().unwrap().version = version;
        params
    }

    #[test]
    fn gicv4_doorbell_wakes_a_halted_vcpu() {
        for version in [GicVersion::V4_0, GicVersion::V4_1] {
            let (mut p, mut q) = Platform::new(&arm_guest(version), 1);
            run_to(&mut p, &mut q, sim::PS_PER_S / 100);
            let c = posted_costs();
            let wake = c.wakeup_irq_entry + c.kick + c.wake_to_vm_entry;
            let expected = (SimDuration::from_ns(500 + 80 + 1_000 + 50) + wake).as_ps();
            let e2e =
                p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == "latency.end_to_end_ps").unwrap();
            assert_eq!((e2e.min, e2e.max), (expected, expected), "{version:?}");
            let delivered = counter(&p, "interrupt.delivered_count");
            assert!(delivered > 5);
            assert_eq!(counter(&p, "kvm.vlpi_doorbell_count"), delivered, "{version:?}");
            assert_eq!(counter(&p, "kvm.hlt_exit_count"), delivered);
            assert!(p.conservation(&q).holds());
        }
    }

    #[test]
    fn gicv4_injects_directly_into_a_resident_vpe_and_holds_vlpis_of_a_preempted_one() {
        let mut params = arm_guest(GicVersion::V4_1);
        params.devices[0].queue_count = 4;
        params.devices[0].arrival = ArrivalParams::Poisson { rate_per_s: 300_000.0 };
        params.guests[0].host_bursts = Some((SimDuration::from_us(100), SimDuration::from_us(20)));
        let (mut p, mut q) = Platform::new(&params, 7);
        run_to(&mut p, &mut q, sim::PS_PER_S / 50);
        assert!(counter(&p, "kvm.vlpi_direct_count") > 0);
        assert!(counter(&p, "kvm.vlpi_pending_count") > 0, "non-resident without a doorbell while preempted");
        assert!(counter(&p, "kvm.preemption_count") > 0);
        let c = p.conservation(&q);
        assert!(c.holds(), "{c:?}");
        assert_eq!(counter(&p, "interrupt.lost_count"), 0);
    }

    #[test]
    fn repeated_hotplug_actions_are_harmless() {
        let mut params = one_device(4, 4, false);
        let at = |ps, kind| Action { at: SimTime::from_ps(ps), kind };
        params.actions = vec![
            at(1_000_000, ActionKind::CpuOffline(CpuId(2))),
            at(2_000_000, ActionKind::CpuOffline(CpuId(2))),
            at(3_000_000, ActionKind::CpuOnline(CpuId(2))),
            at(4_000_000, ActionKind::CpuOnline(CpuId(2))),
            at(5_000_000, ActionKind::CpuOffline(CpuId(0))),
        ];
        let (mut p, mut q) = Platform::new(&params, 1);
        run_to(&mut p, &mut q, 10_000_000);
        assert_eq!(counter(&p, "x86.unplug_busy_count"), 1);
        assert!(p.conservation(&q).holds());
        p.vector_domain().check_invariants().unwrap();
    }

    #[test]
    fn offline_migrates_non_managed_and_in_flight_interrupts_are_retriggered() {
        let mut params = one_device(8, 4, true);
        params.devices[0].arrival = ArrivalParams::Poisson { rate_per_s: 2_000_000.0 };
        params.actions = vec![Action { at: SimTime::from_ps(50_000_000), kind: ActionKind::CpuOffline(CpuId(1)) }];
        let (mut p, mut q) = Platform::new(&params, 5);
        run_to(&mut p, &mut q, 200_000_000);
        assert_eq!(counter(&p, "x86.migrated_count"), 2, "queues 1 and 5 were on CPU 1");
        let c = p.conservation(&q);
        assert!(c.holds(), "{c:?}");
        assert_eq!(counter(&p, "interrupt.lost_count"), 0);
        assert!(p.queues.iter().all(|queue| queue.target.map(|t| t.0) != Some(CpuId(1))));
        p.vector_domain().check_invariants().unwrap();
    }
}
