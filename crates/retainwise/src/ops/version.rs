//! The build's identity: `GET /__version` and `retainwise --version`'s companion.
//!
//! The commit and build time are compiled in from the environment variables
//! `RETAINWISE_GIT_COMMIT` and `RETAINWISE_BUILD_TIME` (set by `scripts/image.sh` and the
//! `Dockerfile`; cargo rebuilds the crate when they change). A build made without them says
//! `null` rather than guess.

use axum::Json;
use serde::Serialize;

/// What `GET /__version` answers: `{"version": "0.1.0", "git_commit": "…"|null,
/// "build_time": "2026-12-07T05:00:00Z"|null}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VersionInfo {
    /// The crate version (Cargo.toml).
    pub version: &'static str,
    /// The full commit hash the binary was built from, when the build recorded it.
    pub git_commit: Option<&'static str>,
    /// When the binary was built (RFC 3339, UTC), when the build recorded it.
    pub build_time: Option<&'static str>,
}

/// This binary's [`VersionInfo`].
pub fn info() -> VersionInfo {
    let recorded = |v: Option<&'static str>| v.map(str::trim).filter(|v| !v.is_empty());
    VersionInfo {
        version: env!("CARGO_PKG_VERSION"),
        git_commit: recorded(option_env!("RETAINWISE_GIT_COMMIT")),
        build_time: recorded(option_env!("RETAINWISE_BUILD_TIME")),
    }
}

/// `GET /__version`: public, like `/health` (the original service answered it the same way).
pub async fn handler() -> Json<VersionInfo> {
    Json(info())
}
