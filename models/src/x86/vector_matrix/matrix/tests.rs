//! Tests of the matrix allocator: per-CPU counts and holes per era, exact
//! `-ENOSPC` thresholds, managed reservation and the best-CPU tie rules, and
//! random operation sequences against a reference model.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use super::*;
use crate::x86::vector_matrix::KernelEra;
use crate::x86::vector_matrix::testutil::*;

// -- (a) per-CPU counts --

#[test]
fn per_cpu_counts_match_kernel_arithmetic_and_calibration() {
    for (era, legacy_pic) in configs() {
        for ia32_emulation in [true, false] {
            let matrix = VectorMatrix::new(MatrixParams { cpu_count: 3, era, legacy_pic, ia32_emulation });
            check(&matrix);
            let per_cpu = per_cpu_expected(era, legacy_pic, ia32_emulation);
            if ia32_emulation {
                let calibration = match era {
                    KernelEra::UpTo6_5 => 201,
                    KernelEra::V6_6To6_9 => 202,
                    KernelEra::From6_10 => 201,
                } + u32::from(!legacy_pic);
                assert_eq!(per_cpu, calibration, "{era:?} pic={legacy_pic}: docs/sources.md#vectors-per-cpu");
            }
            let isa = isa_vectors_expected(legacy_pic).len() as u32;
            assert_eq!(isa, if legacy_pic { 15 } else { 0 });
            for cpu in 1..3 {
                assert_eq!(avail(&matrix, cpu), per_cpu, "{era:?} pic={legacy_pic} cpu {cpu}");
                let others = matrix.available(Some(CpuId(cpu)));
                assert_eq!(matrix.available(None) - others, per_cpu);
            }
            assert_eq!(avail(&matrix, 0), per_cpu - isa, "{era:?} pic={legacy_pic}: boot CPU");
            assert_eq!(matrix.available(None), 3 * per_cpu - isa);
            let boot_vectors: BTreeSet<u32> =
                matrix.cpumap(CpuId(0)).expect("boot cpu").allocated_vectors().iter().map(|v| u32::from(v.0)).collect();
            assert_eq!(boot_vectors, isa_vectors_expected(legacy_pic));
            assert_eq!(matrix.total_allocated(), isa);
            assert_eq!(matrix.alloc_end().0 as u32, first_system_vector_of(era));
            for hole in holes_of(era, legacy_pic, ia32_emulation) {
                assert!(matrix.is_system_vector(Vector(hole as u8)));
            }
        }
    }
}

#[test]
fn first_vector_handed_out_skips_the_era_holes() {
    for (era, legacy_pic) in configs() {
        let mut matrix = VectorMatrix::new(params(2, era, legacy_pic));
        let first_free = (0x20..0x100).find(|v| !holes_of(era, legacy_pic, true).contains(v)).expect("free");
        let (cpu, vector) = matrix.alloc(&cpus(&[1]), false).expect("alloc");
        assert_eq!((cpu, vector), (CpuId(1), Vector(first_free as u8)));
        check(&matrix);
    }
}

// -- (b) exact ENOSPC thresholds --

#[test]
fn matrix_alloc_fills_exactly_the_available_vectors_then_enospc() {
    let cpu_count = 3;
    for (era, legacy_pic) in configs() {
        let mut matrix = VectorMatrix::new(params(cpu_count, era, legacy_pic));
        let expected_total =
            cpu_count * per_cpu_expected(era, legacy_pic, true) - isa_vectors_expected(legacy_pic).len() as u32;
        let all = CpuSet::from_range(0..cpu_count);
        for count in 0..expected_total {
            let result = matrix.alloc(&all, false);
            assert!(result.is_ok(), "{era:?} pic={legacy_pic}: allocation {count} of {expected_total} failed");
            check(&matrix);
        }
        assert_eq!(matrix.alloc(&all, false), Err(MatrixError::NoSpace), "{era:?} pic={legacy_pic}");
        assert_eq!(matrix.available(None), 0);
        assert_eq!(matrix.alloc(&CpuSet::new(), false), Err(MatrixError::Invalid));
        check(&matrix);
    }
}

