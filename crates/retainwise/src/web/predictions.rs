//! `GET /predictions`: every job of the user, newest first, with live status. The listing (table
//! and pager, or the empty state) is also served alone (`GET /predictions/rows?page=N`), and the
//! script swaps it in every couple of seconds while a job is queued or running — and on page 1
//! every few seconds anyway, so jobs created after the page loaded appear — without a reload
//! and without a second rendering of the rows in JavaScript.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::WebError;
use super::format;
use super::layout::{self, Nav};
use super::query::{page_number, WebQuery};
use super::{WebState, WebUser};
use crate::db::{Cancelled, PredictionRow, PredictionStatus};
use crate::domain::{OrgId, PredictionId};
use crate::http::site::{request_site, Site};

/// Jobs per page.
const PER_PAGE: u32 = 20;

/// `?page=N` (1-based).
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    page: Option<String>,
}

/// `GET /predictions`.
pub async fn page(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    WebQuery(q): WebQuery<PageQuery>,
) -> Result<Response, WebError> {
    let page = page_number(q.page.as_deref())?;
    let (rows, total) = state
        .app
        .db
        .predictions(
            &user,
            PER_PAGE,
            (page - 1).saturating_mul(u64::from(PER_PAGE)),
        )
        .await?;
    let body = html! {
        h1 { "Predictions" }
        (listing(&rows, total, page))
    };
    Ok(layout::page(
        "Predictions",
        Nav::Predictions,
        state.app.auth.is_required(),
        body,
    )
    .into_response())
}

/// `GET /predictions/rows?page=N`: the table body alone, for the live update.
pub async fn rows(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    WebQuery(q): WebQuery<PageQuery>,
) -> Result<Response, WebError> {
    let page = page_number(q.page.as_deref())?;
    let (rows, total) = state
        .app
        .db
        .predictions(
            &user,
            PER_PAGE,
            (page - 1).saturating_mul(u64::from(PER_PAGE)),
        )
        .await?;
    Ok(listing(&rows, total, page).into_response())
}

/// How often the listing is fetched again while one of its jobs is queued or running (ms).
const ACTIVE_PERIOD_MS: u32 = 1_500;
/// How often page 1 is fetched again when all its jobs are finished (ms): jobs created
/// elsewhere (another tab, the API, a colleague's script) appear on it without a reload.
const IDLE_PERIOD_MS: u32 = 5_000;

/// The listing that live updates replace whole: the table and pager of page `page`, or the
/// empty state, so the first job appears even on a page that loaded with none.
fn listing(rows: &[PredictionRow], total: u64, page: u64) -> Markup {
    let pages = total.div_ceil(u64::from(PER_PAGE)).max(1);
    let active = rows.iter().any(|r| !r.status().is_terminal());
    // Later pages only change when their own jobs do; new jobs arrive on page 1.
    let live = active || page == 1;
    let period = if active {
        ACTIVE_PERIOD_MS
    } else {
        IDLE_PERIOD_MS
    };
    html! {
        section #jobs data-live=(format!("/predictions/rows?page={page}")) data-active=(live) data-period=(period) {
            @if total == 0 {
                p.card { "No predictions yet. " a href="/" { "Upload a customer file" } " to score it." }
            } @else {
                p.hint { "Newest first. New jobs appear here and queued and running jobs update by themselves." }
                div.table-wrap {
                    table.jobs.stack {
                        caption.sr-only { "Your predictions, page " (page) " of " (pages) }
                        thead {
                            tr {
                                th scope="col" { "File" }
                                th scope="col" { "Status" }
                                th scope="col" { "Created" }
                                th scope="col" .num { "Rows scored" }
                                th scope="col" .num { "Rejected" }
                                th scope="col" { "Model" }
                                th scope="col" { "Downloads" }
                            }
                        }
                        (tbody(rows))
                    }
                }
                (pager("/predictions?", page, pages))
            }
        }
    }
}

fn tbody(rows: &[PredictionRow]) -> Markup {
    html! {
        tbody {
            @for row in rows {
                tr {
                    th scope="row" { a href=(format!("/predictions/{}", row.id)) { (row.filename) } }
                    td data-label="Status" { (status(row)) (cancel_button(row)) }
                    td.nowrap data-label="Created" { (format::time(row.queued_at)) }
                    td.num data-label="Rows scored" { (format::int(row.rows_processed.max(0) as u64)) }
                    td.num data-label="Rejected" { (format::int(row.rows_rejected.max(0) as u64)) }
                    td data-label="Model" { code.model { (row.model_id) } }
                    td data-label="Downloads" { (downloads(row)) }
                }
            }
        }
    }
}

