//! How a guest kernel decides whether to use IMS, and whether its answer is right: the
//! detection policies of the 2020 debate (Kevin Tian's options 1–4, Linux as merged in
//! 6.2–6.9 and from 6.10, and the `ims=auto` hybrid) as pure functions of what the guest
//! sees ([`PlatformView`]) and what it runs ([`GuestKernel`]).
//!
//! # What is modelled
//! - The signals a kernel can probe: the CPUID hypervisor bit, the DMI vendor, a (v)IOMMU
//!   with interrupt remapping and caching mode (VT-d CM, AMD NpCache), a vendor-agnostic
//!   ACPI flag (and whether it was fixed at VM creation), the DMAR/IORT table's format and
//!   flag, a compose hypercall, the MSI parent domain — one function per rule in
//!   [`rules`], named after the kernel function or mail it models.
//! - Each [`Policy`] turns them into an [`Action`] (MSI-X, IMS composed by the guest, IMS
//!   through the hypercall) with the [`Reason`] the kernel would give ([`decide`]).
//! - The action is judged against the truth the guest cannot see (bare metal or VM, the
//!   store's kind) into an [`Outcome`] ([`judge`]): IMS working (native, hypercall or
//!   trapped), a right MSI-X fallback (FB), a safe fallback that loses IMS's scale (FB*),
//!   or broken (BRK: messages the guest composed itself written into a store nothing
//!   translates).
//! - [`provisioning`]: the seam to the delivery model — what the guest ends up with.
//! - [`presets`]: the configurations R1–R17 of the decision matrix (and one named variant
//!   per condition of a conditional cell); [`matrix`]: the matrix and its tables.
//!
//! # What is not modelled (and why)
//! - What a broken answer costs: the delivery of guest-composed messages (faults, wrong
//!   vectors, other tenants) belongs to the delivery model that [`provisioning`] feeds.
//! - `ims=on|off` on the command line: the administrator overrides every policy alike.
//! - Where in boot the failure shows (domain creation vs first interrupt): every rule here
//!   acts at domain creation, as the merged `pci_create_ims_domain()` does.
//! - Device-level gates (a DVSEC hidden by VFIO): a driver property, not a platform policy.
//!
//! # Parameters and their sources
//! No numbers: every rule cites the kernel code or mail in docs/sources.md
//! (`#ims-detection-options`, `#ims-merged-policy`, `#ims-removed`, `#ims-hybrid-auto`);
//! docs/detection.md argues each cell of the matrix.

pub mod matrix;
pub mod population;
pub mod presets;
pub mod rules;
pub mod section;
pub mod view;

pub use view::{
    Arch, Dmi, Driver, FlagTiming, Function, GuestKernel, Host, ImsFlag, ImsStore, Iommu, IommuTable, IommuVendor,
    PlatformView,
};

use rules::*;

/// A guest kernel's rule for "may I use IMS here?".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Policy {
    /// Option 1, a vendor-agnostic ACPI flag read opt-in: no flag, no IMS.
    AcpiOptIn,
    /// Option 1 read opt-out: IMS unless the flag says "disallowed".
    AcpiOptOut,
    /// Option 2, the DMAR/IORT flag (new format; no table or the old format hide IMS).
    DmarIort,
    /// Option 3 as Kevin Tian worded it: caching mode means guest, else IMS.
    CachingMode,
    /// Option 3 plus "IMS needs an IR parent advertising it".
    CachingModeIrParent,
    /// Option 4, `probably_on_bare_metal()`: CPUID hypervisor bit or a DMI match means guest.
    CpuidDmi,
    /// Mainline Linux of the guest kernel's release: 6.2–6.9 as merged (IMS only under an
    /// IR parent with `MSI_FLAG_PCI_IMS`), no IMS API before 6.2 or from 6.10.
    Mainline,
    /// Kevin Tian's `ims=auto`: CPUID or DMI or an IOMMU in caching mode means guest.
    HybridAuto,
}

impl Policy {
    /// Every policy, in the matrix's column order.
    pub const ALL: [Policy; 8] = [
        Policy::AcpiOptIn,
        Policy::AcpiOptOut,
        Policy::DmarIort,
        Policy::CachingMode,
        Policy::CachingModeIrParent,
        Policy::CpuidDmi,
        Policy::Mainline,
        Policy::HybridAuto,
    ];