// -- (c) managed reservation and tie-breaking --

#[test]
fn managed_reservation_reduces_availability_on_every_cpu_of_the_mask() {
    let mut matrix = VectorMatrix::new(MatrixParams { legacy_pic: false, ..params(4, KernelEra::From6_10, false) });
    let before: Vec<u32> = (0..4).map(|cpu| avail(&matrix, cpu)).collect();
    let global_before = matrix.available(None);
    matrix.reserve_managed(&cpus(&[1, 2])).expect("reserve_managed");
    check(&matrix);
    for cpu in 0..4 {
        let dropped = u32::from(cpu == 1 || cpu == 2);
        assert_eq!(avail(&matrix, cpu), before[cpu as usize] - dropped);
        assert_eq!(matrix.cpumap(CpuId(cpu)).expect("cpu").managed(), dropped);
    }
    assert_eq!(matrix.available(None), global_before - 2);
    // A managed vector keeps its reservation when freed; removal gives it back.
    let (cpu, vector) = matrix.alloc_managed(&cpus(&[1])).expect("alloc_managed");
    check(&matrix);
    assert_eq!(avail(&matrix, 1), before[1] - 1);
    assert_eq!(matrix.free(cpu, vector, false), Err(MatrixError::Invalid), "managed flag mismatch");
    matrix.free(cpu, vector, true).expect("free");
    check(&matrix);
    assert_eq!(avail(&matrix, 1), before[1] - 1);
    matrix.remove_managed(&cpus(&[1, 2]));
    check(&matrix);
    assert_eq!(matrix.available(None), global_before);
    // No reservation, no managed vector.
    assert_eq!(matrix.alloc_managed(&cpus(&[3])), Err(MatrixError::NoSpace));
    assert_eq!(matrix.alloc_managed(&CpuSet::new()), Err(MatrixError::Invalid));
}

#[test]
fn managed_reservation_failure_rolls_back_the_cpus_already_done() {
    for era in KernelEra::ALL {
        let mut matrix = VectorMatrix::new(params(2, era, true));
        let boot_available = avail(&matrix, 0);
        let all = cpus(&[0, 1]);
        for _ in 0..boot_available {
            matrix.reserve_managed(&all).expect("reserve_managed");
            check(&matrix);
        }
        let cpu1_before = avail(&matrix, 1);
        assert_eq!(matrix.reserve_managed(&all), Err(MatrixError::NoSpace));
        check(&matrix);
        assert_eq!(avail(&matrix, 1), cpu1_before, "cpu 1 must be rolled back");
        assert_eq!(avail(&matrix, 0), 0);
    }
}

#[test]
fn best_cpu_ties_go_to_the_first_cpu_and_managed_ties_to_the_last() {
    let mut matrix = VectorMatrix::new(MatrixParams { legacy_pic: false, ..params(4, KernelEra::V6_6To6_9, false) });
    let all = CpuSet::from_range(0..4);
    // Regular: all equal → first; then the most available wins.
    assert_eq!(matrix.alloc(&all, false).expect("alloc").0, CpuId(0));
    assert_eq!(matrix.alloc(&all, false).expect("alloc").0, CpuId(1));
    assert_eq!(matrix.alloc(&cpus(&[0, 1, 3]), false).expect("alloc").0, CpuId(3));
    assert_eq!(matrix.alloc(&all, false).expect("alloc").0, CpuId(2));
    check(&matrix);
    // Managed: all with 0 managed allocated → last; then the fewest wins.
    matrix.reserve_managed(&all).expect("reserve");
    matrix.reserve_managed(&all).expect("reserve");
    let (cpu, vector) = matrix.alloc_managed(&all).expect("alloc_managed");
    assert_eq!(cpu, CpuId(3));
    assert!(matrix.cpumap(cpu).expect("cpu").is_managed(vector));
    assert_eq!(matrix.alloc_managed(&all).expect("alloc_managed").0, CpuId(2));
    assert_eq!(matrix.alloc_managed(&cpus(&[0, 1])).expect("alloc_managed").0, CpuId(1));
    assert_eq!(matrix.alloc_managed(&cpus(&[1, 3])).expect("alloc_managed").0, CpuId(3));
    check(&matrix);
    // With a legacy PIC the boot CPU has fewer vectors, so CPU 1 wins.
    let mut pic = VectorMatrix::new(params(4, KernelEra::V6_6To6_9, true));
    assert_eq!(pic.alloc(&all, false).expect("alloc").0, CpuId(1));
}

