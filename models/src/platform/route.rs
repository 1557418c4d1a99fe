//! What travels between the stages and what a stage hands back: the [`Job`] (one raised
//! interrupt), the [`Route`] a chip's translation decides, and [`Pending`], the one
//! pending-vector set (a PIR, a vPE's pending table) with the interrupt behind each bit.

use sim::{CounterId, SimDuration, SimTime};

use crate::arm::its::VpeId;
use crate::ids::{CpuId, QueueId, Vector};

/// One raised interrupt on its way to a handler.
#[derive(Debug, Clone, Copy)]
pub(super) struct Job {
    /// The queue whose handler it runs.
    pub queue: QueueId,
    /// When the device raised it.
    pub raised_at: SimTime,
    /// When it reached the server (CPU or vCPU) that will run its handler.
    pub arrived_at: SimTime,
}

/// Where an MSI write goes after the interrupt chip translated it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Route {
    /// A host vector at a CPU's LAPIC now (no translation delay: no remapping unit).
    Lapic { cpu: CpuId, vector: Vector },
    /// A host vector at a CPU's LAPIC after the remapping unit's lookup.
    HostVector { cpu: CpuId, vector: Vector, after: SimDuration },
    /// An LPI or SPI pending at a CPU after the ITS (or v2m) translation.
    Intid { cpu: CpuId, intid: u32, after: SimDuration },
    /// Posted into a vCPU's descriptor by a posted IRTE, after the lookup.
    PostedVcpu { vcpu: u32, vector: Vector, urgent: bool, after: SimDuration },
    /// A vLPI the ITS delivered for a vPE, after the translation.
    Vlpi { vpe: VpeId, vintid: u32, outcome: VlpiOutcome, after: SimDuration },
    /// Blocked or dropped; the counter names the reason.
    Lost(CounterId),
}

/// What the ITS did with a vLPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VlpiOutcome {
    /// Injected into the resident vPE.
    Direct,
    /// Recorded in the vPE's pending table and the doorbell rung.
    Doorbell,
    /// Recorded with no doorbell (preempted, or the GICv4.1 doorbell already rung).
    Pending,
}

/// What the LAPIC (or the GIC redistributor) does with an interrupt that reached a CPU.
#[derive(Debug, Clone, Copy)]
pub(super) enum Accept {
    /// Run the queue's handler on this CPU.
    Handler(QueueId),
    /// The CPU went offline on the way: re-sent to the interrupt's current target.
    Retrigger { cpu: CpuId, vector: Vector },
    /// No handler; the counter names the reason.
    Lost(CounterId),
}

/// The CPU time a handler takes: what the device's driver (or VFIO's forwarder) costs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Work {
    /// The handler.
    pub service: SimDuration,
    /// The EOI after it.
    pub eoi: SimDuration,
    /// Whose handler it is: the stage it is recorded as.
    pub kind: WorkKind,
}

/// Whose handler runs: the device driver's (the `handler` and `eoi` stages) or VFIO's
/// forward of a guest interrupt (the `vfio_forward` stage; the guest's handler is recorded
/// when it runs on the vCPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WorkKind {
    /// The device driver's handler.
    Driver,
    /// VFIO's host handler for an interrupt it forwards to a guest.
    VfioForward,
}

/// Draws the handler work for a queue's interrupt, in the order handlers start (each queue
/// has its own random stream). Servers decide *when* a handler starts; the device decides
/// what it costs.
pub(super) trait HandlerWork {
    /// The device driver's handler and EOI for one interrupt of `queue`.
    fn driver_work(&mut self, queue: QueueId) -> Work;
}

/// A set of pending vectors (a posted-interrupt request register, a vPE's pending table)
/// with the interrupt behind each set bit: the first one posted; later ones merge.
///
/// The interrupts behind the bits are a short list, not a table of 256: few vectors are
/// pending at once, and each delivery writes one, so the list's first entries stay in cache
/// where a 256-slot table (8 KiB a CPU) would miss at every post on thousands of CPUs.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    bits: [u64; 4],
    /// The interrupt of each set bit, by vector, in no order.
    jobs: Vec<(u8, Job)>,
}

impl Pending {
    /// Nothing pending.
    pub fn new() -> Pending {
        Pending { bits: [0; 4], jobs: Vec::new() }
    }

    /// Whether `vector` is pending.
    pub fn is_set(&self, vector: Vector) -> bool {
        self.bits[usize::from(vector.0 / 64)] & (1u64 << (vector.0 % 64)) != 0
    }

    /// Posts `job` on `vector`; `false` when the vector was already pending (merged).
    pub fn post(&mut self, vector: Vector, job: Job) -> bool {
        if self.is_set(vector) {
            return false;
        }
        self.bits[usize::from(vector.0 / 64)] |= 1u64 << (vector.0 % 64);
        self.jobs.push((vector.0, job));
        true
    }

    /// Takes the interrupt pending on `vector`, if any.
    pub fn take(&mut self, vector: usize) -> Option<Job> {
        let word = &mut self.bits[vector / 64];
        if *word & (1u64 << (vector % 64)) == 0 {
            return None;
        }
        *word &= !(1u64 << (vector % 64));
        let at = self.jobs.iter().position(|&(v, _)| usize::from(v) == vector).expect("a set bit has its interrupt");
        Some(self.jobs.swap_remove(at).1)
    }

    /// Takes every pending interrupt into `out`, ascending by vector (a demux pass).
    pub fn drain_into(&mut self, out: &mut Vec<Job>) {
        self.bits = [0; 4];
        self.jobs.sort_unstable_by_key(|&(v, _)| v);
        out.extend(self.jobs.drain(..).map(|(_, job)| job));
    }

    /// The highest pending vector (the LAPIC's priority order).
    pub fn highest(&self) -> Option<usize> {
        (0..4).rev().find(|&w| self.bits[w] != 0).map(|w| w * 64 + 63 - self.bits[w].leading_zeros() as usize)
    }

    /// Whether anything is pending.
    pub fn any(&self) -> bool {
        self.bits.iter().any(|&w| w != 0)
    }

    /// How many vectors are pending.
    pub fn count(&self) -> u64 {
        self.bits.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}
