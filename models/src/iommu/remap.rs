//! VT-d interrupt remapping: IRTE tables with Linux's block allocator, the hardware lookup of
//! a remappable interrupt request, the interrupt entry cache, fault recording and the
//! kernel's rate-limited fault handler, and the global IRTE update lock.
//!
//! # What is modelled
//!
//! - **IRTE tables**, one per IOMMU (DRHD), of up to 65,536 entries. Allocation follows
//!   Linux `alloc_irte()`: a bitmap searched lowest-address first for a naturally aligned
//!   block of 2^mask entries (a multi-vector request is rounded up to a power of two), with
//!   the mask limited by ECAP.MHMV. A full bitmap is [`IrteAllocError::Full`] ("can't
//!   allocate an IRTE"). Blocks are freed whole, as `clear_entries()` does.
//! - **Entries** in remapped format (present, FPD, vector, 32-bit destination, SID/SQ/SVT)
//!   and posted format (IM=1, URG, virtual vector, and the posted-interrupt descriptor
//!   address as a [`PiDescId`] handle).
//! - **The hardware lookup** of a request (handle, optional subhandle, requester id): it
//!   returns the remapped or posted target, or one of the seven interrupt-remapping fault
//!   reasons 0x20–0x26 of dmar.c `irq_remap_fault_reasons[]`. Checks run in the order
//!   request decode (0x25, 0x20, 0x21), cache, table read (0x23), then FPD qualifies the
//!   rest: present (0x22), reserved fields (0x24), source-id verification (0x26). SVT=1
//!   compares the requester id under the SQ mask (SQ=0 all 16 bits, 1 ignores bit 2,
//!   2 ignores bits 2:1, 3 ignores bits 2:0); SVT=2 accepts buses from SID\[15:8\] to
//!   SID\[7:0\] inclusive. A fault always blocks the request; FPD=1 only stops it being
//!   recorded.
//! - **Fault recording**: NFR fault recording registers used as a ring from a hardware
//!   index. A fault goes into the next register if it is free; otherwise Primary Fault
//!   Overflow (PFO) is set and the fault is lost. While PFO is set nothing is recorded. A
//!   fault event (the IOMMU's interrupt) is raised when a fault is recorded with none
//!   pending. [`RemapUnit::service_faults`] is the kernel's `dmar_fault()`: one rate-limited
//!   "handling fault status" line, then from the fault record index, one `__ratelimit()` call
//!   per loop pass (including the pass that finds the empty register and stops), each record
//!   logged or silently cleared, and finally PFO/PPF cleared. The rate limit is
//!   `___ratelimit()` of lib/ratelimit.c: a burst per interval, the window restarting at the
//!   first call after `begin + interval`, and a "N callbacks suppressed" report at the restart.
//!   Like the kernel's function-static state it is shared by every IOMMU.
//! - **The interrupt entry cache** (IEC): an LRU cache of IRTEs per IOMMU with a hit and a miss
//!   latency, invalidated by index, by masked index range, or globally. Only present entries
//!   without reserved-field errors are cached; a cached entry serves requests until it is
//!   invalidated, even if the table changed (that is why Linux flushes after every write).
//! - **The update path** of Linux `modify_irte()`: one global raw spinlock `irq_2_ir_lock`,
//!   shared by all CPUs and all IOMMUs, modelled as a FIFO server over simulated time (x86
//!   raw spinlocks are queued spinlocks, FIFO among waiters). An update holds it for the IRTE
//!   write (a dearer write when the old or new entry is posted: cmpxchg16b) plus a synchronous
//!   IEC invalidation (`qi_flush_iec`: invalidation descriptor + wait descriptor). The new
//!   entry becomes visible to the hardware when its write lands and the cached copy is dropped
//!   when the invalidation completes. IRTE allocation (`alloc_irte`) and freeing
//!   (`clear_entries` + a masked IEC flush) hold the same lock. Totals of waits show the
//!   contention of a mass affinity change or a VM start with thousands of vectors.
//!
//! # What is not modelled (and why)
//!
//! - The real IEC organisation (size, associativity, replacement) is unpublished; LRU of a
//!   configurable number of entries is the neutral choice.
//! - What the posted path does after the lookup (setting the PIR bit, ON/SN, the notification)
//!   belongs to the posted-interrupt descriptor model: the lookup returns the descriptor handle.
//! - Delivery-mode, trigger-mode, redirection-hint and destination-mode fields: the simulator
//!   delivers fixed, edge, physical interrupts only.
//! - Variable cost of the bitmap search, the cache flush of non-coherent IOMMUs and other users
//!   of the invalidation queue (IOTLB flushes for DMA): no figures exist; the search cost is
//!   one constant and the queue is assumed idle.
//! - Jiffies: the rate-limit window is compared in picoseconds instead of ticks (a difference
//!   below one tick).
//! - The time the kernel spends in `dmar_fault()` and printing: the caller decides when the
//!   handler runs and charges its CPU time.
//! - The Advanced Fault Log and DMA-remapping faults: only interrupt-remapping faults exist.
//! - When the bitmap changes: a timed allocation or free updates the bitmap when it is
//!   requested, not when the lock is taken. The lock is FIFO, so bitmap operations happen in
//!   the same order and give the same blocks; only entry writes and invalidations are timed.
//! - Index arithmetic: handle + subhandle is not truncated to 16 bits; a sum past the table
//!   is fault 0x21 (QEMU wraps it; the specification text was not read).
//!
//! # Parameters and their sources
//!
//! Paths are Linux kernel files; "calibration" is /work/shared/calibration.md.
//!
//! - Table size 65,536 entries: `INTR_REMAP_TABLE_ENTRIES`, drivers/iommu/intel/iommu.h;
//!   calibration §3 "Interrupt remapping table size".
//! - Power-of-two blocks, mask ≤ ECAP.MHMV (bits 23:20, `ecap_max_handle_mask`):
//!   irq_remapping.c `alloc_irte`; calibration §3 "IRTE allocation for multi-MSI".
//! - IRTE fields and SVT/SQ semantics: irq_remapping.c `set_irte_sid`, `SQ_13_IGNORE_*`,
//!   `set_irte_verify_bus`, `set_msi_sid`; calibration §3 "IRTE remapped-format fields".
//! - Posted IRTE (IM, URG, vector, PDA): calibration §2 "Posted IRTE format"; irq_remapping.c
//!   `intel_ir_set_vcpu_affinity`.
//! - Fault reasons 0x20–0x26 and their wording: dmar.c `irq_remap_fault_reasons[]`;
//!   calibration §3 "Interrupt-remapping fault reasons".
//! - 1–256 fault recording registers (CAP bits 47:40 + 1): iommu.h `cap_num_fault_regs`;
//!   calibration §3 "Fault recording registers".
//! - Handler and rate limit, burst 10 per 5 s: dmar.c `dmar_fault`; lib/ratelimit.c
//!   `___ratelimit`; include/linux/ratelimit_types.h; calibration §3 "Linux fault-handler rate
//!   limit".
//! - 32-bit destinations in x2APIC (EIM) mode, else bits 15:8: irq_remapping.c `IRTE_DEST`.
//! - Compatibility format blocked (GCMD.CFI cleared): irq_remapping.c
//!   `iommu_enable_irq_remapping`.
//! - Update sequence (lock, write or cmpxchg16b, `qi_flush_iec`): irq_remapping.c
//!   `modify_irte`, `clear_entries`; calibration §3 "IRTE update sequence (Linux)".
//! - IRTE write, posted write, IEC invalidation and allocation costs: required inputs
//!   ([`RemapUnsourced`]), no published figure: calibration §3 "Cost of IEC invalidation +
//!   wait: not found" and open question 3.
//! - IEC size, hit and miss latency, MHMV and NFR of a given part: required inputs; the
//!   structure is unpublished and the capability values are hardware-specific.
//! - FPD qualifying even "not present", PFO stopping all recording, optional collapsing of
//!   faults from one requester: QEMU hw/i386/intel_iommu.c `vtd_irte_get` and
//!   `vtd_report_frcd_fault` (the VT-d specification text itself was not read).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use sim::{SimDuration, SimTime};

use crate::ids::{CpuId, Vector};

/// Entries in one interrupt-remapping table (Linux always allocates the maximum).
pub const INTR_REMAP_TABLE_ENTRIES: u32 = 65_536;

/// Largest value of ECAP.MHMV, a 4-bit field (iommu.h `ecap_max_handle_mask`).
pub const MAX_HANDLE_MASK_LIMIT: u8 = 15;

/// Most fault recording registers one IOMMU can have (CAP.NFR is 8 bits, plus one).
pub const FAULT_RECORDING_REGISTERS_MAX: u16 = 256;

/// Kernel log rate-limit burst (`DEFAULT_RATELIMIT_BURST`, include/linux/ratelimit_types.h).
pub const DEFAULT_RATELIMIT_BURST: u32 = 10;

/// Kernel log rate-limit interval (`DEFAULT_RATELIMIT_INTERVAL` = 5 * HZ).
pub const DEFAULT_RATELIMIT_INTERVAL: SimDuration = SimDuration::from_ms(5_000);

// ---------------------------------------------------------------------------------------------
// Entries
// ---------------------------------------------------------------------------------------------

/// A remapped-format IRTE as the platform sets it up: destination and vector only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Irte {
    /// Destination APIC id (32 bits in x2APIC mode).
    pub dest_apic_id: u32,
    /// IDT vector delivered at the destination.
    pub vector: u8,
}

/// One IOMMU (DMAR hardware unit) of a [`RemapUnit`], numbered from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IommuId(pub u16);

/// A posted-interrupt descriptor, standing for the PDA field of a posted IRTE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PiDescId(pub u32);

/// The SQ field: which requester-id bits SVT=1 verification compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceQualifier {
    /// SQ=0: all 16 bits (`SQ_ALL_16`).
    All16,
    /// SQ=1: ignore bit 2 (`SQ_13_IGNORE_1`).
    IgnoreBit2,
    /// SQ=2: ignore bits 2:1 (`SQ_13_IGNORE_2`).
    IgnoreBits2To1,
    /// SQ=3: ignore bits 2:0, the whole function number (`SQ_13_IGNORE_3`).
    IgnoreBits2To0,
}

impl SourceQualifier {
    /// The 2-bit SQ field value.
    pub fn code(self) -> u8 {
        match self {
            SourceQualifier::All16 => 0,
            SourceQualifier::IgnoreBit2 => 1,
            SourceQualifier::IgnoreBits2To1 => 2,
            SourceQualifier::IgnoreBits2To0 => 3,
        }
    }

    /// The qualifier for a 2-bit field value, `None` above 3.
    pub fn from_code(code: u8) -> Option<SourceQualifier> {
        match code {
            0 => Some(SourceQualifier::All16),
            1 => Some(SourceQualifier::IgnoreBit2),
            2 => Some(SourceQualifier::IgnoreBits2To1),
            3 => Some(SourceQualifier::IgnoreBits2To0),
            _ => None,
        }
    }

    /// The requester-id bits that are compared.
    pub fn compare_mask(self) -> u16 {
        match self {
            SourceQualifier::All16 => 0xffff,
            SourceQualifier::IgnoreBit2 => 0xfffb,
            SourceQualifier::IgnoreBits2To1 => 0xfff9,
            SourceQualifier::IgnoreBits2To0 => 0xfff8,
        }
    }
}

/// The SVT field and the SID/SQ values it uses: how the requester id is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceValidation {
    /// SVT=0: no verification.
    None,
    /// SVT=1: the requester id must equal `sid` in the bits `sq` selects.
    RequesterId {
        /// The SID field: bus in bits 15:8, device/function in 7:0.
        sid: u16,
        /// The SQ field.
        sq: SourceQualifier,
    },
    /// SVT=2: the requester's bus must lie in `start_bus..=end_bus` (SID\[15:8\], SID\[7:0\]).
    BusRange {
        /// First accepted bus.
        start_bus: u8,
        /// Last accepted bus.
        end_bus: u8,
    },
    /// SVT=3: a reserved encoding; the hardware reports reserved fields in the IRTE (0x24).
    Reserved,
}

impl SourceValidation {
    /// The 2-bit SVT field value.
    pub fn svt(self) -> u8 {
        match self {
            SourceValidation::None => 0,
            SourceValidation::RequesterId { .. } => 1,
            SourceValidation::BusRange { .. } => 2,
            SourceValidation::Reserved => 3,
        }
    }

    /// The 16-bit SID field value.
    pub fn sid_field(self) -> u16 {
        match self {
            SourceValidation::RequesterId { sid, .. } => sid,
            SourceValidation::BusRange { start_bus, end_bus } => u16::from(start_bus) << 8 | u16::from(end_bus),
            SourceValidation::None | SourceValidation::Reserved => 0,
        }
    }

    /// Whether a request from `requester_id` passes verification (a reserved SVT never does).
    pub fn accepts(self, requester_id: u16) -> bool {
        match self {
            SourceValidation::None => true,
            SourceValidation::RequesterId { sid, sq } => (requester_id ^ sid) & sq.compare_mask() == 0,
            SourceValidation::BusRange { start_bus, end_bus } => {
                let bus = (requester_id >> 8) as u8;
                (start_bus..=end_bus).contains(&bus)
            }
            SourceValidation::Reserved => false,
        }
    }
}

/// The format-specific part of an IRTE (the IM bit chooses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrteMode {
    /// IM=0, remapped format: the interrupt goes to a CPU.
    Remapped {
        /// Destination (APIC id; on x86 it equals the CPU index).
        dest: CpuId,
        /// IDT vector at the destination.
        vector: Vector,
    },
    /// IM=1, posted format: the interrupt is posted into a descriptor.
    Posted {
        /// The posted-interrupt descriptor (the PDA field).
        descriptor: PiDescId,
        /// Virtual vector posted into the descriptor's PIR.
        vector: Vector,
        /// URG: notify even when the descriptor's SN bit is set.
        urgent: bool,
    },
}

/// One interrupt-remapping table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrteEntry {
    /// P: the entry is valid.
    pub present: bool,
    /// FPD: faults through this entry are not recorded (the request is still blocked).
    pub fpd: bool,
    /// The remapped or posted fields.
    pub mode: IrteMode,
    /// SVT, SID and SQ.
    pub source: SourceValidation,
    /// Some reserved bit is non-zero (a software bug the hardware reports as 0x24).
    pub reserved_bits_set: bool,
}

impl IrteEntry {
    /// An all-zero entry, as Linux leaves a free or deactivated one.
    pub const NOT_PRESENT: IrteEntry = IrteEntry {
        present: false,
        fpd: false,
        mode: IrteMode::Remapped { dest: CpuId(0), vector: Vector(0) },
        source: SourceValidation::None,
        reserved_bits_set: false,
    };

    /// A present remapped-format entry without source verification.
    pub fn remapped(dest: CpuId, vector: Vector) -> IrteEntry {
        IrteEntry { present: true, mode: IrteMode::Remapped { dest, vector }, ..IrteEntry::NOT_PRESENT }
    }

