//! The interrupt chip, chosen once when the platform is built: x86 (the Linux vector
//! domain and the VT-d remapping unit) or ARM (a GICv3/v4 ITS or a GICv2m frame). Each
//! translates a device's MSI write into a [`Route`](super::route::Route) and says which
//! handler an interrupt that reached a CPU runs.

pub(super) mod arm;
pub(super) mod x86;

use super::ResourceUse;
use crate::ids::{CpuId, QueueId, Vector};

/// The platform's interrupt chip.
#[derive(Debug, Clone)]
pub(super) enum IrqChip {
    /// x86: vector domain and (optional) remapping unit.
    X86(Box<x86::X86Chip>),
    /// ARM: the GIC's ITS or v2m frame.
    Arm(Box<arm::ArmChip>),
}

impl IrqChip {
    /// Whether a queue's interrupt goes somewhere.
    pub fn routed(&self, queue: QueueId) -> bool {
        self.target(queue).is_some()
    }

    /// Where a queue's interrupt goes now: (CPU, vector) on x86, (CPU, 0) for an LPI or SPI,
    /// (pCPU, guest vector) for a posted or forwarded guest interrupt.
    pub fn target(&self, queue: QueueId) -> Option<(CpuId, Vector)> {
        match self {
            IrqChip::X86(chip) => chip.target(queue),
            IrqChip::Arm(chip) => chip.target(queue),
        }
    }

    /// Use of the chip's limited resources.
    pub fn resources(&self) -> Vec<ResourceUse> {
        match self {
            IrqChip::X86(chip) => chip.resources(),
            IrqChip::Arm(chip) => chip.resources(),
        }
    }
}
