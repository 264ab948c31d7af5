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

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub UserId);

impl FromRequestParts<App> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        // Two Authorization headers (a proxy adding its own, say) are ambiguous: refuse them
        // rather than let the first one silently win.
        if parts.headers.get_all(AUTHORIZATION).iter().count() > 1 {
            warn!(path = %parts.uri.path(), "authentication_failed: several Authorization headers");
            return Err(ApiError::Unauthorized);
        }
        crate::web::session::check_cross_site(parts, &app.config.cors_origins)?;
        // A browser signed in through the web pages sends its credential in a cookie.
        let cookie = crate::web::session::cookie_credential(parts)?;
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .or(cookie.as_deref());
        let user = match app.auth.authenticate(&app.db, header).await {
            Ok(user) => user,
            Err(AuthError::Database(e)) => return Err(e.into()),
            Err(e) => {
                warn!(path = %parts.uri.path(), reason = %e, "authentication_failed");
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
