//! Unit tests of the plot descriptions, number by number, and of the drawn files.

use super::chart::{Kind, Quantity, eng, fmt_ns, linear_ticks, log_ticks, parse_axis, parse_value};
use super::latency::{cdf_chart, cdf_points, latency_chart, pooled_histogram, representative, stage_chart};
use super::raster::render;
use super::usage::{SETUP_STAGE, host_setup_chart, rate_chart, resource_chart, setup_chart};
use super::*;
use crate::schema::CounterRow;
use crate::schema::RunReport;
use crate::stats::{Cell, cells};

/// The committed fixture: 3 rates × 2 variants × 2 replications (tests/fixtures).
fn sweep() -> RunReport {
    serde_json::from_str(include_str!("../../tests/fixtures/sweep.json")).expect("the fixture is a report")
}

/// The fixture's first run as a report without a sweep.
fn single() -> RunReport {
    let mut r = sweep();
    r.sweep = None;
    r.verdicts.clear();
    r.points.truncate(1);
    r.points[0].variant = None;
    r.points[0].parameters.clear();
    r
}

/// Width and height from a PNG's IHDR, after checking the signature and decoding it all.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[12..16], b"IHDR");
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut pixels).expect("the image decodes");
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((info.width, info.height), (w, h));
    (w, h)
}

/// The RGB pixels of a PNG.
fn pixels(png: &[u8]) -> Vec<[u8; 3]> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut buf).unwrap();
    buf.chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
}

fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.into_iter().collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn axis_values_parse_as_numbers_with_units() {
    assert_eq!(parse_value("64"), Some((64.0, Quantity::Plain)));
    assert_eq!(parse_value("20k/s"), Some((20_000.0, Quantity::Rate)));
    assert_eq!(parse_value("1.5M/s"), Some((1_500_000.0, Quantity::Rate)));
    assert_eq!(parse_value("50kHz"), Some((50_000.0, Quantity::Rate)));
    assert_eq!(parse_value("100ns"), Some((100.0, Quantity::Duration)));
    assert_eq!(parse_value("2us"), Some((2_000.0, Quantity::Duration)));
    assert_eq!(parse_value("1ms"), Some((1_000_000.0, Quantity::Duration)));
    assert_eq!(parse_value("500ps"), Some((0.5, Quantity::Duration)));
    assert_eq!(parse_value("\"fifo\""), None);
    assert_eq!(parse_value("1e3"), None);
    let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(parse_axis(&v(&["100ns", "2us"])), Some((vec![100.0, 2000.0], Quantity::Duration)));
    // Mixed kinds or a word: categorical.
    assert_eq!(parse_axis(&v(&["100ns", "20k/s"])), None);
    assert_eq!(parse_axis(&v(&["lapic", "fifo"])), None);
}

#[test]
fn numbers_get_si_prefixes_and_three_digits() {
    for (v, s) in [
        (0.0, "0"),
        (500.0, "500"),
        (1500.0, "1.5k"),
        (1234.0, "1.23k"),
        (20_000.0, "20k"),
        (120_000.0, "120k"),
        (1.5e6, "1.5M"),
        (2e9, "2G"),
        (0.25, "0.25"),
        (-3000.0, "-3k"),
    ] {
        assert_eq!(eng(v), s, "{v}");
    }
}

