//! Timed provisioning of an assigned function's interrupts: the guest driver brings its
//! vectors up one by one, each trapped write exits to the userspace VMM, and VFIO and the
//! host set each vector up on the global IRTE lock; a vector is usable only when that is
//! done. Modes: MSI-X trapped (the VFIO/QEMU path) on a host with or without dynamic
//! MSI-X; guest MSI-X over host IMS; IMS trapped; IMS through a hypercall
//! (docs/provisioning.md).
//!
//! # What is modelled
//! - The guest (Linux's order: `msix_capability_init`, then per vector the message write
//!   and the unmask of `request_irq`): per vector, `message_exits` trapped accesses (the
//!   three dword writes of address low, high and data, and the read that flushes them:
//!   `pci_write_msg_msix`) and the unmask write, each an MMIO exit handled by the userspace
//!   VMM (`kvm.exit.ept_misconfig`). The vCPU waits for each exit, so the vectors come
//!   up one after the other.
//! - QEMU on the unmask (`msix_handle_mask_update` → `vfio_msix_vector_do_use`): a KVM
//!   GSI route for the vector (`kvm_irqchip_add_msi_route` and `kvm_irqchip_commit_routes`,
//!   `route_update`), from the guest's routing table (`gsi_routes`, 4,096 on x86 =
//!   `KVM_MAX_IRQ_ROUTES`; a route per enabled vector as QEMU does, or per advertised entry
//!   at the first write as VMMs that route the whole table do; a full table leaves the
//!   vector without interrupts, counted); then one `VFIO_DEVICE_SET_IRQS` (`set_irqs`).
//! - The host: with dynamic MSI-X (Linux 6.5+ without `VFIO_IRQ_INFO_NORESIZE`, QEMU 8.2+),
//!   one vector set up per ioctl (`vfio_msix_vector_do_use` → `vfio_set_irq_signaling` for
//!   `nr`). Without it (hosts before 6.5, arm64 before 7.3), a vector beyond the enabled count
//!   makes QEMU disable the whole MSI-X index (`vfio_disable_irqindex`) and enable `nr + 1`
//!   vectors (`vfio_enable_vectors`): every enabled vector is released and set up again, so
//!   N vectors cost N(N+1)/2 setups. While VFIO tears the old vectors down the function's
//!   MSI-X is disabled: raises are lost and pending bits dropped (counted, with the
//!   window's length). Each setup and release is the chip's (`X86Chip::vfio_setup`,
//!   `vfio_release`): host vector, IRTE allocation and writes under the global lock with
//!   their IEC flush, the posted-IRTE bypass; plus `request_irq` / `free_irq` CPU time.
//! - The guest's order (`GuestOrder`): Linux's, or the whole table written and unmasked
//!   before MSI-X is enabled (one more exit for the enable), after which QEMU either uses
//!   each unmasked vector in turn (as if unmasked one by one, without the guest's exits) or,
//!   with `qemu_batch_enable` (QEMU's deferred KVM routing at MSI-X enable), routes them all,
//!   commits once and enables them with one `VFIO_DEVICE_SET_IRQS`: N setups even without
//!   dynamic MSI-X (claim C14).
//! - Before its vector is usable a queue's entry is masked: raises set its pending bit and
//!   merge into it (QEMU's emulated PBA while a vector is masked: nothing is lost), and the
//!   pending message is sent when the vector is unmasked.
//! - The control plane after setup (`masking`): every period the guest masks the next
//!   vector (round robin) and unmasks it a hold later, each a trapped write; QEMU moves
//!   VFIO's trigger to its own eventfd and back (`vfio_msix_vector_release`, then `_use`
//!   with a route update), which the host does with `free_irq` and `request_irq` and the
//!   bypass's IRTE rewrite (remapped, then posted again) on the global lock. Raises while
//!   masked wait in the pending bit (QEMU's emulated PBA).
//! - `ImsHypercall` with `masking`: the IMS entry's own mask bit, written by the guest
//!   (`ImsMaskPath::Device`: no exit; queue memory, one device command each) or by the host
//!   in a hypercall (`ImsMaskPath::Hypercall`: one `vmcall` each); no IRTE write.
//! - Affinity changes after setup (`affinity`, instead of `masking`): every period the
//!   guest moves the next vector (round robin) to the next vCPU with a vector there
//!   (`Guests::next_affinity`). Trapped: Linux's `__pci_write_msi_msg` masks the entry
//!   around the message, so a change is the masking cycle with the message's
//!   `message_exits` written while masked and the bypass posted to the new vCPU on the
//!   unmask (`vmx_pi_update_irte`). `ImsHypercall`: one `vmcall` in which KVM updates the
//!   route and the posted IRTE (one write), nothing masked. Raises during a change wait in
//!   the pending bit (trapped) or, translated before the IRTE write, go to the old vCPU,
//!   whose vector stays registered: none is lost. On ARM (`Step::MoviWrite`): a MOVI on
//!   the guest's virtual ITS, five MMIO exits handled in the kernel (`kvm.exit.dabt_low`:
//!   three `GITS_CREADR` reads, the `GITS_CWRITER` write in which KVM's vgic-its has the
//!   host ITS send VMOVI + VSYNC, one `GITS_CREADR` read), nothing masked, no ioctl.
//! - IMS-backed modes (`MsixOverIms`, `ImsTrapped`, `ImsHypercall` in device memory) take a
//!   slot of the device's IMS pool per vector (counted when none is left) and never
//!   resize. `ImsTrapped` traps the guest's slot writes as MSI-X is trapped; `ImsHypercall`
//!   replaces the trapped accesses, the route update and the ioctl by one `vmcall` exit
//!   (`kvm.exit.vmcall`), after which the guest writes the message and unmasks untrapped
//!   (queue-memory IMS: two device commands of `store_update_latency`).
//! - The host work occupies a pCPU: the exits, the VMM's handling, the ioctls,
//!   `request_irq` / `free_irq` and the IRTE lock's waits and holds run on the thread of
//!   the vCPU that exited (the guest's k-th provisioned function on its vCPU k mod n:
//!   drivers probing asynchronously, the first on vCPU 0), so they are host work on that
//!   vCPU's pCPU (`Guests::host_work`): behind host work already there, preempting a vCPU
//!   running there, and other vCPUs and host work on that pCPU wait for them.
//! - A guest writing its own messages (`ImsDirect`): each translation is observed; a
//!   blocked one is lost against the guest, one that passed is misrouted and, where two or
//!   more guests have assigned functions, split by who received it (the same guest,
//!   another tenant, the host), the receiving tenant counting it too.
//! - Device hot-add (`DeviceParams::hot_add_at`): the function's provisioning starts at its
//!   hot-add (plus `start`), through the same path as at boot; its queues raise from then
//!   on (the build starts their arrival processes then).
//! - The guest kernel's IMS domain (`GuestIms`): Linux creates none in a guest (no PCI/IMS
//!   outside 6.2–6.9, and a virtual remapping parent never allows it), so the IMS modes
//!   fall back to MSI-X trapped, counted once per function with the kernel's reason.
//!
//! # What is not modelled (and why)
//! - QEMU's first MSI-X enable (`vfio_msix_enable` enables vector 0 with a userspace
//!   trigger and releases it): one extra host setup per enable, left out so that the count
//!   is the N(N+1)/2 the debate argued about (claim C11). Which QEMU release first batched
//!   the enable is not pinned down here (docs/sources.md#qemu-batch-enable).
//! - QEMU's userspace fallback when KVM has no route left (the vector then goes through
//!   QEMU's eventfd handler): here the vector stays without interrupts.
//! - The guest driver's own execution between its exits (none: the next exit follows at
//!   once), except that between two vectors (after `request_irq` returns, with interrupts
//!   enabled) the exiting vCPU first handles the guest interrupts pending for it
//!   (`Guests::wait_idle`); within a vector (the message writes and the unmask run under
//!   the descriptor's lock with interrupts off) they wait.
//! - Host work that reaches the exiting vCPU's pCPU while a provisioning step runs there
//!   is served after the step (FIFO), so it does not lengthen the step (a host interrupt
//!   would preempt the VMM thread: the pCPU's busy time is the same, the step would end
//!   that much later). The lock's holds are requested at the step's start even when the
//!   pCPU is still busy with earlier host work.
//! - On ARM (GICv4) only MSI-X trapped, with dynamic MSI-X from Linux 7.3 (`host`): each host setup,
//!   release and mask cycle is the ITS's (`ArmChip::vfio_setup`, `vfio_retrigger`). An
//!   affinity change there is no MSI-X write: docs/provisioning.md (On ARM). The model names
//!   a vLPI per vCPU (vINTID 8192 + the vCPU's guest vector), so a move takes the vector
//!   the new vCPU has for the queue (`Guests::next_affinity`) where KVM keeps the VM-wide
//!   vINTID; counts and times are the same.
//! - QEMU's own `device_add` work and the guest's enumeration exits before a hot-added
//!   function's first MSI-X write (`DeviceParams::hot_add_at`; its `start` is the time from
//!   the hot-add to that write), and hot-removal.
//! - An affinity change's old guest vector is not freed (Linux frees it once the move
//!   completes, `irq_complete_move`): a queue keeps one vector per vCPU it ran on, reused
//!   when it comes back. x86's two-step update when both vector and destination change
//!   without remapping (`msi_set_affinity`) is not modelled: one message write per change.
//! - After a fallback to MSI-X, the function's store keeps its IMS kind (its MSI-X table is
//!   taken to have the entries it needs), with MSI-X's pending bits.
//!
//! # Parameters and their sources
//! No exit or ioctl cost has a published L1 figure (docs/sources.md#provision-costs): the
//! scenario must give `mmio_exit_user`, `route_update`, `set_irqs`, `request_irq`,
//! `free_irq`, for a hypercall `vmcall`, and on ARM with affinity changes `mmio_exit_kernel`
//! (docs/sources.md#arm-movi). `message_exits` = 4 (`pci_write_msg_msix`, docs/sources.md#msix-message-exits),
//! `gsi_routes` = 4,096 (`KVM_MAX_IRQ_ROUTES`, docs/sources.md#kvm-max-irq-routes).

