//! The bare-metal x86 platform: devices raise MSI-X interrupts that travel through an
//! optional interrupt-remapping unit to a CPU, whose handler serves them one at a time.
//!
//! ```text
//!  Raise ──msi_write──▶ MsiWrite ──remap──▶ Deliver ──queue_wait──▶ handler ──eoi──▶ done
//!  (queue's arrival     (IOMMU decodes the   (LAPIC of the    (FIFO, non-preemptive,
//!   process fires)       message, IRTE)       target CPU)      one per CPU)
//! ```
//!
//! # What is modelled
//! - Each queue of each device owns one MSI-X entry. At build time the OS spreads the queues
//!   over the device's CPU list (queue *i* → CPU list[*i* mod len], the managed-affinity
//!   spread for one node), allocates a vector on that CPU and programs the entry: with
//!   interrupt remapping, an IRTE plus a remappable-format message; without, a
//!   compatibility-format message straight to the CPU.
//! - A raise becomes an MSI write after `msi_write_latency`; the remapping unit decodes it and
//!   looks up the IRTE (`lookup_latency`), or blocks it with a VT-d fault reason; the LAPIC
//!   finds the handler for the vector; the CPU runs handlers in arrival order, each for a
//!   service time drawn from the device's distribution plus the EOI cost.
//! - Latency is recorded per stage and end to end. Interrupts are conserved: at the end,
//!   raised = delivered + lost + in flight, counted from the event queue and CPU queues
//!   ([`Platform::conservation`]).
//!
//! # What is not modelled (and why)
//! - IRR coalescing: a real LAPIC holds one pending interrupt per vector, so raises of a
//!   vector that is already pending merge. Here every raise is a job in the CPU's FIFO, the
//!   queueing abstraction the M/M/1 and M/D/1 oracles check. The device and APIC models
//!   bring IRR/ISR semantics.
//! - Preemption by higher-priority vectors, softirq/threaded handlers, masking and the PBA.
//!
//! # Parameters and their sources
//! Every parameter is set by the scenario; defaults and their sources live in the scenario
//! schema (scenarios crate) and docs/parameters.md.

use std::collections::VecDeque;

use sim::{CounterId, DurationDist, EventQueue, HistogramId, Metrics, RngStream, SimDuration, SimTime, Unit, World};

use crate::ids::{CpuId, DeviceId, QueueId, Vector};
use crate::iommu::remap::{INTR_REMAP_TABLE_ENTRIES, Irte, IrteTable, RemapFault};
use crate::pci::msix::{MSIX_TABLE_ENTRIES_MAX, MsixTable};
use crate::workload::{ArrivalParams, Arrivals};
use crate::x86::msi::{self, MsiMessage};
use crate::x86::vectors::VectorSpace;

/// Interrupt-remapping settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RemapParams {
    /// Time from the MSI write reaching the IOMMU to the remapped interrupt leaving it.
    pub lookup_latency: SimDuration,
    /// Entries in the IRTE table (65,536 in Linux).
    pub table_entries: u32,
}

/// One device function and its queues.
#[derive(Debug, Clone)]
pub struct DeviceParams {
    /// Name used in reports and RNG stream paths; unique in the topology.
    pub name: String,
    /// Queues, each with its own MSI-X entry (at most 2,048).
    pub queue_count: u32,
    /// Device raise to MSI write arriving at the interrupt controller / IOMMU.
    pub msi_write_latency: SimDuration,
    /// When each queue raises interrupts.
    pub arrival: ArrivalParams,
    /// Handler service time per interrupt.
    pub service: DurationDist,
    /// CPU time of the EOI write after the handler.
    pub eoi_cost: SimDuration,
    /// CPUs the queues are spread over, in order.
    pub affinity: Vec<CpuId>,
}

/// The whole platform.
#[derive(Debug, Clone)]
pub struct PlatformParams {
    /// Logical CPUs (APIC id = index).
    pub cpu_count: u32,
    /// Interrupt remapping; `None` means messages go straight to the LAPICs.
    pub remapping: Option<RemapParams>,
    /// Devices in topology order.
    pub devices: Vec<DeviceParams>,
}

