//! The plots of what a run used and cost: resources against their limits, exits and
//! busy CPUs against the interrupt rate, per-function setup time and host setups.

use super::GROUPS_MAX;
use super::chart::{Axis, BarRow, Bars, Chart, Kind, LegendItem, Lines, Marker, PALETTE, Series, Swatch, color};
use super::sweep::{Sweep, group_label, replication_note, series};
use crate::schema::RunReport;
use crate::stats::{Cell, Estimate};
use plotters::prelude::*;

/// Each resource's most-used instance against its limit, in percent, over every run (the
/// worst run for a sweep), with the limit drawn at 100%.
pub(super) fn resource_chart(report: &RunReport) -> Option<Chart> {
    // name -> (used_max, limit, instances) of the run where used/limit is highest.
    let mut worst: Vec<(String, u32, u32, u32)> = Vec::new();
    for p in &report.points {
        for r in p.resources.iter().filter(|r| r.limit > 0) {
            let share = |used: u32, limit: u32| f64::from(used) / f64::from(limit);
            match worst.iter_mut().find(|w| w.0 == r.name) {
                Some(w) if share(r.used_max, r.limit) > share(w.1, w.2) => {
                    *w = (r.name.clone(), r.used_max, r.limit, r.instances)
                }
                Some(_) => {}
                None => worst.push((r.name.clone(), r.used_max, r.limit, r.instances)),
            }
        }
    }
    if worst.is_empty() {
        return None;
    }
    let rows: Vec<BarRow> = worst
        .iter()
        .map(|(name, used, limit, instances)| {
            let pct = 100.0 * f64::from(*used) / f64::from(*limit);
            let c = if pct >= 100.0 {
                PALETTE[2]
            } else if pct >= 80.0 {
                PALETTE[1]
            } else {
                PALETTE[0]
            };
            let each = if *instances > 1 { format!(" (×{instances})") } else { String::new() };
            BarRow {
                label: format!("{name}{each}"),
                segments: vec![(pct, c)],
                note: Some(format!("{used}/{limit}")),
                mark: None,
            }
        })
        .collect();
    let top = rows.iter().map(|r| r.segments[0].0).fold(0.0, f64::max);
    let mut x = Axis::fit("most-used instance, share of its limit (%)", [0.0, top.max(100.0) * 1.12], true);
    (x.lo, x.hi, x.log) = (0.0, top.max(100.0) * 1.15, false);
    let runs = report.points.len();
    let subtitle = if runs > 1 {
        format!("bars: the run (of {runs}) where the resource came closest to its limit; labels: used/limit")
    } else {
        "labels: used/limit on the most-used instance; (×N): instances the limit applies to separately".to_owned()
    };
    Some(Chart {
        name: "plot-resources",
        title: format!("{}: resource use against each limit", report.scenario.name),
        subtitle,
        kind: Kind::Bars(Bars {
            x,
            row_desc: "resource".to_owned(),
            rows,
            reference: Some((100.0, "limit".to_owned())),
        }),
        legend_header: None,
        legend: Vec::new(),
    })
}

/// Counters that count exits: `kvm.*` with `exit` in the name.
pub(super) fn is_exit_counter(name: &str) -> bool {
    name.starts_with("kvm.") && name.contains("exit")
}

