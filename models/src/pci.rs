//! PCI interrupt stores of a device function.

pub mod msix;
