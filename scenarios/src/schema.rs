//! The scenario file format, one-to-one with the YAML: serde types with
//! `deny_unknown_fields`, quantities kept as text (units are parsed in validation so that
//! every unit error is reported, not just the first), and `Spanned` values wherever a
//! semantic check needs the line and column. Doc comments become the JSON Schema's
//! descriptions (`irqsim schema`).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// An irqsim scenario: a platform, its devices and their workload, run for a duration.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Short name: lower case letters, digits, '-' and '_'.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What the scenario shows, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// Seed of every random stream; `irqsim run --seed N` overrides it. Default 1.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Simulated time to run, with a unit (e.g. `20ms`).
    #[schemars(with = "String")]
    pub duration: Spanned<String>,
    /// Stop after this many events even if `duration` is not reached (default: no limit).
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub event_limit: Option<Spanned<u64>>,
    /// The machine: CPUs, interrupt controller, IOMMU.
    pub platform: PlatformSpec,
    /// Device functions and their queues.
    #[schemars(with = "Vec<DeviceSpec>")]
    pub devices: Spanned<Vec<DeviceSpec>>,
    /// Things that happen during the run: CPU hotplug, affinity changes.
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
    /// Guests: vCPUs on pCPUs, and the devices assigned to them, whose interrupts reach the
    /// vCPUs as VT-d posted interrupts (x86 with interrupt remapping; remapped and forwarded
    /// by VFIO when KVM cannot post them) or GICv4 vLPIs (arm with an ITS).
    #[serde(default)]
    pub guests: Vec<GuestSpec>,
    /// Free-form place for YAML anchors (`&name`) that devices merge with `<<: *name`;
    /// ignored by irqsim.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub templates: Option<serde::de::IgnoredAny>,
    /// What the results should be, each judged at every sweep point and variant and reported
    /// as PASS or FAIL: a metric and a comparison with a threshold, e.g.
    /// `end_to_end.p99: < 10us`, `conservation.lost: == 0`, `failures.total: == 0`.
    /// A comparison starting with `>` is quoted (`"> 1000"`): YAML reads a bare `>` as a
    /// folded block.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    pub expect: ExpectMap,
    /// Runs the scenario at several points (axes over any field), each several times
    /// (replications), in several named variants compared pairwise (common random numbers).
    #[serde(default)]
    pub sweep: Option<SweepSpec>,
    /// Guest IMS detection: the decision matrix of the chosen configurations (rows) and
    /// policies (columns), and a weighted population whose outcome shares per policy are
    /// reported (docs/detection.md). Computed from the model, not simulated: it adds tables
    /// to the report and changes nothing in the run.
    #[serde(default)]
    pub detection: Option<DetectionSpec>,
    /// Exit costs read from a kvm-unit-tests `vmexit` output measured on the target host
    /// (x86): `{ file, tsc_ghz }`. They fill the guests' `kvm.exit_costs` and the
    /// provisioning sections' `mmio_exit_user` and `vmcall` where the scenario leaves them
    /// out (docs/sources.md#kvm-unit-tests-vmexit).
    #[serde(default)]
    pub exit_costs_from: Option<ExitCostsFromSpec>,
}

/// A kvm-unit-tests `vmexit` output and the TSC frequency its cycles count.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExitCostsFromSpec {
    /// The file, relative to the scenario file's folder.
    #[schemars(with = "String")]
    pub file: Spanned<String>,
    /// The TSC frequency of the machine it ran on, in GHz (0.1 to 10).
    #[schemars(with = "f64")]
    pub tsc_ghz: Spanned<f64>,
}

/// The `detection` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectionSpec {
    /// The matrix's rows: configuration presets by name (`r1`, `r8-hidden`, …; `irqsim
    /// validate` lists them). Default: all of them.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub configurations: Option<Spanned<Vec<Spanned<String>>>>,
    /// The matrix's columns: `acpi_opt_in`, `acpi_opt_out`, `dmar_iort`, `caching_mode`,
    /// `caching_mode_ir_parent`, `cpuid_dmi`, `linux_6_2_to_6_9`, `linux_6_10`,
    /// `hybrid_auto`. Default: all of them.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub policies: Option<Spanned<Vec<Spanned<String>>>>,
    /// A weighted population of configurations: each a preset and an integer weight.
    #[serde(default)]
    pub population: Vec<PopulationSpec>,
    /// The guest drivers' mix in the population, each with an integer weight (drawn
    /// independently of the configuration). Default: every guest IMS-aware.
    #[serde(default)]
    pub drivers: Vec<DriverWeightSpec>,
    /// When a VM's vendor-agnostic ACPI flag is set, for every configuration of the
    /// section: `at_creation` (default: the preset's value stands, as Kevin Tian said
    /// hypervisors must) or `known_guest` (hypothetical: set knowing the guest kernel).
    #[serde(default)]
    #[schemars(with = "Option<FlagTimingSpec>")]
    pub acpi_flag_timing: Option<Spanned<FlagTimingSpec>>,
}

/// When the ACPI flag is set (`detection.acpi_flag_timing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagTimingSpec {
    /// When the VM is created, before anyone knows the guest: the preset's value.
    AtCreation,
    /// Hypothetical: by a hypervisor that knows the guest kernel (allowed where IMS is
    /// trapped, via the hypercall for a guest with the hypercall driver, else disallowed).
    KnownGuest,
}

