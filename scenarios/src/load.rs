//! Text → validated [`Scenario`]: parse the YAML (first syntax or type error, with its field
//! path), then check every value and every cross-field rule, collecting **all** errors
//! before giving up. Nothing after this module sees text, and models may assume their
//! parameters are valid.

use serde::Deserialize;
use serde_saphyr::Spanned;
use sim::{DurationDist, SimDuration, SimTime};

use models::arm::its::{GicVersion, ItsCosts};
use models::ids::CpuId;
use models::ids::DeviceId;
use models::iommu::posted::{MsiDeliveryMode, Postability, PostedParams};
use models::iommu::remap::INTR_REMAP_TABLE_ENTRIES;
use models::kernel::{KERNEL_OLDEST, KernelVersion};
use models::pci::store::{IMS_DEVICE_SLOTS_MAX, MSI_VECTORS_MAX, MSIX_TABLE_ENTRIES_MAX, StoreKind};
use models::platform::{
    Action, ActionKind, CpuCostParams, DeviceParams, GicMsiParams, GicParams, GuestMsiParams, GuestParams,
    ImsPoolParams, IommuParams, IrqMode, IrteCacheParams, IrteUpdateParams, KernelParams, PlatformParams,
    PostedMsiConfig,
};
use models::workload::ArrivalParams;

use crate::diagnostic::{Diagnostic, ScenarioError};
use crate::quantity::{parse_duration, parse_rate};
use crate::schema::{
    ActionSpec, Arch, ArrivalSpec, CpuCostsSpec, DeviceSpec, Dist, GicMsiSpec, GicVersionSpec, GuestDeliverySpec,
    GuestSpec, HandlerSpec, InterruptStore, IommuSpec, IrqModeSpec, KernelSpec, PlatformSpec, Process, ScenarioFile,
};

/// Most CPUs a platform may have (x2APIC ids are 32-bit; this bound keeps runs sane).
pub const CPU_COUNT_MAX: u32 = 65_536;
/// Highest APIC id a compatibility-format MSI can address (8-bit destination).
pub const COMPAT_APIC_ID_MAX: u32 = 255;
/// Seed used when neither the scenario nor the command line gives one.
pub const DEFAULT_SEED: u64 = 1;

/// A validated scenario: typed, in range, consistent.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The scenario's own seed (the CLI may override it).
    pub seed: u64,
    /// Simulated time to run.
    pub duration: SimDuration,
    /// Event cap.
    pub event_limit: Option<u64>,
    /// The platform, ready for `models::platform::Platform::new`.
    pub platform: PlatformParams,
}

struct Checker {
    diagnostics: Vec<Diagnostic>,
}

impl Checker {
    fn error<T>(&mut self, at: &Spanned<T>, path: impl Into<String>, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            line: at.referenced.line(),
            column: at.referenced.column(),
            path: path.into(),
            message: message.into(),
        });
    }

    fn duration(&mut self, value: &Spanned<String>, path: &str) -> Option<SimDuration> {
        parse_duration(&value.value).map_err(|e| self.error(value, path, e)).ok()
    }

    fn positive_duration(&mut self, value: &Spanned<String>, path: &str) -> Option<SimDuration> {
        let d = self.duration(value, path)?;
        if d == SimDuration::ZERO {
            self.error(value, path, format!("`{}` is zero; it must be positive", value.value));
            return None;
        }
        Some(d)
    }

    fn rate(&mut self, value: &Spanned<String>, path: &str) -> Option<f64> {
        parse_rate(&value.value).map_err(|e| self.error(value, path, e)).ok()
    }
}

/// Parses a CPU list such as `0-7,16,32-47` (the kernel's cpulist format) or `all`.
fn parse_cpu_list(text: &str, cpu_count: u32) -> Result<Vec<CpuId>, String> {
    let text = text.trim();
    if text == "all" {
        return Ok((0..cpu_count).map(CpuId).collect());
    }
    let allowed = format!("a CPU list of CPUs 0 to {} like `0-7,16`, or `all`", cpu_count - 1);
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u32>(), hi.trim().parse::<u32>()) else {
            return Err(format!("`{text}` is not {allowed}"));
        };
        if lo > hi {
            return Err(format!("`{part}` in `{text}` is a backwards range; expected {allowed}"));
        }
        if hi >= cpu_count {
            return Err(format!(
                "CPU {hi} in `{text}` does not exist; the platform has {cpu_count} CPUs (0 to {})",
                cpu_count - 1
            ));
        }
        cpus.extend((lo..=hi).map(CpuId));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Reads and validates a scenario. `file` names it in errors.
pub fn load(file: &str, source: &str) -> Result<Scenario, ScenarioError> {
    let fail = |diagnostics| ScenarioError { file: file.to_owned(), source: source.to_owned(), diagnostics };
    let raw = parse(source).map_err(|d| fail(vec![d]))?;
    let mut checker = Checker { diagnostics: Vec::new() };
    let scenario = check(&raw, &mut checker);
    if checker.diagnostics.is_empty() {
        Ok(scenario.expect("no diagnostics implies a scenario"))
    } else {
        checker.diagnostics.sort_by_key(|d| (d.line, d.column));
        Err(fail(checker.diagnostics))
    }
}

/// The value written at `line`:`column`, for "found `…`" in messages.
fn token_at(source: &str, line: u64, column: u64) -> Option<String> {
    let text = source.lines().nth(line.checked_sub(1)? as usize)?;
    let rest: String = text.chars().skip(column.checked_sub(1)? as usize).collect();
    let rest = rest.split(" #").next().unwrap_or("").trim();
    let rest = rest.trim_end_matches([',', '}', ']']).trim();
    (!rest.is_empty()).then(|| rest.to_owned())
}

