//! API keys for scripts and integrations: `rwk_` followed by 48 hex digits (192 random bits).
//! Only the SHA-256 of a key is stored, so a database leak does not leak working keys; a key is
//! shown once, when it is created.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::FromRow;

use crate::db::Db;
use crate::domain::{OrgId, Role, UserId};
use crate::time::now_ms;

/// Every API key starts with this, which tells it apart from a JWT.
pub const API_KEY_PREFIX: &str = "rwk_";

/// A stored key (without the key itself).
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ApiKey {
    /// Key id (UUID), used to revoke it.
    pub id: String,
    /// The user who made it (or for whom the operator made it).
    pub user_id: String,
    /// The organisation it acts in.
    pub org_id: String,
    /// Its role there (`owner`, `admin`, `analyst`, `viewer`); at each use, at most its
    /// maker's current role when the maker is a member.
    pub role: String,
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
    /// Creates a key for `user` in their personal organisation, as its owner (what a key
    /// could do before organisations).
    ///
    /// Errors: the personal organisation's id is a team's ([`crate::db::OrgRefusal::Taken`],
    /// as a protocol error); the database.
    pub async fn create_api_key(
        &self,
        user: &UserId,
        name: &str,
    ) -> Result<NewApiKey, sqlx::Error> {
        let org = match self.personal_org(user).await {
            Ok(org) => org,
            Err(crate::db::OrgRefusal::Database(e)) => return Err(e),
            Err(e) => return Err(sqlx::Error::Protocol(e.to_string())),
        };
        self.create_org_api_key(&org, user, Role::Owner, name).await
    }

    /// Creates a key made by `user` acting in `org` with `role`. The caller checks that `user`
    /// may give that role (an owner, or the operator).
    pub async fn create_org_api_key(
        &self,
        org: &OrgId,
        user: &UserId,
        role: Role,
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
            org_id: org.to_string(),
            role: role.as_str().to_owned(),
            name: name.to_owned(),
            prefix: secret[..API_KEY_PREFIX.len() + 6].to_owned(),
            created_at: now_ms(),
            last_used_at: None,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, org_id, role, name, key_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&record.id)
        .bind(&record.user_id)
        .bind(&record.org_id)
        .bind(&record.role)
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
            "SELECT id, user_id, org_id, role, name, prefix, created_at, last_used_at, revoked_at FROM api_keys";
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

/// What a live key says: its maker, its id, its organisation and its role there (already
/// capped at the maker's current role when the maker is a member).
#[derive(Debug, Clone)]
pub(super) struct KeyGrant {
    pub user: UserId,
    pub id: String,
    pub org: OrgId,
    pub role: Role,
}

/// The grant of a live key, or `None`: one statement, so the key cannot be revoked between
/// finding its owner and its id.
pub(super) async fn lookup(db: &Db, key: &str) -> Result<Option<KeyGrant>, sqlx::Error> {
    let row: Option<(String, String, Option<String>, String)> = sqlx::query_as(
        "UPDATE api_keys SET last_used_at = $1 WHERE key_hash = $2 AND revoked_at IS NULL RETURNING user_id, id, org_id, role",
    )
    .bind(now_ms())
    .bind(hash(key))
    .fetch_optional(db.pool())
    .await?;
    let Some((user, id, org, role)) = row else {
        return Ok(None);
    };
    let (Ok(user), Ok(role)) = (user.parse::<UserId>(), role.parse::<Role>()) else {
        return Ok(None);
    };
    let org = match org.map(|o| o.parse::<OrgId>()) {
        Some(Ok(org)) => org,
        Some(Err(_)) => return Ok(None),
        None => OrgId::personal(&user),
    };
    let role = match db.member_role(&org, &user).await? {
        Some(maker) => role.min(maker),
        None => role,
    };
    Ok(Some(KeyGrant {
        user,
        id,
        org,
        role,
    }))
}