/// Exits per simulated second and host CPUs busy against raised interrupts per simulated
/// second, one line per group of the sweep; only where the counters exist and there are at
/// least two interrupt rates.
pub(super) fn rate_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
    let has_exits = report.points.iter().any(|p| p.counters.iter().any(|c| is_exit_counter(&c.name) && c.value > 0));
    let has_busy = report.points.iter().any(|p| p.counters.iter().any(|c| c.name == "cpu.busy_ps" && c.value > 0));
    if !has_exits && !has_busy {
        return None;
    }
    let seconds = |p: &crate::PointReport| p.run.simulated_ns / 1e9;
    let rate = |p: &crate::PointReport| (seconds(p) > 0.0).then(|| p.conservation.raised as f64 / seconds(p));
    let exits = |p: &crate::PointReport| {
        let n: u64 = p.counters.iter().filter(|c| is_exit_counter(&c.name)).map(|c| c.value).sum();
        (seconds(p) > 0.0).then(|| n as f64 / seconds(p))
    };
    let busy = |p: &crate::PointReport| {
        let ps = p.counters.iter().find(|c| c.name == "cpu.busy_ps")?.value;
        (p.run.simulated_ns > 0.0).then(|| ps as f64 / (p.run.simulated_ns * 1000.0))
    };
    // Groups: the variant and the other grid axes, as in the percentile plot; without a
    // sweep, one group.
    let zip = report.sweep.as_ref().is_some_and(|s| s.combine == "zip");
    let mut groups: Vec<String> = Vec::new();
    // (group, mean interrupt rate, [exits/s, CPUs busy]) per cell.
    let mut points: Vec<(usize, f64, [Option<Estimate>; 2])> = Vec::new();
    for cell in cells {
        let label = group_label(cell, true, zip);
        let g = groups.iter().position(|l| *l == label).unwrap_or_else(|| {
            groups.push(label);
            groups.len() - 1
        });
        let Some(x) = Estimate::of(cell.runs.iter().map(|p| rate(p).unwrap_or(f64::NAN))) else { continue };
        let e = Estimate::of(cell.runs.iter().map(|p| exits(p).unwrap_or(f64::NAN)));
        let b = Estimate::of(cell.runs.iter().map(|p| busy(p).unwrap_or(f64::NAN)));
        points.push((g, x.mean, [e, b]));
    }
    let mut xs: Vec<f64> = points.iter().map(|p| p.1).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup_by(|a, b| (*a - *b).abs() <= 1e-9 * b.abs().max(1.0));
    if xs.len() < 2 {
        return None;
    }
    let mut all = Vec::new();
    for (g, group) in groups.iter().enumerate().take(GROUPS_MAX) {
        let mut of: Vec<_> = points.iter().filter(|p| p.0 == g).collect();
        of.sort_by(|a, b| a.1.total_cmp(&b.1));
        let prefix = if group.is_empty() { String::new() } else { format!("{group}: ") };
        let mut line = |k: usize, what: &str, marker: Marker, secondary: bool| {
            let est: Vec<(f64, Estimate)> = of.iter().filter_map(|p| Some((p.1, p.2[k]?))).collect();
            if !est.is_empty() {
                // One group: a colour per quantity; several: a colour per group.
                let c = if groups.len() == 1 { color(k) } else { color(g) };
                let mut s = series(&est, format!("{prefix}{what}"), c, marker);
                (s.dashed, s.secondary) = (secondary, secondary);
                all.push(s);
            }
        };
        if has_exits {
            line(0, "exits/s", Marker::Circle, false);
        }
        if has_busy {
            line(1, "CPUs busy", Marker::Square, has_exits);
        }
    }
    let value_axis = |desc: &str, secondary: bool| {
        let values = all
            .iter()
            .filter(|s| s.secondary == secondary)
            .flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().map(|b| b.2)));
        let mut a = Axis::fit(desc, values, true);
        if a.log {
            // Rates and shares read best from zero here.
            let hi = a.hi;
            (a.log, a.lo, a.hi) = (false, 0.0, hi);
        }
        a
    };
    let (y, y2, what) = if has_exits && has_busy {
        (
            value_axis("exits per simulated second (exits/s)", false),
            Some(value_axis("host CPUs busy (busy time / simulated time)", true)),
            "exits/s and busy host CPUs",
        )
    } else if has_exits {
        (value_axis("exits per simulated second (exits/s)", false), None, "exits/s")
    } else {
        (value_axis("host CPUs busy (busy time / simulated time)", false), None, "busy host CPUs")
    };
    let x = Axis::fit("raised interrupts per simulated second (interrupts/s)", xs.iter().copied(), false);
    let exit_names: Vec<String> = {
        let mut names: Vec<String> = Vec::new();
        for p in &report.points {
            for c in p.counters.iter().filter(|c| is_exit_counter(&c.name)) {
                if !names.contains(&c.name) {
                    names.push(c.name.clone());
                }
            }
        }
        names
    };
    let mut subtitle = String::new();
    if has_exits {
        subtitle.push_str(&format!("exits: {}", exit_names.join(" + ")));
    }
    if has_busy {
        if !subtitle.is_empty() {
            subtitle.push_str("; ");
        }
        subtitle.push_str("CPUs busy: cpu.busy_ps / simulated time");
        if has_exits {
            subtitle.push_str(" (right axis, dashed)");
        }
    }
    let legend = all
        .iter()
        .map(|s| LegendItem { label: s.label.clone(), color: s.color, swatch: Swatch::Line(s.marker, s.dashed) })
        .collect();
    Some(Chart {
        name: "plot-exits",
        title: format!("{}: {what} vs interrupt rate", report.scenario.name),
        subtitle,
        kind: Kind::Lines(Lines { x, y, y2, series: all }),
        legend_header: None,
        legend,
    })
}

