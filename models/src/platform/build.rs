//! Building the platform: each component is chosen once from the parameters (the x86 or ARM
//! chip, FIFO or posted-MSI CPUs, guests or none), every device's interrupts are set up
//! the way its kernel does it, and the first events are scheduled.

use sim::{EventQueue, Metrics, SimTime};

use super::chip::IrqChip;
use super::chip::arm::ArmChip;
use super::chip::x86::X86Chip;
use super::cpu::lapic::LapicCpus;
use super::cpu::lindley::Lindley;
use super::cpu::posted_msi::PostedMsiCpus;
use super::cpu::{Cpus, FifoCpus};
use super::devices::Devices;
use super::guest::Guests;
use super::guest::provision::Provisioning;
use super::params::{HostQueueing, PlatformParams};
use super::procfs::View;
use super::stats::IrqStats;
use super::{Event, Platform, metrics};
use crate::arm::its::ItsError;
use crate::ids::{DeviceId, QueueId};
use crate::iommu::posted::ApicMode;
use crate::pci::store::{ImsMaskedRaise, StoreKind};

impl Platform {
    /// Builds the platform, allocates and activates every queue's interrupt the way Linux
    /// does (`pci_alloc_irq_vectors` reserves all of a device's vectors, `request_irq`
    /// activates them), programs the stores (and IRTEs or ITS tables), and schedules each
    /// routed queue's first arrival, the guests' host bursts and every action. Parameters
    /// must be valid (the scenario validator ensures it).
    pub fn new(params: &PlatformParams, seed: u64) -> (Platform, EventQueue<Event>) {
        assert!(params.cpu_count > 0, "a platform needs at least one CPU");
        let mut metrics = Metrics::new();
        let ids = metrics::register(&mut metrics, params.gic.is_some());
        let mut chip = match &params.gic {
            Some(gic) => IrqChip::Arm(Box::new(ArmChip::new(gic, params.cpu_count, params.kernel.version, ids.arm))),
            None => IrqChip::X86(Box::new(X86Chip::new(params, ids.x86))),
        };
        let entry = params.cpu_costs.notification + params.cpu_costs.irq_entry_exit;
        let cpus = match params.remapping.as_ref().and_then(|r| r.posted_msi) {
            Some(config) => {
                // Every device uses the same APIC: the notification's EOI costs what the first
                // device's does.
                let eoi = params.devices.first().map_or(sim::SimDuration::ZERO, |d| d.eoi_cost);
                Cpus::PostedMsi(PostedMsiCpus::new(params.cpu_count, config, entry, eoi, ids.cpu, ids.core))
            }
            // The GIC's pending state is not modelled: ARM CPUs queue in arrival order.
            None if params.gic.is_some() || params.queueing == HostQueueing::Fifo => {
                Cpus::Fifo(FifoCpus::new(params.cpu_count, entry, ids.cpu, ids.core))
            }
            None => Cpus::Lapic(LapicCpus::new(params.cpu_count, entry, ids.cpu, ids.core)),
        };
        let mut guest_ids = ids.guest;
        if params.guests.iter().any(|g| g.kvm.apic_mode == ApicMode::XApic) {
            guest_ids.exits.apic_access = Some(metrics::register_apic_access(&mut metrics));
        }
        let mut guests = (!params.guests.is_empty())
            .then(|| Guests::new(&params.guests, params.cpu_count, params.gic.is_some(), seed, guest_ids, ids.core));
        let mut vm_failed = vec![false; params.guests.len()];
        if let (Some(guests), IrqChip::Arm(chip)) = (guests.as_mut(), &mut chip) {
            vm_failed = create_vpes(params, guests, chip, &mut metrics);
        }
        let mut device_ids = ids.devices;
        // An IMS slot is masked during a run only before a provisioned vector is usable,
        // by its guest, or by a CPU hotplug action shutting its interrupt down.
        if params.devices.iter().any(|d| {
            matches!(d.store, StoreKind::ImsDevice | StoreKind::ImsQueue)
                && d.ims_masked_raise == ImsMaskedRaise::Drop
                && match d.provisioning {
                    Some(p) => !p.falls_back_to_msix(),
                    None => !params.actions.is_empty(),
                }
        }) {
            device_ids.lost_ims_masked = Some(metrics::register_lost_ims_masked(&mut metrics));
        }
        let mut devices = Devices::new(&params.ims_pools, params.devices.len(), device_ids);
        let mut provisioning = params.devices.iter().any(|d| d.provisioning.is_some()).then(|| {
            // Tenants: two or more guests with assigned functions.
            let mut owners: Vec<u32> = params.devices.iter().filter_map(|d| d.assigned_to).collect();
            owners.sort_unstable();
            owners.dedup();
            let arm = matches!(chip, IrqChip::Arm(_));
            Provisioning::new(params.guests.len() as u32, owners.len() > 1, arm, &mut metrics, ids.core.lost)
        });
        // Provisioned functions: their first steps and their queues (raising from the start,
        // held in their masked entries until their vectors are usable).
        let mut timed = Vec::new();
        for (index, dp) in params.devices.iter().enumerate() {
            let assigned = chip.add_device(DeviceId(index as u32), dp, seed, &mut devices, &mut metrics);
            // A VM that never runs never enables its devices' MSI-X: their queues stay silent.
            if let (Some(first_queue), Some(g)) = (assigned, dp.assigned_to)
                && !vm_failed[g as usize]
            {
                let guests = guests.as_mut().expect("assigned devices need guests");
                guests.provision(g, first_queue, dp.queue_count, &mut metrics);
                match (dp.provisioning, provisioning.as_mut()) {
                    (Some(mut p), Some(prov)) => {
                        // A hot-added function's driver starts when the guest sees it.
                        if let Some(at) = dp.hot_add_at {
                            p.start = at + p.start.since(SimTime::ZERO);
                        }
                        let store = (dp.store, dp.store_update_latency);
                        let ops = guests.take_chip_ops();
                        let names = (dp.name.as_str(), params.guests[g as usize].name.as_str());
                        let vcpus = params.guests[g as usize].vcpu_count;
                        let first = prov.add(DeviceId(index as u32), names, (g, vcpus), p, ops, store, &mut metrics);
                        if p.falls_back_to_msix() {
                            devices.use_pending_bits(DeviceId(index as u32));
                        }
                        timed.push((index, first, first_queue..first_queue + dp.queue_count));
                    }
                    _ => {
                        let moved = chip.apply(guests.take_chip_ops(), SimTime::ZERO, &mut devices, &mut metrics);
                        debug_assert!(moved.is_empty(), "provisioning moves no vPE");
                    }
                }
            }
        }
        if let Some(prov) = provisioning.as_mut() {
            let names: Vec<&str> = params.guests.iter().map(|g| g.name.as_str()).collect();
            prov.register_received(&names, &mut metrics);
        }
        match &mut chip {
            IrqChip::X86(chip) => chip.take_domain_warnings(SimTime::ZERO, &devices, &mut metrics),
            // Setup happened before the measured run: its commands are not in the queue.
            IrqChip::Arm(chip) => chip.settle_setup(),
        }
        let mut event_queue = EventQueue::with_capacity(1024);
        let vcpus = guests.as_ref().map_or(0, |g| g.vcpu_count());
        let mut stats = IrqStats::new(devices.queue_count(), params.cpu_count as usize, vcpus as usize);
        for index in 0..devices.queue_count() {
            let queue = QueueId(index as u32);
            if chip.routed(devices.owner(queue)) {
                stats.set_requested(devices.owner(queue).0);
                metrics.add(ids.core.setup_routed, 1);
            }
        }
        // Provisioned functions' first steps; their queues raise from the start, held in their
        // masked entries until their vectors are usable.
        let mut provisioned = vec![false; params.devices.len()];
        for (device, (at, event), queues) in timed {
            event_queue.schedule_at(at, event);
            provisioned[device] = true;
            for index in queues {
                stats.set_requested(index);
            }
        }
        // Each device's first raises, devices in order (a device's Poisson queues share one
        // stream and one pending raise).
        for (device, &all) in provisioned.iter().enumerate() {
            // A hot-added function raises from its hot-add on (its arrival processes start then).
            let from = params.devices[device].hot_add_at.map_or(sim::SimDuration::ZERO, |at| at.since(SimTime::ZERO));
            for (at, queue) in devices.first_raises(DeviceId(device as u32), |owner| all || chip.routed(owner)) {
                event_queue.schedule_at(at + from, Event::Raise { queue });
            }
        }
        let lindley = lindley(params, &chip, &cpus, &devices, entry, &ids);
        let fold_latency = fold(params, &chip, &cpus, &devices, provisioning.is_some());
        metrics.add(ids.cpu.lindley_cpus, lindley.cpu_count());
        if let Some(guests) = guests.as_mut() {
            for (at, cpu) in guests.first_bursts() {
                event_queue.schedule_at(at, Event::HostBurst { cpu });
            }
            for (at, guest) in guests.first_migrations(&mut metrics) {
                event_queue.schedule_at(at, Event::Migrate { guest });
            }
            for (at, vcpu) in guests.first_ipis(&mut metrics) {
                event_queue.schedule_at(at, Event::IpiSend { vcpu });
            }
        }
        for (index, action) in params.actions.iter().enumerate() {
            event_queue.schedule_at(action.at, Event::Action { index: index as u32 });
        }
        let view = View::of(params);
        let platform = Platform {
            devices,
            chip,
            cpus,
            lindley,
            fold_latency,
            fold_until: None,
            guests,
            provisioning,
            actions: params.actions.clone(),
            metrics,
            ids,
            stats,
            view,
        };
        (platform, event_queue)
    }
}

