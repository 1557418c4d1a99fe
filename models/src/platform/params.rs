//! The platform's parameters: what a validated scenario sets, holding each model's own
//! parameter structs as they are (`RemapParams`' unsourced values, `ItsCosts`,
//! `PostedParams`, the kernel), plus how queues are spread over CPUs.

use sim::{DurationDist, SimDuration, SimTime};

use super::guest::provision::ProvisionParams;
use crate::arm::its::{GicVersion, ItsCosts};
use crate::ids::{CpuId, DeviceId};
use crate::iommu::posted::{
    ApicMode, GuestDestination, MsiDeliveryMode, Postability, PostedParams, VectorHashing, is_postable,
};
use crate::iommu::remap::RemapParams;
use crate::kernel::KernelVersion;
use crate::pci::store::{ImsMaskedRaise, StoreKind};
use crate::workload::ArrivalParams;
use crate::x86::vector_matrix::KernelEra;

/// Interrupt remapping: the VT-d model's own parameters (Linux's settings with the
/// scenario's costs: `RemapParams::linux_defaults`), and host posted MSI.
#[derive(Debug, Clone, PartialEq)]
pub struct IommuParams {
    /// The remapping units (DRHDs), as `iommu::remap` takes them.
    pub remap: RemapParams,
    /// Host posted MSI (Linux 6.10+, `intremap=posted_msi`); `None`: remappable mode.
    pub posted_msi: Option<PostedMsiConfig>,
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
        /// vPE ID bits (GICv4.1 `GICD_TYPER2.VID + 1`); `None`: Linux's 16
        /// (`ITS_MAX_VPEID_BITS`), and no `arm.vpe_ids` resource row.
        vpe_id_bits: Option<u32>,
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
    /// Host work preempting the vCPUs: (mean gap, mean length) of bursts on each of its
    /// pCPUs: one renewal process per pCPU, not per vCPU (where guests share a pCPU, the
    /// first guest with bursts decides).
    pub host_bursts: Option<(SimDuration, SimDuration)>,
    /// Posting and wake-up costs.
    pub posted: PostedParams,
    /// CPU time on the pCPU for an interrupt that could not be posted: VFIO's host handler
    /// and KVM's injection (irqfd), before the vCPU is notified.
    pub remapped_forward: SimDuration,
    /// KVM's interrupt virtualization, the host scheduler and the VM exits' costs.
    pub kvm: KvmParams,
    /// vCPU migration at a rate (the control plane as a workload); `None`: vCPUs stay on
    /// their pCPUs.
    pub migration: Option<MigrationParams>,
    /// A guest IPI workload (x86); `None`: the vCPUs send no IPIs.
    pub ipi: Option<IpiParams>,
}

/// Guest IPIs: each vCPU sends IPIs at a Poisson rate (its own stream,
/// `guest/<name>/vcpu/<v>/ipi`), its k-th to the guest's vCPU `(v + 1 + k mod (n - 1)) mod n`
/// (round robin over the others). The send is an x2APIC ICR write: an MSR_WRITE exit of
/// `icr_exit` unless [`KvmParams::ipiv`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IpiParams {
    /// IPIs each vCPU sends per second.
    pub rate: f64,
    /// The sender's MSR_WRITE exit without IPIv on the pCPU (exit, KVM's
    /// `handle_fastpath_set_msr_irqoff` → `kvm_x2apic_icr_write` and the posting, entry).
    pub icr_exit: SimDuration,
}

/// vCPU migration at a rate: every `every` the host scheduler moves the guest's next vCPU
/// (round robin) to the next CPU of its pCPU set (ascending, wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationParams {
    /// Time between two migrations (of successive vCPUs).
    pub every: SimDuration,
    /// The scheduler's work on each of the two pCPUs (the source's dequeue, the target's
    /// enqueue and switch): host work there (no published figure).
    pub cost: SimDuration,
}

