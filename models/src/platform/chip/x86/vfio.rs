//! VFIO's host side of one trapped MSI-X vector, timed on the global IRTE lock: what
//! `VFIO_DEVICE_SET_IRQS` makes the host do for a vector it enables or disables.
//!
//! # What is modelled
//! - Setup (`vfio_msi_set_vector_signal` with an eventfd): `request_irq` takes a host
//!   vector on the vCPU's pCPU from the vector matrix (non-managed); `alloc_irte` takes an
//!   IRTE under `irq_2_ir_lock`; activation writes it in remapped format (`modify_irte` and
//!   its `qi_flush_iec`); irq-bypass (`kvm_arch_irq_bypass_add_producer` →
//!   `vmx_pi_update_irte`) rewrites it in posted format when KVM can post the interrupt.
//!   The three lock holds are requested back to back at the step's time: each waits for
//!   the lock behind whatever else holds or waits for it.
//! - Release (`vfio_msi_set_vector_signal` with no eventfd, then the vectors' free): the
//!   bypass is removed (the IRTE rewritten in remapped format), the IRTE freed
//!   (`clear_entries` and its masked IEC flush) and the host vector freed.
//!
//! # What is not modelled (and why)
//! - The CPU time of `request_irq` and `free_irq` besides the lock: the caller charges it
//!   (a scenario cost) after the lock holds; the order changes no total, only where a
//!   concurrent request slots in on the lock.
//! - A host vector or IRTE that cannot be allocated leaves the vector without interrupts
//!   (counted, the kernel's -ENOSPC); VFIO would fail the ioctl and QEMU log it, the guest
//!   is not told (claim C15, option b).
//!
//! # Parameters and their sources
//! The lock holds are the remapping unit's (`RemapParams`: `irte_alloc`, `irte_write`,
//! `irte_write_posted`, `iec_invalidation`; no published figures,
//! docs/sources.md#irte-update-cost).

use sim::{Metrics, SimDuration, SimTime};

use super::super::super::devices::{Devices, Source};
use super::super::super::guest::GuestVector;
use super::{X86Chip, X86Ids, cpu_set};
use crate::ids::QueueId;
use crate::iommu::posted::Postability;
use crate::iommu::remap::{IommuId, IrteBlock, IrteEntry, PiDescId, SourceQualifier, SourceValidation, UpdateTiming};
use crate::x86::vector_matrix::Activation;

/// What one host step did: when its last lock hold ended, and how many IRTE writes it made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::platform) struct HostStep {
    /// The last lock hold's end (the step's start when it took no lock).
    pub done: SimTime,
    /// IRTE writes (`modify_irte` and the clear of a freed entry).
    pub irte_writes: u32,
}

impl X86Chip {
    /// Counts one timed IRTE operation in the chip's lock metrics. The step's operations are
    /// requested together, each behind the one before: its wait is counted from `ready`, the
    /// end of the previous one (or the step's start), so it is the wait for other holders;
    /// `earlier` adds a wait of the step not counted yet (its allocation's). Returns its end,
    /// the next one's `ready`.
    fn record_lock(
        ids: &X86Ids,
        ready: SimTime,
        earlier: SimDuration,
        timing: UpdateTiming,
        m: &mut Metrics,
    ) -> SimTime {
        m.add(ids.irte_updates, 1);
        m.record(ids.irte_lock_wait, (timing.start.since(ready) + earlier).as_ps());
        m.record(ids.irte_update, (timing.done.since(ready) + earlier).as_ps());
        timing.done
    }

    /// VFIO sets up `target`'s queue at `now` for its guest vector on its vCPU (running on
    /// its pCPU): host vector, IRTE, remapped then posted entry; the store entry gets the
    /// remappable message and stays masked (the caller unmasks it when the step is done).
    /// `None` when no host vector or IRTE was free (counted).
    pub fn vfio_setup(
        &mut self,
        now: SimTime,
        target: GuestVector,
        devices: &mut Devices,
        m: &mut Metrics,
    ) -> Option<HostStep> {
        let GuestVector { queue: queue_id, vcpu, vector, pcpu, .. } = target;
        let source = devices.source(queue_id);
        let no_vector = |m: &mut Metrics, ids: &X86Ids, devices: &Devices| {
            m.fail(ids.setup_vector_fail, now, || {
                format!("{}: VFIO request_irq: no free vector on CPU {} (-28)", devices.label(queue_id), pcpu.0)
            });
        };
        let Ok(irq) = self.domain.alloc_irq(cpu_set(&[pcpu]), None) else {
            no_vector(m, &self.ids, devices);
            return None;
        };
        self.irq_queue.push(queue_id);
        let host = match self.domain.activate(irq).expect("activating an allocated interrupt") {
            Activation::Assigned { cpu, vector, .. } => (cpu, vector),
            Activation::NoSpace | Activation::ManagedShutdown => {
                self.domain.free_irq(irq).expect("freeing an allocated interrupt");
                no_vector(m, &self.ids, devices);
                return None;
            }
        };
        let unit = self.remap.as_mut().expect("guests need interrupt remapping");
        let iommu = IommuId(source.iommu_unit);
        let alloc = unit.alloc_block(now, iommu, 1);
        // The allocation's hold is part of the step; its wait for other holders is counted
        // with the first write's (the allocation is not a modify_irte of its own).
        let (ready, alloc_wait) = alloc.timing.map_or((now, SimDuration::ZERO), |t| (t.done, t.lock_wait));
        let Ok(block) = alloc.result else {
            self.domain.deactivate(irq).expect("an allocated interrupt");
            self.domain.free_irq(irq).expect("an allocated interrupt");
            m.fail(self.ids.setup_irte_fail, now, || {
                format!("{}: no free IRTE in remapping unit {}", devices.label(queue_id), source.iommu_unit)
            });
            return None;
        };
        let sid = SourceValidation::RequesterId { sid: source.requester_id, sq: SourceQualifier::All16 };
        let remapped = IrteEntry::remapped(host.0, host.1).with_source(sid).with_pasid(source.pasid);
        let timing = unit.request_update(now, iommu, block.base, remapped).expect("an allocated IRTE");
        let mut done = Self::record_lock(&self.ids, ready, alloc_wait, timing, m);
        let posted = matches!(source.guest_msi.postability(), Postability::Posted);
        let unit = self.remap.as_mut().expect("guests need interrupt remapping");
        if posted {
            let entry = IrteEntry::posted(PiDescId(vcpu), vector, false).with_source(sid).with_pasid(source.pasid);
            let timing = unit.request_update(now, iommu, block.base, entry).expect("an allocated IRTE");
            done = Self::record_lock(&self.ids, done, SimDuration::ZERO, timing, m);
        }
        self.bind_assigned(target, block.base, posted, host, devices);
        self.queues[queue_id.0 as usize].vfio_irq = Some(irq);
        Some(HostStep { done, irte_writes: 1 + u32::from(posted) })
    }

