//! vCPU migration on a GICv4 host: when the host scheduler moves a vCPU thread, its vPE is
//! made non-resident where it ran (`vgic_v4_put`), and the load on the new pCPU first points
//! the vPE there with a VMOVP + VSYNC on the ITS (`vgic_v4_load` → `its_vpe_set_affinity`),
//! which KVM waits for before the vPE is resident and the vCPU enters. A halted vCPU's
//! doorbell still rings on the pCPU it halted on (the VMOVP comes with its next load); a vLPI
//! that arrives while the vPE is between pCPUs waits in its pending table.

mod common;
use common::{arm_its, check, counter, first_raise, handler_across_a_migration, histogram, migrating_vm0, run_to};

use models::arm::its::GicVersion;
use models::ids::CpuId;
use models::platform::*;
use sim::{SimDuration, SimTime};

const NS: u64 = 1_000;
const US: u64 = 1_000_000;
/// The seed of the in-flight test: its first raise falls in the (1, 2) ms it needs (asserted).
const SEED: u64 = 9;
/// One VMOVP + VSYNC on an idle ITS: 100 ns command + 400 ns VSYNC, seen at the first poll
/// of `GITS_CREADR` after it (1 us, `udelay(1)`).
const VMOVP: u64 = 1_000 * NS;

/// A GICv4.1 host of 3 CPUs; one vCPU that may run on pCPUs 1 and 2 (it starts on 1),
/// migrated every 10 ms at 5 us of host work on each pCPU, with the device's one queue
/// (1k/s, 1 us handler, 50 ns EOI) assigned to it; ITS command 100 ns, SYNC 400 ns.
fn migrating_arm_guest() -> PlatformParams {
    migrating_guest_on(GicVersion::V4_1)
}

/// [`migrating_arm_guest`] on GIC `version`.
fn migrating_guest_on(version: GicVersion) -> PlatformParams {
    let mut params = arm_its(1, 3);
    params.gic.as_mut().unwrap().version = version;
    migrating_vm0(params, SimDuration::ZERO, common::kvm_free_exits())
}

#[test]
fn each_migration_is_one_vmovp_at_the_load_on_the_new_pcpu_and_a_halted_vcpus_doorbell_rings_where_it_halted() {
    // GICv4.1: VMOVP + VSYNC, one round trip. GICv4.0 (no DirectLPI): the doorbell follows
    // through the vPE proxy device, a MOVI + SYNC of its proxy event after the VMOVP (the
    // proxy slot was mapped at the first load): two round trips.
    for (version, round_trips) in [(GicVersion::V4_1, 1), (GicVersion::V4_0, 2)] {
        hundred_interrupts_across_nine_migrations(version, round_trips);
    }
}

fn hundred_interrupts_across_nine_migrations(version: GicVersion, round_trips: u64) {
    let vmovp = round_trips * VMOVP;
    let (mut p, mut q) = Platform::new(&migrating_guest_on(version), 1);
    let phase = first_raise(&q);
    // Raises at φ, φ + 1 ms, …, φ + 99 ms; φ in [10, 980] us keeps every interrupt's path
    // (about 6 us) away from the migrations at 10, 20, …, 90 ms.
    assert!((10 * US..=980 * US).contains(&phase), "phase {phase} ps");
    let end = 99_990 * US;
    run_to(&mut p, &mut q, end);
    check(&p, &q);
    assert_eq!(counter(&p, "interrupt.raised_count"), 100);
    assert_eq!(counter(&p, "interrupt.delivered_count"), 100);
    assert_eq!(counter(&p, "kvm.vcpu_migration_count"), 9, "at 10, 20, …, 90 ms");
    // Each migration's next load is on the other pCPU: one VMOVP each, one round trip (VMOVP
    // + VSYNC), on an idle ITS (no wait) 1 us.
    assert_eq!(counter(&p, "arm.vmovp_count"), 9, "{version:?}");
    assert_eq!(counter(&p, "arm.its_command_round_trip_count"), 9 * round_trips, "{version:?}");
    let its = histogram(&p, "latency.its_command_ps");
    assert_eq!((its.count, its.min, its.max), (9, vmovp, vmovp), "{version:?}");
    assert_eq!(histogram(&p, "latency.its_command_wait_ps").max, 0);
    // Every interrupt finds the vCPU halted: its vLPI rings the doorbell (GICv4.1: the vPE's
    // one doorbell, armed at the WFI; GICv4.0: the vLPI's, enabled at the WFI) and the vCPU
    // is woken.
    assert_eq!(counter(&p, "kvm.vlpi_doorbell_count"), 100);
    // The doorbell's handler (300 ns entry + 200 ns kick) on the pCPU the vPE names; the
    // guest handler (1,000 + 50 ns) where the vCPU runs. 0-10 ms on pCPU 1: ten interrupts
    // there. In each later period the first doorbell still rings on the pCPU the vCPU
    // halted on; its load on the new pCPU waits for the VMOVP (host work there), and the
    // vPE's doorbell follows it for the nine others.
    let (doorbell, handler) = (500 * NS, 1_050 * NS);
    let migrations = 9 * 5 * US;
    let (to_two, to_one) = (5, 4); // periods 1, 3, 5, 7, 9 on pCPU 2; 2, 4, 6, 8 on pCPU 1
    let period_on = |periods: u64| periods * (vmovp + handler + 9 * (doorbell + handler));
    let busy = p.pcpu_busy(SimTime::from_ps(end));
    assert_eq!(
        busy.iter().map(|b| (b.cpu, b.busy_ps, b.overlaps)).collect::<Vec<_>>(),
        [
            (CpuId(1), migrations + 10 * (doorbell + handler) + period_on(to_one) + to_two * doorbell, 0),
            (CpuId(2), migrations + period_on(to_two) + to_one * doorbell, 0),
        ],
        "{version:?}"
    );
    // End to end: 500 ns MSI write, 80 ns translation, the doorbell (500 ns) and 3 us to the
    // entry, the handler; the nine first interrupts after a move wait for the VMOVP too.
    let base = 500 * NS + 80 * NS + doorbell + 3_000 * NS + handler;
    let e2e = histogram(&p, "latency.end_to_end_ps");
    assert_eq!((e2e.count, e2e.min, e2e.max), (100, base, base + vmovp), "{version:?}");
}

