//! x86 interrupt delivery: MSI message formats and the per-CPU vector space.

pub mod msi;
pub mod vectors;