/// Everything that happens on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A queue's arrival process fires: the device raises the queue's interrupt.
    Raise {
        /// The raising queue.
        queue: QueueId,
    },
    /// The MSI write reaches the interrupt controller (or IOMMU).
    MsiWrite {
        /// The raising queue (its MSI-X entry holds the message).
        queue: QueueId,
        /// When the device raised it.
        raised_at: SimTime,
    },
    /// The (remapped) interrupt reaches the target CPU's LAPIC.
    Deliver {
        /// Target CPU.
        cpu: CpuId,
        /// Vector.
        vector: Vector,
        /// When the device raised it.
        raised_at: SimTime,
    },
    /// The CPU's current handler (and its EOI) finished.
    HandlerDone {
        /// The CPU.
        cpu: CpuId,
    },
}

// Events sit in the queue by the million: keep them small.
const _: () = assert!(std::mem::size_of::<Event>() <= 16);

#[derive(Debug, Clone)]
struct Queue {
    device: DeviceId,
    entry: u32,
    arrivals: Arrivals,
    service_rng: RngStream,
}

#[derive(Debug, Clone)]
struct Device {
    params: DeviceParams,
    msix: MsixTable,
}

#[derive(Debug, Clone, Copy)]
struct Job {
    queue: QueueId,
    raised_at: SimTime,
    arrived_at: SimTime,
}

const NO_QUEUE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Cpu {
    /// Interrupts waiting or in service (front).
    jobs: VecDeque<Job>,
    /// The handler registered on each vector, as a queue id (`NO_QUEUE` when none).
    vector_queue: Box<[u32; 256]>,
    vectors_used: u32,
}

#[derive(Debug, Clone, Copy)]
struct Ids {
    raised: CounterId,
    delivered: CounterId,
    lost: CounterId,
    lost_remap: [CounterId; 3],
    lost_not_interrupt: CounterId,
    lost_no_handler: CounterId,
    cpu_busy_ps: CounterId,
    setup_routed: CounterId,
    setup_vector_fail: CounterId,
    setup_irte_fail: CounterId,
    msi_write: HistogramId,
    remap: HistogramId,
    queue_wait: HistogramId,
    handler: HistogramId,
    eoi: HistogramId,
    end_to_end: HistogramId,
}

impl Ids {
    fn register(m: &mut Metrics) -> Ids {
        let c = |m: &mut Metrics, name: &str, unit, desc: &str| m.counter(name, unit, desc);
        let h = |m: &mut Metrics, name: &str, desc: &str| m.histogram(name, Unit::Picoseconds, desc);
        Ids {
            raised: c(m, "interrupt.raised_count", Unit::Count, "interrupts raised by devices"),
            delivered: c(
                m,
                "interrupt.delivered_count",
                Unit::Count,
                "interrupts whose handler and EOI completed",
            ),
            lost: c(
                m,
                "interrupt.lost_count",
                Unit::Count,
                "interrupts that never reached a handler (all reasons)",
            ),
            lost_remap: [
                c(
                    m,
                    "interrupt.lost.remap_fault_0x21_count",
                    Unit::Count,
                    RemapFault::IndexBeyondTable.reason(),
                ),
                c(
                    m,
                    "interrupt.lost.remap_fault_0x22_count",
                    Unit::Count,
                    RemapFault::EntryNotPresent.reason(),
                ),
                c(
                    m,
                    "interrupt.lost.remap_fault_0x25_count",
                    Unit::Count,
                    RemapFault::CompatBlocked.reason(),
                ),
            ],
            lost_not_interrupt: c(
                m,
                "interrupt.lost.not_interrupt_address_count",
                Unit::Count,
                "MSI writes outside the 0xFEEx_xxxx interrupt window",
            ),
            lost_no_handler: c(
                m,
                "interrupt.lost.no_handler_count",
                Unit::Count,
                "No irq handler for vector",
            ),
            cpu_busy_ps: c(
                m,
                "cpu.busy_ps",
                Unit::Picoseconds,
                "CPU time spent in handlers and EOIs, all CPUs",
            ),
            setup_routed: c(
                m,
                "setup.queue_routed_count",
                Unit::Count,
                "queues with a working interrupt",
            ),
            setup_vector_fail: c(
                m,
                "setup.vector_alloc_fail_count",
                Unit::Count,
                "queues left without an interrupt: no free vector on the target CPU (-ENOSPC)",
            ),
            setup_irte_fail: c(
                m,
                "setup.irte_alloc_fail_count",
                Unit::Count,
                "queues left without an interrupt: can't allocate an IRTE",
            ),
            msi_write: h(
                m,
                "latency.msi_write_ps",
                "device raise to MSI write at the interrupt controller",
            ),
            remap: h(m, "latency.remap_ps", "IRTE lookup in the interrupt-remapping unit"),
            queue_wait: h(m, "latency.queue_wait_ps", "arrival at the CPU to the handler starting"),
            handler: h(m, "latency.handler_ps", "handler service time"),
            eoi: h(m, "latency.eoi_ps", "EOI write"),
            end_to_end: h(m, "latency.end_to_end_ps", "device raise to EOI done"),
        }
    }
}

