//! Web sign-in sessions: the cookie holds a random session id, never the API
//! key, following the OWASP Session Management Cheat Sheet: 256 random bits, stored only as
//! their SHA-256, an absolute expiry, a new id at every sign-in (the previous one deleted),
//! deleted at sign-out, and ended with the API key it was made with.

use rand::RngCore;

use crate::db::Db;
use crate::domain::{OrgId, UserId};
use crate::time::now_ms;

// Session ids are stored hashed exactly like API keys (one function, so a key's hash in
// `api_key_id` always matches `api_keys.key_hash`).
use super::api_keys::hash;

/// Every session id starts with this (tells it apart from an API key or a JWT in a log).
pub const SESSION_PREFIX: &str = "rws_";

/// What a live session names: its user, the organisation it acts in, and the API key it was
/// made with (`None`: a JWT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    /// The signed-in user.
    pub user: UserId,
    /// The organisation chosen at sign-in.
    pub org: OrgId,
    /// The key signed in with.
    pub api_key_id: Option<String>,
}

impl Db {
    /// A new session for `user` acting in `org`, signed in with the API key `api_key_id` (`None` for a JWT),
    /// ending at `expires_at_ms` (epoch ms). Returns the id to give the browser. Expired
    /// sessions of everyone are deleted on the way.
    pub async fn create_session(
        &self,
        user: &UserId,
        org: &OrgId,
        api_key_id: Option<&str>,
        expires_at_ms: i64,
    ) -> Result<String, sqlx::Error> {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let id = format!(
            "{SESSION_PREFIX}{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let now = now_ms();
        sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, user_id, org_id, api_key_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(hash(&id))
        .bind(user.as_str())
        .bind(org.as_str())
        .bind(api_key_id)
        .bind(now)
        .bind(expires_at_ms)
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// The user of a live session (not expired, and its API key, if any, not revoked), the
    /// organisation it acts in and the key it was made with.
    pub async fn session_user(&self, id: &str) -> Result<Option<SessionGrant>, sqlx::Error> {
        if !id.starts_with(SESSION_PREFIX) {
            return Ok(None);
        }
        let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT s.user_id, s.org_id, s.api_key_id FROM web_sessions s WHERE s.id_hash = $1 AND s.expires_at > $2 \
             AND (s.api_key_id IS NULL OR EXISTS (SELECT 1 FROM api_keys k \
                  WHERE k.id = s.api_key_id AND k.revoked_at IS NULL))",
        )
        .bind(hash(id))
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.and_then(|(user, org, api_key_id)| {
            let user: UserId = user.parse().ok()?;
            let org = match org {
                Some(org) => org.parse().ok()?,
                None => OrgId::personal(&user),
            };
            Some(SessionGrant {
                user,
                org,
                api_key_id,
            })
        }))
    }

    /// Ends one session (sign-out, or the old id at a new sign-in); false when there was none.
    pub async fn delete_session(&self, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(hash(id))
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
