//! The x86 interrupt chip: the Linux vector domain (matrix allocator, per-CPU vector
//! tables, moves, hotplug) and the optional VT-d remapping unit. It sets up a device's
//! interrupts the way Linux does, translates MSI writes into a [`Route`], accepts interrupts
//! at a CPU's LAPIC, and retargets interrupts when the control plane moves them.

mod vfio;

use sim::{EventQueue, Metrics, SimDuration, SimTime};

use super::super::devices::{Devices, HostHandler, MsiWrite};
use super::super::guest::GuestVector;
use super::super::metrics::X86Ids;
use super::super::params::{DeviceParams, IrqMode, PlatformParams, spread_mask};
use super::super::route::{Accept, Route};
use super::super::{Event, ResourceUse};
use crate::ids::{CpuId, DeviceId, QueueId, Vector};
use crate::iommu::posted::Postability;
use crate::iommu::remap::{
    CacheOutcome, FaultDisposition, InterruptMessage, IommuId, IrteEntry, PiDescId, RemapRequest, RemapTarget,
    RemapUnit, SourceQualifier, SourceValidation, irte_index,
};
use crate::pci::store::{MSI_VECTORS_MAX, StoreKind};
use crate::x86::msi::{self, MsiMessage};
use crate::x86::vector_matrix::{
    Activation, CpuSet, DomainWarning, IrqId, MatrixError, MatrixParams, NodeId, VectorDomain,
};

/// No handler registered on a vector.
const NO_QUEUE: u32 = u32::MAX;

/// A queue's interrupt as the chip knows it.
#[derive(Debug, Clone, Copy, Default)]
struct QueueIrq {
    /// The interrupt in the vector domain (`None` when allocation failed).
    irq: Option<IrqId>,
    /// The IRTE index (with remapping).
    irte: Option<u32>,
    /// The handle and subhandle the store entry carries (with remapping).
    irte_message: Option<(u16, Option<u16>)>,
    /// Where its interrupt goes now (`None`: not started or shut down).
    target: Option<(CpuId, Vector)>,
    /// Its old vector is on a CPU's cleanup list (the kernel clears `move_in_progress`).
    cleanup_scheduled: bool,
    /// The host interrupt VFIO requested for it, when a guest's provisioning set it up
    /// in time (`vfio::X86Chip::vfio_setup`).
    vfio_irq: Option<IrqId>,
}

/// A CPU's list of old vectors to free (the kernel's per-CPU `vector_cleanup`).
#[derive(Debug, Clone, Default)]
struct CpuCleanup {
    /// Each old vector's interrupt and when its move is done (from then on it may be freed).
    irqs: Vec<(IrqId, SimTime)>,
    /// When the scheduled cleanup (IPI or timer) runs; an earlier event is stale.
    armed_at: Option<SimTime>,
    /// Up to 6.5: the cleanup IPI found a vector still pending and re-sent itself; it runs
    /// again when the CPU has handled the interrupt it was waiting behind.
    retry_after_handler: bool,
}

impl CpuCleanup {
    /// Makes sure a cleanup runs at `at` (or earlier); returns the time to schedule, if new.
    fn arm(&mut self, at: SimTime) -> Option<SimTime> {
        match self.armed_at {
            Some(armed) if armed <= at => None,
            _ => {
                self.armed_at = Some(at);
                Some(at)
            }
        }
    }
}

/// What a retarget did to a queue's interrupt.
#[derive(Debug, Clone, Copy)]
pub(in crate::platform) enum Retarget {
    /// Its vector did not change.
    Unchanged,
    /// It now goes elsewhere: the store entry must carry this message.
    Moved { address: u64, data: u32 },
    /// Shut down (no online CPU in its mask): the entry must be masked.
    ShutDown,
}

/// The x86 vector domain and remapping unit.
#[derive(Debug, Clone)]
pub(in crate::platform) struct X86Chip {
    domain: VectorDomain,
    remap: Option<RemapUnit>,
    /// The queue of each domain interrupt, indexed by `IrqId`.
    irq_queue: Vec<QueueId>,
    queues: Vec<QueueIrq>,
    /// The handler registered on each vector of each CPU, as a queue id.
    vector_queue: Vec<[u32; 256]>,
    /// Device vectors each CPU could hold at boot (the per-CPU limit).
    vector_capacity: Vec<u32>,
    /// Each CPU's old vectors waiting to be freed.
    cleanup: Vec<CpuCleanup>,
    /// `Some(jiffy)` from 6.6 (the cleanup timer), `None` before (the cleanup IPI).
    cleanup_tick: Option<SimDuration>,
    ids: X86Ids,
}

pub(in crate::platform) fn cpu_set(cpus: &[CpuId]) -> CpuSet {
    cpus.iter().copied().collect()
}

