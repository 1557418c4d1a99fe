//! A pCPU is one server: host work and the vCPUs pinned to it never overlap, vCPUs sharing
//! it take turns by the host scheduler's slice, and the VM exits of each reason are counted
//! and timed, with and without APICv and PV EOI.

mod common;
use common::{counter, histogram, one_device, run_to};

use models::ids::{CpuId, QueueId};
use models::platform::*;
use models::workload::ArrivalParams;
use sim::{DurationDist, EventQueue, SimDuration, SimTime};

const NS: u64 = 1_000;

/// Exit costs: EXTERNAL_INTERRUPT 700 ns, HLT 400 ns, the EOI exit 300 ns, preemption 500 ns.
fn exit_costs() -> ExitCosts {
    ExitCosts {
        external_interrupt: SimDuration::from_ns(700),
        hlt: SimDuration::from_ns(400),
        eoi: SimDuration::from_ns(300),
        preemption: SimDuration::from_ns(500),
    }
}

/// One guest of `vcpus` vCPUs, all on pCPU 1, with the device (1 us handler, 50 ns EOI)
/// assigned to it; VFIO's forward costs 1,500 ns.
fn guest_on_pcpu_1(queues: u32, vcpus: u32, kvm: KvmParams) -> PlatformParams {
    let mut params = one_device(queues, 2, true);
    params.guests = vec![GuestParams {
        name: "vm0".into(),
        vcpu_count: vcpus,
        pcpus: vec![CpuId(1)],
        host_bursts: None,
        posted: common::posted_costs(),
        remapped_forward: SimDuration::from_ns(1_500),
        kvm,
        migration: None,
        ipi: None,
    }];
    params.devices[0].assigned_to = Some(0);
    params
}

fn kvm(apicv: bool, pv_eoi: bool) -> KvmParams {
    KvmParams {
        apicv,
        pv_eoi,
        slice: SimDuration::from_us(3_000),
        wakeup_preemption: true,
        exit_costs: exit_costs(),
        apic_mode: models::iommu::posted::ApicMode::X2Apic,
        ipiv: false,
    }
}

/// Every `kvm.exit.<reason>` metric is named by a VMX basic exit reason, as `perf kvm stat`
/// decodes them (arch/x86/include/uapi/asm/vmx.h `VMX_EXIT_REASONS`).
fn assert_vmx_reasons(p: &Platform) {
    const VMX: [&str; 10] = [
        "external_interrupt",
        "ept_misconfig",
        "hlt",
        "msr_write",
        "apic_write",
        "apic_access",
        "eoi_induced",
        "ept_violation",
        "vmcall",
        "io_instruction",
    ];
    for h in p.metrics().snapshot().histograms {
        if let Some(reason) = h.info.name.strip_prefix("kvm.exit.") {
            assert!(VMX.contains(&reason), "kvm.exit.{reason} is no VMX exit reason");
        }
    }
}

/// The first raise of `queue` waiting in the queue (a constant-rate phase, uniform in [0, gap)).
fn first_raise(q: &EventQueue<Event>, queue: QueueId) -> u64 {
    q.iter()
        .filter_map(|(t, e)| matches!(e, Event::Raise { queue: r } if *r == queue).then_some(t.as_ps()))
        .min()
        .unwrap()
}

/// The pCPU busy time of pCPU 1, asserting the invariant (no overlap, at most `end`).
fn busy_of_pcpu_1(p: &Platform, end: u64) -> u64 {
    let busy = p.pcpu_busy(SimTime::from_ps(end));
    assert_eq!(busy.len(), 1, "only pCPU 1 runs vCPUs");
    assert_eq!((busy[0].cpu, busy[0].overlaps), (CpuId(1), 0));
    assert!(busy[0].busy_ps <= end, "{busy:?} in {end} ps");
    busy[0].busy_ps
}

/// Runs one queue at a constant 1k/s into a single vCPU for 20 interrupts, nothing
/// overlapping (each is handled within 7 us of its raise, 1 ms apart): the exits and the
/// pCPU's busy time per interrupt.
fn twenty_interrupts(kvm: KvmParams) -> (Platform, u64) {
    let params = guest_on_pcpu_1(1, 1, kvm);
    let (mut p, mut q) = Platform::new(&params, 3);
    // Raises at φ, φ + 1 ms, …: twenty of them before φ + 19.5 ms, the last one handled.
    let end = first_raise(&q, QueueId(0)) + 19_500_000 * NS;
    run_to(&mut p, &mut q, end);
    assert_eq!(counter(&p, "interrupt.raised_count"), 20);
    assert_eq!(counter(&p, "interrupt.delivered_count"), 20);
    (p, end)
}

