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
        },
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

/// Every function of every entry, in order, and the IMS pools of the copies with IMS in
/// device memory.
///
/// Each physical copy sits on its own bus: requester id `bus << 8` (device 0, function 0),
/// buses numbered from 1 in file order. VFs follow at offset 1, stride 1 (a common SR-IOV
/// layout); ADIs share their copy's requester id and have PASIDs 1, 2, …
fn expand_devices(sections: &[DeviceSection]) -> (Vec<DeviceParams>, Vec<ImsPoolParams>) {
    let mut devices = Vec::new();
    let mut ims_pools = Vec::new();
    let mut physical = 0u32;
    for d in sections {
        for k in 0..d.count {
            let copy = copy_name(d, k);
            let requester_id = u16::try_from(physical + 1).map_or(u16::MAX, |bus| bus << 8);
            physical += 1;
            let ims_pool = d.ims_slots.map(|slots| {
                ims_pools.push(ImsPoolParams { name: copy.clone(), slots });
                ims_pools.len() as u32 - 1
            });
            for (j, name) in copy_function_names(d, &copy).into_iter().enumerate() {
                let (requester_id, pasid) = match d.functions {
                    Functions::Physical => (requester_id, None),
                    Functions::SriovVfs(_) => (requester_id.wrapping_add(1 + j as u16), None),
                    Functions::SiovAdis(_) => (requester_id, Some(j as u32 + 1)),
                };
                devices.push(function(d, name, requester_id, pasid, ims_pool));
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
        requester_id,
        pasid,
        assigned_to: d.assigned_to,
        guest_msi: d.guest_msi,
        iommu_unit: d.iommu_unit,
    }
}