/// The bare-metal platform as a [`World`].
#[derive(Debug, Clone)]
pub struct Platform {
    remap_latency: Option<SimDuration>,
    irte: Option<IrteTable>,
    devices: Vec<Device>,
    queues: Vec<Queue>,
    cpus: Vec<Cpu>,
    metrics: Metrics,
    ids: Ids,
}

/// Where every raised interrupt is at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conservation {
    /// Raised by devices.
    pub raised: u64,
    /// Handler and EOI done.
    pub delivered: u64,
    /// Blocked or dropped on the way (modelled failures).
    pub lost: u64,
    /// Still travelling: MSI writes and deliveries in the event queue.
    pub in_transit: u64,
    /// Waiting for, or in, a handler on a CPU.
    pub at_cpu: u64,
}

impl Conservation {
    /// Raised = delivered + lost + in transit + at a CPU.
    pub fn holds(&self) -> bool {
        self.raised == self.delivered + self.lost + self.in_transit + self.at_cpu
    }
}

/// Use of one limited resource, over its instances (CPUs, functions, IOMMUs).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceUse {
    /// What is counted, e.g. `x86.vectors_per_cpu`.
    pub name: &'static str,
    /// Instances the limit applies to separately.
    pub instance_count: u32,
    /// Least used on any instance.
    pub used_min: u32,
    /// Mean use per instance.
    pub used_mean: f64,
    /// Most used on any instance.
    pub used_max: u32,
    /// The limit per instance.
    pub limit: u32,
}

impl ResourceUse {
    fn over<I: IntoIterator<Item = u32>>(name: &'static str, limit: u32, values: I) -> ResourceUse {
        let values: Vec<u32> = values.into_iter().collect();
        let n = values.len() as u32;
        let sum: u64 = values.iter().map(|&v| u64::from(v)).sum();
        ResourceUse {
            name,
            instance_count: n,
            used_min: values.iter().copied().min().unwrap_or(0),
            used_mean: if n == 0 { 0.0 } else { sum as f64 / f64::from(n) },
            used_max: values.iter().copied().max().unwrap_or(0),
            limit,
        }
    }
}

