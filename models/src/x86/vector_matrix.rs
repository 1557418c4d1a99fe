//! The x86 vector matrix: Linux's per-CPU interrupt-vector allocator and the x86 vector-domain policy on top of it.
//!
//! Two layers live here. [`VectorMatrix`] is a port of `kernel/irq/matrix.c`
//! (the bitmap allocator: per-CPU `cpumap`s plus global counters, with the
//! kernel's function pairs and names). [`VectorDomain`] is the policy of
//! `arch/x86/kernel/apic/vector.c` and `kernel/irq/cpuhotplug.c` that drives it:
//! reservation mode, the activation fallback order, managed interrupts, CPU
//! hot-unplug and the two-vector move protocol. The kernel's "this CPU" is an
//! explicit [`CpuId`] argument here.
//!
//! # What is modelled
//!
//! * The per-CPU allocatable range `[FIRST_EXTERNAL_VECTOR, FIRST_SYSTEM_VECTOR)`
//!   and its holes, computed at construction from the kernel's arithmetic for
//!   each [`KernelEra`]: the int 0x80 gate, the PIC cascade vector
//!   `ISA_IRQ_VECTOR(PIC_CASCADE_IR)`, `IRQ_MOVE_CLEANUP_VECTOR` up to 6.5, and
//!   the 15 ISA vectors the boot CPU holds when a legacy PIC exists
//!   (`lapic_assign_system_vectors`).
//! * Every counter and bitmap of `struct cpumap` and `struct irq_matrix`,
//!   updated exactly as matrix.c updates them, including the quirks:
//!   `total_allocated` is not decremented by a free on an offline CPU, and a
//!   managed reservation or removal on an offline, already initialised CPU
//!   does not touch its `available` count (the "accounting drift" row of
//!   calibration.md). Counters are `u32` with wrapping arithmetic where the
//!   kernel's `unsigned int` could wrap.
//! * Placement policy: `matrix_find_best_cpu` (most available, ties to the
//!   first CPU; a CPU with 0 available is never chosen) and
//!   `matrix_find_best_cpu_managed` (fewest managed allocated, ties to the last
//!   CPU); the lowest free bit inside a CPU.
//! * Reservation mode for non-managed interrupts (a global count at
//!   allocation, a real vector at activation) and the activation fallback
//!   order since v5.11: node ∩ affinity → affinity → node → all online CPUs,
//!   with "Affinity broken due to vector space exhaustion" when the vector
//!   lands outside the affinity mask.
//! * Managed interrupts: one vector reserved on every CPU of the mask at
//!   allocation, the vector allocated at activation; shut down (not migrated)
//!   when the last online CPU of the mask goes away, restarted when one comes
//!   back.
//! * CPU unplug: `lapic_can_unplug_cpu` (refusal with the kernel's message),
//!   `irq_force_complete_move`, `migrate_one_irq` (including broken affinity
//!   and, from the 6.10 era, the retry with the online mask), then
//!   `irq_matrix_offline`.
//! * The move protocol: an affinity change allocates the new vector and keeps
//!   the old one until the first interrupt on the new vector
//!   ([`VectorDomain::complete_move`]); a second move meanwhile gets `-EBUSY`.
//!   Before 6.10 the old vector leaks when its CPU went offline in between.
//!
//! # What is not modelled (and why)
//!
//! * Time. The cleanup IPI (≤ 6.5) or timer (6.6+) that frees the old vector
//!   after the first interrupt on the new one is collapsed into
//!   [`VectorDomain::complete_move`]; the window in which the cleanup is
//!   queued but not yet run is not represented. The simulator's event layer
//!   owns time.
//! * The IO-APIC taking over the ISA interrupts and releasing most of the
//!   boot CPU's 15 ISA vectors (`vector_configure_legacy`): the boot CPU keeps
//!   all 15 here, which is the worst case.
//! * `system_map` outside the allocation range. Only its bits inside
//!   `[alloc_start, alloc_end)` influence allocation; the bits outside are an
//!   approximation of one configuration (exceptions 0-19 and the APIC system
//!   vectors of a public 64-bit debugfs dump without Hyper-V), used only by
//!   [`VectorMatrix::debug_table`]'s "System:" line.
//! * Multi-vector (contiguous) allocation: the x86 vector domain refuses it
//!   without interrupt remapping (calibration.md §4, "PCI MSI vectors per
//!   function").
//! * The deferred affinity change of interrupts without `IRQD_MOVE_PCNTXT`
//!   (applied at the next interrupt): affinity changes act at once.
//! * The pre-6.11 replacement of the caller's affinity by
//!   online ∩ default ∩ node at startup: the affinity given is used as is.
//! * Stable backports. An era is the mainline release range; a fix that was
//!   backported to an older stable series is attributed to its mainline era
//!   only (see [`KernelEra`]).
//! * Offlining the boot CPU (x86 has no CPU0 hotplug since 6.3) and the last
//!   online CPU: both are refused with `-EBUSY`.
//!
//! # Parameters and their sources
//!
//! | parameter | value | source |
//! |---|---|---|
//! | `FIRST_EXTERNAL_VECTOR`, `NR_VECTORS` | 0x20, 256 | irq_vectors.h; calibration.md §4 "x86 IDT vectors per CPU" |
//! | `FIRST_SYSTEM_VECTOR` (matrix `alloc_end`) | 0xec (`LOCAL_TIMER_VECTOR`) up to 6.9, 0xeb (`POSTED_MSI_NOTIFICATION_VECTOR`) from 6.10 | irq_vectors.h; vector.c `arch_early_irq_init`; calibration.md §4 "Device-allocatable range" |
//! | holes in the range | 0x80 (`IA32_SYSCALL_VECTOR`, if IA32 emulation), 0x32 (`ISA_IRQ_VECTOR(PIC_CASCADE_IR)`, with a PIC), 0x20 (`IRQ_MOVE_CLEANUP_VECTOR`, ≤ 6.5) | idt.c; vector.c `lapic_assign_system_vectors`; calibration.md §4 "Holes inside that range" |
//! | boot-CPU ISA vectors | `ISA_IRQ_VECTOR(i)` for i in 0..`NR_IRQS_LEGACY` except the cascade | vector.c `lapic_assign_system_vectors` |
//! | resulting vectors per CPU | 201 / 202 / 201 (≤ 6.5 / 6.6–6.9 / ≥ 6.10) with a PIC, one more without; computed, never stored | calibration.md §4 "Usable device vectors per CPU (Linux)" |
//! | best-CPU tie rules | first CPU (regular), last CPU (managed) | matrix.c; calibration.md "Era differences" |
//! | activation fallback order | node ∩ affinity → affinity → node → online | vector.c `assign_irq_vector_any_locked` (tglx, Dec 2020, v5.11); calibration.md §4 "Non-managed IRQ allocation" |
//! | unplug count (`irq_matrix_allocated`) | includes managed vectors ≤ 6.5; excludes them from the 6.6 era on | matrix.c, a0b0bad10587 (6.7, 6.6.2 stable); calibration.md §4 "CPU unplug refused" |
//! | old vector freed when its CPU is offline | from 6.10 | vector.c, "x86/vector: Fix vector leak during CPU offline"; calibration.md "Era differences" |
//! | retry with the online mask on `-ENOSPC` at unplug | from the 6.10 era (mainline 6.11, tagged for stable) | cpuhotplug.c 88d724e2301a; calibration.md "Era differences" |
//! | debugfs table layout | `irq_matrix_debug_show`, indentation 1 as in `/sys/kernel/debug/irq/domains/VECTOR` | matrix.c; kernel/irq/irqdomain.c `irq_domain_debug_show_one` |

