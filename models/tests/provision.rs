//! Timed provisioning of an assigned device's interrupts (MSI-X trapped by the VMM), through
//! the platform's public API: host setups with and without dynamic MSI-X, the setup time
//! under the global IRTE lock, the interrupts lost while MSI-X is disabled to resize, and
//! the KVM routing table's limit, each against its closed form.

#[allow(dead_code)] // the shared helpers this file does not use
mod common;
use common::{counter, histogram, one_device, run_checked as run, run_to};

use models::ids::CpuId;
use models::pci::store::{ImsMaskedRaise, StoreKind};
use models::platform::*;
use models::workload::ArrivalParams;
use sim::{SimDuration, SimTime};

const US: u64 = 1_000_000;

/// The costs every test uses, in picoseconds: an exit 10 us, the route update 5 us, the
/// ioctl 3 us, request_irq 4 us; free_irq as given.
fn costs(free_irq_ps: u64) -> ProvisionCosts {
    ProvisionCosts {
        mmio_exit_user: SimDuration::from_us(10),
        route_update: SimDuration::from_us(5),
        set_irqs: SimDuration::from_us(3),
        request_irq: SimDuration::from_us(4),
        free_irq: SimDuration::from_ps(free_irq_ps),
        vmcall: SimDuration::from_us(15),
        mmio_exit_kernel: SimDuration::ZERO,
    }
}

/// One device of `n` MSI-X queues at 100k/s each (a period of 10 us) assigned to a 4-vCPU
/// guest on pCPUs 4-7 and provisioned from time 0; the IRTE lock holds 300 ns to allocate,
/// 200 ns per write and 2 us per IEC flush. The interrupts cost no pCPU time (posting, the
/// wake-up and the guest's handler are free): the provisioning's host work, which runs on
/// its vCPU's pCPU, never waits behind them, so the closed forms below hold exactly
/// (`provisioning_occupies_the_exiting_vcpus_pcpu` puts work in its way).
fn provisioned(n: u32, dynamic_msix: bool, free_irq_ps: u64) -> PlatformParams {
    let mut params = one_device(n, 8, true);
    let remap = &mut params.remapping.as_mut().unwrap().remap;
    remap.irte_alloc = SimDuration::from_ns(300);
    remap.irte_write = SimDuration::from_ns(200);
    remap.irte_write_posted = SimDuration::from_ns(200);
    remap.iec_invalidation = SimDuration::from_us(2);
    params.guests = vec![GuestParams {
        name: "vm0".into(),
        vcpu_count: 4,
        pcpus: (4..8).map(CpuId).collect(),
        host_bursts: None,
        posted: models::iommu::posted::PostedParams {
            notify_running: SimDuration::ZERO,
            wakeup_irq_entry: SimDuration::ZERO,
            wakeup_list_entry: SimDuration::ZERO,
            kick: SimDuration::ZERO,
            wake_to_vm_entry: SimDuration::ZERO,
        },
        remapped_forward: SimDuration::from_ns(1_500),
        kvm: common::kvm_free_exits(),
        migration: None,
        ipi: None,
    }];
    let d = &mut params.devices[0];
    d.service = sim::DurationDist::constant(SimDuration::ZERO);
    d.eoi_cost = SimDuration::ZERO;
    d.assigned_to = Some(0);
    d.arrival = ArrivalParams::Constant { rate_per_s: 100_000.0 };
    d.provisioning = Some(ProvisionParams {
        mode: ProvisionMode::MsixTrapped,
        dynamic_msix,
        guest_ims: GuestIms::Hypothetical,
        start: SimTime::ZERO,
        message_exits: MSIX_MESSAGE_EXITS,
        gsi_routes: KVM_MAX_IRQ_ROUTES,
        routes_per: RoutesPer::EnabledVector,
        guest_order: GuestOrder::PerVector,
        masking: None,
        affinity: None,
        qemu_batch_enable: true,
        ims_mask: ImsMaskPath::Device,
        costs: costs(free_irq_ps),
    });
    params
}

/// Per vector, the guest's 4 message exits (3 writes and the flushing read) and the unmask
/// exit (5 x 10 us), the route update (5 us) and the ioctl (3 us): 58 us.
const GUEST_PER_VECTOR: u64 = 5 * 10 * US + 5 * US + 3 * US;
/// One host setup: IRTE alloc 0.3 us, the remapped write and its flush 2.2 us, the posted
/// write and its flush 2.2 us (back to back on the idle lock), then request_irq's 4 us.
const SETUP: u64 = 300_000 + 2 * 2_200_000 + 4 * US;
/// One release's lock holds: the posted entry rewritten remapped (2.2 us) and the IRTE
/// freed (one clear write and a flush, 2.2 us); free_irq's CPU time comes on top.
const RELEASE_LOCK: u64 = 2 * 2_200_000;

