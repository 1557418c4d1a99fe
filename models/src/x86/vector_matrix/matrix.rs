//! [`VectorMatrix`]: the port of `kernel/irq/matrix.c`, the per-CPU bitmap
//! allocator with its global counters ([`CpuMap`] is one CPU's `struct cpumap`),
//! set up as x86 boots it, plus [`Reservation`], the outcome of a global
//! reservation. Its debugfs table is in `matrix/debugfs.rs`, its tests in
//! `matrix/tests.rs`.

mod debugfs;
#[cfg(test)]
mod tests;

use super::bitmap::VectorBitmap;
use super::cpuset::CpuSet;
use super::era::{
    APIC_SYSTEM_VECTORS_SHOWN, EXCEPTION_VECTORS_SHOWN, FIRST_EXTERNAL_VECTOR, IA32_SYSCALL_VECTOR,
    IRQ_MOVE_CLEANUP_VECTOR, KernelEra, MatrixParams, NR_IRQS_LEGACY, NR_VECTORS, PIC_CASCADE_IR,
    POSTED_MSI_NOTIFICATION_VECTOR, isa_irq_vector,
};
use super::error::MatrixError;
use crate::ids::{CpuId, Vector};

/// Result of [`VectorMatrix::reserve`]: the kernel only warns on over-reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved within the globally available vectors.
    Reserved,
    /// Reserved although `global_reserved` already equalled `global_available`
    /// ("Interrupt reservation exceeds available resources").
    ExceedsAvailable,
}

/// One CPU's allocation state (matrix.c `struct cpumap`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuMap {
    available: u32,
    allocated: u32,
    pub(super) managed: u32,
    managed_allocated: u32,
    initialized: bool,
    online: bool,
    pub(super) alloc_map: VectorBitmap,
    managed_map: VectorBitmap,
    /// Not in the kernel: managed reservations minus removals made while the
    /// CPU was offline after its first online, which the kernel leaves out of
    /// `available` (wrapping). Lets [`VectorMatrix::check_invariants`] state
    /// the `available` identity exactly.
    available_drift: u32,
}

impl CpuMap {
    /// Vectors this CPU can still hand out (`available`): not system, not
    /// managed-reserved, not allocated as regular. Up to the accounting drift.
    pub fn available(&self) -> u32 {
        self.available
    }

    /// Allocated vectors, regular and managed (`allocated`).
    pub fn allocated(&self) -> u32 {
        self.allocated
    }

    /// Managed vectors reserved on this CPU (`managed`).
    pub fn managed(&self) -> u32 {
        self.managed
    }

    /// Managed vectors allocated on this CPU (`managed_allocated`).
    pub fn managed_allocated(&self) -> u32 {
        self.managed_allocated
    }

    /// Whether the CPU has been online at least once (`initialized`).
    pub fn is_initialized(&self) -> bool {
        self.initialized
    }

    /// Whether the CPU's map is online (`online`).
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Whether `vector` is set in `alloc_map`.
    pub fn is_allocated(&self, vector: Vector) -> bool {
        self.alloc_map.test(u32::from(vector.0))
    }

    /// Whether `vector` is set in `managed_map` (reserved for a managed interrupt).
    pub fn is_managed(&self, vector: Vector) -> bool {
        self.managed_map.test(u32::from(vector.0))
    }

    /// The vectors set in `alloc_map`, ascending.
    pub fn allocated_vectors(&self) -> Vec<Vector> {
        self.alloc_map.iter().map(|bit| Vector(bit as u8)).collect()
    }
}

/// The per-CPU vector allocator (matrix.c `struct irq_matrix`), set up as x86 boots it.
#[derive(Clone, Debug)]
pub struct VectorMatrix {
    pub(super) params: MatrixParams,
    matrix_bits: u32,
    alloc_start: u32,
    alloc_end: u32,
    alloc_size: u32,
    global_available: u32,
    global_reserved: u32,
    systembits_inalloc: u32,
    total_allocated: u32,
    online_maps: u32,
    maps: Vec<CpuMap>,
    system_map: VectorBitmap,
    /// Not in the kernel: frees on offline CPUs, which the kernel leaves in
    /// `total_allocated`. Lets the invariants state `total_allocated` exactly.
    offline_free_count: u32,
}