#[test]
fn managed_reservation_on_an_offline_cpu_drifts_its_available_count() {
    let mut matrix = VectorMatrix::new(params(2, KernelEra::From6_10, true));
    let before = avail(&matrix, 1);
    matrix.offline(CpuId(1)).expect("offline");
    matrix.reserve_managed(&cpus(&[1])).expect("reserve_managed");
    check(&matrix);
    matrix.online(CpuId(1)).expect("online");
    check(&matrix);
    assert_eq!(avail(&matrix, 1), before, "not recomputed on return (docs/sources.md#offline-reservation-drift)");
    assert_eq!(matrix.cpumap(CpuId(1)).expect("cpu").managed(), 1);
    assert_eq!(matrix.online(CpuId(1)), Err(MatrixError::Invalid));
    assert_eq!(matrix.offline(CpuId(7)), Err(MatrixError::Invalid));
}

// -- (g) randomised operation sequences --

/// Reference model: per-CPU sets of vectors, `available` recomputed from them.
struct RefCpu {
    online: bool,
    initialized: bool,
    regular: BTreeSet<u32>,
    managed: BTreeSet<u32>,
    managed_allocated: BTreeSet<u32>,
    drift: i64,
}

struct RefMatrix {
    start: u32,
    end: u32,
    system: BTreeSet<u32>,
    cpus: Vec<RefCpu>,
    reserved: u32,
    total_allocated: u32,
}

impl RefMatrix {
    fn new(p: &MatrixParams) -> RefMatrix {
        let isa = isa_vectors_expected(p.legacy_pic);
        let cpus = (0..p.cpu_count)
            .map(|cpu| RefCpu {
                online: true,
                initialized: true,
                regular: if cpu == 0 { isa.clone() } else { BTreeSet::new() },
                managed: BTreeSet::new(),
                managed_allocated: BTreeSet::new(),
                drift: 0,
            })
            .collect();
        RefMatrix {
            start: 0x20,
            end: first_system_vector_of(p.era),
            system: holes_of(p.era, p.legacy_pic, p.ia32_emulation),
            cpus,
            reserved: 0,
            total_allocated: isa.len() as u32,
        }
    }

    fn available(&self, cpu: usize) -> u32 {
        let c = &self.cpus[cpu];
        if !c.initialized {
            return 0;
        }
        let size = i64::from(self.end - self.start);
        (size - self.system.len() as i64 - c.managed.len() as i64 - c.regular.len() as i64 + c.drift) as u32
    }

    fn global_available(&self) -> u32 {
        (0..self.cpus.len()).filter(|&c| self.cpus[c].online).fold(0u32, |s, c| s.wrapping_add(self.available(c)))
    }

    fn in_mask(&self, mask: &CpuSet) -> Vec<usize> {
        mask.iter().map(|cpu| cpu.0 as usize).filter(|&c| c < self.cpus.len()).collect()
    }

    fn free_slot(&self, cpu: usize) -> Option<u32> {
        let c = &self.cpus[cpu];
        (self.start..self.end).find(|v| !self.system.contains(v) && !c.regular.contains(v) && !c.managed.contains(v))
    }

    fn alloc(&mut self, mask: &CpuSet, reserved: bool) -> Result<(CpuId, Vector), MatrixError> {
        if mask.is_empty() {
            return Err(MatrixError::Invalid);
        }
        let best = self
            .in_mask(mask)
            .into_iter()
            .filter(|&c| self.cpus[c].online && self.available(c) > 0)
            .max_by_key(|&c| (self.available(c), Reverse(c)))
            .ok_or(MatrixError::NoSpace)?;
        let vector = self.free_slot(best).ok_or(MatrixError::NoSpace)?;
        self.cpus[best].regular.insert(vector);
        self.total_allocated += 1;
        if reserved {
            self.reserved -= 1;
        }
        Ok((CpuId(best as u32), Vector(vector as u8)))
    }

