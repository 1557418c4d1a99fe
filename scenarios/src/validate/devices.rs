//! The `devices` section: each entry's name and count, its interrupt store and the fields
//! that belong to it (IMS slots and update latency, SR-IOV VFs, SIOV ADIs), queues against
//! the store's limit, latencies, affinity and NUMA node, the arrival process, the handler,
//! the guest it is assigned to with its guest MSI programming, and its remapping unit; then
//! that the functions the entries expand into have unique names.

use std::collections::BTreeMap;

use serde_saphyr::Spanned;
use sim::{DurationDist, SimDuration, SimTime};

use models::ids::CpuId;
use models::iommu::posted::{MsiDeliveryMode, Postability};
use models::pci::store::{IMS_DEVICE_SLOTS_MAX, ImsMaskedRaise, MSI_VECTORS_MAX, MSIX_TABLE_ENTRIES_MAX, StoreKind};
use models::platform::{GuestMsiParams, IrqMode, ProvisionParams};
use models::workload::ArrivalParams;

use super::checker::{Checker, parse_cpu_list};
use super::platform::{ARCH, CPU_COUNT_MAX, PlatformChecked};
use crate::build;
use crate::schema::{
    ArrivalSpec, DeviceSpec, Dist, GuestDeliverySpec, GuestMsiSpec, GuestSpec, HandlerSpec, ImsMaskedRaiseSpec,
    InterruptStore, IrqModeSpec, Process,
};

/// IMS slots of a device in device memory when the scenario does not say: DSA's "2K
/// messages with IMS" (Megha Dey, IMS HOWTO 2020; docs/sources.md#dsa-ims-messages).
pub const IMS_DEFAULT_SLOTS: u32 = 2048;
/// A sanity bound on queue-memory IMS entries per function (host memory has no hardware
/// limit; vectors and IRTEs bind long before this).
pub const IMS_QUEUE_ENTRIES_MAX: u32 = 1 << 20;

/// The most queues (interrupt sources) all devices together may have: 2^22 = 4,194,304.
///
/// Why: the project's goal is a million queues, and this leaves four times that; a queue
/// costs the run a few hundred bytes (see `main.rs`'s memory estimate), so the bound keeps
/// a run's queues within a few GiB, and with at most one function per queue it also bounds
/// the function names validation builds. Larger counts (`count`, `sriov_vfs`, `siov_adis`
/// and `queues` multiply) are refused before anything is expanded.
pub const QUEUE_TOTAL_MAX: u64 = 1 << 22;

/// The functions one device entry stands for (per physical copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Functions {
    /// The physical function alone.
    Physical,
    /// This many SR-IOV VFs (the PF itself raises nothing).
    SriovVfs(u32),
    /// This many Scalable IOV ADIs sharing the function's IMS.
    SiovAdis(u32),
}

/// One validated device entry, before [`build`] expands it into functions.
#[derive(Debug, Clone)]
pub(crate) struct DeviceSection {
    /// The entry's name; copies and functions are named after it.
    pub(crate) name: String,
    /// Identical physical copies.
    pub(crate) count: u32,
    /// What each copy expands into.
    pub(crate) functions: Functions,
    /// Queues (interrupts) per function.
    pub(crate) queue_count: u32,
    /// Where the interrupt messages live.
    pub(crate) store: StoreKind,
    /// Each copy's IMS slots (`Some` with IMS in device memory).
    pub(crate) ims_slots: Option<u32>,
    /// Message update latency of queue-memory IMS (zero otherwise).
    pub(crate) store_update_latency: SimDuration,
    pub(crate) ims_masked_raise: ImsMaskedRaise,
    /// Raise to MSI write.
    pub(crate) msi_write_latency: SimDuration,
    /// Each queue's arrival process.
    pub(crate) arrival: ArrivalParams,
    /// Handler service time.
    pub(crate) service: DurationDist,
    /// EOI cost.
    pub(crate) eoi_cost: SimDuration,
    /// The CPUs the queues are spread over.
    pub(crate) affinity: Vec<CpuId>,
    /// Managed or not.
    pub(crate) irq_mode: IrqMode,
    /// NUMA node, if given.
    pub(crate) numa_node: Option<u32>,
    /// Index of the guest it is assigned to.
    pub(crate) assigned_to: Option<u32>,
    /// Instead: the guest of each function of a copy (`tenants`; empty without).
    pub(crate) tenants: Vec<u32>,
    /// With `tenants`: the guests whose functions get `provisioning` (`None`: all).
    pub(crate) provisioned_tenants: Option<Vec<u32>>,
    /// How that guest programs its MSIs.
    pub(crate) guest_msi: GuestMsiParams,
    /// Its remapping unit.
    pub(crate) iommu_unit: u16,
    /// Timed provisioning of its guest's interrupts, if given.
    pub(crate) provisioning: Option<ProvisionParams>,
    /// When it is hot-added (`None`: present at boot).
    pub(crate) hot_add_at: Option<SimTime>,
}

