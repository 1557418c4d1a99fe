//! The IOMMU's interrupt-remapping unit.

pub mod remap;
