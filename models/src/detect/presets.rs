//! The platform configurations of the decision matrix, R1–R17, as named presets: one
//! preset per row, and one named variant per condition of a row whose cells are
//! conditional ("FB\* if the firmware predates the flag", "BRK if the VMM shows a
//! new-format 'allowed' table"), so that every cell is one preset × one policy.

use super::view::*;
use crate::kernel::KernelVersion;

/// A named configuration: what the guest sees and the guest kernel it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The name scenario files use (`r1`, `r1-old-firmware`, …).
    pub name: &'static str,
    /// The matrix row it belongs to (`R1` … `R17`).
    pub row: &'static str,
    /// The short id tables use: the row, and a letter for each variant after the first
    /// (`R8`, `R8b`, `R8c`, `R8d`).
    pub id: &'static str,
    /// What it is, in words.
    pub title: &'static str,
    /// What the guest sees.
    pub view: PlatformView,
    /// The guest kernel.
    pub kernel: GuestKernel,
}

/// The guest kernel the matrix assumes: an IMS-aware driver on a release with the IMS API.
pub const IMS_AWARE: GuestKernel = GuestKernel { driver: Driver::ImsAware, version: KernelVersion::new(6, 9) };
/// R11's guest: the driver also knows the hypervisor's compose hypercall.
pub const IMS_HYPERCALL: GuestKernel = GuestKernel { driver: Driver::ImsHypercall, version: KernelVersion::new(6, 9) };

const VTD_IR: Iommu = Iommu { vendor: IommuVendor::Intel, interrupt_remapping: true, caching_mode: false };
const VTD_IR_CM: Iommu = Iommu { vendor: IommuVendor::Intel, interrupt_remapping: true, caching_mode: true };
const AMD_IR_NPCACHE: Iommu = Iommu { vendor: IommuVendor::Amd, interrupt_remapping: true, caching_mode: true };
const SMMU: Iommu = Iommu { vendor: IommuVendor::ArmSmmu, interrupt_remapping: false, caching_mode: false };

/// Bare metal with VT-d remapping and current firmware (both flags "allowed").
const BARE_METAL: PlatformView = PlatformView {
    arch: Arch::X86,
    host: Host::BareMetal,
    cpuid_hypervisor: false,
    dmi: Dmi::Hardware,
    iommu: Some(VTD_IR),
    acpi_flag: ImsFlag::Allowed,
    acpi_timing: FlagTiming::AtCreation,
    iommu_table: IommuTable::NewFormat(ImsFlag::Allowed),
    hypercall: false,
    pv_msi_parent: false,
    store: ImsStore::QueueMemory,
    function: Function::PfOrVf,
};

/// A current KVM/QEMU guest with an assigned PF or VF and a queue-memory store: the
/// hypervisor bit, DMI "QEMU", no vIOMMU, and a VMM that knows the flags says
/// "disallowed" (hides the DMAR by exposing none).
const KVM_GUEST: PlatformView = PlatformView {
    arch: Arch::X86,
    host: Host::Vm,
    cpuid_hypervisor: true,
    dmi: Dmi::Hypervisor,
    iommu: None,
    acpi_flag: ImsFlag::Disallowed,
    acpi_timing: FlagTiming::AtCreation,
    iommu_table: IommuTable::None,
    hypercall: false,
    pv_msi_parent: false,
    store: ImsStore::QueueMemory,
    function: Function::PfOrVf,
};

/// A VMM that hides itself or predates every flag: no hypervisor bit, a hardware DMI
/// string, no ACPI flag, no vIOMMU.
const STEALTH_GUEST: PlatformView =
    PlatformView { cpuid_hypervisor: false, dmi: Dmi::Hardware, acpi_flag: ImsFlag::Absent, ..KVM_GUEST };

const fn p(name: &'static str, id: &'static str, title: &'static str, view: PlatformView) -> Preset {
    let row = match id.as_bytes() {
        [b'R', _, b'b' | b'c' | b'd'] => id.split_at(2).0,
        [b'R', _, _, b'b' | b'c' | b'd'] => id.split_at(3).0,
        _ => id,
    };
    Preset { name, row, id, title, view, kernel: IMS_AWARE }
}

