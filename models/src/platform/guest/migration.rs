//! vCPU migration at a rate: the host scheduler moves a guest's vCPUs between its pCPUs,
//! and the posted descriptor follows as KVM's `vmx_vcpu_pi_put` / `vmx_vcpu_pi_load` have it
//! (x86), or the vPE as `vgic_v4_put` / `vgic_v4_load` have it (ARM GICv4: non-resident on
//! the old redistributor, a VMOVP + VSYNC on the ITS at the load on the new pCPU, which KVM
//! waits for, then resident there).

use super::*;

impl Guests {
    /// Registers the migration metric and returns each migrating guest's first migration
    /// (one period after the start); nothing when no guest migrates.
    pub fn first_migrations(&mut self, m: &mut Metrics) -> Vec<(SimTime, u32)> {
        let out: Vec<(SimTime, u32)> = (0..self.params.len())
            .filter_map(|g| self.params[g].migration.map(|mp| (SimTime::ZERO + mp.every, g as u32)))
            .collect();
        if !out.is_empty() {
            self.migration_count = Some(m.counter(
                "kvm.vcpu_migration_count",
                Unit::Count,
                "vCPUs the host scheduler moved to another pCPU (guests[].migration)",
            ));
            if matches!(self.backend, Backend::Arm { .. }) {
                self.vmovp_count = Some(m.counter(
                    "arm.vmovp_count",
                    Unit::Count,
                    "VMOVPs KVM sent to point a migrated vCPU's vPE at its new pCPU (vgic_v4_load → its_vpe_set_affinity)",
                ));
            }
        }
        out
    }

    /// ARM: whether `vcpu`, about to be loaded on its pCPU, has its vPE mapped to another
    /// pCPU (it migrated since its last load). Then KVM's `vgic_v4_load` first moves the vPE
    /// (`irq_set_affinity` → VMOVP + VSYNC, asked of the chip as a [`ChipOp::VpeMove`]) and
    /// spins until the ITS completes it: the pCPU holds host work from now, which
    /// [`Self::vpe_moved`] extends to the completion; the load and the entry follow when it
    /// ends. Until then the vPE stays non-resident, so a vLPI meanwhile goes to its pending
    /// table (a doorbell too if it halted with one armed, rung on the new pCPU: the VMOVP
    /// moved it) and is synced at the entry.
    pub(super) fn vpe_elsewhere(&mut self, vcpu: u32, q: &mut EventQueue<Event>, m: &mut Metrics) -> bool {
        let v = &self.vcpus[vcpu as usize];
        let (pcpu, slot) = (v.pcpu, v.slot as usize);
        let Backend::Arm { vpe_on, vpes, .. } = &mut self.backend else { return false };
        if vpe_on[vcpu as usize] == pcpu {
            return false;
        }
        vpe_on[vcpu as usize] = pcpu;
        self.chip_ops.push(ChipOp::VpeMove { vpe: vpes[vcpu as usize], vcpu, pcpu });
        self.take_pcpu(slot, SimDuration::ZERO, ExitReason::Preemption, q, m);
        true
    }

    /// The chip answered a [`ChipOp::VpeMove`]: the VMOVP (counted) completed at `done`, so
    /// the loading pCPU's host work lasts until then; with nothing sent it ends now.
    pub fn vpe_moved(&mut self, moved: VpeMoved, q: &mut EventQueue<Event>, m: &mut Metrics) {
        let Some(done) = moved.done else { return };
        m.add(self.vmovp_count.expect("registered with the first migration"), 1);
        let slot = self.slot_of[moved.pcpu.0 as usize] as usize;
        debug_assert!(self.pcpus[slot].host_until.is_some(), "the load holds the pCPU");
        self.take_pcpu(slot, done.since(q.now()), ExitReason::Preemption, q, m);
    }

    /// The host scheduler moves guest `guest`'s next vCPU (round robin) to the next CPU of
    /// the guest's pCPU set (ascending, wrapping). Both pCPUs do the scheduler's work
    /// (`cost` of host work each: the source preempts what runs there, a preemption exit,
    /// and the vCPU if it ran; the target likewise). A runnable vCPU joins the target's run
    /// queue (or takes it when idle) as a preempted vCPU (x86: SN = 1, so what is posted
    /// meanwhile accumulates in the PIR); its next entry loads it there
    /// (`vmx_vcpu_pi_load`: NDST = the new pCPU, SN = 0, and ON set when the PIR is not
    /// empty, so what was posted in flight is injected at that entry). A halted vCPU stays
    /// blocked as KVM left it: NV = the wake-up vector, NDST and the wake-up list those of
    /// the pCPU it halted on (`pi_enable_wakeup_handler`), so its next wake-up IRQ is taken
    /// there and the load on the new pCPU takes it off that list. The IRTE is not written:
    /// it names the descriptor, not a pCPU.
    pub fn on_migrate(&mut self, guest: u32, q: &mut EventQueue<Event>, m: &mut Metrics) {
        let now = q.now();
        let params = self.params[guest as usize].migration.expect("a migrating guest");
        q.schedule_at(now + params.every, Event::Migrate { guest });
        let (first, count) = self.vcpus_of(guest);
        let k = self.migrate_next[guest as usize];
        self.migrate_next[guest as usize] = (k + 1) % count;
        let vcpu = first + k;
        let from = self.vcpus[vcpu as usize].pcpu;
        let mut set = self.params[guest as usize].pcpus.clone();
        set.sort_unstable();
        set.dedup();
        let to = set.iter().copied().find(|&c| c > from).unwrap_or(set[0]);
        debug_assert_ne!(to, from, "validation gives a migrating guest two pCPUs at least");
        m.add(self.migration_count.expect("registered with the first migration"), 1);
        let (from_slot, to_slot) = (self.vcpus[vcpu as usize].slot as usize, self.slot_of[to.0 as usize] as usize);
        let runnable = self.vcpus[vcpu as usize].runnable;
        // The source: the scheduler's work preempts what runs there (the vCPU itself, if it
        // ran: its exit is timed until its entry on the target).
        self.take_pcpu(from_slot, params.cost, ExitReason::Preemption, q, m);
        let p = &mut self.pcpus[from_slot];
        if p.current == Some(vcpu) {
            p.current = None;
            p.slice_armed = false;
            p.slice_gen += 1;
        }
        p.runq.retain(|&c| c != vcpu);
        let v = &mut self.vcpus[vcpu as usize];
        v.pcpu = to;
        v.slot = to_slot as u32;
        // The target: the enqueue and the switch.
        self.take_pcpu(to_slot, params.cost, ExitReason::Preemption, q, m);
        if runnable {
            let p = &mut self.pcpus[to_slot];
            if p.current.is_none() {
                p.current = Some(vcpu);
                p.stint_from = now;
            } else {
                p.runq.push_back(vcpu);
            }
        }
    }
}
