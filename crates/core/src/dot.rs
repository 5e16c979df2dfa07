//! The DOT writer: objgraph's text, byte for byte, from a [`View`].

use crate::view::{Hsv, View};
use std::fmt::Write;

/// Quote a string for a DOT double-quoted value the way objgraph does: backslash, double quote,
/// newline and NUL are escaped; everything else is kept.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\0' => out.push_str("\\\\0"),
            c => out.push(c),
        }
    }
    out
}

/// Format a float as Python's `'%g' % x` does (6 significant digits, trailing zeros removed).
pub fn fmt_g(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.5e}", x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let m = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", m, sign, exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn hsv(c: Hsv) -> String {
    format!("{},{},{}", fmt_g(c.h), fmt_g(c.s), fmt_g(c.v))
}

/// Write the whole graph as objgraph writes it.
pub fn write_dot(view: &View) -> String {
    let mut f = String::with_capacity(256 + view.visits.len() * 160);
    f.push_str("digraph ObjectGraph {\n  node[shape=box, style=filled, fillcolor=white];\n");
    for key in &view.roots {
        let _ = writeln!(f, "  {}[fontcolor=red];", key);
    }
    for visit in &view.visits {
        let key = &visit.key;
        let attrs = match &visit.attrs {
            None => String::new(),
            Some(list) => {
                let parts: Vec<String> = list
                    .iter()
                    .map(|(k, v)| format!("{}=\"{}\"", k, quote(v)))
                    .collect();
                format!(", {}", parts.join(", "))
            }
        };
        let _ = writeln!(f, "  {}[label=\"{}\"{}];", key, quote(&visit.label), attrs);
        let _ = writeln!(f, "  {}[fillcolor=\"{}\"];", key, hsv(visit.fill));
        if visit.fill.v < 0.5 {
            let _ = writeln!(f, "  {}[fontcolor=white];", key);
        }
        if visit.has_del {
            let _ = writeln!(
                f,
                "  {k}->{k}_has_a_del[color=red,style=dotted,len=0.25,weight=10];",
                k = key
            );
            let _ = writeln!(
                f,
                "  {}_has_a_del[label=\"__del__\",shape=doublecircle,height=0.25,color=red,fillcolor=\"0,.5,1\",fontsize=6];",
                key
            );
        }
        for edge in &view.edges[visit.edges.clone()] {
            let label = match &edge.label {
                None => String::new(),
                Some(l) => match l.weight {
                    Some(w) => format!(" [label=\"{}\",weight={}]", quote(&l.text), w),
                    None => format!(" [label=\"{}\"]", quote(&l.text)),
                },
            };
            let _ = writeln!(f, "  {} -> {}{};", edge.from, edge.to, label);
        }
        if let Some((skipped, fill)) = visit.too_many {
            let (edge, what) = if view.backrefs {
                (format!("too_many_{k}->{k}", k = key), "backreferences")
            } else {
                (format!("{k}->too_many_{k}", k = key), "references")
            };
            let _ = writeln!(f, "  {}[color=red,style=dotted,len=0.25,weight=10];", edge);
            let _ = writeln!(
                f,
                "  too_many_{}[label=\"{} more {}\",shape=box,height=0.25,color=red,fillcolor=\"{}\",fontsize=6];",
                key,
                skipped,
                what,
                hsv(fill)
            );
            let _ = writeln!(f, "  too_many_{}[fontcolor=white];", key);
        }
    }
    f.push_str("}\n");
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{Edge, EdgeLabel, Visit};

    #[test]
    fn g_format_matches_python() {
        // Expected values printed by CPython's '%g' % x.
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (0.0, "0"),
            (0.3, "0.3"),
            (0.6, "0.6"),
            (0.7666666666666666, "0.766667"),
            (0.5333333333333333, "0.533333"),
            (0.1 + 0.2, "0.3"),
            (0.825, "0.825"),
            (1e-5, "1e-05"),
            (123456789.0, "1.23457e+08"),
            (0.0001, "0.0001"),
            (999999.5, "1e+06"),
            (0.965, "0.965"),
        ];
        for (x, want) in cases {
            assert_eq!(fmt_g(*x), *want, "formatting {x}");
        }
    }

    #[test]
    fn quote_escapes_like_objgraph() {
        assert_eq!(quote("a\"b\\c\nd\0e"), "a\\\"b\\\\c\\nd\\\\0e");
        assert_eq!(quote("é<>&"), "é<>&");
    }

    #[test]
    fn writes_objgraph_text() {
        let view = View {
            roots: vec!["o1".into()],
            visits: vec![
                Visit {
                    key: "o1".into(),
                    label: "list\n2 items".into(),
                    depth: 0,
                    fill: Hsv::new(0.0, 0.0, 1.0),
                    has_del: true,
                    attrs: Some(vec![("URL".into(), "x\"y".into())]),
                    edges: 0..1,
                    too_many: Some((3, Hsv::new(0.0, 1.0, 0.766667))),
                },
                Visit {
                    key: "o2".into(),
                    label: "dict\n0 items".into(),
                    depth: 1,
                    fill: Hsv::new(0.0, 0.0, 0.3),
                    has_del: false,
                    attrs: None,
                    edges: 1..1,
                    too_many: None,
                },
            ],
            edges: vec![Edge {
                from: "o1".into(),
                to: "o2".into(),
                label: Some(EdgeLabel {
                    text: "__dict__".into(),
                    weight: Some(10),
                }),
            }],
            backrefs: false,
        };
        let want = "digraph ObjectGraph {\n  node[shape=box, style=filled, fillcolor=white];\n  o1[fontcolor=red];\n  o1[label=\"list\\n2 items\", URL=\"x\\\"y\"];\n  o1[fillcolor=\"0,0,1\"];\n  o1->o1_has_a_del[color=red,style=dotted,len=0.25,weight=10];\n  o1_has_a_del[label=\"__del__\",shape=doublecircle,height=0.25,color=red,fillcolor=\"0,.5,1\",fontsize=6];\n  o1 -> o2 [label=\"__dict__\",weight=10];\n  o1->too_many_o1[color=red,style=dotted,len=0.25,weight=10];\n  too_many_o1[label=\"3 more references\",shape=box,height=0.25,color=red,fillcolor=\"0,1,0.766667\",fontsize=6];\n  too_many_o1[fontcolor=white];\n  o2[label=\"dict\\n0 items\"];\n  o2[fillcolor=\"0,0,0.3\"];\n  o2[fontcolor=white];\n}\n";
        assert_eq!(write_dot(&view), want);
    }
}
