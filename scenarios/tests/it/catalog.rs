//! Every catalog scenario validates, runs and conserves interrupts; the committed JSON
//! Schema is the one the code generates; the flagship's numbers are right by construction.

use models::ids::CpuId;
use models::x86::vector_matrix::{MatrixParams, VectorMatrix};
use scenarios::{catalog, runner::run_point};
use sim::SimDuration;

use super::workspace_root;

#[test]
fn catalog_files_on_disk_match_the_built_in_copies() {
    let dir = workspace_root().join("scenarios/catalog");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".yaml").to_owned())
        .collect();
    on_disk.sort();
    let mut built_in: Vec<String> = catalog::CATALOG.iter().map(|(n, _)| (*n).to_owned()).collect();
    built_in.sort();
    assert_eq!(on_disk, built_in, "every file in scenarios/catalog must be in catalog::CATALOG");
}

#[test]
fn every_catalog_scenario_runs_and_conserves_interrupts() {
    for (name, text) in catalog::CATALOG {
        let mut s = scenarios::load(name, text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&s.name, name, "the file name must equal the scenario name");
        // A short run: the point is that it builds, runs and conserves.
        s.duration = s.duration.min(SimDuration::from_ms(2));
        let (point, _, _) = run_point(&s, 1, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = &point.conservation;
        assert!(c.raised > 0, "{name}: nothing raised");
        assert_eq!(c.raised, c.delivered + c.lost + c.merged + c.in_flight, "{name}");
    }
}

#[test]
fn vector_exhaustion_counts_exactly_the_queues_without_a_vector() {
    let s = scenarios::load("v", catalog::get("vector-exhaustion").unwrap()).unwrap();
    let (point, _, _) = run_point(&s, 1, 0).unwrap();
    // Non-managed interrupts spill to any CPU with room, so exactly the vectors the whole
    // machine has get used and the rest fail; the capacities come from the kernel's
    // arithmetic as the matrix computes it at boot.
    let k = &s.platform.kernel;
    let matrix = VectorMatrix::new(MatrixParams {
        cpu_count: s.platform.cpu_count,
        era: k.era(),
        legacy_pic: k.legacy_pic,
        ia32_emulation: k.ia32_emulation,
    });
    let capacity: u64 =
        (0..s.platform.cpu_count).map(|c| u64::from(matrix.cpumap(CpuId(c)).unwrap().available())).sum();
    let wanted: u64 = s.platform.devices.iter().map(|d| u64::from(d.queue_count)).sum();
    assert!(wanted > capacity, "the scenario must exhaust vectors");
    let count = |name: &str| point.counters.iter().find(|c| c.name == name).unwrap().value;
    assert_eq!(count("setup.vector_alloc_fail_count"), wanted - capacity);
    assert_eq!(count("setup.queue_routed_count"), capacity);
    // Round robin fills all CPUs together: the fallback finds no CPU with room, so nothing
    // is placed outside its affinity (models' unit tests cover the spill case).
    assert_eq!(count("x86.affinity_broken_count"), 0);
    let failure = point.failures.iter().find(|f| f.name == "setup.vector_alloc_fail_count").expect("failure reported");
    assert!(failure.reason.contains("-ENOSPC"));
    // The description's number is the same arithmetic: 2 x 2048 - 16 x 203.
    assert!(s.description.contains(&format!("{} queues get no", wanted - capacity)), "{}", s.description);
    let table = &point.tables[1].text;
    assert!(table.contains("| CPU | avl | man | mac | act | vectors"), "{table}");
}

#[test]
fn cpu_hotplug_exercises_every_hotplug_outcome() {
    let s = scenarios::load("h", catalog::get("cpu-hotplug").unwrap()).unwrap();
    let (point, platform, _) = run_point(&s, 1, 0).unwrap();
    let count = |name: &str| point.counters.iter().find(|c| c.name == name).unwrap().value;
    assert_eq!(count("x86.managed_shutdown_count"), 1, "nvme0 queue 5 has mask {{5}}");
    assert_eq!(count("x86.managed_restart_count"), 1);
    assert!(count("x86.migrated_count") >= 1);
    assert_eq!(count("x86.unplug_busy_count"), 1, "the boot CPU cannot go offline");
    assert_eq!(count("x86.no_longer_affine_count"), 2, "nic0 queues 5 and 13 have mask {{5}}");
    assert!(count("x86.move_completed_count") >= 1);
    assert_eq!(count("interrupt.lost_count"), 0);
    assert!(count("interrupt.merged_pending_count") > 0, "raises merged while the managed queue was shut down");
    platform.vector_domain().unwrap().check_invariants().unwrap();
}

#[test]
fn dsa_ims_density_runs_out_of_slots_not_vectors() {
    let s = scenarios::load("d", catalog::get("dsa-ims-density").unwrap()).unwrap();
    let (point, _, _) = run_point(&s, 1, 0).unwrap();
    let count = |name: &str| point.counters.iter().find(|c| c.name == name).unwrap().value;
    let slots = u64::from(s.platform.ims_pools[0].slots);
    let wanted: u64 = s.platform.devices.iter().map(|d| u64::from(d.queue_count)).sum();
    assert_eq!(count("setup.ims_slot_fail_count"), wanted - slots);
    assert_eq!(count("setup.vector_alloc_fail_count"), 0, "vectors are not the binding limit");
    assert!(s.description.contains(&format!("{} interrupts find no slot", wanted - slots)));
    // ADIs share the requester id and differ by PASID.
    let adis = &s.platform.devices;
    assert!(adis.iter().all(|d| d.requester_id == adis[0].requester_id));
    assert_eq!(adis[299].pasid, Some(300));
    assert!(point.tables[0].text.contains("| dsa-adi299 | 01:00.0 | 300 | ims_device |"), "{}", point.tables[0].text);
}

#[test]
fn quiet_remapped_interrupts_release_their_old_vectors_without_an_interrupt() {
    // The same 2,048 moves with queues that almost never raise: with remapping the cleanup
    // follows the IRTE update, not the first interrupt, so every old vector is freed by the
    // first jiffy after the last update (4.5 ms + 1 ms; HZ = 250: the 8 ms tick). Before,
    // 9 ms after the move only the moves that had seen an interrupt had completed.
    let text = catalog::get("irte-lock-contention").unwrap();
    let overrides = [("devices[0].arrival.rate".to_owned(), "1/s".to_owned())];
    let s = scenarios::load_with_overrides("i", text, &overrides).unwrap();
    let (point, _, _) = run_point(&s, 1, 0).unwrap();
    let count = |name: &str| point.counters.iter().find(|c| c.name == name).unwrap().value;
    assert_eq!(count("x86.move_completed_count"), 2048);
    let vectors = point.resources.iter().find(|r| r.name == "x86.vectors_per_cpu").unwrap();
    // 2,048 vectors on CPUs 32-63 (64 each), none left on 0-31 (the boot CPU has its own row).
    assert_eq!((vectors.used_min, vectors.used_max), (0, 64));
}

#[test]
fn irte_lock_contention_serialises_every_update() {
    let s = scenarios::load("i", catalog::get("irte-lock-contention").unwrap()).unwrap();
    let (point, _, _) = run_point(&s, 1, 0).unwrap();
    let remap = &s.platform.remapping.as_ref().unwrap().remap;
    let hold_ns = (remap.irte_write + remap.iec_invalidation).as_ns_f64();
    let n = u64::from(s.platform.devices[0].queue_count);
    let count = |name: &str| point.counters.iter().find(|c| c.name == name).unwrap().value;
    assert_eq!(count("iommu.irte_update_count"), n);
    let wait = point.stages.iter().find(|st| st.stage == "irte_lock_wait").unwrap();
    // Update k (0-based) waits k holds: the longest waits n - 1 holds, the mean (n - 1) / 2.
    assert_eq!(wait.max_ns, (n - 1) as f64 * hold_ns);
    assert!((wait.mean_ns - (n - 1) as f64 / 2.0 * hold_ns).abs() < 1e-6, "{}", wait.mean_ns);
    assert_eq!(count("interrupt.lost_count"), 0);
    assert_eq!(
        count("x86.move_completed_count") + count("x86.set_affinity_fail_count"),
        n,
        "every move completes (or is refused)"
    );
}

#[test]
fn arm_lpi_budget_binds_globally() {
    let s = scenarios::load("a", catalog::get("arm-lpi-budget").unwrap()).unwrap();
    let (point, _, _) = run_point(&s, 1, 0).unwrap();
    let count = |name: &str| point.counters.iter().find(|c| c.name == name).unwrap().value;
    // 2^16 INTIDs minus the 8,192 below the LPI range; each function takes a 2,048 block.
    let lpis = (1u64 << 16) - 8192;
    let per_function = u64::from(s.platform.devices[0].queue_count);
    let functions = s.platform.devices.len() as u64;
    let fit = lpis / per_function;
    assert_eq!(count("setup.queue_routed_count"), fit * per_function);
    assert_eq!(count("setup.lpi_exhausted_count"), (functions - fit) * per_function);
    assert!(s.description.contains(&format!("{} vectors get none", (functions - fit) * per_function)));
    // fn0's queue k sits on CPU k mod 64 and moves to 32 + k mod 32: only the events not
    // already there need a MOVI (its_set_affinity skips the others).
    let cpus = u64::from(s.platform.cpu_count);
    let moved = (0..per_function).filter(|k| k % cpus != 32 + k % 32).count() as u64;
    assert_eq!(count("arm.its_command_round_trip_count"), moved, "one MOVI (+SYNC) per moved event");
    // Setup is over before the run, so the moves find an idle queue: the k-th MOVI + SYNC
    // (100 + 400 ns) ends at k x 500 ns and is seen at the next 1 us poll; each is recorded
    // once, when it completes, and the unmoved events record nothing.
    let st = point.stages.iter().find(|st| st.stage == "its_command").unwrap();
    let last_us = moved.div_ceil(2) as f64;
    assert_eq!((st.count, st.max_ns), (moved, last_us * 1000.0));
    let mean_us = (1..=moved).map(|k| k.div_ceil(2) as f64).sum::<f64>() / moved as f64;
    assert_eq!(st.mean_ns, mean_us * 1000.0);
    assert!(point.tables.iter().all(|t| !t.name.contains("x86")));
}

#[test]
fn arm_gicv2m_runs_out_of_spis() {
    let s = scenarios::load("v", catalog::get("arm-gicv2m").unwrap()).unwrap();
    let (point, _, _) = run_point(&s, 1, 0).unwrap();
    let count = |name: &str| point.counters.iter().find(|c| c.name == name).unwrap().value;
    assert_eq!(count("setup.v2m_spi_exhausted_count"), 64);
    assert_eq!(count("setup.queue_routed_count"), 64);
    let spis = point.resources.iter().find(|r| r.name == "arm.v2m_spis").unwrap();
    assert_eq!((spis.used_max, spis.limit), (64, 64));
}

#[test]
fn posted_msi_beats_remappable_at_saturation_by_the_published_margin() {
    let rate = |name: &str| {
        let s = scenarios::load(name, catalog::get(name).unwrap()).unwrap();
        let (point, _, _) = run_point(&s, 1, 0).unwrap();
        let delivered = point.counters.iter().find(|c| c.name == "interrupt.delivered_count").unwrap().value;
        delivered as f64 / (point.run.simulated_ns * 1e-9)
    };
    let (posted, remappable) = (rate("posted-msi"), rate("remappable-msi"));
    // Jacob Pan: 5.157 -> 8.987 M IRQ/s (1.74x) with the RFC's loop; Linux 6.10's loop gives
    // the fitted model 1.68x. Direction and rough size, as the issue asks.
    assert!((4.9e6..5.4e6).contains(&remappable), "remappable {remappable}");
    assert!((8.2e6..9.2e6).contains(&posted), "posted {posted}");
    assert!((1.5..2.2).contains(&(posted / remappable)));
}

#[test]
fn posted_guest_exercises_all_three_delivery_paths() {
    let s = scenarios::load("g", catalog::get("posted-guest").unwrap()).unwrap();
    let (point, _, _) = run_point(&s, 1, 0).unwrap();
    let count = |name: &str| point.counters.iter().find(|c| c.name == name).unwrap().value;
    assert!(count("kvm.posted_notified_running_count") > 0);
    assert!(count("kvm.posted_accumulated_count") > 0);
    assert!(count("kvm.posted_wakeup_count") > 0);
    // Two vCPUs per pCPU: every wake-up walks both list entries (or one, when the other
    // vCPU is running).
    let (wakeups, walked) = (count("kvm.posted_wakeup_count"), count("kvm.wakeup_list_entries_walked_count"));
    assert!(walked >= wakeups && walked <= 2 * wakeups, "{walked} entries for {wakeups} wake-ups");
    assert!(count("kvm.hlt_exit_count") > 0 && count("kvm.preemption_count") > 0);
    assert_eq!(count("interrupt.lost_count"), 0);
    assert!(point.stages.iter().any(|st| st.stage == "posted_delivery" && st.count > 0));
    // The lowest-priority device's interrupts are forwarded by the host, none posted.
    assert!(count("kvm.remapped_fallback_count") > 0);
    assert!(
        point.tables[0]
            .text
            .contains("| storage | 01:02.0 | - | msix | 4 | 4 | 4 | vm0 remapped (lowest priority to 2 vCPUs) |"),
        "{}",
        point.tables[0].text
    );
}

#[test]
fn gicv4_guest_exercises_direct_doorbell_and_pending_vlpis() {
    let s = scenarios::load("g4", catalog::get("gicv4-guest").unwrap()).unwrap();
    let (point, _, _) = run_point(&s, 1, 0).unwrap();
    let count = |name: &str| point.counters.iter().find(|c| c.name == name).unwrap().value;
    assert!(count("kvm.vlpi_direct_count") > 0);
    assert!(count("kvm.vlpi_doorbell_count") > 0);
    assert!(count("kvm.vlpi_pending_count") > 0);
    assert_eq!(count("interrupt.lost_count"), 0);
    // GICv4.1 doorbells take LPIs from the same budget as devices: one per vPE.
    let lpis = point.resources.iter().find(|r| r.name == "arm.lpis").unwrap();
    assert!(lpis.used_max >= 4 + 16, "{lpis:?}");
}

#[test]
fn committed_json_schema_is_current() {
    let committed = std::fs::read_to_string(workspace_root().join("scenarios/scenario.schema.json")).unwrap();
    assert!(
        committed == scenarios::schema::json_schema(),
        "scenarios/scenario.schema.json is stale: run `cargo run -p scenarios -- schema > scenarios/scenario.schema.json`"
    );
}