#[test]
fn without_dynamic_msix_n_vectors_cost_n_n_plus_1_over_2_setups_with_it_n() {
    for n in [1u32, 8, 20] {
        let (n64, tri) = (u64::from(n), u64::from(n) * u64::from(n + 1) / 2);
        let (dynamic, _) = run(&provisioned(n, true, 2 * US), 10_000 * US);
        assert_eq!(counter(&dynamic, "provision.request_irq_count"), n64, "one setup per vector");
        assert_eq!(counter(&dynamic, "provision.free_irq_count"), 0);
        assert_eq!(counter(&dynamic, "provision.vfio_set_irqs_count"), n64);
        assert_eq!(counter(&dynamic, "provision.irte_write_count"), 2 * n64, "remapped, then posted");
        assert_eq!(counter(&dynamic, "interrupt.lost_count"), 0, "nothing lost with dynamic MSI-X");
        let (noresize, _) = run(&provisioned(n, false, 2 * US), 10_000 * US);
        assert_eq!(counter(&noresize, "provision.request_irq_count"), tri, "n = {n}: 1 + 2 + ... + n");
        // Growing to k + 1 releases the k enabled vectors first: 0 + 1 + ... + (n - 1).
        assert_eq!(counter(&noresize, "provision.free_irq_count"), tri - n64);
        assert_eq!(counter(&noresize, "provision.vfio_set_irqs_count"), n64, "one ioctl per guest unmask");
        // Two writes per setup, two per release (bypass removed, entry cleared).
        assert_eq!(counter(&noresize, "provision.irte_write_count"), 2 * tri + 2 * (tri - n64));
        assert_eq!(counter(&noresize, "provision.vector_usable_count"), tri);
    }
}

#[test]
fn the_setup_time_of_n_vectors_under_the_irte_lock_is_its_closed_form() {
    let n = 16u64;
    // Dynamic: n x (guest path + one setup).
    let (p, _) = run(&provisioned(n as u32, true, 2 * US), 10_000 * US);
    let dynamic = n * (GUEST_PER_VECTOR + SETUP);
    assert_eq!(histogram(&p, "latency.provision_setup_ps").max, dynamic);
    assert_eq!(counter(&p, "provision.host_cpu_ps"), dynamic, "one function: the vCPU thread waits throughout");
    assert_eq!(histogram(&p, "kvm.exit.ept_misconfig").count, 5 * n);
    assert_eq!(counter(&p, "provision.exit_count"), 5 * n);
    // Without: n guest paths, n(n+1)/2 setups and n(n-1)/2 releases (lock holds + 2 us free_irq).
    let (p, _) = run(&provisioned(n as u32, false, 2 * US), 10_000 * US);
    let noresize = n * GUEST_PER_VECTOR + n * (n + 1) / 2 * SETUP + n * (n - 1) / 2 * (RELEASE_LOCK + 2 * US);
    assert_eq!(histogram(&p, "latency.provision_setup_ps").max, noresize);
    assert_eq!(counter(&p, "provision.host_cpu_ps"), noresize);
    // The IRTE lock was never contended: every hold's wait is 0.
    assert_eq!(histogram(&p, "latency.irte_lock_wait_ps").max, 0);
}

#[test]
fn interrupts_raised_while_msix_is_disabled_are_lost_by_closed_form() {
    // Each queue raises every T = 10 us (constant rate, its own phase). A release takes
    // exactly T (4.4 us of lock + 5.6 us free_irq), so growing from k to k + 1 vectors keeps
    // MSI-X disabled for k·T: every one of the n queues loses exactly k raises in that
    // half-open window, whatever its phase. At each disable the pending bits of the n - k
    // entries still masked (each raised during the 58 us of the guest's path) are dropped too.
    // Lost = sum over k = 1..n-1 of (n·k + n - k) = n·n(n-1)/2 + n(n-1)/2 = (n+1)·n(n-1)/2.
    for n in [2u64, 8, 12] {
        let (p, _) = run(&provisioned(n as u32, false, 10 * US - RELEASE_LOCK), 10_000 * US);
        let lost = (n + 1) * n * (n - 1) / 2;
        assert_eq!(counter(&p, "interrupt.lost.msix_disabled_count"), lost, "n = {n}");
        let windows = histogram(&p, "latency.msix_disabled_window_ps");
        assert_eq!(windows.count, n - 1, "one window per resize after the first vector");
        assert_eq!(windows.sum, u128::from(10 * US * n * (n - 1) / 2), "k·T for k = 1..n-1");
        assert_eq!(windows.max, 10 * US * (n - 1));
    }
    // With dynamic MSI-X nothing is disabled: nothing lost.
    let (p, _) = run(&provisioned(12, true, 10 * US - RELEASE_LOCK), 10_000 * US);
    assert_eq!(counter(&p, "interrupt.lost_count"), 0);
    assert_eq!(histogram(&p, "latency.msix_disabled_window_ps").count, 0);
}

#[test]
fn a_full_kvm_routing_table_leaves_vectors_without_interrupts_counted() {
    for routes_per in [RoutesPer::EnabledVector, RoutesPer::AdvertisedEntry] {
        let mut params = provisioned(8, true, 2 * US);
        let prov = params.devices[0].provisioning.as_mut().unwrap();
        prov.gsi_routes = 5;
        prov.routes_per = routes_per;
        let (p, _) = run(&params, 10_000 * US);
        assert_eq!(counter(&p, "provision.gsi_route_fail_count"), 3, "{routes_per:?}: 8 vectors, 5 routes");
        assert_eq!(counter(&p, "provision.request_irq_count"), 5);
        let routes = p.resources().into_iter().find(|r| r.name == "kvm.gsi_routes_per_guest").unwrap();
        assert_eq!((routes.used_max, routes.limit), (5, 5));
        // The three queues without a route keep raising into their masked entries: merged.
        assert_eq!(counter(&p, "interrupt.lost_count"), 0);
    }
}

