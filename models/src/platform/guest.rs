//! Guests: vCPUs pinned to pCPUs that halt when idle and are preempted by host work, and
//! the interrupts of their assigned devices, posted (x86 VT-d posted interrupts, KVM
//! irq-bypass) into the vCPUs' descriptors or forwarded as vLPIs (ARM GICv4) to their vPEs.
//!
//! Who programs an assigned device's interrupts, and when, is the guests' decision
//! ([`Guests::provision`]); the programming itself (host vectors, IRTEs, ITS events, vPE
//! residency) is the chip's. The guests never call the chip: they queue [`ChipOp`]s that
//! the router applies after each guest step.
//!
//! # What is modelled
//! - Each vCPU runs on one pCPU. It starts halted (blocked: NV = the wake-up vector 0xf1, on
//!   its pCPU's wake-up list). Interrupts it has to handle become guest jobs, served FIFO by
//!   the guest's handler (the device's service time and EOI cost; with APICv the EOI of an
//!   edge interrupt exits nothing). When its queue empties the vCPU halts again (a HLT VM
//!   exit), unless ON is set, in which case KVM refuses to block and it goes on.
//! - Host contention: optional bursts of host work on each vCPU's pCPU (a renewal process:
//!   exponential gaps and durations). A running vCPU is preempted (a VM exit; SN = 1), its
//!   current handler paused until the burst ends, when it is loaded again and the PIR is
//!   synced into the guest.
//! - Delivery of a posted IRTE (`iommu::posted::PostedDelivery`): to a running vCPU, a
//!   notification on 0xf2 and no VM exit; to a preempted one, the PIR accumulates (a vector
//!   already pending merges) and is injected at the next VM entry; to a blocked one, the
//!   wake-up IRQ on its pCPU walks the pCPU's wake-up list and kicks the vCPU, which enters
//!   the guest after the scheduler wake-up (later if a host burst holds the pCPU).
//!
//! # What is not modelled (and why)
//! - Remapped (non-postable) delivery: multicast and lowest-priority with several
//!   destinations fall back to it (`iommu::posted::is_postable`); VFIO's host handler
//!   forwards such an interrupt (the router runs it on the host CPU) and KVM injects it
//!   through the posted descriptor ([`Guests::post_to_vcpu`]).
//! - Halt polling, vCPU migration between pCPUs, vIRR merging of the same vector while the
//!   guest has not yet handled it (each notified interrupt is a guest job).
//!
//! # Parameters and their sources
//! The posting costs (`iommu::posted::PostedParams`) have no published figures
//! (docs/sources.md#posted-costs: no number for the wake-up; halt polling saves "a few
//! micro-seconds"); scenarios must give them. Vector numbers: POSTED_INTR_VECTOR 0xf2,
//! POSTED_INTR_WAKEUP_VECTOR 0xf1 (arch/x86/include/asm/irq_vectors.h;
//! docs/sources.md#posted-vectors).

pub(super) mod provision;

use std::collections::VecDeque;

use sim::{DurationDist, EventQueue, Metrics, RngStream, SimDuration, SimTime};

use super::Event;
use super::metrics::{CoreIds, GuestIds};
use super::params::{GuestParams, spread_mask};
use super::route::{HandlerWork, Job, Pending, VlpiOutcome};
use crate::arm::its::VpeId;
use crate::ids::{CpuId, QueueId, Vector};
use crate::iommu::posted::{
    ApicMode, BlockOutcome, DeliveryPath, InjectOutcome, PiHost, PostedDelivery, PostedIrte, VcpuId, VcpuState,
};

/// The first vector a guest driver gets (device vectors start above the ISA range).
const GUEST_FIRST_VECTOR: u8 = 0x30;
/// The end (exclusive) of the guest's device vectors (its own local timer sits at 0xec).
const GUEST_LAST_VECTOR: u8 = 0xec;
/// No queue behind a guest vector.
const NO_QUEUE: u32 = u32::MAX;

/// What a guest step asks of the interrupt chip. The guests never call the chip: they queue
/// these, and the router applies them in order after each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChipOp {
    /// Make the vPE resident on its pCPU (`vgic_v4_load`).
    VpeLoad { vpe: VpeId, pcpu: CpuId },
    /// Make it non-resident, with or without its doorbell (`vgic_v4_put`).
    VpePut { vpe: VpeId, doorbell: bool },
    /// KVM handled the vPE's doorbell interrupt.
    VpeDoorbellHandled { vpe: VpeId },
    /// VFIO and KVM program an assigned queue's interrupt for guest `vector` on `vcpu`
    /// (running on `pcpu`). x86: a host vector on the pCPU and an IRTE that posts to the
    /// vCPU's descriptor (or, not postable, stays remapped to the host vector and VFIO
    /// forwards). ARM GICv4: the event mapped to the pCPU and forwarded to `vpe` as a vLPI.
    Assign { queue: QueueId, vcpu: u32, vector: Vector, pcpu: CpuId, vpe: Option<VpeId> },
}

