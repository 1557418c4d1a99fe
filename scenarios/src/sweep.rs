//! A scenario's `sweep` section expanded into runs: its points (the axes' values, combined
//! as a grid or zipped), its variants, and its replications with their seeds. Every
//! (point, variant) is loaded through [`load_with_overrides`], so each is validated exactly
//! like a file with those values written in, and an invalid one is reported naming the
//! axis value or variant that made it so.
//!
//! Run order, which fixes `points[]` in the report and the shards: point by point (the
//! first axis varying slowest in a grid), within a point variant by variant in the
//! scenario's order, within a variant replication by replication.
//!
//! Seeds: replication 0 runs with the run seed itself, so a sweep point is the same run as
//! `irqsim run` of the scenario with the point's values written in; replication r ≥ 1 runs
//! with the r-th output of SplitMix64 started from the run seed. Every point and every
//! variant uses the same seeds (common random numbers): differences between variants are
//! then paired run for run.

use reports::{AxisInfo, SweepInfo, VariantInfo};
use serde_saphyr::Spanned;

use crate::diagnostic::{Diagnostic, ScenarioError};
use crate::load::{Scenario, load_with_overrides, parse};
use crate::schema::{CombineSpec, SweepSpec};
use crate::validate::Checker;

/// The most runs one sweep may have (points × variants × replications): far more than a
/// machine runs in a day at the catalog's sizes; `irqsim merge` holds shards to the same.
pub const RUN_COUNT_MAX: u64 = reports::RUN_COUNT_MAX;
/// The most replications: 1,000 already narrow a t interval to 3% of one run's spread.
pub const REPLICATIONS_MAX: u32 = 1_000;
/// How many invalid points are shown in full before the rest are counted.
const INVALID_SHOWN: usize = 3;

/// One (point, variant) of a sweep, validated. Its scenario is not kept (a sweep of many
/// points of a large scenario would hold them all at once): [`Plan::scenario`] builds it
/// again for its runs, from the same text and overrides, so it is the same.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The point's index.
    pub index: u32,
    /// The point's axis values, `(path, value)` in axis order.
    pub parameters: Vec<(String, String)>,
    /// The variant's name, if the sweep has variants.
    pub variant: Option<String>,
    /// The overrides that make the cell's scenario from the file: the point's axis values,
    /// then the variant's fields.
    pub overrides: Vec<(String, String)>,
    /// The cell's estimated memory for one run ([`crate::estimate::memory_bytes`]).
    pub memory_bytes: u64,
    /// The cell's estimated events for one run ([`crate::estimate::event_count`]).
    pub event_count: f64,
}

/// One run: a cell in one replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Position in run order (0-based).
    pub ordinal: u32,
    /// Index into [`Plan::cells`].
    pub cell: usize,
    /// 0-based replication.
    pub replication: u32,
    /// The seed of its random streams.
    pub seed: u64,
}

/// Everything a scenario file asks to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The file's name in messages.
    pub file: String,
    /// The file's text.
    pub source: String,
    /// The first cell's scenario: what the sweep's points share (name, description, the
    /// expectations).
    pub first: Scenario,
    /// The sweep as the report records it; `None` without a `sweep` section.
    pub sweep: Option<SweepInfo>,
    /// The run seed: the one given, else the scenario's `seed`, else 1.
    pub seed: u64,
    /// The (point, variant) cells, in run order.
    pub cells: Vec<Cell>,
    /// Every run, in run order.
    pub runs: Vec<Run>,
    /// The cells' warnings (fields that have no effect), each once, in cell order.
    pub warnings: Vec<String>,
}

impl Plan {
    /// The scenario of the first cell: what the sweep's points share (name, description,
    /// the default seed).
    pub fn first(&self) -> &Scenario {
        &self.first
    }

    /// The scenario of `cell`, built again from the text and the cell's overrides. It was
    /// valid when the plan was made, so an error here is a bug.
    pub fn scenario(&self, cell: &Cell) -> Result<Scenario, String> {
        load_with_overrides(&self.file, &self.source, &cell.overrides)
            .map_err(|e| format!("a sweep point that validated no longer does: {e}"))
    }
}

