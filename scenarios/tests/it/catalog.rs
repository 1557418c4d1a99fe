//! Every catalog scenario validates, runs and conserves interrupts; the committed JSON
//! Schema is the one the code generates; the flagship's numbers are right by construction.

use models::ids::CpuId;
use models::x86::vectors::VectorSpace;
use scenarios::{catalog, runner::run_point};
use sim::SimDuration;

use super::workspace_root;

#[test]
fn catalog_files_on_disk_match_the_built_in_copies() {
    let dir = workspace_root().join("scenarios/catalog");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".yaml")
                .to_owned()
        })
        .collect();
    on_disk.sort();
    let mut built_in: Vec<String> = catalog::CATALOG.iter().map(|(n, _)| (*n).to_owned()).collect();
    built_in.sort();
    assert_eq!(
        on_disk, built_in,
        "every file in scenarios/catalog must be in catalog::CATALOG"
    );
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
        assert_eq!(c.raised, c.delivered + c.lost + c.in_flight, "{name}");
    }
}

#[test]
fn vector_exhaustion_counts_exactly_the_queues_without_a_vector() {
    let s = scenarios::load("v", catalog::get("vector-exhaustion").unwrap()).unwrap();
    let (point, _, _) = run_point(&s, 1, 0).unwrap();
    // Queue i of each device goes to CPU i mod cpus; each CPU has `available` vectors.
    let available = u64::from(VectorSpace::new(1).available(CpuId(0)));
    let cpus = u64::from(s.platform.cpu_count);
    let mut wanted = vec![0u64; cpus as usize];
    for d in &s.platform.devices {
        for q in 0..u64::from(d.queue_count) {
            wanted[(q % cpus) as usize] += 1;
        }
    }
    let expected: u64 = wanted.iter().map(|w| w.saturating_sub(available)).sum();
    assert!(expected > 0, "the scenario must exhaust vectors");
    let failure = point
        .failures
        .iter()
        .find(|f| f.name == "setup.vector_alloc_fail_count")
        .expect("failure reported");
    assert_eq!(failure.count, expected);
    assert!(failure.reason.contains("-ENOSPC"));
    let vectors = point
        .resources
        .iter()
        .find(|r| r.name == "x86.vectors_per_cpu")
        .unwrap();
    assert_eq!((vectors.used_max, vectors.limit), (available as u32, available as u32));
}

#[test]
fn committed_json_schema_is_current() {
    let committed = std::fs::read_to_string(workspace_root().join("scenarios/scenario.schema.json")).unwrap();
    assert!(
        committed == scenarios::schema::json_schema(),
        "scenarios/scenario.schema.json is stale: run `cargo run -p scenarios -- schema > scenarios/scenario.schema.json`"
    );
}