impl Platform {
    /// Builds the platform, programs every queue's interrupt, and schedules each routed
    /// queue's first arrival. Parameters must be valid (the scenario validator ensures it).
    pub fn new(params: &PlatformParams, seed: u64) -> (Platform, EventQueue<Event>) {
        assert!(params.cpu_count > 0, "a platform needs at least one CPU");
        let mut metrics = Metrics::new();
        let ids = Ids::register(&mut metrics);
        let mut irte = params.remapping.as_ref().map(|r| IrteTable::new(r.table_entries));
        let mut vectors = VectorSpace::new(params.cpu_count);
        let mut cpus: Vec<Cpu> = (0..params.cpu_count)
            .map(|_| Cpu {
                jobs: VecDeque::new(),
                vector_queue: Box::new([NO_QUEUE; 256]),
                vectors_used: 0,
            })
            .collect();
        let mut devices = Vec::with_capacity(params.devices.len());
        let mut queues = Vec::new();
        let mut event_queue = EventQueue::with_capacity(1024);
        for (device_index, dp) in params.devices.iter().enumerate() {
            assert!(dp.queue_count <= MSIX_TABLE_ENTRIES_MAX && !dp.affinity.is_empty());
            let mut msix = MsixTable::new(dp.queue_count);
            for q in 0..dp.queue_count {
                let queue_id = QueueId(u32::try_from(queues.len()).expect("fewer than 2^32 queues"));
                let cpu = dp.affinity[(q as usize) % dp.affinity.len()];
                assert!(cpu.0 < params.cpu_count, "affinity names a CPU that does not exist");
                let path = format!("device/{}/queue/{q}", dp.name);
                let mut arrivals = Arrivals::new(&dp.arrival, RngStream::new(seed, &format!("{path}/arrival")));
                let routed = match vectors.alloc(cpu) {
                    Err(_) => {
                        metrics.add(ids.setup_vector_fail, 1);
                        false
                    }
                    Ok(vector) => {
                        let message = match irte.as_mut() {
                            Some(table) => table
                                .alloc(Irte {
                                    dest_apic_id: cpu.0,
                                    vector: vector.0,
                                })
                                .map(msi::compose_remappable)
                                .ok(),
                            None => Some(msi::compose_compat(
                                u8::try_from(cpu.0).expect("validation keeps CPUs below 256 without remapping"),
                                vector.0,
                            )),
                        };
                        match message {
                            None => {
                                metrics.add(ids.setup_irte_fail, 1);
                                false
                            }
                            Some((address, data)) => {
                                msix.program(q, address, data);
                                let c = &mut cpus[cpu.0 as usize];
                                c.vector_queue[usize::from(vector.0)] = queue_id.0;
                                c.vectors_used += 1;
                                true
                            }
                        }
                    }
                };
                if routed {
                    metrics.add(ids.setup_routed, 1);
                    event_queue.schedule_at(arrivals.first(), Event::Raise { queue: queue_id });
                }
                queues.push(Queue {
                    device: DeviceId(device_index as u32),
                    entry: q,
                    arrivals,
                    service_rng: RngStream::new(seed, &format!("{path}/service")),
                });
            }
            devices.push(Device {
                params: dp.clone(),
                msix,
            });
        }
        let platform = Platform {
            remap_latency: params.remapping.as_ref().map(|r| r.lookup_latency),
            irte,
            devices,
            queues,
            cpus,
            metrics,
            ids,
        };
        (platform, event_queue)
    }

    /// The run's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Where every raised interrupt is, counted independently from the event queue and
    /// the CPU queues.
    pub fn conservation(&self, queue: &EventQueue<Event>) -> Conservation {
        let in_transit = queue
            .iter()
            .filter(|(_, e)| matches!(e, Event::MsiWrite { .. } | Event::Deliver { .. }));
        Conservation {
            raised: self.metrics.get(self.ids.raised),
            delivered: self.metrics.get(self.ids.delivered),
            lost: self.metrics.get(self.ids.lost),
            in_transit: in_transit.count() as u64,
            at_cpu: self.cpus.iter().map(|c| c.jobs.len() as u64).sum(),
        }
    }

    /// Use of every limited resource against its limit.
    pub fn resources(&self) -> Vec<ResourceUse> {
        let mut out = vec![
            ResourceUse::over(
                "x86.vectors_per_cpu",
                VectorSpace::new(1).available(CpuId(0)),
                self.cpus.iter().map(|c| c.vectors_used),
            ),
            ResourceUse::over(
                "pci.msix_entries_per_function",
                MSIX_TABLE_ENTRIES_MAX,
                self.devices.iter().map(|d| d.msix.len()),
            ),
        ];
        if let Some(table) = &self.irte {
            out.push(ResourceUse::over(
                "iommu.irtes_per_iommu",
                INTR_REMAP_TABLE_ENTRIES.min(table.capacity()),
                [table.used()],
            ));
        }
        out
    }

    fn lose(&mut self, reason: CounterId) {
        self.metrics.add(self.ids.lost, 1);
        self.metrics.add(reason, 1);
    }