    /// A present posted-format entry without source verification.
    pub fn posted(descriptor: PiDescId, vector: Vector, urgent: bool) -> IrteEntry {
        IrteEntry { present: true, mode: IrteMode::Posted { descriptor, vector, urgent }, ..IrteEntry::NOT_PRESENT }
    }

    /// The same entry with source verification `source`.
    pub fn with_source(self, source: SourceValidation) -> IrteEntry {
        IrteEntry { source, ..self }
    }

    /// The same entry with FPD set to `fpd`.
    pub fn with_fpd(self, fpd: bool) -> IrteEntry {
        IrteEntry { fpd, ..self }
    }

    /// Whether the entry is in posted format (IM=1).
    pub fn is_posted(&self) -> bool {
        matches!(self.mode, IrteMode::Posted { .. })
    }
}

impl From<Irte> for IrteEntry {
    fn from(irte: Irte) -> IrteEntry {
        IrteEntry::remapped(CpuId(irte.dest_apic_id), Vector(irte.vector))
    }
}

// ---------------------------------------------------------------------------------------------
// Requests, results and faults
// ---------------------------------------------------------------------------------------------

/// The interrupt message as the remapping hardware decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptMessage {
    /// A compatibility-format MSI (address bit 4 clear).
    Compatibility {
        /// Destination APIC id (8 bits in this format).
        dest_apic_id: u8,
        /// Vector in the data word.
        vector: Vector,
    },
    /// A remappable-format MSI (address bit 4 set).
    Remappable {
        /// The 16-bit handle (address bits 19:5 and 2).
        handle: u16,
        /// The subhandle from data\[15:0\], present when SHV is set; added to the handle.
        subhandle: Option<u16>,
        /// A reserved bit of the address or data is set (fault 0x20).
        reserved_bits_set: bool,
    },
}

/// One interrupt request reaching the remapping hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemapRequest {
    /// The requester id (bus in bits 15:8, device/function in 7:0).
    pub requester_id: u16,
    /// The decoded message.
    pub message: InterruptMessage,
}

impl RemapRequest {
    /// A well-formed remappable request.
    pub fn remappable(requester_id: u16, handle: u16, subhandle: Option<u16>) -> RemapRequest {
        RemapRequest {
            requester_id,
            message: InterruptMessage::Remappable { handle, subhandle, reserved_bits_set: false },
        }
    }

    /// A compatibility-format request.
    pub fn compatibility(requester_id: u16, dest_apic_id: u8, vector: Vector) -> RemapRequest {
        RemapRequest { requester_id, message: InterruptMessage::Compatibility { dest_apic_id, vector } }
    }
}

/// Where a request that passed the remapping hardware goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemapTarget {
    /// Deliver `vector` to CPU `dest`.
    Remapped {
        /// Destination CPU.
        dest: CpuId,
        /// Vector.
        vector: Vector,
    },
    /// Post `vector` into `descriptor` (the posted-interrupt model takes over).
    Posted {
        /// The posted-interrupt descriptor.
        descriptor: PiDescId,
        /// Virtual vector.
        vector: Vector,
        /// URG bit of the IRTE.
        urgent: bool,
    },
    /// A compatibility-format interrupt passed through untranslated (CFI set, xAPIC mode).
    Compatibility {
        /// Destination CPU.
        dest: CpuId,
        /// Vector.
        vector: Vector,
    },
}

/// Why the remapping hardware blocked an interrupt request (VT-d fault reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RemapFault {
    /// 0x20: reserved fields set in the remappable request.
    ReservedFieldsInRequest,
    /// 0x21: interrupt index exceeded the interrupt-remapping table size.
    IndexBeyondTable,
    /// 0x22: present bit in IRTE is clear.
    EntryNotPresent,
    /// 0x23: error reading the table that IRTA points to.
    TableAccessError,
    /// 0x24: reserved fields set in the IRTE.
    ReservedFieldsInIrte,
    /// 0x25: compatibility-format interrupt blocked.
    CompatBlocked,
    /// 0x26: source-id verification failed.
    SourceIdVerification,
}

impl RemapFault {
    /// Every fault reason, in code order.
    pub const ALL: [RemapFault; 7] = [
        RemapFault::ReservedFieldsInRequest,
        RemapFault::IndexBeyondTable,
        RemapFault::EntryNotPresent,
        RemapFault::TableAccessError,
        RemapFault::ReservedFieldsInIrte,
        RemapFault::CompatBlocked,
        RemapFault::SourceIdVerification,
    ];

    /// The VT-d fault reason code.
    pub fn code(self) -> u8 {
        0x20 + self.index() as u8
    }

    /// Position in [`RemapFault::ALL`] (code − 0x20), for per-reason counter arrays.
    pub fn index(self) -> usize {
        match self {
            RemapFault::ReservedFieldsInRequest => 0,
            RemapFault::IndexBeyondTable => 1,
            RemapFault::EntryNotPresent => 2,
            RemapFault::TableAccessError => 3,
            RemapFault::ReservedFieldsInIrte => 4,
            RemapFault::CompatBlocked => 5,
            RemapFault::SourceIdVerification => 6,
        }
    }

    /// The fault for a reason code, `None` outside 0x20–0x26.
    pub fn from_code(code: u8) -> Option<RemapFault> {
        code.checked_sub(0x20).and_then(|i| RemapFault::ALL.get(usize::from(i)).copied())
    }

    /// The kernel's wording (dmar.c `irq_remap_fault_reasons`).
    pub fn reason(self) -> &'static str {
        match self {
            RemapFault::ReservedFieldsInRequest => "Detected reserved fields in the decoded interrupt-remapped request",
            RemapFault::IndexBeyondTable => "Interrupt index exceeded the interrupt-remapping table size",
            RemapFault::EntryNotPresent => "Present field in the IRTE entry is clear",
            RemapFault::TableAccessError => "Error accessing interrupt-remapping table pointed by IRTA_REG",
            RemapFault::ReservedFieldsInIrte => "Detected reserved fields in the IRTE entry",
            RemapFault::CompatBlocked => "Blocked a compatibility format interrupt request",
            RemapFault::SourceIdVerification => "Blocked an interrupt request due to source-id verification failure",
        }
    }
}

impl fmt::Display for RemapFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // dmar_fault_do_one() prints the code with %02d: 0x22 reads "fault reason 34".
        write!(f, "[fault reason {:02}] {}", self.code(), self.reason())
    }
}

// ---------------------------------------------------------------------------------------------
// Allocation results and errors
// ---------------------------------------------------------------------------------------------

/// Every IRTE is in use ("can't allocate an IRTE" in irq_remapping.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrteTableFull;

impl fmt::Display for IrteTableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("can't allocate an IRTE")
    }
}

/// Why an IRTE block could not be allocated (`alloc_irte` returning -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrteAllocError {
    /// A request for zero entries.
    ZeroCount,
    /// The rounded-up block needs a mask above ECAP.MHMV ("Requested mask %x exceeds the max
    /// invalidation handle mask value").
    MaskTooLarge {
        /// log2 of the rounded-up count.
        mask: u32,
        /// The table's MHMV.
        max: u8,
    },
    /// No free naturally aligned block of that size.
    Full,
}

impl From<IrteTableFull> for IrteAllocError {
    fn from(_: IrteTableFull) -> IrteAllocError {
        IrteAllocError::Full
    }
}

impl fmt::Display for IrteAllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IrteAllocError::ZeroCount => f.write_str("IRTE allocation of zero entries"),
            IrteAllocError::MaskTooLarge { mask, max } => {
                write!(f, "Requested mask {mask:x} exceeds the max invalidation handle mask value {max:x}")
            }
            IrteAllocError::Full => IrteTableFull.fmt(f),
        }
    }
}

/// A naturally aligned block of 2^`mask` IRTEs starting at `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IrteBlock {
    /// First index (the handle programmed into the device).
    pub base: u32,
    /// log2 of the block size.
    pub mask: u8,
}

impl IrteBlock {
    /// Entries in the block.
    pub fn count(self) -> u32 {
        1 << self.mask
    }

    /// Whether `index` lies in the block.
    pub fn contains(self, index: u32) -> bool {
        index >= self.base && index - self.base < self.count()
    }
}

/// A table operation named an index or block the table does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrteOpError {
    /// The index is at or beyond the table size.
    IndexBeyondTable {
        /// The index.
        index: u32,
    },
    /// The index is not part of an allocated block.
    NotAllocated {
        /// The index.
        index: u32,
    },
    /// No allocated block starts at `base` with that mask.
    NotABlock {
        /// The block named.
        block: IrteBlock,
    },
}

impl fmt::Display for IrteOpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IrteOpError::IndexBeyondTable { index } => write!(f, "IRTE index {index} beyond the table"),
            IrteOpError::NotAllocated { index } => write!(f, "IRTE index {index} is not allocated"),
            IrteOpError::NotABlock { block } => {
                write!(f, "no allocated IRTE block at {} of mask {}", block.base, block.mask)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// One IOMMU's interrupt-remapping table and its allocation bitmap.
#[derive(Debug, Clone)]
pub struct IrteTable {
    entries: Vec<IrteEntry>,
    bitmap: Vec<u64>,
    /// `mask + 1` at the base of every allocated block, 0 elsewhere.
    block_heads: Vec<u8>,
    used: u32,
    max_handle_mask: u8,
    access_errors: BTreeSet<u32>,
}

impl IrteTable {
    /// An empty table of `entry_count` entries whose MHMV is the largest possible (15).
    ///
    /// # Panics
    /// If `entry_count` is not in 1..=65,536.
    pub fn new(entry_count: u32) -> IrteTable {
        IrteTable::with_max_handle_mask(entry_count, MAX_HANDLE_MASK_LIMIT)
    }

    /// An empty table of `entry_count` entries allowing blocks up to 2^`max_handle_mask`.
    ///
    /// # Panics
    /// If `entry_count` is not in 1..=65,536 or `max_handle_mask` exceeds 15.
    pub fn with_max_handle_mask(entry_count: u32, max_handle_mask: u8) -> IrteTable {
        assert!((1..=INTR_REMAP_TABLE_ENTRIES).contains(&entry_count), "IRTE table size out of range");
        assert!(max_handle_mask <= MAX_HANDLE_MASK_LIMIT, "MHMV is a 4-bit field");
        IrteTable {
            entries: vec![IrteEntry::NOT_PRESENT; entry_count as usize],
            bitmap: vec![0; entry_count.div_ceil(64) as usize],
            block_heads: vec![0; entry_count as usize],
            used: 0,
            max_handle_mask,
            access_errors: BTreeSet::new(),
        }
    }

    /// Entries in use (allocated, whether or not present).
    pub fn used(&self) -> u32 {
        self.used
    }

    /// Size of the table.
    pub fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }

    /// The largest block mask allocations may use (ECAP.MHMV).
    pub fn max_handle_mask(&self) -> u8 {
        self.max_handle_mask
    }

    /// Allocates one entry and fills it with a present remapped-format entry without source
    /// verification, returning its handle.
    pub fn alloc(&mut self, irte: Irte) -> Result<u16, IrteTableFull> {
        let block = self.alloc_block(1).map_err(|_| IrteTableFull)?;
        self.entries[block.base as usize] = IrteEntry::from(irte);
        Ok(u16::try_from(block.base).expect("tables hold at most 65,536 entries"))
    }

    /// Allocates a block for `count` entries like `alloc_irte()`: rounded up to a power of
    /// two, naturally aligned, the lowest free one. The entries stay not present.
    pub fn alloc_block(&mut self, count: u32) -> Result<IrteBlock, IrteAllocError> {
        let mask = Self::mask_for(count)?;
        if mask > u32::from(self.max_handle_mask) {
            return Err(IrteAllocError::MaskTooLarge { mask, max: self.max_handle_mask });
        }
        let mask = mask as u8;
        let base = self.find_free_region(mask).ok_or(IrteAllocError::Full)?;
        let block = IrteBlock { base, mask };
        self.set_region(block, true);
        self.block_heads[base as usize] = mask + 1;
        self.used += block.count();
        Ok(block)
    }

    /// Frees a whole block and clears its entries (`clear_entries()`).
    pub fn free_block(&mut self, block: IrteBlock) -> Result<(), IrteOpError> {
        self.release_block(block)?;
        self.clear_entries(block);
        Ok(())
    }

    /// Rewrites an allocated entry with a present remapped-format entry (an affinity change
    /// or a move), untimed.
    ///
    /// # Panics
    /// If `handle` was never allocated: that is a bug in the caller. [`IrteTable::set_entry`]
    /// returns an error instead.
    pub fn update(&mut self, handle: u16, irte: Irte) {
        let index = u32::from(handle);
        assert!(self.is_allocated(index), "updating an IRTE that was never allocated");
        self.entries[index as usize] = IrteEntry::from(irte);
    }

    /// Writes an allocated entry directly, bypassing the update lock and caches.
    pub fn set_entry(&mut self, index: u32, entry: IrteEntry) -> Result<(), IrteOpError> {
        self.check_allocated(index)?;
        self.entries[index as usize] = entry;
        Ok(())
    }

    /// The entry at `index`, `None` beyond the table.
    pub fn entry(&self, index: u32) -> Option<&IrteEntry> {
        self.entries.get(index as usize)
    }

    /// Whether `index` belongs to an allocated block.
    pub fn is_allocated(&self, index: u32) -> bool {
        index < self.capacity() && self.bitmap[(index / 64) as usize] >> (index % 64) & 1 == 1
    }

    /// Makes reads of entry `index` fail (fault 0x23), or heal again: fault injection.
    pub fn set_access_error(&mut self, index: u32, failing: bool) {
        if failing {
            self.access_errors.insert(index);
        } else {
            self.access_errors.remove(&index);
        }
    }

    /// Whether reading entry `index` fails.
    pub fn has_access_error(&self, index: u32) -> bool {
        self.access_errors.contains(&index)
    }

    /// The allocated blocks in index order.
    pub fn blocks(&self) -> impl Iterator<Item = IrteBlock> + '_ {
        self.block_heads
            .iter()
            .enumerate()
            .filter(|(_, h)| **h != 0)
            .map(|(base, h)| IrteBlock { base: base as u32, mask: h - 1 })
    }

    /// What the hardware does with a remappable request for `handle`, for callers that model
    /// neither requester ids nor posting: no cache, no fault recording, source verification
    /// skipped, and posted entries are reserved-field faults (a unit without CAP.PI).
    pub fn lookup(&self, handle: u32) -> Result<Irte, RemapFault> {
        let Some(entry) = self.entries.get(handle as usize) else {
            return Err(RemapFault::IndexBeyondTable);
        };
        if self.access_errors.contains(&handle) {
            return Err(RemapFault::TableAccessError);
        }
        if !entry.present {
            return Err(RemapFault::EntryNotPresent);
        }
        match entry.mode {
            IrteMode::Remapped { dest, vector }
                if !entry.reserved_bits_set && entry.source != SourceValidation::Reserved =>
            {
                Ok(Irte { dest_apic_id: dest.0, vector: vector.0 })
            }
            _ => Err(RemapFault::ReservedFieldsInIrte),
        }
    }

    /// Checks the allocator's invariants: blocks aligned, inside the table and disjoint; the
    /// bitmap is exactly their union; `used` is its population.
    pub fn check_invariants(&self) -> Result<(), String> {
        let cap = self.capacity();
        if self.block_heads.len() != cap as usize || self.bitmap.len() != cap.div_ceil(64) as usize {
            return Err("table arrays disagree on the size".into());
        }
        let mut expected = vec![0u64; self.bitmap.len()];
        let mut previous_end = 0u32;
        let mut total = 0u32;
        for block in self.blocks() {
            if block.mask > 16 {
                return Err(format!("block at {} has mask {}", block.base, block.mask));
            }
            let size = block.count();
            if block.base % size != 0 {
                return Err(format!("block at {} of size {size} is not aligned", block.base));
            }
            if block.base < previous_end {
                return Err(format!("block at {} overlaps the one before", block.base));
            }
            if block.base + size > cap {
                return Err(format!("block at {} of size {size} passes the table end", block.base));
            }
            for i in block.base..block.base + size {
                expected[(i / 64) as usize] |= 1 << (i % 64);
            }
            previous_end = block.base + size;
            total += size;
        }
        if expected != self.bitmap {
            return Err("bitmap differs from the union of the blocks".into());
        }
        let population: u32 = self.bitmap.iter().map(|w| w.count_ones()).sum();
        if population != self.used || total != self.used {
            return Err(format!("used {} but bitmap holds {population} and blocks {total}", self.used));
        }
        Ok(())
    }

    fn mask_for(count: u32) -> Result<u32, IrteAllocError> {
        match count {
            0 => Err(IrteAllocError::ZeroCount),
            1 => Ok(0),
            _ => Ok(count.checked_next_power_of_two().map_or(32, u32::trailing_zeros)),
        }
    }

    fn check_allocated(&self, index: u32) -> Result<(), IrteOpError> {
        if index >= self.capacity() {
            Err(IrteOpError::IndexBeyondTable { index })
        } else if !self.is_allocated(index) {
            Err(IrteOpError::NotAllocated { index })
        } else {
            Ok(())
        }
    }

    /// `bitmap_find_free_region()`: the lowest aligned free block of 2^`mask` entries.
    fn find_free_region(&self, mask: u8) -> Option<u32> {
        let size = 1u32 << mask;
        let cap = self.capacity();
        if size >= 64 {
            let words = (size / 64) as usize;
            let mut pos = 0u32;
            while pos + size <= cap {
                let w = (pos / 64) as usize;
                if self.bitmap[w..w + words].iter().all(|&x| x == 0) {
                    return Some(pos);
                }
                pos += size;
            }
            return None;
        }
        let block_bits = (1u64 << size) - 1;
        for (w, &word) in self.bitmap.iter().enumerate() {
            if word == u64::MAX {
                continue;
            }
            let mut offset = 0u32;
            while offset < 64 {
                let pos = w as u32 * 64 + offset;
                if pos + size > cap {
                    return None;
                }
                if word & (block_bits << offset) == 0 {
                    return Some(pos);
                }
                offset += size;
            }
        }
        None
    }

    fn set_region(&mut self, block: IrteBlock, set: bool) {
        let size = block.count();
        if size >= 64 {
            let w = (block.base / 64) as usize;
            let value = if set { u64::MAX } else { 0 };
            self.bitmap[w..w + (size / 64) as usize].fill(value);
        } else {
            let bits = ((1u64 << size) - 1) << (block.base % 64);
            let word = &mut self.bitmap[(block.base / 64) as usize];
            if set {
                *word |= bits;
            } else {
                *word &= !bits;
            }
        }
    }

    /// Releases a block in the bitmap (`bitmap_release_region`), leaving its entries.
    fn release_block(&mut self, block: IrteBlock) -> Result<(), IrteOpError> {
        let head = self.block_heads.get(block.base as usize).copied();
        if head != Some(block.mask.wrapping_add(1)) || block.mask > 16 {
            return Err(IrteOpError::NotABlock { block });
        }
        self.set_region(block, false);
        self.block_heads[block.base as usize] = 0;
        self.used -= block.count();
        Ok(())
    }

    fn clear_entries(&mut self, block: IrteBlock) {
        let start = block.base as usize;
        let end = (start + block.count() as usize).min(self.entries.len());
        self.entries[start..end].fill(IrteEntry::NOT_PRESENT);
    }

    fn write_raw(&mut self, index: u32, entry: IrteEntry) {
        self.entries[index as usize] = entry;
    }
}

