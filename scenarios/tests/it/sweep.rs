//! Sweeps end to end through the `irqsim` binary: points are the scenario with the values
//! written in, reports are the same bytes whatever the thread count or sharding, merge
//! refuses what does not belong together, an interrupted sweep resumes without losing or
//! repeating a run, invalid points name the value that made them so, and failed
//! expectations exit 3 with the report written.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::{Scratch, irqsim};

/// A small scenario with `rate` and `sweep` (YAML text appended at the end).
fn scenario(rate: &str, tail: &str) -> String {
    format!(
        "name: small\nseed: 5\nduration: 2ms\nplatform:\n  cpus: 4\ndevices:\n  - name: d\n    queues: 4\n    \
         msi_write_latency: 500ns\n    arrival: {{ process: poisson, rate: {rate} }}\n    handler:\n      \
         service: {{ dist: exponential, mean: 1us }}\n{tail}"
    )
}

/// Two rates, two variants, three replications: 12 runs.
const SWEEP: &str = "sweep:\n  axes:\n    - path: devices[0].arrival.rate\n      values: [20k/s, 80k/s]\n  \
                     replications: 3\n  variants:\n    - name: short\n    - name: long\n      set:\n        \
                     devices[0].handler.service.mean: 3us\n";

fn run(dir: &Path, file: &Path, out: &str, args: &[&str]) -> Output {
    irqsim().arg("run").arg(file).arg("--out").arg(dir.join(out)).args(args).output().unwrap()
}

fn ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("s.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn a_sweep_point_is_the_scenario_with_its_values_written_in() {
    let tmp = Scratch::new("sweep-point");
    let file = write(&tmp.0, &scenario("10k/s", SWEEP));
    ok(&run(&tmp.0, &file, "sweep", &["--threads", "2"]), "sweep");
    let sweep = reports::read_report(&tmp.0.join("sweep/report.json")).unwrap();
    assert_eq!(sweep.points.len(), 12);
    let info = sweep.sweep.as_ref().unwrap();
    assert_eq!(info.seeds, scenarios::sweep::replication_seeds(5, 3));
    assert_eq!(info.seeds[0], 5, "replication 0 runs with the run seed itself");
    // Point 1 (80k/s), variant long, replication 0 = the file with those values, seed 5.
    let plain = scenario("80k/s", "").replace("mean: 1us", "mean: 3us");
    let single = tmp.0.join("single.yaml");
    std::fs::write(&single, plain).unwrap();
    ok(&irqsim().arg("run").arg(&single).arg("--out").arg(tmp.0.join("single")).output().unwrap(), "single");
    let one = reports::read_report(&tmp.0.join("single/report.json")).unwrap();
    let p = sweep.points.iter().find(|p| p.index == 1 && p.variant.as_deref() == Some("long") && p.replication == 0);
    let p = p.expect("the run exists");
    assert_eq!(p.parameters, vec![("devices[0].arrival.rate".to_owned(), "80k/s".to_owned())]);
    // As JSON: a stage with no samples is NaN in memory (never equal to itself), null there.
    assert_eq!(p.seed, 5);
    let json = |stages: &[reports::StageSummary]| serde_json::to_string(stages).unwrap();
    assert_eq!(json(&p.stages), json(&one.points[0].stages));
    assert_eq!(p.conservation, one.points[0].conservation);
    assert_eq!(p.counters, one.points[0].counters);
    // Replications differ from each other (other seeds), variants share seeds.
    let runs: Vec<_> = sweep.points.iter().filter(|p| p.index == 1 && p.variant.as_deref() == Some("long")).collect();
    assert_eq!(runs.iter().map(|p| p.seed).collect::<Vec<_>>(), info.seeds);
    assert_ne!(runs[0].conservation.raised, runs[1].conservation.raised);
    let short: Vec<_> = sweep.points.iter().filter(|p| p.index == 1 && p.variant.as_deref() == Some("short")).collect();
    // Common random numbers: the same arrivals whatever the handler, so the same raises.
    for (s, l) in short.iter().zip(&runs) {
        assert_eq!(s.conservation.raised, l.conservation.raised);
    }
}

