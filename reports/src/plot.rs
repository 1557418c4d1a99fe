//! Plots of a report, each as a PNG and an SVG drawn from the same description: latency
//! percentiles against the swept parameter, the end-to-end latency CDF, where each cell's p99
//! goes stage by stage, resource use against every limit, exits and busy CPUs against the
//! interrupt rate, the per-function setup time (the `provision_setup` stage) and host
//! setup counters against the swept parameter, where the interrupts of guests writing their
//! own messages went, and a model table's featured row against the swept parameter. A plot
//! is drawn only when the report has its data.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (registered once with plotters'
//! `ab_glyph` font table), so a machine without any system font draws the same pictures.
//! Like the rest of the crate this module speaks metric names only: stages, resources and
//! counters are whatever the report holds.
//!
//! Each plot is first described as data (a `Chart`: axes with their ticks, series, bars and
//! legend entries) and then drawn twice, once per backend; the descriptions are what the
//! unit tests check number by number.
//!
//! Where it lives: `chart` (the description types, axes and number formatting), `sweep`
//! (cells grouped into lines), `latency` and `usage` (one function per plot, report to
//! chart; `outcome` for the last two), `draw` (a chart on any plotters backend), `raster` (the PNG and SVG files), and
//! `tests`.

use std::fmt;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::schema::RunReport;
use crate::stats::cells;

mod chart;
mod draw;
mod latency;
mod outcome;
mod raster;
mod sweep;
#[cfg(test)]
mod tests;
mod usage;

use chart::Chart;
use latency::{cdf_chart, latency_chart, stage_chart};
use outcome::{outcome_chart, table_row_chart};
use raster::render;
use usage::{host_setup_chart, rate_chart, resource_chart, setup_chart};

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
        outcome_chart(report, &cells),
        table_row_chart(report, &cells),
    ]
    .into_iter()
    .flatten()
    .collect()
}