/// One vCPU.
#[derive(Debug, Clone)]
struct Vcpu {
    pcpu: CpuId,
    guest: u32,
    /// Guest interrupts waiting for, or in, the guest handler (front).
    jobs: VecDeque<Job>,
    /// The interrupts behind the PIR (x86) or the vPE's pending table (ARM) not yet synced
    /// into the guest.
    waiting: Pending,
    /// Interrupts notified to the running vCPU, on their way into vIRR (FIFO: the
    /// notification latency is the same for all).
    notified: VecDeque<Job>,
    /// The queue whose interrupt each guest vector is.
    vector_queue: Box<[u32; 256]>,
    next_vector: u8,
    /// A handler is running (not paused).
    handling: bool,
    /// Generation of the running handler's completion event; a pause bumps it.
    handler_gen: u32,
    handler_done_at: SimTime,
    /// The rest of a handler paused by a host burst.
    paused_remaining: Option<SimDuration>,
    /// A host burst holds the pCPU until then.
    host_busy_until: Option<SimTime>,
    /// A VM entry is scheduled (after a wake-up).
    entry_scheduled: bool,
    /// Generation of the scheduled entry event; an entry made otherwise bumps it.
    entry_gen: u32,
    host_rng: RngStream,
    /// Posted-interrupt wake-up IRQs (vector 0xf1) its pCPU took for it (x86).
    wakeup_irqs: u64,
    /// Doorbell interrupts its vPE rang on its pCPU (ARM GICv4).
    doorbell_irqs: u64,
}

/// Where the vCPUs' interrupt state lives: VT-d posted-interrupt descriptors (x86) or GICv4
/// vPEs in the ITS (ARM; the ITS itself is the platform's chip).
#[derive(Debug, Clone)]
enum Backend {
    X86(PiHost),
    Arm {
        /// Each vCPU's state (the ITS knows residency, not halting).
        states: Vec<VcpuState>,
        /// Each vCPU's vPE.
        vpes: Vec<VpeId>,
    },
}

/// All guests' vCPUs and the host side of posting.
#[derive(Debug, Clone)]
pub(super) struct Guests {
    backend: Backend,
    vcpus: Vec<Vcpu>,
    params: Vec<GuestParams>,
    host_gap: Vec<Option<(DurationDist, DurationDist)>>,
    /// Operations for the chip, applied by the router after each guest step.
    chip_ops: Vec<ChipOp>,
    ids: GuestIds,
    core: CoreIds,
}

impl Guests {
    pub fn new(guests: &[GuestParams], pcpu_count: u32, arm: bool, seed: u64, ids: GuestIds, core: CoreIds) -> Guests {
        let mut vcpus = Vec::new();
        for (g, params) in guests.iter().enumerate() {
            for v in 0..params.vcpu_count {
                vcpus.push(Vcpu {
                    pcpu: params.pcpus[v as usize % params.pcpus.len()],
                    guest: g as u32,
                    jobs: VecDeque::new(),
                    waiting: Pending::new(),
                    notified: VecDeque::new(),
                    vector_queue: Box::new([NO_QUEUE; 256]),
                    next_vector: GUEST_FIRST_VECTOR,
                    handling: false,
                    handler_gen: 0,
                    handler_done_at: SimTime::ZERO,
                    paused_remaining: None,
                    host_busy_until: None,
                    entry_scheduled: false,
                    entry_gen: 0,
                    host_rng: RngStream::new(seed, &format!("guest/{}/vcpu/{v}/host", params.name)),
                    wakeup_irqs: 0,
                    doorbell_irqs: 0,
                });
            }
        }
        let backend = if arm {
            // The vPEs come from the ITS (`attach_vpes`); every vCPU starts halted in WFI.
            Backend::Arm {
                states: vcpus.iter().map(|v| VcpuState::Blocked { pcpu: v.pcpu }).collect(),
                vpes: Vec::new(),
            }
        } else {
            let mut pi = PiHost::new(vcpus.len() as u32, pcpu_count, ApicMode::X2Apic);
            for (i, vcpu) in vcpus.iter().enumerate() {
                // KVM creates vCPUs preempted; each is loaded once and halts, idle.
                let id = VcpuId(i as u32);
                pi.vcpu_load(id, vcpu.pcpu).expect("a new vCPU loads");
                let blocked = pi.vcpu_block(id).expect("a loaded vCPU may halt");
                assert!(matches!(blocked, BlockOutcome::Blocked { .. }), "nothing is pending at creation");
            }
            Backend::X86(pi)
        };
        let host_gap = guests
            .iter()
            .map(|g| {
                g.host_bursts.map(|(gap, length)| (DurationDist::exponential(gap), DurationDist::exponential(length)))
            })
            .collect();
        Guests { backend, vcpus, params: guests.to_vec(), host_gap, chip_ops: Vec::new(), ids, core }
    }

