//! Files in and out of `irqsim`: inputs that are not regular files or are too large, output
//! folders that cannot take a report, a full standard output, reports of a newer format, a
//! reproduce line that survives a shell, and report folders replaced whole even when the
//! run is killed (docs/bad-input.md).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::{Scratch, irqsim, workspace_root};

/// A small valid scenario lasting `duration`.
fn scenario(duration: &str) -> String {
    format!(
        "name: small\nduration: {duration}\nplatform:\n  cpus: 4\ndevices:\n  - name: d\n    queues: 4\n    \
         msi_write_latency: 500ns\n    arrival: {{ process: poisson, rate: 10k/s }}\n    handler:\n      \
         service: {{ dist: exponential, mean: 1us }}\n"
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts exit 2, no panic, and every one of `words` in standard error.
fn assert_bad_input(out: &Output, what: &str, words: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{what}: exit code\n{err}");
    assert!(!err.contains("panicked"), "{what}: panicked\n{err}");
    for w in words {
        assert!(err.contains(w), "{what}: expected `{w}` in\n{err}");
    }
}

#[cfg(unix)]
#[test]
fn inputs_that_are_not_regular_files_are_refused_without_reading() {
    let tmp = Scratch::new("files-fifo");
    let fifo = tmp.0.join("pipe.yaml");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // Old behaviour: opening the pipe blocks forever (or reads /dev/zero forever); a child
    // that outlives the deadline fails the test instead of hanging it.
    for (input, words) in [
        (fifo.clone(), &["pipe.yaml: cannot read: it is a named pipe (FIFO), not a regular file"][..]),
        (PathBuf::from("/dev/zero"), &["/dev/zero: cannot read: it is a character device"][..]),
        (PathBuf::from("/dev/urandom"), &["/dev/urandom: cannot read: it is a character device"][..]),
        (tmp.0.clone(), &["cannot read: it is a folder, not a regular file"][..]),
    ] {
        for command in ["validate", "run"] {
            let out = output_within(irqsim().arg(command).arg(&input), Duration::from_secs(20));
            assert_bad_input(&out, &format!("{command} {}", input.display()), words);
        }
    }
    let out = output_within(irqsim().arg("report").arg("/dev/zero"), Duration::from_secs(20));
    assert_bad_input(&out, "report /dev/zero", &["/dev/zero: cannot read: it is a character device"]);
}

/// Runs `command`, killing it after `limit`.
fn output_within(command: &mut Command, limit: Duration) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("irqsim starts");
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: stderr\n{}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn an_oversized_input_is_refused_before_it_is_read() {
    let tmp = Scratch::new("files-large");
    let file = tmp.0.join("huge.yaml");
    let f = std::fs::File::create(&file).unwrap();
    f.set_len(17 << 20).unwrap(); // sparse: 17 MiB that take no disk space
    drop(f);
    let out = irqsim().arg("validate").arg(&file).output().unwrap();
    assert_bad_input(
        &out,
        "17 MiB file",
        &["huge.yaml: cannot read: it is 17.0 MiB long; irqsim reads at most 16.0 MiB"],
    );
}

#[test]
fn an_output_folder_that_cannot_take_the_report_is_refused_before_the_run() {
    let tmp = Scratch::new("files-out");
    let file = tmp.0.join("s.yaml");
    std::fs::write(&file, scenario("1ms")).unwrap();
    let run = |out: &Path| irqsim().arg("run").arg(&file).arg("--out").arg(out).output().unwrap();
    // A file where the folder should be, or above it.
    let plain = tmp.0.join("plain");
    std::fs::write(&plain, "x").unwrap();
    let out = run(&plain);
    assert_bad_input(&out, "--out FILE", &["output folder", "plain: it exists and is a file, not a folder"]);
    let out = run(&plain.join("sub"));
    assert_bad_input(&out, "--out FILE/sub", &["plain/sub", "not a folder"]);
    #[cfg(target_os = "linux")]
    {
        let out = run(Path::new("/dev/full"));
        assert_bad_input(&out, "--out /dev/full", &["/dev/full: it exists and is a character device, not a folder"]);
    }
    // A symbolic link loop.
    #[cfg(unix)]
    {
        let link = tmp.0.join("loop");
        std::os::unix::fs::symlink(&link, &link).unwrap();
        let out = run(&link);
        assert_bad_input(&out, "--out LOOP", &["loop: too many levels of symbolic links"]);
    }
    // A folder holding something else is not replaced (nor deleted).
    let mine = tmp.0.join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    let out = run(&mine);
    assert_bad_input(
        &out,
        "--out FOLDER-OF-OTHER-THINGS",
        &["holds `notes.txt`, which is not part of an irqsim report"],
    );
    assert_eq!(std::fs::read_to_string(mine.join("notes.txt")).unwrap(), "keep me");
    // A folder that cannot be written, found before the run ("irqsim: running" is never
    // printed). Root writes anyway, so there the check is skipped.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let locked = tmp.0.join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(locked.join("probe"), "").is_err() {
            let out = run(&locked.join("report"));
            assert_bad_input(&out, "--out UNWRITABLE/report", &["locked/report", "permission denied"]);
            assert!(!stderr(&out).contains("irqsim: running"), "checked only after the run:\n{}", stderr(&out));
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_standard_output_says_disk_full() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = irqsim().arg("schema").stdout(full).output().unwrap();
    assert_bad_input(&out, "schema >/dev/full", &["cannot write to standard output: disk full"]);
}

#[test]
fn a_report_of_a_newer_format_names_both_versions() {
    let tmp = Scratch::new("files-newer");
    let golden = workspace_root().join("scenarios/tests/golden/interrupt-storm/report.json");
    let text = std::fs::read_to_string(golden).unwrap();
    let this = reports::FORMAT_VERSION;
    let newer = text.replacen(
        &format!("\"format_version\": {this},"),
        &format!("\"format_version\": {},\n  \"sweep\": {{}},", this + 1),
        1,
    );
    assert_ne!(newer, text);
    std::fs::write(tmp.0.join("report.json"), newer).unwrap();
    let out = irqsim().arg("report").arg(&tmp.0).output().unwrap();
    let newer_words = format!("the report is in format version {}, newer than this irqsim", this + 1);
    let reads = format!("reads (version {this})");
    assert_bad_input(&out, "report of a newer version", &[&newer_words, &reads]);
    assert!(!stderr(&out).contains("unknown field"), "{}", stderr(&out));
}

/// The reproduce line of a scenario whose path has a space, a semicolon and quotes, pasted
/// into a shell, runs the same scenario and writes the same report.
#[cfg(unix)]
#[test]
fn the_reproduce_line_survives_a_shell() {
    let tmp = Scratch::new("files-reproduce");
    let name = "my scenario; rm -rf it's.yaml";
    std::fs::write(tmp.0.join(name), scenario("1ms")).unwrap();
    let out = irqsim().current_dir(&tmp.0).args(["run", name, "--seed", "3", "--out", "a"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = std::fs::read_to_string(tmp.0.join("a/report.json")).unwrap();
    let line = report.lines().find_map(|l| l.trim().strip_prefix("\"reproduce\": ")).unwrap();
    let line: String = serde_json::from_str(line.trim_end_matches(',')).unwrap();
    assert_eq!(line, r"irqsim run 'my scenario; rm -rf it'\''s.yaml' --seed 3");
    let summary = std::fs::read_to_string(tmp.0.join("a/summary.txt")).unwrap();
    assert!(summary.contains(&format!("reproduce: {line}")), "{summary}");
    // Pasted into a shell (irqsim being this build), it writes the same report.
    let command = line.replacen("irqsim", &format!("'{}'", env!("CARGO_BIN_EXE_irqsim")), 1) + " --out b";
    let out = Command::new("sh").arg("-c").arg(&command).current_dir(&tmp.0).output().unwrap();
    assert!(out.status.success(), "{command}: {}", stderr(&out));
    assert_eq!(std::fs::read_to_string(tmp.0.join("b/report.json")).unwrap(), report);
    assert!(tmp.0.join(name).exists(), "the shell ran part of the path as a command");
}

/// What a report folder holds: each file's name and bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Starts `irqsim run FILE --seed 2 --out OUT`, waits for `marker` on its standard error,
/// kills it, and returns its standard error so far. Panics if it ends without the marker.
fn kill_at(file: &Path, out: &Path, pause: Option<&str>, marker: &str) -> String {
    let mut command = irqsim();
    command.arg("run").arg(file).args(["--seed", "2", "--out"]).arg(out).stderr(Stdio::piped()).stdout(Stdio::null());
    if let Some(point) = pause {
        command.env("IRQSIM_TEST_PAUSE_AT", point);
    }
    let mut child = command.spawn().unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains(marker) {
            std::thread::sleep(Duration::from_millis(100));
            child.kill().unwrap();
            child.wait().unwrap();
            return seen;
        }
        line.clear();
    }
    let status = child.wait().unwrap();
    panic!("irqsim ended ({status}) without printing `{marker}`:\n{seen}");
}

#[test]
fn a_killed_run_leaves_the_old_report_intact_and_a_finished_one_replaces_it_whole() {
    let tmp = Scratch::new("files-atomic");
    let short = tmp.0.join("short.yaml");
    let long = tmp.0.join("long.yaml");
    std::fs::write(&short, scenario("1ms")).unwrap();
    std::fs::write(&long, scenario("1000s")).unwrap();
    let out = tmp.0.join("out");
    let status = irqsim().arg("run").arg(&short).args(["--seed", "1", "--out"]).arg(&out).output().unwrap();
    assert!(status.status.success(), "{}", stderr(&status));
    let old = snapshot(&out);
    let mut names = reports::REPORT_FILES.to_vec();
    names.sort_unstable();
    let (plots, files): (Vec<&str>, Vec<&str>) =
        old.iter().map(|(n, _)| n.as_str()).partition(|n| reports::is_plot_file(n));
    assert_eq!(files, names);
    // One run has a CDF, a stage breakdown and a resource plot, each as PNG and SVG.
    assert_eq!(plots.len(), 6, "{plots:?}");
    // Killed during the run, after the first file is written, and right before the switch.
    kill_at(&long, &out, None, "irqsim: running");
    assert_eq!(snapshot(&out), old, "killed during the run");
    kill_at(&short, &out, Some("write"), "irqsim: test pause at write");
    assert_eq!(snapshot(&out), old, "killed while writing");
    kill_at(&short, &out, Some("switch"), "irqsim: test pause at switch");
    assert_eq!(snapshot(&out), old, "killed right before the switch");
    // A run that finishes replaces every file, and tidies what the killed runs left.
    let status = irqsim().arg("run").arg(&short).args(["--seed", "2", "--out"]).arg(&out).output().unwrap();
    assert!(status.status.success(), "{}", stderr(&status));
    let new = snapshot(&out);
    assert_eq!(new.len(), old.len());
    for ((name, before), (new_name, after)) in old.iter().zip(&new) {
        assert_eq!(name, new_name);
        // A plot of what the seed does not change (the resources) is the same picture.
        if !reports::is_plot_file(name) {
            assert_ne!(before, after, "{name} was not replaced");
        }
    }
    let report = String::from_utf8(new.iter().find(|(n, _)| n == "report.json").unwrap().1.clone()).unwrap();
    assert!(report.contains("\"seed\": 2"));
    let beside: Vec<_> = std::fs::read_dir(&tmp.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(beside.len(), 3, "leftovers beside the report folder: {beside:?}");
}

#[test]
fn two_runs_into_one_folder_leave_one_whole_report() {
    let tmp = Scratch::new("files-concurrent");
    let file = tmp.0.join("s.yaml");
    std::fs::write(&file, scenario("2ms")).unwrap();
    let out = tmp.0.join("out");
    for _ in 0..3 {
        let children: Vec<_> = (1..=2)
            .map(|seed| {
                irqsim()
                    .arg("run")
                    .arg(&file)
                    .args(["--seed", &seed.to_string(), "--out"])
                    .arg(&out)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let done = child.wait_with_output().unwrap();
            assert!(done.status.success(), "{}", stderr(&done));
        }
        let files = snapshot(&out);
        let plots = files.iter().filter(|f| reports::is_plot_file(&f.0)).count();
        assert_eq!(
            files.len() - plots,
            reports::REPORT_FILES.len(),
            "{:?}",
            files.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        let text = |name: &str| String::from_utf8(files.iter().find(|f| f.0 == name).unwrap().1.clone()).unwrap();
        let seed = if text("report.json").contains("\"seed\": 1,") { 1 } else { 2 };
        assert!(text("summary.txt").contains(&format!("(seed {seed})")), "a mix of two runs");
        assert!(text("summary.md").contains(&format!("| seed | {seed} |")), "a mix of two runs");
        assert!(text("points.csv").contains(&format!("0,,,0,{seed},")), "a mix of two runs");
        let beside: Vec<_> = std::fs::read_dir(&tmp.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(beside.len(), 2, "leftovers beside the report folder: {beside:?}");
    }
}