#[test]
fn ticks_are_round_numbers_and_decades() {
    assert_eq!(linear_ticks(0.0, 108.0, 6), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
    assert_eq!(linear_ticks(0.0, 1.08, 6), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
    assert_eq!(linear_ticks(0.0, 1.08, 5), vec![0.0, 0.5, 1.0]);
    assert_eq!(linear_ticks(2.1e6, 16.2e6, 8), vec![4e6, 6e6, 8e6, 10e6, 12e6, 14e6, 16e6]);
    // Three decades: the decades alone.
    let (major, minor) = log_ticks(5.0, 20_000.0);
    assert_eq!(major, vec![10.0, 100.0, 1000.0, 10_000.0]);
    // 5..9, then 2..9 × 10, × 100, × 1000, and 20000.
    assert_eq!(minor.len(), 5 + 8 + 8 + 8 + 1);
    // Less than three decades inside: 1, 2, 5 of each.
    let (major, _) = log_ticks(1500.0, 30_000.0);
    assert_eq!(major, vec![2000.0, 5000.0, 10_000.0, 20_000.0]);
}

#[test]
fn latency_plot_has_a_line_per_variant_and_percentile_with_bands() {
    let r = sweep();
    let c = cells(&r);
    let chart = latency_chart(&r, &c).expect("a sweep has a latency plot");
    assert_eq!(chart.name, "plot-latency");
    assert_eq!(chart.title, "nvme-bare-metal: end-to-end latency percentiles vs devices[0].arrival.rate");
    assert_eq!(chart.legend_header.as_deref(), Some("variant"));
    let Kind::Lines(lines) = &chart.kind else { panic!("lines") };
    let labels: Vec<&str> = lines.series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["lapic p50", "lapic p99", "lapic p99.9", "fifo p50", "fifo p99", "fifo p99.9"]);
    assert_eq!(lines.x.desc, "devices[0].arrival.rate (per second)");
    assert_eq!(
        lines.x.named,
        [(20_000.0, "20k/s".to_owned()), (60_000.0, "60k/s".to_owned()), (120_000.0, "120k/s".to_owned())]
    );
    assert!(!lines.x.log, "20k..120k is less than a decade");
    assert_eq!(lines.y.desc, "end-to-end latency (ns)");
    // The lapic p99 line: the mean of the two replications' p99 at each rate.
    let p99 = |index: u32, variant: &str| {
        mean(
            r.points
                .iter()
                .filter(|p| p.index == index && p.variant.as_deref() == Some(variant))
                .map(|p| p.stages.iter().find(|s| s.stage == "end_to_end").unwrap().p99_ns),
        )
    };
    let lapic99 = &lines.series[1];
    let xs: Vec<f64> = lapic99.points.iter().map(|p| p.0).collect();
    assert_eq!(xs, [20_000.0, 60_000.0, 120_000.0]);
    for (i, (x, y)) in lapic99.points.iter().enumerate() {
        assert!((y - p99(i as u32, "lapic")).abs() < 1e-9, "{x}: {y}");
    }
    // Two replications: a band around every point.
    assert_eq!(lapic99.band.len(), 3);
    for ((_, lo, hi), (_, y)) in lapic99.band.iter().zip(&lapic99.points) {
        assert!(lo < y && y < hi, "{lo} < {y} < {hi}");
    }
    // p50 ≈ 1.8 µs to p99.9 ≈ 25 µs: more than a decade, so log.
    assert!(lines.y.log);
    // Without a sweep there is nothing to plot against.
    let one = single();
    assert!(latency_chart(&one, &cells(&one)).is_none());
}

#[test]
fn cdf_pools_replications_and_ends_at_100_percent() {
    let r = sweep();
    let c = cells(&r);
    let pooled = pooled_histogram(&c[0]);
    let total: u64 = pooled.iter().map(|b| b.1).sum();
    let samples: u64 = c[0].runs.iter().map(|p| p.stages.iter().find(|s| s.stage == "end_to_end").unwrap().count).sum();
    assert_eq!(total, samples);
    assert_eq!(total, 5075 + 5095);
    let chart = cdf_chart(&r, &c).expect("histograms exist");
    assert_eq!(chart.subtitle, "2 replications pooled (bucket counts summed); quarter-octave buckets");
    let Kind::Lines(lines) = &chart.kind else { panic!("lines") };
    assert!(lines.x.log);
    let labels: Vec<&str> = lines.series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(
        labels,
        ["20k/s · lapic", "20k/s · fifo", "60k/s · lapic", "60k/s · fifo", "120k/s · lapic", "120k/s · fifo"]
    );
    for s in &lines.series {
        assert_eq!(s.points.first().unwrap().1, 0.0);
        assert_eq!(s.points.last().unwrap().1, 100.0);
        assert!(s.points.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{}", s.label);
    }
    assert_eq!(
        cdf_points(&[(1000.0, 1), (1189.207, 3)]),
        [(1000.0 / 2f64.powf(0.25), 0.0), (1000.0, 25.0), (1189.207, 100.0)]
    );
}

#[test]
fn crowded_plots_show_first_and_last_point_of_each_variant() {
    let mut r = sweep();
    // 10 points × 2 variants × 2 replications.
    let template = r.points.clone();
    r.points = (0..10u32)
        .flat_map(|i| {
            template.iter().filter(|p| p.index == 0).cloned().map(move |mut p| {
                p.index = i;
                p
            })
        })
        .collect();
    let c = cells(&r);
    assert_eq!(c.len(), 20);
    let (chosen, subset) = representative(&c, CDF_CURVES_MAX);
    assert!(subset);
    let picked: Vec<(u32, Option<&str>)> = chosen.iter().map(|c| (c.index, c.variant)).collect();
    assert_eq!(picked, [(0, Some("lapic")), (9, Some("lapic")), (0, Some("fifo")), (9, Some("fifo"))]);
    let chart = cdf_chart(&r, &c).unwrap();
    assert!(chart.subtitle.ends_with("; 4 of 20 cells: first and last point of each variant"), "{}", chart.subtitle);
}

#[test]
fn stage_breakdown_stacks_mean_p99_per_stage() {
    let r = sweep();
    let c = cells(&r);
    let chart = stage_chart(&r, &c).unwrap();
    let labels: Vec<&str> = chart.legend.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(labels, ["msi_write", "remap", "queue_wait", "handler", "eoi", "end_to_end p99"]);
    let Kind::Bars(bars) = &chart.kind else { panic!("bars") };
    assert_eq!(bars.rows.len(), 6);
    assert_eq!(bars.rows[5].label, "120k/s · fifo");
    let stage_p99 =
        |stage: &str| mean(c[0].runs.iter().map(|p| p.stages.iter().find(|s| s.stage == stage).unwrap().p99_ns));
    let segments: Vec<f64> = bars.rows[0].segments.iter().map(|s| s.0).collect();
    let expected: Vec<f64> = ["msi_write", "remap", "queue_wait", "handler", "eoi"].map(stage_p99).to_vec();
    assert_eq!(segments, expected);
    assert_eq!(bars.rows[0].mark, Some(stage_p99("end_to_end")));
}

#[test]
fn stage_breakdown_shows_shares_when_rows_span_more_than_a_decade() {
    let mut r = sweep();
    // The last cell (120k/s fifo) 100 times slower in every stage.
    for p in r.points.iter_mut().filter(|p| p.index == 2 && p.variant.as_deref() == Some("fifo")) {
        p.stages.iter_mut().for_each(|s| s.p99_ns *= 100.0);
    }
    let c = cells(&r);
    let chart = stage_chart(&r, &c).unwrap();
    assert_eq!(chart.subtitle, "mean p99 of each stage as a share of the row's stack (rows more than a decade apart)");
    let Kind::Bars(bars) = &chart.kind else { panic!("bars") };
    assert_eq!(bars.x.desc, "share of the row's stacked p99s (%)");
    let stage_p99 = |cell: &Cell<'_>, stage: &str| {
        mean(cell.runs.iter().map(|p| p.stages.iter().find(|s| s.stage == stage).unwrap().p99_ns))
    };
    for (row, cell) in bars.rows.iter().zip(&c) {
        let sum: f64 = row.segments.iter().map(|s| s.0).sum();
        assert!((sum - 100.0).abs() < 1e-9, "{}: {sum}", row.label);
        assert_eq!(row.mark, None);
        let stacked: f64 =
            ["msi_write", "remap", "queue_wait", "handler", "eoi"].iter().map(|s| stage_p99(cell, s)).sum();
        let note = format!("Σ {}, end-to-end {}", fmt_ns(stacked), fmt_ns(stage_p99(cell, "end_to_end")));
        assert_eq!(row.note.as_deref(), Some(note.as_str()));
    }
    assert_eq!(fmt_ns(4505.599), "4.51 µs");
    assert_eq!(fmt_ns(850.0), "850 ns");
    assert_eq!(fmt_ns(19_100_000.0), "19.1 ms");
}

#[test]
fn resources_show_the_worst_run_against_its_limit() {
    let mut r = sweep();
    r.points[7].resources[1].used_max = 150;
    let chart = resource_chart(&r).unwrap();
    let Kind::Bars(bars) = &chart.kind else { panic!("bars") };
    let rows: Vec<(&str, f64, Option<&str>)> =
        bars.rows.iter().map(|b| (b.label.as_str(), b.segments[0].0, b.note.as_deref())).collect();
    assert_eq!(rows[0], ("x86.vectors_boot_cpu", 100.0 * 4.0 / 186.0, Some("4/186")));
    assert_eq!(rows[1], ("x86.vectors_per_cpu (×31)", 100.0 * 150.0 / 201.0, Some("150/201")));
    assert_eq!(bars.reference, Some((100.0, "limit".to_owned())));
    assert_eq!(bars.x.desc, "most-used instance, share of its limit (%)");
    let mut none = sweep();
    none.points.iter_mut().for_each(|p| p.resources.clear());
    assert!(resource_chart(&none).is_none());
}

#[test]
fn rate_plot_needs_counters_and_two_rates() {
    let r = sweep();
    let c = cells(&r);
    let chart = rate_chart(&r, &c).expect("cpu.busy_ps is counted");
    assert_eq!(chart.title, "nvme-bare-metal: busy host CPUs vs interrupt rate");
    let Kind::Lines(lines) = &chart.kind else { panic!("lines") };
    assert!(lines.y2.is_none());
    assert_eq!(lines.x.desc, "raised interrupts per simulated second (interrupts/s)");
    assert_eq!(lines.y.desc, "host CPUs busy (busy time / simulated time)");
    let lapic = &lines.series[0];
    assert_eq!(lapic.label, "lapic: CPUs busy");
    // 2 ms runs: raised / 0.002 s, busy ps / 2e9 ps.
    assert_eq!(lapic.points[0].0, mean([5084.0 / 0.002, 5097.0 / 0.002]));
    assert_eq!(lapic.points[0].1, mean([6_660_255_390.0 / 2e9, 6_688_179_442.0 / 2e9]));
    // Exits counted too: a second axis for the busy CPUs, dashed.
    let mut guest = sweep();
    for (i, p) in guest.points.iter_mut().enumerate() {
        p.counters.push(CounterRow {
            name: "kvm.test_exit_count".into(),
            unit: "count".into(),
            value: 100 * i as u64 + 1,
            description: String::new(),
        });
    }
    let gc = cells(&guest);
    let chart = rate_chart(&guest, &gc).unwrap();
    assert_eq!(chart.title, "nvme-bare-metal: exits/s and busy host CPUs vs interrupt rate");
    assert_eq!(
        chart.subtitle,
        "exits: kvm.hlt_exit_count + kvm.test_exit_count; CPUs busy: cpu.busy_ps / simulated time (right axis, dashed)"
    );
    let Kind::Lines(lines) = &chart.kind else { panic!("lines") };
    assert_eq!(lines.y.desc, "exits per simulated second (exits/s)");
    assert!(lines.y2.is_some());
    let kinds: Vec<(&str, bool, bool)> =
        lines.series.iter().map(|s| (s.label.as_str(), s.secondary, s.dashed)).collect();
    assert_eq!(
        kinds,
        [
            ("lapic: exits/s", false, false),
            ("lapic: CPUs busy", true, true),
            ("fifo: exits/s", false, false),
            ("fifo: CPUs busy", true, true)
        ]
    );
    assert_eq!(lines.series[0].points[0].1, mean([1.0 / 0.002, 101.0 / 0.002]));
    // No such counters: no plot; one rate: no plot.
    let mut bare = sweep();
    bare.points.iter_mut().for_each(|p| p.counters.clear());
    assert!(rate_chart(&bare, &cells(&bare)).is_none());
    let one = single();
    assert!(rate_chart(&one, &cells(&one)).is_none());
}

#[test]
fn plots_render_as_png_and_svg_with_their_text() {
    let r = sweep();
    let plots = plots(&r).unwrap();
    let names: Vec<&str> = plots.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["plot-latency", "plot-cdf", "plot-stages", "plot-resources", "plot-exits"]);
    let axis_text = [
        "end-to-end latency (ns)",
        "interrupts at or below (%)",
        "p99 latency (ns)",
        "most-used instance, share of its limit (%)",
        "raised interrupts per simulated second (interrupts/s)",
    ];
    for (p, axis) in plots.iter().zip(axis_text) {
        assert_eq!(png_size(&p.png), (WIDTH, HEIGHT), "{}", p.name);
        assert!(p.svg.starts_with("<svg width=\"960\" height=\"560\" viewBox=\"0 0 960 560\""), "{}", p.name);
        assert!(p.svg.contains(&format!("\n{}\n", p.title)), "{}: title", p.name);
        assert!(p.svg.contains(&format!("\n{axis}\n")), "{}: axis {axis}", p.name);
        assert!(p.svg.contains("font-family=\"DejaVu Sans, sans-serif\""));
        let px = pixels(&p.png);
        assert_eq!(px[0], [255, 255, 255], "{}: white background", p.name);
        // The title is drawn: dark text pixels in its band (rows 8 to 30).
        let dark = (8..30)
            .flat_map(|y| (0..WIDTH as usize).map(move |x| y * WIDTH as usize + x))
            .filter(|&i| px[i][0] < 64)
            .count();
        assert!(dark >= 200, "{}: {dark} dark pixels in the title band", p.name);
    }
    assert!(plots[0].svg.contains("\nlapic p99.9\n") && plots[0].svg.contains("\n120k/s\n"));
    assert!(plots[3].svg.contains("\n4/201\n"));
    // The latency lines are drawn in the first palette colour.
    assert!(pixels(&plots[0].png).contains(&[0x4e, 0x79, 0xa7]));
    // Drawing is deterministic.
    assert_eq!(plots, super::plots(&r).unwrap());
}