#[test]
fn with_apicv_an_interrupt_to_a_halted_vcpu_costs_one_hlt_exit_and_no_eoi_exit() {
    let (p, end) = twenty_interrupts(kvm(true, false));
    // Each interrupt is posted to the halted vCPU: the wake-up IRQ on pCPU 1 (300 ns entry,
    // one list entry 20 ns, one kick 200 ns = 520 ns of host work, nothing running), the
    // guest handler (1,000 + 50 ns; APICv: the edge EOI exits nothing), then HLT (400 ns).
    assert_eq!(busy_of_pcpu_1(&p, end), 20 * (520 + 1_050 + 400) * NS);
    // Nineteen HLT exits were re-entered (the twentieth is still halted), each timed from
    // the halt to the next entry; no other exit.
    assert_eq!(histogram(&p, "kvm.exit.hlt").count, 19);
    assert_eq!(histogram(&p, "kvm.exit.msr_write").count, 0);
    assert_eq!(histogram(&p, "kvm.exit.external_interrupt").count, 0);
    assert_vmx_reasons(&p);
    // Halt to the next entry: the 1 ms between raises less the 1,050 ns handler (the halt
    // comes right after it; the entry is the same time after each raise).
    let hlt = histogram(&p, "kvm.exit.hlt");
    assert_eq!((hlt.min, hlt.max), ((1_000_000 - 1_050) * NS, (1_000_000 - 1_050) * NS));
}

#[test]
fn without_apicv_every_interrupt_is_forwarded_and_its_eoi_exits_unless_pv_eoi_skips_it() {
    // No APICv: nothing is posted. The IRTE stays remapped to VFIO's host vector on pCPU 1,
    // whose handler (1,500 ns) injects into the halted vCPU; the guest handler is 1,050 ns
    // plus the EOI's MSR_WRITE exit (300 ns) without PV EOI; then HLT (400 ns).
    let (p, end) = twenty_interrupts(kvm(false, false));
    assert_eq!(counter(&p, "kvm.remapped_fallback_count"), 20);
    assert_eq!(counter(&p, "kvm.posted_wakeup_count"), 0);
    assert_eq!(busy_of_pcpu_1(&p, end), 20 * (1_500 + 1_050 + 300 + 400) * NS);
    let eoi = histogram(&p, "kvm.exit.msr_write");
    assert_eq!((eoi.count, eoi.min, eoi.max), (20, 300 * NS, 300 * NS));
    assert_eq!(histogram(&p, "kvm.exit.hlt").count, 19);
    assert_eq!(histogram(&p, "kvm.exit.external_interrupt").count, 0);
    // PV EOI: nothing else is pending when each handler starts, so KVM arms PV EOI and the
    // guest's EOI does not exit.
    let (p, end) = twenty_interrupts(kvm(false, true));
    assert_eq!(busy_of_pcpu_1(&p, end), 20 * (1_500 + 1_050 + 400) * NS);
    assert_eq!(histogram(&p, "kvm.exit.msr_write").count, 0);
}

#[test]
fn two_vcpus_sharing_a_pcpu_never_run_at_once() {
    // Two queues at 800k/s each, one per vCPU, both vCPUs on pCPU 1, 1,050 ns handlers:
    // 1.68 times what one pCPU can do. The old model ran both vCPUs at once: it delivered
    // about 2 x 800 per ms and its pCPU was busy 1.68 ms per ms. Now the pCPU serves at
    // most one handler per 1,050 ns.
    let mut params = guest_on_pcpu_1(2, 2, kvm(true, false));
    params.guests[0].kvm.exit_costs = ExitCosts {
        external_interrupt: SimDuration::ZERO,
        hlt: SimDuration::ZERO,
        eoi: SimDuration::ZERO,
        preemption: SimDuration::ZERO,
    };
    params.devices[0].arrival = ArrivalParams::Constant { rate_per_s: 800_000.0 };
    let (mut p, mut q) = Platform::new(&params, 3);
    let end = 10_000_000 * NS; // 10 ms
    run_to(&mut p, &mut q, end);
    busy_of_pcpu_1(&p, end);
    assert!(counter(&p, "interrupt.delivered_count") <= end / (1_050 * NS));
    assert!(p.conservation(&q).holds());
}

