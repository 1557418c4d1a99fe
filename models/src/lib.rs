//! `models`: the hardware and kernel models of irqsim — device functions and their message
//! stores (MSI, MSI-X, IMS), MSI formats, the Linux x86 vector allocator, the local APIC,
//! VT-d interrupt remapping and posted interrupts, the ARM GIC ITS, KVM guests, the kernel
//! release, and the workloads that drive them — and the platform that puts them together.
//!
//! # Brief overview
//! A scenario is turned (by the `scenarios` crate) into a [`platform::PlatformParams`];
//! [`platform::Platform::new`] builds the topology, programs every interrupt and returns a
//! `sim::World` plus its initial event queue. Models depend only on `sim`: no serde, no
//! files, no wall clock, and no `HashMap` iteration deciding anything.
//!
//! Modelled failures (no free vector, a full IRTE table, a remapping fault) are counted in
//! the metrics and explained in the report; they are outcomes, never errors or panics.
//! Panics are kept for bugs in this crate.

#![warn(missing_docs)]

pub mod arm;
pub mod detect;
pub mod ids;
pub mod iommu;
pub mod kernel;
pub mod pci;
pub mod platform;
pub mod workload;
pub mod x86;
