//! Who is asking: bearer JWTs (HS256 with a shared secret, or RS256/ES256 against a JWKS), API
//! keys, or — with nothing configured — the single local user of an embedded installation.
//!
//! The cryptography is jsonwebtoken's (one backend, RustCrypto). What this module adds is the
//! policy: which algorithms each configuration accepts (so an HS256 token "signed" with an RSA
//! public key is refused), the claims that must be present (`sub`, `exp`), the leeway, and the
//! JWKS cache. Failures are logged with their reason and answered with one generic 401, so the
//! answer never tells an attacker which check failed.

mod api_keys;
mod jwks;
mod jwt;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

pub use api_keys::{ApiKey, NewApiKey, API_KEY_PREFIX};
pub use jwks::JwksCache;
pub use jwt::{JwtVerifier, KeySource, VerifiedToken};
pub use sessions::SESSION_PREFIX;

use crate::db::Db;
use crate::domain::UserId;

/// Allowed clock skew for `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// How requests are authenticated, chosen from configuration.
#[derive(Clone)]
pub enum Auth {
    /// No sign-in configured: every request is the local user (only allowed on loopback unless
    /// the operator passes `--insecure-no-auth`).
    LocalUser,
    /// Bearer JWTs or API keys are required.
    Required(Arc<JwtVerifier>),
}

/// Why a request was not authenticated. Logged, never shown: clients get one generic 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    #[error("no bearer credentials")]
    Missing,
    /// The token or key was refused; the text says which check failed (for the log).
    #[error("{0}")]
    Invalid(String),
    /// The database could not be asked about an API key.
    #[error("api key lookup: {0}")]
    Database(#[from] sqlx::Error),
}

impl Auth {
    /// Whether sign-in is enforced.
    pub fn is_required(&self) -> bool {
        matches!(self, Self::Required(_))
    }

    /// The user behind a request's `Authorization` header value (`None` when absent).
    ///
    /// Errors: [`AuthError::Missing`] without credentials when sign-in is required;
    /// [`AuthError::Invalid`] for any refused token or key.
    pub async fn authenticate(
        &self,
        db: &Db,
        authorization: Option<&str>,
    ) -> Result<UserId, AuthError> {
        Ok(self.credential(db, authorization).await?.user)
    }

    /// [`Auth::authenticate`], also saying what the credential was and how long it holds: what
    /// a web session started with it must end with.
    ///
    /// Errors: as [`Auth::authenticate`].
    pub async fn credential(
        &self,
        db: &Db,
        authorization: Option<&str>,
    ) -> Result<Credential, AuthError> {
        let verifier = match self {
            Self::LocalUser => {
                return Ok(Credential {
                    user: UserId::local(),
                    kind: CredentialKind::LocalUser,
                })
            }
            Self::Required(verifier) => verifier,
        };
        let header = authorization.ok_or(AuthError::Missing)?;
        // RFC 7235 §2.1: the scheme is case-insensitive, separated from the token by whitespace.
        let token = header
            .trim()
            .split_once([' ', '\t'])
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty() && !t.contains(char::is_whitespace))
            .ok_or(AuthError::Missing)?;
        if token.starts_with(API_KEY_PREFIX) {
            return match api_keys::lookup(db, token).await? {
                Some((user, id)) => Ok(Credential {
                    user,
                    kind: CredentialKind::ApiKey { id },
                }),
                None => Err(AuthError::Invalid("unknown or revoked api key".to_owned())),
            };
        }
        let token = verifier.verify(token).await.map_err(AuthError::Invalid)?;
        Ok(Credential {
            user: token.user,
            kind: CredentialKind::Jwt {
                expires_ms: token.expires_ms,
            },
        })
    }
}

/// An accepted credential: the user, and what was presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// Whose it is.
    pub user: UserId,
    /// What it was.
    pub kind: CredentialKind,
}

/// The kinds of [`Credential`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// No sign-in configured: everyone is the local user.
    LocalUser,
    /// A live API key; `id` is its row in `api_keys` (a session made with it ends with it).
    ApiKey {
        /// The key's id.
        id: String,
    },
    /// A verified JWT, valid until `expires_ms` (epoch milliseconds, from its `exp`).
    Jwt {
        /// The token's expiry.
        expires_ms: i64,
    },
}

/// Sign-in settings after resolution: what [`crate::config::Settings`] produces.
#[derive(Clone)]
pub enum AuthConfig {
    /// Nothing configured.
    None,
    /// HS256 with a shared secret (`RETAINWISE_JWT_SECRET`).
    Secret {
        /// The shared secret; never printed.
        secret: secrecy::SecretString,
        /// Expected `iss`, when set.
        issuer: Option<String>,
        /// Expected `aud`, when set.
        audience: Option<String>,
    },
    /// RS256/ES256 keys from a JWKS URL (`RETAINWISE_JWKS_URL`, or Clerk's `CLERK_FRONTEND_API`).
    Jwks {
        /// Where the key set is served.
        url: String,
        /// Expected `iss` (required: a JWKS without an issuer check trusts any tenant of the provider).
        issuer: String,
        /// Expected `aud`, when set.
        audience: Option<String>,
        /// How long fetched keys are trusted when the JWKS endpoint fails.
        max_stale: Duration,
        /// Least time between two fetches (an unknown kid triggers one).
        min_refresh: Duration,
    },
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Secret {
                issuer, audience, ..
            } => f
                .debug_struct("Secret")
                .field("secret", &"[redacted]")
                .field("issuer", issuer)
                .field("audience", audience)
                .finish(),
            Self::Jwks {
                url,
                issuer,
                audience,
                max_stale,
                ..
            } => f
                .debug_struct("Jwks")
                .field("url", url)
                .field("issuer", issuer)
                .field("audience", audience)
                .field("max_stale", max_stale)
                .finish(),
        }
    }
}

impl Auth {
    /// Builds the authenticator for `config`.
    ///
    /// Errors: an empty secret, or a JWKS client that cannot be built.
    pub fn from_config(config: &AuthConfig) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let verifier = match config {
            AuthConfig::None => return Ok(Self::LocalUser),
            AuthConfig::Secret {
                secret,
                issuer,
                audience,
            } => {
                let bytes = secret.expose_secret().as_bytes();
                anyhow::ensure!(
                    bytes.len() >= 32,
                    "RETAINWISE_JWT_SECRET must be at least 32 bytes long"
                );
                let key = jsonwebtoken::DecodingKey::from_secret(bytes)?;
                JwtVerifier::new(KeySource::Secret(key), issuer.clone(), audience.clone())
            }
            AuthConfig::Jwks {
                url,
                issuer,
                audience,
                max_stale,
                min_refresh,
            } => {
                let cache = JwksCache::new(url.clone(), *max_stale, *min_refresh)?;
                JwtVerifier::new(
                    KeySource::Jwks(cache),
                    Some(issuer.clone()),
                    audience.clone(),
                )
            }
        };
        Ok(Self::Required(Arc::new(verifier)))
    }
}
