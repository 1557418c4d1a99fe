//! The platform's metric ids, one struct per component that updates them, registered in
//! one place so the report lists counters and stages in a fixed order (the pipeline order:
//! raise, MSI write, remapping, queue wait, handler, EOI, end to end; then the guest and ARM
//! paths). That order is part of the report format: a new metric goes after the existing
//! ones of its kind.

use sim::{CounterId, HistogramId, Metrics, Unit};

use crate::iommu::remap::RemapFault;

/// Shared by every server that runs handlers (host CPUs, posted-MSI demux, vCPUs) and by the
/// router: the handler stages, delivery, loss.
#[derive(Debug, Clone, Copy)]
pub(super) struct CoreIds {
    pub delivered: CounterId,
    pub lost: CounterId,
    pub lost_no_handler: CounterId,
    pub queue_wait: HistogramId,
    pub handler: HistogramId,
    pub eoi: HistogramId,
    pub end_to_end: HistogramId,
    /// A vector already pending in a PIR (host posted MSI, a vCPU's PIR, a vPE's table).
    pub merged_pir: CounterId,
    pub setup_routed: CounterId,
}

/// Updated by the devices: raises, masked-entry merges, the MSI write, IMS slots.
#[derive(Debug, Clone, Copy)]
pub(super) struct DeviceIds {
    pub raised: CounterId,
    pub pending_merged: CounterId,
    pub msi_write: HistogramId,
    pub setup_ims_slot_fail: CounterId,
    /// Raises dropped on a masked IMS slot (registered where a device drops them).
    pub lost_ims_masked: Option<CounterId>,
}

/// Updated by the x86 chip: the vector domain and the VT-d remapping unit.
#[derive(Debug, Clone, Copy)]
pub(super) struct X86Ids {
    pub lost_remap: [CounterId; 7],
    pub fault_recorded: CounterId,
    pub fault_overflow: CounterId,
    pub fault_fpd: CounterId,
    pub fault_logged: CounterId,
    pub fault_suppressed: CounterId,
    pub cache_hit: CounterId,
    pub cache_miss: CounterId,
    pub irte_updates: CounterId,
    pub lost_not_interrupt: CounterId,
    pub lost_no_handler: CounterId,
    pub retriggered: CounterId,
    pub setup_reserve_fail: CounterId,
    pub setup_vector_fail: CounterId,
    pub setup_irte_fail: CounterId,
    pub multi_msi_fallback: CounterId,
    pub affinity_broken: CounterId,
    pub managed_shutdown: CounterId,
    pub managed_restart: CounterId,
    pub migrated: CounterId,
    pub migration_failed: CounterId,
    pub unplug_refused: CounterId,
    pub unplug_busy: CounterId,
    pub no_longer_affine: CounterId,
    pub affinity_refused: CounterId,
    pub reservation_exceeds: CounterId,
    pub vector_leaked: CounterId,
    pub moves_completed: CounterId,
    pub remap: HistogramId,
    pub irte_lock_wait: HistogramId,
    pub irte_update: HistogramId,
}

/// Updated by the host CPUs as servers.
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuIds {
    pub cpu_busy_ps: CounterId,
    /// Host CPUs on Lindley's recursion (`cpu::lindley`).
    pub lindley_cpus: CounterId,
    /// Remapping units whose translations were made at the raise (`Platform::end_at`).
    pub folded_units: CounterId,
    pub irq_entry: HistogramId,
    pub vfio_forward: HistogramId,
    pub merged_irr: CounterId,
}

/// Updated by the guests (vCPUs, KVM, VFIO's forward).
#[derive(Debug, Clone, Copy)]
pub(super) struct GuestIds {
    pub posted_delivery: HistogramId,
    pub kvm_notified: CounterId,
    pub kvm_accumulated: CounterId,
    pub kvm_wakeups: CounterId,
    pub kvm_wakeup_walked: CounterId,
    pub kvm_entries: CounterId,
    pub kvm_hlt_exits: CounterId,
    pub kvm_preemptions: CounterId,
    pub setup_guest_vector_fail: CounterId,
    pub kvm_remapped_fallback: CounterId,
    pub kvm_vlpi_direct: CounterId,
    pub kvm_vlpi_doorbell: CounterId,
    pub kvm_vlpi_pending: CounterId,
    pub kvm_injected_notified: CounterId,
    pub kvm_injected_wakeup: CounterId,
    /// VM exits by reason (`kvm.exit.<reason>`, VMX spelling): each sample is the time from
    /// the exit to the vCPU's next VM entry, as `perf kvm stat` times them.
    pub exits: ExitIds,
}

