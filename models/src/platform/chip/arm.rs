//! The ARM interrupt chip: devices' MSIs through a GICv3/v4 ITS (DeviceID/EventID → LPI →
//! collection, or a vLPI for a GICv4 guest) or a GICv2m frame (one SPI per MSI).
//!
//! # What is modelled
//! - Setup as Linux does it: `its_msi_prepare` → `its_create_device` (LPI block, ITT, MAPD),
//!   one event per vector (`its_alloc_device_irq`), MAPTI to the collection of the queue's
//!   CPU (the first CPU of its spread mask) and the LPI enabled; or one v2m SPI per vector.
//!   Exhaustion of LPIs, of a device's events and of v2m SPIs is a counted outcome.
//! - Assigned devices of GICv4 guests: MAPTI to the vCPU's pCPU, then VMAPTI to the vCPU's
//!   vPE with the doorbell enabled (KVM's `kvm_vgic_v4_set_forwarding`).
//! - Delivery: the device writes its EventID to GITS_TRANSLATER with its requester id as
//!   DeviceID; the ITS translates it (or drops it, with the fault counted) and the LPI becomes
//!   pending at the target CPU after the translation latency.
//! - Timed provisioning of an assigned function (`vfio`): VFIO's setup and release of one
//!   vector through the ITS command queue (MAPTI, the LPI's enable, DISCARD + VMAPTI; the
//!   reverse), the ITS device freed and created again around a resize up to Linux 6.15 and
//!   kept mapped from 6.16 (`platform.kernel`).
//! - Affinity changes: MOVI + SYNC through the timed ITS command queue (the report shows the
//!   wait and the round trip); a v2m SPI is rerouted at once (GICD_IROUTER).
//! - A migrated vCPU's vPE (`vpe_move`): VMOVP + VSYNC to its new pCPU through the same
//!   queue when KVM loads it there; the guests wait for its completion.
//!
//! # What is not modelled (and why)
//! CPU hotplug on ARM (the generic IRQ migration there is not modelled; the validator refuses
//! it) and IMS on ARM. There is no interrupt remapping: the SMMU does not remap MSIs, the
//! ITS provides isolation (docs/sources.md#arm-msi-isolation).

mod vfio;

use std::collections::VecDeque;

use sim::{EventQueue, Metrics, SimDuration, SimTime};

use super::super::devices::{Devices, MsiWrite};
use super::super::guest::GuestVector;
use super::super::metrics::ArmIds;
use super::super::params::{DeviceParams, GicMsiParams, GicParams, spread_mask};
use super::super::route::{Accept, Route, VlpiOutcome};
use super::super::{Event, ResourceUse};
use crate::arm::its::{
    CommandTiming, Delivery, EventId, Its, ItsDeviceId, ItsError, ItsParams, LPI_INTID_BASE, TranslateFault, V2mFrame,
    V2mParams, VintId, VpeId,
};
use crate::ids::{CpuId, DeviceId, QueueId, Vector};
use crate::kernel::KernelVersion;

/// Where the model places GITS_TRANSLATER (only the data word, the EventID, matters).
const GITS_TRANSLATER_ADDRESS: u64 = 0x0801_0040;
/// Where the model places the v2m frame's MSI_SETSPI_NS register.
const V2M_SETSPI_ADDRESS: u64 = 0x0802_0040;
/// No queue behind an INTID.
const NO_QUEUE: u32 = u32::MAX;

#[derive(Debug, Clone)]
enum ArmMsi {
    Its(Box<Its>),
    V2m {
        frame: V2mFrame,
        /// The CPU each SPI is routed to (GICD_IROUTER), by INTID.
        route: Vec<u32>,
    },
}

/// A queue's interrupt as the GIC knows it.
#[derive(Debug, Clone, Copy, Default)]
struct QueueIntid {
    /// The queue's ITS event or v2m SPI.
    interrupt: Option<u32>,
    /// Where it goes now (the CPU; for a vLPI the vCPU's pCPU and guest vector).
    target: Option<(CpuId, Vector)>,
}

/// The GIC's MSI controller and the INTID → queue table.
#[derive(Debug, Clone)]
pub(in crate::platform) struct ArmChip {
    msi: ArmMsi,
    latency: SimDuration,
    /// The queue whose interrupt each INTID is (`NO_QUEUE` when none).
    intid_queue: Vec<u32>,
    queues: Vec<QueueIntid>,
    /// Affinity changes in the command queue, in completion order (the queue is FIFO).
    in_flight: VecDeque<CommandTiming>,
    /// The scenario set the vPE ID bits: the report shows the IDs used.
    vpe_ids_row: bool,
    /// Linux 6.16+: a function's ITS device stays mapped when its last event is freed (a
    /// resize keeps it; `KernelVersion::its_device_outlives_its_events`).
    keep_its_device: bool,
    ids: ArmIds,
}

