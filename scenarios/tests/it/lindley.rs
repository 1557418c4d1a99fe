//! Lindley's recursion (`models::platform` `cpu::lindley`) against the event path: the same
//! scenario run both ways (`PlatformParams::event_path_only`) gives the same report (every
//! stage, counter, resource row and table), apart from the event count and the counter
//! that says how many CPUs took the recursion; and the recursion recording ahead (a run
//! that only its end stops) the same as on the clock (a run with an event limit).

use scenarios::runner::run_point;

/// A report entry as JSON with the values the paths may differ in taken out: the event
/// count, `cpu.lindley_path_count` and `iommu.folded_path_count` (the folded translation
/// path, `fold.rs`, which `event_path_only` turns off too). Returns the first two.
fn without_path(point: &reports::PointReport) -> (String, u64, u64) {
    let mut point = point.clone();
    let events = std::mem::take(&mut point.run.event_count);
    let path = point.counters.iter_mut().find(|c| c.name == "cpu.lindley_path_count").expect("the path counter");
    let cpus = std::mem::take(&mut path.value);
    let folded = point.counters.iter_mut().find(|c| c.name == "iommu.folded_path_count").expect("the fold counter");
    folded.value = 0;
    (serde_json::to_string_pretty(&point).expect("a report serialises"), events, cpus)
}

/// The first line where two reports differ, as a panic message.
fn assert_same(what: &str, a: &str, b: &str) {
    if a != b {
        let line = a.lines().zip(b.lines()).position(|(x, y)| x != y).unwrap_or(0);
        panic!(
            "{what} differ from line {line}:\n{}\n{}",
            a.lines().nth(line).unwrap_or(""),
            b.lines().nth(line).unwrap_or("")
        );
    }
}

