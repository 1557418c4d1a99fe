//! A sweep's finished runs kept on disk while it runs, so that an interrupted sweep
//! resumes (`irqsim run --resume`) without losing or repeating a run.
//!
//! The checkpoint is a hidden folder beside the report folder, `.NAME.irqsim-partial`,
//! locked by the process that runs into it (`lock`, an exclusive `flock`, so a second
//! irqsim on the same folder is refused while the first lives): `key.json` says which run
//! it belongs to ([`CheckpointKey`]: scenario hash, seed, irqsim
//! and format versions, run count, shard), and each finished run is `run-NNNNNN.json` (its
//! report entry, by ordinal), written whole or not at all as it finishes. A resumed run
//! reads the entries back (exactly: floats round-trip), runs only the others, and the
//! report it writes is the same bytes as an uninterrupted run's. The folder is removed
//! once the report is in place.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::{io_reason, read_limited, write_atomic};
use crate::schema::{PointReport, REPORT_SIZE_MAX, ShardInfo};

/// What a checkpoint belongs to: a resumed run must match it in every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointKey {
    /// SHA-256 of the scenario file's bytes.
    pub scenario_sha256: String,
    /// The run seed.
    pub seed: u64,
    /// The irqsim version (another version may give other numbers).
    pub irqsim_version: String,
    /// The report format version.
    pub format_version: u32,
    /// Runs of the whole sweep.
    pub run_count: u32,
    /// The shard being run, if one.
    pub shard: Option<ShardInfo>,
}

/// An open checkpoint folder, locked for this process while it lives.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    /// `lock` in the folder, exclusively locked (`flock`): a second irqsim running the
    /// same sweep into the same folder (a retried pod while the first still runs) is
    /// refused instead of repeating its runs and removing its checkpoint.
    _lock: std::fs::File,
}

/// The checkpoint folder of the report folder `target`.
pub fn checkpoint_dir(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "irqsim-out".into());
    let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parent.join(format!(".{name}.irqsim-partial"))
}

impl Checkpoint {
    /// Opens the checkpoint of the report folder `target` for the run `key`, and gives the
    /// runs it already holds. Without `resume`, an existing checkpoint is an error (its runs
    /// would be lost); with it, one of another run (scenario, seed, version, shard) is an
    /// error naming what differs, and a missing one starts empty.
    pub fn open(target: &Path, key: &CheckpointKey, resume: bool) -> Result<(Self, Vec<(u32, PointReport)>), String> {
        let dir = checkpoint_dir(target);
        let shown = dir.display().to_string();
        let key_file = dir.join("key.json");
        let cannot = |e: &std::io::Error| format!("cannot use the checkpoint folder {shown}: {}", io_reason(e));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(cannot(&e)),
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| cannot(&e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "another irqsim is running into {} now (it holds {shown}); wait for it to finish, or stop it and then use --resume",
                    target.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(cannot(&e)),
        }
        // No key: a new checkpoint (or one whose creator died before writing its key, which
        // holds no run it could vouch for).
        if std::fs::symlink_metadata(&key_file).is_err() {
            for (_, stale) in Self::entries(&dir)? {
                let _ = std::fs::remove_file(stale);
            }
            let json = serde_json::to_string_pretty(key).map_err(|e| e.to_string())? + "\n";
            write_atomic(&key_file, json.as_bytes()).map_err(|e| cannot(&e))?;
            return Ok((Self { dir, _lock: lock }, Vec::new()));
        }
        let existing: CheckpointKey = read_limited(&key_file, 1 << 20, "a checkpoint key is a few lines")
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", key_file.display())))
            .map_err(|e| {
                format!("{shown} is not a checkpoint irqsim can read ({e}); remove it to start the sweep over")
            })?;
        let held = Self::entries(&dir)?;
        if !resume {
            return Err(format!(
                "an interrupted run into {} left {} finished runs in {shown}; add --resume to continue it, or remove {shown} to start over",
                target.display(),
                held.len()
            ));
        }
        let differs = [
            ("scenario file (sha256)", existing.scenario_sha256 != key.scenario_sha256),
            ("seed", existing.seed != key.seed),
            ("irqsim version", existing.irqsim_version != key.irqsim_version),
            ("report format version", existing.format_version != key.format_version),
            ("run count", existing.run_count != key.run_count),
            ("shard", existing.shard != key.shard),
        ];
        let what: Vec<&str> = differs.iter().filter(|(_, d)| *d).map(|(w, _)| *w).collect();
        if !what.is_empty() {
            return Err(format!(
                "cannot resume: the checkpoint in {shown} is of another run (its {} differ); rerun it as it was started, or remove {shown} to start over",
                what.join(", ")
            ));
        }
        let mut finished = Vec::new();
        for (ordinal, path) in held {
            let bytes = read_limited(&path, REPORT_SIZE_MAX, "one run's entry")?;
            let point: PointReport = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a run entry ({e}); remove it to run it again", path.display()))?;
            if ordinal < key.run_count {
                finished.push((ordinal, point));
            }
        }
        Ok((Self { dir, _lock: lock }, finished))
    }

    /// The run entries in `dir`, by ordinal.
    fn entries(dir: &Path) -> Result<Vec<(u32, PathBuf)>, String> {
        let read = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read the checkpoint folder {}: {}", dir.display(), io_reason(&e)))?;
        let mut out = Vec::new();
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(n) =
                name.strip_prefix("run-").and_then(|r| r.strip_suffix(".json")).and_then(|n| n.parse().ok())
            {
                out.push((n, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Records a finished run, whole or not at all.
    pub fn record(&self, ordinal: u32, point: &PointReport) -> Result<(), String> {
        let path = self.dir.join(format!("run-{ordinal:06}.json"));
        let json = serde_json::to_vec(point).map_err(|e| e.to_string())?;
        write_atomic(&path, &json).map_err(|e| format!("cannot write {}: {}", path.display(), io_reason(&e)))
    }

    /// Removes the checkpoint (the report is in place); one already gone is fine.
    pub fn remove(self) -> Result<(), String> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("cannot remove the checkpoint folder {}: {}", self.dir.display(), io_reason(&e)))
            }
            _ => Ok(()),
        }
    }
}
