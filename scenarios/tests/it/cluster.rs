//! The cluster recipes in docs/cluster, run as far as one machine allows: the Slurm array
//! script once per task id (as `sbatch --array` would), and the command of the Kubernetes
//! Indexed Job once per completion index; the merged shards are the same bytes as the
//! sweep run in one process.

use std::path::{Path, PathBuf};

use crate::{irqsim, workspace_root};

/// A small sweep: 2 rates x 2 variants x 3 replications = 12 runs.
const SWEEP: &str = "name: small\nseed: 3\nduration: 2ms\nplatform:\n  cpus: 4\ndevices:\n  - name: d\n    \
                     queues: 4\n    msi_write_latency: 500ns\n    arrival: { process: poisson, rate: 10k/s }\n    \
                     handler:\n      service: { dist: exponential, mean: 1us }\nsweep:\n  axes:\n    - path: \
                     devices[0].arrival.rate\n      values: [20k/s, 80k/s]\n  replications: 3\n  variants:\n    \
                     - name: short\n    - name: long\n      set:\n        devices[0].handler.service.mean: 3us\n";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("irqsim-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the sweep in one process and merges `shards`; the two reports must be equal.
fn merged_equals_one_process(dir: &Path, scenario: &Path, shards: Vec<PathBuf>) {
    let one = irqsim().arg("run").arg(scenario).arg("--quiet").arg("--out").arg(dir.join("one")).output().unwrap();
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    let merge = irqsim().arg("merge").args(&shards).arg("--quiet").arg("--out").arg(dir.join("merged")).output();
    let merge = merge.unwrap();
    assert!(merge.status.success(), "{}", String::from_utf8_lossy(&merge.stderr));
    for name in ["report.json", "points.csv", "summary.md"] {
        let a = std::fs::read(dir.join("one").join(name)).unwrap();
        assert_eq!(a, std::fs::read(dir.join("merged").join(name)).unwrap(), "{name}");
    }
}

#[test]
fn the_slurm_array_script_shards_and_merges_exactly() {
    let dir = scratch("slurm");
    let scenario = dir.join("sweep.yaml");
    std::fs::write(&scenario, SWEEP).unwrap();
    let script = workspace_root().join("docs/cluster/slurm-sweep.sh");
    let results = dir.join("results");
    // sbatch --array=1-5:2 gives task ids 1, 3, 5: shards 0, 1, 2.
    for id in [1, 3, 5] {
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg(&scenario)
            .arg("3")
            .arg(&results)
            .env("IRQSIM", env!("CARGO_BIN_EXE_irqsim"))
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_MIN", "1")
            .env("SLURM_ARRAY_TASK_STEP", "2")
            .env("SLURM_CPUS_PER_TASK", "2")
            .output()
            .unwrap();
        assert!(out.status.success(), "task {id}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let shards: Vec<PathBuf> = [1, 3, 5].iter().map(|id| results.join(format!("shard-{id}"))).collect();
    merged_equals_one_process(&dir, &scenario, shards);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_kubernetes_indexed_job_shards_and_merges_exactly() {
    let dir = scratch("k8s");
    let manifest = std::fs::read_to_string(workspace_root().join("docs/cluster/k8s-indexed-job.yaml")).unwrap();
    let job: serde_json::Value = serde_saphyr::from_str(&manifest).unwrap();
    assert_eq!((job["apiVersion"].as_str(), job["kind"].as_str()), (Some("batch/v1"), Some("Job")));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_u64().unwrap();
    let container = &spec["template"]["spec"]["containers"][0];
    let command: Vec<&str> = container["command"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(&command[..2], ["sh", "-c"]);
    assert!(command[2].contains(&format!("--shard auto/{n} ")), "completions and --shard auto/N differ");
    // The pod's command, with this machine's binary and folders for the mounts.
    std::fs::create_dir_all(dir.join("scenario")).unwrap();
    std::fs::write(dir.join("scenario/scenario.yaml"), SWEEP).unwrap();
    let local = command[2]
        .replacen("irqsim ", &format!("{} ", env!("CARGO_BIN_EXE_irqsim")), 1)
        .replace("/scenario/", &format!("{}/scenario/", dir.display()))
        .replace("/results/", &format!("{}/results/", dir.display()));
    for index in 0..n {
        let out = std::process::Command::new("sh")
            .args(["-c", &local])
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "index {index}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let shards: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("results/shard-{i}"))).collect();
    merged_equals_one_process(&dir, &dir.join("scenario/scenario.yaml"), shards);
    let _ = std::fs::remove_dir_all(&dir);
}