    /// The first vCPU of guest `guest`, and how many it has.
    pub fn vcpus_of(&self, guest: u32) -> (u32, u32) {
        let first = self.vcpus.iter().position(|v| v.guest == guest).expect("a guest has vCPUs") as u32;
        (first, self.params[guest as usize].vcpu_count)
    }

    /// ARM: the vPEs of guest `guest`'s vCPUs, in order (from `Its::create_vm`).
    pub fn attach_vpes(&mut self, guest: u32, vpes: &[VpeId]) {
        let (first, count) = self.vcpus_of(guest);
        assert_eq!(vpes.len() as u32, count, "one vPE per vCPU");
        let Backend::Arm { vpes: all, .. } = &mut self.backend else { panic!("vPEs are an ARM thing") };
        if all.len() < (first + count) as usize {
            all.resize((first + count) as usize, VpeId(u32::MAX));
        }
        all[first as usize..(first + count) as usize].copy_from_slice(vpes);
    }

    /// ARM: the vCPU whose vPE is `vpe`.
    pub fn vcpu_of_vpe(&self, vpe: VpeId) -> Option<u32> {
        let Backend::Arm { vpes, .. } = &self.backend else { return None };
        vpes.iter().position(|&v| v == vpe).map(|i| i as u32)
    }

    /// ARM: the vPE of a vCPU.
    pub fn vpe_of(&self, vcpu: u32) -> VpeId {
        let Backend::Arm { vpes, .. } = &self.backend else { panic!("vPEs are an ARM thing") };
        vpes[vcpu as usize]
    }

    /// Guest `guest`'s name.
    pub fn name_of(&self, guest: u32) -> &str {
        &self.params[guest as usize].name
    }

    /// The host's forwarding cost for `vcpu`'s guest (a non-postable interrupt).
    pub fn remapped_forward_of(&self, vcpu: u32) -> SimDuration {
        self.params[self.vcpus[vcpu as usize].guest as usize].remapped_forward
    }

    /// The pCPU a vCPU runs on.
    pub fn pcpu_of(&self, vcpu: u32) -> CpuId {
        self.vcpus[vcpu as usize].pcpu
    }

    /// How many guests there are.
    pub fn guest_count(&self) -> u32 {
        self.params.len() as u32
    }

    /// How many vCPUs all guests have.
    pub fn vcpu_count(&self) -> u32 {
        self.vcpus.len() as u32
    }

    /// Posted-interrupt wake-up IRQs (0xf1) taken on a vCPU's pCPU for it.
    pub fn wakeup_irqs(&self, vcpu: u32) -> u64 {
        self.vcpus[vcpu as usize].wakeup_irqs
    }

    /// Doorbells a vCPU's vPE rang on its pCPU (GICv4).
    pub fn doorbell_irqs(&self, vcpu: u32) -> u64 {
        self.vcpus[vcpu as usize].doorbell_irqs
    }

    /// The chip operations queued since the last call.
    pub fn take_chip_ops(&mut self) -> Vec<ChipOp> {
        std::mem::take(&mut self.chip_ops)
    }

    /// Whether chip operations are queued.
    #[inline]
    pub fn has_chip_ops(&self) -> bool {
        !self.chip_ops.is_empty()
    }