#[test]
fn raises_before_a_vector_is_usable_are_held_and_sent_at_its_unmask() {
    // One vector, dynamic MSI-X, the guest starting at 0: it is usable at 58 + 8.7 us. The
    // queue raises every 10 us from a phase in [0, 10 us): its first raise sets the pending
    // bit, later ones merge, and at the unmask one message goes out. Nothing is lost.
    let (p, q) = run(&provisioned(1, true, 2 * US), GUEST_PER_VECTOR + SETUP);
    let c = p.conservation(&q);
    assert_eq!(c.lost, 0);
    // Raises up to the unmask: 6 or 7 (66.7 us / 10 us); all but the first merged, the
    // first now on its way (or still pending if the unmask is later in this instant).
    assert_eq!(c.merged + c.in_transit + c.pending, c.raised);
    assert_eq!(c.in_transit + c.pending, 1);
}

/// [`provisioned`] with an IMS store of `slots` slots in device memory (or queue memory,
/// with a 3 us command queue, when `slots` is `None`) and the mode `mode`.
fn with_ims(n: u32, mode: ProvisionMode, slots: Option<u32>, guest_ims: GuestIms) -> PlatformParams {
    let mut params = provisioned(n, false, 2 * US);
    let d = &mut params.devices[0];
    match slots {
        Some(slots) => {
            d.store = StoreKind::ImsDevice;
            d.ims_pool = Some(0);
            params.ims_pools = vec![ImsPoolParams { name: "d".into(), slots }];
        }
        None => {
            d.store = StoreKind::ImsQueue;
            d.store_update_latency = SimDuration::from_us(3);
        }
    }
    // The device latches raises on masked slots, so that the counts of these tests are the
    // provisioning path's; the default (dropped) is tested on its own
    // (`an_ims_device_drops_masked_raises_unless_it_latches_and_the_vmm_keeps_trapped_ones`).
    d.ims_masked_raise = ImsMaskedRaise::Latch;
    let prov = d.provisioning.as_mut().unwrap();
    prov.mode = mode;
    prov.guest_ims = guest_ims;
    params
}

#[test]
fn guest_msix_over_host_ims_takes_a_slot_per_vector_and_never_resizes() {
    // 12 vectors, 8 IMS slots: 8 set up, 4 counted without a slot; dynamic_msix is false
    // but IMS allocates per vector, so nothing is released, disabled or lost.
    let (p, _) = run(&with_ims(12, ProvisionMode::MsixOverIms, Some(8), GuestIms::Hypothetical), 10_000 * US);
    assert_eq!(counter(&p, "provision.request_irq_count"), 8);
    assert_eq!(counter(&p, "setup.ims_slot_fail_count"), 4);
    assert_eq!(counter(&p, "provision.free_irq_count"), 0);
    assert_eq!(counter(&p, "interrupt.lost_count"), 0);
    let slots = p.resources().into_iter().find(|r| r.name == "pci.ims_slots_per_device").unwrap();
    assert_eq!((slots.used_max, slots.limit), (8, 8));
    // The guest still pays the MSI-X trap per vector: 12 x 5 exits.
    assert_eq!(histogram(&p, "kvm.exit.ept_misconfig").count, 60);
}

#[test]
fn a_linux_guest_gets_no_ims_domain_and_falls_back_to_msix_counted() {
    use models::kernel::KernelVersion;
    for (mode, kernel, reason) in [
        (ProvisionMode::ImsTrapped, KernelVersion::new(6, 1), "has no PCI/IMS"),
        (ProvisionMode::ImsHypercall, KernelVersion::new(6, 6), "remapping parent is virtual"),
        (ProvisionMode::ImsHypercall, KernelVersion::new(6, 10), "has no PCI/IMS"),
    ] {
        let (p, _) = run(&with_ims(4, mode, Some(64), GuestIms::Linux(kernel)), 10_000 * US);
        assert_eq!(counter(&p, "provision.ims_fallback_count"), 1, "{mode:?} on {kernel}");
        let failure = &p.metrics().snapshot().examples;
        let line = failure.iter().flatten().map(|e| e.first.line.clone()).find(|l| l.contains("falling back"));
        assert!(line.is_some_and(|l| l.contains(reason)), "{mode:?} on {kernel}");
        // MSI-X trapped instead (this host resizes: 4·5/2 setups), no IMS slot, no hypercall.
        assert_eq!(counter(&p, "provision.request_irq_count"), 10);
        let slots = p.resources().into_iter().find(|r| r.name == "pci.ims_slots_per_device").unwrap();
        assert_eq!(slots.used_max, 0);
        assert_eq!(histogram(&p, "kvm.exit.vmcall").count, 0);
    }
}

