//! The latency plots: percentiles against the swept parameter, the end-to-end CDF and
//! where each cell's p99 goes stage by stage.

use super::chart::{
    Axis, BarRow, Bars, Chart, Kind, LegendItem, Lines, Marker, Series, Swatch, color, fmt_ns, text_width,
};
use super::sweep::{Sweep, cell_label, cell_label_desc, replication_note, series};
use super::{CDF_CURVES_MAX, GROUPS_MAX, LABEL_SIZE, STAGE_ROWS_MAX};
use crate::schema::RunReport;
use crate::stats::Cell;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// End-to-end p50, p99 and p99.9 against the first swept parameter, one line per variant
/// (and other-axis values) and percentile, with 95% confidence bands.
pub(super) fn latency_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
    let sweep = Sweep::new(report, cells)?;
    const PERCENTILES: [(&str, &str, Marker); 3] = [
        ("p50", "latency.end_to_end.p50_ns", Marker::Circle),
        ("p99", "latency.end_to_end.p99_ns", Marker::Triangle),
        ("p99.9", "latency.end_to_end.p999_ns", Marker::Square),
    ];
    let shown_groups = sweep.groups.len().min(GROUPS_MAX);
    let mut all = Vec::new();
    for (g, group) in sweep.groups.iter().enumerate().take(shown_groups) {
        for (k, (name, metric, marker)) in PERCENTILES.into_iter().enumerate() {
            let points = sweep.line(g, metric);
            if points.is_empty() {
                continue;
            }
            let label = if group.is_empty() { name.to_owned() } else { format!("{group} {name}") };
            // One group: a colour per percentile; several: a colour per group.
            let c = if shown_groups == 1 { color(k) } else { color(g) };
            all.push(series(&points, label, c, marker));
        }
    }
    if all.is_empty() {
        return None;
    }
    let values = all.iter().flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().flat_map(|b| [b.1, b.2])));
    let y = Axis::fit("end-to-end latency (ns)", values.filter(|v| *v > 0.0), true);
    let mut subtitle = replication_note(report);
    if shown_groups < sweep.groups.len() {
        subtitle.push_str(&format!("; the first {shown_groups} of {} line groups", sweep.groups.len()));
    }
    let swatch =
        |s: &Series| if sweep.x.categorical { Swatch::Mark(s.marker) } else { Swatch::Line(s.marker, s.dashed) };
    let legend = all.iter().map(|s| LegendItem { label: s.label.clone(), color: s.color, swatch: swatch(s) }).collect();
    let path = sweep.x.desc.split(" (").next().unwrap_or_default().to_owned();
    Some(Chart {
        name: "plot-latency",
        title: format!("{}: end-to-end latency percentiles vs {path}", report.scenario.name),
        subtitle,
        kind: Kind::Lines(Lines { x: sweep.x.clone(), y, y2: None, series: all }),
        legend_header: (!sweep.group_desc.is_empty()).then(|| sweep.group_desc.clone()),
        legend,
    })
}

/// The pooled end-to-end histogram of a cell: (upper bound ns, count), in order.
pub(super) fn pooled_histogram(cell: &Cell<'_>) -> Vec<(f64, u64)> {
    // Bucket bounds are the same quarter-octave edges in every run; key by picoseconds.
    let mut pooled: BTreeMap<u64, u64> = BTreeMap::new();
    for run in &cell.runs {
        for stage in run.stages.iter().filter(|s| s.stage == "end_to_end") {
            for b in &stage.histogram {
                *pooled.entry((b.le_ns * 1000.0).round() as u64).or_default() += b.count;
            }
        }
    }
    pooled.into_iter().map(|(le_ps, n)| (le_ps as f64 / 1000.0, n)).collect()
}

/// The CDF through a histogram's bucket bounds, in percent, starting at zero at the first
/// bucket's lower bound (a quarter octave below its upper one).
pub(super) fn cdf_points(histogram: &[(f64, u64)]) -> Vec<(f64, f64)> {
    let total: u64 = histogram.iter().map(|b| b.1).sum();
    let Some(first) = histogram.first() else { return Vec::new() };
    if total == 0 {
        return Vec::new();
    }
    let mut points = vec![(first.0 / 2f64.powf(0.25), 0.0)];
    let mut sum = 0;
    for &(le, n) in histogram {
        sum += n;
        points.push((le, 100.0 * sum as f64 / total as f64));
    }
    points
}

/// Which cells a crowded plot shows: all when at most `max`, else the first and last point
/// of each variant (at most `max` of those). The bool says whether it is a subset.
pub(super) fn representative<'c, 'a>(cells: &'c [Cell<'a>], max: usize) -> (Vec<&'c Cell<'a>>, bool) {
    if cells.len() <= max {
        return (cells.iter().collect(), false);
    }
    let mut variants: Vec<Option<&str>> = Vec::new();
    for c in cells {
        if !variants.contains(&c.variant) {
            variants.push(c.variant);
        }
    }
    let mut chosen: Vec<&Cell<'a>> = Vec::new();
    for v in variants {
        let of: Vec<&Cell<'a>> = cells.iter().filter(|c| c.variant == v).collect();
        if let (Some(first), Some(last)) = (of.first(), of.last()) {
            chosen.push(first);
            if last.index != first.index {
                chosen.push(last);
            }
        }
    }
    chosen.truncate(max);
    (chosen, true)
}

