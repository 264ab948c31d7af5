//! Customers across runs on the pages ([`crate::history`]): `GET /customers/{customer_id}`
//! (a customer's risk over time as an SVG line, each run's drivers) and the dashboard's panel
//! of what changed since the owner's previous prediction.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::charts::{self, Bar, Point};
use super::customers::{level_badge, value_text};
use super::error::WebError;
use super::format;
use super::layout::{self, Nav};
use super::{WebState, WebUser};
use crate::db::PredictionRow;
use crate::domain::OrgId;
use crate::history::{self, DriverChange, Moved, NoComparison, Owner, Since};
use retainwise_model::RiskLevel;

/// Runs the page shows at most (the latest).
const RUNS_SHOWN: i64 = 200;
/// Customers each list of the dashboard's panel shows.
const PANEL_LISTED: i64 = 10;

/// The link to a customer's page: the id percent-encoded as one path segment (every byte but
/// the unreserved ones of RFC 3986 §2.3, so `/`, `?`, `#` and `%` in an id stay in it).
pub(super) fn customer_href(customer_id: &str) -> String {
    let mut out = String::from("/customers/");
    for b in customer_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn level(text: &str) -> RiskLevel {
    text.parse().unwrap_or(RiskLevel::Low)
}

fn points(p: f64) -> String {
    format!("{:+.1} pts", p * 100.0)
}

/// `GET /customers/{customer_id}`.
pub async fn page(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    Path(customer_id): Path<String>,
) -> Result<Response, WebError> {
    let mut conn = state.app.db.pool().acquire().await?;
    let h = history::customer_runs(&mut conn, &Owner::of(&user), &customer_id, RUNS_SHOWN).await?;
    drop(conn);
    if h.total == 0 {
        return Err(WebError::not_found(format!(
            "Customer {customer_id:?} is in none of your completed predictions."
        )));
    }
    let t = &state.app.config.thresholds;
    let dates: Vec<String> = h.runs.iter().map(|r| format::time(r.scored_at)).collect();
    let line: Vec<Point<'_>> = h
        .runs
        .iter()
        .zip(&dates)
        .map(|(r, d)| Point {
            label: d.get(0..10).unwrap_or(d),
            p: r.churn_probability,
            level: level(&r.risk_level),
            text: format!(
                "{d}: {} ({} risk), {}",
                format::percent(r.churn_probability),
                r.risk_level,
                r.filename
            ),
        })
        .collect();
    let latest = h.runs.last().expect("total > 0 has a run");
    let first = h.runs.first().expect("total > 0 has a run");
    let description = format!(
        "{} runs from {} to {}: churn probability {} then, {} in the latest.",
        h.runs.len(),
        dates.first().map(String::as_str).unwrap_or(""),
        dates.last().map(String::as_str).unwrap_or(""),
        format::percent(first.churn_probability),
        format::percent(latest.churn_probability),
    );
    let title = format!("Customer {customer_id}");
    let body = html! {
        p.crumbs { a href="/predictions" { "Predictions" } " / Customer" }
        h1 { "Customer " (customer_id) }
        div.cards {
            div class=(format!("figure level-{}", latest.risk_level)) {
                p.label { "Latest churn probability" }
                p.value #latest-probability { (format::percent(latest.churn_probability)) }
                p.note { (level_badge(level(&latest.risk_level))) " risk · " (dates.last().map(String::as_str).unwrap_or("")) }
            }
            div.figure {
                p.label { "Runs" }
                p.value #runs-count { (format::int(h.total as u64)) }
                p.note { @if (h.runs.len() as i64) < h.total { "the latest " (h.runs.len()) " shown" } @else { "completed predictions that scored this customer" } }
            }
        }
        div.charts {
            section.chart-box aria-labelledby="trend-h" {
                h2 #trend-h { "Risk over time" }
                (charts::line("trend", &description, &line, t.medium, t.high))
            }
            section.chart-box aria-labelledby="latest-h" {
                h2 #latest-h { "Drivers in the latest run" }
                @if latest.drivers.is_empty() {
                    p.hint { "The latest run was scored without explanations." }
                } @else {
                    (charts::bars("latest-drivers", "Drivers in the latest run",
                        &latest.drivers.iter().map(|d| format!("{} = {}: {:+.1} pts", d.feature, value_text(&d.value), d.impact)).collect::<Vec<_>>().join("; "),
                        &latest.drivers.iter().map(|d| Bar {
                            label: &d.feature,
                            value: d.impact.abs(),
                            text: format!("{:+.1} pts", d.impact),
                            colour: if d.impact > 0.0 { charts::HIGH } else { charts::LOW },
                        }).collect::<Vec<_>>(), 0.0))
                }
            }
        }
        section aria-labelledby="runs-h" {
            h2 #runs-h { "Each run" }
            div.table-wrap {
                table #runs.stack {
                    caption.sr-only { "Runs of customer " (customer_id) ", oldest first" }
                    thead { tr {
                        th scope="col" { "Scored" }
                        th scope="col" { "File" }
                        th scope="col" .num { "Churn probability" }
                        th scope="col" .num { "Change" }
                        th scope="col" { "Risk level" }
                        th scope="col" .wide { "Drivers" }
                        th scope="col" { "Model" }
                    } }
                    tbody {
                        @for (i, r) in h.runs.iter().enumerate() {
                            tr {
                                th scope="row" { (dates[i]) }
                                td data-label="File" { a href=(format!("/predictions/{}", r.prediction_id)) { (r.filename) } }
                                td.num data-label="Churn probability" { (format::percent(r.churn_probability)) }
                                td.num data-label="Change" { @if i == 0 { span.muted { "—" } } @else { (points(r.churn_probability - h.runs[i - 1].churn_probability)) } }
                                td data-label="Risk level" { (level_badge(level(&r.risk_level))) }
                                td.wide data-label="Drivers" {
                                    @if r.drivers.is_empty() { span.muted { "not explained in this run" } }
                                    @for (j, d) in r.drivers.iter().enumerate() {
                                        @if j > 0 { "; " }
                                        (d.feature) " = " (value_text(&d.value)) " " span.muted { (format!("{:+.1}", d.impact)) " pts" }
                                    }
                                }
                                td data-label="Model" { code.model { (r.model_id) } }
                            }
                        }
                    }
                }
            }
            p.hint { "Drivers are each run's three largest risk drivers and protective factors: exact TreeSHAP effects in percentage points of churn probability (pts)." }
        }
    };
    Ok(layout::page(&title, Nav::Predictions, state.app.auth.is_required(), body).into_response())
}