/// One histogram per VM exit reason.
#[derive(Debug, Clone, Copy)]
pub(super) struct ExitIds {
    pub external_interrupt: HistogramId,
    pub hlt: HistogramId,
    pub msr_write: HistogramId,
    /// APIC_ACCESS (the xAPIC EOI without APICv): registered only when a guest uses xAPIC.
    pub apic_access: Option<HistogramId>,
}

/// Registers `interrupt.lost.ims_masked_count`, only for scenarios with an IMS device that
/// drops masked raises, so that other reports are unchanged.
pub(super) fn register_lost_ims_masked(m: &mut Metrics) -> CounterId {
    m.failure_counter(
        "interrupt.lost.ims_masked_count",
        "raised while its IMS slot was masked: IMS has no pending bit and the device keeps none (ims_masked_raise: drop)",
    )
}

/// Registers `kvm.exit.apic_access` (the xAPIC EOI without APICv, handled in KVM by
/// `handle_apic_access`'s fast EOI path), only for scenarios with an xAPIC guest so that
/// other reports are unchanged.
pub(super) fn register_apic_access(m: &mut Metrics) -> HistogramId {
    m.histogram(
        "kvm.exit.apic_access",
        Unit::Picoseconds,
        "APIC_ACCESS exits of the xAPIC EOI (a store to the APIC page) without APICv (not skipped by PV EOI); exit to re-entry",
    )
}

/// Updated by the ARM chip: the ITS or the v2m frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct ArmIds {
    pub its_translate: HistogramId,
    pub its_command_wait: HistogramId,
    pub its_command: HistogramId,
    pub lost_its: [CounterId; 6],
    pub lost_no_handler: CounterId,
    pub arm_lpi_exhausted: CounterId,
    pub arm_events_exhausted: CounterId,
    pub arm_v2m_exhausted: CounterId,
    pub its_round_trips: CounterId,
    pub its_timeouts: CounterId,
    pub affinity_refused: CounterId,
}

/// Every component's ids.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ids {
    pub core: CoreIds,
    pub devices: DeviceIds,
    pub x86: X86Ids,
    pub cpu: CpuIds,
    pub guest: GuestIds,
    pub arm: ArmIds,
}

