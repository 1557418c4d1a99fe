//! The kernel side of the vector space: the vector constants of
//! `arch/x86/include/asm/irq_vectors.h` and vector.c, the kernel eras whose
//! allocator behaviour differs ([`KernelEra`]), and the parameters a matrix is
//! built from ([`MatrixParams`]).

use std::ops::Range;

use crate::ids::Vector;

// Kernel constants (arch/x86/include/asm/irq_vectors.h, vector.c)

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
/// they only show in [`VectorMatrix::debug_table`](super::VectorMatrix::debug_table).
pub(super) const EXCEPTION_VECTORS_SHOWN: Range<u32> = 0..20;

/// APIC system vectors at or above `LOCAL_TIMER_VECTOR` that a 64-bit kernel
/// without Hyper-V registers (`apic_idts`): timer 0xec, KVM posted 0xf0-0xf2,
/// deferred error 0xf4, irq-work 0xf6 up to spurious 0xff. Outside the
/// allocation range: they only show in [`VectorMatrix::debug_table`](super::VectorMatrix::debug_table).
pub(super) const APIC_SYSTEM_VECTORS_SHOWN: [u8; 15] =
    [0xec, 0xf0, 0xf1, 0xf2, 0xf4, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff];

// Eras and parameters

/// The Linux release range whose vector-allocator behaviour is modelled.
///
/// Differences are read from the kernel sources (docs/sources.md#linux-6-6,
/// docs/sources.md#linux-6-10, docs/sources.md#linux-6-11); each is exposed as a method.
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

/// Parameters of a [`VectorMatrix`](super::VectorMatrix) (and of the
/// [`VectorDomain`](super::VectorDomain) built on it).
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