/// The dashboard's panel for a completed prediction: what changed since the owner's previous
/// completed prediction, or why nothing can be compared. A database failure is logged and
/// said in the panel; the rest of the dashboard still shows.
pub(super) async fn changes_panel(state: &WebState, user: &OrgId, row: &PredictionRow) -> Markup {
    let compared = async {
        let mut conn = state.app.db.pool().acquire().await?;
        history::changes(
            &mut conn,
            &Owner::of(user),
            &row.id,
            &Since::Previous,
            PANEL_LISTED,
        )
        .await
    }
    .await;
    let c = match compared {
        Ok(c) => c,
        Err(NoComparison::Database(e)) => {
            tracing::error!(prediction_id = %row.id, error = %crate::error_chain::Chain(&e), "changes_panel_failed");
            return panel(
                html! { p.hint { "The changes since the previous prediction could not be read just now; reload the page to try again." } },
            );
        }
        Err(e) => return panel(html! { p.hint #changes-none { (e.to_string()) "." } }),
    };
    let n = &c.counts;
    let since = format!("/predictions/{}", c.since_prediction_id);
    panel(html! {
        p { "Compared with " a href=(since) { "the previous prediction" } " by customer id: "
            (format::int(n.in_both as u64)) " customers in both, " (format::int(n.customers as u64)) " now, " (format::int(n.since_customers as u64)) " then." }
        div.cards #changes-counts {
            div.figure { p.label { "Moved up a risk level" } p.value #moved-up { (format::int(n.moved_up as u64)) } p.note { (format::int(n.moved_down as u64)) " moved down" } }
            div.figure { p.label { "New customers" } p.value #new-customers { (format::int(n.new as u64)) } p.note { "not in the previous file" } }
            div.figure { p.label { "Disappeared" } p.value #disappeared { (format::int(n.disappeared as u64)) } p.note { "in the previous file, not in this one" } }
        }
        @if !c.largest_changes.is_empty() {
            h3 { "Largest probability changes" }
            (moved_table("largest-changes", &c.largest_changes))
        }
        @if !c.moved_up.is_empty() {
            h3 { "Moved up a risk level" @if n.moved_up > PANEL_LISTED { " (the " (PANEL_LISTED) " largest increases of " (format::int(n.moved_up as u64)) ")" } }
            (moved_table("moved-up-table", &c.moved_up))
        }
        @if !c.new.is_empty() || !c.disappeared.is_empty() {
            div.charts {
                (seen_list("new-list", "New, highest risk first", &c.new, n.new))
                (seen_list("disappeared-list", "Disappeared, highest risk first", &c.disappeared, n.disappeared))
            }
        }
        p.hint { "Full lists: " code { "GET /api/predictions/" (row.id) "/changes" } "." }
    })
}

fn panel(inner: Markup) -> Markup {
    html! {
        section #changes aria-labelledby="changes-h" {
            h2 #changes-h { "Since the previous prediction" }
            (inner)
        }
    }
}

fn moved_table(id: &str, list: &[Moved]) -> Markup {
    html! {
        div.table-wrap {
            table.stack #(id) {
                thead { tr {
                    th scope="col" { "Customer" }
                    th scope="col" .num { "Then" }
                    th scope="col" .num { "Now" }
                    th scope="col" .num { "Change" }
                    th scope="col" { "Risk level" }
                    th scope="col" .wide { "Driver that changed most" }
                } }
                tbody {
                    @for m in list {
                        tr {
                            th scope="row" { a href=(customer_href(&m.customer_id)) { (m.customer_id) } }
                            td.num data-label="Then" { (format::percent(m.old_churn_probability)) }
                            td.num data-label="Now" { (format::percent(m.new_churn_probability)) }
                            td.num data-label="Change" { (points(m.change)) }
                            td data-label="Risk level" { (level_badge(level(&m.old_risk_level))) " → " (level_badge(level(&m.new_risk_level))) }
                            td.wide data-label="Driver that changed most" { (driver_text(m.driver.as_ref())) }
                        }
                    }
                }
            }
        }
    }
}

fn driver_text(d: Option<&DriverChange>) -> Markup {
    let value = |v: &Option<serde_json::Value>| v.as_ref().map(value_text);
    html! {
        @match d {
            None => span.muted { "not explained" },
            Some(d) => {
                (d.feature) " "
                @match (value(&d.old_value), value(&d.new_value)) {
                    (Some(o), Some(n)) if o != n => { (o) " → " (n) " " }
                    (_, Some(n)) => { "= " (n) " " }
                    (Some(o), None) => { "(was " (o) ") " }
                    (None, None) => {}
                }
                span.muted { (format!("{:+.1}", d.change)) " pts" }
            }
        }
    }
}

fn seen_list(id: &str, heading: &str, list: &[history::Seen], total: i64) -> Markup {
    html! {
        section.chart-box #(id) {
            h3 { (heading) }
            @if list.is_empty() {
                p.hint { "None." }
            } @else {
                ul {
                    @for s in list {
                        li { a href=(customer_href(&s.customer_id)) { (s.customer_id) } " " (format::percent(s.churn_probability)) " " (level_badge(level(&s.risk_level))) }
                    }
                }
                @if total > list.len() as i64 { p.hint { (format::int((total - list.len() as i64) as u64)) " more." } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_links_keep_the_id_in_one_segment() {
        assert_eq!(customer_href("7590-VHVEG"), "/customers/7590-VHVEG");
        assert_eq!(customer_href("a/b?c#d%"), "/customers/a%2Fb%3Fc%23d%25");
        assert_eq!(customer_href("Zoë 1"), "/customers/Zo%C3%AB%201");
    }
}
