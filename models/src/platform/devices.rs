//! The devices: each function's queues (arrival process, handler-work stream), its message
//! store (MSI, MSI-X, IMS) with mask and pending bits, the IMS slot pools, and which host
//! handler serves each queue (the driver's, or VFIO's forward to a guest).
//!
//! A raise is the devices' stage: the store decides whether the message is sent now, held
//! in a pending bit or merged, and the MSI write leaves after the device's latency.

use std::collections::BTreeMap;

use sim::{EventQueue, Metrics, RngStream, SimTime, fnv1a64, fnv1a64_extend, fnv1a64_extend_u32};

use super::metrics::DeviceIds;
use super::params::{DeviceParams, GuestMsiParams, ImsPoolParams};
use super::route::{HandlerWork, Work, WorkKind};
use super::stats::LineRuns;
use super::{Event, ResourceUse};
use crate::ids::{DeviceId, QueueId, Vector};
use crate::pci::store::{MSI_VECTORS_MAX, MSIX_TABLE_ENTRIES_MAX, MessageStore, Raise, StoreKind};
use crate::workload::{ArrivalParams, Arrivals, Superposed};

/// Who handles a queue's interrupt when it reaches a host CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HostHandler {
    /// The device's driver.
    Driver,
    /// VFIO: an assigned device's interrupt that could not be posted; the host forwards it
    /// to this vCPU and guest vector (irqfd, KVM injection).
    VfioForward { vcpu: u32, vector: Vector },
}

/// What every interrupt of a queue reads: its device and store entry (at the raise), its
/// host handler and its handler-work random stream (when the handler starts, and the
/// handler again when it ends), and its host handler runs on its latest CPU (when the run
/// ends: [`LineRuns`], counted by `stats::RunCounts::record_in`), in one cache line. A
/// queue's other state lives in [`Devices`]' per-queue arrays, read only where it is used:
/// at a million queues each per-queue line an interrupt touches is a cache miss, so the
/// raise brings in the line its handler reads next and reads nothing else of the queue
/// (benches/runs/2026-11-30-scale-soa.md).
///
/// The line also holds a copy of its store entry's message and mask bit
/// ([`Devices::sync_entry`] keeps it equal to the store after every write, mask and
/// unmask): a raise on an unmasked entry of an enabled function, and the translation of its
/// write, read the queue's line instead of the store's (one cache miss fewer an interrupt
/// at a million queues). The store stays the authority: pending bits, a masked raise and
/// the function's enable bit are its.
#[derive(Debug, Clone)]
#[repr(align(64))]
struct Queue {
    device: DeviceId,
    entry: u32,
    service_rng: RngStream,
    /// The store entry's message and mask bit, copied.
    address: u64,
    data: u32,
    /// The host handler: the driver's ([`NO_VCPU`]), or VFIO's forward to this vCPU and
    /// guest vector (a [`HostHandler`] in 5 bytes, not 8, so that the runs fit the line).
    forward_vcpu: u32,
    forward_vector: Vector,
    masked: bool,
    /// Host handler runs on the latest CPU.
    runs: LineRuns,
}

/// [`Queue::forward_vcpu`] of a queue its driver handles.
const NO_VCPU: u32 = u32::MAX;

// One queue to a cache line.
const _: () = assert!(std::mem::size_of::<Queue>() == 64);

/// One device function.
#[derive(Debug, Clone)]
pub(super) struct Device {
    pub params: DeviceParams,
    pub store: MessageStore,
    /// The first queue of this device (queue ids are contiguous per device).
    pub first_queue: u32,
    /// The arrivals of all its queues when they are Poisson (one stream, one pending raise).
    arrivals: Option<Superposed>,
    /// Every queue raises (none is thinned out of the stream): no queue's flag to read per
    /// raise (at a million queues, a cache miss each).
    all_raise: bool,
}