/// Rewrites the YAML library's terse type errors ("invalid u32") into what is allowed.
fn explain(message: &str, found: Option<String>) -> String {
    let expected = match message {
        "invalid u32" => Some(format!("a whole number from 0 to {}", u32::MAX)),
        "invalid u64" => Some(format!("a whole number from 0 to {}", u64::MAX)),
        "invalid bool" | "invalid boolean" => Some("true or false".to_owned()),
        "expected string scalar" => Some("a single text value".to_owned()),
        _ => None,
    };
    match (expected, found) {
        (Some(expected), Some(found)) => format!("expected {expected}, found `{found}`"),
        (Some(expected), None) => format!("expected {expected}"),
        (None, _) => message.to_owned(),
    }
}

fn parse(source: &str) -> Result<ScenarioFile, Diagnostic> {
    let meaningful = source.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with('#') && l != "---"
    });
    if !meaningful {
        return Err(Diagnostic {
            line: 1,
            column: 1,
            path: ".".into(),
            message: "the file is empty; a scenario needs at least name, duration, platform and devices".into(),
        });
    }
    let mut path = String::from(".");
    let result = serde_saphyr::with_deserializer_from_str(source, |de| {
        let mut track = serde_path_to_error::Track::new();
        let result = ScenarioFile::deserialize(serde_path_to_error::Deserializer::new(de, &mut track));
        if result.is_err() {
            path = track.path().to_string().replace(".value", "");
        }
        result
    });
    result.map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let raw = e.without_snippet().to_string();
        let message = raw.split(" at line ").next().unwrap_or(&raw).to_owned();
        let found = token_at(source, line, column);
        // serde_path_to_error writes `?` for a key it has not read yet.
        let mut path = path.trim_end_matches(".?").trim_end_matches('?').to_owned();
        let message = if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
            let key = key.split(',').next().unwrap_or(key).trim();
            path = if path.is_empty() || path == "." { key.to_owned() } else { format!("{path}.{key}") };
            format!("duplicate key `{key}`; each key may appear once in a mapping")
        } else if message == "expected mapping start" {
            let found = found.map(|f| format!(", found `{f}`")).unwrap_or_default();
            format!("expected a mapping of fields (`key: value` lines){found}")
        } else {
            explain(&message, found)
        };
        let path = if path.is_empty() { ".".to_owned() } else { path };
        Diagnostic { line, column, path, message }
    })
}