/// A configuration of the population and its weight.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PopulationSpec {
    /// A configuration preset by name.
    #[schemars(with = "String")]
    pub configuration: Spanned<String>,
    /// Its weight, an integer from 1 to 1,000,000,000.
    #[schemars(with = "u64")]
    pub weight: Spanned<u64>,
}

/// A guest driver of the population's mix and its weight.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DriverWeightSpec {
    /// `unaware` (MSI-X only), `ims_aware` (IMS where the kernel allows, composing its own
    /// messages) or `ims_hypercall` (also the hypervisor's compose hypercall).
    #[schemars(with = "String")]
    pub driver: Spanned<String>,
    /// Its weight, an integer from 1 to 1,000,000,000.
    #[schemars(with = "u64")]
    pub weight: Spanned<u64>,
}

/// A sweep: the scenario run at every point of its axes, in each variant, each
/// `replications` times with seeds derived from the run seed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// The fields that vary, each with its values.
    #[serde(default)]
    pub axes: Vec<AxisSpec>,
    /// `grid` (default): every combination of the axes' values; `zip`: the axes' i-th
    /// values together (all axes then have the same number of values).
    #[serde(default)]
    pub combine: Option<CombineSpec>,
    /// Runs of each point in each variant, with seeds derived from the run seed (default 1).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub replications: Option<Spanned<u32>>,
    /// Named sets of fields, each applied on top of every point; the first is the baseline
    /// each other variant is compared with, run for run with the same seeds.
    #[serde(default)]
    pub variants: Vec<VariantSpec>,
}

/// How the axes of a sweep combine into points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CombineSpec {
    /// Every combination of the axes' values (the first axis varies slowest).
    Grid,
    /// The axes' values taken together: point i has every axis's i-th value.
    Zip,
}

/// One sweep axis: a field and its values, or (with `combine: zip`) a label that names
/// what the other axes' values add up to, for tables and plots.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AxisSpec {
    /// The field it sets, as a path into the scenario (`devices[0].queues`,
    /// `devices[1].arrival.rate`, `platform.iommu.posted_msi`). Leave it out for a label
    /// axis.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// A label axis's name (`total queues`): it sets no field; with `combine: zip` it
    /// names each point (the x axis of the plots) where the fields that vary together
    /// do not.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub label: Option<Spanned<String>>,
    /// Its values, each written as the field itself would be (`64`, `120k/s`, `{ ... }`).
    #[schemars(with = "Vec<serde_json::Value>")]
    pub values: Spanned<Vec<serde_json::Value>>,
}

/// One named variant of a sweep.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Its name (letters, digits, '-' and '_').
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The fields it sets: field path to value, as for an axis.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, serde_json::Value>")]
    pub set: FieldValues,
}

/// Expectations in the order written: metric name and comparison, each with its location.
#[derive(Debug, Default)]
pub struct ExpectMap(pub Vec<(Spanned<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for ExpectMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ExpectMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of metric names to comparisons, e.g. `end_to_end.p99: < 10us`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ExpectMap, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<Spanned<String>, Spanned<String>>()? {
                    out.push(entry);
                }
                Ok(ExpectMap(out))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// Field paths and values in the order written (a YAML mapping read into a list).
#[derive(Debug, Default)]
pub struct FieldValues(pub Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for FieldValues {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FieldValues;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of field paths to values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<FieldValues, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    out.push(entry);
                }
                Ok(FieldValues(out))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// A guest.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestSpec {
    /// Name, used by `devices[].assigned_to`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// vCPUs.
    #[schemars(with = "u32")]
    pub vcpus: Spanned<u32>,
    /// The pCPUs they run on, as a CPU list; vCPU i runs on the i-th (mod the count).
    #[schemars(with = "String")]
    pub pcpus: Spanned<String>,
    /// Host work that preempts the vCPUs: bursts on each pCPU with exponential gaps and
    /// lengths of these means. Leave out for dedicated pCPUs.
    #[serde(default)]
    pub host_bursts: Option<HostBurstSpec>,
    /// VT-d posted-interrupt costs (no published figures, docs/sources.md#posted-costs).
    pub posted: PostedCostsSpec,
    /// Host CPU time to forward an interrupt that could not be posted (VFIO's handler and
    /// KVM's irqfd injection; required when an assigned device's `guest_msi` is not
    /// postable; no published figure).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub remapped_forward: Option<Spanned<String>>,
    /// KVM's interrupt virtualization (APICv, PV EOI), the host scheduler's time slice for
    /// vCPUs sharing a pCPU, and the VM exits' costs (docs/parameters.md#guests).
    #[serde(default)]
    pub kvm: Option<KvmSpec>,
    /// vCPU migration at a rate (default none): every `every` the host scheduler moves the
    /// next vCPU (round robin) to the next CPU of `pcpus` (ascending, wrapping), at `cost` of
    /// host work on each of the two pCPUs; on arm the vCPU's load there first waits for the
    /// vPE's VMOVP on the ITS (docs/provisioning.md#vcpu-migration).
    #[serde(default)]
    pub migration: Option<MigrationSpec>,
    /// Guest IPIs (x86; default none): each vCPU sends IPIs at a Poisson `rate` to the
    /// guest's other vCPUs in turn (round robin); an x2APIC ICR write, an MSR_WRITE exit of
    /// `icr_exit` unless `kvm.ipiv` (docs/provisioning.md#guest-ipis).
    #[serde(default)]
    pub ipi: Option<IpiSpec>,
}

/// Guest IPIs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpiSpec {
    /// IPIs each vCPU sends, with a unit (e.g. `10k/s`).
    #[schemars(with = "String")]
    pub rate: Spanned<String>,
    /// The sender's MSR_WRITE exit on the pCPU without IPIv (exit, KVM's ICR write and
    /// posting, entry); required without IPIv: no published figure in time
    /// (docs/sources.md#ipi-costs gives cycles only).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub icr_exit: Option<Spanned<String>>,
}

/// vCPU migration at a rate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrationSpec {
    /// Time between two migrations (of successive vCPUs).
    #[schemars(with = "String")]
    pub every: Spanned<String>,
    /// The scheduler's work on each pCPU per migration (required: no published figure,
    /// docs/sources.md#migration-cost).
    #[schemars(with = "String")]
    pub cost: Spanned<String>,
}

