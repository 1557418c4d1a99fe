//! VFIO's host side of one trapped MSI-X vector on a GICv4 host, timed on the ITS command
//! queue: what `VFIO_DEVICE_SET_IRQS` makes the host do for a vector it enables or disables.
//!
//! # What is modelled
//! - Setup: when MSI-X is (re-)enabled and the function has no ITS device (a resize freed
//!   it, up to Linux 6.15), `its_pci_msi_prepare` → `its_create_device` again (LPI block
//!   sized from the MSI-X table, MAPD); then per vector the event (`its_irq_domain_alloc`), its activation
//!   (`its_irq_domain_activate`: MAPTI + SYNC to the vCPU's pCPU), the LPI enabled by
//!   `request_irq`'s startup (`its_unmask_irq`: INV + SYNC, or a direct invalidation), and
//!   irq-bypass forwarding it to the vCPU's vPE (`kvm_arch_irq_bypass_add_producer` →
//!   `kvm_vgic_v4_set_forwarding` → `its_map_vlpi`: DISCARD + SYNC, VMAPTI + VSYNC).
//! - Release: the forwarding removed (`kvm_vgic_v4_unset_forwarding` → `its_unmap_vlpi`:
//!   DISCARD, MAPTI back to the physical LPI, its invalidation), `free_irq`'s shutdown
//!   masking the LPI (`its_mask_irq`), and the event freed (`its_irq_domain_deactivate`:
//!   DISCARD). Up to Linux 6.15 `its_irq_domain_free` also frees the ITS device with its
//!   last event (its LPIs, MAPD V=0); from 6.16 the device lives as long as the per-device
//!   MSI-X domain (`its_msi_teardown`), so a resize keeps it mapped: no MAPD V=0 / V=1 pair,
//!   two ITS round trips fewer per resize (`platform.kernel`, docs/sources.md#arm-msi-parent).
//! - With dynamic MSI-X (Linux 7.3+, whose ITS MSI parent offers
//!   `MSI_FLAG_PCI_MSIX_ALLOC_DYN`) VFIO sets up each new vector on its own
//!   (`pci_msix_alloc_irq_at`): the same per-vector commands, no release, no resize.
//! - A guest's mask and unmask after setup (`vfio_retrigger`): QEMU moves VFIO's trigger
//!   to its own eventfd and back; the host removes the forwarding (`its_unmap_vlpi`) and
//!   restores it (`its_map_vlpi`), with `free_irq`'s mask and `request_irq`'s unmask of the
//!   physical LPI in each direction.
//! - A guest's MOVI after setup (`vfio_movi`): KVM's vgic-its moves the forwarded vLPI to
//!   the new vCPU's vPE (VMOVI + VSYNC).
//! - Each operation is submitted at the step's time and queues on the ITS lock behind the
//!   one before it (and behind anything else in the queue): the step ends when its last
//!   command's completion is observed.
//!
//! # What is not modelled (and why)
//! - When the ITS device is first created: the model maps it (MAPD) when the platform is
//!   built, before the run, on every release; from 6.16 Linux does it when the per-device
//!   MSI-X domain is created at the first enable, one round trip the model does not count.
//! - The CPU time of `request_irq` and `free_irq` besides the ITS: the caller charges it (a
//!   scenario cost), as on x86.
//! - VMAPP of the VM on the ITS at the first forwarding (`its_map_vm`, GICv4.0's lazy
//!   mapping): the model maps vPEs eagerly when the VM is created (`Its::create_vm`).
//!
//! # Parameters and their sources
//! The ITS command, SYNC and direct-invalidation costs (no published figures,
//! docs/sources.md#its-costs).

use sim::{Metrics, SimTime};

use super::super::super::devices::{Devices, Source};
use super::super::super::guest::GuestVector;
use super::{ArmChip, GITS_TRANSLATER_ADDRESS, QueueIntid};
use crate::arm::its::{CommandTiming, ItsDeviceId, ItsError, LPI_INTID_BASE, VintId, VpeId};
use crate::ids::{QueueId, Vector};

/// What one host step did on the ITS: when its last command completed, and how many
/// synchronous round trips (a command and its SYNC, or a direct invalidation) it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::platform) struct ItsStep {
    /// The last completion observed (the step's start when it issued nothing).
    pub done: SimTime,
    /// Round trips and direct invalidations.
    pub commands: u32,
}

impl ItsStep {
    fn add(&mut self, timing: CommandTiming) {
        self.done = self.done.max(timing.done);
        self.commands += timing.round_trips + timing.direct_invalidations;
    }
}

