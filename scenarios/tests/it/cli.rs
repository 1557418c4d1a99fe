//! The command line a kernel engineer expects: `--help` says what irqsim is, `--version`
//! names the commit, the summary goes to standard output (text or JSON) and the chatter to
//! standard error, `--quiet` is quiet, `| head` is not an error, and completions and the
//! man page are generated.

use std::io::Read as _;
use std::process::Stdio;

use crate::irqsim;

fn out_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("irqsim-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn help_says_what_irqsim_is_and_version_names_the_commit() {
    let help = irqsim().arg("--help").output().unwrap();
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(text.starts_with("irqsim simulates interrupt delivery at scale"), "{text}");
    let version = irqsim().arg("--version").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    assert_eq!(version, format!("irqsim {}\n", scenarios::VERSION));
    assert!(scenarios::VERSION.starts_with(&format!("{} (commit ", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn the_summary_goes_to_stdout_as_text_or_json_and_the_rest_to_stderr() {
    let dir = out_dir("formats");
    let run = |args: &[&str]| {
        irqsim().args(["run", "--builtin", "interrupt-storm", "--out"]).arg(&dir).args(args).output().unwrap()
    };
    let text = run(&[]);
    assert!(text.status.success());
    let (stdout, stderr) = (String::from_utf8(text.stdout).unwrap(), String::from_utf8(text.stderr).unwrap());
    assert_eq!(stdout, std::fs::read_to_string(dir.join("summary.txt")).unwrap(), "stdout is the summary");
    assert!(stderr.contains("irqsim: performance:") && stderr.contains("irqsim: report:"), "{stderr}");
    let json = run(&["--format", "json"]);
    assert_eq!(json.stdout, std::fs::read(dir.join("report.json")).unwrap(), "stdout is report.json");
    let quiet = run(&["--quiet"]);
    assert!(quiet.status.success());
    assert_eq!((quiet.stdout.len(), quiet.stderr.len()), (0, 0), "{}", String::from_utf8_lossy(&quiet.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let dir = out_dir("pipe");
    let mut child = irqsim()
        .args(["run", "--builtin", "interrupt-storm", "--out"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then close the pipe as `| head -c1` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(!stderr.contains("internal error") && !stderr.contains("panicked"), "{stderr}");
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_and_the_man_page_are_generated() {
    let bash = irqsim().args(["completions", "bash"]).output().unwrap();
    let bash = String::from_utf8(bash.stdout).unwrap();
    assert!(bash.contains("_irqsim()") && bash.contains("--resume"), "bash completion");
    let zsh = irqsim().args(["completions", "zsh"]).output().unwrap();
    assert!(String::from_utf8(zsh.stdout).unwrap().starts_with("#compdef irqsim"));
    let man = irqsim().arg("man").output().unwrap();
    let man = String::from_utf8(man.stdout).unwrap();
    assert!(man.contains(".TH irqsim 1") && man.contains("discrete\\-event simulator"), "{man}");
    let bad = irqsim().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn email_and_compare_print_72_column_text_from_report_folders() {
    let dir = out_dir("mail");
    let run = |seed: &str, out: &str| {
        let done = irqsim()
            .args(["run", "--builtin", "interrupt-storm", "--quiet", "--seed", seed, "--out"])
            .arg(dir.join(out))
            .output()
            .unwrap();
        assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    };
    run("1", "a");
    run("2", "b");
    let mail = irqsim().arg("report").arg(dir.join("a")).arg("--email").output().unwrap();
    assert!(mail.status.success());
    let mail = String::from_utf8(mail.stdout).unwrap();
    assert!(mail.trim_end().ends_with("reproduce: irqsim run --builtin interrupt-storm --seed 1"), "{mail}");
    assert!(mail.contains(&format!("irqsim {}", scenarios::VERSION)), "the footer names this irqsim and its commit");
    for line in mail.lines().filter(|l| !l.starts_with("reproduce: ")) {
        assert!(line.chars().count() <= 72, "over 72 columns: `{line}`");
    }
    let compare = irqsim().arg("compare").arg(dir.join("a")).arg(dir.join("b")).output().unwrap();
    assert!(compare.status.success(), "{}", String::from_utf8_lossy(&compare.stderr));
    let table = String::from_utf8(compare.stdout).unwrap();
    // One run on each side: no test is possible, and the table says so.
    assert!(table.contains("n=1"), "{table}");
    for line in table.lines() {
        assert!(line.chars().count() <= 72, "over 72 columns: `{line}`");
    }
    let missing = irqsim().arg("compare").arg(dir.join("a")).arg(dir.join("nothing")).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_provisioning_sweeps_mail_carries_its_control_plane_counts() {
    // msix-growth: 16 and 64 vectors with dynamic MSI-X (N host setups) and without
    // (N(N+1)/2: 136 and 2080); one ioctl and five exits (four message accesses and the
    // unmask) per vector either way.
    let dir = out_dir("control-plane");
    let done = irqsim().args(["run", "--builtin", "msix-growth", "-q", "--out"]).arg(&dir).output().unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let mail = irqsim().arg("report").arg(&dir).arg("--email").output().unwrap();
    let mail = String::from_utf8(mail.stdout).unwrap();
    let at = mail.find("guest control plane, mean of one replication:").expect("the control-plane table");
    let rows: Vec<Vec<&str>> =
        mail[at..].lines().skip(2).take(4).map(|l| l.split_whitespace().take(6).collect()).collect();
    assert_eq!(
        rows,
        [
            ["0", "16", "dynamic", "16", "16", "80"],
            ["0", "16", "noresize", "136", "16", "80"],
            ["1", "64", "dynamic", "64", "64", "320"],
            ["1", "64", "noresize", "2080", "64", "320"],
        ],
        "{mail}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_and_compare_read_every_earlier_report_version() {
    let dir = out_dir("versions");
    let fixtures = crate::workspace_root().join("reports/tests/fixtures");
    for v in [1, 2] {
        let folder = dir.join(format!("v{v}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(fixtures.join(format!("v{v}-interrupt-storm.json")), folder.join("report.json")).unwrap();
        let report = reports::read_report(&folder.join("report.json")).unwrap();
        // A point of an earlier version gets the run seed.
        assert!(report.points.iter().all(|p| p.seed == report.seed));
        let out = irqsim().arg("report").arg(&folder).output().unwrap();
        assert!(out.status.success(), "v{v}: {}", String::from_utf8_lossy(&out.stderr));
        for file in ["summary.md", "summary.txt", "points.csv", "index.html"] {
            assert!(folder.join(file).is_file(), "v{v}: {file}");
        }
        let mail = irqsim().arg("report").arg(&folder).arg("--email").output().unwrap();
        assert!(mail.status.success() && String::from_utf8_lossy(&mail.stdout).contains("interrupt-storm"));
    }
    // This version's run of the same scenario and seed against both: the same numbers.
    let now = irqsim().args(["run", "--builtin", "interrupt-storm", "-q", "--out"]).arg(dir.join("v3")).output();
    assert!(now.unwrap().status.success());
    for old in ["v1", "v2"] {
        let out = irqsim().arg("compare").arg(dir.join(old)).arg(dir.join("v3")).output().unwrap();
        let table = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{old}: {}", String::from_utf8_lossy(&out.stderr));
        let p99 = table.lines().find(|l| l.starts_with("end_to_end p99 ")).expect("a p99 row");
        assert!(p99.contains(" 0%") || p99.contains("+0.0%"), "{old}: the same run, no change: {p99}\n{table}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
