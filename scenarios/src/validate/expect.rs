//! The `expect` section: each metric name and comparison checked and turned into a
//! [`reports::Expectation`] (metric by its `points.csv` name, threshold in the metric's unit).

use reports::Expectation;

use super::Checker;
use crate::quantity::parse_duration;
use crate::schema::ExpectMap;

/// The statistics a stage's short name takes (`end_to_end.p99`), and their metric suffix.
const STAGE_STATS: [(&str, &str); 8] = [
    ("mean", "mean_ns"),
    ("p50", "p50_ns"),
    ("p90", "p90_ns"),
    ("p99", "p99_ns"),
    ("p99.9", "p999_ns"),
    ("p999", "p999_ns"),
    ("max", "max_ns"),
    ("count", "count"),
];
/// The comparisons, longest first (so `<=` is not read as `<`).
const OPS: [&str; 6] = ["<=", ">=", "==", "!=", "<", ">"];
/// Prefixes of the full metric names (as in `points.csv`) that are not a stage's short name.
const FULL_PREFIXES: [&str; 4] = ["latency.", "conservation.", "resource.", "failures."];

/// The metric a name in `expect` stands for, and whether its threshold is a duration.
fn metric_of(name: &str) -> (String, bool) {
    if FULL_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return (name.to_owned(), name.starts_with("latency.") && name.ends_with("_ns"));
    }
    for (stat, suffix) in STAGE_STATS {
        if let Some(stage) = name.strip_suffix(stat).and_then(|s| s.strip_suffix('.'))
            && !stage.is_empty()
            && !stage.contains('.')
        {
            return (format!("latency.{stage}.{suffix}"), suffix.ends_with("_ns"));
        }
    }
    // A counter by its full name.
    (name.to_owned(), false)
}

/// Checks every expectation; the valid ones come back in file order.
pub(crate) fn check_expect(raw: &ExpectMap, c: &mut Checker) -> Vec<Expectation> {
    let mut out = Vec::new();
    for (name, rule) in &raw.0 {
        let key = name.value.trim();
        let path = format!("expect.{key}");
        if key.is_empty()
            || !key.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '.')
        {
            c.error(
                name,
                "expect",
                format!("`{key}` is not a metric name; write a stage statistic such as `end_to_end.p99` or a metric of points.csv such as `conservation.lost`"),
            );
            continue;
        }
        let text = rule.value.trim();
        let Some(op) = OPS.iter().find(|op| text.starts_with(**op)) else {
            c.error(
                rule,
                &path,
                format!("`{text}`: expected a comparison (<, <=, >, >=, == or !=) and a value, e.g. `< 10us`"),
            );
            continue;
        };
        let value = text[op.len()..].trim();
        let (metric, is_duration) = metric_of(key);
        let threshold = if is_duration {
            match parse_duration(value) {
                Ok(d) => d.as_ps() as f64 / 1000.0,
                Err(e) => {
                    c.error(rule, &path, format!("{e} (`{key}` is a latency)"));
                    continue;
                }
            }
        } else {
            match value.parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                _ => {
                    c.error(rule, &path, format!("`{value}` is not a number (`{key}` is a count or a plain number)"));
                    continue;
                }
            }
        };
        out.push(Expectation { text: format!("{key} {op} {value}"), metric, op: (*op).to_owned(), threshold });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_stand_for_stage_statistics() {
        assert_eq!(metric_of("end_to_end.p99"), ("latency.end_to_end.p99_ns".into(), true));
        assert_eq!(metric_of("end_to_end.p99.9"), ("latency.end_to_end.p999_ns".into(), true));
        assert_eq!(metric_of("queue_wait.count"), ("latency.queue_wait.count".into(), false));
        assert_eq!(metric_of("conservation.lost"), ("conservation.lost".into(), false));
        assert_eq!(metric_of("latency.remap.max_ns"), ("latency.remap.max_ns".into(), true));
        assert_eq!(metric_of("kvm.hlt_exit_count"), ("kvm.hlt_exit_count".into(), false));
    }
}