    /// The name scenario files use.
    pub const fn name(self) -> &'static str {
        match self {
            Policy::AcpiOptIn => "acpi_opt_in",
            Policy::AcpiOptOut => "acpi_opt_out",
            Policy::DmarIort => "dmar_iort",
            Policy::CachingMode => "caching_mode",
            Policy::CachingModeIrParent => "caching_mode_ir_parent",
            Policy::CpuidDmi => "cpuid_dmi",
            Policy::Mainline => "mainline",
            Policy::HybridAuto => "hybrid_auto",
        }
    }

    /// The policy of a scenario file's name.
    pub fn from_name(name: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// What the guest does with the device's interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// MSI-X (or, for an ADI, the emulated MSI-X it sees).
    Msix,
    /// IMS with messages the guest kernel composes itself.
    ImsComposed,
    /// IMS with messages the hypervisor composes through the hypercall.
    ImsHypercall,
}

/// Why a guest did what it did, in the kernel's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The driver does not use IMS.
    DriverUnaware,
    /// An ADI: the guest sees emulated MSI-X, the host backs it with IMS.
    EmulatedMsix,
    /// The hypervisor composes the message (hypercall offered, driver knows it).
    Hypercall,
    /// The flag says IMS is allowed.
    FlagAllowed,
    /// The flag says IMS only via the hypercall, which this guest cannot use.
    FlagViaHypercallOnly,
    /// The flag says IMS is disallowed.
    FlagDisallowed,
    /// No flag, read opt-in: no IMS.
    FlagAbsentOptIn,
    /// No flag, read opt-out: allowed.
    FlagAbsentOptOut,
    /// No DMAR/IORT table (no IOMMU exposed).
    NoIommuTable,
    /// A DMAR/IORT table in the format before the flag.
    OldTableFormat,
    /// Caching mode (CM / NpCache): a guest.
    CachingMode,
    /// No caching mode: taken for bare metal.
    NoCachingMode,
    /// CPUID hypervisor bit set.
    HypervisorBit,
    /// DMI names a hypervisor.
    DmiHypervisor,
    /// `probably_on_bare_metal()` is true.
    ProbablyBareMetal,
    /// An IR parent with `MSI_FLAG_PCI_IMS`.
    RemapParent,
    /// A `vIR-` parent (caching mode): no `MSI_FLAG_PCI_IMS`.
    VirtRemapParent,
    /// No IR parent: the vector domain has no `MSI_FLAG_PCI_IMS`.
    NoRemapParent,
    /// A paravirtual MSI parent: no `MSI_FLAG_PCI_IMS`.
    ParavirtParent,
    /// The ITS parent: no `MSI_FLAG_PCI_IMS`.
    ItsParent,
    /// The release has no PCI/IMS API (before 6.2, or 6.10 and later).
    NoImsApi,
}

impl Reason {
    /// Every reason, in the order of [`Reason::key`].
    pub const ALL: [Reason; 21] = [
        Reason::DriverUnaware,
        Reason::EmulatedMsix,
        Reason::Hypercall,
        Reason::FlagAllowed,
        Reason::FlagViaHypercallOnly,
        Reason::FlagDisallowed,
        Reason::FlagAbsentOptIn,
        Reason::FlagAbsentOptOut,
        Reason::NoIommuTable,
        Reason::OldTableFormat,
        Reason::CachingMode,
        Reason::NoCachingMode,
        Reason::HypervisorBit,
        Reason::DmiHypervisor,
        Reason::ProbablyBareMetal,
        Reason::RemapParent,
        Reason::VirtRemapParent,
        Reason::NoRemapParent,
        Reason::ParavirtParent,
        Reason::ItsParent,
        Reason::NoImsApi,
    ];

