//! The scenario's expectations judged, as kvm-unit-tests prints its results: one
//! `PASS: …` or `FAIL: …` line per expectation, point and variant, and a `SUMMARY: n tests,
//! m failed` line; in plain text (72 columns) and as a Markdown table.

use std::fmt::Write as _;

use crate::plain::{MAIL_WIDTH, fmt_ns_short, fmt_si, wrap};
use crate::schema::{RunReport, Verdict};

/// A verdict's value in its metric's unit: a duration for a `_ns` metric, else a number.
fn value(v: &Verdict) -> String {
    if v.value.is_nan() {
        "no value".to_owned()
    } else if v.metric.ends_with("_ns") {
        fmt_ns_short(v.value)
    } else {
        fmt_si(v.value)
    }
}

/// Where a verdict was judged: `point 0, variant lapic` in a sweep, nothing for one run.
fn place(report: &RunReport, v: &Verdict) -> Option<String> {
    report.sweep.as_ref()?;
    Some(match &v.variant {
        Some(variant) => format!("point {}, variant {variant}", v.point),
        None => format!("point {}", v.point),
    })
}

/// `SUMMARY: n tests, m failed`.
fn summary(report: &RunReport) -> String {
    let failed = report.verdicts.iter().filter(|v| !v.held).count();
    format!("SUMMARY: {} tests, {failed} failed", report.verdicts.len())
}

/// The verdict lines and the summary line, a blank line first; empty without verdicts.
/// A line too long for the mail continues indented by two columns.
pub(crate) fn text(report: &RunReport) -> String {
    if report.verdicts.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n");
    for v in &report.verdicts {
        let result = if v.held { "PASS" } else { "FAIL" };
        let line = match place(report, v) {
            Some(place) => format!("{result}: {} ({place}): {}", v.expectation, value(v)),
            None => format!("{result}: {}: {}", v.expectation, value(v)),
        };
        s.push_str(&wrap(&line, MAIL_WIDTH, "  "));
    }
    let _ = writeln!(s, "{}", summary(report));
    s
}

/// The verdicts as a Markdown section (`## Expectations`); empty without verdicts.
pub(crate) fn markdown(report: &RunReport) -> String {
    if report.verdicts.is_empty() {
        return String::new();
    }
    let mut s = String::from("## Expectations\n\n");
    let sweep = report.sweep.is_some();
    if sweep {
        let _ = writeln!(s, "| result | expectation | point | variant | value |\n|---|---|---:|---|---:|");
    } else {
        let _ = writeln!(s, "| result | expectation | value |\n|---|---|---:|");
    }
    for v in &report.verdicts {
        let result = if v.held { "PASS" } else { "**FAIL**" };
        let expectation = v.expectation.replace('|', "\\|");
        if sweep {
            let variant = v.variant.as_deref().unwrap_or("");
            let _ = writeln!(s, "| {result} | `{expectation}` | {} | {variant} | {} |", v.point, value(v));
        } else {
            let _ = writeln!(s, "| {result} | `{expectation}` | {} |", value(v));
        }
    }
    let _ = writeln!(s, "\n{}\n", summary(report));
    s
}