    /// Provides the interrupts of a device assigned to `guest` (queues `first_queue..` of
    /// `queue_count`): VFIO programs every queue when the VM starts, before the guest runs.
    /// Each queue is placed on a vCPU the way the guest kernel spreads managed interrupts
    /// (over all its vCPUs, the least-loaded of the queue's group, so several devices'
    /// queues cover every vCPU) with a guest vector there, and the chip is asked to program
    /// it; a vCPU whose vectors ran out leaves the queue without an interrupt (counted).
    pub fn provision(&mut self, guest: u32, first_queue: u32, queue_count: u32, m: &mut Metrics) {
        let (first, count) = self.vcpus_of(guest);
        let vcpus: Vec<CpuId> = (first..first + count).map(CpuId).collect();
        for q in 0..queue_count {
            let queue = QueueId(first_queue + q);
            // The guest kernel's managed spread (group_cpus_evenly over its vCPUs), and within
            // the queue's group the vCPU with the fewest device vectors, as the matrix's
            // matrix_find_best_cpu_managed picks (the first such on a tie).
            let group = spread_mask(&vcpus, q, queue_count);
            let vcpu = group.iter().map(|c| c.0).min_by_key(|&v| self.vcpus[v as usize].next_vector).expect("a group");
            let Some(vector) = self.alloc_vector(vcpu, queue) else {
                let name = &self.params[guest as usize].name;
                m.fail(self.ids.setup_guest_vector_fail, SimTime::ZERO, || {
                    format!("{name} vCPU {}: no free guest vector for queue id {}", vcpu - first, queue.0)
                });
                continue;
            };
            let vpe = match &self.backend {
                Backend::X86(_) => None,
                Backend::Arm { vpes, .. } => Some(vpes[vcpu as usize]),
            };
            self.chip_ops.push(ChipOp::Assign { queue, vcpu, vector, pcpu: self.pcpu_of(vcpu), vpe });
        }
    }

    /// Gives queue `queue` a guest vector on `vcpu`; `None` when the guest's vectors ran out.
    fn alloc_vector(&mut self, vcpu: u32, queue: QueueId) -> Option<Vector> {
        let v = &mut self.vcpus[vcpu as usize];
        let mut vector = v.next_vector;
        if vector == 0x80 {
            vector += 1; // the guest's IA32 syscall gate
        }
        if vector >= GUEST_LAST_VECTOR {
            return None;
        }
        v.next_vector = vector + 1;
        v.vector_queue[usize::from(vector)] = queue.0;
        Some(Vector(vector))
    }

    /// Interrupts held by vCPUs: queued, in service, or waiting in a PIR.
    pub fn at_vcpus(&self) -> u64 {
        self.vcpus.iter().map(|v| v.jobs.len() as u64 + v.waiting.count()).sum()
    }

    /// Scheduled starts of host bursts (one per vCPU whose guest has them).
    pub fn first_bursts(&mut self) -> Vec<(SimTime, u32)> {
        let mut out = Vec::new();
        for (i, v) in self.vcpus.iter_mut().enumerate() {
            if let Some((gap, _)) = &self.host_gap[v.guest as usize] {
                out.push((SimTime::ZERO + gap.sample(&mut v.host_rng), i as u32));
            }
        }
        out
    }

    fn vcpu_state(&self, vcpu: u32) -> VcpuState {
        match &self.backend {
            Backend::X86(pi) => pi.vcpu(VcpuId(vcpu)).state(),
            Backend::Arm { states, .. } => states[vcpu as usize],
        }
    }

    /// KVM loads the vCPU (x86: `vmx_vcpu_pi_load`; ARM: `vgic_v4_load`, the vPE resident).
    fn vcpu_load(&mut self, vcpu: u32) {
        let pcpu = self.vcpus[vcpu as usize].pcpu;
        match &mut self.backend {
            Backend::X86(pi) => {
                pi.vcpu_load(VcpuId(vcpu), pcpu).expect("a preempted or blocked vCPU loads");
            }
            Backend::Arm { states, vpes } => {
                states[vcpu as usize] = VcpuState::Running { pcpu };
                self.chip_ops.push(ChipOp::VpeLoad { vpe: vpes[vcpu as usize], pcpu });
            }
        }
    }

    /// Host work preempts the running vCPU (x86: SN = 1; ARM: non-resident, no doorbell).
    fn vcpu_preempt(&mut self, vcpu: u32) {
        match &mut self.backend {
            Backend::X86(pi) => pi.vcpu_preempt(VcpuId(vcpu)).expect("a running vCPU is preempted"),
            Backend::Arm { states, vpes } => {
                states[vcpu as usize] = VcpuState::Preempted;
                self.chip_ops.push(ChipOp::VpePut { vpe: vpes[vcpu as usize], doorbell: false });
            }
        }
    }

