//! Signing a browser in: a page where a user pastes an API key (`retainwise apikey create`),
//! kept in an `HttpOnly; SameSite=Strict` cookie that [`CurrentUser`] accepts in place of an
//! `Authorization` header. Requests that change state with the cookie must come from this site
//! (the `Origin` header is checked; the OWASP CSRF cheat sheet's "verifying origin with standard
//! headers"), on top of `SameSite=Strict`.
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

use super::error::WebError;
use super::layout::{self, Nav};
use super::WebState;
use crate::api::{ApiError, CurrentUser};
use crate::domain::UserId;

/// Name of the session cookie; its value is the credential itself (an API key or a JWT).
pub const SESSION_COOKIE: &str = "retainwise_session";

/// How long the browser keeps the cookie (30 days); revoking the key ends the session sooner.
const COOKIE_MAX_AGE_SECS: u64 = 30 * 24 * 3600;

/// The signed-in user of a page. Like [`CurrentUser`], but a missing or refused credential
/// redirects to the sign-in page (coming back here afterwards) instead of answering JSON 401.
#[derive(Debug, Clone)]
pub struct WebUser(pub UserId);

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

/// The credential a request carries in the session cookie, for [`CurrentUser`]: `Ok(None)` when
/// there is no cookie (or the request has an `Authorization` header, which wins).
///
/// Errors: a request with the cookie that changes state (any method but GET, HEAD, OPTIONS)
/// whose `Origin` is missing or names another site: [`ApiError::BadRequest`] saying so.
pub fn cookie_credential(parts: &Parts) -> Result<Option<String>, ApiError> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    let Some(token) = read_cookie(&parts.headers) else {
        return Ok(None);
    };
    if !parts.method.is_safe() && !same_origin(&parts.headers) {
        return Err(ApiError::BadRequest(
            "refused: this request changes data with your sign-in cookie but does not come from this site (Origin header missing or different)"
                .to_owned(),
        ));
    }
    Ok(Some(format!("Bearer {token}")))
}

/// Refuses a state-changing request that a browser sent from another site (its `Origin` names
/// neither this host nor a configured CORS origin), whatever the credentials: without sign-in,
/// the local user needs no credential at all, so a page elsewhere could otherwise make the
/// browser post a file here. Clients that send no `Origin` (curl, scripts) are not affected.
///
/// Errors: [`ApiError::BadRequest`] naming the refused origin.
pub fn check_cross_site(parts: &Parts, cors_origins: &[String]) -> Result<(), ApiError> {
    if parts.method.is_safe() {
        return Ok(());
    }
    let Some(origin) = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    if same_origin(&parts.headers) || cors_origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
        return Ok(());
    }
    Err(ApiError::BadRequest(format!(
        "refused: a page on {origin} may not change data here (cross-site request)"
    )))
}

fn read_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// True when the `Origin` header names the host the request was sent to (any scheme: a proxy
/// may terminate TLS).
fn same_origin(headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        _ => false,
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

/// `POST /signin`: checks the key like any API request would, then keeps it in the cookie.
pub async fn sign_in(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    if !state.app.auth.is_required() {
        return Redirect::to("/").into_response();
    }
    if !same_origin(&headers) {
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
    let bearer = format!("Bearer {key}");
    match state
        .app
        .auth
        .authenticate(&state.app.db, Some(&bearer))
        .await
    {
        Ok(user) => {
            tracing::info!(user = user.as_str(), "web_sign_in");
            let secure = if is_loopback_host(&headers) {
                ""
            } else {
                "; Secure"
            };
            let cookie = format!(
                "{SESSION_COOKIE}={key}; Path=/; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE_SECS}{secure}"
            );
            let mut response = Redirect::to(safe_next(form.next.as_deref())).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(crate::auth::AuthError::Database(e)) => {
            WebError::from(ApiError::from(e)).into_response()
        }
        Err(e) => {
            tracing::warn!(reason = %e, "web_sign_in_refused");
            render(
                &state,
                form.next.as_deref(),
                Some("That key was not accepted: check that it was copied whole and has not been revoked."),
                StatusCode::UNAUTHORIZED,
            )
        }
    }
}

/// `POST /signout`: forgets the cookie.
pub async fn sign_out(headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return WebError::bad_request("Sign out from this site's own button.").into_response();
    }
    let mut response = Redirect::to("/signin").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "retainwise_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
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
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

/// Bytes allowed in a credential kept in a cookie (RFC 6265 cookie-octets minus the ones that
/// never occur in keys or JWTs).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
}

fn is_loopback_host(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
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
    }

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!same_origin(&h), "no Origin");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
    }

    #[test]
    fn reads_the_session_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; retainwise_session=rwk_abc ; b=2"),
        );
        assert_eq!(read_cookie(&h).as_deref(), Some("rwk_abc"));
        assert_eq!(form_urlencode("/p?x=1&y"), "/p%3Fx%3D1%26y");
    }
}
