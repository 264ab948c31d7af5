//! `GET /members`: an owner's page of their organisation's members — add one (user id and
//! role), change a role, remove one. The same rules as `/api/org/members` (`db/orgs.rs`);
//! who may open it is `http::access`'s table (owners). Every form is a plain POST checked by
//! [`request_site`].

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::error::WebError;
use super::format;
use super::layout::{self, Nav};
use super::{WebState, WebUser};
use crate::auth::Member;
use crate::domain::{Role, UserId};
use crate::http::site::{request_site, Site};
use crate::http::{AuditActor, Caller};

/// The signed-in member of a page: [`WebUser`]'s checks, then the whole caller it resolved.
pub struct WebMember(pub Member);

impl FromRequestParts<WebState> for WebMember {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        WebUser::from_request_parts(parts, state).await?;
        match parts.extensions.get::<Caller>() {
            Some(Caller(member)) => Ok(Self(member.clone())),
            None => Err(WebError::from(crate::http::ApiError::Unauthorized).into_response()),
        }
    }
}

impl FromRequestParts<WebState> for crate::http::AuditActor {
    type Rejection = Response;

    /// The page's `WebMember` and the client's address, for the audit log.
    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let WebMember(member) = WebMember::from_request_parts(parts, state).await?;
        let ip = crate::http::limits::request_client_ip(
            &parts.extensions,
            &parts.headers,
            &state.app.config.http.trusted_proxies,
        );
        Ok(Self(crate::audit::Actor::of(&member, ip)))
    }
}

/// The add form and the role form.
#[derive(Debug, Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    user_id: String,
    role: String,
}

/// `GET /members`.
pub async fn page(
    State(state): State<WebState>,
    WebMember(me): WebMember,
) -> Result<Response, WebError> {
    Ok(listing(&state, &me, None).await?.into_response())
}

/// `POST /members` (`user_id`, `role`): adds the member or sets their role; the listing again,
/// or with the reason it was refused (400, 409).
pub async fn add(
    State(state): State<WebState>,
    WebMember(me): WebMember,
    AuditActor(actor): AuditActor,
    headers: HeaderMap,
    Form(form): Form<MemberForm>,
) -> Result<Response, WebError> {
    same_site(&state, &headers)?;
    let parsed = form
        .user_id
        .trim()
        .parse::<UserId>()
        .and_then(|u| Ok((u, form.role.parse::<Role>()?)));
    let (user, role) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let page = listing(&state, &me, Some(&e.0)).await?;
            return Ok((StatusCode::BAD_REQUEST, page).into_response());
        }
    };
    change(
        &state,
        &me,
        state
            .app
            .db
            .set_member(&me.org, &user, role, Some(&actor))
            .await,
    )
    .await
}

/// `POST /members/{user}/role` (`role`).
pub async fn set_role(
    State(state): State<WebState>,
    WebMember(me): WebMember,
    AuditActor(actor): AuditActor,
    headers: HeaderMap,
    Path(user): Path<String>,
    Form(form): Form<MemberForm>,
) -> Result<Response, WebError> {
    same_site(&state, &headers)?;
    let (Ok(user), Ok(role)) = (user.parse::<UserId>(), form.role.parse::<Role>()) else {
        return Err(WebError::bad_request("Choose one of the roles offered."));
    };
    if state.app.db.member_role(&me.org, &user).await?.is_none() {
        return Err(WebError::not_found("There is no such member here."));
    }
    change(
        &state,
        &me,
        state
            .app
            .db
            .set_member(&me.org, &user, role, Some(&actor))
            .await,
    )
    .await
}

/// `POST /members/{user}/remove`.
pub async fn remove(
    State(state): State<WebState>,
    WebMember(me): WebMember,
    AuditActor(actor): AuditActor,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Result<Response, WebError> {
    same_site(&state, &headers)?;
    let Ok(user) = user.parse::<UserId>() else {
        return Err(WebError::not_found("There is no such member here."));
    };
    change(
        &state,
        &me,
        state
            .app
            .db
            .remove_member(&me.org, &user, Some(&actor))
            .await,
    )
    .await
}

/// Back to the listing after a change, or the listing with the refusal (404, 409).
async fn change<T>(
    state: &WebState,
    me: &Member,
    done: Result<T, crate::db::MembershipError>,
) -> Result<Response, WebError> {
    match done {
        Ok(_) => Ok(Redirect::to("/members").into_response()),
        Err(crate::db::MembershipError::Database(e)) => Err(e.into()),
        Err(e) => {
            let status = crate::api::orgs::refusal_status(&e);
            Ok((status, listing(state, me, Some(&e.to_string())).await?).into_response())
        }
    }
}

fn same_site(state: &WebState, headers: &HeaderMap) -> Result<(), WebError> {
    if request_site(headers, &state.app.config.http) == Site::Same {
        Ok(())
    } else {
        Err(WebError::bad_request(
            "Change members from this site's own form.",
        ))
    }
}

fn role_select(current: Option<Role>, id: &str) -> Markup {
    html! {
        select name="role" id=(id) {
            @for role in Role::ALL {
                option value=(role.as_str()) selected[Some(role) == current] { (role.as_str()) }
            }
        }
    }
}

async fn listing(state: &WebState, me: &Member, refused: Option<&str>) -> Result<Markup, WebError> {
    let db = &state.app.db;
    let members = db.members(&me.org).await?;
    let personal = db.is_personal(&me.org).await?.unwrap_or(true);
    let body = html! {
        h1 { "Members" }
        p.hint { "Organisation " code.model { (me.org.as_str()) } ". Viewers read pages; analysts also upload, score and export; admins also manage models and webhooks; owners also manage members." }
        @if let Some(why) = refused {
            p.alert.error role="alert" { (why) }
        }
        @if personal {
            p.card { "This is your personal organisation: only you see its data. An operator makes a team with " code { "retainwise org create" } "." }
        }
        div.table-wrap {
            table.jobs.stack #members {
                caption.sr-only { "Members of this organisation" }
                thead { tr { th scope="col" { "User" } th scope="col" { "Role" } th scope="col" { "Joined" } th scope="col" { "" } } }
                tbody {
                    @for (i, m) in members.iter().enumerate() {
                        tr {
                            th scope="row" { code.model { (m.user_id) } }
                            td data-label="Role" {
                                @if personal {
                                    (m.role)
                                } @else {
                                    form method="post" action=(format!("/members/{}/role", m.user_id)) {
                                        label.sr-only for=(format!("role-{i}")) { "Role of " (m.user_id) }
                                        (role_select(m.role.parse().ok(), &format!("role-{i}")))
                                        " "
                                        button.secondary type="submit" { "Change" }
                                    }
                                }
                            }
                            td.nowrap data-label="Joined" { (format::time(m.created_at)) }
                            td {
                                @if !personal {
                                    form.cancel method="post" action=(format!("/members/{}/remove", m.user_id)) {
                                        button.secondary type="submit" aria-label=(format!("Remove {}", m.user_id)) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !personal {
            h2 { "Add a member" }
            form.card method="post" action="/members" #add-member {
                p {
                    label for="member-user" { "User id (the sign-in's subject, e.g. user_2abc…)" }
                    input #member-user type="text" name="user_id" required maxlength="255";
                }
                p {
                    label for="member-role" { "Role" }
                    (role_select(Some(Role::Viewer), "member-role"))
                }
                button type="submit" { "Add member" }
            }
        }
    };
    Ok(layout::page(
        "Members",
        Nav::Members,
        state.app.auth.is_required(),
        body,
    ))
}
