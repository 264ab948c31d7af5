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
pub use jwt::{JwtVerifier, KeySource, VerifiedToken, DEFAULT_ORG_CLAIM};
pub use sessions::{SessionGrant, SESSION_PREFIX};

use crate::db::{Db, OrgRefusal};
use crate::domain::{OrgId, Role, UserId};

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

impl From<OrgRefusal> for AuthError {
    fn from(e: OrgRefusal) -> Self {
        match e {
            OrgRefusal::Database(e) => Self::Database(e),
            other => Self::Invalid(other.to_string()),
        }
    }
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
    ) -> Result<Member, AuthError> {
        let credential = self.credential(db, authorization).await?;
        Member::of(db, &credential).await
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
                    org: Some(OrgId::local()),
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
                Some(grant) => Ok(Credential {
                    user: grant.user,
                    kind: CredentialKind::ApiKey {
                        id: grant.id,
                        role: grant.role,
                    },
                    org: Some(grant.org),
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
            org: token.org,
        })
    }
}

/// Who is asking, in which organisation, with which role: what every request is scoped and
/// checked by (`http::access` decides from the role what the request may do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The person (or the user an API key was made by).
    pub user: UserId,
    /// The organisation acted in: the scope of every query of the request.
    pub org: OrgId,
    /// The role there.
    pub role: Role,
    /// The API key the request (or its web session) was made with, for the audit log.
    pub api_key: Option<String>,
}

impl Member {
    /// The organisation and role of an accepted credential, read from the database at every
    /// request (so a changed role or a removed member takes effect at once):
    ///
    /// - no sign-in configured: the local user's organisation, as owner;
    /// - an API key: its organisation and role (capped at its maker's current role);
    /// - a JWT with the organisation claim: that team (see [`Db::claimed_org_role`]);
    /// - a JWT without: the team the user joined last, else their personal organisation.
    ///
    /// Errors: [`AuthError::Invalid`] when the organisation cannot be the user's (a claim
    /// naming someone's personal organisation); the database.
    pub async fn of(db: &Db, credential: &Credential) -> Result<Self, AuthError> {
        let user = credential.user.clone();
        let (org, role) = match (&credential.kind, &credential.org) {
            (CredentialKind::LocalUser, _) => (OrgId::local(), Role::Owner),
            (CredentialKind::ApiKey { role, .. }, Some(org)) => (org.clone(), *role),
            (_, Some(org)) => (org.clone(), db.claimed_org_role(org, &user).await?),
            (_, None) => db.default_org(&user).await?,
        };
        let api_key = match &credential.kind {
            CredentialKind::ApiKey { id, .. } => Some(id.clone()),
            _ => None,
        };
        Ok(Self {
            user,
            org,
            role,
            api_key,
        })
    }

    /// The member behind a live web session: the organisation chosen at sign-in, with the
    /// role of the key it was made with, or (a JWT's session) the user's current role there.
    ///
    /// Errors: [`AuthError::Invalid`] when the user is no longer a member; the database.
    pub async fn of_session(db: &Db, grant: SessionGrant) -> Result<Self, AuthError> {
        let current = db.member_role(&grant.org, &grant.user).await?;
        let role = match &grant.api_key_id {
            Some(key) => {
                let key_role: Option<(String,)> =
                    sqlx::query_as("SELECT role FROM api_keys WHERE id = $1")
                        .bind(key)
                        .fetch_optional(db.pool())
                        .await?;
                let key_role = key_role
                    .and_then(|(r,)| r.parse::<Role>().ok())
                    .ok_or_else(|| AuthError::Invalid("session's key is gone".to_owned()))?;
                current.map_or(key_role, |c| c.min(key_role))
            }
            None => current.ok_or_else(|| {
                AuthError::Invalid("the session's user is no longer a member".to_owned())
            })?,
        };
        Ok(Self {
            user: grant.user,
            org: grant.org,
            role,
            api_key: grant.api_key_id,
        })
    }
}

/// An accepted credential: the user, what was presented, and the organisation it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// Whose it is.
    pub user: UserId,
    /// What it was.
    pub kind: CredentialKind,
    /// The organisation it names: an API key's, a JWT's organisation claim; `None` for a JWT
    /// without one (see [`Member::of`]).
    pub org: Option<OrgId>,
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
        /// Its role in its organisation (capped at its maker's).
        role: Role,
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
    /// Builds the authenticator for `config`, reading a token's organisation from the claim
    /// `org_claim` (see [`JwtVerifier::with_org_claim`]).
    ///
    /// Errors: an empty secret, or a JWKS client that cannot be built.
    pub fn from_config(config: &AuthConfig, org_claim: &str) -> anyhow::Result<Self> {
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
        Ok(Self::Required(Arc::new(verifier.with_org_claim(org_claim))))
    }
}
