//! `GET /audit`: the organisation's audit log for owners and admins (`http::access`), with the
//! filters of `GET /api/audit` as a GET form, 100 entries a page, and a link to the same
//! selection as CSV.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::error::WebError;
use super::format;
use super::layout::{self, Nav};
use super::members::WebMember;
use super::WebState;
use crate::api::audit::AuditQuery;
use crate::audit::{self, Action};

/// The page; 400 with the API's sentence for a bad filter.
pub async fn page(
    State(state): State<WebState>,
    WebMember(me): WebMember,
    raw: axum::extract::RawQuery,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(query) =
        query.map_err(|e| WebError::from(crate::http::ApiError::BadRequest(e.body_text())))?;
    let (filter, limit, offset) = query.parse().map_err(WebError::from)?;
    let entries = audit::list(state.app.db.pool(), &me.org, &filter, limit, offset).await?;
    // The same selection without the paging, for the next page and the CSV link.
    let selection: String = raw
        .0
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("offset=") && !p.starts_with("format="))
        .map(|p| format!("{p}&"))
        .collect();
    let chosen = filter.action.map(Action::as_str);
    let body = html! {
        h1 { "Audit log" }
        p.hint { "Who did what in organisation " code.model { (me.org.as_str()) } ", oldest first. Entries are never changed or removed." }
        form.card method="get" action="/audit" #audit-filter {
            p {
                label for="audit-action" { "Action" }
                select #audit-action name="action" {
                    option value="" { "any" }
                    @for a in Action::ALL {
                        option value=(a.as_str()) selected[chosen == Some(a.as_str())] { (a.as_str()) }
                    }
                }
            }
            p { label for="audit-user" { "User" } input #audit-user type="text" name="user" value=(filter.user.clone().unwrap_or_default()); }
            p { label for="audit-record" { "Record id" } input #audit-record type="text" name="record" value=(filter.record.clone().unwrap_or_default()); }
            p { label for="audit-since" { "Since (RFC 3339)" } input #audit-since type="text" name="since" placeholder="2026-12-01T00:00:00Z"; }
            p { label for="audit-until" { "Until (RFC 3339)" } input #audit-until type="text" name="until"; }
            button type="submit" { "Show" }
            " "
            a href=(format!("/api/audit?{selection}format=csv")) { "Download as CSV" }
        }
        div.table-wrap {
            table.jobs.stack #audit {
                caption.sr-only { "Audit log entries" }
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "User" } th scope="col" { "Action" }
                    th scope="col" { "Record" } th scope="col" { "Outcome" } th scope="col" { "Address" }
                } }
                tbody {
                    @for e in &entries {
                        tr {
                            td.nowrap data-label="When" { (format::time(e.created_at)) }
                            td data-label="User" {
                                (e.user_id.as_deref().unwrap_or("—"))
                                @if let Some(key) = &e.api_key_id { br; small { "key " code { (key) } } }
                            }
                            th scope="row" { (e.action) }
                            td data-label="Record" {
                                (e.record_kind.as_deref().unwrap_or("")) " " code { (e.record_id.as_deref().unwrap_or("")) }
                            }
                            td data-label="Outcome" {
                                (e.outcome)
                                @if let Some(why) = &e.reason { ": " (why) }
                                @if e.count > 1 { " (×" (e.count) ")" }
                            }
                            td data-label="Address" { (e.client_ip.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        @if entries.is_empty() {
            p.card { "No entry matches." }
        }
        @if entries.len() as i64 == limit {
            p { a href=(format!("/audit?{selection}offset={}", offset + limit)) { "Next page" } }
        }
    };
    Ok(layout::page("Audit log", Nav::Audit, state.app.auth.is_required(), body).into_response())
}
