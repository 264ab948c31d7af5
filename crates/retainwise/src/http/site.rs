//! Whether a request was sent by a page of this site: the cross-site request forgery check of
//! every state-changing request, following the OWASP CSRF cheat sheet ("Fetch Metadata headers",
//! then "verifying origin with standard headers").
//!
//! A browser's `Sec-Fetch-Site` (W3C Fetch Metadata) decides when present: page scripts cannot set
//! it, and it says `same-origin` for this site's own forms and scripts whatever the referrer
//! policy. Browsers without it are judged by `Origin` against the request's `Host`. A request
//! with neither header (curl, scripts) is not from a browser page at all: [`Site::Unknown`].

use axum::http::{header, HeaderMap};

use crate::config::HttpConfig;

/// Where a request says it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// A page of this site (same scheme, host and port).
    Same,
    /// Another site, named as the browser named it (its origin, `null`, or the
    /// `Sec-Fetch-Site` value), for the refusal message.
    Cross(String),
    /// No browser header says: not a browser page, or a browser too old to tell.
    Unknown,
}

/// The site `headers` say the request comes from. `Sec-Fetch-Site: same-site` counts as
/// another site: another application on this host (another port) is "same-site", and cookies
/// do not keep ports apart. An `Origin` equal to the configured public origin
/// (`RETAINWISE_PUBLIC_URL`) is this site even when a proxy rewrote `Host`.
pub fn request_site(headers: &HeaderMap, http: &HttpConfig) -> Site {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    match fetch_site {
        Some(v) if v.eq_ignore_ascii_case("same-origin") => return Site::Same,
        Some(v) if v.eq_ignore_ascii_case("same-site") || v.eq_ignore_ascii_case("cross-site") => {
            return Site::Cross(origin.unwrap_or(v).to_owned())
        }
        // `none` (typed address, bookmark) or an unknown value: fall back to Origin.
        _ => {}
    }
    let Some(origin) = origin else {
        return Site::Unknown;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if http
        .public_origin
        .as_deref()
        .is_some_and(|public| public.eq_ignore_ascii_case(origin))
    {
        return Site::Same;
    }
    match (origin.split_once("://"), host) {
        (Some((_, authority)), Some(host)) if authority.eq_ignore_ascii_case(host) => Site::Same,
        _ => Site::Cross(origin.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn site(pairs: &[(&'static str, &'static str)]) -> Site {
        request_site(&headers(pairs), &HttpConfig::default())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn fetch_metadata_decides_then_origin_against_host() {
        let host = ("host", "127.0.0.1:8080");
        assert_eq!(site(&[host]), Site::Unknown);
        assert_eq!(
            site(&[host, ("origin", "http://127.0.0.1:8080")]),
            Site::Same
        );
        // Chromium under `Referrer-Policy: no-referrer` sends `Origin: null` on the site's own
        // form posts; its Fetch Metadata still says same-origin.
        assert_eq!(
            site(&[host, ("origin", "null"), ("sec-fetch-site", "same-origin")]),
            Site::Same
        );
        assert_eq!(
            site(&[host, ("origin", "null")]),
            Site::Cross("null".into())
        );
        assert_eq!(
            site(&[host, ("origin", "http://evil.example")]),
            Site::Cross("http://evil.example".into())
        );
        // Another port of the same host is same-site, not same-origin: refused.
        assert_eq!(
            site(&[
                host,
                ("origin", "http://127.0.0.1:9090"),
                ("sec-fetch-site", "same-site")
            ]),
            Site::Cross("http://127.0.0.1:9090".into())
        );
        // A browser that says cross-site is believed even when Origin looks right.
        assert_eq!(
            site(&[
                host,
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "cross-site")
            ]),
            Site::Cross("http://127.0.0.1:8080".into())
        );
    }
}
