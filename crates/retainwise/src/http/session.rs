//! The session cookie as a credential: which cookie a request's session is in (`__Host-`
//! prefixed over HTTPS), the user it names, and the cross-site check of every state-changing
//! request. The sign-in page that starts a session is the web app's (`web/session.rs`);
//! [`CurrentUser`](super::CurrentUser) reads the session here, so the API and the pages share
//! one authentication.

use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::site::{request_site, Site};
use super::ApiError;
use crate::app::App;
use crate::auth::SessionGrant;
use crate::config::HttpConfig;

/// Name of the session cookie over plain HTTP (loopback); its value is a session id.
pub const SESSION_COOKIE: &str = "retainwise_session";

/// Name of the session cookie over HTTPS: the `__Host-` prefix makes browsers refuse it unless
/// it was set by a secure page of this very host, for the whole site, without `Domain`
/// (RFC 6265bis §4.1.3.2), so a sibling subdomain or a plain-HTTP page cannot plant one.
pub const SECURE_SESSION_COOKIE: &str = "__Host-retainwise_session";

/// The user of the session cookie a request carries, for [`CurrentUser`](super::CurrentUser): `Ok(None)` when
/// there is no cookie, the request has an `Authorization` header (which wins), or no sign-in
/// is configured.
///
/// Errors: a request with the cookie that changes state (any method but GET, HEAD, OPTIONS)
/// and does not come from this site: [`ApiError::BadRequest`] saying so; a cookie that is no
/// live session of this server (expired, signed out, its key revoked, planted):
/// [`ApiError::Unauthorized`]; the database unreachable.
pub async fn session_user(parts: &Parts, app: &App) -> Result<Option<SessionGrant>, ApiError> {
    if parts.headers.contains_key(header::AUTHORIZATION) || !app.auth.is_required() {
        return Ok(None);
    }
    let Some(id) = read_cookie(
        &parts.headers,
        cookie_name(&parts.headers, &app.config.http),
    ) else {
        return Ok(None);
    };
    if !parts.method.is_safe() && request_site(&parts.headers, &app.config.http) != Site::Same {
        return Err(ApiError::BadRequest(
            "refused: this request changes data with your sign-in cookie but does not come from this site (Origin header missing or different)"
                .to_owned(),
        ));
    }
    match app.db.session_user(&id).await? {
        Some(grant) => Ok(Some(grant)),
        None => Err(ApiError::Unauthorized),
    }
}

/// Whether the browser reaches this server over HTTPS: `RETAINWISE_PUBLIC_URL` says so, or
/// (without it) the request names a host other than a loopback one, which only a TLS-ending
/// proxy should serve.
pub fn is_secure(headers: &HeaderMap, http: &HttpConfig) -> bool {
    match &http.public_origin {
        Some(_) => http.is_https(),
        None => !is_loopback_host(headers),
    }
}

/// The session cookie's name for this request ([`SECURE_SESSION_COOKIE`] over HTTPS).
pub fn cookie_name(headers: &HeaderMap, http: &HttpConfig) -> &'static str {
    if is_secure(headers, http) {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// Refuses a state-changing request that a browser sent from another site (its `Origin` names
/// neither this host nor a configured CORS origin), whatever the credentials: without sign-in,
/// the local user needs no credential at all, so a page elsewhere could otherwise make the
/// browser post a file here. Clients that send no `Origin` (curl, scripts) are not affected.
///
/// Errors: [`ApiError::BadRequest`] naming the refused origin.
pub fn check_cross_site(
    parts: &Parts,
    http: &HttpConfig,
    cors_origins: &[String],
) -> Result<(), ApiError> {
    if parts.method.is_safe() {
        return Ok(());
    }
    let origin = match request_site(&parts.headers, http) {
        Site::Same | Site::Unknown => return Ok(()),
        Site::Cross(origin) => origin,
    };
    if cors_origins.iter().any(|o| o.eq_ignore_ascii_case(&origin)) {
        return Ok(());
    }
    Err(ApiError::BadRequest(format!(
        "refused: a page on {origin} may not change data here (cross-site request)"
    )))
}

/// The value of cookie `name`, if the request carries a non-empty one.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn is_loopback_host(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_the_session_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; retainwise_session=rwk_abc ; b=2"),
        );
        assert_eq!(read_cookie(&h, SESSION_COOKIE).as_deref(), Some("rwk_abc"));
    }
}