impl VectorMatrix {
    /// Builds the matrix as x86 boots it and brings every CPU online.
    ///
    /// Follows `arch_early_irq_init` (`irq_alloc_matrix(NR_VECTORS,
    /// FIRST_EXTERNAL_VECTOR, FIRST_SYSTEM_VECTOR)`), then
    /// `lapic_assign_system_vectors` (system vectors, the PIC cascade, online
    /// the boot CPU, assign the ISA vectors), then `lapic_online` for CPUs
    /// 1.. in order.
    ///
    /// # Panics
    ///
    /// If `params.cpu_count` is 0 (scenario validation must reject it).
    // Long (65 lines): one straight boot sequence in the kernel's order; splitting it would hide that order.
    pub fn new(params: MatrixParams) -> VectorMatrix {
        assert!(params.cpu_count > 0, "a matrix needs at least the boot CPU");
        let alloc_start = u32::from(FIRST_EXTERNAL_VECTOR.0);
        let alloc_end = u32::from(params.era.first_system_vector().0);
        let empty_map = CpuMap {
            available: 0,
            allocated: 0,
            managed: 0,
            managed_allocated: 0,
            initialized: false,
            online: false,
            alloc_map: VectorBitmap::default(),
            managed_map: VectorBitmap::default(),
            available_drift: 0,
        };
        let mut matrix = VectorMatrix {
            matrix_bits: NR_VECTORS,
            alloc_start,
            alloc_end,
            alloc_size: alloc_end - alloc_start,
            global_available: 0,
            global_reserved: 0,
            systembits_inalloc: 0,
            total_allocated: 0,
            online_maps: 0,
            maps: vec![empty_map; params.cpu_count as usize],
            system_map: VectorBitmap::default(),
            offline_free_count: 0,
            params,
        };

        // idt.c: the vectors idt_setup_* marks in `system_vectors`.
        let mut system_vectors = VectorBitmap::from_range(EXCEPTION_VECTORS_SHOWN);
        if matrix.params.era.has_irq_move_cleanup_vector() {
            system_vectors.set(u32::from(IRQ_MOVE_CLEANUP_VECTOR.0));
        }
        if matrix.params.ia32_emulation {
            system_vectors.set(u32::from(IA32_SYSCALL_VECTOR.0));
        }
        if matrix.params.era == KernelEra::From6_10 {
            system_vectors.set(u32::from(POSTED_MSI_NOTIFICATION_VECTOR.0));
        }
        for vector in APIC_SYSTEM_VECTORS_SHOWN {
            system_vectors.set(u32::from(vector));
        }

        // lapic_assign_system_vectors()
        for bit in system_vectors.iter() {
            matrix.assign_system(bit);
        }
        if matrix.params.legacy_pic {
            matrix.assign_system(u32::from(isa_irq_vector(PIC_CASCADE_IR).0));
        }
        let boot_cpu = CpuId(0);
        matrix.online(boot_cpu).expect("the boot CPU starts offline");
        if matrix.params.legacy_pic {
            for irq in (0..NR_IRQS_LEGACY).filter(|&irq| irq != PIC_CASCADE_IR) {
                matrix.assign(boot_cpu, u32::from(isa_irq_vector(irq).0));
            }
        }
        for cpu in 1..matrix.params.cpu_count {
            matrix.online(CpuId(cpu)).expect("secondary CPUs start offline");
        }
        matrix
    }

    /// The parameters the matrix was built with.
    pub fn params(&self) -> &MatrixParams {
        &self.params
    }

    /// One CPU's map, or `None` for a CPU beyond `cpu_count`.
    pub fn cpumap(&self, cpu: CpuId) -> Option<&CpuMap> {
        self.maps.get(cpu.0 as usize)
    }

    /// First allocatable vector (`alloc_start`).
    pub fn alloc_start(&self) -> Vector {
        Vector(self.alloc_start as u8)
    }

    /// First vector past the allocatable range (`alloc_end`, i.e. `FIRST_SYSTEM_VECTOR`).
    pub fn alloc_end(&self) -> Vector {
        Vector(self.alloc_end as u8)
    }

    /// Whether `vector` is a system vector (`system_map`).
    pub fn is_system_vector(&self, vector: Vector) -> bool {
        self.system_map.test(u32::from(vector.0))
    }

