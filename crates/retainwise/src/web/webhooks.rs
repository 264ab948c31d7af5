//! `GET /webhooks`: the user's signed webhook endpoints — list, add (the signing secret shown
//! once, on the page that answers the form), remove — and `GET /webhooks/{id}`: an endpoint's
//! latest deliveries with status, attempts and last HTTP status, a dead-lettered one with a
//! button that sends it again (same `webhook-id`). The same checks as `/api/webhooks`
//! ([`crate::webhooks::register`]); every form is a plain POST checked by [`request_site`].

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
use crate::webhooks::endpoints::{self, DeliveryRow, Event};
use crate::webhooks::{self, RegisterError, Registered};

/// Deliveries shown on an endpoint's page, newest first.
const DELIVERIES_SHOWN: i64 = 100;

/// `GET /webhooks`.
pub async fn page(
    State(state): State<WebState>,
    WebUser(user): WebUser,
) -> Result<Response, WebError> {
    Ok(listing(&state, &user, None, None).await?.into_response())
}

/// `POST /webhooks` (the add form: `url` and one `events` field per ticked event): the listing
/// again with the new endpoint's secret shown once, or with the reason it was refused (400).
pub async fn add(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    AuditActor(actor): AuditActor,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    same_site(&state, &headers, "Add a webhook from this site's own form.")?;
    let (mut url, mut events) = (String::new(), Vec::new());
    for (name, value) in fields {
        match name.as_str() {
            "url" => url = value,
            "events" => events.push(value),
            _ => {}
        }
    }
    let app = &state.app;
    match webhooks::register(app.db.pool(), &app.config, &user, &url, &events, &actor).await {
        Ok(made) => Ok(listing(&state, &user, Some(&made), None)
            .await?
            .into_response()),
        Err(RegisterError::Invalid(why)) => Ok((
            StatusCode::BAD_REQUEST,
            listing(&state, &user, None, Some(&why)).await?,
        )
            .into_response()),
        Err(RegisterError::Database(e)) => Err(e.into()),
    }
}

/// `POST /webhooks/{id}/remove`: no further delivery goes to it; back to the listing. 404 for
/// an id the user does not own.
pub async fn remove(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    AuditActor(actor): AuditActor,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    same_site(
        &state,
        &headers,
        "Remove a webhook from this site's own button.",
    )?;
    if !webhooks::remove(state.app.db.pool(), &user, &id, &actor).await? {
        return Err(WebError::not_found("There is no such webhook among yours."));
    }
    tracing::info!(endpoint_id = %id, "webhook_endpoint_removed");
    Ok(Redirect::to("/webhooks").into_response())
}