impl X86Chip {
    pub fn new(params: &PlatformParams, ids: X86Ids) -> X86Chip {
        let nodes: Vec<CpuSet> = params.node_cpus().iter().map(|n| cpu_set(n)).collect();
        let matrix_params = MatrixParams {
            cpu_count: params.cpu_count,
            era: params.kernel.era(),
            legacy_pic: params.kernel.legacy_pic,
            ia32_emulation: params.kernel.ia32_emulation,
        };
        let domain = VectorDomain::new(matrix_params, nodes);
        let vector_capacity = (0..params.cpu_count)
            .map(|c| domain.matrix().cpumap(CpuId(c)).expect("every CPU has a cpumap").available())
            .collect();
        X86Chip {
            domain,
            remap: params.remapping.as_ref().map(|r| RemapUnit::new(r.remap).expect("validated remapping parameters")),
            irq_queue: Vec::new(),
            queues: Vec::new(),
            vector_queue: vec![[NO_QUEUE; 256]; params.cpu_count as usize],
            vector_capacity,
            cleanup: vec![CpuCleanup::default(); params.cpu_count as usize],
            cleanup_tick: params
                .kernel
                .version
                .vector_cleanup_by_timer()
                .then(|| SimDuration::from_ps(sim::PS_PER_S / u64::from(params.kernel.hz))),
            ids,
        }
    }

    /// The vector domain (matrix allocator and per-interrupt state).
    pub fn domain(&self) -> &VectorDomain {
        &self.domain
    }

