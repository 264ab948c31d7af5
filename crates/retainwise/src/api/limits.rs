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
            .check_key(&ip)
            .map_err(|until| until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The client address of a request from `peer` (see the module's text).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = crate::server::canonical(peer);
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|a| a.trim().parse::<IpAddr>().ok())
        .map(crate::server::canonical)
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted.contains(**ip))
        .or(forwarded.first())
        .copied()
        .unwrap_or(peer)
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
