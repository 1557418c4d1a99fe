//! vCPU migration at a rate: the host scheduler moves a guest's vCPUs between the pCPUs of
//! its set, each move costing host work on both pCPUs; posted interrupts follow the vCPU
//! by KVM's rules (a halted vCPU's wake-up IRQ is still taken on the pCPU it halted on, the
//! load on the new pCPU rewrites NDST), and without posting VFIO's forward stays on the
//! host vector's CPU while KVM injects wherever the vCPU runs.

mod common;
use common::{counter, first_raise, handler_across_a_migration, migrating_vm0, one_device, run_to};

use models::ids::CpuId;
use models::platform::*;
use sim::{SimDuration, SimTime};

const NS: u64 = 1_000;
/// The seed of the in-flight test: its first raise falls in the (1, 2) ms it needs (asserted).
const SEED: u64 = 9;
const US: u64 = 1_000_000;

/// One vCPU that may run on pCPUs 1 and 2 (it starts on 1), migrated every 10 ms at 5 us
/// of host work on each pCPU, with the device's one queue (1k/s, 1 us handler, 50 ns EOI)
/// assigned to it.
fn migrating_guest(kvm: KvmParams) -> PlatformParams {
    migrating_vm0(one_device(1, 3, true), SimDuration::from_ns(1_500), kvm)
}

/// Runs to 99.99 ms: raises at φ, φ + 1 ms, …, φ + 99 ms (φ in [10, 980] us, so that no
/// interrupt's path, about 5 us, meets a migration at 10 ms, 20 ms, …, 90 ms), each
/// handled. Returns the busy time of pCPUs 1 and 2, checking the invariant.
fn hundred_interrupts(kvm: KvmParams, seed: u64) -> (Platform, [u64; 2]) {
    let params = migrating_guest(kvm);
    let (mut p, mut q) = Platform::new(&params, seed);
    let phase = first_raise(&q);
    assert!((10 * US..=980 * US).contains(&phase), "seed {seed}: phase {phase} ps");
    let end = 99_990 * US;
    run_to(&mut p, &mut q, end);
    assert_eq!(counter(&p, "interrupt.raised_count"), 100);
    assert_eq!(counter(&p, "interrupt.delivered_count"), 100);
    assert_eq!(counter(&p, "kvm.vcpu_migration_count"), 9, "at 10, 20, …, 90 ms");
    assert!(p.conservation(&q).holds());
    let busy = p.pcpu_busy(SimTime::from_ps(end));
    assert_eq!(busy.iter().map(|b| (b.cpu, b.overlaps)).collect::<Vec<_>>(), [(CpuId(1), 0), (CpuId(2), 0)]);
    (p, [busy[0].busy_ps, busy[1].busy_ps])
}

#[test]
fn posted_interrupts_follow_the_vcpu_and_the_first_wakeup_after_a_move_is_taken_where_it_halted() {
    let (p, [one, two]) = hundred_interrupts(common::kvm_free_exits(), 1);
    // An interrupt to the halted vCPU: the wake-up IRQ on the pCPU its descriptor names
    // (300 ns entry + one list entry 20 ns + one kick 200 ns = 520 ns), then the guest
    // handler on the pCPU it runs on (1,000 + 50 ns); exits are free.
    let (wakeup, handler) = (520 * NS, 1_050 * NS);
    let migrations = 9 * 5 * US;
    // 0-10 ms on pCPU 1: ten interrupts there. Then the vCPU alternates (2, 1, 2, …): in each
    // of the nine later periods the first interrupt's wake-up IRQ is taken on the pCPU the
    // vCPU halted on (NDST and the wake-up list are not moved while it is blocked), its
    // handler and the nine others' whole paths on the new pCPU, whose load rewrote NDST.
    let (to_two, to_one) = (5, 4); // periods 1, 3, 5, 7, 9 on pCPU 2; 2, 4, 6, 8 on pCPU 1
    let period_on = |periods: u64| periods * (handler + 9 * (wakeup + handler));
    assert_eq!(one, migrations + 10 * (wakeup + handler) + period_on(to_one) + to_two * wakeup);
    assert_eq!(two, migrations + period_on(to_two) + to_one * wakeup);
    // Every interrupt woke the vCPU through one wake-up IRQ walking a list of one entry.
    assert_eq!(counter(&p, "kvm.posted_wakeup_count"), 100);
    assert_eq!(counter(&p, "kvm.wakeup_list_entries_walked_count"), 100);
}