/// The most scenario text a sweep's validation parses in all (each (point, variant) parses
/// the file once): 256 MiB, a few seconds of parsing. A sweep of a 3 KiB file reaches the
/// run limit first; one of a 16 MiB file may have 16 (point, variant) pairs.
pub const PARSED_BYTES_MAX: u64 = 256 << 20;

/// The seeds of `replications` replications from the run seed `seed` (see the module
/// documentation).
pub fn replication_seeds(seed: u64, replications: u32) -> Vec<u64> {
    let mut stream = sim::SplitMix64::new(seed);
    (0..replications).map(|r| if r == 0 { seed } else { stream.next_u64() }).collect()
}

/// An axis value or a variant's field value as the YAML text an override takes (JSON is
/// YAML: a string is quoted, so `10k/s` stays a string).
fn yaml_text(value: &serde_json::Value) -> String {
    value.to_string()
}

/// An axis value as a reader sees it: a string without quotes, anything else as written.
fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads `source` (named `file` in messages), checks its sweep section and expands it into
/// runs with `seed` as the run seed (default: the scenario's `seed`, else 1), validating
/// every (point, variant). Errors are the text to show: the file's own problems, or the
/// sweep's, or the first few invalid points with the values that made them so.
pub fn plan(file: &str, source: &str, seed: Option<u64>) -> Result<Plan, String> {
    let raw = parse(source).map_err(|d| error(file, source, vec![d]))?;
    let seed = seed.or(raw.seed).unwrap_or(crate::load::DEFAULT_SEED);
    let Some(spec) = raw.sweep.as_ref() else {
        let scenario = crate::load(file, source).map_err(|e| e.to_string())?;
        let warnings = scenario.warnings.clone();
        let cells = vec![Cell {
            index: 0,
            parameters: Vec::new(),
            variant: None,
            overrides: Vec::new(),
            memory_bytes: crate::estimate::memory_bytes(&scenario),
            event_count: crate::estimate::event_count(&scenario),
        }];
        return Ok(Plan {
            file: file.to_owned(),
            source: source.to_owned(),
            first: scenario,
            seed,
            sweep: None,
            cells,
            runs: vec![Run { ordinal: 0, cell: 0, replication: 0, seed }],
            warnings,
        });
    };
    let (info, points) = expand(spec, seed).map_err(|d| error(file, source, d))?;
    check_paths(spec, source).map_err(|d| error(file, source, d))?;
    let variants: Vec<Option<&VariantInfo>> =
        if info.variants.is_empty() { vec![None] } else { info.variants.iter().map(Some).collect() };
    let pairs = (points.len() * variants.len()) as u64;
    let parsed = pairs.saturating_mul(source.len() as u64);
    if parsed > PARSED_BYTES_MAX {
        return Err(format!(
            "error: {file}: the sweep has {pairs} (point, variant) pairs, each validated from the whole file ({} bytes): {parsed} bytes to parse, more than the {PARSED_BYTES_MAX} a sweep may; use fewer points or variants, or a smaller file",
            source.len()
        ));
    }
    let mut cells = Vec::new();
    let mut first = None;
    let mut warnings: Vec<String> = Vec::new();
    let mut invalid = Vec::new();
    let mut invalid_count = 0usize;
    for (index, point) in points.iter().enumerate() {
        for variant in &variants {
            let mut overrides: Vec<(String, String)> =
                point.iter().filter_map(|(p, _, v)| Some((p.clone(), v.clone()?))).collect();
            if let Some(v) = variant {
                overrides.extend(v.set.iter().cloned());
            }
            let parameters: Vec<(String, String)> = point.iter().map(|(p, s, _)| (p.clone(), s.clone())).collect();
            match load_with_overrides(file, source, &overrides) {
                Ok(scenario) => {
                    for w in &scenario.warnings {
                        if !warnings.contains(w) {
                            warnings.push(w.clone());
                        }
                    }
                    cells.push(Cell {
                        index: index as u32,
                        parameters,
                        variant: variant.map(|v| v.name.clone()),
                        overrides,
                        memory_bytes: crate::estimate::memory_bytes(&scenario),
                        event_count: crate::estimate::event_count(&scenario),
                    });
                    first.get_or_insert(scenario);
                }
                Err(e) => {
                    invalid_count += 1;
                    if invalid.len() < INVALID_SHOWN {
                        let which = cell_name(index, &parameters, variant.map(|v| v.name.as_str()));
                        invalid.push(format!("{which} is invalid:\n{e}"));
                    }
                }
            }
        }
    }
    if invalid_count > 0 {
        let total = points.len() * variants.len();
        let mut message = invalid.join("\n");
        if invalid_count > invalid.len() {
            message.push_str(&format!("\n… and {} more invalid points", invalid_count - invalid.len()));
        }
        message
            .push_str(&format!("\n{file}: {invalid_count} of the sweep's {total} (point, variant) pairs are invalid"));
        return Err(message);
    }
    let mut runs = Vec::new();
    for (cell, _) in cells.iter().enumerate() {
        for (replication, &seed) in info.seeds.iter().enumerate() {
            runs.push(Run { ordinal: runs.len() as u32, cell, replication: replication as u32, seed });
        }
    }
    let first = first.expect("a sweep has at least one point and every one is valid");
    Ok(Plan { file: file.to_owned(), source: source.to_owned(), first, seed, sweep: Some(info), cells, runs, warnings })
}