fn check(raw: &ScenarioFile, c: &mut Checker) -> Option<Scenario> {
    if !is_valid_name(&raw.name.value) {
        c.error(
            &raw.name,
            "name",
            format!("`{}` is not a valid name; use 1 to 64 of a-z, 0-9, '-' and '_'", raw.name.value),
        );
    }
    let duration = c.positive_duration(&raw.duration, "duration");
    if let Some(limit) = &raw.event_limit
        && limit.value == 0
    {
        c.error(limit, "event_limit", "0 events would run nothing; give a positive number or leave it out");
    }

    let cpus = &raw.platform.cpus;
    let cpu_count = cpus.value;
    if cpu_count == 0 {
        c.error(cpus, "platform.cpus", "0 CPUs: a platform needs at least 1");
    } else if cpu_count > CPU_COUNT_MAX {
        c.error(cpus, "platform.cpus", format!("{cpu_count} exceeds the limit of {CPU_COUNT_MAX} CPUs"));
    }
    let kernel = check_kernel(raw.platform.kernel.as_ref(), c);
    let kernel_version = kernel.map(|k| k.version);
    let cpu_costs = check_cpu_costs(raw.platform.cpu_costs.as_ref(), c);
    let remapping = match &raw.platform.iommu {
        Some(iommu) if iommu.interrupt_remapping => {
            check_iommu(iommu, !raw.actions.is_empty(), kernel_version, &raw.platform.cpus, c).map(Some)
        }
        _ => Some(None),
    };
    if matches!(remapping, Some(None))
        && cpu_count > COMPAT_APIC_ID_MAX + 1
        && !raw.platform.arch.as_ref().is_some_and(|a| a.value == Arch::Arm)
    {
        c.error(
            cpus,
            "platform.cpus",
            format!(
                "{cpu_count} CPUs need APIC ids above {COMPAT_APIC_ID_MAX}, which only interrupt remapping can address (\"x2apic: IRQ remapping doesn't support X2APIC mode\"); set platform.iommu.interrupt_remapping: true or use at most {} CPUs",
                COMPAT_APIC_ID_MAX + 1
            ),
        );
    }

    let numa_nodes = match &raw.platform.numa_nodes {
        None => 1,
        Some(n) if n.value >= 1 && n.value <= cpu_count.max(1) => n.value,
        Some(n) => {
            c.error(
                n,
                "platform.numa_nodes",
                format!("{} NUMA nodes for {cpu_count} CPUs; allowed 1 to {cpu_count}", n.value),
            );
            1
        }
    };
    let arm = raw.platform.arch.as_ref().is_some_and(|a| a.value == Arch::Arm);
    let gic = check_gic(&raw.platform, arm, &raw.actions, c);

    let guest_support = if arm {
        match gic.as_ref() {
            Some(Some(GicParams { msi: GicMsiParams::V2m { .. }, .. })) => {
                Err("guests on arm need an ITS (platform.gic.msi: its)")
            }
            Some(Some(GicParams { version: GicVersion::V3, .. })) => Err(
                "direct vLPI injection needs GICv4 (platform.gic.version: v4.0 or v4.1); GICv3 guests take the trap path, which is not modelled",
            ),
            _ => Ok(()),
        }
    } else if remapping.as_ref().is_some_and(Option::is_some) {
        Ok(())
    } else {
        Err("posted interrupts need platform.iommu.interrupt_remapping: true")
    };
    let guests = check_guests(&raw.guests, cpu_count, guest_support, c);
    for (i, a) in raw.actions.iter().enumerate() {
        let cpu = a.cpu_offline.as_ref().or(a.cpu_online.as_ref());
        if let Some(cpu) = cpu
            && let Some(g) = raw
                .guests
                .iter()
                .find(|g| parse_cpu_list(&g.pcpus.value, cpu_count.max(1)).is_ok_and(|l| l.contains(&CpuId(cpu.value))))
        {
            c.error(
                cpu,
                format!("actions[{i}]"),
                format!(
                    "CPU {} runs vCPUs of guest `{}`; hotplug of a vCPU's pCPU (vCPU migration) is not modelled",
                    cpu.value, g.name.value
                ),
            );
        }
    }

    if raw.devices.value.is_empty() {
        c.error(&raw.devices, "devices", "no devices: a scenario needs at least one device to raise interrupts");
    }
    let mut devices = Vec::new();
    let mut devices_physical = 0u32;
    let mut ims_pools = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    for (i, d) in raw.devices.value.iter().enumerate() {
        let p = format!("devices[{i}]");
        if !is_valid_name(&d.name.value) {
            c.error(
                &d.name,
                format!("{p}.name"),
                format!("`{}` is not a valid name; use 1 to 64 of a-z, 0-9, '-' and '_'", d.name.value),
            );
        }
        let count = d.count.as_ref().map_or(1, |n| n.value);
        if let Some(n) = &d.count
            && n.value == 0
        {
            c.error(n, format!("{p}.count"), "0 devices: count must be at least 1 (or leave it out)");
        }
        let queues = d.queues.value;
        let store = d.interrupt_store.as_ref().map_or(InterruptStore::Msix, |s| s.value);
        let kind = match store {
            InterruptStore::Msi => StoreKind::Msi,
            InterruptStore::Msix => StoreKind::Msix,
            InterruptStore::ImsDevice => StoreKind::ImsDevice,
            InterruptStore::ImsQueue => StoreKind::ImsQueue,
        };
        let ims_slots = check_store_fields(d, kind, &p, c);
        if arm
            && matches!(kind, StoreKind::ImsDevice | StoreKind::ImsQueue)
            && let Some(store) = &d.interrupt_store
        {
            c.error(store, format!("{p}.interrupt_store"), "IMS is not modelled on arm; use msi or msix");
        }
        if queues == 0 {
            c.error(&d.queues, format!("{p}.queues"), "0 queues: a device needs at least 1");
        } else {
            let limit = match kind {
                StoreKind::Msi => Some((MSI_VECTORS_MAX, "the MSI limit of 32 vectors per function".to_owned())),
                StoreKind::Msix => Some((
                    MSIX_TABLE_ENTRIES_MAX,
                    format!("the MSI-X table limit of {MSIX_TABLE_ENTRIES_MAX} entries per function"),
                )),
                StoreKind::ImsDevice => ims_slots.map(|n| (n, format!("the device's {n} IMS slots"))),
                StoreKind::ImsQueue => Some((
                    IMS_QUEUE_ENTRIES_MAX,
                    format!("{IMS_QUEUE_ENTRIES_MAX} queue-memory IMS entries (a sanity bound)"),
                )),
            };
            if let Some((max, what)) = limit
                && queues > max
            {
                c.error(&d.queues, format!("{p}.queues"), format!("{queues} exceeds {what}"));
            }
        }
        let msi = c.duration(&d.msi_write_latency, &format!("{p}.msi_write_latency"));
        let affinity = if cpu_count == 0 || cpu_count > CPU_COUNT_MAX {
            None
        } else {
            match &d.affinity {
                None => Some((0..cpu_count).map(CpuId).collect()),
                Some(a) => parse_cpu_list(&a.value, cpu_count).map_err(|e| c.error(a, format!("{p}.affinity"), e)).ok(),
            }
        };
        let numa_node = match &d.numa_node {
            Some(n) if n.value >= numa_nodes => {
                c.error(
                    n,
                    format!("{p}.numa_node"),
                    format!("node {} does not exist; the platform has {numa_nodes} (0 to {})", n.value, numa_nodes - 1),
                );
                None
            }
            n => n.as_ref().map(|n| n.value),
        };
        let irq_mode = match d.irq_mode.unwrap_or(IrqModeSpec::NonManaged) {
            IrqModeSpec::Managed => IrqMode::Managed,
            IrqModeSpec::NonManaged => IrqMode::NonManaged,
        };
        let arrival = check_arrival(&d.arrival, &format!("{p}.arrival"), c);
        let handler = check_handler(&d.handler, &format!("{p}.handler"), c);
        let (Some(msi), Some(affinity), Some(arrival), Some((service, eoi))) = (msi, affinity, arrival, handler) else {
            continue;
        };
        let assigned_to = d.assigned_to.as_ref().and_then(|name| {
            let index = raw.guests.iter().position(|g| g.name.value == name.value);
            if index.is_none() {
                let known: Vec<&str> = raw.guests.iter().map(|g| g.name.value.as_str()).collect();
                let known = if known.is_empty() {
                    "there are no guests".to_owned()
                } else {
                    format!("guests are: {}", known.join(", "))
                };
                c.error(name, format!("{p}.assigned_to"), format!("no guest named `{}`; {known}", name.value));
            }
            index.map(|i| i as u32)
        });
        let guest_msi = match &d.guest_msi {
            None => GuestMsiParams::UNICAST,
            Some(spec) => {
                if d.assigned_to.is_none() || arm {
                    let why = if arm {
                        "guest_msi applies to VT-d posting (x86); GICv4 forwards vLPIs"
                    } else {
                        "guest_msi needs assigned_to"
                    };
                    c.error(spec, format!("{p}.guest_msi"), why);
                }
                let destinations = spec.value.destinations.as_ref().map_or(1, |n| n.value);
                let vcpus = assigned_to.and_then(|g| raw.guests.get(g as usize)).map_or(u32::MAX, |g| g.vcpus.value);
                if let Some(n) = &spec.value.destinations
                    && (n.value == 0 || n.value > vcpus)
                {
                    c.error(
                        n,
                        format!("{p}.guest_msi.destinations"),
                        format!("{} destinations; the guest has {vcpus} vCPUs (1 to {vcpus})", n.value),
                    );
                }
                let mode = match spec.value.delivery.unwrap_or(GuestDeliverySpec::Fixed) {
                    GuestDeliverySpec::Fixed => MsiDeliveryMode::Fixed,
                    GuestDeliverySpec::LowestPriority => MsiDeliveryMode::LowestPriority,
                };
                let params =
                    GuestMsiParams { mode, destinations, vector_hashing: spec.value.vector_hashing.unwrap_or(false) };
                if let (Some(g), Postability::Remapped(_)) = (assigned_to, params.postability())
                    && raw.guests.get(g as usize).is_some_and(|g| g.remapped_forward.is_none())
                {
                    c.error(spec, format!("{p}.guest_msi"), "these interrupts cannot be posted (KVM posts only to a single vCPU), so the host forwards them: the guest needs remapped_forward (e.g. 2us; no published figure)");
                }
                params
            }
        };
        let iommu_units = match &remapping {
            Some(Some(iommu)) => iommu.units,
            _ => 1,
        };
        let iommu_unit = match &d.iommu_unit {
            None => 0,
            Some(n) if n.value < iommu_units => n.value,
            Some(n) => {
                c.error(
                    n,
                    format!("{p}.iommu_unit"),
                    format!(
                        "unit {} does not exist; the platform has {iommu_units} remapping unit(s) (0 to {})",
                        n.value,
                        iommu_units - 1
                    ),
                );
                0
            }
        };
        let update_latency =
            d.ims_update_latency.as_ref().and_then(|l| c.duration(l, &format!("{p}.ims_update_latency")));
        let vfs = d.sriov_vfs.as_ref().map_or(0, |v| v.value);
        let adis = d.siov_adis.as_ref().map_or(0, |v| v.value);
        for k in 0..count {
            let name = if count == 1 { d.name.value.clone() } else { format!("{}{k}", d.name.value) };
            // Each physical device sits on its own bus: requester id bus << 8 (device 0,
            // function 0); VFs follow at offset 1, stride 1 (a common SR-IOV layout).
            let requester_id = u16::try_from(devices_physical + 1).map_or(u16::MAX, |bus| bus << 8);
            devices_physical += 1;
            let ims_pool = (kind == StoreKind::ImsDevice).then(|| {
                ims_pools.push(ImsPoolParams { name: name.clone(), slots: ims_slots.unwrap_or(IMS_DEFAULT_SLOTS) });
                ims_pools.len() as u32 - 1
            });
            let function = |name: String, requester_id: u16, pasid: Option<u32>| DeviceParams {
                name,
                queue_count: queues,
                msi_write_latency: msi,
                arrival: arrival.clone(),
                service: service.clone(),
                eoi_cost: eoi,
                affinity: affinity.clone(),
                irq_mode,
                numa_node,
                store: kind,
                ims_pool,
                store_update_latency: update_latency.unwrap_or(SimDuration::ZERO),
                requester_id,
                pasid,
                assigned_to,
                guest_msi,
                iommu_unit,
            };
            let functions: Vec<DeviceParams> = if vfs > 0 {
                (0..vfs)
                    .map(|j| function(format!("{name}-vf{j}"), requester_id.wrapping_add(1 + j as u16), None))
                    .collect()
            } else if adis > 0 {
                (0..adis).map(|j| function(format!("{name}-adi{j}"), requester_id, Some(j + 1))).collect()
            } else {
                vec![function(name, requester_id, None)]
            };
            for f in functions {
                if let Some((_, first)) = names.iter().find(|(n, _)| *n == f.name) {
                    c.error(
                        &d.name,
                        format!("{p}.name"),
                        format!("device name `{}` is already used by {first}; names must be unique", f.name),
                    );
                }
                names.push((f.name.clone(), p.clone()));
                devices.push(f);
            }
        }
    }
    let actions = check_actions(&raw.actions, cpu_count, duration, &names, c);
    let (duration, remapping, kernel) = (duration?, remapping?, kernel?);
    let gic = gic?;
    let cpu_costs = cpu_costs?;
    let guests = guests?;
    let actions = actions?;
    (c.diagnostics.is_empty()).then(|| Scenario {
        name: raw.name.value.clone(),
        description: raw.description.clone(),
        seed: raw.seed.unwrap_or(DEFAULT_SEED),
        duration,
        event_limit: raw.event_limit.as_ref().map(|l| l.value),
        platform: PlatformParams {
            cpu_count,
            remapping,
            devices,
            kernel,
            numa_node_count: numa_nodes,
            actions,
            ims_pools,
            gic,
            cpu_costs,
            guests,
        },
    })
}