/// The stage whose samples are per-function setup times (first trapped access or hypercall
/// to the last vector usable).
pub(super) const SETUP_STAGE: &str = "provision_setup";

/// The counters of host-side setup work, with their legend names: host vectors requested,
/// VFIO interrupt ioctls and IRTE writes.
pub(super) const HOST_SETUP_COUNTERS: [(&str, &str, Marker); 3] = [
    ("provision.request_irq_count", "request_irq", Marker::Circle),
    ("provision.vfio_set_irqs_count", "VFIO SET_IRQS", Marker::Triangle),
    ("provision.irte_write_count", "IRTE writes", Marker::Square),
];

/// Whether any run of the report has samples of the setup stage.
pub(super) fn has_setup_samples(report: &RunReport) -> bool {
    report.points.iter().any(|p| p.stages.iter().any(|s| s.stage == SETUP_STAGE && s.count > 0))
}

/// Drops what a log axis cannot show: points at or below zero, and band ends below the
/// axis (clamped to it). Returns whether the series kept any point.
pub(super) fn fit_to_log(s: &mut Series, y: &Axis) -> bool {
    if y.log {
        s.points.retain(|p| p.1 > 0.0);
        s.band.retain(|b| b.2 > 0.0);
        s.band.iter_mut().for_each(|b| b.1 = b.1.max(y.lo));
    }
    !s.points.is_empty()
}

/// The y axis over every series' points and bands (positive values decide whether it is
/// log), then each series fitted to it; the labels of series left with nothing to draw.
pub(super) fn value_axis_for(desc: &str, all: &mut Vec<Series>) -> (Axis, Vec<String>) {
    let values: Vec<f64> =
        all.iter().flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().flat_map(|b| [b.1, b.2]))).collect();
    let positive: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
    let y = if positive.is_empty() { Axis::fit(desc, values, true) } else { Axis::fit(desc, positive, true) };
    let mut dropped = Vec::new();
    all.retain_mut(|s| {
        let kept = fit_to_log(s, &y);
        if !kept {
            dropped.push(s.label.clone());
        }
        kept
    });
    (y, dropped)
}

/// The legend of `all`, then one line per series left out for being 0 on a log axis.
pub(super) fn legend_with_zeros(all: &[Series], dropped: &[String], categorical: bool) -> Vec<LegendItem> {
    let drawn = all.iter().map(|s| LegendItem {
        label: s.label.clone(),
        color: s.color,
        swatch: if categorical { Swatch::Mark(s.marker) } else { Swatch::Line(s.marker, s.dashed) },
    });
    let zeros = dropped.iter().map(|l| LegendItem {
        label: format!("{l}: all 0"),
        color: BLACK,
        swatch: Swatch::Mark(Marker::None),
    });
    drawn.chain(zeros).collect()
}