/// The end-to-end latency CDF of each cell (replications pooled), on a log latency axis.
pub(super) fn cdf_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
    let with_data: Vec<Cell<'_>> = cells.iter().filter(|c| !pooled_histogram(c).is_empty()).cloned().collect();
    let (chosen, subset) = representative(&with_data, CDF_CURVES_MAX);
    let series: Vec<Series> = chosen
        .iter()
        .enumerate()
        .map(|(i, cell)| Series {
            label: cell_label(cell),
            color: color(i),
            marker: Marker::None,
            dashed: false,
            secondary: false,
            points: cdf_points(&pooled_histogram(cell)),
            band: Vec::new(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if series.is_empty() {
        return None;
    }
    let xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    let mut x = Axis::fit("end-to-end latency (ns)", xs.iter().copied(), false);
    if !x.log {
        // Always log: a CDF's tail spans octaves even when its bulk does not.
        let (lo, hi) = (xs.iter().copied().fold(f64::INFINITY, f64::min), xs.iter().copied().fold(0.0, f64::max));
        (x.log, x.lo, x.hi) = (true, lo / 1.25, hi * 1.25);
    }
    let mut y = Axis::fit("interrupts at or below (%)", [0.0, 100.0], false);
    (y.lo, y.hi) = (0.0, 100.0);
    let runs = report.sweep.as_ref().map_or(1, |s| s.replications);
    let mut subtitle = if runs > 1 {
        format!("{runs} replications pooled (bucket counts summed); quarter-octave buckets")
    } else {
        "quarter-octave buckets".to_owned()
    };
    if subset {
        subtitle.push_str(&format!(
            "; {} of {} cells: first and last point of each variant",
            series.len(),
            with_data.len()
        ));
    }
    let legend = series
        .iter()
        .map(|s| LegendItem { label: s.label.clone(), color: s.color, swatch: Swatch::Line(Marker::None, false) })
        .collect();
    Some(Chart {
        name: "plot-cdf",
        title: format!("{}: end-to-end latency CDF", report.scenario.name),
        subtitle,
        kind: Kind::Lines(Lines { x, y, y2: None, series }),
        legend_header: cell_label_desc(report),
        legend,
    })
}

/// For each cell, the mean p99 of each stage stacked, with the end-to-end p99 marked.
pub(super) fn stage_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
    let (chosen, subset) = representative(cells, STAGE_ROWS_MAX);
    // Stages in pipeline order of first appearance, those with samples, not end_to_end.
    let mut stages: Vec<&str> = Vec::new();
    for cell in &chosen {
        for run in &cell.runs {
            for s in run.stages.iter().filter(|s| s.count > 0 && s.stage != "end_to_end") {
                if !stages.contains(&s.stage.as_str()) {
                    stages.push(&s.stage);
                }
            }
        }
    }
    if stages.is_empty() {
        return None;
    }
    let mut rows: Vec<BarRow> = chosen
        .iter()
        .map(|cell| BarRow {
            label: cell_label(cell),
            segments: stages
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((cell.estimate(&format!("latency.{s}.p99_ns"))?.mean, color(i))))
                .collect(),
            note: None,
            mark: cell.estimate("latency.end_to_end.p99_ns").map(|e| e.mean),
        })
        .collect();
    let total = |r: &BarRow| r.segments.iter().map(|s| s.0).sum::<f64>();
    let totals: Vec<f64> = rows.iter().map(total).filter(|t| *t > 0.0).collect();
    let (least, most) =
        (totals.iter().copied().fold(f64::INFINITY, f64::min), totals.iter().copied().fold(0.0, f64::max));
    // Rows more than a decade apart would leave the short ones invisible on one scale:
    // then each row shows the shares of its own stack, and says its size in words.
    let shares = totals.len() >= 2 && most / least > 10.0;
    let x = if shares {
        for r in &mut rows {
            let t = total(r);
            let mut note = format!("Σ {}", fmt_ns(t));
            if let Some(m) = r.mark.take() {
                note.push_str(&format!(", end-to-end {}", fmt_ns(m)));
            }
            r.note = Some(note);
            if t > 0.0 {
                r.segments.iter_mut().for_each(|s| s.0 *= 100.0 / t);
            }
        }
        // Room right of 100% for the notes; ticks only up to 100.
        let widest =
            rows.iter().filter_map(|r| r.note.as_deref()).map(|n| text_width(n, LABEL_SIZE)).fold(0.0, f64::max);
        let room = (widest + 16.0) / 520.0;
        Axis {
            desc: "share of the row's stacked p99s (%)".to_owned(),
            log: false,
            lo: 0.0,
            hi: 100.0 * (1.0 + room.clamp(0.15, 1.0)),
            named: (0..=5).map(|k| (20.0 * f64::from(k), format!("{}", 20 * k))).collect(),
            categorical: false,
        }
    } else {
        let ends = rows.iter().flat_map(|r| [total(r), r.mark.unwrap_or(0.0)]);
        let mut x = Axis::fit("p99 latency (ns)", ends, true);
        x.log = false;
        x
    };
    let mut legend: Vec<LegendItem> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| LegendItem { label: (*s).to_owned(), color: color(i), swatch: Swatch::Box })
        .collect();
    if rows.iter().any(|r| r.mark.is_some()) {
        legend.push(LegendItem {
            label: "end_to_end p99".to_owned(),
            color: BLACK,
            swatch: Swatch::Mark(Marker::Diamond),
        });
    }
    let mut subtitle = if shares {
        "mean p99 of each stage as a share of the row's stack (rows more than a decade apart)".to_owned()
    } else {
        "mean p99 of each stage, stacked (percentiles do not add: the stack can pass the end-to-end p99)".to_owned()
    };
    if subset {
        subtitle = format!("{} of {} cells; {subtitle}", rows.len(), cells.len());
    }
    Some(Chart {
        name: "plot-stages",
        title: format!("{}: where the p99 goes, stage by stage", report.scenario.name),
        subtitle,
        kind: Kind::Bars(Bars { x, row_desc: cell_label_desc(report).unwrap_or_default(), rows, reference: None }),
        legend_header: Some("stage".to_owned()),
        legend,
    })
}