/// Checks every device entry. Returns the valid entries and the names of the functions
/// they expand into, in build order, each with the entry (`devices[i]`) that made it.
pub(crate) fn check_devices(
    specs: &Spanned<Vec<DeviceSpec>>,
    guests: &[GuestSpec],
    platform: &PlatformChecked,
    c: &mut Checker,
) -> (Vec<DeviceSection>, Vec<(String, String)>) {
    if specs.value.is_empty() {
        c.error(specs, "devices", "no devices: a scenario needs at least one device to raise interrupts");
    }
    let mut devices = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    // Each function name and the entry that first made it: a sorted map keeps the check
    // linear in the number of functions (a list made 40,000 devices take seconds).
    let mut first_of: BTreeMap<String, String> = BTreeMap::new();
    let mut next_requester_id = build::REQUESTER_ID_FIRST;
    let mut queue_total: u64 = 0;
    for (i, d) in specs.value.iter().enumerate() {
        let p = format!("devices[{i}]");
        let Some(device) = check_device(d, &p, guests, platform, c) else { continue };
        let needed = u64::from(device.count) * build::requester_ids_per_copy(&device);
        if next_requester_id <= build::REQUESTER_ID_END && next_requester_id + needed > build::REQUESTER_ID_END {
            let used = next_requester_id - build::REQUESTER_ID_FIRST;
            let room = build::REQUESTER_ID_END - build::REQUESTER_ID_FIRST;
            let message = format!(
                "{} copies need {needed} requester ids (whole device slots of 8 functions: PF and VFs), and the entries before use {used}; one PCI segment has {room} (01:00.0 to ff:1f.7, bus 0 is the root complex): use fewer copies or VFs",
                device.count
            );
            match &d.count {
                Some(n) => c.error(n, format!("{p}.count"), message),
                None => c.error(&d.name, format!("{p}.name"), message),
            }
        }
        next_requester_id += needed;
        let queues = entry_queue_count(&device);
        if queue_total <= QUEUE_TOTAL_MAX && queue_total + queues > QUEUE_TOTAL_MAX {
            let message = format!(
                "{} copies x {} function(s) x {} queues = {queues} queues, and the entries before have {queue_total}; all devices together may have at most {QUEUE_TOTAL_MAX} (2^22) queues",
                device.count,
                functions_per_copy(&device),
                device.queue_count
            );
            let anchor = [("count", &d.count), ("sriov_vfs", &d.sriov_vfs), ("siov_adis", &d.siov_adis)]
                .into_iter()
                .find_map(|(field, n)| n.as_ref().filter(|n| n.value > 1).map(|n| (n, field)));
            match anchor {
                Some((n, field)) => c.error(n, format!("{p}.{field}"), message),
                None => c.error(&d.queues, format!("{p}.queues"), message),
            }
        }
        queue_total = queue_total.saturating_add(queues);
        if queue_total > QUEUE_TOTAL_MAX {
            // Too many to expand: the names are not built (the scenario is refused anyway).
            continue;
        }
        for name in build::function_names(&device) {
            match first_of.get(&name) {
                Some(first) => c.error(
                    &d.name,
                    format!("{p}.name"),
                    format!("device name `{name}` is already used by {first}; names must be unique"),
                ),
                None => {
                    first_of.insert(name.clone(), p.clone());
                }
            }
            names.push((name, p.clone()));
        }
        devices.push(device);
    }
    (devices, names)
}

/// The functions one physical copy of `device` expands into (VFs or ADIs, else 1).
fn functions_per_copy(device: &DeviceSection) -> u64 {
    match device.functions {
        Functions::Physical => 1,
        Functions::SriovVfs(n) | Functions::SiovAdis(n) => u64::from(n),
    }
}

/// The queues of every copy and function of `device` (at most 2^96, so no overflow in u128
/// arithmetic; saturated to u64).
fn entry_queue_count(device: &DeviceSection) -> u64 {
    let q = u128::from(device.count) * u128::from(functions_per_copy(device)) * u128::from(device.queue_count);
    u64::try_from(q).unwrap_or(u64::MAX)
}

