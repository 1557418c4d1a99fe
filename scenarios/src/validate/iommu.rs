//! The `platform.iommu` section (VT-d interrupt remapping): lookup and cache latencies, the
//! IRTE table, update costs, fault recording, remapping units and host posted MSI (which asks
//! the kernel release).

use serde_saphyr::Spanned;

use models::iommu::remap::{INTR_REMAP_TABLE_ENTRIES, RemapParams, RemapUnsourced};
use models::kernel::KernelVersion;
use models::platform::{IommuParams, PostedMsiConfig};
use sim::SimDuration;

use super::checker::Checker;
use crate::schema::{IommuSpec, IrteUpdateSpec, PostedMsiSpec};

const P: &str = "platform.iommu";

/// A remapping block that is off (`interrupt_remapping: false`) with fields that would set
/// the unit up: each has no effect, so each is reported ([`Checker::ignored`]: an error, or
/// a warning when an override switched remapping off), value unchecked.
pub(crate) fn check_switched_off(iommu: &IommuSpec, c: &mut Checker) {
    let switch = format!("{P}.interrupt_remapping");
    let why = |field: &str, value: String| {
        format!(
            "{value} has no effect: {switch} is false, so there is no remapping unit (no IRTE lookups, entry cache, updates, fault recording or posted MSI); set interrupt_remapping: true, or remove {field}"
        )
    };
    let mut report = |at: Spanned<()>, field: &str, value: String| {
        c.ignored(&at, format!("{P}.{field}"), &switch, &why(field, value));
    };
    let at = |s: &serde_saphyr::Location| Spanned::new((), *s, *s);
    if let Some(v) = &iommu.lookup_latency {
        report(at(&v.referenced), "lookup_latency", format!("`{}`", v.value));
    }
    if let Some(v) = &iommu.units {
        report(at(&v.referenced), "units", format!("{} units", v.value));
    }
    if let Some(v) = &iommu.irte_entries {
        report(at(&v.referenced), "irte_entries", format!("{} entries", v.value));
    }
    if let Some(v) = &iommu.irte_cache {
        report(at(&v.entries.referenced), "irte_cache", "the IRTE cache".to_owned());
    }
    if let Some(v) = &iommu.irte_update {
        report(at(&v.irte_write.referenced), "irte_update", "the IRTE update cost".to_owned());
    }
    if let Some(v) = &iommu.fault_recording_registers {
        report(at(&v.referenced), "fault_recording_registers", format!("{} registers", v.value));
    }
    if let Some(v) = &iommu.max_handle_mask {
        report(at(&v.referenced), "max_handle_mask", format!("{}", v.value));
    }
    if let Some(v) = &iommu.posted_msi {
        report(at(&v.referenced), "posted_msi", "host posted MSI".to_owned());
    }
    if let Some(v) = &iommu.pasid_checking {
        report(at(&v.referenced), "pasid_checking", format!("pasid_checking: {}", v.value));
    }
}

/// Checks a remapping unit that is on. `has_actions`: actions move interrupts, so IRTE
/// updates need a cost; `kernel`: the release, if valid (host posted MSI needs 6.10);
/// `anchor`: where to point when a required field is missing.
// Long: a flat list of the section's fields, each with its default or range, then the unit.
pub(crate) fn check_iommu(
    iommu: &IommuSpec,
    has_actions: bool,
    kernel: Option<KernelVersion>,
    anchor: &Spanned<u32>,
    c: &mut Checker,
) -> Option<IommuParams> {
    let lookup = match &iommu.lookup_latency {
        Some(l) => c.duration(l, &format!("{P}.lookup_latency")),
        None => {
            c.error(anchor, format!("{P}.lookup_latency"), "is required when interrupt_remapping is true (the IRTE table read; no published figure, docs/sources.md#irte-lookup)");
            None
        }
    };
    let entries = match &iommu.irte_entries {
        None => Some(INTR_REMAP_TABLE_ENTRIES),
        Some(e) if (1..=INTR_REMAP_TABLE_ENTRIES).contains(&e.value) => Some(e.value),
        Some(e) => {
            c.error(
                e,
                format!("{P}.irte_entries"),
                format!("{} is outside 1 to {INTR_REMAP_TABLE_ENTRIES} (INTR_REMAP_TABLE_ENTRIES)", e.value),
            );
            None
        }
    };
    let cache = match &iommu.irte_cache {
        None => Some(None),
        Some(cache) => c
            .duration(&cache.hit_latency, &format!("{P}.irte_cache.hit_latency"))
            .map(|hit_latency| Some((cache.entries.value, hit_latency))),
    };
    let update = check_update(iommu.irte_update.as_ref(), has_actions, anchor, c);
    let fault_recording_registers =
        bounded(c, &iommu.fault_recording_registers, 1, 256, 1, "fault_recording_registers", "(CAP.NFR + 1)");
    let max_handle_mask = bounded(c, &iommu.max_handle_mask, 0, 15, 15, "max_handle_mask", "(ECAP.MHMV)");
    let posted_msi = match &iommu.posted_msi {
        None => Some(None),
        Some(spec) => check_posted_msi(spec, kernel, c).map(Some),
    };
    let units = match &iommu.units {
        None => Some(1),
        Some(n) if (1..=256).contains(&n.value) => Some(n.value),
        Some(n) => {
            c.error(n, format!("{P}.units"), format!("{} remapping units; allowed 1 to 256", n.value));
            None
        }
    };
    let unsourced = RemapUnsourced {
        max_handle_mask: max_handle_mask?,
        fault_recording_registers: fault_recording_registers?,
        ..remap_costs(lookup?, cache?, update?)
    };
    let mut remap = RemapParams::linux_defaults(unsourced);
    remap.table_entries = entries?;
    remap.iommu_count = units?;
    remap.pasid_checking = iommu.pasid_checking.as_ref().is_some_and(|b| b.value);
    if let Err(e) = remap.validate() {
        c.error(anchor, P, format!("the remapping unit's parameters are inconsistent: {e}"));
        return None;
    }
    Some(IommuParams { remap, posted_msi: posted_msi? })
}

