//! Charts as hand-written SVG, rendered on the server: no script, readable at 360 px, and
//! printed with the page.
//!
//! Colours are from the Okabe–Ito palette, designed to be told apart with the common colour
//! vision deficiencies (Okabe & Ito, "Color Universal Design", 2008); every bar also carries
//! its value as text, so colour is never the only cue. Each chart is an `img` with a title and a
//! description for screen readers, and the pages show the same figures in a table.

use maud::{html, Markup};

use super::format;

/// Okabe–Ito vermillion: high risk.
pub const HIGH: &str = "#D55E00";
/// Okabe–Ito orange: medium risk.
pub const MEDIUM: &str = "#E69F00";
/// Okabe–Ito bluish green: low risk.
pub const LOW: &str = "#009E73";
/// Okabe–Ito blue: neutral bars.
pub const BLUE: &str = "#0072B2";
/// Axis and grid grey (contrast ≥ 4.5:1 on white for the labels).
const INK: &str = "#333333";
const GRID: &str = "#d9d9d9";

/// One horizontal bar: a label, a value and its bar length as a share of the largest, and the
/// text shown after the bar.
pub struct Bar<'a> {
    /// Label left of the bar.
    pub label: &'a str,
    /// Value that sets the bar length.
    pub value: f64,
    /// Text right of the bar, e.g. `"1,234 (35.0%)"`.
    pub text: String,
    /// Fill colour.
    pub colour: &'a str,
}

/// Horizontal bars, labelled on both sides. `id` makes the title/description ids unique;
/// `scale_max` is the value of a full-length bar (0: the largest bar's value), so that two
/// charts can share one scale.
///
/// The view box is narrow (420 units) so that its 14-unit text stays readable when a phone
/// shrinks it to 300 px, and grows with the box on a wide screen. Short labels (up to about 16
/// characters, e.g. risk levels) sit left of their bar; when any label is longer (column names
/// such as `last_activity_days_ago`), every label goes on its own line above its bar, whole, so
/// no name is cut to an ambiguous prefix.
pub fn bars(id: &str, title: &str, description: &str, bars: &[Bar<'_>], scale_max: f64) -> Markup {
    let width = 420.0;
    let longest_label = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let labels_above = text_width(longest_label) > SIDE_LABEL_W - 6.0;
    let (label_w, row_h, bar_top) = if labels_above {
        (0.0, 46.0, 20.0)
    } else {
        (SIDE_LABEL_W, 30.0, 5.0)
    };
    // Room right of the longest bar for the longest value text, so no text is cut off.
    let longest = bars
        .iter()
        .map(|b| b.text.chars().count())
        .max()
        .unwrap_or(0);
    let text_w = (text_width(longest) + 10.0).clamp(60.0, 200.0);
    let plot_w = width - label_w - text_w - 2.0;
    let height = row_h * bars.len() as f64 + 8.0;
    let max = if scale_max > 0.0 {
        scale_max
    } else {
        bars.iter().map(|b| b.value).fold(0.0, f64::max)
    };
    let scale = if max > 0.0 { plot_w / max } else { 0.0 };
    let (title_id, desc_id) = (format!("{id}-title"), format!("{id}-desc"));
    // A label above its bar may use the whole width (about 52 characters at 14 units).
    let max_chars = if labels_above { 52 } else { 16 };
    let bar_h = if labels_above { 18.0 } else { row_h - 10.0 };
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {width} {height}"))
            role="img" aria-labelledby=(format!("{title_id} {desc_id}")) {
            title #(title_id) { (title) }
            desc #(desc_id) { (description) }
            @for (i, b) in bars.iter().enumerate() {
                @let y = 4.0 + row_h * i as f64;
                @let w = (b.value * scale).max(if b.value > 0.0 { 2.0 } else { 0.0 });
                @if labels_above {
                    text x=(label_w + 2.0) y=(y + 14.0) fill=(INK) font-size="14" {
                        title { (b.label) }
                        (truncate(b.label, max_chars))
                    }
                } @else {
                    text x=(label_w - 6.0) y=(y + row_h / 2.0 + 5.0) text-anchor="end" fill=(INK) font-size="14" {
                        (truncate(b.label, max_chars))
                    }
                }
                rect x=(label_w) y=(y + bar_top) width=(fmt(w)) height=(fmt(bar_h)) fill=(b.colour) rx="2" {}
                text x=(label_w + w + 5.0) y=(y + bar_top + bar_h / 2.0 + 5.0) fill=(INK) font-size="14" { (b.text) }
            }
            @if !labels_above {
                line x1=(label_w) x2=(label_w) y1="0" y2=(height) stroke=(INK) stroke-width="1" {}
            }
        }
    }
}

