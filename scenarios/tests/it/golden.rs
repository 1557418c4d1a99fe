//! Golden reports: every catalog scenario at its own seed, its `report.json`, `summary.md`
//! and `points.csv` compared byte for byte (less the version string) with the copies committed
//! in `scenarios/tests/golden/`, and the event trace (kind and time of every event) of a few
//! scenarios hashed, so a change of event order shows even when the statistics agree.
//!
//! Refresh with `UPDATE_GOLDEN=1 cargo test -p irqsim --test it golden`, then review the
//! diff: a change of numbers must be explained by the commit that makes it.

use std::path::PathBuf;

use models::platform::{Event, Platform};
use scenarios::{catalog, runner};
use sim::{Observed, RunLimits, SimTime};

use super::workspace_root;

fn golden_dir() -> PathBuf {
    workspace_root().join("scenarios/tests/golden")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// The version string is the one thing a refactor may change.
fn without_version(text: &str) -> String {
    let version = scenarios::VERSION;
    text.replace(&format!("\"irqsim_version\": \"{version}\""), "\"irqsim_version\": \"VERSION\"")
        .replace(&format!("| irqsim | {version} |"), "| irqsim | VERSION |")
        .replace(&format!("irqsim {version}"), "irqsim VERSION")
}

/// Compares `actual` with the committed file, or writes it under `UPDATE_GOLDEN=1`.
/// Returns a description of the difference, if any.
fn check(path: &std::path::Path, actual: &str) -> Option<String> {
    let actual = without_version(actual);
    if updating() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &actual).unwrap();
        return None;
    }
    let expected = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return Some(format!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display())),
    };
    if expected == actual {
        return None;
    }
    let first = expected.lines().zip(actual.lines()).position(|(a, b)| a != b);
    let (line, was, now) = match first {
        Some(i) => (i + 1, expected.lines().nth(i).unwrap_or(""), actual.lines().nth(i).unwrap_or("")),
        None => (expected.lines().count().min(actual.lines().count()) + 1, "(length differs)", ""),
    };
    Some(format!("{}:{line}: was `{was}`, now `{now}`", path.display()))
}

#[test]
fn catalog_reports_match_the_committed_golden_copies() {
    let mut differences = Vec::new();
    for (name, text) in catalog::CATALOG {
        let source = runner::Source {
            label: format!("builtin:{name}"),
            bytes: text.as_bytes().to_vec(),
            run_args: format!("--builtin {name}"),
        };
        let plan = scenarios::sweep::plan(&source.label, text, None).unwrap_or_else(|e| panic!("{e}"));
        let result = runner::run_all(&plan, &source, 2).unwrap_or_else(|e| panic!("{name}: {e}"));
        let json = serde_json::to_string_pretty(&result.report).unwrap() + "\n";
        let dir = golden_dir().join(name);
        differences.extend(check(&dir.join("report.json"), &json));
        differences.extend(check(&dir.join("summary.md"), &reports::markdown(&result.report)));
        differences.extend(check(&dir.join("points.csv"), &reports::csv(&result.report)));
    }
    assert!(
        differences.is_empty(),
        "golden reports differ (review, then refresh with UPDATE_GOLDEN=1):\n{}",
        differences.join("\n")
    );
}

fn trace_hash(name: &str) -> String {
    let scenario = scenarios::load(name, catalog::get(name).unwrap()).unwrap();
    let (mut platform, mut queue) = Platform::new(&scenario.platform, scenario.seed);
    // FNV-1a, 64-bit, of the kind and time of every event: stable across Rust versions,
    // unlike `DefaultHasher`.
    let mut hash = sim::fnv1a64(b"");
    let mut traced = Observed::new(&mut platform, |t: SimTime, e: Event| {
        hash = sim::fnv1a64_extend(hash, e.kind().as_bytes());
        hash = sim::fnv1a64_extend(hash, &t.as_ps().to_le_bytes());
    });
    let limits = RunLimits {
        time_end: SimTime::ZERO + scenario.duration,
        event_count_max: scenario.event_limit.unwrap_or(u64::MAX),
    };
    let outcome = sim::run(&mut traced, &mut queue, limits);
    format!("{name}: {} events, trace {hash:016x}\n", outcome.event_count)
}

#[test]
fn event_traces_match_the_committed_hashes() {
    // One scenario per delivery path: remapped FIFO (plain and with hotplug), the ITS, posted MSI, VT-d posted
    // guests, the ITS with GICv4 guests, IMS in queue memory, IRTE updates on the lock.
    let names = [
        "nvme-bare-metal",
        "arm-lpi-budget",
        "cpu-hotplug",
        "posted-msi",
        "posted-guest",
        "gicv4-guest",
        "dsa-ims-density",
        "irte-lock-contention",
    ];
    let actual: String = names.iter().map(|n| trace_hash(n)).collect();
    let diff = check(&golden_dir().join("event-traces.txt"), &actual);
    assert!(diff.is_none(), "event traces differ: {}\nnow:\n{actual}", diff.unwrap());
}

