//! The per-CPU x86 vector space, allocated first-fit: the device-allocatable range
//! [0x20, FIRST_SYSTEM_VECTOR) minus its holes.
//!
//! # What is modelled
//! One vector per interrupt on its target CPU, lowest free first. Exhaustion is an outcome
//! (the kernel's -ENOSPC), returned to the caller, which counts it.
//!
//! # What is not modelled (and why)
//! Reservation mode, managed interrupts, best-CPU placement and CPU hotplug: the Linux
//! matrix allocator (kernel/irq/matrix.c) model replaces this first-fit space.
//!
//! # Parameters and their sources
//! Linux 6.6–6.9 without a legacy PIC (calibration.md §4): range 0x20..0xec
//! (FIRST_SYSTEM_VECTOR = LOCAL_TIMER_VECTOR 0xec), hole 0x80 (IA32 syscall), 203 vectors.

use crate::ids::{CpuId, Vector};

/// First vector available to devices (FIRST_EXTERNAL_VECTOR).
pub const FIRST_EXTERNAL_VECTOR: u8 = 0x20;
/// First system vector in Linux 6.6–6.9 (LOCAL_TIMER_VECTOR).
pub const FIRST_SYSTEM_VECTOR: u8 = 0xec;
/// IA32_SYSCALL_VECTOR, a hole inside the device range.
pub const IA32_SYSCALL_VECTOR: u8 = 0x80;

/// Per-CPU vector bitmaps.
#[derive(Debug, Clone)]
pub struct VectorSpace {
    used: Vec<[u64; 4]>,
}

/// No vector was free on the CPU (the kernel's -ENOSPC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorSpaceFull;

impl VectorSpace {
    /// An empty vector space for `cpu_count` CPUs.
    pub fn new(cpu_count: u32) -> VectorSpace {
        let mut reserved = [0u64; 4];
        for v in 0..=255u8 {
            if !(FIRST_EXTERNAL_VECTOR..FIRST_SYSTEM_VECTOR).contains(&v) || v == IA32_SYSCALL_VECTOR {
                reserved[usize::from(v / 64)] |= 1 << (v % 64);
            }
        }
        VectorSpace {
            used: vec![reserved; cpu_count as usize],
        }
    }

    /// Vectors a device can still get on `cpu`.
    pub fn available(&self, cpu: CpuId) -> u32 {
        self.used[cpu.0 as usize].iter().map(|w| w.count_zeros()).sum()
    }

    /// Allocates the lowest free vector on `cpu`.
    pub fn alloc(&mut self, cpu: CpuId) -> Result<Vector, VectorSpaceFull> {
        let map = &mut self.used[cpu.0 as usize];
        for (word_index, word) in map.iter_mut().enumerate() {
            if *word != u64::MAX {
                let bit = word.trailing_ones();
                *word |= 1 << bit;
                return Ok(Vector((word_index as u32 * 64 + bit) as u8));
            }
        }
        Err(VectorSpaceFull)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_holes() {
        let mut space = VectorSpace::new(2);
        // 0xec − 0x20 = 204 vectors, minus the 0x80 hole.
        let expected = u32::from(FIRST_SYSTEM_VECTOR - FIRST_EXTERNAL_VECTOR) - 1;
        assert_eq!(space.available(CpuId(0)), expected);
        let got: Vec<u8> = (0..expected).map(|_| space.alloc(CpuId(0)).unwrap().0).collect();
        assert_eq!(got[0], 0x20);
        assert!(!got.contains(&0x80));
        assert_eq!(*got.last().unwrap(), FIRST_SYSTEM_VECTOR - 1);
        assert_eq!(space.alloc(CpuId(0)), Err(VectorSpaceFull));
        assert_eq!(space.available(CpuId(1)), expected);
    }
}
