//! The exits of a guest's local APIC without APICv: the EOI is an MSR_WRITE exit in
//! x2APIC mode and an APIC_ACCESS exit in xAPIC mode, each skipped alike by PV EOI.

mod common;
use common::{counter, one_device, run_to};

use models::ids::{CpuId, QueueId};
use models::iommu::posted::ApicMode;
use models::platform::*;
use sim::{EventQueue, SimDuration};

const NS: u64 = 1_000;

/// KVM without APICv on one guest of one vCPU on pCPU 1, with the device (1 us handler,
/// 50 ns EOI) assigned to it; exits: EXTERNAL_INTERRUPT 700 ns, HLT 400 ns, the EOI's
/// 300 ns, preemption 500 ns; VFIO's forward costs 1,500 ns.
fn guest(apic_mode: ApicMode, pv_eoi: bool) -> PlatformParams {
    let mut params = one_device(1, 2, true);
    params.guests = vec![GuestParams {
        name: "vm0".into(),
        vcpu_count: 1,
        pcpus: vec![CpuId(1)],
        host_bursts: None,
        posted: common::posted_costs(),
        remapped_forward: SimDuration::from_ns(1_500),
        migration: None,
        ipi: None,
        kvm: KvmParams {
            apicv: false,
            pv_eoi,
            slice: SimDuration::from_us(3_000),
            wakeup_preemption: true,
            exit_costs: ExitCosts {
                external_interrupt: SimDuration::from_ns(700),
                hlt: SimDuration::from_ns(400),
                eoi: SimDuration::from_ns(300),
                preemption: SimDuration::from_ns(500),
            },
            apic_mode,
            ipiv: false,
        },
    }];
    params.devices[0].assigned_to = Some(0);
    params
}

fn first_raise(q: &EventQueue<Event>, queue: QueueId) -> u64 {
    q.iter()
        .filter_map(|(t, e)| matches!(e, Event::Raise { queue: r } if *r == queue).then_some(t.as_ps()))
        .min()
        .unwrap()
}

/// Twenty interrupts 1 ms apart (the constant 1k/s queue), each handled long before the next.
fn twenty(params: &PlatformParams) -> Platform {
    let (mut p, mut q) = Platform::new(params, 3);
    let end = first_raise(&q, QueueId(0)) + 19_500_000 * NS;
    run_to(&mut p, &mut q, end);
    assert_eq!(counter(&p, "interrupt.delivered_count"), 20);
    p
}

fn histogram(p: &Platform, name: &str) -> Option<sim::HistogramSummary> {
    p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == name)
}

#[test]
fn without_apicv_the_eoi_exits_as_msr_write_in_x2apic_and_as_apic_access_in_xapic() {
    // x2APIC: one MSR_WRITE of 300 ns per interrupt, and no APIC_ACCESS histogram at all
    // (registered only for xAPIC guests, so other reports are unchanged).
    let p = twenty(&guest(ApicMode::X2Apic, false));
    let eoi = histogram(&p, "kvm.exit.msr_write").unwrap();
    assert_eq!((eoi.count, eoi.min, eoi.max), (20, 300 * NS, 300 * NS));
    assert!(histogram(&p, "kvm.exit.apic_access").is_none());
    // xAPIC: the same 20 EOIs, each an APIC_ACCESS exit of the same given cost; none is an
    // MSR write.
    let p = twenty(&guest(ApicMode::XApic, false));
    let eoi = histogram(&p, "kvm.exit.apic_access").unwrap();
    assert_eq!((eoi.count, eoi.min, eoi.max), (20, 300 * NS, 300 * NS));
    assert_eq!(histogram(&p, "kvm.exit.msr_write").unwrap().count, 0);
    // PV EOI skips the write (nothing else pending at each handler's start) in either mode.
    let p = twenty(&guest(ApicMode::XApic, true));
    assert_eq!(histogram(&p, "kvm.exit.apic_access").unwrap().count, 0);
}