/// Width of the label column when labels sit left of their bars (SVG units).
const SIDE_LABEL_W: f64 = 132.0;

/// Width of `chars` characters of 14-unit text, erring wide (about 7.8 units a character for
/// the sans-serif faces the stylesheet names; digits and lower case are narrower).
fn text_width(chars: usize) -> f64 {
    chars as f64 * 7.8
}

/// A histogram of churn probabilities: `bins` counts over equal bins of 0–1, with labelled
/// axes and dashed lines at the risk thresholds (`medium`, `high`, 0–1). Bars are coloured by
/// the risk level their bin falls in.
pub fn histogram(id: &str, bins: &[u64], medium: f64, high: f64) -> Markup {
    let (width, height) = (420.0, 270.0);
    let (left, right, top, bottom) = (66.0, 22.0, 22.0, 50.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max = bins.iter().copied().max().unwrap_or(0);
    let (step, y_max) = nice_axis(max);
    let n = bins.len().max(1) as f64;
    let bar_w = plot_w / n;
    let x = |p: f64| left + p * plot_w;
    let y = |v: f64| top + plot_h - v / y_max * plot_h;
    let ticks: Vec<u64> = (0..)
        .map(|i| i * step)
        .take_while(|t| *t as f64 <= y_max)
        .collect();
    let total: u64 = bins.iter().sum();
    let (title_id, desc_id) = (format!("{id}-title"), format!("{id}-desc"));
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {width} {height}"))
            role="img" aria-labelledby=(format!("{title_id} {desc_id}")) {
            title #(title_id) { "Churn probability histogram" }
            desc #(desc_id) {
                (format::int(total)) " customers in " (bins.len()) " bins of churn probability from 0% to 100%; "
                "the tallest bin holds " (format::int(max)) " customers. Dashed lines mark the medium ("
                (format::percent(medium)) ") and high (" (format::percent(high)) ") risk thresholds."
            }
            @for t in &ticks {
                line x1=(left) x2=(width - right) y1=(fmt(y(*t as f64))) y2=(fmt(y(*t as f64))) stroke=(GRID) stroke-width="1" {}
                text x=(left - 6.0) y=(fmt(y(*t as f64) + 4.0)) text-anchor="end" fill=(INK) font-size="13" { (format::int(*t)) }
            }
            @for (i, count) in bins.iter().enumerate() {
                @let centre = (i as f64 + 0.5) / n;
                @let colour = if centre >= high { HIGH } else if centre >= medium { MEDIUM } else { LOW };
                @let h = *count as f64 / y_max * plot_h;
                rect x=(fmt(x(i as f64 / n) + 1.0)) y=(fmt(top + plot_h - h)) width=(fmt(bar_w - 2.0)) height=(fmt(h)) fill=(colour) {
                    title { (format::percent(i as f64 / n)) "–" (format::percent((i + 1) as f64 / n)) ": " (format::int(*count)) " customers" }
                }
            }
            @for (p, label, leftwards) in [(medium, retainwise_model::RiskLevel::Medium.as_str(), true), (high, retainwise_model::RiskLevel::High.as_str(), false)] {
                @let text = format!("{label} ≥{:.0}%", p * 100.0);
                // The medium label left of its line and the high label right of its own, so the
                // two never overlap however close the thresholds are; each flips side only where
                // it would run off the chart.
                @let w = text_width(text.chars().count()) * 13.0 / 14.0;
                @let left_side = if leftwards { x(p) - 3.0 - w >= 0.0 } else { x(p) + 3.0 + w > width };
                line x1=(fmt(x(p))) x2=(fmt(x(p))) y1=(top) y2=(top + plot_h) stroke=(INK) stroke-width="1.5" stroke-dasharray="5 4" {}
                @if left_side {
                    text x=(fmt(x(p) - 3.0)) y=(top - 6.0) text-anchor="end" fill=(INK) font-size="13" { (text) }
                } @else {
                    text x=(fmt(x(p) + 3.0)) y=(top - 6.0) fill=(INK) font-size="13" { (text) }
                }
            }
            line x1=(left) x2=(width - right) y1=(top + plot_h) y2=(top + plot_h) stroke=(INK) stroke-width="1" {}
            line x1=(left) x2=(left) y1=(top) y2=(top + plot_h) stroke=(INK) stroke-width="1" {}
            @for i in 0..=5 {
                @let p = i as f64 / 5.0;
                line x1=(fmt(x(p))) x2=(fmt(x(p))) y1=(top + plot_h) y2=(top + plot_h + 5.0) stroke=(INK) {}
                text x=(fmt(x(p))) y=(top + plot_h + 19.0) text-anchor="middle" fill=(INK) font-size="13" { (i * 20) "%" }
            }
            text x=(left + plot_w / 2.0) y=(height - 6.0) text-anchor="middle" fill=(INK) font-size="14" { "Churn probability" }
            text transform=(format!("translate(14 {}) rotate(-90)", top + plot_h / 2.0)) text-anchor="middle" fill=(INK) font-size="14" { "Customers" }
        }
    }
}

