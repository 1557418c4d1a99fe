//! The GICv4 side of the ITS as KVM drives it: a VM's vPEs and doorbells (`vgic_v4_init`,
//! teardown), forwarding a device event to a vLPI and back, making a vPE resident or not
//! (VMOVP on a move, the GICv4.0 doorbell's enable bit), and the GICv4.0 vPE proxy device.

use sim::SimTime;

use super::super::cmdq::{CommandTiming, ItsCommand};
use super::super::{
    CollectionId, EventId, GicVersion, ItsDeviceId, ItsError, Lpi, VPE_PROXY_DEVICE, VintId, VmId, VpeId, round_up_pow2,
};
use super::{Its, Seq, VlpiMap, VmCreated, VmState, VpeState};
use crate::ids::CpuId;

impl Its {
    /// `vgic_v4_init` for a VM of `vcpus` vCPUs: one vPE each, a block of
    /// `roundup_pow_of_two(vcpus)` doorbell LPIs (all or nothing), VMAPP + VSYNC and
    /// VINVALL + VSYNC per vPE (mapped to CPU 0), and on GICv4.1 the doorbells enabled
    /// (INVDB + VSYNC each) because the redistributor manages them.
    pub fn create_vm(&mut self, now: SimTime, vcpus: u32) -> Result<VmCreated, ItsError> {
        let mut seq = self.begin(now);
        self.check_v4()?;
        if vcpus == 0 {
            return Err(ItsError::ZeroCount);
        }
        let want = round_up_pow2(vcpus);
        let grant = self.lpis.alloc(want).ok_or(ItsError::LpiExhausted { requested: want, granted: 0 })?;
        if grant.granted < vcpus {
            self.lpis.free(grant.base, grant.granted).expect("returning a block just allocated");
            return Err(ItsError::LpiExhausted { requested: want, granted: grant.granted });
        }
        // its_vpe_init per vCPU: one ID each from the host-wide IDA; on a failure the
        // doorbells and the IDs taken go back (its_vpe_irq_domain_free).
        let free = self.params.vpe_id_capacity() - self.vpe_ids_used();
        if vcpus > free {
            self.lpis.free(grant.base, grant.granted).expect("returning a block just allocated");
            return Err(ItsError::VpeIdsExhausted { requested: vcpus, free });
        }
        let vm = VmId(self.vms.len() as u32);
        let v41 = self.params.gic_version == GicVersion::V4_1;
        let first = self.vpes.len() as u32;
        let vpes: Vec<VpeId> = (first..first + vcpus).map(VpeId).collect();
        for i in 0..vcpus {
            self.vpes.push(VpeState {
                vm,
                doorbell: grant.base.0 + i,
                col: 0,
                resident_on: None,
                db_irq_enabled: false,
                v41_db_armed: false,
                v41_db_fired: false,
                proxy_event: None,
                alive: true,
            });
        }
        self.vms.push(VmState { vpes: vpes.clone(), db_base: grant.base.0, db_granted: grant.granted, alive: true });
        for &vpe in &vpes {
            self.issue(&mut seq, ItsCommand::Vmapp { vpe, target: CpuId(0), valid: true });
            self.issue(&mut seq, ItsCommand::Vinvall { vpe });
        }
        if v41 {
            for &vpe in &vpes {
                let st = &mut self.vpes[vpe.0 as usize];
                st.db_irq_enabled = true;
                let db = st.doorbell;
                self.prop_mem.insert(db);
                self.issue(&mut seq, ItsCommand::Invdb { vpe });
            }
        }
        Ok(VmCreated { vm, vpes, doorbell_base: grant.base, timing: self.end(seq) })
    }

    /// vPE IDs held by live VMs.
    pub fn vpe_ids_used(&self) -> u32 {
        self.vpes.iter().filter(|v| v.alive).count() as u32
    }

