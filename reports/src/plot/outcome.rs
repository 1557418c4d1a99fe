//! The plots of where interrupts ended up when guests wrote their own messages: the outcome
//! of every raised interrupt per cell (delivered where it was meant to go, misrouted within
//! the sender's guest, to another tenant or to the host, lost, still pending), and a
//! model table's featured row (`TextTable::plot_row`: a share and its means over the
//! replications) against the first sweep axis.

use super::chart::{Axis, BarRow, Bars, Chart, Kind, LegendItem, Lines, Marker, Swatch, color};
use super::sweep::{Sweep, cell_label, cell_label_desc, replication_note, series};
use crate::replicated::{Role, Value, summaries};
use crate::schema::{PointReport, RunReport};
use crate::stats::{Cell, Estimate};

/// The misroute counters of a guest writing its own messages, by who received them: their
/// names end so (`guest.G.direct_misrouted_own_count`, …), with the legend's words.
const MISROUTED: [(&str, &str); 3] = [
    ("direct_misrouted_own_count", "misrouted within the sender's guest"),
    ("direct_misrouted_tenant_count", "delivered to another tenant"),
    ("direct_misrouted_host_count", "delivered to the host"),
];

/// Σ of the counters whose names end with `suffix`, over the guests.
fn sum_of(p: &PointReport, suffix: &str) -> f64 {
    p.counters.iter().filter(|c| c.name.starts_with("guest.") && c.name.ends_with(suffix)).map(|c| c.value as f64).sum()
}

/// Each run's raised interrupts split into: delivered as meant (delivered less every
/// misroute), the three misroutes, lost, and merged or still in flight. They add up to
/// `raised` (conservation).
fn outcome(p: &PointReport) -> [f64; 6] {
    let c = &p.conservation;
    let misrouted = sum_of(p, "direct_misrouted_count");
    let split = MISROUTED.map(|(suffix, _)| sum_of(p, suffix));
    // Without tenants a guest's misroutes are not split: count them within its guest.
    let unsplit = misrouted - split.iter().sum::<f64>();
    [
        c.delivered as f64 - misrouted,
        split[0] + unsplit,
        split[1],
        split[2],
        c.lost as f64,
        (c.merged + c.in_flight) as f64,
    ]
}

/// The outcome of every raised interrupt, one stacked bar per cell (means over its
/// replications); only where a guest wrote its own messages (a `direct_misrouted_count`
/// counter exists).
pub(super) fn outcome_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
    let direct = report
        .points
        .iter()
        .any(|p| p.counters.iter().any(|c| c.name.starts_with("guest.") && c.name.ends_with("direct_misrouted_count")));
    if !direct || cells.is_empty() {
        return None;
    }
    let names: [&str; 6] = [
        "delivered as meant",
        MISROUTED[0].1,
        MISROUTED[1].1,
        MISROUTED[2].1,
        "lost (remapping fault or other)",
        "merged or still pending",
    ];
    let means: Vec<[f64; 6]> = cells
        .iter()
        .map(|cell| {
            let per: Vec<[f64; 6]> = cell.runs.iter().map(|p| outcome(p)).collect();
            std::array::from_fn(|k| Estimate::of(per.iter().map(|o| o[k])).map_or(0.0, |e| e.mean))
        })
        .collect();
    let used: Vec<usize> = (0..6).filter(|&k| means.iter().any(|m| m[k] > 0.0)).collect();
    let rows: Vec<BarRow> = cells
        .iter()
        .zip(&means)
        .map(|(cell, m)| BarRow {
            label: cell_label(cell),
            segments: used.iter().map(|&k| (m[k], color(k))).collect(),
            note: Some(
                used.iter()
                    .skip(1)
                    .filter(|&&k| m[k] > 0.0)
                    .map(|&k| format!("{}", m[k]))
                    .collect::<Vec<_>>()
                    .join(" + "),
            )
            .filter(|n| !n.is_empty()),
            mark: None,
        })
        .collect();
    let most = means.iter().map(|m| m.iter().sum::<f64>()).fold(0.0, f64::max);
    let mut x = Axis::fit("interrupts raised in the run (mean over its replications)", [0.0, most], true);
    x.hi = most * 1.35;
    let legend =
        used.iter().map(|&k| LegendItem { label: names[k].to_owned(), color: color(k), swatch: Swatch::Box }).collect();
    Some(Chart {
        name: "plot-outcome",
        title: format!("{}: where the raised interrupts went", report.scenario.name),
        subtitle: format!(
            "every raised interrupt, stacked; labels: the segments after the first; {}",
            match report.sweep.as_ref().map_or(1, |s| s.replications) {
                0 | 1 => "one run per cell".to_owned(),
                n => format!("means of {n} replications"),
            }
        ),
        kind: Kind::Bars(Bars { x, row_desc: cell_label_desc(report).unwrap_or_default(), rows, reference: None }),
        legend_header: Some("outcome".to_owned()),
        legend,
    })
}

