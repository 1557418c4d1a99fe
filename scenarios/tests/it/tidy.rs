//! Tidy checks over the whole workspace, run by `cargo test` (rust-analyzer's habit):
//! every Rust file opens with a `//!` line; no `dbg!`; nothing in `sim` or `models` uses
//! `HashMap`/`HashSet` (their iteration order is randomly seeded per process) or reads the
//! wall clock; `models` does not depend on serde; no tracked file cites the developers' notes
//! kept outside the repository, and every cited entry of docs/sources.md exists.

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

/// Every `<a id="...">` anchor and heading anchor (as GitHub derives it) of a Markdown text.
fn markdown_anchors(text: &str) -> std::collections::BTreeSet<String> {
    let mut anchors = std::collections::BTreeSet::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("<a id=\"") {
            rest = &rest[at + 7..];
            if let Some(end) = rest.find('"') {
                anchors.insert(rest[..end].to_owned());
            }
        }
        if let Some(heading) = line.strip_prefix('#') {
            let slug = heading
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect::<String>();
            anchors.insert(slug);
        }
    }
    anchors
}

/// The anchors that `text` cites after each occurrence of `marker`.
fn cited_anchors<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    let mut cited = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        rest = &rest[at + marker.len()..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(rest.len());
        cited.push(&rest[..end]);
    }
    cited
}

/// The facts a default or a catalog assumption rests on are in docs/sources.md, which anyone
/// with the repository can read. The developers' background notes (in `shared/`, outside the
/// repository) are not, so no tracked file but docs/sources.md may cite them, and every
/// docs/sources.md anchor a tracked file cites must exist.
#[test]
fn facts_are_cited_from_docs_sources() {
    let root = workspace_root();
    let listed = std::process::Command::new("git").args(["ls-files", "-z"]).current_dir(&root).output();
    let listed = match listed {
        Ok(out) if out.status.success() => out.stdout,
        // A source tarball has no git metadata: there are no tracked files to check.
        _ => {
            eprintln!("skipped: {} is not a git checkout", root.display());
            return;
        }
    };
    let files = String::from_utf8(listed).unwrap();
    let files = files.split('\0').filter(|f| !f.is_empty()).collect::<Vec<_>>();
    assert!(files.len() > 10, "git ls-files listed only {} files", files.len());
    let sources_path = "docs/sources.md";
    let sources = std::fs::read_to_string(root.join(sources_path)).unwrap();
    let anchors = markdown_anchors(&sources);
    // The patterns are built so that this file does not match them.
    let notes = ["calibration", "claims", "history", "anchors"].map(|name| name.to_owned() + ".md");
    let marker = "sources.md".to_owned() + "#";
    let mut problems = Vec::new();
    for rel in files {
        // Binary files and tracked files deleted in the working tree have nothing to cite.
        let Ok(text) = std::fs::read_to_string(root.join(rel)) else { continue };
        if rel != sources_path {
            for note in &notes {
                if text.contains(note.as_str()) {
                    problems.push(format!(
                        "{rel}: cites {note}, a note outside the repository; cite its entry in {sources_path}"
                    ));
                }
            }
        }
        let mut cited = cited_anchors(&text, &marker);
        if rel == sources_path {
            cited.extend(cited_anchors(&text, "](#"));
        }
        for anchor in cited {
            if !anchors.contains(anchor) {
                problems.push(format!("{rel}: cites {sources_path} anchor `{anchor}`, which does not exist"));
            }
        }
    }
    assert!(problems.is_empty(), "citation problems:\n{}", problems.join("\n"));
}