#[test]
fn a_hypercall_per_vector_against_the_trap_path_by_arithmetic() {
    // Per vector, trapped: 5 exits x 10 us + route 5 us + ioctl 3 us = 58 us, then the host
    // setup (8.7 us): 66.7 us. By hypercall: one vmcall (15 us) and the same host setup:
    // 23.7 us; the guest's message and unmask stores are not trapped. Ratio 667/237.
    let n = 16u64;
    let (trapped, _) =
        run(&with_ims(n as u32, ProvisionMode::ImsTrapped, Some(64), GuestIms::Hypothetical), 10_000 * US);
    let (hcall, _) =
        run(&with_ims(n as u32, ProvisionMode::ImsHypercall, Some(64), GuestIms::Hypothetical), 10_000 * US);
    let trap_time = histogram(&trapped, "latency.provision_setup_ps").max;
    let hcall_time = histogram(&hcall, "latency.provision_setup_ps").max;
    assert_eq!(trap_time, n * (GUEST_PER_VECTOR + SETUP));
    assert_eq!(hcall_time, n * (15 * US + SETUP));
    assert_eq!(trap_time * 237, hcall_time * 667, "66.7 us against 23.7 us per vector");
    assert_eq!(histogram(&hcall, "kvm.exit.vmcall").count, n);
    assert_eq!(counter(&hcall, "provision.exit_count"), n);
    assert_eq!(histogram(&hcall, "kvm.exit.ept_misconfig").count, 0);
    assert_eq!(counter(&hcall, "provision.vfio_set_irqs_count"), 0, "no VMM ioctl on the hypercall path");
    // Queue-memory IMS: the guest's message and unmask go through the device's command queue
    // (3 us each) before the vector is usable; the host's time is the same.
    let (queue, _) = run(&with_ims(n as u32, ProvisionMode::ImsHypercall, None, GuestIms::Hypothetical), 10_000 * US);
    assert_eq!(histogram(&queue, "latency.provision_setup_ps").max, n * (15 * US + SETUP + 2 * 3 * US));
    assert_eq!(counter(&queue, "provision.host_cpu_ps"), n * (15 * US + SETUP));
}

#[test]
fn an_assigned_ims_device_draws_from_its_pool_even_programmed_at_time_zero() {
    // No provisioning section: VFIO programs the 8 queues when the VM starts, each taking one
    // of the device's 5 IMS slots; 3 are counted without one (the pool used to be skipped).
    let mut params = with_ims(8, ProvisionMode::MsixOverIms, Some(5), GuestIms::Hypothetical);
    params.devices[0].provisioning = None;
    let (p, _) = run(&params, 1_000 * US);
    assert_eq!(counter(&p, "setup.ims_slot_fail_count"), 3);
    assert_eq!(counter(&p, "setup.queue_routed_count"), 5);
}

#[test]
fn two_functions_brought_up_together_contend_on_the_irte_lock_once() {
    // Two identical functions start at 0. Their first unmasks reach the host together at
    // 58 us: the first's setup holds the lock 4.7 us (0.3 + 2.2 + 2.2), the second's waits
    // those 4.7 us. From then on the second runs 4.7 us behind the first, and each of its
    // requests finds the lock just released: one wait in all, and the second function is
    // ready 4.7 us after the first (n x 66.7 us).
    let n = 8u64;
    let mut params = provisioned(n as u32, true, 2 * US);
    let second = DeviceParams { name: "e".into(), requester_id: 0x0108, ..params.devices[0].clone() };
    params.devices.push(second);
    let (p, _) = run(&params, 10_000 * US);
    let setup = histogram(&p, "latency.provision_setup_ps");
    assert_eq!(
        (setup.count, setup.min, setup.max),
        (2, n * (GUEST_PER_VECTOR + SETUP), n * (GUEST_PER_VECTOR + SETUP) + 4_700_000)
    );
    let wait = histogram(&p, "latency.irte_lock_wait_ps");
    assert_eq!((wait.max, wait.sum), (4_700_000, 4_700_000));
}

/// A host device `a` (8 MSI-X queues, programmed by its host driver: IRTEs 0-7 with its
/// requester id, queues that do not raise in the run) and a guest's queue-memory IMS device
/// `b` of `n` queues whose guest writes its own messages (`ImsDirect`), with requester id
/// `b_rid`.
fn direct(n: u32, remappable: bool, b_rid: u16) -> PlatformParams {
    let mut params = with_ims(n, ProvisionMode::ImsDirect { remappable }, None, GuestIms::Hypothetical);
    params.devices[0].requester_id = b_rid;
    let mut a = one_device(8, 8, true).devices.remove(0);
    a.name = "a".into();
    // One raise a second from a phase in [0, 1 s): none in this 1 ms run (seed 1).
    a.arrival = ArrivalParams::Constant { rate_per_s: 1.0 };
    params.devices.insert(0, a);
    params
}

#[test]
fn a_guests_own_messages_are_faulted_or_misrouted_never_delivered_to_it() {
    let until = 1_000 * US;
    let count = |p: &Platform, name: &str| counter(p, name);
    // Another requester id: the guest's handles 0-7 name a's IRTEs (source-id check: 0x26),
    // 8-11 name nothing (present bit clear: 0x22). Every message that left is lost, and
    // counted against the guest.
    let (p, q) = run(&direct(12, true, 0x0200), until);
    let (f22, f26) =
        (count(&p, "interrupt.lost.remap_fault_0x22_count"), count(&p, "interrupt.lost.remap_fault_0x26_count"));
    assert_eq!(count(&p, "guest.vm0.direct_lost_count"), f22 + f26);
    assert_eq!(count(&p, "interrupt.lost_count"), f22 + f26);
    assert_eq!(count(&p, "guest.vm0.direct_misrouted_count"), 0);
    assert_eq!(p.conservation(&q).delivered, 0, "nothing reaches the guest");
    // 12 queues at 100k/s for most of a millisecond: both kinds of fault happen.
    assert!(f22 > 0 && f26 > 0, "{f22} {f26}");
    // Compatibility format: blocked (0x25) whatever the index.
    let (p, _) = run(&direct(12, false, 0x0200), until);
    assert_eq!(count(&p, "guest.vm0.direct_lost_count"), count(&p, "interrupt.lost.remap_fault_0x25_count"));
    assert_eq!(count(&p, "interrupt.lost_count"), count(&p, "interrupt.lost.remap_fault_0x25_count"));
    // The same requester id (an ADI of a's device): handles 0-7 pass the source-id check and
    // go to a's host vectors, whose driver handles them: each delivery is a misroute.
    // (The IEC has no entries here: every translation reads the table, a cache miss.)
    let (p, _) = run(&direct(8, true, 0x0100), until);
    let translated = count(&p, "iommu.irte_cache_miss_count");
    assert_eq!(count(&p, "guest.vm0.direct_misrouted_count"), translated);
    assert_eq!(count(&p, "interrupt.lost_count"), 0);
    assert_eq!(count(&p, "guest.vm0.direct_lost_count"), 0);
    // They ran a's handler on the host, not the guest's: no posted delivery at all.
    assert_eq!(histogram(&p, "latency.posted_delivery_ps").count, 0);
}