mod host;

use sim::{CounterId, EventQueue, HistogramId, Metrics, SimDuration, SimTime, Unit};

use super::super::{Event, Platform, ResourceUse};
use super::{ChipOp, GuestVector, Guests};
use crate::ids::{CpuId, DeviceId, QueueId, Vector};
use crate::kernel::KernelVersion;
use crate::pci::store::StoreKind;

/// KVM's routing-table size on x86 (`KVM_MAX_IRQ_ROUTES`).
pub const KVM_MAX_IRQ_ROUTES: u32 = 4096;
/// Trapped accesses per MSI-X message: Linux's `pci_write_msg_msix` writes address low,
/// address high and data, then reads data back to flush the writes
/// (docs/sources.md#msix-message-exits).
pub const MSIX_MESSAGE_EXITS: u32 = 4;

/// How an assigned function's interrupts are provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionMode {
    /// The guest programs an MSI-X table that the VMM traps (VFIO/QEMU); the host sets up an
    /// MSI-X vector for each, all N again per new vector without dynamic MSI-X.
    MsixTrapped,
    /// The guest programs an emulated MSI-X table (trapped as above); the host backs each
    /// vector with a slot of the device's IMS (VFIO PCI IMS, claim C38): no resize.
    MsixOverIms,
    /// The guest programs the device-memory IMS slots (IDXD-like), which the VMM traps slot
    /// by slot; the host backs each with one of the device's IMS slots.
    ImsTrapped,
    /// One hypercall per vector: the host allocates the vector, IRTE (and IMS slot) and
    /// returns a remappable message, which the guest writes into its IMS untrapped.
    ImsHypercall,
    /// The guest believes it is on bare metal and writes its own composed message into IMS
    /// that nothing traps (queue memory): the host's remapping unit faults it or, where the
    /// IRTE it names belongs to the same requester id, delivers it to the wrong target.
    ImsDirect {
        /// The guest composes remappable messages (it has a virtual remapping unit) naming
        /// its own IRTE indices; `false`: compatibility format (vCPU APIC id, guest vector).
        remappable: bool,
    },
}

impl ProvisionMode {
    /// Whether the guest's driver needs an IMS domain of its own kernel.
    pub fn guest_needs_ims(self) -> bool {
        matches!(self, ProvisionMode::ImsTrapped | ProvisionMode::ImsHypercall)
    }

    /// Whether the host takes part (not a guest writing its own messages).
    fn host_programs(self) -> bool {
        !matches!(self, ProvisionMode::ImsDirect { .. })
    }
}

/// Whether the guest kernel creates the IMS domain a guest IMS mode needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestIms {
    /// Linux as merged: the PCI/IMS API exists in 6.2 to 6.9 only, and an IMS domain is
    /// created only under a remapping parent that allows it, which a guest's (virtual, in
    /// caching mode) remapping unit never does: the driver falls back to MSI-X.
    Linux(KernelVersion),
    /// A policy never merged: the guest creates the IMS domain.
    Hypothetical,
}

impl GuestIms {
    /// `None` when the guest gets its IMS domain, else the kernel's reason why not.
    pub fn refusal(self) -> Option<String> {
        match self {
            GuestIms::Hypothetical => None,
            GuestIms::Linux(v) if !v.has_ims_infrastructure() => {
                Some(format!("guest Linux {v} has no PCI/IMS (6.2 to 6.9 only)"))
            }
            GuestIms::Linux(v) => Some(format!(
                "guest Linux {v}: pci_create_ims_domain fails: its remapping parent is virtual (vIR, caching mode), which does not set MSI_FLAG_PCI_IMS"
            )),
        }
    }
}

/// Whether the VMM holds a KVM route per enabled vector or per advertised table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutesPer {
    /// A route when the guest enables (unmasks) a vector (QEMU).
    EnabledVector,
    /// A route for every entry of the table when the guest starts using it.
    AdvertisedEntry,
}

/// The costs on the path (no published L1 figures; required in a scenario).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvisionCosts {
    /// One MMIO write exit handled by the userspace VMM: exit, QEMU's handler, entry.
    pub mmio_exit_user: SimDuration,
    /// The VMM's KVM route update (`KVM_SET_GSI_ROUTING`).
    pub route_update: SimDuration,
    /// One `VFIO_DEVICE_SET_IRQS` ioctl, besides the work per vector.
    pub set_irqs: SimDuration,
    /// Host CPU time of `request_irq` and the bypass registration, besides the IRTE lock.
    pub request_irq: SimDuration,
    /// Host CPU time of `free_irq` and the bypass removal, besides the IRTE lock.
    pub free_irq: SimDuration,
    /// One hypercall (`vmcall`) that composes a message, besides the host's setup of the
    /// vector (`ImsHypercall` only).
    pub vmcall: SimDuration,
    /// One MMIO exit handled in the kernel: on arm64 an access to a register of the guest's
    /// virtual ITS (`GITS_CREADR`, `GITS_CWRITER`), which KVM's vgic-its emulates without
    /// the VMM (affinity changes on ARM only).
    pub mmio_exit_kernel: SimDuration,
}

