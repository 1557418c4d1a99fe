//! The ARM side of the platform: devices' MSIs through a GICv3/v4 ITS (DeviceID/EventID →
//! LPI → collection) or a GICv2m frame (one SPI per MSI), delivered to the same CPU handler
//! path as on x86.
//!
//! # What is modelled
//! - Setup as Linux does it: `its_msi_prepare` → `its_create_device` (LPI block, ITT, MAPD),
//!   one event per vector (`its_alloc_device_irq`), MAPTI to the collection of the queue's
//!   CPU (the first CPU of its spread mask) and the LPI enabled; or one v2m SPI per vector.
//!   Exhaustion of LPIs, of a device's events and of v2m SPIs is a counted outcome.
//! - Delivery: the device writes its EventID to GITS_TRANSLATER with its requester id as
//!   DeviceID; the ITS translates it (or drops it, with the fault counted) and the LPI becomes
//!   pending at the target CPU after the translation latency.
//! - Affinity changes: MOVI + SYNC through the timed ITS command queue (the report shows the
//!   wait and the round trip); a v2m SPI is rerouted at once (GICD_IROUTER).
//!
//! # What is not modelled (and why)
//! CPU hotplug on ARM (the generic IRQ migration there is not modelled; the validator refuses
//! it), IMS on ARM, and GICv4 vLPIs for guests (the ITS model has them; guests are not part
//! of the platform yet). There is no interrupt remapping: the SMMU does not remap MSIs, the
//! ITS provides isolation (calibration.md §3, ARM note).

use sim::{EventQueue, SimDuration, SimTime};

use super::guest::VlpiOutcome;
use super::{DeviceParams, Event, GicMsiParams, GicParams, NO_QUEUE, Platform, ResourceUse, spread_mask};
use crate::arm::its::{
    Delivery, EventId, Its, ItsDeviceId, ItsError, ItsParams, LPI_INTID_BASE, TranslateFault, V2mFrame, V2mParams,
    VintId, VpeId,
};
use crate::ids::{CpuId, DeviceId, QueueId, Vector};

/// Where the model places GITS_TRANSLATER (only the data word, the EventID, matters).
const GITS_TRANSLATER_ADDRESS: u64 = 0x0801_0040;
/// Where the model places the v2m frame's MSI_SETSPI_NS register.
const V2M_SETSPI_ADDRESS: u64 = 0x0802_0040;

#[derive(Debug, Clone)]
enum ArmMsi {
    Its(Box<Its>),
    V2m {
        frame: V2mFrame,
        /// The CPU each SPI is routed to (GICD_IROUTER), by INTID.
        route: Vec<u32>,
    },
}

/// The GIC's MSI controller and the INTID → queue table.
#[derive(Debug, Clone)]
pub(super) struct ArmGic {
    msi: ArmMsi,
    latency: SimDuration,
    /// The queue whose interrupt each INTID is (`NO_QUEUE` when none).
    intid_queue: Vec<u32>,
}

impl ArmGic {
    pub(super) fn new(params: &GicParams, cpu_count: u32) -> ArmGic {
        match &params.msi {
            GicMsiParams::Its { costs, translation_latency, lpi_id_bits } => {
                let mut its_params = ItsParams::new(params.version, cpu_count, *costs);
                its_params.lpi_id_bits = *lpi_id_bits;
                let mut its = Its::new(its_params).expect("validated ITS parameters");
                its.boot(SimTime::ZERO);
                let intids = 1usize << its_params.effective_lpi_id_bits();
                ArmGic {
                    msi: ArmMsi::Its(Box::new(its)),
                    latency: *translation_latency,
                    intid_queue: vec![NO_QUEUE; intids],
                }
            }
            GicMsiParams::V2m { spis, latency } => {
                let v2m = V2mParams { nr_spis: *spis, ..V2mParams::default() };
                let frame = V2mFrame::new(v2m).expect("validated v2m parameters");
                let intids = (v2m.spi_start + v2m.nr_spis) as usize;
                ArmGic {
                    msi: ArmMsi::V2m { frame, route: vec![0; intids] },
                    latency: *latency,
                    intid_queue: vec![NO_QUEUE; intids],
                }
            }
        }
    }

    /// The ITS (a GICv2m platform has none: guests there are refused by validation).
    pub(super) fn its_mut(&mut self) -> &mut Its {
        match &mut self.msi {
            ArmMsi::Its(its) => its,
            ArmMsi::V2m { .. } => panic!("guests on ARM need an ITS"),
        }
    }

