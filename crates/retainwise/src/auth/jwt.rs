//! Verifying one bearer JWT (RFC 7519) under the configured policy.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{JwksCache, LEEWAY_SECS};
use crate::domain::{OrgId, UserId};
use crate::log_safe::Clip;

/// Where verification keys come from; each source accepts only its own algorithms, which is
/// what stops algorithm confusion (an HS256 token keyed with a published RSA key).
pub enum KeySource {
    /// A shared secret: HS256 only.
    Secret(DecodingKey),
    /// Public keys from a JWKS: RS256 (RSA keys) and ES256 (P-256 keys) only.
    Jwks(JwksCache),
}

/// Checks signature, `exp`, `nbf`, `iat` (with [`LEEWAY_SECS`]), `iss` and, when configured,
/// `aud`, and requires a `sub` that is a valid [`UserId`].
pub struct JwtVerifier {
    keys: KeySource,
    issuer: Option<String>,
    audience: Option<String>,
    org_claim: String,
}

/// The claim naming the organisation a token acts in unless configured otherwise: Clerk's
/// session tokens (v1) carry the active organisation in `org_id`; v2 tokens in `o.id`.
pub const DEFAULT_ORG_CLAIM: &str = "org_id";

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    iat: Option<f64>,
    exp: Option<f64>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// What a valid token says: whose it is and until when it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The user (`sub`).
    pub user: UserId,
    /// The token's `exp` (RFC 7519 §4.1.4), in milliseconds since the Unix epoch.
    pub expires_ms: i64,
    /// The organisation the token acts in (its organisation claim), `None` without one.
    pub org: Option<OrgId>,
}

impl JwtVerifier {
    /// A verifier over `keys`, expecting `issuer` and `audience` when given.
    pub fn new(keys: KeySource, issuer: Option<String>, audience: Option<String>) -> Self {
        Self {
            keys,
            issuer,
            audience,
            org_claim: DEFAULT_ORG_CLAIM.to_owned(),
        }
    }

    /// Reads the organisation from claim `path` (dots descend into objects: `o.id`) instead of
    /// [`DEFAULT_ORG_CLAIM`].
    pub fn with_org_claim(mut self, path: &str) -> Self {
        self.org_claim = path.to_owned();
        self
    }

    /// The organisation claim of a token's claims: absent, `null` or `""` is none; any other
    /// value must be a string that is a valid [`OrgId`].
    fn org_of(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Option<OrgId>, String> {
        let mut parts = self.org_claim.split('.');
        let first = parts.next().unwrap_or_default();
        let mut value = claims.get(first);
        for part in parts {
            value = value.and_then(|v| v.get(part));
        }
        match value {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => s
                .parse::<OrgId>()
                .map(Some)
                .map_err(|e| format!("token claim {} refused: {}", self.org_claim, Clip(&e.0))),
            Some(_) => Err(format!("token claim {} is not a string", self.org_claim)),
        }
    }

    /// The user id (`sub`) and expiry (`exp`) of a valid token.
    ///
    /// Errors: a sentence naming the failed check, for the log only.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, String> {
        // Error texts here may quote the token (serde names an unknown `alg` whole): clipped,
        // as they go to the log.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| format!("malformed token: {}", Clip(&e.to_string())))?;
        let key = match &self.keys {
            KeySource::Secret(key) => {
                if header.alg != Algorithm::HS256 {
                    return Err(format!(
                        "algorithm {:?} not accepted (HS256 only)",
                        header.alg
                    ));
                }
                key.clone()
            }
            KeySource::Jwks(cache) => {
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(format!(
                        "algorithm {:?} not accepted (RS256, ES256 only)",
                        header.alg
                    ));
                }
                let kid = header.kid.as_deref().ok_or("token has no kid")?;
                cache.key(kid, header.alg).await?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| format!("token refused: {}", Clip(&e.to_string())))?;
        if let Some(iat) = data.claims.iat {
            let now = jsonwebtoken::get_current_timestamp() as f64;
            if iat > now + LEEWAY_SECS as f64 {
                return Err("token issued in the future (iat)".to_owned());
            }
        }
        // `exp` is a required claim above, so decoding has already checked it is there.
        let exp = data.claims.exp.ok_or("token has no exp")?;
        let sub = data.claims.sub.ok_or("token has no sub")?;
        let user = sub
            .parse::<UserId>()
            .map_err(|e| format!("token sub refused: {}", Clip(&e.0)))?;
        let org = self.org_of(&data.claims.rest)?;
        Ok(VerifiedToken {
            user,
            expires_ms: (exp * 1000.0) as i64,
            org,
        })
    }
}