    /// The idle vCPU halts (x86 HLT: on the wake-up list; ARM WFI: non-resident with its
    /// doorbell), unless an interrupt is already pending for it.
    fn vcpu_block(&mut self, vcpu: u32) -> BlockOutcome {
        let pending = self.vcpus[vcpu as usize].waiting.any();
        let pcpu = self.vcpus[vcpu as usize].pcpu;
        match &mut self.backend {
            Backend::X86(pi) => pi.vcpu_block(VcpuId(vcpu)).expect("a running idle vCPU halts"),
            Backend::Arm { .. } if pending => BlockOutcome::Refused,
            Backend::Arm { states, vpes } => {
                states[vcpu as usize] = VcpuState::Blocked { pcpu };
                self.chip_ops.push(ChipOp::VpePut { vpe: vpes[vcpu as usize], doorbell: true });
                BlockOutcome::Blocked { pcpu }
            }
        }
    }

    fn vcpu_has_pending(&self, vcpu: u32) -> bool {
        match &self.backend {
            Backend::X86(pi) => pi.has_pending_interrupt(VcpuId(vcpu)),
            Backend::Arm { .. } => self.vcpus[vcpu as usize].waiting.any(),
        }
    }

    /// The guest's handler for `vector` on `vcpu`, if one is registered.
    fn queue_on(&self, vcpu: u32, vector: Vector) -> Option<QueueId> {
        match self.vcpus[vcpu as usize].vector_queue[usize::from(vector.0)] {
            NO_QUEUE => None,
            queue => Some(QueueId(queue)),
        }
    }

    /// The interrupt `vector` brings to `vcpu` at `now`: the job for the guest's handler
    /// registered on it, `Err(true)` when the vector is already pending there (counted as
    /// merged: the guest's handler will see both), `Err(false)` when no handler is
    /// registered (lost).
    fn admit(&self, vcpu: u32, vector: Vector, raised_at: SimTime, now: SimTime, m: &mut Metrics) -> Result<Job, bool> {
        let queue = self.queue_on(vcpu, vector).ok_or(false)?;
        if self.vcpus[vcpu as usize].waiting.is_set(vector) {
            m.add(self.core.merged_pir, 1);
            return Err(true);
        }
        Ok(Job { queue, raised_at, arrived_at: now })
    }

    /// A running vCPU was notified: `job` reaches its vIRR at `visible` (counted in `counter`).
    fn notify_running(
        &mut self,
        vcpu: u32,
        job: Job,
        visible: SimTime,
        counter: sim::CounterId,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) {
        self.vcpus[vcpu as usize].notified.push_back(job);
        m.add(counter, 1);
        m.record(self.ids.posted_delivery, visible.since(q.now()).as_ps());
        q.schedule_at(visible, Event::GuestInterrupt { vcpu });
    }

    /// A posted IRTE delivered `vector` for `vcpu`. Returns `false` when the guest has no
    /// handler on the vector (lost).
    #[allow(clippy::too_many_arguments)] // the posted request and the run's state
    pub fn post_to_vcpu(
        &mut self,
        vcpu: u32,
        vector: Vector,
        urgent: bool,
        raised_at: SimTime,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) -> bool {
        let now = q.now();
        let job = match self.admit(vcpu, vector, raised_at, now, m) {
            Ok(job) => job,
            Err(handled) => return handled,
        };
        let v = &self.vcpus[vcpu as usize];
        let params = self.params[v.guest as usize].posted;
        let next_entry = v.host_busy_until.unwrap_or(now);
        let Backend::X86(pi) = &mut self.backend else { panic!("VT-d posting is x86") };
        let delivery =
            PostedDelivery { params }.deliver(pi, PostedIrte { vcpu: VcpuId(vcpu), vector, urgent }, now, next_entry);
        match delivery.path {
            DeliveryPath::NotifiedRunning => {
                let visible = delivery.visible_at.expect("a running vCPU sees it");
                self.notify_running(vcpu, job, visible, self.ids.kvm_notified, q, m);
            }
            DeliveryPath::Accumulated { .. } => {
                self.vcpus[vcpu as usize].waiting.post(vector, job);
                m.add(self.ids.kvm_accumulated, 1);
            }
            DeliveryPath::Coalesced => {
                // ON was already set (a wake-up is on its way): the new bit is synced with it.
                self.vcpus[vcpu as usize].waiting.post(vector, job);
            }
            DeliveryPath::Wakeup { walk, .. } => {
                let visible = delivery.visible_at.expect("a woken vCPU enters");
                self.vcpus[vcpu as usize].waiting.post(vector, job);
                self.vcpus[vcpu as usize].wakeup_irqs += 1;
                m.add(self.ids.kvm_wakeups, 1);
                m.add(self.ids.kvm_wakeup_walked, walk.walked as u64);
                self.schedule_entry(vcpu, visible, q, m);
            }
        }
        true
    }

