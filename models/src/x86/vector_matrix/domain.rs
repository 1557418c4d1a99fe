//! [`VectorDomain`]: the x86 vector-domain policy of
//! `arch/x86/kernel/apic/vector.c` on top of the matrix: the interrupt table
//! ([`IrqId`], [`IrqDesc`], [`IrqState`]), reservation mode, managed
//! interrupts, activation and its fallback order ([`Activation`]), affinity
//! changes and the two-vector move protocol, the kernel's warnings
//! ([`DomainWarning`]) and the domain's invariants. CPU hotplug
//! (`kernel/irq/cpuhotplug.c`) is in `domain/hotplug.rs`, the tests in
//! `domain/tests.rs`.

mod hotplug;
#[cfg(test)]
mod tests;

pub use hotplug::OfflineReport;

use super::bitmap::VectorBitmap;
use super::cpuset::{CpuSet, bitmap_list};
use super::era::{MatrixParams, NR_IRQS_LEGACY, PIC_CASCADE_IR, isa_irq_vector};
use super::error::MatrixError;
use super::matrix::{CpuMap, Reservation, VectorMatrix};
use crate::ids::{CpuId, Vector};

/// An interrupt in the [`VectorDomain`]'s IRQ table (0-based index; the kernel's virq).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IrqId(pub u32);

/// A NUMA node: an index into the node table given to [`VectorDomain::new`]
/// (the kernel's `cpumask_of_node(node)`; `None` stands for `NUMA_NO_NODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// Life-cycle state of an interrupt in the [`VectorDomain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqState {
    /// Allocated, no vector: a global reservation (non-managed) or per-CPU
    /// managed reservations (managed).
    Reserved,
    /// Activated: holds a vector (and, while a move is pending, the old one).
    Active,
    /// Managed and shut down because no CPU of its mask is online
    /// (`irqd_set_managed_shutdown`); restarted when one comes online.
    ManagedShutdown,
    /// Freed; the id is not reused.
    Freed,
}

/// One interrupt's vector state (vector.c `struct apic_chip_data` plus the
/// affinity and node of its `irq_data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IrqDesc {
    affinity: CpuSet,
    node: Option<NodeId>,
    is_managed: bool,
    state: IrqState,
    vector: Option<(CpuId, Vector)>,
    prev_vector: Option<(CpuId, Vector)>,
    has_reserved: bool,
    affinity_broken: bool,
    stale: bool,
}

impl IrqDesc {
    /// The affinity mask (`irq_data_get_affinity_mask`).
    pub fn affinity(&self) -> &CpuSet {
        &self.affinity
    }

    /// The NUMA node (`irq_data_get_node`; `None` is `NUMA_NO_NODE`).
    pub fn node(&self) -> Option<NodeId> {
        self.node
    }

    /// Whether the interrupt is managed (`is_managed`).
    pub fn is_managed(&self) -> bool {
        self.is_managed
    }

    /// The life-cycle state.
    pub fn state(&self) -> IrqState {
        self.state
    }

    /// The current target CPU and vector (`cpu`, `vector`).
    pub fn vector(&self) -> Option<(CpuId, Vector)> {
        self.vector
    }

    /// The old target kept while a move is pending (`prev_cpu`, `prev_vector`
    /// with `move_in_progress`).
    pub fn prev_vector(&self) -> Option<(CpuId, Vector)> {
        self.prev_vector
    }

    /// Whether the interrupt holds a global reservation (`has_reserved`).
    pub fn has_reserved(&self) -> bool {
        self.has_reserved
    }

    /// Whether the target CPU lies outside the affinity the interrupt asked
    /// for (the kernel's "Affinity broken" / "no longer affine" warnings).
    pub fn affinity_broken(&self) -> bool {
        self.affinity_broken
    }

    /// Whether a migration at CPU offline failed and the interrupt still
    /// targets an offline CPU ("IRQ%u: set affinity failed").
    pub fn is_stale(&self) -> bool {
        self.stale
    }
}

/// Outcome of [`VectorDomain::activate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// A vector was assigned. `affinity_broken` is the kernel's "irq %u:
    /// Affinity broken due to vector space exhaustion." case: the CPU lies
    /// outside the affinity mask.
    Assigned {
        /// Target CPU.
        cpu: CpuId,
        /// Vector on that CPU.
        vector: Vector,
        /// Whether `cpu` lies outside the affinity mask.
        affinity_broken: bool,
    },
    /// No vector on any online CPU: the kernel's `-ENOSPC`. The interrupt
    /// keeps its reservation.
    NoSpace,
    /// Managed interrupt with no online CPU in its mask: not started, parked
    /// as managed shutdown (`irq_startup_managed` aborts).
    ManagedShutdown,
}