#[test]
fn a_single_run_has_the_plots_its_data_allows() {
    let plots = plots(&single()).unwrap();
    let names: Vec<&str> = plots.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["plot-cdf", "plot-stages", "plot-resources"]);
    assert!(plots[0].svg.contains("\nseed 1\n"), "the one curve is the run");
    assert!(super::plots(&RunReport { points: Vec::new(), ..single() }).unwrap().is_empty());
}

#[test]
fn tall_bar_charts_grow_to_fit_their_rows() {
    let mut r = sweep();
    let template = r.points[0].clone();
    r.sweep.as_mut().unwrap().variants.clear();
    r.points = (0..24u32)
        .map(|i| {
            let mut p = template.clone();
            p.index = i;
            p.variant = None;
            p
        })
        .collect();
    let c = cells(&r);
    let chart = stage_chart(&r, &c).unwrap();
    assert_eq!(chart.size(), (WIDTH, TITLE_HEIGHT + 90 + 30 * 24));
    let p = render(&chart).unwrap();
    assert_eq!(png_size(&p.png), (960, 868));
    assert!(p.svg.starts_with("<svg width=\"960\" height=\"868\""));
}

/// The fixture with a setup stage and host-setup counters in every run, from closed
/// forms: N = 16 (index + 1) vectors; mean setup 10^(5 + index) ns plus 1 µs in the
/// second replication, max = mean + 500 ns; request_irq N (lapic) or N(N+1)/2 (fifo);
/// VFIO SET_IRQS 0 (lapic) or N (fifo); IRTE writes 2N.
fn with_setup() -> RunReport {
    let mut r = sweep();
    for p in &mut r.points {
        let n = 16 * u64::from(p.index + 1);
        let rep = if p.seed == 1 { 0.0 } else { 1000.0 };
        let mean = 10f64.powi(5 + p.index as i32) + rep;
        let mut stage = p.stages[0].clone();
        stage.stage = SETUP_STAGE.to_owned();
        (stage.count, stage.mean_ns, stage.max_ns) = (4, mean, mean + 500.0);
        p.stages.push(stage);
        let fifo = p.variant.as_deref() == Some("fifo");
        for (name, value) in [
            ("provision.request_irq_count", if fifo { n * (n + 1) / 2 } else { n }),
            ("provision.vfio_set_irqs_count", if fifo { n } else { 0 }),
            ("provision.irte_write_count", 2 * n),
        ] {
            p.counters.push(CounterRow { name: name.into(), unit: "count".into(), value, description: String::new() });
        }
    }
    r
}