    fn on_raise(&mut self, queue_id: QueueId, q: &mut EventQueue<Event>) {
        let now = q.now();
        let queue = &mut self.queues[queue_id.0 as usize];
        let next = queue.arrivals.next_after(now);
        let latency = self.devices[queue.device.0 as usize].params.msi_write_latency;
        q.schedule_at(next, Event::Raise { queue: queue_id });
        self.metrics.add(self.ids.raised, 1);
        self.metrics.record(self.ids.msi_write, latency.as_ps());
        q.schedule_in(
            latency,
            Event::MsiWrite {
                queue: queue_id,
                raised_at: now,
            },
        );
    }

    fn on_msi_write(&mut self, queue_id: QueueId, raised_at: SimTime, q: &mut EventQueue<Event>) {
        let queue = &self.queues[queue_id.0 as usize];
        let entry = self.devices[queue.device.0 as usize].msix.entry(queue.entry);
        match (msi::decode(entry.address, entry.data), &self.irte) {
            (MsiMessage::NotInterrupt, _) => self.lose(self.ids.lost_not_interrupt),
            (MsiMessage::Compat { dest_apic_id, vector }, None) => {
                self.deliver(CpuId(u32::from(dest_apic_id)), Vector(vector), raised_at, q);
            }
            // Linux clears GCMD.CFI when it enables remapping: compatibility format is blocked.
            (MsiMessage::Compat { .. }, Some(_)) => self.lose(self.ids.lost_remap[2]),
            // Without a remapping unit, a remappable-format write has no meaning.
            (MsiMessage::Remappable { .. }, None) => self.lose(self.ids.lost_not_interrupt),
            (MsiMessage::Remappable { handle, subhandle }, Some(table)) => {
                let index = u32::from(handle) + u32::from(subhandle.unwrap_or(0));
                match table.lookup(index) {
                    Ok(irte) => {
                        let latency = self.remap_latency.expect("a table implies remapping params");
                        self.metrics.record(self.ids.remap, latency.as_ps());
                        let cpu = CpuId(irte.dest_apic_id);
                        q.schedule_in(
                            latency,
                            Event::Deliver {
                                cpu,
                                vector: Vector(irte.vector),
                                raised_at,
                            },
                        );
                    }
                    Err(fault) => {
                        let index = match fault {
                            RemapFault::IndexBeyondTable => 0,
                            RemapFault::EntryNotPresent => 1,
                            RemapFault::CompatBlocked => 2,
                        };
                        self.lose(self.ids.lost_remap[index]);
                    }
                }
            }
        }
    }

    fn deliver(&mut self, cpu_id: CpuId, vector: Vector, raised_at: SimTime, q: &mut EventQueue<Event>) {
        let Some(cpu) = self.cpus.get_mut(cpu_id.0 as usize) else {
            self.lose(self.ids.lost_no_handler);
            return;
        };
        let queue = cpu.vector_queue[usize::from(vector.0)];
        if queue == NO_QUEUE {
            self.lose(self.ids.lost_no_handler);
            return;
        }
        cpu.jobs.push_back(Job {
            queue: QueueId(queue),
            raised_at,
            arrived_at: q.now(),
        });
        if cpu.jobs.len() == 1 {
            self.start_handler(cpu_id, q);
        }
    }

    fn start_handler(&mut self, cpu_id: CpuId, q: &mut EventQueue<Event>) {
        let now = q.now();
        let job = *self.cpus[cpu_id.0 as usize]
            .jobs
            .front()
            .expect("a handler starts only with a job");
        let queue = &mut self.queues[job.queue.0 as usize];
        let device = &self.devices[queue.device.0 as usize].params;
        let service = device.service.sample(&mut queue.service_rng);
        let eoi = device.eoi_cost;
        self.metrics
            .record(self.ids.queue_wait, now.since(job.arrived_at).as_ps());
        self.metrics.record(self.ids.handler, service.as_ps());
        self.metrics.record(self.ids.eoi, eoi.as_ps());
        self.metrics.add(self.ids.cpu_busy_ps, (service + eoi).as_ps());
        q.schedule_in(service + eoi, Event::HandlerDone { cpu: cpu_id });
    }

