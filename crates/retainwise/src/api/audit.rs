//! `GET /api/audit`: the caller's organisation's audit log (owners and admins, see
//! `http::access`), oldest first. Query: `action` (`member.add`, …), `user`, `since` and `until`
//! (RFC 3339; `since` inclusive, `until` exclusive), `record` (a record's id), `limit` (1-1000,
//! default 100) and `offset`; `format=csv` answers every matching entry as a CSV download
//! (spreadsheet-safe cells, OWASP CSV injection) instead of one JSON page.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use crate::app::App;
use crate::audit::{self, Action, Entry, Filter};
use crate::http::Caller;

/// Entries per page at most (and per database read of a CSV export).
pub const MAX_LIMIT: i64 = 1000;

/// The query of `GET /api/audit` (and of the page).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    action: Option<String>,
    user: Option<String>,
    since: Option<String>,
    until: Option<String>,
    record: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    format: Option<String>,
}

impl AuditQuery {
    /// The filter, limit and offset it asks for. Errors: 400 naming the parameter to fix.
    pub fn parse(&self) -> Result<(Filter, i64, i64), ApiError> {
        let time = |name: &str, v: &Option<String>| {
            nonempty(v)
                .map(|raw| {
                    crate::time::parse_rfc3339(raw)
                        .map(crate::time::to_ms)
                        .map_err(|e| {
                            ApiError::BadRequest(format!(
                                "{name}={raw:?} is not an RFC 3339 time such as 2026-12-01T00:00:00Z ({e})"
                            ))
                        })
                })
                .transpose()
        };
        let filter = Filter {
            action: nonempty(&self.action)
                .map(Action::parse)
                .transpose()
                .map_err(|e| ApiError::BadRequest(format!("action: {e}")))?,
            user: nonempty(&self.user).map(str::to_owned),
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            record: nonempty(&self.record).map(str::to_owned),
        };
        let limit = self.limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit={limit}: give 1 to {MAX_LIMIT}"
            )));
        }
        let offset = self.offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::BadRequest(format!(
                "offset={offset}: give 0 or more"
            )));
        }
        Ok((filter, limit, offset))
    }
}

/// `{"entries": [{"id", "at", "user_id", "api_key_id", "client_ip", "action", "record_kind",
/// "record_id", "outcome", "reason", "count"}], "next_offset": n | null}`, or with `format=csv`
/// the same columns as a CSV file. 400 for a bad parameter.
pub async fn list(
    State(app): State<App>,
    Caller(me): Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (filter, limit, offset) = query.parse()?;
    match query.format.as_deref() {
        None | Some("json") => {
            let entries = audit::list(app.db.pool(), &me.org, &filter, limit, offset).await?;
            let next = (entries.len() as i64 == limit).then_some(offset + limit);
            Ok(
                Json(json!({ "success": true, "entries": entries, "next_offset": next }))
                    .into_response(),
            )
        }
        Some("csv") => {
            let safe = retainwise_model::safe_csv::SafeCsvWriter::new(Vec::new());
            let mut out = csv::Writer::from_writer(safe);
            write_csv(&mut out, None).map_err(|e| ApiError::Internal(e.into()))?;
            let mut at = offset;
            loop {
                let page = audit::list(app.db.pool(), &me.org, &filter, MAX_LIMIT, at).await?;
                for entry in &page {
                    write_csv(&mut out, Some(entry)).map_err(|e| ApiError::Internal(e.into()))?;
                }
                if (page.len() as i64) < MAX_LIMIT {
                    break;
                }
                at += MAX_LIMIT;
            }
            let body = out
                .into_inner()
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("audit CSV: {e}")))?
                .finish()
                .map_err(|e| ApiError::Internal(e.into()))?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"audit.csv\"",
                    ),
                ],
                body,
            )
                .into_response())
        }
        Some(other) => Err(ApiError::BadRequest(format!(
            "format={other:?}: give json (the default) or csv"
        ))),
    }
}

/// A parameter's trimmed value, `None` when absent or blank.
fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// One CSV line: the header for `None`.
fn write_csv<W: std::io::Write>(
    out: &mut csv::Writer<W>,
    entry: Option<&Entry>,
) -> csv::Result<()> {
    let line = match entry {
        None => [
            "at",
            "user_id",
            "api_key_id",
            "client_ip",
            "action",
            "record_kind",
            "record_id",
            "outcome",
            "reason",
            "count",
            "id",
        ]
        .map(str::to_owned),
        Some(e) => [
            crate::time::rfc3339(e.created_at),
            e.user_id.clone().unwrap_or_default(),
            e.api_key_id.clone().unwrap_or_default(),
            e.client_ip.clone().unwrap_or_default(),
            e.action.clone(),
            e.record_kind.clone().unwrap_or_default(),
            e.record_id.clone().unwrap_or_default(),
            e.outcome.clone(),
            e.reason.clone().unwrap_or_default(),
            e.count.to_string(),
            e.id.clone(),
        ],
    };
    out.write_record(&line)
}
