//! PCI interrupt sources: device functions' interrupt-message stores.

pub mod store;
