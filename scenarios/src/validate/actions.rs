//! The `actions` section: when each happens (within the run), exactly one kind per action,
//! the CPUs and devices it names (devices by their expanded function names), and the refusal
//! of hotplug on a pCPU that runs vCPUs.

use serde_saphyr::Spanned;
use sim::{SimDuration, SimTime};

use models::ids::{CpuId, DeviceId};
use models::platform::{Action, ActionKind};

use super::checker::{Checker, parse_cpu_list};
use crate::schema::{ActionSpec, GuestSpec, SetAffinitySpec};

/// Refuses CPU hotplug of a pCPU that runs vCPUs (moving its vCPUs off it is not modelled;
/// migration at a rate, `guests[].migration`, is).
pub(crate) fn check_hotplug_of_vcpu_pcpus(
    actions: &[ActionSpec],
    guests: &[GuestSpec],
    cpu_count: u32,
    c: &mut Checker,
) {
    for (i, a) in actions.iter().enumerate() {
        let cpu = a.cpu_offline.as_ref().or(a.cpu_online.as_ref());
        if let Some(cpu) = cpu
            && let Some(g) = guests
                .iter()
                .find(|g| parse_cpu_list(&g.pcpus.value, cpu_count.max(1)).is_ok_and(|l| l.contains(&CpuId(cpu.value))))
        {
            c.error(
                cpu,
                format!("actions[{i}]"),
                format!(
                    "CPU {} runs vCPUs of guest `{}`; hotplug of a vCPU's pCPU (moving its vCPUs off it) is not modelled",
                    cpu.value, g.name.value
                ),
            );
        }
    }
}

/// Checks every action; `function_names` are the device functions in build order (an
/// action's device id is its position there), each with the entry that made it. Returns
/// the actions in time order.
pub(crate) fn check_actions(
    specs: &[ActionSpec],
    cpu_count: u32,
    duration: Option<SimDuration>,
    function_names: &[(String, String)],
    c: &mut Checker,
) -> Option<Vec<Action>> {
    let mut actions = Vec::new();
    let mut ok = true;
    for (i, a) in specs.iter().enumerate() {
        let p = format!("actions[{i}]");
        let at = c.period(&a.at, &format!("{p}.at"));
        if let (Some(at), Some(end)) = (at, duration)
            && at > end
        {
            c.error(
                &a.at,
                format!("{p}.at"),
                format!("{} is after the end of the run ({end}); it would never happen", a.at.value),
            );
            ok = false;
        }
        let chosen = [a.cpu_offline.is_some(), a.cpu_online.is_some(), a.set_affinity.is_some()];
        if chosen.iter().filter(|&&x| x).count() != 1 {
            c.error(&a.at, p.clone(), "needs exactly one of cpu_offline, cpu_online, set_affinity");
            ok = false;
            continue;
        }
        let kind = if let Some(v) = &a.cpu_offline {
            check_cpu(v, cpu_count, &format!("{p}.cpu_offline"), c).map(ActionKind::CpuOffline)
        } else if let Some(v) = &a.cpu_online {
            check_cpu(v, cpu_count, &format!("{p}.cpu_online"), c).map(ActionKind::CpuOnline)
        } else {
            let s = a.set_affinity.as_ref().expect("exactly one is set");
            check_set_affinity(s, cpu_count, function_names, &p, c)
        };
        match (at, kind) {
            (Some(at), Some(kind)) => actions.push(Action { at: SimTime::ZERO + at, kind }),
            _ => ok = false,
        }
    }
    actions.sort_by_key(|a| a.at);
    ok.then_some(actions)
}

/// A CPU that exists.
fn check_cpu(v: &Spanned<u32>, cpu_count: u32, path: &str, c: &mut Checker) -> Option<CpuId> {
    if v.value < cpu_count {
        Some(CpuId(v.value))
    } else {
        c.error(v, path, format!("CPU {} does not exist; the platform has {cpu_count} CPUs", v.value));
        None
    }
}

/// `set_affinity`: a device function by name and a CPU list.
fn check_set_affinity(
    s: &SetAffinitySpec,
    cpu_count: u32,
    function_names: &[(String, String)],
    p: &str,
    c: &mut Checker,
) -> Option<ActionKind> {
    let device = function_names.iter().position(|(n, _)| *n == s.device.value);
    if device.is_none() {
        let known: Vec<&str> = function_names.iter().map(|(n, _)| n.as_str()).collect();
        c.error(
            &s.device,
            format!("{p}.set_affinity.device"),
            format!("no device named `{}`; devices are: {}", s.device.value, known.join(", ")),
        );
    }
    let cpus = if cpu_count == 0 {
        None
    } else {
        parse_cpu_list(&s.cpus.value, cpu_count).map_err(|e| c.error(&s.cpus, format!("{p}.set_affinity.cpus"), e)).ok()
    };
    device.zip(cpus).map(|(d, cpus)| ActionKind::SetAffinity { device: DeviceId(d as u32), cpus })
}