/// One point of [`line`]: its label under the axis (a date), its churn probability 0–1 and
/// risk level, and the text of its tooltip.
pub struct Point<'a> {
    /// Label under the axis, e.g. `"2026-12-07"`.
    pub label: &'a str,
    /// Churn probability 0–1.
    pub p: f64,
    /// The point's risk level (its colour).
    pub level: retainwise_model::RiskLevel,
    /// Tooltip text.
    pub text: String,
}

/// A customer's churn probability over runs as a line: one point per run, equally spaced in
/// run order (runs are not evenly spread in time; the labels say when), 0–100% on the y axis
/// with dashed lines at the risk thresholds (`medium`, `high`, 0–1), each point coloured by
/// its level and titled with its figure.
pub fn line(id: &str, description: &str, points: &[Point<'_>], medium: f64, high: f64) -> Markup {
    let (width, height) = (420.0, 270.0);
    let (left, right, top, bottom) = (48.0, 22.0, 22.0, 54.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let n = points.len();
    let x = |i: usize| {
        if n <= 1 {
            left + plot_w / 2.0
        } else {
            left + 8.0 + (plot_w - 16.0) * i as f64 / (n - 1) as f64
        }
    };
    let y = |p: f64| top + plot_h - p.clamp(0.0, 1.0) * plot_h;
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, pt)| format!("{},{}", fmt(x(i)), fmt(y(pt.p))))
        .collect();
    // At most about six labels under the axis, evenly spaced back from the latest run, so
    // they never overlap on a phone.
    let every = n.div_ceil(6).max(1);
    let colour = |l: retainwise_model::RiskLevel| match l {
        retainwise_model::RiskLevel::High => HIGH,
        retainwise_model::RiskLevel::Medium => MEDIUM,
        retainwise_model::RiskLevel::Low => LOW,
    };
    let (title_id, desc_id) = (format!("{id}-title"), format!("{id}-desc"));
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {width} {height}"))
            role="img" aria-labelledby=(format!("{title_id} {desc_id}")) {
            title #(title_id) { "Churn probability over time" }
            desc #(desc_id) { (description) }
            @for i in 0..=5 {
                @let p = i as f64 / 5.0;
                line x1=(left) x2=(width - right) y1=(fmt(y(p))) y2=(fmt(y(p))) stroke=(GRID) stroke-width="1" {}
                text x=(left - 6.0) y=(fmt(y(p) + 4.0)) text-anchor="end" fill=(INK) font-size="13" { (i * 20) "%" }
            }
            @for (p, label) in [(medium, retainwise_model::RiskLevel::Medium.as_str()), (high, retainwise_model::RiskLevel::High.as_str())] {
                line x1=(left) x2=(width - right) y1=(fmt(y(p))) y2=(fmt(y(p))) stroke=(INK) stroke-width="1" stroke-dasharray="5 4" {}
                text x=(width - right) y=(fmt(y(p) - 4.0)) text-anchor="end" fill=(INK) font-size="12" { (label) " ≥" (format!("{:.0}%", p * 100.0)) }
            }
            line x1=(left) x2=(width - right) y1=(top + plot_h) y2=(top + plot_h) stroke=(INK) stroke-width="1" {}
            @if n > 1 {
                polyline points=(path.join(" ")) fill="none" stroke=(BLUE) stroke-width="2.5" {}
            }
            @for (i, pt) in points.iter().enumerate() {
                circle.point cx=(fmt(x(i))) cy=(fmt(y(pt.p))) r="5" fill=(colour(pt.level)) stroke="#ffffff" stroke-width="1.5" {
                    title { (pt.text) }
                }
                @if (n - 1 - i).is_multiple_of(every) {
                    // The outermost labels end at their point, so none runs off the chart.
                    @let anchor = if n > 1 && i == 0 { "start" } else if n > 1 && i + 1 == n { "end" } else { "middle" };
                    text x=(fmt(x(i))) y=(top + plot_h + 18.0) text-anchor=(anchor) fill=(INK) font-size="12" { (truncate(pt.label, 10)) }
                }
            }
            text x=(left + plot_w / 2.0) y=(height - 8.0) text-anchor="middle" fill=(INK) font-size="14" { "Run (date scored)" }
        }
    }
}

