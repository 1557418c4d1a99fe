//! CPU hotplug in the vector domain (`kernel/irq/cpuhotplug.c` and the x86
//! `lapic_online`/`lapic_offline` path): the unplug check, the migration or
//! managed shutdown of the outgoing CPU's interrupts ([`OfflineReport`]), and
//! the restart of managed interrupts when a CPU comes back.

use super::{Activation, DomainWarning, IrqId, IrqState, VectorDomain};
use crate::ids::CpuId;
use crate::x86::vector_matrix::cpuset::CpuSet;
use crate::x86::vector_matrix::error::MatrixError;

/// What [`VectorDomain::offline`] did to the interrupts of the outgoing CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfflineReport {
    /// Interrupts moved to another online CPU.
    pub migrated: Vec<IrqId>,
    /// Of those, the ones whose affinity had to be broken (moved to any online CPU).
    pub affinity_broken: Vec<IrqId>,
    /// Managed interrupts shut down (no other online CPU in their mask).
    pub shutdown: Vec<IrqId>,
    /// Interrupts whose migration failed; they stay on the offline CPU.
    pub failed: Vec<IrqId>,
}

impl VectorDomain {
    /// Takes `cpu` offline (`native_cpu_disable` … `lapic_offline`).
    ///
    /// 1. `lapic_can_unplug_cpu`: refused with `CannotUnplug` when the other
    ///    online CPUs have fewer available vectors than `irq_matrix_allocated`
    ///    says must move (era dependent); warns when the reservations exceed
    ///    them.
    /// 2. The CPU leaves `cpu_online_mask`; each active interrupt targeting it
    ///    (ascending id) completes a pending move, then is shut down (managed,
    ///    no other online CPU in its mask) or migrated to its affinity ∩ online,
    ///    or, with no online CPU there, to any online CPU (affinity broken).
    ///    From the 6.10 era a non-managed `NoSpace` is retried on all online
    ///    CPUs; a failed migration leaves the interrupt stale.
    /// 3. `irq_matrix_offline`.
    ///
    /// `Invalid` if the CPU is unknown or offline; `Busy` for the boot CPU or
    /// the last online CPU.
    pub fn offline(&mut self, cpu: CpuId) -> Result<OfflineReport, MatrixError> {
        if cpu.0 >= self.matrix.params.cpu_count || !self.cpu_online_mask.contains(cpu) {
            return Err(MatrixError::Invalid);
        }
        if cpu == CpuId(0) || self.cpu_online_mask.len() == 1 {
            return Err(MatrixError::Busy);
        }
        // lapic_can_unplug_cpu()
        let tomove = self.matrix.allocated(cpu);
        let avl = self.matrix.available(Some(cpu));
        if avl < tomove {
            return Err(MatrixError::CannotUnplug { cpu, vectors: tomove, available: avl });
        }
        let rsvd = self.matrix.reserved();
        if avl < rsvd {
            self.warnings.push(DomainWarning::ReservedExceedsAvailable { reserved: rsvd, available: avl });
        }

        // cpu_disable_common(): remove from the online mask, fixup_irqs().
        self.cpu_online_mask.remove(cpu);
        let mut report = OfflineReport::default();
        for index in 0..self.irqs.len() {
            let targets_cpu = self.irqs[index].state == IrqState::Active
                && self.irqs[index].vector.is_some_and(|(target, _)| target == cpu);
            if targets_cpu {
                self.migrate_one_irq(index, cpu, &mut report);
            }
        }

        // lapic_offline()
        self.matrix.offline(cpu).expect("the CPU was online");
        Ok(report)
    }

    /// `migrate_one_irq` for an active interrupt targeting the outgoing `cpu`.
    fn migrate_one_irq(&mut self, index: usize, cpu: CpuId, report: &mut OfflineReport) {
        let irq = IrqId(index as u32);
        let managed = self.irqs[index].is_managed;
        // irq_force_complete_move()
        if let Some((prev_cpu, prev_vector)) = self.take_prev_vector(index) {
            self.free_vector(prev_cpu, prev_vector, managed);
        }
        let mut affinity = self.irqs[index].affinity.clone();
        let mut brokeaff = false;
        if affinity.intersection(&self.cpu_online_mask).is_empty() {
            if managed {
                // irqd_set_managed_shutdown() + irq_shutdown_and_deactivate()
                self.clear_irq_vector(index);
                self.irqs[index].state = IrqState::ManagedShutdown;
                report.shutdown.push(irq);
                return;
            }
            affinity = self.cpu_online_mask.clone();
            brokeaff = true;
        }
        let mut result = self.irq_do_set_affinity(index, &affinity);
        if result == Err(MatrixError::NoSpace)
            && !managed
            && affinity != self.cpu_online_mask
            && self.matrix.params.era.retries_migration_with_online_mask()
        {
            affinity = self.cpu_online_mask.clone();
            brokeaff = true;
            result = self.irq_do_set_affinity(index, &affinity);
        }
        match result {
            Ok(()) => {
                if !managed {
                    self.irqs[index].affinity = affinity;
                }
                report.migrated.push(irq);
                if brokeaff {
                    self.irqs[index].affinity_broken = true;
                    report.affinity_broken.push(irq);
                    self.warnings.push(DomainWarning::NoLongerAffine { irq, cpu });
                }
            }
            Err(error) => {
                self.irqs[index].stale = true;
                report.failed.push(irq);
                self.warnings.push(DomainWarning::SetAffinityFailed { irq, error });
            }
        }
    }