    /// Use of the GIC's limited resources.
    pub(super) fn resources(&self) -> Vec<ResourceUse> {
        match &self.msi {
            ArmMsi::Its(its) => {
                let r = its.resources();
                vec![
                    ResourceUse::over("arm.lpis", r.lpis_limit, [r.lpis_used]),
                    ResourceUse::over("arm.its_command_queue_slots", r.cmd_queue_slots, [r.cmd_queue_high_water]),
                ]
            }
            ArmMsi::V2m { frame, .. } => vec![ResourceUse::over("arm.v2m_spis", frame.limit(), [frame.used()])],
        }
    }
}

impl Platform {
    fn gic(&mut self) -> &mut ArmGic {
        self.arm.as_mut().expect("an ARM platform")
    }

    /// Adds a device on an ARM platform: one ITS event (or v2m SPI) per queue.
    pub(super) fn add_device_arm(&mut self, device: DeviceId, dp: &DeviceParams, seed: u64) {
        let first_queue = self.push_device(device, dp, dp.queue_count, seed);
        let its_device = ItsDeviceId(u32::from(dp.requester_id));
        if let ArmMsi::Its(its) = &mut self.gic().msi
            && let Err(error) = its.create_device(SimTime::ZERO, its_device, dp.queue_count)
        {
            assert!(
                matches!(error, ItsError::LpiExhausted { .. }),
                "creating a validated ITS device failed: {error:?}"
            );
            self.metrics.add(self.ids.arm_lpi_exhausted, u64::from(dp.queue_count));
            return;
        }
        if let Some(guest) = dp.assigned_to {
            self.assign_device_arm(first_queue, dp, its_device, guest);
            return;
        }
        for q in 0..dp.queue_count {
            let queue_id = QueueId(first_queue + q);
            let cpu = spread_mask(&dp.affinity, q, dp.queue_count)[0];
            let allocated = match &mut self.gic().msi {
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
                let counter = match self.gic().msi {
                    ArmMsi::Its(_) => self.ids.arm_events_exhausted,
                    ArmMsi::V2m { .. } => self.ids.arm_v2m_exhausted,
                };
                self.metrics.add(counter, 1);
                continue;
            };
            self.gic().intid_queue[intid as usize] = queue_id.0;
            let queue = &mut self.queues[queue_id.0 as usize];
            queue.arm_interrupt = Some(data);
            queue.target = Some((cpu, Vector(0)));
            let store = &mut self.devices.last_mut().expect("just pushed").store;
            store.write_message(q, address, data);
            store.unmask(q);
        }
    }

    /// A device assigned to a GICv4 guest: each queue's event is mapped (MAPTI to the vCPU's
    /// pCPU) and then forwarded to the vCPU's vPE as a vLPI (VMAPTI, doorbell enabled), as
    /// KVM's `kvm_vgic_v4_set_forwarding` does.
    fn assign_device_arm(&mut self, first_queue: u32, dp: &DeviceParams, its_device: ItsDeviceId, guest: u32) {
        for q in 0..dp.queue_count {
            let queue_id = QueueId(first_queue + q);
            let guests = self.guests.as_mut().expect("assigned devices need guests");
            let Some((vcpu, vector)) = guests.assign_queue(guest, q, queue_id) else {
                self.metrics.add(self.ids.setup_guest_vector_fail, 1);
                continue;
            };
            let (pcpu, vpe) = (guests.pcpu_of(vcpu), guests.vpe_of(vcpu));
            let its = self.gic().its_mut();
            let Ok(range) = its.alloc_events(its_device, 1) else {
                self.metrics.add(self.ids.arm_events_exhausted, 1);
                continue;
            };
            its.activate_event(SimTime::ZERO, its_device, range.first, pcpu).expect("MAPTI of a new event");
            let vintid = VintId(LPI_INTID_BASE + u32::from(vector.0));
            its.forward_vlpi(SimTime::ZERO, its_device, range.first, vpe, vintid, true).expect("forwarding to a vPE");
            let queue = &mut self.queues[queue_id.0 as usize];
            queue.arm_interrupt = Some(range.first.0);
            queue.target = Some((pcpu, vector));
            let store = &mut self.devices.last_mut().expect("just pushed").store;
            store.write_message(q, GITS_TRANSLATER_ADDRESS, range.first.0);
            store.unmask(q);
        }
    }