#[test]
fn setup_plots_exist_exactly_when_the_stage_has_samples() {
    let r = sweep();
    let c = cells(&r);
    assert!(setup_chart(&r, &c).is_none() && host_setup_chart(&r, &c).is_none(), "no setup stage");
    // The stage present without samples (as in a run that provisions nothing).
    let mut empty = with_setup();
    for p in &mut empty.points {
        let s = p.stages.iter_mut().find(|s| s.stage == SETUP_STAGE).unwrap();
        (s.count, s.mean_ns, s.max_ns) = (0, f64::NAN, f64::NAN);
    }
    let ec = cells(&empty);
    assert!(setup_chart(&empty, &ec).is_none() && host_setup_chart(&empty, &ec).is_none());
    let names: Vec<String> = plots(&empty).unwrap().into_iter().map(|p| p.name).collect();
    assert!(!names.iter().any(|n| n.starts_with("plot-setup")), "{names:?}");
    // With samples: both, after the other plots.
    let full = with_setup();
    let names: Vec<String> = plots(&full).unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        ["plot-latency", "plot-cdf", "plot-stages", "plot-resources", "plot-exits", "plot-setup", "plot-setup-host"]
    );
    // No host-setup counters: the setup plot alone.
    let mut bare = with_setup();
    bare.points.iter_mut().for_each(|p| p.counters.retain(|c| !c.name.starts_with("provision.")));
    let bc = cells(&bare);
    assert!(setup_chart(&bare, &bc).is_some() && host_setup_chart(&bare, &bc).is_none());
    // Without a sweep there is no axis to plot against.
    let mut one = with_setup();
    one.sweep = None;
    one.points.truncate(1);
    (one.points[0].variant, one.points[0].parameters) = (None, Vec::new());
    assert!(setup_chart(&one, &cells(&one)).is_none());
}

