//! `cargo run -p benches --release [-- NAME [OPS]]`: runs the full-size benchmarks and prints
//! a Markdown table (median of 5 runs) to paste into benches/runs/DATE-MACHINE.md. `NAME`
//! selects the benchmarks whose name contains it; `OPS` (default 10,000,000) sets the hold
//! models' operations per run (small for callgrind). With `--features nexosim`, the hold
//! rows include NeXosim 1.0's.

use benches::{BenchResult, hold_bare, hold_bare_peek_mut, hold_engine, peak_rss_bytes, peers_mm1, scenario, sweep};
use sim::SimDuration;

const RUNS: usize = 5;

/// The median, slowest and fastest of the runs by events per second, the checksum, and the
/// median run (its interrupts, events per interrupt and memory).
fn median(mut f: impl FnMut() -> BenchResult) -> (f64, f64, f64, u64, BenchResult) {
    let mut results: Vec<BenchResult> = (0..RUNS).map(|_| f()).collect();
    results.sort_by(|a, b| a.events_per_s().total_cmp(&b.events_per_s()));
    let checksum = results[0].checksum;
    assert!(results.iter().all(|r| r.checksum == checksum), "a benchmark computed different results between runs");
    let mid = results[RUNS / 2];
    (mid.events_per_s(), results[0].events_per_s(), results[RUNS - 1].events_per_s(), checksum, mid)
}

/// The interrupt columns of a row: M interrupts/s, events per interrupt, bytes per queue
/// (`-` where they do not apply).
fn interrupt_columns(r: &BenchResult) -> String {
    if r.interrupts == 0 {
        return "- | - | -".to_owned();
    }
    let bytes = r.bytes_per_queue().map_or("-".to_owned(), |b| format!("{b:.0}"));
    format!("{:.2} | {:.3} | {bytes}", r.interrupts as f64 / r.wall_s / 1e6, r.events_per_interrupt())
}

/// A scenario row: its name and its run.
type ScenarioRow = (&'static str, fn() -> BenchResult);

/// The scenario rows.
fn scenario_rows() -> [ScenarioRow; 3] {
    [
        ("scenario_nvme-bare-metal", || scenario("nvme-bare-metal", None)),
        ("scenario_interrupt-storm", || scenario("interrupt-storm", None)),
        ("scenario_peers-mm1-1024_500ms", || peers_mm1(Some(SimDuration::from_ms(500)))),
    ]
}

/// The peak memory of a process that runs only scenario row `name` once: this binary again,
/// as `benches --peak-rss NAME`.
fn peak_rss_of(name: &str) -> Option<u64> {
    let out = std::process::Command::new(std::env::current_exe().ok()?).args(["--peak-rss", name]).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn main() {
    let only = std::env::args().nth(1).unwrap_or_default();
    if only == "--peak-rss" {
        let name = std::env::args().nth(2).unwrap_or_default();
        let (_, run) = scenario_rows().into_iter().find(|(n, _)| *n == name).expect("a scenario row's name");
        run();
        println!("{}", peak_rss_bytes().expect("the OS tells the peak memory"));
        return;
    }
    let want = |name: &str| only.is_empty() || name.contains(&only);
    println!(
        "| benchmark | median M events/s | min | max | M interrupts/s | events/interrupt | bytes/queue | checksum |\n\
         |---|---:|---:|---:|---:|---:|---:|---|"
    );
    let row = |name: &str, f: &mut dyn FnMut() -> BenchResult| {
        if want(name) {
            let (med, min, max, checksum, mid) = median(f);
            let extra = interrupt_columns(&mid);
            println!("| {name} | {:.2} | {:.2} | {:.2} | {extra} | {checksum:016x} |", med / 1e6, min / 1e6, max / 1e6);
        }
    };
    let ops: u64 = std::env::args().nth(2).map_or(10_000_000, |s| s.parse().expect("OPS is a count"));
    for pending in [1_000u64, 65_536, 1_048_576] {
        row(&format!("hold_bare_binaryheap_{pending}"), &mut || hold_bare(pending, ops));
        row(&format!("hold_bare_peek_mut_{pending}"), &mut || hold_bare_peek_mut(pending, ops));
        row(&format!("hold_engine_{pending}"), &mut || hold_engine(pending, ops));
        #[cfg(feature = "nexosim")]
        row(&format!("hold_nexosim_{pending}"), &mut || benches::hold_nexosim(pending, ops));
    }
    for (name, run) in scenario_rows() {
        let memory_bytes = if want(name) { peak_rss_of(name) } else { None };
        row(name, &mut || BenchResult { memory_bytes, ..run() });
    }
    // A sweep's runs in parallel: the speed-up from 1 to 2 threads (same report bytes).
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut speed = Vec::new();
    for n in [1, 2, threads].into_iter().filter(|&n| n <= threads.max(2)) {
        let name = format!("sweep_queue-scaling_{n}_threads");
        if want(&name) && !speed.iter().any(|(m, _)| *m == n) {
            let (med, min, max, checksum, mid) = median(&mut || sweep("queue-scaling", n));
            let extra = interrupt_columns(&mid);
            println!("| {name} | {:.2} | {:.2} | {:.2} | {extra} | {checksum:016x} |", med / 1e6, min / 1e6, max / 1e6);
            speed.push((n, med));
        }
    }
    if let [(1, one), rest @ ..] = speed.as_slice() {
        for (n, med) in rest {
            println!("\nsweep speed-up, 1 to {n} threads: {:.2}x", med / one);
        }
    }
}