/// A function's provisioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvisionParams {
    /// The mode.
    pub mode: ProvisionMode,
    /// The host can add a vector to enabled MSI-X (Linux 6.5+; no `VFIO_IRQ_INFO_NORESIZE`);
    /// without it the table is disabled and re-enabled (`MsixTrapped`, or a fallback to it).
    pub dynamic_msix: bool,
    /// Whether the guest kernel creates an IMS domain (the IMS modes).
    pub guest_ims: GuestIms,
    /// When the guest driver writes the first entry.
    pub start: SimTime,
    /// Trapped accesses per message (the unmask is one more exit).
    pub message_exits: u32,
    /// The guest's KVM routing-table size (the first provisioned function's counts for its
    /// guest).
    pub gsi_routes: u32,
    /// When routes are taken.
    pub routes_per: RoutesPer,
    /// The order the guest driver writes the table in (trapped modes).
    pub guest_order: GuestOrder,
    /// Once every vector is up, the guest masks one vector (round robin) every `.0` and
    /// unmasks it `.1` later (trapped modes): the control plane as a workload.
    pub masking: Option<(SimDuration, SimDuration)>,
    /// Once every vector is up, the guest moves one vector (round robin) to the next vCPU
    /// every period (irqbalance-like; trapped modes and `ImsHypercall`, not with `masking`).
    pub affinity: Option<SimDuration>,
    /// QEMU enables every vector unmasked before MSI-X is enabled with one
    /// `VFIO_DEVICE_SET_IRQS` (and one route commit); without it, one after the other.
    pub qemu_batch_enable: bool,
    /// How an `ImsHypercall` guest masks and unmasks a vector (with `masking`).
    pub ims_mask: ImsMaskPath,
    /// Costs.
    pub costs: ProvisionCosts,
}

impl ProvisionParams {
    /// The period of the control plane after setup (masking or affinity changes).
    fn control_period(&self) -> Option<SimDuration> {
        self.masking.map(|(every, _)| every).or(self.affinity)
    }

    /// The guest kernel creates no IMS domain for a mode that needs one: its driver falls
    /// back to the function's MSI-X table (whose pending bits keep masked raises).
    pub fn falls_back_to_msix(&self) -> bool {
        self.mode.guest_needs_ims() && self.guest_ims.refusal().is_some()
    }
}

/// How a guest that got its IMS messages by hypercall masks and unmasks an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImsMaskPath {
    /// The guest writes the entry's mask bit itself, no exit: in device memory a store, in
    /// queue memory one command through the device's command queue (its update latency).
    Device,
    /// One hypercall (`vmcall`) per mask and per unmask: the host writes the mask bit (in
    /// queue memory, the device command too, which the hypercall waits for).
    Hypercall,
}

/// The order a guest driver programs a trapped table in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestOrder {
    /// Linux: MSI-X enabled with every entry masked, then per vector its message and its
    /// unmask (`request_irq`).
    PerVector,
    /// Every entry written and unmasked first, then MSI-X enabled (a config-space write, one
    /// more exit), as some guests do (Windows, and a VM restored after migration).
    TableFirst,
}

/// The arm64 MMIO exit's description.
const DABT_LOW: &str = "VM exits: data abort from the guest (DABT_LOW, as perf kvm stat names it on arm64) on emulated MMIO: a trapped MSI-X table access handled by the userspace VMM, or a virtual ITS register handled in the kernel by KVM's vgic-its";

/// The metrics of provisioning, registered only when a scenario provisions (so reports of
/// scenarios without it are unchanged).
#[derive(Debug, Clone, Copy)]
struct Ids {
    exit_user: HistogramId,
    exit_vmcall: HistogramId,
    setup_time: HistogramId,
    disabled_window: HistogramId,
    exits: CounterId,
    masks: CounterId,
    set_irqs: CounterId,
    request_irq: CounterId,
    free_irq: CounterId,
    irte_writes: CounterId,
    host_cpu: CounterId,
    usable: CounterId,
    route_fail: CounterId,
    ims_fallback: CounterId,
    lost_disabled: CounterId,
    lost: CounterId,
}

impl Ids {
    /// `n` VM exits of one reason, each taking `cost` of host time: a sample each in the
    /// reason's `kvm.exit.*` histogram and a count in `provision.exit_count`. Returns their
    /// time.
    fn exits(&self, histogram: HistogramId, cost: SimDuration, n: u64, m: &mut Metrics) -> SimDuration {
        for _ in 0..n {
            m.record(histogram, cost.as_ps());
        }
        m.add(self.exits, n);
        cost.times(n)
    }
}

/// The metrics of affinity changes, registered only when a function has them.
#[derive(Debug, Clone, Copy)]
struct AffinityIds {
    changes: CounterId,
    fail: CounterId,
    /// `kvm.exit.dabt_low` on ARM (the provisioning's MMIO exit histogram there).
    exit_kernel: Option<HistogramId>,
}

impl AffinityIds {
    fn register(m: &mut Metrics) -> AffinityIds {
        AffinityIds {
            changes: m.counter(
                "provision.affinity_count",
                Unit::Count,
                "vectors the guest moved to another vCPU after setup (the control plane)",
            ),
            fail: m.failure_counter(
                "provision.affinity_vector_fail_count",
                "an affinity change found no free guest vector on the new vCPU: the vector stays",
            ),
            exit_kernel: None,
        }
    }
}

/// The metric of the guest's own IMS mask writes, registered only when a function masks
/// through its device (`ImsMaskPath::Device`).
#[derive(Debug, Clone, Copy)]
struct ImsMaskIds {
    writes: CounterId,
}

/// Per guest: what became of the messages it composed itself (`ImsDirect`).
#[derive(Debug, Clone, Copy)]
struct DirectIds {
    lost: CounterId,
    misrouted: CounterId,
    /// Where the misrouted ones went, registered where there are tenants to tell apart.
    split: Option<SplitIds>,
}

/// Who received a guest's misrouted messages.
#[derive(Debug, Clone, Copy)]
struct SplitIds {
    /// The same guest (another of its vectors).
    own: CounterId,
    /// Another guest (tenant).
    tenant: CounterId,
    /// The host (a host driver's vector, or none).
    host: CounterId,
}

/// The owner of the target a translated message reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::platform) enum Reached {
    /// Blocked by the remapping unit (or otherwise lost at translation).
    Lost,
    /// A vector of guest `0` (posted to its vCPU, or VFIO's host vector forwarding to it).
    Guest(u32),
    /// A host vector of a host driver, or one without a handler.
    Host,
}

impl Ids {
    fn register(m: &mut Metrics, lost: CounterId, arm: bool) -> Ids {
        let c = |m: &mut Metrics, name: &str, desc: &str| m.counter(name, Unit::Count, desc);
        let h = |m: &mut Metrics, name: &str, desc: &str| m.histogram(name, Unit::Picoseconds, desc);
        Ids {
            // perf kvm stat names an arm64 exit by its exception class: every MMIO data abort
            // is DABT_LOW, whether the VMM or KVM's vgic-its handles it.
            exit_user: if arm {
                h(m, "kvm.exit.dabt_low", DABT_LOW)
            } else {
                h(
                    m,
                    "kvm.exit.ept_misconfig",
                    "VM exits: MMIO access (EPT_MISCONFIG, as perf kvm stat names it) handled by the userspace VMM",
                )
            },
            exit_vmcall: h(m, "kvm.exit.vmcall", "VM exits: hypercall (vmcall)"),
            setup_time: h(
                m,
                "latency.provision_setup_ps",
                "per function: the guest's first trapped write to its last vector usable",
            ),
            disabled_window: h(
                m,
                "latency.msix_disabled_window_ps",
                "per resize without dynamic MSI-X: how long the function's MSI-X stayed disabled",
            ),
            exits: c(m, "provision.exit_count", "VM exits for provisioning (trapped accesses and hypercalls)"),
            masks: c(
                m,
                "provision.mask_count",
                "vectors the guest masked and unmasked again after setup (the control plane)",
            ),
            set_irqs: c(m, "provision.vfio_set_irqs_count", "VFIO_DEVICE_SET_IRQS ioctls"),
            request_irq: c(m, "provision.request_irq_count", "host vector setups (request_irq and IRTE)"),
            free_irq: c(m, "provision.free_irq_count", "host vector releases (free_irq and IRTE free)"),
            irte_writes: c(m, "provision.irte_write_count", "IRTE writes for provisioning (modify_irte and clears)"),
            host_cpu: m.counter(
                "provision.host_cpu_ps",
                Unit::Picoseconds,
                "host time spent provisioning: exits, VMM, ioctls, request_irq/free_irq, IRTE lock waits and holds",
            ),
            usable: c(m, "provision.vector_usable_count", "guest vectors made usable (again, after a resize)"),
            route_fail: m.failure_counter(
                "provision.gsi_route_fail_count",
                "kvm: no free GSI route (KVM_MAX_IRQ_ROUTES): the vector gets no interrupt",
            ),
            ims_fallback: m.failure_counter(
                "provision.ims_fallback_count",
                "the guest kernel created no IMS domain; the driver fell back to MSI-X (per function)",
            ),
            lost_disabled: m.failure_counter(
                "interrupt.lost.msix_disabled_count",
                "raised while VFIO had the function's MSI-X disabled to resize it (VFIO_IRQ_INFO_NORESIZE)",
            ),
            lost,
        }
    }
}