impl ArmChip {
    /// The chip of `params` for `cpu_count` CPUs, with the ITS behaviour of host `kernel`.
    pub fn new(params: &GicParams, cpu_count: u32, kernel: KernelVersion, ids: ArmIds) -> ArmChip {
        let mut vpe_ids_row = false;
        let (msi, latency, intids) = match &params.msi {
            GicMsiParams::Its { costs, translation_latency, lpi_id_bits, vpe_id_bits } => {
                let mut its_params = ItsParams::new(params.version, cpu_count, *costs);
                its_params.lpi_id_bits = *lpi_id_bits;
                if let Some(bits) = vpe_id_bits {
                    its_params.vpe_id_bits = *bits;
                    vpe_ids_row = true;
                }
                let mut its = Its::new(its_params).expect("validated ITS parameters");
                its.boot(SimTime::ZERO);
                let intids = 1usize << its_params.effective_lpi_id_bits();
                (ArmMsi::Its(Box::new(its)), *translation_latency, intids)
            }
            GicMsiParams::V2m { spis, latency } => {
                let v2m = V2mParams { nr_spis: *spis, ..V2mParams::default() };
                let frame = V2mFrame::new(v2m).expect("validated v2m parameters");
                let intids = (v2m.spi_start + v2m.nr_spis) as usize;
                (ArmMsi::V2m { frame, route: vec![0; intids] }, *latency, intids)
            }
        };
        ArmChip {
            msi,
            latency,
            intid_queue: vec![NO_QUEUE; intids],
            queues: Vec::new(),
            in_flight: VecDeque::new(),
            vpe_ids_row,
            keep_its_device: kernel.its_device_outlives_its_events(),
            ids,
        }
    }

    /// The ITS (a GICv2m platform has none: guests there are refused by validation).
    pub fn its_mut(&mut self) -> &mut Its {
        match &mut self.msi {
            ArmMsi::Its(its) => its,
            ArmMsi::V2m { .. } => panic!("guests on ARM need an ITS"),
        }
    }

    /// Ends setup: the boot, device and VM commands were consumed before the run starts.
    pub fn settle_setup(&mut self) {
        if let ArmMsi::Its(its) = &mut self.msi {
            its.settle_setup(SimTime::ZERO);
        }
    }

    /// The ITS's checks (LPI allocator, command queue, device and vPE tables) or the v2m
    /// frame's (bitmap against its count); they panic on a failure.
    pub fn check_invariants(&self) {
        match &self.msi {
            ArmMsi::Its(its) => its.check_invariants(),
            ArmMsi::V2m { frame, .. } => frame.check_invariants(),
        }
    }

    /// Where a queue's interrupt goes now.
    pub fn target(&self, queue: QueueId) -> Option<(CpuId, Vector)> {
        self.queues[queue.0 as usize].target
    }

    /// Adds a device: its ITS device (LPI block, ITT, MAPD) and one event (or v2m SPI) per
    /// queue. A device assigned to a guest gets its events when the guest's provisioning asks
    /// ([`Self::assign`]): then the first queue is returned.
    // Long: the ITS and v2m set-ups side by side, one queue at a time, as its_msi_prepare does.
    pub fn add_device(
        &mut self,
        device: DeviceId,
        dp: &DeviceParams,
        seed: u64,
        devices: &mut Devices,
        m: &mut Metrics,
    ) -> Option<u32> {
        let first_queue = devices.push(device, dp, dp.queue_count, seed);
        self.queues.resize(devices.queue_count(), QueueIntid::default());
        let its_device = ItsDeviceId(u32::from(dp.requester_id));
        if let ArmMsi::Its(its) = &mut self.msi
            && let Err(error) = its.create_device(SimTime::ZERO, its_device, dp.queue_count)
        {
            assert!(
                matches!(error, ItsError::LpiExhausted { .. }),
                "creating a validated ITS device failed: {error:?}"
            );
            m.add(self.ids.arm_lpi_exhausted, u64::from(dp.queue_count));
            m.note(self.ids.arm_lpi_exhausted, SimTime::ZERO, || {
                format!(
                    "{}: its_msi_prepare: no free range of {} LPIs (-ENOMEM): the device gets no MSIs",
                    dp.name, dp.queue_count
                )
            });
            return None;
        }
        if dp.assigned_to.is_some() {
            return Some(first_queue);
        }
        for q in 0..dp.queue_count {
            let queue_id = QueueId(first_queue + q);
            let cpu = spread_mask(&dp.affinity, q, dp.queue_count)[0];
            let allocated = match &mut self.msi {
                ArmMsi::Its(its) => match its.alloc_events(its_device, 1) {
                    Ok(range) => {
                        its.activate_event(SimTime::ZERO, its_device, range.first, cpu).expect("MAPTI of a new event");
                        its.unmask(SimTime::ZERO, its_device, range.first).expect("enabling a new LPI");
                        Some((range.lpi.0, range.first.0, GITS_TRANSLATER_ADDRESS))
                    }
                    Err(_) => None,
                },
                ArmMsi::V2m { frame, route } => frame.alloc(1).ok().map(|spi| {
                    route[spi.0 as usize] = cpu.0;
                    (spi.0, spi.0, V2M_SETSPI_ADDRESS)
                }),
            };
            let Some((intid, data, address)) = allocated else {
                let counter = match self.msi {
                    ArmMsi::Its(_) => self.ids.arm_events_exhausted,
                    ArmMsi::V2m { .. } => self.ids.arm_v2m_exhausted,
                };
                m.fail(counter, SimTime::ZERO, || format!("{} queue {q}: no free event or SPI (-28)", dp.name));
                continue;
            };
            self.intid_queue[intid as usize] = queue_id.0;
            self.queues[queue_id.0 as usize] = QueueIntid { interrupt: Some(data), target: Some((cpu, Vector(0))) };
            devices.write_message(queue_id, address, data);
            devices.unmask(queue_id);
        }
        None
    }

