//! Guest IPIs (`guests[].ipi`): each vCPU's ICR write is an MSR_WRITE exit without IPIv and
//! none with it; the IPIs are counted on their own (sent = delivered + merged + pending),
//! outside the device interrupts, whose deliveries do not move.

mod common;
use common::{counter, histogram, one_device, run_to};

use models::ids::CpuId;
use models::platform::*;
use sim::{DurationDist, EventQueue, RngStream, SimDuration};

const NS: u64 = 1_000;
const MS: u64 = 1_000_000_000;
/// The run's end: 20 ms.
const END: u64 = 20 * MS;
/// The ICR write's exit: 250 ns.
const ICR_EXIT: u64 = 250 * NS;

/// One guest of 2 vCPUs on pCPUs 1 and 2 (dedicated: no host bursts), the device's two
/// queues (1k/s each, 1 us handler) assigned to it; APICv, free exits but the ICR write's;
/// IPIs at 10k/s per vCPU when `ipi`, with IPIv when `ipiv`.
fn guest(ipi: bool, ipiv: bool) -> PlatformParams {
    let mut params = one_device(2, 3, true);
    params.guests = vec![GuestParams {
        name: "vm0".into(),
        vcpu_count: 2,
        pcpus: vec![CpuId(1), CpuId(2)],
        host_bursts: None,
        posted: common::posted_costs(),
        remapped_forward: SimDuration::ZERO,
        kvm: KvmParams { ipiv, ..common::kvm_free_exits() },
        migration: None,
        ipi: ipi.then_some(IpiParams { rate: 10_000.0, icr_exit: SimDuration::from_ps(ICR_EXIT) }),
    }];
    params.devices[0].assigned_to = Some(0);
    params
}

fn run(params: &PlatformParams) -> Platform {
    let (mut p, mut q): (Platform, EventQueue<Event>) = Platform::new(params, 7);
    run_to(&mut p, &mut q, END);
    for busy in p.pcpu_busy(sim::SimTime::from_ps(END)) {
        assert_eq!(busy.overlaps, 0, "pCPU {:?} ran two things at once", busy.cpu);
        assert!(busy.busy_ps <= END);
    }
    p
}

/// The IPIs vCPU `v` has due by `END`, replayed from its stream (`guest/vm0/vcpu/<v>/ipi`,
/// exponential gaps of mean 100 us, seed 7), and the time of the last one.
fn due(v: u32) -> (u64, u64) {
    let mut rng = RngStream::new(7, &format!("guest/vm0/vcpu/{v}/ipi"));
    let gap = DurationDist::exponential(SimDuration::from_us(100));
    let (mut t, mut n, mut last) = (0, 0, 0);
    loop {
        t += gap.sample(&mut rng).as_ps();
        if t > END {
            return (n, last);
        }
        (n, last) = (n + 1, t);
    }
}

#[test]
fn without_ipiv_every_send_is_an_msr_write_exit_and_with_ipiv_none() {
    let ((n0, last0), (n1, last1)) = (due(0), due(1));
    // Every due IPI is sent by the end: the last of each stream is due more than a halted
    // sender's wake-up (200 ns kick + 3 us) and its exit (250 ns) before the end.
    assert!(last0.max(last1) + 4_000 * NS < END, "the replay's last IPIs are not near the end");
    let sent = n0 + n1;
    // Without IPIv: n sends, n MSR_WRITE exits of exactly the ICR write's cost (dedicated
    // pCPUs, nothing else runs there during one; with APICv no EOI exits).
    let p = run(&guest(true, false));
    assert_eq!(counter(&p, "kvm.ipi_sent_count"), sent);
    assert_eq!(counter(&p, "kvm.ipi_exit_count"), sent);
    let msr = histogram(&p, "kvm.exit.msr_write");
    assert_eq!((msr.count, msr.min, msr.max), (sent, ICR_EXIT, ICR_EXIT));
    // Each IPI reached its target or merged with one pending there (none is left at the end).
    assert_eq!(counter(&p, "kvm.ipi_delivered_count") + counter(&p, "kvm.ipi_merged_count"), sent);
    // With IPIv: the same sends (the same stream), no exit at all.
    let p = run(&guest(true, true));
    assert_eq!(counter(&p, "kvm.ipi_sent_count"), sent);
    assert_eq!(counter(&p, "kvm.ipi_exit_count"), 0);
    assert_eq!(histogram(&p, "kvm.exit.msr_write").count, 0);
    assert_eq!(counter(&p, "kvm.ipi_delivered_count") + counter(&p, "kvm.ipi_merged_count"), sent);
    // A halted target is woken through its descriptor's wake-up vector (NV = 0xf1), as a
    // posted device interrupt is: each IPI wake-up is a wake-up IRQ whose handler walks its
    // pCPU's list, here of one vCPU (one vCPU per pCPU).
    assert_eq!(
        counter(&p, "kvm.wakeup_list_entries_walked_count"),
        counter(&p, "kvm.posted_wakeup_count") + counter(&p, "kvm.ipi_wakeup_count")
    );
}

