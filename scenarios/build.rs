//! Build script: puts the git commit the binary is built from into `IRQSIM_COMMIT`
//! (`unknown` outside a git checkout; `-dirty` appended when tracked files differ from the
//! commit), for `irqsim --version` and every report's `irqsim_version`, so that a report
//! names the exact code that wrote it (and a checkpoint or shard of other code is refused).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let mut commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    if git(&["status", "--porcelain", "--untracked-files=no"]).is_some() {
        commit.push_str("-dirty");
    }
    println!("cargo:rustc-env=IRQSIM_COMMIT={commit}");
    // Rebuilt when HEAD moves: HEAD itself, the branch it points to, and packed refs.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = std::path::PathBuf::from(dir);
        for file in ["HEAD", "packed-refs"] {
            if dir.join(file).exists() {
                println!("cargo:rerun-if-changed={}", dir.join(file).display());
            }
        }
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"])
            && dir.join(&reference).exists()
        {
            println!("cargo:rerun-if-changed={}", dir.join(reference).display());
        }
    }
    // And when the workspace's code changes, so that `-dirty` follows the working tree.
    for dir in ["src", "../sim/src", "../models/src", "../reports/src", "build.rs"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
