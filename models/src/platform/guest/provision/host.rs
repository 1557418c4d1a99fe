//! The host side of a provisioned vector, whichever chip the platform has: on x86 VFIO's
//! host vector and IRTE under the global lock (`X86Chip::vfio_setup`), on a GICv4 host the
//! ITS commands that map and forward the vector's event (`ArmChip::vfio_setup`). What
//! provisioning does around them (the guest's exits, QEMU, the resize) is the same on both:
//! arm64's ITS MSI parent offers dynamic MSI-X (`MSI_FLAG_PCI_MSIX_ALLOC_DYN`) only from
//! Linux 7.3, so up to 7.2 VFIO reports `VFIO_IRQ_INFO_NORESIZE` there and N vectors cost
//! N(N+1)/2 setups; whether a resize also frees the ITS device is the chip's (up to 6.15).
//!
//! # What is modelled
//! - One host setup or release of a vector, and the trigger's move of a guest's mask or
//!   unmask (`Host::retrigger`) and, on ARM, KVM's VMOVI for a guest's MOVI (`Host::movi`),
//!   dispatched to the chip; the IRTE writes (x86) and ITS
//!   round trips (ARM) it made, for the provisioning counters.
//!
//! # What is not modelled (and why)
//! - IMS on ARM: the ITS MSI parent sets no `MSI_FLAG_PCI_IMS`, so no IMS domain exists
//!   there; validation refuses the IMS modes on ARM.
//!
//! # Parameters and their sources
//! None of its own: the chip's (docs/sources.md#irte-update-cost, docs/sources.md#its-costs).

use sim::{Metrics, SimTime};

use super::super::super::chip::IrqChip;
use super::super::super::chip::arm::ArmChip;
use super::super::super::chip::x86::X86Chip;
use super::super::super::devices::Devices;
use super::Slot;
use crate::ids::QueueId;

/// The platform's chip, as provisioning uses it.
pub(super) enum Host<'a> {
    X86(&'a mut X86Chip),
    Arm(&'a mut ArmChip),
}

/// What one host step did.
#[derive(Debug, Clone, Copy)]
pub(super) struct HostDone {
    /// When its last lock hold or ITS command ended.
    pub done: SimTime,
    /// IRTE writes (x86).
    pub irte_writes: u32,
    /// ITS round trips and direct invalidations (ARM).
    pub its_commands: u32,
}

impl<'a> Host<'a> {
    pub fn of(chip: &'a mut IrqChip) -> Host<'a> {
        match chip {
            IrqChip::X86(chip) => Host::X86(chip),
            IrqChip::Arm(chip) => Host::Arm(chip),
        }
    }

    /// VFIO sets up `slot`'s vector at `now`; `None` when a resource ran out (counted).
    pub fn setup(&mut self, now: SimTime, slot: &Slot, devices: &mut Devices, m: &mut Metrics) -> Option<HostDone> {
        match self {
            Host::X86(chip) => {
                let step = chip.vfio_setup(now, slot.target, devices, m);
                chip.take_domain_warnings(now, devices, m);
                step.map(|s| HostDone { done: s.done, irte_writes: s.irte_writes, its_commands: 0 })
            }
            Host::Arm(chip) => {
                let step = chip.vfio_setup(now, slot.target, devices, m)?;
                Some(HostDone { done: step.done, irte_writes: 0, its_commands: step.commands })
            }
        }
    }

    /// VFIO releases `queue`'s vector at `now`.
    pub fn release(&mut self, now: SimTime, queue: QueueId, devices: &Devices, m: &mut Metrics) -> HostDone {
        let source = devices.source(queue);
        match self {
            Host::X86(chip) => {
                let step = chip.vfio_release(now, queue, source, m);
                HostDone { done: step.done, irte_writes: step.irte_writes, its_commands: 0 }
            }
            Host::Arm(chip) => {
                let step = chip.vfio_release(now, queue, source);
                HostDone { done: step.done, irte_writes: 0, its_commands: step.commands }
            }
        }
    }

    /// ARM: KVM moves `slot`'s forwarded vLPI to the vPE of its (new) vCPU, as the guest's
    /// MOVI asked (`ArmChip::vfio_movi`). Affinity changes are validated onto x86 or ARM;
    /// on x86 they take the masking path, never this one.
    pub fn movi(&mut self, now: SimTime, slot: &Slot, devices: &Devices) -> HostDone {
        let source = devices.source(slot.target.queue);
        match self {
            Host::X86(_) => unreachable!("an x86 guest moves a vector by rewriting its MSI-X entry"),
            Host::Arm(chip) => {
                let vpe = slot.target.vpe.expect("ARM guests have vPEs");
                let step = chip.vfio_movi(now, slot.target.queue, source, vpe, slot.target.vector);
                HostDone { done: step.done, irte_writes: 0, its_commands: step.commands }
            }
        }
    }

    /// The guest masked (`posted: false`) or unmasked `slot`'s set-up vector: QEMU moves
    /// VFIO's trigger to its eventfd or back to KVM's irqfd; on x86 irq-bypass rewrites the
    /// IRTE (remapped, or posted again), on ARM it unforwards the vLPI or forwards it again
    /// on the ITS (`ArmChip::vfio_retrigger`).
    pub fn retrigger(
        &mut self,
        now: SimTime,
        slot: &Slot,
        posted: bool,
        devices: &Devices,
        m: &mut Metrics,
    ) -> HostDone {
        let source = devices.source(slot.target.queue);
        match self {
            Host::X86(chip) => {
                let step = chip.vfio_bypass(now, slot.target, source, posted, m);
                HostDone { done: step.done, irte_writes: step.irte_writes, its_commands: 0 }
            }
            Host::Arm(chip) => {
                let vpe = posted.then(|| (slot.target.vpe.expect("ARM guests have vPEs"), slot.target.vector));
                let step = chip.vfio_retrigger(now, slot.target.queue, source, vpe);
                HostDone { done: step.done, irte_writes: 0, its_commands: step.commands }
            }
        }
    }
}
