//! Hand-written inline SVG charts: waterfall, grouped bars and lines.
//!
//! Every chart is a `<figure data-chart=… data-empty=…>` holding one `<svg role="img">` with a
//! `<title>` and `<desc>`, a `<title>` tooltip on every mark, direct value labels, and a data
//! table under `<details>`. Series differ by fill pattern, line dash and marker shape as well as
//! colour, so the charts read in greyscale; colours come from CSS variables the page sets for
//! light and dark schemes. Numbers are formatted with fixed precision, so the same data gives
//! the same bytes.

use std::fmt::Write as _;

/// Width of every chart, in SVG user units.
const W: f64 = 760.0;

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// An integer with thousands separators: `1,234,567`.
pub fn int(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// A number for an axis or label: integers plainly, others with up to 3 significant decimals.
pub fn num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        return int_signed(v as i64);
    }
    let s = if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn int_signed(v: i64) -> String {
    if v < 0 {
        format!("-{}", int(v.unsigned_abs()))
    } else {
        int(v as u64)
    }
}

/// A label cut to `n` characters (with an ellipsis); the full text stays in tooltips and tables.
fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!(
            "…{}",
            s.chars()
                .skip(s.chars().count() - (n - 1))
                .collect::<String>()
        )
    }
}

/// A value with four significant digits (small scores stay readable: `0.0001234`).
pub fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return num(v);
    }
    let d = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.d$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Coordinates with two decimals (stable text).
fn c(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// About five round tick values covering `[0, max]`.
fn ticks(max: f64) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0, 1.0];
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| max / s <= 5.0)
        .unwrap_or(10.0 * mag);
    let n = (max / step).ceil() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

/// A chart's identity and text.
#[derive(Debug, Clone)]
pub struct Meta<'a> {
    /// Stable id (`data-chart`).
    pub id: &'a str,
    /// Heading.
    pub title: &'a str,
    /// One or two sentences: what is plotted, from where.
    pub desc: &'a str,
}

fn open_svg(o: &mut String, m: &Meta<'_>, h: f64) {
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {}\" width=\"{W}\" height=\"{}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>",
        c(h),
        c(h),
        esc(m.title),
        esc(m.desc),
        id = m.id,
    );
}

fn figure(m: &Meta<'_>, svg: &str, table: &str, empty: bool) -> String {
    format!(
        "<figure class=\"chart\" id=\"chart-{id}\" data-chart=\"{id}\" data-empty=\"{empty}\">\n<figcaption><strong>{}</strong> {}</figcaption>\n{svg}\n{table}</figure>\n",
        esc(m.title),
        esc(m.desc),
        id = m.id,
    )
}

