//! The ITS itself: its state (Linux's device and vPE bookkeeping, the hardware tables),
//! the Linux-side device and event operations, translation, the command round trip and the
//! invariants. The GICv4 VM and vPE operations are in [`vpe`], the ITS executing a command
//! against its tables in [`apply`].

use std::collections::{BTreeMap, BTreeSet};

use sim::{SimDuration, SimTime};

use super::cmdq::{CommandOutcome, CommandQueue, CommandQueueStats, CommandTiming, ItsCommand};
use super::lpi::LpiAllocator;
use super::{
    CollectionId, EventId, GicVersion, ITS_DEVID0_MIN_VECTORS, ItsDeviceId, ItsError, ItsParamError, ItsParams, Lpi,
    VPE_PROXY_DEVICE, VintId, VmId, VpeId, count_order, round_up_pow2,
};
use crate::ids::CpuId;

mod apply;
mod vpe;

/// Which doorbell a non-resident vPE's vLPI rang.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoorbellKind {
    /// GICv4.0: the doorbell named in the vLPI's own VMAPTI/VMOVI (`Dbell_pINTID`), rung for
    /// every vLPI made pending. Linux names the vPE's doorbell LPI for all of a vPE's vLPIs.
    PerVlpi,
    /// GICv4.1: the vPE's default doorbell, rung once until the vPE is made resident again.
    PerVpe,
}

/// Where a device write to `GITS_TRANSLATER` ends up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A physical LPI pending at a CPU's redistributor.
    Physical {
        /// The LPI.
        lpi: Lpi,
        /// The target CPU.
        cpu: CpuId,
    },
    /// A vLPI injected straight into a resident vPE: no hypervisor involvement.
    VirtualDirect {
        /// The vPE.
        vpe: VpeId,
        /// The virtual INTID.
        vintid: VintId,
        /// The CPU the vPE is resident on.
        cpu: CpuId,
    },
    /// The vPE is not resident: the vLPI is recorded in its pending table and a doorbell
    /// (a physical LPI) is sent to the host.
    Doorbell {
        /// The vPE.
        vpe: VpeId,
        /// The virtual INTID now pending.
        vintid: VintId,
        /// Per-vLPI (GICv4.0) or per-vPE (GICv4.1).
        kind: DoorbellKind,
        /// The doorbell LPI.
        lpi: Lpi,
        /// The CPU whose redistributor raises it (where the vPE is mapped).
        cpu: CpuId,
    },
    /// The vLPI is recorded in the vPE's pending table with no doorbell: the vPE is not
    /// resident and its doorbell is disabled or (GICv4.1) already rung, or the vLPI is
    /// disabled in the VM's property table. The guest sees it when the vPE next runs.
    VirtualPending {
        /// The vPE.
        vpe: VpeId,
        /// The virtual INTID.
        vintid: VintId,
    },
}

/// Why a device write went nowhere (the ITS drops it; reporting is IMPLEMENTATION DEFINED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TranslateFault {
    /// No MAPD for this DeviceID.
    UnmappedDevice(ItsDeviceId),
    /// The EventID is beyond the device's ITT.
    EventOutOfRange {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
        /// ITT entries.
        itt_entries: u32,
    },
    /// No ITT entry (never mapped, or discarded).
    UnmappedEvent {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
    },
    /// The entry's collection has no MAPC.
    CollectionUnmapped(CollectionId),
    /// The LPI is disabled in the property table as the redistributor sees it: it stays
    /// pending and is delivered once enabled and invalidated.
    LpiDisabled(Lpi),
    /// The entry's vPE has no VMAPP.
    VpeUnmapped(VpeId),
}

/// Counts of translations and their results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Calls to [`Its::translate`].
    pub translations: u64,
    /// Physical LPIs delivered.
    pub physical: u64,
    /// vLPIs injected directly into resident vPEs.
    pub virtual_direct: u64,
    /// GICv4.0 per-vLPI doorbells.
    pub doorbells_per_vlpi: u64,
    /// GICv4.1 per-vPE doorbells.
    pub doorbells_per_vpe: u64,
    /// vLPIs left pending with no doorbell.
    pub virtual_pending: u64,
    /// Translation faults (all kinds).
    pub faults: u64,
    /// LPIs that were held pending while disabled and got released by an invalidation.
    pub pending_released: u64,
    /// Commands the ITS would reject (bad IDs, missing mappings); they had no effect.
    pub command_errors: u64,
}

/// Result of [`Its::create_device`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceCreated {
    /// The device.
    pub device: ItsDeviceId,
    /// ITT entries: `max(2, nvecs)`.
    pub itt_entries: u32,
    /// First LPI of the device's block.
    pub lpi_base: Lpi,
    /// LPIs asked for (the rounded vector count).
    pub lpis_requested: u32,
    /// LPIs granted (less than requested when `its_lpi_alloc` had to halve).
    pub lpis_granted: u32,
    /// The DeviceID was already known (an alias): the existing ITT is shared, nothing allocated.
    pub reused: bool,
    /// Cost of the MAPD.
    pub timing: CommandTiming,
}

/// Result of [`Its::alloc_events`]: an aligned block of events and their LPIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRange {
    /// First event.
    pub first: EventId,
    /// Its LPI (the block's LPIs are consecutive).
    pub lpi: Lpi,
    /// Events in the block (the request rounded up to a power of two).
    pub count: u32,
}

