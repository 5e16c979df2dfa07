//! Text: the embedded DejaVu Sans font, measuring and glyph outlines.
//!
//! Every measurement and every PNG glyph comes from the font shipped inside the binary, so
//! output is identical on machines with no fonts installed.

use std::sync::OnceLock;
use tiny_skia::PathBuilder;
use ttf_parser::{Face, GlyphId, OutlineBuilder};

/// Font family written into SVG files (DejaVu Sans is what the sizes were measured with).
pub const SVG_FONT_FAMILY: &str = "DejaVu Sans,Verdana,Arial,sans-serif";
/// Longest line drawn, in characters; longer lines are cut with an ellipsis.
pub const MAX_LINE_CHARS: usize = 120;
/// Most lines drawn per label.
pub const MAX_LINES: usize = 24;

struct Font {
    face: Face<'static>,
    units_per_em: f32,
    ascender: f32,
    descender: f32,
}

fn font() -> &'static Font {
    static FONT: OnceLock<Font> = OnceLock::new();
    FONT.get_or_init(|| {
        let face = Face::parse(dejavu::sans::regular(), 0).expect("embedded DejaVu Sans parses");
        Font {
            units_per_em: face.units_per_em() as f32,
            ascender: face.ascender() as f32,
            descender: face.descender() as f32,
            face,
        }
    })
}

/// Replace what cannot be drawn (control characters) and cut long text, as it will be drawn.
pub fn clean_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(MAX_LINE_CHARS * 4));
    for (n, c) in line.chars().enumerate() {
        if n == MAX_LINE_CHARS {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { '\u{FFFD}' } else { c });
    }
    out
}

/// A label split into drawable lines (at most [`MAX_LINES`], each cleaned).
pub fn label_lines(label: &str) -> Vec<String> {
    let mut lines: Vec<String> = label
        .split('\n')
        .take(MAX_LINES + 1)
        .map(clean_line)
        .collect();
    if lines.len() > MAX_LINES {
        lines.truncate(MAX_LINES);
        lines.push("…".into());
    }
    lines
}

fn glyph(c: char) -> GlyphId {
    let f = &font().face;
    f.glyph_index(c)
        .or_else(|| f.glyph_index('\u{FFFD}'))
        .unwrap_or(GlyphId(0))
}

/// Width of one line of text at `size` pixels.
pub fn line_width(text: &str, size: f32) -> f32 {
    let f = font();
    let units: f32 = text
        .chars()
        .map(|c| f.face.glyph_hor_advance(glyph(c)).unwrap_or(0) as f32)
        .sum();
    units * size / f.units_per_em
}

/// Height of one line (ascender to descender) at `size` pixels.
pub fn line_height(size: f32) -> f32 {
    let f = font();
    (f.ascender - f.descender) * size / f.units_per_em
}

/// Distance from the top of a line to its baseline at `size` pixels.
pub fn ascent(size: f32) -> f32 {
    let f = font();
    f.ascender * size / f.units_per_em
}

struct Outline<'a> {
    pb: &'a mut PathBuilder,
    x: f32,
    y: f32,
    scale: f32,
}

impl OutlineBuilder for Outline<'_> {
    fn move_to(&mut self, x: f32, y: f32) {
        self.pb
            .move_to(self.x + x * self.scale, self.y - y * self.scale);
    }
    fn line_to(&mut self, x: f32, y: f32) {
        self.pb
            .line_to(self.x + x * self.scale, self.y - y * self.scale);
    }
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        self.pb.quad_to(
            self.x + x1 * self.scale,
            self.y - y1 * self.scale,
            self.x + x * self.scale,
            self.y - y * self.scale,
        );
    }
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        self.pb.cubic_to(
            self.x + x1 * self.scale,
            self.y - y1 * self.scale,
            self.x + x2 * self.scale,
            self.y - y2 * self.scale,
            self.x + x * self.scale,
            self.y - y * self.scale,
        );
    }
    fn close(&mut self) {
        self.pb.close();
    }
}

/// Add the outlines of `text`, starting at `(x, baseline)`, to a path.
pub fn outline_line(pb: &mut PathBuilder, text: &str, x: f32, baseline: f32, size: f32) {
    let f = font();
    let scale = size / f.units_per_em;
    let mut pen = x;
    for c in text.chars() {
        let g = glyph(c);
        let mut o = Outline {
            pb,
            x: pen,
            y: baseline,
            scale,
        };
        f.face.outline_glyph(g, &mut o);
        pen += f.face.glyph_hor_advance(g).unwrap_or(0) as f32 * scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_grow_with_text_and_size() {
        let a = line_width("dict", 14.0);
        assert!(a > 20.0 && a < 40.0, "{a}");
        assert!(line_width("dictionary", 14.0) > a);
        assert!((line_width("dict", 28.0) - 2.0 * a).abs() < 0.01);
        assert!(line_height(14.0) > 14.0 && line_height(14.0) < 20.0);
    }

    #[test]
    fn lines_are_cleaned_and_bounded() {
        assert_eq!(clean_line("a\u{0}b\tc"), "a\u{FFFD}b\u{FFFD}c");
        let long = "x".repeat(10_000);
        assert_eq!(clean_line(&long).chars().count(), MAX_LINE_CHARS + 1);
        let many = vec!["l"; 1000].join("\n");
        assert_eq!(label_lines(&many).len(), MAX_LINES + 1);
        // A character the font lacks still has a width (drawn as a replacement glyph).
        assert!(line_width("\u{10FFFD}", 14.0) > 0.0);
    }
}