/// The CPUs that take Lindley's recursion (see `cpu::lindley` for when a CPU may): none
/// unless the CPUs are FIFO servers on x86 without remapping, guests or actions; then each
/// CPU whose every raising queue has a fixed route ([`X86Chip::fixed_route`]) with one MSI
/// write latency.
fn lindley(
    params: &PlatformParams,
    chip: &IrqChip,
    cpus: &Cpus,
    devices: &Devices,
    entry: sim::SimDuration,
    ids: &metrics::Ids,
) -> Lindley {
    let IrqChip::X86(x86) = chip else { return Lindley::none(ids.cpu, ids.core, ids.devices.msi_write) };
    if !params.recursion_possible() || !matches!(cpus, Cpus::Fifo(_)) {
        return Lindley::none(ids.cpu, ids.core, ids.devices.msi_write);
    }
    let mut event_cpus = Vec::new();
    let routes: Vec<_> = (0..devices.queue_count() as u32)
        .map(QueueId)
        .map(|queue| {
            if !devices.raises(queue) {
                return None;
            }
            let route = x86.fixed_route(devices.message(queue));
            if route.is_none() {
                // It reaches its CPU on events: that CPU stays on events.
                event_cpus.extend(x86.target(devices.owner(queue)).map(|(cpu, _)| cpu));
            }
            route.map(|(cpu, handler)| (cpu, handler, devices.params_of(queue).msi_write_latency))
        })
        .collect();
    Lindley::plan(params.cpu_count, entry, &routes, &event_cpus, ids.cpu, ids.core, ids.devices.msi_write)
}

