//! x86 interrupt delivery: MSI message formats and the Linux
//! vector matrix allocator.

pub mod msi;
pub mod posted_msi;
pub mod vector_matrix;
