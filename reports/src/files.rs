//! Files in and out: bounded reads of regular files only ([`read_limited`]), I/O errors in
//! a sentence ([`io_reason`]), single files written whole or not at all ([`write_atomic`])
//! and report folders replaced as a whole ([`ReportDir`]).
//!
//! # How a report folder is replaced
//! [`ReportDir::prepare`] checks the target before anything is run: it must be new, empty,
//! or hold only an earlier report's files (never a folder of other things, which replacing
//! would delete). It then creates a hidden sibling staging folder `.NAME.irqsim-new-PID` and
//! test-writes in it, so an unwritable place or a full disk is found before the run, not
//! after it. The report's files are written into the staging folder (`report.json` last)
//! and synced; [`ReportDir::commit`] then renames the staging folder onto the target
//! (atomic when the target does not exist or is empty), and when an earlier report is there
//! first renames that aside to `.NAME.irqsim-old-PID`, renames the new one in and removes
//! the old one.
//!
//! Why two renames rather than a `current` symlink switched atomically: the output stays a
//! plain folder (what users, scripts, `tar` and `rsync` expect; no stale targets to collect;
//! it works where symlinks do not), and an existing folder from an earlier irqsim would
//! need the two renames anyway. The cost is a window of two system calls in which the
//! target is absent: a reader then finds no folder, never a mix, and a process killed just
//! there leaves the complete old report in the hidden `.NAME.irqsim-old-PID` beside it. A
//! killed run otherwise leaves at most a hidden staging folder beside the target. The next
//! run into the same folder tidies both where it can tell the run that left them is dead
//! (Linux `/proc`): it removes a staging folder, and puts an old report back when the
//! target is missing; by hand, both are safe to delete. Two runs into the same folder each switch a complete folder
//! in; the last to switch wins.

use std::fs::File;
use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};

/// The files every report folder of `irqsim run` holds. Besides them a report folder holds
/// its plots, `plot-NAME.png` and `plot-NAME.svg` (which ones depends on the data); anything
/// else makes [`ReportDir::prepare`] refuse to replace the folder.
pub const REPORT_FILES: [&str; 6] =
    ["report.json", "summary.md", "summary.txt", "points.csv", "index.html", "perf.json"];

/// Whether `name` is a plot file of a report (`plot-NAME.png` or `plot-NAME.svg`).
pub fn is_plot_file(name: &str) -> bool {
    name.strip_prefix("plot-").and_then(|r| r.strip_suffix(".png").or_else(|| r.strip_suffix(".svg"))).is_some_and(
        |stem| !stem.is_empty() && stem.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
    )
}

/// The I/O error `e` as a short phrase a user can act on (no `os error` numbers).
pub fn io_reason(e: &std::io::Error) -> String {
    let text = match e.kind() {
        ErrorKind::NotFound => "no such file or folder",
        ErrorKind::PermissionDenied => "permission denied",
        ErrorKind::StorageFull => "disk full (no space left on the device)",
        ErrorKind::QuotaExceeded => "disk quota exceeded",
        ErrorKind::ReadOnlyFilesystem => "the file system is read-only",
        ErrorKind::AlreadyExists => "it already exists",
        ErrorKind::NotADirectory => "a part of the path is a file, not a folder",
        ErrorKind::IsADirectory => "it is a folder, not a file",
        ErrorKind::DirectoryNotEmpty => "the folder is not empty",
        ErrorKind::FileTooLarge => "the file is too large for the file system",
        ErrorKind::InvalidFilename => "the name is too long or not allowed here",
        // `FilesystemLoop` (ELOOP) is not a stable variant yet; its name is.
        kind if format!("{kind:?}") == "FilesystemLoop" => {
            "too many levels of symbolic links (a symbolic link that points back to itself, directly or not)"
        }
        _ => return e.to_string(),
    };
    text.to_owned()
}

/// What kind of thing a non-regular file is, for "… is a named pipe, not a regular file".
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else if meta.is_file() {
        "a file"
    } else {
        "a special file"
    }
}

/// `bytes` in a readable unit.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 { format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20)) } else { format!("{bytes} bytes") }
}