fn table(head: &[String], rows: &[Vec<String>]) -> String {
    let mut o = String::from("<details><summary>Data</summary><table><thead><tr>");
    for h in head {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr></thead><tbody>");
    for r in rows {
        o.push_str("<tr>");
        for (i, v) in r.iter().enumerate() {
            if i == 0 {
                let _ = write!(o, "<th scope=\"row\">{}</th>", esc(v));
            } else {
                let _ = write!(o, "<td>{}</td>", esc(v));
            }
        }
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table></details>\n");
    o
}

/// A chart that has nothing to plot says so, in the same place and shape as the chart.
pub fn empty(m: &Meta<'_>, why: &str) -> String {
    let mut o = String::new();
    open_svg(&mut o, m, 60.0);
    let _ = write!(
        o,
        "<rect class=\"frame\" x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"59\"/><text class=\"note\" x=\"16\" y=\"35\">No data: {}</text></svg>",
        c(W - 1.0),
        esc(why)
    );
    figure(m, &o, "", true)
}

/// One row of a waterfall.
#[derive(Debug, Clone)]
pub struct WfRow {
    /// Label (step and reason, or a total).
    pub label: String,
    /// Amount before the row.
    pub from: u64,
    /// Amount after it (equal to `from` for a total bar drawn from zero).
    pub to: u64,
    /// A total (bar from 0 to `to`) rather than a removal.
    pub total: bool,
}

/// A horizontal waterfall: totals as full bars, each removal as a floating bar from what was
/// left before it to what was left after.
pub fn waterfall(m: &Meta<'_>, unit: &str, rows: &[WfRow]) -> String {
    let max = rows.iter().map(|r| r.from.max(r.to)).max().unwrap_or(0);
    if rows.is_empty() || max == 0 {
        return empty(m, &format!("no {unit} were read"));
    }
    let (lw, vw, top, rh) = (300.0, 150.0, 26.0, 20.0);
    let bw = W - lw - vw - 10.0;
    let h = top + rh * rows.len() as f64 + 30.0;
    let x = |v: u64| lw + bw * v as f64 / max as f64;
    let mut o = String::new();
    open_svg(&mut o, m, h);
    // Axis ticks.
    for t in ticks(max as f64) {
        if t > max as f64 * 1.0001 {
            break;
        }
        let xx = x(t as u64);
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/><text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            c(xx),
            c(xx),
            c(top - 4.0),
            c(h - 26.0),
            c(xx),
            c(h - 12.0),
            num(t)
        );
    }
    let _ = write!(
        o,
        "<text class=\"axis-label\" x=\"{}\" y=\"14\" text-anchor=\"middle\">{}</text>",
        c(lw + bw / 2.0),
        esc(unit)
    );
    let mut trows = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let y = top + rh * i as f64;
        let (a, b, cls, value) = if r.total {
            (0, r.to, "bar s0", int(r.to))
        } else {
            let d = r.from.saturating_sub(r.to);
            let pct = 100.0 * d as f64 / max as f64;
            (r.to, r.from, "bar s1", format!("−{} ({pct:.1}%)", int(d)))
        };
        let wbar = (x(b) - x(a)).max(1.0);
        let _ = write!(
            o,
            "<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect class=\"{cls}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}: {}</title></rect><text class=\"value\" x=\"{}\" y=\"{}\">{}</text>",
            c(lw - 6.0),
            c(y + 14.0),
            esc(&shorten(&r.label, 46)),
            c(x(a)),
            c(y + 3.0),
            c(wbar),
            c(rh - 6.0),
            esc(&r.label),
            esc(&value),
            c(x(max) + 6.0),
            c(y + 14.0),
            esc(&value),
        );
        trows.push(vec![r.label.clone(), int(r.from), int(r.to), value]);
    }
    o.push_str("</svg>");
    let t = table(
        &[
            "row".into(),
            format!("{unit} before"),
            format!("{unit} after"),
            "change".into(),
        ],
        &trows,
    );
    figure(m, &o, &t, false)
}

/// A named series of values, one per category.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Plotted values.
    pub values: Vec<f64>,
    /// The value as shown in tooltips and the table (e.g. a count next to a share).
    pub shown: Vec<String>,
}

fn legend(o: &mut String, names: &[&str], y: f64, lines: bool) {
    let mut x = 60.0;
    for (i, n) in names.iter().enumerate() {
        if lines {
            let _ = write!(
                o,
                "<line class=\"series l{i}\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>{}",
                c(x),
                c(x + 24.0),
                c(y - 4.0),
                c(y - 4.0),
                marker(i, x + 12.0, y - 4.0, "")
            );
        } else {
            let _ = write!(
                o,
                "<rect class=\"bar s{i}\" x=\"{}\" y=\"{}\" width=\"14\" height=\"12\"/>",
                c(x + 5.0),
                c(y - 10.0)
            );
        }
        let _ = write!(
            o,
            "<text class=\"legend\" x=\"{}\" y=\"{}\">{}</text>",
            c(x + 30.0),
            c(y),
            esc(n)
        );
        x += 40.0 + 7.0 * n.chars().count() as f64;
    }
}

