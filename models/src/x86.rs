//! x86 interrupt delivery: MSI message formats, the per-CPU vector space and the Linux
//! vector matrix allocator.

pub mod msi;
pub mod vector_matrix;
pub mod vectors;