/// Reads the regular file at `path`, at most `limit` bytes; `why` says why the limit is
/// what it is. Anything else (a folder, a named pipe that would block, a device such as
/// `/dev/zero` that never ends) is refused before it is opened or read. Errors are
/// sentences naming the file.
pub fn read_limited(path: &Path, limit: u64, why: &str) -> Result<Vec<u8>, String> {
    let name = path.display();
    let not_regular = |meta: &std::fs::Metadata| {
        format!("{name}: cannot read: it is {}, not a regular file; irqsim reads only regular files", file_kind(meta))
    };
    let too_large = |len: u64| {
        format!("{name}: cannot read: it is {} long; irqsim reads at most {} ({why})", size(len), size(limit))
    };
    // Checked before opening: opening a named pipe with no writer blocks.
    let meta = std::fs::metadata(path).map_err(|e| format!("{name}: cannot read: {}", io_reason(&e)))?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let file = File::open(path).map_err(|e| format!("{name}: cannot read: {}", io_reason(&e)))?;
    // Checked again on what was opened, in case the path was swapped in between.
    let meta = file.metadata().map_err(|e| format!("{name}: cannot read: {}", io_reason(&e)))?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let mut bytes = Vec::new();
    // One byte more than the limit shows a file that grew while it was read.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| format!("{name}: cannot read: {}", io_reason(&e)))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` whole or not at all: a temporary file in the same directory,
/// flushed to disk, then renamed over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::other("no file name"))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Syncs a folder's entries to disk where the platform allows it (best effort: some
/// platforms cannot open a folder as a file).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A report folder being written: the files go into a hidden sibling staging folder that
/// replaces the target as a whole on [`ReportDir::commit`] (see the module documentation).
/// Dropped without a commit, it removes the staging folder.
#[derive(Debug)]
pub struct ReportDir {
    target: PathBuf,
    parent: PathBuf,
    name: String,
    staging: PathBuf,
    committed: bool,
}

/// Whether `entry` (a file name) may be in a report folder: a report file, or the
/// temporary of one that an earlier irqsim left when it was killed.
fn is_report_entry(entry: &str) -> bool {
    REPORT_FILES.contains(&entry) || is_plot_file(entry) || (entry.starts_with('.') && entry.contains(".tmp-"))
}

/// Refuses `target` unless it is absent, an empty folder or a folder holding only a
/// report's files.
fn check_replaceable(target: &Path) -> Result<(), String> {
    let shown = target.display();
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot use the output folder {shown}: {}", io_reason(&e))),
        Ok(meta) if !meta.is_dir() => {
            Err(format!("cannot use the output folder {shown}: it exists and is {}, not a folder", file_kind(&meta)))
        }
        Ok(_) => {
            let entries = std::fs::read_dir(target)
                .map_err(|e| format!("cannot use the output folder {shown}: {}", io_reason(&e)))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("cannot use the output folder {shown}: {}", io_reason(&e)))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !is_report_entry(&name) {
                    return Err(format!(
                        "the output folder {shown} holds `{name}`, which is not part of an irqsim report; irqsim \
                         replaces the report folder as a whole, so give --out a new or empty folder, or one that \
                         holds only an earlier report"
                    ));
                }
            }
            Ok(())
        }
    }
}

/// The first existing ancestor of `path` that is not a folder, if any.
fn blocking_file(path: &Path) -> Option<PathBuf> {
    path.ancestors().find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir())).map(Path::to_path_buf)
}

/// Whether process `pid` is alive, where the platform tells it cheaply (`None` elsewhere).
fn alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    proc.join("self").exists().then(|| proc.join(pid.to_string()).exists())
}

