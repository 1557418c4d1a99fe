//! The parameters of the interrupt-remapping model ([`RemapParams`]), the values no source
//! gives that the caller must choose ([`RemapUnsourced`]), and their validation.

use std::fmt;

use sim::SimDuration;

use super::faults::{DEFAULT_RATELIMIT_BURST, DEFAULT_RATELIMIT_INTERVAL, FAULT_RECORDING_REGISTERS_MAX};
use super::table::{INTR_REMAP_TABLE_ENTRIES, MAX_HANDLE_MASK_LIMIT};

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
    /// published figure (docs/sources.md#irte-update-cost).
    pub irte_write: SimDuration,
    /// Lock hold for writing when the old or new IRTE is posted (cmpxchg16b). No published
    /// figure (docs/sources.md#irte-update-cost).
    pub irte_write_posted: SimDuration,
    /// Lock hold for `qi_flush_iec`: IEC invalidation descriptor plus wait descriptor,
    /// synchronous. No published figure (docs/sources.md#irte-update-cost; an unsourced guess
    /// is about 1–10 µs).
    pub iec_invalidation: SimDuration,
    /// Lock hold for `alloc_irte`'s bitmap search. No published figure.
    pub irte_alloc: SimDuration,
}

/// Every parameter of the interrupt-remapping model. Times are simulated durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemapParams {
    /// IOMMUs (DRHD units); they share the update lock and the handler's rate limit.
    pub iommu_count: u16,
    /// Entries per table, 1–65,536 (Linux: 65,536; docs/sources.md#irte-table-size).
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
    /// Hypothetical PASID-granular remapping: a request whose PASID differs from the one
    /// the IRTE was written for is blocked (recorded as 0x26, source-id verification). No
    /// VT-d unit does this: an IRTE has SID/SQ/SVT and no PASID, and SIOV sends MSIs without
    /// a PASID TLP prefix (docs/sources.md#pasid-remapping-hypothetical). Off in Linux's
    /// defaults.
    pub pasid_checking: bool,
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
            pasid_checking: false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iommu::remap::RemapUnit;
    use crate::iommu::remap::testutil::*;

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
}