/// Checks one entry. `None` when its latency, affinity, arrival or handler is wrong: the
/// guest, MSI and unit fields are then left unchecked and the entry names no functions.
fn check_device(
    d: &DeviceSpec,
    p: &str,
    guests: &[GuestSpec],
    platform: &PlatformChecked,
    c: &mut Checker,
) -> Option<DeviceSection> {
    c.name(&d.name, format!("{p}.name"));
    let count = d.count.as_ref().map_or(1, |n| n.value);
    if let Some(n) = &d.count
        && n.value == 0
    {
        c.error(n, format!("{p}.count"), "0 devices: count must be at least 1 (or leave it out)");
    }
    let (store, ims_slots) = check_store(d, platform.arm, p, c);
    let msi = c.duration(&d.msi_write_latency, &format!("{p}.msi_write_latency"));
    let affinity = check_affinity(d.affinity.as_ref(), platform.cpu_count, p, c);
    let numa_node = if platform.arm {
        if let Some(n) = &d.numa_node {
            c.ignored(n, format!("{p}.numa_node"), ARCH, &format!("node {} has no effect on arm: a device's NUMA node only steers the x86 vector allocator's fallback, and arm routes each queue to a CPU of its affinity; remove numa_node (or use arch: x86)", n.value));
        }
        None
    } else {
        check_numa_node(d.numa_node.as_ref(), platform.numa_node_count, p, c)
    };
    if platform.arm
        && let Some(m) = &d.irq_mode
    {
        let name = if m.value == IrqModeSpec::Managed { "managed" } else { "non_managed" };
        c.ignored(m, format!("{p}.irq_mode"), ARCH, &format!("`{name}` has no effect on arm: managed and non-managed (reservation-mode) interrupts are x86 vector-allocator modes, and arm routes each queue to a CPU of its affinity; remove irq_mode (or use arch: x86)"));
    }
    let irq_mode = match d.irq_mode.as_ref().map_or(IrqModeSpec::NonManaged, |m| m.value) {
        IrqModeSpec::Managed => IrqMode::Managed,
        IrqModeSpec::NonManaged => IrqMode::NonManaged,
    };
    let arrival = check_arrival(&d.arrival, &format!("{p}.arrival"), c);
    let handler = check_handler(&d.handler, &format!("{p}.handler"), c);
    let (Some(msi), Some(affinity), Some(arrival), Some((service, eoi))) = (msi, affinity, arrival, handler) else {
        return None;
    };
    let assigned_to = check_assigned_to(d.assigned_to.as_ref(), guests, p, c);
    let tenants = check_tenants(d, guests, p, c);
    // guest_msi's destinations must fit the smallest tenant.
    let smallest = tenants.iter().copied().min_by_key(|&g| guests[g as usize].vcpus.value);
    let guest_msi = match &d.guest_msi {
        None => GuestMsiParams::UNICAST,
        Some(spec) => check_guest_msi(
            spec,
            d.assigned_to.is_some() || d.tenants.is_some(),
            assigned_to.or(smallest),
            guests,
            platform.arm,
            p,
            c,
        ),
    };
    let provisioned_tenants = check_for_tenants(d, guests, p, c);
    let iommu_unit = match (&d.iommu_unit, &platform.remapping) {
        (Some(unit), Some(None)) => {
            let (switch, why) = if platform.arm {
                (ARCH, "arm has no interrupt remapping")
            } else {
                (
                    "platform.iommu.interrupt_remapping",
                    "interrupt remapping is off (platform.iommu.interrupt_remapping is false or the iommu block is left out)",
                )
            };
            c.ignored(unit, format!("{p}.iommu_unit"), switch, &format!("unit {} has no effect: {why}, so there is no remapping unit to hold the device; remove iommu_unit, or turn remapping on", unit.value));
            0
        }
        _ => check_iommu_unit(d.iommu_unit.as_ref(), platform.iommu_units(), p, c),
    };
    let update_latency = d.ims_update_latency.as_ref().and_then(|l| c.duration(l, &format!("{p}.ims_update_latency")));
    let provisioning = match &d.provisioning {
        None => None,
        Some(spec) => {
            let host = platform.kernel.map(|k| k.version);
            let assigned = d.assigned_to.is_some() || d.tenants.is_some();
            Some(super::provisioning::check_provisioning(spec, assigned, platform.arm, store, host, p, c)?)
        }
    };
    let hot_add_at = match (&d.hot_add_at, &d.provisioning) {
        (None, _) => None,
        (Some(h), None) => {
            c.error(h, format!("{p}.hot_add_at"), "a hot-added function's driver brings its vectors up through its provisioning: add a provisioning section to the device (assigned_to a guest), or remove hot_add_at");
            return None;
        }
        (Some(h), Some(_)) => Some(SimTime::ZERO + c.period(h, &format!("{p}.hot_add_at"))?),
    };
    Some(DeviceSection {
        name: d.name.value.clone(),
        count,
        functions: functions(d),
        queue_count: d.queues.value,
        store,
        ims_slots: (store == StoreKind::ImsDevice).then(|| ims_slots.unwrap_or(IMS_DEFAULT_SLOTS)),
        store_update_latency: update_latency.unwrap_or(SimDuration::ZERO),
        ims_masked_raise: match d.ims_masked_raise.as_ref().map(|r| r.value) {
            None | Some(ImsMaskedRaiseSpec::Drop) => ImsMaskedRaise::Drop,
            Some(ImsMaskedRaiseSpec::Latch) => ImsMaskedRaise::Latch,
        },
        msi_write_latency: msi,
        arrival,
        service,
        eoi_cost: eoi,
        affinity,
        irq_mode,
        numa_node,
        assigned_to,
        tenants,
        provisioned_tenants,
        guest_msi,
        iommu_unit,
        provisioning,
        hot_add_at,
    })
}