/// A status badge with what it means in words: live progress in rows, or the error.
pub fn status(row: &PredictionRow) -> Markup {
    let s = row.status();
    html! {
        span class=(format!("badge {}", s.as_str().to_ascii_lowercase())) { (s.as_str()) }
        @match s {
            PredictionStatus::Queued => {
                span.detail { "waiting for a worker" }
            }
            PredictionStatus::Running => {
                span.detail { (format::int(row.rows_processed.max(0) as u64)) " rows scored so far"
                    @if let Some(total) = row.chunks_total {
                        ", " (format::int(row.chunks_done.max(0) as u64)) " of "
                        (format::int(total.max(0) as u64)) " pieces done"
                    } @else if row.attempt > 1 { " (attempt " (row.attempt) ")" } }
            }
            PredictionStatus::Completed => {}
            PredictionStatus::Failed => {
                span.detail.error-text { (row.error_message.as_deref().unwrap_or("no reason was recorded")) }
            }
            PredictionStatus::Cancelled => {
                span.detail { "cancelled; nothing was scored" }
            }
        }
    }
}

/// The cancel button of a queued or running job (nothing for a finished one): a plain form, so
/// it works without the script.
pub fn cancel_button(row: &PredictionRow) -> Markup {
    html! {
        @if !row.status().is_terminal() {
            form.cancel method="post" action=(format!("/predictions/{}/cancel", row.id)) {
                button.secondary type="submit" aria-label=(format!("Cancel {}", row.filename)) { "Cancel" }
            }
        }
    }
}

/// `POST /predictions/{id}/cancel` (the cancel button): cancels the job, then back to the
/// listing. A job that finished meanwhile answers 409 naming its status; another user's id
/// answers 404 like a missing one.
pub async fn cancel(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    headers: axum::http::HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, WebError> {
    if request_site(&headers, &state.app.config.http) != Site::Same {
        return Err(WebError::bad_request(
            "Cancel a job from this site's own button.",
        ));
    }
    let pid: PredictionId = id
        .parse()
        .map_err(|_| WebError::not_found("No such prediction."))?;
    match state.app.db.cancel_prediction(&user, pid).await? {
        Cancelled::Now => Ok(axum::response::Redirect::to("/predictions").into_response()),
        Cancelled::Finished(status) => Err(WebError::conflict(format!(
            "This job is already {status}: only a queued or running job can be cancelled."
        ))),
        Cancelled::Missing => Err(WebError::not_found("No such prediction.")),
    }
}

/// Download links of a job: results as CSV and Excel once completed, the validation report
/// once the file has been read.
pub fn downloads(row: &PredictionRow) -> Markup {
    let s = row.status();
    if row.results_gone().is_some() {
        return html! { span.muted { "deleted" } };
    }
    html! {
        @if s == PredictionStatus::Completed {
            a href=(format!("/api/predictions/{}/results", row.id)) download { "CSV" } " · "
            a href=(format!("/predictions/{}/export.xlsx", row.id)) download { "Excel" } " · "
        }
        @if row.report_key.is_some() || s == PredictionStatus::Failed {
            a href=(format!("/api/predictions/{}/report", row.id)) { "Report" }
        } @else if s != PredictionStatus::Completed {
            span.muted { "—" }
        }
    }
}

/// Previous/next links for `pages` pages; `base` ends with `?` or `&`.
pub fn pager(base: &str, page: u64, pages: u64) -> Markup {
    html! {
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @if page > 1 {
                    a rel="prev" href=(format!("{base}page={}", page - 1)) { "← Previous" }
                } @else {
                    span.muted aria-hidden="true" { "← Previous" }
                }
                span { "Page " (page) " of " (format::int(pages)) }
                @if page < pages {
                    a rel="next" href=(format!("{base}page={}", page + 1)) { "Next →" }
                } @else {
                    span.muted aria-hidden="true" { "Next →" }
                }
            }
        }
    }
}

/// The user's prediction `id`, or a 404 page (also for another user's prediction).
pub async fn find(state: &WebState, user: &OrgId, id: &str) -> Result<PredictionRow, WebError> {
    let parsed: PredictionId = id.parse().map_err(|_| {
        WebError::not_found(format!("There is no prediction {id:?}: check the link."))
    })?;
    state
        .app
        .db
        .prediction(user, parsed)
        .await?
        .ok_or_else(|| WebError::not_found(format!("There is no prediction {parsed} among yours.")))
}