/// A tick step of 1, 2 or 5 × 10ⁿ giving about four ticks up to `max`, and the axis top.
fn nice_axis(max: u64) -> (u64, f64) {
    if max == 0 {
        return (1, 1.0);
    }
    let raw = (max as f64 / 4.0).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
        .max(1.0) as u64;
    let top = max.div_ceil(step) * step;
    (step, top as f64)
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps() {
        assert_eq!(nice_axis(0), (1, 1.0));
        assert_eq!(nice_axis(3), (1, 3.0));
        assert_eq!(nice_axis(10), (5, 10.0));
        assert_eq!(nice_axis(1234), (500, 1500.0));
        assert_eq!(nice_axis(70_000), (20_000, 80_000.0));
    }

    #[test]
    fn long_labels_go_whole_above_their_bars() {
        let bar = |label| Bar {
            label,
            value: 1.0,
            text: "30.0% · +17.0 pts".into(),
            colour: BLUE,
        };
        let svg = bars(
            "d",
            "t",
            "d",
            &[bar("last_activity_days_ago"), bar("plan_type")],
            0.0,
        )
        .into_string();
        assert!(svg.contains(">last_activity_days_ago</text>"), "{svg}");
        assert!(!svg.contains('…'), "{svg}");
        // Short labels keep the compact layout, right-aligned left of the bars.
        let svg = bars("r", "t", "d", &[bar("High"), bar("Medium")], 0.0).into_string();
        assert!(svg.contains("text-anchor=\"end\""), "{svg}");
    }

    #[test]
    fn threshold_labels_sit_on_opposite_sides_of_their_lines() {
        let svg = histogram("h", &[1, 2], 0.5, 0.55).into_string();
        let medium = svg.find("medium ≥50%").unwrap();
        let before = &svg[..medium];
        assert!(
            before[before.rfind("<text").unwrap()..].contains("text-anchor=\"end\""),
            "{svg}"
        );
        let high = svg.find("high ≥55%").unwrap();
        let before = &svg[..high];
        assert!(
            !before[before.rfind("<text").unwrap()..].contains("text-anchor"),
            "{svg}"
        );
    }

    #[test]
    fn histogram_has_axes_and_bars() {
        let svg = histogram("h", &[5, 0, 10, 2], 0.4, 0.7).into_string();
        assert!(svg.contains("Churn probability") && svg.contains("Customers"));
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains(HIGH) && svg.contains(LOW));
        assert!(svg.contains("role=\"img\""));
    }
}
