//! What the platform's integration tests share: a platform of one MSI-X device (on x86, or
//! behind an ARM GICv3 ITS), running it to a time, and reading a counter.

use models::arm::its::{GicVersion, ItsCosts};
use models::ids::CpuId;
use models::iommu::remap::{RemapParams, RemapUnsourced};
use models::kernel::KernelVersion;
use models::pci::store::{ImsMaskedRaise, StoreKind};
use models::platform::*;
use models::workload::ArrivalParams;
use sim::{DurationDist, EventQueue, RunLimits, SimDuration, SimTime, run};

/// One device of `queue_count` MSI-X queues at a constant 1k/s each, with a 1 us handler, spread
/// over `cpus` CPUs; VT-d remapping when `remap`.
pub fn one_device(queue_count: u32, cpus: u32, remap: bool) -> PlatformParams {
    PlatformParams {
        cpu_count: cpus,
        remapping: remap.then(|| IommuParams {
            remap: RemapParams::linux_defaults(RemapUnsourced {
                max_handle_mask: 15,
                fault_recording_registers: 1,
                iec_entries: 0,
                iec_hit_latency: SimDuration::from_ns(100),
                iec_miss_latency: SimDuration::from_ns(100),
                irte_write: SimDuration::ZERO,
                irte_write_posted: SimDuration::ZERO,
                iec_invalidation: SimDuration::ZERO,
                irte_alloc: SimDuration::ZERO,
            }),
            posted_msi: None,
        }),
        devices: vec![DeviceParams {
            name: "d".into(),
            queue_count,
            msi_write_latency: SimDuration::from_ns(500),
            arrival: ArrivalParams::Constant { rate_per_s: 1_000.0 },
            service: DurationDist::constant(SimDuration::from_ns(1_000)),
            eoi_cost: SimDuration::from_ns(50),
            affinity: (0..cpus).map(CpuId).collect(),
            irq_mode: IrqMode::NonManaged,
            numa_node: None,
            store: StoreKind::Msix,
            ims_pool: None,
            store_update_latency: SimDuration::ZERO,
            ims_masked_raise: ImsMaskedRaise::Drop,
            requester_id: 0x0100,
            pasid: None,
            assigned_to: None,
            guest_msi: GuestMsiParams::UNICAST,
            iommu_unit: 0,
            provisioning: None,
            hot_add_at: None,
        }],
        kernel: KernelParams { version: KernelVersion::new(6, 10), legacy_pic: false, ia32_emulation: true, hz: 250 },
        numa_node_count: 1,
        actions: Vec::new(),
        ims_pools: Vec::new(),
        gic: None,
        cpu_costs: CpuCostParams::default(),
        guests: Vec::new(),
        queueing: HostQueueing::Lapic,
        event_path_only: false,
    }
}

/// [`one_device`] behind a GICv3 ITS (16 LPI id bits, placeholder command costs).
#[allow(dead_code)] // not every test file runs on arm
pub fn arm_its(queue_count: u32, cpus: u32) -> PlatformParams {
    let mut params = one_device(queue_count, cpus, false);
    params.gic = Some(GicParams {
        version: GicVersion::V3,
        msi: GicMsiParams::Its {
            costs: ItsCosts {
                command: SimDuration::from_ns(100),
                sync: SimDuration::from_ns(400),
                direct_inv: SimDuration::from_ns(200),
            },
            translation_latency: SimDuration::from_ns(80),
            lpi_id_bits: 16,
            vpe_id_bits: None,
        },
    });
    params
}

/// Runs `p` until `ps` picoseconds of simulated time.
pub fn run_to(p: &mut Platform, q: &mut EventQueue<Event>, ps: u64) {
    run(p, q, RunLimits { time_end: SimTime::from_ps(ps), event_count_max: u64::MAX });
}

/// The histogram `name` of `p` now.
#[allow(dead_code)] // not every test file reads histograms
pub fn histogram(p: &Platform, name: &str) -> sim::HistogramSummary {
    p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == name).unwrap()
}

/// Runs `params` (seed 1) until `until_ps`, then checks conservation and the platform's
/// invariants (every pCPU's busy intervals apart, among them).
#[allow(dead_code)] // the provisioning tests' run
pub fn run_checked(params: &PlatformParams, until_ps: u64) -> (Platform, EventQueue<Event>) {
    let (mut p, mut q) = Platform::new(params, 1);
    run_to(&mut p, &mut q, until_ps);
    check(&p, &q);
    (p, q)
}