use std::fmt;
use std::ops::Range;

// ---------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------

// CPUs (the kernel's `unsigned int cpu`; CPU 0 is the boot CPU) and IDT vectors are the
// crate-wide ids.
pub use crate::ids::{CpuId, Vector};

/// An interrupt in the [`VectorDomain`]'s IRQ table (0-based index; the kernel's virq).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IrqId(pub u32);

/// A NUMA node: an index into the node table given to [`VectorDomain::new`]
/// (the kernel's `cpumask_of_node(node)`; `None` stands for `NUMA_NO_NODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

// ---------------------------------------------------------------------------
// Kernel constants (arch/x86/include/asm/irq_vectors.h, vector.c)
// ---------------------------------------------------------------------------

/// `NR_VECTORS`: IDT entries per CPU, and the width of the matrix (`matrix_bits`).
pub const NR_VECTORS: u32 = 256;

/// `FIRST_EXTERNAL_VECTOR`: the first vector external interrupts may use; the matrix's `alloc_start`.
pub const FIRST_EXTERNAL_VECTOR: Vector = Vector(0x20);

/// `IRQ_MOVE_CLEANUP_VECTOR` (up to 6.5): a system vector at `FIRST_EXTERNAL_VECTOR`.
pub const IRQ_MOVE_CLEANUP_VECTOR: Vector = FIRST_EXTERNAL_VECTOR;

/// `IA32_SYSCALL_VECTOR`: the int 0x80 system-call gate of IA32 emulation.
pub const IA32_SYSCALL_VECTOR: Vector = Vector(0x80);