    /// KVM injects `vector` for `vcpu` in software (VFIO forwarded an interrupt it could not
    /// post: irqfd → `vmx_deliver_posted_interrupt`): a running vCPU is notified, a
    /// preempted one finds it at its next entry, a blocked one is woken by
    /// `kvm_vcpu_wake_up` (the kick and the scheduling; no wake-up vector, no list walk).
    /// Returns `false` when the guest has no handler on the vector (lost).
    pub fn inject(
        &mut self,
        vcpu: u32,
        vector: Vector,
        raised_at: SimTime,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) -> bool {
        let now = q.now();
        let job = match self.admit(vcpu, vector, raised_at, now, m) {
            Ok(job) => job,
            Err(handled) => return handled,
        };
        let params = self.params[self.vcpus[vcpu as usize].guest as usize].posted;
        let Backend::X86(pi) = &mut self.backend else { panic!("VFIO forwarding is x86") };
        match pi.inject(VcpuId(vcpu), vector) {
            InjectOutcome::Notified => {
                // The PIR bit goes to vIRR with the notification.
                pi.sync_pir(VcpuId(vcpu));
                self.notify_running(vcpu, job, now + params.notify_running, self.ids.kvm_injected_notified, q, m);
            }
            InjectOutcome::Accumulated => {
                self.vcpus[vcpu as usize].waiting.post(vector, job);
                m.add(self.ids.kvm_accumulated, 1);
            }
            InjectOutcome::AlreadyPending => {
                self.vcpus[vcpu as usize].waiting.post(vector, job);
            }
            InjectOutcome::WokenUp => {
                self.vcpus[vcpu as usize].waiting.post(vector, job);
                m.add(self.ids.kvm_injected_wakeup, 1);
                self.schedule_entry(vcpu, now + params.kick + params.wake_to_vm_entry, q, m);
            }
        }
        true
    }

    /// A woken vCPU enters the guest at `visible`, or when the host burst holding its pCPU
    /// ends, unless an entry is already scheduled.
    fn schedule_entry(&mut self, vcpu: u32, visible: SimTime, q: &mut EventQueue<Event>, m: &mut Metrics) {
        let v = &mut self.vcpus[vcpu as usize];
        if !v.entry_scheduled {
            v.entry_scheduled = true;
            let at = v.host_busy_until.map_or(visible, |busy| busy.max(visible));
            m.record(self.ids.posted_delivery, at.since(q.now()).as_ps());
            v.entry_gen += 1;
            q.schedule_at(at, Event::VcpuEntry { vcpu, generation: v.entry_gen });
        }
    }

    /// ARM GICv4: the ITS delivered a vLPI for `vcpu` (`translation` after the device's
    /// write): straight into the resident vPE, or into its pending table, with or without a
    /// doorbell to the host. Returns `false` when the guest has no handler on the vector.
    #[allow(clippy::too_many_arguments)] // the vLPI, its outcome and the run's state
    pub fn vlpi_to_vcpu(
        &mut self,
        vcpu: u32,
        vector: Vector,
        outcome: VlpiOutcome,
        translation: SimDuration,
        raised_at: SimTime,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
    ) -> bool {
        let now = q.now();
        let Some(queue) = self.queue_on(vcpu, vector) else { return false };
        let job = Job { queue, raised_at, arrived_at: now };
        let params = self.params[self.vcpus[vcpu as usize].guest as usize].posted;
        if outcome == VlpiOutcome::Direct {
            self.notify_running(vcpu, job, now + translation, self.ids.kvm_vlpi_direct, q, m);
            return true;
        }
        let v = &mut self.vcpus[vcpu as usize];
        if !v.waiting.post(vector, job) {
            m.add(self.core.merged_pir, 1); // already pending in the vPE's table
            return true;
        }
        if outcome == VlpiOutcome::Pending {
            m.add(self.ids.kvm_vlpi_pending, 1);
            return true;
        }
        // The doorbell (a physical LPI) reaches the host; KVM's handler kicks the vCPU.
        m.add(self.ids.kvm_vlpi_doorbell, 1);
        self.vcpus[vcpu as usize].doorbell_irqs += 1;
        let vpe = self.vpe_of(vcpu);
        self.chip_ops.push(ChipOp::VpeDoorbellHandled { vpe });
        let visible = now + translation + params.wakeup_irq_entry + params.kick + params.wake_to_vm_entry;
        self.schedule_entry(vcpu, visible, q, m);
        true
    }

    /// A notified interrupt reaches the running guest's vIRR.
    pub fn on_guest_interrupt(
        &mut self,
        vcpu: u32,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
        work: &mut impl HandlerWork,
    ) {
        let v = &mut self.vcpus[vcpu as usize];
        let mut job = v.notified.pop_front().expect("a notification carries an interrupt");
        job.arrived_at = q.now();
        v.jobs.push_back(job);
        self.run_guest(vcpu, q, m, work);
    }