/// A condition the kernel only warns about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainWarning {
    /// "Interrupt reservation exceeds available resources".
    ReservationExceedsAvailable,
    /// "irq %u: Affinity broken due to vector space exhaustion."
    AffinityBroken {
        /// The interrupt.
        irq: IrqId,
    },
    /// "Reserved vectors %u > available %u. IRQ request may fail" (at unplug).
    ReservedExceedsAvailable {
        /// `irq_matrix_reserved`.
        reserved: u32,
        /// `irq_matrix_available(m, true)`.
        available: u32,
    },
    /// "IRQ %u: no longer affine to CPU%u" (migration broke the affinity).
    NoLongerAffine {
        /// The interrupt.
        irq: IrqId,
        /// The CPU going offline.
        cpu: CpuId,
    },
    /// "IRQ%u: set affinity failed(%d)." (migration at offline failed).
    SetAffinityFailed {
        /// The interrupt.
        irq: IrqId,
        /// The error.
        error: MatrixError,
    },
    /// "Managed startup irq %u, no vector available".
    ManagedStartupNoVector {
        /// The interrupt.
        irq: IrqId,
    },
}

/// The x86 vector domain: per-interrupt vector state and the Linux policy
/// (vector.c, cpuhotplug.c) on top of a [`VectorMatrix`].
#[derive(Clone, Debug)]
pub struct VectorDomain {
    matrix: VectorMatrix,
    cpu_online_mask: CpuSet,
    nodes: Vec<CpuSet>,
    irqs: Vec<IrqDesc>,
    /// How many interrupts have a pending move (`prev_vector`): the platform asks for a
    /// move's completion on a delivery only while there is one.
    moves_pending: u32,
    leaked_vectors: Vec<(CpuId, Vector)>,
    warnings: Vec<DomainWarning>,
}