/// `LOCAL_TIMER_VECTOR`: `FIRST_SYSTEM_VECTOR` up to 6.9.
pub const LOCAL_TIMER_VECTOR: Vector = Vector(0xec);

/// `POSTED_MSI_NOTIFICATION_VECTOR`: `FIRST_SYSTEM_VECTOR` from 6.10.
pub const POSTED_MSI_NOTIFICATION_VECTOR: Vector = Vector(0xeb);

/// `NR_IRQS_LEGACY`: interrupt lines of the legacy PIC pair.
pub const NR_IRQS_LEGACY: u32 = 16;

/// `PIC_CASCADE_IR`: the PIC line the slave PIC cascades into.
pub const PIC_CASCADE_IR: u32 = 2;

/// `ISA_IRQ_VECTOR(irq)`: the vector of legacy ISA interrupt `irq`, i.e. the
/// first 16-aligned vector above `FIRST_EXTERNAL_VECTOR` plus `irq`.
pub const fn isa_irq_vector(irq: u32) -> Vector {
    assert!(irq < NR_IRQS_LEGACY);
    let base = (FIRST_EXTERNAL_VECTOR.0 as u32 + 16) & !15;
    Vector((base + irq) as u8)
}

/// Exception vectors set in `system_vectors` by `idt_setup_traps` (config
/// dependent; 0-19 as in a public debugfs dump). Outside the allocation range:
/// they only show in [`VectorMatrix::debug_table`].
const EXCEPTION_VECTORS_SHOWN: Range<u32> = 0..20;

/// APIC system vectors at or above `LOCAL_TIMER_VECTOR` that a 64-bit kernel
/// without Hyper-V registers (`apic_idts`): timer 0xec, KVM posted 0xf0-0xf2,
/// deferred error 0xf4, irq-work 0xf6 up to spurious 0xff. Outside the
/// allocation range: they only show in [`VectorMatrix::debug_table`].
const APIC_SYSTEM_VECTORS_SHOWN: [u8; 15] =
    [0xec, 0xf0, 0xf1, 0xf2, 0xf4, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff];

// ---------------------------------------------------------------------------
// Eras and parameters
// ---------------------------------------------------------------------------

/// The Linux release range whose vector-allocator behaviour is modelled.
///
/// Differences are read from the kernel sources (calibration.md §4 and its
/// "Era differences" table); each is exposed as a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KernelEra {
    /// Up to and including 6.5: cleanup IPI on `IRQ_MOVE_CLEANUP_VECTOR`.
    UpTo6_5,
    /// 6.6 to 6.9: cleanup by timer, `FIRST_SYSTEM_VECTOR` still `LOCAL_TIMER_VECTOR`.
    V6_6To6_9,
    /// 6.10 and later: `FIRST_SYSTEM_VECTOR` is `POSTED_MSI_NOTIFICATION_VECTOR`.
    From6_10,
}

impl KernelEra {
    /// All eras, oldest first.
    pub const ALL: [KernelEra; 3] = [KernelEra::UpTo6_5, KernelEra::V6_6To6_9, KernelEra::From6_10];

    /// `FIRST_SYSTEM_VECTOR`: the end (exclusive) of the allocation range.
    pub const fn first_system_vector(self) -> Vector {
        match self {
            KernelEra::UpTo6_5 | KernelEra::V6_6To6_9 => LOCAL_TIMER_VECTOR,
            KernelEra::From6_10 => POSTED_MSI_NOTIFICATION_VECTOR,
        }
    }

    /// Whether `IRQ_MOVE_CLEANUP_VECTOR` (0x20) exists as a system vector
    /// (until tip bdc1dad299bb replaced it by a timer callback in 6.6).
    pub const fn has_irq_move_cleanup_vector(self) -> bool {
        matches!(self, KernelEra::UpTo6_5)
    }

    /// Whether `irq_matrix_allocated` (the unplug check's vector count)
    /// excludes managed vectors. Mainline 6.7 and stable 6.6.2 (a0b0bad10587);
    /// the whole 6.6–6.9 era is treated as excluding.
    pub const fn allocated_excludes_managed(self) -> bool {
        !matches!(self, KernelEra::UpTo6_5)
    }

    /// Whether the cleanup after a move frees the old vector when its CPU went
    /// offline meanwhile ("x86/vector: Fix vector leak during CPU offline",
    /// 6.10); older kernels leak it.
    pub const fn frees_moved_vector_of_offline_cpu(self) -> bool {
        matches!(self, KernelEra::From6_10)
    }

    /// Whether a failed (`-ENOSPC`) migration at CPU offline is retried with
    /// the online mask (88d724e2301a: mainline 6.11, tagged for stable;
    /// attributed to the 6.10 era here).
    pub const fn retries_migration_with_online_mask(self) -> bool {
        matches!(self, KernelEra::From6_10)
    }
}