fn check_iommu(
    iommu: &IommuSpec,
    has_actions: bool,
    kernel: Option<KernelVersion>,
    anchor: &Spanned<u32>,
    c: &mut Checker,
) -> Option<IommuParams> {
    let p = "platform.iommu";
    let lookup = match &iommu.lookup_latency {
        Some(l) => c.duration(l, &format!("{p}.lookup_latency")),
        None => {
            c.error(anchor, format!("{p}.lookup_latency"), "is required when interrupt_remapping is true (the IRTE table read; no published figure, calibration.md §3)");
            None
        }
    };
    let entries = match &iommu.irte_entries {
        None => Some(INTR_REMAP_TABLE_ENTRIES),
        Some(e) if (1..=INTR_REMAP_TABLE_ENTRIES).contains(&e.value) => Some(e.value),
        Some(e) => {
            c.error(
                e,
                format!("{p}.irte_entries"),
                format!("{} is outside 1 to {INTR_REMAP_TABLE_ENTRIES} (INTR_REMAP_TABLE_ENTRIES)", e.value),
            );
            None
        }
    };
    let cache = match &iommu.irte_cache {
        None => Some(None),
        Some(cache) => c
            .duration(&cache.hit_latency, &format!("{p}.irte_cache.hit_latency"))
            .map(|hit_latency| Some(IrteCacheParams { entries: cache.entries.value, hit_latency })),
    };
    let update = match &iommu.irte_update {
        Some(u) => {
            let write = c.duration(&u.irte_write, &format!("{p}.irte_update.irte_write"));
            let iec = c.duration(&u.iec_invalidation, &format!("{p}.irte_update.iec_invalidation"));
            write.zip(iec).map(|(irte_write, iec_invalidation)| IrteUpdateParams { irte_write, iec_invalidation })
        }
        None if has_actions => {
            c.error(anchor, format!("{p}.irte_update"), "is required when actions move interrupts: each move rewrites an IRTE under the global lock (e.g. { irte_write: 200ns, iec_invalidation: 2us }; no published figure, calibration.md §3)");
            None
        }
        None => Some(IrteUpdateParams::default()),
    };
    let fault_recording_registers = match &iommu.fault_recording_registers {
        None => Some(1),
        Some(n) if (1..=256).contains(&n.value) => Some(n.value),
        Some(n) => {
            c.error(
                n,
                format!("{p}.fault_recording_registers"),
                format!("{} is outside 1 to 256 (CAP.NFR + 1)", n.value),
            );
            None
        }
    };
    let max_handle_mask = match &iommu.max_handle_mask {
        None => Some(15),
        Some(n) if n.value <= 15 => Some(n.value),
        Some(n) => {
            c.error(n, format!("{p}.max_handle_mask"), format!("{} is outside 0 to 15 (ECAP.MHMV)", n.value));
            None
        }
    };
    let posted_msi = match &iommu.posted_msi {
        None => Some(None),
        Some(spec) => {
            let pir_scan = c.duration(&spec.value.pir_scan, &format!("{p}.posted_msi.pir_scan"));
            let loop_cap = match &spec.value.loop_cap {
                None => Some(3),
                Some(n) if n.value >= 1 => Some(n.value),
                Some(n) => {
                    c.error(n, format!("{p}.posted_msi.loop_cap"), "0 passes: the demux loop cap must be at least 1");
                    None
                }
            };
            if kernel.is_some_and(|k| !k.has_posted_msi()) {
                c.error(
                    spec,
                    format!("{p}.posted_msi"),
                    "host posted MSI appeared in Linux 6.10; set platform.kernel.version to 6.10 or later",
                );
            }
            pir_scan.zip(loop_cap).map(|(pir_scan, loop_cap)| Some(PostedMsiConfig { loop_cap, pir_scan }))
        }
    };
    let units = match &iommu.units {
        None => Some(1),
        Some(n) if (1..=256).contains(&n.value) => Some(n.value),
        Some(n) => {
            c.error(n, format!("{p}.units"), format!("{} remapping units; allowed 1 to 256", n.value));
            None
        }
    };
    Some(IommuParams {
        units: units?,
        posted_msi: posted_msi?,
        lookup_latency: lookup?,
        table_entries: entries?,
        cache: cache?,
        update: update?,
        fault_recording_registers: fault_recording_registers?,
        max_handle_mask: max_handle_mask?,
    })
}