    /// `vgic_v4_teardown`: unmap every vPE (VMAPP V=0 + VSYNC; on GICv4.0 the proxy slot is
    /// discarded too) and return the doorbell LPIs. Refused while vLPIs are forwarded to it.
    pub fn destroy_vm(&mut self, now: SimTime, vm: VmId) -> Result<CommandTiming, ItsError> {
        let mut seq = self.begin(now);
        let state = self.vms.get(vm.0 as usize).filter(|v| v.alive).ok_or(ItsError::UnknownVm(vm))?;
        if self.devices.values().any(|d| d.vm == Some(vm)) {
            return Err(ItsError::VmBusy(vm));
        }
        let (vpes, base, granted) = (state.vpes.clone(), state.db_base, state.db_granted);
        for &vpe in &vpes {
            self.proxy_unmap(&mut seq, vpe);
            let target = CpuId(self.vpes[vpe.0 as usize].col);
            self.issue(&mut seq, ItsCommand::Vmapp { vpe, target, valid: false });
            let st = &mut self.vpes[vpe.0 as usize];
            st.alive = false;
            st.resident_on = None;
            let db = st.doorbell;
            self.prop_mem.remove(&db);
            self.prop_seen.remove(&db);
            self.pending_masked.remove(&db);
        }
        self.lpis.free(Lpi(base), granted).expect("a VM's doorbell block goes back exactly once");
        self.vms[vm.0 as usize].alive = false;
        Ok(self.end(seq))
    }

    /// `its_vlpi_map` (KVM's `kvm_vgic_v4_set_forwarding`): forward an active event to a vPE
    /// as `vintid`. First time: DISCARD + SYNC of the physical mapping, then VMAPTI + VSYNC
    /// (with the vPE's doorbell on GICv4.0 when `doorbell_enabled`; KVM always asks for it).
    /// Already forwarded: VMOVI + VSYNC to the new vPE.
    pub fn forward_vlpi(
        &mut self,
        now: SimTime,
        device: ItsDeviceId,
        event: EventId,
        vpe: VpeId,
        vintid: VintId,
        doorbell_enabled: bool,
    ) -> Result<CommandTiming, ItsError> {
        let mut seq = self.begin(now);
        self.check_v4()?;
        let vm = self.vpe_state(vpe)?.vm;
        let (_, ev) = self.event(device, event)?;
        if !ev.active {
            return Err(ItsError::EventInactive { device, event });
        }
        let d = self.devices.get_mut(&device.0).expect("checked by event()");
        match d.vm {
            Some(other) if other != vm => return Err(ItsError::VmMismatch(device)),
            _ => d.vm = Some(vm),
        }
        let doorbell = (self.params.gic_version == GicVersion::V4_0 && doorbell_enabled)
            .then(|| Lpi(self.vpes[vpe.0 as usize].doorbell));
        let map = VlpiMap { vpe, vintid, db_enabled: doorbell_enabled, enabled: true };
        if ev.vlpi.is_some() {
            self.set_vlpi_map(device, event, map);
            self.issue(&mut seq, ItsCommand::Vmovi { device, event, vpe, doorbell });
        } else {
            self.issue(&mut seq, ItsCommand::Discard { device, event });
            self.set_vlpi_map(device, event, map);
            self.devices.get_mut(&device.0).expect("exists").nr_vlpis += 1;
            self.issue(&mut seq, ItsCommand::Vmapti { device, event, vpe, vintid, doorbell });
        }
        Ok(self.end(seq))
    }

    /// `its_vlpi_unmap`: DISCARD + SYNC of the virtual mapping, MAPTI + SYNC of the physical
    /// one, then the LPI enabled and invalidated.
    pub fn unforward_vlpi(
        &mut self,
        now: SimTime,
        device: ItsDeviceId,
        event: EventId,
    ) -> Result<CommandTiming, ItsError> {
        let mut seq = self.begin(now);
        let (base, ev) = self.event(device, event)?;
        if ev.vlpi.is_none() {
            return Err(ItsError::NotForwarded { device, event });
        }
        self.issue(&mut seq, ItsCommand::Discard { device, event });
        self.event_mut(device, event).vlpi = None;
        let lpi = base + event.0;
        self.issue(&mut seq, ItsCommand::Mapti { device, event, lpi: Lpi(lpi), collection: CollectionId(ev.cpu) });
        self.prop_mem.insert(lpi);
        self.invalidate_lpi(&mut seq, device, event, lpi);
        let d = self.devices.get_mut(&device.0).expect("exists");
        d.nr_vlpis -= 1;
        if d.nr_vlpis == 0 {
            d.vm = None;
        }
        Ok(self.end(seq))
    }

