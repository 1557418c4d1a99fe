//! Timed provisioning of an assigned device's interrupts (MSI-X trapped by the VMM), through
//! the platform's public API: host setups with and without dynamic MSI-X, the setup time
//! under the global IRTE lock, the interrupts lost while MSI-X is disabled to resize, and
//! the KVM routing table's limit, each against its closed form.

#[allow(dead_code)] // the shared helpers this file does not use
mod common;
use common::{counter, one_device, run_to};

use models::ids::CpuId;
use models::iommu::posted::PostedParams;
use models::platform::*;
use models::workload::ArrivalParams;
use sim::{EventQueue, SimDuration, SimTime};

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
    }
}

/// One device of `n` MSI-X queues at 100k/s each (a period of 10 us) assigned to a 4-vCPU
/// guest on pCPUs 4-7 and provisioned from time 0; the IRTE lock holds 300 ns to allocate,
/// 200 ns per write and 2 us per IEC flush.
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
        posted: PostedParams {
            notify_running: SimDuration::from_ns(50),
            wakeup_irq_entry: SimDuration::from_ns(300),
            wakeup_list_entry: SimDuration::from_ns(20),
            kick: SimDuration::from_ns(200),
            wake_to_vm_entry: SimDuration::from_us(3),
        },
        remapped_forward: SimDuration::from_ns(1_500),
    }];
    let d = &mut params.devices[0];
    d.assigned_to = Some(0);
    d.arrival = ArrivalParams::Constant { rate_per_s: 100_000.0 };
    d.provisioning = Some(ProvisionParams {
        mode: ProvisionMode::MsixTrapped { dynamic_msix },
        start: SimTime::ZERO,
        message_exits: MSIX_MESSAGE_EXITS,
        gsi_routes: KVM_MAX_IRQ_ROUTES,
        routes_per: RoutesPer::EnabledVector,
        costs: costs(free_irq_ps),
    });
    params
}

fn run(params: &PlatformParams, until_ps: u64) -> (Platform, EventQueue<Event>) {
    let (mut p, mut q) = Platform::new(params, 1);
    run_to(&mut p, &mut q, until_ps);
    let c = p.conservation(&q);
    assert_eq!(c.raised, c.delivered + c.lost + c.merged + c.in_transit + c.pending + c.at_cpu, "{c:?}");
    p.check_invariants().unwrap();
    (p, q)
}

fn histogram(p: &Platform, name: &str) -> sim::HistogramSummary {
    p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == name).unwrap()
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
    assert_eq!(histogram(&p, "provision.setup_time_ps").max, dynamic);
    assert_eq!(counter(&p, "provision.host_cpu_ps"), dynamic, "one function: the vCPU thread waits throughout");
    assert_eq!(histogram(&p, "kvm.exit.ept_misconfig_user").count, 5 * n);
    // Without: n guest paths, n(n+1)/2 setups and n(n-1)/2 releases (lock holds + 2 us free_irq).
    let (p, _) = run(&provisioned(n as u32, false, 2 * US), 10_000 * US);
    let noresize = n * GUEST_PER_VECTOR + n * (n + 1) / 2 * SETUP + n * (n - 1) / 2 * (RELEASE_LOCK + 2 * US);
    assert_eq!(histogram(&p, "provision.setup_time_ps").max, noresize);
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
        let windows = histogram(&p, "provision.msix_disabled_window_ps");
        assert_eq!(windows.count, n - 1, "one window per resize after the first vector");
        assert_eq!(windows.sum, u128::from(10 * US * n * (n - 1) / 2), "k·T for k = 1..n-1");
        assert_eq!(windows.max, 10 * US * (n - 1));
    }
    // With dynamic MSI-X nothing is disabled: nothing lost.
    let (p, _) = run(&provisioned(12, true, 10 * US - RELEASE_LOCK), 10_000 * US);
    assert_eq!(counter(&p, "interrupt.lost_count"), 0);
    assert_eq!(histogram(&p, "provision.msix_disabled_window_ps").count, 0);
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