/// One guest vector of a provisioned function.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Its queue and where its interrupt goes in the guest.
    target: GuestVector,
    /// It has a KVM route.
    routed: bool,
    /// The guest enabled it (and the VMM passes its eventfd to VFIO).
    used: bool,
    /// The host has it set up.
    host_on: bool,
}

/// Where a function's provisioning stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The guest writes the next vector's entry and unmasks it.
    Guest,
    /// The `VFIO_DEVICE_SET_IRQS` for vector `vector` reaches the host.
    Host { vector: u32 },
    /// Releasing the enabled vectors from slot `from` on (MSI-X disabled).
    Teardown { from: u32, vector: u32 },
    /// Setting up the used vectors of slots `from..end` not yet on.
    Setup { from: u32, end: u32 },
    /// Slot `slot`'s setup is done: it is unmasked.
    SetupDone { slot: u32, end: u32 },
    /// The control plane: the guest masks the next vector (a cycle starts).
    Mask,
    /// The mask's ioctl reaches the host: the bypass is removed.
    MaskHost { slot: u32 },
    /// The guest unmasks it.
    Unmask { slot: u32 },
    /// The unmask's ioctl reaches the host: the bypass is restored.
    UnmaskHost { slot: u32 },
    /// The hypercall of an affinity change (`ImsHypercall`) reaches the host: the posted
    /// IRTE is rewritten for the new vCPU.
    RetargetHost { slot: u32 },
    /// ARM: the guest's ITS driver read `GITS_CREADR` for the MOVI's and the SYNC's queue
    /// slots and before posting; now it writes `GITS_CWRITER` (KVM runs the commands: the
    /// host ITS's VMOVI) and reads `GITS_CREADR` once to see them done.
    MoviWrite { slot: u32 },
    /// The vector is usable again.
    Unmasked { slot: u32 },
    /// `ImsHypercall`: the mask (the guest's own write, or the host's in a hypercall) lands
    /// in the IMS entry.
    ImsMasked { slot: u32 },
    /// `ImsHypercall`: the hold is over, the unmask starts.
    ImsUnmask { slot: u32 },
    /// Every vector has been handled.
    Done,
}

#[derive(Debug, Clone)]
struct Function {
    device: DeviceId,
    guest: u32,
    /// The vCPU (index in its guest) whose thread exits for the function's setup and control
    /// plane: the guest's k-th provisioned function on vCPU k mod its vCPUs (drivers probe
    /// asynchronously, one probe per vCPU in turn; the first on vCPU 0).
    probe_vcpu: u32,
    params: ProvisionParams,
    /// The mode in effect: the scenario's, or MSI-X trapped where the guest could not create
    /// its IMS domain.
    mode: ProvisionMode,
    /// The device's store, and the command-queue latency of a queue-memory IMS update.
    store: StoreKind,
    store_latency: SimDuration,
    slots: Vec<Slot>,
    /// The next slot the guest brings up.
    next: u32,
    /// The host's enabled vector count (QEMU's `nr_vectors`).
    host_vectors: u32,
    step: Step,
    window_start: SimTime,
    /// The guest wrote (and unmasked) the whole table before enabling MSI-X.
    table_written: bool,
    /// The control plane's next vector and the start of its current cycle.
    mask_next: u32,
    cycle_start: SimTime,
    /// The control-plane cycle in progress moves its vector to this vCPU, vector and pCPU.
    retarget: Option<(u32, Vector, CpuId)>,
}

/// Every provisioned function.
#[derive(Debug, Clone)]
pub(in crate::platform) struct Provisioning {
    functions: Vec<Function>,
    /// Routes in use and the limit, per guest.
    routes: Vec<(u32, u32)>,
    ids: Ids,
    /// Registered when a function changes affinities.
    affinity_ids: Option<AffinityIds>,
    /// Registered when a function masks its IMS through the device.
    ims_mask_ids: Option<ImsMaskIds>,
    /// Per guest, registered when a function of it writes its own messages.
    direct_ids: Vec<Option<DirectIds>>,
    /// The guest of each queue whose message its guest composed (`NO_GUEST`: none), and
    /// each guest's next IRTE index of its own (virtual) remapping table.
    direct_guest: Vec<u32>,
    guest_irte_next: Vec<u32>,
    /// Per guest, messages of another guest delivered to it; registered (with the split of
    /// each guest's misroutes) when two or more guests have assigned functions.
    received: Vec<Option<CounterId>>,
    tenants: bool,
    /// ITS round trips of provisioning, registered on ARM only.
    its_commands: Option<CounterId>,
    /// The VMM's emulated mask and pending bit of each trapped vector.
    vmm: VmmTable,
}

/// The VMM's emulated mask and pending bit per trapped vector, by queue id (grown on the
/// first mask; `Vmm::Open` beyond its end).
#[derive(Debug, Clone, Default)]
struct VmmTable(Vec<Vmm>);

impl VmmTable {
    /// The guest's trapped mask of `queue`'s vector: the VMM sets its emulated mask bit.
    fn mask(&mut self, queue: QueueId) {
        let q = queue.0 as usize;
        if self.0.len() <= q {
            self.0.resize(q + 1, Vmm::Open);
        }
        if self.0[q] == Vmm::Open {
            self.0[q] = Vmm::Masked;
        }
    }

    /// The guest's trapped unmask: returns whether the emulated pending bit was set (QEMU
    /// then sends the message, `msix_handle_mask_update` → `msix_notify`).
    fn unmask(&mut self, queue: QueueId) -> bool {
        let held = self.0.get_mut(queue.0 as usize).map(std::mem::take);
        held == Some(Vmm::Pending)
    }
}

/// The userspace VMM's view of a trapped vector the guest masked after setup: QEMU keeps
/// the mask and the pending bit in its emulated table (MSI-X's PBA; for a trapped IMS slot
/// or an emulated MSI-X over host IMS, the same emulation) and moves VFIO's trigger to its
/// own eventfd, so a raise while masked is kept there whatever the device's store does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Vmm {
    /// Not masked by the guest: raises go out.
    #[default]
    Open,
    /// Masked by the guest, nothing pending.
    Masked,
    /// Masked, with the emulated pending bit set.
    Pending,
}

/// What the VMM did with a raise ([`Provisioning::vmm_hold`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::platform) enum VmmHold {
    /// The guest has not masked the vector: the raise goes out.
    Open,
    /// Held in the emulated pending bit.
    Held,
    /// Merged into an emulated pending bit already set.
    Merged,
}

