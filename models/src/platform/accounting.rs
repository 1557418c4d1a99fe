//! What a run leaves behind, read from every component at the end: interrupt conservation
//! (counted independently of the counters that produce it, with an exhaustive match over
//! the event enum), resource use against each limit, and the report's tables.

use sim::{EventQueue, SimDuration};

use super::chip::IrqChip;
use super::devices::HostHandler;
use super::guest::PcpuBusy;
use super::params::GuestMsiParams;
use super::{Event, Platform};
use crate::ids::QueueId;
use crate::iommu::posted::{FallbackReason, Postability};

/// Where every raised interrupt is at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conservation {
    /// Raised by devices.
    pub raised: u64,
    /// Handler and EOI done.
    pub delivered: u64,
    /// Blocked or dropped on the way (modelled failures).
    pub lost: u64,
    /// Merged into an already-pending bit (MSI-X pending bit, PIR, vPE pending table).
    pub merged: u64,
    /// Still travelling: MSI writes and deliveries in the event queue.
    pub in_transit: u64,
    /// Held as a pending bit in a masked MSI-X entry.
    pub pending: u64,
    /// Waiting for, or in, a handler on a CPU or vCPU.
    pub at_cpu: u64,
}

impl Conservation {
    /// Raised = delivered + lost + merged + in transit + pending + at a CPU.
    pub fn holds(&self) -> bool {
        self.raised == self.delivered + self.lost + self.merged + self.in_transit + self.pending + self.at_cpu
    }
}