#[test]
fn reports_are_the_same_bytes_with_one_or_two_threads_and_in_shards() {
    let tmp = Scratch::new("sweep-threads");
    let file = write(&tmp.0, &scenario("10k/s", SWEEP));
    ok(&run(&tmp.0, &file, "one", &["--threads", "1"]), "one thread");
    ok(&run(&tmp.0, &file, "two", &["--threads", "2"]), "two threads");
    let mut shards = Vec::new();
    for i in 0..3 {
        let name = format!("shard{i}");
        ok(&run(&tmp.0, &file, &name, &["--shard", &format!("{i}/3"), "--threads", "2"]), &name);
        shards.push(tmp.0.join(name));
    }
    // Kubernetes gives the index in JOB_COMPLETION_INDEX, Slurm as an array task id.
    let out = irqsim()
        .arg("run")
        .arg(&file)
        .args(["--shard", "auto/3", "--out"])
        .arg(tmp.0.join("k8s"))
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    ok(&out, "auto shard");
    assert_eq!(read(tmp.0.join("k8s/report.json")), read(tmp.0.join("shard1/report.json")));
    let out = irqsim()
        .arg("run")
        .arg(&file)
        .args(["--shard", "auto/3", "--out"])
        .arg(tmp.0.join("slurm"))
        .env("SLURM_ARRAY_TASK_ID", "9")
        .env("SLURM_ARRAY_TASK_MIN", "5")
        .env("SLURM_ARRAY_TASK_STEP", "2")
        .output()
        .unwrap();
    ok(&out, "slurm shard");
    assert_eq!(read(tmp.0.join("slurm/report.json")), read(tmp.0.join("shard2/report.json")));
    let merged = irqsim().arg("merge").args(&shards).arg("--out").arg(tmp.0.join("merged")).output().unwrap();
    ok(&merged, "merge");
    for name in ["report.json", "points.csv", "summary.md", "summary.txt"] {
        let one = read(tmp.0.join("one").join(name));
        assert_eq!(one, read(tmp.0.join("two").join(name)), "{name}: 1 vs 2 threads");
        assert_eq!(one, read(tmp.0.join("merged").join(name)), "{name}: merged shards vs one process");
    }
    // The shards split the runs round robin: 4 runs each.
    let shard0 = reports::read_report(&shards[0].join("report.json")).unwrap();
    assert_eq!(shard0.points.len(), 4);
    assert_eq!(shard0.shard, Some(reports::ShardInfo { index: 0, count: 3 }));
}