/// KVM and the host scheduler for a guest's vCPUs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KvmSpec {
    /// APICv: virtual-interrupt delivery and posted interrupts (default true, KVM's
    /// `enable_apicv`; x86 only). Without it nothing is posted and every EOI exits.
    #[serde(default)]
    pub apicv: Option<bool>,
    /// PV EOI (default false): without APICv, KVM lets the guest skip the EOI exit when
    /// nothing else is pending.
    #[serde(default)]
    pub pv_eoi: Option<bool>,
    /// The host scheduler's slice for vCPUs sharing a pCPU (default EEVDF's base slice,
    /// 0.75 ms x (1 + log2 of the CPUs, at most 8)).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub slice: Option<Spanned<String>>,
    /// A woken vCPU preempts the one running on its pCPU (default true: the scheduler's
    /// WAKEUP_PREEMPTION feature).
    #[serde(default)]
    pub wakeup_preemption: Option<bool>,
    /// What each VM exit costs on the pCPU.
    #[serde(default)]
    pub exit_costs: Option<ExitCostsSpec>,
    /// The guest's local APIC mode (x86; default `x2apic`, which KVM offers and Linux
    /// prefers): without APICv an EOI is an MSR_WRITE exit in x2APIC mode and an
    /// APIC_ACCESS exit in xAPIC mode.
    #[serde(default)]
    #[schemars(with = "Option<ApicModeSpec>")]
    pub apic_mode: Option<Spanned<ApicModeSpec>>,
    /// IPI virtualization (default false; Sapphire Rapids and later, KVM's `enable_ipiv`,
    /// Linux 5.19; needs APICv): the CPU posts a guest's unicast IPI through the PID-pointer
    /// table, with no exit.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub ipiv: Option<Spanned<bool>>,
}

/// A guest's local APIC mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApicModeSpec {
    /// x2APIC: APIC registers are MSRs (the EOI a WRMSR).
    X2apic,
    /// xAPIC: APIC registers are a memory page (the EOI a store to it).
    Xapic,
}

/// The pCPU time of one VM exit of each reason (exit, KVM's handling, entry).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExitCostsSpec {
    /// EXTERNAL_INTERRUPT (default 683 ns: the exit-and-entry world switch alone, SplitX).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub external_interrupt: Option<Spanned<String>>,
    /// HLT (default 683 ns, the world switch alone).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub hlt: Option<Spanned<String>>,
    /// The EOI's exit without APICv, MSR_WRITE (x2APIC) or APIC_ACCESS (xAPIC) as the
    /// guest's `apic_mode` makes it (no published figure: required when apicv is
    /// false and never used otherwise).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub eoi: Option<Spanned<String>>,
    /// Preemption by host work or another vCPU (default 683 ns, the world switch alone).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub preemption: Option<Spanned<String>>,
}

/// Guest MSI delivery modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuestDeliverySpec {
    /// Fixed delivery.
    Fixed,
    /// Lowest-priority delivery.
    LowestPriority,
}

/// How a guest programs an assigned device's MSIs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestMsiSpec {
    /// Delivery mode (default `fixed`).
    #[serde(default)]
    pub delivery: Option<GuestDeliverySpec>,
    /// vCPUs the destination matches (default 1).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub destinations: Option<Spanned<u32>>,
    /// KVM's `vector_hashing` (default false): lowest priority to several vCPUs is posted to
    /// one of them.
    #[serde(default)]
    pub vector_hashing: Option<bool>,
}

/// Host bursts on a vCPU's pCPU.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostBurstSpec {
    /// Mean time between bursts.
    #[schemars(with = "String")]
    pub gap: Spanned<String>,
    /// Mean burst length.
    #[schemars(with = "String")]
    pub length: Spanned<String>,
}