#[test]
fn a_vlpi_raised_while_the_vpe_is_between_pcpus_waits_in_its_pending_table_and_is_taken_at_the_load() {
    // One queue at 100/s with a 9 ms handler; the migration costs 2 ms on each pCPU. The
    // first raise, at φ in (1, 2) ms, wakes the vCPU on pCPU 1 by the doorbell; its handler
    // runs across 10 ms, when the migration preempts it (the vPE non-resident, no doorbell:
    // `vgic_v4_put` outside WFI). pCPU 2 does its 2 ms, then KVM loads the vCPU there: the
    // VMOVP (1 us) first, then the vPE resident and the entry at 12 ms + 1 us. The second
    // raise, at φ + 10 ms, reaches the ITS in between: no doorbell, its vLPI pending in the
    // vPE's table, taken when the vPE is resident again.
    let mut params = migrating_arm_guest();
    handler_across_a_migration(&mut params);
    let (mut p, mut q) = Platform::new(&params, SEED);
    let phase = first_raise(&q);
    assert!((1_010 * US..=1_990 * US).contains(&phase), "seed {SEED}: phase {phase} ps");
    let end = 19_900 * US;
    run_to(&mut p, &mut q, end);
    check(&p, &q);
    assert_eq!(counter(&p, "kvm.vcpu_migration_count"), 1);
    assert_eq!(counter(&p, "arm.vmovp_count"), 1);
    assert_eq!(counter(&p, "interrupt.raised_count"), 2);
    assert_eq!(counter(&p, "kvm.vlpi_doorbell_count"), 1, "the first woke it from its WFI");
    assert_eq!(counter(&p, "kvm.vlpi_pending_count"), 1, "the second found the vPE non-resident");
    assert_eq!(counter(&p, "kvm.preemption_count"), 1, "the migration stopped it running");
    // The first handler's rest ran on pCPU 2 from 12 ms + 1 us: delivered; the second's
    // 9 ms handler, started after it, still runs at the end. Neither lost nor doubled.
    assert_eq!(counter(&p, "interrupt.delivered_count"), 1);
    let c = p.conservation(&q);
    assert_eq!((c.raised, c.delivered, c.lost, c.merged, c.at_cpu), (2, 1, 0, 0, 1), "{c:?}");
    let exits = histogram(&p, "kvm.exit.irq");
    assert_eq!((exits.count, exits.max), (1, 2_000 * US + VMOVP), "out at 10 ms on pCPU 1, in at 12.001 ms on 2");
    // pCPU 1: the doorbell (500 ns), the vCPU from its entry (φ + 0.5 us MSI write + 0.08 us
    // translation + 0.5 us doorbell + 3 us to the entry) to 10 ms, the 2 ms migration;
    // pCPU 2: its 2 ms, the VMOVP, then the vCPU to the end.
    let entry = phase + 4_080 * NS;
    let busy = p.pcpu_busy(SimTime::from_ps(end));
    assert_eq!(
        busy.iter().map(|b| (b.busy_ps, b.overlaps)).collect::<Vec<_>>(),
        [(500 * NS + (10_000 * US - entry) + 2_000 * US, 0), (2_000 * US + VMOVP + (end - 12_000 * US - VMOVP), 0)]
    );
}