#[test]
fn structured_tables_say_what_their_text_says() {
    let (mut checked, mut expected) = (0, 0);
    for (name, _) in catalog::CATALOG {
        let report = reports::read_report(&golden_dir().join(name).join("report.json")).unwrap();
        // Every sources and matrix table carries its rows.
        expected += report
            .points
            .iter()
            .flat_map(|p| &p.tables)
            .filter(|t| {
                t.name == "Interrupt sources"
                    || t.name.starts_with("x86 vector matrix")
                    || t.name == reports::KVM_EXIT_TABLE
                    || t.name.starts_with("Guest IMS detection")
            })
            .count();
        for table in report.points.iter().flat_map(|p| &p.tables).filter(|t| !t.rows.is_empty()) {
            assert!(table.rows.iter().all(|r| r.len() == table.columns.len()), "{name}: {}", table.name);
            if table.name == "Interrupt sources" {
                // The text is the rows as a pipe table.
                let mut text = format!("| {} |\n", table.columns.join(" | "));
                for row in &table.rows {
                    text.push_str(&format!("| {} |\n", row.join(" | ")));
                }
                assert_eq!(text, table.text, "{name}");
            } else if table.name == reports::KVM_EXIT_TABLE {
                // perf kvm stat's layout: after the title and the header, one line per row in
                // the same order: reason, samples, shares, min and max (us, 2 decimals).
                let lines: Vec<Vec<&str>> =
                    table.text.lines().skip(4).take(table.rows.len()).map(|l| l.split_whitespace().collect()).collect();
                assert_eq!(lines.len(), table.rows.len(), "{name}: {}", table.name);
                let us = |ns: &str| format!("{:.2}us", ns.parse::<f64>().unwrap() / 1e3);
                for (line, row) in lines.iter().zip(&table.rows) {
                    assert_eq!(&line[..2], &[row[0].as_str(), row[1].as_str()], "{name}");
                    assert_eq!((line[2], line[3]), (&*format!("{}%", row[2]), &*format!("{}%", row[3])), "{name}");
                    assert_eq!((line[4], line[5]), (&*us(&row[4]), &*us(&row[5])), "{name}");
                }
            } else if table.name == "Guest IMS detection: the decision matrix" {
                // One text line per row (its id first), each cell the outcome and its reason's key.
                for row in &table.rows {
                    let line = table.text.lines().find(|l| l.split_whitespace().next() == Some(row[0].as_str()));
                    let cells: Vec<&str> =
                        line.unwrap_or_else(|| panic!("{name}: no line {}", row[0])).split_whitespace().collect();
                    assert_eq!(cells.len(), row.len() - 1, "{name}: {}", row[0]);
                    for (cell, data) in cells[1..].iter().zip(&row[2..]) {
                        let outcome = data.split(':').next().unwrap();
                        assert_eq!(cell.len(), outcome.len() + 1, "{name}: {cell} vs {data}");
                        assert!(cell.starts_with(outcome), "{name}: {cell} vs {data}");
                    }
                }
            } else if table.name.starts_with("Guest IMS detection: outcome shares") {
                // The text's percentages are the exact fractions rounded half up to 0.01.
                let lines: Vec<&str> = table.text.lines().skip(1).take(table.rows.len()).collect();
                for (line, row) in lines.iter().zip(&table.rows) {
                    let percents: Vec<String> = row[1..]
                        .iter()
                        .map(|f| {
                            let (n, d) = f.split_once('/').unwrap();
                            let (n, d): (u128, u128) = (n.parse().unwrap(), d.parse().unwrap());
                            let h = (20_000 * n + d) / (2 * d);
                            format!("{}.{:02}", h / 100, h % 100)
                        })
                        .collect();
                    assert_eq!(line.split_whitespace().skip(1).collect::<Vec<_>>(), percents, "{name}: {line}");
                }
            } else if table.name.starts_with("Guest IMS detection: what a broken configuration costs") {
                // One text line per row: its id, message, lost, misrouted, cross-tenant.
                let lines: Vec<Vec<&str>> =
                    table.text.lines().skip(1).take(table.rows.len()).map(|l| l.split_whitespace().collect()).collect();
                for (line, row) in lines.iter().zip(&table.rows) {
                    let want = [&row[0], &row[3], &row[4], &row[5], &row[6]].map(String::as_str);
                    assert_eq!(line[..], want[..], "{name}");
                }
            } else if table.name.starts_with("Guest IMS detection: what the broken guests cost") {
                // One text line per policy: the BRK share in percent (half up to 0.01) and the
                // costs' fractions to one decimal.
                let lines: Vec<Vec<&str>> =
                    table.text.lines().skip(1).take(table.rows.len()).map(|l| l.split_whitespace().collect()).collect();
                let fraction = |f: &str| -> (u128, u128) {
                    let (n, d) = f.split_once('/').unwrap_or((f, "1"));
                    (n.parse().unwrap(), d.parse().unwrap())
                };
                for (line, row) in lines.iter().zip(&table.rows) {
                    // The key, the title (data only), the share, the three costs.
                    assert_eq!(line[0], row[0], "{name}");
                    let (n, d) = fraction(&row[2]);
                    let h = (20_000 * n + d) / (2 * d);
                    assert_eq!(line[1], format!("{}.{:02}", h / 100, h % 100), "{name}");
                    for (cell, f) in line[2..].iter().zip(&row[3..]) {
                        if f == "-" {
                            // No guest composing this cost's message ran.
                            assert_eq!(*cell, "-", "{name}");
                            continue;
                        }
                        let (n, d) = fraction(f);
                        assert_eq!(*cell, format!("{:.1}", n as f64 / d as f64), "{name}: {f}");
                    }
                }
            } else {
                // The matrix: one row per CPU line of the kernel's layout, same numbers.
                let lines: Vec<Vec<&str>> = table
                    .text
                    .lines()
                    .skip_while(|l| !l.contains("| CPU |"))
                    .skip(1)
                    .map(|l| l.split_whitespace().collect())
                    .collect();
                assert_eq!(lines.len(), table.rows.len(), "{name}: {}", table.name);
                for (line, row) in lines.iter().zip(&table.rows) {
                    assert_eq!(&line[..5], &row[..5].iter().map(String::as_str).collect::<Vec<_>>()[..], "{name}");
                    assert_eq!(line.get(5).copied().unwrap_or(""), row[5], "{name}: vectors");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, expected, "every sources, matrix and detection table has its rows");
    assert!(expected > catalog::CATALOG.len(), "{expected}");
}
