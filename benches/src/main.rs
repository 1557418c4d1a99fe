//! `cargo run -p benches --release [-- NAME [OPS]]`: runs the full-size benchmarks and prints
//! a Markdown table (median of 5 runs) to paste into benches/runs/DATE-MACHINE.md. `NAME`
//! selects the benchmarks whose name contains it; `OPS` (default 10,000,000) sets the hold
//! models' operations per run (small for callgrind).

use benches::{BenchResult, hold_bare, hold_bare_peek_mut, hold_engine, scenario, sweep};

const RUNS: usize = 5;

fn median(mut f: impl FnMut() -> BenchResult) -> (f64, f64, f64, u64) {
    let mut results: Vec<BenchResult> = (0..RUNS).map(|_| f()).collect();
    results.sort_by(|a, b| a.events_per_s().total_cmp(&b.events_per_s()));
    let checksum = results[0].checksum;
    assert!(results.iter().all(|r| r.checksum == checksum), "a benchmark computed different results between runs");
    (results[RUNS / 2].events_per_s(), results[0].events_per_s(), results[RUNS - 1].events_per_s(), checksum)
}

fn main() {
    let only = std::env::args().nth(1).unwrap_or_default();
    let want = |name: &str| only.is_empty() || name.contains(&only);
    println!("| benchmark | median M events/s | min | max | checksum |\n|---|---:|---:|---:|---|");
    let row = |name: &str, f: &mut dyn FnMut() -> BenchResult| {
        if want(name) {
            let (med, min, max, checksum) = median(f);
            println!("| {name} | {:.2} | {:.2} | {:.2} | {checksum:016x} |", med / 1e6, min / 1e6, max / 1e6);
        }
    };
    let ops: u64 = std::env::args().nth(2).map_or(10_000_000, |s| s.parse().expect("OPS is a count"));
    for pending in [1_000u64, 65_536, 1_048_576] {
        row(&format!("hold_bare_binaryheap_{pending}"), &mut || hold_bare(pending, ops));
        row(&format!("hold_bare_peek_mut_{pending}"), &mut || hold_bare_peek_mut(pending, ops));
        row(&format!("hold_engine_{pending}"), &mut || hold_engine(pending, ops));
    }
    row("scenario_nvme-bare-metal", &mut || scenario("nvme-bare-metal", None));
    row("scenario_interrupt-storm", &mut || scenario("interrupt-storm", None));
    // A sweep's runs in parallel: the speed-up from 1 to 2 threads (same report bytes).
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut speed = Vec::new();
    for n in [1, 2, threads].into_iter().filter(|&n| n <= threads.max(2)) {
        let name = format!("sweep_queue-scaling_{n}_threads");
        if want(&name) && !speed.iter().any(|(m, _)| *m == n) {
            let (med, min, max, checksum) = median(&mut || sweep("queue-scaling", n));
            println!("| {name} | {:.2} | {:.2} | {:.2} | {checksum:016x} |", med / 1e6, min / 1e6, max / 1e6);
            speed.push((n, med));
        }
    }
    if let [(1, one), rest @ ..] = speed.as_slice() {
        for (n, med) in rest {
            println!("\nsweep speed-up, 1 to {n} threads: {:.2}x", med / one);
        }
    }
}