/// Vertical grouped bars: one group per category, one bar per series.
pub fn bars(m: &Meta<'_>, y_label: &str, categories: &[String], series: &[Series]) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0f64, f64::max);
    if categories.is_empty() || max <= 0.0 {
        return empty(m, "every count is zero");
    }
    let (left, right, top, bottom) = (70.0, 20.0, 34.0, 70.0);
    let h = 320.0;
    let pw = W - left - right;
    let ph = h - top - bottom;
    let ts = ticks(max);
    let ymax = *ts.last().unwrap_or(&max);
    let y = |v: f64| top + ph - ph * v / ymax;
    let mut o = String::new();
    open_svg(&mut o, m, h);
    for t in &ts {
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/><text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            c(left),
            c(W - right),
            c(y(*t)),
            c(y(*t)),
            c(left - 6.0),
            c(y(*t) + 4.0),
            num(*t)
        );
    }
    let _ = write!(
        o,
        "<text class=\"axis-label\" transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        c(top + ph / 2.0),
        esc(y_label)
    );
    let gw = pw / categories.len() as f64;
    let bw = (gw * 0.8 / series.len() as f64).min(40.0);
    let rotate = categories.len() > 8 || categories.iter().any(|s| s.chars().count() > 10);
    for (ci, cat) in categories.iter().enumerate() {
        let gx = left + gw * ci as f64 + (gw - bw * series.len() as f64) / 2.0;
        for (si, s) in series.iter().enumerate() {
            let v = s.values.get(ci).copied().unwrap_or(0.0);
            let shown = s.shown.get(ci).cloned().unwrap_or_else(|| num(v));
            let bx = gx + bw * si as f64;
            let _ = write!(
                o,
                "<rect class=\"bar s{si}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{} — {}: {}</title></rect>",
                c(bx),
                c(y(v)),
                c((bw - 1.0).max(1.0)),
                c(top + ph - y(v)),
                esc(cat),
                esc(&s.name),
                esc(&shown)
            );
        }
        let cx = left + gw * (ci as f64 + 0.5);
        if rotate {
            let _ = write!(
                o,
                "<text class=\"tick\" transform=\"translate({} {}) rotate(-35)\" text-anchor=\"end\">{}</text>",
                c(cx + 4.0),
                c(top + ph + 14.0),
                esc(cat)
            );
        } else {
            let _ = write!(
                o,
                "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                c(cx),
                c(top + ph + 16.0),
                esc(cat)
            );
        }
    }
    let _ = write!(
        o,
        "<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>",
        c(left),
        c(W - right),
        c(top + ph),
        c(top + ph)
    );
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    legend(&mut o, &names, 18.0, false);
    o.push_str("</svg>");
    let mut head = vec!["category".to_string()];
    head.extend(series.iter().map(|s| s.name.clone()));
    let rows: Vec<Vec<String>> = categories
        .iter()
        .enumerate()
        .map(|(ci, cat)| {
            let mut r = vec![cat.clone()];
            for s in series {
                r.push(
                    s.shown
                        .get(ci)
                        .cloned()
                        .unwrap_or_else(|| num(s.values.get(ci).copied().unwrap_or(0.0))),
                );
            }
            r
        })
        .collect();
    figure(m, &o, &table(&head, &rows), false)
}

fn marker(i: usize, x: f64, y: f64, title: &str) -> String {
    let t = if title.is_empty() {
        String::new()
    } else {
        format!("<title>{}</title>", esc(title))
    };
    match i % 3 {
        0 => format!(
            "<circle class=\"marker m{i}\" cx=\"{}\" cy=\"{}\" r=\"3.5\">{t}</circle>",
            c(x),
            c(y)
        ),
        1 => format!(
            "<rect class=\"marker m{i}\" x=\"{}\" y=\"{}\" width=\"7\" height=\"7\">{t}</rect>",
            c(x - 3.5),
            c(y - 3.5)
        ),
        _ => format!(
            "<path class=\"marker m{i}\" d=\"M{} {}L{} {}L{} {}Z\">{t}</path>",
            c(x),
            c(y - 4.5),
            c(x + 4.5),
            c(y + 3.5),
            c(x - 4.5),
            c(y + 3.5)
        ),
    }
}

/// A named series of points.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend name.
    pub name: String,
    /// Points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// Options of a line chart.
#[derive(Debug, Clone)]
pub struct LineOpts<'a> {
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// X range.
    pub x: (f64, f64),
    /// Y range.
    pub y: (f64, f64),
    /// Draw the y = x diagonal (reliability diagrams).
    pub diagonal: bool,
    /// A labelled vertical marker.
    pub vline: Option<(f64, String)>,
}