/// Runs `yaml` on the recursion, recording ahead (a run without an event limit) and on the
/// clock (with an event limit it does not reach), and on events; asserts the same report
/// and returns (CPUs on the recursion, events on the recursion, events on events, raised).
fn both_ways(yaml: &str) -> (u64, u64, u64, u64) {
    let s = scenarios::load("lindley.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.event_limit, None);
    let mut on_clock = s.clone();
    on_clock.event_limit = Some(u64::MAX);
    let mut events_only = s.clone();
    events_only.platform.event_path_only = true;
    let (fast, _, _) = run_point(&s, 7, 0).expect("conservation holds");
    let (clocked, _, _) = run_point(&on_clock, 7, 0).expect("conservation holds");
    let (slow, _, _) = run_point(&events_only, 7, 0).expect("conservation holds");
    let (fast_text, fast_events, cpus) = without_path(&fast);
    let (clocked_text, clocked_events, clocked_cpus) = without_path(&clocked);
    let (slow_text, slow_events, slow_cpus) = without_path(&slow);
    assert_eq!(slow_cpus, 0, "forced onto events");
    assert_eq!((clocked_events, clocked_cpus), (fast_events, cpus), "one path, recorded two ways");
    assert_same("recording ahead and on the clock", &fast_text, &clocked_text);
    assert_same("the recursion and events", &fast_text, &slow_text);
    (cpus, fast_events, slow_events, fast.conservation.raised)
}

const HEADER: &str = "name: lindley\nduration: 5ms\n";

#[test]
fn the_mm1_comparison_takes_one_event_per_interrupt_with_the_same_report() {
    // benches/peers/mm1-1024.yaml, 5 ms: 16 CPUs, each an M/M/1 queue at rho 0.5.
    let yaml = std::fs::read_to_string(crate::workspace_root().join("benches/peers/mm1-1024.yaml")).unwrap();
    let (cpus, fast, slow, raised) = both_ways(&yaml.replace("duration: 50ms", "duration: 5ms"));
    assert_eq!(cpus, 16);
    // One event per interrupt raised (its raise); three on events (raise, MSI write, handler
    // done) for every interrupt but those the end cuts short.
    assert_eq!(fast, raised);
    assert!(slow > 2 * raised && slow <= 3 * raised, "{slow} events for {raised} raises");
}

#[test]
fn entry_costs_constant_and_lognormal_handlers_overload_and_the_end_of_the_run() {
    // Two devices on 4 CPUs, entry costs, an EOI, a CPU in overload (device b's 2 queues
    // pinned to CPU 3 at rho = 2 × 400k/s × 1.3 us = 1.04: its queue grows, and at the end
    // interrupts are waiting, in service and on their way).
    let yaml = format!(
        "{HEADER}platform:\n  cpus: 4\n  queueing: fifo\n  cpu_costs: {{ irq_entry_exit: 45ns, notification: 40ns }}\n\
         devices:\n  - name: a\n    queues: 6\n    msi_write_latency: 500ns\n    affinity: 0-2\n\
         \x20   arrival: {{ process: poisson, rate: 200k/s }}\n\
         \x20   handler: {{ service: {{ dist: lognormal, mean: 1.2us, stddev: 600ns }}, eoi: 100ns }}\n\
         \x20 - name: b\n    queues: 2\n    msi_write_latency: 500ns\n    affinity: 3\n\
         \x20   arrival: {{ process: poisson, rate: 400k/s }}\n\
         \x20   handler: {{ service: {{ dist: constant, mean: 1.115us }}, eoi: 100ns }}\n"
    );
    let (cpus, fast, _, raised) = both_ways(&yaml);
    assert_eq!((cpus, fast), (4, raised));
}

#[test]
fn a_cpu_whose_queues_differ_in_latency_stays_on_events() {
    // Device b (300 ns) shares CPU 1 with device a (500 ns): b's later raise may reach CPU 1
    // first, so CPU 1 runs on events and CPU 0 on the recursion, in one run.
    let yaml = format!(
        "{HEADER}platform:\n  cpus: 2\n  queueing: fifo\n\
         devices:\n  - name: a\n    queues: 2\n    msi_write_latency: 500ns\n    affinity: 0-1\n\
         \x20   arrival: {{ process: poisson, rate: 300k/s }}\n    handler: {{ service: {{ dist: exponential, mean: 1us }} }}\n\
         \x20 - name: b\n    queues: 1\n    msi_write_latency: 300ns\n    affinity: 1\n\
         \x20   arrival: {{ process: poisson, rate: 300k/s }}\n    handler: {{ service: {{ dist: exponential, mean: 1us }} }}\n"
    );
    let (cpus, fast, slow, raised) = both_ways(&yaml);
    assert_eq!(cpus, 1);
    assert!(fast > raised && fast < slow, "{fast} events on the recursion, {slow} on events, {raised} raised");
}

#[test]
fn queues_sharing_one_msi_vector_run_their_owners_handler() {
    // Multi-vector MSI without remapping: the 4 queues share queue 0's vector (and handler,
    // whose service stream every raise draws from).
    let yaml = format!(
        "{HEADER}platform:\n  cpus: 2\n  queueing: fifo\n\
         devices:\n  - name: m\n    interrupt_store: msi\n    queues: 4\n    msi_write_latency: 500ns\n\
         \x20   arrival: {{ process: poisson, rate: 100k/s }}\n    handler: {{ service: {{ dist: exponential, mean: 1us }} }}\n"
    );
    let (cpus, fast, _, raised) = both_ways(&yaml);
    assert_eq!((cpus, fast), (1, raised));
}

#[test]
fn remapping_lapic_queueing_and_actions_keep_the_event_path() {
    for (queueing, extra, actions) in [
        ("fifo", "  iommu: { interrupt_remapping: true, lookup_latency: 100ns }\n", ""),
        ("lapic", "", ""),
        ("fifo", "", "actions:\n  - { at: 2ms, set_affinity: { device: a, cpus: \"1\" } }\n"),
    ] {
        let yaml = format!(
            "{HEADER}platform:\n  cpus: 2\n  queueing: {queueing}\n{extra}\
             devices:\n  - name: a\n    queues: 2\n    msi_write_latency: 500ns\n\
             \x20   arrival: {{ process: poisson, rate: 100k/s }}\n    handler: {{ service: {{ dist: exponential, mean: 1us }} }}\n{actions}"
        );
        let (cpus, fast, slow, _) = both_ways(&yaml);
        assert_eq!(cpus, 0, "{yaml}");
        // With remapping the translations fold (`fold.rs`): one event fewer per MSI write.
        if extra.is_empty() {
            assert_eq!(fast, slow, "{yaml}");
        } else {
            assert!(fast < slow, "{yaml}");
        }
    }
}