/// `tenants`: instead of `assigned_to`, on a device with VFs or ADIs, one guest that
/// exists per function. Returns the guests' indices (empty without the field or on error).
fn check_tenants(d: &DeviceSpec, guests: &[GuestSpec], p: &str, c: &mut Checker) -> Vec<u32> {
    let Some(list) = &d.tenants else { return Vec::new() };
    let path = format!("{p}.tenants");
    if d.assigned_to.is_some() {
        c.error(list, &path, "a device has either assigned_to (every function to one guest) or tenants (one guest per function); remove one");
        return Vec::new();
    }
    let functions = match functions(d) {
        Functions::Physical => {
            c.error(list, &path, "tenants names one guest per VF or ADI; this device has neither (add sriov_vfs or siov_adis, or use assigned_to)");
            return Vec::new();
        }
        Functions::SriovVfs(n) | Functions::SiovAdis(n) => n,
    };
    if list.value.len() != functions as usize {
        c.error(
            list,
            &path,
            format!(
                "{} names for {functions} functions per copy: give one guest per function, in order",
                list.value.len()
            ),
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for (j, name) in list.value.iter().enumerate() {
        match guests.iter().position(|g| g.name.value == name.value) {
            Some(g) => out.push(g as u32),
            None => {
                let known: Vec<&str> = guests.iter().map(|g| g.name.value.as_str()).collect();
                let known = if known.is_empty() {
                    "there are no guests".to_owned()
                } else {
                    format!("guests are: {}", known.join(", "))
                };
                c.error(name, format!("{path}[{j}]"), format!("no guest named `{}`; {known}", name.value));
            }
        }
    }
    if out.len() == list.value.len() { out } else { Vec::new() }
}

/// `provisioning.for_tenants`: needs the device's `tenants`; each name one of them.
fn check_for_tenants(d: &DeviceSpec, guests: &[GuestSpec], p: &str, c: &mut Checker) -> Option<Vec<u32>> {
    let list = d.provisioning.as_ref()?.value.for_tenants.as_ref()?;
    let path = format!("{p}.provisioning.for_tenants");
    let Some(tenants) = &d.tenants else {
        c.error(
            list,
            &path,
            "for_tenants chooses among the device's tenants; this device has none (add tenants, or remove for_tenants)",
        );
        return None;
    };
    let mut out = Vec::new();
    for (j, name) in list.value.iter().enumerate() {
        if !tenants.value.iter().any(|t| t.value == name.value) {
            let known: Vec<&str> = tenants.value.iter().map(|t| t.value.as_str()).collect();
            c.error(
                name,
                format!("{path}[{j}]"),
                format!("`{}` is not a tenant of this device; its tenants are: {}", name.value, known.join(", ")),
            );
        } else if let Some(g) = guests.iter().position(|g| g.name.value == name.value) {
            out.push(g as u32);
        }
    }
    Some(out)
}

/// What each copy of the entry expands into (VFs win over ADIs: both together were refused).
fn functions(d: &DeviceSpec) -> Functions {
    match (d.sriov_vfs.as_ref().map_or(0, |v| v.value), d.siov_adis.as_ref().map_or(0, |v| v.value)) {
        (0, 0) => Functions::Physical,
        (0, adis) => Functions::SiovAdis(adis),
        (vfs, _) => Functions::SriovVfs(vfs),
    }
}

/// The interrupt store, its own fields and the queues it must hold; returns the store and
/// the device's IMS slot count (`ims_device`).
fn check_store(d: &DeviceSpec, arm: bool, p: &str, c: &mut Checker) -> (StoreKind, Option<u32>) {
    let store = match d.interrupt_store.as_ref().map_or(InterruptStore::Msix, |s| s.value) {
        InterruptStore::Msi => StoreKind::Msi,
        InterruptStore::Msix => StoreKind::Msix,
        InterruptStore::ImsDevice => StoreKind::ImsDevice,
        InterruptStore::ImsQueue => StoreKind::ImsQueue,
    };
    let ims_slots = check_store_fields(d, store, p, c);
    if arm
        && matches!(store, StoreKind::ImsDevice | StoreKind::ImsQueue)
        && let Some(s) = &d.interrupt_store
    {
        c.error(s, format!("{p}.interrupt_store"), "IMS is not modelled on arm; use msi or msix");
    }
    check_queues(&d.queues, store, ims_slots, p, c);
    (store, ims_slots)
}

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
    if let Some(r) = &d.ims_masked_raise
        && matches!(kind, StoreKind::Msi | StoreKind::Msix)
    {
        c.error(
            r,
            format!("{p}.ims_masked_raise"),
            format!("only allowed with interrupt_store: ims_device or ims_queue (this device uses {kind_name}, whose pending bit always keeps a masked raise)"),
        );
    }
    check_virtual_functions(d, kind, p, c);
    ims_slots
}

/// `sriov_vfs` and `siov_adis`: one or the other, not zero, and ADIs on IMS.
fn check_virtual_functions(d: &DeviceSpec, kind: StoreKind, p: &str, c: &mut Checker) {
    let kind_name = kind.as_str();
    if let (Some(_), Some(a)) = (&d.sriov_vfs, &d.siov_adis) {
        c.error(
            a,
            format!("{p}.siov_adis"),
            "a device entry has either sriov_vfs or siov_adis; describe the other in a second entry",
        );
    }
    // VFs take any store, IMS included: each has its own requester id, which the remapping
    // unit checks whatever store the message came from (tglx, claims C19).
    if let Some(v) = &d.sriov_vfs
        && v.value == 0
    {
        c.error(v, format!("{p}.sriov_vfs"), "0 VFs: leave the field out for the physical function alone");
    }
    if let Some(a) = &d.siov_adis {
        if a.value == 0 {
            c.error(a, format!("{p}.siov_adis"), "0 ADIs: leave the field out for the function alone");
        } else if !matches!(kind, StoreKind::ImsDevice | StoreKind::ImsQueue) {
            c.error(a, format!("{p}.siov_adis"), format!("ADIs take their interrupts from IMS (interrupt_store: ims_device or ims_queue); this device uses {kind_name}"));
        }
    }
}

/// Queues: at least one, and within the store's limit.
fn check_queues(queues: &Spanned<u32>, kind: StoreKind, ims_slots: Option<u32>, p: &str, c: &mut Checker) {
    if queues.value == 0 {
        c.error(queues, format!("{p}.queues"), "0 queues: a device needs at least 1");
        return;
    }
    let limit = match kind {
        StoreKind::Msi => Some((MSI_VECTORS_MAX, "the MSI limit of 32 vectors per function".to_owned())),
        StoreKind::Msix => Some((
            MSIX_TABLE_ENTRIES_MAX,
            format!("the MSI-X table limit of {MSIX_TABLE_ENTRIES_MAX} entries per function"),
        )),
        StoreKind::ImsDevice => ims_slots.map(|n| (n, format!("the device's {n} IMS slots"))),
        StoreKind::ImsQueue => {
            Some((IMS_QUEUE_ENTRIES_MAX, format!("{IMS_QUEUE_ENTRIES_MAX} queue-memory IMS entries (a sanity bound)")))
        }
    };
    if let Some((max, what)) = limit
        && queues.value > max
    {
        c.error(queues, format!("{p}.queues"), format!("{} exceeds {what}", queues.value));
    }
}

/// The CPU list (default all CPUs); `None` without a usable CPU count.
fn check_affinity(affinity: Option<&Spanned<String>>, cpu_count: u32, p: &str, c: &mut Checker) -> Option<Vec<CpuId>> {
    if cpu_count == 0 || cpu_count > CPU_COUNT_MAX {
        return None;
    }
    match affinity {
        None => Some((0..cpu_count).map(CpuId).collect()),
        Some(a) => parse_cpu_list(&a.value, cpu_count).map_err(|e| c.error(a, format!("{p}.affinity"), e)).ok(),
    }
}

/// A NUMA node that exists (reported and dropped otherwise).
fn check_numa_node(node: Option<&Spanned<u32>>, numa_nodes: u32, p: &str, c: &mut Checker) -> Option<u32> {
    match node {
        Some(n) if n.value >= numa_nodes => {
            c.error(
                n,
                format!("{p}.numa_node"),
                format!("node {} does not exist; the platform has {numa_nodes} (0 to {})", n.value, numa_nodes - 1),
            );
            None
        }
        n => n.map(|n| n.value),
    }
}

/// The guest a device is assigned to, by name: its index.
fn check_assigned_to(name: Option<&Spanned<String>>, guests: &[GuestSpec], p: &str, c: &mut Checker) -> Option<u32> {
    let name = name?;
    let index = guests.iter().position(|g| g.name.value == name.value);
    if index.is_none() {
        let known: Vec<&str> = guests.iter().map(|g| g.name.value.as_str()).collect();
        let known = if known.is_empty() {
            "there are no guests".to_owned()
        } else {
            format!("guests are: {}", known.join(", "))
        };
        c.error(name, format!("{p}.assigned_to"), format!("no guest named `{}`; {known}", name.value));
    }
    index.map(|i| i as u32)
}

/// How the guest programs the device's MSIs: only with `assigned_to` on x86; destinations
/// the guest has; and a host forwarding cost when KVM cannot post them.
fn check_guest_msi(
    spec: &Spanned<GuestMsiSpec>,
    has_assigned_to: bool,
    assigned_to: Option<u32>,
    guests: &[GuestSpec],
    arm: bool,
    p: &str,
    c: &mut Checker,
) -> GuestMsiParams {
    if !has_assigned_to || arm {
        let why = if arm {
            "guest_msi applies to VT-d posting (x86); GICv4 forwards vLPIs"
        } else {
            "guest_msi needs assigned_to"
        };
        c.error(spec, format!("{p}.guest_msi"), why);
    }
    let destinations = spec.value.destinations.as_ref().map_or(1, |n| n.value);
    let vcpus = assigned_to.and_then(|g| guests.get(g as usize)).map_or(u32::MAX, |g| g.vcpus.value);
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
    let params = GuestMsiParams { mode, destinations, vector_hashing: spec.value.vector_hashing.unwrap_or(false) };
    if let (Some(g), Postability::Remapped(_)) = (assigned_to, params.postability())
        && guests.get(g as usize).is_some_and(|g| g.remapped_forward.is_none())
    {
        c.error(spec, format!("{p}.guest_msi"), "these interrupts cannot be posted (KVM posts only to a single vCPU), so the host forwards them: the guest needs remapped_forward (e.g. 2us; no published figure)");
    }
    params
}

/// A remapping unit that exists (unit 0 after reporting one that does not).
fn check_iommu_unit(unit: Option<&Spanned<u16>>, units: u16, p: &str, c: &mut Checker) -> u16 {
    match unit {
        None => 0,
        Some(n) if n.value < units => n.value,
        Some(n) => {
            c.error(
                n,
                format!("{p}.iommu_unit"),
                format!(
                    "unit {} does not exist; the platform has {units} remapping unit(s) (0 to {})",
                    n.value,
                    units - 1
                ),
            );
            0
        }
    }
}

/// A queue's arrival process: the rate, and the on/off periods that only `on_off` has.
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
                Some(v) => c.positive_period(v, &format!("{p}.on")),
                None => {
                    let why = "is required with process: on_off (the burst length, e.g. 50us)";
                    c.error(&a.process, format!("{p}.on"), why);
                    None
                }
            };
            let off = match &a.off {
                Some(v) => c.period(v, &format!("{p}.off")),
                None => {
                    let why = "is required with process: on_off (the silence length, e.g. 450us)";
                    c.error(&a.process, format!("{p}.off"), why);
                    None
                }
            };
            Some(ArrivalParams::OnOff { rate_per_s: rate?, on: on?, off: off? })
        }
    }
}

/// The handler: a service-time distribution (`stddev` only and always with lognormal) and
/// the EOI cost (default zero).
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