/// What the interrupt chip needs to translate a queue's MSI write.
#[derive(Debug, Clone, Copy)]
pub(super) struct MsiWrite {
    pub address: u64,
    pub data: u32,
    pub requester_id: u16,
    /// An ADI's PASID (compared only by hypothetical PASID-granular remapping).
    pub pasid: Option<u32>,
    pub iommu_unit: u16,
}

/// Who a queue's interrupt comes from, and how its guest (if assigned) programmed it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Source {
    pub requester_id: u16,
    pub pasid: Option<u32>,
    pub iommu_unit: u16,
    pub guest_msi: GuestMsiParams,
}

/// Every device, queue and IMS pool.
#[derive(Debug, Clone)]
pub(super) struct Devices {
    devices: Vec<Device>,
    /// Per queue: what every interrupt reads.
    queues: Vec<Queue>,
    /// Per queue: whether it raises at all (routed at setup); read per raise only when some
    /// queue of its device does not ([`Device::all_raise`]).
    raises: Vec<bool>,
    /// The arrival processes of queues that have their own (not Poisson: a Poisson queue is
    /// drawn with its device's others, [`Device::arrivals`]), a device's queues in order.
    own_arrivals: Vec<Arrivals>,
    /// Per device: the index in `own_arrivals` of its first queue's process.
    own_arrivals_first: Vec<u32>,
    /// Messages on their way to an IMS store in queue memory, by queue (rare: only moves
    /// of such queues while running).
    message_in_flight: BTreeMap<u32, (u64, u32)>,
    /// Slots left in each IMS pool.
    ims_free: Vec<u32>,
    ims_pools: Vec<ImsPoolParams>,
    ids: DeviceIds,
}

impl Devices {
    pub fn new(ims_pools: &[ImsPoolParams], device_count: usize, ids: DeviceIds) -> Devices {
        Devices {
            devices: Vec::with_capacity(device_count),
            queues: Vec::new(),
            raises: Vec::new(),
            own_arrivals: Vec::new(),
            own_arrivals_first: Vec::with_capacity(device_count),
            message_in_flight: BTreeMap::new(),
            ims_free: ims_pools.iter().map(|p| p.slots).collect(),
            ims_pools: ims_pools.to_vec(),
            ids,
        }
    }

    /// Adds a device's queues, each with its own service random stream, and the device with
    /// a store of `store_entries` entries (queue q uses entry min(q, entries − 1): a shared
    /// vector when there are fewer entries than queues). Poisson queues share the device's
    /// arrival stream (`device/NAME/arrival`, see [`Superposed`]); other processes get one
    /// per queue (`device/NAME/queue/Q/arrival`). Returns the first queue.
    pub fn push(&mut self, device: DeviceId, dp: &DeviceParams, store_entries: u32, seed: u64) -> u32 {
        let first_queue = self.queues.len() as u32;
        let superposed = match dp.arrival {
            ArrivalParams::Poisson { rate_per_s } if dp.queue_count > 0 => Some(Superposed::new(
                rate_per_s,
                dp.queue_count,
                RngStream::new(seed, &format!("device/{}/arrival", dp.name)),
            )),
            _ => None,
        };
        // The path `device/NAME/queue/Q/...` hashed once up to `queue/` and extended per
        // queue: the same streams as formatting each path (`RngStream::from_path_hash`).
        let prefix = fnv1a64(format!("device/{}/queue/", dp.name).as_bytes());
        self.own_arrivals_first.push(self.own_arrivals.len() as u32);
        for q in 0..dp.queue_count {
            let path = fnv1a64_extend_u32(prefix, q);
            if superposed.is_none() {
                let rng = RngStream::from_path_hash(seed, fnv1a64_extend(path, b"/arrival"));
                self.own_arrivals.push(Arrivals::new(&dp.arrival, rng));
            }
            // The store's reset state: an empty, masked entry.
            self.queues.push(Queue {
                device,
                entry: q.min(store_entries - 1),
                service_rng: RngStream::from_path_hash(seed, fnv1a64_extend(path, b"/service")),
                address: 0,
                data: 0,
                forward_vcpu: NO_VCPU,
                forward_vector: Vector(0),
                masked: true,
                runs: LineRuns::NONE,
            });
            self.raises.push(false);
        }
        self.devices.push(Device {
            params: dp.clone(),
            store: MessageStore::with_ims_masked_raise(dp.store, store_entries, dp.ims_masked_raise),
            first_queue,
            arrivals: superposed,
            all_raise: false,
        });
        first_queue
    }