// ---------------------------------------------------------------------------------------------
// Interrupt entry cache
// ---------------------------------------------------------------------------------------------

/// Which cached entries an IEC invalidation drops (the IEC invalidation descriptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IecScope {
    /// Every entry (`qi_global_iec`).
    Global,
    /// The 2^`mask` entries whose index equals `index` above bit `mask` (`qi_flush_iec`).
    Index {
        /// IIDX.
        index: u32,
        /// IM: low index bits ignored.
        mask: u8,
    },
}

/// Counts kept by one interrupt entry cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that read the table.
    pub misses: u64,
    /// Entries dropped to make room (least recently used).
    pub evictions: u64,
    /// Invalidation commands executed.
    pub invalidations: u64,
    /// Entries those commands dropped.
    pub entries_invalidated: u64,
}

/// An LRU cache of IRTEs by index. Capacity 0 caches nothing.
///
/// O(1) per lookup: a slot per IRTE index points into an intrusive doubly linked list of
/// cached entries, most recently used first (every delivery looks an entry up, so this is on
/// the simulator's hot path).
#[derive(Debug, Clone)]
pub struct InterruptEntryCache {
    capacity: u32,
    nodes: Vec<CacheNode>,
    free: Vec<u32>,
    /// Node of each IRTE index, `NIL` when not cached (empty when the capacity is 0).
    slot: Vec<u32>,
    /// Most recently used node.
    head: u32,
    /// Least recently used node.
    tail: u32,
    len: u32,
    stats: CacheStats,
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct CacheNode {
    index: u32,
    entry: IrteEntry,
    prev: u32,
    next: u32,
}

impl InterruptEntryCache {
    /// An empty cache of `capacity` entries.
    pub fn new(capacity: u32) -> InterruptEntryCache {
        let slots = if capacity == 0 { 0 } else { INTR_REMAP_TABLE_ENTRIES as usize };
        InterruptEntryCache {
            capacity,
            nodes: Vec::new(),
            free: Vec::new(),
            slot: vec![NIL; slots],
            head: NIL,
            tail: NIL,
            len: 0,
            stats: CacheStats::default(),
        }
    }

    /// Entries the cache can hold.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Entries it holds now.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn node_of(&self, index: u32) -> Option<u32> {
        self.slot.get(index as usize).copied().filter(|&n| n != NIL)
    }

    /// Whether `index` is cached (does not count as a use).
    pub fn contains(&self, index: u32) -> bool {
        self.node_of(index).is_some()
    }

    /// Hit and miss counts.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    fn unlink(&mut self, n: u32) {
        let CacheNode { prev, next, .. } = self.nodes[n as usize];
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            x => self.nodes[x as usize].prev = prev,
        }
    }

    fn push_front(&mut self, n: u32) {
        self.nodes[n as usize].prev = NIL;
        self.nodes[n as usize].next = self.head;
        match self.head {
            NIL => self.tail = n,
            h => self.nodes[h as usize].prev = n,
        }
        self.head = n;
    }

    fn remove_node(&mut self, n: u32) {
        self.unlink(n);
        let index = self.nodes[n as usize].index;
        self.slot[index as usize] = NIL;
        self.free.push(n);
        self.len -= 1;
    }

    /// Looks `index` up, counting a hit (and marking it most recently used) or a miss.
    pub fn get(&mut self, index: u32) -> Option<IrteEntry> {
        match self.node_of(index) {
            Some(n) => {
                if self.head != n {
                    self.unlink(n);
                    self.push_front(n);
                }
                self.stats.hits += 1;
                Some(self.nodes[n as usize].entry)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Caches `entry` for `index`, evicting the least recently used entry if full.
    pub fn insert(&mut self, index: u32, entry: IrteEntry) {
        if self.capacity == 0 || index as usize >= self.slot.len() {
            return;
        }
        if let Some(n) = self.node_of(index) {
            self.nodes[n as usize].entry = entry;
            self.unlink(n);
            self.push_front(n);
            return;
        }
        if self.len >= self.capacity {
            let victim = self.tail;
            self.remove_node(victim);
            self.stats.evictions += 1;
        }
        let node = CacheNode { index, entry, prev: NIL, next: NIL };
        let n = match self.free.pop() {
            Some(n) => {
                self.nodes[n as usize] = node;
                n
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() as u32 - 1
            }
        };
        self.slot[index as usize] = n;
        self.len += 1;
        self.push_front(n);
    }

    /// Executes one invalidation command; returns how many entries it dropped.
    pub fn invalidate(&mut self, scope: IecScope) -> u32 {
        self.stats.invalidations += 1;
        let mut dropped = 0u32;
        match scope {
            IecScope::Global => {
                while self.head != NIL {
                    self.remove_node(self.head);
                    dropped += 1;
                }
            }
            IecScope::Index { index, mask } => {
                let span = 1u64 << mask.min(32);
                let low = u64::from(index) & !(span - 1);
                let high = (low + span).min(self.slot.len() as u64);
                for i in low..high {
                    if let Some(n) = self.node_of(i as u32) {
                        self.remove_node(n);
                        dropped += 1;
                    }
                }
            }
        }
        self.stats.entries_invalidated += u64::from(dropped);
        dropped
    }

    fn check_invariants(&self) -> Result<(), String> {
        if self.len > self.capacity {
            return Err(format!("cache holds {} entries, capacity {}", self.len, self.capacity));
        }
        let (mut n, mut prev, mut walked) = (self.head, NIL, 0u32);
        while n != NIL {
            let node = &self.nodes[n as usize];
            if node.prev != prev || self.slot[node.index as usize] != n {
                return Err(format!("cache node {n} for index {} is linked inconsistently", node.index));
            }
            walked += 1;
            if walked > self.len {
                return Err("cache list is longer than its length (a cycle?)".into());
            }
            (prev, n) = (n, node.next);
        }
        if walked != self.len || self.tail != prev {
            return Err(format!("cache list walks {walked} nodes, length {}", self.len));
        }
        let slotted = self.slot.iter().filter(|&&x| x != NIL).count();
        if slotted != self.len as usize {
            return Err(format!("cache has {slotted} slotted indices, length {}", self.len));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Fault recording
// ---------------------------------------------------------------------------------------------

/// One primary fault record (FRCD register contents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRecord {
    /// FR: the fault reason.
    pub reason: RemapFault,
    /// SID: the requester id.
    pub source_id: u16,
    /// FI: the interrupt index (0 where the request named none).
    pub index: u32,
    /// When the fault was recorded.
    pub at: SimTime,
}

/// What recording a fault did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Stored in a register; `raise_event` when no fault event was pending before.
    Recorded {
        /// A fault event interrupt should be raised: schedule the fault handler.
        raise_event: bool,
    },
    /// Not stored: a record from the same requester is pending (only with collapsing on).
    Collapsed,
    /// Lost: the next register is occupied or PFO is already set; PFO is set.
    Lost,
}

/// An IOMMU's fault recording registers and the FSTS bits about them.
#[derive(Debug, Clone)]
pub struct FaultRecordingRegisters {
    registers: Vec<Option<FaultRecord>>,
    next: usize,
    pfo: bool,
    event_pending: bool,
}

impl FaultRecordingRegisters {
    /// `count` empty registers.
    ///
    /// # Panics
    /// If `count` is not in 1..=256.
    pub fn new(count: u16) -> FaultRecordingRegisters {
        assert!((1..=FAULT_RECORDING_REGISTERS_MAX).contains(&count), "1 to 256 fault recording registers");
        FaultRecordingRegisters { registers: vec![None; usize::from(count)], next: 0, pfo: false, event_pending: false }
    }

    /// Records `record` as the hardware does; with `collapse`, a fault from a requester that
    /// already has a pending record is dropped (QEMU's behaviour, optional in hardware).
    pub fn record(&mut self, record: FaultRecord, collapse: bool) -> RecordOutcome {
        if self.pfo {
            return RecordOutcome::Lost;
        }
        if collapse && self.registers.iter().flatten().any(|r| r.source_id == record.source_id) {
            return RecordOutcome::Collapsed;
        }
        if self.registers[self.next].is_some() {
            self.pfo = true;
            return RecordOutcome::Lost;
        }
        self.registers[self.next] = Some(record);
        self.next = (self.next + 1) % self.registers.len();
        let raise_event = !self.event_pending;
        self.event_pending = true;
        RecordOutcome::Recorded { raise_event }
    }

    /// PPF: some register holds a pending fault.
    pub fn ppf(&self) -> bool {
        self.registers.iter().any(Option::is_some)
    }

    /// PFO: a fault was lost for want of a free register.
    pub fn pfo(&self) -> bool {
        self.pfo
    }

    /// Whether a fault event has been raised and not yet serviced.
    pub fn event_pending(&self) -> bool {
        self.event_pending
    }

    /// Registers holding a pending fault.
    pub fn pending(&self) -> usize {
        self.registers.iter().flatten().count()
    }

    /// Number of registers.
    pub fn count(&self) -> usize {
        self.registers.len()
    }

    /// FRI: the register of the oldest pending fault, `None` when PPF is clear.
    pub fn fault_record_index(&self) -> Option<usize> {
        let n = self.registers.len();
        (0..n).map(|k| (self.next + k) % n).find(|&i| self.registers[i].is_some())
    }

    /// The registers' contents.
    pub fn registers(&self) -> &[Option<FaultRecord>] {
        &self.registers
    }

    fn take(&mut self, index: usize) -> Option<FaultRecord> {
        self.registers[index].take()
    }

    fn check_invariants(&self) -> Result<(), String> {
        // Pending records form one run ending just before the write index.
        let n = self.registers.len();
        let pending = self.pending();
        for k in 0..n {
            let i = (self.next + n - 1 - k) % n;
            if self.registers[i].is_some() != (k < pending) {
                return Err(format!("fault records are not one run before index {}", self.next));
            }
        }
        if pending > 0 && !self.event_pending {
            return Err("pending faults without a pending fault event".into());
        }
        if self.pfo && pending != n {
            return Err("PFO set with a free fault recording register".into());
        }
        Ok(())
    }
}

/// One call's decision of the kernel rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitDecision {
    /// The message may be printed.
    pub allowed: bool,
    /// The window restarted and "N callbacks suppressed" was printed with this N.
    pub reported_suppressed: Option<u64>,
}

/// The kernel's `___ratelimit()` state (lib/ratelimit.c), as used by `dmar_fault()`.
#[derive(Debug, Clone)]
pub struct KernelRateLimit {
    interval: SimDuration,
    burst: u32,
    begin: Option<SimTime>,
    left: i64,
    missed: u64,
    missed_total: u64,
    allowed_total: u64,
    reports: u64,
}

impl KernelRateLimit {
    /// A limit of `burst` calls per `interval`.
    pub fn new(interval: SimDuration, burst: u32) -> KernelRateLimit {
        KernelRateLimit {
            interval,
            burst,
            begin: None,
            left: 0,
            missed: 0,
            missed_total: 0,
            allowed_total: 0,
            reports: 0,
        }
    }

    /// One `__ratelimit()` call at `now`.
    pub fn check(&mut self, now: SimTime) -> RateLimitDecision {
        let mut decision = RateLimitDecision { allowed: false, reported_suppressed: None };
        if self.interval == SimDuration::ZERO || self.burst == 0 {
            decision.allowed = self.interval == SimDuration::ZERO;
        } else {
            let begin = match self.begin {
                Some(begin) => begin,
                None => {
                    self.left = i64::from(self.burst);
                    self.begin = Some(now);
                    now
                }
            };
            if now.as_ps() > begin.as_ps().saturating_add(self.interval.as_ps()) {
                self.left = i64::from(self.burst);
                self.begin = Some(now);
                if self.missed > 0 {
                    decision.reported_suppressed = Some(self.missed);
                    self.reports += 1;
                    self.missed = 0;
                }
            }
            self.left -= 1;
            decision.allowed = self.left >= 0;
        }
        if decision.allowed {
            self.allowed_total += 1;
        } else {
            self.missed += 1;
            self.missed_total += 1;
        }
        decision
    }

    /// Calls that were allowed.
    pub fn allowed_total(&self) -> u64 {
        self.allowed_total
    }

    /// Calls that were suppressed.
    pub fn missed_total(&self) -> u64 {
        self.missed_total
    }

    /// "callbacks suppressed" lines printed.
    pub fn reports(&self) -> u64 {
        self.reports
    }
}

/// What one run of the fault handler did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceReport {
    /// The records cleared, oldest first.
    pub records: Vec<FaultRecord>,
    /// "DRHD: handling fault status reg" was printed.
    pub status_logged: bool,
    /// Records printed.
    pub records_logged: u32,
    /// `__ratelimit()` calls that returned 0 (the kernel's missed count).
    pub suppressed: u32,
    /// PFO was set and the handler cleared it.
    pub overflow_cleared: bool,
}

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/// The values no source gives: the caller must choose them (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemapUnsourced {
    /// ECAP.MHMV, 0–15: largest IRTE block mask. Hardware reports it; no survey found.
    pub max_handle_mask: u8,
    /// Fault recording registers per IOMMU, 1–256 (CAP.NFR + 1). Hardware-specific.
    pub fault_recording_registers: u16,
    /// IEC capacity in entries (0 = no cache). Unpublished.
    pub iec_entries: u32,
    /// Lookup latency on an IEC hit, and of requests blocked before any table read.
    pub iec_hit_latency: SimDuration,
    /// Lookup latency on an IEC miss (includes the 16-byte IRTE read).
    pub iec_miss_latency: SimDuration,
    /// Lock hold for writing a remapped IRTE (two 64-bit stores and the cache flush). No
    /// published figure, calibration.md §3 "Cost of IEC invalidation + wait: not found".
    pub irte_write: SimDuration,
    /// Lock hold for writing when the old or new IRTE is posted (cmpxchg16b). No published
    /// figure, calibration.md §3 "Cost of IEC invalidation + wait: not found".
    pub irte_write_posted: SimDuration,
    /// Lock hold for `qi_flush_iec`: IEC invalidation descriptor plus wait descriptor,
    /// synchronous. No published figure, calibration.md §3 "Cost of IEC invalidation + wait:
    /// not found" (a guess there: about 1–10 µs).
    pub iec_invalidation: SimDuration,
    /// Lock hold for `alloc_irte`'s bitmap search. No published figure.
    pub irte_alloc: SimDuration,
}

