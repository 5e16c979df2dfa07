//! The SVG writer.

use super::layout::{LaidEdge, LaidNode, Layout, NodeKind};
use super::style::{Rgb, Shape};
use super::text;
use std::fmt::Write;

/// Escape text for XML content and attribute values. Characters XML 1.0 cannot hold (NUL and
/// other control characters; lone surrogates cannot occur in a Rust string) become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escape a hover text: as [`escape`], but line breaks are kept.
fn escape_title(s: &str) -> String {
    s.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

/// The SVG id of a node: the object's key, with a suffix for markers.
fn node_id(n: &LaidNode) -> String {
    match n.kind {
        NodeKind::Object => n.key.clone(),
        NodeKind::DelMarker => format!("{}-del", n.key),
        NodeKind::TooMany => format!("{}-more", n.key),
    }
}

fn rgb(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// Arrowhead at the end of an edge: the tip, and the two back corners.
pub fn arrowhead(e: &LaidEdge) -> [(f32, f32); 3] {
    let n = e.points.len();
    let tip = e.points[n - 1];
    // Direction of arrival: from the last control point that differs from the tip.
    let from = e.points[..n - 1]
        .iter()
        .rev()
        .find(|p| (p.0 - tip.0).abs() + (p.1 - tip.1).abs() > 0.5)
        .copied()
        .unwrap_or((tip.0, tip.1 - 1.0));
    let (mut dx, mut dy) = (tip.0 - from.0, tip.1 - from.1);
    let len = (dx * dx + dy * dy).sqrt();
    if len < 1e-3 {
        dx = 0.0;
        dy = 1.0;
    } else {
        dx /= len;
        dy /= len;
    }
    let (al, aw) = (9.0, 3.5);
    let base = (tip.0 - dx * al, tip.1 - dy * al);
    [
        tip,
        (base.0 - dy * aw, base.1 + dx * aw),
        (base.0 + dy * aw, base.1 - dx * aw),
    ]
}

/// The SVG path data of an edge: its cubic pieces.
pub fn edge_path(e: &LaidEdge) -> String {
    let p = &e.points;
    let mut d = format!("M{:.2},{:.2}", p[0].0, p[0].1);
    let mut i = 1;
    while i + 2 < p.len() {
        let _ = write!(
            d,
            " C{:.2},{:.2} {:.2},{:.2} {:.2},{:.2}",
            p[i].0,
            p[i].1,
            p[i + 1].0,
            p[i + 1].1,
            p[i + 2].0,
            p[i + 2].1
        );
        i += 3;
    }
    d
}

fn write_lines(
    out: &mut String,
    lines: &[String],
    cx: f32,
    top: f32,
    size: f32,
    color: Rgb,
    anchor: &str,
) {
    let lh = text::line_height(size);
    for (i, line) in lines.iter().enumerate() {
        let y = top + i as f32 * lh + text::ascent(size);
        let w = text::line_width(line, size);
        let _ = writeln!(
            out,
            r#"<text x="{cx:.2}" y="{y:.2}" font-size="{size}" fill="{}" text-anchor="{anchor}" textLength="{w:.2}" lengthAdjust="spacingAndGlyphs">{}</text>"#,
            rgb(color),
            escape(line)
        );
    }
}

/// Write a laid-out graph as a standalone SVG document.
pub fn write(l: &Layout) -> String {
    let mut out = String::with_capacity(4096 + l.nodes.len() * 400 + l.edges.len() * 200);
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{f}">"#,
        w = l.width,
        h = l.height,
        f = text::SVG_FONT_FAMILY
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    out.push_str("<g class=\"edges\">\n");
    for (ei, e) in l.edges.iter().enumerate() {
        let (from, to) = (&l.nodes[e.from], &l.nodes[e.to]);
        let _ = writeln!(
            out,
            r#"<g class="edge" id="edge{ei}" data-from="{}" data-to="{}">"#,
            escape(&node_id(from)),
            escape(&node_id(to))
        );
        let mut title = format!(
            "{} → {}",
            from.lines.first().map_or("", |s| s.as_str()),
            to.lines.first().map_or("", |s| s.as_str())
        );
        if let Some(lab) = &e.label {
            title.push_str(&format!(" ({})", lab.lines.join(" ")));
        }
        let _ = writeln!(out, "<title>{}</title>", escape_title(&title));
        let dash = if e.dotted {
            r#" stroke-dasharray="1.5,3""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="1"{dash}/>"#,
            edge_path(e),
            rgb(e.color)
        );
        let [a, b, c] = arrowhead(e);
        let _ = writeln!(
            out,
            r#"<polygon points="{:.2},{:.2} {:.2},{:.2} {:.2},{:.2}" fill="{c2}" stroke="{c2}"/>"#,
            a.0,
            a.1,
            b.0,
            b.1,
            c.0,
            c.1,
            c2 = rgb(e.color)
        );
        if let Some(lab) = &e.label {
            write_lines(
                &mut out,
                &lab.lines,
                lab.rect.x,
                lab.rect.y,
                lab.font_size,
                [0, 0, 0],
                "start",
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n<g class=\"nodes\">\n");
    for n in &l.nodes {
        let r = &n.rect;
        let st = &n.style;
        let stroke = if st.shape == Shape::Plain {
            "none".to_string()
        } else {
            rgb(st.stroke)
        };
        let class = match n.kind {
            NodeKind::Object => "object",
            NodeKind::DelMarker => "del",
            NodeKind::TooMany => "too-many",
        };
        let _ = writeln!(
            out,
            r#"<g class="node" id="{}"><title>{}</title><g class="{class}">"#,
            escape(&node_id(n)),
            escape_title(&n.title)
        );
        match st.shape {
            Shape::Box | Shape::Plain => {
                let _ = writeln!(
                    out,
                    r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{}" stroke="{stroke}"/>"#,
                    r.x,
                    r.y,
                    r.w,
                    r.h,
                    rgb(st.fill)
                );
            }
            Shape::Ellipse | Shape::DoubleCircle => {
                let _ = writeln!(
                    out,
                    r#"<ellipse cx="{:.2}" cy="{:.2}" rx="{:.2}" ry="{:.2}" fill="{}" stroke="{stroke}"/>"#,
                    r.cx(),
                    r.cy(),
                    r.w / 2.0,
                    r.h / 2.0,
                    rgb(st.fill)
                );
                if st.shape == Shape::DoubleCircle {
                    let _ = writeln!(
                        out,
                        r#"<ellipse cx="{:.2}" cy="{:.2}" rx="{:.2}" ry="{:.2}" fill="none" stroke="{stroke}"/>"#,
                        r.cx(),
                        r.cy(),
                        (r.w / 2.0 - 2.5).max(1.0),
                        (r.h / 2.0 - 2.5).max(1.0)
                    );
                }
            }
        }
        let lh = text::line_height(st.font_size);
        let top = r.cy() - lh * n.lines.len() as f32 / 2.0;
        write_lines(
            &mut out,
            &n.lines,
            r.cx(),
            top,
            st.font_size,
            st.font,
            "middle",
        );
        out.push_str("</g></g>\n");
    }
    out.push_str("</g>\n</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_invalid_characters() {
        assert_eq!(
            escape("<script>&\"'\u{0}\u{1b}é"),
            "&lt;script&gt;&amp;&quot;&#39;\u{FFFD}\u{FFFD}é"
        );
        assert_eq!(escape("</text>"), "&lt;/text&gt;");
    }
}