/// The featured row of a table summarised over the replications (its `plot_row`) against
/// the first sweep axis: its share columns solid on the left axis (percent), its means
/// dashed with their 95% bands on the right. Only for a sweep with an axis and a table whose
/// row changes across it.
pub(super) fn table_row_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
    let sweep = Sweep::new(report, cells)?;
    if report.sweep.as_ref()?.axes.is_empty() {
        return None;
    }
    let (summary, featured) = summaries(report).into_iter().find_map(|s| {
        let first = report.points.iter().flat_map(|p| &p.tables).find(|t| t.name == s.name)?;
        (!first.plot_row.is_empty() && !s.same).then(|| (s, first.plot_row.clone()))
    })?;
    let shares: Vec<&str> = summary.columns.iter().filter(|c| c.1 == Role::Share).map(|c| c.0).collect();
    let means: Vec<&str> = summary.columns.iter().filter(|c| c.1 == Role::Mean).map(|c| c.0).collect();
    // (x, the row's values) of each cell of the first group that has the row.
    let mut at: Vec<(f64, &[Value])> = Vec::new();
    for b in &summary.blocks {
        let i = cells.iter().position(|c| c.index == b.cell.index && c.variant == b.cell.variant)?;
        let (x, group) = sweep.place[i];
        if group != 0 {
            continue;
        }
        if let Some(r) = b.rows.iter().find(|r| r.keys == featured) {
            at.push((x, &r.values));
        }
    }
    if at.len() < 2 {
        return None;
    }
    at.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut all = Vec::new();
    let (mut s_k, mut m_k) = (0, 0);
    for k in 0..at[0].1.len() {
        let points: Vec<(f64, Estimate)> = at
            .iter()
            .filter_map(|(x, v)| match &v[k] {
                Value::Share(Some((f, _))) => Some((*x, Estimate { n: 1, mean: 100.0 * f, half_width: None })),
                Value::Mean(Some(e)) => Some((*x, *e)),
                _ => None,
            })
            .collect();
        let share = matches!(at[0].1[k], Value::Share(_));
        let (label, c) = if share {
            s_k += 1;
            (format!("{} (%)", shares.get(s_k - 1).copied().unwrap_or_default()), color(s_k - 1))
        } else {
            m_k += 1;
            (means.get(m_k - 1).copied().unwrap_or_default().to_owned(), color(shares.len() + m_k - 1))
        };
        if points.is_empty() {
            continue;
        }
        let mut s = series(&points, label, c, if share { Marker::Circle } else { Marker::Square });
        (s.dashed, s.secondary) = (!share, !share);
        all.push(s);
    }
    // Series that coincide (a count that equals another in every run) are drawn once,
    // their names joined.
    let mut merged: Vec<super::chart::Series> = Vec::new();
    for s in all {
        match merged.iter_mut().find(|m| m.secondary == s.secondary && m.points == s.points && m.band == s.band) {
            Some(m) => m.label = format!("{} = {}", m.label, s.label),
            None => merged.push(s),
        }
    }
    let all = merged;
    let axis = |secondary: bool, desc: String| {
        let values = all
            .iter()
            .filter(|s| s.secondary == secondary)
            .flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().flat_map(|b| [b.1, b.2])));
        let mut a = Axis::fit(desc, values, true);
        if a.log {
            (a.log, a.lo) = (false, 0.0);
        }
        a
    };
    let y = axis(false, format!("{} (% of the population)", shares.join(", ")));
    let y2 = Some(axis(true, format!("{} (mean; dashed)", means.join(", "))));
    let legend = all
        .iter()
        .map(|s| LegendItem { label: s.label.clone(), color: s.color, swatch: Swatch::Line(s.marker, s.dashed) })
        .collect();
    let path = sweep.x.desc.split(" (").next().unwrap_or_default().to_owned();
    // The row's detail (its name in words) where it has one, else its key.
    let detail = summary
        .blocks
        .iter()
        .flat_map(|b| &b.rows)
        .find(|r| r.keys == featured)
        .and_then(|r| r.details.first().cloned())
        .map_or_else(|| featured.join(" "), |d| format!("{d} ({})", featured.join(" ")));
    Some(Chart {
        name: "plot-table",
        title: format!("{}: {detail} vs {path}", report.scenario.name),
        subtitle: format!(
            "{}; solid: shares (left), dashed: means (right); {}",
            summary.name.rsplit(": ").next().unwrap_or(summary.name),
            replication_note(report)
        ),
        kind: Kind::Lines(Lines { x: sweep.x.clone(), y, y2, series: all }),
        legend_header: None,
        legend,
    })
}