#[test]
fn a_table_written_before_the_enable_costs_n_setups_with_qemus_batch_and_n_n_plus_1_over_2_without() {
    // 8 vectors, no dynamic MSI-X, the whole table written first: 8 x 5 + 1 exits. QEMU's
    // batched enable routes all 8, commits once and sets them up in one ioctl: 8 setups, no
    // release, nothing disabled. Without the batch it uses them in turn: 36 setups.
    let n = 8u64;
    let mut params = provisioned(n as u32, false, 2 * US);
    let prov = params.devices[0].provisioning.as_mut().unwrap();
    prov.guest_order = GuestOrder::TableFirst;
    let (p, _) = run(&params, 10_000 * US);
    assert_eq!(histogram(&p, "kvm.exit.ept_misconfig").count, n * 5 + 1);
    assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), 1);
    assert_eq!(counter(&p, "provision.request_irq_count"), n);
    assert_eq!(counter(&p, "provision.free_irq_count"), 0);
    // Setup time: the exits (41 x 10 us), one route commit and ioctl (8 us), 8 setups.
    assert_eq!(histogram(&p, "latency.provision_setup_ps").max, (n * 5 + 1) * 10 * US + 8 * US + n * SETUP);
    params.devices[0].provisioning.as_mut().unwrap().qemu_batch_enable = false;
    let (p, _) = run(&params, 10_000 * US);
    assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), n);
    assert_eq!(counter(&p, "provision.request_irq_count"), n * (n + 1) / 2);
    assert_eq!(histogram(&p, "kvm.exit.ept_misconfig").count, n * 5 + 1);
}

#[test]
fn masking_a_vector_at_a_rate_costs_two_exits_two_ioctls_and_two_irte_writes_per_cycle() {
    // One vector, up at 66.7 us. From then on every 1 ms the guest masks it and unmasks it
    // 100 us later: per cycle 2 exits, 2 ioctls (the trigger to QEMU and back), a route
    // update, 2 IRTE writes (posted -> remapped -> posted, 2.2 us each), and free_irq +
    // request_irq (6 us) twice. In 3.5 ms after the setup, 3 cycles.
    let mut params = provisioned(1, true, 2 * US);
    params.devices[0].provisioning.as_mut().unwrap().masking =
        Some((SimDuration::from_ms(1), SimDuration::from_us(100)));
    let up = GUEST_PER_VECTOR + SETUP;
    let (p, q) = run(&params, up + 3_500 * US);
    assert_eq!(counter(&p, "provision.mask_count"), 3);
    assert_eq!(counter(&p, "provision.exit_count"), 5 + 2 * 3);
    assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), 1 + 2 * 3);
    assert_eq!(counter(&p, "provision.irte_write_count"), 2 + 2 * 3);
    // Host time: the setup, then per cycle the mask (10 + 3 us, 2.2 us + 6 us on the host)
    // and the unmask (10 + 5 + 3 us, 2.2 us + 6 us).
    let cycle = 13 * US + 8_200_000 + 18 * US + 8_200_000;
    assert_eq!(counter(&p, "provision.host_cpu_ps"), up + 3 * cycle);
    assert_eq!(p.conservation(&q).lost, 0, "raises while masked wait in the pending bit");
}

#[test]
fn an_affinity_change_at_a_rate_costs_six_exits_two_ioctls_and_two_irte_writes_trapped() {
    // One vector on vCPU 0, up at 66.7 us. From then on every 1 ms the guest moves it to the
    // next vCPU: Linux's __pci_write_msi_msg masks the entry (1 exit: QEMU moves VFIO's
    // trigger to its eventfd, 3 us ioctl; the bypass off: 2.2 us IRTE write, free_irq +
    // request_irq 6 us), writes the message (4 exits, QEMU only stores it), unmasks (1 exit:
    // route update 5 us, ioctl 3 us; the bypass on the new vCPU: 2.2 us, 6 us). Per change
    // 6 exits, 2 ioctls, 2 IRTE writes. In 3.5 ms after the setup, 3 changes: vCPU 0 -> 1
    // -> 2 -> 3.
    let mut params = provisioned(1, true, 2 * US);
    params.devices[0].provisioning.as_mut().unwrap().affinity = Some(SimDuration::from_ms(1));
    let up = GUEST_PER_VECTOR + SETUP;
    let (p, q) = run(&params, up + 3_500 * US);
    assert_eq!(counter(&p, "provision.affinity_count"), 3);
    assert_eq!(counter(&p, "provision.mask_count"), 0);
    assert_eq!(counter(&p, "provision.exit_count"), 5 + 6 * 3);
    assert_eq!(histogram(&p, "kvm.exit.ept_misconfig").count, 5 + 6 * 3);
    assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), 1 + 2 * 3);
    assert_eq!(counter(&p, "provision.irte_write_count"), 2 + 2 * 3);
    let change = (10 * US + 3 * US + 8_200_000) + (5 * 10 * US + 5 * US + 3 * US + 8_200_000);
    assert_eq!(counter(&p, "provision.host_cpu_ps"), up + 3 * change);
    // Raises during a change wait in the pending bit and go to the new vCPU: none lost, and
    // the queue's interrupts were handled on each of the 4 vCPUs in turn.
    assert_eq!(p.conservation(&q).lost, 0);
    let table = p.guest_interrupts_table(0).unwrap();
    let row: Vec<u64> =
        table.lines().nth(1).unwrap().split_whitespace().skip(1).take(4).map(|c| c.parse().unwrap()).collect();
    assert!(row.iter().all(|&c| c > 0), "{table}");
    assert_eq!(row.iter().sum::<u64>(), p.conservation(&q).delivered, "{table}");
}

