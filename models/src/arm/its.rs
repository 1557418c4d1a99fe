//! ARM GICv3 ITS (with GICv4.0/4.1 direct vLPI injection) and the GICv2m MSI frame, as Linux drives them.
//!
//! # What is modelled
//!
//! - **LPI budget and allocation** ([`LpiAllocator`]). Linux sizes the LPI space from
//!   `GICD_TYPER.IDbits`, capped at `ITS_MAX_LPI_NRBITS` = 16 bits, minus the 8,192 INTIDs below
//!   the first LPI: 57,344 usable LPIs, shared by every device and every VM's vPE doorbells.
//!   The allocator is the kernel's free-range list: first fit, a range shrinks from its front,
//!   freeing inserts in order and merges with both neighbours. `its_lpi_alloc` halves the request
//!   until something fits, so a device can be granted fewer LPIs than it asked for; it fails only
//!   when not even one LPI is free.
//! - **Devices** ([`Its::create_device`]): `its_pci_msi_prepare` rounds the vector count up to a
//!   power of two (at least 32 for DeviceID 0), `its_create_device` sizes the ITT as
//!   `max(2, nvecs)` entries and sends MAPD. Events are carved out of the device's LPI block
//!   with the kernel's aligned-region bitmap search (`its_alloc_device_irq`), activated with
//!   MAPTI, moved with MOVI, masked and unmasked through the LPI property table plus INV (or a
//!   direct redistributor invalidation when `DirectLPI` is present), deactivated with DISCARD,
//!   and the whole device is torn down (LPIs freed, MAPD V=0) when its last event goes.
//! - **The command queue over simulated time** ([`Its::submit`], [`CommandTiming`]): a ring of
//!   2,048 32-byte slots; every command except MAPD and INVALL is followed by SYNC (VSYNC for
//!   vPE commands), posted under the ITS lock, and the caller busy-polls `GITS_CREADR` every
//!   `poll_interval` up to `poll_count` reads. A full ring makes the submitter poll for a free
//!   slot (holding the lock, so later submitters queue behind it); one slot always stays empty,
//!   as in the kernel's `(widx + 1) % N == ridx` test. Running out of polls gives the modelled
//!   outcomes "ITS queue timeout" (completion) and "ITS queue not draining" (slot; the command
//!   is dropped). Totals, waits and the ring's high-water mark are kept in [`CommandQueueStats`].
//! - **Translation** ([`Its::translate`]): (DeviceID, EventID) through the device table and ITT
//!   to an LPI and a collection, then the collection to a CPU, with the faults an ITS can hit.
//!   Property-table changes take effect only once invalidated (INV, INVALL, INVDB or a direct
//!   invalidation), as with the redistributors' configuration cache.
//! - **GICv4.0 / GICv4.1** ([`Its::create_vm`], [`Its::forward_vlpi`], [`Its::vcpu_load`],
//!   [`Its::vcpu_put`]): a vPE per vCPU with a doorbell LPI, VMAPP at creation, DISCARD + VMAPTI
//!   to forward a device event, VMOVI to retarget it, VMOVP when a vCPU is loaded on another
//!   CPU (also on its own, [`Its::vpe_set_affinity`]: KVM's `irq_set_affinity` before the
//!   vPE is made resident, which a migrated vCPU's load waits for). A vLPI reaches a resident vPE directly; for a non-resident vPE GICv4.0 fires the
//!   vLPI's own doorbell (one per vLPI, gated by the doorbell LPI's enable bit, which KVM sets
//!   only while the vCPU blocks) and GICv4.1 fires the vPE's doorbell once until the vPE is
//!   made resident again. On GICv4.0 without DirectLPI, doorbell INV/CLEAR/MOVI go through the
//!   kernel's vPE proxy device, including its round-robin slot eviction.
//! - **The vPE-ID space** ([`ItsParams::vpe_id_bits`]): every VM's vPEs take IDs from one
//!   host-wide pool of `ITS_MAX_VPEID` = `2^bits` (`its_vpe_id_alloc`); a VM whose vCPUs do
//!   not all get one fails as a whole ([`ItsError::VpeIdsExhausted`], KVM's "VPE IRQ
//!   allocation failure"), its doorbell LPIs given back.
//! - **GICv2m** ([`V2mFrame`]): a fixed pool of SPIs (64 by default), allocated with the
//!   kernel's aligned bitmap search; a device asking for more gets `-ENOSPC`.
//! - **Resource summaries** ([`Its::resources`], [`V2mFrame::resources`]).
//!
//! # What is not modelled (and why)
//!
//! - **Latency of commands, SYNC and direct invalidations.** No published figure exists
//!   (docs/sources.md#its-costs); the costs are required parameters ([`ItsCosts`]), not defaults.
//! - **Per-command-type costs** (VMOVP versus INV, say): nothing published to tell them apart,
//!   so every command costs [`ItsCosts::command`] and every SYNC/VSYNC [`ItsCosts::sync`].
//! - **Interleaving inside one multi-command operation.** Linux drops the ITS lock between the
//!   round trips of, say, DISCARD then VMAPTI; the model reserves the whole sequence when it is
//!   submitted, so another submitter queues behind all of it. The error is bounded by the
//!   sequence length and appears only under contention.
//! - **The window between posting a command and the ITS executing it**: table updates are
//!   applied when the command is submitted; translation does not look at in-flight commands.
//! - **CPU selection** (`its_select_cpu`, least-loaded CPU): the caller names the target CPU.
//! - **Several ITSs**, the ITS list used by GICv4.0 VMOVP, lazy VMAPP (`its_list_map`) and the
//!   GICv4.1 shared-vPE-table shortcut that skips VMOVP: one ITS, eager vPE mapping.
//! - **Hypervisor-restricted LPI ranges** (`GICD_TYPER.num_LPIs`) and the ITS's own EventID
//!   width limit (`GITS_TYPER.IDbits`): both are platform quirks not needed for the budget.
//! - **The virtual LPI property table** beyond one enable bit per forwarded vLPI, vSGIs,
//!   priorities, the virtual pending table contents and pending-state transfer at forwarding.
//! - **Hardware error reporting** (SError, `GITS_CREADR.Stalled`): a command that the ITS
//!   would reject is counted in [`DeliveryStats::command_errors`] and has no effect.
//! - **GICv2m affinity and masking**: an SPI is routed by the distributor, outside this module.
//!
//! # Parameters and their sources
//!
//! | parameter | value | source |
//! |---|---|---|
//! | `lpi_id_bits` | 16 by default; 14..=24 accepted, Linux uses `min(bits, 16)` | GICv3 spec (IDbits 14–24); `ITS_MAX_LPI_NRBITS 16` and `its_setup_lpi_prop_table` in `irq-gic-v3-its.c` |
//! | first LPI INTID | 8,192 | `its_lpi_init`: `lpis = (1UL << id_bits) - 8192` |
//! | command queue | 2,048 slots (`ITS_CMD_QUEUE_SZ` 64 KiB / 32-byte `its_cmd_block`) | `irq-gic-v3-its.c` |
//! | poll interval, poll count | 1 µs (`udelay(1)`), 1,000,000 reads ("1s!") | `its_wait_for_range_completion`, `its_allocate_entry` |
//! | command, SYNC, direct-invalidation cost | required, no default | none published (docs/sources.md#its-costs) |
//! | collections | one per CPU | `its_cpu_init_collection` |
//! | GIC version | V3, V4_0, V4_1 | platform |
//! | DirectLPI | off, forced on for GICv4.1 (RVPEID implies it) | `__gic_update_rdist_properties` in `irq-gic-v3.c` |
//! | ITT size | `max(2, nvecs)` entries, `nvecs` a power of two, ≥ 32 for DeviceID 0 | `its_create_device`, `its_pci_msi_prepare` |
//! | vPE doorbells | `roundup_pow_of_two(vcpus)` LPIs per VM, all or nothing | `its_vpe_irq_domain_alloc` |
//! | `vpe_id_bits` | 16 (`ITS_MAX_VPEID_BITS`); on GICv4.1 `GICD_TYPER2.VID + 1` when `VIL` is set, 1..=16 | `irq-gic-v3-its.c`, GICv4.1 `GICD_TYPER2` (docs/sources.md#vpe-id-bits) |
//! | GICv2m SPIs | 64 by default (the gem5 VExpress frame; the pool a Rust VMM found one 128-queue NVMe device exhausts) | docs/sources.md#gicv2m-spis; `irq-gic-v2m.c` |