/// KVM and the host scheduler for one guest's vCPUs: APICv and PV EOI, the time slice of
/// vCPUs sharing a pCPU, and what each VM exit costs on the pCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvmParams {
    /// APICv (virtual-interrupt delivery and posted interrupts). Without it nothing is
    /// posted: every assigned interrupt is remapped to VFIO's host vector and injected by
    /// KVM, and every EOI exits.
    pub apicv: bool,
    /// PV EOI (`MSR_KVM_PV_EOI_EN`): without APICv, the EOI exit is skipped when nothing
    /// else is pending (`apic_sync_pv_eoi_to_guest`).
    pub pv_eoi: bool,
    /// The host scheduler's slice for vCPUs sharing a pCPU (EEVDF `sysctl_sched_base_slice`).
    pub slice: SimDuration,
    /// A woken vCPU preempts the vCPU running on its pCPU (wake-up preemption) instead of
    /// waiting for its slice to end.
    pub wakeup_preemption: bool,
    /// Each exit's cost on the pCPU: exit, KVM's handling, entry.
    pub exit_costs: ExitCosts,
    /// The guest's local APIC mode: without APICv its EOI is a WRMSR (x2APIC, an MSR_WRITE
    /// exit) or a store to the APIC page (xAPIC, an APIC_ACCESS exit).
    pub apic_mode: ApicMode,
    /// IPI virtualization (Sapphire Rapids and later, KVM's `enable_ipiv`; needs APICv): a
    /// guest's unicast IPI is posted by the CPU through the PID-pointer table, with no exit.
    pub ipiv: bool,
}

/// What one VM exit of each reason costs on the pCPU (exit, handling and entry), besides
/// the host work it makes room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitCosts {
    /// EXTERNAL_INTERRUPT: a host interrupt on the pCPU.
    pub external_interrupt: SimDuration,
    /// HLT: the idle vCPU blocks (`kvm_vcpu_halt` and the switch away).
    pub hlt: SimDuration,
    /// The EOI write without APICv: an MSR_WRITE exit (x2APIC) or an APIC_ACCESS exit
    /// (xAPIC), whichever the guest's [`KvmParams::apic_mode`] makes.
    pub eoi: SimDuration,
    /// Host work (a burst, another vCPU's slice or wake-up) takes the pCPU.
    pub preemption: SimDuration,
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
    /// CONFIG_HZ, timer ticks per second (the cleanup timer of moved vectors from 6.6).
    pub hz: u32,
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
    /// What the device does with a raise on a masked IMS slot (IMS has no architected
    /// pending bit); MSI and MSI-X ignore it (their pending bit latches).
    pub ims_masked_raise: ImsMaskedRaise,
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
    /// How the guest's interrupts are provisioned (assigned devices); `None`: every queue
    /// programmed when the VM starts, for free.
    pub provisioning: Option<ProvisionParams>,
    /// When the function is hot-added (QEMU `device_add`, the guest's PCI hotplug): its
    /// queues raise from then on and its provisioning starts then (its `start` after it);
    /// `None`: present at boot. Only with `provisioning`.
    pub hot_add_at: Option<SimTime>,
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
    /// How a host CPU queues the interrupts that reach it (x86; ARM is always FIFO).
    pub queueing: HostQueueing,
    /// Every CPU on the event path, none on Lindley's recursion (`cpu::lindley`): the same
    /// answers in more events, for tests that compare the two.
    pub event_path_only: bool,
}

/// How a host CPU queues the interrupts that reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostQueueing {
    /// The LAPIC: one pending bit per vector (raises merge), highest vector first.
    Lapic,
    /// Every raise its own job, in arrival order: the M/G/1 queueing oracle.
    Fifo,
}

impl PlatformParams {
    /// Whether any CPU may take Lindley's recursion (`cpu::lindley`): FIFO CPUs on x86
    /// without a remapping unit, guests or actions. Which CPUs do then depends on the routes
    /// (each CPU whose raising queues share one MSI write latency).
    pub fn recursion_possible(&self) -> bool {
        !self.event_path_only
            && self.gic.is_none()
            && self.queueing == HostQueueing::Fifo
            && self.remapping.is_none()
            && self.guests.is_empty()
            && self.actions.is_empty()
    }

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
        // The CPUs i with ⌊i·count/n⌋ = q, i.e. q·n ≤ i·count < (q+1)·n: a contiguous range,
        // found directly (one pass over all CPUs per queue made setup quadratic).
        let first = (q * n).div_ceil(count);
        let end = ((q + 1) * n).div_ceil(count);
        cpus[first as usize..end as usize].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_groups_are_the_cpus_whose_scaled_index_is_the_queue() {
        // Against the definition, for every split of up to 40 CPUs.
        for n in 1..=40u32 {
            let cpus: Vec<CpuId> = (0..n).map(CpuId).collect();
            for count in 1..n {
                for q in 0..count {
                    let by_definition: Vec<CpuId> = (0..n)
                        .filter(|&i| u64::from(i) * u64::from(count) / u64::from(n) == u64::from(q))
                        .map(CpuId)
                        .collect();
                    assert_eq!(spread_mask(&cpus, q, count), by_definition, "n={n} count={count} q={q}");
                }
            }
        }
    }
}
