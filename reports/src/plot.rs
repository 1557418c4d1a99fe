//! Plots of a report, each as a PNG and an SVG drawn from the same description: latency
//! percentiles against the swept parameter, the end-to-end latency CDF, where each cell's p99
//! goes stage by stage, resource use against every limit, exits and busy CPUs against the
//! interrupt rate, and the per-function setup time (the `provision_setup` stage) and host
//! setup counters against the swept parameter. A plot is drawn only when the report has
//! its data.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (registered once with plotters'
//! `ab_glyph` font table), so a machine without any system font draws the same pictures.
//! Like the rest of the crate this module speaks metric names only: stages, resources and
//! counters are whatever the report holds.
//!
//! Each plot is first described as data (a `Chart`: axes with their ticks, series, bars and
//! legend entries) and then drawn twice, once per backend; the descriptions are what the
//! unit tests check number by number.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};

use crate::schema::RunReport;
use crate::stats::{Cell, Estimate, cells};

/// Width of every plot, in pixels (PNG) and user units (SVG).
pub const WIDTH: u32 = 960;
/// Height of a plot unless its rows or legend need more.
pub const HEIGHT: u32 = 560;

/// The most curves in the CDF plot before it shows a representative subset.
const CDF_CURVES_MAX: usize = 8;
/// The most rows in the stage breakdown before it shows a representative subset.
const STAGE_ROWS_MAX: usize = 24;
/// The most line groups (variants × other axes) in the percentile plot.
const GROUPS_MAX: usize = 8;

/// The font family every text uses, registered from the embedded font. The name is also
/// the SVG's `font-family`: a viewer with DejaVu Sans draws exactly the measured text, any
/// other falls back to its sans-serif.
const FONT: &str = "DejaVu Sans, sans-serif";
const TITLE_SIZE: f64 = 19.0;
const SUBTITLE_SIZE: f64 = 14.0;
const LABEL_SIZE: f64 = 13.0;
const DESC_SIZE: f64 = 15.0;
const LEGEND_SIZE: f64 = 13.0;
/// Height of the title block (title and one subtitle line).
const TITLE_HEIGHT: u32 = 58;
/// Height of one legend line.
const LEGEND_LINE: u32 = 20;

/// One rendered plot.
#[derive(Clone, PartialEq)]
pub struct Plot {
    /// File stem (`plot-latency`): the files are `<name>.png` and `<name>.svg`.
    pub name: String,
    /// What it shows and for which scenario, as drawn at its top.
    pub title: String,
    /// The PNG file.
    pub png: Vec<u8>,
    /// The SVG file (text drawn as `<text>` in the `sans-serif` family).
    pub svg: String,
}

impl fmt::Debug for Plot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plot")
            .field("name", &self.name)
            .field("title", &self.title)
            .field("png", &format_args!("{} bytes", self.png.len()))
            .field("svg", &format_args!("{} bytes", self.svg.len()))
            .finish()
    }
}

/// Every plot the report has data for, in the order a reader wants them: latency
/// percentiles against the swept parameter, the latency CDF, the per-stage p99 breakdown,
/// resource use against the limits, exits or busy CPUs against the interrupt rate, and the
/// setup time and host setups against the swept parameter.
pub fn plots(report: &RunReport) -> Result<Vec<Plot>, String> {
    register_font()?;
    charts(report).iter().map(render).collect()
}

/// Registers the embedded DejaVu Sans as plotters' `sans-serif`, once per process.
fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans is not a valid TrueType font".to_owned())
        })
        .clone()
}

/// The descriptions of every plot the report has data for.
fn charts(report: &RunReport) -> Vec<Chart> {
    let cells = cells(report);
    [
        latency_chart(report, &cells),
        cdf_chart(report, &cells),
        stage_chart(report, &cells),
        resource_chart(report),
        rate_chart(report, &cells),
        setup_chart(report, &cells),
        host_setup_chart(report, &cells),
    ]
    .into_iter()
    .flatten()
    .collect()
}

// ---------------------------------------------------------------------------------------
// Descriptions
// ---------------------------------------------------------------------------------------

/// A plot as data: what to draw, before any backend.
#[derive(Debug, Clone)]
struct Chart {
    name: &'static str,
    title: String,
    subtitle: String,
    kind: Kind,
    legend_header: Option<String>,
    legend: Vec<LegendItem>,
}

#[derive(Debug, Clone)]
enum Kind {
    Lines(Lines),
    Bars(Bars),
}

/// Lines (and confidence bands) over a numeric or categorical x axis.
#[derive(Debug, Clone)]
struct Lines {
    x: Axis,
    y: Axis,
    /// A second y axis on the right, for series marked `secondary`.
    y2: Option<Axis>,
    series: Vec<Series>,
}

/// Horizontal bars, one row per entry, top to bottom.
#[derive(Debug, Clone)]
struct Bars {
    x: Axis,
    /// What the rows are (drawn as the y axis description).
    row_desc: String,
    rows: Vec<BarRow>,
    /// A vertical reference line (x value, label), e.g. the 100% limit.
    reference: Option<(f64, String)>,
}

#[derive(Debug, Clone)]
struct BarRow {
    label: String,
    /// Stacked segments, left to right: (length, colour).
    segments: Vec<(f64, RGBColor)>,
    /// Text written just right of the bar.
    note: Option<String>,
    /// A black diamond at this x (e.g. the end-to-end p99).
    mark: Option<f64>,
}

