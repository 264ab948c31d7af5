//! The customers of a completed prediction: `GET /predictions/{id}/customers` (sortable by
//! churn probability, filtered by risk level and customer id, paginated on the server) and
//! `GET /predictions/{id}/customers/{row}` (one customer's explanation). Both read through the
//! prediction's [`CustomerIndex`](super::index::CustomerIndex): the index is filtered in memory
//! and only the rows shown are read from storage.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::charts::{self, Bar};
use super::error::WebError;
use super::format;
use super::index::{Customer, Factor, Filter, IndexError, Level};
use super::layout::{self, Nav};
use super::predictions::{find, pager};
use super::query::{page_number, WebQuery};
use super::session::form_urlencode;
use super::{WebState, WebUser};
use crate::db::{PredictionRow, PredictionStatus};
use crate::domain::{ObjectKey, OrgId};

/// Customers per page.
pub const PER_PAGE: usize = 50;

/// The table's query: `level` (high, medium, low; empty for all), `q` (text in the customer
/// id), `sort` (`churn_desc`, the default, or `churn_asc`), `page` (1-based).
#[derive(Debug, Default, Deserialize)]
pub struct TableQuery {
    level: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    page: Option<String>,
}

impl TableQuery {
    fn filter(&self) -> Result<Filter, WebError> {
        let level = match self.level.as_deref().map(str::trim) {
            None | Some("") | Some("all") => None,
            Some(l) => Some(l.parse::<Level>().map_err(|_| {
                WebError::bad_request(format!(
                    "Risk level {l:?} is unknown: use high, medium or low."
                ))
            })?),
        };
        let ascending = match self.sort.as_deref() {
            None | Some("") | Some("churn_desc") => false,
            Some("churn_asc") => true,
            Some(other) => {
                return Err(WebError::bad_request(format!(
                    "Sort {other:?} is unknown: use churn_desc or churn_asc."
                )))
            }
        };
        let search = self
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(|q| q.chars().take(100).collect());
        Ok(Filter {
            level,
            search,
            ascending,
        })
    }

    /// The query string of this view without the page, for links that keep the filters.
    fn base(&self, f: &Filter) -> String {
        let mut parts = Vec::new();
        if let Some(l) = f.level {
            parts.push(format!("level={}", l.as_str()));
        }
        if let Some(q) = &f.search {
            parts.push(format!("q={}", form_urlencode(q)));
        }
        if f.ascending {
            parts.push("sort=churn_asc".to_owned());
        }
        parts.join("&")
    }
}

/// The results object of a completed prediction, or a page saying why there is none yet.
pub(super) fn results_key(row: &PredictionRow, user: &OrgId) -> Result<ObjectKey, WebError> {
    if let Some(gone) = row.results_gone() {
        return Err(crate::http::ApiError::Gone(format!("{gone}.")).into());
    }
    match row.status() {
        PredictionStatus::Completed => {
            let id = row
                .id
                .parse()
                .map_err(|_| WebError::not_found("This prediction id is malformed."))?;
            Ok(ObjectKey::result(user, id))
        }
        PredictionStatus::Failed => Err(WebError::conflict(format!(
            "This prediction failed, so it has no customers: {}",
            row.error_message
                .as_deref()
                .unwrap_or("no reason was recorded")
        ))),
        s => Err(WebError::conflict(format!(
            "This prediction is {s}; its customers are shown once it is COMPLETED."
        ))),
    }
}

fn index_error(e: IndexError) -> WebError {
    match e {
        IndexError::Storage(e) => e.into(),
        IndexError::Format(m) => {
            tracing::error!(error = %m, "customer_index_failed");
            WebError::conflict(format!(
                "The results of this prediction cannot be browsed: {m}."
            ))
        }
    }
}

