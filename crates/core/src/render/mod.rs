//! Drawing graphs natively, with no Graphviz: layout, SVG and PNG.
//!
//! * [`layout`] places nodes, markers, edges and edge labels.
//! * [`svg`] writes the layout as SVG; [`png`] draws it with tiny-skia.
//! * [`text`] measures and draws text with DejaVu Sans, embedded in the binary.
//! * [`style`] maps objgraph's colours and `extra_node_attrs` to drawing.

pub mod layout;
pub mod png;
pub mod style;
pub mod svg;
pub mod text;

#[cfg(test)]
mod tests;

pub use layout::{layout, Layout};
pub use png::RenderError;

use crate::view::View;

/// The view as an SVG document.
pub fn to_svg(view: &View) -> String {
    svg::write(&layout(view))
}

/// The view as PNG bytes.
pub fn to_png(view: &View) -> Result<Vec<u8>, RenderError> {
    png::draw(&layout(view))
}
