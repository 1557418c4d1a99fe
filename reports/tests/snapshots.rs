//! Snapshots of the mail ([`reports::email()`]), the sweep summaries ([`reports::text`],
//! [`reports::markdown`]) and [`reports::compare()`], rendered from the report fixtures in
//! `tests/fixtures/` and compared byte for byte with `tests/snapshots/`; and the mail's
//! width: every line at most 72 characters but the reproduce command.
//!
//! The fixtures are real reports cut down to a few runs, counters and model tables
//! dropped (their scenario text trimmed to the sweep they keep; `sha256` is still the whole
//! file's): `nvme-sweep.json`, nvme-bare-metal at 20k/s and 120k/s per queue in variants lapic
//! and fifo, 3 replications, with verdicts added by hand (`end_to_end.p99 < 10us` fails
//! at 120k/s in both, `lost == 0` holds); `exhaustion-sweep.json`, vector-exhaustion with
//! 2048 queues at 2k/s and 2M/s (overloaded: warnings) in lapic and fifo, 2 replications,
//! every run with failures; `single.json`, nvme-bare-metal run once.
//!
//! Refresh with `UPDATE_SNAPSHOTS=1 cargo test -p reports --test snapshots`, then read
//! the diff as a user would read the mail.

use std::path::{Path, PathBuf};

use reports::{RunReport, compare, email, markdown, read_report, text};

const VERSION_LINE: &str = "irqsim 0.1.0 (commit abc1234)";
const MAIL_WIDTH: usize = 72;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn fixture(name: &str) -> RunReport {
    read_report(&dir().join("fixtures").join(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// Compares `actual` with the committed snapshot, or writes it under `UPDATE_SNAPSHOTS=1`.
fn check(name: &str, actual: &str) {
    let path = dir().join("snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| expected.lines().count().min(actual.lines().count()) + 1, |i| i + 1);
        panic!("{}:{line} differs (review, then refresh with UPDATE_SNAPSHOTS=1):\n--- now:\n{actual}", path.display());
    }
}

/// Every line at most 72 characters (not bytes), but the reproduce line.
fn assert_fits(name: &str, mail: &str) {
    for (i, line) in mail.lines().enumerate() {
        if line.starts_with("reproduce: ") {
            continue;
        }
        assert!(line.chars().count() <= MAIL_WIDTH, "{name}:{}: {} columns: {line}", i + 1, line.chars().count());
    }
}

#[test]
fn the_mail_of_a_sweep_with_verdicts() {
    let r = fixture("nvme-sweep.json");
    let mail = email(&r, VERSION_LINE);
    assert_fits("email-sweep.txt", &mail);
    check("email-sweep.txt", &mail);
    assert!(mail.contains("\nFAIL: end_to_end.p99 < 10us (point 1, variant lapic): 14.13us\n"), "{mail}");
    assert!(mail.contains("\nSUMMARY: 8 tests, 2 failed\n"), "{mail}");
    assert!(mail.ends_with("\nreproduce: irqsim run sweep.yaml --seed 1\n"), "{mail}");
}

#[test]
fn the_mail_of_a_sweep_with_failures_and_warnings() {
    let r = fixture("exhaustion-sweep.json");
    let mail = email(&r, VERSION_LINE);
    assert_fits("email-exhaustion-sweep.txt", &mail);
    check("email-exhaustion-sweep.txt", &mail);
}

#[test]
fn the_mail_of_one_run() {
    let r = fixture("single.json");
    let mail = email(&r, VERSION_LINE);
    assert_fits("email-single.txt", &mail);
    check("email-single.txt", &mail);
    // One run: its stage table, as in summary.txt.
    assert!(mail.contains("\nend_to_end        1536195  2.244us  1.955us  6.345us  10.09us  24.73us\n"), "{mail}");
}

#[test]
fn a_long_reproduce_line_is_never_broken_and_the_rest_still_fits() {
    let mut r = fixture("nvme-sweep.json");
    r.reproduce = format!("irqsim run {}/sweep.yaml --seed 1", "very-long-directory-name".repeat(5));
    r.scenario.source = format!("{}/sweep.yaml", "very-long-directory-name".repeat(5));
    let mail = email(&r, VERSION_LINE);
    assert!(mail.contains(&format!("\nreproduce: {}\n", r.reproduce)), "{mail}");
    assert_fits("long reproduce", &mail);
}

#[test]
fn the_summaries_of_a_sweep() {
    let r = fixture("nvme-sweep.json");
    let t = text(&r);
    assert_fits("text-sweep.txt", &t);
    check("text-sweep.txt", &t);
    check("markdown-sweep.md", &markdown(&r));
    let r = fixture("exhaustion-sweep.json");
    let t = text(&r);
    assert_fits("text-exhaustion-sweep.txt", &t);
    check("text-exhaustion-sweep.txt", &t);
    check("markdown-exhaustion-sweep.md", &markdown(&r));
}

#[test]
fn a_comparison_of_two_sweeps() {
    // The sweep against itself with the fifo variant's runs as B's lapic: the same seeds,
    // so paired.
    let a = fixture("nvme-sweep.json");
    let mut b = a.clone();
    b.points.retain(|p| p.variant.as_deref() == Some("fifo"));
    for p in &mut b.points {
        p.variant = Some("lapic".into());
    }
    let out = compare(&a, "lapic", &b, "fifo").unwrap();
    assert_fits("compare-sweep.txt", &out);
    check("compare-sweep.txt", &out);
}