/// No guest composed the queue's message.
const NO_GUEST: u32 = u32::MAX;

impl Provisioning {
    /// Empty, with its metrics registered; `lost` is the platform's lost counter; `tenants`:
    /// two or more guests have assigned functions (a guest's misroutes are then split by
    /// who received them); `arm`: the host is a GICv4 ARM one (its MMIO exits are
    /// `kvm.exit.dabt_low`, its setups and releases ITS commands).
    pub fn new(guest_count: u32, tenants: bool, arm: bool, m: &mut Metrics, lost: CounterId) -> Provisioning {
        let ids = Ids::register(m, lost, arm);
        // On a GICv4 ARM host, setups and releases are ITS commands, counted.
        let its_commands = arm.then(|| {
            m.counter(
                "provision.its_command_count",
                Unit::Count,
                "ITS round trips (a command and its SYNC, or a direct invalidation) of host setups, releases and mask cycles",
            )
        });
        Provisioning {
            functions: Vec::new(),
            routes: vec![(0, KVM_MAX_IRQ_ROUTES); guest_count as usize],
            ids,
            affinity_ids: None,
            ims_mask_ids: None,
            direct_ids: vec![None; guest_count as usize],
            direct_guest: Vec::new(),
            guest_irte_next: vec![0; guest_count as usize],
            received: vec![None; guest_count as usize],
            tenants,
            its_commands,
            vmm: VmmTable::default(),
        }
    }

    /// A raise of `queue`: held by the VMM when the guest masked its trapped vector.
    #[inline]
    pub fn vmm_hold(&mut self, queue: QueueId) -> VmmHold {
        match self.vmm.0.get_mut(queue.0 as usize) {
            None | Some(Vmm::Open) => VmmHold::Open,
            Some(held @ Vmm::Masked) => {
                *held = Vmm::Pending;
                VmmHold::Held
            }
            Some(Vmm::Pending) => VmmHold::Merged,
        }
    }

    /// Raises held in the VMM's emulated pending bits now (the conservation's pending).
    pub fn vmm_pending_count(&self) -> u64 {
        self.vmm.0.iter().filter(|&&v| v == Vmm::Pending).count() as u64
    }

    /// The guest that composed queue `queue`'s message itself, if one did.
    #[inline]
    pub fn direct_guest(&self, queue: QueueId) -> Option<u32> {
        self.direct_guest.get(queue.0 as usize).copied().filter(|&g| g != NO_GUEST)
    }

    /// Registers, in guest order, each guest's count of messages other guests composed
    /// that reached it (with tenants and a guest composing its own messages). A plain
    /// counter, not a failure counter: it is the sender's misroute
    /// (`guest.G.direct_misrouted_count`, the failure) seen from the victim, and counting
    /// it as a failure too would count each cross-tenant message twice.
    pub fn register_received(&mut self, names: &[&str], m: &mut Metrics) {
        if !self.tenants || self.direct_ids.iter().all(Option::is_none) {
            return;
        }
        for (g, name) in names.iter().enumerate() {
            self.received[g] = Some(m.counter(
                &format!("guest.{name}.cross_tenant_received_count"),
                Unit::Count,
                "a message another guest composed itself reached this guest's vector (same requester id)",
            ));
        }
    }

    /// Takes over the programming the guest asked for a device (`ChipOp::Assign`s from
    /// `Guests::provision`) assigned to `guest` of `vcpus` vCPUs, whose store is `store` (`store_latency`: a queue-memory IMS
    /// update); returns the first step's event and time. An IMS mode whose guest kernel
    /// creates no IMS domain falls back to MSI-X trapped (counted, with the kernel's reason).
    #[allow(clippy::too_many_arguments)] // the function, its guest, its parameters and store
    pub fn add(
        &mut self,
        device: DeviceId,
        (name, guest_name): (&str, &str),
        (guest, vcpus): (u32, u32),
        params: ProvisionParams,
        ops: Vec<ChipOp>,
        (store, store_latency): (StoreKind, SimDuration),
        m: &mut Metrics,
    ) -> (SimTime, Event) {
        let slots: Vec<Slot> = ops
            .into_iter()
            .map(|op| match op {
                ChipOp::Assign { target, .. } => Slot { target, routed: false, used: false, host_on: false },
                other => panic!("provisioning takes assignments, not {other:?}"),
            })
            .collect();
        if !self.functions.iter().any(|f| f.guest == guest) {
            self.routes[guest as usize].1 = params.gsi_routes;
        }
        if params.affinity.is_some() {
            let aff = self.affinity_ids.get_or_insert_with(|| AffinityIds::register(m));
            if self.its_commands.is_some() {
                // The virtual ITS's exits are data aborts too: the same histogram.
                aff.exit_kernel = Some(self.ids.exit_user);
            }
        }
        if params.mode == ProvisionMode::ImsHypercall
            && params.masking.is_some()
            && params.ims_mask == ImsMaskPath::Device
        {
            self.ims_mask_ids.get_or_insert_with(|| ImsMaskIds {
                writes: m.counter(
                    "provision.ims_mask_write_count",
                    Unit::Count,
                    "mask and unmask writes a guest made to its own IMS entries, no exit (queue memory: device commands)",
                ),
            });
        }
        let mut mode = params.mode;
        // The build gives the function's store MSI-X's pending bits (`falls_back_to_msix`).
        if let Some(why) = params.guest_ims.refusal().filter(|_| mode.guest_needs_ims()) {
            m.fail(self.ids.ims_fallback, params.start, || format!("{name}: {why}; falling back to MSI-X"));
            mode = ProvisionMode::MsixTrapped;
        }
        if !mode.host_programs() {
            let guest_name = guest_name.to_owned();
            self.direct_ids[guest as usize].get_or_insert_with(|| DirectIds {
                lost: m.counter(
                    &format!("guest.{guest_name}.direct_lost_count"),
                    Unit::Count,
                    "interrupts whose message the guest composed itself, blocked by the host's remapping unit",
                ),
                misrouted: m.failure_counter(
                    &format!("guest.{guest_name}.direct_misrouted_count"),
                    "a message the guest composed itself named an IRTE of the same requester id: delivered to that IRTE's target, not the guest's",
                ),
                split: self.tenants.then(|| SplitIds {
                    own: m.counter(
                        &format!("guest.{guest_name}.direct_misrouted_own_count"),
                        Unit::Count,
                        "misrouted messages of the guest that reached another of its own vectors",
                    ),
                    tenant: m.counter(
                        &format!("guest.{guest_name}.direct_misrouted_tenant_count"),
                        Unit::Count,
                        "misrouted messages of the guest that reached another guest's vector (cross-tenant)",
                    ),
                    host: m.counter(
                        &format!("guest.{guest_name}.direct_misrouted_host_count"),
                        Unit::Count,
                        "misrouted messages of the guest that reached a host vector",
                    ),
                }),
            });
            for slot in &slots {
                let q = slot.target.queue.0 as usize;
                if self.direct_guest.len() <= q {
                    self.direct_guest.resize(q + 1, NO_GUEST);
                }
                self.direct_guest[q] = guest;
            }
        }
        let index = self.functions.len() as u32;
        let probe_vcpu = self.functions.iter().filter(|f| f.guest == guest).count() as u32 % vcpus;
        self.functions.push(Function {
            device,
            guest,
            probe_vcpu,
            params,
            mode,
            store,
            store_latency,
            slots,
            next: 0,
            host_vectors: 0,
            step: Step::Guest,
            window_start: SimTime::ZERO,
            table_written: false,
            mask_next: 0,
            cycle_start: SimTime::ZERO,
            retarget: None,
        });
        (params.start, Event::Provision { index })
    }