    /// An assigned queue of a GICv4 guest: its event is mapped (MAPTI to the vCPU's pCPU)
    /// and then forwarded to the vCPU's vPE as a vLPI for its guest vector (VMAPTI, doorbell
    /// enabled), as KVM's `kvm_vgic_v4_set_forwarding` does.
    pub fn assign(&mut self, now: SimTime, target: GuestVector, devices: &mut Devices, m: &mut Metrics) {
        let GuestVector { queue: queue_id, vector, pcpu, vpe, .. } = target;
        let vpe = vpe.expect("ARM guests have vPEs");
        let source = devices.source(queue_id);
        let its_device = ItsDeviceId(u32::from(source.requester_id));
        let its = self.its_mut();
        let Ok(range) = its.alloc_events(its_device, 1) else {
            m.fail(self.ids.arm_events_exhausted, now, || {
                format!("{}: no free event in its LPI block (-28)", devices.label(queue_id))
            });
            return;
        };
        its.activate_event(now, its_device, range.first, pcpu).expect("MAPTI of a new event");
        let vintid = VintId(LPI_INTID_BASE + u32::from(vector.0));
        its.forward_vlpi(now, its_device, range.first, vpe, vintid, true).expect("forwarding to a vPE");
        self.queues[queue_id.0 as usize] = QueueIntid { interrupt: Some(range.first.0), target: Some((pcpu, vector)) };
        devices.write_message(queue_id, GITS_TRANSLATER_ADDRESS, range.first.0);
        devices.unmask(queue_id);
    }

    /// An MSI write reaches GITS_TRANSLATER (or the v2m frame).
    pub fn translate(&mut self, write: MsiWrite, m: &mut Metrics) -> Route {
        let its_device = ItsDeviceId(u32::from(write.requester_id));
        let after = self.latency;
        let (cpu, intid) = match &mut self.msi {
            ArmMsi::Its(its) => match its.translate(its_device, EventId(write.data)) {
                Ok(Delivery::Physical { lpi, cpu }) => (cpu, lpi.0),
                Ok(Delivery::VirtualDirect { vpe, vintid, .. }) => {
                    return Route::Vlpi { vpe, vintid: vintid.0, outcome: VlpiOutcome::Direct, after };
                }
                Ok(Delivery::Doorbell { vpe, vintid, .. }) => {
                    return Route::Vlpi { vpe, vintid: vintid.0, outcome: VlpiOutcome::Doorbell, after };
                }
                Ok(Delivery::VirtualPending { vpe, vintid }) => {
                    return Route::Vlpi { vpe, vintid: vintid.0, outcome: VlpiOutcome::Pending, after };
                }
                Err(fault) => {
                    let index = match fault {
                        TranslateFault::UnmappedDevice(_) => 0,
                        TranslateFault::EventOutOfRange { .. } => 1,
                        TranslateFault::UnmappedEvent { .. } => 2,
                        TranslateFault::CollectionUnmapped(_) => 3,
                        TranslateFault::LpiDisabled(_) => 4,
                        TranslateFault::VpeUnmapped(_) => 5,
                    };
                    return Route::Lost(self.ids.lost_its[index]);
                }
            },
            ArmMsi::V2m { route, .. } => (CpuId(route[write.data as usize]), write.data),
        };
        m.record(self.ids.its_translate, after.as_ps());
        Route::Intid { cpu, intid, after }
    }

