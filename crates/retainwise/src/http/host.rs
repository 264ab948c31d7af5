//! DNS-rebinding defence: a page on an attacker's domain that the attacker
//! re-points at 127.0.0.1 is same-origin with this server to the browser, so it could read
//! every page of a local install; but its requests carry the attacker's name in `Host`. Only
//! names this server answers to are accepted (OWASP, "DNS rebinding"; the same check as
//! Django's `ALLOWED_HOSTS`); other names get 421 Misdirected Request (RFC 9110 §15.5.20).
//!
//! Accepted: `localhost`, any IP address literal (a rebinding needs a DNS name, and load
//! balancers and Prometheus probe by address), the host of `RETAINWISE_PUBLIC_URL`, and the
//! names in `RETAINWISE_ALLOWED_HOSTS`. A request without `Host` (HTTP/1.0) is accepted: no
//! browser sends one. Applies to every route, `/health` included: probes by address pass.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::app::App;
use crate::config::{host_name, HttpConfig};
use crate::log_safe::{client_warnings, Clip};

/// Middleware: 421 for a `Host` this server does not answer to.
pub async fn allowed_host(State(app): State<App>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) if !is_allowed(&host, &app.config.http) => {
            if let Some(suppressed) = client_warnings().allow("host_refused") {
                tracing::warn!(host = %Clip(&host), suppressed, "host_refused: not an allowed host name (RETAINWISE_ALLOWED_HOSTS)");
            }
            (
                StatusCode::MISDIRECTED_REQUEST,
                Json(json!({
                    "success": false,
                    "detail": "this server does not answer to that host name; the operator can allow it with RETAINWISE_PUBLIC_URL or RETAINWISE_ALLOWED_HOSTS",
                })),
            )
                .into_response()
        }
        _ => next.run(request).await,
    }
}

/// Whether `host` (a `Host` header value, port optional) names this server.
pub fn is_allowed(host: &str, http: &HttpConfig) -> bool {
    let name = host_name(host.trim()).to_ascii_lowercase();
    // A trailing dot is the same DNS name.
    let name = name.strip_suffix('.').unwrap_or(&name);
    if name == "localhost" || is_ip_literal(name) {
        return true;
    }
    http.allowed_hosts.iter().any(|allowed| allowed == name)
}

fn is_ip_literal(name: &str) -> bool {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => name.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses() {
        let mut http = HttpConfig::default();
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "10.0.3.7:8080",
            "localhost.",
        ] {
            assert!(is_allowed(ok, &http), "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "127.0.0.1.nip.io",
            "localhost.evil.example",
            "[::1",
            "",
        ] {
            assert!(!is_allowed(refused, &http), "{refused}");
        }
        http.allowed_hosts.push("churn.example.com".into());
        assert!(is_allowed("Churn.Example.com:443", &http));
    }
}
