//! Build: turns the validated, typed sections ([`Validated`]) into the models' parameters
//! ([`PlatformParams`]) inside a [`Scenario`]. Validation has checked every value; this step
//! only expands: each device entry into `count` physical copies and each copy into its
//! functions (itself, its SR-IOV VFs or its SIOV ADIs), with their names, requester ids,
//! PASIDs and IMS pools.

use models::platform::{DeviceParams, ImsPoolParams, PlatformParams};

use crate::load::Scenario;
use crate::validate::{DeviceSection, Functions, Validated};

/// The scenario the validated sections describe.
pub(crate) fn build(v: Validated) -> Scenario {
    let (devices, ims_pools) = expand_devices(&v.devices);
    let p = v.platform;
    Scenario {
        name: v.name,
        description: v.description,
        seed: v.seed,
        duration: v.duration,
        event_limit: v.event_limit,
        platform: PlatformParams {
            cpu_count: p.cpu_count,
            remapping: p.remapping,
            devices,
            kernel: p.kernel,
            numa_node_count: p.numa_node_count,
            actions: v.actions,
            ims_pools,
            gic: p.gic,
            cpu_costs: p.cpu_costs,
            guests: v.guests,
            queueing: p.queueing,
            event_path_only: false,
        },
        warnings: Vec::new(),
        expect: v.expect,
        detection: v.detection,
    }
}

/// The names of the functions `device` expands into, in build order: copies are NAME0,
/// NAME1, … when `count` > 1 (else NAME), and a copy's VFs and ADIs are COPY-vfJ and
/// COPY-adiJ. Validation uses it to check that names are unique and to resolve the devices
/// actions name, whose ids are positions in this order.
pub(crate) fn function_names(device: &DeviceSection) -> Vec<String> {
    (0..device.count).flat_map(|k| copy_function_names(device, &copy_name(device, k))).collect()
}

/// The name of physical copy `k`.
fn copy_name(device: &DeviceSection, k: u32) -> String {
    if device.count == 1 { device.name.clone() } else { format!("{}{k}", device.name) }
}

/// The names of one copy's functions.
fn copy_function_names(device: &DeviceSection, copy: &str) -> Vec<String> {
    match device.functions {
        Functions::Physical => vec![copy.to_owned()],
        Functions::SriovVfs(n) => (0..n).map(|j| format!("{copy}-vf{j}")).collect(),
        Functions::SiovAdis(n) => (0..n).map(|j| format!("{copy}-adi{j}")).collect(),
    }
}

/// The first requester id a device gets: bus 1, device 0, function 0 (bus 0 holds the
/// root complex).
pub(crate) const REQUESTER_ID_FIRST: u64 = 0x0100;
/// One past the last requester id of a PCI segment (ff:1f.7).
pub(crate) const REQUESTER_ID_END: u64 = 0x1_0000;

/// The requester ids one physical copy of `device` takes: its physical function (and its
/// VFs after it, at offset 1 and stride 1, as ARI devices lay them out), rounded up to
/// whole device slots of 8 functions so the next copy starts at function 0 of a device.
pub(crate) fn requester_ids_per_copy(device: &DeviceSection) -> u64 {
    let functions = match device.functions {
        Functions::Physical | Functions::SiovAdis(_) => 1,
        Functions::SriovVfs(n) => 1 + u64::from(n),
    };
    functions.div_ceil(8) * 8
}

/// Every function of every entry, in order, and the IMS pools of the copies with IMS in
/// device memory.
///
/// Requester ids are unique and real bus:device.function numbers: physical copies take
/// consecutive device slots from 01:00.0 in file order, each copy's VFs follow its PF at
/// offset 1, stride 1 (spilling into the next device slots and buses as SR-IOV routing
/// IDs do), and ADIs share their copy's requester id with PASIDs 1, 2, … Validation has
/// checked that the whole topology fits in one segment.
fn expand_devices(sections: &[DeviceSection]) -> (Vec<DeviceParams>, Vec<ImsPoolParams>) {
    let mut devices = Vec::new();
    let mut ims_pools = Vec::new();
    let mut next = REQUESTER_ID_FIRST;
    for d in sections {
        for k in 0..d.count {
            let copy = copy_name(d, k);
            let requester_id = next;
            next += requester_ids_per_copy(d);
            assert!(next <= REQUESTER_ID_END, "validation keeps the topology in one PCI segment");
            let ims_pool = d.ims_slots.map(|slots| {
                ims_pools.push(ImsPoolParams { name: copy.clone(), slots });
                ims_pools.len() as u32 - 1
            });
            for (j, name) in copy_function_names(d, &copy).into_iter().enumerate() {
                let (rid, pasid) = match d.functions {
                    Functions::Physical => (requester_id, None),
                    Functions::SriovVfs(_) => (requester_id + 1 + j as u64, None),
                    Functions::SiovAdis(_) => (requester_id, Some(j as u32 + 1)),
                };
                let rid = u16::try_from(rid).expect("a requester id below 0x10000");
                let mut f = function(d, name, rid, pasid, ims_pool);
                if let Some(&guest) = d.tenants.get(j) {
                    f.assigned_to = Some(guest);
                    if d.provisioned_tenants.as_ref().is_some_and(|only| !only.contains(&guest)) {
                        // Programmed by the host when the VM starts.
                        f.provisioning = None;
                    }
                }
                devices.push(f);
            }
        }
    }
    (devices, ims_pools)
}

/// One function of a device entry.
fn function(
    d: &DeviceSection,
    name: String,
    requester_id: u16,
    pasid: Option<u32>,
    ims_pool: Option<u32>,
) -> DeviceParams {
    DeviceParams {
        name,
        queue_count: d.queue_count,
        msi_write_latency: d.msi_write_latency,
        arrival: d.arrival.clone(),
        service: d.service.clone(),
        eoi_cost: d.eoi_cost,
        affinity: d.affinity.clone(),
        irq_mode: d.irq_mode,
        numa_node: d.numa_node,
        store: d.store,
        ims_pool,
        store_update_latency: d.store_update_latency,
        ims_masked_raise: d.ims_masked_raise,
        requester_id,
        pasid,
        assigned_to: d.assigned_to,
        guest_msi: d.guest_msi,
        iommu_unit: d.iommu_unit,
        provisioning: d.provisioning,
        hot_add_at: d.hot_add_at,
    }
}