#[test]
fn a_vcpu_woken_behind_a_running_one_waits_for_the_slice() {
    // Two vCPUs on pCPU 1, 5 ms handlers, a 3 ms slice, no wake-up preemption, free exits.
    // Queue 0 (vCPU 0) is raised at 0, queue 1 (vCPU 1) at 1 ms; the device's own arrivals
    // (1 per 1,000 s) come after the run.
    let mut params = guest_on_pcpu_1(2, 2, kvm(true, false));
    params.guests[0].kvm.wakeup_preemption = false;
    params.guests[0].kvm.exit_costs = ExitCosts {
        external_interrupt: SimDuration::ZERO,
        hlt: SimDuration::ZERO,
        eoi: SimDuration::ZERO,
        preemption: SimDuration::ZERO,
    };
    params.devices[0].arrival = ArrivalParams::Constant { rate_per_s: 0.001 };
    params.devices[0].service = DurationDist::constant(SimDuration::from_us(5_000));
    let (mut p, mut q) = Platform::new(&params, 3);
    let end = 20_000_000 * NS;
    assert!(first_raise(&q, QueueId(0)) > end && first_raise(&q, QueueId(1)) > end);
    q.schedule_at(SimTime::ZERO, Event::Raise { queue: QueueId(0) });
    q.schedule_at(SimTime::from_ps(1_000_000 * NS), Event::Raise { queue: QueueId(1) });
    run_to(&mut p, &mut q, end);
    // vCPU 0: MSI write 500 ns, IRTE lookup 100 ns, the wake-up IRQ (300 ns, two list
    // entries (both vCPUs halted) 40 ns, one kick 200 ns) and 3 us to the entry:
    // E0 = 600 + 540 + 3,000 = 4,140 ns. Its handler needs 5,000,050 ns of pCPU.
    let e0 = 4_140 * NS;
    // vCPU 1's interrupt at 1 ms + 600 ns: the wake-up IRQ (300 + 20 + 200 = 520 ns; vCPU 0
    // runs, so only vCPU 1 is on the list) preempts vCPU 0 for 520 ns; vCPU 1 is runnable
    // 3 us later and waits for vCPU 0's slice to end at E0 + 3 ms. vCPU 0 has run
    // 3 ms - 520 ns of its handler by then.
    // vCPU 1 runs its slice [E0 + 3 ms, E0 + 6 ms); vCPU 0 finishes its remaining
    // 5,000,050 - 2,999,480 = 2,000,570 ns by E0 + 8,000,570 ns and halts; vCPU 1 finishes
    // its remaining 5,000,050 - 3,000,000 = 2,000,050 ns at E0 + 10,000,620 ns.
    let done1 = e0 + 10_000_620 * NS;
    let e2e = histogram(&p, "latency.end_to_end_ps");
    assert_eq!(e2e.count, 2);
    assert_eq!(e2e.min, e0 + 8_000_570 * NS, "vCPU 0's interrupt, raised at 0");
    assert_eq!(e2e.max, done1 - 1_000_000 * NS, "vCPU 1's interrupt, raised at 1 ms");
    // Exits: vCPU 0 once for the wake-up IRQ (520 ns) and at its slice's end (re-entered
    // 3 ms later); vCPU 1 at its slice's end (re-entered when vCPU 0 halts, 2,000,570 ns
    // later). A slice's end is the host's tick, an interrupt: all three are
    // EXTERNAL_INTERRUPT exits, as perf kvm stat counts them (VMX has no preemption exit
    // reason; the host scheduler switches after the exit). Neither HLT is re-entered.
    let ext = histogram(&p, "kvm.exit.external_interrupt");
    assert_eq!((ext.count, ext.min, ext.max), (3, 520 * NS, 3_000_000 * NS));
    assert_eq!(counter(&p, "kvm.preemption_count"), 3);
    assert_eq!(histogram(&p, "kvm.exit.hlt").count, 0);
    assert_vmx_reasons(&p);
    busy_of_pcpu_1(&p, end);
}