/// Posted-interrupt costs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostedCostsSpec {
    /// Posting and notification to a running vCPU until the vector is in vIRR (no VM exit).
    /// Required on x86; arm has no use for it (a resident vPE's vLPI costs the ITS
    /// translation).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub notify_running: Option<Spanned<String>>,
    /// Host entry and exit of the wake-up vector 0xf1.
    #[schemars(with = "String")]
    pub wakeup_irq_entry: Spanned<String>,
    /// Visiting one entry of the pCPU's wake-up list. Required on x86; arm has no wake-up
    /// list (each vPE has its own doorbell).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub wakeup_list_entry: Option<Spanned<String>>,
    /// One vCPU kick (try_to_wake_up of the vCPU task).
    #[schemars(with = "String")]
    pub kick: Spanned<String>,
    /// From the kick to the vCPU's VM entry (scheduler wake-up, load, entry; "a few
    /// micro-seconds", docs/sources.md#posted-costs).
    #[schemars(with = "String")]
    pub wake_to_vm_entry: Spanned<String>,
}

/// Instruction-set family of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// x86-64 with local APICs (x2APIC) and, optionally, VT-d interrupt remapping.
    X86,
    /// ARM64 with a GICv3/v4: MSIs through an ITS or a GICv2m frame (`platform.gic`).
    Arm,
}

/// How a host CPU queues the interrupts that reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueingSpec {
    /// The local APIC: one pending (IRR) bit per vector, so an interrupt whose vector is
    /// already pending merges into it (one handler run serves both); the highest pending
    /// vector is taken next.
    Lapic,
    /// Every raise is its own job, served in arrival order: the M/G/1 queueing oracle (the
    /// closed forms hold exactly), and what ARM uses.
    Fifo,
}

/// The machine.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformSpec {
    /// Instruction-set family (default `x86`).
    #[serde(default)]
    #[schemars(with = "Option<Arch>")]
    pub arch: Option<Spanned<Arch>>,
    /// Logical CPUs (1 or more). More than 255 needs interrupt remapping (x2APIC).
    #[schemars(with = "u32")]
    pub cpus: Spanned<u32>,
    /// The IOMMU's interrupt-remapping unit; leave out for a platform without one.
    #[serde(default)]
    pub iommu: Option<IommuSpec>,
    /// NUMA nodes; CPUs are split evenly and contiguously (default 1).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub numa_nodes: Option<Spanned<u32>>,
    /// The kernel whose vector allocator is modelled (default: version 6.10, legacy PIC).
    /// x86 only.
    #[serde(default)]
    pub kernel: Option<KernelSpec>,
    /// The GIC (required with `arch: arm`).
    #[serde(default)]
    pub gic: Option<GicSpec>,
    /// CPU time per interrupt taken, besides the handler and the EOI (default: none, folded
    /// into the handlers' service times).
    #[serde(default)]
    pub cpu_costs: Option<CpuCostsSpec>,
    /// How a host CPU queues its interrupts: `lapic` (default on x86) or `fifo` (the
    /// queueing oracle; the only choice on arm, whose GIC pending state is not modelled).
    #[serde(default)]
    #[schemars(with = "Option<QueueingSpec>")]
    pub queueing: Option<Spanned<QueueingSpec>>,
}

/// Per-interrupt CPU costs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CpuCostsSpec {
    /// IDT entry and exit per interrupt taken (default 0ns).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub irq_entry_exit: Option<Spanned<String>>,
    /// Taking the interrupt (the strongly ordered notification): per MSI in remappable mode,
    /// per notification with posted MSI (default 0ns).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub notification: Option<Spanned<String>>,
}

/// GIC revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GicVersionSpec {
    /// GICv3: physical LPIs only.
    V3,
    /// GICv4.0: direct vLPI injection, a doorbell per vLPI.
    #[serde(rename = "v4.0")]
    V40,
    /// GICv4.1: direct vLPI injection, a doorbell per vPE.
    #[serde(rename = "v4.1")]
    V41,
}

/// How MSIs reach the GIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GicMsiSpec {
    /// An ITS translates (DeviceID, EventID) into an LPI routed to a CPU's collection.
    Its,
    /// A GICv2m frame turns each MSI into one SPI of a fixed pool.
    V2m,
}

/// The ARM interrupt controller.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GicSpec {
    /// GIC revision (default `v3`).
    #[serde(default)]
    pub version: Option<GicVersionSpec>,
    /// `its` (default) or `v2m`.
    #[serde(default)]
    #[schemars(with = "Option<GicMsiSpec>")]
    pub msi: Option<Spanned<GicMsiSpec>>,
    /// MSI write to the interrupt pending at the CPU (required; no published figure).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub translation_latency: Option<Spanned<String>>,
    /// ITS processing time of one command (required with `its`; no published figure).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub its_command: Option<Spanned<String>>,
    /// ITS processing time of one SYNC (required with `its`; no published figure).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub its_sync: Option<Spanned<String>>,
    /// A direct redistributor invalidation (GICR_INVLPIR + GICR_SYNCR poll; required with
    /// `v4.1`, which always uses them).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub its_direct_inv: Option<Spanned<String>>,
    /// INTID bits the GIC reports, 14 to 24 (default 16; Linux uses at most 16:
    /// 57,344 LPIs).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub lpi_id_bits: Option<Spanned<u32>>,
    /// SPIs in the GICv2m frame (default 64).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub v2m_spis: Option<Spanned<u32>>,
    /// vPE ID bits (`msi: its`): 16 (`ITS_MAX_VPEID_BITS`, the default); on `v4.1` a GIC may
    /// report fewer in `GICD_TYPER2.VID` (1 to 16). Every VM's vCPUs share the `2^bits` IDs;
    /// a VM that cannot get one per vCPU fails to start (`arm.vpe_id_fail_count`).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub vpe_id_bits: Option<Spanned<u32>>,
}

