//! The Linux release a platform runs ([`KernelVersion`]): the one fact from which every
//! release-dependent behaviour of the models is derived, one method per behaviour.
//!
//! # What is modelled
//! - A release as `MAJOR.MINOR`, ordered as the kernel numbers them (6.9 < 6.10 < 7.0).
//! - For each behaviour that changed in a release, a method saying whether (or how) this
//!   release has it: the vector allocator's era ([`KernelVersion::vector_era`]), host posted
//!   MSI, dynamic MSI-X allocation, VFIO's dynamic MSI-X (on x86 and on arm64), the PCI/IMS
//!   API, ARM's per-device MSI domains and the ITS device's lifetime across an MSI-X resize.
//!   Each method names the release and where the change lives in the kernel.
//!
//! # What is not modelled (and why)
//! - Stable backports and vendor kernels: a fix backported to a stable series, or IMS in a
//!   vendor kernel, is not visible from `MAJOR.MINOR`; the models follow mainline.
//! - Patch levels and release candidates (6.8.3, 6.10-rc1): no modelled behaviour differs
//!   within a release.
//! - Kconfig choices (`CONFIG_X86_POSTED_MSI`, `intremap=posted_msi`): a method says whether
//!   the release *can* do something; whether a scenario turns it on is the scenario's choice.
//!
//! # Parameters and their sources
//! The releases and their changes are collected in docs/sources.md (`#linux-5-11` to `#linux-6-11`,
//! arm64's in `#arm-msi-parent`);
//! each method's documentation cites the commit or source file.

use std::fmt;

use crate::x86::vector_matrix::KernelEra;

/// A Linux release, `MAJOR.MINOR` (e.g. 6.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// Major number (6 in 6.8).
    pub major: u16,
    /// Minor number (8 in 6.8).
    pub minor: u16,
}

/// The oldest release whose vector allocator the models follow: 5.11 changed the activation
/// fallback order of non-managed interrupts to node ∩ affinity → affinity → node → all
/// online CPUs ("x86/apic/vector: Fix ordering in vector assignment", Thomas Gleixner, Dec
/// 2020; `assign_irq_vector_any_locked` in arch/x86/kernel/apic/vector.c; docs/sources.md#linux-5-11).
/// Older kernels tried the node before the affinity, which is not modelled.
pub const KERNEL_OLDEST: KernelVersion = KernelVersion::new(5, 11);

impl KernelVersion {
    /// The release `major.minor`.
    pub const fn new(major: u16, minor: u16) -> KernelVersion {
        KernelVersion { major, minor }
    }

    /// Whether this release is `major.minor` or later (`const` so that the checks below
    /// read as the release numbers they are).
    const fn at_least(self, major: u16, minor: u16) -> bool {
        self.major > major || (self.major == major && self.minor >= minor)
    }

    /// The vector allocator's era: up to 6.5; 6.6 to 6.9; 6.10 and later.
    ///
    /// 6.6 replaced the `IRQ_MOVE_CLEANUP_VECTOR` cleanup IPI by a timer callback (tip commit
    /// bdc1dad299bb, "x86/vector: Replace IRQ_MOVE_CLEANUP_VECTOR with a timer callback"),
    /// which frees vector 0x20 for devices; 6.10 made `POSTED_MSI_NOTIFICATION_VECTOR` (0xeb)
    /// the first system vector, ending the device range below it
    /// (arch/x86/include/asm/irq_vectors.h). The era also decides hotplug behaviour
    /// (docs/sources.md#vectors-per-cpu, #linux-6-6, #linux-6-10).
    pub const fn vector_era(self) -> KernelEra {
        if self.at_least(6, 10) {
            KernelEra::From6_10
        } else if self.at_least(6, 6) {
            KernelEra::V6_6To6_9
        } else {
            KernelEra::UpTo6_5
        }
    }

    /// How the old vector of a moved interrupt is freed once the move is done: up to 6.5 an
    /// `IRQ_MOVE_CLEANUP_VECTOR` IPI to the old CPU, whose handler frees it at once (or
    /// re-sends the IPI to itself while the vector is still pending in that CPU's IRR); from
    /// 6.6 a per-CPU timer armed for the next jiffy, which re-arms itself while the vector is
    /// pending (`vector_schedule_cleanup`, `__vector_cleanup` in arch/x86/kernel/apic/vector.c,
    /// tip commit bdc1dad299bb; docs/sources.md#vector-move).
    pub const fn vector_cleanup_by_timer(self) -> bool {
        self.at_least(6, 6)
    }