/// Parameters of a [`VectorMatrix`] (and of the [`VectorDomain`] built on it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatrixParams {
    /// Number of possible CPUs (`nr_cpu_ids`); CPU 0 is the boot CPU.
    pub cpu_count: u32,
    /// Kernel release range.
    pub era: KernelEra,
    /// A legacy PIC exists (`nr_legacy_irqs() > 1`): the cascade vector 0x32 is
    /// a system vector and the boot CPU holds the other 15 ISA vectors.
    pub legacy_pic: bool,
    /// IA32 emulation is enabled: vector 0x80 is a system vector.
    pub ia32_emulation: bool,
}

impl MatrixParams {
    /// Parameters with a legacy PIC and IA32 emulation, the common x86-64 setup.
    pub const fn new(cpu_count: u32, era: KernelEra) -> MatrixParams {
        MatrixParams { cpu_count, era, legacy_pic: true, ia32_emulation: true }
    }
}

// ---------------------------------------------------------------------------
// Errors and outcomes
// ---------------------------------------------------------------------------

/// A refused matrix or domain operation, named after the kernel's error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatrixError {
    /// `-ENOSPC`: no vector (or no CPU with a free vector) in the mask.
    NoSpace,
    /// `-EINVAL`: empty mask, unknown CPU/IRQ/vector, or an operation that does
    /// not apply in the current state.
    Invalid,
    /// `-EBUSY`: a move is still pending, or the CPU may not go offline (boot
    /// CPU, last online CPU).
    Busy,
    /// `-ENOSPC` from `lapic_can_unplug_cpu`: the other online CPUs cannot
    /// absorb the outgoing CPU's vectors.
    CannotUnplug {
        /// The CPU that was to go offline.
        cpu: CpuId,
        /// Its vectors to move (`irq_matrix_allocated`).
        vectors: u32,
        /// Vectors available on the other online CPUs.
        available: u32,
    },
}

impl fmt::Display for MatrixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatrixError::NoSpace => write!(f, "no vector space (-ENOSPC)"),
            MatrixError::Invalid => write!(f, "invalid argument (-EINVAL)"),
            MatrixError::Busy => write!(f, "busy (-EBUSY)"),
            MatrixError::CannotUnplug { cpu, vectors, available } => {
                write!(f, "CPU {} has {} vectors, {} available. Cannot disable CPU", cpu.0, vectors, available)
            }
        }
    }
}

impl std::error::Error for MatrixError {}

/// Result of [`VectorMatrix::reserve`]: the kernel only warns on over-reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved within the globally available vectors.
    Reserved,
    /// Reserved although `global_reserved` already equalled `global_available`
    /// ("Interrupt reservation exceeds available resources").
    ExceedsAvailable,
}

// ---------------------------------------------------------------------------
// CpuSet: a sorted CPU bitset (the kernel's cpumask)
// ---------------------------------------------------------------------------

/// A set of CPUs (the kernel's `cpumask`), iterated in ascending order.
///
/// Stored as 64-bit words with no trailing zero word, so equal sets compare equal.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuSet {
    words: Vec<u64>,
}

impl CpuSet {
    /// The empty set.
    pub fn new() -> CpuSet {
        CpuSet::default()
    }

    /// The CPUs `range.start..range.end`.
    pub fn from_range(range: Range<u32>) -> CpuSet {
        range.map(CpuId).collect()
    }

    /// Adds `cpu`.
    pub fn insert(&mut self, cpu: CpuId) {
        let word_index = (cpu.0 / 64) as usize;
        if self.words.len() <= word_index {
            self.words.resize(word_index + 1, 0);
        }
        self.words[word_index] |= 1 << (cpu.0 % 64);
    }

    /// Removes `cpu`.
    pub fn remove(&mut self, cpu: CpuId) {
        let word_index = (cpu.0 / 64) as usize;
        if let Some(word) = self.words.get_mut(word_index) {
            *word &= !(1 << (cpu.0 % 64));
        }
        self.trim();
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: CpuId) -> bool {
        let word_index = (cpu.0 / 64) as usize;
        self.words.get(word_index).is_some_and(|word| word & (1 << (cpu.0 % 64)) != 0)
    }

