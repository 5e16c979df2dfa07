//! PNG drawing with tiny-skia; text from the embedded font's glyph outlines.

use super::layout::Layout;
use super::style::{Rgb, Shape};
use super::svg::arrowhead;
use super::text;
use tiny_skia::{
    Color, FillRule, Paint, PathBuilder, Pixmap, Rect as SkRect, Stroke, StrokeDash, Transform,
};

/// Largest side of a PNG, in pixels.
pub const MAX_SIDE: f32 = 16384.0;
/// Largest PNG area, in pixels.
pub const MAX_PIXELS: f32 = 120_000_000.0;
/// Pixels per point at which pictures are drawn.
pub const SCALE: f32 = 1.25;
/// The least scale a picture too big for the limits is shrunk to (14 pt text is then 8.75 px
/// high, still legible); one that would need less is refused with [`RenderError::TooLarge`].
pub const MIN_SCALE: f32 = SCALE / 2.0;

/// Why a picture could not be drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderError {
    /// The picture has no size or could not be allocated.
    Canvas(String),
    /// PNG encoding failed.
    Encode(String),
    /// The drawing (`width` × `height` points) would not fit the PNG limits unless shrunk
    /// until its text cannot be read.
    TooLarge { width: f32, height: f32 },
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Canvas(m) => write!(f, "cannot draw the picture: {m}"),
            RenderError::Encode(m) => write!(f, "cannot encode the PNG: {m}"),
            RenderError::TooLarge { width, height } => write!(
                f,
                "the graph is too large for a PNG: its drawing is {:.0}x{:.0} pixels, and a PNG \
                 is at most {MAX_SIDE} pixels a side and {:.0} million pixels even when shrunk \
                 to half size; write it as .svg (no size limit) or draw fewer objects \
                 (lower max_depth or too_many, or pass a filter)",
                width * SCALE,
                height * SCALE,
                MAX_PIXELS / 1e6
            ),
        }
    }
}

impl std::error::Error for RenderError {}

fn paint(c: Rgb) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(Color::from_rgba8(c[0], c[1], c[2], 255));
    p.anti_alias = true;
    p
}

/// The scale a layout is drawn at: [`SCALE`] pixels per point, shrunk (down to [`MIN_SCALE`])
/// for pictures beyond [`MAX_SIDE`] or [`MAX_PIXELS`]; an error for bigger ones.
pub fn scale_for(l: &Layout) -> Result<f32, RenderError> {
    let mut s: f32 = SCALE;
    let (w, h) = (l.width * s, l.height * s);
    if w > MAX_SIDE || h > MAX_SIDE {
        s *= MAX_SIDE / w.max(h);
    }
    let area = l.width * l.height * s * s;
    if area > MAX_PIXELS {
        s *= (MAX_PIXELS / area).sqrt();
    }
    if s < MIN_SCALE {
        return Err(RenderError::TooLarge {
            width: l.width,
            height: l.height,
        });
    }
    Ok(s)
}