    /// The devices in topology order.
    pub fn all(&self) -> &[Device] {
        &self.devices
    }

    /// A device.
    pub fn device(&self, device: DeviceId) -> &Device {
        &self.devices[device.0 as usize]
    }

    /// The device a queue belongs to.
    #[inline]
    pub fn device_of(&self, queue: QueueId) -> DeviceId {
        self.queues[queue.0 as usize].device
    }

    /// The parameters of the device a queue belongs to.
    #[inline]
    pub fn params_of(&self, queue: QueueId) -> &DeviceParams {
        &self.devices[self.device_of(queue).0 as usize].params
    }

    /// A queue as a reader finds it: `device queue N`.
    pub fn label(&self, queue: QueueId) -> String {
        let device = self.device(self.device_of(queue));
        format!("{} queue {}", device.params.name, queue.0 - device.first_queue)
    }

    /// Who a queue's interrupt comes from.
    pub fn source(&self, queue: QueueId) -> Source {
        let p = self.params_of(queue);
        Source { requester_id: p.requester_id, pasid: p.pasid, iommu_unit: p.iommu_unit, guest_msi: p.guest_msi }
    }

    /// How many queues all devices have.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// The queue whose interrupt a queue raises (itself, or the owner of a shared vector).
    pub fn owner(&self, queue: QueueId) -> QueueId {
        let q = &self.queues[queue.0 as usize];
        QueueId(self.devices[q.device.0 as usize].first_queue + q.entry)
    }

    /// The first raises of a run: each of `device`'s queues whose interrupt (that of the
    /// queue owning its vector) `routed` accepts raises from now on; returns the pending raises to schedule, one per
    /// such queue, or one for the device when its queues share a stream (none when no queue
    /// raises).
    pub fn first_raises(&mut self, device: DeviceId, routed: impl Fn(QueueId) -> bool) -> Vec<(SimTime, QueueId)> {
        let (first, count) = {
            let d = &self.devices[device.0 as usize];
            (d.first_queue, d.params.queue_count)
        };
        let (mut any, mut all) = (false, true);
        for index in first..first + count {
            let r = routed(self.owner(QueueId(index)));
            self.raises[index as usize] = r;
            any |= r;
            all &= r;
        }
        let d = &mut self.devices[device.0 as usize];
        d.all_raise = all;
        if !any {
            return Vec::new();
        }
        let raises = &self.raises[first as usize..(first + count) as usize];
        match d.arrivals.as_mut() {
            Some(stream) => {
                let (at, index) = stream.next_after(SimTime::ZERO, |i| raises[i as usize]);
                vec![(at, QueueId(first + index))]
            }
            None => {
                let own = self.own_arrivals_first[device.0 as usize] as usize;
                self.own_arrivals[own..own + count as usize]
                    .iter_mut()
                    .zip(raises)
                    .enumerate()
                    .filter(|(_, (_, r))| **r)
                    .map(|(i, (arrivals, _))| (arrivals.first(), QueueId(first + i as u32)))
                    .collect()
            }
        }
    }

    /// Takes one slot from the device's IMS pool, if it draws from one.
    pub fn take_ims_slot(&mut self, dp: &DeviceParams, m: &mut Metrics) -> bool {
        self.take_ims_slot_at(dp.ims_pool, &dp.name, SimTime::ZERO, m)
    }

    /// Takes one slot at `now` from the IMS pool of device `device` (an assigned one whose
    /// guest's vector is set up), if it draws from one.
    pub fn take_device_ims_slot(&mut self, device: DeviceId, now: SimTime, m: &mut Metrics) -> bool {
        let dp = &self.devices[device.0 as usize].params;
        let (pool, name) = (dp.ims_pool, dp.name.clone());
        self.take_ims_slot_at(pool, &name, now, m)
    }

