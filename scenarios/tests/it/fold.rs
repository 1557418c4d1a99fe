//! The folded translation path (`models::platform` `Platform::end_at`: the MSI write and the
//! remapping lookup made at the raise) against the event path: the same scenario run both
//! ways (`PlatformParams::event_path_only`) gives the same report (every stage, counter,
//! resource row and table), apart from the event count and `iommu.folded_path_count`.

use scenarios::catalog::CATALOG;
use scenarios::runner::run_point;

/// A report entry as JSON with the two values the paths may differ in taken out: the event
/// count and `iommu.folded_path_count`. Returns them too.
fn without_fold(point: &reports::PointReport) -> (String, u64, u64) {
    let mut point = point.clone();
    let events = std::mem::take(&mut point.run.event_count);
    let path = point.counters.iter_mut().find(|c| c.name == "iommu.folded_path_count").expect("the path counter");
    let units = std::mem::take(&mut path.value);
    (serde_json::to_string_pretty(&point).expect("a report serialises"), events, units)
}

/// Runs `s` folded where allowed and on events; asserts the same report and returns (units
/// folded, events folded, events on events, IRTE lookups: cache hits and misses).
fn both_ways(name: &str, s: &scenarios::Scenario) -> (u64, u64, u64, u64) {
    let mut events_only = s.clone();
    events_only.platform.event_path_only = true;
    let (fast, _, _) = run_point(s, 7, 0).expect("conservation holds");
    let (slow, _, _) = run_point(&events_only, 7, 0).expect("conservation holds");
    let (fast_text, fast_events, units) = without_fold(&fast);
    let (slow_text, slow_events, slow_units) = without_fold(&slow);
    assert_eq!(slow_units, 0, "{name}: forced onto events");
    if fast_text != slow_text {
        let line = fast_text.lines().zip(slow_text.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "{name}: the paths differ from line {line}:\nfolded: {}\nevents: {}",
            fast_text.lines().nth(line).unwrap_or(""),
            slow_text.lines().nth(line).unwrap_or("")
        );
    }
    let count = |name: &str| fast.counters.iter().find(|c| c.name == name).map_or(0, |c| c.value);
    (units, fast_events, slow_events, count("iommu.irte_cache_hit_count") + count("iommu.irte_cache_miss_count"))
}

/// A catalog scenario with its duration cut to at most `ms` milliseconds (the comparison
/// does not need the whole run); `None` for a sweep.
fn catalog(name: &str, ms: u64) -> Option<scenarios::Scenario> {
    let yaml = scenarios::catalog::get(name).expect("in the catalog");
    let mut s = scenarios::load(&format!("{name}.yaml"), yaml).ok()?;
    s.duration = s.duration.min(sim::SimDuration::from_ps(ms * 1_000_000_000));
    Some(s)
}

#[test]
fn the_default_scenario_takes_three_events_per_interrupt_with_the_same_report() {
    // nvme-bare-metal (the default): VT-d, the LAPIC's queueing, one 500 ns write latency,
    // no actions or guests.
    let s = catalog("nvme-bare-metal", 20).expect("a scenario");
    let (units, fast, slow, lookups) = both_ways("nvme-bare-metal", &s);
    assert_eq!(units, 1);
    // One event fewer for each write the unit translated (every one an IRTE lookup, a hit or
    // a miss, in this scenario: no faults): its MsiWrite. Those raised in the run's last
    // 500 ns stay on events and reach the unit after the end on both paths: no lookup.
    assert_eq!(slow - fast, lookups, "{fast} folded, {slow} on events");
}

/// The catalog scenarios that fold: VT-d, one write latency, nothing else touching the
/// unit (no actions, guests, provisioning, hot-add or posted-MSI host mode).
const FOLDED: &[&str] =
    &["nvme-bare-metal", "interrupt-storm", "vector-exhaustion", "dsa-ims-density", "remappable-msi", "queue-scaling"];

#[test]
fn every_catalog_scenario_that_folds_gives_the_same_report_and_the_others_stay_on_events() {
    let mut folded = Vec::new();
    for &(name, _) in CATALOG {
        // A sweep's points are covered through their base scenario.
        let Some(s) = catalog(name, 2) else { continue };
        let (units, fast, slow, lookups) = both_ways(name, &s);
        if units > 0 {
            assert_eq!(slow - fast, lookups, "{name}: {fast} folded, {slow} on events");
            folded.push(name);
        } else {
            assert_eq!(fast, slow, "{name}");
        }
    }
    // Those with remapping and nothing else that touches the unit during the run.
    assert!(folded.contains(&"nvme-bare-metal"), "{folded:?}");
    assert_eq!(folded, FOLDED);
}

#[test]
fn two_write_latencies_keep_the_event_path() {
    // Device b's writes (300 ns) may reach the unit before a's (500 ns) raised earlier: the
    // unit's calls would not be in raise order, so the run stays on events.
    let yaml = "name: two\nduration: 2ms\nplatform:\n  cpus: 2\n  iommu: { interrupt_remapping: true, lookup_latency: 100ns }\n\
                devices:\n  - name: a\n    queues: 2\n    msi_write_latency: 500ns\n\
                \x20   arrival: { process: poisson, rate: 300k/s }\n    handler: { service: { dist: exponential, mean: 1us } }\n\
                \x20 - name: b\n    queues: 1\n    msi_write_latency: 300ns\n\
                \x20   arrival: { process: poisson, rate: 300k/s }\n    handler: { service: { dist: exponential, mean: 1us } }\n";
    let s = scenarios::load("two.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
    let (units, fast, slow, _) = both_ways("two", &s);
    assert_eq!((units, fast), (0, slow));
    // The same with one latency folds.
    let s = scenarios::load("one.yaml", &yaml.replace("300ns", "500ns")).unwrap_or_else(|e| panic!("{e}"));
    let (units, fast, slow, lookups) = both_ways("one", &s);
    assert_eq!((units, slow - fast), (1, lookups));
}
