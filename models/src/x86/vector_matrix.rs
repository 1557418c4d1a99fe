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
//! The code is split by concept:
//!
//! * `era.rs`: the kernel's vector constants (`irq_vectors.h`), [`KernelEra`] and
//!   [`MatrixParams`];
//! * `error.rs`: [`MatrixError`], the kernel's error codes;
//! * `cpuset.rs`: [`CpuSet`], the kernel's cpumask, and the `%*pbl` list format;
//! * `bitmap.rs`: one CPU's 256-bit vector map;
//! * `matrix.rs`: the allocator of matrix.c ([`VectorMatrix`], [`CpuMap`],
//!   [`Reservation`]), with its debugfs table in `matrix/debugfs.rs` and its tests
//!   (including the random sequences against a reference model) in `matrix/tests.rs`;
//! * `domain.rs`: the vector.c policy ([`VectorDomain`]): reservation mode, managed
//!   interrupts, activation, affinity changes and moves, with its tests in
//!   `domain/tests.rs`; CPU hotplug (cpuhotplug.c, [`OfflineReport`]) in
//!   `domain/hotplug.rs`;
//! * `testutil.rs` (tests only): the tests' independent restatement of the kernel
//!   arithmetic and the helpers they share.
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
//!   does not touch its `available` count (the accounting drift of
//!   docs/sources.md#offline-reservation-drift). Counters are `u32` with
//!   wrapping arithmetic where the kernel's `unsigned int` could wrap.
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
//!   without interrupt remapping (docs/sources.md#msi-vectors).
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
//! | `FIRST_EXTERNAL_VECTOR`, `NR_VECTORS` | 0x20, 256 | irq_vectors.h; docs/sources.md#idt-vectors |
//! | `FIRST_SYSTEM_VECTOR` (matrix `alloc_end`) | 0xec (`LOCAL_TIMER_VECTOR`) up to 6.9, 0xeb (`POSTED_MSI_NOTIFICATION_VECTOR`) from 6.10 | irq_vectors.h; vector.c `arch_early_irq_init`; docs/sources.md#first-system-vector |
//! | holes in the range | 0x80 (`IA32_SYSCALL_VECTOR`, if IA32 emulation), 0x32 (`ISA_IRQ_VECTOR(PIC_CASCADE_IR)`, with a PIC), 0x20 (`IRQ_MOVE_CLEANUP_VECTOR`, ≤ 6.5) | idt.c; vector.c `lapic_assign_system_vectors`; docs/sources.md#vector-holes |
//! | boot-CPU ISA vectors | `ISA_IRQ_VECTOR(i)` for i in 0..`NR_IRQS_LEGACY` except the cascade | vector.c `lapic_assign_system_vectors`; docs/sources.md#isa-vectors |
//! | resulting vectors per CPU | 201 / 202 / 201 (≤ 6.5 / 6.6–6.9 / ≥ 6.10) with a PIC, one more without; computed, never stored | docs/sources.md#vectors-per-cpu |
//! | best-CPU tie rules | first CPU (regular), last CPU (managed) | matrix.c; docs/sources.md#best-cpu-ties |
//! | activation fallback order | node ∩ affinity → affinity → node → online | vector.c `assign_irq_vector_any_locked` (tglx, Dec 2020, v5.11); docs/sources.md#reservation-mode |
//! | unplug count (`irq_matrix_allocated`) | includes managed vectors ≤ 6.5; excludes them from the 6.6 era on | matrix.c, a0b0bad10587 (6.7, 6.6.2 stable); docs/sources.md#unplug-refused |
//! | old vector freed when its CPU is offline | from 6.10 | vector.c, "x86/vector: Fix vector leak during CPU offline"; docs/sources.md#vector-leak |
//! | retry with the online mask on `-ENOSPC` at unplug | from the 6.10 era (mainline 6.11, tagged for stable) | cpuhotplug.c 88d724e2301a; docs/sources.md#unplug-retry |
//! | debugfs table layout | `irq_matrix_debug_show`, indentation 1 as in `/sys/kernel/debug/irq/domains/VECTOR` | matrix.c; kernel/irq/irqdomain.c `irq_domain_debug_show_one` |

mod bitmap;
mod cpuset;
mod domain;
mod era;
mod error;
mod matrix;
#[cfg(test)]
mod testutil;

// CPUs (the kernel's `unsigned int cpu`; CPU 0 is the boot CPU) and IDT vectors are the
// crate-wide ids.
pub use crate::ids::{CpuId, Vector};

pub use cpuset::CpuSet;
pub use domain::{Activation, DomainWarning, IrqDesc, IrqId, IrqState, NodeId, OfflineReport, VectorDomain};
pub use era::{
    FIRST_EXTERNAL_VECTOR, IA32_SYSCALL_VECTOR, IRQ_MOVE_CLEANUP_VECTOR, KernelEra, LOCAL_TIMER_VECTOR, MatrixParams,
    NR_IRQS_LEGACY, NR_VECTORS, PIC_CASCADE_IR, POSTED_MSI_NOTIFICATION_VECTOR, isa_irq_vector,
};
pub use error::MatrixError;
pub use matrix::{CpuMap, Reservation, VectorMatrix};