#[derive(Debug, Clone)]
struct Series {
    label: String,
    color: RGBColor,
    marker: Marker,
    dashed: bool,
    /// Drawn against the right-hand axis.
    secondary: bool,
    /// (x, y) in data units, in x order.
    points: Vec<(f64, f64)>,
    /// The 95% interval at each x: (x, low, high); empty without replications.
    band: Vec<(f64, f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Circle,
    Triangle,
    Square,
    Diamond,
}

#[derive(Debug, Clone)]
struct LegendItem {
    label: String,
    color: RGBColor,
    swatch: Swatch,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Swatch {
    /// A line with a marker.
    Line(Marker, bool),
    /// A filled box (a bar segment).
    Box,
    /// A marker alone.
    Mark(Marker),
}

/// One axis: description, scale, range in data units and the ticks it prefers.
#[derive(Debug, Clone)]
struct Axis {
    desc: String,
    log: bool,
    lo: f64,
    hi: f64,
    /// Ticks at the data's own values with their own labels (the sweep's values as
    /// written), used when they do not crowd each other; always for a categorical axis.
    named: Vec<(f64, String)>,
    categorical: bool,
}

/// Tableau 10: distinct hues that stay apart for most colour-blind readers.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0xba, 0xb0, 0xac),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

// ---------------------------------------------------------------------------------------
// Axis values and numbers
// ---------------------------------------------------------------------------------------

/// What a sweep axis's values are, when every one of them parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quantity {
    Plain,
    Rate,
    Duration,
}

/// A sweep value as a number: `64`, `1.5`, a rate (`20k/s`, `1.5M/s`, `50kHz`, per second)
/// or a duration (`100ns`, `2us`, `1ms`, in nanoseconds). `None` for anything else.
fn parse_value(text: &str) -> Option<(f64, Quantity)> {
    let text = text.trim().trim_matches('"').trim_matches('\'').trim();
    let end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && c == '-')))
        .map_or(text.len(), |(i, _)| i);
    let (number, unit) = (&text[..end], text[end..].trim());
    let value: f64 = number.parse().ok().filter(|v: &f64| v.is_finite())?;
    const UNITS: [(&str, f64, Quantity); 15] = [
        ("", 1.0, Quantity::Plain),
        ("/s", 1.0, Quantity::Rate),
        ("k/s", 1e3, Quantity::Rate),
        ("M/s", 1e6, Quantity::Rate),
        ("G/s", 1e9, Quantity::Rate),
        ("Hz", 1.0, Quantity::Rate),
        ("kHz", 1e3, Quantity::Rate),
        ("MHz", 1e6, Quantity::Rate),
        ("GHz", 1e9, Quantity::Rate),
        ("ps", 1e-3, Quantity::Duration),
        ("ns", 1.0, Quantity::Duration),
        ("us", 1e3, Quantity::Duration),
        ("µs", 1e3, Quantity::Duration),
        ("ms", 1e6, Quantity::Duration),
        ("s", 1e9, Quantity::Duration),
    ];
    UNITS.iter().find(|(u, _, _)| *u == unit).map(|&(_, scale, q)| (value * scale, q))
}

/// The positions of an axis's values: numbers when all parse as the same kind of quantity,
/// else `None` (categorical).
fn parse_axis(values: &[String]) -> Option<(Vec<f64>, Quantity)> {
    let parsed: Vec<(f64, Quantity)> = values.iter().map(|v| parse_value(v)).collect::<Option<_>>()?;
    let kind = parsed.first()?.1;
    parsed.iter().all(|&(_, q)| q == kind).then(|| (parsed.iter().map(|&(v, _)| v).collect(), kind))
}

/// A value as written in a scenario, without YAML quotes.
fn shown(value: &str) -> &str {
    value.trim().trim_matches('"')
}

/// A number with an SI prefix and at most three significant digits: `500`, `1.5k`, `20k`,
/// `1.2M`, `0.25`.
fn eng(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".to_owned() } else { v.to_string() };
    }
    let a = v.abs();
    let (scale, prefix) = [(1e9, "G"), (1e6, "M"), (1e3, "k")].into_iter().find(|&(s, _)| a >= s).unwrap_or((1.0, ""));
    let x = v / scale;
    // Three significant digits, then no trailing zeros.
    let digits = x.abs().log10().floor() as i32 + 1;
    let decimals = (3 - digits).clamp(0, 6) as usize;
    let mut s = format!("{x:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{s}{prefix}")
}

/// Nanoseconds with a unit and three significant digits (`850 ns`, `4.47 µs`, `19.1 ms`).
fn fmt_ns(v: f64) -> String {
    let (value, unit) = [(1e9, "s"), (1e6, "ms"), (1e3, "µs")]
        .into_iter()
        .find(|(s, _)| v.abs() >= *s)
        .map_or((v, "ns"), |(s, u)| (v / s, u));
    format!("{} {unit}", eng(value))
}

/// Linear ticks at 1, 2 or 5 × 10^k, about `n` of them, inside `lo..=hi`.
fn linear_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let exponent = raw.log10().floor() as i32;
    let mag = 10f64.powi(exponent);
    let m = [1, 2, 5, 10].into_iter().find(|&m| f64::from(m) * mag >= raw).unwrap_or(10);
    let step = f64::from(m) * mag;
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // k × m × 10^e, divided rather than multiplied by a fraction, so that 0.6 is 0.6.
    let at = |k: i64| {
        let units = (k * i64::from(m)) as f64;
        if exponent < 0 { units / 10f64.powi(-exponent) } else { units * mag }
    };
    (first..=last).map(at).collect()
}