impl ArmChip {
    /// VFIO sets up `target`'s queue at `now` for its guest vector on a vCPU with a vPE
    /// (running on its pCPU): the ITS device if a resize freed it (up to 6.15), the event
    /// mapped to the pCPU and enabled, then forwarded to the vPE. The store entry gets
    /// GITS_TRANSLATER and the EventID and stays masked (the caller unmasks it when the step
    /// is done). `None` when no LPI or event was free (counted).
    pub fn vfio_setup(
        &mut self,
        now: SimTime,
        target: GuestVector,
        devices: &mut Devices,
        m: &mut Metrics,
    ) -> Option<ItsStep> {
        let GuestVector { queue: queue_id, vector, pcpu, vpe, .. } = target;
        let vpe = vpe.expect("ARM guests have vPEs");
        let source = devices.source(queue_id);
        let device = ItsDeviceId(u32::from(source.requester_id));
        let mut step = ItsStep { done: now, commands: 0 };
        let (lpi_fail, event_fail) = (self.ids.arm_lpi_exhausted, self.ids.arm_events_exhausted);
        let its = self.its_mut();
        let range = match its.alloc_events(device, 1) {
            Ok(range) => range,
            Err(ItsError::UnknownDevice(_)) => {
                // Up to 6.15 the resize freed the device with its last event: MSI-X enabled again.
                let table = devices.params_of(queue_id).queue_count;
                let created = match its.create_device(now, device, table) {
                    Ok(created) => created,
                    Err(error) => {
                        m.fail(lpi_fail, now, || {
                            format!(
                                "{}: its_msi_prepare: {error}: the vector gets no interrupt",
                                devices.label(queue_id)
                            )
                        });
                        return None;
                    }
                };
                step.add(created.timing);
                its.alloc_events(device, 1).expect("a new device has a free event")
            }
            Err(_) => {
                m.fail(event_fail, now, || {
                    format!("{}: no free event in its LPI block (-28)", devices.label(queue_id))
                });
                return None;
            }
        };
        step.add(its.activate_event(now, device, range.first, pcpu).expect("MAPTI of a new event"));
        step.add(its.unmask(now, device, range.first).expect("enabling a new LPI"));
        let vintid = VintId(LPI_INTID_BASE + u32::from(vector.0));
        step.add(its.forward_vlpi(now, device, range.first, vpe, vintid, true).expect("forwarding to a vPE"));
        self.queues[queue_id.0 as usize] = QueueIntid { interrupt: Some(range.first.0), target: Some((pcpu, vector)) };
        devices.write_message(queue_id, GITS_TRANSLATER_ADDRESS, range.first.0);
        Some(step)
    }

    /// The guest masked (`vpe: None`) or unmasked (`Some`: the vCPU's vPE, its guest vector)
    /// a set-up vector: QEMU moves VFIO's trigger to its own eventfd (`vfio_msix_vector_release`)
    /// or back to KVM's irqfd (`vfio_msix_vector_use`), and `vfio_msi_set_vector_signal` does
    /// `irq_bypass_unregister_producer`, `free_irq`, `request_irq` with the new trigger and
    /// `irq_bypass_register_producer`. On the mask: the forwarding removed
    /// (`kvm_vgic_v4_unset_forwarding` → `its_unmap_vlpi`: DISCARD, MAPTI, the invalidation),
    /// `free_irq`'s mask and `request_irq`'s unmask of the physical LPI (QEMU's eventfd has
    /// no irqfd: no forwarding). On the unmask: `free_irq`'s mask, `request_irq`'s unmask, and
    /// the forwarding again (`kvm_vgic_v4_set_forwarding` → `its_map_vlpi`: DISCARD, VMAPTI).
    /// The event stays allocated and mapped to its pCPU.
    pub fn vfio_retrigger(
        &mut self,
        now: SimTime,
        queue_id: QueueId,
        source: Source,
        vpe: Option<(VpeId, Vector)>,
    ) -> ItsStep {
        let device = ItsDeviceId(u32::from(source.requester_id));
        let queue = &self.queues[queue_id.0 as usize];
        let event = crate::arm::its::EventId(queue.interrupt.expect("a vector set up by VFIO has an event"));
        let its = self.its_mut();
        let mut step = ItsStep { done: now, commands: 0 };
        if vpe.is_none() {
            step.add(its.unforward_vlpi(now, device, event).expect("a forwarded event"));
        }
        step.add(its.mask(now, device, event).expect("an active event"));
        step.add(its.unmask(now, device, event).expect("an active event"));
        if let Some((vpe, vector)) = vpe {
            let vintid = VintId(LPI_INTID_BASE + u32::from(vector.0));
            step.add(its.forward_vlpi(now, device, event, vpe, vintid, true).expect("forwarding to a vPE"));
        }
        step
    }

    /// The guest moved `queue`'s LPI to another vCPU with a MOVI on its virtual ITS: KVM
    /// (`update_affinity` → `its_map_vlpi` of an already mapped vLPI → `its_vlpi_map`) sends
    /// VMOVI + VSYNC to point the event at `vpe`. The physical LPI's collection is unchanged.
    pub fn vfio_movi(
        &mut self,
        now: SimTime,
        queue_id: QueueId,
        source: Source,
        vpe: VpeId,
        vector: Vector,
    ) -> ItsStep {
        let device = ItsDeviceId(u32::from(source.requester_id));
        let queue = &self.queues[queue_id.0 as usize];
        let event = crate::arm::its::EventId(queue.interrupt.expect("a vector set up by VFIO has an event"));
        let vintid = VintId(LPI_INTID_BASE + u32::from(vector.0));
        let mut step = ItsStep { done: now, commands: 0 };
        step.add(self.its_mut().forward_vlpi(now, device, event, vpe, vintid, true).expect("a forwarded event"));
        step
    }

    /// VFIO releases `queue`'s vector at `now`: the forwarding removed, the LPI masked, the
    /// event freed (and, up to Linux 6.15, the ITS device with its last event). The queue no
    /// longer has a route.
    pub fn vfio_release(&mut self, now: SimTime, queue_id: QueueId, source: Source) -> ItsStep {
        let device = ItsDeviceId(u32::from(source.requester_id));
        let queue = &mut self.queues[queue_id.0 as usize];
        let event = crate::arm::its::EventId(queue.interrupt.take().expect("a vector set up by VFIO has an event"));
        queue.target = None;
        let keep = self.keep_its_device;
        let its = self.its_mut();
        let mut step = ItsStep { done: now, commands: 0 };
        step.add(its.unforward_vlpi(now, device, event).expect("a forwarded event"));
        step.add(its.mask(now, device, event).expect("an active event"));
        let freed = if keep {
            its.free_events_keep_device(now, device, event, 1)
        } else {
            its.free_events(now, device, event, 1)
        };
        step.add(freed.expect("an allocated event").timing);
        step
    }
}