/// The Linux kernel.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// Release as `MAJOR.MINOR` (5.11 or later), e.g. `"6.8"`; default 6.10. Every
    /// release-dependent behaviour follows it: the vector range and the hotplug behaviour
    /// differ between <=6.5, 6.6-6.9 and >=6.10, and host posted MSI needs 6.10 or later;
    /// VFIO's dynamic MSI-X needs 6.5 (x86) or 7.3 (arm64), and on arm64 the ITS device stays
    /// mapped across an MSI-X resize from 6.16. The only kernel field that applies on arm.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub version: Option<Spanned<String>>,
    /// A legacy PIC exists: the cascade vector is taken on every CPU and the boot CPU holds
    /// the ISA vectors (default true; x86 only).
    #[serde(default)]
    pub legacy_pic: Option<bool>,
    /// IA32 emulation is built in, so vector 0x80 is the int 0x80 gate and not available to
    /// devices (default true, as in distribution kernels; x86 only).
    #[serde(default)]
    pub ia32_emulation: Option<bool>,
    /// CONFIG_HZ: timer ticks per second, 100, 250, 300 or 1000 (default 250, the kernel's
    /// Kconfig default). From 6.6 the old vector of a moved interrupt is freed by a timer on
    /// its CPU at the next tick (x86 only).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub hz: Option<Spanned<u32>>,
}

/// One scheduled action: `at` plus exactly one of the others.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// When, from the start of the run (e.g. `5ms`).
    #[schemars(with = "String")]
    pub at: Spanned<String>,
    /// Take this CPU offline.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub cpu_offline: Option<Spanned<u32>>,
    /// Bring this CPU online.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub cpu_online: Option<Spanned<u32>>,
    /// Set the affinity of every interrupt of a device.
    #[serde(default)]
    pub set_affinity: Option<SetAffinitySpec>,
}

/// An affinity change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAffinitySpec {
    /// The device's name (as expanded: NAME0, NAME1, … with `count`).
    #[schemars(with = "String")]
    pub device: Spanned<String>,
    /// The new mask as a CPU list (`0-3,8`).
    #[schemars(with = "String")]
    pub cpus: Spanned<String>,
}

/// Interrupt remapping (Intel VT-d).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IommuSpec {
    /// Remap device interrupts through the IRTE table.
    pub interrupt_remapping: bool,
    /// MSI write at the IOMMU to remapped interrupt out (required when remapping is on;
    /// no published figure exists, docs/sources.md#irte-lookup).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub lookup_latency: Option<Spanned<String>>,
    /// Remapping units (DRHDs), each with its own IRTE table (default 1).
    #[serde(default)]
    #[schemars(with = "Option<u16>")]
    pub units: Option<Spanned<u16>>,
    /// IRTE table entries per unit (default and maximum 65536, INTR_REMAP_TABLE_ENTRIES).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub irte_entries: Option<Spanned<u32>>,
    /// The interrupt entry cache (LRU). Leave out for none: every lookup reads the table at
    /// `lookup_latency`.
    #[serde(default)]
    pub irte_cache: Option<IrteCacheSpec>,
    /// What one IRTE update costs under the global `irq_2_ir_lock` (required when actions
    /// move interrupts; no published figure, docs/sources.md#irte-update-cost).
    #[serde(default)]
    pub irte_update: Option<IrteUpdateSpec>,
    /// Fault recording registers, CAP.NFR + 1 (1 to 256; default 1, the minimum the
    /// specification allows: no survey of real values exists).
    #[serde(default)]
    #[schemars(with = "Option<u16>")]
    pub fault_recording_registers: Option<Spanned<u16>>,
    /// ECAP.MHMV, log2 of the largest IRTE block for multi-vector MSI (0 to 15; default 15).
    #[serde(default)]
    #[schemars(with = "Option<u8>")]
    pub max_handle_mask: Option<Spanned<u8>>,
    /// Host posted MSI (Linux 6.10+, `intremap=posted_msi`): device MSIs are posted into a
    /// per-CPU descriptor and demuxed by one notification handler. Leave out for remappable
    /// mode.
    #[serde(default)]
    #[schemars(with = "Option<PostedMsiSpec>")]
    pub posted_msi: Option<Spanned<PostedMsiSpec>>,
    /// Hypothetical PASID-granular remapping (default false): an IRTE written for an ADI
    /// carries its PASID and a write tagged with another PASID is blocked (0x26). No VT-d
    /// unit has it: the IRTE has no PASID field and SIOV MSIs carry no PASID prefix
    /// (docs/detection.md, "Who else a broken answer hits").
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub pasid_checking: Option<Spanned<bool>>,
}

/// Host posted MSI.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostedMsiSpec {
    /// `MAX_POSTED_MSI_COALESCING_LOOP` (default 3, as in Linux).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub loop_cap: Option<Spanned<u32>>,
    /// One demux pass over the PIR (required; no published figure).
    #[schemars(with = "String")]
    pub pir_scan: Spanned<String>,
}

