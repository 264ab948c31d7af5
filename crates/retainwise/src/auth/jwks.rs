//! A cached JSON Web Key Set (RFC 7517) fetched from the identity provider.
//!
//! Keys are refreshed when a token names a `kid` the cache does not hold (key rotation), at most
//! once per `min_refresh` (10 s by default) so a flood of made-up kids cannot turn into a flood of fetches. When
//! the endpoint fails, keys already fetched keep working for `max_stale`, then are dropped: an
//! outage of the provider degrades gracefully but does not keep revoked keys alive forever.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;
use tracing::warn;

use crate::log_safe::Clip;

/// Cached keys are re-fetched after this long even without an unknown kid.
const REFRESH_AFTER: Duration = Duration::from_secs(600);
/// Time allowed for one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

struct State {
    keys: Option<JwkSet>,
    fetched_at: Option<Instant>,
    tried_at: Option<Instant>,
}

/// Keys from one JWKS URL.
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    max_stale: Duration,
    min_refresh: Duration,
    state: Mutex<State>,
}

impl JwksCache {
    /// A cache for `url` that trusts fetched keys for `max_stale` when the endpoint fails and
    /// fetches at most once per `min_refresh`.
    ///
    /// Errors: the HTTP client cannot be built (TLS set-up).
    pub fn new(url: String, max_stale: Duration, min_refresh: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build()?;
        Ok(Self {
            url,
            client,
            max_stale,
            min_refresh,
            state: Mutex::new(State {
                keys: None,
                fetched_at: None,
                tried_at: None,
            }),
        })
    }

    /// The decoding key for `kid`, checked to suit `alg` (an RSA key for RS256, a P-256 key for ES256).
    ///
    /// Errors: unknown kid after a refresh, a key of the wrong type, or no usable key set.
    pub async fn key(&self, kid: &str, alg: Algorithm) -> Result<DecodingKey, String> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let has_kid = state.keys.as_ref().is_some_and(|k| k.find(kid).is_some());
        let old = state
            .fetched_at
            .is_none_or(|t| now.duration_since(t) > REFRESH_AFTER);
        let may_try = state
            .tried_at
            .is_none_or(|t| now.duration_since(t) >= self.min_refresh);
        if (!has_kid || old) && may_try {
            state.tried_at = Some(now);
            match self.fetch().await {
                Ok(keys) => {
                    state.keys = Some(keys);
                    state.fetched_at = Some(now);
                }
                Err(e) => warn!(url = %self.url, error = %e, "jwks fetch failed"),
            }
        }
        if state
            .fetched_at
            .is_some_and(|t| now.duration_since(t) > self.max_stale)
        {
            state.keys = None;
        }
        let keys = state
            .keys
            .as_ref()
            .ok_or("no usable key set (the JWKS endpoint is failing)")?;
        let jwk = keys
            .find(kid)
            .ok_or_else(|| format!("unknown kid {:?}", Clip(kid)))?;
        let fits = matches!(
            (&jwk.algorithm, alg),
            (
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_),
                Algorithm::RS256
            ) | (
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_),
                Algorithm::ES256
            )
        );
        if !fits {
            return Err(format!(
                "key {:?} does not suit algorithm {alg:?}",
                Clip(kid)
            ));
        }
        DecodingKey::from_jwk(jwk).map_err(|e| format!("key {:?} unusable: {e}", Clip(kid)))
    }

    async fn fetch(&self) -> Result<JwkSet, reqwest::Error> {
        self.client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?
            .json::<JwkSet>()
            .await
    }
}