    /// An MSI write reaches GITS_TRANSLATER (or the v2m frame).
    pub(super) fn on_msi_write_arm(&mut self, queue_id: QueueId, raised_at: SimTime, q: &mut EventQueue<Event>) {
        let queue = &self.queues[queue_id.0 as usize];
        let device = &self.devices[queue.device.0 as usize];
        let data = device.store.entry(queue.entry).data;
        let its_device = ItsDeviceId(u32::from(device.params.requester_id));
        let gic = self.arm.as_mut().expect("an ARM platform");
        let latency = gic.latency;
        let target = match &mut gic.msi {
            ArmMsi::Its(its) => match its.translate(its_device, EventId(data)) {
                Ok(Delivery::Physical { lpi, cpu }) => Ok((cpu, lpi.0)),
                Ok(Delivery::VirtualDirect { vpe, vintid, .. }) => {
                    return self.vlpi_delivered(vpe, vintid, VlpiOutcome::Direct, latency, raised_at, q);
                }
                Ok(Delivery::Doorbell { vpe, vintid, .. }) => {
                    return self.vlpi_delivered(vpe, vintid, VlpiOutcome::Doorbell, latency, raised_at, q);
                }
                Ok(Delivery::VirtualPending { vpe, vintid }) => {
                    return self.vlpi_delivered(vpe, vintid, VlpiOutcome::Pending, latency, raised_at, q);
                }
                Err(fault) => Err(Some(fault)),
            },
            ArmMsi::V2m { route, .. } => Ok((CpuId(route[data as usize]), data)),
        };
        match target {
            Ok((cpu, intid)) => {
                self.metrics.record(self.ids.its_translate, latency.as_ps());
                let cpu = u16::try_from(cpu.0).expect("at most 65,536 CPUs");
                q.schedule_in(latency, Event::DeliverIntid { cpu, intid, raised_at });
            }
            Err(None) => self.lose(self.ids.lost_no_handler),
            Err(Some(fault)) => {
                let index = match fault {
                    TranslateFault::UnmappedDevice(_) => 0,
                    TranslateFault::EventOutOfRange { .. } => 1,
                    TranslateFault::UnmappedEvent { .. } => 2,
                    TranslateFault::CollectionUnmapped(_) => 3,
                    TranslateFault::LpiDisabled(_) => 4,
                    TranslateFault::VpeUnmapped(_) => 5,
                };
                self.lose(self.ids.lost_its[index]);
            }
        }
    }

    fn vlpi_delivered(
        &mut self,
        vpe: VpeId,
        vintid: VintId,
        outcome: VlpiOutcome,
        latency: SimDuration,
        raised_at: SimTime,
        q: &mut EventQueue<Event>,
    ) {
        let vcpu = self.guests.as_ref().and_then(|g| g.vcpu_of_vpe(vpe));
        match (vcpu, u8::try_from(vintid.0 - LPI_INTID_BASE)) {
            (Some(vcpu), Ok(vector)) => self.vlpi_to_vcpu(vcpu, Vector(vector), outcome, latency, raised_at, q),
            _ => self.lose(self.ids.lost_no_handler),
        }
    }

    /// An LPI or SPI becomes pending at a CPU: its handler is queued there.
    pub(super) fn deliver_intid(&mut self, cpu: CpuId, intid: u32, raised_at: SimTime, q: &mut EventQueue<Event>) {
        let queue = self.gic().intid_queue.get(intid as usize).copied().unwrap_or(NO_QUEUE);
        if queue == NO_QUEUE {
            self.lose(self.ids.lost_no_handler);
            return;
        }
        self.enqueue(cpu, QueueId(queue), raised_at, q);
    }

    /// Moves every interrupt of `device` to `cpus` (spread over them): MOVI + SYNC per event
    /// through the ITS command queue, or a GICD_IROUTER write per v2m SPI.
    pub(super) fn set_affinity_arm(&mut self, device: DeviceId, cpus: &[CpuId], q: &mut EventQueue<Event>) {
        let now = q.now();
        let d = &self.devices[device.0 as usize];
        let (first, count) = (d.first_queue, d.params.queue_count);
        let its_device = ItsDeviceId(u32::from(d.params.requester_id));
        for k in 0..count {
            let queue_id = QueueId(first + k);
            let Some(interrupt) = self.queues[queue_id.0 as usize].arm_interrupt else { continue };
            let cpu = cpus[k as usize % cpus.len()];
            let gic = self.arm.as_mut().expect("an ARM platform");
            match &mut gic.msi {
                ArmMsi::Its(its) => {
                    // A forwarded (vLPI) event refuses physical affinity changes (-EINVAL).
                    let Ok(timing) = its.set_affinity(now, its_device, EventId(interrupt), cpu) else {
                        self.metrics.add(self.ids.affinity_refused, 1);
                        continue;
                    };
                    self.metrics.record(self.ids.its_command_wait, timing.queue_wait.as_ps());
                    self.metrics.record(self.ids.its_command, timing.done.since(now).as_ps());
                    self.metrics.add(self.ids.its_round_trips, u64::from(timing.round_trips));
                    self.metrics.add(self.ids.its_timeouts, u64::from(timing.timeouts));
                }
                ArmMsi::V2m { route, .. } => route[interrupt as usize] = cpu.0,
            }
            self.queues[queue_id.0 as usize].target = Some((cpu, Vector(0)));
        }
    }
}