/// Checks once that every axis path and every variant field names a field of the
/// scenario, so that a misspelt path is reported at its place in the file rather than once
/// per point: each is applied alone (with its first value) to the parsed document, and a
/// problem with the path itself is given the axis's (or the variant's) location.
fn check_paths(spec: &SweepSpec, source: &str) -> Result<(), Vec<Diagnostic>> {
    let mut c = Checker::default();
    let mut try_path = |at_line: u64, at_column: u64, field: String, path: &str, value: String| {
        let Ok(mut raw) = parse(source) else { return };
        let o = crate::diagnostic::Override { path: path.to_owned(), value };
        if let Err(problems) = crate::overrides::apply(&mut raw, source, &[o]) {
            // Path problems carry line 0 (the override's path); value problems are each
            // point's, reported with the point.
            for d in problems.into_iter().filter(|d| d.line == 0) {
                c.diagnostics.push(Diagnostic {
                    line: at_line,
                    column: at_column,
                    path: field.clone(),
                    message: d.message,
                    from_override: None,
                });
            }
        }
    };
    for (i, axis) in spec.axes.iter().enumerate() {
        if let (Some(path), Some(first)) = (&axis.path, axis.values.value.first()) {
            let (line, column) = (path.referenced.line(), path.referenced.column());
            try_path(line, column, format!("sweep.axes[{i}].path"), path.value.trim(), yaml_text(first));
        }
    }
    for (i, v) in spec.variants.iter().enumerate() {
        for (path, value) in &v.set.0 {
            let (line, column) = (v.name.referenced.line(), v.name.referenced.column());
            try_path(line, column, format!("sweep.variants[{i}].set"), path.trim(), yaml_text(value));
        }
    }
    if c.diagnostics.is_empty() { Ok(()) } else { Err(c.diagnostics) }
}

/// `sweep point 3 (devices[0].queues=64, variant ims)`.
fn cell_name(index: usize, parameters: &[(String, String)], variant: Option<&str>) -> String {
    let mut parts: Vec<String> = parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(v) = variant {
        parts.push(format!("variant {v}"));
    }
    if parts.is_empty() {
        format!("sweep point {index}")
    } else {
        format!("sweep point {index} ({})", parts.join(", "))
    }
}

fn error(file: &str, source: &str, diagnostics: Vec<Diagnostic>) -> String {
    ScenarioError { file: file.to_owned(), source: source.to_owned(), diagnostics, overrides: Vec::new() }.to_string()
}