#[test]
fn without_posting_the_forward_stays_on_the_host_vector_cpu_and_the_injection_follows_the_vcpu() {
    let mut kvm = common::kvm_free_exits();
    kvm.apicv = false;
    let (p, [one, two]) = hundred_interrupts(kvm, 1);
    // VFIO's host vector was set up on pCPU 1 (the vCPU's at boot) and stays there: every
    // forward (1,500 ns) runs on pCPU 1; KVM injects into the vCPU wherever it is (a
    // halted one woken by kvm_vcpu_wake_up: no host work), whose handler (1,050 ns; the EOI
    // exit is free) runs on its pCPU: 50 interrupts in each pCPU's periods.
    let (forward, handler) = (1_500 * NS, 1_050 * NS);
    let migrations = 9 * 5 * US;
    assert_eq!(one, migrations + 100 * forward + 50 * handler);
    assert_eq!(two, migrations + 50 * handler);
    assert_eq!(counter(&p, "kvm.remapped_fallback_count"), 100);
}

#[test]
fn an_interrupt_posted_while_a_running_vcpu_moves_waits_in_the_pir_and_is_injected_at_its_load() {
    // One queue at 100/s with a 9 ms handler; the migration costs 2 ms on each pCPU. The
    // first raise, at φ in (1, 2) ms, wakes the vCPU on pCPU 1, whose handler runs across
    // 10 ms: the migration then preempts it there (SN = 1) and it enters again on pCPU 2 at
    // 12 ms, when that pCPU's 2 ms are done. The second raise, at φ + 10 ms, is posted in
    // between: no notification, its PIR bit waits (accumulated), and the load on pCPU 2
    // (vmx_vcpu_pi_load: NDST = 2, ON set for the non-empty PIR) syncs it at that entry.
    let mut params = migrating_guest(common::kvm_free_exits());
    handler_across_a_migration(&mut params);
    let (mut p, mut q) = Platform::new(&params, SEED);
    let phase = first_raise(&q);
    assert!((1_010 * US..=1_990 * US).contains(&phase), "seed {SEED}: phase {phase} ps");
    let end = 19_900 * US;
    run_to(&mut p, &mut q, end);
    assert_eq!(counter(&p, "kvm.vcpu_migration_count"), 1);
    assert_eq!(counter(&p, "interrupt.raised_count"), 2);
    assert_eq!(counter(&p, "kvm.posted_wakeup_count"), 1, "the first woke it from its halt");
    assert_eq!(counter(&p, "kvm.posted_accumulated_count"), 1, "the second found SN = 1");
    assert_eq!(counter(&p, "kvm.preemption_count"), 1, "the migration stopped it running");
    // The first handler's rest ran on pCPU 2 from 12 ms: it is delivered; the second's
    // 9 ms handler is still running at the end.
    assert_eq!(counter(&p, "interrupt.delivered_count"), 1);
    let exits = p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == "kvm.exit.external_interrupt");
    let exits = exits.unwrap();
    assert_eq!((exits.count, exits.max), (1, 2_000 * US), "out at 10 ms on pCPU 1, in at 12 ms on pCPU 2");
    // pCPU 1: the wake-up IRQ (520 ns), the vCPU from its entry (φ + 0.5 us MSI write +
    // 0.1 us translation + 0.52 us wake-up IRQ + 3 us to the entry) to 10 ms, the 2 ms
    // migration; pCPU 2: its 2 ms, then the vCPU from 12 ms to the end.
    let entry = phase + 4_120 * NS;
    let busy = p.pcpu_busy(SimTime::from_ps(end));
    assert_eq!(
        busy.iter().map(|b| (b.busy_ps, b.overlaps)).collect::<Vec<_>>(),
        [(520 * NS + (10_000 * US - entry) + 2_000 * US, 0), (2_000 * US + (end - 12_000 * US), 0)]
    );
    assert!(p.conservation(&q).holds());
}