/// Registers every platform metric, in the report's order (`arm`: the VM exits under arm64's names).
// One list on purpose: the order of these calls is the order of the report's tables.
pub(super) fn register(m: &mut Metrics, arm: bool) -> Ids {
    let c = |m: &mut Metrics, name: &str, desc: &str| m.counter(name, Unit::Count, desc);
    let f = |m: &mut Metrics, name: &str, reason: &str| m.failure_counter(name, reason);
    let h = |m: &mut Metrics, name: &str, desc: &str| m.histogram(name, Unit::Picoseconds, desc);
    let raised = c(m, "interrupt.raised_count", "interrupts raised by devices");
    let delivered = c(m, "interrupt.delivered_count", "interrupts whose handler and EOI completed");
    let lost = c(m, "interrupt.lost_count", "interrupts that never reached a handler (all reasons)");
    let lost_remap = RemapFault::ALL
        .map(|fault| f(m, &format!("interrupt.lost.remap_fault_{:#04x}_count", fault.code()), fault.reason()));
    let fault_recorded = c(m, "iommu.fault_recorded_count", "remapping faults stored in a fault recording register");
    let fault_overflow = f(
        m,
        "iommu.fault_record_overflow_count",
        "Primary Fault Overflow: no free fault recording register, the fault record is lost",
    );
    let fault_fpd =
        c(m, "iommu.fault_unrecorded_fpd_count", "remapping faults not recorded because the IRTE has FPD set");
    let fault_logged = c(m, "iommu.fault_log_line_count", "lines the kernel's DMAR fault handler printed");
    let fault_suppressed =
        c(m, "iommu.fault_log_suppressed_count", "fault messages the kernel's rate limit (10 per 5 s) suppressed");
    let cache_hit = c(m, "iommu.irte_cache_hit_count", "IRTE lookups served by the interrupt entry cache");
    let cache_miss = c(m, "iommu.irte_cache_miss_count", "IRTE lookups that read the table");
    let irte_updates =
        c(m, "iommu.irte_update_count", "IRTE updates through modify_irte (global lock + IEC invalidation)");
    let lost_not_interrupt =
        f(m, "interrupt.lost.not_interrupt_address_count", "MSI writes outside the 0xFEEx_xxxx interrupt window");
    let lost_no_handler = f(m, "interrupt.lost.no_handler_count", "No irq handler for vector");
    let pending_merged = c(
        m,
        "interrupt.merged_pending_count",
        "raises while the entry was masked and its pending bit already set (MSI-X's PBA, a latching IMS device's, or the VMM's for a trapped vector the guest masked): merged, not lost",
    );
    let retriggered = c(
        m,
        "interrupt.retriggered_count",
        "interrupts that reached a CPU after it went offline and were re-sent to the new target",
    );
    let cpu_busy_ps = m.counter("cpu.busy_ps", Unit::Picoseconds, "CPU time spent in handlers and EOIs, all CPUs");
    let lindley_cpus = c(
        m,
        "cpu.lindley_path_count",
        "host CPUs whose FIFO handlers were computed by Lindley's recursion (one event per interrupt); the others ran on events",
    );
    let folded_units = c(
        m,
        "iommu.folded_path_count",
        "remapping units whose translations were made at the raise (three events an interrupt); 0: all on events",
    );
    let setup_routed = c(m, "setup.queue_routed_count", "queues with a working interrupt at the start");
    let setup_reserve_fail = f(
        m,
        "setup.vector_reserve_fail_count",
        "managed interrupts refused at allocation: a CPU of the mask has no free vector (-ENOSPC)",
    );
    let setup_vector_fail =
        f(m, "setup.vector_alloc_fail_count", "queues left without an interrupt: no free vector on any CPU (-ENOSPC)");
    let setup_irte_fail =
        f(m, "setup.irte_alloc_fail_count", "queues left without an interrupt: can't allocate an IRTE");
    let setup_ims_slot_fail =
        f(m, "setup.ims_slot_fail_count", "queues left without an interrupt: the device's IMS slots are all in use");
    let multi_msi_fallback = f(
        m,
        "setup.multi_msi_fallback_count",
        "multi-vector MSI needs interrupt remapping on x86 (contiguous vectors: -ENOSYS); one vector shared by all queues",
    );
    let affinity_broken = f(m, "x86.affinity_broken_count", "Affinity broken due to vector space exhaustion");
    let managed_shutdown =
        f(m, "x86.managed_shutdown_count", "managed interrupts shut down: no online CPU left in their mask");
    let managed_restart =
        c(m, "x86.managed_restart_count", "managed interrupts restarted when a CPU of their mask came back");
    let migrated = c(m, "x86.migrated_count", "interrupts migrated off an outgoing CPU");
    let migration_failed = f(m, "x86.migration_failed_count", "IRQ set affinity failed at CPU offline; left stale");
    let unplug_refused = f(
        m,
        "x86.unplug_refused_count",
        "CPU %u has %u vectors, %u available. Cannot disable CPU (the other CPUs cannot absorb its vectors)",
    );
    let unplug_busy = f(m, "x86.unplug_busy_count", "CPU unplug refused (-EBUSY): the boot CPU or the last online CPU");
    let no_longer_affine = f(
        m,
        "x86.no_longer_affine_count",
        "IRQ %u: no longer affine to CPU%u (moved off an offline CPU to a CPU outside its mask)",
    );
    let affinity_refused = f(
        m,
        "x86.set_affinity_fail_count",
        "affinity changes refused (-EBUSY while a move is pending, -ENOSPC, or managed)",
    );
    let reservation_exceeds =
        f(m, "x86.reservation_exceeds_count", "Interrupt reservation exceeds available resources");
    let vector_leaked =
        f(m, "x86.vector_leaked_count", "old vectors of moves leaked because their CPU went offline (before 6.10)");
    let moves_completed =
        c(m, "x86.move_completed_count", "vector moves completed by the first interrupt on the new vector");
    let msi_write = h(m, "latency.msi_write_ps", "device raise to MSI write at the interrupt controller");
    let remap = h(m, "latency.remap_ps", "IRTE lookup in the interrupt-remapping unit");
    let queue_wait = h(m, "latency.queue_wait_ps", "arrival at the CPU to the handler starting");
    let irq_entry = h(
        m,
        "latency.irq_entry_ps",
        "taking the interrupt: notification + IDT entry/exit (per interrupt, or per posted notification)",
    );
    let handler = h(m, "latency.handler_ps", "handler service time");
    let eoi = h(m, "latency.eoi_ps", "EOI write");
    let end_to_end = h(m, "latency.end_to_end_ps", "device raise to EOI done");
    let irte_lock_wait = h(m, "latency.irte_lock_wait_ps", "IRTE update: waiting for the global irq_2_ir_lock");
    let irte_update = h(m, "latency.irte_update_ps", "IRTE update: request to IEC invalidation done (wait included)");
    let merged_pir = c(
        m,
        "interrupt.merged_pir_count",
        "posted MSIs whose vector was already pending in the PIR (coalesced into one handler call)",
    );
    let posted_delivery = h(
        m,
        "latency.posted_delivery_ps",
        "posting to the guest seeing the interrupt (notification to a running vCPU), or to a halted vCPU being runnable again (wake-up, kick and scheduling; the wait for its pCPU is in end_to_end)",
    );
    let kvm_notified =
        c(m, "kvm.posted_notified_running_count", "posted interrupts notified to a running vCPU (no VM exit)");
    let kvm_accumulated = c(
        m,
        "kvm.posted_accumulated_count",
        "posted interrupts left in the PIR of a preempted vCPU (SN=1), injected at its next VM entry",
    );
    let kvm_wakeups =
        c(m, "kvm.posted_wakeup_count", "posted interrupts that woke a blocked vCPU (wake-up vector 0xf1)");
    let kvm_wakeup_walked =
        c(m, "kvm.wakeup_list_entries_walked_count", "wake-up list entries the wake-up handler visited");
    let kvm_entries = c(m, "kvm.vm_entry_count", "VM entries of halted or preempted vCPUs");
    let kvm_hlt_exits = c(m, "kvm.hlt_exit_count", "VM exits on HLT: an idle vCPU blocked");
    let kvm_preemptions = c(
        m,
        "kvm.preemption_count",
        "running vCPUs that left the guest for host work (a burst, a host interrupt) or another vCPU (a VM exit each)",
    );
    let setup_guest_vector_fail = f(m, "setup.guest_vector_fail_count", "a guest vCPU ran out of device vectors");
    let kvm_remapped_fallback = c(
        m,
        "kvm.remapped_fallback_count",
        "guest interrupts that could not be posted (multicast, lowest priority to several vCPUs, broadcast): remapped to the host, forwarded by VFIO and injected by KVM",
    );
    // perf kvm stat's names: VMX exit reasons on x86; on arm64 the exception type (IRQ) or,
    // for a trap, its exception class (WFx, SYS64).
    let exits = if arm {
        ExitIds {
            external_interrupt: h(
                m,
                "kvm.exit.irq",
                "IRQ exits: a host interrupt (a device's, a doorbell, or the tick or reschedule IPI behind a host burst, another vCPU's slice or wake-up) took the pCPU from a running vCPU; exit to re-entry",
            ),
            hlt: h(
                m,
                "kvm.exit.wfx",
                "WFx exits (a trapped WFI): the idle vCPU blocked; exit to re-entry, halted time included",
            ),
            msr_write: h(
                m,
                "kvm.exit.sys64",
                "SYS64 exits: a trapped system-register write (the guest's ICC_SGI1R_EL1 for an IPI); exit to re-entry",
            ),
            apic_access: None,
        }
    } else {
        ExitIds {
            external_interrupt: h(
                m,
                "kvm.exit.external_interrupt",
                "EXTERNAL_INTERRUPT exits: a host interrupt (a device's, VFIO's forward, the wake-up vector 0xf1, a doorbell, or the tick or reschedule IPI behind a host burst, another vCPU's slice or wake-up) took the pCPU from a running vCPU; exit to re-entry",
            ),
            hlt: h(m, "kvm.exit.hlt", "HLT exits: the idle vCPU blocked; exit to re-entry, halted time included"),
            msr_write: h(
                m,
                "kvm.exit.msr_write",
                "MSR_WRITE exits of the x2APIC EOI without APICv (not skipped by PV EOI) or of a guest IPI's ICR write without IPIv; exit to re-entry",
            ),
            apic_access: None,
        }
    };
    let kvm_vlpi_direct = c(m, "kvm.vlpi_direct_count", "ARM GICv4: vLPIs injected into a resident vPE (no exit)");
    let kvm_vlpi_doorbell =
        c(m, "kvm.vlpi_doorbell_count", "ARM GICv4: vLPIs for a non-resident vPE that rang its doorbell");
    let kvm_vlpi_pending =
        c(m, "kvm.vlpi_pending_count", "ARM GICv4: vLPIs left in a non-resident vPE's pending table with no doorbell");
    let its_translate = h(
        m,
        "latency.its_translate_ps",
        "ARM: GITS_TRANSLATER write (or v2m SETSPI) to the interrupt pending at the CPU",
    );
    let its_command_wait = h(m, "latency.its_command_wait_ps", "ARM: waiting for the ITS lock and command-queue slots");
    let its_command =
        h(m, "latency.its_command_ps", "ARM: an ITS operation (command + SYNC round trips, wait included)");
    let lost_its = [
        ("unmapped_device", "ITS: no MAPD for the DeviceID; the write is dropped"),
        ("event_out_of_range", "ITS: EventID beyond the device's ITT; the write is dropped"),
        ("unmapped_event", "ITS: no ITT entry for the EventID; the write is dropped"),
        ("collection_unmapped", "ITS: the collection has no MAPC; the write is dropped"),
        ("lpi_disabled", "ITS: the LPI is disabled in the property table"),
        ("vpe_unmapped", "ITS: the vPE has no VMAPP"),
    ]
    .map(|(what, reason)| f(m, &format!("interrupt.lost.its_{what}_count"), reason));
    let arm_lpi_exhausted = f(
        m,
        "setup.lpi_exhausted_count",
        "ARM: no free LPI range (its_lpi_alloc -ENOSPC, its_msi_prepare -ENOMEM): the device gets no MSIs",
    );
    let arm_events_exhausted = f(
        m,
        "setup.its_events_exhausted_count",
        "ARM: no free event in the device's LPI block (its_alloc_device_irq -ENOSPC)",
    );
    let arm_v2m_exhausted = f(m, "setup.v2m_spi_exhausted_count", "ARM GICv2m: no free SPI in the MSI frame (-ENOSPC)");
    let its_round_trips = c(m, "arm.its_command_round_trip_count", "ITS commands waited for (each followed by SYNC)");
    let its_timeouts = f(m, "arm.its_queue_timeout_count", "ITS queue timeout");
    let vfio_forward = h(
        m,
        "latency.vfio_forward_ps",
        "host side of a guest interrupt that could not be posted: arrival at the pCPU to KVM's injection (waiting for the CPU, VFIO's handler, the irqfd and KVM's injection)",
    );
    let merged_irr = c(
        m,
        "interrupt.merged_irr_count",
        "interrupts that reached a CPU whose IRR bit for their vector was already set (one handler run serves them all)",
    );
    let kvm_injected_notified = c(
        m,
        "kvm.injected_notified_count",
        "forwarded interrupts KVM injected into a running vCPU (PIR + notification IPI)",
    );
    let kvm_injected_wakeup = c(
        m,
        "kvm.injected_wakeup_count",
        "forwarded interrupts that woke a blocked vCPU through kvm_vcpu_wake_up (no wake-up vector, no list walk)",
    );
    Ids {
        core: CoreIds {
            delivered,
            lost,
            lost_no_handler,
            queue_wait,
            handler,
            eoi,
            end_to_end,
            merged_pir,
            setup_routed,
        },
        devices: DeviceIds { raised, pending_merged, msi_write, setup_ims_slot_fail, lost_ims_masked: None },
        x86: X86Ids {
            lost_remap,
            fault_recorded,
            fault_overflow,
            fault_fpd,
            fault_logged,
            fault_suppressed,
            cache_hit,
            cache_miss,
            irte_updates,
            lost_not_interrupt,
            lost_no_handler,
            retriggered,
            setup_reserve_fail,
            setup_vector_fail,
            setup_irte_fail,
            multi_msi_fallback,
            affinity_broken,
            managed_shutdown,
            managed_restart,
            migrated,
            migration_failed,
            unplug_refused,
            unplug_busy,
            no_longer_affine,
            affinity_refused,
            reservation_exceeds,
            vector_leaked,
            moves_completed,
            remap,
            irte_lock_wait,
            irte_update,
        },
        cpu: CpuIds { cpu_busy_ps, lindley_cpus, folded_units, irq_entry, vfio_forward, merged_irr },
        guest: GuestIds {
            posted_delivery,
            kvm_notified,
            kvm_accumulated,
            kvm_wakeups,
            kvm_wakeup_walked,
            kvm_entries,
            kvm_hlt_exits,
            kvm_preemptions,
            setup_guest_vector_fail,
            kvm_remapped_fallback,
            kvm_vlpi_direct,
            kvm_vlpi_doorbell,
            kvm_vlpi_pending,
            kvm_injected_notified,
            kvm_injected_wakeup,
            exits,
        },
        arm: ArmIds {
            its_translate,
            its_command_wait,
            its_command,
            lost_its,
            lost_no_handler,
            arm_lpi_exhausted,
            arm_events_exhausted,
            arm_v2m_exhausted,
            its_round_trips,
            its_timeouts,
            affinity_refused,
        },
    }
}
