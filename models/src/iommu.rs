//! The IOMMU: interrupt remapping and posted interrupts.

pub mod posted;
pub mod remap;