#[test]
fn setup_plot_points_are_the_reports_numbers() {
    let r = with_setup();
    let c = cells(&r);
    let chart = setup_chart(&r, &c).unwrap();
    assert_eq!(chart.title, "nvme-bare-metal: setup time vs devices[0].arrival.rate");
    assert_eq!(chart.legend_header.as_deref(), Some("variant"));
    let Kind::Lines(lines) = &chart.kind else { panic!("lines") };
    let labels: Vec<(&str, bool)> = lines.series.iter().map(|s| (s.label.as_str(), s.dashed)).collect();
    assert_eq!(labels, [("lapic mean", false), ("lapic max", true), ("fifo mean", false), ("fifo max", true)]);
    assert_eq!(lines.y.desc, "setup time per function (ns)");
    // 1e5 to 1e7 ns: log; the rates 20k..120k: less than a decade, linear.
    assert!(lines.y.log && !lines.x.log);
    let of = |index: u32, variant: &str, field: fn(&crate::schema::StageSummary) -> f64| {
        mean(
            r.points
                .iter()
                .filter(|p| p.index == index && p.variant.as_deref() == Some(variant))
                .map(|p| field(p.stages.iter().find(|s| s.stage == SETUP_STAGE).unwrap())),
        )
    };
    for (s, variant, field) in [
        (&lines.series[0], "lapic", (|s: &crate::schema::StageSummary| s.mean_ns) as fn(&_) -> f64),
        (&lines.series[1], "lapic", |s| s.max_ns),
        (&lines.series[3], "fifo", |s| s.max_ns),
    ] {
        let xs: Vec<f64> = s.points.iter().map(|p| p.0).collect();
        assert_eq!(xs, [20_000.0, 60_000.0, 120_000.0], "{}", s.label);
        for (i, (_, y)) in s.points.iter().enumerate() {
            assert_eq!(*y, of(i as u32, variant, field), "{} at {i}", s.label);
        }
        // Two replications: a band around every point.
        assert_eq!(s.band.len(), 3);
        assert!(s.band.iter().zip(&s.points).all(|((_, lo, hi), (_, y))| lo < y && y < hi), "{}", s.label);
    }
    // The closed form: 10^(5 + i) + (0 + 1000) / 2.
    assert_eq!(lines.series[0].points[2].1, 1e7 + 500.0);
    assert_eq!(lines.series[1].points[0].1, 1e5 + 500.0 + 500.0);

    let host = host_setup_chart(&r, &c).unwrap();
    assert_eq!(host.title, "nvme-bare-metal: host setups vs devices[0].arrival.rate");
    let Kind::Lines(lines) = &host.kind else { panic!("lines") };
    let labels: Vec<&str> = lines.series.iter().map(|s| s.label.as_str()).collect();
    // lapic's VFIO count is 0 everywhere: not on the log axis, said in the legend.
    assert_eq!(
        labels,
        ["lapic: request_irq", "lapic: IRTE writes", "fifo: request_irq", "fifo: VFIO SET_IRQS", "fifo: IRTE writes"]
    );
    assert_eq!(host.legend.last().unwrap().label, "lapic: VFIO SET_IRQS: all 0");
    assert!(lines.y.log);
    let counter = |index: u32, variant: &str, name: &str| {
        mean(
            r.points
                .iter()
                .filter(|p| p.index == index && p.variant.as_deref() == Some(variant))
                .map(|p| p.counters.iter().find(|c| c.name == name).unwrap().value as f64),
        )
    };
    for (s, variant, name) in [
        (&lines.series[0], "lapic", "provision.request_irq_count"),
        (&lines.series[2], "fifo", "provision.request_irq_count"),
        (&lines.series[3], "fifo", "provision.vfio_set_irqs_count"),
    ] {
        let ys: Vec<f64> = s.points.iter().map(|p| p.1).collect();
        assert_eq!(ys, (0..3).map(|i| counter(i, variant, name)).collect::<Vec<_>>(), "{}", s.label);
    }
    // N(N+1)/2 against N for N = 16, 32, 48.
    assert_eq!(lines.series[2].points.iter().map(|p| p.1).collect::<Vec<_>>(), [136.0, 528.0, 1176.0]);
    assert_eq!(lines.series[0].points.iter().map(|p| p.1).collect::<Vec<_>>(), [16.0, 32.0, 48.0]);

    // Drawn with their text.
    register_font().unwrap();
    for chart in [chart, host] {
        let p = render(&chart).unwrap();
        assert_eq!(png_size(&p.png), chart.size());
        assert!(p.svg.contains(&format!("\n{}\n", p.title)), "{}", p.name);
    }
}