/// The interrupt entry cache.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IrteCacheSpec {
    /// Cached IRTEs.
    #[schemars(with = "u32")]
    pub entries: Spanned<u32>,
    /// Lookup latency on a hit (a miss costs `lookup_latency`).
    #[schemars(with = "String")]
    pub hit_latency: Spanned<String>,
}

/// IRTE update costs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IrteUpdateSpec {
    /// Writing the IRTE (two 64-bit stores, or cmpxchg16b when posted).
    #[schemars(with = "String")]
    pub irte_write: Spanned<String>,
    /// The synchronous interrupt-entry-cache invalidation and its wait (`qi_flush_iec`).
    #[schemars(with = "String")]
    pub iec_invalidation: Spanned<String>,
}

/// Where a device keeps its interrupt messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InterruptStore {
    /// PCI MSI: 1 to 32 vectors per function; more than one needs interrupt remapping on x86.
    Msi,
    /// A PCI MSI-X table: one entry per queue, at most 2048 per function.
    Msix,
    /// IMS in device memory (IDXD-like): `ims_slots` slots shared by the device's ADIs;
    /// a hypervisor can trap writes to it.
    ImsDevice,
    /// IMS in host queue memory (mlx5-like): written through a device command queue
    /// (`ims_update_latency`); cannot be trapped.
    ImsQueue,
}

/// One device function (or `count` identical ones).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// Name; with `count` > 1 the copies are NAME0, NAME1, …
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Identical functions to create (default 1).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub count: Option<Spanned<u32>>,
    /// Where the interrupt messages live (default `msix`).
    #[serde(default)]
    #[schemars(with = "Option<InterruptStore>")]
    pub interrupt_store: Option<Spanned<InterruptStore>>,
    /// IMS slots of the device (`ims_device` only; default 2048 as DSA, at most 16128).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub ims_slots: Option<Spanned<u32>>,
    /// Time for a message update to reach an `ims_queue` store through the device's command
    /// queue (required with `ims_queue`; no published figure).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ims_update_latency: Option<Spanned<String>>,
    /// What the device does with a raise on a masked IMS slot (`ims_device`, `ims_queue`;
    /// default `drop`): IMS has no architected pending bit, so unless the device keeps a
    /// pending state of its own (`latch`: sent once at unmask) the interrupt is lost.
    #[serde(default)]
    #[schemars(with = "Option<ImsMaskedRaiseSpec>")]
    pub ims_masked_raise: Option<Spanned<ImsMaskedRaiseSpec>>,
    /// SR-IOV virtual functions: each VF is its own function (requester id PF + 1 + i) with
    /// `queues` interrupts in its own MSI or MSI-X store.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub sriov_vfs: Option<Spanned<u32>>,
    /// Scalable IOV ADIs: each shares the function's requester id, has PASID i + 1, and
    /// takes `queues` interrupts from the device's IMS.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub siov_adis: Option<Spanned<u32>>,
    /// Queues per function (or per ADI), each with its own interrupt: at most 32 with MSI,
    /// 2048 with MSI-X, `ims_slots` with IMS in device memory.
    #[schemars(with = "u32")]
    pub queues: Spanned<u32>,
    /// Device raise to the MSI write reaching the interrupt controller (e.g. `500ns`).
    #[schemars(with = "String")]
    pub msi_write_latency: Spanned<String>,
    /// CPUs the queues are spread over, as a CPU list (`0-7,16`) or `all` (default).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub affinity: Option<Spanned<String>>,
    /// `managed` (PCI_IRQ_AFFINITY, as NVMe) or `non_managed` (reservation mode; default).
    #[serde(default)]
    #[schemars(with = "Option<IrqModeSpec>")]
    pub irq_mode: Option<Spanned<IrqModeSpec>>,
    /// The guest the device (all its functions) is assigned to: its queues are spread over
    /// the guest's vCPUs and their interrupts posted (VFIO + irq-bypass).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub assigned_to: Option<Spanned<String>>,
    /// Instead of `assigned_to`: one guest per function of each copy (VF j or ADI j is
    /// assigned to `tenants[j]`), as many names as `sriov_vfs` or `siov_adis`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub tenants: Option<Spanned<Vec<Spanned<String>>>>,
    /// How the guest programs the assigned device's MSIs (default: fixed, one vCPU). KVM
    /// posts an interrupt only to a single vCPU; the rest go through the host.
    #[serde(default)]
    #[schemars(with = "Option<GuestMsiSpec>")]
    pub guest_msi: Option<Spanned<GuestMsiSpec>>,
    /// The remapping unit (DRHD) whose scope holds the device (default 0).
    #[serde(default)]
    #[schemars(with = "Option<u16>")]
    pub iommu_unit: Option<Spanned<u16>>,
    /// How the guest's interrupts of this assigned device are provisioned, in time (the
    /// guest's trapped writes, the VMM, VFIO and the host's IRTE updates). Left out, every
    /// queue is programmed when the VM starts, for free. See docs/provisioning.md.
    #[serde(default)]
    #[schemars(with = "Option<ProvisioningSpec>")]
    pub provisioning: Option<Spanned<ProvisioningSpec>>,
    /// Hot-add (default none: present at boot): the function appears at this time (QEMU's
    /// `device_add`, the guest's PCI hotplug); its queues raise from then on and its
    /// provisioning (required) starts then, `provisioning.start` after it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub hot_add_at: Option<Spanned<String>>,
    /// The device's NUMA node (non-managed fallback: node ∩ affinity first).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub numa_node: Option<Spanned<u32>>,
    /// When each queue raises an interrupt.
    pub arrival: ArrivalSpec,
    /// What each interrupt costs the CPU.
    pub handler: HandlerSpec,
}

