//! `points.csv`: every number of a report in long format, one row per (point, metric), so
//! that `pandas.read_csv("points.csv")` reads a whole report (or a sweep's points) at once.
//!
//! Columns: `point` (the point's index), `parameters` (the point's sweep parameters as
//! `path=value` pairs joined by `;`, empty without a sweep), `variant` (empty without
//! variants), `replication`, `seed`, `metric` and `value`. Metrics are those of
//! [`crate::stats::metrics`]: `conservation.*`, then
//! `latency.<stage>.{count,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,max_ns}` for each stage with
//! samples, `resource.<name>.{used_min,used_mean,used_max,limit}`, `failures.total` and
//! every counter by its name. Values are written as Rust prints them (shortest round-trip
//! for floats).

use std::fmt::Write as _;

use crate::schema::RunReport;
use crate::stats::metrics;

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

/// The report as `points.csv`.
pub fn csv(report: &RunReport) -> String {
    let mut s = String::from("point,parameters,variant,replication,seed,metric,value\n");
    for p in &report.points {
        let parameters: Vec<String> = p.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let prefix = format!(
            "{},{},{},{},{}",
            p.index,
            field(&parameters.join(";")),
            field(p.variant.as_deref().unwrap_or("")),
            p.replication,
            p.seed
        );
        for (metric, value) in metrics(p) {
            let _ = writeln!(s, "{prefix},{},{value}", field(&metric));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(field("a=1;b=2"), "a=1;b=2");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
