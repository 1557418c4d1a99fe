//! The detection rules, one small function each, named after the kernel function or the
//! mail it models. Each answers a yes/no question about a [`PlatformView`] (with the
//! [`Reason`] the kernel would give); the policies in [`super::decide`] combine them.

use super::Reason;
use super::view::{
    Arch, Dmi, Driver, FlagTiming, Function, GuestKernel, Host, ImsFlag, ImsStore, IommuTable, IommuVendor,
    PlatformView,
};

/// CPUID leaf 1, ECX bit 31 (`boot_cpu_has(X86_FEATURE_HYPERVISOR)`): set by convention
/// by a VMM, enforced by nothing (Gleixner, 12 Nov 2020). ARM has no CPUID.
pub fn cpuid_hypervisor_bit(v: &PlatformView) -> bool {
    v.arch == Arch::X86 && v.cpuid_hypervisor
}

/// `dmi_match(DMI_SYS_VENDOR, …)` against Gleixner's list of hypervisor vendor strings
/// ("not complete but better than nothing").
pub fn dmi_names_a_hypervisor(v: &PlatformView) -> bool {
    v.dmi == Dmi::Hypervisor
}

/// `probably_on_bare_metal()` (Gleixner, 12 Nov 2020): no hypervisor bit and no hypervisor
/// in DMI. Otherwise the reason it saw a VM.
pub fn probably_on_bare_metal(v: &PlatformView) -> Result<(), Reason> {
    if cpuid_hypervisor_bit(v) {
        Err(Reason::HypervisorBit)
    } else if dmi_names_a_hypervisor(v) {
        Err(Reason::DmiHypervisor)
    } else {
        Ok(())
    }
}

/// `cap_caching_mode(iommu->cap)` on VT-d, `amd_iommu_np_cache` on AMD: the unit caches
/// not-present entries, which only a shadowing emulation does (option 3's guest hint). ARM
/// SMMUs have no bit used this way.
pub fn caching_mode(v: &PlatformView) -> bool {
    v.iommu.is_some_and(|u| u.caching_mode && u.vendor != IommuVendor::ArmSmmu)
}

/// `iommu_existing() && iommu_in_guest()` of Kevin Tian's `ims=auto` (16 Nov 2020): an
/// IOMMU that shows caching mode.
pub fn iommu_in_guest(v: &PlatformView) -> bool {
    caching_mode(v)
}

/// The MSI parent a device's IMS domain would get, as `pci_create_ims_domain()` →
/// `msi_create_device_irq_domain()` → `x86_init_dev_msi_info()` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiParent {
    /// VT-d `dmar_msi_parent_ops` or AMD `amdvi_msi_parent_ops` ("IR-"):
    /// `MSI_FLAG_PCI_IMS` set (6.2–6.9).
    RemapIms,
    /// `virt_dmar_msi_parent_ops` / `virt_amdvi_msi_parent_ops` ("vIR-"), chosen under
    /// caching mode: no `MSI_FLAG_PCI_IMS`.
    RemapVirt,
    /// The plain x86 vector domain (`X86_VECTOR_MSI_FLAGS_SUPPORTED`): no IMS flag.
    Vector,
    /// A paravirtual PCI MSI parent (Hyper-V's pci-hyperv): no IMS flag (unverified).
    Paravirtual,
    /// The GICv3 ITS MSI parent: no IMS flag.
    Its,
}

/// `intel_setup_irq_remapping()` / `amd_iommu_create_irq_domain()` (6.2–6.9): with
/// remapping on, the IR domain is the parent, `virt_*` under caching mode; otherwise the
/// vector domain, a paravirtual parent, or the ITS on ARM.
pub fn msi_parent(v: &PlatformView) -> MsiParent {
    if v.arch == Arch::Arm {
        return MsiParent::Its;
    }
    if v.pv_msi_parent {
        return MsiParent::Paravirtual;
    }
    match v.iommu {
        Some(u) if u.interrupt_remapping && u.caching_mode => MsiParent::RemapVirt,
        Some(u) if u.interrupt_remapping => MsiParent::RemapIms,
        _ => MsiParent::Vector,
    }
}

/// `x86_init_dev_msi_info()`, `case DOMAIN_BUS_PCI_DEVICE_IMS`: refuses the IMS domain
/// unless the parent's `supported_flags` has `MSI_FLAG_PCI_IMS`.
pub fn parent_supports_ims(parent: MsiParent) -> Result<(), Reason> {
    match parent {
        MsiParent::RemapIms => Ok(()),
        MsiParent::RemapVirt => Err(Reason::VirtRemapParent),
        MsiParent::Vector => Err(Reason::NoRemapParent),
        MsiParent::Paravirtual => Err(Reason::ParavirtParent),
        MsiParent::Its => Err(Reason::ItsParent),
    }
}

/// Option 3 with "IMS needs an IR parent" (what 6.2 merged for x86): the parent is a
/// remapping unit that is not an emulation, i.e. `msi_parent` is `RemapIms`.
pub fn ir_parent_required(v: &PlatformView) -> Result<(), Reason> {
    parent_supports_ims(msi_parent(v))
}

/// The ACPI flag as the guest reads it: the given value when it was fixed at creation;
/// under [`FlagTiming::KnownGuest`] the value a hypervisor that knew this guest would set
/// (allowed where the store is trapped, via the hypercall for a guest with the hypercall
/// driver, disallowed otherwise). Bare-metal firmware says what it says.
pub fn acpi_flag_as_read(v: &PlatformView, k: &GuestKernel) -> ImsFlag {
    if v.host == Host::BareMetal || v.acpi_timing == FlagTiming::AtCreation {
        return v.acpi_flag;
    }
    if v.store == ImsStore::DeviceMemoryTrapped {
        ImsFlag::Allowed
    } else if v.hypercall && k.driver == Driver::ImsHypercall {
        ImsFlag::ViaHypercall
    } else {
        ImsFlag::Disallowed
    }
}

/// Option 1 or 2's flag read with opt-in (`if (!virt || virt->supports_X)`, Gleixner and
/// Hellwig, 11–16 Nov 2020: no answer means no) or opt-out semantics (Raj's `IMS_OPTOUT`,
/// 11 Nov 2020: only "disallowed" means no). `Ok(true)`: compose natively; `Ok(false)`:
/// only through the hypercall.
pub fn flag_allows(flag: ImsFlag, opt_in: bool) -> Result<bool, Reason> {
    match flag {
        ImsFlag::Allowed => Ok(true),
        ImsFlag::ViaHypercall => Ok(false),
        ImsFlag::Disallowed => Err(Reason::FlagDisallowed),
        ImsFlag::Absent if opt_in => Err(Reason::FlagAbsentOptIn),
        ImsFlag::Absent => Ok(true),
    }
}

/// Option 2: the DMAR/IORT table's flag (Kevin Tian, 11 Nov 2020: physical firmware says
/// "allowed"; a hypervisor hides IMS with no table, the old format or "disallowed").
pub fn iommu_table_allows(v: &PlatformView) -> Result<bool, Reason> {
    match v.iommu_table {
        IommuTable::None => Err(Reason::NoIommuTable),
        IommuTable::OldFormat => Err(Reason::OldTableFormat),
        IommuTable::NewFormat(flag) => flag_allows(flag, true),
    }
}

/// The SIOV spec: "IMS is managed by host driver software and is not accessible directly
/// from guest": an ADI's guest sees emulated MSI-X.
pub fn guest_sees_emulated_msix(v: &PlatformView) -> bool {
    v.function == Function::SiovAdi
}