    /// Host posted MSI: from 6.10. Device MSIs can be posted into a per-CPU descriptor and
    /// demuxed by one notification handler (`sysvec_posted_msi_notification` in
    /// arch/x86/kernel/irq.c, opt-in with `intremap=posted_msi`): Jacob Pan's "Coalesced
    /// Interrupt Delivery with posted MSI" series, merged for 6.10 with the tip tag
    /// x86-irq-2024-05-12 (docs/sources.md#linux-6-10), with only clean-ups since.
    pub const fn has_posted_msi(self) -> bool {
        self.at_least(6, 10)
    }

    /// Dynamic MSI-X: from 6.2 a driver can allocate MSI-X vectors one at a time after MSI-X
    /// is enabled (`pci_msix_alloc_irq_at`, commit 34026364df8e, drivers/pci/msi/api.c) on
    /// per-device MSI domains, instead of sizing the whole table up front.
    pub const fn has_dynamic_msix(self) -> bool {
        self.at_least(6, 2)
    }

    /// VFIO dynamic MSI-X on x86: from 6.5 VFIO clears `VFIO_IRQ_INFO_NORESIZE` for MSI-X when
    /// the device's MSI domain can allocate after enable (`VFIO_DEVICE_GET_IRQ_INFO` in
    /// drivers/vfio/pci/), so a VMM adds a guest's vectors one by one. Earlier, adding a
    /// vector meant disabling all N and re-enabling N + 1 (docs/sources.md#linux-6-5). On
    /// arm64 the ITS's MSI parent must offer the flag too: [`KernelVersion::vfio_dynamic_msix_arm64`].
    pub const fn vfio_dynamic_msix(self) -> bool {
        self.at_least(6, 5)
    }

    /// VFIO dynamic MSI-X on arm64 (a GIC ITS host): from 7.3. `pci_msix_can_alloc_dyn` is
    /// true only when the MSI parent offers `MSI_FLAG_PCI_MSIX_ALLOC_DYN`, which the ITS's
    /// (`ITS_MSI_FLAGS_SUPPORTED`, drivers/irqchip/irq-gic-its-msi-parent.c) does from commit
    /// 0d6a7c417983 ("irqchip/gic-v3-its: Enable dynamic MSI-X allocation", tip irq/drivers
    /// 2026-07-15, merged for 7.3-rc1). Up to 7.2 VFIO reports `VFIO_IRQ_INFO_NORESIZE` there
    /// and a guest's MSI-X grows by disabling and re-enabling it (docs/sources.md#arm-msi-parent).
    pub const fn vfio_dynamic_msix_arm64(self) -> bool {
        self.at_least(7, 3)
    }

    /// Whether the GIC ITS keeps a function's ITS device (its ITT and LPI block, mapped by
    /// MAPD) while MSI-X is disabled: from 6.16. Up to 6.15 `its_irq_domain_free` unmaps the
    /// device (MAPD V=0) and frees its LPIs when its last event goes, so a resize without
    /// dynamic MSI-X frees it and the next enable's `its_msi_prepare` creates it again
    /// (MAPD V=1). From 6.16 `.msi_prepare` runs once when the per-device MSI domain is
    /// created and `its_msi_teardown` (MAPD V=0) only when that domain is removed (commit
    /// 713335b6ee29, "irqchip/gic-v3-its: Implement .msi_teardown() callback", in the
    /// irq/msi pull for 6.16-rc1; docs/sources.md#arm-msi-parent).
    pub const fn its_device_outlives_its_events(self) -> bool {
        self.at_least(6, 16)
    }

    /// The PCI/IMS API (`pci_create_ims_domain`, `pci_ims_alloc_irq`; drivers/pci/msi/
    /// irqdomain.c) on the per-device MSI domain infrastructure: merged in 6.2 (Thomas
    /// Gleixner's "genirq, PCI/MSI: Support for per device MSI and PCI/IMS" series) and
    /// removed again for 6.10 because it never had an in-tree user (Bjorn Helgaas,
    /// "PCI/MSI: Remove IMS (Interrupt Message Store) support for now"), so mainline has it
    /// in 6.2 to 6.9 only (docs/sources.md#linux-6-2). The per-device MSI domains themselves stay
    /// ([`KernelVersion::has_dynamic_msix`]).
    pub const fn has_ims_infrastructure(self) -> bool {
        self.at_least(6, 2) && !self.at_least(6, 10)
    }