    /// `vgic_v4_load`: if the vCPU now runs on another CPU, VMOVP + VSYNC (and on GICv4.0 the
    /// doorbell moved through the proxy, MOVI + SYNC, or cleared on the old redistributor
    /// with DirectLPI); then the vPE is made resident. On GICv4.0 KVM also disables the
    /// doorbell (mask + invalidate) and clears a pending one (CLEAR + SYNC, or direct).
    pub fn vcpu_load(&mut self, now: SimTime, vpe: VpeId, cpu: CpuId) -> Result<CommandTiming, ItsError> {
        let mut seq = self.begin(now);
        self.check_v4()?;
        self.check_cpu(cpu)?;
        self.vpe_state(vpe)?;
        let v40 = self.params.gic_version == GicVersion::V4_0;
        let direct = self.params.has_direct_lpi();
        self.move_vpe(&mut seq, vpe, cpu);
        if v40 && self.vpes[vpe.0 as usize].db_irq_enabled {
            // its_make_vpe_resident: disable_irq_nosync(vpe->irq) (IRQ_DISABLE_UNLAZY).
            self.set_doorbell_irq(&mut seq, vpe, false);
        }
        let st = &mut self.vpes[vpe.0 as usize];
        st.resident_on = Some(cpu);
        st.v41_db_armed = false;
        st.v41_db_fired = false;
        if v40 {
            let db = st.doorbell;
            // irq_set_irqchip_state(vpe->irq, IRQCHIP_STATE_PENDING, false)
            if direct {
                self.pending_masked.remove(&db);
                self.direct(&mut seq);
            } else {
                let ev = self.proxy_map(&mut seq, vpe);
                self.issue(&mut seq, ItsCommand::Clear { device: VPE_PROXY_DEVICE, event: EventId(ev) });
            }
        }
        Ok(self.end(seq))
    }

    /// `its_vpe_set_affinity` alone (the first half of `vgic_v4_load`, whose
    /// `irq_set_affinity` KVM calls before making the vPE resident): if the vPE is mapped to
    /// another CPU, VMOVP + VSYNC to `cpu` (and on GICv4.0 its doorbell moved: MOVI + SYNC
    /// through the proxy, or cleared on the old redistributor with DirectLPI). `None` when
    /// the vPE is already there (Linux's `from == cpu`: nothing sent). The vPE's residency is
    /// unchanged; [`Its::vcpu_load`] then finds it in place and sends no VMOVP.
    pub fn vpe_set_affinity(
        &mut self,
        now: SimTime,
        vpe: VpeId,
        cpu: CpuId,
    ) -> Result<Option<CommandTiming>, ItsError> {
        let mut seq = self.begin(now);
        self.check_v4()?;
        self.check_cpu(cpu)?;
        self.vpe_state(vpe)?;
        let moved = self.move_vpe(&mut seq, vpe, cpu);
        let timing = self.end(seq);
        Ok(moved.then_some(timing))
    }

    /// The vPE's affinity to `cpu` (`its_vpe_set_affinity`): VMOVP and the GICv4.0 doorbell
    /// move when it was mapped elsewhere; whether it moved.
    fn move_vpe(&mut self, seq: &mut Seq, vpe: VpeId, cpu: CpuId) -> bool {
        let st = self.vpes[vpe.0 as usize];
        if st.col == cpu.0 {
            return false;
        }
        self.vpes[vpe.0 as usize].col = cpu.0;
        self.issue(seq, ItsCommand::Vmovp { vpe, target: cpu });
        if self.params.gic_version == GicVersion::V4_0 {
            if self.params.has_direct_lpi() {
                // GICR_CLRLPIR on the old redistributor, then wait for GICR_SYNCR.
                self.pending_masked.remove(&st.doorbell);
                self.direct(seq);
            } else {
                let ev = self.proxy_map(seq, vpe);
                self.issue(
                    seq,
                    ItsCommand::Movi { device: VPE_PROXY_DEVICE, event: EventId(ev), collection: CollectionId(cpu.0) },
                );
                self.proxy.as_mut().expect("proxy exists on GICv4.0").col_map[ev as usize] = cpu.0;
            }
        }
        true
    }

