//! The sweep as the plots see it: cells grouped into lines by variant and the other
//! axes, with their labels and the replication note.

use super::chart::{Axis, Marker, Quantity, Series, parse_axis, shown};
use crate::schema::RunReport;
use crate::stats::{Cell, Estimate};
use plotters::prelude::*;

/// The values along x of a sweep report: its first axis (or the variants, when the sweep
/// has variants but no axis), how cells map onto it, and the groups of cells that make
/// one line each (a variant, with the values of the other grid axes).
pub(super) struct Sweep<'a> {
    pub(super) x: Axis,
    /// Each cell's x position (data units) and group index, by cell.
    pub(super) place: Vec<(f64, usize)>,
    /// Label of each group, in order of first appearance.
    pub(super) groups: Vec<String>,
    /// What the group labels are made of (`devices[0].queues · variant`).
    pub(super) group_desc: String,
    pub(super) cells: &'a [Cell<'a>],
}

/// The label of the parameters of `cell` other than the first (x) axis, and its variant.
pub(super) fn group_label(cell: &Cell<'_>, skip_first: bool, zip: bool) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !zip {
        parts.extend(cell.parameters.iter().skip(usize::from(skip_first)).map(|(_, v)| shown(v).to_owned()));
    }
    if let Some(v) = cell.variant {
        parts.push(v.to_owned());
    }
    parts.join(" · ")
}

/// A cell's parameter values and variant, for a legend or a row label.
pub(super) fn cell_label(cell: &Cell<'_>) -> String {
    let label = group_label(cell, false, false);
    match cell.runs.len() {
        _ if !label.is_empty() => label,
        1 => format!("seed {}", cell.runs[0].seed),
        n => format!("{n} runs"),
    }
}

/// What [`cell_label`]s are made of.
pub(super) fn cell_label_desc(report: &RunReport) -> Option<String> {
    let sweep = report.sweep.as_ref()?;
    let mut parts: Vec<&str> = sweep.axes.iter().map(|a| a.path.as_str()).collect();
    if !sweep.variants.is_empty() {
        parts.push("variant");
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

impl<'a> Sweep<'a> {
    pub(super) fn new(report: &RunReport, cells: &'a [Cell<'a>]) -> Option<Self> {
        let sweep = report.sweep.as_ref()?;
        let zip = sweep.combine == "zip";
        if let Some(axis) = sweep.axes.first() {
            let values: Vec<String> = axis.values.iter().map(|v| shown(v).to_owned()).collect();
            let (x, position): (Axis, Vec<f64>) = match parse_axis(&axis.values) {
                Some((numbers, kind)) => {
                    let unit = match kind {
                        Quantity::Plain => String::new(),
                        Quantity::Rate => " (per second)".to_owned(),
                        Quantity::Duration => " (ns)".to_owned(),
                    };
                    let mut x = Axis::fit(format!("{}{unit}", axis.path), numbers.iter().copied(), false);
                    x.named = numbers.iter().copied().zip(values.iter().cloned()).collect();
                    (x, numbers)
                }
                None => (Axis::categories(axis.path.clone(), &values), (0..values.len()).map(|i| i as f64).collect()),
            };
            let mut groups: Vec<String> = Vec::new();
            let mut place = Vec::new();
            for cell in cells {
                let value = cell.parameters.first().map(|(_, v)| shown(v)).unwrap_or_default();
                let at = values.iter().position(|v| v == value)?;
                let group = group_label(cell, true, zip);
                let g = groups.iter().position(|l| *l == group).unwrap_or_else(|| {
                    groups.push(group);
                    groups.len() - 1
                });
                place.push((position[at], g));
            }
            let mut desc: Vec<&str> =
                if zip { Vec::new() } else { sweep.axes.iter().skip(1).map(|a| a.path.as_str()).collect() };
            if !sweep.variants.is_empty() {
                desc.push("variant");
            }
            Some(Self { x, place, groups, group_desc: desc.join(" · "), cells })
        } else if sweep.variants.len() >= 2 {
            let names: Vec<String> = sweep.variants.iter().map(|v| v.name.clone()).collect();
            let place = cells
                .iter()
                .map(|c| Some((names.iter().position(|n| Some(n.as_str()) == c.variant)? as f64, 0)))
                .collect::<Option<Vec<_>>>()?;
            Some(Self {
                x: Axis::categories("variant", &names),
                place,
                groups: vec![String::new()],
                group_desc: String::new(),
                cells,
            })
        } else {
            None
        }
    }

    /// For group `g`: (x, estimate of `metric`) at each of its cells that has a value, in x
    /// order.
    pub(super) fn line(&self, g: usize, metric: &str) -> Vec<(f64, Estimate)> {
        let mut out: Vec<(f64, Estimate)> = self
            .cells
            .iter()
            .zip(&self.place)
            .filter(|(_, (_, group))| *group == g)
            .filter_map(|(cell, (x, _))| Some((*x, cell.estimate(metric)?)))
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }
}

/// A series through estimates at x, with its 95% band where the estimates have one.
pub(super) fn series(points: &[(f64, Estimate)], label: String, color: RGBColor, marker: Marker) -> Series {
    let band = points
        .iter()
        .filter(|(_, e)| e.half_width.is_some())
        .map(|(x, e)| {
            let (lo, hi) = e.interval();
            (*x, lo, hi)
        })
        .collect();
    Series {
        label,
        color,
        marker,
        dashed: false,
        secondary: false,
        points: points.iter().map(|(x, e)| (*x, e.mean)).collect(),
        band,
    }
}

/// How many replications the runs have, as a phrase for a subtitle.
pub(super) fn replication_note(report: &RunReport) -> String {
    match report.sweep.as_ref().map_or(1, |s| s.replications) {
        0 | 1 => "one run per point".to_owned(),
        n => format!("mean of {n} replications with 95% confidence bands"),
    }
}
