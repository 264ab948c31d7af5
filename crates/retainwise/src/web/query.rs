//! Query strings of the pages. A query a page cannot read (`?page=-1`, `?page=two`, a repeated
//! key) is answered with the app's own error page, 400, saying which part to fix — not with
//! axum's plain-text rejection.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::WebError;

/// Like axum's [`Query`], with [`WebError`] as its rejection.
#[derive(Debug)]
pub struct WebQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for WebQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => {
                // axum's text starts with its own wording; the part after it names the field.
                let text = rejection.body_text();
                let what = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                Err(WebError::bad_request(format!(
                    "This address has a query the page cannot read ({what}). Use the page's own \
                     links, or remove what follows the \"?\"."
                )))
            }
        }
    }
}

/// The `page` parameter of a paged view: 1-based; absent or empty means 1.
///
/// Errors: anything else than a whole number from 1 up, with the raw value in the message.
pub fn page_number(raw: Option<&str>) -> Result<u64, WebError> {
    let raw = raw.map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Ok(1);
    }
    match raw.parse::<u64>() {
        Ok(page) if page >= 1 => Ok(page),
        _ => Err(WebError::bad_request(format!(
            "Page {raw:?} does not exist: pages are numbered 1, 2, 3 and so on."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_whole_numbers_from_one() {
        assert_eq!(page_number(None).unwrap(), 1);
        assert_eq!(page_number(Some(" ")).unwrap(), 1);
        assert_eq!(page_number(Some("3")).unwrap(), 3);
        for bad in ["0", "-1", "two", "1.5", "99999999999999999999999"] {
            let err = page_number(Some(bad)).unwrap_err();
            assert!(format!("{err:?}").contains(bad), "{bad}: {err:?}");
        }
    }
}
