//! Signing a browser in: a page where a user pastes an API key (`retainwise apikey create`) or a
//! JWT. The server checks it once and starts a server-side session (see
//! [`crate::auth::SESSION_PREFIX`]); the browser keeps only the random session id, in an
//! `HttpOnly; SameSite=Strict` cookie (`__Host-` prefixed and `Secure` over HTTPS), which
//! [`CurrentUser`] accepts in place of an `Authorization` header (the cookie's check is
//! `http/session.rs`). The key itself never leaves
//! the sign-in request: other applications on the same host (cookies ignore ports) no longer
//! receive it, and a key or a session id of another server planted in the cookie signs nobody in.
//!
//! Requests that change state with the cookie must come from this site (`http::site`), on
//! top of `SameSite=Strict`.
//!
//! With no sign-in configured there is nothing to sign in to: the server acts for the local user
//! and listens on loopback only, and the sign-in page says so.

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;

use super::error::WebError;
use super::layout::{self, Nav};
use super::WebState;
use crate::app::App;
use crate::domain::OrgId;
use crate::http::session::{cookie_name, is_secure, read_cookie};
use crate::http::site::{request_site, Site};
use crate::http::{ApiError, CurrentUser};
use crate::log_safe::{client_warnings, Clip};

/// The signed-in user of a page. Like [`CurrentUser`], but a missing or refused credential
/// redirects to the sign-in page (coming back here afterwards) instead of answering JSON 401.
#[derive(Debug, Clone)]
pub struct WebUser(pub OrgId);

impl FromRequestParts<WebState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        match CurrentUser::from_request_parts(parts, &state.app).await {
            Ok(CurrentUser(user)) => Ok(Self(user)),
            Err(ApiError::Unauthorized) => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let next: String = form_urlencode(here);
                Err(Redirect::to(&format!("/signin?next={next}")).into_response())
            }
            Err(e) => Err(WebError::from(e).into_response()),
        }
    }
}

/// Query of the sign-in page: where to go afterwards.
#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// The form of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    key: String,
    next: Option<String>,
}

/// `GET /signin`.
pub async fn page(State(state): State<WebState>, Query(q): Query<Next>) -> Response {
    render(&state, q.next.as_deref(), None, StatusCode::OK)
}

