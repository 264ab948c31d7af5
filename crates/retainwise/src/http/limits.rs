//! Abuse limits: requests per minute per client IP (a middleware on every route: API, pages,
//! `/signin`, static files) and per user (checked when the user is known, in
//! [`super::CurrentUser`]). GCRA rate limiting by the governor crate.
//!
//! The client IP is the connection's peer, unless the peer is a trusted proxy
//! (`RETAINWISE_TRUSTED_PROXIES`): then the right-most `X-Forwarded-For` entry that is not itself
//! a trusted proxy (MDN, "X-Forwarded-For: selecting an IP address"). Anyone else's
//! `X-Forwarded-For` is ignored, so it cannot be spoofed to dodge the limit or frame another.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::ApiError;
use crate::app::App;
use crate::config::TrustedProxies;

/// The two keyed limiters of one server.
pub struct Limits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_user: DefaultKeyedRateLimiter<String>,
}

impl Limits {
    /// `per_minute` requests per minute for each IP and each user, with bursts of the same size.
    pub fn new(per_minute: u32) -> Self {
        let quota =
            Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN));
        Self {
            per_ip: RateLimiter::keyed(quota),
            per_user: RateLimiter::keyed(quota),
        }
    }

    /// `Err(wait)` when `user` is over the limit.
    pub fn check_user(&self, user: &str) -> Result<(), Duration> {
        self.per_user
            .check_key(&user.to_owned())
            .map_err(|until| until.wait_time_from(DefaultClock::default().now()))
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        self.per_ip
            .check_key(&allowance_key(ip))
            .map_err(|until| until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The key of a client's allowance: its IPv4 address, or the /64 of its IPv6 address. A
/// single subscriber is routinely given a whole /64 (RFC 6177, RIPE-690), so counting each of
/// its addresses apart would give one client 2^64 allowances.
fn allowance_key(ip: IpAddr) -> IpAddr {
    match crate::server::canonical(ip) {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// The client address of a request from `peer` (see the module's text).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = crate::server::canonical(peer);
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    // Right to left: every hop our trusted proxies appended is an address; the first one that
    // is not a trusted proxy is the client. Anything left of it was written by the client and
    // proves nothing, and an entry that is not an address ends the walk at the last trusted hop
    // (so junk cannot make an address the client chose count as the client).
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut last_trusted = peer;
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            return last_trusted;
        };
        let ip = crate::server::canonical(ip);
        if !trusted.contains(ip) {
            return ip;
        }
        last_trusted = ip;
    }
    last_trusted
}

/// [`client_ip`] of a request's parts; `None` when it was served without connection info.
pub fn request_client_ip(
    extensions: &Extensions,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(client_ip(peer, headers, trusted))
}

/// Middleware: 429 with `Retry-After` when the client IP is over its limit. `/health` is
/// exempt: load balancers probe it often from one address, and it reads nothing.
pub async fn per_ip(State(app): State<App>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let ip = request_client_ip(
        request.extensions(),
        request.headers(),
        &app.config.http.trusted_proxies,
    );
    if let Some(ip) = ip {
        if let Err(wait) = app.limits.check_ip(ip) {
            return ApiError::TooManyRequests {
                retry_after: wait,
                what: "requests from this address",
            }
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod client_ip_tests {
    use super::*;

    #[test]
    fn junk_in_forwarded_for_cannot_pick_the_client() {
        let trusted =
            TrustedProxies::parse(&["127.0.0.1".to_owned(), "10.0.0.0/8".to_owned()]).unwrap();
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let with = |xff: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", xff.parse().unwrap());
            client_ip(peer, &h, &trusted).to_string()
        };
        // The right-most address that is not a trusted proxy.
        assert_eq!(with("198.51.100.7, 10.0.0.9"), "198.51.100.7");
        assert_eq!(with("203.0.113.1, 198.51.100.7, 10.0.0.9"), "198.51.100.7");
        // An address the client wrote left of junk is not believed: the last trusted hop is.
        assert_eq!(with("203.0.113.45, x, 10.0.0.9"), "10.0.0.9");
        assert_eq!(with("x"), "127.0.0.1");
        // Only trusted hops: the left-most of them.
        assert_eq!(with("10.0.0.1, 10.0.0.9"), "10.0.0.1");
    }

    #[test]
    fn an_ipv6_client_has_one_allowance_per_64() {
        let limits = Limits::new(2);
        let ip = |i: u16| IpAddr::from([0x2001, 0xdb8, 7, 7, i, 0, 0, 1]);
        assert!(limits.check_ip(ip(1)).is_ok() && limits.check_ip(ip(2)).is_ok());
        assert!(
            limits.check_ip(ip(3)).is_err(),
            "the same /64 shares one allowance"
        );
        assert!(limits
            .check_ip(IpAddr::from([0x2001, 0xdb8, 7, 8, 0, 0, 0, 1]))
            .is_ok());
        assert!(limits.check_ip("192.0.2.1".parse().unwrap()).is_ok());
    }
}