/// Per-function setup time (the setup stage's mean and max over the functions of a run)
/// against the first sweep axis, one colour per variant (and other-axis values), the max
/// dashed; 95% bands with replications. Only for a sweep whose runs have setup samples.
pub(super) fn setup_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
    if !has_setup_samples(report) {
        return None;
    }
    let sweep = Sweep::new(report, cells)?;
    let shown_groups = sweep.groups.len().min(GROUPS_MAX);
    let mut all = Vec::new();
    for (g, group) in sweep.groups.iter().enumerate().take(shown_groups) {
        for (what, stat, dashed, marker) in
            [("mean", "mean_ns", false, Marker::Circle), ("max", "max_ns", true, Marker::None)]
        {
            let points = sweep.line(g, &format!("latency.{SETUP_STAGE}.{stat}"));
            if points.is_empty() {
                continue;
            }
            let label = if group.is_empty() { what.to_owned() } else { format!("{group} {what}") };
            let mut s = series(&points, label, color(g), marker);
            s.dashed = dashed;
            all.push(s);
        }
    }
    if all.is_empty() {
        return None;
    }
    let (y, dropped) = value_axis_for("setup time per function (ns)", &mut all);
    let mut subtitle = format!(
        "{SETUP_STAGE}, first trap or hypercall to last vector usable: solid mean, dashed max over functions; {}",
        replication_note(report)
    );
    if shown_groups < sweep.groups.len() {
        subtitle.push_str(&format!("; the first {shown_groups} of {} line groups", sweep.groups.len()));
    }
    let legend = legend_with_zeros(&all, &dropped, sweep.x.categorical);
    let path = sweep.x.desc.split(" (").next().unwrap_or_default().to_owned();
    Some(Chart {
        name: "plot-setup",
        title: format!("{}: setup time vs {path}", report.scenario.name),
        subtitle,
        kind: Kind::Lines(Lines { x: sweep.x.clone(), y, y2: None, series: all }),
        legend_header: (!sweep.group_desc.is_empty()).then(|| sweep.group_desc.clone()),
        legend,
    })
}

/// Host setup work (vectors requested, VFIO interrupt ioctls, IRTE writes) against the
/// first sweep axis, one colour per variant and one marker per counter; drawn with the
/// setup plot, where those counters are non-zero somewhere.
pub(super) fn host_setup_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
    if !has_setup_samples(report) {
        return None;
    }
    let counted: Vec<(&str, &str, Marker)> = HOST_SETUP_COUNTERS
        .into_iter()
        .filter(|(name, _, _)| report.points.iter().any(|p| p.counters.iter().any(|c| c.name == *name && c.value > 0)))
        .collect();
    if counted.is_empty() {
        return None;
    }
    let sweep = Sweep::new(report, cells)?;
    let shown_groups = sweep.groups.len().min(GROUPS_MAX);
    let mut all = Vec::new();
    for (g, group) in sweep.groups.iter().enumerate().take(shown_groups) {
        for (k, (name, what, marker)) in counted.iter().enumerate() {
            let points = sweep.line(g, name);
            if points.is_empty() {
                continue;
            }
            let label = if group.is_empty() { (*what).to_owned() } else { format!("{group}: {what}") };
            // One group: a colour per counter; several: a colour per group.
            let c = if shown_groups == 1 { color(k) } else { color(g) };
            all.push(series(&points, label, c, *marker));
        }
    }
    let (y, dropped) = value_axis_for("host setups per run (count)", &mut all);
    if all.is_empty() {
        return None;
    }
    let names: Vec<&str> = counted.iter().map(|c| c.0).collect();
    let mut subtitle = format!("{} per run; {}", names.join(", "), replication_note(report));
    if shown_groups < sweep.groups.len() {
        subtitle.push_str(&format!("; the first {shown_groups} of {} line groups", sweep.groups.len()));
    }
    let legend = legend_with_zeros(&all, &dropped, sweep.x.categorical);
    let path = sweep.x.desc.split(" (").next().unwrap_or_default().to_owned();
    Some(Chart {
        name: "plot-setup-host",
        title: format!("{}: host setups vs {path}", report.scenario.name),
        subtitle,
        kind: Kind::Lines(Lines { x: sweep.x.clone(), y, y2: None, series: all }),
        legend_header: (!sweep.group_desc.is_empty()).then(|| sweep.group_desc.clone()),
        legend,
    })
}