fn check_guests(
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
        if !is_valid_name(&g.name.value) {
            c.error(
                &g.name,
                format!("{p}.name"),
                format!("`{}` is not a valid name; use 1 to 64 of a-z, 0-9, '-' and '_'", g.name.value),
            );
            ok = false;
        }
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
        let pc = &g.posted;
        let mut cost = |v: &Spanned<String>, field: &str| c.duration(v, &format!("{p}.posted.{field}"));
        let notify_running = cost(&pc.notify_running, "notify_running");
        let wakeup_irq_entry = cost(&pc.wakeup_irq_entry, "wakeup_irq_entry");
        let wakeup_list_entry = cost(&pc.wakeup_list_entry, "wakeup_list_entry");
        let kick = cost(&pc.kick, "kick");
        let wake_to_vm_entry = cost(&pc.wake_to_vm_entry, "wake_to_vm_entry");
        let remapped_forward = match &g.remapped_forward {
            Some(v) => c.duration(v, &format!("{p}.remapped_forward")),
            None => Some(SimDuration::ZERO),
        };
        match (pcpus, host_bursts, notify_running, wakeup_irq_entry, wakeup_list_entry, kick, wake_to_vm_entry) {
            (
                Some(pcpus),
                Some(host_bursts),
                Some(notify_running),
                Some(wakeup_irq_entry),
                Some(wakeup_list_entry),
                Some(kick),
                Some(wake_to_vm_entry),
            ) => guests.push(GuestParams {
                name: g.name.value.clone(),
                vcpu_count: g.vcpus.value,
                pcpus,
                host_bursts,
                posted: PostedParams { notify_running, wakeup_irq_entry, wakeup_list_entry, kick, wake_to_vm_entry },
                remapped_forward: remapped_forward?,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(guests)
}

fn check_cpu_costs(spec: Option<&CpuCostsSpec>, c: &mut Checker) -> Option<CpuCostParams> {
    let Some(spec) = spec else { return Some(CpuCostParams::default()) };
    let mut field = |value: &Option<Spanned<String>>, name: &str| match value {
        Some(v) => c.duration(v, &format!("platform.cpu_costs.{name}")),
        None => Some(SimDuration::ZERO),
    };
    let irq_entry_exit = field(&spec.irq_entry_exit, "irq_entry_exit");
    let notification = field(&spec.notification, "notification");
    Some(CpuCostParams { irq_entry_exit: irq_entry_exit?, notification: notification? })
}

/// Checks the GIC block: required with `arch: arm`, refused otherwise; and refuses what is
/// x86-only on ARM (interrupt remapping, the x86 kernel vector allocator, CPU hotplug).
fn check_gic(platform: &PlatformSpec, arm: bool, actions: &[ActionSpec], c: &mut Checker) -> Option<Option<GicParams>> {
    let p = "platform.gic";
    let Some(arch) = platform.arch.as_ref().filter(|_| arm) else {
        if platform.gic.is_some() {
            c.error(&platform.cpus, p, "a GIC needs arch: arm (this platform is x86)");
        }
        return Some(None);
    };
    if platform.iommu.as_ref().is_some_and(|i| i.interrupt_remapping) {
        c.error(arch, "platform.iommu", "arm has no MSI remapping: the SMMU does not remap MSIs, the ITS isolates devices (calibration.md §3); leave iommu out");
    }
    if platform.kernel.is_some() {
        c.error(arch, "platform.kernel", "the kernel block sets the x86 vector allocator; it does not apply to arm");
    }
    for (i, a) in actions.iter().enumerate() {
        if a.cpu_offline.is_some() || a.cpu_online.is_some() {
            c.error(&a.at, format!("actions[{i}]"), "CPU hotplug is not modelled on arm yet; only set_affinity");
        }
    }
    let Some(gic) = &platform.gic else {
        c.error(arch, p, "is required with arch: arm (e.g. { msi: its, translation_latency: 80ns, its_command: 100ns, its_sync: 500ns })");
        return None;
    };
    let version = match gic.version.unwrap_or(GicVersionSpec::V3) {
        GicVersionSpec::V3 => GicVersion::V3,
        GicVersionSpec::V40 => GicVersion::V4_0,
        GicVersionSpec::V41 => GicVersion::V4_1,
    };
    let required = |c: &mut Checker, value: &Option<Spanned<String>>, field: &str, why: &str| match value {
        Some(v) => c.duration(v, &format!("{p}.{field}")),
        None => {
            c.error(
                arch,
                format!("{p}.{field}"),
                format!("is required {why} (no published figure, calibration.md §4)"),
            );
            None
        }
    };
    let latency = required(c, &gic.translation_latency, "translation_latency", "on arm");
    let msi = match gic.msi.as_ref().map_or(GicMsiSpec::Its, |m| m.value) {
        GicMsiSpec::Its => {
            let command = required(c, &gic.its_command, "its_command", "with msi: its");
            let sync = required(c, &gic.its_sync, "its_sync", "with msi: its");
            let direct_inv = match (&gic.its_direct_inv, version) {
                (Some(v), _) => c.duration(v, &format!("{p}.its_direct_inv")),
                (None, GicVersion::V4_1) => {
                    required(c, &None, "its_direct_inv", "with version v4.1 (direct LPI invalidation)")
                }
                (None, _) => Some(SimDuration::ZERO),
            };
            let lpi_id_bits = match &gic.lpi_id_bits {
                None => Some(16),
                Some(b) if (14..=24).contains(&b.value) => Some(b.value),
                Some(b) => {
                    c.error(
                        b,
                        format!("{p}.lpi_id_bits"),
                        format!("{} is outside 14 to 24 (GICD_TYPER.IDbits + 1)", b.value),
                    );
                    None
                }
            };
            if let Some(v) = &gic.v2m_spis {
                c.error(v, format!("{p}.v2m_spis"), "only allowed with msi: v2m");
            }
            match (command, sync, direct_inv, lpi_id_bits, latency) {
                (Some(command), Some(sync), Some(direct_inv), Some(lpi_id_bits), Some(translation_latency)) => {
                    Some(GicMsiParams::Its {
                        costs: ItsCosts { command, sync, direct_inv },
                        translation_latency,
                        lpi_id_bits,
                    })
                }
                _ => None,
            }
        }
        GicMsiSpec::V2m => {
            for (field, value) in [
                ("its_command", &gic.its_command),
                ("its_sync", &gic.its_sync),
                ("its_direct_inv", &gic.its_direct_inv),
            ] {
                if let Some(v) = value {
                    c.error(v, format!("{p}.{field}"), "only allowed with msi: its");
                }
            }
            let spis = match &gic.v2m_spis {
                None => Some(64),
                Some(n) if (1..=988).contains(&n.value) => Some(n.value),
                Some(n) => {
                    c.error(n, format!("{p}.v2m_spis"), format!("{} is outside 1 to 988 (SPIs 32..1019)", n.value));
                    None
                }
            };
            spis.zip(latency).map(|(spis, latency)| GicMsiParams::V2m { spis, latency })
        }
    };
    Some(Some(GicParams { version, msi: msi? }))
}

/// IMS slots of a device in device memory when the scenario does not say: DSA's "2K
/// messages with IMS" (Megha Dey, IMS HOWTO 2020; claims.md C4).
pub const IMS_DEFAULT_SLOTS: u32 = 2048;
/// A sanity bound on queue-memory IMS entries per function (host memory has no hardware
/// limit; vectors and IRTEs bind long before this).
pub const IMS_QUEUE_ENTRIES_MAX: u32 = 1 << 20;

/// Checks the store-specific fields; returns the device's IMS slot count (`ims_device`).
fn check_store_fields(d: &DeviceSpec, kind: StoreKind, p: &str, c: &mut Checker) -> Option<u32> {
    let kind_name = kind.as_str();
    let ims_slots = match (&d.ims_slots, kind) {
        (Some(n), StoreKind::ImsDevice) if (1..=IMS_DEVICE_SLOTS_MAX).contains(&n.value) => Some(n.value),
        (Some(n), StoreKind::ImsDevice) => {
            c.error(
                n,
                format!("{p}.ims_slots"),
                format!("{} is outside 1 to {IMS_DEVICE_SLOTS_MAX} (63 x 256, IDXD max_ims_mult)", n.value),
            );
            None
        }
        (Some(n), _) => {
            c.error(
                n,
                format!("{p}.ims_slots"),
                format!("only allowed with interrupt_store: ims_device (this device uses {kind_name})"),
            );
            None
        }
        (None, StoreKind::ImsDevice) => Some(IMS_DEFAULT_SLOTS),
        (None, _) => None,
    };
    match (&d.ims_update_latency, kind) {
        (Some(_), StoreKind::ImsQueue) | (None, StoreKind::Msi | StoreKind::Msix | StoreKind::ImsDevice) => {}
        (Some(l), _) => c.error(l, format!("{p}.ims_update_latency"), format!("only allowed with interrupt_store: ims_queue (this device uses {kind_name})")),
        (None, StoreKind::ImsQueue) => c.error(&d.queues, format!("{p}.ims_update_latency"), "is required with interrupt_store: ims_queue (the device command-queue latency of a message update, e.g. 2us)"),
    }
    if let (Some(_), Some(a)) = (&d.sriov_vfs, &d.siov_adis) {
        c.error(
            a,
            format!("{p}.siov_adis"),
            "a device entry has either sriov_vfs or siov_adis; describe the other in a second entry",
        );
    }
    if let Some(v) = &d.sriov_vfs {
        if v.value == 0 {
            c.error(v, format!("{p}.sriov_vfs"), "0 VFs: leave the field out for the physical function alone");
        } else if !matches!(kind, StoreKind::Msi | StoreKind::Msix) {
            c.error(
                v,
                format!("{p}.sriov_vfs"),
                format!("VFs have MSI or MSI-X stores of their own; this device uses {kind_name}"),
            );
        }
    }
    if let Some(a) = &d.siov_adis {
        if a.value == 0 {
            c.error(a, format!("{p}.siov_adis"), "0 ADIs: leave the field out for the function alone");
        } else if !matches!(kind, StoreKind::ImsDevice | StoreKind::ImsQueue) {
            c.error(a, format!("{p}.siov_adis"), format!("ADIs take their interrupts from IMS (interrupt_store: ims_device or ims_queue); this device uses {kind_name}"));
        }
    }
    ims_slots
}

/// The kernel when a scenario has no `platform.kernel.version`: 6.10, the first release
/// with host posted MSI and the current vector allocator era (schema and
/// docs/parameters.md say so).
pub const DEFAULT_KERNEL: KernelVersion = KernelVersion::new(6, 10);

fn check_kernel(spec: Option<&KernelSpec>, c: &mut Checker) -> Option<KernelParams> {
    let legacy_pic = spec.and_then(|k| k.legacy_pic).unwrap_or(true);
    let ia32_emulation = spec.and_then(|k| k.ia32_emulation).unwrap_or(true);
    let Some(text) = spec.and_then(|k| k.version.as_ref()) else {
        return Some(KernelParams { version: DEFAULT_KERNEL, legacy_pic, ia32_emulation });
    };
    let parsed =
        text.value.trim().split_once('.').and_then(|(a, b)| Some(KernelVersion::new(a.parse().ok()?, b.parse().ok()?)));
    let Some(version) = parsed else {
        c.error(
            text,
            "platform.kernel.version",
            format!("`{}` is not a MAJOR.MINOR release such as \"6.8\"", text.value),
        );
        return None;
    };
    if version < KERNEL_OLDEST {
        c.error(
            text,
            "platform.kernel.version",
            format!("{version} is older than {KERNEL_OLDEST}: earlier kernels used another vector fallback order, which is not modelled"),
        );
        return None;
    }
    Some(KernelParams { version, legacy_pic, ia32_emulation })
}

fn check_actions(
    specs: &[ActionSpec],
    cpu_count: u32,
    duration: Option<SimDuration>,
    device_names: &[(String, String)],
    c: &mut Checker,
) -> Option<Vec<Action>> {
    let mut actions = Vec::new();
    let mut ok = true;
    for (i, a) in specs.iter().enumerate() {
        let p = format!("actions[{i}]");
        let at = c.duration(&a.at, &format!("{p}.at"));
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
        let cpu = |c: &mut Checker, v: &Spanned<u32>, field: &str| {
            if v.value < cpu_count {
                Some(models::ids::CpuId(v.value))
            } else {
                c.error(
                    v,
                    format!("{p}.{field}"),
                    format!("CPU {} does not exist; the platform has {cpu_count} CPUs", v.value),
                );
                None
            }
        };
        let kind = if let Some(v) = &a.cpu_offline {
            cpu(c, v, "cpu_offline").map(ActionKind::CpuOffline)
        } else if let Some(v) = &a.cpu_online {
            cpu(c, v, "cpu_online").map(ActionKind::CpuOnline)
        } else {
            let s = a.set_affinity.as_ref().expect("exactly one is set");
            let device = device_names.iter().position(|(n, _)| *n == s.device.value);
            if device.is_none() {
                let known: Vec<&str> = device_names.iter().map(|(n, _)| n.as_str()).collect();
                c.error(
                    &s.device,
                    format!("{p}.set_affinity.device"),
                    format!("no device named `{}`; devices are: {}", s.device.value, known.join(", ")),
                );
            }
            let cpus = if cpu_count == 0 {
                None
            } else {
                parse_cpu_list(&s.cpus.value, cpu_count)
                    .map_err(|e| c.error(&s.cpus, format!("{p}.set_affinity.cpus"), e))
                    .ok()
            };
            device.zip(cpus).map(|(d, cpus)| ActionKind::SetAffinity { device: DeviceId(d as u32), cpus })
        };
        match (at, kind) {
            (Some(at), Some(kind)) => actions.push(Action { at: SimTime::ZERO + at, kind }),
            _ => ok = false,
        }
    }
    actions.sort_by_key(|a| a.at);
    ok.then_some(actions)
}

fn check_arrival(a: &ArrivalSpec, p: &str, c: &mut Checker) -> Option<ArrivalParams> {
    let rate = c.rate(&a.rate, &format!("{p}.rate"));
    match a.process.value {
        Process::Poisson | Process::Constant => {
            for (field, value) in [("on", &a.on), ("off", &a.off)] {
                if let Some(v) = value {
                    c.error(v, format!("{p}.{field}"), "only allowed with process: on_off");
                }
            }
            let rate_per_s = rate?;
            Some(if a.process.value == Process::Poisson {
                ArrivalParams::Poisson { rate_per_s }
            } else {
                ArrivalParams::Constant { rate_per_s }
            })
        }
        Process::OnOff => {
            let on = match &a.on {
                Some(v) => c.positive_duration(v, &format!("{p}.on")),
                None => {
                    c.error(
                        &a.process,
                        format!("{p}.on"),
                        "is required with process: on_off (the burst length, e.g. 50us)",
                    );
                    None
                }
            };
            let off = match &a.off {
                Some(v) => c.duration(v, &format!("{p}.off")),
                None => {
                    c.error(
                        &a.process,
                        format!("{p}.off"),
                        "is required with process: on_off (the silence length, e.g. 450us)",
                    );
                    None
                }
            };
            Some(ArrivalParams::OnOff { rate_per_s: rate?, on: on?, off: off? })
        }
    }
}

fn check_handler(h: &HandlerSpec, p: &str, c: &mut Checker) -> Option<(DurationDist, SimDuration)> {
    let s = &h.service;
    let sp = format!("{p}.service");
    let mean = c.positive_duration(&s.mean, &format!("{sp}.mean"));
    let stddev = match (&s.stddev, s.dist.value) {
        (Some(sd), Dist::Lognormal) => c.positive_duration(sd, &format!("{sp}.stddev")),
        (Some(sd), _) => {
            c.error(sd, format!("{sp}.stddev"), "only allowed with dist: lognormal");
            None
        }
        (None, Dist::Lognormal) => {
            c.error(&s.dist, format!("{sp}.stddev"), "is required with dist: lognormal (e.g. stddev: 500ns)");
            None
        }
        (None, _) => Some(SimDuration::ZERO),
    };
    let eoi = match &h.eoi {
        Some(e) => c.duration(e, &format!("{p}.eoi")),
        None => Some(SimDuration::ZERO),
    };
    let (mean, stddev, eoi) = (mean?, stddev?, eoi?);
    let dist = match s.dist.value {
        Dist::Constant => DurationDist::constant(mean),
        Dist::Exponential => DurationDist::exponential(mean),
        Dist::Lognormal => DurationDist::lognormal(mean, stddev),
    };
    Some((dist, eoi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let ids = |v: Vec<CpuId>| v.into_iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(ids(parse_cpu_list("0-3,8", 16).unwrap()), [0, 1, 2, 3, 8]);
        assert_eq!(ids(parse_cpu_list("all", 3).unwrap()), [0, 1, 2]);
        assert_eq!(ids(parse_cpu_list("3,1,1", 4).unwrap()), [1, 3]);
        assert!(parse_cpu_list("0-16", 16).unwrap_err().contains("CPU 16"));
        assert!(parse_cpu_list("5-2", 16).unwrap_err().contains("backwards"));
        assert!(parse_cpu_list("x", 16).unwrap_err().contains("CPU list"));
    }
}