    fn alloc_managed(&mut self, mask: &CpuSet) -> Result<(CpuId, Vector), MatrixError> {
        if mask.is_empty() {
            return Err(MatrixError::Invalid);
        }
        let best = self
            .in_mask(mask)
            .into_iter()
            .filter(|&c| self.cpus[c].online)
            .min_by_key(|&c| (self.cpus[c].managed_allocated.len(), Reverse(c)))
            .ok_or(MatrixError::NoSpace)?;
        let c = &mut self.cpus[best];
        let vector = *c.managed.difference(&c.managed_allocated).next().ok_or(MatrixError::NoSpace)?;
        c.managed_allocated.insert(vector);
        self.total_allocated += 1;
        Ok((CpuId(best as u32), Vector(vector as u8)))
    }

    fn reserve_managed(&mut self, mask: &CpuSet) -> Result<(), MatrixError> {
        let list = self.in_mask(mask);
        for (position, &cpu) in list.iter().enumerate() {
            let Some(vector) = self.free_slot(cpu) else {
                for &done in &list[..position] {
                    self.remove_one(done);
                }
                return Err(MatrixError::NoSpace);
            };
            let c = &mut self.cpus[cpu];
            c.managed.insert(vector);
            if !c.online && c.initialized {
                c.drift += 1;
            }
        }
        Ok(())
    }

    fn remove_one(&mut self, cpu: usize) {
        let c = &mut self.cpus[cpu];
        if let Some(&vector) = c.managed.difference(&c.managed_allocated).next() {
            c.managed.remove(&vector);
            if !c.online && c.initialized {
                c.drift -= 1;
            }
        }
    }

    fn free(&mut self, cpu: usize, vector: u32, managed: bool) -> Result<(), MatrixError> {
        let c = &mut self.cpus[cpu];
        let removed = if managed { c.managed_allocated.remove(&vector) } else { c.regular.remove(&vector) };
        if !removed || vector < self.start || vector >= self.end {
            return Err(MatrixError::Invalid);
        }
        if c.online {
            self.total_allocated -= 1;
        }
        Ok(())
    }

    fn set_online(&mut self, cpu: usize, online: bool) -> Result<(), MatrixError> {
        let c = &mut self.cpus[cpu];
        if c.online == online {
            return Err(MatrixError::Invalid);
        }
        c.online = online;
        c.initialized = true;
        Ok(())
    }

    fn compare(&self, matrix: &VectorMatrix) -> Result<(), String> {
        matrix.check_invariants()?;
        for (index, c) in self.cpus.iter().enumerate() {
            let cm = matrix.cpumap(CpuId(index as u32)).expect("cpu");
            let regular_and_managed: BTreeSet<u32> = c.regular.union(&c.managed_allocated).copied().collect();
            let actual: BTreeSet<u32> = cm.allocated_vectors().iter().map(|v| u32::from(v.0)).collect();
            let expected = (
                self.available(index),
                regular_and_managed.len() as u32,
                c.managed.len() as u32,
                c.managed_allocated.len() as u32,
                c.online,
            );
            let got = (cm.available(), cm.allocated(), cm.managed(), cm.managed_allocated(), cm.is_online());
            if expected != got || actual != regular_and_managed {
                return Err(format!(
                    "cpu {index}: reference {expected:?} {regular_and_managed:?}, matrix {got:?} {actual:?}"
                ));
            }
            for &vector in &c.managed {
                if !cm.is_managed(Vector(vector as u8)) {
                    return Err(format!("cpu {index}: managed vector {vector:#x} missing"));
                }
            }
        }
        let expected = (self.global_available(), self.reserved, self.total_allocated);
        let got = (matrix.available(None), matrix.reserved(), matrix.total_allocated());
        if expected != got {
            return Err(format!("globals: reference {expected:?}, matrix {got:?}"));
        }
        Ok(())
    }
}