mod cmdq;
mod lpi;
mod model;
mod v2m;

#[cfg(test)]
mod tests;

use std::fmt;

use sim::SimDuration;

pub use cmdq::{CommandOutcome, CommandQueueStats, CommandTiming, ItsCommand};
pub use lpi::{LpiAllocator, LpiFreeError, LpiGrant, LpiRange};
pub use model::{
    Delivery, DeliveryStats, DeviceCreated, DeviceResources, DoorbellKind, EventRange, EventsFreed, Its, ItsResources,
    TranslateFault, VmCreated,
};
pub use v2m::{V2mError, V2mFrame, V2mParamError, V2mParams, V2mResources};

/// The first LPI INTID: IDs below it are SGIs, PPIs and SPIs.
pub const LPI_INTID_BASE: u32 = 8192;
/// Linux never uses more than this many INTID bits for LPIs (`ITS_MAX_LPI_NRBITS`).
pub const ITS_MAX_LPI_NRBITS: u32 = 16;
/// vPE ID bits of the VLPI commands (`ITS_MAX_VPEID_BITS` in `irq-gic-v3-its.c`: 16, the
/// architecture's vPE ID width; a GICv4.1 redistributor may report fewer in `GICD_TYPER2`).
pub const ITS_MAX_VPEID_BITS: u32 = 16;
/// Bytes of the ITS command queue Linux allocates (`ITS_CMD_QUEUE_SZ`).
pub const ITS_CMD_QUEUE_BYTES: u32 = 64 * 1024;
/// Bytes per ITS command (`struct its_cmd_block`, four u64).
pub const ITS_CMD_BYTES: u32 = 32;
/// Slots in Linux's command queue: 64 KiB / 32 B.
pub const ITS_CMD_QUEUE_SLOTS: u32 = ITS_CMD_QUEUE_BYTES / ITS_CMD_BYTES;
/// Reads of `GITS_CREADR` before Linux gives up ("1s!").
pub const ITS_POLL_COUNT: u32 = 1_000_000;
/// Minimum vectors Linux reserves for PCI DeviceID 0 (broken systems where every device aliases to 0).
pub const ITS_DEVID0_MIN_VECTORS: u32 = 32;
/// Stands for the DeviceID of the kernel's GICv4.0 vPE proxy device (the highest DeviceID the
/// ITS supports, `GENMASK(device_ids - 1, 0)`; the real value depends on `GITS_TYPER.Devbits`).
pub const VPE_PROXY_DEVICE: ItsDeviceId = ItsDeviceId(u32::MAX);