/// A point: for each axis, (path or label, value as shown, value as YAML text; `None` for
/// a label, which sets no field).
type Point = Vec<(String, String, Option<String>)>;

/// Checks the sweep section and expands its points; every problem at once.
fn expand(spec: &SweepSpec, seed: u64) -> Result<(SweepInfo, Vec<Point>), Vec<Diagnostic>> {
    let mut c = Checker::default();
    let combine = spec.combine.unwrap_or(CombineSpec::Grid);
    // (path or label, values, whether it is a label).
    let mut axes: Vec<(String, &Vec<serde_json::Value>, bool)> = Vec::new();
    for (i, axis) in spec.axes.iter().enumerate() {
        let here = format!("sweep.axes[{i}]");
        let (at, label) = match (&axis.path, &axis.label) {
            (Some(path), None) => {
                check_path(&mut c, path, &format!("{here}.path"));
                (path, false)
            }
            (None, Some(label)) => {
                if combine == CombineSpec::Grid {
                    c.error(
                        label,
                        format!("{here}.label"),
                        "a label axis names the points of `combine: zip`; in a grid it would only repeat every point",
                    );
                }
                (label, true)
            }
            (Some(path), Some(_)) => {
                c.error(
                    path,
                    &here,
                    "give `path` (the field the axis sets) or `label` (a name for the points), not both",
                );
                (path, false)
            }
            (None, None) => {
                c.error(
                    &axis.values,
                    &here,
                    "an axis needs `path` (the field it sets) or, with `combine: zip`, `label`",
                );
                continue;
            }
        };
        let path = at.value.trim();
        if axes.iter().any(|(p, _, _)| p == path) {
            c.error(at, &here, format!("`{path}` is already an axis; each field is swept by one axis"));
        } else if !label && let Some(other) = overlapping(path, axes.iter().filter(|a| !a.2).map(|a| a.0.as_str())) {
            c.error(
                at,
                &here,
                format!("`{path}` and the axis `{other}` set the same field or one sets a part of the other; each field is swept by one axis"),
            );
        }
        if axis.values.value.is_empty() {
            c.error(&axis.values, format!("{here}.values"), "an axis needs at least one value");
        }
        axes.push((path.to_owned(), &axis.values.value, label));
    }
    if combine == CombineSpec::Zip
        && let Some(first) = spec.axes.first()
    {
        for (i, axis) in spec.axes.iter().enumerate().skip(1) {
            let (n, m) = (first.values.value.len(), axis.values.value.len());
            if n != m {
                c.error(
                    &axis.values,
                    format!("sweep.axes[{i}].values"),
                    format!("`combine: zip` takes the axes' values together, so every axis needs as many values as the first ({n}); this one has {m}"),
                );
            }
        }
    }
    let replications = match &spec.replications {
        Some(r) if r.value == 0 || r.value > REPLICATIONS_MAX => {
            c.error(r, "sweep.replications", format!("{} replications: expected 1 to {REPLICATIONS_MAX}", r.value));
            1
        }
        Some(r) => r.value,
        None => 1,
    };
    let point_count: u64 = match combine {
        _ if axes.is_empty() => 1,
        CombineSpec::Zip => axes[0].1.len() as u64,
        CombineSpec::Grid => axes.iter().fold(1u64, |n, (_, v, _)| n.saturating_mul(v.len().max(1) as u64)),
    };
    let variant_count = spec.variants.len().max(1) as u64;
    let run_count = point_count.saturating_mul(variant_count).saturating_mul(u64::from(replications));
    if run_count > RUN_COUNT_MAX {
        let message = format!(
            "the sweep has {run_count} runs ({point_count} points x {variant_count} variants x {replications} replications); at most {RUN_COUNT_MAX}: split it into several sweeps or use fewer values"
        );
        // Anchored at the first thing that multiplies the runs.
        match (spec.axes.first(), &spec.replications, spec.variants.first()) {
            (Some(a), _, _) => c.error(&a.values, "sweep", message),
            (None, Some(r), _) => c.error(r, "sweep", message),
            (None, None, Some(v)) => c.error(&v.name, "sweep", message),
            (None, None, None) => {}
        }
        // Checking each of that many variants would only take long.
        return Err(c.diagnostics);
    }
    let mut variants = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, v) in spec.variants.iter().enumerate() {
        let here = format!("sweep.variants[{i}]");
        let name = v.name.value.as_str();
        let good = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
        if !good {
            c.error(
                &v.name,
                format!("{here}.name"),
                format!("`{name}`: a variant name is 1 to 64 letters, digits, '-' and '_'"),
            );
        }
        if !names.insert(name) {
            c.error(&v.name, format!("{here}.name"), format!("`{name}` is already a variant's name"));
        }
        let mut set = Vec::new();
        for (path, value) in &v.set.0 {
            let path = path.trim();
            if let Some(axis) = overlapping(path, axes.iter().filter(|a| !a.2).map(|a| a.0.as_str())) {
                c.error(
                    &v.name,
                    format!("{here}.set"),
                    format!("`{path}` sets the field of the sweep axis `{axis}` (or a part of it, or a block around it); a variant sets other fields"),
                );
            }
            if let Some(why) = path_refused(path) {
                c.error(&v.name, format!("{here}.set"), format!("`{path}`: {why}"));
            }
            set.push((path.to_owned(), yaml_text(value)));
        }
        variants.push(VariantInfo { name: name.to_owned(), set });
    }
    if !c.is_clean() {
        return Err(c.diagnostics);
    }
    let mut points: Vec<Point> = Vec::new();
    for p in 0..point_count as usize {
        let mut point = Vec::new();
        // Grid: mixed radix with the last axis varying fastest; zip: the p-th of each.
        let mut rest = p;
        let mut picks = vec![0; axes.len()];
        for (i, (_, values, _)) in axes.iter().enumerate().rev() {
            picks[i] = if combine == CombineSpec::Zip { p } else { rest % values.len() };
            rest /= values.len().max(1);
        }
        for ((path, values, label), &k) in axes.iter().zip(&picks) {
            point.push((path.clone(), shown(&values[k]), (!label).then(|| yaml_text(&values[k]))));
        }
        points.push(point);
    }
    let info = SweepInfo {
        axes: axes
            .iter()
            .map(|(path, values, label)| AxisInfo {
                path: path.clone(),
                label: *label,
                values: values.iter().map(shown).collect(),
            })
            .collect(),
        combine: match combine {
            CombineSpec::Grid => "grid",
            CombineSpec::Zip => "zip",
        }
        .to_owned(),
        point_count: point_count as u32,
        replications,
        seeds: replication_seeds(seed, replications),
        variants,
    };
    Ok((info, points))
}