/// Log ticks inside `lo..=hi` (positive): the decades, with 2× and 5× (or every m × 10^k)
/// added when fewer than three decades fall inside; and the minor ticks (every m × 10^k).
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let all = |ms: &[f64]| -> Vec<f64> {
        (k0..=k1)
            .flat_map(|k| ms.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
            .collect()
    };
    let every = all(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let mut major = all(&[1.0]);
    if major.len() < 3 {
        major = all(&[1.0, 2.0, 5.0]);
    }
    if major.len() < 3 {
        major = every.clone();
    }
    let minor = every.into_iter().filter(|v| !major.contains(v)).collect();
    (major, minor)
}

impl Axis {
    /// An axis over `values` (data units): log when every value is positive and they span
    /// more than a decade, else linear from zero (`zero`) or padded around the data.
    fn fit(desc: impl Into<String>, values: impl IntoIterator<Item = f64>, zero: bool) -> Self {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let desc = desc.into();
        if values.is_empty() {
            return Self { desc, log: false, lo: 0.0, hi: 1.0, named: Vec::new(), categorical: false };
        }
        let log = lo > 0.0 && hi / lo > 10.0;
        let (lo, hi) = if log {
            // 4% of the span on each side, in log space.
            let pad = (hi / lo).powf(0.04);
            (lo / pad, hi * pad)
        } else if zero && lo >= 0.0 {
            (0.0, if hi > 0.0 { hi * 1.08 } else { 1.0 })
        } else if hi > lo {
            let pad = (hi - lo) * 0.06;
            (lo - pad, hi + pad)
        } else {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo - pad, hi + pad)
        };
        Self { desc, log, lo, hi, named: Vec::new(), categorical: false }
    }

    /// A categorical axis: the labels at 0, 1, 2, ….
    fn categories(desc: impl Into<String>, labels: &[String]) -> Self {
        let named = labels.iter().enumerate().map(|(i, l)| (i as f64, l.clone())).collect();
        let n = labels.len().max(1) as f64;
        Self { desc: desc.into(), log: false, lo: -0.5, hi: n - 0.5, named, categorical: true }
    }

    /// Data units to drawing units (log10 on a log axis).
    fn t(&self, v: f64) -> f64 {
        if self.log { v.max(f64::MIN_POSITIVE).log10() } else { v }
    }

    fn range(&self) -> Range<f64> {
        self.t(self.lo)..self.t(self.hi)
    }

    /// Major ticks (drawing units, label) and minor ticks (drawing units) for an axis
    /// `pixels` long; `horizontal` says which way labels crowd.
    fn ticks(&self, pixels: f64, horizontal: bool) -> (Vec<(f64, String)>, Vec<f64>) {
        let inside = |v: f64| v >= self.lo.min(self.hi) - 1e-9 && v <= self.lo.max(self.hi) + 1e-9;
        let named: Vec<(f64, String)> = self.named.iter().filter(|(v, _)| inside(*v)).cloned().collect();
        if self.categorical || (!named.is_empty() && named.len() <= 12 && self.fits(&named, pixels, horizontal)) {
            let minor = if self.log {
                log_ticks(self.lo, self.hi).1.into_iter().map(|v| self.t(v)).collect()
            } else {
                Vec::new()
            };
            return (named.into_iter().map(|(v, l)| (self.t(v), l)).collect(), minor);
        }
        if self.log {
            let (major, minor) = log_ticks(self.lo, self.hi);
            let major: Vec<(f64, String)> = major.into_iter().map(|v| (self.t(v), eng(v))).collect();
            if self.fits_drawn(&major, pixels, horizontal) {
                return (major, minor.into_iter().map(|v| self.t(v)).collect());
            }
            // Too crowded: decades only.
            let decades = major.into_iter().filter(|(t, _)| (t - t.round()).abs() < 1e-9).collect();
            return (decades, minor.into_iter().map(|v| self.t(v)).collect());
        }
        let per = if horizontal { 90.0 } else { 45.0 };
        let n = ((pixels / per).floor() as usize).clamp(2, 10);
        (linear_ticks(self.lo, self.hi, n).into_iter().map(|v| (v, eng(v))).collect(), Vec::new())
    }

    /// Whether labels at these data values leave room between each other.
    fn fits(&self, ticks: &[(f64, String)], pixels: f64, horizontal: bool) -> bool {
        let drawn: Vec<(f64, String)> = ticks.iter().map(|(v, l)| (self.t(*v), l.clone())).collect();
        self.fits_drawn(&drawn, pixels, horizontal)
    }

    fn fits_drawn(&self, ticks: &[(f64, String)], pixels: f64, horizontal: bool) -> bool {
        let range = self.range();
        let span = (range.end - range.start).abs();
        if span == 0.0 {
            return ticks.len() <= 1;
        }
        let size = |l: &str| -> f64 { if horizontal { text_width(l, LABEL_SIZE) } else { LABEL_SIZE * 1.3 } };
        ticks.windows(2).all(|w| {
            let gap = (w[1].0 - w[0].0).abs() / span * pixels;
            gap >= (size(&w[0].1) + size(&w[1].1)) / 2.0 + 8.0
        })
    }
}

