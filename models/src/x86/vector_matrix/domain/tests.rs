//! Tests of the domain policy: the `-ENOSPC` threshold of activation, the
//! activation fallback order and broken affinity, the move protocol and the
//! pre-6.10 vector leak, and random operation sequences that keep the
//! invariants.

use super::*;
use crate::x86::vector_matrix::KernelEra;
use crate::x86::vector_matrix::testutil::*;

// -- (b) exact ENOSPC thresholds --

#[test]
fn domain_activation_fills_exactly_the_available_vectors_then_enospc() {
    let cpu_count = 3;
    for (era, legacy_pic) in configs() {
        let mut domain = VectorDomain::new(params(cpu_count, era, legacy_pic), Vec::new());
        let expected_total =
            cpu_count * per_cpu_expected(era, legacy_pic, true) - isa_vectors_expected(legacy_pic).len() as u32;
        let all: Vec<u32> = (0..cpu_count).collect();
        for _ in 0..expected_total {
            let (_, activation) = request(&mut domain, &all, None);
            assert!(matches!(activation, Activation::Assigned { affinity_broken: false, .. }));
        }
        assert!(domain.take_warnings().is_empty());
        let (irq, activation) = request(&mut domain, &all, None);
        assert_eq!(activation, Activation::NoSpace, "{era:?} pic={legacy_pic}");
        assert_eq!(domain.irq(irq).expect("irq").state(), IrqState::Reserved);
        assert_eq!(domain.warnings(), &[DomainWarning::ReservationExceedsAvailable]);
        assert_eq!(domain.matrix().reserved(), 1);
        domain.free_irq(irq).expect("free");
        check_domain(&domain);
        assert_eq!(domain.matrix().reserved(), 0);
    }
}

// -- (d) fallback order and broken affinity --

#[test]
fn activation_falls_back_node_and_affinity_then_affinity_then_node_then_online() {
    let nodes = vec![cpus(&[0, 1]), cpus(&[2, 3])];
    let mut domain =
        VectorDomain::new(MatrixParams { legacy_pic: false, ..params(4, KernelEra::From6_10, false) }, nodes);
    let affinity = [0, 2];
    let node = Some(1);
    // 1. node ∩ affinity = {2}
    let (_, first) = request(&mut domain, &affinity, node);
    assert!(matches!(first, Activation::Assigned { cpu: CpuId(2), affinity_broken: false, .. }));
    fill_cpu(&mut domain, 2, 0);
    // 2. affinity ∩ online = {0, 2}: CPU 0, although node 1 still has CPU 3 (v5.11 order).
    let (_, second) = request(&mut domain, &affinity, node);
    assert!(matches!(second, Activation::Assigned { cpu: CpuId(0), affinity_broken: false, .. }));
    fill_cpu(&mut domain, 0, 0);
    domain.take_warnings();
    // 3. node = {2, 3}: CPU 3, affinity broken.
    let (third_irq, third) = request(&mut domain, &affinity, node);
    assert!(matches!(third, Activation::Assigned { cpu: CpuId(3), affinity_broken: true, .. }));
    assert_eq!(domain.take_warnings(), vec![DomainWarning::AffinityBroken { irq: third_irq }]);
    assert!(domain.irq(third_irq).expect("irq").affinity_broken());
    fill_cpu(&mut domain, 3, 0);
    // 4. all online: CPU 1, affinity broken.
    let (_, fourth) = request(&mut domain, &affinity, node);
    assert!(matches!(fourth, Activation::Assigned { cpu: CpuId(1), affinity_broken: true, .. }));
    fill_cpu(&mut domain, 1, 0);
    // 5. nothing left.
    let (_, fifth) = request(&mut domain, &affinity, node);
    assert_eq!(fifth, Activation::NoSpace);
    // Without a node only affinity, then online, are tried.
    let (_, no_node) = request(&mut domain, &[2], None);
    assert_eq!(no_node, Activation::NoSpace);
    assert_eq!(domain.alloc_irq(cpus(&[0]), Some(NodeId(2))), Err(MatrixError::Invalid));
}

#[test]
fn activation_without_node_prefers_affinity_then_any_online_cpu() {
    let mut domain = VectorDomain::new(params(3, KernelEra::UpTo6_5, true), Vec::new());
    fill_cpu(&mut domain, 2, 0);
    let (irq, activation) = request(&mut domain, &[2], None);
    // CPU 1 has more available than the boot CPU (ISA vectors).
    assert!(matches!(activation, Activation::Assigned { cpu: CpuId(1), affinity_broken: true, .. }));
    // An affinity change to a CPU with space repairs it.
    fill_cpu(&mut domain, 1, 10);
    domain.set_affinity(irq, cpus(&[0])).expect("set_affinity");
    check_domain(&domain);
    assert!(!domain.irq(irq).expect("irq").affinity_broken());
    assert_eq!(domain.irq(irq).expect("irq").vector().expect("vector").0, CpuId(0));
}

// -- (f) the move protocol --