    /// The reason in words, the way the kernel (or the mail proposing the rule) explains it.
    pub const fn words(self) -> &'static str {
        match self {
            Reason::DriverUnaware => "the driver does not use IMS",
            Reason::EmulatedMsix => "ADI: guest MSI-X emulated, host IMS behind it",
            Reason::Hypercall => "the hypervisor composes the message (hypercall)",
            Reason::FlagAllowed => "flag: IMS allowed",
            Reason::FlagViaHypercallOnly => "flag: IMS only via the hypercall",
            Reason::FlagDisallowed => "flag: IMS disallowed",
            Reason::FlagAbsentOptIn => "no flag; opt-in: no IMS",
            Reason::FlagAbsentOptOut => "no flag; opt-out reads it as allowed",
            Reason::NoIommuTable => "no DMAR/IORT table (no IOMMU)",
            Reason::OldTableFormat => "DMAR/IORT in the old format",
            Reason::CachingMode => "caching mode (CM/NpCache): a guest",
            Reason::NoCachingMode => "no caching mode: taken for bare metal",
            Reason::HypervisorBit => "CPUID hypervisor bit set",
            Reason::DmiHypervisor => "DMI vendor names a hypervisor",
            Reason::ProbablyBareMetal => "probably_on_bare_metal(): no HV bit, no VM DMI",
            Reason::RemapParent => "IR parent with MSI_FLAG_PCI_IMS",
            Reason::VirtRemapParent => "vIR- parent (caching mode): no MSI_FLAG_PCI_IMS",
            Reason::NoRemapParent => "no IR parent: vector domain lacks MSI_FLAG_PCI_IMS",
            Reason::ParavirtParent => "paravirtual MSI parent: no MSI_FLAG_PCI_IMS",
            Reason::ItsParent => "ITS MSI parent lacks MSI_FLAG_PCI_IMS",
            Reason::NoImsApi => "no PCI/IMS API in this release",
        }
    }

    /// A one-letter key for tables that have no room for the words (`a`, `b`, …).
    pub fn key(self) -> char {
        let i = Reason::ALL.iter().position(|&r| r == self).expect("every reason is in ALL");
        char::from(b'a' + i as u8)
    }
}

/// What the guest decided, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What it does.
    pub action: Action,
    /// Why.
    pub reason: Reason,
}

/// How an IMS interrupt that works gets its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImsPath {
    /// Composed by the kernel that owns the machine (bare metal).
    Native,
    /// Composed by the hypervisor through the hypercall.
    Hypercall,
    /// Written by the guest into a store the VMM traps and rewrites.
    Trapped,
}

/// The judgement of a decision (the decision matrix's cell legend).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// IMS used, and it works.
    Ims(ImsPath),
    /// MSI-X, and that is the right answer (IMS would not have been safe for this guest).
    Fallback,
    /// MSI-X, safe, but IMS would have been safe too: the scale is lost.
    ScaleLost,
    /// The guest writes messages it composed itself into a store nothing translates.
    Broken,
}

impl Outcome {
    /// The legend's short name: `IMS`, `IMS-h`, `IMS-t`, `FB`, `FB*`, `BRK`.
    pub const fn short(self) -> &'static str {
        match self {
            Outcome::Ims(ImsPath::Native) => "IMS",
            Outcome::Ims(ImsPath::Hypercall) => "IMS-h",
            Outcome::Ims(ImsPath::Trapped) => "IMS-t",
            Outcome::Fallback => "FB",
            Outcome::ScaleLost => "FB*",
            Outcome::Broken => "BRK",
        }
    }
}

/// A cell: the outcome and the reason for the decision behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What happens.
    pub outcome: Outcome,
    /// Why the guest decided as it did.
    pub reason: Reason,
}

/// What the guest ends up with, for the delivery model (the seam to what a broken answer
/// costs): the provisioning engine programs the device's store accordingly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Provisioning {
    /// IMS on bare metal: the kernel composes messages for the machine it owns.
    ImsNative,
    /// IMS whose messages the guest composed itself and wrote into a store nothing traps:
    /// guest vectors and guest IRTE handles reach the host's remapping unit as they are.
    ImsDirect,
    /// IMS composed by the hypervisor through the hypercall.
    ImsHypercall,
    /// IMS whose stores the VMM traps and reprograms (or, for an ADI, the emulated MSI-X
    /// backed by host IMS).
    ImsTrapped,
    /// MSI-X, trapped by the VMM (bare metal: programmed by the kernel).
    Msix,
    /// No interrupts: the guest wants IMS only through a hypercall the device's function
    /// cannot serve. Does not arise from the policies modelled (each falls back to MSI-X);
    /// kept so the delivery model's match is total.
    None,
}