/// Checks a run's conservation and the platform's invariants (every pCPU's busy intervals
/// apart, among them).
#[allow(dead_code)] // the provisioning and migration tests'
pub fn check(p: &Platform, q: &EventQueue<Event>) {
    let c = p.conservation(q);
    assert_eq!(c.raised, c.delivered + c.lost + c.merged + c.in_transit + c.pending + c.at_cpu, "{c:?}");
    assert!(c.holds());
    p.check_invariants().unwrap();
}

/// The counter `name` of `p` now.
pub fn counter(p: &Platform, name: &str) -> u64 {
    p.metrics().snapshot().counters.iter().find(|(i, _)| i.name == name).map(|(_, v)| *v).unwrap()
}

/// Posting costs: notification 50 ns, a wake-up IRQ of 300 ns, 20 ns per wake-up list
/// entry, 200 ns per kick, 3 us from the kick to the VM entry.
#[allow(dead_code)] // not every test file has guests
pub fn posted_costs() -> models::iommu::posted::PostedParams {
    use sim::SimDuration;
    models::iommu::posted::PostedParams {
        notify_running: SimDuration::from_ns(50),
        wakeup_irq_entry: SimDuration::from_ns(300),
        wakeup_list_entry: SimDuration::from_ns(20),
        kick: SimDuration::from_ns(200),
        wake_to_vm_entry: SimDuration::from_ns(3_000),
    }
}

/// KVM with APICv, the scheduler's 3 ms slice with wake-up preemption, and free exits: the
/// guest tests' costs stay those of posting.
#[allow(dead_code)] // not every test file has guests
pub fn kvm_free_exits() -> models::platform::KvmParams {
    let zero = sim::SimDuration::ZERO;
    models::platform::KvmParams {
        apicv: true,
        pv_eoi: false,
        slice: sim::SimDuration::from_us(3_000),
        wakeup_preemption: true,
        exit_costs: models::platform::ExitCosts { external_interrupt: zero, hlt: zero, eoi: zero, preemption: zero },
        apic_mode: models::iommu::posted::ApicMode::X2Apic,
        ipiv: false,
    }
}

/// A 1-vCPU guest `vm0` on pCPUs 1 and 2 that the host migrates every 10 ms at 5 us of host
/// work on each pCPU, with `params`' first device assigned to it (the migration tests'
/// guest; `remapped_forward` and `kvm` as the architecture's test wants them).
#[allow(dead_code)] // the migration tests' guest
pub fn migrating_vm0(mut params: PlatformParams, remapped_forward: SimDuration, kvm: KvmParams) -> PlatformParams {
    params.guests = vec![GuestParams {
        name: "vm0".into(),
        vcpu_count: 1,
        pcpus: vec![CpuId(1), CpuId(2)],
        host_bursts: None,
        posted: posted_costs(),
        remapped_forward,
        kvm,
        migration: Some(MigrationParams { every: SimDuration::from_ms(10), cost: SimDuration::from_us(5) }),
        ipi: None,
    }];
    params.devices[0].assigned_to = Some(0);
    params
}

/// The migration tests' slow handler across a move: vm0 migrated every 10 ms at 2 ms of
/// host work on each pCPU, its one queue raising at a constant 100/s with a 9 ms handler
/// and no EOI cost, so the first interrupt's handler runs across the first migration.
#[allow(dead_code)] // the migration tests'
pub fn handler_across_a_migration(params: &mut PlatformParams) {
    params.guests[0].migration =
        Some(MigrationParams { every: SimDuration::from_ms(10), cost: SimDuration::from_ms(2) });
    let d = &mut params.devices[0];
    d.arrival = ArrivalParams::Constant { rate_per_s: 100.0 };
    d.service = DurationDist::constant(SimDuration::from_ms(9));
    d.eoi_cost = SimDuration::ZERO;
}

/// The first raise of queue 0 still in the event queue (a constant-rate source's phase).
#[allow(dead_code)] // the migration tests'
pub fn first_raise(q: &EventQueue<Event>) -> u64 {
    q.iter()
        .filter_map(|(t, e)| {
            matches!(e, Event::Raise { queue } if *queue == models::ids::QueueId(0)).then_some(t.as_ps())
        })
        .min()
        .unwrap()
}
