//! The `guests` section: names, vCPUs and their pCPUs, host bursts, posted-interrupt costs,
//! and whether the platform can post to guests at all (VT-d remapping on x86, a GICv4 ITS
//! on ARM).

use serde_saphyr::Spanned;
use sim::SimDuration;

use models::arm::its::{GicVersion, ITS_MAX_LPI_NRBITS, LPI_INTID_BASE};
use models::iommu::posted::{ApicMode, PostedParams};
use models::platform::{ExitCosts, GicMsiParams, GicParams, GuestParams, IpiParams, KvmParams, MigrationParams};

use super::checker::{Checker, parse_cpu_list};
use super::platform::{ARCH, PlatformChecked};
use crate::schema::{ApicModeSpec, GuestSpec, PostedCostsSpec};

/// The most vCPUs all guests together may have: 2^20 = 1,048,576 (16 per pCPU at the
/// 65,536-CPU limit). Why: a vCPU's wake-up list entry and kick are costs multiplied by the
/// vCPUs on one list, and with costs of at most 1 s (`checker::COST_MAX`, < 2^40 ps) the
/// product stays below 2^60 ps; each vCPU also holds a posted descriptor and a random
/// stream in the run.
pub const VCPU_TOTAL_MAX: u64 = 1 << 20;

/// The LPIs a GICv4 ITS has for vPE doorbells (its whole LPI space: the VMs are created
/// before any device takes LPIs), or `None` when guests do not use the ITS.
pub(crate) fn doorbell_lpis(platform: &PlatformChecked) -> Option<u32> {
    match platform.gic.as_ref() {
        Some(Some(GicParams { version, msi: GicMsiParams::Its { lpi_id_bits, .. } })) if version.has_vlpis() => {
            Some((1u32 << (*lpi_id_bits).min(ITS_MAX_LPI_NRBITS)) - LPI_INTID_BASE)
        }
        _ => None,
    }
}

/// Whether guests can be modelled on this platform, and why not.
pub(crate) fn guest_support(platform: &PlatformChecked) -> Result<(), &'static str> {
    if platform.arm {
        match platform.gic.as_ref() {
            Some(Some(GicParams { msi: GicMsiParams::V2m { .. }, .. })) => {
                Err("guests on arm need an ITS (platform.gic.msi: its)")
            }
            Some(Some(GicParams { version: GicVersion::V3, .. })) => Err(
                "direct vLPI injection needs GICv4 (platform.gic.version: v4.0 or v4.1); GICv3 guests take the trap path, which is not modelled",
            ),
            _ => Ok(()),
        }
    } else if platform.remapping.as_ref().is_some_and(Option::is_some) {
        Ok(())
    } else {
        Err("posted interrupts need platform.iommu.interrupt_remapping: true")
    }
}

