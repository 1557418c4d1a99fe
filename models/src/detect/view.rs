//! What a guest kernel can see of its platform when it decides whether to use IMS
//! ([`PlatformView`]), and the guest kernel itself ([`GuestKernel`]).

use crate::kernel::KernelVersion;

/// The instruction set: what a guest can probe (x86 has CPUID, ARM has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Arch {
    /// x86-64, with CPUID and the VT-d / AMD-Vi remapping units.
    X86,
    /// arm64 with a GICv3 ITS.
    Arm,
}

/// Where the kernel really runs (the truth the detection tries to find out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Host {
    /// On the machine itself.
    BareMetal,
    /// In a virtual machine.
    Vm,
}

/// The vendor string in the DMI (SMBIOS) tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dmi {
    /// A hardware vendor (or a string no list knows).
    Hardware,
    /// A string on Gleixner's list of hypervisor vendors (QEMU, Bochs, KVM, Xen, VMware,
    /// innotek GmbH, Oracle Corporation, Parallels, BHYVE, Microsoft Corporation).
    Hypervisor,
}

/// The vendor of the (v)IOMMU, which names its "I am a shadowing emulation" bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IommuVendor {
    /// Intel VT-d: `cap_caching_mode` (CM).
    Intel,
    /// AMD-Vi: `amd_iommu_np_cache` (NpCache).
    Amd,
    /// An ARM SMMU: no such bit is used for interrupts.
    ArmSmmu,
}

/// The IOMMU the kernel sees (physical on bare metal, emulated in a VM).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Iommu {
    /// Whose IOMMU.
    pub vendor: IommuVendor,
    /// Interrupt remapping enabled (an IR domain becomes the MSI parent).
    pub interrupt_remapping: bool,
    /// VT-d caching mode or AMD NpCache: the unit caches not-present entries, which only a
    /// shadowing emulation does.
    pub caching_mode: bool,
}

/// A value of an IMS flag in a firmware table (ACPI or DMAR/IORT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImsFlag {
    /// No flag: firmware (or a VMM) older than the flag.
    Absent,
    /// "IMS allowed": the kernel may compose its own messages.
    Allowed,
    /// "IMS available only via the paravirtual compose hypercall" (Kevin Tian's second
    /// bit).
    ViaHypercall,
    /// "IMS disallowed".
    Disallowed,
}

/// The IOMMU vendor table (DMAR on VT-d, IORT on ARM) and its IMS flag (option 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IommuTable {
    /// No table: no (v)IOMMU exposed (Kevin's hiding method a).
    None,
    /// A table in the format before the flag (hiding method b).
    OldFormat,
    /// The new format with its IMS flag (c: "disallowed"; physical firmware: "allowed").
    NewFormat(ImsFlag),
}

/// When the vendor-agnostic ACPI flag is decided (Kevin Tian, 11 Nov 2020: "at VM creation
/// time").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FlagTiming {
    /// Fixed when the VM (or the firmware) is made, before anyone knows the guest kernel:
    /// the flag is the value given.
    AtCreation,
    /// Hypothetical: the hypervisor knows the guest kernel when it sets the flag and sets
    /// the right value for it (allowed where IMS is trapped, via the hypercall for a guest
    /// with the hypercall driver, disallowed otherwise).
    KnownGuest,
}

/// Where the device keeps its IMS messages, and whether the VMM can trap writes to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImsStore {
    /// In host memory written through the device's queues (mlx5-like): nothing can trap it.
    QueueMemory,
    /// In device memory (IDXD-like); the VMM traps the region and emulates each write.
    DeviceMemoryTrapped,
    /// In device memory, mapped into the guest without a trap.
    DeviceMemoryUntrapped,
}

/// What kind of function the guest drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    /// A physical function or an SR-IOV VF: its own requester id, its own IMS store.
    PfOrVf,
    /// A Scalable IOV ADI: the guest sees an emulated device with MSI-X; the host backs
    /// each vector with IMS (the SIOV spec keeps IMS away from guests).
    SiovAdi,
}

/// Everything a guest kernel can probe, plus the truth it cannot ([`PlatformView::host`],
/// [`PlatformView::store`]) against which an answer is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlatformView {
    /// x86 or ARM.
    pub arch: Arch,
    /// Bare metal or a VM (not visible as such: what the policies try to infer).
    pub host: Host,
    /// CPUID leaf 1 ECX bit 31, the hypervisor bit (x86 only; a software convention).
    pub cpuid_hypervisor: bool,
    /// The DMI vendor string.
    pub dmi: Dmi,
    /// The (v)IOMMU, if one is exposed.
    pub iommu: Option<Iommu>,
    /// The vendor-agnostic ACPI flag (option 1).
    pub acpi_flag: ImsFlag,
    /// When the ACPI flag was set.
    pub acpi_timing: FlagTiming,
    /// The DMAR/IORT table and its flag (option 2).
    pub iommu_table: IommuTable,
    /// The hypervisor offers a hypercall that composes an IMS message for the guest.
    pub hypercall: bool,
    /// The guest's PCI MSIs are composed by a paravirtual MSI parent (Hyper-V's
    /// pci-hyperv), not by a remapping unit or the vector domain.
    pub pv_msi_parent: bool,
    /// The device's IMS store.
    pub store: ImsStore,
    /// PF/VF or SIOV ADI.
    pub function: Function,
}

/// What the guest's driver knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Driver {
    /// It does not use IMS at all: MSI-X whatever the platform says.
    Unaware,
    /// It uses IMS where the kernel allows it, composing messages itself.
    ImsAware,
    /// It also knows the hypervisor's compose hypercall and uses it when offered.
    ImsHypercall,
}

/// The guest kernel: its driver and its release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GuestKernel {
    /// What the driver knows.
    pub driver: Driver,
    /// The Linux release (decides [`crate::detect::Policy::Mainline`]: IMS in 6.2–6.9 only).
    pub version: KernelVersion,
}
