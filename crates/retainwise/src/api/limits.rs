//! Abuse limits: requests per minute per client IP (a middleware on `/api/`) and per user (checked
//! when the user is known, in [`super::CurrentUser`]). GCRA rate limiting by the governor crate.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::ApiError;
use crate::app::App;

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

/// Middleware: 429 with `Retry-After` when the client IP is over its limit.
pub async fn per_ip(State(app): State<App>, request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
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