/// Result of [`Its::free_events`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventsFreed {
    /// Cost of the DISCARDs and, if the device went, the MAPD V=0.
    pub timing: CommandTiming,
    /// The device's last event went: its LPIs were freed and the device unmapped.
    pub device_removed: bool,
}

/// Result of [`Its::create_vm`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmCreated {
    /// The VM.
    pub vm: VmId,
    /// Its vPEs, one per vCPU, in vCPU order.
    pub vpes: Vec<VpeId>,
    /// The first doorbell LPI (vPE *i* rings `doorbell_base + i`).
    pub doorbell_base: Lpi,
    /// Cost of the VMAPPs (and INVDBs on GICv4.1).
    pub timing: CommandTiming,
}

/// One device in [`ItsResources`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceResources {
    /// The device.
    pub device: ItsDeviceId,
    /// ITT entries.
    pub itt_entries: u32,
    /// First LPI.
    pub lpi_base: Lpi,
    /// LPIs held.
    pub lpis: u32,
    /// Events allocated.
    pub events_allocated: u32,
    /// Events activated (MAPTI done).
    pub events_active: u32,
    /// Events forwarded to vPEs.
    pub vlpis: u32,
}

/// A snapshot of what the ITS has used, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItsResources {
    /// INTID bits in use (after Linux's cap).
    pub lpi_id_bits: u32,
    /// LPIs allocated (devices and vPE doorbells).
    pub lpis_used: u32,
    /// LPIs in the space.
    pub lpis_limit: u32,
    /// Free ranges in the allocator's list (fragmentation).
    pub lpi_free_ranges: u32,
    /// The largest free range.
    pub lpi_largest_free_range: u32,
    /// Per device, by DeviceID.
    pub devices: Vec<DeviceResources>,
    /// LPIs held as vPE doorbells.
    pub vm_doorbell_lpis: u32,
    /// ITT entries of the GICv4.0 vPE proxy device, if there is one.
    pub vpe_proxy_itt_entries: Option<u32>,
    /// Command queue slots.
    pub cmd_queue_slots: u32,
    /// Most slots outstanding at once.
    pub cmd_queue_high_water: u32,
}