    /// A scheduled entry (after a wake-up) is due. It is stale when the end of a host burst
    /// overtook it (`generation` is old or no entry is scheduled): the vCPU already entered,
    /// and may have halted again since.
    pub fn on_vcpu_entry_event(
        &mut self,
        vcpu: u32,
        generation: u32,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
        work: &mut impl HandlerWork,
    ) {
        let v = &self.vcpus[vcpu as usize];
        if v.entry_scheduled && v.entry_gen == generation {
            self.on_vcpu_entry(vcpu, q, m, work);
        }
    }

    /// The vCPU enters the guest (after a wake-up, or when a host burst ends): it is loaded
    /// and its PIR synced into the guest.
    fn on_vcpu_entry(&mut self, vcpu: u32, q: &mut EventQueue<Event>, m: &mut Metrics, work: &mut impl HandlerWork) {
        let now = q.now();
        let v = &mut self.vcpus[vcpu as usize];
        if v.host_busy_until.is_some_and(|busy| busy > now) {
            return; // the burst's end enters it
        }
        v.entry_scheduled = false;
        if !matches!(self.vcpu_state(vcpu), VcpuState::Running { .. }) {
            self.vcpu_load(vcpu);
            m.add(self.ids.kvm_entries, 1);
        }
        self.sync_into_guest(vcpu, now);
        let v = &mut self.vcpus[vcpu as usize];
        if let Some(rest) = v.paused_remaining.take() {
            v.handling = true;
            v.handler_gen += 1;
            v.handler_done_at = now + rest;
            let generation = v.handler_gen;
            q.schedule_at(now + rest, Event::GuestHandlerDone { vcpu, generation });
        }
        self.run_guest(vcpu, q, m, work);
    }

    /// Moves the pending interrupts into the guest's handler queue (x86: the PIR synced into
    /// vIRR; ARM: the vPE's pending vLPIs, taken by the now-resident vPE), ascending.
    fn sync_into_guest(&mut self, vcpu: u32, now: SimTime) {
        let v = &mut self.vcpus[vcpu as usize];
        let start = v.jobs.len();
        match &mut self.backend {
            Backend::X86(pi) => {
                for (word, mut bits) in pi.sync_pir(VcpuId(vcpu)).into_iter().enumerate() {
                    while bits != 0 {
                        let vector = word * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        v.jobs.push_back(v.waiting.take(vector).expect("a pending bit has its interrupt"));
                    }
                }
            }
            Backend::Arm { .. } => {
                let mut jobs = Vec::new();
                v.waiting.drain_into(&mut jobs);
                v.jobs.extend(jobs);
            }
        }
        for job in v.jobs.iter_mut().skip(start) {
            job.arrived_at = now;
        }
    }

    /// Starts the next guest handler, or halts the idle vCPU.
    fn run_guest(&mut self, vcpu: u32, q: &mut EventQueue<Event>, m: &mut Metrics, work: &mut impl HandlerWork) {
        let now = q.now();
        let v = &mut self.vcpus[vcpu as usize];
        if v.handling || v.paused_remaining.is_some() || v.host_busy_until.is_some() {
            return;
        }
        let Some(job) = v.jobs.front().copied() else {
            if !v.notified.is_empty() {
                return; // a notified interrupt is on its way into vIRR: HLT would not block
            }
            // Idle: the guest halts (HLT exit); KVM refuses to block with ON set.
            match self.vcpu_block(vcpu) {
                BlockOutcome::Blocked { .. } => m.add(self.ids.kvm_hlt_exits, 1),
                BlockOutcome::Refused => {
                    self.sync_into_guest(vcpu, now);
                    self.run_guest(vcpu, q, m, work);
                }
            }
            return;
        };
        let w = work.driver_work(job.queue);
        m.record(self.core.queue_wait, now.since(job.arrived_at).as_ps());
        m.record(self.core.handler, w.service.as_ps());
        m.record(self.core.eoi, w.eoi.as_ps());
        let v = &mut self.vcpus[vcpu as usize];
        v.handling = true;
        v.handler_gen += 1;
        v.handler_done_at = now + w.service + w.eoi;
        let generation = v.handler_gen;
        q.schedule_in(w.service + w.eoi, Event::GuestHandlerDone { vcpu, generation });
    }