    fn on_handler_done(&mut self, cpu_id: CpuId, q: &mut EventQueue<Event>) {
        let cpu = &mut self.cpus[cpu_id.0 as usize];
        let job = cpu.jobs.pop_front().expect("a handler finished on an idle CPU");
        let more = !cpu.jobs.is_empty();
        self.metrics.add(self.ids.delivered, 1);
        self.metrics
            .record(self.ids.end_to_end, q.now().since(job.raised_at).as_ps());
        if more {
            self.start_handler(cpu_id, q);
        }
    }
}

impl World for Platform {
    type Event = Event;

    fn handle(&mut self, event: Event, q: &mut EventQueue<Event>) {
        match event {
            Event::Raise { queue } => self.on_raise(queue, q),
            Event::MsiWrite { queue, raised_at } => self.on_msi_write(queue, raised_at, q),
            Event::Deliver { cpu, vector, raised_at } => self.deliver(cpu, vector, raised_at, q),
            Event::HandlerDone { cpu } => self.on_handler_done(cpu, q),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::{RunLimits, run};

    fn one_device(queue_count: u32, cpus: u32, remap: bool) -> PlatformParams {
        PlatformParams {
            cpu_count: cpus,
            remapping: remap.then_some(RemapParams {
                lookup_latency: SimDuration::from_ns(100),
                table_entries: INTR_REMAP_TABLE_ENTRIES,
            }),
            devices: vec![DeviceParams {
                name: "d".into(),
                queue_count,
                msi_write_latency: SimDuration::from_ns(500),
                arrival: ArrivalParams::Constant { rate_per_s: 1_000.0 },
                service: DurationDist::constant(SimDuration::from_ns(1_000)),
                eoi_cost: SimDuration::from_ns(50),
                affinity: (0..cpus).map(CpuId).collect(),
            }],
        }
    }

    #[test]
    fn one_interrupt_takes_the_sum_of_its_stages() {
        for remap in [false, true] {
            let (mut p, mut q) = Platform::new(&one_device(1, 1, remap), 1);
            run(
                &mut p,
                &mut q,
                RunLimits {
                    time_end: SimTime::from_ps(sim::PS_PER_S / 100),
                    event_count_max: u64::MAX,
                },
            );
            let s = p.metrics().snapshot();
            let e2e = s
                .histograms
                .iter()
                .find(|h| h.info.name == "latency.end_to_end_ps")
                .unwrap();
            let expected = 500 + if remap { 100 } else { 0 } + 1_000 + 50;
            assert_eq!((e2e.min, e2e.max), (expected * 1000, expected * 1000), "remap={remap}");
            assert!(p.conservation(&q).holds());
        }
    }

    #[test]
    fn vector_exhaustion_is_counted_not_fatal() {
        // 300 queues on one CPU: 203 get vectors, 97 do not.
        let (p, _) = Platform::new(&one_device(300, 1, true), 1);
        let routed = p.metrics().get(p.ids.setup_routed);
        let failed = p.metrics().get(p.ids.setup_vector_fail);
        assert_eq!((routed, failed), (203, 97));
        let vectors = &p.resources()[0];
        assert_eq!((vectors.used_max, vectors.limit), (203, 203));
    }

    #[test]
    fn conservation_holds_mid_flight() {
        let mut params = one_device(64, 4, true);
        params.devices[0].arrival = ArrivalParams::Poisson { rate_per_s: 200_000.0 };
        let (mut p, mut q) = Platform::new(&params, 9);
        for end_ns in [1_000u64, 10_000, 123_457, 1_000_000] {
            run(
                &mut p,
                &mut q,
                RunLimits {
                    time_end: SimTime::from_ps(end_ns * 1000),
                    event_count_max: u64::MAX,
                },
            );
            let c = p.conservation(&q);
            assert!(c.holds(), "{c:?}");
        }
        let c = p.conservation(&q);
        assert!(c.delivered > 0 && c.at_cpu + c.in_transit > 0, "{c:?}");
    }
}
