//! Tidy checks over the whole workspace, run by `cargo test` (rust-analyzer's habit):
//! every Rust file opens with a `//!` line; no `dbg!`; nothing in `sim` or `models` uses
//! `HashMap`/`HashSet` (their iteration order is randomly seeded per process) or reads the
//! wall clock; `models` does not depend on serde.

use std::path::{Path, PathBuf};

use super::workspace_root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() && name != "target" && !name.starts_with('.') {
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn workspace_is_tidy() {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in ["sim", "models", "scenarios", "reports", "benches"] {
        rust_files(&root.join(krate), &mut files);
    }
    assert!(files.len() > 10, "found only {} files", files.len());
    let mut problems = Vec::new();
    // Code uses, not mentions in prose: the patterns are split so this file does not match.
    let banned_in_core = ["Map<", "Map::", "Set<", "Set::"]
        .map(|suffix| "Hash".to_owned() + suffix)
        .into_iter()
        .chain(["Instant".to_owned() + "::now", "System".to_owned() + "Time::"])
        .collect::<Vec<_>>();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        if !text.starts_with("//!") {
            problems.push(format!("{rel}: must start with a `//!` line saying what lives there"));
        }
        if text.contains(&("dbg".to_owned() + "!(")) {
            problems.push(format!("{rel}: dbg! left in"));
        }
        if rel.starts_with("sim/") || rel.starts_with("models/") {
            for banned in &banned_in_core {
                if text.contains(banned.as_str()) {
                    problems.push(format!("{rel}: `{banned}` is not allowed in sim/models (determinism)"));
                }
            }
        }
    }
    let models_manifest = std::fs::read_to_string(root.join("models/Cargo.toml")).unwrap();
    if models_manifest.contains("serde") {
        problems.push("models/Cargo.toml: models must not depend on serde".into());
    }
    assert!(problems.is_empty(), "tidy problems:\n{}", problems.join("\n"));
}
