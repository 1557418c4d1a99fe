//! The `platform` section: CPUs, NUMA nodes, the kernel release, per-interrupt CPU costs and
//! the x2APIC rule; it calls the IOMMU and GIC checks and hands on what it learnt
//! ([`PlatformChecked`]) for the sections that depend on the platform.

use sim::SimDuration;

use models::kernel::{KERNEL_OLDEST, KernelVersion};
use models::platform::{CpuCostParams, GicParams, HostQueueing, IommuParams, KernelParams};

use super::checker::Checker;
use super::{gic, iommu};
use crate::schema::{Arch, CpuCostsSpec, KernelSpec, QueueingSpec, ScenarioFile};

/// The field path of the architecture switch, for fields that apply to one architecture only.
pub(crate) const ARCH: &str = "platform.arch";
/// Most CPUs a platform may have (x2APIC ids are 32-bit; this bound keeps runs sane).
pub const CPU_COUNT_MAX: u32 = 65_536;
/// Highest APIC id a compatibility-format MSI can address (8-bit destination).
pub const COMPAT_APIC_ID_MAX: u32 = 255;
/// The kernel when a scenario has no `platform.kernel.version`: 6.10, which gives exactly
/// the vector era this default always had (≥6.10) and allows host posted MSI (the schema
/// and docs/parameters.md say so).
pub const DEFAULT_KERNEL: KernelVersion = KernelVersion::new(6, 10);

/// The validated platform section.
#[derive(Debug, Clone)]
pub(crate) struct PlatformSection {
    /// Logical CPUs.
    pub(crate) cpu_count: u32,
    /// NUMA nodes.
    pub(crate) numa_node_count: u32,
    /// The kernel release and its options.
    pub(crate) kernel: KernelParams,
    /// Interrupt remapping, if on (x86).
    pub(crate) remapping: Option<IommuParams>,
    /// The GIC (ARM).
    pub(crate) gic: Option<GicParams>,
    /// Per-interrupt CPU costs.
    pub(crate) cpu_costs: CpuCostParams,
    /// How host CPUs queue interrupts.
    pub(crate) queueing: HostQueueing,
}

/// What the platform checks found: the counts always (clamped to something usable when
/// they were wrong), each other part `None` where it had errors, so that devices, guests and
/// actions are still checked against what is known.
#[derive(Debug)]
pub(crate) struct PlatformChecked {
    /// `platform.cpus` as written (0 or too many were reported).
    pub(crate) cpu_count: u32,
    /// NUMA nodes (1 when the value was wrong).
    pub(crate) numa_node_count: u32,
    /// `arch: arm`.
    pub(crate) arm: bool,
    /// The kernel, `None` if its version was wrong.
    pub(crate) kernel: Option<KernelParams>,
    /// The CPU costs, `None` if one was wrong.
    pub(crate) cpu_costs: Option<CpuCostParams>,
    /// `Some(None)`: no remapping; `None`: remapping with errors.
    pub(crate) remapping: Option<Option<IommuParams>>,
    /// `Some(None)`: no GIC (x86); `None`: a GIC with errors.
    pub(crate) gic: Option<Option<GicParams>>,
    /// How host CPUs queue interrupts.
    pub(crate) queueing: HostQueueing,
}

impl PlatformChecked {
    /// Remapping units (1 without remapping or when the value was wrong).
    pub(crate) fn iommu_units(&self) -> u16 {
        match &self.remapping {
            Some(Some(iommu)) => iommu.remap.iommu_count,
            _ => 1,
        }
    }

    /// The validated section, if every part was valid.
    pub(crate) fn section(self) -> Option<PlatformSection> {
        Some(PlatformSection {
            cpu_count: self.cpu_count,
            numa_node_count: self.numa_node_count,
            kernel: self.kernel?,
            remapping: self.remapping?,
            gic: self.gic?,
            cpu_costs: self.cpu_costs?,
            queueing: self.queueing,
        })
    }
}

