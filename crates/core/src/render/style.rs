//! How a node looks: colours and shape, from objgraph's decoration and `extra_node_attrs`.

use crate::view::{DrawNode, Hsv};

/// An RGB colour.
pub type Rgb = [u8; 3];

pub const BLACK: Rgb = [0, 0, 0];
pub const WHITE: Rgb = [255, 255, 255];
pub const RED: Rgb = [255, 0, 0];

/// Outline of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Box,
    Ellipse,
    DoubleCircle,
    /// No outline (`plaintext`, `none`).
    Plain,
}

/// Everything needed to draw a node's body.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeStyle {
    pub shape: Shape,
    pub fill: Rgb,
    pub stroke: Rgb,
    pub font: Rgb,
    pub font_size: f32,
}

/// Parse a Graphviz colour: a common X11 name, `#rrggbb`, or `"h,s,v"` / `"h s v"`.
pub fn parse_color(s: &str) -> Option<Rgb> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        if hex.len() >= 6 && hex.is_ascii() {
            let p = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
            return Some([p(0)?, p(2)?, p(4)?]);
        }
        return None;
    }
    let parts: Vec<&str> = s
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() == 3 {
        let v: Vec<f64> = parts.iter().filter_map(|p| p.parse().ok()).collect();
        if v.len() == 3 {
            return Some(Hsv::new(v[0], v[1], v[2]).to_rgb());
        }
    }
    let named: Rgb = match s.to_ascii_lowercase().as_str() {
        "black" => BLACK,
        "white" => WHITE,
        "red" => RED,
        "green" => [0, 255, 0],
        "darkgreen" => [0, 100, 0],
        "blue" => [0, 0, 255],
        "navy" => [0, 0, 128],
        "yellow" => [255, 255, 0],
        "orange" => [255, 165, 0],
        "gold" => [255, 215, 0],
        "purple" => [160, 32, 240],
        "magenta" => [255, 0, 255],
        "cyan" => [0, 255, 255],
        "pink" => [255, 192, 203],
        "brown" => [165, 42, 42],
        "gray" | "grey" => [192, 192, 192],
        "darkgray" | "darkgrey" => [169, 169, 169],
        "lightgray" | "lightgrey" => [211, 211, 211],
        "lightblue" => [173, 216, 230],
        "lightyellow" => [255, 255, 224],
        "lightpink" => [255, 182, 193],
        "salmon" => [250, 128, 114],
        "transparent" | "none" => return None,
        _ => return None,
    };
    Some(named)
}

/// The style of an object node: objgraph's colours, then what `extra_node_attrs` says about
/// `color`, `fillcolor`, `fontcolor`, `fontsize` and `shape` (other attributes are ignored).
pub fn node_style(n: &DrawNode) -> NodeStyle {
    let mut st = NodeStyle {
        shape: Shape::Box,
        fill: n.fill.to_rgb(),
        stroke: BLACK,
        font: n.font_color,
        font_size: 14.0,
    };
    for (k, v) in &n.attrs {
        match k.as_str() {
            "color" => st.stroke = parse_color(v).unwrap_or(st.stroke),
            "fillcolor" => st.fill = parse_color(v).unwrap_or(st.fill),
            "fontcolor" => st.font = parse_color(v).unwrap_or(st.font),
            "fontsize" => {
                if let Ok(size) = v.trim().parse::<f32>() {
                    if size.is_finite() {
                        st.font_size = size.clamp(4.0, 48.0);
                    }
                }
            }
            "shape" => {
                st.shape = match v.trim().to_ascii_lowercase().as_str() {
                    "ellipse" | "oval" | "circle" | "egg" => Shape::Ellipse,
                    "doublecircle" | "doubleoctagon" => Shape::DoubleCircle,
                    "plaintext" | "plain" | "none" | "underline" => Shape::Plain,
                    _ => Shape::Box,
                }
            }
            _ => {}
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours() {
        assert_eq!(parse_color("#ff8000"), Some([255, 128, 0]));
        assert_eq!(parse_color("red"), Some(RED));
        assert_eq!(parse_color("0,0,1"), Some(WHITE));
        assert_eq!(
            parse_color("0.6 0.6 0.75"),
            Some(Hsv::new(0.6, 0.6, 0.75).to_rgb())
        );
        assert_eq!(parse_color("#zz"), None);
        assert_eq!(parse_color("no such colour"), None);
        assert_eq!(Hsv::new(0.0, 0.0, 0.3).to_rgb(), [77, 77, 77]);
        assert_eq!(Hsv::new(0.3, 1.0, 1.0).to_rgb(), [51, 255, 0]);
    }
}
