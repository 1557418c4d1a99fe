//! The PNG and SVG files of a chart: the embedded font, the bitmap backend that draws text
//! on one baseline, and the PNG encoding.

use super::Plot;
use super::chart::Chart;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};
use std::sync::OnceLock;

/// The embedded font, for the PNG backend's own text drawing.
pub(super) fn dejavu_sans() -> Result<&'static ab_glyph::FontRef<'static>, String> {
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
pub(super) struct Raster<'a> {
    pub(super) inner: BitMapBackend<'a>,
    pub(super) font: &'static ab_glyph::FontRef<'static>,
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
pub(super) fn render(chart: &Chart) -> Result<Plot, String> {
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
pub(super) fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| format!("encoding a PNG failed: {e}"))?;
    writer.write_image_data(rgb).map_err(|e| format!("encoding a PNG failed: {e}"))?;
    writer.finish().map_err(|e| format!("encoding a PNG failed: {e}"))?;
    Ok(out)
}