#[derive(Clone, Copy, Debug)]
struct VlpiMap {
    vpe: VpeId,
    vintid: VintId,
    db_enabled: bool,
    enabled: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct EventState {
    allocated: bool,
    active: bool,
    /// `col_map[event]`: the CPU (collection) the event targets; zero-initialised as in Linux.
    cpu: u32,
    vlpi: Option<VlpiMap>,
}

#[derive(Clone, Debug)]
struct LinuxDevice {
    itt_entries: u32,
    lpis_requested: u32,
    lpi_base: u32,
    /// One per granted LPI (`lpi_map` and `col_map`).
    events: Vec<EventState>,
    shared: bool,
    vm: Option<VmId>,
    nr_vlpis: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ite {
    Physical { lpi: u32, collection: u32 },
    Virtual { vpe: VpeId, vintid: VintId, doorbell: Option<Lpi> },
}

#[derive(Clone, Debug)]
struct HwDevice {
    itt_entries: u32,
    ites: BTreeMap<u32, Ite>,
}

#[derive(Clone, Debug)]
struct VmState {
    vpes: Vec<VpeId>,
    db_base: u32,
    db_granted: u32,
    alive: bool,
}

#[derive(Clone, Copy, Debug)]
struct VpeState {
    vm: VmId,
    doorbell: u32,
    /// `vpe->col_idx`: the CPU the ITS has the vPE mapped to.
    col: u32,
    resident_on: Option<CpuId>,
    /// Linux's enable state of the doorbell IRQ (what it last wrote to the property table).
    db_irq_enabled: bool,
    v41_db_armed: bool,
    v41_db_fired: bool,
    proxy_event: Option<u32>,
    alive: bool,
}

/// The GICv4.0 vPE proxy device (`vpe_proxy`), used to INV/CLEAR/MOVI doorbells without DirectLPI.
#[derive(Clone, Debug)]
struct VpeProxy {
    itt_entries: u32,
    slots: Vec<Option<VpeId>>,
    col_map: Vec<u32>,
    next_victim: usize,
}

/// The cursor of one operation: its start, where it has got to, and its costs so far.
#[derive(Debug)]
struct Seq {
    t: SimTime,
    timing: CommandTiming,
}

/// A GICv3/v4 ITS with the Linux driver state around it. See the module documentation.
#[derive(Clone, Debug)]
pub struct Its {
    params: ItsParams,
    lpis: LpiAllocator,
    devices: BTreeMap<u32, LinuxDevice>,
    vms: Vec<VmState>,
    vpes: Vec<VpeState>,
    proxy: Option<VpeProxy>,
    hw_devices: BTreeMap<u32, HwDevice>,
    hw_collections: Vec<Option<CpuId>>,
    hw_vpes: BTreeMap<u32, CpuId>,
    /// LPIs enabled in the property table in memory.
    prop_mem: BTreeSet<u32>,
    /// LPIs the redistributors have seen enabled (after an invalidation).
    prop_seen: BTreeSet<u32>,
    /// LPIs that arrived while disabled and are held pending.
    pending_masked: BTreeSet<u32>,
    queue: CommandQueue,
    last_start: SimTime,
    log: Option<Vec<ItsCommand>>,
    stats: DeliveryStats,
    booted: bool,
    /// Raw commands were submitted: the tables may legitimately differ from Linux's view.
    raw_commands: bool,
}

impl Its {
    /// An ITS with empty tables. Call [`Its::boot`] to map the collections.
    pub fn new(params: ItsParams) -> Result<Its, ItsParamError> {
        params.validate()?;
        Ok(Its {
            lpis: LpiAllocator::new(params.lpi_capacity()),
            devices: BTreeMap::new(),
            vms: Vec::new(),
            vpes: Vec::new(),
            proxy: None,
            hw_devices: BTreeMap::new(),
            hw_collections: vec![None; params.collections as usize],
            hw_vpes: BTreeMap::new(),
            prop_mem: BTreeSet::new(),
            prop_seen: BTreeSet::new(),
            pending_masked: BTreeSet::new(),
            queue: CommandQueue::new(
                params.cmd_queue_slots,
                params.costs.command,
                params.costs.sync,
                params.poll_interval,
                params.poll_count,
            ),
            last_start: SimTime::ZERO,
            log: None,
            stats: DeliveryStats::default(),
            booted: false,
            raw_commands: false,
            params,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &ItsParams {
        &self.params
    }

    /// The LPI allocator (read-only).
    pub fn lpi_allocator(&self) -> &LpiAllocator {
        &self.lpis
    }

    /// Command queue totals.
    pub fn command_stats(&self) -> &CommandQueueStats {
        &self.queue.stats
    }

    /// Translation totals.
    pub fn delivery_stats(&self) -> &DeliveryStats {
        &self.stats
    }

    /// Starts (or stops) recording every command posted, SYNCs included.
    pub fn set_command_log(&mut self, on: bool) {
        self.log = if on { Some(Vec::new()) } else { None };
    }

    /// The commands recorded since the last call (empty if logging is off).
    pub fn take_command_log(&mut self) -> Vec<ItsCommand> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The vector count Linux asks the ITS for: `its_pci_msi_prepare` rounds `nvec` (the
    /// larger of the vectors requested and the MSI-X table size) up to a power of two, and
    /// to at least 32 for DeviceID 0.
    pub fn linux_msi_vectors(device: ItsDeviceId, nvec: u32) -> u32 {
        let min = if device.0 == 0 { ITS_DEVID0_MIN_VECTORS } else { 1 };
        round_up_pow2(nvec).max(min)
    }

    /// Ends the setup phase: every command issued so far (boot, devices, VMs) is taken as
    /// consumed before `at`, the start of the measured run, so the run's first command finds
    /// an idle, empty queue. The queue's high-water mark keeps what setup used.
    pub fn settle_setup(&mut self, at: SimTime) {
        self.queue.settle(at);
        self.last_start = at;
    }

    /// CPU bring-up (`its_cpu_init_collection`): MAPC + SYNC and INVALL for every CPU; on
    /// GICv4.0 without DirectLPI also the vPE proxy device's MAPD. A second call does nothing.
    pub fn boot(&mut self, now: SimTime) -> CommandTiming {
        let mut seq = self.begin(now);
        if self.booted {
            return seq.timing;
        }
        self.booted = true;
        for cpu in 0..self.params.collections {
            let collection = CollectionId(cpu);
            self.issue(&mut seq, ItsCommand::Mapc { collection, target: CpuId(cpu), valid: true });
            self.issue(&mut seq, ItsCommand::Invall { collection });
        }
        if self.params.gic_version == GicVersion::V4_0 && !self.params.has_direct_lpi() {
            // its_init_vpe_domain: entries = roundup_pow_of_two(nr_cpu_ids), no LPIs of its own.
            let itt_entries = round_up_pow2(self.params.collections).max(2);
            self.proxy = Some(VpeProxy {
                itt_entries,
                slots: vec![None; itt_entries as usize],
                col_map: vec![0; itt_entries as usize],
                next_victim: 0,
            });
            self.issue(&mut seq, ItsCommand::Mapd { device: VPE_PROXY_DEVICE, itt_entries, valid: true });
        }
        self.end(seq)
    }

    /// `its_msi_prepare` → `its_create_device`: rounds `nvec` as Linux does
    /// ([`Its::linux_msi_vectors`]), sizes the ITT as `max(2, nvecs)`, takes an LPI block with
    /// `its_lpi_alloc` (possibly smaller than asked) and sends MAPD. A DeviceID seen before is
    /// reused (an alias behind a bridge) and marked shared. Fails with
    /// [`ItsError::LpiExhausted`] when no LPI at all is free.
    pub fn create_device(&mut self, now: SimTime, device: ItsDeviceId, nvec: u32) -> Result<DeviceCreated, ItsError> {
        let mut seq = self.begin(now);
        if nvec == 0 {
            return Err(ItsError::ZeroCount);
        }
        if self.proxy.is_some() && device == VPE_PROXY_DEVICE {
            return Err(ItsError::ProxyClash(device));
        }
        if let Some(d) = self.devices.get_mut(&device.0) {
            d.shared = true;
            return Ok(DeviceCreated {
                device,
                itt_entries: d.itt_entries,
                lpi_base: Lpi(d.lpi_base),
                lpis_requested: d.lpis_requested,
                lpis_granted: d.events.len() as u32,
                reused: true,
                timing: seq.timing,
            });
        }
        let nvecs = Its::linux_msi_vectors(device, nvec);
        let itt_entries = nvecs.max(2);
        let grant = self.lpis.alloc(nvecs).ok_or(ItsError::LpiExhausted { requested: nvecs, granted: 0 })?;
        self.devices.insert(
            device.0,
            LinuxDevice {
                itt_entries,
                lpis_requested: nvecs,
                lpi_base: grant.base.0,
                events: vec![EventState::default(); grant.granted as usize],
                shared: false,
                vm: None,
                nr_vlpis: 0,
            },
        );
        self.issue(&mut seq, ItsCommand::Mapd { device, itt_entries, valid: true });
        Ok(DeviceCreated {
            device,
            itt_entries,
            lpi_base: grant.base,
            lpis_requested: nvecs,
            lpis_granted: grant.granted,
            reused: false,
            timing: self.end(seq),
        })
    }

    /// `its_alloc_device_irq`: the first free, naturally aligned block of
    /// `2^get_count_order(count)` events in the device's LPI block. No ITS command.
    pub fn alloc_events(&mut self, device: ItsDeviceId, count: u32) -> Result<EventRange, ItsError> {
        if count == 0 {
            return Err(ItsError::ZeroCount);
        }
        let d = self.devices.get_mut(&device.0).ok_or(ItsError::UnknownDevice(device))?;
        let size = 1usize << count_order(count);
        let n = d.events.len();
        let mut pos = 0;
        while pos + size <= n {
            if d.events[pos..pos + size].iter().all(|e| !e.allocated) {
                for e in &mut d.events[pos..pos + size] {
                    *e = EventState { allocated: true, ..EventState::default() };
                }
                return Ok(EventRange {
                    first: EventId(pos as u32),
                    lpi: Lpi(d.lpi_base + pos as u32),
                    count: size as u32,
                });
            }
            pos += size;
        }
        Err(ItsError::EventsExhausted { device, requested: count })
    }

    /// `its_irq_domain_activate`: route the event to `cpu`'s collection with MAPTI + SYNC.
    /// The LPI stays disabled until [`Its::unmask`].
    pub fn activate_event(
        &mut self,
        now: SimTime,
        device: ItsDeviceId,
        event: EventId,
        cpu: CpuId,
    ) -> Result<CommandTiming, ItsError> {
        let mut seq = self.begin(now);
        self.check_cpu(cpu)?;
        let (base, ev) = self.event(device, event)?;
        if ev.active {
            return Err(ItsError::EventActive { device, event });
        }
        let e = self.event_mut(device, event);
        e.active = true;
        e.cpu = cpu.0;
        self.issue(
            &mut seq,
            ItsCommand::Mapti { device, event, lpi: Lpi(base + event.0), collection: CollectionId(cpu.0) },
        );
        Ok(self.end(seq))
    }

    /// `its_irq_domain_deactivate`: DISCARD + SYNC.
    pub fn deactivate_event(
        &mut self,
        now: SimTime,
        device: ItsDeviceId,
        event: EventId,
    ) -> Result<CommandTiming, ItsError> {
        let mut seq = self.begin(now);
        let (_, ev) = self.event(device, event)?;
        if !ev.active {
            return Err(ItsError::EventInactive { device, event });
        }
        if ev.vlpi.is_some() {
            return Err(ItsError::Forwarded { device, event });
        }
        self.issue(&mut seq, ItsCommand::Discard { device, event });
        self.event_mut(device, event).active = false;
        Ok(self.end(seq))
    }

    /// `its_irq_domain_free`: release the block `[first, first + 2^order(count))`,
    /// deactivating active events first; when the device's last event goes (and the device is
    /// not shared) its LPIs go back to the allocator and MAPD V=0 unmaps it (Linux up to 6.15).
    pub fn free_events(
        &mut self,
        now: SimTime,
        device: ItsDeviceId,
        first: EventId,
        count: u32,
    ) -> Result<EventsFreed, ItsError> {
        self.free_events_inner(now, device, first, count, true)
    }

    /// [`Its::free_events`] as Linux 6.16 and later do it: the events go, the device stays
    /// mapped with its LPI block even when its last event goes, because `its_msi_teardown`
    /// (MAPD V=0) runs only when the per-device MSI domain is removed, not with the events
    /// (`KernelVersion::its_device_outlives_its_events`). `device_removed` is always false.
    pub fn free_events_keep_device(
        &mut self,
        now: SimTime,
        device: ItsDeviceId,
        first: EventId,
        count: u32,
    ) -> Result<EventsFreed, ItsError> {
        self.free_events_inner(now, device, first, count, false)
    }

    /// [`Its::free_events`] (`teardown`: the last event takes the device with it) and
    /// [`Its::free_events_keep_device`].
    fn free_events_inner(
        &mut self,
        now: SimTime,
        device: ItsDeviceId,
        first: EventId,
        count: u32,
        teardown: bool,
    ) -> Result<EventsFreed, ItsError> {
        let mut seq = self.begin(now);
        if count == 0 {
            return Err(ItsError::ZeroCount);
        }
        let size = 1u32 << count_order(count);
        let events: Vec<EventId> = (first.0..first.0.saturating_add(size)).map(EventId).collect();
        for &e in &events {
            let (_, ev) = self.event(device, e)?;
            if ev.vlpi.is_some() {
                return Err(ItsError::Forwarded { device, event: e });
            }
        }
        for &e in &events {
            let (base, ev) = self.event(device, e)?;
            if ev.active {
                self.issue(&mut seq, ItsCommand::Discard { device, event: e });
            }
            let lpi = base + e.0;
            self.prop_mem.remove(&lpi);
            self.prop_seen.remove(&lpi);
            self.pending_masked.remove(&lpi);
            *self.event_mut(device, e) = EventState::default();
        }
        let d = &self.devices[&device.0];
        let device_removed = teardown && !d.shared && d.events.iter().all(|e| !e.allocated);
        if device_removed {
            let (base, n, itt_entries) = (d.lpi_base, d.events.len() as u32, d.itt_entries);
            self.lpis.free(Lpi(base), n).expect("a device's LPI block goes back exactly once");
            self.issue(&mut seq, ItsCommand::Mapd { device, itt_entries, valid: false });
            self.devices.remove(&device.0);
        }
        Ok(EventsFreed { timing: self.end(seq), device_removed })
    }

    /// `its_mask_irq`: clear the enable bit in the property table, then invalidate (INV + SYNC,
    /// or a direct invalidation). For a forwarded vLPI on GICv4.0 the doorbell is first turned
    /// off with VMOVI (the kernel's trick: re-issuing VMAPTI would be UNPREDICTABLE).
    pub fn mask(&mut self, now: SimTime, device: ItsDeviceId, event: EventId) -> Result<CommandTiming, ItsError> {
        self.set_enabled(now, device, event, false)
    }

    /// `its_unmask_irq`: the reverse of [`Its::mask`].
    pub fn unmask(&mut self, now: SimTime, device: ItsDeviceId, event: EventId) -> Result<CommandTiming, ItsError> {
        self.set_enabled(now, device, event, true)
    }

    fn set_enabled(
        &mut self,
        now: SimTime,
        device: ItsDeviceId,
        event: EventId,
        enable: bool,
    ) -> Result<CommandTiming, ItsError> {
        let mut seq = self.begin(now);
        let (base, ev) = self.event(device, event)?;
        if !ev.active {
            return Err(ItsError::EventInactive { device, event });
        }
        match ev.vlpi {
            Some(map) => {
                if self.params.gic_version == GicVersion::V4_0 && map.db_enabled != enable {
                    let doorbell = enable.then(|| Lpi(self.vpes[map.vpe.0 as usize].doorbell));
                    self.set_vlpi_map(device, event, VlpiMap { db_enabled: enable, ..map });
                    self.issue(&mut seq, ItsCommand::Vmovi { device, event, vpe: map.vpe, doorbell });
                }
                let current = self.event(device, event)?.1.vlpi.expect("still forwarded");
                self.set_vlpi_map(device, event, VlpiMap { enabled: enable, ..current });
                if self.params.has_direct_lpi() && self.params.gic_version == GicVersion::V4_1 {
                    self.direct(&mut seq);
                } else {
                    self.issue(&mut seq, ItsCommand::Inv { device, event });
                }
            }
            None => {
                let lpi = base + event.0;
                if enable {
                    self.prop_mem.insert(lpi);
                } else {
                    self.prop_mem.remove(&lpi);
                }
                self.invalidate_lpi(&mut seq, device, event, lpi);
            }
        }
        Ok(self.end(seq))
    }

    /// `its_set_affinity`: MOVI + SYNC to move the event to `cpu`'s collection (the SYNC
    /// targets the collection the event is leaving, as the kernel's builder does); nothing if
    /// it is already there. Refused for forwarded events (`-EINVAL`).
    pub fn set_affinity(
        &mut self,
        now: SimTime,
        device: ItsDeviceId,
        event: EventId,
        cpu: CpuId,
    ) -> Result<CommandTiming, ItsError> {
        let mut seq = self.begin(now);
        self.check_cpu(cpu)?;
        let (_, ev) = self.event(device, event)?;
        if ev.vlpi.is_some() {
            return Err(ItsError::Forwarded { device, event });
        }
        if !ev.active {
            return Err(ItsError::EventInactive { device, event });
        }
        if ev.cpu != cpu.0 {
            self.issue(&mut seq, ItsCommand::Movi { device, event, collection: CollectionId(cpu.0) });
            self.event_mut(device, event).cpu = cpu.0;
        }
        Ok(self.end(seq))
    }

    /// A device writes `event` to `GITS_TRANSLATER`: the device table, the ITT, the collection
    /// (or vPE) table and the property table decide where it goes.
    pub fn translate(&mut self, device: ItsDeviceId, event: EventId) -> Result<Delivery, TranslateFault> {
        self.stats.translations += 1;
        let r = self.translate_inner(device, event);
        match r {
            Ok(Delivery::Physical { .. }) => self.stats.physical += 1,
            Ok(Delivery::VirtualDirect { .. }) => self.stats.virtual_direct += 1,
            Ok(Delivery::Doorbell { kind: DoorbellKind::PerVlpi, .. }) => self.stats.doorbells_per_vlpi += 1,
            Ok(Delivery::Doorbell { kind: DoorbellKind::PerVpe, .. }) => self.stats.doorbells_per_vpe += 1,
            Ok(Delivery::VirtualPending { .. }) => self.stats.virtual_pending += 1,
            Err(_) => self.stats.faults += 1,
        }
        r
    }

    // Long: the translation's table walks in hardware order (device, ITT, collection or vPE), one fault each.
    fn translate_inner(&mut self, device: ItsDeviceId, event: EventId) -> Result<Delivery, TranslateFault> {
        let hd = self.hw_devices.get(&device.0).ok_or(TranslateFault::UnmappedDevice(device))?;
        if event.0 >= hd.itt_entries {
            return Err(TranslateFault::EventOutOfRange { device, event, itt_entries: hd.itt_entries });
        }
        let ite = *hd.ites.get(&event.0).ok_or(TranslateFault::UnmappedEvent { device, event })?;
        match ite {
            Ite::Physical { lpi, collection } => {
                let cpu = self
                    .hw_collections
                    .get(collection as usize)
                    .copied()
                    .flatten()
                    .ok_or(TranslateFault::CollectionUnmapped(CollectionId(collection)))?;
                if !self.prop_seen.contains(&lpi) {
                    self.pending_masked.insert(lpi);
                    return Err(TranslateFault::LpiDisabled(Lpi(lpi)));
                }
                Ok(Delivery::Physical { lpi: Lpi(lpi), cpu })
            }
            Ite::Virtual { vpe, vintid, doorbell } => {
                let cpu = *self.hw_vpes.get(&vpe.0).ok_or(TranslateFault::VpeUnmapped(vpe))?;
                let enabled = self
                    .devices
                    .get(&device.0)
                    .and_then(|d| d.events.get(event.0 as usize))
                    .and_then(|e| e.vlpi)
                    .is_none_or(|m| m.enabled);
                let pending = Delivery::VirtualPending { vpe, vintid };
                let st = &mut self.vpes[vpe.0 as usize];
                if !enabled {
                    return Ok(pending);
                }
                if st.resident_on == Some(cpu) {
                    return Ok(Delivery::VirtualDirect { vpe, vintid, cpu });
                }
                match self.params.gic_version {
                    GicVersion::V4_0 => match doorbell {
                        Some(db) if self.prop_seen.contains(&db.0) => {
                            Ok(Delivery::Doorbell { vpe, vintid, kind: DoorbellKind::PerVlpi, lpi: db, cpu })
                        }
                        _ => Ok(pending),
                    },
                    GicVersion::V4_1 => {
                        if st.v41_db_armed && !st.v41_db_fired && self.prop_seen.contains(&st.doorbell) {
                            st.v41_db_fired = true;
                            Ok(Delivery::Doorbell {
                                vpe,
                                vintid,
                                kind: DoorbellKind::PerVpe,
                                lpi: Lpi(st.doorbell),
                                cpu,
                            })
                        } else {
                            Ok(pending)
                        }
                    }
                    GicVersion::V3 => unreachable!("a GICv3 ITS rejects VMAPTI, so it has no virtual entries"),
                }
            }
        }
    }

    /// Submits raw commands, each as its own synchronous round trip followed by the SYNC or
    /// VSYNC Linux would append (none after MAPD and INVALL). Commands take effect in the
    /// ITS tables unless dropped; invalid ones count as [`DeliveryStats::command_errors`].
    /// Linux-side bookkeeping (the LPI allocator, the device list) is not touched, so from
    /// then on [`Its::check_invariants`] no longer compares the tables with it.
    pub fn submit(&mut self, now: SimTime, commands: &[ItsCommand]) -> CommandTiming {
        let mut seq = self.begin(now);
        self.raw_commands |= !commands.is_empty();
        for &cmd in commands {
            self.issue(&mut seq, cmd);
        }
        self.end(seq)
    }

    /// What is in use, for reports.
    pub fn resources(&self) -> ItsResources {
        let devices = self
            .devices
            .iter()
            .map(|(&id, d)| DeviceResources {
                device: ItsDeviceId(id),
                itt_entries: d.itt_entries,
                lpi_base: Lpi(d.lpi_base),
                lpis: d.events.len() as u32,
                events_allocated: d.events.iter().filter(|e| e.allocated).count() as u32,
                events_active: d.events.iter().filter(|e| e.active).count() as u32,
                vlpis: d.nr_vlpis,
            })
            .collect();
        ItsResources {
            lpi_id_bits: self.params.effective_lpi_id_bits(),
            lpis_used: self.lpis.used(),
            lpis_limit: self.lpis.limit(),
            lpi_free_ranges: self.lpis.ranges().len() as u32,
            lpi_largest_free_range: self.lpis.largest_free(),
            devices,
            vm_doorbell_lpis: self.vms.iter().filter(|v| v.alive).map(|v| v.db_granted).sum(),
            vpe_proxy_itt_entries: self.proxy.as_ref().map(|p| p.itt_entries),
            cmd_queue_slots: self.params.cmd_queue_slots,
            cmd_queue_high_water: self.queue.stats.high_water,
        }
    }

    /// Panics if the model's state is inconsistent (a bug in this module).
    // Long: a list of independent checks over every table, read top to bottom.
    pub fn check_invariants(&self) {
        self.lpis.check_invariants();
        self.queue.check_invariants();
        let mut blocks: Vec<(u32, u32)> = self
            .devices
            .values()
            .map(|d| (d.lpi_base, d.events.len() as u32))
            .chain(self.vms.iter().filter(|v| v.alive).map(|v| (v.db_base, v.db_granted)))
            .collect();
        blocks.sort_unstable();
        let mut held = 0u32;
        for (i, &(base, n)) in blocks.iter().enumerate() {
            assert!(n > 0, "empty LPI block at {base}");
            if i > 0 {
                let (pb, pn) = blocks[i - 1];
                assert!(pb + pn <= base, "LPI blocks {pb}+{pn} and {base}+{n} overlap");
            }
            let ranges = self.lpis.ranges();
            let idx = ranges.partition_point(|r| r.base + r.span <= base);
            assert!(idx == ranges.len() || ranges[idx].base >= base + n, "LPI block {base}+{n} overlaps a free range");
            held += n;
        }
        assert_eq!(held, self.lpis.used(), "held LPI blocks != allocator's used count");
        let consistent_hw = self.queue.stats.dropped == 0 && self.stats.command_errors == 0 && !self.raw_commands;
        for (&id, d) in &self.devices {
            assert!(d.itt_entries.is_power_of_two() && d.itt_entries == d.lpis_requested.max(2));
            let n = d.events.len() as u32;
            assert!(n.is_power_of_two() && n <= d.lpis_requested, "device {id:#x}: {n} LPIs");
            let mut vlpis = 0;
            for (e, ev) in d.events.iter().enumerate() {
                assert!(!ev.active || ev.allocated, "device {id:#x}: active event {e} not allocated");
                assert!(ev.vlpi.is_none() || ev.active, "device {id:#x}: forwarded event {e} not active");
                vlpis += u32::from(ev.vlpi.is_some());
                if !consistent_hw {
                    continue;
                }
                let ite = self.hw_devices.get(&id).and_then(|h| h.ites.get(&(e as u32)));
                match (ev.active, ev.vlpi) {
                    (true, None) => assert_eq!(
                        ite,
                        Some(&Ite::Physical { lpi: d.lpi_base + e as u32, collection: ev.cpu }),
                        "device {id:#x} event {e}"
                    ),
                    (true, Some(m)) => assert!(
                        matches!(ite, Some(Ite::Virtual { vpe, vintid, .. }) if *vpe == m.vpe && *vintid == m.vintid),
                        "device {id:#x} event {e}: ITE {ite:?} for {m:?}"
                    ),
                    (false, _) => assert!(ite.is_none(), "device {id:#x} event {e}: stale ITE {ite:?}"),
                }
            }
            assert_eq!(vlpis, d.nr_vlpis, "device {id:#x}: vLPI count");
            assert_eq!(d.vm.is_some(), d.nr_vlpis > 0, "device {id:#x}: VM binding");
            if consistent_hw {
                assert_eq!(self.hw_devices.get(&id).map(|h| h.itt_entries), Some(d.itt_entries));
            }
        }
        if let Some(p) = &self.proxy {
            for (slot, v) in p.slots.iter().enumerate() {
                if let Some(v) = v {
                    assert_eq!(self.vpes[v.0 as usize].proxy_event, Some(slot as u32), "proxy slot {slot}");
                }
            }
        }
        for (i, st) in self.vpes.iter().enumerate() {
            assert!(st.alive || st.resident_on.is_none(), "dead vPE {i} resident");
            if let Some(ev) = st.proxy_event {
                let p = self.proxy.as_ref().expect("proxy slot without a proxy");
                assert_eq!(p.slots[ev as usize], Some(VpeId(i as u32)), "vPE {i} proxy slot");
            }
        }
    }

    // ---- internals ------------------------------------------------------------------------

    fn begin(&mut self, now: SimTime) -> Seq {
        assert!(now >= self.last_start, "ITS operation started at {now}, before an earlier one at {}", self.last_start);
        self.last_start = now;
        Seq { t: now, timing: CommandTiming::none(now) }
    }

    fn end(&self, mut seq: Seq) -> CommandTiming {
        seq.timing.done = seq.t;
        seq.timing
    }

    fn check_cpu(&self, cpu: CpuId) -> Result<(), ItsError> {
        if cpu.0 < self.params.collections { Ok(()) } else { Err(ItsError::InvalidCpu(cpu)) }
    }

    fn check_v4(&self) -> Result<(), ItsError> {
        if self.params.gic_version.has_vlpis() { Ok(()) } else { Err(ItsError::NoVirtualLpis) }
    }

    fn vpe_state(&self, vpe: VpeId) -> Result<&VpeState, ItsError> {
        self.vpes.get(vpe.0 as usize).filter(|s| s.alive).ok_or(ItsError::UnknownVpe(vpe))
    }

    /// The device's LPI base and the event's state, if the event is allocated.
    fn event(&self, device: ItsDeviceId, event: EventId) -> Result<(u32, EventState), ItsError> {
        let d = self.devices.get(&device.0).ok_or(ItsError::UnknownDevice(device))?;
        match d.events.get(event.0 as usize) {
            Some(e) if e.allocated => Ok((d.lpi_base, *e)),
            _ => Err(ItsError::UnknownEvent { device, event }),
        }
    }

    fn event_mut(&mut self, device: ItsDeviceId, event: EventId) -> &mut EventState {
        self.devices
            .get_mut(&device.0)
            .and_then(|d| d.events.get_mut(event.0 as usize))
            .expect("event checked before mutation")
    }

    fn set_vlpi_map(&mut self, device: ItsDeviceId, event: EventId, map: VlpiMap) {
        self.event_mut(device, event).vlpi = Some(map);
    }

    /// `dev_event_to_col`: the collection Linux believes the event targets.
    fn event_collection(&self, device: ItsDeviceId, event: EventId) -> Option<u32> {
        if device == VPE_PROXY_DEVICE
            && let Some(p) = &self.proxy
        {
            return p.col_map.get(event.0 as usize).copied();
        }
        if let Some(e) = self.devices.get(&device.0).and_then(|d| d.events.get(event.0 as usize)) {
            return Some(e.cpu);
        }
        match self.hw_ite(device, event) {
            Some(Ite::Physical { collection, .. }) => Some(collection),
            _ => None,
        }
    }

    fn hw_ite(&self, device: ItsDeviceId, event: EventId) -> Option<Ite> {
        self.hw_devices.get(&device.0)?.ites.get(&event.0).copied()
    }

    /// The SYNC or VSYNC the kernel's command builder returns for `cmd`.
    fn sync_for(&self, cmd: &ItsCommand) -> Option<ItsCommand> {
        let sync = |c: u32| ItsCommand::Sync { collection: CollectionId(c) };
        match *cmd {
            ItsCommand::Mapd { .. }
            | ItsCommand::Invall { .. }
            | ItsCommand::Sync { .. }
            | ItsCommand::Vsync { .. } => None,
            ItsCommand::Mapc { collection, .. } | ItsCommand::Mapti { collection, .. } => Some(sync(collection.0)),
            // The builder syncs the collection the event is in *before* the move.
            ItsCommand::Movi { device, event, collection } => {
                Some(sync(self.event_collection(device, event).unwrap_or(collection.0)))
            }
            ItsCommand::Discard { device, event } => self.event_collection(device, event).map(sync),
            ItsCommand::Inv { device, event } | ItsCommand::Clear { device, event } => match self.hw_ite(device, event)
            {
                Some(Ite::Virtual { vpe, .. }) => Some(ItsCommand::Vsync { vpe }),
                _ => self.event_collection(device, event).map(sync),
            },
            ItsCommand::Vmapp { vpe, .. }
            | ItsCommand::Vmapti { vpe, .. }
            | ItsCommand::Vmovi { vpe, .. }
            | ItsCommand::Vmovp { vpe, .. }
            | ItsCommand::Vinvall { vpe }
            | ItsCommand::Invdb { vpe } => Some(ItsCommand::Vsync { vpe }),
        }
    }

    /// One `its_send_single_command`: time it, then apply it unless it was dropped.
    fn issue(&mut self, seq: &mut Seq, cmd: ItsCommand) {
        let sync = self.sync_for(&cmd);
        let rt = self.queue.round_trip(seq.t, sync.is_some());
        seq.t = rt.done;
        seq.timing.queue_wait = seq.timing.queue_wait + rt.queue_wait;
        seq.timing.round_trips += 1;
        seq.timing.slots_used += rt.slots;
        match rt.outcome {
            CommandOutcome::QueueNotDraining => {
                seq.timing.dropped += 1;
                return;
            }
            CommandOutcome::QueueTimeout => seq.timing.timeouts += 1,
            CommandOutcome::Completed => {}
        }
        self.apply(&cmd);
        if let Some(log) = &mut self.log {
            log.push(cmd);
            if let (Some(s), 2) = (sync, rt.slots) {
                log.push(s);
            }
        }
    }

    /// A direct redistributor invalidation (or clear): register write + `GICR_SYNCR` poll.
    fn direct(&mut self, seq: &mut Seq) {
        let cost: SimDuration = self.params.costs.direct_inv;
        seq.t += cost;
        seq.timing.direct_invalidations += 1;
        self.queue.stats.direct_invalidations += 1;
    }

    /// `lpi_update_config`'s invalidation after a property-table write for the physical
    /// LPI `lpi` of (`device`, `event`): with DirectLPI the redistributor re-reads it
    /// (`direct_lpi_inv`), else INV + SYNC through the ITS.
    fn invalidate_lpi(&mut self, seq: &mut Seq, device: ItsDeviceId, event: EventId, lpi: u32) {
        if self.params.has_direct_lpi() {
            self.refresh_prop(lpi);
            self.direct(seq);
        } else {
            self.issue(seq, ItsCommand::Inv { device, event });
        }
    }

    /// The redistributor re-reads `lpi`'s configuration.
    fn refresh_prop(&mut self, lpi: u32) {
        if self.prop_mem.contains(&lpi) {
            self.prop_seen.insert(lpi);
            if self.pending_masked.remove(&lpi) {
                self.stats.pending_released += 1;
            }
        } else {
            self.prop_seen.remove(&lpi);
        }
    }
}
