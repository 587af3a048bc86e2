//! The plot next to the report: latency distributions as CDF curves on a
//! log time axis, one colour per sample.

use std::fmt::Write as _;
use std::time::Duration;

use crate::stats::d;

/// Latency distributions as CDF curves on a log time axis.
pub fn plot(dist: &[(String, Vec<Duration>)]) -> String {
    let (w, h, left, right, top, bottom) = (900.0, 520.0, 70.0, 260.0, 30.0, 50.0);
    let all: Vec<f64> = dist
        .iter()
        .flat_map(|(_, s)| s.iter().map(|d| d.as_nanos().max(1) as f64))
        .collect();
    let lo = all
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1.0)
        .log10()
        .floor();
    let hi = all
        .iter()
        .copied()
        .fold(1.0, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let x = |ns: f64| left + (ns.max(1.0).log10() - lo) / (hi - lo) * (w - left - right);
    let y = |q: f64| top + (1.0 - q) * (h - top - bottom);
    let colours = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22",
    ];
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="18" font-size="14">Latency distributions (CDF, log time axis)</text>"#
    );
    for decade in (lo as i32)..=(hi as i32) {
        let px = x(10f64.powi(decade));
        let label = d(Duration::from_nanos(10u64.pow(decade.max(0) as u32)));
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            h - bottom
        );
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            h - bottom + 18.0
        );
    }
    for q in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let py = y(q);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#eee"/>"##,
            w - right
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">p{}</text>"#,
            left - 6.0,
            py + 4.0,
            (q * 100.0) as u32
        );
    }
    for (i, (name, sample)) in dist.iter().enumerate() {
        let mut sorted: Vec<f64> = sample.iter().map(|d| d.as_nanos() as f64).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len().max(1) as f64;
        let step = (sorted.len() / 400).max(1);
        let points: Vec<String> = sorted
            .iter()
            .enumerate()
            .filter(|(k, _)| k % step == 0 || *k + 1 == sorted.len())
            .map(|(k, ns)| format!("{:.1},{:.1}", x(*ns), y((k + 1) as f64 / n)))
            .collect();
        let colour = colours[i % colours.len()];
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{}"/>"#,
            points.join(" ")
        );
        let ly = top + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="3" fill="{colour}"/>"#,
            w - right + 12.0,
            ly + 4.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{name}</text>"#,
            w - right + 30.0,
            ly + 9.0
        );
    }
    let _ = writeln!(svg, "</svg>");
    svg
}