/// `POST /signin`: checks the key like any API request would, then starts a new session (the
/// one the browser had, if any, is ended: a fresh id at every sign-in) and sets its cookie.
pub async fn sign_in(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let app = &state.app;
    let headers = &headers;
    if !app.auth.is_required() {
        return Redirect::to("/").into_response();
    }
    if request_site(headers, &app.config.http) != Site::Same {
        return render(
            &state,
            form.next.as_deref(),
            Some("The sign-in form was sent from another site; open this page and try again."),
            StatusCode::BAD_REQUEST,
        );
    }
    let key = form.key.trim();
    if key.is_empty() || !key.bytes().all(is_token_byte) {
        return render(
            &state,
            form.next.as_deref(),
            Some("That is not an API key: paste the whole key printed by `retainwise apikey create`, without spaces."),
            StatusCode::BAD_REQUEST,
        );
    }
    let client =
        crate::http::limits::client_ip(peer.ip(), headers, &app.config.http.trusted_proxies);
    let bearer = format!("Bearer {key}");
    let resolved = async {
        let credential = app.auth.credential(&app.db, Some(&bearer)).await?;
        let member = crate::auth::Member::of(&app.db, &credential).await?;
        Ok::<_, crate::auth::AuthError>((credential, member))
    };
    let (credential, member) = match resolved.await {
        Ok(resolved) => resolved,
        Err(crate::auth::AuthError::Database(e)) => {
            return WebError::from(ApiError::from(e)).into_response()
        }
        Err(e) => {
            if let Err(e) =
                crate::audit::sign_in_failure(&app.db, Some(client), &e.to_string()).await
            {
                return WebError::from(ApiError::from(e)).into_response();
            }
            if let Some(suppressed) =
                client_warnings().allow(&format!("web_sign_in_refused {client}"))
            {
                tracing::warn!(%client, reason = %Clip(&e.to_string()), suppressed, "web_sign_in_refused");
            }
            return render(
                &state,
                form.next.as_deref(),
                Some("That key was not accepted: check that it was copied whole and has not been revoked."),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    match start_session(app, headers, &credential, &member.org).await {
        Ok(cookie) => {
            tracing::info!(user = credential.user.as_str(), %client, "web_sign_in");
            let mut response = Redirect::to(safe_next(form.next.as_deref())).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => WebError::from(ApiError::from(e)).into_response(),
    }
}

/// Ends the browser's current session (if any), starts one for the signed-in `credential`, and
/// returns its `Set-Cookie` value. The session ends with the key (API keys) or the token's
/// `exp` (JWTs), at the latest after `RETAINWISE_SESSION_HOURS`.
async fn start_session(
    app: &App,
    headers: &HeaderMap,
    credential: &crate::auth::Credential,
    org: &OrgId,
) -> Result<String, sqlx::Error> {
    use crate::auth::CredentialKind;
    let http = &app.config.http;
    let name = cookie_name(headers, http);
    if let Some(old) = read_cookie(headers, name) {
        app.db.delete_session(&old).await?;
    }
    let now = crate::time::now_ms();
    let ttl_ms = i64::try_from(http.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let mut expires = now.saturating_add(ttl_ms);
    let api_key_id = match &credential.kind {
        CredentialKind::ApiKey { id, .. } => Some(id.as_str()),
        CredentialKind::Jwt { expires_ms } => {
            expires = expires.min(*expires_ms);
            None
        }
        CredentialKind::LocalUser => None,
    };
    let id = app
        .db
        .create_session(&credential.user, org, api_key_id, expires)
        .await?;
    let max_age = (expires - now).max(0) / 1000;
    let secure = if is_secure(headers, http) {
        "; Secure"
    } else {
        ""
    };
    Ok(format!(
        "{name}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
}

/// `POST /signout`: ends the session on the server and forgets the cookie.
pub async fn sign_out(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let http = &state.app.config.http;
    if request_site(&headers, http) != Site::Same {
        return WebError::bad_request("Sign out from this site's own button.").into_response();
    }
    let name = cookie_name(&headers, http);
    if let Some(id) = read_cookie(&headers, name) {
        if let Err(e) = state.app.db.delete_session(&id).await {
            return WebError::from(ApiError::from(e)).into_response();
        }
    }
    let secure = if is_secure(&headers, http) {
        "; Secure"
    } else {
        ""
    };
    let mut response = Redirect::to("/signin").into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn render(
    state: &WebState,
    next: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let required = state.app.auth.is_required();
    let body = html! {
        h1 { "Sign in" }
        @if !required {
            p { "Sign-in is not configured on this server: it acts for one local user and only listens on this computer." }
            p { a href="/" { "Go to the upload page" } }
        } @else {
            @if let Some(error) = error {
                p.alert.error role="alert" { (error) }
            }
            form.card method="post" action="/signin" {
                input type="hidden" name="next" value=(safe_next(next));
                label for="key" { "API key" }
                input #key type="password" name="key" autocomplete="off" required spellcheck="false";
                p.hint { "Ask your administrator for a key, or create one with "
                    code { "retainwise apikey create --user YOU" } "." }
                button type="submit" { "Sign in" }
            }
        }
    };
    (status, layout::page("Sign in", Nav::None, false, body)).into_response()
}

/// `next` when it is a path on this site, else `/` (no open redirect to another site).
///
/// Browsers remove tabs and line breaks from a URL and read `\` as `/` (WHATWG URL standard),
/// so `/\t/evil.example` and `/\evil.example` become `//evil.example`, another site. Accepted:
/// printable ASCII only (no control character, space or backslash), starting with one `/` that
/// is not followed by another `/` (the OWASP Unvalidated Redirects cheat sheet's allow-list of
/// local paths).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if is_local_path(n) => n,
        _ => "/",
    }
}

fn is_local_path(n: &str) -> bool {
    n.starts_with('/')
        && !n.starts_with("//")
        && n.len() <= 2048
        && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
}

/// Bytes allowed in a credential kept in a cookie (RFC 6265 cookie-octets minus the ones that
/// never occur in keys or JWTs).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
}

/// Percent-encodes `s` for a query value (RFC 3986 unreserved characters kept).
pub fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_site() {
        assert_eq!(
            safe_next(Some("/predictions?page=2")),
            "/predictions?page=2"
        );
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
        for bad in [
            "/\t/evil.example",
            "/\n/evil",
            "/\r//evil",
            " //evil",
            "/ /evil",
            "/\u{0}x",
            "/é",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
    }

    #[test]
    fn encodes_a_query_value() {
        assert_eq!(form_urlencode("/p?x=1&y"), "/p%3Fx%3D1%26y");
    }
}