/// Checks every guest; `support` is [`guest_support`]'s verdict, `doorbells` is
/// [`doorbell_lpis`]', `arm` whether the platform is arm.
pub(crate) fn check_guests(
    specs: &[GuestSpec],
    cpu_count: u32,
    support: Result<(), &str>,
    doorbells: Option<u32>,
    arm: bool,
    c: &mut Checker,
) -> Option<Vec<GuestParams>> {
    let mut guests = Vec::new();
    let mut ok = true;
    let mut vcpu_total: u64 = 0;
    let mut doorbells_used: u64 = 0;
    for (i, g) in specs.iter().enumerate() {
        let p = format!("guests[{i}]");
        if let Err(why) = support {
            c.error(&g.name, p.clone(), why);
            ok = false;
        }
        ok &= c.name(&g.name, format!("{p}.name"));
        if specs[..i].iter().any(|other| other.name.value == g.name.value) {
            c.error(&g.name, format!("{p}.name"), format!("guest name `{}` is used twice", g.name.value));
            ok = false;
        }
        if g.vcpus.value == 0 {
            c.error(&g.vcpus, format!("{p}.vcpus"), "0 vCPUs: a guest needs at least 1");
            ok = false;
        }
        let vcpus = u64::from(g.vcpus.value);
        if vcpu_total <= VCPU_TOTAL_MAX && vcpu_total + vcpus > VCPU_TOTAL_MAX {
            c.error(
                &g.vcpus,
                format!("{p}.vcpus"),
                format!(
                    "{vcpus} vCPUs, and the guests before have {vcpu_total}; all guests together may have at most {VCPU_TOTAL_MAX} (2^20)"
                ),
            );
            ok = false;
        }
        vcpu_total += vcpus;
        if let Some(room) = doorbells {
            // KVM's its_alloc_vcpu_irqs asks for a power-of-two block of doorbell LPIs per VM,
            // taken in turn from the front of the free LPI space.
            let block = vcpus.next_power_of_two();
            if doorbells_used <= u64::from(room) && doorbells_used + block > u64::from(room) && vcpus > 0 {
                c.error(
                    &g.vcpus,
                    format!("{p}.vcpus"),
                    format!(
                        "{vcpus} vCPUs need a block of {block} doorbell LPIs (a power of two per VM), and the guests before take {doorbells_used}; the ITS has {room} LPIs (2^lpi_id_bits - 8192, at most 16 bits): use fewer vCPUs"
                    ),
                );
                ok = false;
            }
            doorbells_used += block;
        }
        let pcpus = if cpu_count == 0 {
            None
        } else {
            parse_cpu_list(&g.pcpus.value, cpu_count).map_err(|e| c.error(&g.pcpus, format!("{p}.pcpus"), e)).ok()
        };
        let host_bursts = match &g.host_bursts {
            None => Some(None),
            Some(b) => {
                let gap = c.positive_period(&b.gap, &format!("{p}.host_bursts.gap"));
                let length = c.positive_period(&b.length, &format!("{p}.host_bursts.length"));
                gap.zip(length).map(Some)
            }
        };
        let posted = check_posted_costs(&g.posted, &g.name, arm, &p, c);
        let remapped_forward = match &g.remapped_forward {
            Some(v) if arm => {
                c.ignored(v, format!("{p}.remapped_forward"), ARCH, &format!("`{}` has no effect on arm: every assigned interrupt is forwarded as a vLPI (guest_msi, the only source of interrupts KVM cannot post, is x86-only), so the host never forwards one; remove remapped_forward (or use arch: x86)", v.value));
                Some(SimDuration::ZERO)
            }
            Some(v) => c.duration(v, &format!("{p}.remapped_forward")),
            None => Some(SimDuration::ZERO),
        };
        let kvm = check_kvm(g, cpu_count, arm, &p, c);
        if kvm.is_some_and(|k| !k.apicv) && g.remapped_forward.is_none() {
            c.error(
                &g.name,
                format!("{p}.remapped_forward"),
                "without APICv nothing is posted: VFIO forwards every assigned interrupt and KVM injects it, so the guest needs remapped_forward (e.g. 2us; no published figure)",
            );
            ok = false;
        }
        let migration = match &g.migration {
            None => Some(None),
            Some(mg) => {
                let distinct = pcpus.as_ref().map(|set: &Vec<models::ids::CpuId>| {
                    let mut set = set.clone();
                    set.sort_unstable();
                    set.dedup();
                    set.len()
                });
                if distinct.is_some_and(|n| n < 2) {
                    c.error(&g.pcpus, format!("{p}.pcpus"), format!("`{}` is one CPU: a migrating guest needs at least two pCPUs to move its vCPUs between (or remove migration)", g.pcpus.value));
                    None
                } else {
                    let every = c.positive_period(&mg.every, &format!("{p}.migration.every"));
                    let cost = c.duration(&mg.cost, &format!("{p}.migration.cost"));
                    every.zip(cost).map(|(every, cost)| Some(MigrationParams { every, cost }))
                }
            }
        };
        let ipi = match &g.ipi {
            None => Some(None),
            Some(spec) => check_ipi(spec, g, kvm, arm, &p, c),
        };
        match (pcpus, host_bursts, posted, kvm, migration, ipi) {
            (Some(pcpus), Some(host_bursts), Some(posted), Some(kvm), Some(migration), Some(ipi)) => {
                guests.push(GuestParams {
                    name: g.name.value.clone(),
                    vcpu_count: g.vcpus.value,
                    pcpus,
                    host_bursts,
                    posted,
                    remapped_forward: remapped_forward?,
                    kvm,
                    migration,
                    ipi,
                })
            }
            _ => ok = false,
        }
    }
    ok.then_some(guests)
}