    /// A message guest `guest` composed itself (queue `queue`'s) was translated and
    /// `reached` a target: a blocked one is counted against the guest, and one that went
    /// anywhere is misrouted (the host never programmed an IRTE for it, so whatever it named
    /// is someone else's), split by who received it where there are tenants.
    pub fn observe(&self, guest: u32, queue: QueueId, reached: Reached, now: SimTime, m: &mut Metrics) {
        let Some(ids) = self.direct_ids.get(guest as usize).copied().flatten() else { return };
        if reached == Reached::Lost {
            m.add(ids.lost, 1);
            return;
        }
        m.fail(ids.misrouted, now, || {
            format!("queue id {}: the guest's own message reached another IRTE's target", queue.0)
        });
        let Some(split) = ids.split else { return };
        match reached {
            Reached::Guest(g) if g == guest => m.add(split.own, 1),
            Reached::Guest(g) => {
                m.add(split.tenant, 1);
                if let Some(received) = self.received[g as usize] {
                    m.add(received, 1);
                }
            }
            Reached::Host | Reached::Lost => m.add(split.host, 1),
        }
    }

    /// The lost-interrupt reason of a raise while MSI-X was disabled.
    pub fn lost_disabled(&self) -> CounterId {
        self.ids.lost_disabled
    }

    /// KVM routes used per guest against the limit.
    pub fn resources(&self) -> Vec<ResourceUse> {
        let limit = self.routes.iter().map(|r| r.1).max().unwrap_or(KVM_MAX_IRQ_ROUTES);
        vec![ResourceUse::over("kvm.gsi_routes_per_guest", limit, self.routes.iter().map(|r| r.0))]
    }

    /// Takes a route for `slot` of function `f`; `false` (counted) when the table is full.
    fn take_route(&mut self, f: usize, slot: usize, now: SimTime, m: &mut Metrics) -> bool {
        let function = &mut self.functions[f];
        if function.slots[slot].routed {
            return true;
        }
        let (used, limit) = &mut self.routes[function.guest as usize];
        if *used >= *limit {
            let (queue, limit) = (function.slots[slot].target.queue, *limit);
            m.fail(self.ids.route_fail, now, || {
                format!("queue id {}: kvm_irqchip_add_msi_route: all {limit} GSI routes in use (-ENOSPC)", queue.0)
            });
            return false;
        }
        *used += 1;
        function.slots[slot].routed = true;
        true
    }
}