    fn take_ims_slot_at(&mut self, pool: Option<u32>, name: &str, now: SimTime, m: &mut Metrics) -> bool {
        let Some(pool) = pool else { return true };
        let free = &mut self.ims_free[pool as usize];
        if *free == 0 {
            let slots = self.ims_pools[pool as usize].slots;
            m.fail(self.ids.setup_ims_slot_fail, now, || {
                format!("{name}: all {slots} IMS slots of {} are in use", self.ims_pools[pool as usize].name)
            });
            return false;
        }
        *free -= 1;
        true
    }

    /// Sets who handles a queue's interrupt on the host.
    pub fn set_host_handler(&mut self, queue: QueueId, handler: HostHandler) {
        let q = &mut self.queues[queue.0 as usize];
        (q.forward_vcpu, q.forward_vector) = match handler {
            HostHandler::Driver => (NO_VCPU, Vector(0)),
            HostHandler::VfioForward { vcpu, vector } => {
                assert!(vcpu != NO_VCPU, "vCPU ids are below {NO_VCPU}");
                (vcpu, vector)
            }
        };
    }

    /// Who handles a queue's interrupt on the host.
    #[inline]
    pub fn host_handler(&self, queue: QueueId) -> HostHandler {
        let q = &self.queues[queue.0 as usize];
        match q.forward_vcpu {
            NO_VCPU => HostHandler::Driver,
            vcpu => HostHandler::VfioForward { vcpu, vector: q.forward_vector },
        }
    }

    /// The queue's host handler runs on its latest CPU, to count one more in
    /// (`stats::RunCounts::record_in`).
    #[inline]
    pub fn runs_mut(&mut self, queue: QueueId) -> &mut LineRuns {
        &mut self.queues[queue.0 as usize].runs
    }

    /// The queue's host handler runs on its latest CPU.
    pub fn runs(&self, queue: QueueId) -> LineRuns {
        self.queues[queue.0 as usize].runs
    }