/// `GET /predictions/{id}/customers`.
pub async fn table(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    Path(id): Path<String>,
    WebQuery(q): WebQuery<TableQuery>,
) -> Result<Response, WebError> {
    let row = find(&state, &user, &id).await?;
    let key = results_key(&row, &user)?;
    let filter = q.filter()?;
    let index = state
        .indexes
        .get(&state.app.storage, &key, row.erased_customers)
        .await
        .map_err(index_error)?;
    let page = page_number(q.page.as_deref())?;
    let (total, entries) = index.page(&filter, (page - 1) as usize, PER_PAGE);
    let customers = index
        .read(&state.app.storage, &key, &entries)
        .await
        .map_err(index_error)?;
    let pages = total.div_ceil(PER_PAGE as u64).max(1);
    let base = q.base(&filter);
    let here = format!("/predictions/{}/customers", row.id);
    let first = (page - 1).saturating_mul(PER_PAGE as u64).saturating_add(1);
    let sort_toggle = if filter.ascending {
        "churn_desc"
    } else {
        "churn_asc"
    };
    let toggle_href = {
        let mut f = filter.clone();
        f.ascending = sort_toggle == "churn_asc";
        let b = q.base(&f);
        if b.is_empty() {
            here.clone()
        } else {
            format!("{here}?{b}")
        }
    };
    let back = if base.is_empty() {
        format!("page={page}")
    } else {
        format!("{base}&page={page}")
    };
    let body = html! {
        p.crumbs { a href="/predictions" { "Predictions" } " / " a href=(format!("/predictions/{}", row.id)) { (row.filename) } " / Customers" }
        h1 { "Customers" }
        form.filters method="get" action=(here) role="search" {
            div.field {
                label for="level" { "Risk level" }
                select #level name="level" {
                    option value="" selected[filter.level.is_none()] { "All levels" }
                    @for l in Level::ALL {
                        option value=(l.as_str()) selected[filter.level == Some(l)] { (capitalise(l.as_str())) }
                    }
                }
            }
            div.field {
                label for="q" { "Customer id contains" }
                input #q type="search" name="q" value=(filter.search.as_deref().unwrap_or("")) maxlength="100";
            }
            div.field {
                label for="sort" { "Order" }
                select #sort name="sort" {
                    option value="churn_desc" selected[!filter.ascending] { "Highest churn first" }
                    option value="churn_asc" selected[filter.ascending] { "Lowest churn first" }
                }
            }
            button type="submit" { "Apply" }
            @if !base.is_empty() { a.reset href=(here) { "Clear filters" } }
        }
        p #count role="status" {
            @if total == 0 {
                "No customer matches these filters."
            } @else if customers.is_empty() {
                "Page " (page) " is past the end: " (format::int(total)) " customers match, on " (format::int(pages)) " pages. "
                a href=(if base.is_empty() { here.clone() } else { format!("{here}?{base}") }) { "Go to page 1" }
            } @else {
                "Customers " (format::int(first)) "–" (format::int(first + customers.len() as u64 - 1)) " of " (format::int(total))
                @if total < index.len() as u64 { " matching (" (format::int(index.len() as u64)) " in all)" }
            }
        }
        @if !customers.is_empty() {
            div.table-wrap {
                table.customers.stack {
                    caption.sr-only { "Customers, page " (page) " of " (pages) }
                    thead {
                        tr {
                            th scope="col" { "Customer" }
                            th scope="col" .num aria-sort=(if filter.ascending { "ascending" } else { "descending" }) {
                                a href=(toggle_href) { "Churn probability " span aria-hidden="true" { (if filter.ascending { "▲" } else { "▼" }) }
                                    span.sr-only { ", sorted " (if filter.ascending { "lowest" } else { "highest" }) " first; activate to reverse" } }
                            }
                            th scope="col" { "Risk level" }
                            th scope="col" { "Top risk driver" }
                            th scope="col" .wide { "Summary" }
                            th scope="col" { "Data quality" }
                            th scope="col" { "History" }
                        }
                    }
                    tbody {
                        @for c in &customers {
                            tr {
                                th scope="row" { a href=(format!("{here}/{}?back={}", c.row, form_urlencode(&back))) title=(c.customer_id) { (c.customer_id) } }
                                td.num data-label="Churn probability" { (format::percent(c.churn_probability)) }
                                td data-label="Risk level" { (level_badge(c.level)) }
                                td data-label="Top risk driver" { @if let Some(f) = c.risk_factors.first() { (f.feature) @if let Some(w) = &f.with { " (with " (w) ")" } " = " (value_text(&f.value)) (quality_mark(f)) " " span.muted { (format!("{:+.1}", f.impact)) " pts" } } @else { span.muted { "—" } } }
                                td.wide data-label="Summary" { (c.summary) }
                                td data-label="Data quality" { @if c.data_quality.is_empty() { span.muted { "—" } } @else { span.quality { (c.data_quality) } } }
                                td data-label="History" { a.history href=(super::history::customer_href(&c.customer_id)) { "Across runs" } }
                            }
                        }
                    }
                }
            }
            (pager(&if base.is_empty() { format!("{here}?") } else { format!("{here}?{base}&") }, page, pages))
        }
    };
    Ok(layout::page(
        "Customers",
        Nav::Predictions,
        state.app.auth.is_required(),
        body,
    )
    .into_response())
}

/// `?back=` of the explanation page: the table view to return to.
#[derive(Debug, Deserialize)]
pub struct Back {
    back: Option<String>,
}