/// The folded translation path (`Platform::end_at`): the MSI write latency every raising
/// queue shares, when nothing but the queues' own writes can touch the remapping unit's
/// state (IRTEs, entry cache, fault records, its clock) during the run; `None` otherwise.
///
/// Why the report is then the same as on events: with one write latency a raise at `t`
/// reaches the unit at `t + latency`, so the writes reach it in raise order (raises at equal
/// times in the order they are handled, as their `MsiWrite` events would be) at
/// nondecreasing times; nothing else calls the unit, because everything that would (actions:
/// affinity changes and CPU hotplug; hot-added functions; guests: posted IRTEs, VFIO, vPE
/// and chip operations; timed provisioning; the posted-MSI host mode) is excluded here, and
/// no message is rewritten (only those do). So the unit sees the same calls with the same
/// times in the same order and answers the same. Remapping is required (without it the
/// LAPIC route is taken at the write's arrival). The one ordering that can differ: the
/// `Deliver` is queued at the raise instead of at the write's arrival, so among events at
/// the very same picosecond it may come before one queued in between (a handler's end on the
/// same CPU); the run-both-ways tests check the reports of the catalog are the same.
fn fold(
    params: &PlatformParams,
    chip: &IrqChip,
    cpus: &Cpus,
    devices: &Devices,
    provisioned: bool,
) -> Option<sim::SimDuration> {
    let IrqChip::X86(x86) = chip else { return None };
    if params.event_path_only
        || params.remapping.is_none()
        || x86.remap_unit_count() == 0
        || !params.guests.is_empty()
        || !params.actions.is_empty()
        || provisioned
        || params.devices.iter().any(|d| d.hot_add_at.is_some())
        || matches!(cpus, Cpus::PostedMsi(_))
    {
        return None;
    }
    let mut latency = None;
    for queue in (0..devices.queue_count() as u32).map(QueueId) {
        if !devices.raises(queue) {
            continue;
        }
        let this = devices.params_of(queue).msi_write_latency;
        match latency {
            None => latency = Some(this),
            Some(l) if l == this => {}
            Some(_) => return None,
        }
    }
    latency
}