/// Whether IMS could have worked for this guest here, and how: natively on bare metal,
/// trapped where the VMM traps a device-memory store, through the hypercall where it is
/// offered and the driver knows it. `None` for a driver that does not use IMS.
pub fn safe_ims_path(v: &PlatformView, k: &GuestKernel) -> Option<ImsPath> {
    if k.driver == Driver::Unaware {
        return None;
    }
    match v.host {
        Host::BareMetal => Some(ImsPath::Native),
        Host::Vm if v.store == ImsStore::DeviceMemoryTrapped => Some(ImsPath::Trapped),
        Host::Vm if v.hypercall && k.driver == Driver::ImsHypercall => Some(ImsPath::Hypercall),
        Host::Vm => None,
    }
}

/// The hypercall, where the hypervisor offers it and the driver knows it: every policy that
/// found a guest lets it override (Kevin Tian's option 3: "that path can override the IOMMU
/// hint"); otherwise MSI-X with `why`.
fn hypercall_or_msix(v: &PlatformView, k: &GuestKernel, why: Reason) -> Decision {
    if v.hypercall && k.driver == Driver::ImsHypercall {
        Decision { action: Action::ImsHypercall, reason: Reason::Hypercall }
    } else {
        Decision { action: Action::Msix, reason: why }
    }
}

fn compose(reason: Reason) -> Decision {
    Decision { action: Action::ImsComposed, reason }
}

/// A driver that knows the hypercall uses it wherever it is offered and the policy allows
/// IMS at all: a hypervisor that offers it is one the guest runs on ("HV=1, then probe the
/// hypercall"). Mainline has no hypercall path, so [`Policy::Mainline`] never calls this.
fn prefer_hypercall(v: &PlatformView, k: &GuestKernel, d: Decision) -> Decision {
    if d.action == Action::ImsComposed && v.hypercall && k.driver == Driver::ImsHypercall {
        Decision { action: Action::ImsHypercall, reason: Reason::Hypercall }
    } else {
        d
    }
}

fn msix(reason: Reason) -> Decision {
    Decision { action: Action::Msix, reason }
}

/// Option 1 or 2: a flag that allows (natively or via the hypercall) or refuses.
fn by_flag(v: &PlatformView, k: &GuestKernel, read: Result<bool, Reason>, absent_opt_out: bool) -> Decision {
    match read {
        Ok(true) if absent_opt_out => compose(Reason::FlagAbsentOptOut),
        Ok(true) => compose(Reason::FlagAllowed),
        Ok(false) => hypercall_or_msix(v, k, Reason::FlagViaHypercallOnly),
        Err(why) => msix(why),
    }
}

/// What a guest kernel with `policy` does on `v`.
pub fn decide(v: &PlatformView, k: &GuestKernel, policy: Policy) -> Decision {
    if guest_sees_emulated_msix(v) {
        return msix(Reason::EmulatedMsix);
    }
    if k.driver == Driver::Unaware {
        return msix(Reason::DriverUnaware);
    }
    let d = match policy {
        Policy::AcpiOptIn | Policy::AcpiOptOut => {
            let opt_in = policy == Policy::AcpiOptIn;
            let flag = acpi_flag_as_read(v, k);
            by_flag(v, k, flag_allows(flag, opt_in), !opt_in && flag == ImsFlag::Absent)
        }
        Policy::DmarIort => by_flag(v, k, iommu_table_allows(v), false),
        Policy::CachingMode => {
            if caching_mode(v) {
                hypercall_or_msix(v, k, Reason::CachingMode)
            } else if msi_parent(v) == MsiParent::Paravirtual {
                // Option 3 drops only x86's IR requirement; a paravirtual parent (its own
                // irq domain code) would have to opt in to IMS itself.
                msix(Reason::ParavirtParent)
            } else {
                compose(Reason::NoCachingMode)
            }
        }
        Policy::CachingModeIrParent => {
            if caching_mode(v) {
                hypercall_or_msix(v, k, Reason::CachingMode)
            } else {
                match ir_parent_required(v) {
                    Ok(()) => compose(Reason::NoCachingMode),
                    Err(why) => msix(why),
                }
            }
        }
        Policy::CpuidDmi => match probably_on_bare_metal(v) {
            Ok(()) => compose(Reason::ProbablyBareMetal),
            Err(why) => hypercall_or_msix(v, k, why),
        },
        Policy::Mainline => return mainline(v, k),
        Policy::HybridAuto => match probably_on_bare_metal(v) {
            Err(why) => hypercall_or_msix(v, k, why),
            Ok(()) if iommu_in_guest(v) => hypercall_or_msix(v, k, Reason::CachingMode),
            Ok(()) => compose(Reason::ProbablyBareMetal),
        },
    };
    prefer_hypercall(v, k, d)
}

