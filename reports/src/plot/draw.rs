//! Drawing a chart on any plotters backend: frame, ticks, lines with their markers and
//! confidence bands, bars and legend.

use super::chart::{Axis, Bars, Chart, Kind, Lines, Marker, Series, Swatch, fit_text, text_width};
use super::{
    DESC_SIZE, FONT, HEIGHT, LABEL_SIZE, LEGEND_LINE, LEGEND_SIZE, SUBTITLE_SIZE, TITLE_HEIGHT, TITLE_SIZE, WIDTH,
};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fmt;
use std::ops::Range;

/// A backend's error as text.
pub(super) fn err(e: impl fmt::Display) -> String {
    format!("drawing a plot failed: {e}")
}

impl Chart {
    /// Width of the legend panel on the right (0 without a legend).
    pub(super) fn legend_width(&self) -> u32 {
        if self.legend.is_empty() {
            return 0;
        }
        let parts = self.legend_header.iter().flat_map(|h| h.split(" · ")).map(|p| text_width(p, LEGEND_SIZE) + 24.0);
        let widest =
            self.legend.iter().map(|l| text_width(&l.label, LEGEND_SIZE) + 44.0).chain(parts).fold(0.0, f64::max);
        widest.clamp(130.0, 280.0).ceil() as u32
    }

    /// The legend header in lines that fit the legend, broken after ` · `.
    pub(super) fn header_lines(&self) -> Vec<String> {
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
    pub(super) fn size(&self) -> (u32, u32) {
        let legend_lines = (self.legend.len() + self.header_lines().len()) as u32;
        let by_legend = TITLE_HEIGHT + 40 + legend_lines * LEGEND_LINE;
        let by_rows = match &self.kind {
            Kind::Bars(b) => TITLE_HEIGHT + 90 + 30 * b.rows.len() as u32,
            Kind::Lines(_) => 0,
        };
        (WIDTH, HEIGHT.max(by_legend).max(by_rows))
    }

    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
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

    pub(super) fn draw_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
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
pub(super) fn draw_markers<DB: DrawingBackend>(
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
pub(super) fn draw_marker_at<DB: DrawingBackend>(
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
pub(super) struct Ticked {
    pub(super) range: Range<f64>,
    pub(super) major: Vec<f64>,
    pub(super) minor: Vec<f64>,
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
pub(super) fn coord(axis: &Axis, pixels: f64, horizontal: bool) -> (Ticked, Vec<(f64, String)>) {
    let (major, minor) = axis.ticks(pixels, horizontal);
    (Ticked { range: axis.range(), major: major.iter().map(|t| t.0).collect(), minor }, major)
}

/// The label of a tick at drawing position `v`.
pub(super) fn tick_label(ticks: &[(f64, String)], v: f64) -> String {
    ticks.iter().find(|(t, _)| (t - v).abs() < 1e-9).map(|(_, l)| l.clone()).unwrap_or_default()
}

/// Room for the widest tick label of a y axis, and its description.
pub(super) fn y_label_room(ticks: &[(f64, String)]) -> u32 {
    let widest = ticks.iter().map(|(_, l)| text_width(l, LABEL_SIZE)).fold(0.0, f64::max);
    (widest + DESC_SIZE * 2.0 + 16.0).ceil() as u32
}

/// The chart every plot draws on: both axes in drawing units with ticks chosen here.
pub(super) type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;

/// Draws one series (band, line, markers); `y` maps its values into the chart's drawing
/// units (through a second axis for a secondary series).
pub(super) fn draw_series<DB: DrawingBackend>(
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

/// The grid, the axes, their ticks and descriptions of a line plot (the left axis; the
/// right one, where there is one, is the caller's).
fn draw_mesh<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<Ticked, Ticked>>,
    l: &Lines,
    xf: &dyn Fn(&f64) -> String,
    yf: &dyn Fn(&f64) -> String,
) -> Result<(), String> {
    let grey = RGBColor(0x33, 0x33, 0x33);
    chart
        .configure_mesh()
        .x_desc(l.x.desc.as_str())
        .y_desc(l.y.desc.as_str())
        .x_label_formatter(xf)
        .y_label_formatter(yf)
        .label_style((FONT, LABEL_SIZE).into_font().color(&grey))
        .axis_desc_style((FONT, DESC_SIZE))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(err)
}

pub(super) fn draw_lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, l: &Lines) -> Result<(), String> {
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
        draw_mesh(&mut chart, l, &xf, &yf)?;
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
        draw_mesh(&mut chart, l, &xf, &yf)?;
        for s in &l.series {
            draw_series(&mut chart, s, &l.x, &primary)?;
        }
    }
    Ok(())
}

pub(super) fn draw_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, b: &Bars) -> Result<(), String> {
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
