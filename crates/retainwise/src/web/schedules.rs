//! `GET /schedules`: the organisation's re-scoring schedules — each with its cron expression,
//! source, next run and latest runs (a queued run links to its prediction, a skipped one says
//! why) — the add form, and pause, resume and remove buttons. The same checks as
//! `/api/schedules` ([`crate::schedules`]); every form is a plain POST checked by
//! [`request_site`].

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};

use super::error::WebError;
use super::format;
use super::layout::{self, Nav};
use super::{WebState, WebUser};
use crate::domain::OrgId;
use crate::http::site::{request_site, Site};
use crate::http::AuditActor;
use crate::schedules::{self, AddError, NewSchedule, Schedule};

/// `GET /schedules`.
pub async fn page(
    State(state): State<WebState>,
    WebUser(org): WebUser,
) -> Result<Response, WebError> {
    Ok(listing(&state, &org, None).await?.into_response())
}

/// `POST /schedules` (the add form: `cron`, `source`, `name`): back to the listing, or the
/// listing with the reason it was refused (422).
pub async fn add(
    State(state): State<WebState>,
    WebUser(org): WebUser,
    AuditActor(actor): AuditActor,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    same_site(
        &state,
        &headers,
        "Add a schedule from this site's own form.",
    )?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let app = &state.app;
    let source = field("source").filter(|s| !s.trim().is_empty());
    let checked = NewSchedule::check(
        field("cron"),
        source,
        field("name"),
        app.storage.root_url(),
        &org,
    );
    let refused = match checked {
        Ok(new) => match schedules::add(app.db.pool(), &org, &new, &actor).await {
            Ok(_) => return Ok(Redirect::to("/schedules").into_response()),
            Err(AddError::TooMany) => AddError::TooMany.to_string(),
            Err(AddError::Database(e)) => return Err(e.into()),
        },
        Err((field, why)) => format!("{field}: {why}"),
    };
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        listing(&state, &org, Some(&refused)).await?,
    )
        .into_response())
}

/// `POST /schedules/{id}/remove`.
pub async fn remove(
    State(state): State<WebState>,
    WebUser(org): WebUser,
    AuditActor(actor): AuditActor,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    same_site(
        &state,
        &headers,
        "Remove a schedule from this site's own button.",
    )?;
    if !schedules::remove(state.app.db.pool(), &org, &id, &actor).await? {
        return Err(WebError::not_found(
            "There is no such schedule among yours.",
        ));
    }
    Ok(Redirect::to("/schedules").into_response())
}

/// `POST /schedules/{id}/pause`.
pub async fn pause(
    state: State<WebState>,
    user: WebUser,
    actor: AuditActor,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Response, WebError> {
    set_paused(state, user, actor, headers, id, true).await
}

/// `POST /schedules/{id}/resume`.
pub async fn resume(
    state: State<WebState>,
    user: WebUser,
    actor: AuditActor,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Response, WebError> {
    set_paused(state, user, actor, headers, id, false).await
}

async fn set_paused(
    State(state): State<WebState>,
    WebUser(org): WebUser,
    AuditActor(actor): AuditActor,
    headers: HeaderMap,
    Path(id): Path<String>,
    paused: bool,
) -> Result<Response, WebError> {
    same_site(
        &state,
        &headers,
        "Change a schedule from this site's own button.",
    )?;
    if !schedules::set_paused(state.app.db.pool(), &org, &id, paused, &actor).await? {
        return Err(WebError::not_found(
            "There is no such schedule among yours.",
        ));
    }
    Ok(Redirect::to("/schedules").into_response())
}

/// Refuses a form that another site's page sent (OWASP CSRF cheat sheet, see `site.rs`).
fn same_site(state: &WebState, headers: &HeaderMap, refusal: &str) -> Result<(), WebError> {
    if request_site(headers, &state.app.config.http) == Site::Same {
        Ok(())
    } else {
        Err(WebError::bad_request(refusal))
    }
}

async fn listing(state: &WebState, org: &OrgId, refused: Option<&str>) -> Result<Markup, WebError> {
    let list = schedules::list(state.app.db.pool(), org, crate::time::now_ms()).await?;
    let body = html! {
        h1 { "Schedules" }
        p.hint {
            "A schedule re-scores your latest completed upload, or a file your own export writes to "
            code.model { "uploads/" (org.folder()) "/NAME.csv" }
            ", with the active model at the times of a cron expression (UTC), so each customer's history and the drift figures build up on their own. "
            "A slot missed while the service was down is not made up in a burst: only the latest missed slot runs, once."
        }
        @if let Some(why) = refused {
            p.alert.error role="alert" { (why) }
        }
        @if list.is_empty() {
            p.card { "No schedules yet." }
        } @else {
            @for s in &list {
                (schedule_card(s))
            }
        }
        h2 { "Add a schedule" }
        form.card method="post" action="/schedules" #add-schedule {
            p {
                label for="schedule-cron" { "When (cron, UTC: minute hour day month weekday)" }
                input #schedule-cron name="cron" required placeholder="0 6 * * 1";
            }
            p {
                label for="schedule-source" { "What (latest, or uploads/" (org.folder()) "/NAME.csv)" }
                input #schedule-source name="source" value="latest";
            }
            p {
                label for="schedule-name" { "Name (optional)" }
                input #schedule-name name="name" maxlength="100";
            }
            button type="submit" { "Add schedule" }
        }
    };
    Ok(layout::page(
        "Schedules",
        Nav::Schedules,
        state.app.auth.is_required(),
        body,
    ))
}

fn schedule_card(s: &Schedule) -> Markup {
    html! {
        section.card.schedule id=(format!("schedule-{}", s.id)) {
            h2 { (s.name) }
            p {
                code.model { (s.cron) } " · re-scores " code.model { (s.source) } " · "
                @match s.next_run_at {
                    Some(at) => { "next run " span.next-run { (format::time(at)) } }
                    None => span.badge.cancelled { "paused" },
                }
            }
            form.cancel method="post" action=(format!("/schedules/{}/{}", s.id, if s.paused { "resume" } else { "pause" })) {
                button.secondary type="submit" { (if s.paused { "Resume" } else { "Pause" }) }
            }
            " "
            form.cancel method="post" action=(format!("/schedules/{}/remove", s.id)) {
                button.secondary type="submit" aria-label=(format!("Remove {}", s.name)) { "Remove" }
            }
            @if s.runs.is_empty() {
                p.hint { "No run yet." }
            } @else {
                div.table-wrap {
                    table.jobs.stack {
                        caption.sr-only { "Latest runs" }
                        thead { tr { th scope="col" { "Slot" } th scope="col" { "Run" } } }
                        tbody {
                            @for r in &s.runs {
                                tr {
                                    th scope="row" .nowrap { (format::time(r.slot)) }
                                    td data-label="Run" {
                                        @if let Some(p) = &r.prediction_id {
                                            a href=(format!("/predictions/{p}")) { "prediction " code.model { (p) } }
                                        } @else {
                                            span.badge.failed { "skipped" } " " (r.reason.as_deref().unwrap_or(""))
                                        }
                                        @if r.missed > 0 {
                                            span.detail { (r.missed) " earlier slot(s) missed while the service was down" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