/// Lines with markers.
pub fn lines(m: &Meta<'_>, o_: &LineOpts<'_>, series: &[Line]) -> String {
    if series.iter().all(|s| s.points.is_empty()) {
        return empty(m, "no points to plot");
    }
    let (left, right, top, bottom) = (70.0, 20.0, 34.0, 50.0);
    let h = 340.0;
    let pw = W - left - right;
    let ph = h - top - bottom;
    let (x0, x1) = o_.x;
    let (y0, y1) = o_.y;
    let sx = |v: f64| left + pw * (v - x0) / (x1 - x0).max(f64::MIN_POSITIVE);
    let sy = |v: f64| top + ph - ph * (v - y0) / (y1 - y0).max(f64::MIN_POSITIVE);
    let mut o = String::new();
    open_svg(&mut o, m, h);
    for i in 0..=5 {
        let f = i as f64 / 5.0;
        let (xv, yv) = (x0 + (x1 - x0) * f, y0 + (y1 - y0) * f);
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/><text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/><text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            c(left),
            c(W - right),
            c(sy(yv)),
            c(sy(yv)),
            c(left - 6.0),
            c(sy(yv) + 4.0),
            num(yv),
            c(sx(xv)),
            c(sx(xv)),
            c(top),
            c(top + ph),
            c(sx(xv)),
            c(top + ph + 16.0),
            num(xv)
        );
    }
    let _ = write!(
        o,
        "<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text><text class=\"axis-label\" transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        c(left + pw / 2.0),
        c(h - 10.0),
        esc(o_.x_label),
        c(top + ph / 2.0),
        esc(o_.y_label)
    );
    if o_.diagonal {
        let _ = write!(
            o,
            "<line class=\"reference\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"><title>perfect calibration</title></line>",
            c(sx(x0.max(y0))),
            c(sy(x0.max(y0))),
            c(sx(x1.min(y1))),
            c(sy(x1.min(y1)))
        );
    }
    if let Some((v, label)) = &o_.vline {
        let _ = write!(
            o,
            "<line class=\"reference\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/><text class=\"tick\" x=\"{}\" y=\"{}\">{}</text>",
            c(sx(*v)),
            c(sx(*v)),
            c(top),
            c(top + ph),
            c(sx(*v) + 4.0),
            c(top + 12.0),
            esc(label)
        );
    }
    for (i, s) in series.iter().enumerate() {
        if s.points.is_empty() {
            continue;
        }
        let mut d = String::new();
        for (k, (x, y)) in s.points.iter().enumerate() {
            let _ = write!(
                d,
                "{}{} {}",
                if k == 0 { "M" } else { "L" },
                c(sx(*x)),
                c(sy(*y))
            );
        }
        let _ = write!(o, "<path class=\"series l{i}\" d=\"{d}\"/>");
        for (x, y) in &s.points {
            o.push_str(&marker(
                i,
                sx(*x),
                sy(*y),
                &format!("{}: ({}, {})", s.name, num(*x), num(*y)),
            ));
        }
    }
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    legend(&mut o, &names, 18.0, true);
    o.push_str("</svg>");
    let mut rows = Vec::new();
    for s in series {
        for (x, y) in &s.points {
            rows.push(vec![s.name.clone(), num(*x), num(*y)]);
        }
    }
    let t = table(
        &["series".into(), o_.x_label.into(), o_.y_label.into()],
        &rows,
    );
    figure(m, &o, &t, false)
}

/// The page-wide `<defs>` the charts' patterns refer to (one hidden SVG at the top of the page).
pub fn defs() -> &'static str {
    "<svg class=\"defs\" width=\"0\" height=\"0\" aria-hidden=\"true\" focusable=\"false\"><defs>\
<pattern id=\"hatch\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" patternTransform=\"rotate(45)\"><rect class=\"hatch-bg\" width=\"6\" height=\"6\"/><line class=\"hatch-fg\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\"/></pattern>\
<pattern id=\"dots\" patternUnits=\"userSpaceOnUse\" width=\"5\" height=\"5\"><rect class=\"dots-bg\" width=\"5\" height=\"5\"/><circle class=\"dots-fg\" cx=\"2.5\" cy=\"2.5\" r=\"1.2\"/></pattern>\
</defs></svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_and_stable() {
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(int(12), "12");
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(3.0), "3");
        assert_eq!(num(-1500.0), "-1,500");
        assert_eq!(c(1.0 / 3.0), "0.33");
        assert_eq!(sig(0.000123456), "0.0001235");
        assert_eq!(sig(0.5), "0.5");
        assert_eq!(sig(12.3456), "12.35");
        assert_eq!(shorten("abcdef", 4), "…def");
    }

    #[test]
    fn ticks_are_round_and_cover_the_maximum() {
        assert_eq!(ticks(1983.0), vec![0.0, 500.0, 1000.0, 1500.0, 2000.0]);
        assert_eq!(ticks(1.0).len(), 6);
        assert!(*ticks(7.0).last().unwrap() >= 7.0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        let m = Meta {
            id: "x",
            title: "<t>",
            desc: "d",
        };
        let s = empty(&m, "none & nothing");
        assert!(s.contains("data-empty=\"true\""));
        assert!(s.contains("none &amp; nothing"));
    }

    #[test]
    fn bars_mark_every_value() {
        let m = Meta {
            id: "b",
            title: "t",
            desc: "d",
        };
        let s = bars(
            &m,
            "docs",
            &["a".into(), "b".into()],
            &[Series {
                name: "n".into(),
                values: vec![1.0, 3.0],
                shown: vec![],
            }],
        );
        assert_eq!(s.matches("<rect class=\"bar s0\"").count(), 3); // two bars + legend
        assert!(s.contains("data-empty=\"false\""));
    }
}