    /// `vgic_v4_put`: make the vPE non-resident. `need_doorbell` is KVM's "the vCPU is blocking
    /// in WFI". GICv4.0: the doorbell IRQ is enabled (unmask + invalidate) if needed. GICv4.1:
    /// the redistributor is told to ring the vPE's doorbell (`GICR_VPENDBASER.DB`), no command.
    /// Nothing happens if the vPE is not resident.
    pub fn vcpu_put(&mut self, now: SimTime, vpe: VpeId, need_doorbell: bool) -> Result<CommandTiming, ItsError> {
        let mut seq = self.begin(now);
        self.check_v4()?;
        let st = *self.vpe_state(vpe)?;
        if st.resident_on.is_none() {
            return Ok(self.end(seq));
        }
        if self.params.gic_version == GicVersion::V4_0 {
            if need_doorbell && !st.db_irq_enabled {
                self.set_doorbell_irq(&mut seq, vpe, true);
            }
        } else {
            let st = &mut self.vpes[vpe.0 as usize];
            st.v41_db_armed = need_doorbell;
            st.v41_db_fired = false;
        }
        self.vpes[vpe.0 as usize].resident_on = None;
        Ok(self.end(seq))
    }

    /// KVM's doorbell handler (`vgic_v4_doorbell_handler`): on GICv4.0 it disables the doorbell
    /// IRQ ("We got the message, no need to fire again"), a mask + invalidate; on GICv4.1
    /// nothing, since the redistributor already stopped ringing.
    pub fn doorbell_handled(&mut self, now: SimTime, vpe: VpeId) -> Result<CommandTiming, ItsError> {
        let mut seq = self.begin(now);
        self.check_v4()?;
        let st = *self.vpe_state(vpe)?;
        if self.params.gic_version == GicVersion::V4_0 && st.db_irq_enabled {
            self.set_doorbell_irq(&mut seq, vpe, false);
        }
        Ok(self.end(seq))
    }

    /// Enable or disable a vPE's doorbell IRQ on GICv4.0 (`its_vpe_mask_irq`/`unmask`):
    /// property table write, then a direct invalidation or INV through the proxy.
    fn set_doorbell_irq(&mut self, seq: &mut Seq, vpe: VpeId, enable: bool) {
        let st = &mut self.vpes[vpe.0 as usize];
        st.db_irq_enabled = enable;
        let db = st.doorbell;
        if enable {
            self.prop_mem.insert(db);
        } else {
            self.prop_mem.remove(&db);
        }
        if self.params.has_direct_lpi() {
            self.refresh_prop(db);
            self.direct(seq);
        } else {
            let ev = self.proxy_map(seq, vpe);
            self.issue(seq, ItsCommand::Inv { device: VPE_PROXY_DEVICE, event: EventId(ev) });
        }
    }

    /// `its_vpe_db_proxy_map_locked`: give the vPE a proxy slot (evicting round-robin) and
    /// MAPTI its doorbell there. Returns the slot.
    fn proxy_map(&mut self, seq: &mut Seq, vpe: VpeId) -> u32 {
        if let Some(ev) = self.vpes[vpe.0 as usize].proxy_event {
            return ev;
        }
        let victim_vpe = {
            let p = self.proxy.as_ref().expect("proxy exists on GICv4.0 without DirectLPI");
            p.slots[p.next_victim]
        };
        if let Some(old) = victim_vpe {
            self.proxy_unmap(seq, old);
        }
        let victim = self.proxy.as_ref().expect("proxy exists").next_victim;
        let col = self.vpes[vpe.0 as usize].col;
        let db = self.vpes[vpe.0 as usize].doorbell;
        let p = self.proxy.as_mut().expect("proxy exists");
        p.slots[victim] = Some(vpe);
        p.next_victim = (victim + 1) % p.slots.len();
        p.col_map[victim] = col;
        self.vpes[vpe.0 as usize].proxy_event = Some(victim as u32);
        self.issue(
            seq,
            ItsCommand::Mapti {
                device: VPE_PROXY_DEVICE,
                event: EventId(victim as u32),
                lpi: Lpi(db),
                collection: CollectionId(col),
            },
        );
        victim as u32
    }

    /// `its_vpe_db_proxy_unmap_locked`: DISCARD the vPE's proxy slot.
    fn proxy_unmap(&mut self, seq: &mut Seq, vpe: VpeId) {
        let Some(ev) = self.vpes[vpe.0 as usize].proxy_event else {
            return;
        };
        self.issue(seq, ItsCommand::Discard { device: VPE_PROXY_DEVICE, event: EventId(ev) });
        let p = self.proxy.as_mut().expect("proxy exists");
        p.slots[ev as usize] = None;
        if p.slots[p.next_victim].is_some() {
            p.next_victim = ev as usize;
        }
        self.vpes[vpe.0 as usize].proxy_event = None;
    }
}