/// The remapping unit's costs from the scenario's: without an entry cache every lookup
/// reads the table; a posted IRTE costs what a remapped one does; allocation is free. The
/// rest of [`RemapParams::linux_defaults`] is Linux's (x2APIC mode, compatibility format
/// blocked, the fault log's rate limit).
fn remap_costs(
    lookup: SimDuration,
    cache: Option<(u32, SimDuration)>,
    (irte_write, iec_invalidation): (SimDuration, SimDuration),
) -> RemapUnsourced {
    RemapUnsourced {
        max_handle_mask: 0,
        fault_recording_registers: 1,
        iec_entries: cache.map_or(0, |(entries, _)| entries),
        iec_hit_latency: cache.map_or(lookup, |(_, hit)| hit),
        iec_miss_latency: lookup,
        irte_write,
        irte_write_posted: irte_write,
        iec_invalidation,
        irte_alloc: SimDuration::ZERO,
    }
}

/// An optional whole number in `lo..=hi` (`default` when absent); the message names the
/// register field it stands for (`why`).
fn bounded<T>(
    c: &mut Checker,
    value: &Option<Spanned<T>>,
    lo: T,
    hi: T,
    default: T,
    field: &str,
    why: &str,
) -> Option<T>
where
    T: Copy + PartialOrd + std::fmt::Display,
{
    match value {
        None => Some(default),
        Some(n) if (lo..=hi).contains(&n.value) => Some(n.value),
        Some(n) => {
            c.error(n, format!("{P}.{field}"), format!("{} is outside {lo} to {hi} {why}", n.value));
            None
        }
    }
}

/// The IRTE update costs: required when actions move interrupts, else zero.
fn check_update(
    spec: Option<&IrteUpdateSpec>,
    has_actions: bool,
    anchor: &Spanned<u32>,
    c: &mut Checker,
) -> Option<(SimDuration, SimDuration)> {
    match spec {
        Some(u) => {
            let write = c.duration(&u.irte_write, &format!("{P}.irte_update.irte_write"));
            let iec = c.duration(&u.iec_invalidation, &format!("{P}.irte_update.iec_invalidation"));
            write.zip(iec)
        }
        None if has_actions => {
            c.error(anchor, format!("{P}.irte_update"), "is required when actions move interrupts or a device's provisioning is timed: each move or vector setup rewrites an IRTE under the global lock (e.g. { irte_write: 200ns, iec_invalidation: 2us }; no published figure, docs/sources.md#irte-update-cost)");
            None
        }
        None => Some((SimDuration::ZERO, SimDuration::ZERO)),
    }
}

/// Host posted MSI: the PIR scan cost, the demux loop cap, and a release that has it.
fn check_posted_msi(
    spec: &Spanned<PostedMsiSpec>,
    kernel: Option<KernelVersion>,
    c: &mut Checker,
) -> Option<PostedMsiConfig> {
    let pir_scan = c.duration(&spec.value.pir_scan, &format!("{P}.posted_msi.pir_scan"));
    let loop_cap = match &spec.value.loop_cap {
        None => Some(3),
        Some(n) if n.value >= 1 => Some(n.value),
        Some(n) => {
            c.error(n, format!("{P}.posted_msi.loop_cap"), "0 passes: the demux loop cap must be at least 1");
            None
        }
    };
    if kernel.is_some_and(|k| !k.has_posted_msi()) {
        c.error(
            spec,
            format!("{P}.posted_msi"),
            "host posted MSI appeared in Linux 6.10; set platform.kernel.version to 6.10 or later",
        );
    }
    pir_scan.zip(loop_cap).map(|(pir_scan, loop_cap)| PostedMsiConfig { loop_cap, pir_scan })
}