/// Width of `text` in pixels at `size` in the embedded font (an estimate if it is not
/// registered yet).
fn text_width(text: &str, size: f64) -> f64 {
    (FONT, size)
        .into_font()
        .box_size(text)
        .map(|(w, _)| f64::from(w))
        .unwrap_or(text.chars().count() as f64 * size * 0.6)
}

/// `text` cut with an ellipsis to at most `width` pixels.
fn fit_text(text: &str, size: f64, width: f64) -> String {
    if text_width(text, size) <= width {
        return text.to_owned();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let cut: String = chars.iter().collect::<String>() + "…";
        if text_width(&cut, size) <= width {
            return cut;
        }
    }
    "…".to_owned()
}

// ---------------------------------------------------------------------------------------
// The sweep as the plots see it
// ---------------------------------------------------------------------------------------

/// The values along x of a sweep report: its first axis (or the variants, when the sweep
/// has variants but no axis), how cells map onto it, and the groups of cells that make
/// one line each (a variant, with the values of the other grid axes).
struct Sweep<'a> {
    x: Axis,
    /// Each cell's x position (data units) and group index, by cell.
    place: Vec<(f64, usize)>,
    /// Label of each group, in order of first appearance.
    groups: Vec<String>,
    /// What the group labels are made of (`devices[0].queues · variant`).
    group_desc: String,
    cells: &'a [Cell<'a>],
}