/// Every preset, in row order.
pub const PRESETS: [Preset; 33] = [
    p("r1", "R1", "bare metal, IR on, current firmware", BARE_METAL),
    p(
        "r1-old-firmware",
        "R1b",
        "bare metal, IR on, firmware before the flags",
        PlatformView { acpi_flag: ImsFlag::Absent, iommu_table: IommuTable::OldFormat, ..BARE_METAL },
    ),
    p("r2", "R2", "bare metal, no IOMMU", PlatformView { iommu: None, iommu_table: IommuTable::None, ..BARE_METAL }),
    p("r3", "R3", "KVM/QEMU guest, no vIOMMU, HV=1, DMI QEMU", KVM_GUEST),
    p(
        "r4",
        "R4",
        "QEMU intel-iommu intremap=on,caching-mode=on; DMAR: disallowed",
        PlatformView { iommu: Some(VTD_IR_CM), iommu_table: IommuTable::NewFormat(ImsFlag::Disallowed), ..KVM_GUEST },
    ),
    p(
        "r4-old-format",
        "R4b",
        "QEMU intel-iommu with caching mode; DMAR in the old format",
        PlatformView { iommu: Some(VTD_IR_CM), iommu_table: IommuTable::OldFormat, ..KVM_GUEST },
    ),
    p(
        "r5",
        "R5",
        "QEMU amd-iommu (NpCache always advertised)",
        PlatformView {
            iommu: Some(AMD_IR_NPCACHE),
            iommu_table: IommuTable::NewFormat(ImsFlag::Disallowed),
            ..KVM_GUEST
        },
    ),
    p("r6", "R6", "stealth VM: HV=0, DMI overridden, no vIOMMU", STEALTH_GUEST),
    p(
        "r7",
        "R7",
        "stealth VM, vIOMMU IR CM=1, DMAR says disallowed",
        PlatformView {
            iommu: Some(VTD_IR_CM),
            iommu_table: IommuTable::NewFormat(ImsFlag::Disallowed),
            ..STEALTH_GUEST
        },
    ),
    p(
        "r7-old-format",
        "R7b",
        "stealth VM, vIOMMU IR CM=1, DMAR in the old format",
        PlatformView { iommu: Some(VTD_IR_CM), iommu_table: IommuTable::OldFormat, ..STEALTH_GUEST },
    ),
    p(
        "r7-allowed",
        "R7c",
        "stealth VM, vIOMMU IR CM=1, DMAR says allowed to look native",
        PlatformView { iommu: Some(VTD_IR_CM), iommu_table: IommuTable::NewFormat(ImsFlag::Allowed), ..STEALTH_GUEST },
    ),
    p(
        "r8",
        "R8",
        "VM, vIOMMU IR with CM=0 (non-shadowing), HV=1, DMAR disallowed",
        PlatformView { iommu: Some(VTD_IR), iommu_table: IommuTable::NewFormat(ImsFlag::Disallowed), ..KVM_GUEST },
    ),
    p(
        "r8-old-format",
        "R8b",
        "VM, vIOMMU IR with CM=0, HV=1, DMAR in the old format",
        PlatformView { iommu: Some(VTD_IR), iommu_table: IommuTable::OldFormat, ..KVM_GUEST },
    ),
    p(
        "r8-allowed",
        "R8c",
        "VM, vIOMMU IR with CM=0, HV=1, DMAR says allowed",
        PlatformView { iommu: Some(VTD_IR), iommu_table: IommuTable::NewFormat(ImsFlag::Allowed), ..KVM_GUEST },
    ),
    p(
        "r8-hidden",
        "R8d",
        "VM, vIOMMU IR with CM=0, HV hidden, hardware DMI, DMAR disallowed",
        PlatformView {
            iommu: Some(VTD_IR),
            iommu_table: IommuTable::NewFormat(ImsFlag::Disallowed),
            cpuid_hypervisor: false,
            dmi: Dmi::Hardware,
            ..KVM_GUEST
        },
    ),
    p(
        "r9",
        "R9",
        "new or unknown hypervisor: HV=1, unknown DMI, no vIOMMU, no flag",
        PlatformView { dmi: Dmi::Hardware, acpi_flag: ImsFlag::Absent, ..KVM_GUEST },
    ),
    p("r10", "R10", "old VMM: HV=0, unknown DMI, no vIOMMU (hide a)", STEALTH_GUEST),
    p(
        "r10-viommu",
        "R10b",
        "old VMM: HV=0, unknown DMI, vIOMMU IR CM=1, old DMAR (hide b)",
        PlatformView { iommu: Some(VTD_IR_CM), iommu_table: IommuTable::OldFormat, ..STEALTH_GUEST },
    ),
    Preset {
        kernel: IMS_HYPERCALL,
        ..p(
            "r11",
            "R11",
            "compose hypercall offered, guest uses it; flags: via hypercall",
            PlatformView {
                iommu: Some(VTD_IR_CM),
                hypercall: true,
                acpi_flag: ImsFlag::ViaHypercall,
                iommu_table: IommuTable::NewFormat(ImsFlag::ViaHypercall),
                ..KVM_GUEST
            },
        )
    },
    Preset {
        kernel: IMS_HYPERCALL,
        ..p(
            "r11-allowed",
            "R11b",
            "compose hypercall offered, guest uses it; flags: allowed",
            PlatformView {
                iommu: Some(VTD_IR_CM),
                hypercall: true,
                acpi_flag: ImsFlag::Allowed,
                iommu_table: IommuTable::NewFormat(ImsFlag::Allowed),
                ..KVM_GUEST
            },
        )
    },
    Preset {
        kernel: IMS_HYPERCALL,
        ..p(
            "r11-disallowed",
            "R11c",
            "compose hypercall offered, guest uses it; flags: disallowed",
            PlatformView {
                iommu: Some(VTD_IR_CM),
                hypercall: true,
                acpi_flag: ImsFlag::Disallowed,
                iommu_table: IommuTable::NewFormat(ImsFlag::Disallowed),
                ..KVM_GUEST
            },
        )
    },
    p(
        "r12",
        "R12",
        "R11's hypervisor, guest IMS-aware without it; flags: allowed",
        PlatformView {
            iommu: Some(VTD_IR_CM),
            hypercall: true,
            acpi_flag: ImsFlag::Allowed,
            iommu_table: IommuTable::NewFormat(ImsFlag::Allowed),
            ..KVM_GUEST
        },
    ),
    p(
        "r12-disallowed",
        "R12b",
        "R11's hypervisor, guest IMS-aware without it; flags: disallowed",
        PlatformView {
            iommu: Some(VTD_IR_CM),
            hypercall: true,
            acpi_flag: ImsFlag::Disallowed,
            iommu_table: IommuTable::NewFormat(ImsFlag::Disallowed),
            ..KVM_GUEST
        },
    ),
    p(
        "r12-via-hypercall",
        "R12c",
        "R11's hypervisor, guest IMS-aware without it; flags: via hcall",
        PlatformView {
            iommu: Some(VTD_IR_CM),
            hypercall: true,
            acpi_flag: ImsFlag::ViaHypercall,
            iommu_table: IommuTable::NewFormat(ImsFlag::ViaHypercall),
            ..KVM_GUEST
        },
    ),
    p(
        "r13",
        "R13",
        "device-memory IMS, full PF, VMM traps it; flags: allowed",
        PlatformView {
            iommu: Some(VTD_IR_CM),
            store: ImsStore::DeviceMemoryTrapped,
            acpi_flag: ImsFlag::Allowed,
            iommu_table: IommuTable::NewFormat(ImsFlag::Allowed),
            ..KVM_GUEST
        },
    ),
    p(
        "r13-disallowed",
        "R13b",
        "device-memory IMS, full PF, VMM traps it; flags: disallowed",
        PlatformView {
            iommu: Some(VTD_IR_CM),
            store: ImsStore::DeviceMemoryTrapped,
            iommu_table: IommuTable::NewFormat(ImsFlag::Disallowed),
            ..KVM_GUEST
        },
    ),
    p(
        "r14",
        "R14",
        "SIOV ADI: guest sees emulated MSI-X, host backs it with IMS",
        PlatformView { function: Function::SiovAdi, ..KVM_GUEST },
    ),
    p(
        "r15",
        "R15",
        "nested L1 hypervisor, vIOMMU CM=1, L0 traps; L0 flags: allowed",
        PlatformView {
            iommu: Some(VTD_IR_CM),
            store: ImsStore::DeviceMemoryTrapped,
            acpi_flag: ImsFlag::Allowed,
            iommu_table: IommuTable::NewFormat(ImsFlag::Allowed),
            ..KVM_GUEST
        },
    ),
    p(
        "r15-disallowed",
        "R15b",
        "nested L1 hypervisor, vIOMMU CM=1, L0 traps; L0 flags: disallowed",
        PlatformView {
            iommu: Some(VTD_IR_CM),
            store: ImsStore::DeviceMemoryTrapped,
            iommu_table: IommuTable::NewFormat(ImsFlag::Disallowed),
            ..KVM_GUEST
        },
    ),
    p(
        "r16",
        "R16",
        "Hyper-V guest: PCI MSIs composed by pci-hyperv",
        PlatformView { pv_msi_parent: true, ..KVM_GUEST },
    ),
    p(
        "r17",
        "R17",
        "ARM64 bare metal, GICv3 ITS, IORT says allowed",
        PlatformView { arch: Arch::Arm, iommu: Some(SMMU), ..BARE_METAL },
    ),
    p(
        "r17-guest",
        "R17b",
        "ARM64 guest (QEMU virt), ITS, IORT in the old format",
        PlatformView { arch: Arch::Arm, cpuid_hypervisor: false, iommu_table: IommuTable::OldFormat, ..KVM_GUEST },
    ),
    p(
        "r17-guest-allowed",
        "R17c",
        "ARM64 guest, ITS, IORT says allowed",
        PlatformView {
            arch: Arch::Arm,
            cpuid_hypervisor: false,
            iommu_table: IommuTable::NewFormat(ImsFlag::Allowed),
            ..KVM_GUEST
        },
    ),
];

/// The preset of a scenario file's name.
pub fn by_name(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}
