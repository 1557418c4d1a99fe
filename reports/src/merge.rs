//! `irqsim merge`: the reports of a sweep's shards joined into the report of the whole
//! sweep, byte for byte what one process running every run writes. A shard holds whole
//! runs (each with its own histograms and percentiles), so joining is exact: runs are put
//! back in run order, nothing is averaged. Shards of another scenario, seed, irqsim
//! version, sweep or shard count are refused, as are missing or repeated shards and runs.

use crate::schema::{PointReport, RunReport, SweepInfo};

/// The position of run `p` in run order (point, then variant, then replication), or `None`
/// when the sweep has no such run.
pub fn run_ordinal(sweep: Option<&SweepInfo>, p: &PointReport) -> Option<u32> {
    let Some(s) = sweep else {
        return (p.index == 0 && p.replication == 0 && p.variant.is_none()).then_some(0);
    };
    let variants = s.variants.len().max(1) as u64;
    let variant = match &p.variant {
        None if s.variants.is_empty() => 0,
        Some(name) => s.variants.iter().position(|v| &v.name == name)? as u64,
        None => return None,
    };
    if p.index >= s.point_count || p.replication >= s.replications {
        return None;
    }
    let ordinal = (u64::from(p.index) * variants + variant) * u64::from(s.replications) + u64::from(p.replication);
    u32::try_from(ordinal).ok()
}

/// The most runs a sweep may have (points × variants × replications), and so the most
/// shards worth merging: what `irqsim run` refuses beyond, and what a shard report claiming
/// more (an edited or damaged file) is refused for here before anything is allocated.
pub const RUN_COUNT_MAX: u64 = 100_000;

/// Runs in the whole sweep of `report`, if the sweep is one `irqsim run` could have run.
fn run_count(report: &RunReport) -> Option<u64> {
    let Some(s) = report.sweep.as_ref() else { return Some(1) };
    if s.seeds.len() != s.replications as usize {
        return None;
    }
    s.run_count().filter(|&n| n <= RUN_COUNT_MAX)
}

/// Joins shard reports, each labelled with where it was read from, into the whole report.
pub fn merge(shards: Vec<(String, RunReport)>) -> Result<RunReport, String> {
    let Some((first_label, first)) = shards.first() else {
        return Err("no shard reports to merge".into());
    };
    let Some(count) = first.shard.map(|s| s.count) else {
        return Err(format!("{first_label} is not a shard: it holds a whole run (written without --shard)"));
    };
    if count == 0 || u64::from(count) > RUN_COUNT_MAX {
        return Err(format!(
            "{first_label} claims to be one of {count} shards; irqsim writes 1 to {RUN_COUNT_MAX} (the most runs a sweep has): the file is damaged or edited"
        ));
    }
    let Some(total) = run_count(first) else {
        return Err(format!(
            "{first_label}: its sweep is not one irqsim runs (more than {RUN_COUNT_MAX} runs, or seeds not one per replication): the file is damaged or edited"
        ));
    };
    let mut seen: Vec<Option<&str>> = vec![None; count as usize];
    for (label, r) in &shards {
        let differs = [
            ("scenario (sha256)", r.scenario.sha256 != first.scenario.sha256),
            ("scenario name", r.scenario.name != first.scenario.name),
            ("seed", r.seed != first.seed),
            ("irqsim version", r.irqsim_version != first.irqsim_version),
            ("report format version", r.format_version != first.format_version),
            ("sweep", r.sweep != first.sweep),
        ];
        let what: Vec<&str> = differs.iter().filter(|(_, d)| *d).map(|(w, _)| *w).collect();
        if !what.is_empty() {
            return Err(format!(
                "{label} is not a shard of the same run as {first_label}: its {} differ",
                what.join(", ")
            ));
        }
        let Some(shard) = r.shard else {
            return Err(format!("{label} is not a shard: it holds a whole run (written without --shard)"));
        };
        if shard.count != count {
            return Err(format!(
                "{label} is shard {} of {}, but {first_label} is a shard of {count}; merge the shards of one split",
                shard.index, shard.count
            ));
        }
        match seen.get_mut(shard.index as usize) {
            Some(Some(other)) => {
                return Err(format!("{label} and {other} are both shard {} of {count}", shard.index));
            }
            Some(slot) => *slot = Some(label),
            None => return Err(format!("{label} claims shard {} of {count}, which does not exist", shard.index)),
        }
    }
    let missing: Vec<String> =
        seen.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| i.to_string()).collect();
    if !missing.is_empty() {
        return Err(format!("shards {} of {count} are missing; merge all {count} shards", missing.join(", ")));
    }
    let mut slots: Vec<Option<(&str, &PointReport)>> = vec![None; total as usize];
    for (label, r) in &shards {
        // Every shard has its index (checked above).
        let index = r.shard.map_or(0, |s| s.index);
        for p in &r.points {
            let Some(ordinal) = run_ordinal(r.sweep.as_ref(), p) else {
                return Err(format!("{label}: point {} is not a run of the sweep", p.index));
            };
            if ordinal % count != index {
                return Err(format!(
                    "{label}: run {ordinal} belongs to shard {} of {count}, not to shard {}",
                    ordinal % count,
                    index
                ));
            }
            match &mut slots[ordinal as usize] {
                Some((other, _)) => return Err(format!("run {ordinal} is in both {label} and {other}")),
                slot => *slot = Some((label, p)),
            }
        }
    }
    let absent: Vec<usize> = slots.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| i).collect();
    if let Some(&first_absent) = absent.first() {
        return Err(format!(
            "{} of the {total} runs are in no shard (the first: run {first_absent}); the shard that should hold it is not a whole shard of this run",
            absent.len()
        ));
    }
    let mut merged = first.clone();
    merged.shard = None;
    merged.points = slots.into_iter().flatten().map(|(_, p)| p.clone()).collect();
    merged.verdicts = crate::stats::judge(&merged);
    Ok(merged)
}