/// The label of the parameters of `cell` other than the first (x) axis, and its variant.
fn group_label(cell: &Cell<'_>, skip_first: bool, zip: bool) -> String {
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
fn cell_label(cell: &Cell<'_>) -> String {
    let label = group_label(cell, false, false);
    match cell.runs.len() {
        _ if !label.is_empty() => label,
        1 => format!("seed {}", cell.runs[0].seed),
        n => format!("{n} runs"),
    }
}

/// What [`cell_label`]s are made of.
fn cell_label_desc(report: &RunReport) -> Option<String> {
    let sweep = report.sweep.as_ref()?;
    let mut parts: Vec<&str> = sweep.axes.iter().map(|a| a.path.as_str()).collect();
    if !sweep.variants.is_empty() {
        parts.push("variant");
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

impl<'a> Sweep<'a> {
    fn new(report: &RunReport, cells: &'a [Cell<'a>]) -> Option<Self> {
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
    fn line(&self, g: usize, metric: &str) -> Vec<(f64, Estimate)> {
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
fn series(points: &[(f64, Estimate)], label: String, color: RGBColor, marker: Marker) -> Series {
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
fn replication_note(report: &RunReport) -> String {
    match report.sweep.as_ref().map_or(1, |s| s.replications) {
        0 | 1 => "one run per point".to_owned(),
        n => format!("mean of {n} replications with 95% confidence bands"),
    }
}

// ---------------------------------------------------------------------------------------
// The plots
// ---------------------------------------------------------------------------------------

/// End-to-end p50, p99 and p99.9 against the first swept parameter, one line per variant
/// (and other-axis values) and percentile, with 95% confidence bands.
fn latency_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
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
fn pooled_histogram(cell: &Cell<'_>) -> Vec<(f64, u64)> {
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
fn cdf_points(histogram: &[(f64, u64)]) -> Vec<(f64, f64)> {
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
fn representative<'c, 'a>(cells: &'c [Cell<'a>], max: usize) -> (Vec<&'c Cell<'a>>, bool) {
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
fn cdf_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
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
fn stage_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
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

/// Each resource's most-used instance against its limit, in percent, over every run (the
/// worst run for a sweep), with the limit drawn at 100%.
fn resource_chart(report: &RunReport) -> Option<Chart> {
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
fn is_exit_counter(name: &str) -> bool {
    name.starts_with("kvm.") && name.contains("exit")
}

/// Exits per simulated second and host CPUs busy against raised interrupts per simulated
/// second, one line per group of the sweep; only where the counters exist and there are at
/// least two interrupt rates.
fn rate_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
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
const SETUP_STAGE: &str = "provision_setup";

/// The counters of host-side setup work, with their legend names: host vectors requested,
/// VFIO interrupt ioctls and IRTE writes.
const HOST_SETUP_COUNTERS: [(&str, &str, Marker); 3] = [
    ("provision.request_irq_count", "request_irq", Marker::Circle),
    ("provision.vfio_set_irqs_count", "VFIO SET_IRQS", Marker::Triangle),
    ("provision.irte_write_count", "IRTE writes", Marker::Square),
];

/// Whether any run of the report has samples of the setup stage.
fn has_setup_samples(report: &RunReport) -> bool {
    report.points.iter().any(|p| p.stages.iter().any(|s| s.stage == SETUP_STAGE && s.count > 0))
}

/// Drops what a log axis cannot show: points at or below zero, and band ends below the
/// axis (clamped to it). Returns whether the series kept any point.
fn fit_to_log(s: &mut Series, y: &Axis) -> bool {
    if y.log {
        s.points.retain(|p| p.1 > 0.0);
        s.band.retain(|b| b.2 > 0.0);
        s.band.iter_mut().for_each(|b| b.1 = b.1.max(y.lo));
    }
    !s.points.is_empty()
}

/// The y axis over every series' points and bands (positive values decide whether it is
/// log), then each series fitted to it; the labels of series left with nothing to draw.
fn value_axis_for(desc: &str, all: &mut Vec<Series>) -> (Axis, Vec<String>) {
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
fn legend_with_zeros(all: &[Series], dropped: &[String], categorical: bool) -> Vec<LegendItem> {
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
fn setup_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
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
fn host_setup_chart(report: &RunReport, cells: &[Cell<'_>]) -> Option<Chart> {
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

// ---------------------------------------------------------------------------------------
// Drawing

// ---------------------------------------------------------------------------------------

/// A backend's error as text.
fn err(e: impl fmt::Display) -> String {
    format!("drawing a plot failed: {e}")
}

impl Chart {
    /// Width of the legend panel on the right (0 without a legend).
    fn legend_width(&self) -> u32 {
        if self.legend.is_empty() {
            return 0;
        }
        let parts = self.legend_header.iter().flat_map(|h| h.split(" · ")).map(|p| text_width(p, LEGEND_SIZE) + 24.0);
        let widest =
            self.legend.iter().map(|l| text_width(&l.label, LEGEND_SIZE) + 44.0).chain(parts).fold(0.0, f64::max);
        widest.clamp(130.0, 280.0).ceil() as u32
    }

    /// The legend header in lines that fit the legend, broken after ` · `.
    fn header_lines(&self) -> Vec<String> {
        let Some(header) = &self.legend_header else { return Vec::new() };
        let width = f64::from(self.legend_width()) - 12.0;
        let mut lines: Vec<String> = Vec::new();
        for part in header.split(" · ") {
            match lines.last_mut() {
                Some(last) if text_width(&format!("{last} · {part}"), LEGEND_SIZE) <= width => {
                    last.push_str(" · ");
                    last.push_str(part);
                }
                Some(last) => {
                    last.push_str(" ·");
                    lines.push(part.to_owned());
                }
                None => lines.push(part.to_owned()),
            }
        }
        lines.into_iter().map(|l| fit_text(&l, LEGEND_SIZE, width)).collect()
    }

    /// The picture's size: wider never, taller when rows or legend lines need it.
    fn size(&self) -> (u32, u32) {
        let legend_lines = (self.legend.len() + self.header_lines().len()) as u32;
        let by_legend = TITLE_HEIGHT + 40 + legend_lines * LEGEND_LINE;
        let by_rows = match &self.kind {
            Kind::Bars(b) => TITLE_HEIGHT + 90 + 30 * b.rows.len() as u32,
            Kind::Lines(_) => 0,
        };
        (WIDTH, HEIGHT.max(by_legend).max(by_rows))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let (w, _) = root.dim_in_pixel();
        let (head, body) = root.split_vertically(TITLE_HEIGHT);
        // The title shrinks to fit before it would be cut.
        let mut size = TITLE_SIZE;
        while size > 12.0 && text_width(&self.title, size) > f64::from(w) - 24.0 {
            size -= 1.0;
        }
        let centre = Pos::new(HPos::Center, VPos::Top);
        head.draw_text(
            &fit_text(&self.title, size, f64::from(w) - 24.0),
            &(FONT, size).into_font().color(&BLACK).pos(centre),
            (w as i32 / 2, 8),
        )
        .map_err(err)?;
        let grey = RGBColor(0x55, 0x55, 0x55);
        head.draw_text(
            &fit_text(&self.subtitle, SUBTITLE_SIZE, f64::from(w) - 24.0),
            &(FONT, SUBTITLE_SIZE).into_font().color(&grey).pos(centre),
            (w as i32 / 2, 34),
        )
        .map_err(err)?;
        let legend_w = self.legend_width();
        let (plot, legend) = body.split_horizontally(w - legend_w);
        match &self.kind {
            Kind::Lines(l) => draw_lines(&plot, l)?,
            Kind::Bars(b) => draw_bars(&plot, b)?,
        }
        if legend_w > 0 {
            self.draw_legend(&legend)?;
        }
        root.present().map_err(err)
    }

    fn draw_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, _) = area.dim_in_pixel();
        let style = (FONT, LEGEND_SIZE).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
        let mut y = 24;
        let grey = RGBColor(0x55, 0x55, 0x55);
        let header = (FONT, LEGEND_SIZE).into_font().color(&grey).pos(Pos::new(HPos::Left, VPos::Center));
        for line in self.header_lines() {
            area.draw_text(&line, &header, (4, y)).map_err(err)?;
            y += LEGEND_LINE as i32;
        }
        for item in &self.legend {
            let c = item.color;
            match item.swatch {
                Swatch::Line(marker, dashed) => {
                    if dashed {
                        for x0 in [4, 14, 24] {
                            area.draw(&PathElement::new(vec![(x0, y), (x0 + 6, y)], c.stroke_width(2))).map_err(err)?;
                        }
                    } else {
                        area.draw(&PathElement::new(vec![(4, y), (32, y)], c.stroke_width(2))).map_err(err)?;
                    }
                    draw_marker_at(area, (18, y), marker, c)?;
                }
                Swatch::Box => area.draw(&Rectangle::new([(6, y - 6), (30, y + 6)], c.filled())).map_err(err)?,
                Swatch::Mark(marker) => draw_marker_at(area, (18, y), marker, c)?,
            }
            area.draw_text(&fit_text(&item.label, LEGEND_SIZE, f64::from(w) - 44.0), &style, (38, y)).map_err(err)?;
            y += LEGEND_LINE as i32;
        }
        Ok(())
    }
}

/// Draws a marker, 9 pixels across, centred on each of `points` (data coordinates of
/// `chart`).
fn draw_markers<DB: DrawingBackend>(
    chart: &mut Chart2d<'_, DB>,
    points: &[(f64, f64)],
    marker: Marker,
    color: RGBColor,
) -> Result<(), String> {
    let fill = color.filled();
    let at = points.iter().copied();
    match marker {
        Marker::None => return Ok(()),
        Marker::Circle => chart.draw_series(at.map(|p| EmptyElement::at(p) + Circle::new((0, 0), 4, fill))),
        Marker::Triangle => {
            chart.draw_series(at.map(|p| EmptyElement::at(p) + Polygon::new(vec![(0, -5), (5, 4), (-5, 4)], fill)))
        }
        Marker::Square => chart.draw_series(at.map(|p| EmptyElement::at(p) + Rectangle::new([(-4, -4), (4, 4)], fill))),
        Marker::Diamond => chart
            .draw_series(at.map(|p| EmptyElement::at(p) + Polygon::new(vec![(0, -6), (6, 0), (0, 6), (-6, 0)], fill))),
    }
    .map(|_| ())
    .map_err(err)
}

/// Draws a marker centred on `at` (pixels of `area`).
fn draw_marker_at<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    marker: Marker,
    color: RGBColor,
) -> Result<(), String> {
    let fill = color.filled();
    match marker {
        Marker::None => Ok(()),
        Marker::Circle => area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), 4, fill))),
        Marker::Triangle => area.draw(&(EmptyElement::at(at) + Polygon::new(vec![(0, -5), (5, 4), (-5, 4)], fill))),
        Marker::Square => area.draw(&(EmptyElement::at(at) + Rectangle::new([(-4, -4), (4, 4)], fill))),
        Marker::Diamond => {
            area.draw(&(EmptyElement::at(at) + Polygon::new(vec![(0, -6), (6, 0), (0, 6), (-6, 0)], fill)))
        }
    }
    .map_err(err)
}

/// A linear coordinate in drawing units whose ticks are chosen here: labelled ticks (and
/// grid lines) at `major`, light grid lines at `minor`. (plotters' own `WithKeyPoints` over
/// `f64` cannot take a label formatter.)
#[derive(Debug, Clone)]
struct Ticked {
    range: Range<f64>,
    major: Vec<f64>,
    minor: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let share = if span == 0.0 { 0.5 } else { (value - self.range.start) / span };
        let pixels = f64::from(limit.1 - limit.0);
        limit.0 + (pixels * share + 1e-3).floor().clamp(-1e6, 1e6) as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() { self.minor.clone() } else { self.major.clone() }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// A coordinate along `axis` with its ticks, and the ticks' labels.
fn coord(axis: &Axis, pixels: f64, horizontal: bool) -> (Ticked, Vec<(f64, String)>) {
    let (major, minor) = axis.ticks(pixels, horizontal);
    (Ticked { range: axis.range(), major: major.iter().map(|t| t.0).collect(), minor }, major)
}

/// The label of a tick at drawing position `v`.
fn tick_label(ticks: &[(f64, String)], v: f64) -> String {
    ticks.iter().find(|(t, _)| (t - v).abs() < 1e-9).map(|(_, l)| l.clone()).unwrap_or_default()
}

/// Room for the widest tick label of a y axis, and its description.
fn y_label_room(ticks: &[(f64, String)]) -> u32 {
    let widest = ticks.iter().map(|(_, l)| text_width(l, LABEL_SIZE)).fold(0.0, f64::max);
    (widest + DESC_SIZE * 2.0 + 16.0).ceil() as u32
}

/// The chart every plot draws on: both axes in drawing units with ticks chosen here.
type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;

/// Draws one series (band, line, markers); `y` maps its values into the chart's drawing
/// units (through a second axis for a secondary series).
fn draw_series<DB: DrawingBackend>(
    chart: &mut Chart2d<'_, DB>,
    s: &Series,
    x: &Axis,
    y: &dyn Fn(f64) -> f64,
) -> Result<(), String> {
    let at = |px: f64, py: f64| (x.t(px), y(py));
    if s.band.len() >= 2 && !x.categorical {
        let mut outline: Vec<(f64, f64)> = s.band.iter().map(|b| at(b.0, b.2)).collect();
        outline.extend(s.band.iter().rev().map(|b| at(b.0, b.1)));
        chart.draw_series([Polygon::new(outline, s.color.mix(0.15).filled())]).map_err(err)?;
    } else {
        // A lone point or categories: each interval as an error bar.
        chart
            .draw_series(
                s.band.iter().map(|b| PathElement::new(vec![at(b.0, b.1), at(b.0, b.2)], s.color.stroke_width(2))),
            )
            .map_err(err)?;
    }
    let line: Vec<(f64, f64)> = s.points.iter().map(|p| at(p.0, p.1)).collect();
    // Categories have no order to draw a line along.
    if line.len() >= 2 && !x.categorical {
        if s.dashed {
            chart.draw_series(DashedLineSeries::new(line.clone(), 8, 5, s.color.stroke_width(2))).map_err(err)?;
        } else {
            chart.draw_series([PathElement::new(line.clone(), s.color.stroke_width(2))]).map_err(err)?;
        }
    }
    draw_markers(chart, &line, s.marker, s.color)
}

fn draw_lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, l: &Lines) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (f64::from(w), f64::from(h));
    let (ycoord, yticks) = coord(&l.y, h - 90.0, false);
    let y2 = l.y2.as_ref().map(|a| coord(a, h - 90.0, false));
    let left = y_label_room(&yticks);
    let right = y2.as_ref().map_or(0, |(_, t)| y_label_room(t));
    let (xcoord, xticks) = coord(&l.x, w - f64::from(left + right) - 40.0, true);
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_left(8)
        .margin_right(if right > 0 { 8 } else { 24 })
        .margin_top(8)
        .margin_bottom(8)
        .x_label_area_size(52)
        .y_label_area_size(left);
    if right > 0 {
        builder.right_y_label_area_size(right);
    }
    let chart = builder.build_cartesian_2d(xcoord, ycoord).map_err(err)?;
    let xf = |v: &f64| tick_label(&xticks, *v);
    let yf = |v: &f64| tick_label(&yticks, *v);
    let grey = RGBColor(0x33, 0x33, 0x33);
    let clamp = |a: &Axis, v: f64| a.t(v.clamp(a.lo, a.hi));
    let primary = |v: f64| clamp(&l.y, v);
    if let (Some((y2coord, y2ticks)), Some(y2axis)) = (y2, l.y2.as_ref()) {
        let x2 = Ticked { range: l.x.range(), major: Vec::new(), minor: Vec::new() };
        let mut chart = chart.set_secondary_coord(x2, y2coord);
        chart
            .configure_mesh()
            .x_desc(l.x.desc.as_str())
            .y_desc(l.y.desc.as_str())
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .label_style((FONT, LABEL_SIZE).into_font().color(&grey))
            .axis_desc_style((FONT, DESC_SIZE))
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(BLACK.mix(0.04))
            .draw()
            .map_err(err)?;
        let y2f = |v: &f64| tick_label(&y2ticks, *v);
        chart
            .configure_secondary_axes()
            .y_desc(y2axis.desc.as_str())
            .y_label_formatter(&y2f)
            .label_style((FONT, LABEL_SIZE).into_font().color(&grey))
            .axis_desc_style((FONT, DESC_SIZE))
            .draw()
            .map_err(err)?;
        // Secondary values drawn in primary units: the right axis's range onto the left's.
        let (r1, r2) = (l.y.range(), y2axis.range());
        let secondary = |v: f64| {
            let share = (clamp(y2axis, v) - r2.start) / (r2.end - r2.start);
            r1.start + share * (r1.end - r1.start)
        };
        for s in &l.series {
            let map: &dyn Fn(f64) -> f64 = if s.secondary { &secondary } else { &primary };
            draw_series(&mut chart, s, &l.x, map)?;
        }
    } else {
        let mut chart = chart;
        chart
            .configure_mesh()
            .x_desc(l.x.desc.as_str())
            .y_desc(l.y.desc.as_str())
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .label_style((FONT, LABEL_SIZE).into_font().color(&grey))
            .axis_desc_style((FONT, DESC_SIZE))
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(BLACK.mix(0.04))
            .draw()
            .map_err(err)?;
        for s in &l.series {
            draw_series(&mut chart, s, &l.x, &primary)?;
        }
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, b: &Bars) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    let n = b.rows.len();
    // Row i (top to bottom) sits at y = n - 1 - i.
    let labels: Vec<String> = b.rows.iter().rev().map(|r| r.label.clone()).collect();
    let rows_axis = Axis::categories(b.row_desc.clone(), &labels);
    let max_label = f64::from(w) * 0.4;
    let ticks: Vec<(f64, String)> =
        rows_axis.named.iter().map(|(v, l)| (*v, fit_text(l, LABEL_SIZE, max_label))).collect();
    let left = y_label_room(&ticks);
    let (xcoord, xticks) = coord(&b.x, f64::from(w) - f64::from(left) - 40.0, true);
    let ycoord = Ticked { range: rows_axis.range(), major: ticks.iter().map(|t| t.0).collect(), minor: Vec::new() };
    let mut chart = ChartBuilder::on(area)
        .margin_left(8)
        .margin_right(24)
        .margin_top(8)
        .margin_bottom(8)
        .x_label_area_size(52)
        .y_label_area_size(left)
        .build_cartesian_2d(xcoord, ycoord)
        .map_err(err)?;
    let xf = |v: &f64| tick_label(&xticks, *v);
    let yf = |v: &f64| tick_label(&ticks, *v);
    let grey = RGBColor(0x33, 0x33, 0x33);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(b.x.desc.as_str())
        .y_desc(b.row_desc.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style((FONT, LABEL_SIZE).into_font().color(&grey))
        .axis_desc_style((FONT, DESC_SIZE))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(err)?;
    let note_style = (FONT, LABEL_SIZE).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    // Bars two thirds of a row, at most 36 pixels thick.
    let row_pixels = f64::from(chart.plotting_area().dim_in_pixel().1) / n.max(1) as f64;
    let half = 0.32f64.min(18.0 / row_pixels.max(1.0));
    for (i, row) in b.rows.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let mut x0 = 0.0;
        for &(len, c) in &row.segments {
            let x1 = (x0 + len).min(b.x.hi);
            chart.draw_series([Rectangle::new([(x0, y - half), (x1, y + half)], c.filled())]).map_err(err)?;
            x0 = x1;
        }
        if let Some(note) = &row.note {
            chart
                .draw_series([EmptyElement::at((x0, y)) + Text::new(note.clone(), (6, 0), note_style.clone())])
                .map_err(err)?;
        }
        if let Some(m) = row.mark {
            draw_markers(&mut chart, &[(m.min(b.x.hi), y)], Marker::Diamond, BLACK)?;
        }
    }
    if let Some((at, label)) = &b.reference {
        let red = RGBColor(0xc0, 0x1c, 0x28);
        let top = n as f64 - 0.5;
        chart
            .draw_series(DashedLineSeries::new(vec![(*at, -0.5), (*at, top)], 6, 4, red.stroke_width(2)))
            .map_err(err)?;
        let style = (FONT, LABEL_SIZE).into_font().color(&red).pos(Pos::new(HPos::Left, VPos::Top));
        chart.draw_series([EmptyElement::at((*at, top)) + Text::new(label.clone(), (5, 3), style)]).map_err(err)?;
    }
    Ok(())
}

/// The embedded font, for the PNG backend's own text drawing.
fn dejavu_sans() -> Result<&'static ab_glyph::FontRef<'static>, String> {
    static FONT_REF: OnceLock<Result<ab_glyph::FontRef<'static>, String>> = OnceLock::new();
    FONT_REF
        .get_or_init(|| {
            ab_glyph::FontRef::try_from_slice(dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans is not a valid TrueType font".to_owned())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// plotters' bitmap backend with text drawn here: plotters 0.3.7 places each glyph by its
/// rounded bounding box and whole-pixel advances, which lifts a `.` to mid-height
/// (`x86.vectors` reads `x86·vectors`). Here glyphs sit on one baseline at their exact
/// advances; the text box (and so every layout decision) is plotters' own.
struct Raster<'a> {
    inner: BitMapBackend<'a>,
    font: &'static ab_glyph::FontRef<'static>,
}

impl<'a> DrawingBackend for Raster<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        use ab_glyph::{Font as _, ScaleFont as _};
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let ((x0, y0), (x1, y1)) = style.layout_box(text).map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (x1 - x0, y1 - y0);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let font = self.font.as_scaled(style.size() as f32);
        // The capitals centred in the text box: baseline at half the box plus half the
        // cap height.
        let capital = font.scaled_glyph('H');
        let cap = self.font.outline_glyph(capital).map_or(0.7 * font.ascent(), |o| -o.px_bounds().min.y);
        let baseline = height as f32 / 2.0 + cap / 2.0;
        let transform = style.transform();
        let (w, h) = self.get_size();
        let mut caret = 0.0f32;
        let mut previous = None;
        let mut result = Ok(());
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                caret += font.kern(p, id);
            }
            previous = Some(id);
            let glyph = id.with_scale_and_position(font.scale(), ab_glyph::point(caret, baseline));
            caret += font.h_advance(id);
            let Some(outline) = self.font.outline_glyph(glyph) else { continue };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                if coverage <= 0.0 || result.is_err() {
                    return;
                }
                let (x, y) = (bounds.min.x as i32 + gx as i32 + dx, bounds.min.y as i32 + gy as i32 + dy);
                let (x, y) = transform.transform(x, y);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                    let c = BackendColor { alpha: color.alpha * f64::from(coverage.min(1.0)), rgb: color.rgb };
                    result = self.inner.draw_pixel((x, y), c);
                }
            });
            result.as_ref().map_err(|_| DrawingErrorKind::FontError("drawing a glyph failed".into()))?;
        }
        result
    }
}

/// Draws `chart` into a PNG and an SVG.
fn render(chart: &Chart) -> Result<Plot, String> {
    let (w, h) = chart.size();
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let backend = Raster { inner: BitMapBackend::with_buffer(&mut rgb, (w, h)), font: dejavu_sans()? };
        chart.draw(&backend.into_drawing_area())?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        chart.draw(&root)?;
    }
    Ok(Plot { name: chart.name.to_owned(), title: chart.title.clone(), png: encode_png(&rgb, w, h)?, svg })
}