/// Every run: 13 raised = 10 delivered (4 of them misrouted: 3 to another tenant, 1 to the
/// host) + 2 lost + 1 in flight. The bar: 6 delivered as meant, 3, 1, 2 and 1; nothing
/// misrouted within the guest, so no such segment or legend entry.
#[test]
fn outcome_bars_split_every_raised_interrupt() {
    use super::outcome::outcome_chart;
    let mut r = sweep();
    assert!(outcome_chart(&r, &cells(&r)).is_none(), "no guest wrote its own messages");
    for p in &mut r.points {
        p.conservation = crate::schema::Conservation { raised: 13, delivered: 10, lost: 2, merged: 0, in_flight: 1 };
        for (name, value) in [
            ("guest.vm0.direct_misrouted_count", 4),
            ("guest.vm0.direct_misrouted_own_count", 0),
            ("guest.vm0.direct_misrouted_tenant_count", 3),
            ("guest.vm0.direct_misrouted_host_count", 1),
        ] {
            p.counters.push(CounterRow { name: name.into(), unit: "count".into(), value, description: String::new() });
        }
    }
    let c = cells(&r);
    let chart = outcome_chart(&r, &c).unwrap();
    let Kind::Bars(bars) = &chart.kind else { panic!("bars") };
    assert_eq!(bars.rows.len(), 6);
    let lengths: Vec<f64> = bars.rows[0].segments.iter().map(|s| s.0).collect();
    assert_eq!(lengths, [6.0, 3.0, 1.0, 2.0, 1.0]);
    assert_eq!(bars.rows[0].note.as_deref(), Some("3 + 1 + 2 + 1"));
    let legend: Vec<&str> = chart.legend.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(
        legend,
        [
            "delivered as meant",
            "delivered to another tenant",
            "delivered to the host",
            "lost (remapping fault or other)",
            "merged or still pending"
        ]
    );
}