/// Draw a layout to PNG bytes.
pub fn draw(l: &Layout) -> Result<Vec<u8>, RenderError> {
    let s = scale_for(l)?;
    let (w, h) = (
        (l.width * s).ceil().max(1.0) as u32,
        (l.height * s).ceil().max(1.0) as u32,
    );
    let mut pm = Pixmap::new(w, h).ok_or_else(|| RenderError::Canvas(format!("{w}x{h}")))?;
    pm.fill(Color::WHITE);
    let t = Transform::from_scale(s, s);
    for e in &l.edges {
        let mut pb = PathBuilder::new();
        let p = &e.points;
        pb.move_to(p[0].0, p[0].1);
        let mut i = 1;
        while i + 2 < p.len() {
            pb.cubic_to(
                p[i].0,
                p[i].1,
                p[i + 1].0,
                p[i + 1].1,
                p[i + 2].0,
                p[i + 2].1,
            );
            i += 3;
        }
        if let Some(path) = pb.finish() {
            let mut stroke = Stroke {
                width: 1.0,
                ..Stroke::default()
            };
            if e.dotted {
                stroke.dash = StrokeDash::new(vec![1.5, 3.0], 0.0);
            }
            pm.stroke_path(&path, &paint(e.color), &stroke, t, None);
        }
        let [a, b, c] = arrowhead(e);
        let mut pb = PathBuilder::new();
        pb.move_to(a.0, a.1);
        pb.line_to(b.0, b.1);
        pb.line_to(c.0, c.1);
        pb.close();
        if let Some(path) = pb.finish() {
            pm.fill_path(&path, &paint(e.color), FillRule::Winding, t, None);
        }
        if let Some(lab) = &e.label {
            draw_lines(
                &mut pm,
                &lab.lines,
                lab.rect.x,
                lab.rect.y,
                lab.font_size,
                [0, 0, 0],
                false,
                t,
            );
        }
    }
    for n in &l.nodes {
        let r = &n.rect;
        let st = &n.style;
        let body = match st.shape {
            Shape::Box | Shape::Plain => {
                SkRect::from_xywh(r.x, r.y, r.w, r.h).map(PathBuilder::from_rect)
            }
            Shape::Ellipse | Shape::DoubleCircle => {
                SkRect::from_xywh(r.x, r.y, r.w, r.h).and_then(PathBuilder::from_oval)
            }
        };
        if let Some(path) = body {
            pm.fill_path(&path, &paint(st.fill), FillRule::Winding, t, None);
            if st.shape != Shape::Plain {
                pm.stroke_path(&path, &paint(st.stroke), &Stroke::default(), t, None);
            }
        }
        if st.shape == Shape::DoubleCircle {
            if let Some(path) = SkRect::from_xywh(r.x + 2.5, r.y + 2.5, r.w - 5.0, r.h - 5.0)
                .and_then(PathBuilder::from_oval)
            {
                pm.stroke_path(&path, &paint(st.stroke), &Stroke::default(), t, None);
            }
        }
        let lh = text::line_height(st.font_size);
        let top = r.cy() - lh * n.lines.len() as f32 / 2.0;
        draw_lines(
            &mut pm,
            &n.lines,
            r.cx(),
            top,
            st.font_size,
            st.font,
            true,
            t,
        );
    }
    encode(&pm)
}

/// Encode as an 8-bit RGB PNG (the picture is opaque) with the fastest compression: the "up"
/// filter and fdeflate's quickest mode (a drawing is mostly flat colour, which that packs well;
/// the adaptive filter of `Compression::Fast` took more time than the drawing itself on large
/// pictures).
fn encode(pm: &Pixmap) -> Result<Vec<u8>, RenderError> {
    let data = pm.data();
    let mut rgb: Vec<u8> = Vec::with_capacity(data.len() / 4 * 3);
    for px in data.chunks_exact(4) {
        rgb.extend_from_slice(&px[..3]);
    }
    let mut out = Vec::with_capacity(rgb.len() / 8);
    let mut enc = ::png::Encoder::new(&mut out, pm.width(), pm.height());
    enc.set_color(::png::ColorType::Rgb);
    enc.set_depth(::png::BitDepth::Eight);
    enc.set_compression(::png::Compression::Fast);
    enc.set_filter(::png::Filter::Sub);
    let err = |e: ::png::EncodingError| RenderError::Encode(e.to_string());
    let mut w = enc.write_header().map_err(err)?;
    w.write_image_data(&rgb).map_err(err)?;
    w.finish().map_err(err)?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn draw_lines(
    pm: &mut Pixmap,
    lines: &[String],
    x: f32,
    top: f32,
    size: f32,
    color: Rgb,
    centred: bool,
    t: Transform,
) {
    let lh = text::line_height(size);
    let mut pb = PathBuilder::new();
    for (i, line) in lines.iter().enumerate() {
        let w = text::line_width(line, size);
        let left = if centred { x - w / 2.0 } else { x };
        let baseline = top + i as f32 * lh + text::ascent(size);
        text::outline_line(&mut pb, line, left, baseline, size);
    }
    if let Some(path) = pb.finish() {
        pm.fill_path(&path, &paint(color), FillRule::Winding, t, None);
    }
}