    /// An LPI or SPI becomes pending at a CPU: the queue whose handler runs there.
    pub fn accept(&self, intid: u32) -> Accept {
        match self.intid_queue.get(intid as usize).copied().unwrap_or(NO_QUEUE) {
            NO_QUEUE => Accept::Lost(self.ids.lost_no_handler),
            queue => Accept::Handler(QueueId(queue)),
        }
    }

    /// Moves every interrupt of the queues `queues` (one device's, with `requester_id`) to
    /// `cpus` (spread over them): MOVI + SYNC per event through the ITS command queue, or a
    /// GICD_IROUTER write per v2m SPI. An event already on its CPU issues nothing. Each
    /// command's wait and round trip are recorded when it completes (`ItsCommandDone`).
    pub fn set_affinity(
        &mut self,
        queues: std::ops::Range<u32>,
        requester_id: u16,
        cpus: &[CpuId],
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) {
        let now = q.now();
        let its_device = ItsDeviceId(u32::from(requester_id));
        let first = queues.start;
        for queue in queues {
            let Some(interrupt) = self.queues[queue as usize].interrupt else { continue };
            let cpu = cpus[(queue - first) as usize % cpus.len()];
            match &mut self.msi {
                ArmMsi::Its(its) => {
                    // A forwarded (vLPI) event refuses physical affinity changes (-EINVAL).
                    let Ok(timing) = its.set_affinity(now, its_device, EventId(interrupt), cpu) else {
                        m.add(self.ids.affinity_refused, 1);
                        continue;
                    };
                    if timing.round_trips > 0 {
                        q.schedule_at(timing.done, Event::ItsCommandDone);
                        self.in_flight.push_back(timing);
                    }
                }
                ArmMsi::V2m { route, .. } => route[interrupt as usize] = cpu.0,
            }
            self.queues[queue as usize].target = Some((cpu, Vector(0)));
        }
    }

    /// KVM loads a migrated vCPU on `pcpu` and first points its vPE there (`vgic_v4_load` →
    /// `irq_set_affinity` → `its_vpe_set_affinity` → `its_send_vmovp`): VMOVP + VSYNC on the
    /// (single) ITS, on GICv4.0 the doorbell moved too, waited for by the loading CPU. The
    /// operation's wait and round trip are recorded when it is sent, and the VMOVP counted.
    /// `None` when the vPE was already mapped to `pcpu` (nothing sent).
    pub fn vpe_move(&mut self, now: SimTime, vpe: VpeId, pcpu: CpuId, m: &mut Metrics) -> Option<SimTime> {
        let timing = self.its_mut().vpe_set_affinity(now, vpe, pcpu).expect("moving a live vPE to a CPU")?;
        m.record(self.ids.its_command_wait, timing.queue_wait.as_ps());
        m.record(self.ids.its_command, timing.latency().as_ps());
        m.add(self.ids.its_round_trips, u64::from(timing.round_trips));
        m.add(self.ids.its_timeouts, u64::from(timing.timeouts));
        Some(timing.done)
    }

    /// The oldest command in flight completed: its wait and round trip are recorded now.
    pub fn on_command_done(&mut self, now: SimTime, m: &mut Metrics) {
        let timing = self.in_flight.pop_front().expect("a completion has its command");
        debug_assert_eq!(timing.done, now, "ITS commands complete in order");
        m.record(self.ids.its_command_wait, timing.queue_wait.as_ps());
        m.record(self.ids.its_command, now.since(timing.submitted).as_ps());
        m.add(self.ids.its_round_trips, u64::from(timing.round_trips));
        m.add(self.ids.its_timeouts, u64::from(timing.timeouts));
    }

    /// Use of the GIC's limited resources.
    pub fn resources(&self) -> Vec<ResourceUse> {
        match &self.msi {
            ArmMsi::Its(its) => {
                let r = its.resources();
                let mut rows = vec![
                    ResourceUse::over("arm.lpis", r.lpis_limit, [r.lpis_used]),
                    ResourceUse::over("arm.its_command_queue_slots", r.cmd_queue_slots, [r.cmd_queue_high_water]),
                ];
                if self.vpe_ids_row {
                    rows.push(ResourceUse::over("arm.vpe_ids", its.params().vpe_id_capacity(), [its.vpe_ids_used()]));
                }
                rows
            }
            ArmMsi::V2m { frame, .. } => vec![ResourceUse::over("arm.v2m_spis", frame.limit(), [frame.used()])],
        }
    }
}