/// How many interrupts an event in the queue carries. Exhaustive on purpose: a new event
/// kind must say whether it carries one.
fn carried(event: &Event) -> u64 {
    match event {
        Event::MsiWrite { .. }
        | Event::Deliver { .. }
        | Event::DeliverIntid { .. }
        | Event::GuestInterrupt { .. }
        | Event::PostToVcpu { .. } => 1,
        Event::Raise { .. }
        | Event::HandlerDone { .. }
        | Event::Action { .. }
        | Event::VcpuEntry { .. }
        | Event::GuestHandlerDone { .. }
        | Event::HostBurst { .. }
        | Event::HostWorkEnd { .. }
        | Event::SliceEnd { .. }
        | Event::PostedStep { .. }
        | Event::StoreWrite { .. }
        | Event::ItsCommandDone
        | Event::VectorCleanup { .. }
        | Event::Provision { .. }
        | Event::Migrate { .. }
        | Event::IpiSend { .. } => 0,
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
    pub(super) fn over<I: IntoIterator<Item = u32>>(name: &'static str, limit: u32, values: I) -> ResourceUse {
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

/// Why KVM could not post, in words for the sources table.
fn fallback_words(reason: FallbackReason, msi: GuestMsiParams) -> String {
    match reason {
        FallbackReason::DeliveryMode => "delivery mode".to_owned(),
        FallbackReason::Broadcast => "broadcast".to_owned(),
        FallbackReason::Multicast => format!("fixed to {} vCPUs", msi.destinations),
        FallbackReason::LowestPriorityMultipleDestinations => format!("lowest priority to {} vCPUs", msi.destinations),
        FallbackReason::NoDestination => "no destination".to_owned(),
    }
}

/// One CPU's offered load: arrival rate and the first two moments of the CPU time each
/// interrupt takes there.
#[derive(Debug, Clone, Copy, Default)]
struct Offered {
    rate_per_ps: f64,
    /// Σ λ `E[X]` and Σ λ `E[X²]` (X in picoseconds).
    sum_x: f64,
    sum_x2: f64,
}

impl Offered {
    fn add(&mut self, rate_per_s: f64, mean_ps: f64, stddev_ps: f64) {
        let rate = rate_per_s / 1e12;
        self.rate_per_ps += rate;
        self.sum_x += rate * mean_ps;
        self.sum_x2 += rate * (mean_ps * mean_ps + stddev_ps * stddev_ps);
    }

    /// ρ = λ `E[X]`.
    fn utilisation(&self) -> f64 {
        self.sum_x
    }

    /// The heavy-traffic relaxation time of an M/G/1 queue at this load (Whitt's
    /// approximation `E[X](1 + c²)/2 / (1 − √ρ)²`, in picoseconds): how long the queue takes
    /// to forget its empty start. `None` at ρ ≥ 1 (no steady state).
    fn relaxation_ps(&self) -> Option<f64> {
        let rho = self.utilisation();
        if rho >= 1.0 || self.rate_per_ps == 0.0 {
            return None;
        }
        let mean = self.sum_x / self.rate_per_ps;
        let c2 = (self.sum_x2 / self.rate_per_ps) / (mean * mean) - 1.0;
        Some(mean * (1.0 + c2) / 2.0 / (1.0 - rho.sqrt()).powi(2))
    }
}

impl Platform {
    /// Each pCPU that runs vCPUs: its busy time (host work and guest execution) until `now`
    /// and how many of its busy intervals overlapped the previous one. The invariant,
    /// checked before a report is written like conservation: no overlap, and busy time at
    /// most `now` (one pCPU is one server).
    pub fn pcpu_busy(&self, now: sim::SimTime) -> Vec<PcpuBusy> {
        self.guests.as_ref().map_or_else(Vec::new, |g| g.pcpu_busy(now))
    }

    /// What a reader must know before taking the point's latencies as steady-state values:
    /// host CPUs offered more work than they can do (ρ ≥ 1: queues grow for the whole run)
    /// and CPUs whose queues relax more slowly than a tenth of the run (the start-up
    /// transient is still in the percentiles). The offered load comes from each routed
    /// queue's mean arrival rate and its handler's CPU time on the CPU its interrupt targets
    /// at the end; with host posted MSI only the handlers count (coalescing saves the rest),
    /// a lower bound. Guests' vCPUs are not covered.
    pub fn load_warnings(&self, elapsed: SimDuration) -> Vec<String> {
        let entry = self.cpus.entry_per_interrupt();
        let mut per_cpu: Vec<Offered> = Vec::new();
        for index in 0..self.devices.queue_count() {
            let queue = QueueId(index as u32);
            let Some((cpu, _)) = self.chip.target(self.devices.owner(queue)) else { continue };
            let p = self.devices.params_of(queue);
            let (mean, stddev) = match (self.devices.host_handler(queue), p.assigned_to) {
                (HostHandler::VfioForward { vcpu, .. }, _) => {
                    let guests = self.guests.as_ref().expect("VFIO forwards to guests");
                    (guests.remapped_forward_of(vcpu), SimDuration::ZERO)
                }
                // Posted to a vCPU: not host work.
                (HostHandler::Driver, Some(_)) => continue,
                (HostHandler::Driver, None) => {
                    let eoi = if entry.is_some() { p.eoi_cost } else { SimDuration::ZERO };
                    (p.service.mean() + eoi, p.service.stddev())
                }
            };
            let mean = mean + entry.unwrap_or(SimDuration::ZERO);
            let c = cpu.0 as usize;
            if per_cpu.len() <= c {
                per_cpu.resize(c + 1, Offered::default());
            }
            per_cpu[c].add(p.arrival.mean_rate_per_s(), mean.as_ps() as f64, stddev.as_ps() as f64);
        }
        let mut out = Vec::new();
        let worst = |f: &dyn Fn(&Offered) -> Option<f64>| {
            let hits: Vec<(usize, f64)> =
                per_cpu.iter().enumerate().filter_map(|(c, o)| f(o).map(|v| (c, v))).collect();
            let top = hits.iter().copied().fold(None, |best: Option<(usize, f64)>, h| match best {
                Some(b) if b.1 >= h.1 => Some(b),
                _ => Some(h),
            });
            top.map(|t| (hits.len(), t))
        };
        let overloaded = worst(&|o| (o.utilisation() >= 1.0).then_some(o.utilisation()));
        if let Some((count, (cpu, rho))) = overloaded {
            out.push(format!(
                "overloaded: {count} CPU(s) are offered at least their capacity (CPU {cpu}: rho = {rho:.2}); their queues grow for the whole run, so their latencies are transients that depend on the run length, not steady-state values"
            ));
        }
        let tenth = elapsed.as_ps() as f64 / 10.0;
        let slow = worst(&|o| o.relaxation_ps().filter(|&r| r > tenth));
        if let Some((count, (cpu, relax))) = slow {
            let rho = per_cpu[cpu].utilisation();
            out.push(format!(
                "not in steady state: {count} CPU(s) relax more slowly than a tenth of the run (CPU {cpu}: rho = {rho:.2}, about {:.3} ms by the heavy-traffic estimate, against a {:.3} ms run); percentiles still carry the start-up transient",
                relax / 1e9,
                elapsed.as_ps() as f64 / 1e9
            ));
        }
        out
    }

    /// Where every raised interrupt is, counted independently from the event queue, the
    /// store pending bits and the CPUs' and vCPUs' queues.
    pub fn conservation(&self, queue: &EventQueue<Event>) -> Conservation {
        let (ids, m) = (&self.ids, &self.metrics);
        let (planned_on_the_way, planned_at_cpu) = self.lindley.in_flight(queue.now());
        Conservation {
            raised: m.get(ids.devices.raised),
            delivered: m.get(ids.core.delivered),
            lost: m.get(ids.core.lost),
            merged: m.get(ids.devices.pending_merged) + m.get(ids.core.merged_pir),
            in_transit: queue.iter().map(|(_, e)| carried(e)).sum::<u64>() + planned_on_the_way,
            pending: self.devices.pending_count() + self.provisioning.as_ref().map_or(0, |p| p.vmm_pending_count()),
            at_cpu: self.cpus.at_cpu() + planned_at_cpu + self.guests.as_ref().map_or(0, |g| g.at_vcpus()),
        }
    }

    /// Use of every limited resource against its limit.
    pub fn resources(&self) -> Vec<ResourceUse> {
        let mut out = self.chip.resources();
        out.extend(self.devices.resources());
        if let Some(provisioning) = &self.provisioning {
            out.extend(provisioning.resources());
        }
        out
    }

    /// Tables in fixed, familiar layouts: the interrupt sources; on x86 the kernel's irq
    /// matrix (debugfs layout); the host's `/proc/interrupts` and each guest's; and the
    /// end-to-end latency per CPU in rtla's `timerlat hist` layout.
    pub fn tables(&self) -> Vec<(String, String)> {
        let mut out = vec![("Interrupt sources".to_owned(), self.sources_table())];
        if let IrqChip::X86(chip) = &self.chip {
            out.push((
                "x86 vector matrix at the end (the layout of /sys/kernel/debug/irq/domains/VECTOR)".to_owned(),
                chip.domain().debug_table(),
            ));
        }
        out.push(("/proc/interrupts at the end (Linux 6.10 layout)".to_owned(), self.interrupts_table()));
        if let Some(guests) = &self.guests {
            for g in 0..guests.guest_count() {
                let table = self.guest_interrupts_table(g).expect("an existing guest");
                out.push((format!("/proc/interrupts inside guest {} (its vCPUs as CPUs)", guests.name_of(g)), table));
            }
        }
        out.push((
            "End-to-end latency per CPU (the layout of rtla timerlat hist)".to_owned(),
            self.latency_histogram_table(),
        ));
        out
    }

    /// The tables of [`Platform::tables`] that are also data, by the same name: the column
    /// names and the rows (the interrupt sources, and on x86 the vector matrix's per-CPU
    /// rows), for reports that give them as structured data.
    pub fn table_rows(&self) -> Vec<(String, Vec<String>, Vec<Vec<String>>)> {
        let (columns, rows) = self.sources_rows();
        let mut out = vec![("Interrupt sources".to_owned(), columns, rows)];
        if let IrqChip::X86(chip) = &self.chip {
            let (columns, rows) = chip.domain().debug_rows();
            out.push((
                "x86 vector matrix at the end (the layout of /sys/kernel/debug/irq/domains/VECTOR)".to_owned(),
                columns,
                rows,
            ));
        }
        out
    }

    /// The interrupt sources: one line per function or ADI with its requester id (as
    /// `bus:dev.fn`), PASID, store and how many of its queues have a working interrupt.
    pub fn sources_table(&self) -> String {
        let (columns, rows) = self.sources_rows();
        let mut out = format!("| {} |\n", columns.join(" | "));
        for row in rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out
    }

    /// The rows of [`Platform::sources_table`], with its column names.
    fn sources_rows(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let arm = matches!(self.chip, IrqChip::Arm(_));
        let columns = ["source", "requester id", "pasid", "store", "entries", "queues", "routed", "guest delivery"];
        let mut rows = Vec::new();
        for device in self.devices.all() {
            let p = &device.params;
            let rid = p.requester_id;
            let routed = (0..p.queue_count)
                .filter(|&q| self.chip.routed(self.devices.owner(QueueId(device.first_queue + q))))
                .count();
            let delivery = match (p.assigned_to, &self.guests) {
                (Some(g), Some(guests)) => {
                    let how = match p.guest_msi.postability() {
                        Postability::Posted if arm => "vLPI".to_owned(),
                        Postability::Posted => "posted".to_owned(),
                        Postability::Remapped(reason) => format!("remapped ({})", fallback_words(reason, p.guest_msi)),
                    };
                    format!("{} {how}", guests.name_of(g))
                }
                _ => "-".to_owned(),
            };
            rows.push(vec![
                p.name.clone(),
                format!("{:02x}:{:02x}.{}", rid >> 8, (rid >> 3) & 0x1f, rid & 0x7),
                p.pasid.map_or("-".to_owned(), |v| v.to_string()),
                device.store.kind().as_str().to_owned(),
                device.store.len().to_string(),
                p.queue_count.to_string(),
                routed.to_string(),
                delivery,
            ]);
        }
        (columns.iter().map(|c| (*c).to_owned()).collect(), rows)
    }
}