    /// Every queue's host handler runs on its latest CPU, in queue order.
    pub fn all_runs(&self) -> impl Iterator<Item = LineRuns> + '_ {
        self.queues.iter().map(|q| q.runs)
    }

    /// Prefetches the queue's line (its raise is due next).
    #[inline(always)]
    pub fn prefetch(&self, queue: QueueId) {
        prefetch_index::prefetch_index(&self.queues, queue.0 as usize);
    }

    /// The queue's arrival process fires: the next raise is scheduled and the store decides:
    /// sent now, held (pending or merged), or dropped (the function's MSI-X is disabled).
    #[inline]
    pub fn raise(&mut self, queue_id: QueueId, q: &mut EventQueue<Event>, m: &mut Metrics) -> Raise {
        let Queue { device, entry, .. } = &self.queues[queue_id.0 as usize];
        let (device, entry) = (*device, *entry);
        let d = &mut self.devices[device.0 as usize];
        let first = d.first_queue as usize;
        let (next, next_queue) = match d.arrivals.as_mut() {
            Some(stream) => {
                // The flags are read only where some queue does not raise.
                let (all, raises) = (d.all_raise, &self.raises);
                let (at, index) = stream.next_after(q.now(), |i| all || raises[first + i as usize]);
                (at, QueueId(first as u32 + index))
            }
            None => {
                let own = self.own_arrivals_first[device.0 as usize] as usize + (queue_id.0 as usize - first);
                (self.own_arrivals[own].next_after(q.now()), queue_id)
            }
        };
        q.schedule_at(next, Event::Raise { queue: next_queue });
        // The next raise's queue line, prefetched: at a million queues it is a cache miss,
        // and at the raise everything waits on it (device, stream, store); prefetched here,
        // nothing does (a prefetch, unlike a read, holds up no instruction after it), and by
        // that raise (about 4,000 interrupts later) it may still be in the last-level cache.
        self.prefetch(next_queue);
        m.add(self.ids.raised, 1);
        let store = &mut self.devices[device.0 as usize].store;
        // An unmasked entry of an enabled function sends: the store's entry is not read.
        if !self.queues[queue_id.0 as usize].masked && !store.disabled() {
            return Raise::Send;
        }
        let raise = store.raise(entry);
        if raise == Raise::Merged {
            m.add(self.ids.pending_merged, 1);
        }
        raise
    }

    /// The failure counter of raises dropped on a masked IMS slot.
    pub fn lost_ims_masked(&self) -> sim::CounterId {
        self.ids.lost_ims_masked.expect("registered where a device drops masked IMS raises")
    }

    /// A device whose guest driver fell back from IMS to MSI-X: its masked raises set pending
    /// bits.
    pub fn use_pending_bits(&mut self, device: DeviceId) {
        self.devices[device.0 as usize].store.use_pending_bits();
    }

    /// Clears a device's MSI-X Enable bit; returns the pending bits that were dropped.
    pub fn disable_msix(&mut self, device: DeviceId) -> u32 {
        self.devices[device.0 as usize].store.disable()
    }

    /// Sets a device's MSI-X Enable bit again.
    pub fn enable_msix(&mut self, device: DeviceId) {
        self.devices[device.0 as usize].store.enable();
    }

    /// Whether the queue raises (it was routed at setup).
    pub fn raises(&self, queue: QueueId) -> bool {
        self.raises[queue.0 as usize]
    }

    /// The MSI write of a raise whose path is computed at once (the folded translation): recorded as
    /// [`Devices::send`] records it; returns its latency.
    #[inline]
    pub fn send_at_once(&self, queue_id: QueueId, m: &mut Metrics) -> sim::SimDuration {
        let latency = self.params_of(queue_id).msi_write_latency;
        m.record(self.ids.msi_write, latency.as_ps());
        latency
    }

    /// The device writes the queue's message: it reaches the interrupt chip after the
    /// device's MSI write latency.
    #[inline]
    pub fn send(&self, queue_id: QueueId, raised_at: SimTime, q: &mut EventQueue<Event>, m: &mut Metrics) {
        let latency = self.params_of(queue_id).msi_write_latency;
        m.record(self.ids.msi_write, latency.as_ps());
        q.schedule_in(latency, Event::MsiWrite { queue: queue_id, raised_at });
    }

    /// The message the queue's store entry holds now, with the source's identity.
    #[inline]
    pub fn message(&self, queue_id: QueueId) -> MsiWrite {
        let queue = &self.queues[queue_id.0 as usize];
        let device = &self.devices[queue.device.0 as usize];
        debug_assert_eq!(
            (queue.address, queue.data),
            (device.store.entry(queue.entry).address, device.store.entry(queue.entry).data)
        );
        MsiWrite {
            address: queue.address,
            data: queue.data,
            requester_id: device.params.requester_id,
            pasid: device.params.pasid,
            iommu_unit: device.params.iommu_unit,
        }
    }

    /// Programs the queue's store entry at setup (no time passes).
    pub fn write_message(&mut self, queue_id: QueueId, address: u64, data: u32) {
        let queue = &self.queues[queue_id.0 as usize];
        self.devices[queue.device.0 as usize].store.write_message(queue.entry, address, data);
        self.sync_entry(queue_id);
    }

    /// Copies the queue's store entry (message, mask bit) into the line of every queue that
    /// uses it: the queue itself, or where the device has fewer entries than queues and
    /// this is the last (shared) entry, every queue from it to the device's last.
    fn sync_entry(&mut self, queue_id: QueueId) {
        let queue = &self.queues[queue_id.0 as usize];
        let device = &self.devices[queue.device.0 as usize];
        let e = device.store.entry(queue.entry);
        let first = device.first_queue + queue.entry;
        let shared = queue.entry + 1 == device.store.len();
        let last = if shared { device.first_queue + device.params.queue_count } else { first + 1 };
        for q in &mut self.queues[first as usize..last as usize] {
            (q.address, q.data, q.masked) = (e.address, e.data, e.masked);
        }
    }

    /// Reprograms the queue's store entry while running. IMS in queue memory takes the new
    /// message through the device's command queue: until it lands, raises use the old
    /// message (whose vector the move keeps).
    pub fn reprogram(&mut self, queue_id: QueueId, address: u64, data: u32, q: &mut EventQueue<Event>) {
        let queue = &self.queues[queue_id.0 as usize];
        let device = &mut self.devices[queue.device.0 as usize];
        let current = device.store.entry(queue.entry);
        if device.store.kind() == StoreKind::ImsQueue && (current.address, current.data) != (address, data) {
            self.message_in_flight.insert(queue_id.0, (address, data));
            q.schedule_in(device.params.store_update_latency, Event::StoreWrite { queue: queue_id });
        } else {
            device.store.write_message(queue.entry, address, data);
            self.sync_entry(queue_id);
        }
    }

    /// A queued message update lands in an IMS store in queue memory.
    pub fn on_store_write(&mut self, queue_id: QueueId) {
        let queue = &self.queues[queue_id.0 as usize];
        if let Some((address, data)) = self.message_in_flight.remove(&queue_id.0) {
            self.devices[queue.device.0 as usize].store.write_message(queue.entry, address, data);
            self.sync_entry(queue_id);
        }
    }

    /// Unmasks a queue's entry; returns whether a pending bit set while masked sends now.
    pub fn unmask(&mut self, queue_id: QueueId) -> bool {
        let queue = &self.queues[queue_id.0 as usize];
        let send = self.devices[queue.device.0 as usize].store.unmask(queue.entry);
        self.sync_entry(queue_id);
        send
    }

    /// Masks a queue's entry: raises accumulate in its pending bit.
    pub fn mask(&mut self, queue_id: QueueId) {
        let queue = &self.queues[queue_id.0 as usize];
        self.devices[queue.device.0 as usize].store.mask(queue.entry);
        self.sync_entry(queue_id);
    }

    /// Pending bits set in masked entries, all devices.
    pub fn pending_count(&self) -> u64 {
        self.devices.iter().map(|d| u64::from(d.store.pending_count())).sum()
    }

    /// Use of the stores' limits: MSI-X entries, MSI vectors, IMS slots.
    pub fn resources(&self) -> Vec<ResourceUse> {
        let mut out = Vec::new();
        let per_kind =
            |kind: StoreKind| self.devices.iter().filter(move |d| d.store.kind() == kind).map(|d| d.store.len());
        if self.devices.iter().any(|d| d.store.kind() == StoreKind::Msix) {
            out.push(ResourceUse::over(
                "pci.msix_entries_per_function",
                MSIX_TABLE_ENTRIES_MAX,
                per_kind(StoreKind::Msix),
            ));
        }
        if self.devices.iter().any(|d| d.store.kind() == StoreKind::Msi) {
            out.push(ResourceUse::over("pci.msi_vectors_per_function", MSI_VECTORS_MAX, per_kind(StoreKind::Msi)));
        }
        for (pool, free) in self.ims_pools.iter().zip(&self.ims_free) {
            out.push(ResourceUse::over("pci.ims_slots_per_device", pool.slots, [pool.slots - free]));
        }
        out
    }
}

impl HandlerWork for Devices {
    // Always: once per interrupt on Lindley's path, where out of line its call, register
    // saves and returned struct cost about 20 instructions.
    #[inline(always)]
    fn driver_work(&mut self, queue_id: QueueId) -> Work {
        let queue = &mut self.queues[queue_id.0 as usize];
        let device = &self.devices[queue.device.0 as usize].params;
        Work { service: device.service.sample(&mut queue.service_rng), eoi: device.eoi_cost, kind: WorkKind::Driver }
    }
}
