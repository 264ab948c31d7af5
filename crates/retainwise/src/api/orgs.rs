//! `GET /api/org`: the caller's organisation and role. Member management for owners:
//! `GET /api/org/members`, `POST /api/org/members` (`{"user_id", "role"}`),
//! `PUT /api/org/members/{user}` (`{"role"}`), `DELETE /api/org/members/{user}`. Who may call
//! which is `http::access`'s table; the rules of a change (a team only, one owner at least,
//! a removed member's keys revoked) are `db/orgs.rs`'s, shared with the page and the CLI.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiError;
use crate::app::App;
use crate::audit::{self, Action, Actor, Outcome};
use crate::db::MembershipError;
use crate::domain::{Role, UserId};
use crate::http::{AuditActor, Caller};

/// `{"org", "role", "user", "personal"}`: who the caller is and where.
pub async fn show(State(app): State<App>, Caller(me): Caller) -> Result<Json<Value>, ApiError> {
    let personal = app.db.is_personal(&me.org).await?.unwrap_or(true);
    Ok(Json(json!({
        "success": true,
        "org": me.org.as_str(),
        "role": me.role.as_str(),
        "user": me.user.as_str(),
        "personal": personal,
    })))
}

/// `{"members": [{"user_id", "role", "created_at"}]}`, owners first.
pub async fn members(State(app): State<App>, Caller(me): Caller) -> Result<Json<Value>, ApiError> {
    let members = app.db.members(&me.org).await?;
    Ok(Json(json!({ "success": true, "members": members })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    user_id: String,
    role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: String,
}

/// Adds a member (201) or sets an existing member's role (200). 400 for a body that is not
/// `{"user_id": "...", "role": "viewer|analyst|admin|owner"}`; 409 in a personal organisation
/// or when the last owner would be demoted.
pub async fn add(
    State(app): State<App>,
    Caller(me): Caller,
    AuditActor(actor): AuditActor,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new: NewMember = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be {{\"user_id\": \"user_2abc…\", \"role\": \"analyst\"}} ({e})"
        ))
    })?;
    let (user, role) = (parse_user(&new.user_id)?, parse_role(&new.role)?);
    let added = app.db.set_member(&me.org, &user, role, Some(&actor)).await;
    let added = audited_refusal(&app, &actor, Action::MemberAdd, &user, added).await?;
    tracing::info!(
        org = me.org.as_str(),
        by = me.user.as_str(),
        member = user.as_str(),
        role = role.as_str(),
        "member_set"
    );
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({ "success": true, "user_id": user.as_str(), "role": role.as_str() })),
    ))
}

/// Sets a member's role: 404 for a non-member, 409 as [`add`].
pub async fn set_role(
    State(app): State<App>,
    Caller(me): Caller,
    AuditActor(actor): AuditActor,
    Path(user): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let change: RoleChange = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body must be {{\"role\": \"analyst\"}} ({e})"))
    })?;
    let (user, role) = (parse_user(&user)?, parse_role(&change.role)?);
    if app.db.member_role(&me.org, &user).await?.is_none() {
        return Err(refusal(MembershipError::NotMember(user.to_string())));
    }
    let set = app.db.set_member(&me.org, &user, role, Some(&actor)).await;
    audited_refusal(&app, &actor, Action::MemberRoleChange, &user, set).await?;
    tracing::info!(
        org = me.org.as_str(),
        by = me.user.as_str(),
        member = user.as_str(),
        role = role.as_str(),
        "member_set"
    );
    Ok(Json(
        json!({ "success": true, "user_id": user.as_str(), "role": role.as_str() }),
    ))
}

/// Removes a member (their API keys for the organisation are revoked and their sessions in it
/// ended): 204; 404 for a non-member, 409 for the last owner or a personal organisation.
pub async fn remove(
    State(app): State<App>,
    Caller(me): Caller,
    AuditActor(actor): AuditActor,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = parse_user(&user)?;
    let removed = app.db.remove_member(&me.org, &user, Some(&actor)).await;
    audited_refusal(&app, &actor, Action::MemberRemove, &user, removed).await?;
    tracing::info!(
        org = me.org.as_str(),
        by = me.user.as_str(),
        member = user.as_str(),
        "member_removed"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// A refused membership change recorded (the change's own entry is written in its
/// transaction), then answered as [`refusal`].
async fn audited_refusal<T>(
    app: &App,
    actor: &Actor,
    action: Action,
    user: &UserId,
    done: Result<T, MembershipError>,
) -> Result<T, ApiError> {
    match done {
        Ok(done) => Ok(done),
        Err(MembershipError::Database(e)) => Err(e.into()),
        Err(e) => {
            let outcome = Outcome::Refused(e.to_string());
            let member = Some(("member", user.as_str()));
            audit::record(app.db.pool(), actor, action, member, &outcome).await?;
            Err(refusal(e))
        }
    }
}

fn parse_user(raw: &str) -> Result<UserId, ApiError> {
    raw.parse()
        .map_err(|e: crate::domain::DomainError| ApiError::BadRequest(e.0))
}

fn parse_role(raw: &str) -> Result<Role, ApiError> {
    raw.parse()
        .map_err(|e: crate::domain::DomainError| ApiError::BadRequest(e.0))
}

/// The status of a refused membership change (the page answers the same).
pub(crate) fn refusal_status(e: &MembershipError) -> StatusCode {
    match e {
        MembershipError::NotMember(_) | MembershipError::NoOrganisation(_) => StatusCode::NOT_FOUND,
        MembershipError::LastOwner | MembershipError::Personal => StatusCode::CONFLICT,
        MembershipError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The HTTP answer to a refused membership change (the page shows the same sentences).
pub(crate) fn refusal(e: MembershipError) -> ApiError {
    match e {
        MembershipError::NotMember(_) | MembershipError::NoOrganisation(_) => {
            ApiError::NotFound(e.to_string())
        }
        MembershipError::LastOwner | MembershipError::Personal => ApiError::Conflict(e.to_string()),
        MembershipError::Database(e) => e.into(),
    }
}