/// The first of `others` that sets the same value as `path`, a part of it or a block
/// around it (one's steps begin with the other's), compared in normal form.
fn overlapping<'a>(path: &str, others: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mine = crate::overrides::normal_steps(path)?;
    others.into_iter().find(|other| {
        crate::overrides::normal_steps(other)
            .is_some_and(|theirs| mine.starts_with(&theirs) || theirs.starts_with(&mine))
    })
}

/// Why a field may not be swept, if it may not.
fn path_refused(path: &str) -> Option<&'static str> {
    let root = path.split(['.', '[']).next().unwrap_or("");
    match root {
        "seed" => Some("the seed is not swept: replications run each point with seeds derived from the run seed"),
        "name" => Some("the name is the sweep's, not a point's"),
        "sweep" => Some("a sweep cannot set itself"),
        _ => None,
    }
}

fn check_path(c: &mut Checker, at: &Spanned<String>, field: &str) {
    if let Some(why) = path_refused(at.value.trim()) {
        c.error(at, field, format!("`{}`: {why}", at.value.trim()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_zero_keeps_the_run_seed_and_the_rest_follow_splitmix() {
        let seeds = replication_seeds(1, 3);
        let mut s = sim::SplitMix64::new(1);
        assert_eq!(seeds, vec![1, s.next_u64(), s.next_u64()]);
        assert_eq!(replication_seeds(7, 1), vec![7]);
    }
}
