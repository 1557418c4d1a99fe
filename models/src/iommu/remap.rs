//! VT-d interrupt remapping: IRTE tables with Linux's block allocator, the hardware lookup of
//! a remappable interrupt request, the interrupt entry cache, fault recording and the
//! kernel's rate-limited fault handler, and the global IRTE update lock.
//!
//! The code is split by concept:
//!
//! - `irte.rs`: the IRTE format: [`IrteEntry`] in remapped or posted format ([`IrteMode`]),
//!   source-id validation ([`SourceValidation`], [`SourceQualifier`]) and the platform's
//!   [`Irte`];
//! - `request.rs`: the interrupt request as the hardware decodes it ([`RemapRequest`],
//!   [`InterruptMessage`]) and where a request that passes goes ([`RemapTarget`]);
//! - `table.rs`: the IRTE table and Linux's block allocator ([`IrteTable`], [`IrteBlock`])
//!   with its errors;
//! - `cache.rs`: the interrupt entry cache, an LRU ([`InterruptEntryCache`], [`IecScope`]);
//! - `faults.rs`: the fault reasons 0x20–0x26 ([`RemapFault`]), the fault recording registers
//!   ([`FaultRecordingRegisters`]), the kernel's log rate limit ([`KernelRateLimit`]) and the
//!   fault handler's [`ServiceReport`];
//! - `params.rs`: [`RemapParams`] and the values no source gives ([`RemapUnsourced`]);
//! - `unit.rs`: [`RemapUnit`], one table, cache and set of fault registers per IOMMU: the
//!   lookup with its source-id checks and fault recording, timed updates on the global lock
//!   and the fault handler; its tests, with the random sequences against a reference, are in
//!   `unit/tests.rs`;
//! - `testutil.rs` (tests only): the parameters and units the tests build.
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
//! - **PASID-aware checking (hypothetical, off by default)**: with
//!   [`RemapParams::pasid_checking`] an entry tagged with a PASID ([`IrteEntry::pasid`])
//!   blocks a request tagged with another (or none) as 0x26, after the requester-id check.
//!   VT-d has no such field and SIOV interrupts carry no PASID; the switch shows what the
//!   check would change (docs/sources.md#pasid-remapping-hypothetical).
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
//! Paths are Linux kernel files; each fact has its entry in docs/sources.md.
//!
//! - Table size 65,536 entries: `INTR_REMAP_TABLE_ENTRIES`, drivers/iommu/intel/iommu.h;
//!   docs/sources.md#irte-table-size.
//! - Power-of-two blocks, mask ≤ ECAP.MHMV (bits 23:20, `ecap_max_handle_mask`):
//!   irq_remapping.c `alloc_irte`; docs/sources.md#irte-blocks.
//! - IRTE fields and SVT/SQ semantics: irq_remapping.c `set_irte_sid`, `SQ_13_IGNORE_*`,
//!   `set_irte_verify_bus`, `set_msi_sid`; docs/sources.md#irte-format.
//! - Posted IRTE (IM, URG, vector, PDA): docs/sources.md#posted-irte; irq_remapping.c
//!   `intel_ir_set_vcpu_affinity`.
//! - Fault reasons 0x20–0x26 and their wording: dmar.c `irq_remap_fault_reasons[]`;
//!   docs/sources.md#remap-fault-reasons.
//! - 1–256 fault recording registers (CAP bits 47:40 + 1): iommu.h `cap_num_fault_regs`;
//!   docs/sources.md#fault-recording-registers.
//! - Handler and rate limit, burst 10 per 5 s: dmar.c `dmar_fault`; lib/ratelimit.c
//!   `___ratelimit`; include/linux/ratelimit_types.h; docs/sources.md#fault-log-rate-limit.
//! - 32-bit destinations in x2APIC (EIM) mode, else bits 15:8: irq_remapping.c `IRTE_DEST`.
//! - Compatibility format blocked (GCMD.CFI cleared): irq_remapping.c
//!   `iommu_enable_irq_remapping`; docs/sources.md#compatibility-format-blocked.
//! - Update sequence (lock, write or cmpxchg16b, `qi_flush_iec`): irq_remapping.c
//!   `modify_irte`, `clear_entries`; docs/sources.md#irte-update.
//! - IRTE write, posted write, IEC invalidation and allocation costs: required inputs
//!   ([`RemapUnsourced`]), no published figure: docs/sources.md#irte-update-cost.
//! - IEC size, hit and miss latency, MHMV and NFR of a given part: required inputs; the
//!   structure is unpublished and the capability values are hardware-specific.
//! - FPD qualifying even "not present", PFO stopping all recording, optional collapsing of
//!   faults from one requester: QEMU hw/i386/intel_iommu.c `vtd_irte_get` and
//!   `vtd_report_frcd_fault` (the VT-d specification text itself was not read).

mod cache;
mod faults;
mod irte;
mod params;
mod request;
mod table;
#[cfg(test)]
mod testutil;
mod unit;

pub use cache::{CacheStats, IecScope, InterruptEntryCache};
pub use faults::{
    DEFAULT_RATELIMIT_BURST, DEFAULT_RATELIMIT_INTERVAL, FAULT_RECORDING_REGISTERS_MAX, FaultRecord,
    FaultRecordingRegisters, KernelRateLimit, RateLimitDecision, RecordOutcome, RemapFault, ServiceReport,
};
pub use irte::{Irte, IrteEntry, IrteMode, PiDescId, SourceQualifier, SourceValidation};
pub use params::{InvalidRemapParams, RemapParams, RemapUnsourced};
pub use request::{InterruptMessage, RemapRequest, RemapTarget, irte_index};
pub use table::{
    INTR_REMAP_TABLE_ENTRIES, IrteAllocError, IrteBlock, IrteOpError, IrteTable, IrteTableFull, MAX_HANDLE_MASK_LIMIT,
};
pub use unit::{
    AllocOutcome, CacheOutcome, FaultDisposition, IommuId, LockStats, RemapCounters, RemapUnit, Translation,
    UpdateTiming,
};
