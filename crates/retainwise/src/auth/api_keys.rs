//! API keys for scripts and integrations: `rwk_` followed by 48 hex digits (192 random bits).
//! Only the SHA-256 of a key is stored, so a database leak does not leak working keys; a key is
//! shown once, when it is created.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::FromRow;

use crate::db::Db;
use crate::domain::UserId;
use crate::time::now_ms;

/// Every API key starts with this, which tells it apart from a JWT.
pub const API_KEY_PREFIX: &str = "rwk_";

/// A stored key (without the key itself).
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ApiKey {
    /// Key id (UUID), used to revoke it.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// A label given at creation.
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last successful use, epoch ms.
    pub last_used_at: Option<i64>,
    /// When revoked, epoch ms.
    pub revoked_at: Option<i64>,
}

/// A freshly created key: the secret is shown once and never stored.
pub struct NewApiKey {
    /// The stored record.
    pub record: ApiKey,
    /// The key to give the user.
    pub secret: String,
}

/// The stored form of a secret (an API key, a web session id): SHA-256, lower-case hex.
pub(crate) fn hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Db {
    /// Creates a key for `user`.
    pub async fn create_api_key(
        &self,
        user: &UserId,
        name: &str,
    ) -> Result<NewApiKey, sqlx::Error> {
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        let secret = format!(
            "{API_KEY_PREFIX}{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let record = ApiKey {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user.to_string(),
            name: name.to_owned(),
            prefix: secret[..API_KEY_PREFIX.len() + 6].to_owned(),
            created_at: now_ms(),
            last_used_at: None,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, key_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&record.id)
        .bind(&record.user_id)
        .bind(&record.name)
        .bind(hash(&secret))
        .bind(&record.prefix)
        .bind(record.created_at)
        .execute(self.pool())
        .await?;
        Ok(NewApiKey { record, secret })
    }

    /// Keys, of one user or of everyone, newest first.
    pub async fn api_keys(&self, user: Option<&UserId>) -> Result<Vec<ApiKey>, sqlx::Error> {
        let select =
            "SELECT id, user_id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys";
        match user {
            Some(user) => {
                sqlx::query_as(&format!(
                    "{select} WHERE user_id = $1 ORDER BY created_at DESC"
                ))
                .bind(user.as_str())
                .fetch_all(self.pool())
                .await
            }
            None => {
                sqlx::query_as(&format!("{select} ORDER BY created_at DESC"))
                    .fetch_all(self.pool())
                    .await
            }
        }
    }

    /// Revokes a key by id; false when no live key has that id.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool, sqlx::Error> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// The owner and id of a live key, or `None`: one statement, so the key cannot be revoked
/// between finding its owner and its id.
pub(super) async fn lookup(db: &Db, key: &str) -> Result<Option<(UserId, String)>, sqlx::Error> {
    let row: Option<(String, String)> = sqlx::query_as(
        "UPDATE api_keys SET last_used_at = $1 WHERE key_hash = $2 AND revoked_at IS NULL RETURNING user_id, id",
    )
    .bind(now_ms())
    .bind(hash(key))
    .fetch_optional(db.pool())
    .await?;
    Ok(row.and_then(|(user, id)| Some((user.parse().ok()?, id))))
}