#[test]
fn an_affinity_change_by_hypercall_costs_one_exit_and_one_irte_write() {
    // IMS through a hypercall: per change one vmcall (15 us) in which KVM updates the route
    // (5 us) and the posted IRTE (one write and its flush, 2.2 us); nothing is masked. Three
    // changes in 3.5 ms after the 16 vectors are up (16 x 23.7 us).
    let n = 16u64;
    let mut params = with_ims(n as u32, ProvisionMode::ImsHypercall, Some(64), GuestIms::Hypothetical);
    params.devices[0].provisioning.as_mut().unwrap().affinity = Some(SimDuration::from_ms(1));
    let up = n * (15 * US + SETUP);
    let (p, q) = run(&params, up + 3_500 * US);
    assert_eq!(counter(&p, "provision.affinity_count"), 3);
    assert_eq!(counter(&p, "provision.exit_count"), n + 3);
    assert_eq!(histogram(&p, "kvm.exit.vmcall").count, n + 3);
    assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), 0);
    assert_eq!(counter(&p, "provision.irte_write_count"), 2 * n + 3);
    assert_eq!(counter(&p, "provision.host_cpu_ps"), up + 3 * (15 * US + 5 * US + 2_200_000));
    assert_eq!(p.conservation(&q).lost, 0);
}

#[test]
fn provisioning_occupies_the_exiting_vcpus_pcpu() {
    // The guest's first provisioned function exits on vCPU 0 (pCPU 4), its second on vCPU 1
    // (pCPU 5): each one's whole host work (exits, VMM, ioctls, request_irq and the lock's
    // holds and waits: n x 66.7 us, and the second's one 4.7 us wait) is busy time of that
    // pCPU, on the ledger with the vCPUs' execution (the interrupts cost nothing here).
    let n = 8u64;
    let mut params = provisioned(n as u32, true, 2 * US);
    let second = DeviceParams { name: "e".into(), requester_id: 0x0108, ..params.devices[0].clone() };
    params.devices.push(second);
    let end = 10_000 * US;
    let (p, _) = run(&params, end);
    let busy = p.pcpu_busy(SimTime::from_ps(end));
    let per_pcpu: Vec<(u32, u64, u64)> = busy.iter().map(|b| (b.cpu.0, b.busy_ps, b.overlaps)).collect();
    let one = n * (GUEST_PER_VECTOR + SETUP);
    assert_eq!(per_pcpu, [(4, one, 0), (5, one + 4_700_000, 0), (6, 0, 0), (7, 0, 0)]);
    assert_eq!(counter(&p, "provision.host_cpu_ps"), 2 * one + 4_700_000);
}

/// Tenants of one device: `a` (4 queues, programmed by the host for guest vm1 when the VM
/// starts), `c` (4 queues, the same for vm0) and `b` (8 queues) whose guest vm0 writes its
/// own remappable messages naming its IRTEs 0-7, which are a's 0-3 and c's 4-7. As SIOV
/// ADIs all three share requester id 0x0100 (PASIDs 1, 2, 3); as SR-IOV VFs each has its
/// own (0x0101-0x0103). vm0 runs on pCPUs 4-5, vm1 on 6-7.
fn tenants(siov: bool, pasid_checking: bool) -> PlatformParams {
    let mut params = with_ims(8, ProvisionMode::ImsDirect { remappable: true }, None, GuestIms::Hypothetical);
    params.remapping.as_mut().unwrap().remap.pasid_checking = pasid_checking;
    let vm0 = params.guests[0].clone();
    params.guests = vec![
        GuestParams { vcpu_count: 2, pcpus: vec![CpuId(4), CpuId(5)], ..vm0.clone() },
        GuestParams { name: "vm1".into(), vcpu_count: 2, pcpus: vec![CpuId(6), CpuId(7)], ..vm0 },
    ];
    let b = params.devices.remove(0);
    let host_programmed = |name: &str, guest: u32| DeviceParams {
        name: name.into(),
        queue_count: 4,
        assigned_to: Some(guest),
        provisioning: None,
        // One raise a second from a phase in [0, 1 s): none in this 1 ms run (seed 1).
        arrival: ArrivalParams::Constant { rate_per_s: 1.0 },
        ..b.clone()
    };
    params.devices = vec![host_programmed("a", 1), host_programmed("c", 0), b];
    for (i, d) in params.devices.iter_mut().enumerate() {
        (d.requester_id, d.pasid) = if siov { (0x0100, Some(i as u32 + 1)) } else { (0x0101 + i as u16, None) };
    }
    params
}

