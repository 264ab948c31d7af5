//! Who is asking. Without sign-in configured every request acts as the single local user; the
//! sign-in issue replaces this extractor's body with JWT verification and nothing else changes,
//! because every handler already scopes its queries by the [`CurrentUser`] it receives.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::ApiError;
use crate::domain::UserId;

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(UserId::local()))
    }
}