#[test]
fn move_holds_two_vectors_until_complete_move_and_refuses_a_second_move() {
    let mut domain = VectorDomain::new(params(3, KernelEra::V6_6To6_9, true), Vec::new());
    let (irq, activation) = request(&mut domain, &[1], None);
    let Activation::Assigned { vector: old_vector, .. } = activation else { panic!("no vector") };
    domain.set_affinity(irq, cpus(&[2])).expect("move");
    check_domain(&domain);
    let desc = domain.irq(irq).expect("irq");
    assert_eq!(desc.prev_vector(), Some((CpuId(1), old_vector)));
    assert_eq!(desc.vector().expect("vector").0, CpuId(2));
    assert_eq!((allocated_on(&domain, 1), allocated_on(&domain, 2)), (1, 1));

    assert_eq!(domain.set_affinity(irq, cpus(&[0])), Err(MatrixError::Busy));
    assert_eq!(domain.irq(irq).expect("irq").affinity(), &cpus(&[2]), "unchanged on error");
    domain.set_affinity(irq, cpus(&[0, 2])).expect("current CPU in the mask: no move, no EBUSY");
    check_domain(&domain);

    domain.complete_move(irq).expect("complete");
    check_domain(&domain);
    assert_eq!(domain.irq(irq).expect("irq").prev_vector(), None);
    assert_eq!((allocated_on(&domain, 1), allocated_on(&domain, 2)), (0, 1));
    domain.set_affinity(irq, cpus(&[0])).expect("second move after completion");
    check_domain(&domain);
    assert_eq!(domain.set_affinity(irq, CpuSet::new()), Err(MatrixError::Invalid));
    domain.free_irq(irq).expect("free clears both vectors");
    check_domain(&domain);
    assert_eq!((allocated_on(&domain, 2), allocated_on(&domain, 0)), (0, 15));
}

#[test]
fn old_vector_of_an_offlined_cpu_leaks_before_6_10() {
    for era in KernelEra::ALL {
        let mut domain = VectorDomain::new(params(3, era, false), Vec::new());
        let (irq, activation) = request(&mut domain, &[1], None);
        let Activation::Assigned { vector: old_vector, .. } = activation else { panic!("no vector") };
        domain.set_affinity(irq, cpus(&[2])).expect("move");
        domain.offline(CpuId(1)).expect("offline");
        check_domain(&domain);
        assert_eq!(allocated_on(&domain, 1), 1, "the pending old vector survives the offline");
        domain.complete_move(irq).expect("complete");
        check_domain(&domain);
        domain.online(CpuId(1)).expect("online");
        check_domain(&domain);
        if era.frees_moved_vector_of_offline_cpu() {
            assert!(domain.leaked_vectors().is_empty());
            assert_eq!(allocated_on(&domain, 1), 0);
        } else {
            assert_eq!(domain.leaked_vectors(), &[(CpuId(1), old_vector)]);
            assert_eq!(allocated_on(&domain, 1), 1);
            let per_cpu = per_cpu_expected(era, false, true);
            assert_eq!(avail(domain.matrix(), 1), per_cpu - 1);
        }
    }
}

// -- (g) randomised operation sequences --

fn domain_operations(seed: u64) -> Result<(), String> {
    let mut rng = TestRng::new(seed);
    let p = MatrixParams { cpu_count: 2 + rng.below(4) as u32, ..random_params(&mut rng, 1) };
    let half = p.cpu_count / 2;
    let nodes = vec![CpuSet::from_range(0..half), CpuSet::from_range(half..p.cpu_count)];
    let mut domain = VectorDomain::new(p.clone(), nodes);
    for step in 0..300 {
        let op = rng.below(100);
        let irq = IrqId(rng.below(u64::from(domain.irq_count()) + 1) as u32);
        let cpu = CpuId(rng.below(u64::from(p.cpu_count)) as u32);
        let mask = rng.mask(p.cpu_count - 1);
        let node = match rng.below(3) {
            0 => None,
            n => Some(NodeId(n as u32 - 1)),
        };
        let what = match op {
            0..=17 => format!("alloc_irq({mask:?}, {node:?}) = {:?}", domain.alloc_irq(mask.clone(), node)),
            18..=21 => {
                // A burst of pinned interrupts, to reach exhaustion.
                let pinned = cpus(&[cpu.0]);
                for _ in 0..40 {
                    let irq = domain.alloc_irq(pinned.clone(), None).map_err(|e| format!("burst: {e}"))?;
                    let activation = domain.activate(irq).map_err(|e| format!("burst: {e}"))?;
                    if let Activation::Assigned { cpu: target, affinity_broken, .. } = activation
                        && (affinity_broken != (target != cpu) || !domain.cpu_online_mask().contains(target))
                    {
                        return Err(format!("step {step}: burst on {cpu:?} gave {activation:?}"));
                    }
                }
                format!("burst on {cpu:?}")
            }
            22..=29 => format!("alloc_irq_managed({mask:?}) = {:?}", domain.alloc_irq_managed(mask.clone())),
            30..=47 => format!("activate({irq:?}) = {:?}", domain.activate(irq)),
            48..=53 => format!("deactivate({irq:?}) = {:?}", domain.deactivate(irq)),
            54..=65 => format!("set_affinity({irq:?}, {mask:?}) = {:?}", domain.set_affinity(irq, mask.clone())),
            66..=75 => format!("complete_move({irq:?}) = {:?}", domain.complete_move(irq)),
            76..=83 => format!("free_irq({irq:?}) = {:?}", domain.free_irq(irq)),
            84..=91 => format!("offline({cpu:?}) = {:?}", domain.offline(cpu)),
            _ => format!("online({cpu:?}) = {:?}", domain.online(cpu)),
        };
        domain.check_invariants().map_err(|e| format!("step {step} after {what}: {e}"))?;
    }
    Ok(())
}

#[test]
fn random_domain_operations_keep_the_invariants() {
    run_seeds("random_domain_operations_keep_the_invariants", 100, domain_operations);
}
