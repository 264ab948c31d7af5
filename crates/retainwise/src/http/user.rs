//! Who is asking: the one extractor every `/api/` handler that touches an organisation's data
//! takes. It authenticates (see [`crate::auth`]), resolves the caller's organisation and role
//! ([`Member`]), checks the role against the route's rule ([`super::access`]) and applies the
//! per-user rate limit, so a handler that has a [`CurrentUser`] has an authenticated, allowed,
//! rate-checked caller and the organisation to scope its queries by.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tracing::warn;

use super::ApiError;
use crate::app::App;
use crate::audit::{self, Actor};
use crate::auth::{AuthError, Member};
use crate::domain::OrgId;
use crate::log_safe::{client_warnings, Clip};

/// The organisation of an authenticated, allowed request: the scope of every query it makes.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub OrgId);

impl FromRequestParts<App> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(Self(Caller::from_request_parts(parts, app).await?.0.org))
    }
}

/// The whole caller of an authenticated, allowed request: user, organisation and role (what
/// member management needs; other handlers take [`CurrentUser`]). Resolved once per request.
#[derive(Debug, Clone)]
pub struct Caller(pub Member);

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let member = authenticate(parts, app).await?;
        let path = parts
            .extensions
            .get::<axum::extract::MatchedPath>()
            .map(|p| p.as_str().to_owned());
        if let Err(refused) = super::access::check(&member, &parts.method, path.as_deref()) {
            let actor = Actor::of(&member, client_ip(parts, app));
            let route = format!("{} {}", parts.method, path.as_deref().unwrap_or(""));
            let outcome = audit::Outcome::Refused(refused.to_string());
            audit::record(
                app.db.pool(),
                &actor,
                audit::Action::AccessRefused,
                Some(("route", &route)),
                &outcome,
            )
            .await?;
            return Err(refused);
        }
        let caller = Self(member);
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// Who is acting, for the audit log: the [`Caller`] (authenticated and allowed as there) and
/// the client's address.
#[derive(Debug, Clone)]
pub struct AuditActor(pub Actor);

impl FromRequestParts<App> for AuditActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Caller(member) = Caller::from_request_parts(parts, app).await?;
        Ok(Self(Actor::of(&member, client_ip(parts, app))))
    }
}

/// The client's address (behind trusted proxies, the one they forwarded).
pub(crate) fn client_ip(parts: &Parts, app: &App) -> Option<std::net::IpAddr> {
    super::limits::request_client_ip(
        &parts.extensions,
        &parts.headers,
        &app.config.http.trusted_proxies,
    )
}

/// Authentication and the per-user rate limit: the member behind a request's credential.
async fn authenticate(parts: &mut Parts, app: &App) -> Result<Member, ApiError> {
    {
        // Two Authorization headers (a proxy adding its own, say) are ambiguous: refuse them
        // rather than let the first one silently win.
        if parts.headers.get_all(AUTHORIZATION).iter().count() > 1 {
            log_refusal(parts, app, "several Authorization headers");
            return Err(ApiError::Unauthorized);
        }
        super::session::check_cross_site(parts, &app.config.http, &app.config.cors_origins)?;
        // A browser signed in through the web pages sends a session id in a cookie.
        let session = match super::session::session_user(parts, app).await {
            Err(ApiError::Unauthorized) => {
                log_refusal(parts, app, "no live session for the sign-in cookie");
                return Err(ApiError::Unauthorized);
            }
            other => other?,
        };
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let authenticated = match session {
            Some(grant) => Member::of_session(&app.db, grant).await,
            None => app.auth.authenticate(&app.db, header).await,
        };
        let member = match authenticated {
            Ok(member) => member,
            Err(AuthError::Database(e)) => return Err(e.into()),
            Err(e) => {
                log_refusal(parts, app, &e.to_string());
                // No credential at all is not a failed sign-in (a page before signing in).
                if !matches!(e, AuthError::Missing) {
                    audit::sign_in_failure(&app.db, client_ip(parts, app), &e.to_string()).await?;
                }
                return Err(ApiError::Unauthorized);
            }
        };
        if let Err(wait) = app.limits.check_user(member.user.as_str()) {
            return Err(ApiError::TooManyRequests {
                retry_after: wait,
                what: "requests for this user",
            });
        }
        Ok(member)
    }
}

/// Logs a refused credential with the client's address: the path and reason clipped (they
/// quote what the client sent), at most one line per minute per client address, with the
/// number of refusals left out.
fn log_refusal(parts: &Parts, app: &App, reason: &str) {
    let client = super::limits::request_client_ip(
        &parts.extensions,
        &parts.headers,
        &app.config.http.trusted_proxies,
    );
    let client = client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    if let Some(suppressed) = client_warnings().allow(&format!("authentication_failed {client}")) {
        warn!(
            %client,
            path = %Clip(parts.uri.path()),
            reason = %Clip(reason),
            suppressed,
            "authentication_failed"
        );
    }
}