#[test]
fn under_siov_a_guests_own_messages_reach_another_tenant_and_under_sriov_or_pasid_checking_none() {
    let until = 1_000 * US;
    let count = |p: &Platform, name: &str| counter(p, name);
    // SIOV, requester-id checking only (VT-d): every message passes the source check, the
    // first four queues' into vm1's vectors (cross-tenant), the last four's into vm0's own
    // (c's). Nothing is lost, nothing reaches the host.
    let (p, _) = run(&tenants(true, false), until);
    let (own, tenant) =
        (count(&p, "guest.vm0.direct_misrouted_own_count"), count(&p, "guest.vm0.direct_misrouted_tenant_count"));
    let misrouted = count(&p, "guest.vm0.direct_misrouted_count");
    assert_eq!(own + tenant, misrouted);
    assert_eq!(count(&p, "guest.vm0.direct_misrouted_host_count"), 0);
    assert_eq!(count(&p, "guest.vm1.cross_tenant_received_count"), tenant);
    assert_eq!(count(&p, "guest.vm0.cross_tenant_received_count"), 0);
    assert_eq!(count(&p, "interrupt.lost_count"), 0);
    // a and c raise nothing: every translation (no IEC: each a table read) is b's.
    assert_eq!(count(&p, "iommu.irte_cache_miss_count"), misrouted);
    // The same run as SR-IOV VFs: the same messages (same timing), each now failing the
    // source-id check (0x26): lost, none misrouted, no tenant reached.
    let (v, _) = run(&tenants(false, false), until);
    assert_eq!(count(&v, "interrupt.lost.remap_fault_0x26_count"), misrouted);
    assert_eq!(count(&v, "guest.vm0.direct_lost_count"), misrouted);
    for name in ["misrouted", "misrouted_own", "misrouted_tenant", "misrouted_host"] {
        assert_eq!(count(&v, &format!("guest.vm0.direct_{name}_count")), 0, "{name}");
    }
    assert_eq!(count(&v, "guest.vm1.cross_tenant_received_count"), 0);
    // SIOV with (hypothetical) PASID checking: the RID matches but the PASID does not:
    // blocked as 0x26, the same count; no tenant reached.
    let (c, _) = run(&tenants(true, true), until);
    assert_eq!(count(&c, "interrupt.lost.remap_fault_0x26_count"), misrouted);
    assert_eq!(count(&c, "guest.vm0.direct_misrouted_tenant_count"), 0);
    assert_eq!(count(&c, "guest.vm1.cross_tenant_received_count"), 0);
    // The vectors of a and c still work under PASID checking: the host wrote their IRTEs
    // with their PASIDs (checked by the unit test of the check itself).
    assert!(own > 0 && tenant > 0, "both halves are hit: {own} {tenant}");
}

#[test]
fn a_hot_added_function_raises_and_provisions_from_its_hot_add_on() {
    // The function appears at 5 ms: before it nothing is raised, exited or set up; then its
    // 8 vectors come up as at boot (dynamic MSI-X: 8 setups, 8 ioctls, 40 exits), the setup
    // time counted from the hot-add, 8 x 66.7 us. Each queue raises every 10 us from
    // 5 ms + its phase (in [0, 10 us)): 500 raises each by 10 ms.
    let n = 8u64;
    let mut params = provisioned(n as u32, true, 2 * US);
    params.devices[0].hot_add_at = Some(SimTime::from_ps(5_000 * US));
    let (mut p, mut q) = Platform::new(&params, 1);
    run_to(&mut p, &mut q, 5_000 * US - 1);
    assert_eq!(counter(&p, "interrupt.raised_count"), 0);
    assert_eq!(counter(&p, "provision.exit_count"), 0);
    assert_eq!(counter(&p, "provision.request_irq_count"), 0);
    run_to(&mut p, &mut q, 10_000 * US);
    assert_eq!(counter(&p, "provision.request_irq_count"), n);
    assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), n);
    assert_eq!(counter(&p, "provision.exit_count"), 5 * n);
    let setup = histogram(&p, "latency.provision_setup_ps");
    assert_eq!((setup.count, setup.max), (1, n * (GUEST_PER_VECTOR + SETUP)));
    assert_eq!(counter(&p, "interrupt.raised_count"), n * 500);
    assert!(p.conservation(&q).holds());
}