// Long (91 lines): one match arm per matrix operation, each applied to the matrix and the reference side by side.
fn matrix_against_reference(seed: u64) -> Result<(), String> {
    let mut rng = TestRng::new(seed);
    let p = random_params(&mut rng, 4);
    let mut matrix = VectorMatrix::new(p.clone());
    let mut reference = RefMatrix::new(&p);
    reference.compare(&matrix).map_err(|e| format!("after boot {p:?}: {e}"))?;
    let mut burst_left = 0u32;
    let mut burst_op = 0;
    for step in 0..500 {
        // Now and then repeat an allocation 40 times, to reach exhaustion.
        if burst_left == 0 && rng.below(10) == 0 {
            burst_left = 40;
            burst_op = if rng.coin() { 0 } else { 40 };
        }
        let op = if burst_left > 0 { burst_op } else { rng.below(100) };
        burst_left = burst_left.saturating_sub(1);
        let cpu = rng.below(u64::from(p.cpu_count)) as usize;
        let mask = rng.mask(p.cpu_count);
        let (what, matches) = match op {
            0..=29 => {
                let reserved = reference.reserved > 0 && rng.coin();
                let got = matrix.alloc(&mask, reserved);
                let expected = reference.alloc(&mask, reserved);
                (format!("alloc({mask:?}, {reserved}) = {got:?}, reference {expected:?}"), got == expected)
            }
            30..=39 => {
                let got = matrix.alloc_managed(&mask);
                let expected = reference.alloc_managed(&mask);
                (format!("alloc_managed({mask:?}) = {got:?}, reference {expected:?}"), got == expected)
            }
            40..=51 => {
                let got = matrix.reserve_managed(&mask);
                let expected = reference.reserve_managed(&mask);
                (format!("reserve_managed({mask:?}) = {got:?}, reference {expected:?}"), got == expected)
            }
            52..=56 => {
                matrix.remove_managed(&mask);
                for c in reference.in_mask(&mask) {
                    reference.remove_one(c);
                }
                (format!("remove_managed({mask:?})"), true)
            }
            57..=79 => {
                let live: Vec<(usize, u32, bool)> = reference
                    .cpus
                    .iter()
                    .enumerate()
                    .flat_map(|(c, rc)| {
                        let regular = rc.regular.iter().map(move |&v| (c, v, false));
                        regular.chain(rc.managed_allocated.iter().map(move |&v| (c, v, true)))
                    })
                    .collect();
                let (c, vector, managed) = if live.is_empty() || rng.below(20) == 0 {
                    (cpu, rng.below(256) as u32, rng.coin())
                } else {
                    live[rng.below(live.len() as u64) as usize]
                };
                let got = matrix.free(CpuId(c as u32), Vector(vector as u8), managed);
                let expected = reference.free(c, vector, managed);
                (format!("free({c}, {vector:#x}, {managed}) = {got:?}, reference {expected:?}"), got == expected)
            }
            80..=87 => {
                if reference.reserved > 0 && rng.coin() {
                    matrix.remove_reserved();
                    reference.reserved -= 1;
                    ("remove_reserved()".to_string(), true)
                } else {
                    let warned = matrix.reserve() == Reservation::ExceedsAvailable;
                    let expected = reference.reserved == reference.global_available();
                    reference.reserved += 1;
                    (format!("reserve() warned {warned}, reference {expected}"), warned == expected)
                }
            }
            88..=93 => {
                let got = matrix.offline(CpuId(cpu as u32));
                let expected = reference.set_online(cpu, false);
                (format!("offline({cpu}) = {got:?}, reference {expected:?}"), got == expected)
            }
            _ => {
                let got = matrix.online(CpuId(cpu as u32));
                let expected = reference.set_online(cpu, true);
                (format!("online({cpu}) = {got:?}, reference {expected:?}"), got == expected)
            }
        };
        if !matches {
            return Err(format!("step {step}: {what}"));
        }
        reference.compare(&matrix).map_err(|e| format!("step {step} after {what}: {e}"))?;
    }
    Ok(())
}

#[test]
fn random_matrix_operations_match_the_reference_model() {
    run_seeds("random_matrix_operations_match_the_reference_model", 200, matrix_against_reference);
}