/// Ways to provision a guest's interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionModeSpec {
    /// The guest programs the MSI-X table; the VMM traps each write (VFIO/QEMU).
    MsixTrapped,
    /// The guest programs an emulated MSI-X table (trapped); the host backs each vector with
    /// one of the device's IMS slots (VFIO PCI IMS). Needs `interrupt_store: ims_device`.
    MsixOverIms,
    /// The guest programs the device-memory IMS slots, trapped slot by slot (IDXD-like).
    /// Needs `interrupt_store: ims_device`: queue-memory IMS cannot be trapped.
    ImsTrapped,
    /// One hypercall per vector returns a host-composed message that the guest writes into
    /// its IMS untrapped (device memory: a store; queue memory: a device command).
    ImsHypercall,
    /// A guest that believes it is on bare metal writes its own composed messages into IMS
    /// nothing traps: the host's remapping unit faults them or misroutes them.
    ImsDirect,
}

/// The order a guest driver programs a trapped table in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuestOrderSpec {
    /// Linux: MSI-X enabled with the entries masked, then per vector its message and unmask.
    PerVector,
    /// Every entry written and unmasked first, then MSI-X enabled (Windows-like; a VM
    /// restored after migration).
    TableFirst,
}

/// What an IMS device does with a raise on a masked slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImsMaskedRaiseSpec {
    /// Dropped and counted (`interrupt.lost.ims_masked_count`): no pending state.
    Drop,
    /// Kept by the device (not software-visible) and sent once at unmask.
    Latch,
}

/// How an `ims_hypercall` guest masks and unmasks an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImsMaskPathSpec {
    /// The guest writes the mask bit itself, no exit (queue memory: a device command).
    Device,
    /// One hypercall per mask and per unmask.
    Hypercall,
}

/// The message a guest composes itself (`ims_direct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuestMessageSpec {
    /// Remappable format naming the guest's own IRTE indices (it has a virtual remapping
    /// unit), from 0 up in the order it programs them.
    Remappable,
    /// Compatibility format: the vCPU's APIC id and the guest vector.
    Compatibility,
}

/// Whether the guest kernel creates an IMS domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuestImsSpec {
    /// Linux as merged (`guest_kernel`): PCI/IMS in 6.2 to 6.9 only, and never under a
    /// guest's virtual remapping unit: the driver falls back to MSI-X.
    Linux,
    /// A policy never merged: the guest creates its IMS domain.
    Hypothetical,
}

/// When the VMM takes a KVM route for a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoutesPerSpec {
    /// When the guest enables (unmasks) the vector, as QEMU does.
    EnabledVector,
    /// For every table entry, when the guest starts using the table.
    AdvertisedEntry,
}

/// Timed provisioning of an assigned device's interrupts.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningSpec {
    /// The mode.
    #[schemars(with = "ProvisionModeSpec")]
    pub mode: Spanned<ProvisionModeSpec>,
    /// The host can add a vector to enabled MSI-X (default: whether the host kernel has VFIO
    /// dynamic MSI-X, 6.5+ on x86, 7.3+ on arm64; with QEMU 8.2+). false:
    /// `VFIO_IRQ_INFO_NORESIZE` (x86 hosts before 6.5, arm64 before 7.3, where `true` is
    /// refused), where enabling vector N+1 disables and re-enables all N.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub dynamic_msix: Option<Spanned<bool>>,
    /// Whether the guest kernel creates the IMS domain an IMS mode needs (default `linux`).
    #[serde(default)]
    #[schemars(with = "Option<GuestImsSpec>")]
    pub guest_ims: Option<Spanned<GuestImsSpec>>,
    /// The order the guest programs a trapped table in (default `per_vector`, Linux's).
    #[serde(default)]
    #[schemars(with = "Option<GuestOrderSpec>")]
    pub guest_order: Option<Spanned<GuestOrderSpec>>,
    /// QEMU enables every vector unmasked before the MSI-X enable with one
    /// `VFIO_DEVICE_SET_IRQS` and one route commit (default true, current QEMU); false:
    /// one after the other, as older QEMU did.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub qemu_batch_enable: Option<Spanned<bool>>,
    /// The control plane after setup (trapped modes): every `every` the guest masks its next
    /// vector (round robin) and unmasks it `hold` later, each on its trapped path.
    #[serde(default)]
    pub masking: Option<MaskingSpec>,
    /// The control plane after setup (trapped modes and `ims_hypercall`; not with
    /// `masking`): every `affinity_every` the guest moves its next vector (round robin) to
    /// the next vCPU, irqbalance-like, on its trapped path or by a hypercall.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub affinity_every: Option<Spanned<String>>,
    /// With the device's `tenants`: the tenants whose functions this provisioning applies
    /// to (default all); the others' interrupts are programmed by the host when the VM
    /// starts (e.g. one misbehaving guest writing its own messages among well-behaved ones).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub for_tenants: Option<Spanned<Vec<Spanned<String>>>>,
    /// How an `ims_hypercall` guest masks and unmasks (with `masking`; default `device`):
    /// writing its IMS entry's mask bit itself (queue memory: a device command), or by a
    /// hypercall.
    #[serde(default)]
    #[schemars(with = "Option<ImsMaskPathSpec>")]
    pub mask_path: Option<Spanned<ImsMaskPathSpec>>,
    /// The message a guest composes itself (`ims_direct` only; default `remappable`).
    #[serde(default)]
    #[schemars(with = "Option<GuestMessageSpec>")]
    pub guest_message: Option<Spanned<GuestMessageSpec>>,
    /// The guest's kernel release for `guest_ims: linux` (default: the host's).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub guest_kernel: Option<Spanned<String>>,
    /// When the guest driver writes its first entry (default `0s`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub start: Option<Spanned<String>>,
    /// Trapped accesses per message (default 4: Linux writes address low, high and data and
    /// reads data back to flush them, `pci_write_msg_msix`); the unmask is one more exit.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub message_exits: Option<Spanned<u32>>,
    /// The guest's KVM GSI routing table size (default 4096, x86's `KVM_MAX_IRQ_ROUTES`).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub gsi_routes: Option<Spanned<u32>>,
    /// When routes are taken (default `enabled_vector`, as QEMU).
    #[serde(default)]
    #[schemars(with = "Option<RoutesPerSpec>")]
    pub routes_per: Option<Spanned<RoutesPerSpec>>,
    /// The costs on the path; each is required (no published L1 figure,
    /// docs/sources.md#provision-costs).
    pub costs: ProvisionCostsSpec,
}