/// A DeviceID as the ITS sees it (the PCI requester ID after IORT/`msi-map` translation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItsDeviceId(pub u32);

/// An EventID: the MSI data a device writes to `GITS_TRANSLATER`, an index into its ITT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub u32);

/// A physical LPI INTID (8,192 and up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lpi(pub u32);

/// A virtual PE (one per vCPU of a VM using GICv4), numbered by this model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VpeId(pub u32);

/// A virtual LPI INTID as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VintId(pub u32);

/// A collection: Linux uses one per CPU, collection *n* targeting CPU *n*.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectionId(pub u32);

/// A VM with GICv4 vPEs, numbered by this model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmId(pub u32);

/// An SPI INTID handed out by a GICv2m frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpiId(pub u32);

/// The GIC architecture revision of the ITS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv3: physical LPIs only.
    V3,
    /// GICv4.0: direct vLPI injection, per-vLPI doorbells.
    V4_0,
    /// GICv4.1: direct vLPI injection, one doorbell per vPE managed by the redistributor.
    V4_1,
}

impl GicVersion {
    /// True for GICv4.0 and GICv4.1, which can inject vLPIs directly.
    pub fn has_vlpis(self) -> bool {
        self != GicVersion::V3
    }
}

/// Costs of the ITS operations. No latency has been published for any of them
/// (docs/sources.md#its-costs), so a scenario must choose them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItsCosts {
    /// ITS processing time of one command (MAPTI, MOVI, INV, DISCARD, VMAPTI, VMOVP, ...).
    pub command: SimDuration,
    /// ITS processing time of one SYNC or VSYNC, including the redistributor acknowledgement.
    pub sync: SimDuration,
    /// A direct redistributor invalidation: write `GICR_INVLPIR` (or `GICR_CLRLPIR`) and poll
    /// `GICR_SYNCR` until it clears. Used only when DirectLPI is available.
    pub direct_inv: SimDuration,
}