    /// The guest handler on `vcpu` finished (unless `generation` is stale: paused by a host
    /// burst and resumed under a new one): returns the interrupt it delivered.
    pub fn on_guest_handler_done(
        &mut self,
        vcpu: u32,
        generation: u32,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
        work: &mut impl HandlerWork,
    ) -> Option<Job> {
        let v = &mut self.vcpus[vcpu as usize];
        if generation != v.handler_gen || !v.handling {
            return None;
        }
        v.handling = false;
        let job = v.jobs.pop_front().expect("a handler finished with a job");
        m.add(self.core.delivered, 1);
        m.record(self.core.end_to_end, q.now().since(job.raised_at).as_ps());
        self.run_guest(vcpu, q, m, work);
        Some(job)
    }

    /// A burst of host work takes the vCPU's pCPU.
    pub fn on_host_burst(&mut self, vcpu: u32, q: &mut EventQueue<Event>, m: &mut Metrics) {
        let now = q.now();
        let (_, length) = self.host_gap[self.vcpus[vcpu as usize].guest as usize].clone().expect("bursts configured");
        let v = &mut self.vcpus[vcpu as usize];
        let until = now + length.sample(&mut v.host_rng);
        v.host_busy_until = Some(until);
        if v.handling {
            v.handling = false;
            v.paused_remaining = Some(v.handler_done_at.since(now));
        }
        if matches!(self.vcpu_state(vcpu), VcpuState::Running { .. }) {
            self.vcpu_preempt(vcpu);
            m.add(self.ids.kvm_preemptions, 1);
        }
        q.schedule_at(until, Event::HostBurstEnd { vcpu });
    }

    /// The host burst ends: a vCPU that was running (or was kicked meanwhile) enters again;
    /// the next burst is scheduled.
    pub fn on_host_burst_end(
        &mut self,
        vcpu: u32,
        q: &mut EventQueue<Event>,
        m: &mut Metrics,
        work: &mut impl HandlerWork,
    ) {
        let now = q.now();
        let (gap, _) = self.host_gap[self.vcpus[vcpu as usize].guest as usize].clone().expect("bursts configured");
        let v = &mut self.vcpus[vcpu as usize];
        v.host_busy_until = None;
        let next = now + gap.sample(&mut v.host_rng);
        q.schedule_at(next, Event::HostBurst { vcpu });
        let entry_scheduled = v.entry_scheduled;
        let state = self.vcpu_state(vcpu);
        let woken = entry_scheduled || self.vcpu_has_pending(vcpu);
        if state == VcpuState::Preempted || (woken && !matches!(state, VcpuState::Running { .. })) {
            self.on_vcpu_entry(vcpu, q, m, work);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iommu::posted::PostedParams;

    fn guest(vcpus: u32) -> GuestParams {
        GuestParams {
            name: "vm".into(),
            vcpu_count: vcpus,
            pcpus: (0..vcpus).map(CpuId).collect(),
            host_bursts: None,
            posted: PostedParams {
                notify_running: SimDuration::ZERO,
                wakeup_irq_entry: SimDuration::ZERO,
                wakeup_list_entry: SimDuration::ZERO,
                kick: SimDuration::ZERO,
                wake_to_vm_entry: SimDuration::ZERO,
            },
            remapped_forward: SimDuration::ZERO,
        }
    }

    /// The vCPU each provisioned queue landed on, in order.
    fn placement(vcpus: u32, devices: &[u32]) -> Vec<Vec<u32>> {
        let mut m = Metrics::new();
        let all = crate::platform::metrics::register(&mut m);
        let mut g = Guests::new(&[guest(vcpus)], vcpus, false, 1, all.guest, all.core);
        let mut first = 0;
        devices
            .iter()
            .map(|&queues| {
                g.provision(0, first, queues, &mut m);
                first += queues;
                g.take_chip_ops()
                    .into_iter()
                    .map(|op| match op {
                        ChipOp::Assign { vcpu, .. } => vcpu,
                        other => panic!("{other:?}"),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn devices_with_fewer_queues_than_vcpus_together_cover_every_vcpu() {
        // Two 4-queue devices on 8 vCPUs: queue q's group is vCPUs {2q, 2q+1}; the first
        // device takes the first of each pair, the second the one left with fewer vectors.
        // (By queue index alone, both devices used vCPUs 0-3 and 4-7 got no interrupt.)
        assert_eq!(placement(8, &[4, 4]), [vec![0, 2, 4, 6], vec![1, 3, 5, 7]]);
        // At least as many queues as vCPUs: queue q on vCPU q mod n, as group_cpus_evenly.
        assert_eq!(placement(4, &[6]), [vec![0, 1, 2, 3, 0, 1]]);
    }
}
