//! [`MatrixError`]: why the matrix or the domain refused an operation, named
//! after the kernel's error code.

use std::fmt;

use crate::ids::CpuId;

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