/// Every parameter of the interrupt-remapping model. Times are simulated durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemapParams {
    /// IOMMUs (DRHD units); they share the update lock and the handler's rate limit.
    pub iommu_count: u16,
    /// Entries per table, 1–65,536 (Linux: 65,536; calibration.md §3).
    pub table_entries: u32,
    /// ECAP.MHMV, 0–15.
    pub max_handle_mask: u8,
    /// Fault recording registers per IOMMU, 1–256.
    pub fault_recording_registers: u16,
    /// IRTA.EIME: 32-bit destinations. Linux sets it whenever x2APIC is usable; in xAPIC
    /// mode a destination above 255 is a reserved-field fault.
    pub x2apic_mode: bool,
    /// CAP.PI (bit 59): posted entries are valid; without it IM=1 is a reserved field.
    pub posting_supported: bool,
    /// GCMD.CFI: let compatibility-format interrupts through (xAPIC mode only). Linux clears
    /// it (`iommu_enable_irq_remapping`).
    pub compat_format_allowed: bool,
    /// Drop a fault whose requester already has a pending record (QEMU does; the default is
    /// to record every fault while registers are free).
    pub collapse_same_source: bool,
    /// IEC capacity in entries (0 = no cache).
    pub iec_entries: u32,
    /// Lookup latency on an IEC hit and for requests blocked before any table read.
    pub iec_hit_latency: SimDuration,
    /// Lookup latency on an IEC miss.
    pub iec_miss_latency: SimDuration,
    /// Lock hold for a remapped-format IRTE write.
    pub irte_write: SimDuration,
    /// Lock hold for a write where the old or new entry is posted (cmpxchg16b).
    pub irte_write_posted: SimDuration,
    /// Lock hold for the synchronous IEC invalidation and wait.
    pub iec_invalidation: SimDuration,
    /// Lock hold for the allocation bitmap search.
    pub irte_alloc: SimDuration,
    /// Fault-handler log rate-limit interval (5 s, `DEFAULT_RATELIMIT_INTERVAL`).
    pub ratelimit_interval: SimDuration,
    /// Fault-handler log rate-limit burst (10, `DEFAULT_RATELIMIT_BURST`).
    pub ratelimit_burst: u32,
}

impl RemapParams {
    /// Linux's settings on an x2APIC machine with one IOMMU, completed by `unsourced`.
    pub fn linux_defaults(unsourced: RemapUnsourced) -> RemapParams {
        RemapParams {
            iommu_count: 1,
            table_entries: INTR_REMAP_TABLE_ENTRIES,
            max_handle_mask: unsourced.max_handle_mask,
            fault_recording_registers: unsourced.fault_recording_registers,
            x2apic_mode: true,
            posting_supported: true,
            compat_format_allowed: false,
            collapse_same_source: false,
            iec_entries: unsourced.iec_entries,
            iec_hit_latency: unsourced.iec_hit_latency,
            iec_miss_latency: unsourced.iec_miss_latency,
            irte_write: unsourced.irte_write,
            irte_write_posted: unsourced.irte_write_posted,
            iec_invalidation: unsourced.iec_invalidation,
            irte_alloc: unsourced.irte_alloc,
            ratelimit_interval: DEFAULT_RATELIMIT_INTERVAL,
            ratelimit_burst: DEFAULT_RATELIMIT_BURST,
        }
    }

    /// Checks the ranges the hardware fields allow.
    pub fn validate(&self) -> Result<(), InvalidRemapParams> {
        let fail = |reason: String| Err(InvalidRemapParams { reason });
        if self.iommu_count == 0 {
            return fail("iommu_count must be at least 1".into());
        }
        if !(1..=INTR_REMAP_TABLE_ENTRIES).contains(&self.table_entries) {
            return fail(format!("table_entries {} not in 1..=65536", self.table_entries));
        }
        if self.max_handle_mask > MAX_HANDLE_MASK_LIMIT {
            return fail(format!("max_handle_mask {} above 15", self.max_handle_mask));
        }
        if !(1..=FAULT_RECORDING_REGISTERS_MAX).contains(&self.fault_recording_registers) {
            return fail(format!("fault_recording_registers {} not in 1..=256", self.fault_recording_registers));
        }
        Ok(())
    }
}

/// A [`RemapParams`] value outside what the hardware allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRemapParams {
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for InvalidRemapParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid remapping parameters: {}", self.reason)
    }
}

// ---------------------------------------------------------------------------------------------
// The unit
// ---------------------------------------------------------------------------------------------

/// When one holder of `irq_2_ir_lock` waited, got it and let it go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateTiming {
    /// Time spent queued behind earlier holders.
    pub lock_wait: SimDuration,
    /// When the lock was taken.
    pub start: SimTime,
    /// When the operation finished and the lock was released.
    pub done: SimTime,
}

/// Contention totals of `irq_2_ir_lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockStats {
    /// Times the lock was taken.
    pub acquisitions: u64,
    /// Of which IRTE updates (`modify_irte`).
    pub updates: u64,
    /// Of which allocations (`alloc_irte`).
    pub allocs: u64,
    /// Of which frees (`clear_entries`).
    pub frees: u64,
    /// Acquisitions that had to wait.
    pub contended: u64,
    /// Sum of all waits.
    pub total_wait: SimDuration,
    /// Longest wait.
    pub max_wait: SimDuration,
    /// Sum of all hold times.
    pub busy: SimDuration,
}

/// Request and fault counts of a [`RemapUnit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RemapCounters {
    /// Requests looked up.
    pub requests: u64,
    /// Requests remapped to a CPU.
    pub remapped: u64,
    /// Requests posted.
    pub posted: u64,
    /// Compatibility-format requests let through.
    pub compat_passed: u64,
    /// Requests blocked, by reason (index = code − 0x20).
    pub blocked: [u64; 7],
    /// Faults stored in a fault recording register.
    pub recorded: u64,
    /// Faults not recorded because the IRTE had FPD set.
    pub fpd_unrecorded: u64,
    /// Faults not recorded because a record from the same requester was pending.
    pub collapsed: u64,
    /// Faults lost to a full set of registers (PFO).
    pub overflow_lost: u64,
    /// Fault handler runs.
    pub services: u64,
    /// Records the handler cleared.
    pub drained: u64,
    /// "handling fault status reg" lines printed.
    pub logged_status: u64,
    /// Fault record lines printed.
    pub logged_records: u64,
    /// Rate-limited calls (the kernel's "callbacks suppressed" total).
    pub suppressed: u64,
    /// "N callbacks suppressed" lines printed.
    pub suppression_reports: u64,
}

impl RemapCounters {
    /// Lines the fault handler printed (status and records).
    pub fn logged(&self) -> u64 {
        self.logged_status + self.logged_records
    }

    /// Requests blocked for any reason.
    pub fn blocked_total(&self) -> u64 {
        self.blocked.iter().sum()
    }
}

/// Whether a lookup used the interrupt entry cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// The entry came from the cache.
    Hit,
    /// The entry was read from the table.
    Miss,
    /// The request was decided before any entry was needed.
    NotLooked,
}

/// What became of a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultDisposition {
    /// Stored in a fault recording register.
    Recorded {
        /// Raise the IOMMU's fault event: schedule [`RemapUnit::service_faults`].
        raise_fault_event: bool,
    },
    /// Not recorded: FPD was set in the IRTE.
    NotRecordedFpd,
    /// Not recorded: collapsed into a pending record of the same requester.
    Collapsed,
    /// Lost: no free fault recording register (PFO).
    LostOverflow,
}

/// The result of one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// Where the interrupt goes, or why it was blocked.
    pub result: Result<RemapTarget, RemapFault>,
    /// Time the lookup took.
    pub latency: SimDuration,
    /// Whether the cache served it.
    pub cache: CacheOutcome,
    /// For a blocked request, whether its fault was recorded.
    pub fault: Option<FaultDisposition>,
}

/// The result of a timed allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocOutcome {
    /// The block, or why there is none.
    pub result: Result<IrteBlock, IrteAllocError>,
    /// The lock hold, absent when the request was refused before taking it (zero count, mask
    /// above MHMV).
    pub timing: Option<UpdateTiming>,
}

#[derive(Debug, Clone)]
struct Iommu {
    table: IrteTable,
    cache: InterruptEntryCache,
    faults: FaultRecordingRegisters,
}

#[derive(Debug, Clone, Copy)]
enum Effect {
    Write { index: u32, entry: IrteEntry, seq: u64 },
    Clear { block: IrteBlock, seq: u64 },
    Invalidate(IecScope),
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    at: SimTime,
    iommu: usize,
    effect: Effect,
}

/// The system's interrupt-remapping hardware and the Linux driver state around it: one table,
/// cache and set of fault registers per IOMMU, the global update lock and the fault handler's
/// rate limit.
///
/// Every method taking `now` requires `now` to be no earlier than the previous call's, and an
/// [`IommuId`] below `iommu_count`; otherwise it panics (a caller bug).
#[derive(Debug, Clone)]
pub struct RemapUnit {
    params: RemapParams,
    iommus: Vec<Iommu>,
    lock_free_at: SimTime,
    lock: LockStats,
    ratelimit: KernelRateLimit,
    pending: VecDeque<Pending>,
    /// Latest scheduled, not yet landed, write per (iommu, index): the entry the next
    /// `modify_irte` will find.
    scheduled: BTreeMap<(usize, u32), (u64, IrteEntry)>,
    seq: u64,
    counters: RemapCounters,
    now: SimTime,
}