    /// The CPUs in both sets (`cpumask_and`).
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        let mut set = CpuSet { words: self.words.iter().zip(&other.words).map(|(a, b)| a & b).collect() };
        set.trim();
        set
    }

    /// The CPUs in either set (`cpumask_or`).
    pub fn union(&self, other: &CpuSet) -> CpuSet {
        let word_count = self.words.len().max(other.words.len());
        let words =
            (0..word_count).map(|i| self.words.get(i).unwrap_or(&0) | other.words.get(i).unwrap_or(&0)).collect();
        CpuSet { words }
    }

    /// Whether every CPU of `self` is in `other` (`cpumask_subset`).
    pub fn is_subset(&self, other: &CpuSet) -> bool {
        self.words.iter().enumerate().all(|(i, word)| word & !other.words.get(i).unwrap_or(&0) == 0)
    }

    /// Whether the set is empty (`cpumask_empty`).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Number of CPUs in the set (`cpumask_weight`).
    pub fn len(&self) -> u32 {
        self.words.iter().map(|word| word.count_ones()).sum()
    }

    /// The lowest CPU (`cpumask_first`).
    pub fn first(&self) -> Option<CpuId> {
        self.iter().next()
    }

    /// The CPUs in ascending order (`for_each_cpu`).
    pub fn iter(&self) -> impl Iterator<Item = CpuId> + '_ {
        self.words.iter().enumerate().flat_map(|(word_index, &word)| {
            (0..64u32).filter(move |bit| word & (1 << bit) != 0).map(move |bit| CpuId(word_index as u32 * 64 + bit))
        })
    }

    fn trim(&mut self) {
        while self.words.last() == Some(&0) {
            self.words.pop();
        }
    }
}

impl FromIterator<CpuId> for CpuSet {
    fn from_iter<I: IntoIterator<Item = CpuId>>(iter: I) -> CpuSet {
        let mut set = CpuSet::new();
        for cpu in iter {
            set.insert(cpu);
        }
        set
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet[{}]", bitmap_list(self.iter().map(|cpu| cpu.0)))
    }
}

/// Formats ascending bit numbers as the kernel's `%*pbl` ("0-19,32,50").
fn bitmap_list(bits: impl Iterator<Item = u32>) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for bit in bits {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == bit => *last = bit,
            _ => ranges.push((bit, bit)),
        }
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(first, last)| if first == last { format!("{first}") } else { format!("{first}-{last}") })
        .collect();
    parts.join(",")
}

// ---------------------------------------------------------------------------
// VectorBitmap: one CPU's 256-bit vector map
// ---------------------------------------------------------------------------

/// A 256-bit map of vectors (`unsigned long alloc_map[IRQ_MATRIX_SIZE]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct VectorBitmap([u64; 4]);

impl VectorBitmap {
    fn test(&self, bit: u32) -> bool {
        self.0[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }

    fn set(&mut self, bit: u32) {
        self.0[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    fn clear(&mut self, bit: u32) {
        self.0[(bit / 64) as usize] &= !(1 << (bit % 64));
    }

    fn or(&self, other: &VectorBitmap) -> VectorBitmap {
        VectorBitmap(std::array::from_fn(|i| self.0[i] | other.0[i]))
    }

    fn and(&self, other: &VectorBitmap) -> VectorBitmap {
        VectorBitmap(std::array::from_fn(|i| self.0[i] & other.0[i]))
    }

    fn andnot(&self, other: &VectorBitmap) -> VectorBitmap {
        VectorBitmap(std::array::from_fn(|i| self.0[i] & !other.0[i]))
    }

    fn weight(&self) -> u32 {
        self.0.iter().map(|word| word.count_ones()).sum()
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|&word| word == 0)
    }

    /// The bits in `range` (`bitmap_set` over a range).
    fn from_range(range: Range<u32>) -> VectorBitmap {
        let mut map = VectorBitmap::default();
        for bit in range {
            map.set(bit);
        }
        map
    }

    /// `find_first_bit` limited to `[start, end)`; `end` when there is none.
    fn find_first_bit(&self, start: u32, end: u32) -> u32 {
        (start..end).find(|&bit| self.test(bit)).unwrap_or(end)
    }

    /// `find_next_zero_bit` limited to `[start, end)`; `end` when there is none.
    fn find_first_zero(&self, start: u32, end: u32) -> u32 {
        (start..end).find(|&bit| !self.test(bit)).unwrap_or(end)
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..NR_VECTORS).filter(|&bit| self.test(bit))
    }
}

// ---------------------------------------------------------------------------
// VectorMatrix: kernel/irq/matrix.c
// ---------------------------------------------------------------------------

/// One CPU's allocation state (matrix.c `struct cpumap`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuMap {
    available: u32,
    allocated: u32,
    managed: u32,
    managed_allocated: u32,
    initialized: bool,
    online: bool,
    alloc_map: VectorBitmap,
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
    params: MatrixParams,
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