#[test]
fn a_hypercall_guest_masks_its_ims_through_the_device_or_by_hypercall() {
    // One queue-memory IMS vector by hypercall, up at 15 us (vmcall) + 8.7 us (host setup) +
    // 2 x 3 us (the guest's message and unmask commands). Then every 1 ms the guest masks it
    // and unmasks it 100 us later: in 3.5 ms after the setup, 3 cycles. No IRTE is written
    // (the entry's own mask bit: the IRTE stays posted) and nothing is lost.
    let up = 15 * US + SETUP + 2 * 3 * US;
    for path in [ImsMaskPath::Device, ImsMaskPath::Hypercall] {
        let mut params = with_ims(1, ProvisionMode::ImsHypercall, None, GuestIms::Hypothetical);
        let prov = params.devices[0].provisioning.as_mut().unwrap();
        prov.masking = Some((SimDuration::from_ms(1), SimDuration::from_us(100)));
        prov.ims_mask = path;
        let (p, q) = run(&params, up + 3_500 * US);
        assert_eq!(counter(&p, "provision.mask_count"), 3, "{path:?}");
        assert_eq!(counter(&p, "provision.irte_write_count"), 2, "the setup's only");
        assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), 0);
        assert_eq!(p.conservation(&q).lost, 0);
        match path {
            // The guest writes the mask bit itself through the command queue: two commands
            // a cycle, no exit, no host time beyond the setup's.
            ImsMaskPath::Device => {
                assert_eq!(counter(&p, "provision.ims_mask_write_count"), 2 * 3);
                assert_eq!(counter(&p, "provision.exit_count"), 1);
                assert_eq!(counter(&p, "provision.host_cpu_ps"), 15 * US + SETUP);
            }
            // A hypercall each for the mask and the unmask (15 us of host time each).
            ImsMaskPath::Hypercall => {
                assert_eq!(counter(&p, "provision.exit_count"), 1 + 2 * 3);
                assert_eq!(histogram(&p, "kvm.exit.vmcall").count, 1 + 2 * 3);
                assert_eq!(counter(&p, "provision.host_cpu_ps"), 15 * US + SETUP + 2 * 3 * 15 * US);
            }
        }
    }
}

#[test]
fn an_ims_device_drops_masked_raises_unless_it_latches_and_the_vmm_keeps_trapped_ones() {
    // One queue-memory IMS vector by hypercall (up at 15 us + 8.7 us + 2 x 3 us = 29.7 us),
    // raised every 10 us from a phase in [0, 10 us). The guest masks it through the
    // device every 1 ms and unmasks it 100 us later: each mask and unmask a 3 us device
    // command, so the slot is masked for exactly 100 us a cycle (from cycle start + 3 us to
    // + 103 us), 10 raises each; 3 cycles in 3.5 ms. Before the vector is up its slot is
    // masked too (the reset state): the raises before 29.7 us (the phase is 6.77 us for
    // seed 1: three, at 6.77, 16.77, 26.77 us) find it masked as well.
    let up = 15 * US + SETUP + 2 * 3 * US;
    let (cycles, per_window, before_up) = (3u64, 10u64, 3u64);
    let masked = |raise: ImsMaskedRaise| {
        let mut params = with_ims(1, ProvisionMode::ImsHypercall, None, GuestIms::Hypothetical);
        params.devices[0].ims_masked_raise = raise;
        let prov = params.devices[0].provisioning.as_mut().unwrap();
        prov.masking = Some((SimDuration::from_ms(1), SimDuration::from_us(100)));
        let (p, q) = run(&params, up + 3_500 * US);
        assert!(p.conservation(&q).holds());
        p
    };
    // Dropped (the default: IMS has no pending bit): every raise on the masked slot is lost,
    // with its own reason.
    let p = masked(ImsMaskedRaise::Drop);
    let lost = cycles * per_window + before_up;
    assert_eq!(counter(&p, "interrupt.lost.ims_masked_count"), lost);
    assert_eq!(counter(&p, "interrupt.lost_count"), lost);
    assert_eq!(counter(&p, "interrupt.merged_pending_count"), 0);
    assert_eq!(counter(&p, "interrupt.delivered_count"), counter(&p, "interrupt.raised_count") - lost);
    // Latched by the device: one pending state a window, the rest merged into it, sent at
    // the unmask; nothing lost, and no lost-masked counter registered.
    let p = masked(ImsMaskedRaise::Latch);
    assert_eq!(counter(&p, "interrupt.lost_count"), 0);
    assert_eq!(counter(&p, "interrupt.merged_pending_count"), cycles * (per_window - 1) + (before_up - 1));
    assert!(p.metrics().snapshot().counters.iter().all(|(c, _)| c.name != "interrupt.lost.ims_masked_count"));

    // Trapped IMS (device memory) masked by the guest the same way: the VMM keeps the mask
    // and the pending bit in its emulation (QEMU's way), so a device that drops loses only
    // the raises before the vector is up, exactly what trapped MSI-X over the same timing
    // keeps in its pending bit; the control plane's raises are held and merged identically.
    let trapped = |mut params: PlatformParams| {
        params.devices[0].ims_masked_raise = ImsMaskedRaise::Drop;
        params.devices[0].provisioning.as_mut().unwrap().masking =
            Some((SimDuration::from_ms(1), SimDuration::from_us(100)));
        let (p, q) = run(&params, 3_500 * US);
        assert!(p.conservation(&q).holds());
        p
    };
    let ims = trapped(with_ims(1, ProvisionMode::ImsTrapped, Some(8), GuestIms::Hypothetical));
    let msix = trapped(provisioned(1, true, 2 * US));
    let merged = |p: &Platform| counter(p, "interrupt.merged_pending_count");
    let before = counter(&ims, "interrupt.lost.ims_masked_count");
    assert_eq!(counter(&ims, "interrupt.lost_count"), before, "only the raises before the vector is up");
    assert_eq!(counter(&ims, "provision.mask_count"), counter(&msix, "provision.mask_count"));
    // MSI-X merges the same pre-setup raises into its pending bit (all but the first) on
    // top of the control plane's merges, which are the VMM's in both.
    assert_eq!(merged(&msix), merged(&ims) + (before - 1));
}
