//! Timed provisioning on a GICv4.1 host (MSI-X trapped; arm64's VFIO without dynamic MSI-X up
//! to Linux 7.2, with it from 7.3; the ITS device freed around each resize up to 6.15 and kept
//! from 6.16) and the host-wide vPE-ID limit, through the platform's public API: the setup and
//! release counts and the ITS round trips by arithmetic, and the VMs that get no vPE IDs.

#[allow(dead_code)] // the shared helpers this file does not use
mod common;
use common::{arm_its, counter, histogram, run_checked as run};

use models::arm::its::GicVersion;
use models::ids::CpuId;
use models::kernel::KernelVersion;
use models::platform::*;
use models::workload::ArrivalParams;
use sim::{SimDuration, SimTime};

const US: u64 = 1_000_000;

/// A GICv4.1 platform of 8 CPUs with `guests` guests of `vcpus` vCPUs each (on pCPUs 4-7,
/// round robin), each with one assigned `n`-queue MSI-X device (requester ids 0x100, 0x101,
/// ...) at 100k/s per queue, provisioned MSI-X trapped from time 0 without dynamic MSI-X;
/// `vpe_id_bits` as given.
fn gicv4(n: u32, guests: u32, vcpus: u32, vpe_id_bits: Option<u32>) -> PlatformParams {
    let mut params = arm_its(n, 8);
    let gic = params.gic.as_mut().unwrap();
    gic.version = GicVersion::V4_1;
    let GicMsiParams::Its { vpe_id_bits: bits, .. } = &mut gic.msi else { unreachable!() };
    *bits = vpe_id_bits;
    let mut device = params.devices[0].clone();
    device.arrival = ArrivalParams::Constant { rate_per_s: 100_000.0 };
    device.provisioning = Some(ProvisionParams {
        mode: ProvisionMode::MsixTrapped,
        dynamic_msix: false,
        guest_ims: GuestIms::Hypothetical,
        start: SimTime::ZERO,
        message_exits: MSIX_MESSAGE_EXITS,
        gsi_routes: KVM_MAX_IRQ_ROUTES,
        routes_per: RoutesPer::EnabledVector,
        guest_order: GuestOrder::PerVector,
        masking: None,
        ims_mask: ImsMaskPath::Device,
        affinity: None,
        qemu_batch_enable: true,
        costs: ProvisionCosts {
            mmio_exit_user: SimDuration::from_us(10),
            route_update: SimDuration::from_us(5),
            set_irqs: SimDuration::from_us(3),
            request_irq: SimDuration::from_us(4),
            free_irq: SimDuration::from_us(2),
            vmcall: SimDuration::ZERO,
            mmio_exit_kernel: SimDuration::from_us(2),
        },
    });
    params.devices.clear();
    params.guests.clear();
    for g in 0..guests {
        params.guests.push(GuestParams {
            name: format!("vm{g}"),
            vcpu_count: vcpus,
            pcpus: (0..vcpus).map(|v| CpuId(4 + (g * vcpus + v) % 4)).collect(),
            host_bursts: None,
            posted: common::posted_costs(),
            remapped_forward: SimDuration::ZERO,
            kvm: common::kvm_free_exits(),
            migration: None,
            ipi: None,
        });
        let mut d = device.clone();
        d.name = format!("d{g}");
        d.requester_id = 0x100 + g as u16;
        d.assigned_to = Some(g);
        params.devices.push(d);
    }
    params
}

/// [`gicv4`] with one guest of 4 vCPUs and an `n`-vector device on host kernel
/// `major.minor`, with dynamic MSI-X as given.
fn gicv4_on(n: u32, major: u16, minor: u16, dynamic_msix: bool) -> PlatformParams {
    let mut params = gicv4(n, 1, 4, None);
    params.kernel.version = KernelVersion::new(major, minor);
    params.devices[0].provisioning.as_mut().unwrap().dynamic_msix = dynamic_msix;
    params
}

