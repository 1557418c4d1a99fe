//! The interrupt chip, chosen once when the platform is built: x86 (the Linux vector
//! domain and the VT-d remapping unit) or ARM (a GICv3/v4 ITS or a GICv2m frame). Each
//! translates a device's MSI write into a [`Route`](super::route::Route) and says which
//! handler an interrupt that reached a CPU runs.

pub(super) mod arm;
pub(super) mod x86;

use sim::{Metrics, SimTime};

use super::ResourceUse;
use super::devices::Devices;
use super::guest::ChipOp;
use super::params::DeviceParams;
use crate::ids::{CpuId, DeviceId, QueueId, Vector};

/// The answer to a `ChipOp::VpeMove`: when the VMOVP KVM waits for completed (`None`: the
/// vPE was already mapped to `pcpu`, nothing was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct VpeMoved {
    /// The vCPU whose vPE moved.
    pub vcpu: u32,
    /// The pCPU it is being loaded on.
    pub pcpu: CpuId,
    /// When the last command's completion was observed, if any was sent.
    pub done: Option<SimTime>,
}

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

    /// Adds a device and sets up its interrupts the way its kernel does. A device assigned to
    /// a guest gets only its queues (and, on ARM, its ITS device): its interrupts come when
    /// the guest provisions them; then its first queue is returned.
    pub fn add_device(
        &mut self,
        device: DeviceId,
        dp: &DeviceParams,
        seed: u64,
        devices: &mut Devices,
        m: &mut Metrics,
    ) -> Option<u32> {
        match self {
            IrqChip::X86(chip) if dp.assigned_to.is_some() => Some(chip.add_assigned_device(device, dp, seed, devices)),
            IrqChip::X86(chip) => {
                chip.add_host_device(device, dp, seed, devices, m);
                None
            }
            IrqChip::Arm(chip) => chip.add_device(device, dp, seed, devices, m),
        }
    }

    /// Applies what the guests asked of the chip, in order. Returns each vPE move's answer
    /// (`ChipOp::VpeMove`), which the router hands back to the guests: KVM waits for it.
    pub fn apply(&mut self, ops: Vec<ChipOp>, now: SimTime, devices: &mut Devices, m: &mut Metrics) -> Vec<VpeMoved> {
        let mut moved = Vec::new();
        for op in ops {
            match (op, &mut *self) {
                (ChipOp::Assign { target, posting }, IrqChip::X86(chip)) => chip.assign(target, posting, devices, m),
                (ChipOp::Assign { target, .. }, IrqChip::Arm(chip)) => chip.assign(now, target, devices, m),
                (ChipOp::VpeLoad { vpe, pcpu }, IrqChip::Arm(chip)) => {
                    chip.its_mut().vcpu_load(now, vpe, pcpu).expect("making a vPE resident");
                }
                (ChipOp::VpePut { vpe, doorbell }, IrqChip::Arm(chip)) => {
                    chip.its_mut().vcpu_put(now, vpe, doorbell).expect("making a vPE non-resident");
                }
                (ChipOp::VpeDoorbellHandled { vpe }, IrqChip::Arm(chip)) => {
                    chip.its_mut().doorbell_handled(now, vpe).expect("a vPE's doorbell");
                }
                (ChipOp::VpeMove { vpe, vcpu, pcpu }, IrqChip::Arm(chip)) => {
                    let done = chip.vpe_move(now, vpe, pcpu, m);
                    moved.push(VpeMoved { vcpu, pcpu, done });
                }
                (op, IrqChip::X86(_)) => unreachable!("{op:?}: vPEs are ARM"),
            }
        }
        moved
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

    /// Checks the chip's own accounting (see [`super::Platform::check_invariants`]).
    pub fn check_invariants(&self) -> Result<(), String> {
        match self {
            IrqChip::X86(chip) => chip.check_invariants(),
            IrqChip::Arm(chip) => {
                chip.check_invariants();
                Ok(())
            }
        }
    }
}