/// Mainline Linux: `pci_create_ims_domain()` exists in 6.2–6.9 only
/// ([`crate::kernel::KernelVersion::has_ims_infrastructure`]) and succeeds only under a
/// parent with `MSI_FLAG_PCI_IMS` (`x86_init_dev_msi_info()`); no hypercall path was merged.
fn mainline(v: &PlatformView, k: &GuestKernel) -> Decision {
    if !k.version.has_ims_infrastructure() {
        return msix(Reason::NoImsApi);
    }
    match parent_supports_ims(msi_parent(v)) {
        Ok(()) => compose(Reason::RemapParent),
        Err(why) => msix(why),
    }
}

/// The outcome of `d` on the truth of `v`: composed IMS works on bare metal and where the
/// VMM traps the store, and breaks in a VM whose store nothing traps; MSI-X is FB* where
/// [`safe_ims_path`] says IMS would have worked.
pub fn judge(v: &PlatformView, k: &GuestKernel, d: Decision) -> Outcome {
    if guest_sees_emulated_msix(v) {
        return Outcome::Ims(ImsPath::Trapped);
    }
    match d.action {
        Action::Msix if safe_ims_path(v, k).is_some() => Outcome::ScaleLost,
        Action::Msix => Outcome::Fallback,
        Action::ImsHypercall => Outcome::Ims(ImsPath::Hypercall),
        Action::ImsComposed => match (v.host, v.store) {
            (Host::BareMetal, _) => Outcome::Ims(ImsPath::Native),
            (Host::Vm, ImsStore::DeviceMemoryTrapped) => Outcome::Ims(ImsPath::Trapped),
            (Host::Vm, ImsStore::QueueMemory | ImsStore::DeviceMemoryUntrapped) => Outcome::Broken,
        },
    }
}

/// The cell for (`v`, `k`, `policy`): [`decide`] then [`judge`].
pub fn evaluate(v: &PlatformView, k: &GuestKernel, policy: Policy) -> Verdict {
    let d = decide(v, k, policy);
    Verdict { outcome: judge(v, k, d), reason: d.reason }
}

/// The message a guest that composes its own (a BRK cell) writes on `v`: remappable where
/// it sees a (v)IOMMU with interrupt remapping (it allocates IRTEs in its own table and
/// names them), compatibility format (its vCPU's APIC id and vector) where it does not.
pub fn composes_remappable(v: &PlatformView) -> bool {
    v.iommu.is_some_and(|i| i.interrupt_remapping)
}

/// The seam to the delivery model: what the guest with `policy` ends up with on `v`.
/// [`Provisioning::ImsDirect`] exactly where [`evaluate`] says [`Outcome::Broken`] (a VM,
/// guest-composed messages, an untrappable store); the provisioning engine then writes the
/// guest's own messages into the store and the remapping unit decides lost or misrouted.
pub fn provisioning(v: &PlatformView, k: &GuestKernel, policy: Policy) -> Provisioning {
    let d = decide(v, k, policy);
    match judge(v, k, d) {
        Outcome::Broken => Provisioning::ImsDirect,
        Outcome::Ims(ImsPath::Hypercall) => Provisioning::ImsHypercall,
        Outcome::Ims(ImsPath::Trapped) => Provisioning::ImsTrapped,
        Outcome::Ims(ImsPath::Native) => Provisioning::ImsNative,
        Outcome::Fallback | Outcome::ScaleLost => Provisioning::Msix,
    }
}
