//! The scenarios integration tests, one binary (matklad's layout): queueing oracles,
//! determinism, bad input, files in and out, the catalog, generated (mutated) scenarios,
//! overrides, and tidy checks over the whole workspace.

mod bad_input;
mod catalog;
mod cli;
mod cluster;
mod determinism;
mod files;
mod fold;
mod generated;
mod golden;
mod lindley;
mod oracle;
mod overrides;
mod sweep;
mod tidy;
mod topology;
mod vmexit;

use std::path::PathBuf;

/// The workspace root.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("scenarios/ has a parent").to_path_buf()
}

/// The `irqsim` binary built for this test run.
fn irqsim() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_irqsim"))
}

/// A scratch folder under the system temp folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    /// `irqsim-NAME-PID` under the temp folder, empty.
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("irqsim-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