    /// ARM per-device MSI domains: from 6.11 the GICv3 ITS is an MSI parent and each PCI
    /// device gets its own MSI domain (drivers/irqchip/irq-gic-v3-its-msi-parent.c), as x86
    /// has had since 6.2.
    pub const fn arm_per_device_msi_domains(self) -> bool {
        self.at_least(6, 11)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn v(major: u16, minor: u16) -> KernelVersion {
        KernelVersion::new(major, minor)
    }

    #[test]
    fn orders_and_prints_as_the_kernel_numbers_releases() {
        assert!(v(6, 9) < v(6, 10));
        assert!(v(6, 10) < v(7, 0));
        assert!(v(5, 19) < v(6, 0));
        assert_eq!(v(6, 8).to_string(), "6.8");
        assert_eq!(v(6, 10).to_string(), "6.10");
        assert_eq!(KERNEL_OLDEST.to_string(), "5.11");
    }

    #[test]
    fn vector_era_boundaries() {
        assert_eq!(KERNEL_OLDEST.vector_era(), KernelEra::UpTo6_5);
        assert_eq!(v(5, 19).vector_era(), KernelEra::UpTo6_5);
        assert_eq!(v(6, 5).vector_era(), KernelEra::UpTo6_5);
        assert_eq!(v(6, 6).vector_era(), KernelEra::V6_6To6_9);
        assert_eq!(v(6, 9).vector_era(), KernelEra::V6_6To6_9);
        assert_eq!(v(6, 10).vector_era(), KernelEra::From6_10);
        assert_eq!(v(7, 0).vector_era(), KernelEra::From6_10);
    }

    #[test]
    fn posted_msi_from_6_10() {
        assert!(!v(6, 9).has_posted_msi());
        assert!(v(6, 10).has_posted_msi());
        assert!(v(7, 0).has_posted_msi());
        assert!(!v(5, 11).has_posted_msi());
    }

    #[test]
    fn dynamic_msix_from_6_2() {
        assert!(!v(6, 1).has_dynamic_msix());
        assert!(v(6, 2).has_dynamic_msix());
        assert!(v(7, 0).has_dynamic_msix());
        assert!(!v(5, 19).has_dynamic_msix());
    }

    #[test]
    fn vfio_dynamic_msix_from_6_5() {
        assert!(!v(6, 4).vfio_dynamic_msix());
        assert!(v(6, 5).vfio_dynamic_msix());
        assert!(v(6, 6).vfio_dynamic_msix());
        assert!(v(7, 0).vfio_dynamic_msix());
    }

    #[test]
    fn vfio_dynamic_msix_on_arm64_from_7_3() {
        assert!(!v(6, 16).vfio_dynamic_msix_arm64());
        assert!(!v(7, 2).vfio_dynamic_msix_arm64());
        assert!(v(7, 3).vfio_dynamic_msix_arm64());
        assert!(v(8, 0).vfio_dynamic_msix_arm64());
    }

    #[test]
    fn its_device_outlives_its_events_from_6_16() {
        assert!(!v(6, 15).its_device_outlives_its_events());
        assert!(v(6, 16).its_device_outlives_its_events());
        assert!(v(7, 0).its_device_outlives_its_events());
    }

    #[test]
    fn ims_api_in_6_2_to_6_9_only() {
        assert!(!v(6, 1).has_ims_infrastructure());
        assert!(v(6, 2).has_ims_infrastructure());
        assert!(v(6, 9).has_ims_infrastructure());
        assert!(!v(6, 10).has_ims_infrastructure());
        assert!(!v(7, 0).has_ims_infrastructure());
    }

    #[test]
    fn arm_per_device_msi_domains_from_6_11() {
        assert!(!v(6, 10).arm_per_device_msi_domains());
        assert!(v(6, 11).arm_per_device_msi_domains());
        assert!(v(7, 0).arm_per_device_msi_domains());
    }
}