    /// Number of system vectors inside the allocation range (`systembits_inalloc`).
    pub fn systembits_inalloc(&self) -> u32 {
        self.systembits_inalloc
    }

    /// Vectors allocated over the run minus those freed on online CPUs (`total_allocated`).
    pub fn total_allocated(&self) -> u32 {
        self.total_allocated
    }

    /// Number of online CPU maps (`online_maps`).
    pub fn online_maps(&self) -> u32 {
        self.online_maps
    }

    fn map_index(&self, cpu: CpuId) -> Result<usize, MatrixError> {
        if cpu.0 < self.params.cpu_count { Ok(cpu.0 as usize) } else { Err(MatrixError::Invalid) }
    }

    /// CPUs of `msk` that exist (`for_each_cpu` stops at `nr_cpu_ids`), ascending; an
    /// iterator, not a list (one allocation per interrupt at a million queues' set-up).
    fn mask_indices(cpu_count: u32, msk: &CpuSet) -> impl Iterator<Item = usize> + '_ {
        msk.iter().take_while(move |cpu| cpu.0 < cpu_count).map(|cpu| cpu.0 as usize)
    }

    /// `irq_matrix_assign_system` (boot only, `replace == false`): marks `bit`
    /// as a system vector on every CPU.
    fn assign_system(&mut self, bit: u32) {
        assert!(bit < self.matrix_bits);
        assert!(self.online_maps == 0, "system vectors are assigned before any CPU is online");
        self.system_map.set(bit);
        if bit >= self.alloc_start && bit < self.alloc_end {
            self.systembits_inalloc += 1;
        }
    }

    /// `irq_matrix_assign`: marks a preallocated vector (the ISA vectors) on `cpu`.
    fn assign(&mut self, cpu: CpuId, bit: u32) {
        assert!(bit >= self.alloc_start && bit < self.alloc_end, "assign outside the allocation range");
        let cm = &mut self.maps[cpu.0 as usize];
        assert!(!cm.alloc_map.test(bit), "vector {bit:#x} assigned twice");
        cm.alloc_map.set(bit);
        cm.allocated += 1;
        cm.available = cm.available.wrapping_sub(1);
        self.total_allocated += 1;
        self.global_available = self.global_available.wrapping_sub(1);
    }

    /// `irq_matrix_online`: brings `cpu`'s map online. The first time, its
    /// `available` is computed as `alloc_size - managed - systembits_inalloc`;
    /// later it is kept as it was.
    pub fn online(&mut self, cpu: CpuId) -> Result<(), MatrixError> {
        let index = self.map_index(cpu)?;
        let cm = &mut self.maps[index];
        if cm.online {
            return Err(MatrixError::Invalid);
        }
        if !cm.initialized {
            cm.available = self.alloc_size.wrapping_sub(cm.managed + self.systembits_inalloc);
            cm.initialized = true;
        }
        self.global_available = self.global_available.wrapping_add(cm.available);
        cm.online = true;
        self.online_maps += 1;
        Ok(())
    }

    /// `irq_matrix_offline`: takes `cpu`'s map offline; its vectors leave
    /// `global_available`, its allocations stay.
    pub fn offline(&mut self, cpu: CpuId) -> Result<(), MatrixError> {
        let index = self.map_index(cpu)?;
        let cm = &mut self.maps[index];
        if !cm.online {
            return Err(MatrixError::Invalid);
        }
        self.global_available = self.global_available.wrapping_sub(cm.available);
        cm.online = false;
        self.online_maps -= 1;
        Ok(())
    }

    /// `matrix_alloc_area` for one vector: the lowest bit of the allocation
    /// range that is in none of `managed_map`, `system_map`, `alloc_map`; it is
    /// set in `managed_map` (managed) or `alloc_map` (regular).
    fn alloc_area(&mut self, index: usize, managed: bool) -> Option<u32> {
        let cm = &mut self.maps[index];
        let scratch_map = cm.managed_map.or(&self.system_map).or(&cm.alloc_map);
        let bit = scratch_map.find_first_zero(self.alloc_start, self.alloc_end);
        if bit >= self.alloc_end {
            return None;
        }
        if managed {
            cm.managed_map.set(bit);
        } else {
            cm.alloc_map.set(bit);
        }
        Some(bit)
    }

    /// `matrix_find_best_cpu`: the online CPU of `msk` with the most available
    /// vectors; ties go to the first. A CPU with none available is never chosen.
    fn find_best_cpu(&self, msk: &CpuSet) -> Option<usize> {
        let mut best_cpu = None;
        let mut maxavl = 0;
        for index in Self::mask_indices(self.params.cpu_count, msk) {
            let cm = &self.maps[index];
            if !cm.online || cm.available <= maxavl {
                continue;
            }
            best_cpu = Some(index);
            maxavl = cm.available;
        }
        best_cpu
    }

    /// `matrix_find_best_cpu_managed`: the online CPU of `msk` with the fewest
    /// managed vectors allocated; ties go to the last.
    fn find_best_cpu_managed(&self, msk: &CpuSet) -> Option<usize> {
        let mut best_cpu = None;
        let mut allocated = u32::MAX;
        for index in Self::mask_indices(self.params.cpu_count, msk) {
            let cm = &self.maps[index];
            if !cm.online || cm.managed_allocated > allocated {
                continue;
            }
            best_cpu = Some(index);
            allocated = cm.managed_allocated;
        }
        best_cpu
    }

    /// `irq_matrix_reserve_managed`: reserves one vector in `managed_map` on
    /// every CPU of `msk`, online or not (not necessarily the same vector on
    /// each). On the first CPU without a free vector, the reservations already
    /// made are removed again and `NoSpace` is returned.
    pub fn reserve_managed(&mut self, msk: &CpuSet) -> Result<(), MatrixError> {
        let indices: Vec<usize> = Self::mask_indices(self.params.cpu_count, msk).collect();
        for (position, &index) in indices.iter().enumerate() {
            if self.alloc_area(index, true).is_none() {
                for &done in &indices[..position] {
                    self.remove_managed_one(done);
                }
                return Err(MatrixError::NoSpace);
            }
            let cm = &mut self.maps[index];
            cm.managed += 1;
            if cm.online {
                cm.available = cm.available.wrapping_sub(1);
                self.global_available = self.global_available.wrapping_sub(1);
            } else if cm.initialized {
                cm.available_drift = cm.available_drift.wrapping_add(1);
            }
        }
        Ok(())
    }

    /// `irq_matrix_remove_managed`: removes one unallocated managed
    /// reservation (the lowest) on every CPU of `msk`. A CPU with none is
    /// skipped, as the kernel does after its `WARN_ON_ONCE`.
    pub fn remove_managed(&mut self, msk: &CpuSet) {
        for index in Self::mask_indices(self.params.cpu_count, msk) {
            self.remove_managed_one(index);
        }
    }

    fn remove_managed_one(&mut self, index: usize) {
        let cm = &mut self.maps[index];
        if cm.managed == 0 {
            return;
        }
        let scratch_map = cm.managed_map.andnot(&cm.alloc_map);
        let bit = scratch_map.find_first_bit(0, self.alloc_end);
        if bit >= self.alloc_end {
            return;
        }
        cm.managed_map.clear(bit);
        cm.managed -= 1;
        if cm.online {
            cm.available = cm.available.wrapping_add(1);
            self.global_available = self.global_available.wrapping_add(1);
        } else if cm.initialized {
            cm.available_drift = cm.available_drift.wrapping_sub(1);
        }
    }

    /// `irq_matrix_alloc_managed`: allocates a reserved managed vector (the
    /// lowest) on the online CPU of `msk` with the fewest managed vectors
    /// allocated (ties to the last CPU).
    pub fn alloc_managed(&mut self, msk: &CpuSet) -> Result<(CpuId, Vector), MatrixError> {
        if msk.is_empty() {
            return Err(MatrixError::Invalid);
        }
        let index = self.find_best_cpu_managed(msk).ok_or(MatrixError::NoSpace)?;
        let cm = &mut self.maps[index];
        let scratch_map = cm.managed_map.andnot(&cm.alloc_map);
        let bit = scratch_map.find_first_bit(0, self.alloc_end);
        if bit >= self.alloc_end {
            return Err(MatrixError::NoSpace);
        }
        cm.alloc_map.set(bit);
        cm.allocated += 1;
        cm.managed_allocated += 1;
        self.total_allocated += 1;
        Ok((CpuId(index as u32), Vector(bit as u8)))
    }

    /// `irq_matrix_reserve`: book-keeping only; one more interrupt holds a
    /// global reservation (reservation mode). Never fails; over-reservation is
    /// reported, as the kernel's warning.
    pub fn reserve(&mut self) -> Reservation {
        let reservation = if self.global_reserved == self.global_available {
            Reservation::ExceedsAvailable
        } else {
            Reservation::Reserved
        };
        self.global_reserved = self.global_reserved.wrapping_add(1);
        reservation
    }

    /// `irq_matrix_remove_reserved`: undoes [`VectorMatrix::reserve`] for an
    /// interrupt that never got a vector.
    pub fn remove_reserved(&mut self) {
        self.global_reserved = self.global_reserved.wrapping_sub(1);
    }

    /// `irq_matrix_alloc`: allocates a regular vector (the lowest free one) on
    /// the online CPU of `msk` with the most available vectors (ties to the
    /// first CPU). `reserved` consumes a global reservation.
    pub fn alloc(&mut self, msk: &CpuSet, reserved: bool) -> Result<(CpuId, Vector), MatrixError> {
        if msk.is_empty() {
            return Err(MatrixError::Invalid);
        }
        let index = self.find_best_cpu(msk).ok_or(MatrixError::NoSpace)?;
        let bit = self.alloc_area(index, false).ok_or(MatrixError::NoSpace)?;
        let cm = &mut self.maps[index];
        cm.allocated += 1;
        cm.available = cm.available.wrapping_sub(1);
        self.total_allocated += 1;
        self.global_available = self.global_available.wrapping_sub(1);
        if reserved {
            self.global_reserved = self.global_reserved.wrapping_sub(1);
        }
        Ok((CpuId(index as u32), Vector(bit as u8)))
    }

    /// `irq_matrix_free`: frees `vector` on `cpu`. A managed vector stays
    /// reserved (not available); a regular one becomes available again.
    ///
    /// `Invalid` where the kernel would `WARN_ON_ONCE` and return (vector
    /// outside the range, or not allocated), and also, stricter than the
    /// kernel, when `managed` disagrees with `managed_map` (the kernel would
    /// corrupt its counters).
    pub fn free(&mut self, cpu: CpuId, vector: Vector, managed: bool) -> Result<(), MatrixError> {
        let index = self.map_index(cpu)?;
        let bit = u32::from(vector.0);
        if bit < self.alloc_start || bit >= self.alloc_end {
            return Err(MatrixError::Invalid);
        }
        let cm = &mut self.maps[index];
        if !cm.alloc_map.test(bit) || cm.managed_map.test(bit) != managed {
            return Err(MatrixError::Invalid);
        }
        cm.alloc_map.clear(bit);
        cm.allocated -= 1;
        if managed {
            cm.managed_allocated -= 1;
        }
        if cm.online {
            self.total_allocated -= 1;
        } else {
            self.offline_free_count += 1;
        }
        if !managed {
            cm.available = cm.available.wrapping_add(1);
            if cm.online {
                self.global_available = self.global_available.wrapping_add(1);
            }
        }
        Ok(())
    }

    /// `irq_matrix_available`: the globally available vectors; with
    /// `cpudown = Some(cpu)`, without those of `cpu`, which is about to go down
    /// (the kernel's local CPU made explicit; an unknown CPU subtracts nothing).
    pub fn available(&self, cpudown: Option<CpuId>) -> u32 {
        match cpudown.and_then(|cpu| self.cpumap(cpu)) {
            None => self.global_available,
            Some(cm) => self.global_available.wrapping_sub(cm.available),
        }
    }

    /// `irq_matrix_reserved`: the global reservations not yet turned into vectors.
    pub fn reserved(&self) -> u32 {
        self.global_reserved
    }

    /// `irq_matrix_allocated`: vectors allocated on `cpu` that must move when
    /// it goes down. Includes managed vectors up to 6.5, excludes them later
    /// ([`KernelEra::allocated_excludes_managed`]). 0 for an unknown CPU.
    pub fn allocated(&self, cpu: CpuId) -> u32 {
        match self.cpumap(cpu) {
            None => 0,
            Some(cm) if self.params.era.allocated_excludes_managed() => cm.allocated - cm.managed_allocated,
            Some(cm) => cm.allocated,
        }
    }

    /// Checks the invariants that matrix.c keeps implicitly:
    ///
    /// * `online_maps` = number of online maps; `global_available` = Σ
    ///   `available` over online maps (wrapping);
    /// * `systembits_inalloc` = |`system_map` ∩ range|;
    /// * per CPU: `allocated` = |`alloc_map`| (regular and managed together),
    ///   `managed` = |`managed_map`|, `managed_allocated` =
    ///   |`alloc_map` ∩ `managed_map`|; both maps lie inside the allocation
    ///   range and are disjoint from `system_map`;
    /// * per initialised CPU: `available + managed + (allocated −
    ///   managed_allocated) + systembits_inalloc = alloc_size + drift`, where
    ///   drift counts managed reservations minus removals made while it was
    ///   offline (0 unless that happened); an uninitialised CPU has
    ///   `available = allocated = 0` and is offline;
    /// * `total_allocated` = Σ `allocated` over all CPUs + frees done on
    ///   offline CPUs (it is not a clean sum).
    // Long (68 lines): one check per item of the list above, in the list's order, so each reads against its doc line.
    pub fn check_invariants(&self) -> Result<(), String> {
        let range_map = VectorBitmap::from_range(self.alloc_start..self.alloc_end);
        let online_count = self.maps.iter().filter(|cm| cm.online).count() as u32;
        if online_count != self.online_maps {
            return Err(format!("online_maps {} != {online_count} online maps", self.online_maps));
        }
        let available_sum =
            self.maps.iter().filter(|cm| cm.online).fold(0u32, |sum, cm| sum.wrapping_add(cm.available));
        if available_sum != self.global_available {
            return Err(format!("global_available {} != Σ available {available_sum}", self.global_available));
        }
        let systembits = self.system_map.and(&range_map).weight();
        if systembits != self.systembits_inalloc {
            return Err(format!("systembits_inalloc {} != {systembits}", self.systembits_inalloc));
        }
        let mut allocated_sum = 0u32;
        for (index, cm) in self.maps.iter().enumerate() {
            let cpu = index;
            allocated_sum += cm.allocated;
            if cm.allocated != cm.alloc_map.weight() {
                return Err(format!("cpu {cpu}: allocated {} != |alloc_map| {}", cm.allocated, cm.alloc_map.weight()));
            }
            if cm.managed != cm.managed_map.weight() {
                return Err(format!("cpu {cpu}: managed {} != |managed_map| {}", cm.managed, cm.managed_map.weight()));
            }
            let managed_allocated = cm.alloc_map.and(&cm.managed_map).weight();
            if cm.managed_allocated != managed_allocated {
                return Err(format!(
                    "cpu {cpu}: managed_allocated {} != |alloc_map ∩ managed_map| {managed_allocated}",
                    cm.managed_allocated
                ));
            }
            if !cm.alloc_map.andnot(&range_map).is_empty() || !cm.managed_map.andnot(&range_map).is_empty() {
                return Err(format!("cpu {cpu}: a map has a bit outside the allocation range"));
            }
            if !cm.alloc_map.and(&self.system_map).is_empty() || !cm.managed_map.and(&self.system_map).is_empty() {
                return Err(format!("cpu {cpu}: a system vector is allocated or managed"));
            }
            if cm.initialized {
                let accounted = cm
                    .available
                    .wrapping_add(cm.managed)
                    .wrapping_add(cm.allocated - cm.managed_allocated)
                    .wrapping_add(self.systembits_inalloc);
                let expected = self.alloc_size.wrapping_add(cm.available_drift);
                if accounted != expected {
                    return Err(format!(
                        "cpu {cpu}: available {} + managed {} + regular {} + system {} != alloc_size {} + drift {}",
                        cm.available,
                        cm.managed,
                        cm.allocated - cm.managed_allocated,
                        self.systembits_inalloc,
                        self.alloc_size,
                        cm.available_drift as i32
                    ));
                }
            } else if cm.online || cm.available != 0 || cm.allocated != 0 || cm.available_drift != 0 {
                return Err(format!("cpu {cpu}: uninitialised map is online or has vectors"));
            }
        }
        if self.total_allocated != allocated_sum + self.offline_free_count {
            return Err(format!(
                "total_allocated {} != Σ allocated {allocated_sum} + offline frees {}",
                self.total_allocated, self.offline_free_count
            ));
        }
        Ok(())
    }
}