#[test]
fn from_6_16_a_resize_keeps_the_its_device_two_round_trips_fewer_per_resize() {
    // Without dynamic MSI-X, n vectors take n - 1 resizes. Up to 6.15 each frees the ITS
    // device with its last event (MAPD V=0) and the next enable creates it again (MAPD V=1);
    // from 6.16 the device lives with the per-device MSI-X domain: the same setups and
    // releases, 2 (n - 1) ITS round trips fewer, everything else equal.
    for n in [1u32, 8, 20] {
        let (n64, tri) = (u64::from(n), u64::from(n) * u64::from(n + 1) / 2);
        let released = tri - n64;
        let (old, _) = run(&gicv4_on(n, 6, 15, false), 20_000 * US);
        let (new, _) = run(&gicv4_on(n, 6, 16, false), 20_000 * US);
        for p in [&old, &new] {
            assert_eq!(counter(p, "provision.request_irq_count"), tri, "n = {n}");
            assert_eq!(counter(p, "provision.free_irq_count"), released, "n = {n}");
        }
        assert_eq!(counter(&old, "provision.its_command_count"), 4 * tri + 5 * released + 2 * (n64 - 1), "n = {n}");
        assert_eq!(counter(&new, "provision.its_command_count"), 4 * tri + 5 * released, "n = {n}");
        // Both still resize: MSI-X is off once in each of the n - 1 teardowns.
        for p in [&old, &new] {
            assert_eq!(histogram(p, "latency.msix_disabled_window_ps").count, n64 - 1, "n = {n}");
        }
    }
}

#[test]
fn from_7_3_arm_has_dynamic_msix_n_setups_of_four_its_round_trips_and_no_release() {
    // The ITS MSI parent offers MSI_FLAG_PCI_MSIX_ALLOC_DYN from 7.3: VFIO clears
    // VFIO_IRQ_INFO_NORESIZE and each unmask sets up one vector (pci_msix_alloc_irq_at).
    // n vectors: n setups (not n(n+1)/2), no release, no resize, nothing lost; 4 ITS round
    // trips each (MAPTI, the direct invalidation, DISCARD and VMAPTI) and no MAPD.
    for n in [1u32, 8, 20] {
        let n64 = u64::from(n);
        let (p, q) = run(&gicv4_on(n, 7, 3, true), 20_000 * US);
        assert_eq!(counter(&p, "provision.request_irq_count"), n64, "n = {n}");
        assert_eq!(counter(&p, "provision.free_irq_count"), 0);
        assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), n64, "one ioctl per guest unmask");
        assert_eq!(counter(&p, "provision.exit_count"), 5 * n64, "4 message exits and the unmask per vector");
        assert_eq!(counter(&p, "provision.vector_usable_count"), n64);
        assert_eq!(counter(&p, "provision.its_command_count"), 4 * n64, "n = {n}");
        assert_eq!(p.conservation(&q).lost, 0, "no disable window");
        // The same 7.3 host behind a QEMU without dynamic MSI-X (dynamic_msix: false)
        // resizes: n(n+1)/2 setups, with the device kept (6.16+).
        let tri = n64 * (n64 + 1) / 2;
        let (p, _) = run(&gicv4_on(n, 7, 3, false), 20_000 * US);
        assert_eq!(counter(&p, "provision.request_irq_count"), tri, "n = {n}");
        assert_eq!(counter(&p, "provision.its_command_count"), 4 * tri + 5 * (tri - n64), "n = {n}");
    }
}

#[test]
fn arm_without_dynamic_msix_costs_n_n_plus_1_over_2_setups_each_four_its_round_trips() {
    for n in [1u32, 8, 20] {
        let (n64, tri) = (u64::from(n), u64::from(n) * u64::from(n + 1) / 2);
        let released = tri - n64; // growing to k + 1 releases the k enabled vectors first
        let (p, _) = run(&gicv4(n, 1, 4, None), 20_000 * US);
        assert_eq!(counter(&p, "provision.request_irq_count"), tri, "n = {n}: 1 + 2 + ... + n");
        assert_eq!(counter(&p, "provision.free_irq_count"), released);
        assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), n64, "one ioctl per guest unmask");
        assert_eq!(counter(&p, "provision.irte_write_count"), 0, "no IRTE on arm");
        assert_eq!(counter(&p, "provision.exit_count"), 5 * n64, "4 message exits and the unmask per vector");
        assert_eq!(counter(&p, "provision.vector_usable_count"), tri);
        // GICv4.1 (direct LPI invalidation). A setup: MAPTI, the LPI's enable (a direct
        // invalidation), DISCARD and VMAPTI: 4. A release: DISCARD, MAPTI and the direct
        // invalidation of its_unmap_vlpi, the mask's invalidation, the DISCARD of the free: 5.
        // The default kernel is 6.10: each of the n - 1 resizes frees the ITS device with its
        // last event (MAPD V=0) and creates it again (MAPD V=1): 2 more.
        let its = 4 * tri + 5 * released + 2 * (n64 - 1);
        assert_eq!(counter(&p, "provision.its_command_count"), its, "n = {n}");
    }
}