/// Masking at a rate after setup.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaskingSpec {
    /// Time between two masks (of successive vectors).
    #[schemars(with = "String")]
    pub every: Spanned<String>,
    /// How long a vector stays masked.
    #[schemars(with = "String")]
    pub hold: Spanned<String>,
}

/// Costs of the provisioning path (no published L1 figures: each is required).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionCostsSpec {
    /// One MMIO write exit handled by the userspace VMM (exit, QEMU's handler, entry).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub mmio_exit_user: Option<Spanned<String>>,
    /// The VMM's KVM route update (`KVM_SET_GSI_ROUTING`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub route_update: Option<Spanned<String>>,
    /// One `VFIO_DEVICE_SET_IRQS` ioctl, besides its work per vector.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub set_irqs: Option<Spanned<String>>,
    /// Host CPU time of `request_irq` and the irq-bypass registration, besides the IRTE lock.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub request_irq: Option<Spanned<String>>,
    /// Host CPU time of `free_irq` and the irq-bypass removal, besides the IRTE lock.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub free_irq: Option<Spanned<String>>,
    /// One hypercall composing a message, besides the host's vector setup (required with
    /// `ims_hypercall`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub vmcall: Option<Spanned<String>>,
    /// One MMIO exit handled in the kernel (required on `arch: arm` with `affinity_every`:
    /// each access of the guest's ITS driver to its virtual ITS's `GITS_CREADR` /
    /// `GITS_CWRITER`, which KVM's vgic-its emulates; refused elsewhere).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub mmio_exit_kernel: Option<Spanned<String>>,
}

/// Interrupt allocation modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IrqModeSpec {
    /// One vector reserved on every CPU of the queue's mask; shut down with its CPUs.
    Managed,
    /// Reservation mode: the vector goes to the CPU with the most free vectors.
    NonManaged,
}

/// Arrival processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Process {
    /// Exponential gaps.
    Poisson,
    /// Evenly spaced, random phase per queue.
    Constant,
    /// Poisson during `on`, silent during `off`, repeating (synchronised bursts).
    OnOff,
}

/// A queue's arrival process.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrivalSpec {
    /// Which process.
    #[schemars(with = "Process")]
    pub process: Spanned<Process>,
    /// Interrupts per second per queue (while on, for `on_off`), e.g. `200k/s`.
    #[schemars(with = "String")]
    pub rate: Spanned<String>,
    /// Burst length (`on_off` only).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub on: Option<Spanned<String>>,
    /// Silence length (`on_off` only).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub off: Option<Spanned<String>>,
}

/// The interrupt handler.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandlerSpec {
    /// Service time per interrupt.
    pub service: ServiceSpec,
    /// CPU time of the EOI write after the handler (default `0ns`: folded into `service`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub eoi: Option<Spanned<String>>,
}

/// Service-time distributions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dist {
    /// Always `mean`.
    Constant,
    /// Exponential with `mean`.
    Exponential,
    /// Lognormal with `mean` and `stddev`.
    Lognormal,
}

/// A service-time distribution.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Which distribution.
    #[schemars(with = "Dist")]
    pub dist: Spanned<Dist>,
    /// Mean service time, e.g. `1.5us`.
    #[schemars(with = "String")]
    pub mean: Spanned<String>,
    /// Standard deviation (`lognormal` only).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub stddev: Option<Spanned<String>>,
}

/// The JSON Schema of the scenario format (draft 2020-12), pretty-printed.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ScenarioFile);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    text.push('\n');
    text
}
