//! The `platform.gic` section (ARM): required with `arch: arm` and refused on x86; the ITS
//! (command and SYNC costs, LPI id bits) or GICv2m frame; and the refusal of what is x86-only
//! on ARM (interrupt remapping, the x86 vector space's kernel options, CPU hotplug).

use serde_saphyr::Spanned;
use sim::SimDuration;

use models::arm::its::{GicVersion, ITS_MAX_VPEID_BITS, ItsCosts};
use models::platform::{GicMsiParams, GicParams};

use super::checker::Checker;
use crate::schema::{ActionSpec, Arch, GicMsiSpec, GicSpec, GicVersionSpec, PlatformSpec};

const P: &str = "platform.gic";

/// Checks the GIC block: `Some(None)` on x86 (where a GIC is refused), `None` when it has
/// errors.
pub(crate) fn check_gic(
    platform: &PlatformSpec,
    arm: bool,
    actions: &[ActionSpec],
    c: &mut Checker,
) -> Option<Option<GicParams>> {
    let Some(arch) = platform.arch.as_ref().filter(|_| arm) else {
        if platform.gic.is_some() {
            c.error(&platform.cpus, P, "a GIC needs arch: arm (this platform is x86)");
        }
        return Some(None);
    };
    if platform.iommu.as_ref().is_some_and(|i| i.interrupt_remapping) {
        c.error(arch, "platform.iommu", "arm has no MSI remapping: the SMMU does not remap MSIs, the ITS isolates devices (docs/sources.md#arm-msi-isolation); leave iommu out");
    }
    // On arm only the release applies (the ITS's MSI parent and VFIO follow it); the other
    // kernel options shape the x86 vector space.
    if let Some(k) = &platform.kernel {
        let x86_only = [
            ("legacy_pic", k.legacy_pic.is_some()),
            ("ia32_emulation", k.ia32_emulation.is_some()),
            ("hz", k.hz.is_some()),
        ];
        for (field, _) in x86_only.iter().filter(|(_, set)| *set) {
            c.error(arch, format!("platform.kernel.{field}"), format!("{field} shapes the x86 vector space; on arm only platform.kernel.version applies (the host release: VFIO's dynamic MSI-X from 7.3, the ITS device kept across a resize from 6.16); remove {field}"));
        }
    }
    for (i, a) in actions.iter().enumerate() {
        if a.cpu_offline.is_some() || a.cpu_online.is_some() {
            c.error(&a.at, format!("actions[{i}]"), "CPU hotplug is not modelled on arm yet; only set_affinity");
        }
    }
    let Some(gic) = &platform.gic else {
        c.error(arch, P, "is required with arch: arm (e.g. { msi: its, translation_latency: 80ns, its_command: 100ns, its_sync: 500ns })");
        return None;
    };
    let version = match gic.version.unwrap_or(GicVersionSpec::V3) {
        GicVersionSpec::V3 => GicVersion::V3,
        GicVersionSpec::V40 => GicVersion::V4_0,
        GicVersionSpec::V41 => GicVersion::V4_1,
    };
    let latency = required(c, arch, &gic.translation_latency, "translation_latency", "on arm");
    let msi = match gic.msi.as_ref().map_or(GicMsiSpec::Its, |m| m.value) {
        GicMsiSpec::Its => check_its(gic, version, latency, arch, c),
        GicMsiSpec::V2m => check_v2m(gic, latency, c),
    };
    Some(Some(GicParams { version, msi: msi? }))
}

/// A duration without a published figure: required, or an error at `arch` saying `why`.
fn required(
    c: &mut Checker,
    arch: &Spanned<Arch>,
    value: &Option<Spanned<String>>,
    field: &str,
    why: &str,
) -> Option<SimDuration> {
    match value {
        Some(v) => c.duration(v, &format!("{P}.{field}")),
        None => {
            c.error(
                arch,
                format!("{P}.{field}"),
                format!("is required {why} (no published figure, docs/sources.md#its-costs)"),
            );
            None
        }
    }
}