#[test]
fn vms_beyond_the_vpe_id_space_fail_to_start_counted_once_each() {
    // 3 vPE ID bits: 8 IDs for the host. VMs of 3 vCPUs: floor(8 / 3) = 2 start (6 IDs);
    // the third and fourth find 2 free and fail: vgic_init's "VPE IRQ allocation failure".
    let params = gicv4(4, 4, 3, Some(3));
    let (p, _) = run(&params, 2_000 * US);
    assert_eq!(counter(&p, "arm.vpe_id_fail_count"), 2);
    // The two VMs that run provision their 4 vectors each (1 + 2 + 3 + 4 setups); the failed
    // VMs' devices never get MSI-X enabled.
    assert_eq!(counter(&p, "provision.request_irq_count"), 2 * 10);
    assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), 2 * 4);
    let ids = p.resources().into_iter().find(|r| r.name == "arm.vpe_ids").expect("the row, as vpe_id_bits is set");
    assert_eq!((ids.limit, ids.used_max), (8, 6));
    // Without the field: Linux's 16 bits fit all four VMs, and no row is shown.
    let (p, _) = run(&gicv4(4, 4, 3, None), 2_000 * US);
    assert_eq!(counter(&p, "provision.request_irq_count"), 4 * 10);
    assert!(p.resources().iter().all(|r| r.name != "arm.vpe_ids"));
    assert!(p.metrics().snapshot().counters.iter().all(|(i, _)| i.name != "arm.vpe_id_fail_count"));
}

#[test]
fn masking_on_arm_costs_two_exits_two_ioctls_and_nine_its_round_trips_per_cycle() {
    // One vector, up well before 100 us (5 exits of 10 us, 12 us of ioctls and request_irq,
    // the ITS's round trips). From then on every 1 ms the guest masks it and unmasks it
    // 100 us later: in 3.6 ms, 3 cycles. Per cycle 2 exits (the mask and the unmask writes)
    // and 2 VFIO_DEVICE_SET_IRQS (QEMU's trigger to its eventfd and back). On the ITS
    // (GICv4.1, direct invalidation), the mask: its_unmap_vlpi's DISCARD, MAPTI and direct
    // invalidation (3), free_irq's mask and request_irq's unmask of the physical LPI (1 + 1);
    // the unmask: free_irq's mask and request_irq's unmask (1 + 1), its_map_vlpi's DISCARD
    // and VMAPTI (2). 5 + 4 = 9 a cycle, after the setup's 4.
    let mut params = gicv4(1, 1, 4, None);
    params.devices[0].provisioning.as_mut().unwrap().masking =
        Some((SimDuration::from_ms(1), SimDuration::from_us(100)));
    let (p, q) = run(&params, 3_600 * US);
    assert_eq!(counter(&p, "provision.mask_count"), 3);
    assert_eq!(counter(&p, "provision.exit_count"), 5 + 2 * 3);
    assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), 1 + 2 * 3);
    assert_eq!(counter(&p, "provision.request_irq_count"), 1, "the control plane moves the trigger, no new setup");
    assert_eq!(counter(&p, "provision.irte_write_count"), 0, "no IRTE on arm");
    assert_eq!(counter(&p, "provision.its_command_count"), 4 + 9 * 3);
    assert_eq!(p.conservation(&q).lost, 0, "raises while masked wait in the pending bit");
    // Host time a cycle, on an idle ITS whose round trips (100 ns command + 400 ns SYNC) the
    // host driver sees at its next 1 us poll, direct invalidations 200 ns, each operation
    // submitted at the step's start (ArmChip::vfio_retrigger). The mask: its exit and ioctl
    // (10 + 3 us); DISCARD seen at 1 us, MAPTI at 2 us, the invalidation at 2.2 us (the
    // mask's and unmask's direct invalidations end at 0.2 us), then free_irq + request_irq
    // (2 + 4 us): 8.2 us. The unmask: exit, route update, ioctl (10 + 5 + 3 us); the direct
    // invalidations (0.2 us), DISCARD seen at 1 us, VMAPTI at 2 us, then 6 us: 8 us.
    let (p0, _) = run(&gicv4(1, 1, 4, None), 3_600 * US);
    let cycle = 13 * US + 8_200_000 + 18 * US + 8 * US;
    assert_eq!(counter(&p, "provision.host_cpu_ps") - counter(&p0, "provision.host_cpu_ps"), 3 * cycle);
}

