//! The control plane: scheduled actions (CPU hotplug, affinity changes) applied to the
//! chip, and the resync that follows a move: the chip retargets each interrupt it moved and
//! the device's store gets the new message (IMS in queue memory through its command queue).

use sim::EventQueue;

use super::chip::IrqChip;
use super::chip::x86::Retarget;
use super::params::ActionKind;
use super::{Event, Platform};
use crate::x86::vector_matrix::IrqId;

impl Platform {
    /// Scheduled action number `index`.
    pub(super) fn on_action(&mut self, index: u32, q: &mut EventQueue<Event>) {
        let kind = self.actions[index as usize].kind.clone();
        let m = &mut self.metrics;
        match &mut self.chip {
            IrqChip::Arm(chip) => match kind {
                ActionKind::SetAffinity { device, cpus } => {
                    let d = self.devices.device(device);
                    let queues = d.first_queue..d.first_queue + d.params.queue_count;
                    chip.set_affinity(queues, d.params.requester_id, &cpus, q, m);
                }
                // The scenario validator refuses hotplug on ARM (not modelled there).
                ActionKind::CpuOffline(_) | ActionKind::CpuOnline(_) => {}
            },
            IrqChip::X86(chip) => {
                let moved = match kind {
                    ActionKind::CpuOffline(cpu) => chip.offline(q.now(), cpu, m),
                    ActionKind::CpuOnline(cpu) => chip.online(cpu, m),
                    ActionKind::SetAffinity { device, cpus } => {
                        let d = self.devices.device(device);
                        chip.set_affinity(d.first_queue..d.first_queue + d.params.queue_count, &cpus, m)
                    }
                };
                self.resync(&moved, q);
            }
        }
        if let IrqChip::X86(chip) = &mut self.chip {
            chip.take_domain_warnings(q.now(), &self.devices, &mut self.metrics);
        }
    }

    /// Reprograms the routes of interrupts the domain may have moved, shut down or
    /// restarted. A pending bit set while an entry was masked sends its message once the
    /// entry is unmasked again.
    fn resync(&mut self, irqs: &[IrqId], q: &mut EventQueue<Event>) {
        let IrqChip::X86(chip) = &mut self.chip else { unreachable!("vector moves are x86") };
        for &irq in irqs {
            let now = q.now();
            let queue = chip.queue_of(irq);
            let dp = self.devices.params_of(queue);
            if dp.assigned_to.is_some() {
                // VFIO's host vector moved; the posted IRTE does not follow it.
                continue;
            }
            match chip.retarget(irq, dp, q, &mut self.metrics) {
                Retarget::Unchanged => {}
                Retarget::Moved { address, data } => {
                    self.devices.reprogram(queue, address, data, q);
                    if self.devices.unmask(queue) {
                        self.devices.send(queue, now, q, &mut self.metrics);
                    }
                }
                // Shut down: masked, raises accumulate in the pending bit.
                Retarget::ShutDown => self.devices.mask(queue),
            }
        }
    }
}
