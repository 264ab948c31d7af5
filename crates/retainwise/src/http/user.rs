//! Who is asking: the one extractor every `/api/` handler that touches user data takes. It
//! authenticates (see [`crate::auth`]) and applies the per-user rate limit, so a handler that
//! has a [`CurrentUser`] has an authenticated, rate-checked caller to scope its queries by.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tracing::warn;

use super::ApiError;
use crate::app::App;
use crate::auth::AuthError;
use crate::domain::UserId;
use crate::log_safe::{client_warnings, Clip};

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub UserId);

impl FromRequestParts<App> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
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
            Some(user) => Ok(user),
            None => app.auth.authenticate(&app.db, header).await,
        };
        let user = match authenticated {
            Ok(user) => user,
            Err(AuthError::Database(e)) => return Err(e.into()),
            Err(e) => {
                log_refusal(parts, app, &e.to_string());
                return Err(ApiError::Unauthorized);
            }
        };
        if let Err(wait) = app.limits.check_user(user.as_str()) {
            return Err(ApiError::TooManyRequests {
                retry_after: wait,
                what: "requests for this user",
            });
        }
        Ok(Self(user))
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