/// The `ipi` section: x86 only, at least two vCPUs (a vCPU sends to the others), a rate, and
/// the ICR write's exit cost, required without IPIv (no published figure in time).
fn check_ipi(
    spec: &crate::schema::IpiSpec,
    g: &GuestSpec,
    kvm: Option<KvmParams>,
    arm: bool,
    p: &str,
    c: &mut Checker,
) -> Option<Option<IpiParams>> {
    if arm {
        c.error(&spec.rate, format!("{p}.ipi"), "guest IPIs are modelled on x86 (the ICR write, IPIv); on arm a guest SGI (GICv4.1 vSGIs) is not modelled: remove ipi (or use arch: x86)");
        return None;
    }
    if g.vcpus.value < 2 {
        c.error(
            &g.vcpus,
            format!("{p}.vcpus"),
            format!(
                "{} vCPU: a guest that sends IPIs needs at least 2 (each vCPU sends to the others; or remove ipi)",
                g.vcpus.value
            ),
        );
        return None;
    }
    let rate = c.rate(&spec.rate, &format!("{p}.ipi.rate"));
    let ipiv = kvm.is_some_and(|k| k.ipiv);
    if !ipiv && kvm.is_some_and(|k| k.apic_mode == ApicMode::XApic) {
        c.error(&spec.rate, format!("{p}.ipi"), "in xAPIC mode the ICR write is a store to the APIC page (an APIC_WRITE or APIC_ACCESS exit), which is not modelled: guest IPIs are x2APIC ICR writes (MSR_WRITE); use kvm.apic_mode: x2apic or kvm.ipiv: true");
        return None;
    }
    let icr_exit = match &spec.icr_exit {
        Some(v) => c.duration(v, &format!("{p}.ipi.icr_exit")),
        None if ipiv => Some(SimDuration::ZERO),
        None => {
            c.error(
                &spec.rate,
                format!("{p}.ipi.icr_exit"),
                format!("guest `{}` sends IPIs without IPIv, so each ICR write exits (MSR_WRITE): it needs ipi.icr_exit (published figures are in cycles only, docs/sources.md#ipi-costs; or set kvm.ipiv: true)", g.name.value),
            );
            None
        }
    };
    Some(Some(IpiParams { rate: rate?, icr_exit: icr_exit? }))
}

/// The world switch of one VM exit and entry, the default of the exit costs that have no
/// published figure of their own: about 2,000 cycles at 2.93 GHz = 682.6 ns, rounded to
/// 683 ns (SplitX, docs/sources.md#exit-costs). It leaves out KVM's handling, so it is a
/// lower bound.
pub const WORLD_SWITCH: SimDuration = SimDuration::from_ps(683_000);

/// EEVDF's base slice for `cpus` CPUs: `sysctl_sched_base_slice` = 0.75 ms scaled by
/// 1 + ilog2(min(cpus, 8)) (SCHED_TUNABLESCALING_LOG, the default;
/// docs/sources.md#sched-base-slice).
pub fn base_slice(cpus: u32) -> SimDuration {
    let factor = 1 + u64::from(cpus.clamp(1, 8).ilog2());
    SimDuration::from_ps(750_000_000 * factor)
}