    /// CPUs of `msk` that exist (`for_each_cpu` stops at `nr_cpu_ids`).
    fn mask_indices(&self, msk: &CpuSet) -> Vec<usize> {
        msk.iter().take_while(|cpu| cpu.0 < self.params.cpu_count).map(|cpu| cpu.0 as usize).collect()
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
        for index in self.mask_indices(msk) {
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
        for index in self.mask_indices(msk) {
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
        let indices = self.mask_indices(msk);
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
        for index in self.mask_indices(msk) {
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

    /// The allocator as `irq_matrix_debug_show` prints it in
    /// `/sys/kernel/debug/irq/domains/VECTOR` (indentation 1): four global
    /// lines, the system vectors, then one row per online CPU with `avl`
    /// (available), `man` (managed), `mac` (managed allocated), `act`
    /// (allocated) and the allocated vectors.
    pub fn debug_table(&self) -> String {
        let ind = 1;
        let mut out = String::new();
        out.push_str(&format!("Online bitmaps:   {:6}\n", self.online_maps));
        out.push_str(&format!("Global available: {:6}\n", self.global_available));
        out.push_str(&format!("Global reserved:  {:6}\n", self.global_reserved));
        out.push_str(&format!("Total allocated:  {:6}\n", self.total_allocated));
        out.push_str(&format!("System: {}: {}\n", self.system_map.weight(), bitmap_list(self.system_map.iter())));
        out.push_str(&format!("{:>ind$}| CPU | avl | man | mac | act | vectors\n", " "));
        for (cpu, cm) in self.maps.iter().enumerate().filter(|(_, cm)| cm.online) {
            out.push_str(&format!(
                "{:>ind$} {:4}  {:4}  {:4}  {:4} {:4}  {}\n",
                " ",
                cpu,
                cm.available,
                cm.managed,
                cm.managed_allocated,
                cm.allocated,
                bitmap_list(cm.alloc_map.iter())
            ));
        }
        out
    }
}

// ---------------------------------------------------------------------------
// VectorDomain: arch/x86/kernel/apic/vector.c and kernel/irq/cpuhotplug.c
// ---------------------------------------------------------------------------

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

/// The x86 vector domain: per-interrupt vector state and the Linux policy
/// (vector.c, cpuhotplug.c) on top of a [`VectorMatrix`].
#[derive(Clone, Debug)]
pub struct VectorDomain {
    matrix: VectorMatrix,
    cpu_online_mask: CpuSet,
    nodes: Vec<CpuSet>,
    irqs: Vec<IrqDesc>,
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
        let affinity = self.irqs[index].affinity.clone();
        let node_mask = self.irqs[index].node.map(|node| self.nodes[node.0 as usize].clone());
        // assign_irq_vector_any_locked(), order since v5.11.
        let mut attempts = Vec::with_capacity(4);
        if let Some(node_mask) = &node_mask {
            attempts.push(node_mask.intersection(&affinity));
        }
        attempts.push(affinity.intersection(&self.cpu_online_mask));
        if let Some(node_mask) = node_mask {
            attempts.push(node_mask);
        }
        attempts.push(self.cpu_online_mask.clone());
        for dest in &attempts {
            if self.assign_vector_locked(index, dest).is_ok() {
                let (cpu, vector) = self.irqs[index].vector.expect("assigned");
                let affinity_broken = !affinity.contains(cpu);
                let desc = &mut self.irqs[index];
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
        self.irqs[index].prev_vector = None;
        if let Some((old_cpu, old_vector)) = old {
            if self.cpu_online_mask.contains(old_cpu) {
                self.irqs[index].prev_vector = Some((old_cpu, old_vector));
            } else {
                self.free_vector(old_cpu, old_vector, managed);
            }
        }
        let desc = &mut self.irqs[index];
        desc.vector = Some((newcpu, newvec));
        desc.stale = false;
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
        if let Some((cpu, vector)) = self.irqs[index].prev_vector.take() {
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
        if let Some((cpu, vector)) = self.irqs[index].prev_vector.take() {
            if self.cpu_online_mask.contains(cpu) || self.matrix.params.era.frees_moved_vector_of_offline_cpu() {
                self.free_vector(cpu, vector, managed);
            } else {
                self.leaked_vectors.push((cpu, vector));
            }
        }
        Ok(())
    }

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
        if let Some((prev_cpu, prev_vector)) = self.irqs[index].prev_vector.take() {
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
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BTreeSet;

    // -- Independent restatement of the kernel arithmetic (calibration.md §4) --

    /// `FIRST_SYSTEM_VECTOR` per era, restated from calibration.md, not read from the model.
    fn first_system_vector_of(era: KernelEra) -> u32 {
        match era {
            KernelEra::UpTo6_5 | KernelEra::V6_6To6_9 => 0xec,
            KernelEra::From6_10 => 0xeb,
        }
    }

    /// System vectors inside `[0x20, FIRST_SYSTEM_VECTOR)`, restated from calibration.md.
    fn holes_of(era: KernelEra, legacy_pic: bool, ia32_emulation: bool) -> BTreeSet<u32> {
        let mut holes = BTreeSet::new();
        if era == KernelEra::UpTo6_5 {
            holes.insert(0x20); // IRQ_MOVE_CLEANUP_VECTOR
        }
        if ia32_emulation {
            holes.insert(0x80);
        }
        if legacy_pic {
            holes.insert(0x30 + 2); // ISA_IRQ_VECTOR(2), the cascade
        }
        holes
    }

    fn per_cpu_expected(era: KernelEra, legacy_pic: bool, ia32_emulation: bool) -> u32 {
        let holes = holes_of(era, legacy_pic, ia32_emulation);
        (0x20..first_system_vector_of(era)).filter(|v| !holes.contains(v)).count() as u32
    }

    /// The boot CPU's ISA vectors: 0x30..0x40 except the cascade.
    fn isa_vectors_expected(legacy_pic: bool) -> BTreeSet<u32> {
        if legacy_pic { (0x30..0x40).filter(|&v| v != 0x32).collect() } else { BTreeSet::new() }
    }

    fn params(cpu_count: u32, era: KernelEra, legacy_pic: bool) -> MatrixParams {
        MatrixParams { cpu_count, era, legacy_pic, ia32_emulation: true }
    }

    fn configs() -> Vec<(KernelEra, bool)> {
        KernelEra::ALL.iter().flat_map(|&era| [(era, true), (era, false)]).collect()
    }

    fn cpus(list: &[u32]) -> CpuSet {
        list.iter().map(|&cpu| CpuId(cpu)).collect()
    }

    #[track_caller]
    fn check(matrix: &VectorMatrix) {
        if let Err(error) = matrix.check_invariants() {
            panic!("matrix invariant: {error}");
        }
    }

    #[track_caller]
    fn check_domain(domain: &VectorDomain) {
        if let Err(error) = domain.check_invariants() {
            panic!("domain invariant: {error}");
        }
    }

    fn avail(matrix: &VectorMatrix, cpu: u32) -> u32 {
        matrix.cpumap(CpuId(cpu)).expect("cpu").available()
    }

    fn allocated_on(domain: &VectorDomain, cpu: u32) -> u32 {
        domain.matrix().cpumap(CpuId(cpu)).expect("cpu").allocated()
    }

    /// Allocates and activates a non-managed interrupt; returns it and its activation.
    #[track_caller]
    fn request(domain: &mut VectorDomain, affinity: &[u32], node: Option<u32>) -> (IrqId, Activation) {
        let irq = domain.alloc_irq(cpus(affinity), node.map(NodeId)).expect("alloc_irq");
        check_domain(domain);
        let activation = domain.activate(irq).expect("activate");
        check_domain(domain);
        (irq, activation)
    }

    #[track_caller]
    fn request_managed(domain: &mut VectorDomain, affinity: &[u32]) -> (IrqId, Activation) {
        let irq = domain.alloc_irq_managed(cpus(affinity)).expect("alloc_irq_managed");
        check_domain(domain);
        let activation = domain.activate(irq).expect("activate");
        check_domain(domain);
        (irq, activation)
    }

    #[track_caller]
    fn assigned_cpu(activation: Activation) -> u32 {
        match activation {
            Activation::Assigned { cpu, .. } => cpu.0,
            other => panic!("expected a vector, got {other:?}"),
        }
    }

    /// Fills `cpu` with non-managed interrupts pinned to it, down to `left` available.
    fn fill_cpu(domain: &mut VectorDomain, cpu: u32, left: u32) {
        while avail(domain.matrix(), cpu) > left {
            let (_, activation) = request(domain, &[cpu], None);
            assert_eq!(assigned_cpu(activation), cpu);
        }
    }

    // -- CpuSet and formatting --

    #[test]
    fn cpuset_is_a_sorted_normalised_bitset() {
        let mut set = CpuSet::from_range(62..67);
        assert_eq!(set.iter().map(|cpu| cpu.0).collect::<Vec<_>>(), vec![62, 63, 64, 65, 66]);
        set.remove(CpuId(64));
        set.remove(CpuId(65));
        set.remove(CpuId(66));
        assert_eq!(set, cpus(&[62, 63]), "trailing zero words must not affect equality");
        assert!(set.contains(CpuId(63)) && !set.contains(CpuId(64)) && !set.contains(CpuId(1000)));
        assert_eq!(set.intersection(&cpus(&[1, 63, 100])), cpus(&[63]));
        assert!(cpus(&[63]).is_subset(&set) && !cpus(&[64]).is_subset(&set));
        assert_eq!(set.union(&cpus(&[0])).len(), 3);
        assert!(set.intersection(&cpus(&[0])).is_empty());
        assert_eq!(format!("{:?}", cpus(&[0, 1, 2, 5, 7, 8])), "CpuSet[0-2,5,7-8]");
    }

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
                    assert_eq!(per_cpu, calibration, "{era:?} pic={legacy_pic}: calibration.md §4");
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
                let boot_vectors: BTreeSet<u32> = matrix
                    .cpumap(CpuId(0))
                    .expect("boot cpu")
                    .allocated_vectors()
                    .iter()
                    .map(|v| u32::from(v.0))
                    .collect();
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
        let mut matrix =
            VectorMatrix::new(MatrixParams { legacy_pic: false, ..params(4, KernelEra::V6_6To6_9, false) });
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
        assert_eq!(avail(&matrix, 1), before, "not recomputed on return (calibration.md, era differences)");
        assert_eq!(matrix.cpumap(CpuId(1)).expect("cpu").managed(), 1);
        assert_eq!(matrix.online(CpuId(1)), Err(MatrixError::Invalid));
        assert_eq!(matrix.offline(CpuId(7)), Err(MatrixError::Invalid));
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

    // -- (e) offline / online --

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

    // -- (h) debugfs snapshot --

    #[test]
    fn debug_table_matches_the_kernel_layout() {
        let mut matrix = VectorMatrix::new(params(2, KernelEra::From6_10, true));
        let all = cpus(&[0, 1]);
        matrix.alloc(&all, false).expect("alloc");
        matrix.alloc(&all, false).expect("alloc");
        matrix.reserve_managed(&cpus(&[1])).expect("reserve_managed");
        matrix.alloc_managed(&cpus(&[1])).expect("alloc_managed");
        check(&matrix);
        let expected = "\
Online bitmaps:        2
Global available:    384
Global reserved:       0
Total allocated:      18
System: 38: 0-19,50,128,235-236,240-242,244,246-255
 | CPU | avl | man | mac | act | vectors
     0   186     0     0   15  48-49,51-63
     1   198     1     1    3  32-34
";
        assert_eq!(matrix.debug_table(), expected);
        // The ≤ 6.5 layout of a public dump: "System: 38: 0-19,32,50,128,236,240-242,244,246-255".
        let old = VectorMatrix::new(params(1, KernelEra::UpTo6_5, true));
        assert!(old.debug_table().contains("System: 38: 0-19,32,50,128,236,240-242,244,246-255\n"));
    }

    // -- (g) randomised operation sequences --

    /// SplitMix64 (Steele, Lea, Flood 2014).
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next_u64() % bound
        }

        fn coin(&mut self) -> bool {
            self.next_u64() & 1 == 1
        }

        /// A random subset of `0..=limit` (may be empty; `limit` itself may be out of range).
        fn mask(&mut self, limit: u32) -> CpuSet {
            (0..=limit).filter(|_| self.coin()).map(CpuId).collect()
        }
    }

    /// Runs `run` for seeds `0..seed_count`, or for `SEED` alone when set.
    fn run_seeds(name: &str, seed_count: u64, run: fn(u64) -> Result<(), String>) {
        let seeds: Vec<u64> = match std::env::var("SEED") {
            Ok(seed) => vec![seed.parse().expect("SEED must be an unsigned integer")],
            Err(_) => (0..seed_count).collect(),
        };
        for seed in seeds {
            match std::panic::catch_unwind(|| run(seed)) {
                Ok(Ok(())) => {}
                Ok(Err(message)) => panic!("{name}: seed {seed}: {message}\nreplay: SEED={seed} cargo test {name}"),
                Err(_) => panic!("{name}: seed {seed} panicked (see above)\nreplay: SEED={seed} cargo test {name}"),
            }
        }
    }

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
            (self.start..self.end)
                .find(|v| !self.system.contains(v) && !c.regular.contains(v) && !c.managed.contains(v))
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

    fn random_params(rng: &mut SplitMix64, cpu_count_max: u64) -> MatrixParams {
        MatrixParams {
            cpu_count: 1 + rng.below(cpu_count_max) as u32,
            era: KernelEra::ALL[rng.below(3) as usize],
            legacy_pic: rng.coin(),
            ia32_emulation: rng.below(4) != 0,
        }
    }

    fn matrix_against_reference(seed: u64) -> Result<(), String> {
        let mut rng = SplitMix64(seed);
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

    fn domain_operations(seed: u64) -> Result<(), String> {
        let mut rng = SplitMix64(seed);
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
}
