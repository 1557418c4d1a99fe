//! A plot as data, before any backend: the chart, its axes (ticks on linear or log
//! scales, values read from the report's parameter text) and its series, bars and legend.

use super::{FONT, LABEL_SIZE};
use plotters::prelude::*;
use std::ops::Range;

/// A plot as data: what to draw, before any backend.
#[derive(Debug, Clone)]
pub(super) struct Chart {
    pub(super) name: &'static str,
    pub(super) title: String,
    pub(super) subtitle: String,
    pub(super) kind: Kind,
    pub(super) legend_header: Option<String>,
    pub(super) legend: Vec<LegendItem>,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    Lines(Lines),
    Bars(Bars),
}

/// Lines (and confidence bands) over a numeric or categorical x axis.
#[derive(Debug, Clone)]
pub(super) struct Lines {
    pub(super) x: Axis,
    pub(super) y: Axis,
    /// A second y axis on the right, for series marked `secondary`.
    pub(super) y2: Option<Axis>,
    pub(super) series: Vec<Series>,
}

/// Horizontal bars, one row per entry, top to bottom.
#[derive(Debug, Clone)]
pub(super) struct Bars {
    pub(super) x: Axis,
    /// What the rows are (drawn as the y axis description).
    pub(super) row_desc: String,
    pub(super) rows: Vec<BarRow>,
    /// A vertical reference line (x value, label), e.g. the 100% limit.
    pub(super) reference: Option<(f64, String)>,
}

#[derive(Debug, Clone)]
pub(super) struct BarRow {
    pub(super) label: String,
    /// Stacked segments, left to right: (length, colour).
    pub(super) segments: Vec<(f64, RGBColor)>,
    /// Text written just right of the bar.
    pub(super) note: Option<String>,
    /// A black diamond at this x (e.g. the end-to-end p99).
    pub(super) mark: Option<f64>,
}

#[derive(Debug, Clone)]
pub(super) struct Series {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) marker: Marker,
    pub(super) dashed: bool,
    /// Drawn against the right-hand axis.
    pub(super) secondary: bool,
    /// (x, y) in data units, in x order.
    pub(super) points: Vec<(f64, f64)>,
    /// The 95% interval at each x: (x, low, high); empty without replications.
    pub(super) band: Vec<(f64, f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marker {
    None,
    Circle,
    Triangle,
    Square,
    Diamond,
}

#[derive(Debug, Clone)]
pub(super) struct LegendItem {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) swatch: Swatch,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Swatch {
    /// A line with a marker.
    Line(Marker, bool),
    /// A filled box (a bar segment).
    Box,
    /// A marker alone.
    Mark(Marker),
}

/// One axis: description, scale, range in data units and the ticks it prefers.
#[derive(Debug, Clone)]
pub(super) struct Axis {
    pub(super) desc: String,
    pub(super) log: bool,
    pub(super) lo: f64,
    pub(super) hi: f64,
    /// Ticks at the data's own values with their own labels (the sweep's values as
    /// written), used when they do not crowd each other; always for a categorical axis.
    pub(super) named: Vec<(f64, String)>,
    pub(super) categorical: bool,
}

/// Tableau 10: distinct hues that stay apart for most colour-blind readers.
pub(super) const PALETTE: [RGBColor; 10] = [
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

pub(super) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

// ---------------------------------------------------------------------------------------
// Axis values and numbers
// ---------------------------------------------------------------------------------------

/// What a sweep axis's values are, when every one of them parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quantity {
    Plain,
    Rate,
    Duration,
}

/// A sweep value as a number: `64`, `1.5`, a rate (`20k/s`, `1.5M/s`, `50kHz`, per second)
/// or a duration (`100ns`, `2us`, `1ms`, in nanoseconds). `None` for anything else.
pub(super) fn parse_value(text: &str) -> Option<(f64, Quantity)> {
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
pub(super) fn parse_axis(values: &[String]) -> Option<(Vec<f64>, Quantity)> {
    let parsed: Vec<(f64, Quantity)> = values.iter().map(|v| parse_value(v)).collect::<Option<_>>()?;
    let kind = parsed.first()?.1;
    parsed.iter().all(|&(_, q)| q == kind).then(|| (parsed.iter().map(|&(v, _)| v).collect(), kind))
}

/// A value as written in a scenario, without YAML quotes.
pub(super) fn shown(value: &str) -> &str {
    value.trim().trim_matches('"')
}

/// A number with an SI prefix and at most three significant digits: `500`, `1.5k`, `20k`,
/// `1.2M`, `0.25`.
pub(super) fn eng(v: f64) -> String {
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
pub(super) fn fmt_ns(v: f64) -> String {
    let (value, unit) = [(1e9, "s"), (1e6, "ms"), (1e3, "µs")]
        .into_iter()
        .find(|(s, _)| v.abs() >= *s)
        .map_or((v, "ns"), |(s, u)| (v / s, u));
    format!("{} {unit}", eng(value))
}

/// Linear ticks at 1, 2 or 5 × 10^k, about `n` of them, inside `lo..=hi`.
pub(super) fn linear_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
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
pub(super) fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
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
    pub(super) fn fit(desc: impl Into<String>, values: impl IntoIterator<Item = f64>, zero: bool) -> Self {
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
    pub(super) fn categories(desc: impl Into<String>, labels: &[String]) -> Self {
        let named = labels.iter().enumerate().map(|(i, l)| (i as f64, l.clone())).collect();
        let n = labels.len().max(1) as f64;
        Self { desc: desc.into(), log: false, lo: -0.5, hi: n - 0.5, named, categorical: true }
    }

    /// Data units to drawing units (log10 on a log axis).
    pub(super) fn t(&self, v: f64) -> f64 {
        if self.log { v.max(f64::MIN_POSITIVE).log10() } else { v }
    }

    pub(super) fn range(&self) -> Range<f64> {
        self.t(self.lo)..self.t(self.hi)
    }

    /// Major ticks (drawing units, label) and minor ticks (drawing units) for an axis
    /// `pixels` long; `horizontal` says which way labels crowd.
    pub(super) fn ticks(&self, pixels: f64, horizontal: bool) -> (Vec<(f64, String)>, Vec<f64>) {
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
    pub(super) fn fits(&self, ticks: &[(f64, String)], pixels: f64, horizontal: bool) -> bool {
        let drawn: Vec<(f64, String)> = ticks.iter().map(|(v, l)| (self.t(*v), l.clone())).collect();
        self.fits_drawn(&drawn, pixels, horizontal)
    }

    pub(super) fn fits_drawn(&self, ticks: &[(f64, String)], pixels: f64, horizontal: bool) -> bool {
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
pub(super) fn text_width(text: &str, size: f64) -> f64 {
    (FONT, size)
        .into_font()
        .box_size(text)
        .map(|(w, _)| f64::from(w))
        .unwrap_or(text.chars().count() as f64 * size * 0.6)
}

/// `text` cut with an ellipsis to at most `width` pixels.
pub(super) fn fit_text(text: &str, size: f64, width: f64) -> String {
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