/// `msi: its`: command, SYNC and (GICv4.1) direct-invalidation costs, the LPI id bits.
fn check_its(
    gic: &GicSpec,
    version: GicVersion,
    translation_latency: Option<SimDuration>,
    arch: &Spanned<Arch>,
    c: &mut Checker,
) -> Option<GicMsiParams> {
    let command = required(c, arch, &gic.its_command, "its_command", "with msi: its");
    let sync = required(c, arch, &gic.its_sync, "its_sync", "with msi: its");
    let direct_inv = match (&gic.its_direct_inv, version) {
        (Some(v), _) => c.duration(v, &format!("{P}.its_direct_inv")),
        (None, GicVersion::V4_1) => {
            required(c, arch, &None, "its_direct_inv", "with version v4.1 (direct LPI invalidation)")
        }
        (None, _) => Some(SimDuration::ZERO),
    };
    let lpi_id_bits = match &gic.lpi_id_bits {
        None => Some(16),
        Some(b) if (14..=24).contains(&b.value) => Some(b.value),
        Some(b) => {
            c.error(b, format!("{P}.lpi_id_bits"), format!("{} is outside 14 to 24 (GICD_TYPER.IDbits + 1)", b.value));
            None
        }
    };
    if let Some(v) = &gic.v2m_spis {
        c.error(v, format!("{P}.v2m_spis"), "only allowed with msi: v2m");
    }
    let vpe_id_bits = match (&gic.vpe_id_bits, version) {
        (None, _) => Some(None),
        (Some(b), GicVersion::V4_1) if (1..=ITS_MAX_VPEID_BITS).contains(&b.value) => Some(Some(b.value)),
        (Some(b), GicVersion::V4_1) => {
            c.error(
                b,
                format!("{P}.vpe_id_bits"),
                format!("{} is outside 1 to 16 (GICD_TYPER2.VID + 1; vPE IDs are 16-bit)", b.value),
            );
            None
        }
        (Some(b), _) if b.value == ITS_MAX_VPEID_BITS => Some(Some(b.value)),
        (Some(b), _) => {
            c.error(b, format!("{P}.vpe_id_bits"), format!("{} is not 16: before GICv4.1 Linux always uses 16 vPE ID bits (ITS_MAX_VPEID_BITS); fewer need version: v4.1", b.value));
            None
        }
    };
    Some(GicMsiParams::Its {
        costs: ItsCosts { command: command?, sync: sync?, direct_inv: direct_inv? },
        translation_latency: translation_latency?,
        lpi_id_bits: lpi_id_bits?,
        vpe_id_bits: vpe_id_bits?,
    })
}

/// `msi: v2m`: the frame's SPI count; the ITS costs are refused.
fn check_v2m(gic: &GicSpec, latency: Option<SimDuration>, c: &mut Checker) -> Option<GicMsiParams> {
    if let Some(b) = &gic.vpe_id_bits {
        c.error(b, format!("{P}.vpe_id_bits"), "only allowed with msi: its (vPEs live in the ITS)");
    }
    if let Some(b) = &gic.lpi_id_bits {
        c.ignored(
            b,
            format!("{P}.lpi_id_bits"),
            &format!("{P}.msi"),
            &format!("{} has no effect with msi: v2m: a GICv2m frame turns MSIs into SPIs, not LPIs; remove lpi_id_bits, or use msi: its", b.value),
        );
    }
    for (field, value) in
        [("its_command", &gic.its_command), ("its_sync", &gic.its_sync), ("its_direct_inv", &gic.its_direct_inv)]
    {
        if let Some(v) = value {
            c.error(v, format!("{P}.{field}"), "only allowed with msi: its");
        }
    }
    let spis = match &gic.v2m_spis {
        None => Some(64),
        Some(n) if (1..=988).contains(&n.value) => Some(n.value),
        Some(n) => {
            c.error(n, format!("{P}.v2m_spis"), format!("{} is outside 1 to 988 (SPIs 32..1019)", n.value));
            None
        }
    };
    Some(GicMsiParams::V2m { spis: spis?, latency: latency? })
}
