//! The `guests` section: names, vCPUs and their pCPUs, host bursts, posted-interrupt costs,
//! and whether the platform can post to guests at all (VT-d remapping on x86, a GICv4 ITS
//! on ARM).

use serde_saphyr::Spanned;
use sim::SimDuration;

use models::arm::its::GicVersion;
use models::iommu::posted::PostedParams;
use models::platform::{GicMsiParams, GicParams, GuestParams};

use super::checker::{Checker, parse_cpu_list};
use super::platform::PlatformChecked;
use crate::schema::{GuestSpec, PostedCostsSpec};

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

/// Checks every guest; `support` is [`guest_support`]'s verdict.
pub(crate) fn check_guests(
    specs: &[GuestSpec],
    cpu_count: u32,
    support: Result<(), &str>,
    c: &mut Checker,
) -> Option<Vec<GuestParams>> {
    let mut guests = Vec::new();
    let mut ok = true;
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
        let pcpus = if cpu_count == 0 {
            None
        } else {
            parse_cpu_list(&g.pcpus.value, cpu_count).map_err(|e| c.error(&g.pcpus, format!("{p}.pcpus"), e)).ok()
        };
        let host_bursts = match &g.host_bursts {
            None => Some(None),
            Some(b) => {
                let gap = c.positive_duration(&b.gap, &format!("{p}.host_bursts.gap"));
                let length = c.positive_duration(&b.length, &format!("{p}.host_bursts.length"));
                gap.zip(length).map(Some)
            }
        };
        let posted = check_posted_costs(&g.posted, &p, c);
        let remapped_forward = match &g.remapped_forward {
            Some(v) => c.duration(v, &format!("{p}.remapped_forward")),
            None => Some(SimDuration::ZERO),
        };
        match (pcpus, host_bursts, posted) {
            (Some(pcpus), Some(host_bursts), Some(posted)) => guests.push(GuestParams {
                name: g.name.value.clone(),
                vcpu_count: g.vcpus.value,
                pcpus,
                host_bursts,
                posted,
                remapped_forward: remapped_forward?,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(guests)
}

/// The VT-d posted-interrupt costs (all required: no published figures).
fn check_posted_costs(pc: &PostedCostsSpec, p: &str, c: &mut Checker) -> Option<PostedParams> {
    let mut cost = |v: &Spanned<String>, field: &str| c.duration(v, &format!("{p}.posted.{field}"));
    let notify_running = cost(&pc.notify_running, "notify_running");
    let wakeup_irq_entry = cost(&pc.wakeup_irq_entry, "wakeup_irq_entry");
    let wakeup_list_entry = cost(&pc.wakeup_list_entry, "wakeup_list_entry");
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