impl RemapUnit {
    /// A unit with empty tables and caches.
    pub fn new(params: RemapParams) -> Result<RemapUnit, InvalidRemapParams> {
        params.validate()?;
        let iommu = Iommu {
            table: IrteTable::with_max_handle_mask(params.table_entries, params.max_handle_mask),
            cache: InterruptEntryCache::new(params.iec_entries),
            faults: FaultRecordingRegisters::new(params.fault_recording_registers),
        };
        Ok(RemapUnit {
            params,
            iommus: vec![iommu; usize::from(params.iommu_count)],
            lock_free_at: SimTime::ZERO,
            lock: LockStats::default(),
            ratelimit: KernelRateLimit::new(params.ratelimit_interval, params.ratelimit_burst),
            pending: VecDeque::new(),
            scheduled: BTreeMap::new(),
            seq: 0,
            counters: RemapCounters::default(),
            now: SimTime::ZERO,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &RemapParams {
        &self.params
    }

    /// An IOMMU's table, as of the last call (writes land at their scheduled time).
    pub fn table(&self, iommu: IommuId) -> &IrteTable {
        &self.iommus[self.slot(iommu)].table
    }

    /// An IOMMU's table for untimed set-up. Writes made here skip the lock and do not
    /// invalidate the cache: call [`RemapUnit::invalidate_iec`] as software would.
    pub fn table_mut(&mut self, iommu: IommuId) -> &mut IrteTable {
        let i = self.slot(iommu);
        &mut self.iommus[i].table
    }

    /// An IOMMU's interrupt entry cache.
    pub fn cache(&self, iommu: IommuId) -> &InterruptEntryCache {
        &self.iommus[self.slot(iommu)].cache
    }

    /// An IOMMU's fault recording registers.
    pub fn fault_registers(&self, iommu: IommuId) -> &FaultRecordingRegisters {
        &self.iommus[self.slot(iommu)].faults
    }

    /// Request and fault counts.
    pub fn counters(&self) -> &RemapCounters {
        &self.counters
    }

    /// Contention totals of the update lock.
    pub fn lock_stats(&self) -> LockStats {
        self.lock
    }

    /// When the update lock becomes free (after every queued operation).
    pub fn lock_idle_at(&self) -> SimTime {
        self.lock_free_at
    }

    /// The fault handler's rate-limit state.
    pub fn ratelimit(&self) -> &KernelRateLimit {
        &self.ratelimit
    }

    /// Moves the unit's clock to `now`, landing scheduled writes and invalidations.
    pub fn advance_to(&mut self, now: SimTime) {
        assert!(now >= self.now, "time went backwards: {now} < {}", self.now);
        self.now = now;
        while self.pending.front().is_some_and(|p| p.at <= now) {
            let Some(p) = self.pending.pop_front() else { break };
            let iommu = &mut self.iommus[p.iommu];
            match p.effect {
                Effect::Write { index, entry, seq } => {
                    iommu.table.write_raw(index, entry);
                    if self.scheduled.get(&(p.iommu, index)).is_some_and(|(s, _)| *s == seq) {
                        self.scheduled.remove(&(p.iommu, index));
                    }
                }
                Effect::Clear { block, seq } => {
                    iommu.table.clear_entries(block);
                    for index in block.base..block.base + block.count() {
                        if self.scheduled.get(&(p.iommu, index)).is_some_and(|(s, _)| *s == seq) {
                            self.scheduled.remove(&(p.iommu, index));
                        }
                    }
                }
                Effect::Invalidate(scope) => {
                    iommu.cache.invalidate(scope);
                }
            }
        }
    }

    /// Allocates IRTEs for `count` vectors under the lock (`alloc_irte`). The entries stay not
    /// present until [`RemapUnit::request_update`] activates them.
    pub fn alloc_block(&mut self, now: SimTime, iommu: IommuId, count: u32) -> AllocOutcome {
        self.advance_to(now);
        let i = self.slot(iommu);
        let table = &self.iommus[i].table;
        let refused = match IrteTable::mask_for(count) {
            Err(e) => Some(e),
            Ok(mask) if mask > u32::from(table.max_handle_mask) => {
                Some(IrteAllocError::MaskTooLarge { mask, max: table.max_handle_mask })
            }
            Ok(_) => None,
        };
        if let Some(error) = refused {
            return AllocOutcome { result: Err(error), timing: None };
        }
        let timing = self.acquire(now, self.params.irte_alloc);
        self.lock.allocs += 1;
        let result = self.iommus[i].table.alloc_block(count);
        self.advance_to(now);
        AllocOutcome { result, timing: Some(timing) }
    }

    /// Frees a block under the lock (`clear_entries`): the entries are zeroed after one write
    /// per entry and the block's cached entries dropped by a masked IEC invalidation.
    pub fn free_block(&mut self, now: SimTime, iommu: IommuId, block: IrteBlock) -> Result<UpdateTiming, IrteOpError> {
        self.advance_to(now);
        let i = self.slot(iommu);
        self.iommus[i].table.release_block(block)?;
        let writes = SimDuration::from_ps(
            self.params.irte_write.as_ps().checked_mul(u64::from(block.count())).expect("write time overflows"),
        );
        let timing = self.acquire(now, writes + self.params.iec_invalidation);
        self.lock.frees += 1;
        let seq = self.next_seq();
        for index in block.base..block.base + block.count() {
            self.scheduled.insert((i, index), (seq, IrteEntry::NOT_PRESENT));
        }
        self.schedule(timing.start + writes, i, Effect::Clear { block, seq });
        let scope = IecScope::Index { index: block.base, mask: block.mask };
        self.schedule(timing.done, i, Effect::Invalidate(scope));
        self.advance_to(now);
        Ok(timing)
    }

    /// `modify_irte`: queues for the lock, writes `entry` at `index` (lands at `start` plus the
    /// write time, the posted write if the entry there or the new one is posted), then
    /// invalidates the cached copy with `qi_flush_iec` (at `done`).
    pub fn request_update(
        &mut self,
        now: SimTime,
        iommu: IommuId,
        index: u32,
        entry: IrteEntry,
    ) -> Result<UpdateTiming, IrteOpError> {
        self.advance_to(now);
        let i = self.slot(iommu);
        self.iommus[i].table.check_allocated(index)?;
        let old = match self.scheduled.get(&(i, index)) {
            Some((_, e)) => *e,
            None => self.iommus[i].table.entries[index as usize],
        };
        let write =
            if old.is_posted() || entry.is_posted() { self.params.irte_write_posted } else { self.params.irte_write };
        let timing = self.acquire(now, write + self.params.iec_invalidation);
        self.lock.updates += 1;
        let seq = self.next_seq();
        self.scheduled.insert((i, index), (seq, entry));
        self.schedule(timing.start + write, i, Effect::Write { index, entry, seq });
        self.schedule(timing.done, i, Effect::Invalidate(IecScope::Index { index, mask: 0 }));
        self.advance_to(now);
        Ok(timing)
    }

    /// Executes an IEC invalidation at once, outside the lock (e.g. the global flush when the
    /// table pointer is set); returns the entries dropped.
    pub fn invalidate_iec(&mut self, now: SimTime, iommu: IommuId, scope: IecScope) -> u32 {
        self.advance_to(now);
        let i = self.slot(iommu);
        self.iommus[i].cache.invalidate(scope)
    }

    /// What the hardware does with `request` at `now`.
    pub fn translate(&mut self, now: SimTime, iommu: IommuId, request: &RemapRequest) -> Translation {
        self.advance_to(now);
        let i = self.slot(iommu);
        self.counters.requests += 1;
        let p = self.params;
        let rid = request.requester_id;
        let (handle, subhandle) = match request.message {
            InterruptMessage::Compatibility { dest_apic_id, vector } => {
                if p.compat_format_allowed && !p.x2apic_mode {
                    self.counters.compat_passed += 1;
                    return Translation {
                        result: Ok(RemapTarget::Compatibility { dest: CpuId(u32::from(dest_apic_id)), vector }),
                        latency: p.iec_hit_latency,
                        cache: CacheOutcome::NotLooked,
                        fault: None,
                    };
                }
                let fault = RemapFault::CompatBlocked;
                return self.block(i, now, fault, rid, 0, false, p.iec_hit_latency, CacheOutcome::NotLooked);
            }
            InterruptMessage::Remappable { handle, subhandle, reserved_bits_set } => {
                if reserved_bits_set {
                    let fault = RemapFault::ReservedFieldsInRequest;
                    let index = u32::from(handle);
                    return self.block(i, now, fault, rid, index, false, p.iec_hit_latency, CacheOutcome::NotLooked);
                }
                (handle, subhandle)
            }
        };
        let index = u32::from(handle) + u32::from(subhandle.unwrap_or(0));
        let unit = &mut self.iommus[i];
        if index >= unit.table.capacity() {
            let fault = RemapFault::IndexBeyondTable;
            return self.block(i, now, fault, rid, index, false, p.iec_hit_latency, CacheOutcome::NotLooked);
        }
        let (entry, cache, latency) = match unit.cache.get(index) {
            Some(entry) => (entry, CacheOutcome::Hit, p.iec_hit_latency),
            None => {
                if unit.table.has_access_error(index) {
                    let fault = RemapFault::TableAccessError;
                    return self.block(i, now, fault, rid, index, false, p.iec_miss_latency, CacheOutcome::Miss);
                }
                (unit.table.entries[index as usize], CacheOutcome::Miss, p.iec_miss_latency)
            }
        };
        if !entry.present {
            let fault = RemapFault::EntryNotPresent;
            return self.block(i, now, fault, rid, index, entry.fpd, latency, cache);
        }
        let reserved = entry.reserved_bits_set
            || entry.source == SourceValidation::Reserved
            || match entry.mode {
                IrteMode::Posted { .. } => !p.posting_supported,
                IrteMode::Remapped { dest, .. } => !p.x2apic_mode && dest.0 > 0xff,
            };
        if reserved {
            let fault = RemapFault::ReservedFieldsInIrte;
            return self.block(i, now, fault, rid, index, entry.fpd, latency, cache);
        }
        if cache == CacheOutcome::Miss {
            unit.cache.insert(index, entry);
        }
        if !entry.source.accepts(rid) {
            let fault = RemapFault::SourceIdVerification;
            return self.block(i, now, fault, rid, index, entry.fpd, latency, cache);
        }
        let target = match entry.mode {
            IrteMode::Remapped { dest, vector } => {
                self.counters.remapped += 1;
                RemapTarget::Remapped { dest, vector }
            }
            IrteMode::Posted { descriptor, vector, urgent } => {
                self.counters.posted += 1;
                RemapTarget::Posted { descriptor, vector, urgent }
            }
        };
        Translation { result: Ok(target), latency, cache, fault: None }
    }

    /// The kernel's `dmar_fault()` for one IOMMU at `now`: drains every pending record,
    /// printing under the shared rate limit, and clears PFO.
    pub fn service_faults(&mut self, now: SimTime, iommu: IommuId) -> ServiceReport {
        self.advance_to(now);
        let i = self.slot(iommu);
        self.counters.services += 1;
        let mut report = ServiceReport::default();
        let faults = &mut self.iommus[i].faults;
        faults.event_pending = false;
        let mut ratelimit = |counters: &mut RemapCounters, report: &mut ServiceReport| {
            let d = self.ratelimit.check(now);
            if d.reported_suppressed.is_some() {
                counters.suppression_reports += 1;
            }
            if !d.allowed {
                counters.suppressed += 1;
                report.suppressed += 1;
            }
            d.allowed
        };
        if (faults.ppf() || faults.pfo()) && ratelimit(&mut self.counters, &mut report) {
            self.counters.logged_status += 1;
            report.status_logged = true;
        }
        let Some(mut index) = faults.fault_record_index() else {
            return report;
        };
        loop {
            let allowed = ratelimit(&mut self.counters, &mut report);
            let Some(record) = faults.take(index) else { break };
            if allowed {
                self.counters.logged_records += 1;
                report.records_logged += 1;
            }
            self.counters.drained += 1;
            report.records.push(record);
            index = (index + 1) % faults.count();
        }
        report.overflow_cleared = faults.pfo;
        faults.pfo = false;
        report
    }

    /// Checks every internal invariant; the random test calls it after each operation.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut pending_records = 0u64;
        for (i, iommu) in self.iommus.iter().enumerate() {
            let at = |e: String| format!("iommu {i}: {e}");
            iommu.table.check_invariants().map_err(at)?;
            iommu.cache.check_invariants().map_err(at)?;
            iommu.faults.check_invariants().map_err(at)?;
            pending_records += iommu.faults.pending() as u64;
        }
        let c = &self.counters;
        if c.recorded != c.drained + pending_records {
            return Err(format!("recorded {} != drained {} + pending {pending_records}", c.recorded, c.drained));
        }
        if c.blocked_total() != c.recorded + c.fpd_unrecorded + c.collapsed + c.overflow_lost {
            return Err("blocked requests do not add up to fault dispositions".into());
        }
        if c.requests != c.remapped + c.posted + c.compat_passed + c.blocked_total() {
            return Err("requests do not add up to outcomes".into());
        }
        if c.suppressed != self.ratelimit.missed_total() || c.suppression_reports != self.ratelimit.reports() {
            return Err("rate-limit counters disagree".into());
        }
        let l = &self.lock;
        if l.acquisitions != l.updates + l.allocs + l.frees || l.max_wait > l.total_wait {
            return Err("lock statistics are inconsistent".into());
        }
        let mut last = self.now;
        for p in &self.pending {
            if p.at < last || p.at > self.lock_free_at {
                return Err(format!("pending effect at {} out of order", p.at));
            }
            last = p.at;
        }
        if self.pending.front().is_some_and(|p| p.at <= self.now) {
            return Err("a due effect was not applied".into());
        }
        Ok(())
    }

    fn slot(&self, iommu: IommuId) -> usize {
        let i = usize::from(iommu.0);
        assert!(i < self.iommus.len(), "no IOMMU {}", iommu.0);
        i
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn schedule(&mut self, at: SimTime, iommu: usize, effect: Effect) {
        self.pending.push_back(Pending { at, iommu, effect });
    }

    /// FIFO acquisition of `irq_2_ir_lock` for `hold`.
    fn acquire(&mut self, now: SimTime, hold: SimDuration) -> UpdateTiming {
        let start = now.max(self.lock_free_at);
        let lock_wait = start.since(now);
        let done = start + hold;
        self.lock_free_at = done;
        let l = &mut self.lock;
        l.acquisitions += 1;
        if lock_wait > SimDuration::ZERO {
            l.contended += 1;
        }
        l.total_wait = l.total_wait + lock_wait;
        l.max_wait = l.max_wait.max(lock_wait);
        l.busy = l.busy + hold;
        UpdateTiming { lock_wait, start, done }
    }

    /// Blocks a request with `fault`, recording it unless `fpd`.
    #[allow(clippy::too_many_arguments)]
    fn block(
        &mut self,
        i: usize,
        now: SimTime,
        fault: RemapFault,
        source_id: u16,
        index: u32,
        fpd: bool,
        latency: SimDuration,
        cache: CacheOutcome,
    ) -> Translation {
        self.counters.blocked[fault.index()] += 1;
        let disposition = if fpd {
            self.counters.fpd_unrecorded += 1;
            FaultDisposition::NotRecordedFpd
        } else {
            let record = FaultRecord { reason: fault, source_id, index, at: now };
            match self.iommus[i].faults.record(record, self.params.collapse_same_source) {
                RecordOutcome::Recorded { raise_event } => {
                    self.counters.recorded += 1;
                    FaultDisposition::Recorded { raise_fault_event: raise_event }
                }
                RecordOutcome::Collapsed => {
                    self.counters.collapsed += 1;
                    FaultDisposition::Collapsed
                }
                RecordOutcome::Lost => {
                    self.counters.overflow_lost += 1;
                    FaultDisposition::LostOverflow
                }
            }
        };
        Translation { result: Err(fault), latency, cache, fault: Some(disposition) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::RngStream;

    const IO: IommuId = IommuId(0);

    fn ns(n: u64) -> SimTime {
        SimTime::from_ps(n * 1_000)
    }

    fn unsourced() -> RemapUnsourced {
        RemapUnsourced {
            max_handle_mask: 5,
            fault_recording_registers: 8,
            iec_entries: 4,
            iec_hit_latency: SimDuration::from_ns(20),
            iec_miss_latency: SimDuration::from_ns(200),
            irte_write: SimDuration::from_ns(100),
            irte_write_posted: SimDuration::from_ns(150),
            iec_invalidation: SimDuration::from_ns(2_000),
            irte_alloc: SimDuration::from_ns(50),
        }
    }

    fn params() -> RemapParams {
        RemapParams::linux_defaults(unsourced())
    }

    fn unit(p: RemapParams) -> RemapUnit {
        RemapUnit::new(p).expect("valid parameters")
    }

    /// A unit whose entries 0..n are present remapped entries (dest i, vector 0x40 + i),
    /// written directly, without lock or timing.
    fn unit_with_entries(p: RemapParams, n: u32) -> RemapUnit {
        let mut u = unit(p);
        let table = u.table_mut(IO);
        for i in 0..n {
            let block = table.alloc_block(1).unwrap();
            assert_eq!(block.base, i);
            table.set_entry(i, IrteEntry::remapped(CpuId(i), Vector(0x40 + i as u8))).unwrap();
        }
        u
    }

    fn fault_of(t: &Translation) -> RemapFault {
        t.result.expect_err("the request should be blocked")
    }

    #[test]
    fn legacy_table_api_as_the_platform_uses_it() {
        let mut t = IrteTable::new(2);
        let irte = Irte { dest_apic_id: 3, vector: 0x30 };
        let h = t.alloc(irte).unwrap();
        assert_eq!(t.lookup(u32::from(h)), Ok(irte));
        assert_eq!(t.lookup(1), Err(RemapFault::EntryNotPresent));
        assert_eq!(t.lookup(2), Err(RemapFault::IndexBeyondTable));
        let never = std::panic::catch_unwind(|| IrteTable::new(2).update(1, irte));
        assert!(never.is_err(), "updating an unallocated IRTE is a caller bug");
        assert_eq!(t.alloc(irte), Ok(1));
        assert_eq!(t.alloc(irte), Err(IrteTableFull));
        let moved = Irte { dest_apic_id: 9, vector: 0x31 };
        t.update(1, moved);
        assert_eq!(t.lookup(1), Ok(moved));
        assert_eq!((t.used(), t.capacity()), (2, 2));
        assert_eq!(IrteTableFull.to_string(), "can't allocate an IRTE");
        // A posted entry is a reserved-field fault for a caller without posting support.
        t.set_entry(1, IrteEntry::posted(PiDescId(1), Vector(0x50), false)).unwrap();
        assert_eq!(t.lookup(1), Err(RemapFault::ReservedFieldsInIrte));
        t.set_access_error(0, true);
        assert_eq!(t.lookup(0), Err(RemapFault::TableAccessError));
    }

    #[test]
    fn fault_reason_codes_and_wording_match_dmar_c() {
        let expected = [
            (0x20, "Detected reserved fields in the decoded interrupt-remapped request"),
            (0x21, "Interrupt index exceeded the interrupt-remapping table size"),
            (0x22, "Present field in the IRTE entry is clear"),
            (0x23, "Error accessing interrupt-remapping table pointed by IRTA_REG"),
            (0x24, "Detected reserved fields in the IRTE entry"),
            (0x25, "Blocked a compatibility format interrupt request"),
            (0x26, "Blocked an interrupt request due to source-id verification failure"),
        ];
        for (fault, (code, reason)) in RemapFault::ALL.iter().zip(expected) {
            assert_eq!((fault.code(), fault.reason()), (code, reason));
            assert_eq!(RemapFault::from_code(code), Some(*fault));
        }
        assert_eq!(
            RemapFault::EntryNotPresent.to_string(),
            "[fault reason 34] Present field in the IRTE entry is clear"
        );
        assert_eq!(RemapFault::from_code(0x1f), None);
        assert_eq!(RemapFault::from_code(0x27), None);
    }

    #[test]
    fn blocks_are_aligned_powers_of_two() {
        // 64 entries. Each request takes the lowest free aligned block of its rounded size:
        // 1 -> [0], 32 -> [32,64) (0 is taken), 16 -> [16,32), 8 -> [8,16), 4 -> [4,8),
        // 2 -> [2,4), 1 -> [1]: 1+32+16+8+4+2+1 = 64 entries, so the table is full.
        let mut t = IrteTable::with_max_handle_mask(64, 5);
        let expected = [(1, 0, 0), (32, 32, 5), (16, 16, 4), (8, 8, 3), (4, 4, 2), (2, 2, 1), (1, 1, 0)];
        for (count, base, mask) in expected {
            assert_eq!(t.alloc_block(count), Ok(IrteBlock { base, mask }), "count {count}");
        }
        assert_eq!(t.used(), 64);
        assert_eq!(t.alloc_block(1), Err(IrteAllocError::Full));
        t.check_invariants().unwrap();

        // Rounding up: 3 -> 4 entries at 0, 5 -> 8 entries at 8, then 1 fills index 4.
        let mut t = IrteTable::with_max_handle_mask(64, 5);
        assert_eq!(t.alloc_block(3), Ok(IrteBlock { base: 0, mask: 2 }));
        assert_eq!(t.alloc_block(5), Ok(IrteBlock { base: 8, mask: 3 }));
        assert_eq!(t.alloc_block(1), Ok(IrteBlock { base: 4, mask: 0 }));
        assert_eq!(t.used(), 4 + 8 + 1);
        // The mask limit: MHMV 5 allows 32 entries; 33 needs mask 6.
        assert_eq!(t.alloc_block(33), Err(IrteAllocError::MaskTooLarge { mask: 6, max: 5 }));
        assert_eq!(t.alloc_block(0), Err(IrteAllocError::ZeroCount));
        let mut small = IrteTable::with_max_handle_mask(64, 2);
        assert_eq!(small.alloc_block(5), Err(IrteAllocError::MaskTooLarge { mask: 3, max: 2 }));
        assert_eq!(small.alloc_block(4), Ok(IrteBlock { base: 0, mask: 2 }));
    }

    #[test]
    fn a_full_table_takes_exactly_2048_blocks_of_32() {
        // 65,536 / 32 = 2,048 aligned blocks, allocated in address order.
        let mut t = IrteTable::with_max_handle_mask(INTR_REMAP_TABLE_ENTRIES, 5);
        let blocks = INTR_REMAP_TABLE_ENTRIES / 32;
        assert_eq!(blocks, 2_048);
        for k in 0..blocks {
            assert_eq!(t.alloc_block(32), Ok(IrteBlock { base: k * 32, mask: 5 }));
        }
        assert_eq!(t.alloc_block(32), Err(IrteAllocError::Full));
        assert_eq!(t.alloc_block(1), Err(IrteAllocError::Full));
        let irte = Irte { dest_apic_id: 0, vector: 0x30 };
        assert_eq!(t.alloc(irte), Err(IrteTableFull));
        assert_eq!(t.used(), INTR_REMAP_TABLE_ENTRIES);
        t.check_invariants().unwrap();
        // Freeing block 7 makes exactly that block the next one handed out.
        t.free_block(IrteBlock { base: 7 * 32, mask: 5 }).unwrap();
        assert_eq!(t.alloc(irte), Ok(7 * 32));
        assert_eq!(t.alloc_block(2), Ok(IrteBlock { base: 7 * 32 + 2, mask: 1 }));
    }

    #[test]
    fn mixed_sizes_exhaust_and_fragment() {
        // 256 entries: eight blocks of 16 fill [0,128), 64 -> [128,192), 32 -> [192,224),
        // 32 -> [224,256): 8*16 + 64 + 32 + 32 = 256, so one more entry fails.
        let mut t = IrteTable::with_max_handle_mask(256, 6);
        for k in 0..8 {
            assert_eq!(t.alloc_block(16), Ok(IrteBlock { base: k * 16, mask: 4 }));
        }
        assert_eq!(t.alloc_block(64), Ok(IrteBlock { base: 128, mask: 6 }));
        assert_eq!(t.alloc_block(32), Ok(IrteBlock { base: 192, mask: 5 }));
        assert_eq!(t.alloc_block(32), Ok(IrteBlock { base: 224, mask: 5 }));
        assert_eq!(t.alloc_block(1), Err(IrteAllocError::Full));
        // Free [16,32) and [48,64): 32 entries free, but no aligned 32-block (0 and 32 are
        // each half used), so 32 fails while two 16s fit, lowest first.
        t.free_block(IrteBlock { base: 16, mask: 4 }).unwrap();
        t.free_block(IrteBlock { base: 48, mask: 4 }).unwrap();
        assert_eq!(t.used(), 256 - 32);
        assert_eq!(t.alloc_block(32), Err(IrteAllocError::Full));
        assert_eq!(t.alloc_block(9), Ok(IrteBlock { base: 16, mask: 4 }));
        assert_eq!(t.alloc_block(1), Ok(IrteBlock { base: 48, mask: 0 }));
        t.check_invariants().unwrap();
    }

    #[test]
    fn freeing_something_that_is_not_a_block_is_refused() {
        let mut t = IrteTable::with_max_handle_mask(64, 5);
        let b = t.alloc_block(4).unwrap();
        let wrong_mask = IrteBlock { base: 0, mask: 1 };
        let inside = IrteBlock { base: 1, mask: 0 };
        let beyond = IrteBlock { base: 64, mask: 0 };
        for bad in [wrong_mask, inside, beyond] {
            assert_eq!(t.free_block(bad), Err(IrteOpError::NotABlock { block: bad }));
        }
        assert_eq!(t.used(), 4);
        t.free_block(b).unwrap();
        assert_eq!(t.free_block(b), Err(IrteOpError::NotABlock { block: b }));
        assert_eq!(t.set_entry(0, IrteEntry::NOT_PRESENT), Err(IrteOpError::NotAllocated { index: 0 }));
        assert_eq!(t.set_entry(64, IrteEntry::NOT_PRESENT), Err(IrteOpError::IndexBeyondTable { index: 64 }));
        t.check_invariants().unwrap();
    }

    #[test]
    fn every_fault_reason_blocks_and_is_recorded() {
        let mut p = params();
        p.table_entries = 16;
        let mut u = unit_with_entries(p, 4);
        let cases: Vec<(RemapRequest, RemapFault)> = vec![
            (
                RemapRequest {
                    requester_id: 0x100,
                    message: InterruptMessage::Remappable { handle: 0, subhandle: None, reserved_bits_set: true },
                },
                RemapFault::ReservedFieldsInRequest,
            ),
            (RemapRequest::remappable(0x100, 15, Some(1)), RemapFault::IndexBeyondTable),
            (RemapRequest::remappable(0x100, 3, Some(1)), RemapFault::EntryNotPresent),
            (RemapRequest::compatibility(0x100, 1, Vector(0x30)), RemapFault::CompatBlocked),
        ];
        let table = u.table_mut(IO);
        table.set_access_error(1, true);
        let rsvd = IrteEntry { reserved_bits_set: true, ..IrteEntry::remapped(CpuId(0), Vector(0x40)) };
        table.set_entry(2, rsvd).unwrap();
        let sid = SourceValidation::RequesterId { sid: 0x0300, sq: SourceQualifier::All16 };
        table.set_entry(3, IrteEntry::remapped(CpuId(0), Vector(0x43)).with_source(sid)).unwrap();
        let mut cases = cases;
        cases.push((RemapRequest::remappable(0x100, 1, None), RemapFault::TableAccessError));
        cases.push((RemapRequest::remappable(0x100, 2, None), RemapFault::ReservedFieldsInIrte));
        cases.push((RemapRequest::remappable(0x100, 3, None), RemapFault::SourceIdVerification));
        for (k, (request, fault)) in cases.iter().enumerate() {
            let t = u.translate(ns(k as u64), IO, request);
            assert_eq!(t.result, Err(*fault), "case {k}");
            let raise = k == 0;
            assert_eq!(t.fault, Some(FaultDisposition::Recorded { raise_fault_event: raise }), "case {k}");
        }
        let c = u.counters();
        assert_eq!(c.blocked, [1; 7]);
        assert_eq!((c.recorded, c.requests), (7, 7));
        let reasons: Vec<u8> =
            u.fault_registers(IO).registers()[..7].iter().map(|r| r.unwrap().reason.code()).collect();
        assert_eq!(reasons, [0x20, 0x21, 0x22, 0x25, 0x23, 0x24, 0x26]);
        // The right requester passes source verification.
        let ok = u.translate(ns(100), IO, &RemapRequest::remappable(0x0300, 3, None));
        assert_eq!(ok.result, Ok(RemapTarget::Remapped { dest: CpuId(0), vector: Vector(0x43) }));
        u.check_invariants().unwrap();
    }

    #[test]
    fn other_reserved_field_conditions() {
        // SVT=3, a posted entry without CAP.PI, a destination above 255 in xAPIC mode.
        let mut p = params();
        p.posting_supported = false;
        p.x2apic_mode = false;
        let mut u = unit_with_entries(p, 3);
        let t = u.table_mut(IO);
        t.set_entry(0, IrteEntry::remapped(CpuId(1), Vector(0x40)).with_source(SourceValidation::Reserved)).unwrap();
        t.set_entry(1, IrteEntry::posted(PiDescId(9), Vector(0x41), true)).unwrap();
        t.set_entry(2, IrteEntry::remapped(CpuId(256), Vector(0x42))).unwrap();
        for h in 0..3 {
            let r = u.translate(ns(h.into()), IO, &RemapRequest::remappable(0, h, None));
            assert_eq!(fault_of(&r), RemapFault::ReservedFieldsInIrte, "handle {h}");
            // Entries with reserved-field errors are not cached.
            assert!(!u.cache(IO).contains(u32::from(h)));
        }
        // With posting and x2APIC the last two are fine.
        let mut u = unit_with_entries(params(), 3);
        u.table_mut(IO).set_entry(1, IrteEntry::posted(PiDescId(9), Vector(0x41), true)).unwrap();
        u.table_mut(IO).set_entry(2, IrteEntry::remapped(CpuId(256), Vector(0x42))).unwrap();
        let posted = u.translate(ns(0), IO, &RemapRequest::remappable(0, 1, None));
        let expected = RemapTarget::Posted { descriptor: PiDescId(9), vector: Vector(0x41), urgent: true };
        assert_eq!(posted.result, Ok(expected));
        let far = u.translate(ns(1), IO, &RemapRequest::remappable(0, 2, None));
        assert!(far.result.is_ok());
        // The subhandle is added to the handle.
        let sub = u.translate(ns(2), IO, &RemapRequest::remappable(0, 0, Some(1)));
        assert_eq!(sub.result, Ok(expected));
    }

    #[test]
    fn compatibility_format_passes_only_with_cfi_in_xapic_mode() {
        let request = RemapRequest::compatibility(0, 7, Vector(0x33));
        for (cfi, x2apic, passes) in
            [(false, false, false), (false, true, false), (true, true, false), (true, false, true)]
        {
            let mut p = params();
            p.compat_format_allowed = cfi;
            p.x2apic_mode = x2apic;
            let mut u = unit(p);
            let r = u.translate(ns(0), IO, &request);
            let want = if passes {
                Ok(RemapTarget::Compatibility { dest: CpuId(7), vector: Vector(0x33) })
            } else {
                Err(RemapFault::CompatBlocked)
            };
            assert_eq!(r.result, want, "cfi {cfi} x2apic {x2apic}");
        }
    }

    #[test]
    fn fpd_stops_recording_but_still_blocks() {
        let mut u = unit_with_entries(params(), 3);
        let t = u.table_mut(IO);
        let sid = SourceValidation::RequesterId { sid: 0x0100, sq: SourceQualifier::All16 };
        t.set_entry(0, IrteEntry { present: false, ..IrteEntry::NOT_PRESENT }.with_fpd(true)).unwrap();
        t.set_entry(
            1,
            IrteEntry { reserved_bits_set: true, ..IrteEntry::remapped(CpuId(0), Vector(0x40)) }.with_fpd(true),
        )
        .unwrap();
        t.set_entry(2, IrteEntry::remapped(CpuId(0), Vector(0x40)).with_source(sid).with_fpd(true)).unwrap();
        let want = [RemapFault::EntryNotPresent, RemapFault::ReservedFieldsInIrte, RemapFault::SourceIdVerification];
        for (h, fault) in want.iter().enumerate() {
            let r = u.translate(ns(h as u64), IO, &RemapRequest::remappable(0x0200, h as u16, None));
            assert_eq!(r.result, Err(*fault));
            assert_eq!(r.fault, Some(FaultDisposition::NotRecordedFpd));
        }
        // FPD does not cover faults found before the entry is read.
        let beyond = u.translate(ns(9), IO, &RemapRequest::remappable(0x0200, u16::MAX, Some(1)));
        assert_eq!(fault_of(&beyond), RemapFault::IndexBeyondTable);
        assert!(matches!(beyond.fault, Some(FaultDisposition::Recorded { .. })));
        let c = u.counters();
        assert_eq!((c.fpd_unrecorded, c.recorded, c.blocked_total()), (3, 1, 4));
        assert_eq!(u.fault_registers(IO).pending(), 1);
    }

    #[test]
    fn source_id_verification_for_every_sq_and_bus_ranges() {
        // SID 0x1234: bus 0x12, device 6, function 4. Flip one bit of the requester id at a
        // time: SQ=0 compares every bit; SQ=1 ignores bit 2; SQ=2 bits 2:1; SQ=3 bits 2:0.
        let sid = 0x1234u16;
        let flips = [0u16, 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 8, (1 << 1) | (1 << 2)];
        let accept = [
            (SourceQualifier::All16, [true, false, false, false, false, false, false]),
            (SourceQualifier::IgnoreBit2, [true, false, false, true, false, false, false]),
            (SourceQualifier::IgnoreBits2To1, [true, false, true, true, false, false, true]),
            (SourceQualifier::IgnoreBits2To0, [true, true, true, true, false, false, true]),
        ];
        for (sq, row) in accept {
            assert_eq!(SourceQualifier::from_code(sq.code()), Some(sq));
            let v = SourceValidation::RequesterId { sid, sq };
            for (flip, want) in flips.iter().zip(row) {
                assert_eq!(v.accepts(sid ^ flip), want, "sq {} flip {flip:#x}", sq.code());
            }
            assert_eq!((v.svt(), v.sid_field()), (1, sid));
        }
        // SVT=2: buses 0x10..=0x20, any device/function.
        let range = SourceValidation::BusRange { start_bus: 0x10, end_bus: 0x20 };
        assert_eq!((range.svt(), range.sid_field()), (2, 0x1020));
        for (rid, want) in [(0x0fff, false), (0x1000, true), (0x18a5, true), (0x20ff, true), (0x2100, false)] {
            assert_eq!(range.accepts(rid), want, "rid {rid:#06x}");
        }
        let single = SourceValidation::BusRange { start_bus: 5, end_bus: 5 };
        assert!(single.accepts(0x0507) && !single.accepts(0x0607) && !single.accepts(0x0407));
        let empty = SourceValidation::BusRange { start_bus: 6, end_bus: 5 };
        assert!(!empty.accepts(0x0500) && !empty.accepts(0x0600));
        assert!(SourceValidation::None.accepts(0xffff));
        assert!(!SourceValidation::Reserved.accepts(0));
    }

    #[test]
    fn fault_registers_overflow_and_pfo() {
        // 4 registers: 4 faults are recorded (only the first raises the fault event), the
        // 5th finds the next register occupied, sets PFO and is lost; so is the 6th.
        let mut p = params();
        p.fault_recording_registers = 4;
        let mut u = unit(p);
        let request = RemapRequest::remappable(0x0800, 7, None);
        let mut got = Vec::new();
        for k in 0..6 {
            got.push(u.translate(ns(k), IO, &request).fault.unwrap());
        }
        let recorded = |raise_fault_event| FaultDisposition::Recorded { raise_fault_event };
        let lost = FaultDisposition::LostOverflow;
        assert_eq!(got, [recorded(true), recorded(false), recorded(false), recorded(false), lost, lost]);
        let f = u.fault_registers(IO);
        assert!(f.ppf() && f.pfo() && f.event_pending());
        assert_eq!((f.pending(), f.fault_record_index()), (4, Some(0)));
        assert_eq!((u.counters().recorded, u.counters().overflow_lost), (4, 2));
        u.check_invariants().unwrap();

        let report = u.service_faults(ns(10), IO);
        let times: Vec<SimTime> = report.records.iter().map(|r| r.at).collect();
        assert_eq!(times, [ns(0), ns(1), ns(2), ns(3)]);
        assert!(report.overflow_cleared);
        let f = u.fault_registers(IO);
        assert!(!f.ppf() && !f.pfo() && !f.event_pending());
        // Recording resumes and raises a new event.
        assert_eq!(u.translate(ns(11), IO, &request).fault, Some(recorded(true)));
        u.check_invariants().unwrap();

        // The ring wraps: the handler starts at the oldest record.
        let mut u = unit(p);
        for k in 0..3 {
            u.translate(ns(k), IO, &request);
        }
        u.service_faults(ns(3), IO);
        for k in 4..7 {
            u.translate(ns(k), IO, &request);
        }
        assert_eq!(u.fault_registers(IO).fault_record_index(), Some(3));
        let times: Vec<SimTime> = u.service_faults(ns(8), IO).records.iter().map(|r| r.at).collect();
        assert_eq!(times, [ns(4), ns(5), ns(6)]);
        u.check_invariants().unwrap();
    }

    #[test]
    fn collapsing_same_source_faults() {
        let mut p = params();
        p.collapse_same_source = true;
        let mut u = unit(p);
        let a = RemapRequest::remappable(0x0100, 7, None);
        let b = RemapRequest::remappable(0x0200, 7, None);
        u.translate(ns(0), IO, &a);
        assert_eq!(u.translate(ns(1), IO, &a).fault, Some(FaultDisposition::Collapsed));
        assert!(matches!(u.translate(ns(2), IO, &b).fault, Some(FaultDisposition::Recorded { .. })));
        assert_eq!((u.counters().recorded, u.counters().collapsed), (2, 1));
        u.check_invariants().unwrap();
    }

    #[test]
    fn kernel_ratelimit_semantics() {
        let five_s = DEFAULT_RATELIMIT_INTERVAL;
        let mut rl = KernelRateLimit::new(five_s, 10);
        let allowed = (0..25).filter(|_| rl.check(SimTime::ZERO).allowed).count();
        assert_eq!((allowed, rl.missed_total()), (10, 15));
        // The window ends strictly after begin + interval.
        assert!(!rl.check(SimTime::ZERO + five_s).allowed);
        let d = rl.check(SimTime::ZERO + five_s + SimDuration::from_ps(1));
        assert_eq!(d, RateLimitDecision { allowed: true, reported_suppressed: Some(16) });
        assert_eq!(rl.reports(), 1);
        let mut always = KernelRateLimit::new(SimDuration::ZERO, 10);
        assert!((0..100).all(|_| always.check(SimTime::ZERO).allowed));
        let mut never = KernelRateLimit::new(five_s, 0);
        assert!(!(0..5).any(|_| never.check(SimTime::ZERO).allowed));
    }

    #[test]
    fn fault_handler_logs_ten_per_five_second_window() {
        // dmar_fault() calls __ratelimit() once for the status line and once per loop pass,
        // including the pass that finds the next register empty.
        let mut p = params();
        p.fault_recording_registers = 16;
        let mut u = unit(p);
        let request = RemapRequest::remappable(0x0100, 9, None);
        let five_s = SimTime::ZERO + DEFAULT_RATELIMIT_INTERVAL;
        let one_ps = SimDuration::from_ps(1);

        // Window 1 opens at t=0. 16 records: the status line takes token 1, records 1..9
        // tokens 2..10; records 10..16 (7) and the final pass (1) are suppressed.
        for _ in 0..16 {
            u.translate(SimTime::ZERO, IO, &request);
        }
        let r = u.service_faults(SimTime::ZERO, IO);
        assert_eq!((r.records.len(), r.status_logged, r.records_logged, r.suppressed), (16, true, 9, 8));
        assert_eq!((u.counters().logged(), u.counters().suppressed), (10, 8));

        // At exactly 5 s the window has not ended: 3 records, status + 3 + final = 5 more
        // suppressed, nothing logged.
        for _ in 0..3 {
            u.translate(five_s, IO, &request);
        }
        let r = u.service_faults(five_s, IO);
        assert_eq!((r.records.len(), r.status_logged, r.records_logged, r.suppressed), (3, false, 0, 5));
        assert_eq!((u.counters().logged(), u.counters().suppressed), (10, 13));

        // 1 ps later the window restarts: "13 callbacks suppressed" is reported, and status +
        // 3 records are logged (the final pass takes a 5th token).
        for _ in 0..3 {
            u.translate(five_s + one_ps, IO, &request);
        }
        let r = u.service_faults(five_s + one_ps, IO);
        assert_eq!((r.records.len(), r.status_logged, r.records_logged, r.suppressed), (3, true, 3, 0));
        let c = u.counters();
        assert_eq!((c.logged_status, c.logged_records, c.suppressed, c.suppression_reports), (2, 12, 13, 1));
        assert_eq!((u.ratelimit().allowed_total(), u.ratelimit().missed_total()), (15, 13));
        assert_eq!((c.recorded, c.drained), (22, 22));
        // A handler run with nothing pending prints nothing and uses no token.
        let r = u.service_faults(five_s + one_ps, IO);
        assert_eq!(r, ServiceReport::default());
        u.check_invariants().unwrap();
    }

    #[test]
    fn cache_hits_misses_lru_and_invalidation() {
        let mut p = params();
        p.iec_entries = 2;
        let mut u = unit_with_entries(p, 5);
        let (hit, miss) = (p.iec_hit_latency, p.iec_miss_latency);
        let mut at = 0;
        let mut look = |u: &mut RemapUnit, h: u16| {
            at += 1;
            let t = u.translate(ns(at), IO, &RemapRequest::remappable(0, h, None));
            assert!(t.result.is_ok());
            (t.cache, t.latency)
        };
        assert_eq!(look(&mut u, 0), (CacheOutcome::Miss, miss));
        assert_eq!(look(&mut u, 0), (CacheOutcome::Hit, hit));
        assert_eq!(look(&mut u, 1), (CacheOutcome::Miss, miss));
        // Full: 2 evicts 0, the least recently used.
        assert_eq!(look(&mut u, 2), (CacheOutcome::Miss, miss));
        assert!(!u.cache(IO).contains(0) && u.cache(IO).contains(1));
        assert_eq!(look(&mut u, 1), (CacheOutcome::Hit, hit));
        // Now 2 is the least recently used.
        assert_eq!(look(&mut u, 0), (CacheOutcome::Miss, miss));
        assert!(!u.cache(IO).contains(2));
        let s = u.cache(IO).stats();
        assert_eq!((s.hits, s.misses, s.evictions), (2, 4, 2));
        assert_eq!(u.invalidate_iec(ns(6), IO, IecScope::Index { index: 1, mask: 0 }), 1);
        assert_eq!(look(&mut u, 1), (CacheOutcome::Miss, miss));
        // Not-present entries are not cached.
        let absent = u.translate(ns(60), IO, &RemapRequest::remappable(0, 9, None));
        assert_eq!((fault_of(&absent), absent.cache), (RemapFault::EntryNotPresent, CacheOutcome::Miss));
        assert!(!u.cache(IO).contains(9));

        // Masked and global invalidation on a bigger cache.
        let mut c = InterruptEntryCache::new(16);
        for i in 0..12 {
            c.insert(i, IrteEntry::NOT_PRESENT);
        }
        // Index 5 with mask 2 covers 4..8.
        assert_eq!(c.invalidate(IecScope::Index { index: 5, mask: 2 }), 4);
        assert!(c.contains(3) && !c.contains(4) && !c.contains(7) && c.contains(8));
        assert_eq!(c.invalidate(IecScope::Global), 8);
        assert!(c.is_empty());
        assert_eq!(c.stats().entries_invalidated, 12);
        let mut none = InterruptEntryCache::new(0);
        none.insert(1, IrteEntry::NOT_PRESENT);
        assert!(none.is_empty());
    }

    #[test]
    fn cached_entry_stays_until_the_invalidation_completes() {
        let p = params();
        let mut u = unit_with_entries(p, 1);
        let request = RemapRequest::remappable(0, 0, None);
        let old = Ok(RemapTarget::Remapped { dest: CpuId(0), vector: Vector(0x40) });
        let new = Ok(RemapTarget::Remapped { dest: CpuId(5), vector: Vector(0x60) });
        assert_eq!(u.translate(ns(0), IO, &request).result, old);
        let timing = u.request_update(ns(10), IO, 0, IrteEntry::remapped(CpuId(5), Vector(0x60))).unwrap();
        let written = timing.start + p.irte_write;
        assert_eq!(timing.done, written + p.iec_invalidation);
        // After the write lands the cache still serves the old entry...
        let stale = u.translate(written, IO, &request);
        assert_eq!((stale.result, stale.cache), (old, CacheOutcome::Hit));
        // ...until the IEC invalidation completes.
        let fresh = u.translate(timing.done, IO, &request);
        assert_eq!((fresh.result, fresh.cache), (new, CacheOutcome::Miss));

        // Without a cached copy, a miss before the write lands reads the old entry.
        let mut u = unit_with_entries(p, 1);
        let timing = u.request_update(ns(10), IO, 0, IrteEntry::remapped(CpuId(5), Vector(0x60))).unwrap();
        let before = u.translate(timing.start + (p.irte_write - SimDuration::from_ps(1)), IO, &request);
        assert_eq!((before.result, before.cache), (old, CacheOutcome::Miss));
        u.invalidate_iec(timing.start + p.irte_write, IO, IecScope::Global);
        assert_eq!(u.translate(timing.start + p.irte_write, IO, &request).result, new);
        u.check_invariants().unwrap();
    }

    #[test]
    fn simultaneous_updates_queue_fifo_on_the_global_lock() {
        // N updates at the same instant: the k-th waits k*c and finishes at t0 + (k+1)*c with
        // c = write + IEC invalidation; total wait c * N(N-1)/2, longest (N-1)*c.
        let mut p = params();
        p.iommu_count = 2;
        let mut u = unit_with_entries(p, 8);
        u.table_mut(IommuId(1)).alloc_block(8).unwrap();
        let c = p.irte_write + p.iec_invalidation;
        let t0 = ns(1_000);
        let n = 8u64;
        for k in 0..n {
            // Alternate IOMMUs: the lock is global, not per IOMMU.
            let io = IommuId((k % 2) as u16);
            let timing = u.request_update(t0, io, k as u32, IrteEntry::remapped(CpuId(1), Vector(0x70))).unwrap();
            let kc = SimDuration::from_ps(c.as_ps() * k);
            assert_eq!(timing.lock_wait, kc, "update {k}");
            assert_eq!(timing.start, t0 + kc);
            assert_eq!(timing.done, t0 + kc + c);
        }
        let s = u.lock_stats();
        assert_eq!((s.acquisitions, s.updates, s.contended), (n, n, n - 1));
        assert_eq!(s.total_wait, SimDuration::from_ps(c.as_ps() * n * (n - 1) / 2));
        assert_eq!(s.max_wait, SimDuration::from_ps(c.as_ps() * (n - 1)));
        assert_eq!(s.busy, SimDuration::from_ps(c.as_ps() * n));
        assert_eq!(u.lock_idle_at(), t0 + SimDuration::from_ps(c.as_ps() * n));
        // Once the lock is idle an update does not wait.
        let later = u.lock_idle_at() + SimDuration::from_ns(1);
        let timing = u.request_update(later, IO, 0, IrteEntry::NOT_PRESENT).unwrap();
        assert_eq!((timing.lock_wait, timing.start), (SimDuration::ZERO, later));
        // Updates to unallocated or out-of-range entries are refused without taking the lock.
        assert_eq!(u.request_update(later, IO, 9, IrteEntry::NOT_PRESENT), Err(IrteOpError::NotAllocated { index: 9 }));
        assert_eq!(
            u.request_update(later, IO, 1 << 16, IrteEntry::NOT_PRESENT),
            Err(IrteOpError::IndexBeyondTable { index: 1 << 16 })
        );
        assert_eq!(u.lock_stats().acquisitions, n + 1);
        u.check_invariants().unwrap();
    }

    #[test]
    fn posted_writes_use_the_cmpxchg16b_cost() {
        let p = params();
        let mut u = unit_with_entries(p, 1);
        let remapped = IrteEntry::remapped(CpuId(2), Vector(0x41));
        let posted = IrteEntry::posted(PiDescId(3), Vector(0x51), false);
        // Old entry remapped (written directly): remapped -> posted is a posted write, and so
        // are posted -> posted and posted -> remapped (the old entry, still only scheduled,
        // is posted); remapped -> remapped is a plain write.
        let steps = [
            (posted, p.irte_write_posted),
            (posted, p.irte_write_posted),
            (remapped, p.irte_write_posted),
            (remapped, p.irte_write),
        ];
        for (k, (entry, write)) in steps.into_iter().enumerate() {
            let timing = u.request_update(ns(0), IO, 0, entry).unwrap();
            assert_eq!(timing.done, timing.start + write + p.iec_invalidation, "step {k}");
        }
        u.advance_to(u.lock_idle_at());
        assert_eq!(u.table(IO).entry(0), Some(&remapped));
        u.check_invariants().unwrap();
    }

    #[test]
    fn alloc_and_free_hold_the_lock_too() {
        let p = params();
        let mut u = unit(p);
        let a = u.alloc_block(ns(0), IO, 4);
        let block = IrteBlock { base: 0, mask: 2 };
        assert_eq!(a.result, Ok(block));
        assert_eq!(a.timing.unwrap().done, ns(0) + p.irte_alloc);
        // Refused before taking the lock.
        assert_eq!(u.alloc_block(ns(0), IO, 0).timing, None);
        assert_eq!(u.alloc_block(ns(0), IO, 64).result, Err(IrteAllocError::MaskTooLarge { mask: 6, max: 5 }));
        for i in 0..4 {
            u.request_update(ns(0), IO, i, IrteEntry::remapped(CpuId(i), Vector(0x40))).unwrap();
        }
        let idle = u.lock_idle_at();
        assert_eq!(idle, ns(50) + SimDuration::from_ps((p.irte_write + p.iec_invalidation).as_ps() * 4));
        assert!(u.translate(idle, IO, &RemapRequest::remappable(0, 1, None)).result.is_ok());
        // Freeing 4 entries: 4 writes then a masked invalidation.
        let timing = u.free_block(idle, IO, block).unwrap();
        let writes = SimDuration::from_ps(p.irte_write.as_ps() * 4);
        assert_eq!(timing.done, idle + writes + p.iec_invalidation);
        assert_eq!(u.table(IO).used(), 0);
        // Entry 1 is still cached until the invalidation and present until the writes land.
        let r = u.translate(idle + writes, IO, &RemapRequest::remappable(0, 1, None));
        assert_eq!(r.cache, CacheOutcome::Hit);
        assert_eq!(u.table(IO).entry(1), Some(&IrteEntry::NOT_PRESENT));
        let r = u.translate(timing.done, IO, &RemapRequest::remappable(0, 1, None));
        assert_eq!((fault_of(&r), r.cache), (RemapFault::EntryNotPresent, CacheOutcome::Miss));
        assert_eq!(u.free_block(timing.done, IO, block), Err(IrteOpError::NotABlock { block }));
        let s = u.lock_stats();
        assert_eq!((s.allocs, s.updates, s.frees), (1, 4, 1));
        u.check_invariants().unwrap();
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        let good = params();
        assert!(good.validate().is_ok());
        let bad = [
            RemapParams { iommu_count: 0, ..good },
            RemapParams { table_entries: 0, ..good },
            RemapParams { table_entries: 65_537, ..good },
            RemapParams { max_handle_mask: 16, ..good },
            RemapParams { fault_recording_registers: 0, ..good },
            RemapParams { fault_recording_registers: 257, ..good },
        ];
        for p in bad {
            assert!(RemapUnit::new(p).is_err(), "{p:?}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // Randomised operation sequences against a reference
    // -----------------------------------------------------------------------------------------

    /// The reference: allocated blocks in a map, entries as last written.
    #[derive(Debug, Default)]
    struct Reference {
        blocks: BTreeMap<u32, u8>,
        entries: BTreeMap<u32, IrteEntry>,
    }

    impl Reference {
        fn overlaps(&self, base: u32, size: u32) -> bool {
            // Blocks are disjoint: only the last one starting before the end can overlap.
            self.blocks.range(..base + size).next_back().is_some_and(|(&b, &m)| b + (1 << m) > base)
        }

        fn alloc(&self, cap: u32, mhmv: u8, count: u32) -> Result<IrteBlock, IrteAllocError> {
            if count == 0 {
                return Err(IrteAllocError::ZeroCount);
            }
            let mut mask = 0u32;
            while (1u64 << mask) < u64::from(count) {
                mask += 1;
            }
            if mask > u32::from(mhmv) {
                return Err(IrteAllocError::MaskTooLarge { mask, max: mhmv });
            }
            let size = 1 << mask;
            let mut base = 0;
            while base + size <= cap {
                if !self.overlaps(base, size) {
                    return Ok(IrteBlock { base, mask: mask as u8 });
                }
                base += size;
            }
            Err(IrteAllocError::Full)
        }

        fn block_of(&self, index: u32) -> Option<IrteBlock> {
            self.blocks
                .range(..=index)
                .next_back()
                .map(|(&base, &mask)| IrteBlock { base, mask })
                .filter(|b| b.contains(index))
        }
    }

    fn random_entry(rng: &mut RngStream) -> IrteEntry {
        let vector = Vector(rng.below(256) as u8);
        let entry = if rng.below(3) == 0 {
            IrteEntry::posted(PiDescId(rng.below(100) as u32), vector, rng.below(2) == 1)
        } else {
            IrteEntry::remapped(CpuId(rng.below(64) as u32), vector)
        };
        let entry = entry.with_fpd(rng.below(4) == 0);
        IrteEntry { present: rng.below(8) != 0, ..entry }
    }

    /// Mostly an index inside an allocated block, sometimes any index (including beyond).
    fn pick_index(rng: &mut RngStream, r: &Reference, cap: u32) -> u32 {
        if r.blocks.is_empty() || rng.below(4) == 0 {
            return rng.below(u64::from(cap) + 4) as u32;
        }
        let k = rng.below(r.blocks.len() as u64) as usize;
        let (&base, &mask) = r.blocks.iter().nth(k).expect("k < len");
        base + rng.below(1 << mask) as u32
    }

    macro_rules! ensure {
        ($cond:expr, $($msg:tt)+) => {
            if !$cond {
                return Err(format!($($msg)+));
            }
        };
    }

    /// How often the interesting outcomes happened in one run (to show the test bites).
    #[derive(Debug, Default, Clone, Copy)]
    struct Coverage {
        allocs_ok: u32,
        allocs_refused: u32,
        frees: u32,
        updates: u32,
        quiescent_checks: u32,
    }

    fn run_random(seed: u64) -> Result<Coverage, String> {
        let mut cov = Coverage::default();
        let mut rng = RngStream::new(seed, "remap/random_ops");
        let mut p = params();
        p.iommu_count = 2;
        p.table_entries = [64, 256, 1000, 1024][rng.below(4) as usize];
        p.max_handle_mask = rng.below(7) as u8;
        p.fault_recording_registers = 1 + rng.below(6) as u16;
        p.iec_entries = rng.below(9) as u32;
        p.collapse_same_source = rng.below(2) == 1;
        let (cap, mhmv) = (p.table_entries, p.max_handle_mask);
        let mut u = RemapUnit::new(p).map_err(|e| e.to_string())?;
        let mut refs = [Reference::default(), Reference::default()];
        let mut now = SimTime::ZERO;
        for step in 0..300 {
            let gap = if rng.below(10) == 0 { 50_000 } else { rng.below(3_000) };
            now += SimDuration::from_ns(gap);
            let which = rng.below(2) as usize;
            let io = IommuId(which as u16);
            let r = &mut refs[which];
            let op = rng.below(100);
            match op {
                0..35 => {
                    let count = match rng.below(4) {
                        0 => rng.below(3) as u32,
                        1 => 1 + rng.below(1 << (mhmv + 1)) as u32,
                        _ => 1 + rng.below(8) as u32,
                    };
                    let want = r.alloc(cap, mhmv, count);
                    let got = u.alloc_block(now, io, count).result;
                    ensure!(got == want, "step {step}: alloc {count}: got {got:?}, want {want:?}");
                    match got {
                        Ok(b) => {
                            r.blocks.insert(b.base, b.mask);
                            cov.allocs_ok += 1;
                        }
                        Err(_) => cov.allocs_refused += 1,
                    }
                }
                35..55 if !r.blocks.is_empty() => {
                    let k = rng.below(r.blocks.len() as u64) as usize;
                    let (&base, &mask) = r.blocks.iter().nth(k).expect("k < len");
                    let block = IrteBlock { base, mask };
                    let got = u.free_block(now, io, block);
                    ensure!(got.is_ok(), "step {step}: free {block:?}: {got:?}");
                    r.blocks.remove(&base);
                    for i in base..base + block.count() {
                        r.entries.remove(&i);
                    }
                    cov.frees += 1;
                }
                35..60 => {
                    let block = IrteBlock { base: rng.below(u64::from(cap) + 4) as u32, mask: rng.below(4) as u8 };
                    let valid = r.blocks.get(&block.base) == Some(&block.mask);
                    let got = u.free_block(now, io, block);
                    ensure!(got.is_ok() == valid, "step {step}: free {block:?}: {got:?}, valid {valid}");
                    if valid {
                        r.blocks.remove(&block.base);
                        for i in block.base..block.base + block.count() {
                            r.entries.remove(&i);
                        }
                    }
                }
                60..80 => {
                    let index = pick_index(&mut rng, r, cap);
                    let entry = random_entry(&mut rng);
                    let want = if index >= cap {
                        Err(IrteOpError::IndexBeyondTable { index })
                    } else if r.block_of(index).is_none() {
                        Err(IrteOpError::NotAllocated { index })
                    } else {
                        Ok(())
                    };
                    let got = u.request_update(now, io, index, entry).map(|_| ());
                    ensure!(got == want, "step {step}: update {index}: got {got:?}, want {want:?}");
                    if got.is_ok() {
                        r.entries.insert(index, entry);
                        cov.updates += 1;
                    }
                }
                80..95 => {
                    let index = pick_index(&mut rng, r, cap);
                    let handle = index.min(u32::from(u16::MAX)) as u16;
                    let t = u.translate(now, io, &RemapRequest::remappable(0, handle, None));
                    if index >= cap {
                        ensure!(t.result == Err(RemapFault::IndexBeyondTable), "step {step}: {t:?}");
                    } else if now >= u.lock_idle_at() {
                        // Quiescent: every write and invalidation has landed.
                        cov.quiescent_checks += 1;
                        let entry = r.entries.get(&index).copied().unwrap_or(IrteEntry::NOT_PRESENT);
                        let want = match (entry.present, entry.mode) {
                            (false, _) => Err(RemapFault::EntryNotPresent),
                            (true, IrteMode::Remapped { dest, vector }) => Ok(RemapTarget::Remapped { dest, vector }),
                            (true, IrteMode::Posted { descriptor, vector, urgent }) => {
                                Ok(RemapTarget::Posted { descriptor, vector, urgent })
                            }
                        };
                        ensure!(t.result == want, "step {step}: index {index}: got {t:?}, want {want:?}");
                        if t.result.is_err() && entry.fpd {
                            ensure!(t.fault == Some(FaultDisposition::NotRecordedFpd), "step {step}: {t:?}");
                        }
                    }
                }
                95..98 => {
                    u.service_faults(now, io);
                    ensure!(!u.fault_registers(io).ppf(), "step {step}: faults left after service");
                }
                _ => {
                    u.invalidate_iec(now, io, IecScope::Global);
                }
            }
            u.check_invariants().map_err(|e| format!("step {step} (op {op}): {e}"))?;
            for (k, r) in refs.iter().enumerate() {
                let table = u.table(IommuId(k as u16));
                let got: Vec<IrteBlock> = table.blocks().collect();
                let want: Vec<IrteBlock> = r.blocks.iter().map(|(&base, &mask)| IrteBlock { base, mask }).collect();
                ensure!(got == want, "step {step}: iommu {k} blocks {got:?}, want {want:?}");
                let used: u32 = want.iter().map(|b| b.count()).sum();
                ensure!(table.used() == used, "step {step}: used {} want {used}", table.used());
            }
        }
        Ok(cov)
    }

    #[test]
    fn random_operation_sequences_match_the_reference() {
        let seeds: Vec<u64> = match std::env::var("SEED") {
            Ok(s) => vec![s.parse().expect("SEED must be an unsigned integer")],
            Err(_) => (0..24).collect(),
        };
        let mut total = Coverage::default();
        for seed in seeds {
            eprintln!("random remap operations, seed {seed}");
            match run_random(seed) {
                Ok(c) => {
                    total.allocs_ok += c.allocs_ok;
                    total.allocs_refused += c.allocs_refused;
                    total.frees += c.frees;
                    total.updates += c.updates;
                    total.quiescent_checks += c.quiescent_checks;
                }
                Err(e) => panic!("seed {seed}: {e}\nreplay: SEED={seed} cargo test random_operation_sequences"),
            }
        }
        eprintln!("coverage: {total:?}");
        let c = total;
        assert!(c.allocs_ok > 0 && c.allocs_refused > 0 && c.frees > 0 && c.updates > 0 && c.quiescent_checks > 0);
    }
}