#[test]
fn a_vcpu_woken_while_its_pcpu_pays_the_hlt_exit_enters_after_it() {
    // One vCPU on pCPU 1, APICv, exits as in `exit_costs` (HLT 400 ns), and the scheduler
    // wake-up free (wake_to_vm_entry 0), so a woken vCPU is due on its pCPU the moment the
    // wake-up IRQ's handler would end if nothing else ran there. Queue 0 raised at 0 and at
    // 1,600 ns; the device's own arrivals (1 per 1,000 s) come after the run.
    let mut params = guest_on_pcpu_1(1, 1, kvm(true, false));
    params.guests[0].posted.wake_to_vm_entry = SimDuration::ZERO;
    params.devices[0].arrival = ArrivalParams::Constant { rate_per_s: 0.001 };
    let (mut p, mut q) = Platform::new(&params, 3);
    let end = 10_000 * NS;
    assert!(first_raise(&q, QueueId(0)) > end);
    q.schedule_at(SimTime::ZERO, Event::Raise { queue: QueueId(0) });
    q.schedule_at(SimTime::from_ps(1_600 * NS), Event::Raise { queue: QueueId(0) });
    run_to(&mut p, &mut q, end);
    // First: posted at 600 ns (MSI write 500, IRTE lookup 100); the wake-up IRQ (300 + one
    // list entry 20 + one kick 200 = 520 ns) runs [600, 1,120); the vCPU enters at 1,120,
    // its handler (1,050 ns) ends at 2,170, end to end 2,170 ns; then HLT, whose 400 ns the
    // pCPU pays over [2,170, 2,570).
    // Second: posted at 2,200, during the HLT exit: its wake-up IRQ (520 ns) follows the
    // host work already there, [2,570, 3,090). The vCPU is due at 2,200 + 520 = 2,720 but the
    // pCPU is not free until 3,090: it enters then, and its handler ends at 4,140, end to
    // end 4,140 - 1,600 = 2,540 ns (entering at 2,720 ran it during host work: 2,170 ns).
    let e2e = histogram(&p, "latency.end_to_end_ps");
    assert_eq!((e2e.count, e2e.min, e2e.max), (2, 2_170 * NS, 2_540 * NS));
    // The HLT re-entered: from 2,170 to 3,090.
    let hlt = histogram(&p, "kvm.exit.hlt");
    assert_eq!((hlt.count, hlt.min), (1, 920 * NS));
    // Busy: two wake-up IRQs, two handlers, two HLT exits, none overlapping.
    assert_eq!(busy_of_pcpu_1(&p, end), 2 * (520 + 1_050 + 400) * NS);
}

#[test]
fn pv_eoi_is_decided_at_each_entry_so_an_interrupt_behind_a_paused_handler_makes_its_eoi_exit() {
    // No APICv, PV EOI on, one vCPU on pCPU 1; queue 0 raised at 0 and at 5,000 ns (the
    // device's own arrivals, 1 per 1,000 s, come after the run).
    let mut params = guest_on_pcpu_1(1, 1, kvm(false, true));
    params.devices[0].arrival = ArrivalParams::Constant { rate_per_s: 0.001 };
    let (mut p, mut q) = Platform::new(&params, 3);
    let end = 20_000 * NS;
    assert!(first_raise(&q, QueueId(0)) > end);
    q.schedule_at(SimTime::ZERO, Event::Raise { queue: QueueId(0) });
    q.schedule_at(SimTime::from_ps(5_000 * NS), Event::Raise { queue: QueueId(0) });
    run_to(&mut p, &mut q, end);
    // A: VFIO's host vector on pCPU 1 at 600 ns (MSI write 500, IRTE lookup 100); the
    // forward (1,500 ns) injects at 2,100 into the halted vCPU: kick 200 ns, 3 us to the
    // entry at 5,300. Nothing else pending: KVM arms PV EOI; the handler (1,050 ns) would
    // end at 6,350 with no exit.
    // B at 5,600: the forward takes pCPU 1 from the running vCPU (EXTERNAL_INTERRUPT,
    // 700 ns) until 5,600 + 1,500 + 700 = 7,800; B is injected at 7,100 (accumulated). At
    // the entry at 7,800 B is in the IRR behind A in service: KVM does not arm PV EOI
    // (`apic_sync_pv_eoi_to_guest`), so A's EOI exits (MSR_WRITE, 300 ns): A's remaining
    // 6,350 - 5,600 = 750 ns plus 300 end at 8,850. B alone then: PV EOI, no exit, its
    // handler ends at 9,900, end to end 4,900 ns. (Deciding PV EOI only when a handler
    // starts: A ended at 8,550, B at 9,600, no MSR_WRITE.)
    let e2e = histogram(&p, "latency.end_to_end_ps");
    assert_eq!((e2e.count, e2e.min, e2e.max), (2, 4_900 * NS, 8_850 * NS));
    let eoi = histogram(&p, "kvm.exit.msr_write");
    assert_eq!((eoi.count, eoi.min), (1, 300 * NS));
    assert_eq!(histogram(&p, "kvm.exit.external_interrupt").count, 1);
    // Busy: two forwards, one EXTERNAL_INTERRUPT exit, two handlers, one EOI exit, and the
    // HLT after B (400 ns).
    assert_eq!(busy_of_pcpu_1(&p, end), (2 * 1_500 + 700 + 2 * 1_050 + 300 + 400) * NS);
}