#[test]
fn an_affinity_change_on_arm_is_a_movi_five_kernel_exits_and_one_vmovi() {
    // One vector on vCPU 0, up before 100 us. From then on every 1 ms the guest moves it to
    // the next vCPU with a MOVI on its virtual ITS (its_send_movi): GITS_CREADR read when
    // the MOVI's and the SYNC's slots are allocated and before the post (3 exits), the
    // GITS_CWRITER write, in which KVM's vgic-its runs the MOVI (its_map_vlpi of a mapped
    // vLPI: VMOVI + VSYNC, 1 ITS round trip), and one GITS_CREADR read that finds it done:
    // 5 MMIO exits handled in the kernel (DABT_LOW, 2 us each), none to the VMM, no ioctl,
    // nothing masked. In 3.6 ms, 3 changes: vCPU 0 -> 1 -> 2 -> 3.
    let mut params = gicv4(1, 1, 4, None);
    params.devices[0].provisioning.as_mut().unwrap().affinity = Some(SimDuration::from_ms(1));
    let (p, q) = run(&params, 3_600 * US);
    assert_eq!(counter(&p, "provision.affinity_count"), 3);
    assert_eq!(counter(&p, "provision.mask_count"), 0);
    // arm64 names every MMIO data abort DABT_LOW: the setup's 5 trapped MSI-X accesses
    // (handled by the VMM, 10 us each) and the moves' 15 (handled by KVM, 2 us each) are
    // samples of the one histogram, as perf kvm stat shows them; x86's name is not used.
    let dabt = histogram(&p, "kvm.exit.dabt_low");
    assert_eq!((dabt.count, dabt.min, dabt.max), (5 + 5 * 3, 2_000_000, 10_000_000));
    assert_eq!(dabt.sum, u128::from(5 * 10 * US + 5 * 3 * 2 * US));
    assert!(p.metrics().snapshot().histograms.iter().all(|h| h.info.name != "kvm.exit.ept_misconfig"));
    assert_eq!(counter(&p, "provision.exit_count"), 5 + 5 * 3);
    assert_eq!(counter(&p, "provision.vfio_set_irqs_count"), 1, "the setup's only");
    assert_eq!(counter(&p, "provision.its_command_count"), 4 + 3);
    assert_eq!(p.conservation(&q).lost, 0, "raises during a move go to the old or the new vPE");
}

#[test]
fn an_affinity_change_on_arm_costs_five_kernel_exits_of_host_time() {
    // The provisioning's host time with 3 moves minus without: per move 3 GITS_CREADR reads
    // (3 x 2 us), the GITS_CWRITER write (2 us; the VMOVI + VSYNC inside it, one round trip
    // of 100 + 400 ns, ends before it) and the completion read (2 us): 10 us. The setup is
    // the same in both runs.
    let base = gicv4(1, 1, 4, None);
    let mut moving = base.clone();
    moving.devices[0].provisioning.as_mut().unwrap().affinity = Some(SimDuration::from_ms(1));
    let (p0, _) = run(&base, 3_600 * US);
    let (p1, _) = run(&moving, 3_600 * US);
    assert_eq!(counter(&p1, "provision.affinity_count"), 3);
    let per_move = 5 * 2 * US;
    assert_eq!(counter(&p1, "provision.host_cpu_ps") - counter(&p0, "provision.host_cpu_ps"), 3 * per_move);
    // With 100 ns exits the ITS is the longer: the write's exit ends when the host driver
    // sees the VMOVI done. The ITS is idle: 100 ns command + 400 ns VSYNC = 500 ns, seen at
    // its_wait_for_range_completion's first read after that, 1 us (it polls with udelay(1)).
    // 3 x 0.1 + 1 + 0.1 us.
    moving.devices[0].provisioning.as_mut().unwrap().costs.mmio_exit_kernel = SimDuration::from_ns(100);
    let (p2, _) = run(&moving, 3_600 * US);
    let per_move = 300_000 + US + 100_000;
    assert_eq!(counter(&p2, "provision.host_cpu_ps") - counter(&p0, "provision.host_cpu_ps"), 3 * per_move);
}