    /// `irq_do_set_affinity` → `apic_set_affinity` on mask ∩ online.
    fn irq_do_set_affinity(&mut self, index: usize, mask: &CpuSet) -> Result<(), MatrixError> {
        let dest = mask.intersection(&self.cpu_online_mask);
        if self.irqs[index].is_managed {
            self.assign_managed_vector(index, &dest)
        } else {
            self.assign_vector_locked(index, &dest)
        }
    }

    /// Brings `cpu` online (`lapic_online`, then `irq_affinity_online_cpu`):
    /// managed interrupts shut down for lack of a CPU whose mask contains
    /// `cpu` are restarted (ascending id) and returned. `Invalid` if the CPU
    /// is unknown or already online.
    pub fn online(&mut self, cpu: CpuId) -> Result<Vec<IrqId>, MatrixError> {
        if cpu.0 >= self.matrix.params.cpu_count || self.cpu_online_mask.contains(cpu) {
            return Err(MatrixError::Invalid);
        }
        self.matrix.online(cpu)?;
        self.cpu_online_mask.insert(cpu);
        let mut restarted = Vec::new();
        for index in 0..self.irqs.len() {
            let desc = &mut self.irqs[index];
            if desc.stale && desc.vector.is_some_and(|(target, _)| target == cpu) {
                desc.stale = false;
            }
            let restart = desc.state == IrqState::ManagedShutdown && desc.affinity.contains(cpu);
            if restart && matches!(self.activate_managed(index), Activation::Assigned { .. }) {
                restarted.push(IrqId(index as u32));
            }
        }
        Ok(restarted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x86::vector_matrix::KernelEra;
    use crate::x86::vector_matrix::testutil::*;

    #[test]
    fn offline_shuts_down_managed_migrates_the_rest_and_online_restarts() {
        let mut domain = VectorDomain::new(params(4, KernelEra::From6_10, true), Vec::new());
        let (m3, a) = request_managed(&mut domain, &[3]);
        assert_eq!(assigned_cpu(a), 3);
        let (m2, a) = request_managed(&mut domain, &[2, 3]);
        assert_eq!(assigned_cpu(a), 2, "fewest managed allocated");
        let (m1, a) = request_managed(&mut domain, &[2]);
        assert_eq!(assigned_cpu(a), 2);
        let (n1, a) = request(&mut domain, &[2], None);
        assert_eq!(assigned_cpu(a), 2);
        let (n2, a) = request(&mut domain, &[1, 2], None);
        assert_eq!(assigned_cpu(a), 1, "most available");
        domain.set_affinity(n2, cpus(&[2])).expect("move to 2");
        domain.complete_move(n2).expect("complete");
        domain.set_affinity(n2, cpus(&[1, 2])).expect("no move: CPU 2 is in the mask");
        check_domain(&domain);
        assert_eq!(domain.irq(n2).expect("irq").vector().expect("vector").0, CpuId(2));
        domain.take_warnings();

        let report = domain.offline(CpuId(2)).expect("offline");
        check_domain(&domain);
        assert_eq!(report.shutdown, vec![m1]);
        assert_eq!(report.migrated, vec![m2, n1, n2]);
        assert_eq!(report.affinity_broken, vec![n1]);
        assert!(report.failed.is_empty());
        assert_eq!(domain.irq(m1).expect("irq").state(), IrqState::ManagedShutdown);
        assert_eq!(domain.irq(m2).expect("irq").vector().expect("vector").0, CpuId(3));
        assert_eq!(domain.irq(m3).expect("irq").vector().expect("vector").0, CpuId(3));
        assert_eq!(domain.irq(n1).expect("irq").affinity(), &cpus(&[0, 1, 3]), "affinity becomes the online mask");
        assert!(domain.irq(n1).expect("irq").affinity_broken());
        assert_eq!(domain.irq(n2).expect("irq").vector().expect("vector").0, CpuId(1));
        assert_eq!(domain.take_warnings(), vec![DomainWarning::NoLongerAffine { irq: n1, cpu: CpuId(2) }]);
        assert_eq!(allocated_on(&domain, 2), 0);
        assert!(!domain.matrix().cpumap(CpuId(2)).expect("cpu").is_online());
        assert!(!domain.debug_table().contains("\n     2 "), "offline CPUs are not listed");

        let restarted = domain.online(CpuId(2)).expect("online");
        check_domain(&domain);
        assert_eq!(restarted, vec![m1]);
        assert_eq!(domain.irq(m1).expect("irq").vector().expect("vector").0, CpuId(2));
        assert_eq!(domain.irq(m2).expect("irq").vector().expect("vector").0, CpuId(3), "not moved back");
        assert_eq!(domain.online(CpuId(2)), Err(MatrixError::Invalid));
    }

    #[test]
    fn unplug_is_refused_when_the_others_cannot_absorb_and_counts_managed_before_6_6() {
        for era in KernelEra::ALL {
            let mut domain = VectorDomain::new(params(2, era, false), Vec::new());
            for _ in 0..3 {
                let (_, activation) = request_managed(&mut domain, &[1]);
                assert_eq!(assigned_cpu(activation), 1);
            }
            fill_cpu(&mut domain, 0, 2);
            let result = domain.offline(CpuId(1));
            check_domain(&domain);
            if era.allocated_excludes_managed() {
                let report = result.expect("managed vectors are not counted");
                assert_eq!(report.shutdown.len(), 3);
                assert_eq!(allocated_on(&domain, 1), 0);
            } else {
                let error = result.expect_err("managed vectors are counted");
                assert_eq!(error, MatrixError::CannotUnplug { cpu: CpuId(1), vectors: 3, available: 2 });
                assert_eq!(error.to_string(), "CPU 1 has 3 vectors, 2 available. Cannot disable CPU");
                assert!(domain.cpu_online_mask().contains(CpuId(1)));
            }
        }
        // Regular vectors count in every era.
        for era in KernelEra::ALL {
            let mut domain = VectorDomain::new(params(2, era, false), Vec::new());
            for _ in 0..3 {
                request(&mut domain, &[1], None);
            }
            fill_cpu(&mut domain, 0, 2);
            assert_eq!(
                domain.offline(CpuId(1)),
                Err(MatrixError::CannotUnplug { cpu: CpuId(1), vectors: 3, available: 2 })
            );
            check_domain(&domain);
            assert_eq!(domain.offline(CpuId(0)), Err(MatrixError::Busy), "boot CPU");
        }
        let mut domain = VectorDomain::new(params(2, KernelEra::From6_10, false), Vec::new());
        domain.offline(CpuId(1)).expect("offline");
        assert_eq!(domain.offline(CpuId(1)), Err(MatrixError::Invalid));
        assert_eq!(domain.offline(CpuId(0)), Err(MatrixError::Busy), "last online CPU");
        check_domain(&domain);
    }

    #[test]
    fn failed_migration_leaves_the_irq_stale_before_6_10_and_is_retried_after() {
        for era in KernelEra::ALL {
            let mut domain = VectorDomain::new(params(3, era, false), Vec::new());
            let (irq, activation) = request(&mut domain, &[1, 2], None);
            assert_eq!(assigned_cpu(activation), 1);
            fill_cpu(&mut domain, 2, 0);
            let report = domain.offline(CpuId(1)).expect("the boot CPU has room");
            check_domain(&domain);
            let desc = domain.irq(irq).expect("irq");
            if era.retries_migration_with_online_mask() {
                assert_eq!(report.affinity_broken, vec![irq]);
                assert_eq!(desc.vector().expect("vector").0, CpuId(0));
                assert!(desc.affinity_broken() && !desc.is_stale());
            } else {
                assert_eq!(report.failed, vec![irq]);
                assert_eq!(desc.vector().expect("vector").0, CpuId(1));
                assert!(desc.is_stale());
                assert_eq!(
                    domain.warnings().last(),
                    Some(&DomainWarning::SetAffinityFailed { irq, error: MatrixError::NoSpace })
                );
                domain.online(CpuId(1)).expect("online");
                check_domain(&domain);
                assert!(!domain.irq(irq).expect("irq").is_stale());
            }
        }
    }

    #[test]
    fn managed_activation_with_no_online_cpu_parks_the_irq() {
        let mut domain = VectorDomain::new(params(3, KernelEra::V6_6To6_9, true), Vec::new());
        domain.offline(CpuId(2)).expect("offline");
        let (irq, activation) = request_managed(&mut domain, &[2]);
        assert_eq!(activation, Activation::ManagedShutdown);
        assert_eq!(domain.online(CpuId(2)).expect("online"), vec![irq]);
        check_domain(&domain);
        assert_eq!(domain.irq(irq).expect("irq").state(), IrqState::Active);
        domain.free_irq(irq).expect("free");
        check_domain(&domain);
        assert_eq!(domain.matrix().cpumap(CpuId(2)).expect("cpu").managed(), 0);
        assert_eq!(domain.free_irq(irq), Err(MatrixError::Invalid));
    }
}