    /// VFIO releases `queue`'s vector at `now`: the bypass removed (the posted IRTE
    /// rewritten in remapped format), the IRTE freed, the host vector freed. The queue no
    /// longer has a route.
    pub fn vfio_release(&mut self, now: SimTime, queue_id: QueueId, source: Source, m: &mut Metrics) -> HostStep {
        let queue = &mut self.queues[queue_id.0 as usize];
        let index = queue.irte.take().expect("a vector set up by VFIO has an IRTE");
        let irq = queue.vfio_irq.take().expect("a vector set up by VFIO has a host interrupt");
        queue.target = None;
        let host = self.domain.irq(irq).and_then(|d| d.vector()).expect("an active host interrupt");
        let unit = self.remap.as_mut().expect("guests need interrupt remapping");
        let iommu = IommuId(source.iommu_unit);
        let mut writes = 1;
        let mut ready = now;
        if matches!(source.guest_msi.postability(), Postability::Posted) {
            let sid = SourceValidation::RequesterId { sid: source.requester_id, sq: SourceQualifier::All16 };
            let entry = IrteEntry::remapped(host.0, host.1).with_source(sid).with_pasid(source.pasid);
            let timing = unit.request_update(now, iommu, index, entry).expect("an allocated IRTE");
            ready = Self::record_lock(&self.ids, ready, SimDuration::ZERO, timing, m);
            writes += 1;
        }
        let unit = self.remap.as_mut().expect("guests need interrupt remapping");
        let timing = unit.free_block(now, iommu, IrteBlock { base: index, mask: 0 }).expect("an allocated IRTE");
        debug_assert!(timing.start >= ready, "the free waits behind the bypass removal");
        self.domain.deactivate(irq).expect("an allocated interrupt");
        self.domain.free_irq(irq).expect("an allocated interrupt");
        let slot = &mut self.vector_queue[host.0.0 as usize][usize::from(host.1.0)];
        if *slot == queue_id.0 {
            *slot = super::NO_QUEUE;
        }
        HostStep { done: timing.done, irte_writes: writes }
    }

    /// The guest masked (`posted: false`) or unmasked a set-up vector: QEMU switches VFIO's
    /// trigger between its own eventfd and KVM's irqfd, so irq-bypass removes or restores the
    /// posted IRTE (one `modify_irte` and its flush; the host interrupt and the IRTE stay
    /// allocated). A vector KVM cannot post stays remapped: no write.
    pub fn vfio_bypass(
        &mut self,
        now: SimTime,
        target: GuestVector,
        source: Source,
        posted: bool,
        m: &mut Metrics,
    ) -> HostStep {
        let GuestVector { queue: queue_id, vcpu, vector, .. } = target;
        if !matches!(source.guest_msi.postability(), Postability::Posted) {
            return HostStep { done: now, irte_writes: 0 };
        }
        let queue = &self.queues[queue_id.0 as usize];
        let (Some(index), Some(irq)) = (queue.irte, queue.vfio_irq) else {
            return HostStep { done: now, irte_writes: 0 };
        };
        let host = self.domain.irq(irq).and_then(|d| d.vector()).expect("an active host interrupt");
        let sid = SourceValidation::RequesterId { sid: source.requester_id, sq: SourceQualifier::All16 };
        let entry =
            if posted { IrteEntry::posted(PiDescId(vcpu), vector, false) } else { IrteEntry::remapped(host.0, host.1) };
        let unit = self.remap.as_mut().expect("guests need interrupt remapping");
        let timing = unit
            .request_update(now, IommuId(source.iommu_unit), index, entry.with_source(sid).with_pasid(source.pasid))
            .expect("an allocated IRTE");
        let done = Self::record_lock(&self.ids, now, SimDuration::ZERO, timing, m);
        HostStep { done, irte_writes: 1 }
    }
}
