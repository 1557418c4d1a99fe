//! Guest IPIs at a rate: each vCPU's sends, the x2APIC ICR write's exit or IPI
//! virtualization, and delivery to the target by posting, KVM's wake-up or injection.

use super::*;

impl Guests {
    /// Registers the guest IPI counters and returns each sending vCPU's first IPI (an
    /// exponential gap from its stream); nothing when no guest sends IPIs.
    pub fn first_ipis(&mut self, m: &mut Metrics) -> Vec<(SimTime, u32)> {
        if self.params.iter().all(|g| g.ipi.is_none()) {
            return Vec::new();
        }
        self.ipi = Some(IpiIds {
            sent: m.counter("kvm.ipi_sent_count", Unit::Count, "guest IPIs sent (guests[].ipi): x2APIC ICR writes"),
            delivered: m.counter(
                "kvm.ipi_delivered_count",
                Unit::Count,
                "guest IPIs that reached the target vCPU's vIRR (notified while running, or synced at its entry)",
            ),
            merged: m.counter(
                "kvm.ipi_merged_count",
                Unit::Count,
                "guest IPIs whose vector was already pending at the target (one bit for both)",
            ),
            exits: m.counter(
                "kvm.ipi_exit_count",
                Unit::Count,
                "the senders' MSR_WRITE exits for ICR writes (none with IPIv)",
            ),
            wakeups: m.counter("kvm.ipi_wakeup_count", Unit::Count, "halted target vCPUs a guest IPI woke"),
        });
        let mut out = Vec::new();
        for vcpu in 0..self.vcpus.len() as u32 {
            if let Some(gap) = self.ipi_gap(vcpu) {
                out.push((SimTime::ZERO + gap, vcpu));
            }
        }
        out
    }

    /// The next gap of `vcpu`'s IPI stream (Poisson at its guest's rate), if it sends IPIs.
    fn ipi_gap(&mut self, vcpu: u32) -> Option<SimDuration> {
        let v = &mut self.vcpus[vcpu as usize];
        let rate = self.params[v.guest as usize].ipi?.rate;
        let rng = v.ipi_rng.as_mut()?;
        Some(DurationDist::exponential(SimDuration::from_ps_f64(1e12 / rate)).sample(rng))
    }

    /// A vCPU's next IPI is due (the next is drawn now). A running vCPU sends it now; a
    /// preempted or waiting one at its next entry; a halted one is woken the way KVM wakes
    /// it for its own timer (the guest's timer would run the code that sends it:
    /// `kvm_vcpu_wake_up`, the kick and the scheduler wake-up), and sends it at its entry.
    pub fn on_ipi_due(&mut self, vcpu: u32, q: &mut EventQueue<Event>, m: &mut Metrics, work: &mut impl HandlerWork) {
        let now = q.now();
        if let Some(gap) = self.ipi_gap(vcpu) {
            q.schedule_at(now + gap, Event::IpiSend { vcpu });
        }
        let v = &mut self.vcpus[vcpu as usize];
        v.ipi_due += 1;
        if v.running {
            self.flush_ipis(vcpu, q, m);
            self.run_guest(vcpu, q, m, work);
        } else if !v.runnable && !v.entry_scheduled {
            let posted = self.params[v.guest as usize].posted;
            self.wake_at(vcpu, now + posted.kick + posted.wake_to_vm_entry, q);
        }
    }

    /// The running vCPU sends the IPIs due, while it runs (without IPIv each send exits).
    pub(super) fn flush_ipis(&mut self, vcpu: u32, q: &mut EventQueue<Event>, m: &mut Metrics) {
        while self.vcpus[vcpu as usize].ipi_due > 0 && self.vcpus[vcpu as usize].running {
            self.vcpus[vcpu as usize].ipi_due -= 1;
            self.send_ipi(vcpu, q, m);
        }
    }

    /// `from` writes the x2APIC ICR: a fixed, physical-mode IPI to the next of its guest's
    /// other vCPUs. With IPIv the CPU posts it through the PID-pointer table (no exit);
    /// without, the write exits (MSR_WRITE) and KVM delivers it from the exit
    /// (`kvm_x2apic_icr_write` → `kvm_apic_send_ipi`) before the entry.
    fn send_ipi(&mut self, from: u32, q: &mut EventQueue<Event>, m: &mut Metrics) {
        let ids = self.ipi.expect("registered with the first IPIs");
        let guest = self.vcpus[from as usize].guest;
        let (first, count) = (self.first_vcpu[guest as usize], self.params[guest as usize].vcpu_count);
        let k = self.vcpus[from as usize].ipi_sent;
        self.vcpus[from as usize].ipi_sent += 1;
        let to = first + ((from - first) as u64 + 1 + k % u64::from(count - 1)) as u32 % count;
        m.add(ids.sent, 1);
        let now = q.now();
        let posted = self.params[guest as usize].posted;
        let Backend::X86(pi) = &mut self.backend else { panic!("guest IPIs are modelled on x86") };
        if pi.vcpu(VcpuId(to)).descriptor().pir_test(IPI_VECTOR) {
            m.add(ids.merged, 1);
        }
        if self.params[guest as usize].kvm.ipiv {
            let delivery = PostedDelivery { params: posted }.deliver(
                pi,
                PostedIrte { vcpu: VcpuId(to), vector: IPI_VECTOR, urgent: false },
                now,
                now,
            );
            match delivery.path {
                DeliveryPath::NotifiedRunning => m.add(ids.delivered, 1),
                DeliveryPath::Accumulated { .. } | DeliveryPath::Coalesced => {}
                DeliveryPath::Wakeup { pcpu, walk } => {
                    // A blocked target's PID has NV = the wake-up vector: the device path's
                    // wake-up IRQ, list walk and kick, then the scheduler wake-up.
                    let visible = delivery.visible_at.expect("a woken vCPU enters");
                    self.vcpus[to as usize].wakeup_irqs += 1;
                    m.add(ids.wakeups, 1);
                    m.add(self.ids.kvm_wakeup_walked, walk.walked as u64);
                    let handler = visible.since(now) - posted.wake_to_vm_entry;
                    self.host_interrupt(pcpu, handler, q, m);
                    self.wake_at(to, visible, q);
                }
            }
        } else {
            match pi.inject(VcpuId(to), IPI_VECTOR) {
                InjectOutcome::Notified => {
                    pi.sync_pir(VcpuId(to));
                    m.add(ids.delivered, 1);
                }
                InjectOutcome::Accumulated | InjectOutcome::AlreadyPending => {}
                InjectOutcome::WokenUp => {
                    // KVM wakes it from the sender's exit (`kvm_vcpu_wake_up`): the kick is
                    // part of the exit's cost, the scheduler wake-up latency.
                    m.add(ids.wakeups, 1);
                    self.wake_at(to, now + posted.kick + posted.wake_to_vm_entry, q);
                }
            }
            m.add(ids.exits, 1);
            let slot = self.vcpus[from as usize].slot as usize;
            self.take_pcpu(slot, SimDuration::ZERO, ExitReason::IcrWrite, q, m);
        }
    }
}
