//! A small SVG line chart writer: no plotting library, no fonts to find, the
//! same file on every machine. Used for the load test's plot.

use std::fmt::Write as _;

pub struct Series {
    pub name: String,
    pub color: &'static str,
    /// One value per x; NaN leaves a gap.
    pub values: Vec<f64>,
    pub dashed: bool,
}

pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The x values, drawn evenly spaced in this order (levels such as 100, 120, 150, 300 users).
    pub xs: Vec<f64>,
    pub series: Vec<Series>,
    /// Log-scale y axis (values must be > 0).
    pub log_y: bool,
    /// Optional text under each x position (e.g. the error rate).
    pub notes: Vec<String>,
}

pub const COLORS: [&str; 5] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// "Nice" tick values covering [lo, hi] on a linear axis.
fn linear_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= 6.0).unwrap_or(10.0 * mag);
    let mut t = (lo / step).floor() * step;
    let mut out = Vec::new();
    // Up to the first tick at or above `hi`.
    loop {
        out.push(t);
        if t >= hi - step * 1e-9 {
            break;
        }
        t += step;
    }
    if out.len() < 2 {
        out.push(lo + step);
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 || v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_owned()
    }
}

impl Chart {
    /// The chart as an SVG group at (`x0`, `y0`), `w` x `h` pixels.
    pub fn render(&self, x0: f64, y0: f64, w: f64, h: f64) -> String {
        let (ml, mr, mt, mb) = (70.0, 30.0, 34.0, 62.0);
        let (pw, ph) = (w - ml - mr, h - mt - mb);
        let finite: Vec<f64> =
            self.series.iter().flat_map(|s| s.values.iter().copied()).filter(|v| v.is_finite()).collect();
        let (mut lo, mut hi) =
            finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let log_y = self.log_y && lo > 0.0;
        let ticks: Vec<f64> = if log_y {
            let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
            let b = if b == a { a + 1 } else { b };
            (a..=b).flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e))).filter(|t| *t >= 10f64.powi(a)).collect()
        } else {
            linear_ticks(0.0f64.min(lo), hi * 1.08)
        };
        let (ylo, yhi) = if log_y {
            (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0))
        } else {
            (ticks[0], *ticks.last().unwrap_or(&1.0))
        };
        let ty = |v: f64| {
            let v = if log_y { v.log10() } else { v };
            y0 + mt + ph - (v - ylo) / (yhi - ylo).max(1e-9) * ph
        };
        let slots = self.xs.len().max(1) as f64;
        let tx = |i: usize| x0 + ml + (i as f64 + 0.5) / slots * pw;

        let mut g = String::new();
        let _ = writeln!(g, r#"<g font-family="sans-serif" font-size="12">"#);
        let _ = writeln!(
            g,
            r#"<text x="{:.1}" y="{:.1}" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
            x0 + ml + pw / 2.0,
            y0 + 20.0,
            esc(&self.title)
        );
        let _ = writeln!(
            g,
            r##"<rect x="{:.1}" y="{:.1}" width="{pw:.1}" height="{ph:.1}" fill="#fff" stroke="#888"/>"##,
            x0 + ml,
            y0 + mt
        );
        for t in ticks.iter().filter(|t| !log_y || (t.log10() >= ylo - 1e-9 && t.log10() <= yhi + 1e-9)) {
            let y = ty(*t);
            let _ = writeln!(
                g,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                x0 + ml,
                x0 + ml + pw,
                x0 + ml - 6.0,
                y + 4.0,
                fmt_tick(*t)
            );
        }
        for (i, x) in self.xs.iter().enumerate() {
            let px = tx(i);
            let _ = writeln!(
                g,
                r##"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="#e4e4e4"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                y0 + mt,
                y0 + mt + ph,
                y0 + mt + ph + 16.0,
                fmt_tick(*x)
            );
            if let Some(note) = self.notes.get(i).filter(|n| !n.is_empty()) {
                let _ = writeln!(
                    g,
                    r##"<text x="{px:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#a00">{}</text>"##,
                    y0 + mt + ph + 30.0,
                    esc(note)
                );
            }
        }
        let _ = writeln!(
            g,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x0 + ml + pw / 2.0,
            y0 + h - 8.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            g,
            r#"<text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            x0 + 16.0,
            y0 + mt + ph / 2.0,
            esc(&format!("{}{}", self.y_label, if log_y { " (log scale)" } else { "" }))
        );
        for (n, s) in self.series.iter().enumerate() {
            let mut d = String::new();
            let mut pen_up = true;
            for (i, v) in s.values.iter().enumerate().take(self.xs.len()) {
                if !v.is_finite() || (log_y && *v <= 0.0) {
                    pen_up = true;
                    continue;
                }
                let _ = write!(d, "{}{:.1},{:.1} ", if pen_up { "M" } else { "L" }, tx(i), ty(*v));
                pen_up = false;
            }
            let dash = if s.dashed { r#" stroke-dasharray="6,4""# } else { "" };
            let _ = writeln!(g, r#"<path d="{d}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#, s.color);
            for (i, v) in s.values.iter().enumerate().take(self.xs.len()) {
                if v.is_finite() && (!log_y || *v > 0.0) {
                    let _ = writeln!(
                        g,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: {}</title></circle>"#,
                        tx(i),
                        ty(*v),
                        s.color,
                        esc(&s.name),
                        fmt_tick(*v)
                    );
                }
            }
            // Legend, top left inside the plot.
            let ly = y0 + mt + 16.0 + 16.0 * n as f64;
            let _ = writeln!(
                g,
                r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
                x0 + ml + 10.0,
                x0 + ml + 34.0,
                s.color,
                x0 + ml + 40.0,
                ly + 4.0,
                esc(&s.name)
            );
        }
        g.push_str("</g>\n");
        g
    }
}

/// Charts stacked vertically into one SVG document.
pub fn document(title: &str, charts: &[Chart], width: f64, chart_height: f64) -> String {
    let height = 40.0 + chart_height * charts.len() as f64;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}">
<rect width="100%" height="100%" fill="#fafafa"/>
<text x="{:.1}" y="26" font-family="sans-serif" font-size="17" font-weight="bold" text-anchor="middle">{}</text>
"##,
        width / 2.0,
        esc(title)
    );
    for (i, chart) in charts.iter().enumerate() {
        svg.push_str(&chart.render(0.0, 40.0 + chart_height * i as f64, width, chart_height));
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let t = linear_ticks(0.0, 107.0);
        assert_eq!(t.first(), Some(&0.0));
        assert!(*t.last().unwrap() >= 107.0);
        assert!(t.len() <= 8);
    }

    #[test]
    fn a_document_is_well_formed_enough() {
        let chart = Chart {
            title: "t <1>".into(),
            x_label: "users".into(),
            y_label: "ms".into(),
            xs: vec![100.0, 300.0, 800.0],
            series: vec![Series {
                name: "p50".into(),
                color: COLORS[0],
                values: vec![1.0, f64::NAN, 30.0],
                dashed: false,
            }],
            log_y: true,
            notes: vec!["0%".into(), String::new(), "2%".into()],
        };
        let svg = document("x & y", &[chart], 800.0, 300.0);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &lt;1&gt;") && svg.contains("x &amp; y"));
        assert_eq!(svg.matches("<circle").count(), 2);
    }
}