/// Parameters of the ITS model. Build with [`ItsParams::new`], then adjust fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItsParams {
    /// The GIC revision.
    pub gic_version: GicVersion,
    /// INTID bits the hardware reports (`GICD_TYPER.IDbits + 1`), 14..=24. Linux uses at most
    /// [`ITS_MAX_LPI_NRBITS`]; see [`ItsParams::effective_lpi_id_bits`].
    pub lpi_id_bits: u32,
    /// Slots in the command queue ring ([`ITS_CMD_QUEUE_SLOTS`] in Linux). At least 3.
    pub cmd_queue_slots: u32,
    /// Operation costs (required, unpublished).
    pub costs: ItsCosts,
    /// Interval between reads of `GITS_CREADR` while waiting (`udelay(1)`).
    pub poll_interval: SimDuration,
    /// Reads before giving up ([`ITS_POLL_COUNT`]).
    pub poll_count: u32,
    /// Number of collections, which is the number of CPUs (one collection per CPU).
    pub collections: u32,
    /// Whether the redistributors support direct LPI invalidation (`GICR_TYPER.DirectLPI` or
    /// `GICR_CTLR.IR`). GICv4.1 always counts as having it.
    pub direct_lpi: bool,
    /// vPE ID bits Linux uses (`ITS_MAX_VPEID_BITS`): 16, or on GICv4.1 with
    /// `GICD_TYPER2.VIL` set, `GICD_TYPER2.VID + 1` (1..=16). Every VM's vPEs share the
    /// `2^bits` IDs (`its_vpe_id_alloc`: one IDA for the whole host).
    pub vpe_id_bits: u32,
}

impl ItsParams {
    /// Linux's settings for a GIC of `gic_version` with `cpus` CPUs and the given costs:
    /// 16 INTID bits, 2,048 queue slots, 1 µs polls, 1,000,000 polls, no DirectLPI.
    pub fn new(gic_version: GicVersion, cpus: u32, costs: ItsCosts) -> ItsParams {
        ItsParams {
            gic_version,
            lpi_id_bits: ITS_MAX_LPI_NRBITS,
            cmd_queue_slots: ITS_CMD_QUEUE_SLOTS,
            costs,
            poll_interval: SimDuration::from_us(1),
            poll_count: ITS_POLL_COUNT,
            collections: cpus,
            direct_lpi: false,
            vpe_id_bits: ITS_MAX_VPEID_BITS,
        }
    }

    /// vPE IDs the host can hand out: `ITS_MAX_VPEID` = `2^vpe_id_bits`.
    pub fn vpe_id_capacity(&self) -> u32 {
        1u32 << self.vpe_id_bits
    }

    /// The INTID bits Linux actually uses: `min(lpi_id_bits, ITS_MAX_LPI_NRBITS)`.
    pub fn effective_lpi_id_bits(&self) -> u32 {
        self.lpi_id_bits.min(ITS_MAX_LPI_NRBITS)
    }

    /// Usable LPIs: `2^bits - 8192` with the capped bit count (57,344 with 16 bits).
    pub fn lpi_capacity(&self) -> u32 {
        (1u32 << self.effective_lpi_id_bits()) - LPI_INTID_BASE
    }

    /// Whether invalidations go to the redistributor directly (DirectLPI, or any GICv4.1).
    pub fn has_direct_lpi(&self) -> bool {
        self.direct_lpi || self.gic_version == GicVersion::V4_1
    }