#[test]
fn merge_refuses_shards_that_do_not_make_one_whole_run() {
    let tmp = Scratch::new("sweep-merge");
    let file = write(&tmp.0, &scenario("10k/s", SWEEP));
    for (name, args) in [
        ("a0", &["--shard", "0/2"][..]),
        ("a1", &["--shard", "1/2"]),
        ("seed0", &["--shard", "0/2", "--seed", "9"]),
        ("three0", &["--shard", "0/3"]),
        ("whole", &[]),
    ] {
        ok(&run(&tmp.0, &file, name, args), name);
    }
    let merge = |names: &[&str]| {
        let mut cmd = irqsim();
        cmd.arg("merge");
        for n in names {
            cmd.arg(tmp.0.join(n));
        }
        cmd.arg("--out").arg(tmp.0.join("m")).output().unwrap()
    };
    for (names, words) in [
        (&["a0"][..], "shards 1 of 2 are missing"),
        (&["a0", "a0"], "are both shard 0 of 2"),
        (&["a1", "seed0"], "its seed"),
        (&["a0", "three0"], "merge the shards of one split"),
        (&["whole"], "is not a shard"),
    ] {
        let out = merge(names);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{names:?}: {err}");
        assert!(err.contains(words), "{names:?}: expected `{words}` in {err}");
    }
    // A damaged or edited shard is refused before anything is allocated for it.
    let text = std::fs::read_to_string(tmp.0.join("a0/report.json")).unwrap();
    for (name, from, to) in [
        ("huge-count", "\"count\": 2", "\"count\": 4000000000"),
        ("huge-sweep", "\"point_count\": 2", "\"point_count\": 4000000000"),
    ] {
        let edited = text.replacen(from, to, 1);
        assert_ne!(edited, text, "{name}");
        std::fs::create_dir_all(tmp.0.join(name)).unwrap();
        std::fs::write(tmp.0.join(name).join("report.json"), edited).unwrap();
        let out = merge(&[name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains("damaged or edited"), "{name}: {err}");
    }
    assert!(!tmp.0.join("m").exists(), "a refused merge writes nothing");
    ok(&merge(&["a1", "a0"]), "the two halves, in any order");
}

#[test]
fn an_interrupted_sweep_resumes_without_losing_or_repeating_runs() {
    let tmp = Scratch::new("sweep-resume");
    let file = write(&tmp.0, &scenario("10k/s", SWEEP));
    ok(&run(&tmp.0, &file, "whole", &["--threads", "1"]), "whole");
    let out = irqsim()
        .arg("run")
        .arg(&file)
        .args(["--threads", "1", "--out"])
        .arg(tmp.0.join("cut"))
        .env("IRQSIM_TEST_STOP_AFTER", "5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(137), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!tmp.0.join("cut").exists(), "an interrupted run leaves no report");
    let checkpoint = reports::checkpoint_dir(&tmp.0.join("cut"));
    let kept = std::fs::read_dir(&checkpoint)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("run-"));
    assert_eq!(kept.count(), 5);
    // Without --resume the kept runs are not thrown away silently.
    let again = run(&tmp.0, &file, "cut", &["--threads", "1"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("left 5 finished runs"));
    // Another seed is another run: refused.
    let other = run(&tmp.0, &file, "cut", &["--resume", "--seed", "6"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("its seed"));
    let resumed = run(&tmp.0, &file, "cut", &["--resume", "--threads", "2"]);
    ok(&resumed, "resume");
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("resuming: 5 runs already finished"));
    for name in ["report.json", "points.csv", "summary.md"] {
        assert_eq!(read(tmp.0.join("whole").join(name)), read(tmp.0.join("cut").join(name)), "{name}");
    }
    // Only the 7 other runs ran again: their events are the resumed process's events.
    let whole = reports::read_report(&tmp.0.join("whole/report.json")).unwrap();
    let rest: u64 = whole.points[5..].iter().map(|p| p.run.event_count).sum();
    let perf: serde_json::Value = serde_json::from_slice(&read(tmp.0.join("cut/perf.json"))).unwrap();
    assert_eq!(perf["event_count"].as_u64(), Some(rest));
    assert!(!checkpoint.exists(), "the checkpoint is removed once the report is in place");
}

#[test]
fn an_invalid_point_names_the_axis_value_that_made_it_so() {
    let tmp = Scratch::new("sweep-invalid");
    let cases = [
        (
            "sweep:\n  axes:\n    - path: platform.cpus\n      values: [4, 0]\n",
            &["sweep point 1 (platform.cpus=0) is invalid", "override `platform.cpus=0`", "1 of the sweep's 2"][..],
        ),
        (
            "sweep:\n  combine: zip\n  axes:\n    - path: platform.cpus\n      values: [4, 8]\n    - path: devices[0].queues\n      values: [1]\n",
            &["s.yaml:", "sweep.axes[1].values", "needs as many values as the first (2); this one has 1"],
        ),
        ("sweep:\n  axes:\n    - path: seed\n      values: [1, 2]\n", &["sweep.axes[0].path", "the seed is not swept"]),
        (
            "sweep:\n  axes:\n    - path: devices[0].colour\n      values: [1]\n",
            &["s.yaml:15:13: sweep.axes[0].path: `devices[0]` has no field `colour`", "1 error in"],
        ),
        ("sweep:\n  replications: 0\n", &["sweep.replications", "expected 1 to 1000"]),
        (
            "sweep:\n  axes:\n    - path: platform.cpus\n      values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n  replications: 1000\n  variants:\n    - name: a\n    - name: b\n    - name: c\n    - name: d\n    - name: e\n    - name: f\n    - name: g\n    - name: h\n    - name: i\n    - name: j\n    - name: k\n",
            &["the sweep has 110000 runs", "at most 100000"],
        ),
        ("sweep:\n  variants:\n    - name: a\n    - name: a\n", &["`a` is already a variant's name"]),
        (
            "sweep:\n  axes:\n    - label: total\n      values: [1, 2]\n",
            &["sweep.axes[0].label", "a label axis names the points of `combine: zip`"],
        ),
        ("sweep:\n  axes:\n    - values: [1, 2]\n", &["an axis needs `path`"]),
        (
            "sweep:\n  axes:\n    - path: devices[0].queues\n      values: [2, 4]\n    - path: devices[00].queues\n      values: [8]\n",
            &["sweep.axes[1]", "`devices[00].queues` and the axis `devices[0].queues` set the same field"],
        ),
        (
            "sweep:\n  axes:\n    - path: devices[0].arrival.rate\n      values: [10k/s]\n  variants:\n    - name: a\n    - name: b\n      set:\n        devices[0].arrival: { process: poisson, rate: 50k/s }\n",
            &[
                "sweep.variants[1].set",
                "`devices[0].arrival` sets the field of the sweep axis `devices[0].arrival.rate`",
            ],
        ),
    ];
    for (tail, words) in cases {
        let file = write(&tmp.0, &scenario("10k/s", tail));
        let out = irqsim().arg("validate").arg(&file).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{tail}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        for w in words {
            assert!(err.contains(w), "{tail}: expected `{w}` in\n{err}");
        }
    }
}

#[test]
fn failed_expectations_exit_3_with_the_report_written() {
    let tmp = Scratch::new("sweep-expect");
    let tail = format!("{SWEEP}expect:\n  end_to_end.p99: < 3us\n  conservation.lost: == 0\n");
    let file = write(&tmp.0, &scenario("10k/s", &tail));
    let out = run(&tmp.0, &file, "out", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let report = reports::read_report(&tmp.0.join("out/report.json")).unwrap();
    // Two expectations at 4 cells (2 points x 2 variants).
    assert_eq!(report.verdicts.len(), 8);
    for v in &report.verdicts {
        let runs: Vec<_> = report.points.iter().filter(|p| p.index == v.point && p.variant == v.variant).collect();
        let mean = runs.iter().map(|p| reports::stats::metric(p, &v.metric).unwrap()).sum::<f64>() / 3.0;
        assert_eq!(v.value, mean, "{v:?}");
        let threshold = if v.metric == "conservation.lost" { 0.0 } else { 3000.0 };
        let held = if v.metric == "conservation.lost" { mean == threshold } else { mean < threshold };
        assert_eq!(v.held, held, "{v:?}");
    }
    // A 3 us mean handler cannot keep p99 under 3 us; nothing is lost.
    assert!(report.verdicts.iter().any(|v| !v.held));
    assert!(report.verdicts.iter().filter(|v| v.metric == "conservation.lost").all(|v| v.held));
}

#[test]
fn a_sweep_of_many_variants_is_held_to_the_run_limit_quickly() {
    let tmp = Scratch::new("sweep-variants");
    // 60,000 variants x 2 replications: over the limit, refused before the variants are
    // checked one against another.
    let names: String = (0..60_000).map(|i| format!("    - name: v{i}\n")).collect();
    let file = write(&tmp.0, &scenario("10k/s", &format!("sweep:\n  replications: 2\n  variants:\n{names}")));
    let started = std::time::Instant::now();
    let out = irqsim().arg("validate").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the sweep has 120000 runs (1 points x 60000 variants x 2 replications)"), "{err}");
    assert!(err.contains("s.yaml:14:17: sweep:"), "anchored at the replications: {err}");
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

#[test]
fn a_sweep_that_would_parse_too_much_text_is_refused_up_front() {
    let tmp = Scratch::new("sweep-parse");
    // 3 MiB of comment and 100 points: 300 MiB to parse, over the 256 MiB a sweep may.
    let padding = "# padding\n".repeat(300_000);
    let values: Vec<String> = (1..=100).map(|i| format!("{i}k/s")).collect();
    let tail = format!(
        "{padding}sweep:\n  axes:\n    - path: devices[0].arrival.rate\n      values: [{}]\n",
        values.join(", ")
    );
    let file = write(&tmp.0, &scenario("10k/s", &tail));
    let started = std::time::Instant::now();
    let out = irqsim().arg("validate").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the sweep has 100 (point, variant) pairs") && err.contains("more than the 268435456"),
        "{err}"
    );
    assert!(started.elapsed().as_secs() < 10, "refused before parsing every point");
}

#[test]
fn a_second_irqsim_on_the_same_folder_is_refused_while_the_first_runs() {
    use std::io::BufRead as _;
    let tmp = Scratch::new("sweep-lock");
    let file = write(&tmp.0, &scenario("10k/s", SWEEP));
    // The first pauses after writing its first report file, its checkpoint still held.
    let mut first = irqsim()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(tmp.0.join("out"))
        .env("IRQSIM_TEST_PAUSE_AT", "write")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(first.stderr.take().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && !line.contains("test pause at write") {
        line.clear();
    }
    assert!(line.contains("test pause at write"), "the first run did not reach its pause");
    for args in [&["--resume"][..], &[]] {
        let second = run(&tmp.0, &file, "out", args);
        let err = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("another irqsim is running into"), "{args:?}: {err}");
    }
    first.kill().unwrap();
    first.wait().unwrap();
    // Killed, it let go of the lock: the sweep resumes and finishes.
    ok(&run(&tmp.0, &file, "out", &["--resume"]), "resume after the kill");
    assert!(!reports::checkpoint_dir(&tmp.0.join("out")).exists());
}