/// A table whose featured row `a` has the share (i+1)/800 and the value 10 (i+1) at point
/// i in both replications: against the rate axis 20k, 60k, 120k (the baseline variant),
/// the share in percent 0.125, 0.25, 0.375 solid, the value 10, 20, 30 dashed on the right
/// with zero-width bands.
#[test]
fn a_tables_featured_row_is_drawn_against_the_sweep_axis() {
    use super::outcome::table_row_chart;
    let mut r = sweep();
    for p in &mut r.points {
        let i = p.index + 1;
        p.tables = vec![crate::schema::TextTable {
            name: "model: costs".into(),
            text: String::new(),
            columns: ["row", "share", "lost"].map(str::to_owned).to_vec(),
            rows: vec![vec!["a".into(), format!("{i}/800"), format!("{}", 10 * i)]],
            narrow: true,
            roles: ["key", "share", "mean"].map(str::to_owned).to_vec(),
            plot_row: vec!["a".into()],
        }];
    }
    let c = cells(&r);
    let chart = table_row_chart(&r, &c).unwrap();
    let Kind::Lines(lines) = &chart.kind else { panic!("lines") };
    assert_eq!(lines.series.len(), 2);
    assert_eq!(lines.series[0].label, "share (%)");
    assert_eq!(lines.series[0].points, [(20_000.0, 0.125), (60_000.0, 0.25), (120_000.0, 0.375)]);
    assert!(!lines.series[0].secondary && lines.series[1].secondary && lines.series[1].dashed);
    assert_eq!(lines.series[1].points, [(20_000.0, 10.0), (60_000.0, 20.0), (120_000.0, 30.0)]);
    assert_eq!(lines.series[1].band, [(20_000.0, 10.0, 10.0), (60_000.0, 20.0, 20.0), (120_000.0, 30.0, 30.0)]);
    assert_eq!(chart.title, "nvme-bare-metal: a vs devices[0].arrival.rate");
    // The same row everywhere: nothing to draw against the axis.
    for p in &mut r.points {
        p.tables[0].rows[0] = vec!["a".into(), "1/800".into(), "10".into()];
    }
    assert!(table_row_chart(&r, &cells(&r)).is_none());
}