impl Platform {
    /// The next step of function `index`'s provisioning.
    pub(in crate::platform) fn on_provision(&mut self, index: u32, q: &mut EventQueue<Event>) {
        let now = q.now();
        let f = index as usize;
        let prov = self.provisioning.as_mut().expect("provisioning events need provisioning");
        let mut chip = host::Host::of(&mut self.chip);
        let its_commands = prov.its_commands;
        let m = &mut self.metrics;
        let ids = prov.ids;
        loop {
            let function = &mut prov.functions[f];
            let p = function.params;
            let mode = function.mode;
            let guest = (function.guest, function.probe_vcpu);
            match function.step {
                Step::Done => return,
                Step::Guest => {
                    let v = function.next;
                    if v as usize == function.slots.len() {
                        m.record(ids.setup_time, now.since(p.start).as_ps());
                        function.step = Step::Done;
                        if let Some(every) = p.control_period() {
                            function.step = Step::Mask;
                            q.schedule_at(now + every, Event::Provision { index });
                        }
                        return;
                    }
                    // Between two vectors (request_irq returned, interrupts enabled) the
                    // exiting vCPU handles the guest interrupts pending for it first.
                    let guests = self.guests.as_mut().expect("provisioned devices are assigned");
                    let vcpu = guests.vcpus_of(guest.0).0 + guest.1;
                    if guests.has_guest_work(vcpu) {
                        guests.wait_idle(vcpu, index);
                        return;
                    }
                    let trapped = !matches!(mode, ProvisionMode::ImsHypercall | ProvisionMode::ImsDirect { .. });
                    if trapped && p.guest_order == GuestOrder::TableFirst && !function.table_written {
                        // Every entry and its unmask, MSI-X still disabled: QEMU only
                        // records them (no vector notifier fires); then the enable.
                        let n = function.slots.len() as u64;
                        let exits = n * u64::from(p.message_exits + 1) + 1;
                        let at = now + ids.exits(ids.exit_user, p.costs.mmio_exit_user, exits, m);
                        function.table_written = true;
                        let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                        q.schedule_at(at, Event::Provision { index });
                        return;
                    }
                    if function.table_written && p.qemu_batch_enable {
                        // vfio_msix_enable with the KVM routes deferred: every unmasked vector
                        // routed, one commit, one VFIO_DEVICE_SET_IRQS for all of them.
                        let n = function.slots.len();
                        for slot in 0..n {
                            if prov.take_route(f, slot, now, m) {
                                prov.functions[f].slots[slot].used = true;
                            }
                        }
                        let function = &mut prov.functions[f];
                        let at = now + p.costs.route_update + p.costs.set_irqs;
                        m.add(ids.set_irqs, 1);
                        let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                        function.host_vectors = n as u32;
                        // The batch ends the guest's work: when its setups are done, the
                        // step after the last one finds every vector handled.
                        function.next = n as u32 - 1;
                        function.step = Step::Setup { from: 0, end: n as u32 };
                        q.schedule_at(at, Event::Provision { index });
                        return;
                    }
                    if let ProvisionMode::ImsDirect { remappable } = mode {
                        // The guest composes the message itself and writes it, then the
                        // unmask, into its IMS: two device commands in queue memory.
                        let slot = function.slots[v as usize];
                        let (address, data) = if remappable {
                            let index = &mut prov.guest_irte_next[function.guest as usize];
                            let handle = *index as u16;
                            *index += 1;
                            crate::x86::msi::compose_remappable(handle)
                        } else {
                            crate::x86::msi::compose_compat(slot.target.vcpu.min(255) as u8, slot.target.vector.0)
                        };
                        self.devices.reprogram(slot.target.queue, address, data, q);
                        let writes = match function.store {
                            StoreKind::ImsQueue => function.store_latency.times(2),
                            _ => SimDuration::ZERO,
                        };
                        function.step = Step::SetupDone { slot: v, end: v + 1 };
                        q.schedule_at(now + writes, Event::Provision { index });
                        return;
                    }
                    let table_written = function.table_written;
                    if v == 0 && p.routes_per == RoutesPer::AdvertisedEntry {
                        for slot in 0..prov.functions[f].slots.len() {
                            prov.take_route(f, slot, now, m);
                        }
                    }
                    let mut at = if mode == ProvisionMode::ImsHypercall {
                        // One hypercall: KVM routes the vector and the host composes its message.
                        now + ids.exits(ids.exit_vmcall, p.costs.vmcall, 1, m)
                    } else if table_written {
                        // The table was written before the enable: QEMU now uses each
                        // unmasked vector in turn (msix_set_vector_notifiers), no exit.
                        now
                    } else {
                        now + ids.exits(ids.exit_user, p.costs.mmio_exit_user, u64::from(p.message_exits + 1), m)
                    };
                    // Advertised entries were all routed (or counted as failed) at the first write.
                    let routed = match p.routes_per {
                        RoutesPer::EnabledVector => prov.take_route(f, v as usize, now, m),
                        RoutesPer::AdvertisedEntry => prov.functions[f].slots[v as usize].routed,
                    };
                    let function = &mut prov.functions[f];
                    if routed {
                        if mode != ProvisionMode::ImsHypercall {
                            at = at + p.costs.route_update + p.costs.set_irqs;
                            m.add(ids.set_irqs, 1);
                        }
                        function.slots[v as usize].used = true;
                        function.step = Step::Host { vector: v };
                    } else {
                        function.next += 1;
                    }
                    let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                    q.schedule_at(at, Event::Provision { index });
                    return;
                }
                Step::Host { vector } => {
                    // Only MSI-X without dynamic allocation resizes; IMS allocates per vector.
                    let grow = mode == ProvisionMode::MsixTrapped && !p.dynamic_msix && vector >= function.host_vectors;
                    function.host_vectors = function.host_vectors.max(vector + 1);
                    let any_on = function.slots.iter().any(|s| s.host_on);
                    if grow && any_on {
                        // vfio_disable_irqindex: MSI-X off while the old vectors go.
                        let dropped = self.devices.disable_msix(function.device);
                        m.add(ids.lost, u64::from(dropped));
                        m.add(ids.lost_disabled, u64::from(dropped));
                        function.window_start = now;
                        for slot in function.slots.iter().filter(|s| s.host_on) {
                            self.devices.mask(slot.target.queue);
                        }
                        function.step = Step::Teardown { from: 0, vector };
                    } else if grow {
                        function.step = Step::Setup { from: 0, end: vector + 1 };
                    } else {
                        function.step = Step::Setup { from: vector, end: vector + 1 };
                    }
                }
                Step::Teardown { from, vector } => {
                    let next = (from as usize..function.slots.len()).find(|&j| function.slots[j].host_on);
                    let Some(j) = next else {
                        self.devices.enable_msix(function.device);
                        m.record(ids.disabled_window, now.since(function.window_start).as_ps());
                        function.step = Step::Setup { from: 0, end: vector + 1 };
                        continue;
                    };
                    let slot = function.slots[j];
                    let step = chip.release(now, slot.target.queue, &self.devices, m);
                    function.slots[j].host_on = false;
                    m.add(ids.free_irq, 1);
                    m.add(ids.irte_writes, u64::from(step.irte_writes));
                    if let Some(id) = its_commands {
                        m.add(id, u64::from(step.its_commands));
                    }
                    let at = step.done + p.costs.free_irq;
                    let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                    function.step = Step::Teardown { from: j as u32 + 1, vector };
                    q.schedule_at(at, Event::Provision { index });
                    return;
                }
                Step::Setup { from, end } => {
                    let next = (from..end).find(|&j| {
                        let s = function.slots[j as usize];
                        s.used && !s.host_on
                    });
                    let Some(j) = next else {
                        function.next += 1;
                        function.step = Step::Guest;
                        continue;
                    };
                    let s = function.slots[j as usize];
                    // A host IMS slot per vector where the device's IMS backs it.
                    let ims = mode != ProvisionMode::MsixTrapped && function.store == StoreKind::ImsDevice;
                    if ims && !self.devices.take_device_ims_slot(function.device, now, m) {
                        function.step = Step::Setup { from: j + 1, end };
                        continue;
                    }
                    let Some(step) = chip.setup(now, &s, &mut self.devices, m) else {
                        function.step = Step::Setup { from: j + 1, end };
                        continue;
                    };
                    function.slots[j as usize].host_on = true;
                    m.add(ids.request_irq, 1);
                    m.add(ids.irte_writes, u64::from(step.irte_writes));
                    if let Some(id) = its_commands {
                        m.add(id, u64::from(step.its_commands));
                    }
                    let at = step.done + p.costs.request_irq;
                    let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                    // After a hypercall the guest writes the message and unmasks: in
                    // queue memory, two device commands; in device memory, two stores.
                    let guest_writes = match (mode, function.store) {
                        (ProvisionMode::ImsHypercall, StoreKind::ImsQueue) => function.store_latency.times(2),
                        _ => SimDuration::ZERO,
                    };
                    function.step = Step::SetupDone { slot: j, end };
                    q.schedule_at(at + guest_writes, Event::Provision { index });
                    return;
                }
                Step::Mask => {
                    // Round robin over the vectors the host set up.
                    let n = function.slots.len() as u32;
                    let Some(slot) =
                        (0..n).map(|k| (function.mask_next + k) % n).find(|&j| function.slots[j as usize].host_on)
                    else {
                        function.step = Step::Done;
                        return;
                    };
                    function.mask_next = (slot + 1) % n;
                    function.cycle_start = now;
                    let every = p.control_period().expect("control steps have a period");
                    let s = function.slots[slot as usize];
                    if mode == ProvisionMode::ImsHypercall && p.masking.is_some() {
                        // IMS's own mask bit, through the device or a hypercall: no IRTE write.
                        m.add(ids.masks, 1);
                        let at = ims_mask_write(function, guest, prov.ims_mask_ids, &mut self.guests, (ids, now), q, m);
                        prov.functions[f].step = Step::ImsMasked { slot };
                        q.schedule_at(at, Event::Provision { index });
                        return;
                    }
                    if p.masking.is_none() {
                        // An affinity change: the guest's vector matrix gives the queue a
                        // vector on the next vCPU (msi_set_affinity), then the message.
                        let aff = prov.affinity_ids.expect("registered with the function's affinity");
                        let guests = self.guests.as_mut().expect("provisioned devices are assigned");
                        let Some(to) = guests.next_affinity(s.target.vcpu, s.target.queue) else {
                            m.fail(aff.fail, now, || {
                                format!(
                                    "queue id {}: irq_matrix_alloc: no free vector on the next vCPU (-ENOSPC)",
                                    s.target.queue.0
                                )
                            });
                            q.schedule_at(now + every, Event::Provision { index });
                            return;
                        };
                        function.retarget = Some(to);
                        m.add(aff.changes, 1);
                        if let Some(exit_kernel) = aff.exit_kernel {
                            // arm64: its_set_affinity → its_send_movi on the guest's virtual
                            // ITS: the MOVI and its SYNC queued in guest memory, each slot's
                            // allocation reading GITS_CREADR (its_queue_full), and CREADR
                            // read once more before the post. Nothing masked.
                            let at = now + ids.exits(exit_kernel, p.costs.mmio_exit_kernel, 3, m);
                            let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                            function.step = Step::MoviWrite { slot };
                            q.schedule_at(at, Event::Provision { index });
                            return;
                        }
                        if mode == ProvisionMode::ImsHypercall {
                            // One hypercall: KVM updates the route and, through the
                            // bypass, the posted IRTE (no mask: the IRTE's update is atomic).
                            let at = now + ids.exits(ids.exit_vmcall, p.costs.vmcall, 1, m) + p.costs.route_update;
                            let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                            function.step = Step::RetargetHost { slot };
                            q.schedule_at(at, Event::Provision { index });
                            return;
                        }
                    } else {
                        m.add(ids.masks, 1);
                    }
                    // The mask write exits (for an affinity change, Linux's
                    // __pci_write_msi_msg masks the unmasked entry around the message); QEMU
                    // masks the vector in its emulated table (raises are held in its
                    // emulated pending bit, whatever the device's store is) and moves
                    // VFIO's trigger to its own eventfd.
                    prov.vmm.mask(s.target.queue);
                    let at = now + ids.exits(ids.exit_user, p.costs.mmio_exit_user, 1, m) + p.costs.set_irqs;
                    m.add(ids.set_irqs, 1);
                    let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                    function.step = Step::MaskHost { slot };
                    q.schedule_at(at, Event::Provision { index });
                    return;
                }
                Step::MaskHost { slot } => {
                    let s = function.slots[slot as usize];
                    let step = chip.retrigger(now, &s, false, &self.devices, m);
                    m.add(ids.irte_writes, u64::from(step.irte_writes));
                    if let Some(id) = its_commands {
                        m.add(id, u64::from(step.its_commands));
                    }
                    // The trigger's change: free_irq and request_irq of the host interrupt.
                    let at = step.done + p.costs.free_irq + p.costs.request_irq;
                    let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                    let hold = p.masking.map_or(SimDuration::ZERO, |(_, hold)| hold);
                    function.step = Step::Unmask { slot };
                    q.schedule_at(at.max(function.cycle_start + hold), Event::Provision { index });
                    return;
                }
                Step::Unmask { slot } => {
                    // An affinity change writes the message while masked (address low,
                    // high, data and the flushing read: QEMU only stores them), then unmasks.
                    let exits = 1 + if function.retarget.is_some() { p.message_exits } else { 0 };
                    let exit_time = ids.exits(ids.exit_user, p.costs.mmio_exit_user, u64::from(exits), m);
                    m.add(ids.set_irqs, 1);
                    // QEMU's unmask: kvm_irqchip_update_msi_route and the commit, then the
                    // trigger back to KVM's irqfd.
                    let at = now + exit_time + p.costs.route_update + p.costs.set_irqs;
                    let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                    function.step = Step::UnmaskHost { slot };
                    q.schedule_at(at, Event::Provision { index });
                    return;
                }
                Step::UnmaskHost { slot } | Step::RetargetHost { slot } => {
                    let retarget = function.retarget.take();
                    if let Some((vcpu, vector, pcpu)) = retarget {
                        let s = &mut function.slots[slot as usize];
                        (s.target.vcpu, s.target.vector, s.target.pcpu) = (vcpu, vector, pcpu);
                    }
                    let s = function.slots[slot as usize];
                    // The bypass: on x86 the IRTE posted to the vCPU's descriptor
                    // (vmx_pi_update_irte), on ARM the vLPI forwarded to its vPE (its_map_vlpi).
                    let step = chip.retrigger(now, &s, true, &self.devices, m);
                    m.add(ids.irte_writes, u64::from(step.irte_writes));
                    if let Some(id) = its_commands {
                        m.add(id, u64::from(step.its_commands));
                    }
                    let at = match function.step {
                        Step::RetargetHost { .. } => step.done,
                        _ => step.done + p.costs.free_irq + p.costs.request_irq,
                    };
                    let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                    function.step = Step::Unmasked { slot };
                    q.schedule_at(at, Event::Provision { index });
                    return;
                }
                Step::MoviWrite { slot } => {
                    // The GITS_CWRITER write: vgic_mmio_write_its_cwriter →
                    // vgic_its_process_commands runs the MOVI (vgic_its_cmd_handle_movi →
                    // update_affinity → its_map_vlpi of a mapped vLPI: VMOVI + VSYNC on the
                    // host ITS) and the SYNC (nothing to do) inside the exit; then one
                    // GITS_CREADR read finds them done (its_wait_for_range_completion).
                    let (vcpu, vector, pcpu) = function.retarget.take().expect("a move in progress");
                    let guests = self.guests.as_mut().expect("provisioned devices are assigned");
                    let s = &mut function.slots[slot as usize];
                    (s.target.vcpu, s.target.vector, s.target.pcpu, s.target.vpe) =
                        (vcpu, vector, pcpu, Some(guests.vpe_of(vcpu)));
                    let s = *s;
                    let aff = prov.affinity_ids.expect("registered with the function's affinity");
                    let exit_kernel = aff.exit_kernel.expect("registered on arm");
                    let step = chip.movi(now, &s, &self.devices);
                    if let Some(id) = its_commands {
                        m.add(id, u64::from(step.its_commands));
                    }
                    let write = ids.exits(exit_kernel, p.costs.mmio_exit_kernel, 1, m);
                    let poll = ids.exits(exit_kernel, p.costs.mmio_exit_kernel, 1, m);
                    let at = step.done.max(now + write) + poll;
                    let at = occupy(&mut self.guests, guest, (now, at), ids.host_cpu, q, m);
                    function.step = Step::Unmasked { slot };
                    q.schedule_at(at, Event::Provision { index });
                    return;
                }
                Step::ImsMasked { slot } => {
                    self.devices.mask(function.slots[slot as usize].target.queue);
                    let hold = p.masking.map_or(SimDuration::ZERO, |(_, hold)| hold);
                    function.step = Step::ImsUnmask { slot };
                    q.schedule_at(now.max(function.cycle_start + hold), Event::Provision { index });
                    return;
                }
                Step::ImsUnmask { slot } => {
                    let at = ims_mask_write(function, guest, prov.ims_mask_ids, &mut self.guests, (ids, now), q, m);
                    prov.functions[f].step = Step::Unmasked { slot };
                    q.schedule_at(at, Event::Provision { index });
                    return;
                }
                Step::Unmasked { slot } => {
                    let queue = function.slots[slot as usize].target.queue;
                    // IMS through a hypercall masked the device's slot; the trapped modes
                    // the VMM's emulated entry.
                    let send = match mode {
                        ProvisionMode::ImsHypercall => self.devices.unmask(queue),
                        _ => prov.vmm.unmask(queue),
                    };
                    if send {
                        self.devices.send(queue, now, q, m);
                    }
                    let every = p.control_period().expect("control steps have a period");
                    function.step = Step::Mask;
                    q.schedule_at(now.max(function.cycle_start + every), Event::Provision { index });
                    return;
                }
                Step::SetupDone { slot, end } => {
                    let queue = function.slots[slot as usize].target.queue;
                    m.add(ids.usable, 1);
                    if self.devices.unmask(queue) {
                        self.devices.send(queue, now, q, m);
                    }
                    function.step = if mode.host_programs() {
                        Step::Setup { from: slot + 1, end }
                    } else {
                        function.next += 1;
                        Step::Guest
                    };
                }
            }
        }
    }
}