/// RGB pixels as a PNG file.
fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| format!("encoding a PNG failed: {e}"))?;
    writer.write_image_data(rgb).map_err(|e| format!("encoding a PNG failed: {e}"))?;
    writer.finish().map_err(|e| format!("encoding a PNG failed: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::CounterRow;

    /// The committed fixture: 3 rates × 2 variants × 2 replications (tests/fixtures).
    fn sweep() -> RunReport {
        serde_json::from_str(include_str!("../tests/fixtures/sweep.json")).expect("the fixture is a report")
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
        let samples: u64 =
            c[0].runs.iter().map(|p| p.stages.iter().find(|s| s.stage == "end_to_end").unwrap().count).sum();
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
        assert!(
            chart.subtitle.ends_with("; 4 of 20 cells: first and last point of each variant"),
            "{}",
            chart.subtitle
        );
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
        assert_eq!(
            chart.subtitle,
            "mean p99 of each stage as a share of the row's stack (rows more than a decade apart)"
        );
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
                p.counters.push(CounterRow {
                    name: name.into(),
                    unit: "count".into(),
                    value,
                    description: String::new(),
                });
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
            [
                "plot-latency",
                "plot-cdf",
                "plot-stages",
                "plot-resources",
                "plot-exits",
                "plot-setup",
                "plot-setup-host"
            ]
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
            [
                "lapic: request_irq",
                "lapic: IRTE writes",
                "fifo: request_irq",
                "fifo: VFIO SET_IRQS",
                "fifo: IRTE writes"
            ]
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
}