/// Tidies what killed runs left beside `target`: a dead run's staging folder is removed; an
/// earlier report a dead run had moved aside is put back when `target` is missing (the run
/// was killed between its two renames) and removed otherwise. Folders of live runs are left
/// alone.
fn clean_leftovers(parent: &Path, name: &str, target: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    let new = format!(".{name}.irqsim-new-");
    let old = format!(".{name}.irqsim-old-");
    for entry in entries.flatten() {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        let (is_old, rest) = match (entry_name.strip_prefix(&new), entry_name.strip_prefix(&old)) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => continue,
        };
        let Ok(pid) = rest.split('-').next().unwrap_or("").parse::<u32>() else { continue };
        if pid == std::process::id() || alive(pid) != Some(false) {
            continue;
        }
        if is_old && std::fs::symlink_metadata(target).is_err() && std::fs::rename(entry.path(), target).is_ok() {
            continue;
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

impl ReportDir {
    /// Checks that `target` can receive a report and makes its staging folder, before
    /// anything is run: `target` must be absent, empty or hold only an earlier report; its
    /// parent is created; a test file is written and synced in the staging folder. Errors
    /// are sentences naming the folder.
    pub fn prepare(target: &Path) -> Result<ReportDir, String> {
        let shown = target.display().to_string();
        let cannot = |e: &std::io::Error| format!("cannot use the output folder {shown}: {}", io_reason(e));
        // `.`, `..` or a symbolic link: work on the folder it names.
        let is_link = std::fs::symlink_metadata(target).is_ok_and(|m| m.is_symlink());
        let target = if target.file_name().is_none() || is_link {
            std::fs::canonicalize(target).map_err(|e| cannot(&e))?
        } else {
            target.to_path_buf()
        };
        let name = target.file_name().ok_or_else(|| format!("cannot use {shown} as the output folder"))?;
        let name = name.to_string_lossy().into_owned();
        check_replaceable(&target)?;
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| match blocking_file(&parent) {
            Some(file) => {
                format!("cannot create the output folder {shown}: {} exists and is not a folder", file.display())
            }
            None => cannot(&e),
        })?;
        clean_leftovers(&parent, &name, &target);
        let staging = parent.join(format!(".{name}.irqsim-new-{}", std::process::id()));
        // A staging folder with this process's id is a dead process's leftover.
        if std::fs::symlink_metadata(&staging).is_ok() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        std::fs::create_dir(&staging).map_err(|e| cannot(&e))?;
        let dir = ReportDir { target, parent, name, staging, committed: false };
        let probe = dir.staging.join(".write-test");
        let written = (|| {
            let mut file = File::create(&probe)?;
            file.write_all(&[0; 4096])?;
            file.sync_all()?;
            std::fs::remove_file(&probe)
        })();
        written.map_err(|e| format!("cannot write in the output folder {shown}: {}", io_reason(&e)))?;
        Ok(dir)
    }

    /// The folder the report will be in.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes file `name` of the report into the staging folder and syncs it.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let result = (|| {
            let mut file = File::create(self.staging.join(name))?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        result.map_err(|e| format!("cannot write {}: {}", self.target.join(name).display(), io_reason(&e)))
    }

    /// Switches the staging folder into place as the target, moving an earlier report
    /// aside first and removing it after.
    pub fn commit(mut self) -> Result<(), String> {
        sync_dir(&self.staging);
        let shown = self.target.display().to_string();
        let mut aside = Vec::new();
        let mut result = Err(format!("cannot replace {shown}: it kept changing under another writer"));
        for attempt in 0..16 {
            match std::fs::rename(&self.staging, &self.target) {
                Ok(()) => {
                    result = Ok(());
                    break;
                }
                Err(e) if matches!(e.kind(), ErrorKind::DirectoryNotEmpty | ErrorKind::AlreadyExists) => {
                    // Another report is there (ours earlier, or a concurrent run's).
                    if let Err(m) = check_replaceable(&self.target) {
                        result = Err(m);
                        break;
                    }
                    let old = self.parent.join(format!(".{}.irqsim-old-{}-{attempt}", self.name, std::process::id()));
                    match std::fs::rename(&self.target, &old) {
                        Ok(()) => aside.push(old),
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => {
                            result = Err(format!("cannot replace {shown}: {}", io_reason(&e)));
                            break;
                        }
                    }
                }
                Err(e) => {
                    result = Err(format!("cannot move the report into {shown}: {}", io_reason(&e)));
                    break;
                }
            }
        }
        if result.is_err() {
            // Put the earlier report back if the folder is still free.
            if let Some(old) = aside.pop() {
                let _ = std::fs::rename(&old, &self.target);
            }
        } else {
            self.committed = true;
        }
        sync_dir(&self.parent);
        for old in aside {
            let _ = std::fs::remove_dir_all(old);
        }
        result
    }
}

impl Drop for ReportDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("irqsim-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reasons_are_sentences() {
        let full = std::io::Error::from(ErrorKind::StorageFull);
        assert!(io_reason(&full).contains("disk full"));
        let missing = std::io::Error::from(ErrorKind::NotFound);
        assert_eq!(io_reason(&missing), "no such file or folder");
        #[cfg(target_os = "linux")]
        {
            assert!(io_reason(&std::io::Error::from_raw_os_error(28)).contains("disk full"));
            assert!(io_reason(&std::io::Error::from_raw_os_error(40)).contains("symbolic link"));
        }
    }

    #[test]
    fn reads_are_bounded_and_only_of_regular_files() {
        let dir = scratch("read");
        let file = dir.join("f.yaml");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_limited(&file, 10, "test").unwrap(), b"0123456789");
        let e = read_limited(&file, 9, "a test limit").unwrap_err();
        assert!(e.contains("at most 9 bytes (a test limit)"), "{e}");
        let e = read_limited(&dir, 10, "test").unwrap_err();
        assert!(e.contains("it is a folder, not a regular file"), "{e}");
        #[cfg(target_os = "linux")]
        {
            let e = read_limited(Path::new("/dev/zero"), 10, "test").unwrap_err();
            assert!(e.contains("a character device"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_report_folder_is_replaced_whole() {
        let dir = scratch("replace");
        let out = dir.join("out");
        for round in 0..2 {
            let report = ReportDir::prepare(&out).unwrap();
            report.write("summary.md", format!("{round}").as_bytes()).unwrap();
            report.write("report.json", format!("{round}").as_bytes()).unwrap();
            report.commit().unwrap();
            assert_eq!(std::fs::read_to_string(out.join("report.json")).unwrap(), round.to_string());
        }
        // Nothing beside the folder: no staging and no old folder left.
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["out"]);
        // A folder holding something else is not replaced.
        std::fs::write(out.join("notes.txt"), b"mine").unwrap();
        let e = ReportDir::prepare(&out).unwrap_err();
        assert!(e.contains("holds `notes.txt`"), "{e}");
        // Dropped without a commit: the staging folder goes, the target stays.
        std::fs::remove_file(out.join("notes.txt")).unwrap();
        drop(ReportDir::prepare(&out).unwrap());
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["out"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