/// Checks the platform section. The order of the checks is the order of their messages at
/// one location, so it is kept as it is.
pub(crate) fn check_platform(raw: &ScenarioFile, c: &mut Checker) -> PlatformChecked {
    let platform = &raw.platform;
    let cpus = &platform.cpus;
    let cpu_count = cpus.value;
    if cpu_count == 0 {
        c.error(cpus, "platform.cpus", "0 CPUs: a platform needs at least 1");
    } else if cpu_count > CPU_COUNT_MAX {
        c.error(cpus, "platform.cpus", format!("{cpu_count} exceeds the limit of {CPU_COUNT_MAX} CPUs"));
    }
    let kernel = check_kernel(platform.kernel.as_ref(), c);
    let cpu_costs = check_cpu_costs(platform.cpu_costs.as_ref(), c);
    let remapping = match &platform.iommu {
        Some(spec) if spec.interrupt_remapping => {
            iommu::check_iommu(spec, rewrites_irtes(raw), kernel.map(|k| k.version), cpus, c).map(Some)
        }
        Some(spec) => {
            iommu::check_switched_off(spec, c);
            Some(None)
        }
        None => Some(None),
    };
    let arm = platform.arch.as_ref().is_some_and(|a| a.value == Arch::Arm);
    if arm && let Some(n) = &platform.numa_nodes {
        c.ignored(
            n,
            "platform.numa_nodes",
            ARCH,
            &format!("{} NUMA nodes have no effect on arm: NUMA placement only steers the x86 vector allocator's fallback, and arm routes each queue to a CPU of its affinity; remove numa_nodes (or use arch: x86)", n.value),
        );
    }
    if matches!(remapping, Some(None)) && cpu_count > COMPAT_APIC_ID_MAX + 1 && !arm {
        c.error(
            cpus,
            "platform.cpus",
            format!(
                "{cpu_count} CPUs need APIC ids above {COMPAT_APIC_ID_MAX}, which only interrupt remapping can address (\"x2apic: IRQ remapping doesn't support X2APIC mode\"); set platform.iommu.interrupt_remapping: true or use at most {} CPUs",
                COMPAT_APIC_ID_MAX + 1
            ),
        );
    }
    let numa_node_count = match &platform.numa_nodes {
        None => 1,
        Some(n) if n.value >= 1 && n.value <= cpu_count.max(1) => n.value,
        Some(n) => {
            c.error(
                n,
                "platform.numa_nodes",
                format!("{} NUMA nodes for {cpu_count} CPUs; allowed 1 to {cpu_count}", n.value),
            );
            1
        }
    };
    let gic = gic::check_gic(platform, arm, &raw.actions, c);
    let queueing = match &platform.queueing {
        None if arm => HostQueueing::Fifo,
        None => HostQueueing::Lapic,
        Some(q) if q.value == QueueingSpec::Fifo => HostQueueing::Fifo,
        Some(q) if arm => {
            c.error(
                q,
                "platform.queueing",
                "the GIC's pending state is not modelled: arm CPUs queue in arrival order; use fifo or leave it out",
            );
            HostQueueing::Fifo
        }
        Some(_) => HostQueueing::Lapic,
    };
    if let (Some(q), Some(Some(iommu))) = (&platform.queueing, &remapping)
        && iommu.posted_msi.is_some()
    {
        let name = if q.value == QueueingSpec::Fifo { "fifo" } else { "lapic" };
        c.ignored(
            q,
            "platform.queueing",
            "platform.iommu.posted_msi",
            &format!("`{name}` has no effect with host posted MSI (platform.iommu.posted_msi): the posted-MSI demux serves every CPU's interrupts, one notification per demux loop; remove queueing, or posted_msi"),
        );
    }
    PlatformChecked { cpu_count, numa_node_count, arm, kernel, cpu_costs, remapping, gic, queueing }
}

/// Checks `platform.kernel`: the release (MAJOR.MINOR, 5.11 or later; default
/// [`DEFAULT_KERNEL`]) and the two vector-space options.
fn check_kernel(spec: Option<&KernelSpec>, c: &mut Checker) -> Option<KernelParams> {
    let legacy_pic = spec.and_then(|k| k.legacy_pic).unwrap_or(true);
    let ia32_emulation = spec.and_then(|k| k.ia32_emulation).unwrap_or(true);
    let hz = match spec.and_then(|k| k.hz.as_ref()) {
        None => DEFAULT_HZ,
        Some(hz) if HZ_CHOICES.contains(&hz.value) => hz.value,
        Some(hz) => {
            c.error(
                hz,
                "platform.kernel.hz",
                format!("{} is not a CONFIG_HZ choice; allowed 100, 250, 300, 1000", hz.value),
            );
            return None;
        }
    };
    let Some(text) = spec.and_then(|k| k.version.as_ref()) else {
        return Some(KernelParams { version: DEFAULT_KERNEL, legacy_pic, ia32_emulation, hz });
    };
    let parsed =
        text.value.trim().split_once('.').and_then(|(a, b)| Some(KernelVersion::new(a.parse().ok()?, b.parse().ok()?)));
    let Some(version) = parsed else {
        c.error(
            text,
            "platform.kernel.version",
            format!("`{}` is not a MAJOR.MINOR release such as \"6.8\"", text.value),
        );
        return None;
    };
    if version < KERNEL_OLDEST {
        c.error(
            text,
            "platform.kernel.version",
            format!("{version} is older than {KERNEL_OLDEST}: earlier kernels used another vector fallback order, which is not modelled"),
        );
        return None;
    }
    Some(KernelParams { version, legacy_pic, ia32_emulation, hz })
}

/// CONFIG_HZ when the scenario does not say: kernel/Kconfig.hz's `default HZ_250`
/// (docs/sources.md#config-hz).
const DEFAULT_HZ: u32 = 250;
/// The CONFIG_HZ choices of kernel/Kconfig.hz.
const HZ_CHOICES: [u32; 4] = [100, 250, 300, 1000];

/// Checks `platform.cpu_costs` (each cost defaults to zero: folded into the handlers).
fn check_cpu_costs(spec: Option<&CpuCostsSpec>, c: &mut Checker) -> Option<CpuCostParams> {
    let Some(spec) = spec else { return Some(CpuCostParams::default()) };
    let mut field = |value: &Option<serde_saphyr::Spanned<String>>, name: &str| match value {
        Some(v) => c.duration(v, &format!("platform.cpu_costs.{name}")),
        None => Some(SimDuration::ZERO),
    };
    let irq_entry_exit = field(&spec.irq_entry_exit, "irq_entry_exit");
    let notification = field(&spec.notification, "notification");
    Some(CpuCostParams { irq_entry_exit: irq_entry_exit?, notification: notification? })
}

/// Whether the run rewrites IRTEs after setup, so their update costs are needed: actions
/// move interrupts, or a device's provisioning sets its guest's vectors up in time.
fn rewrites_irtes(raw: &ScenarioFile) -> bool {
    !raw.actions.is_empty() || raw.devices.value.iter().any(|d| d.provisioning.is_some())
}