/// `GET /webhooks/{id}`: the endpoint's deliveries.
pub async fn deliveries(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let pool = state.app.db.pool();
    let endpoint = endpoints::list(pool, &user)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| WebError::not_found("There is no such webhook among yours."))?;
    let rows = endpoints::deliveries(pool, &user, &id, DELIVERIES_SHOWN)
        .await?
        .unwrap_or_default();
    let body = html! {
        p { a href="/webhooks" { "← Webhooks" } }
        h1 { "Deliveries" }
        p { "To " code.model { (endpoint.url) } " · " (endpoint.events.join(", ")) }
        @if rows.is_empty() {
            p.card { "Nothing sent to this endpoint yet. An event is sent when one of your predictions or trainings finishes." }
        } @else {
            p.hint { "Newest first, the latest " (DELIVERIES_SHOWN) ". A failed attempt is retried for about a day; a delivery that gave up can be sent again with the same webhook-id." }
            div.table-wrap {
                table.jobs.stack {
                    caption.sr-only { "Deliveries to this endpoint" }
                    thead {
                        tr {
                            th scope="col" { "Delivery (webhook-id)" }
                            th scope="col" { "Event" }
                            th scope="col" { "Status" }
                            th scope="col" .num { "Attempts" }
                            th scope="col" .num { "Last HTTP status" }
                            th scope="col" { "Queued" }
                        }
                    }
                    tbody {
                        @for row in &rows {
                            (delivery_row(&id, row))
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        "Webhook deliveries",
        Nav::Webhooks,
        state.app.auth.is_required(),
        body,
    )
    .into_response())
}

/// `POST /webhooks/{id}/deliveries/{delivery}/redrive`: a dead-lettered delivery is sent again
/// (its queue message moved back, the same `webhook-id`); back to the deliveries. 404 for a
/// delivery the user does not own; 409 for one that is not dead-lettered.
pub async fn redrive(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    headers: HeaderMap,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Response, WebError> {
    same_site(
        &state,
        &headers,
        "Send a delivery again from this site's own button.",
    )?;
    let back = format!("/webhooks/{id}");
    let app = &state.app;
    let message = endpoints::dead_delivery_message(app.db.pool(), &user, &id, &delivery)
        .await?
        .ok_or_else(|| WebError::not_found("There is no such delivery among yours."))?;
    let Some(message) = message else {
        return Err(WebError::conflict(
            "This delivery has not given up: only a dead-lettered delivery can be sent again.",
        ));
    };
    let moved = app
        .queue
        .redrive(Some(std::slice::from_ref(&message)))
        .await
        .map_err(crate::http::ApiError::from)?;
    if moved == 0 {
        return Err(WebError::conflict(
            "This delivery is being sent again already.",
        ));
    }
    tracing::info!(job_id = %delivery, endpoint_id = %id, "webhook_delivery_redriven");
    Ok(Redirect::to(&back).into_response())
}

/// Refuses a form that another site's page sent (OWASP CSRF cheat sheet, see `site.rs`).
fn same_site(state: &WebState, headers: &HeaderMap, refusal: &str) -> Result<(), WebError> {
    if request_site(headers, &state.app.config.http) == Site::Same {
        Ok(())
    } else {
        Err(WebError::bad_request(refusal))
    }
}

/// The listing page, with the endpoint just added (`made`: its secret, shown only now) or the
/// reason an add was refused.
async fn listing(
    state: &WebState,
    user: &OrgId,
    made: Option<&Registered>,
    refused: Option<&str>,
) -> Result<Markup, WebError> {
    let list = endpoints::list(state.app.db.pool(), user).await?;
    let body = html! {
        h1 { "Webhooks" }
        p.hint { "Your endpoints get a signed POST (Standard Webhooks) when a prediction or training finishes." }
        @if let Some(made) = made {
            div.alert.ok role="status" #new-webhook {
                p { "Webhook " code.model { (made.id) } " added for " code.model { (made.url) } "." }
                p { "Its signing secret, shown only now — give it to your receiver to verify signatures:" }
                p { code.model #webhook-secret { (made.secret) } }
            }
        }
        @if let Some(why) = refused {
            p.alert.error role="alert" { (why) }
        }
        @if list.is_empty() {
            p.card { "No webhooks yet." }
        } @else {
            div.table-wrap {
                table.jobs.stack #webhooks {
                    caption.sr-only { "Your webhook endpoints" }
                    thead {
                        tr {
                            th scope="col" { "URL" }
                            th scope="col" { "Events" }
                            th scope="col" { "Added" }
                            th scope="col" { "" }
                        }
                    }
                    tbody {
                        @for e in &list {
                            tr {
                                th scope="row" { a href=(format!("/webhooks/{}", e.id)) { code.model { (e.url) } } }
                                td data-label="Events" { (e.events.join(", ")) }
                                td.nowrap data-label="Added" { (format::time(e.created_at)) }
                                td {
                                    form.cancel method="post" action=(format!("/webhooks/{}/remove", e.id)) {
                                        button.secondary type="submit" aria-label=(format!("Remove {}", e.url)) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a webhook" }
        form.card method="post" action="/webhooks" #add-webhook {
            p {
                label for="webhook-url" { "URL (https://…)" }
                input #webhook-url type="url" name="url" required placeholder="https://example.com/hooks/retainwise";
            }
            fieldset {
                legend { "Events" }
                @for event in Event::ALL {
                    label {
                        input type="checkbox" name="events" value=(event.as_str()) checked[event == Event::PredictionCompleted];
                        " " (event.as_str())
                    }
                    " "
                }
            }
            button type="submit" { "Add webhook" }
        }
    };
    Ok(layout::page(
        "Webhooks",
        Nav::Webhooks,
        state.app.auth.is_required(),
        body,
    ))
}

fn delivery_row(endpoint: &str, row: &DeliveryRow) -> Markup {
    let dead = row.dead_lettered_at.is_some();
    html! {
        tr {
            th scope="row" { code.model { (row.id) } }
            td data-label="Event" { (row.event) " " span.muted { (row.subject_id) } }
            td data-label="Status" {
                span class=(format!("badge {}", row.status.to_ascii_lowercase())) { (row.status) }
                @if let Some(at) = row.dead_lettered_at {
                    span.detail.error-text { "gave up " (format::time(at)) }
                    form.cancel method="post" action=(format!("/webhooks/{endpoint}/deliveries/{}/redrive", row.id)) {
                        button.secondary type="submit" aria-label=(format!("Send {} again", row.id)) { "Send again" }
                    }
                }
            }
            td.num data-label="Attempts" { (row.attempt) }
            td.num data-label="Last HTTP status" {
                @match row.last_status_code {
                    Some(code) => (code),
                    None => span.muted { "—" },
                }
                @if dead && row.last_status_code.is_none() { span.detail { "no answer" } }
                @if let Some(why) = &row.error { span.detail { (format::clipped(why, 300)) } }
            }
            td.nowrap data-label="Queued" { (format::time(row.queued_at)) }
        }
    }
}