impl VectorDomain {
    /// A booted domain: the matrix with every CPU online, and `nodes[n]` the
    /// CPUs of NUMA node `n`.
    ///
    /// # Panics
    ///
    /// If `params.cpu_count` is 0.
    pub fn new(params: MatrixParams, nodes: Vec<CpuSet>) -> VectorDomain {
        let cpu_online_mask = CpuSet::from_range(0..params.cpu_count);
        VectorDomain {
            matrix: VectorMatrix::new(params),
            cpu_online_mask,
            nodes,
            irqs: Vec::new(),
            moves_pending: 0,
            leaked_vectors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The underlying matrix (read only: the domain owns its state).
    pub fn matrix(&self) -> &VectorMatrix {
        &self.matrix
    }

    /// The online CPUs (`cpu_online_mask`).
    pub fn cpu_online_mask(&self) -> &CpuSet {
        &self.cpu_online_mask
    }

    /// One interrupt, or `None` for an id never allocated.
    pub fn irq(&self, irq: IrqId) -> Option<&IrqDesc> {
        self.irqs.get(irq.0 as usize)
    }

    /// Number of interrupt ids handed out (freed ones included).
    pub fn irq_count(&self) -> u32 {
        self.irqs.len() as u32
    }

    /// Vectors lost by the pre-6.10 leak (old vector of a move whose CPU went offline).
    pub fn leaked_vectors(&self) -> &[(CpuId, Vector)] {
        &self.leaked_vectors
    }

    /// Warnings since the last [`VectorDomain::take_warnings`].
    pub fn warnings(&self) -> &[DomainWarning] {
        &self.warnings
    }

    /// Returns and clears the warnings.
    pub fn take_warnings(&mut self) -> Vec<DomainWarning> {
        std::mem::take(&mut self.warnings)
    }

    fn valid_mask(&self, mask: &CpuSet) -> bool {
        !mask.is_empty() && mask.iter().all(|cpu| cpu.0 < self.matrix.params.cpu_count)
    }

    fn index_of(&self, irq: IrqId) -> Result<usize, MatrixError> {
        let index = irq.0 as usize;
        match self.irqs.get(index) {
            Some(desc) if desc.state != IrqState::Freed => Ok(index),
            _ => Err(MatrixError::Invalid),
        }
    }

    fn push_irq(&mut self, desc: IrqDesc) -> IrqId {
        self.irqs.push(desc);
        IrqId(self.irqs.len() as u32 - 1)
    }

    /// Allocates a non-managed interrupt in reservation mode
    /// (`reserve_irq_vector`): only a global reservation is taken; the vector
    /// comes at [`VectorDomain::activate`]. `Invalid` for an empty mask, a CPU
    /// beyond `cpu_count` or an unknown node.
    pub fn alloc_irq(&mut self, affinity: CpuSet, node: Option<NodeId>) -> Result<IrqId, MatrixError> {
        if !self.valid_mask(&affinity) || node.is_some_and(|node| node.0 as usize >= self.nodes.len()) {
            return Err(MatrixError::Invalid);
        }
        if self.matrix.reserve() == Reservation::ExceedsAvailable {
            self.warnings.push(DomainWarning::ReservationExceedsAvailable);
        }
        Ok(self.push_irq(IrqDesc {
            affinity,
            node,
            is_managed: false,
            state: IrqState::Reserved,
            vector: None,
            prev_vector: None,
            has_reserved: true,
            affinity_broken: false,
            stale: false,
        }))
    }

    /// Allocates a managed interrupt (`reserve_managed_vector`): one vector is
    /// reserved on every CPU of `affinity`, online or not. `NoSpace` if some
    /// CPU of the mask has no free vector (nothing stays reserved then).
    pub fn alloc_irq_managed(&mut self, affinity: CpuSet) -> Result<IrqId, MatrixError> {
        if !self.valid_mask(&affinity) {
            return Err(MatrixError::Invalid);
        }
        self.matrix.reserve_managed(&affinity)?;
        Ok(self.push_irq(IrqDesc {
            affinity,
            node: None,
            is_managed: true,
            state: IrqState::Reserved,
            vector: None,
            prev_vector: None,
            has_reserved: false,
            affinity_broken: false,
            stale: false,
        }))
    }

    /// Activates an interrupt (`x86_vector_activate`).
    ///
    /// Non-managed (`activate_reserved`): tries node ∩ affinity, affinity,
    /// node, all online CPUs (the node steps only with a node), each with
    /// `matrix_find_best_cpu`. Managed (`activate_managed`): the CPU of
    /// affinity ∩ online with the fewest managed vectors allocated; with no
    /// such CPU the interrupt is parked as managed shutdown. `Invalid` if the
    /// interrupt is freed or already active.
    pub fn activate(&mut self, irq: IrqId) -> Result<Activation, MatrixError> {
        let index = self.index_of(irq)?;
        if self.irqs[index].state == IrqState::Active {
            return Err(MatrixError::Invalid);
        }
        if self.irqs[index].is_managed {
            return Ok(self.activate_managed(index));
        }
        Ok(self.activate_reserved(index))
    }

    fn activate_reserved(&mut self, index: usize) -> Activation {
        let irq = IrqId(index as u32);
        let node = self.irqs[index].node.map(|node| node.0 as usize);
        // assign_irq_vector_any_locked(), order since v5.11: node ∩ affinity, affinity ∩
        // online, node, all online CPUs (the node steps only with a node). Each mask is built
        // only when the one before had no vector: nearly always the first one does, and
        // copying the online mask of 8,192 CPUs per interrupt dominated a large set-up.
        for attempt in 0..4 {
            let dest = match (attempt, node) {
                (0, Some(node)) => self.nodes[node].intersection(&self.irqs[index].affinity),
                (1, _) => self.irqs[index].affinity.intersection(&self.cpu_online_mask),
                (2, Some(node)) => self.nodes[node].clone(),
                (3, _) => self.cpu_online_mask.clone(),
                _ => continue,
            };
            if self.assign_vector_locked(index, &dest).is_ok() {
                let (cpu, vector) = self.irqs[index].vector.expect("assigned");
                let desc = &mut self.irqs[index];
                let affinity_broken = !desc.affinity.contains(cpu);
                desc.has_reserved = false;
                desc.state = IrqState::Active;
                desc.affinity_broken = affinity_broken;
                if affinity_broken {
                    self.warnings.push(DomainWarning::AffinityBroken { irq });
                }
                return Activation::Assigned { cpu, vector, affinity_broken };
            }
        }
        Activation::NoSpace
    }

    fn activate_managed(&mut self, index: usize) -> Activation {
        let dest = self.irqs[index].affinity.intersection(&self.cpu_online_mask);
        if dest.is_empty() {
            self.irqs[index].state = IrqState::ManagedShutdown;
            return Activation::ManagedShutdown;
        }
        match self.assign_managed_vector(index, &dest) {
            Ok(()) => {
                let (cpu, vector) = self.irqs[index].vector.expect("assigned");
                self.irqs[index].state = IrqState::Active;
                Activation::Assigned { cpu, vector, affinity_broken: false }
            }
            Err(_) => {
                self.warnings.push(DomainWarning::ManagedStartupNoVector { irq: IrqId(index as u32) });
                Activation::NoSpace
            }
        }
    }

    /// `assign_vector_locked`: keeps the vector if its CPU is online and in
    /// `dest`; refuses while a move is pending; otherwise allocates on `dest`.
    fn assign_vector_locked(&mut self, index: usize, dest: &CpuSet) -> Result<(), MatrixError> {
        let desc = &self.irqs[index];
        if let Some((cpu, _)) = desc.vector
            && self.cpu_online_mask.contains(cpu)
            && dest.contains(cpu)
        {
            return Ok(());
        }
        if desc.prev_vector.is_some() {
            return Err(MatrixError::Busy);
        }
        let (cpu, vector) = self.matrix.alloc(dest, desc.has_reserved)?;
        self.apic_update_vector(index, cpu, vector);
        Ok(())
    }

    /// `assign_managed_vector`: keeps the vector if its CPU is in dest ∩
    /// affinity; otherwise allocates a managed vector there.
    fn assign_managed_vector(&mut self, index: usize, dest: &CpuSet) -> Result<(), MatrixError> {
        let searchmask = dest.intersection(&self.irqs[index].affinity);
        if let Some((cpu, _)) = self.irqs[index].vector
            && searchmask.contains(cpu)
        {
            return Ok(());
        }
        let (cpu, vector) = self.matrix.alloc_managed(&searchmask)?;
        self.apic_update_vector(index, cpu, vector);
        Ok(())
    }

    /// `apic_update_vector`: the old vector is kept for cleanup (move in
    /// progress) if its CPU is online, freed at once otherwise.
    fn apic_update_vector(&mut self, index: usize, newcpu: CpuId, newvec: Vector) {
        let managed = self.irqs[index].is_managed;
        let old = self.irqs[index].vector;
        self.take_prev_vector(index);
        if let Some((old_cpu, old_vector)) = old {
            if self.cpu_online_mask.contains(old_cpu) {
                self.irqs[index].prev_vector = Some((old_cpu, old_vector));
                self.moves_pending += 1;
            } else {
                self.free_vector(old_cpu, old_vector, managed);
            }
        }
        let desc = &mut self.irqs[index];
        desc.vector = Some((newcpu, newvec));
        desc.stale = false;
    }

    /// Ends a pending move of interrupt `index`, returning its old target.
    pub(super) fn take_prev_vector(&mut self, index: usize) -> Option<(CpuId, Vector)> {
        let prev = self.irqs[index].prev_vector.take();
        self.moves_pending -= u32::from(prev.is_some());
        prev
    }

    /// How many interrupts have a move pending (an old vector kept until the first
    /// interrupt arrives on the new one).
    pub fn moves_pending(&self) -> u32 {
        self.moves_pending
    }

    fn free_vector(&mut self, cpu: CpuId, vector: Vector, managed: bool) {
        let freed = self.matrix.free(cpu, vector, managed);
        assert!(freed.is_ok(), "domain freed a vector it does not hold: cpu {cpu:?} {vector:?}");
    }

    /// `clear_irq_vector`: frees the current vector and a pending old one.
    fn clear_irq_vector(&mut self, index: usize) {
        let managed = self.irqs[index].is_managed;
        if let Some((cpu, vector)) = self.irqs[index].vector.take() {
            self.free_vector(cpu, vector, managed);
        }
        if let Some((cpu, vector)) = self.take_prev_vector(index) {
            self.free_vector(cpu, vector, managed);
        }
        let desc = &mut self.irqs[index];
        desc.stale = false;
        desc.affinity_broken = false;
    }

    /// Deactivates an interrupt (`x86_vector_deactivate`): frees its vectors;
    /// a non-managed one takes a global reservation again, a managed one keeps
    /// its per-CPU reservations. A managed interrupt parked as shut down is no
    /// longer restarted. No-op for an interrupt that is not active.
    pub fn deactivate(&mut self, irq: IrqId) -> Result<(), MatrixError> {
        let index = self.index_of(irq)?;
        match self.irqs[index].state {
            IrqState::Active => {
                self.clear_irq_vector(index);
                if !self.irqs[index].is_managed {
                    if self.matrix.reserve() == Reservation::ExceedsAvailable {
                        self.warnings.push(DomainWarning::ReservationExceedsAvailable);
                    }
                    self.irqs[index].has_reserved = true;
                }
                self.irqs[index].state = IrqState::Reserved;
            }
            IrqState::ManagedShutdown => self.irqs[index].state = IrqState::Reserved,
            IrqState::Reserved | IrqState::Freed => {}
        }
        Ok(())
    }

    /// Frees an interrupt (`x86_vector_free_irqs`): its vectors, its global
    /// reservation or its managed reservations on every CPU of its mask.
    pub fn free_irq(&mut self, irq: IrqId) -> Result<(), MatrixError> {
        let index = self.index_of(irq)?;
        self.clear_irq_vector(index);
        if self.irqs[index].has_reserved {
            self.matrix.remove_reserved();
            self.irqs[index].has_reserved = false;
        }
        if self.irqs[index].is_managed {
            let affinity = self.irqs[index].affinity.clone();
            self.matrix.remove_managed(&affinity);
        }
        self.irqs[index].state = IrqState::Freed;
        Ok(())
    }

    /// Changes a non-managed interrupt's affinity (`apic_set_affinity`).
    ///
    /// Inactive: only the mask is stored. Active: if the current CPU is online
    /// and in `mask`, nothing moves; otherwise a new vector is allocated on
    /// `mask` ∩ online and the old one is kept until
    /// [`VectorDomain::complete_move`]. Errors: `Busy` while a move is
    /// pending, `NoSpace`, and `Invalid` for a managed or freed interrupt or a
    /// mask without an online CPU. On error the affinity is unchanged.
    pub fn set_affinity(&mut self, irq: IrqId, mask: CpuSet) -> Result<(), MatrixError> {
        let index = self.index_of(irq)?;
        let dest = mask.intersection(&self.cpu_online_mask);
        if self.irqs[index].is_managed || !self.valid_mask(&mask) || dest.is_empty() {
            return Err(MatrixError::Invalid);
        }
        if self.irqs[index].state == IrqState::Active {
            self.assign_vector_locked(index, &dest)?;
        }
        let desc = &mut self.irqs[index];
        desc.affinity = mask;
        desc.affinity_broken = false;
        Ok(())
    }

    /// The first interrupt arrived on the new vector (`irq_complete_move`
    /// and the cleanup it schedules): the old vector is freed. If its CPU went
    /// offline meanwhile, it is freed from the 6.10 era on and leaks before.
    /// No-op without a pending move.
    pub fn complete_move(&mut self, irq: IrqId) -> Result<(), MatrixError> {
        let index = self.index_of(irq)?;
        let managed = self.irqs[index].is_managed;
        if let Some((cpu, vector)) = self.take_prev_vector(index) {
            if self.cpu_online_mask.contains(cpu) || self.matrix.params.era.frees_moved_vector_of_offline_cpu() {
                self.free_vector(cpu, vector, managed);
            } else {
                self.leaked_vectors.push((cpu, vector));
            }
        }
        Ok(())
    }

    /// Checks the matrix invariants ([`VectorMatrix::check_invariants`]) and
    /// the domain's:
    ///
    /// * `cpu_online_mask` equals the set of online maps;
    /// * every `alloc_map` bit has exactly one owner: an interrupt's current
    ///   or pending old vector, a boot-CPU ISA vector, or a leaked vector; and
    ///   a managed interrupt's vectors are in `managed_map`, others not;
    /// * per CPU, `managed` = number of live managed interrupts whose mask
    ///   contains it; `global_reserved` = number holding a reservation;
    /// * state consistency: active ⇔ a vector; a pending move only when
    ///   active; a reservation only for a non-managed, inactive interrupt;
    ///   the target CPU is online unless the interrupt is stale.
    // Long (88 lines): the checks of the list above share the ownership maps built in one walk over the IRQs.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.matrix.check_invariants()?;
        let cpu_count = self.matrix.params.cpu_count;
        let online_maps: CpuSet =
            (0..cpu_count).map(CpuId).filter(|&cpu| self.matrix.cpumap(cpu).is_some_and(CpuMap::is_online)).collect();
        if online_maps != self.cpu_online_mask {
            return Err(format!("cpu_online_mask {:?} != online maps {online_maps:?}", self.cpu_online_mask));
        }

        let mut owned = vec![VectorBitmap::default(); cpu_count as usize];
        let mut managed_count = vec![0u32; cpu_count as usize];
        let mut reserved_count = 0u32;
        let mut claim = |cpu: CpuId, vector: Vector, owner: &str| -> Result<(), String> {
            let map = &mut owned[cpu.0 as usize];
            if map.test(u32::from(vector.0)) {
                return Err(format!("cpu {} vector {:#x} owned twice ({owner})", cpu.0, vector.0));
            }
            map.set(u32::from(vector.0));
            Ok(())
        };
        if self.matrix.params.legacy_pic {
            for irq in (0..NR_IRQS_LEGACY).filter(|&irq| irq != PIC_CASCADE_IR) {
                claim(CpuId(0), isa_irq_vector(irq), "ISA")?;
            }
        }
        for &(cpu, vector) in &self.leaked_vectors {
            claim(cpu, vector, "leak")?;
        }
        let with_prev = self.irqs.iter().filter(|desc| desc.prev_vector.is_some()).count();
        if with_prev != self.moves_pending as usize {
            return Err(format!("{with_prev} interrupts have a pending move, counted {}", self.moves_pending));
        }
        for (index, desc) in self.irqs.iter().enumerate() {
            let active = desc.state == IrqState::Active;
            if active != desc.vector.is_some() {
                return Err(format!("irq {index}: state {:?} with vector {:?}", desc.state, desc.vector));
            }
            if desc.prev_vector.is_some() && !active {
                return Err(format!("irq {index}: pending move while {:?}", desc.state));
            }
            if desc.has_reserved && (desc.is_managed || desc.state != IrqState::Reserved) {
                return Err(format!("irq {index}: reservation while {:?}", desc.state));
            }
            if desc.state == IrqState::ManagedShutdown && !desc.is_managed {
                return Err(format!("irq {index}: non-managed interrupt in managed shutdown"));
            }
            if desc.has_reserved {
                reserved_count += 1;
            }
            if desc.is_managed && desc.state != IrqState::Freed {
                for cpu in desc.affinity.iter() {
                    managed_count[cpu.0 as usize] += 1;
                }
            }
            if let Some((cpu, _)) = desc.vector
                && !self.cpu_online_mask.contains(cpu)
                && !desc.stale
            {
                return Err(format!("irq {index}: targets offline cpu {} without being stale", cpu.0));
            }
            for (cpu, vector) in desc.vector.iter().chain(desc.prev_vector.iter()) {
                claim(*cpu, *vector, "irq")?;
                let cm = self.matrix.cpumap(*cpu).expect("known cpu");
                if cm.is_managed(*vector) != desc.is_managed {
                    return Err(format!("irq {index}: managed flag disagrees with managed_map at {:#x}", vector.0));
                }
            }
        }
        for cpu in 0..cpu_count {
            let cm = self.matrix.cpumap(CpuId(cpu)).expect("known cpu");
            if cm.alloc_map != owned[cpu as usize] {
                return Err(format!(
                    "cpu {cpu}: alloc_map {} != owned vectors {}",
                    bitmap_list(cm.alloc_map.iter()),
                    bitmap_list(owned[cpu as usize].iter())
                ));
            }
            if cm.managed != managed_count[cpu as usize] {
                return Err(format!(
                    "cpu {cpu}: managed {} != managed interrupts with it in their mask {}",
                    cm.managed, managed_count[cpu as usize]
                ));
            }
        }
        if self.matrix.reserved() != reserved_count {
            return Err(format!(
                "global_reserved {} != interrupts holding a reservation {reserved_count}",
                self.matrix.reserved()
            ));
        }
        Ok(())
    }

    /// The matrix's debugfs table ([`VectorMatrix::debug_table`]).
    pub fn debug_table(&self) -> String {
        self.matrix.debug_table()
    }

    /// The matrix's per-CPU rows as data ([`VectorMatrix::debug_rows`]).
    pub fn debug_rows(&self) -> (Vec<String>, Vec<Vec<String>>) {
        self.matrix.debug_rows()
    }
}
