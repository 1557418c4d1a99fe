//! `points.csv`: every number of a report in long format, one row per (point, metric), so
//! that `pandas.read_csv("points.csv")` reads a whole report (or a sweep's points) at once.
//!
//! Columns: `point` (the point's index), `parameters` (the point's sweep parameters as
//! `path=value` pairs joined by `;`, empty without a sweep), `variant` (empty until
//! variants exist), `seed`, `metric` and `value`. Metrics: `conservation.*`, then
//! `latency.<stage>.{count,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,max_ns}` for each stage with
//! samples, `resource.<name>.{used_min,used_mean,used_max,limit}`, and every counter by its
//! name. Values are written as Rust prints them (shortest round-trip for floats).

use std::fmt::Write as _;

use crate::schema::RunReport;

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

/// The report as `points.csv`.
pub fn csv(report: &RunReport) -> String {
    let mut s = String::from("point,parameters,variant,seed,metric,value\n");
    for p in &report.points {
        let parameters: Vec<String> = p.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let prefix = format!("{},{},,{}", p.index, field(&parameters.join(";")), report.seed);
        let mut row = |metric: &str, value: String| {
            let _ = writeln!(s, "{prefix},{},{value}", field(metric));
        };
        let c = &p.conservation;
        for (name, value) in [
            ("raised", c.raised),
            ("delivered", c.delivered),
            ("lost", c.lost),
            ("merged", c.merged),
            ("in_flight", c.in_flight),
        ] {
            row(&format!("conservation.{name}"), value.to_string());
        }
        for st in p.stages.iter().filter(|st| st.count > 0) {
            let stage = &st.stage;
            row(&format!("latency.{stage}.count"), st.count.to_string());
            for (name, value) in [
                ("mean_ns", st.mean_ns),
                ("p50_ns", st.p50_ns),
                ("p90_ns", st.p90_ns),
                ("p99_ns", st.p99_ns),
                ("p999_ns", st.p999_ns),
                ("max_ns", st.max_ns),
            ] {
                row(&format!("latency.{stage}.{name}"), value.to_string());
            }
        }
        for r in &p.resources {
            let name = &r.name;
            row(&format!("resource.{name}.used_min"), r.used_min.to_string());
            row(&format!("resource.{name}.used_mean"), r.used_mean.to_string());
            row(&format!("resource.{name}.used_max"), r.used_max.to_string());
            row(&format!("resource.{name}.limit"), r.limit.to_string());
        }
        for counter in &p.counters {
            row(&counter.name, counter.value.to_string());
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