    /// The vector domain's invariants (matrix bitmaps and counts against the interrupts'
    /// state) and the remapping unit's (IRTE blocks and bitmaps, entry cache, fault records,
    /// counters, the lock and its pending effects).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.domain.check_invariants().map_err(|e| format!("vector domain: {e}"))?;
        if let Some(unit) = &self.remap {
            unit.check_invariants().map_err(|e| format!("remapping unit: {e}"))?;
        }
        Ok(())
    }

    /// Device vectors `cpu` could hold at boot.
    pub fn vector_capacity(&self, cpu: CpuId) -> u32 {
        self.vector_capacity[cpu.0 as usize]
    }

    /// Where a queue's interrupt goes now.
    pub fn target(&self, queue: QueueId) -> Option<(CpuId, Vector)> {
        self.queues[queue.0 as usize].target
    }

    fn grow(&mut self, devices: &Devices) {
        self.queues.resize(devices.queue_count(), QueueIrq::default());
    }

    /// A host device: every interrupt allocated (reserved) before any is activated, as
    /// `pci_alloc_irq_vectors` does, then IRTEs, then `request_irq` activates each.
    pub fn add_host_device(
        &mut self,
        device: DeviceId,
        dp: &DeviceParams,
        seed: u64,
        devices: &mut Devices,
        m: &mut Metrics,
    ) {
        assert!(!dp.affinity.is_empty() && dp.store.entries_max().is_none_or(|max| dp.queue_count <= max));
        // Multi-vector MSI without remapping: one vector, shared by every queue.
        let shared = dp.store == StoreKind::Msi && dp.queue_count > 1 && self.remap.is_none();
        if shared {
            m.fail(self.ids.multi_msi_fallback, SimTime::ZERO, || {
                format!(
                    "{}: {} queues share one MSI vector (multi-MSI needs interrupt remapping)",
                    dp.name, dp.queue_count
                )
            });
        }
        let interrupts = if shared { 1 } else { dp.queue_count };
        assert!(dp.store != StoreKind::Msi || interrupts <= MSI_VECTORS_MAX);
        let first_queue = devices.push(device, dp, interrupts, seed);
        self.grow(devices);
        for q in 0..interrupts {
            if !devices.take_ims_slot(dp, m) {
                continue;
            }
            let mask = cpu_set(&spread_mask(&dp.affinity, q, interrupts));
            let allocated = match dp.irq_mode {
                IrqMode::Managed => self.domain.alloc_irq_managed(mask),
                IrqMode::NonManaged => self.domain.alloc_irq(mask, dp.numa_node.map(NodeId)),
            };
            match allocated {
                Ok(id) => {
                    assert_eq!(id.0 as usize, self.irq_queue.len(), "interrupts are allocated in queue order");
                    self.irq_queue.push(QueueId(first_queue + q));
                    self.queues[(first_queue + q) as usize].irq = Some(id);
                }
                Err(MatrixError::NoSpace) => m.fail(self.ids.setup_reserve_fail, SimTime::ZERO, || {
                    format!(
                        "{} queue {q}: managed interrupt refused: a CPU of its mask has no free vector (-28)",
                        dp.name
                    )
                }),
                Err(e) => panic!("allocating a validated interrupt failed: {e}"),
            }
        }
        self.alloc_irtes(first_queue as usize, dp, m);
        for index in first_queue as usize..self.queues.len() {
            let Some(irq) = self.queues[index].irq else { continue };
            if self.remap.is_some() && self.queues[index].irte.is_none() {
                continue;
            }
            self.activate(QueueId(index as u32), irq, dp, devices, m);
        }
    }

    /// Allocates IRTEs for a new device's interrupts, as `intel_irq_remapping_alloc` does at
    /// allocation time: one naturally aligned power-of-two block for multi-vector MSI (the
    /// store carries one handle and consecutive subhandles), one entry per vector otherwise.
    fn alloc_irtes(&mut self, first_queue: usize, dp: &DeviceParams, m: &mut Metrics) {
        let Some(unit) = self.remap.as_mut() else { return };
        let table = unit.table_mut(IommuId(dp.iommu_unit));
        let with_irq: Vec<usize> = (first_queue..self.queues.len()).filter(|&i| self.queues[i].irq.is_some()).collect();
        if dp.store == StoreKind::Msi && !with_irq.is_empty() {
            match table.alloc_block(with_irq.len() as u32) {
                Ok(block) => {
                    for (sub, &i) in with_irq.iter().enumerate() {
                        self.queues[i].irte = Some(block.base + sub as u32);
                        self.queues[i].irte_message = Some((block.base as u16, Some(sub as u16)));
                    }
                }
                Err(_) => {
                    m.add(self.ids.setup_irte_fail, with_irq.len() as u64);
                    m.note(self.ids.setup_irte_fail, SimTime::ZERO, || {
                        format!(
                            "{}: no free block of {} IRTEs in remapping unit {}",
                            dp.name,
                            with_irq.len(),
                            dp.iommu_unit
                        )
                    });
                }
            }
            return;
        }
        for i in with_irq {
            match table.alloc_block(1) {
                Ok(block) => {
                    self.queues[i].irte = Some(block.base);
                    self.queues[i].irte_message = Some((block.base as u16, None));
                }
                Err(_) => m.fail(self.ids.setup_irte_fail, SimTime::ZERO, || {
                    format!("{} queue {}: no free IRTE in remapping unit {}", dp.name, i - first_queue, dp.iommu_unit)
                }),
            }
        }
    }

    /// Activates a queue's interrupt and programs its route and store entry.
    fn activate(&mut self, queue: QueueId, irq: IrqId, dp: &DeviceParams, devices: &mut Devices, m: &mut Metrics) {
        match self.domain.activate(irq).expect("activating an allocated interrupt") {
            // A broken affinity is counted from the domain's warning.
            Activation::Assigned { cpu, vector, .. } => {
                let (address, data, _) =
                    self.program(queue, cpu, vector, (dp.requester_id, dp.pasid), dp.iommu_unit, None, m);
                devices.write_message(queue, address, data);
                devices.unmask(queue);
            }
            Activation::NoSpace => m.fail(self.ids.setup_vector_fail, SimTime::ZERO, || {
                format!("{}: request_irq: no free vector on any online CPU (-28)", devices.label(queue))
            }),
            Activation::ManagedShutdown => m.fail(self.ids.managed_shutdown, SimTime::ZERO, || {
                format!("{}: managed interrupt shut down: no online CPU in its mask", devices.label(queue))
            }),
        }
    }

    /// A device assigned to a guest: its queues and store, no interrupt yet (the guest's
    /// provisioning asks for them, [`Self::assign`]). Returns the first queue.
    pub fn add_assigned_device(
        &mut self,
        device: DeviceId,
        dp: &DeviceParams,
        seed: u64,
        devices: &mut Devices,
    ) -> u32 {
        let first_queue = devices.push(device, dp, dp.queue_count, seed);
        self.grow(devices);
        first_queue
    }

    /// VFIO programs an assigned queue for guest `vector` on `vcpu` (on `pcpu`): a host vector
    /// (VFIO still `request_irq()`s one before irq-bypass switches the IRTE to posted mode;
    /// docs/sources.md#vfio-host-vector, unverified) and an IRTE that posts to the vCPU's
    /// descriptor; a non-postable one, or any without APICv (`posting` false: KVM's
    /// irq-bypass posts only with APICv), stays remapped to the host vector and VFIO
    /// forwards it.
    pub fn assign(&mut self, target: GuestVector, posting: bool, devices: &mut Devices, m: &mut Metrics) {
        let GuestVector { queue: queue_id, vcpu, vector, pcpu, .. } = target;
        let source = devices.source(queue_id);
        // An IMS-backed function's interrupt takes a slot of its device's IMS first.
        if !devices.take_device_ims_slot(devices.device_of(queue_id), SimTime::ZERO, m) {
            return;
        }
        let Some(host) = self.vfio_host_vector(queue_id, pcpu, m) else { return };
        let unit = self.remap.as_mut().expect("guests need interrupt remapping");
        let table = unit.table_mut(IommuId(source.iommu_unit));
        let Ok(block) = table.alloc_block(1) else {
            m.fail(self.ids.setup_irte_fail, SimTime::ZERO, || {
                format!("{}: no free IRTE in remapping unit {}", devices.label(queue_id), source.iommu_unit)
            });
            return;
        };
        let posted = posting && matches!(source.guest_msi.postability(), Postability::Posted);
        let entry = if posted {
            IrteEntry::posted(PiDescId(vcpu), vector, false)
        } else {
            // Not postable: the IRTE stays remapped to VFIO's host vector.
            IrteEntry::remapped(host.0, host.1)
        };
        let sid = SourceValidation::RequesterId { sid: source.requester_id, sq: SourceQualifier::All16 };
        table.set_entry(block.base, entry.with_source(sid).with_pasid(source.pasid)).expect("an allocated IRTE");
        self.bind_assigned(target, block.base, posted, host, devices);
        devices.unmask(queue_id);
    }

    /// Points an assigned queue at IRTE `irte` and its target: the vCPU's pCPU and guest
    /// vector when `posted`, else VFIO's host vector `host`, whose handler forwards to the
    /// vCPU; the queue's store entry gets the remappable message of the IRTE (still masked).
    fn bind_assigned(
        &mut self,
        target: GuestVector,
        irte: u32,
        posted: bool,
        host: (CpuId, Vector),
        devices: &mut Devices,
    ) {
        let GuestVector { queue: queue_id, vcpu, vector, pcpu, .. } = target;
        let guest = (pcpu, vector);
        let (address, data) = msi::compose_remappable(irte as u16);
        let queue = &mut self.queues[queue_id.0 as usize];
        queue.irte = Some(irte);
        if posted {
            queue.target = Some(guest);
        } else {
            queue.target = Some(host);
            devices.set_host_handler(queue_id, HostHandler::VfioForward { vcpu, vector: guest.1 });
            self.vector_queue[host.0.0 as usize][usize::from(host.1.0)] = queue_id.0;
        }
        devices.write_message(queue_id, address, data);
    }

    /// The host vector VFIO requests for an assigned queue (non-managed, on the vCPU's pCPU).
    fn vfio_host_vector(&mut self, queue: QueueId, pcpu: CpuId, m: &mut Metrics) -> Option<(CpuId, Vector)> {
        let fail = |m: &mut Metrics, ids: &X86Ids| {
            m.fail(ids.setup_vector_fail, SimTime::ZERO, || {
                format!("VFIO host vector for queue id {}: no free vector on CPU {} (-28)", queue.0, pcpu.0)
            });
        };
        let Ok(irq) = self.domain.alloc_irq(cpu_set(&[pcpu]), None) else {
            fail(m, &self.ids);
            return None;
        };
        self.irq_queue.push(queue);
        match self.domain.activate(irq).expect("activating an allocated interrupt") {
            // A broken affinity is counted from the domain's warning.
            Activation::Assigned { cpu, vector, .. } => Some((cpu, vector)),
            Activation::NoSpace | Activation::ManagedShutdown => {
                fail(m, &self.ids);
                None
            }
        }
    }

    /// Points a queue's interrupt at (cpu, vector): the IRTE with remapping (at `timed`, an
    /// update on the global lock; at setup, written directly), the message without; registers
    /// the handler on the vector. Returns the message the store entry must carry.
    #[allow(clippy::too_many_arguments)] // the route and its source identity, all needed
    fn program(
        &mut self,
        queue_id: QueueId,
        cpu: CpuId,
        vector: Vector,
        (requester_id, pasid): (u16, Option<u32>),
        iommu_unit: u16,
        timed: Option<SimTime>,
        m: &mut Metrics,
    ) -> (u64, u32, Option<SimTime>) {
        let queue = &mut self.queues[queue_id.0 as usize];
        queue.target = Some((cpu, vector));
        self.vector_queue[cpu.0 as usize][usize::from(vector.0)] = queue_id.0;
        let iommu = IommuId(iommu_unit);
        let mut done = None;
        let (address, data) = match (self.remap.as_mut(), queue.irte, queue.irte_message) {
            (Some(unit), Some(index), Some((handle, subhandle))) => {
                // Linux's set_msi_sid: verify the full requester id (SVT=1, SQ=0).
                let source = SourceValidation::RequesterId { sid: requester_id, sq: SourceQualifier::All16 };
                let entry = IrteEntry::remapped(cpu, vector).with_source(source).with_pasid(pasid);
                match timed {
                    None => unit.table_mut(iommu).set_entry(index, entry).expect("an allocated IRTE"),
                    Some(now) => {
                        let timing = unit.request_update(now, iommu, index, entry).expect("an allocated IRTE");
                        m.add(self.ids.irte_updates, 1);
                        m.record(self.ids.irte_lock_wait, timing.lock_wait.as_ps());
                        m.record(self.ids.irte_update, timing.done.since(now).as_ps());
                        done = Some(timing.done);
                    }
                }
                match subhandle {
                    Some(sub) => msi::compose_remappable_subhandle(handle, sub),
                    None => msi::compose_remappable(handle),
                }
            }
            _ => msi::compose_compat(
                u8::try_from(cpu.0).expect("validation keeps CPUs below 256 without remapping"),
                vector.0,
            ),
        };
        (address, data, done)
    }

    /// Counts the failures the domain warned about since the last call, each with its
    /// kernel line (`vector.c`, `cpuhotplug.c`) and the queue it hit.
    pub fn take_domain_warnings(&mut self, now: SimTime, devices: &Devices, m: &mut Metrics) {
        let ids = self.ids;
        for warning in self.domain.take_warnings() {
            let label = |irq: IrqId| devices.label(self.irq_queue[irq.0 as usize]);
            match warning {
                DomainWarning::ReservationExceedsAvailable => m.add(ids.reservation_exceeds, 1),
                DomainWarning::AffinityBroken { irq } => m.fail(ids.affinity_broken, now, || {
                    format!("irq {}: Affinity broken due to vector space exhaustion. [{}]", irq.0, label(irq))
                }),
                DomainWarning::NoLongerAffine { irq, cpu } => m.fail(ids.no_longer_affine, now, || {
                    format!("IRQ {}: no longer affine to CPU{} [{}]", irq.0, cpu.0, label(irq))
                }),
                DomainWarning::SetAffinityFailed { irq, error } => m.fail(ids.migration_failed, now, || {
                    format!("IRQ{}: set affinity failed({}). [{}]", irq.0, errno(error), label(irq))
                }),
                // Counted where the outcome is handled (activation).
                DomainWarning::ManagedStartupNoVector { .. } | DomainWarning::ReservedExceedsAvailable { .. } => {}
            }
        }
    }

    /// The queue whose handler is registered on `vector` of `cpu`, if any.
    pub fn queue_at(&self, cpu: CpuId, vector: Vector) -> Option<QueueId> {
        let queue = *self.vector_queue.get(cpu.0 as usize)?.get(usize::from(vector.0))?;
        (queue != NO_QUEUE).then_some(QueueId(queue))
    }

    /// Prefetches the handler's slot in `cpu`'s vector table (an interrupt is due there on
    /// `vector`).
    #[inline(always)]
    pub fn prefetch_handler(&self, cpu: CpuId, vector: Vector) {
        if let Some(table) = self.vector_queue.get(cpu.0 as usize) {
            prefetch_index::prefetch_index(table, usize::from(vector.0));
        }
    }

    /// Prefetches the IRTE that translating `write` will read (with remapping, for a
    /// remappable-format message): at a million queues a cache miss on which the
    /// translation would wait.
    #[inline(always)]
    pub fn prefetch_translation(&self, write: &MsiWrite) {
        if let (Some(unit), MsiMessage::Remappable { handle, subhandle }) =
            (self.remap.as_ref(), msi::decode(write.address, write.data))
            && usize::from(write.iommu_unit) < usize::from(unit.params().iommu_count)
        {
            unit.table(IommuId(write.iommu_unit)).prefetch(irte_index(handle, subhandle));
        }
    }

    /// An MSI write reaches the chip: decoded straight to a LAPIC without remapping, or looked
    /// up in the remapping unit (which may block it with a fault).
    #[inline]
    pub fn translate(&mut self, now: SimTime, write: MsiWrite, m: &mut Metrics) -> Route {
        let message = msi::decode(write.address, write.data);
        let Some(unit) = self.remap.as_mut() else {
            return match message {
                MsiMessage::Compat { dest_apic_id, vector } => {
                    Route::Lapic { cpu: CpuId(u32::from(dest_apic_id)), vector: Vector(vector) }
                }
                // Without a remapping unit a remappable-format write has no meaning.
                MsiMessage::Remappable { .. } | MsiMessage::NotInterrupt => Route::Lost(self.ids.lost_not_interrupt),
            };
        };
        let message = match message {
            MsiMessage::NotInterrupt => return Route::Lost(self.ids.lost_not_interrupt),
            MsiMessage::Compat { dest_apic_id, vector } => {
                InterruptMessage::Compatibility { dest_apic_id, vector: Vector(vector) }
            }
            MsiMessage::Remappable { handle, subhandle } => {
                InterruptMessage::Remappable { handle, subhandle, reserved_bits_set: false }
            }
        };
        let iommu = IommuId(write.iommu_unit);
        let index = match message {
            InterruptMessage::Remappable { handle, subhandle, .. } => irte_index(handle, subhandle),
            InterruptMessage::Compatibility { .. } => 0,
        };
        let translation =
            unit.translate(now, iommu, &RemapRequest { requester_id: write.requester_id, message, pasid: write.pasid });
        m.record(self.ids.remap, translation.latency.as_ps());
        match translation.cache {
            CacheOutcome::Hit => m.add(self.ids.cache_hit, 1),
            CacheOutcome::Miss => m.add(self.ids.cache_miss, 1),
            CacheOutcome::NotLooked => {}
        }
        let after = translation.latency;
        match translation.result {
            Ok(RemapTarget::Remapped { dest, vector } | RemapTarget::Compatibility { dest, vector }) => {
                // The handler's slot in the CPU's vector table, prefetched: the delivery
                // reads it one lookup later (`accept`), and there the interrupt waits on it;
                // at 8,192 CPUs the tables are 8 MiB and the read a cache miss.
                self.prefetch_handler(dest, vector);
                Route::HostVector { cpu: dest, vector, after }
            }
            Ok(RemapTarget::Posted { descriptor, vector, urgent }) => {
                Route::PostedVcpu { vcpu: descriptor.0, vector, urgent, after }
            }
            Err(fault) => {
                self.record_fault(now, iommu, translation.fault, m);
                let counter = self.ids.lost_remap[fault.index()];
                let rid = write.requester_id;
                m.note(counter, now, || {
                    format!(
                        "DMAR: [INTR-REMAP] Request device [{:02x}:{:02x}.{}] fault index {index:#x} [fault reason {:#04x}] {}",
                        rid >> 8,
                        (rid >> 3) & 0x1f,
                        rid & 7,
                        fault.code(),
                        fault.reason()
                    )
                });
                Route::Lost(counter)
            }
        }
    }

    /// What became of a blocked request's fault record: stored (and, when that raised the
    /// fault event, drained by the kernel's `dmar_fault()` with its log rate limit), lost to
    /// an overflow, or not recorded (FPD).
    fn record_fault(&mut self, now: SimTime, iommu: IommuId, fault: Option<FaultDisposition>, m: &mut Metrics) {
        let unit = self.remap.as_mut().expect("faults come from the remapping unit");
        match fault {
            Some(FaultDisposition::Recorded { raise_fault_event }) => {
                m.add(self.ids.fault_recorded, 1);
                if raise_fault_event {
                    let report = unit.service_faults(now, iommu);
                    let logged = u64::from(report.status_logged) + u64::from(report.records_logged);
                    m.add(self.ids.fault_logged, logged);
                    m.add(self.ids.fault_suppressed, u64::from(report.suppressed));
                }
            }
            Some(FaultDisposition::LostOverflow) => m.add(self.ids.fault_overflow, 1),
            Some(FaultDisposition::NotRecordedFpd) => m.add(self.ids.fault_fpd, 1),
            Some(FaultDisposition::Collapsed) | None => {}
        }
    }

    /// An interrupt reaches a CPU's LAPIC: the handler registered on the vector, unless the
    /// CPU went offline on the way (fixup_irqs re-sends it to the current target). Without
    /// remapping, the first interrupt on a moved interrupt's new vector schedules the old
    /// one's cleanup (`irq_complete_move`); with remapping the IRTE update already did.
    #[inline]
    pub fn accept(&mut self, cpu: CpuId, vector: Vector, q: &mut EventQueue<Event>, m: &mut Metrics) -> Accept {
        let Some(table) = self.vector_queue.get(cpu.0 as usize) else {
            return Accept::Lost(self.ids.lost_no_handler);
        };
        let queue = table[usize::from(vector.0)];
        if queue == NO_QUEUE {
            return Accept::Lost(self.ids.lost_no_handler);
        }
        // The queue's record is read only when needed (an offline CPU, a move pending): at a
        // million queues it is a cache miss per interrupt otherwise.
        if !self.domain.cpu_online_mask().contains(cpu) {
            return match self.queues[queue as usize].target {
                Some((cpu, vector)) if self.domain.cpu_online_mask().contains(cpu) => {
                    m.add(self.ids.retriggered, 1);
                    Accept::Retrigger { cpu, vector }
                }
                _ => Accept::Lost(self.ids.lost_no_handler),
            };
        }
        // The first interrupt on a moved vector completes the move: looked up only while the
        // domain has a move pending.
        if self.remap.is_none()
            && self.domain.moves_pending() > 0
            && self.queues[queue as usize].target == Some((cpu, vector))
            && !self.queues[queue as usize].cleanup_scheduled
        {
            self.schedule_cleanup(QueueId(queue), q.now(), q, m);
        }
        Accept::Handler(QueueId(queue))
    }

    /// Remapping units (IOMMUs): 0 without interrupt remapping.
    pub fn remap_unit_count(&self) -> u64 {
        self.remap.as_ref().map_or(0, |unit| u64::from(unit.params().iommu_count))
    }

    /// Where an interrupt of `queue` is handled when nothing on its way depends on state or
    /// time: without a remapping unit its compatibility-format message names a CPU and
    /// vector, the CPU is online and the vector's handler has no move pending (so
    /// [`X86Chip::accept`] would hand it to that handler and schedule nothing). Returns the
    /// CPU and the queue whose handler runs; `None` otherwise.
    pub fn fixed_route(&self, write: MsiWrite) -> Option<(CpuId, QueueId)> {
        if self.remap.is_some() {
            return None;
        }
        let MsiMessage::Compat { dest_apic_id, vector } = msi::decode(write.address, write.data) else { return None };
        let cpu = CpuId(u32::from(dest_apic_id));
        let handler = *self.vector_queue.get(cpu.0 as usize)?.get(usize::from(vector))?;
        if handler == NO_QUEUE || !self.domain.cpu_online_mask().contains(cpu) {
            return None;
        }
        let irq = self.queues[handler as usize].irq?;
        if self.domain.irq(irq).and_then(|d| d.prev_vector()).is_some() {
            return None;
        }
        Some((cpu, QueueId(handler)))
    }

    /// The move of `queue`'s interrupt is done at `at` (its IRTE points at the new vector,
    /// or the first interrupt arrived there): its old vector goes on the old CPU's cleanup
    /// list, freed by the era's mechanism from `at` on; at once when that CPU is offline.
    fn schedule_cleanup(&mut self, queue: QueueId, at: SimTime, q: &mut EventQueue<Event>, m: &mut Metrics) {
        let Some(irq) = self.queues[queue.0 as usize].irq else { return };
        let Some((old_cpu, _)) = self.domain.irq(irq).and_then(|d| d.prev_vector()) else { return };
        if !self.domain.cpu_online_mask().contains(old_cpu) {
            self.free_old_vector(irq, m);
            return;
        }
        self.queues[queue.0 as usize].cleanup_scheduled = true;
        let when = self.cleanup_time(at);
        let list = &mut self.cleanup[old_cpu.0 as usize];
        list.irqs.push((irq, at));
        if let Some(when) = list.arm(when) {
            q.schedule_at(when, Event::VectorCleanup { cpu: old_cpu });
        }
    }

    /// When a cleanup scheduled at `at` runs: the IPI at once (its delivery time is not
    /// modelled: microseconds against a jiffy), the timer at the next jiffy.
    fn cleanup_time(&self, at: SimTime) -> SimTime {
        match self.cleanup_tick {
            None => at,
            Some(tick) => next_tick(at, tick),
        }
    }

    /// The cleanup runs on `cpu` (`__vector_cleanup`): every listed old vector whose move is
    /// done is freed unless an interrupt still waits on it in the CPU's IRR or is on its way
    /// there (`pending(queue, old vector)`); those stay, and the cleanup is re-armed: the
    /// timer for the next jiffy (6.6+), or the IPI re-sent to itself, which that CPU takes
    /// after the pending interrupt (up to 6.5). Moves not done yet wait for their own time.
    pub fn run_cleanup(
        &mut self,
        cpu: CpuId,
        pending: impl Fn(QueueId, Vector) -> bool,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) {
        let now = q.now();
        let list = &mut self.cleanup[cpu.0 as usize];
        if list.armed_at != Some(now) {
            return; // superseded by an earlier run
        }
        list.armed_at = None;
        let entries = std::mem::take(&mut list.irqs);
        let mut kept = Vec::new();
        let mut next: Option<SimTime> = None;
        let mut earliest = |t: SimTime| next = Some(next.map_or(t, |n: SimTime| n.min(t)));
        for (irq, ready) in entries {
            let old = self.domain.irq(irq).and_then(|d| d.prev_vector());
            if ready > now {
                earliest(self.cleanup_time(ready));
                kept.push((irq, ready));
            } else if old.is_some_and(|(_, vector)| pending(self.irq_queue[irq.0 as usize], vector)) {
                kept.push((irq, ready));
                match self.cleanup_tick {
                    Some(tick) => earliest(next_tick(now, tick)),
                    None => self.cleanup[cpu.0 as usize].retry_after_handler = true,
                }
            } else {
                self.free_old_vector(irq, m);
            }
        }
        let list = &mut self.cleanup[cpu.0 as usize];
        list.irqs = kept;
        if let Some(at) = next.and_then(|t| list.arm(t)) {
            q.schedule_at(at, Event::VectorCleanup { cpu });
        }
    }

    /// A handler finished on `cpu`: a cleanup IPI that waited behind it runs now.
    #[inline]
    pub fn after_handler(&mut self, cpu: CpuId, q: &mut EventQueue<Event>) {
        let list = &mut self.cleanup[cpu.0 as usize];
        if list.retry_after_handler {
            list.retry_after_handler = false;
            if let Some(at) = list.arm(q.now()) {
                q.schedule_at(at, Event::VectorCleanup { cpu });
            }
        }
    }

    /// Frees a moved interrupt's old vector (`free_moved_vector`) and its handler slot.
    fn free_old_vector(&mut self, irq: IrqId, m: &mut Metrics) {
        let queue_id = self.irq_queue[irq.0 as usize];
        self.queues[queue_id.0 as usize].cleanup_scheduled = false;
        let Some((old_cpu, old_vector)) = self.domain.irq(irq).and_then(|d| d.prev_vector()) else {
            return;
        };
        let leaked_before = self.domain.leaked_vectors().len();
        self.domain.complete_move(irq).expect("completing a pending move");
        m.add(self.ids.moves_completed, 1);
        if self.domain.leaked_vectors().len() > leaked_before {
            m.add(self.ids.vector_leaked, 1);
        }
        let slot = &mut self.vector_queue[old_cpu.0 as usize][usize::from(old_vector.0)];
        if *slot == queue_id.0 {
            *slot = NO_QUEUE;
        }
    }

    /// Takes a CPU offline: managed interrupts shut down, others migrate. Returns the
    /// interrupts whose vector may have changed.
    pub fn offline(&mut self, now: SimTime, cpu: CpuId, m: &mut Metrics) -> Vec<IrqId> {
        match self.domain.offline(cpu) {
            Ok(report) => {
                // Broken affinities and failed migrations are counted from the domain's warnings.
                m.add(self.ids.migrated, report.migrated.len() as u64);
                for &irq in &report.shutdown {
                    m.fail(self.ids.managed_shutdown, now, || {
                        format!("IRQ {}: managed interrupt shut down: no online CPU left in its mask", irq.0)
                    });
                }
                report.migrated.iter().chain(&report.shutdown).copied().collect()
            }
            Err(error @ MatrixError::CannotUnplug { .. }) => {
                m.fail(self.ids.unplug_refused, now, || error.to_string());
                Vec::new()
            }
            Err(MatrixError::Busy) => {
                m.fail(self.ids.unplug_busy, now, || format!("CPU {}: unplug refused (-16)", cpu.0));
                Vec::new()
            }
            // Already offline (a scenario may take a CPU down twice): nothing to do.
            Err(MatrixError::Invalid | MatrixError::NoSpace) => Vec::new(),
        }
    }

    /// Brings a CPU back: managed interrupts whose mask it is in restart (returned).
    pub fn online(&mut self, cpu: CpuId, m: &mut Metrics) -> Vec<IrqId> {
        // An error means it is already online (a scenario may bring a CPU up twice).
        match self.domain.online(cpu) {
            Ok(restarted) => {
                m.add(self.ids.managed_restart, restarted.len() as u64);
                restarted
            }
            Err(_) => Vec::new(),
        }
    }

    /// Sets the affinity of every interrupt of the queues `queues` (one device's); returns
    /// the interrupts the domain accepted to move.
    pub fn set_affinity(&mut self, queues: std::ops::Range<u32>, cpus: &[CpuId], m: &mut Metrics) -> Vec<IrqId> {
        let mask = cpu_set(cpus);
        let irqs: Vec<IrqId> = queues.filter_map(|q| self.queues[q as usize].irq).collect();
        let mut moved = Vec::new();
        for irq in irqs {
            match self.domain.set_affinity(irq, mask.clone()) {
                Ok(()) => moved.push(irq),
                Err(_) => m.add(self.ids.affinity_refused, 1),
            }
        }
        moved
    }

    /// The queue of a domain interrupt.
    pub fn queue_of(&self, irq: IrqId) -> QueueId {
        self.irq_queue[irq.0 as usize]
    }

    /// Re-reads an interrupt's vector from the domain after an operation that may have moved,
    /// shut down or restarted it, and reprograms its route if it changed.
    pub fn retarget(&mut self, irq: IrqId, dp: &DeviceParams, q: &mut EventQueue<Event>, m: &mut Metrics) -> Retarget {
        let now = q.now();
        let queue = self.queue_of(irq);
        let now_at = self.domain.irq(irq).and_then(|d| d.vector());
        if now_at == self.queues[queue.0 as usize].target {
            return Retarget::Unchanged;
        }
        match now_at {
            Some((cpu, vector)) => {
                let (address, data, done) =
                    self.program(queue, cpu, vector, (dp.requester_id, dp.pasid), dp.iommu_unit, Some(now), m);
                // With remapping the move is done when the IRTE is (intel_ir_set_affinity).
                if let Some(done) = done {
                    self.schedule_cleanup(queue, done, q, m);
                }
                Retarget::Moved { address, data }
            }
            None => {
                self.queues[queue.0 as usize].target = None;
                Retarget::ShutDown
            }
        }
    }

    /// Use of the vector space and the IRTE tables against their limits. A CPU's device
    /// vectors are counted on the basis of its limit: what it could hand out at boot minus
    /// what it can hand out now (allocated and managed-reserved vectors), so the boot CPU's
    /// ISA vectors count in neither. The boot CPU, whose limit is lower with a legacy PIC,
    /// gets its own row when its limit differs.
    pub fn resources(&self) -> Vec<ResourceUse> {
        let matrix = self.domain.matrix();
        let used = |c: usize| {
            let now = matrix.cpumap(CpuId(c as u32)).expect("every CPU has a cpumap").available();
            self.vector_capacity[c].saturating_sub(now)
        };
        let limit = self.vector_capacity.iter().copied().max().unwrap_or(0);
        let boot_apart = self.vector_capacity.len() > 1 && self.vector_capacity[0] != limit;
        let first = usize::from(boot_apart);
        let mut out = Vec::new();
        if boot_apart {
            out.push(ResourceUse::over("x86.vectors_boot_cpu", self.vector_capacity[0], [used(0)]));
        }
        assert!(self.vector_capacity[first..].iter().all(|&c| c == limit), "only the boot CPU's device vectors differ");
        out.push(ResourceUse::over("x86.vectors_per_cpu", limit, (first..self.vector_capacity.len()).map(used)));
        out.push(ResourceUse::over(
            "x86.vector_reservations_global",
            matrix.available(None) + matrix.reserved(),
            [matrix.reserved()],
        ));
        if let Some(unit) = &self.remap {
            let units = unit.params().iommu_count;
            let capacity = unit.table(IommuId(0)).capacity();
            let used = (0..units).map(|i| unit.table(IommuId(i)).used());
            out.push(ResourceUse::over("iommu.irtes_per_iommu", capacity, used));
        }
        out
    }
}

/// The kernel's negative errno for a matrix error, as its log lines print it.
fn errno(error: MatrixError) -> i32 {
    match error {
        MatrixError::NoSpace | MatrixError::CannotUnplug { .. } => -28,
        MatrixError::Busy => -16,
        MatrixError::Invalid => -22,
    }
}

/// The first jiffy boundary strictly after `at` (`jiffies + 1`, ticks counted from 0).
fn next_tick(at: SimTime, tick: SimDuration) -> SimTime {
    SimTime::from_ps((at.as_ps() / tick.as_ps() + 1) * tick.as_ps())
}