/// The `kvm` section: APICv (x86 only), PV EOI, the slice and wake-up preemption, the exit
/// costs (the EOI exit's required without APICv).
fn check_kvm(g: &GuestSpec, cpu_count: u32, arm: bool, p: &str, c: &mut Checker) -> Option<KvmParams> {
    let spec = g.kvm.as_ref();
    let apicv = spec.and_then(|k| k.apicv).unwrap_or(true);
    if arm && !apicv {
        c.error(
            &g.name,
            format!("{p}.kvm.apicv"),
            "APICv is x86's: on arm the GICv4 vPE takes vLPIs; remove kvm.apicv (or use arch: x86)",
        );
        return None;
    }
    let pv_eoi = spec.and_then(|k| k.pv_eoi).unwrap_or(false);
    let ipiv = match spec.and_then(|k| k.ipiv.as_ref()) {
        Some(v) if v.value && arm => {
            c.error(
                v,
                format!("{p}.kvm.ipiv"),
                "IPIv is Intel's (VMX IPI virtualization); on arm remove kvm.ipiv (or use arch: x86)",
            );
            return None;
        }
        Some(v) if v.value && !apicv => {
            c.error(v, format!("{p}.kvm.ipiv"), "`true` needs APICv: IPIv posts through the target's posted-interrupt descriptor, and KVM enables it only with APICv (`enable_ipiv` is cleared without it); set kvm.apicv: true or kvm.ipiv: false");
            return None;
        }
        Some(v) => v.value,
        None => false,
    };
    let apic_mode = match spec.and_then(|k| k.apic_mode.as_ref()) {
        Some(m) if arm => {
            c.error(m, format!("{p}.kvm.apic_mode"), "the local APIC mode is x86's: on arm the guest has a GICv3 CPU interface; remove kvm.apic_mode (or use arch: x86)");
            return None;
        }
        Some(m) if m.value == ApicModeSpec::Xapic => ApicMode::XApic,
        _ => ApicMode::X2Apic,
    };
    let slice = match spec.and_then(|k| k.slice.as_ref()) {
        Some(v) => c.positive_period(v, &format!("{p}.kvm.slice")),
        None => Some(base_slice(cpu_count)),
    };
    let wakeup_preemption = spec.and_then(|k| k.wakeup_preemption).unwrap_or(true);
    let costs = spec.and_then(|k| k.exit_costs.as_ref());
    // A field left out takes the exit_costs_from file's figure, else its default.
    let file = c.file_costs;
    let mut cost = |v: Option<&Spanned<String>>, field: &str| match v {
        Some(v) => c.duration(v, &format!("{p}.kvm.exit_costs.{field}")),
        None => Some(file.world_switch.unwrap_or(WORLD_SWITCH)),
    };
    let external_interrupt = cost(costs.and_then(|e| e.external_interrupt.as_ref()), "external_interrupt");
    let hlt = cost(costs.and_then(|e| e.hlt.as_ref()), "hlt");
    let preemption = cost(costs.and_then(|e| e.preemption.as_ref()), "preemption");
    let eoi = match costs.and_then(|e| e.eoi.as_ref()) {
        Some(v) => c.duration(v, &format!("{p}.kvm.exit_costs.eoi")),
        None if file.eoi.is_some() => file.eoi,
        None if !apicv => {
            c.error(
                &g.name,
                format!("{p}.kvm.exit_costs.eoi"),
                format!("guest `{}` has no APICv, so its EOIs exit: it needs kvm.exit_costs.eoi (no published figure to default to; docs/sources.md#exit-costs)", g.name.value),
            );
            None
        }
        None => Some(SimDuration::ZERO),
    };
    Some(KvmParams {
        apicv,
        pv_eoi,
        slice: slice?,
        wakeup_preemption,
        apic_mode,
        ipiv,
        exit_costs: ExitCosts {
            external_interrupt: external_interrupt?,
            hlt: hlt?,
            eoi: eoi?,
            preemption: preemption?,
        },
    })
}

/// The posted-interrupt costs (required: no published figures). On arm (GICv4 vLPIs) the two
/// x86-only ones, the notification of a running vCPU and the wake-up list walk, are left
/// out (refused when given: they would have no effect); `guest` locates a missing one.
fn check_posted_costs(
    pc: &PostedCostsSpec,
    guest: &Spanned<String>,
    arm: bool,
    p: &str,
    c: &mut Checker,
) -> Option<PostedParams> {
    let x86_only = |v: &Option<Spanned<String>>, field: &str, what: &str, c: &mut Checker| match (v, arm) {
        (Some(v), true) => {
            let why = format!("`{}` has no effect on arm: {what}; remove posted.{field} (or use arch: x86)", v.value);
            c.ignored(v, format!("{p}.posted.{field}"), ARCH, &why);
            Some(SimDuration::ZERO)
        }
        (Some(v), false) => c.duration(v, &format!("{p}.posted.{field}")),
        (None, true) => Some(SimDuration::ZERO),
        (None, false) => {
            c.error(
                guest,
                format!("{p}.posted.{field}"),
                format!("guest `{}` needs posted.{field} on x86 (no published figure to default to; docs/sources.md#posted-costs)", guest.value),
            );
            None
        }
    };
    let notify_running = x86_only(
        &pc.notify_running,
        "notify_running",
        "a vLPI to a resident vPE costs the ITS translation, and no interrupt is forwarded on arm",
        c,
    );
    let wakeup_list_entry = x86_only(
        &pc.wakeup_list_entry,
        "wakeup_list_entry",
        "GICv4 rings each vPE's own doorbell; there is no wake-up list to walk",
        c,
    );
    let mut cost = |v: &Spanned<String>, field: &str| c.duration(v, &format!("{p}.posted.{field}"));
    let wakeup_irq_entry = cost(&pc.wakeup_irq_entry, "wakeup_irq_entry");
    let kick = cost(&pc.kick, "kick");
    let wake_to_vm_entry = cost(&pc.wake_to_vm_entry, "wake_to_vm_entry");
    Some(PostedParams {
        notify_running: notify_running?,
        wakeup_irq_entry: wakeup_irq_entry?,
        wakeup_list_entry: wakeup_list_entry?,
        kick: kick?,
        wake_to_vm_entry: wake_to_vm_entry?,
    })
}
