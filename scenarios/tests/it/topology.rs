//! Requester ids are real and unique bus:device.function numbers, however many functions a
//! topology has (up to one PCI segment), on x86 and on ARM where the ITS DeviceID is the
//! requester id.

use scenarios::runner::run_point;

fn scenario(arch: &str, devices: &str) -> scenarios::Scenario {
    let platform = match arch {
        "arm" => {
            "  arch: arm\n  cpus: 8\n  gic: { version: v3, msi: its, translation_latency: 80ns, its_command: 100ns, its_sync: 400ns }\n"
        }
        _ => "  cpus: 8\n  iommu: { interrupt_remapping: true, lookup_latency: 100ns }\n",
    };
    let text = format!("name: t\nduration: 1ms\nplatform:\n{platform}devices:\n{devices}");
    scenarios::load("t.yaml", &text).unwrap_or_else(|e| panic!("{e}"))
}

const HANDLER: &str = "    msi_write_latency: 500ns\n    arrival: { process: poisson, rate: 1k/s }\n    handler:\n      service: { dist: constant, mean: 1us }\n";

#[test]
fn three_hundred_functions_get_three_hundred_device_ids_on_arm() {
    // With one bus per function the 257th wrapped to 00:00.0 and the ITS routed only 256.
    let s = scenario("arm", &format!("  - name: f\n    count: 300\n    queues: 1\n{HANDLER}"));
    let ids: Vec<u16> = s.platform.devices.iter().map(|d| d.requester_id).collect();
    // Device slots from 01:00.0: function 0 of devices 0..31 on buses 1..=10.
    let expected: Vec<u16> = (0..300u16).map(|k| 0x0100 + 8 * k).collect();
    assert_eq!(ids, expected);
    let (point, _, _) = run_point(&s, 1, 0).unwrap();
    let routed = point.counters.iter().find(|c| c.name == "setup.queue_routed_count").unwrap().value;
    assert_eq!(routed, 300);
}

#[test]
fn vfs_follow_their_pf_and_the_next_copy_starts_at_a_device_slot() {
    // 3 copies of a PF with 20 VFs: 21 functions take 3 device slots (24 ids) each.
    let s = scenario("x86", &format!("  - name: n\n    count: 3\n    sriov_vfs: 20\n    queues: 1\n{HANDLER}"));
    let ids: Vec<u16> = s.platform.devices.iter().map(|d| d.requester_id).collect();
    let expected: Vec<u16> = (0..3u16).flat_map(|copy| (0..20u16).map(move |vf| 0x0100 + 24 * copy + 1 + vf)).collect();
    assert_eq!(ids, expected);
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
}

#[test]
fn a_full_segment_fits_and_one_more_slot_does_not() {
    // 255 buses x 32 device slots = 8,160 single-function copies fill the segment exactly.
    let fits = format!("  - name: f\n    count: 8160\n    queues: 1\n{HANDLER}");
    let s = scenario("x86", &fits);
    assert_eq!(s.platform.devices.last().unwrap().requester_id, 0xfff8);
    let over = format!("  - name: f\n    count: 8161\n    queues: 1\n{HANDLER}");
    let text = format!(
        "name: t\nduration: 1ms\nplatform:\n  cpus: 8\n  iommu: {{ interrupt_remapping: true, lookup_latency: 100ns }}\ndevices:\n{over}"
    );
    let err = scenarios::load("t.yaml", &text).unwrap_err().to_string();
    assert!(err.contains("8161 copies need 65288 requester ids") && err.contains("has 65280"), "{err}");
}