/// `GET /predictions/{id}/customers/{row}`.
pub async fn detail(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    Path((id, row_number)): Path<(String, String)>,
    WebQuery(back): WebQuery<Back>,
) -> Result<Response, WebError> {
    let row = find(&state, &user, &id).await?;
    let key = results_key(&row, &user)?;
    let index = state
        .indexes
        .get(&state.app.storage, &key, row.erased_customers)
        .await
        .map_err(index_error)?;
    let entry = row_number
        .parse::<u32>()
        .ok()
        .and_then(|n| index.by_row(n).copied())
        .ok_or_else(|| {
            WebError::not_found(format!(
                "This prediction has no customer row {row_number:?}."
            ))
        })?;
    let c = index
        .read(&state.app.storage, &key, &[entry])
        .await
        .map_err(index_error)?
        .pop()
        .ok_or_else(|| WebError::not_found("That customer row is missing."))?;
    // Only a query string goes back into the link: it stays on this table.
    let back_query: String = back
        .back
        .unwrap_or_default()
        .chars()
        .filter(|ch| ch.is_ascii_alphanumeric() || "=&%_-.".contains(*ch))
        .take(300)
        .collect();
    let table = format!("/predictions/{}/customers?{back_query}", row.id);
    let title = format!("Customer {}", c.customer_id);
    let body = html! {
        p.crumbs { a href="/predictions" { "Predictions" } " / " a href=(format!("/predictions/{}", row.id)) { (row.filename) } " / " a href=(table) { "Customers" } }
        h1 { "Customer " (c.customer_id) }
        (explanation(&c))
        p { a.history href=(super::history::customer_href(&c.customer_id)) { "This customer across runs" } }
        p { a href=(table) { "← Back to the customers" } }
    };
    Ok(layout::page(&title, Nav::Predictions, state.app.auth.is_required(), body).into_response())
}

fn explanation(c: &Customer) -> Markup {
    html! {
        div.cards {
            div class=(format!("figure level-{}", c.level.as_str())) {
                p.label { "Churn probability" }
                p.value { (format::percent(c.churn_probability)) }
                p.note { (level_badge(c.level)) " risk" }
            }
            div.figure {
                p.label { "Retention probability" }
                p.value { (format::retention_percent(c.churn_probability)) }
                p.note { "model " code.model { (c.model_version) } }
            }
        }
        @if !c.data_quality.is_empty() {
            section.card.quality-note role="note" aria-labelledby="quality-h" {
                h2 #quality-h { "Data quality" }
                p { "Some values of this customer could not be used as given: " strong.quality { (c.data_quality) } "." }
                p.hint { "A missing value or an unknown category is scored by the model's rule for an absent value, and a value outside the training range by what the model learnt at the edge of it: an effect marked below is that rule's, not a fact about the customer. Fix the value in the file and score it again for a sound figure." }
            }
        }
        section.card aria-labelledby="summary-h" {
            h2 #summary-h { "Summary" }
            p { (c.summary) }
            h2 { "Recommendation" }
            p.recommendation { (c.recommendation) }
        }
        @let scale = c.risk_factors.iter().chain(&c.protective_factors).map(|f| f.impact.abs()).fold(0.0, f64::max);
        div.charts {
            (factors("risk", "Risk drivers", "These raise the churn probability.", &c.risk_factors, charts::HIGH, scale))
            (factors("protective", "Protective factors", "These lower it.", &c.protective_factors, charts::LOW, scale))
        }
        p.hint { "Effects are exact TreeSHAP contributions of each column, in percentage points of churn probability (pts)." }
    }
}

/// One list of factors as bars on the shared `scale` (the largest effect of both lists, so a
/// −0.1 point factor never looks as large as a +15 point one) and as a table.
fn factors(
    id: &str,
    heading: &str,
    note: &str,
    list: &[Factor],
    colour: &str,
    scale: f64,
) -> Markup {
    html! {
        section.chart-box aria-labelledby=(format!("{id}-h")) {
            h2 #(format!("{id}-h")) { (heading) }
            @if list.is_empty() {
                p.hint { "None of note." }
            } @else {
                p.hint { (note) }
                (charts::bars(id, heading,
                    &list.iter().map(|f| format!("{} = {}{}: {:+.1} pts", f.feature, value_text(&f.value), f.quality.as_deref().map(|q| format!(" ({q})")).unwrap_or_default(), f.impact)).collect::<Vec<_>>().join("; "),
                    &list.iter().map(|f| Bar { label: &f.feature, value: f.impact.abs(), text: format!("{:+.1} pts", f.impact), colour }).collect::<Vec<_>>(), scale))
                div.table-wrap { table {
                    caption.sr-only { (heading) }
                    thead { tr { th scope="col" { "Column" } th scope="col" { "Value" } th scope="col" .num { "Effect" } } }
                    tbody {
                        @for f in list {
                            tr { th scope="row" { (f.feature) @if let Some(w) = &f.with { " (with " (w) ")" } } td { (value_text(&f.value)) (quality_mark(f)) } td.num { (format!("{:+.1}", f.impact)) " pts" } }
                        }
                    }
                } }
            }
        }
    }
}

/// After a flagged factor's value: what is wrong with it, so a substituted value never reads
/// as a real driver.
fn quality_mark(f: &Factor) -> Markup {
    html! {
        @if let Some(q) = &f.quality {
            // A grouped factor's mark may name its partner ("missing in TotalCharges").
            @if q.starts_with(retainwise_model::quality::FlagKind::OutOfRange.label()) {
                " " span.quality { "(" (q) ": the customer's value, but the model never learnt what such a value means)" }
            } @else {
                " " span.quality { "(" (q) ": the model's rule for a missing value, not the customer's value)" }
            }
        }
    }
}

pub(super) fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn level_badge(level: Level) -> Markup {
    html! { span class=(format!("badge risk-{}", level.as_str())) { (capitalise(level.as_str())) } }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