#[test]
fn ipis_leave_the_device_interrupts_as_they_were() {
    // The device's 2 queues at 1k/s over 20 ms: the same deliveries with IPIs as without
    // (IPIs draw from their own streams and are not device interrupts).
    let base = counter(&run(&guest(false, false)), "interrupt.delivered_count");
    for ipiv in [false, true] {
        let p = run(&guest(true, ipiv));
        assert_eq!(counter(&p, "interrupt.delivered_count"), base);
    }
    // Without IPIs no IPI counter is registered (other reports are unchanged).
    let p = run(&guest(false, false));
    assert!(p.metrics().snapshot().counters.iter().all(|(i, _)| !i.name.starts_with("kvm.ipi")));
}

/// The IPIs of both vCPUs at `rate` per second each over `end` ps, merged in time order.
fn due_all(rate: f64, end: u64) -> Vec<u64> {
    let mut all = Vec::new();
    for v in 0..2 {
        let mut rng = RngStream::new(7, &format!("guest/vm0/vcpu/{v}/ipi"));
        let gap = DurationDist::exponential(SimDuration::from_ps_f64(1e12 / rate));
        let mut t = 0;
        loop {
            t += gap.sample(&mut rng).as_ps();
            if t > end {
                break;
            }
            all.push(t);
        }
    }
    all.sort_unstable();
    all
}

#[test]
fn a_halted_sender_is_woken_as_by_its_timer_and_each_isolated_ipi_costs_fixed_entries_and_exits() {
    // No device traffic to the guest (the device's queues on host CPU 0), IPIs at 20/s per
    // vCPU for 1 s: every IPI is due more than 10 us after the one before (checked on the
    // replay), so each finds both vCPUs halted and ends before the next.
    let end = 1_000 * MS;
    let due = due_all(20.0, end);
    assert!(due.windows(2).all(|w| w[1] - w[0] > 10_000 * NS) && due.last().unwrap() + 10_000 * NS < end);
    let n = due.len() as u64;
    let params = |ipiv: bool| {
        let mut p = guest(true, ipiv);
        p.devices[0].assigned_to = None;
        p.devices[0].affinity = vec![CpuId(0)];
        p.guests[0].ipi = Some(IpiParams { rate: 20.0, icr_exit: SimDuration::from_ps(ICR_EXIT) });
        p
    };
    let run_1s = |params: &PlatformParams| {
        let (mut p, mut q): (Platform, EventQueue<Event>) = Platform::new(params, 7);
        run_to(&mut p, &mut q, end);
        p
    };
    // Without IPIv, per IPI: the sender is woken (kick + 3 us) and enters, its ICR write
    // exits and it re-enters 250 ns later, KVM wakes the halted target from that exit, the
    // target enters and finds the IPI; then both halt. 3 entries, 2 HLT exits, 1 MSR_WRITE.
    let p = run_1s(&params(false));
    let c = |name: &str| counter(&p, name);
    assert_eq!((c("kvm.ipi_sent_count"), c("kvm.ipi_delivered_count"), c("kvm.ipi_merged_count")), (n, n, 0));
    assert_eq!((c("kvm.ipi_exit_count"), c("kvm.ipi_wakeup_count")), (n, n));
    assert_eq!((c("kvm.vm_entry_count"), c("kvm.hlt_exit_count")), (3 * n, 2 * n));
    assert_eq!(histogram(&p, "kvm.exit.msr_write").count, n);
    // The timer-like wake-up of a sender and KVM's wake-up of a target are not posted
    // deliveries: neither the posted-delivery stage nor the wake-up IRQs count them.
    assert_eq!((histogram(&p, "latency.posted_delivery_ps").count, c("kvm.posted_wakeup_count")), (0, 0));
    // With IPIv: no exit, so 2 entries per IPI; the target is woken by the wake-up IRQ on
    // its pCPU, whose handler walks a list of one vCPU.
    let p = run_1s(&params(true));
    let c = |name: &str| counter(&p, name);
    assert_eq!((c("kvm.ipi_sent_count"), c("kvm.ipi_delivered_count"), c("kvm.ipi_exit_count")), (n, n, 0));
    assert_eq!((c("kvm.vm_entry_count"), c("kvm.hlt_exit_count")), (2 * n, 2 * n));
    assert_eq!((c("kvm.ipi_wakeup_count"), c("kvm.wakeup_list_entries_walked_count")), (n, n));
}