/// KVM creates each VM's vPEs (VMAPP); each vCPU starts halted in WFI with its doorbell
/// armed. A VM whose vCPUs do not all get a vPE ID (the host-wide `ITS_MAX_VPEID` pool) fails
/// `vgic_v4_init`, so `vgic_init` fails and the VM never runs (KVM has no fallback to
/// software injection for it): counted once per VM (`arm.vpe_id_fail_count`, registered at
/// the first failure); returns, per guest, whether it failed.
fn create_vpes(params: &PlatformParams, guests: &mut Guests, chip: &mut ArmChip, m: &mut Metrics) -> Vec<bool> {
    let mut failed = vec![false; params.guests.len()];
    let mut fail_id = None;
    for (g, guest) in params.guests.iter().enumerate() {
        let its = chip.its_mut();
        let capacity = its.params().vpe_id_capacity();
        let vm = match its.create_vm(SimTime::ZERO, guest.vcpu_count) {
            Ok(vm) => vm,
            Err(error @ ItsError::VpeIdsExhausted { requested, free }) => {
                let id = *fail_id.get_or_insert_with(|| {
                    m.failure_counter(
                        "arm.vpe_id_fail_count",
                        "VMs that got no vPE ID for every vCPU (ITS_MAX_VPEID): vgic_init fails and the VM does not run",
                    )
                });
                let message = error.kernel_message().expect("KVM prints this one");
                m.fail(id, SimTime::ZERO, || {
                    format!(
                        "{}: kvm: {message}: its_vpe_id_alloc: {requested} vPE IDs asked, {free} of {capacity} free ({}); vgic_init fails, the VM does not run",
                        guest.name,
                        error.errno()
                    )
                });
                failed[g] = true;
                continue;
            }
            Err(other) => panic!("validated doorbell LPIs for a VM: {other:?}"),
        };
        guests.attach_vpes(g as u32, &vm.vpes);
        let (first, _) = guests.vcpus_of(g as u32);
        for (i, &vpe) in vm.vpes.iter().enumerate() {
            let pcpu = guests.pcpu_of(first + i as u32);
            its.vcpu_load(SimTime::ZERO, vpe, pcpu).expect("a new vPE loads");
            its.vcpu_put(SimTime::ZERO, vpe, true).expect("a loaded vPE halts");
        }
    }
    failed
}