    /// Checks the ranges the model relies on.
    pub fn validate(&self) -> Result<(), ItsParamError> {
        if !(14..=24).contains(&self.lpi_id_bits) {
            return Err(ItsParamError::LpiIdBits(self.lpi_id_bits));
        }
        if self.cmd_queue_slots < 3 {
            return Err(ItsParamError::CommandQueueSlots(self.cmd_queue_slots));
        }
        if self.collections == 0 {
            return Err(ItsParamError::NoCollections);
        }
        if self.poll_interval == SimDuration::ZERO {
            return Err(ItsParamError::ZeroPollInterval);
        }
        if self.poll_count == 0 {
            return Err(ItsParamError::ZeroPollCount);
        }
        let vpe_bits_ok = match self.gic_version {
            GicVersion::V4_1 => (1..=ITS_MAX_VPEID_BITS).contains(&self.vpe_id_bits),
            _ => self.vpe_id_bits == ITS_MAX_VPEID_BITS,
        };
        if !vpe_bits_ok {
            return Err(ItsParamError::VpeIdBits(self.vpe_id_bits));
        }
        Ok(())
    }
}

/// A parameter outside what the model (or the architecture) accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItsParamError {
    /// `lpi_id_bits` outside 14..=24 (the architecture's IDbits range; LPIs need at least 14).
    LpiIdBits(u32),
    /// Fewer than 3 queue slots: a command and its SYNC could never be outstanding together.
    CommandQueueSlots(u32),
    /// No collections (no CPUs).
    NoCollections,
    /// A zero poll interval would poll forever at one instant.
    ZeroPollInterval,
    /// A zero poll count.
    ZeroPollCount,
    /// `vpe_id_bits` other than 16 before GICv4.1, or outside 1..=16 on GICv4.1.
    VpeIdBits(u32),
}

impl fmt::Display for ItsParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItsParamError::LpiIdBits(b) => write!(f, "lpi_id_bits {b} outside 14..=24"),
            ItsParamError::CommandQueueSlots(n) => write!(f, "command queue of {n} slots (need at least 3)"),
            ItsParamError::NoCollections => f.write_str("no collections (no CPUs)"),
            ItsParamError::ZeroPollInterval => f.write_str("poll interval is zero"),
            ItsParamError::ZeroPollCount => f.write_str("poll count is zero"),
            ItsParamError::VpeIdBits(b) => write!(f, "vpe_id_bits {b}: 16, or 1..=16 on GICv4.1"),
        }
    }
}

impl std::error::Error for ItsParamError {}

/// A Linux-level operation that failed: the modelled outcome, with the kernel's error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItsError {
    /// `its_lpi_alloc` found no free LPI at all (device), or fewer than the VM's vCPUs
    /// (doorbells). `granted` is what the halving search found (0 for a device). The kernel
    /// prints nothing: `alloc_lpi_range` returns `-ENOSPC`, `its_lpi_alloc` NULL and
    /// `its_msi_prepare` `-ENOMEM` (only `pr_debug("ITS: alloc %u:%u")` exists), so the
    /// driver just sees its MSI/MSI-X allocation fail.
    LpiExhausted {
        /// LPIs asked for (after Linux's power-of-two rounding).
        requested: u32,
        /// LPIs the allocator could offer.
        granted: u32,
    },
    /// `its_alloc_device_irq`: no free aligned region in the device's LPI block.
    EventsExhausted {
        /// The device.
        device: ItsDeviceId,
        /// Events asked for.
        requested: u32,
    },
    /// The device was never created (or was torn down).
    UnknownDevice(ItsDeviceId),
    /// The event is not allocated on the device.
    UnknownEvent {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
    },
    /// The operation needs an activated event (MAPTI done).
    EventInactive {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
    },
    /// The event is already activated.
    EventActive {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
    },
    /// The event is forwarded to a vCPU: physical affinity and teardown are refused.
    Forwarded {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
    },
    /// The event is not forwarded to a vCPU.
    NotForwarded {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
    },
    /// No collection for this CPU (`cpu >= nr_cpu_ids`).
    InvalidCpu(crate::ids::CpuId),
    /// The ITS is GICv3: no vPEs, no vLPIs ("Need a v4 ITS").
    NoVirtualLpis,
    /// No such vPE.
    UnknownVpe(VpeId),
    /// No such VM.
    UnknownVm(VmId),
    /// The device already forwards events to another VM.
    VmMismatch(ItsDeviceId),
    /// The VM still has vLPIs forwarded to it.
    VmBusy(VmId),
    /// The DeviceID is the GICv4.0 vPE proxy's.
    ProxyClash(ItsDeviceId),
    /// A count of zero was requested.
    ZeroCount,
    /// `its_vpe_id_alloc` found no free vPE ID for one of the VM's vCPUs: the IDA of
    /// `ITS_MAX_VPEID` IDs is shared by every VM's vPEs (`-ENOSPC`; the VM's doorbell LPIs
    /// and the IDs already taken are given back).
    VpeIdsExhausted {
        /// vPE IDs asked for (the VM's vCPUs).
        requested: u32,
        /// vPE IDs free.
        free: u32,
    },
}