/// A step's host work, `now` to `at` as its costs and the IRTE lock make it, runs on the
/// thread of the vCPU that exited or called (the userspace VMM, the ioctls, `request_irq` /
/// `free_irq` and the lock's spinning are that thread's): it occupies that vCPU's pCPU
/// (`Guests::host_work`), behind host work already there, and preempts a vCPU running
/// there. The exiting vCPU is the function's `probe_vcpu` (`guest` is (guest, that vCPU's
/// index in it)). Counted in `provision.host_cpu_ps`; returns when the pCPU has done it
/// (`at` when nothing else was there).
fn occupy(
    guests: &mut Option<Guests>,
    (guest, probe_vcpu): (u32, u32),
    (now, at): (SimTime, SimTime),
    host_cpu: CounterId,
    q: &mut EventQueue<Event>,
    m: &mut Metrics,
) -> SimTime {
    let length = at.since(now);
    m.add(host_cpu, length.as_ps());
    if length == SimDuration::ZERO {
        return at;
    }
    let guests = guests.as_mut().expect("provisioned devices are assigned");
    let (first, _) = guests.vcpus_of(guest);
    guests.host_work(guests.pcpu_of(first + probe_vcpu), length, q, m)
}

/// An `ImsHypercall` guest's mask or unmask write: by itself through the device (no exit:
/// a store in device memory, a command of the store's latency in queue memory; counted), or
/// by a hypercall whose host work occupies the exiting vCPU's pCPU and which returns once
/// the host's write has landed. Returns when the write has landed.
fn ims_mask_write(
    function: &Function,
    guest: (u32, u32),
    mask_ids: Option<ImsMaskIds>,
    guests: &mut Option<Guests>,
    (ids, now): (Ids, SimTime),
    q: &mut EventQueue<Event>,
    m: &mut Metrics,
) -> SimTime {
    let p = function.params;
    let command = match function.store {
        StoreKind::ImsQueue => function.store_latency,
        _ => SimDuration::ZERO,
    };
    match p.ims_mask {
        ImsMaskPath::Device => {
            m.add(mask_ids.expect("registered with the function's masking").writes, 1);
            now + command
        }
        ImsMaskPath::Hypercall => {
            let at = now + ids.exits(ids.exit_vmcall, p.costs.vmcall, 1, m);
            occupy(guests, guest, (now, at), ids.host_cpu, q, m) + command
        }
    }
}