impl ItsError {
    /// The kernel's error code for this outcome.
    pub fn errno(&self) -> &'static str {
        match self {
            ItsError::LpiExhausted { .. } => "-ENOMEM",
            ItsError::EventsExhausted { .. } | ItsError::VpeIdsExhausted { .. } => "-ENOSPC",
            _ => "-EINVAL",
        }
    }

    /// What the kernel prints, if anything.
    pub fn kernel_message(&self) -> Option<&'static str> {
        match self {
            // its_lpi_alloc and its_create_device print nothing; its_msi_prepare returns -ENOMEM.
            ItsError::LpiExhausted { .. } | ItsError::EventsExhausted { .. } => None,
            ItsError::ProxyClash(_) => Some("DevId %x clashes with GICv4 VPE proxy device"),
            // vgic_v4_init, on its_alloc_vcpu_irqs failing.
            ItsError::VpeIdsExhausted { .. } => Some("VPE IRQ allocation failure"),
            _ => None,
        }
    }
}

impl fmt::Display for ItsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItsError::LpiExhausted { requested, granted } => {
                write!(f, "LPI space exhausted: {requested} requested, {granted} available ({})", self.errno())
            }
            ItsError::EventsExhausted { device, requested } => {
                write!(f, "device {:#x}: no room for {requested} events (-ENOSPC)", device.0)
            }
            ItsError::UnknownDevice(d) => write!(f, "unknown device {:#x}", d.0),
            ItsError::UnknownEvent { device, event } => {
                write!(f, "device {:#x}: event {} not allocated", device.0, event.0)
            }
            ItsError::EventInactive { device, event } => {
                write!(f, "device {:#x}: event {} not activated", device.0, event.0)
            }
            ItsError::EventActive { device, event } => {
                write!(f, "device {:#x}: event {} already active", device.0, event.0)
            }
            ItsError::Forwarded { device, event } => {
                write!(f, "device {:#x}: event {} is forwarded", device.0, event.0)
            }
            ItsError::NotForwarded { device, event } => {
                write!(f, "device {:#x}: event {} not forwarded", device.0, event.0)
            }
            ItsError::InvalidCpu(c) => write!(f, "no collection for {c}"),
            ItsError::NoVirtualLpis => f.write_str("GICv3 ITS has no vLPI support"),
            ItsError::UnknownVpe(v) => write!(f, "unknown vPE {}", v.0),
            ItsError::UnknownVm(v) => write!(f, "unknown VM {}", v.0),
            ItsError::VmMismatch(d) => write!(f, "device {:#x} forwards to another VM", d.0),
            ItsError::VmBusy(v) => write!(f, "VM {} still has forwarded vLPIs", v.0),
            ItsError::ProxyClash(d) => write!(f, "DevId {:x} clashes with GICv4 VPE proxy device", d.0),
            ItsError::ZeroCount => f.write_str("zero count"),
            ItsError::VpeIdsExhausted { requested, free } => {
                write!(f, "vPE IDs exhausted: {requested} requested, {free} free ({})", self.errno())
            }
        }
    }
}

impl std::error::Error for ItsError {}

/// `roundup_pow_of_two` for the small counts used here (0 maps to 1).
fn round_up_pow2(n: u32) -> u32 {
    n.max(1).next_power_of_two()
}

/// `get_count_order`: the order of the smallest power of two ≥ `n` (n ≥ 1).
fn count_order(n: u32) -> u32 {
    round_up_pow2(n).trailing_zeros()
}
