//! Organisations and memberships: the rows behind [`crate::auth::Member`] and the member
//! management of owners (API, page and `retainwise org`).
//!
//! A personal organisation (`personal_user_id` set) has its user's id as its id and is created
//! on the user's first sign-in (or by the migration, for users from before organisations). A
//! team is an identity provider's organisation, seen first in a token's claim, or one the
//! operator made with `retainwise org create`.

use sqlx::AnyConnection;

use super::Db;
use crate::domain::{OrgId, Role, UserId};
use crate::time::now_ms;

/// One member of an organisation, as listed to its owners.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberRow {
    /// The member's user id (the identity provider's subject).
    pub user_id: String,
    /// `owner`, `admin`, `analyst` or `viewer`.
    pub role: String,
    /// When they joined, epoch ms.
    pub created_at: i64,
}

/// Why a membership change was refused; the text says what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// The user is not a member of that organisation.
    #[error("{0} is not a member of this organisation")]
    NotMember(String),
    /// The change would leave the organisation without an owner.
    #[error("an organisation keeps at least one owner: make another member owner first")]
    LastOwner,
    /// A personal organisation has exactly one member, its user.
    #[error("a personal organisation has one member, its user: create a team with `retainwise org create` to share data")]
    Personal,
    /// The organisation does not exist.
    #[error("no organisation {0}")]
    NoOrganisation(String),
    /// The database.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Why a credential's organisation was refused (logged; the client gets a 401).
#[derive(Debug, thiserror::Error)]
pub enum OrgRefusal {
    /// The id names another user's personal organisation (or, for a personal one, a team).
    #[error("organisation {0:?} belongs to another user or is a team")]
    Taken(String),
    /// The database.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Db {
    /// `user`'s personal organisation, created (with them as its owner) on first use.
    ///
    /// Errors: [`OrgRefusal::Taken`] when a team (or another user's organisation) already has
    /// that id — never given to this user; the database.
    pub async fn personal_org(&self, user: &UserId) -> Result<OrgId, OrgRefusal> {
        let org = OrgId::personal(user);
        // Every request of a user without a team comes here: answered by one read once the
        // organisation and the membership exist.
        let known: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT o.personal_user_id, m.role FROM organisations o LEFT JOIN memberships m \
             ON m.org_id = o.id AND m.user_id = $2 WHERE o.id = $1",
        )
        .bind(org.as_str())
        .bind(user.as_str())
        .fetch_optional(self.pool())
        .await?;
        if let Some((Some(personal), Some(_))) = &known {
            if personal == user.as_str() {
                return Ok(org);
            }
        }
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO organisations (id, name, personal_user_id, created_at) \
             VALUES ($1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(org.as_str())
        .bind(user.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let (personal,): (Option<String>,) =
            sqlx::query_as("SELECT personal_user_id FROM organisations WHERE id = $1")
                .bind(org.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if personal.as_deref() != Some(user.as_str()) {
            return Err(OrgRefusal::Taken(org.to_string()));
        }
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) \
             VALUES ($1, $2, 'owner', $3) ON CONFLICT (org_id, user_id) DO NOTHING",
        )
        .bind(org.as_str())
        .bind(user.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    /// `user`'s role in the team `org` that an identity provider's token names (the provider
    /// vouches for the membership): the organisation is created when first seen, and a member
    /// first seen gets a row — `owner` if the organisation has no member yet, else `viewer`
    /// (an owner raises it).
    ///
    /// Errors: [`OrgRefusal::Taken`] when `org` is a personal organisation (a token cannot
    /// name its way into a user's own data); the database.
    pub async fn claimed_org_role(&self, org: &OrgId, user: &UserId) -> Result<Role, OrgRefusal> {
        if let Some(role) = self.member_role(org, user).await? {
            if self.is_personal(org).await? == Some(false) {
                return Ok(role);
            }
        }
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        // Data owned by this id without an organisation row is a user's from before
        // organisations (imported, or made by the operator for a user id): their personal
        // organisation, which no token may claim as a team.
        sqlx::query(
            "INSERT INTO organisations (id, name, personal_user_id, created_at) \
             SELECT $1, $1, $1, $2 WHERE EXISTS (SELECT 1 FROM uploads WHERE user_id = $1) \
             OR EXISTS (SELECT 1 FROM webhook_endpoints WHERE user_id = $1) \
             OR EXISTS (SELECT 1 FROM api_keys WHERE user_id = $1 OR org_id = $1) \
             OR EXISTS (SELECT 1 FROM models WHERE owner_id = $1) \
             OR EXISTS (SELECT 1 FROM active_models WHERE scope = $1) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(org.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO organisations (id, name, personal_user_id, created_at) \
             VALUES ($1, $1, NULL, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(org.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        lock_org(&mut tx, org).await?;
        let (personal,): (Option<String>,) =
            sqlx::query_as("SELECT personal_user_id FROM organisations WHERE id = $1")
                .bind(org.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if personal.is_some() {
            return Err(OrgRefusal::Taken(org.to_string()));
        }
        let (members,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE org_id = $1")
                .bind(org.as_str())
                .fetch_one(&mut *tx)
                .await?;
        let role = if members == 0 {
            Role::Owner
        } else {
            Role::Viewer
        };
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (org_id, user_id) DO NOTHING",
        )
        .bind(org.as_str())
        .bind(user.as_str())
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(self.member_role(org, user).await?.unwrap_or(role))
    }

    /// The organisation a user acts in when their credential names none: the team they joined
    /// most recently, else their personal organisation (created on first use).
    ///
    /// Errors: as [`Db::personal_org`].
    pub async fn default_org(&self, user: &UserId) -> Result<(OrgId, Role), OrgRefusal> {
        let team: Option<(String, String)> = sqlx::query_as(
            "SELECT m.org_id, m.role FROM memberships m JOIN organisations o ON o.id = m.org_id \
             WHERE m.user_id = $1 AND o.personal_user_id IS NULL \
             ORDER BY m.created_at DESC, m.org_id LIMIT 1",
        )
        .bind(user.as_str())
        .fetch_optional(self.pool())
        .await?;
        if let Some((org, role)) = team {
            if let (Ok(org), Ok(role)) = (org.parse(), role.parse()) {
                return Ok((org, role));
            }
        }
        Ok((self.personal_org(user).await?, Role::Owner))
    }

    /// `user`'s role in `org`, `None` for a non-member.
    pub async fn member_role(
        &self,
        org: &OrgId,
        user: &UserId,
    ) -> Result<Option<Role>, sqlx::Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org.as_str())
                .bind(user.as_str())
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(role,)| role.parse().ok()))
    }

    /// Whether `org` is a personal organisation (`None`: no such organisation).
    pub async fn is_personal(&self, org: &OrgId) -> Result<Option<bool>, sqlx::Error> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT personal_user_id FROM organisations WHERE id = $1")
                .bind(org.as_str())
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(p,)| p.is_some()))
    }

    /// Creates the team `org` (named `name`) with `owner` as its first owner; false when an
    /// organisation with that id exists already (nothing changed).
    pub async fn create_org(
        &self,
        org: &OrgId,
        name: &str,
        owner: &UserId,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "INSERT INTO organisations (id, name, personal_user_id, created_at) \
             VALUES ($1, $2, NULL, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(org.as_str())
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)",
        )
        .bind(org.as_str())
        .bind(owner.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The members of `org`, owners first, then by the time they joined.
    pub async fn members(&self, org: &OrgId) -> Result<Vec<MemberRow>, sqlx::Error> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT user_id, role, created_at FROM memberships WHERE org_id = $1 \
             ORDER BY CASE role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'analyst' THEN 2 ELSE 3 END, \
             created_at, user_id",
        )
        .bind(org.as_str())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(user_id, role, created_at)| MemberRow {
                user_id,
                role,
                created_at,
            })
            .collect())
    }

    /// Adds `user` to the team `org` with `role`, or changes the role of a member; returns
    /// whether the user was new to it.
    ///
    /// Errors: [`MembershipError::Personal`] for a personal organisation,
    /// [`MembershipError::NoOrganisation`], [`MembershipError::LastOwner`] when the change
    /// demotes the only owner; the database.
    pub async fn set_member(
        &self,
        org: &OrgId,
        user: &UserId,
        role: Role,
        actor: Option<&crate::audit::Actor>,
    ) -> Result<bool, MembershipError> {
        let mut tx = self.pool().begin().await?;
        lock_team(&mut tx, org).await?;
        let current: Option<(String,)> =
            sqlx::query_as("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org.as_str())
                .bind(user.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if current.as_ref().is_some_and(|(r,)| r == "owner") && role != Role::Owner {
            ensure_another_owner(&mut tx, org, user).await?;
        }
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(org.as_str())
        .bind(user.as_str())
        .bind(role.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        // A key keeps at most its creator's role (checked at each use, see `auth::Member`);
        // nothing to rewrite here.
        if let Some(actor) = actor {
            use crate::audit::{record, Action, Outcome};
            let action = match &current {
                None => Action::MemberAdd,
                Some(_) => Action::MemberRoleChange,
            };
            let outcome = Outcome::Ok;
            record(
                &mut *tx,
                actor,
                action,
                Some(("member", user.as_str())),
                &outcome,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(current.is_none())
    }

    /// Removes `user` from the team `org` and revokes the API keys they made for it.
    ///
    /// Errors: [`MembershipError::NotMember`], [`MembershipError::LastOwner`],
    /// [`MembershipError::Personal`], [`MembershipError::NoOrganisation`]; the database.
    pub async fn remove_member(
        &self,
        org: &OrgId,
        user: &UserId,
        actor: Option<&crate::audit::Actor>,
    ) -> Result<(), MembershipError> {
        let mut tx = self.pool().begin().await?;
        lock_team(&mut tx, org).await?;
        let current: Option<(String,)> =
            sqlx::query_as("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org.as_str())
                .bind(user.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        match current {
            None => return Err(MembershipError::NotMember(user.to_string())),
            Some((role,)) if role == "owner" => ensure_another_owner(&mut tx, org, user).await?,
            Some(_) => {}
        }
        sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(org.as_str())
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM web_sessions WHERE org_id = $1 AND user_id = $2")
            .bind(org.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        if let Some(actor) = actor {
            use crate::audit::{record, Action, Outcome};
            let member = Some(("member", user.as_str()));
            record(&mut *tx, actor, Action::MemberRemove, member, &Outcome::Ok).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Takes `org`'s row lock for the rest of the transaction (a no-op write: the row lock on
/// Postgres, the write lock on SQLite), so two owners changing roles at once are serialised
/// and the last-owner check cannot pass for both.
async fn lock_org(conn: &mut AnyConnection, org: &OrgId) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE organisations SET name = name WHERE id = $1")
        .bind(org.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// [`lock_org`] for a change of members: refused for a personal or absent organisation.
async fn lock_team(conn: &mut AnyConnection, org: &OrgId) -> Result<(), MembershipError> {
    if !lock_org(conn, org).await? {
        return Err(MembershipError::NoOrganisation(org.to_string()));
    }
    let (personal,): (Option<String>,) =
        sqlx::query_as("SELECT personal_user_id FROM organisations WHERE id = $1")
            .bind(org.as_str())
            .fetch_one(&mut *conn)
            .await?;
    if personal.is_some() {
        return Err(MembershipError::Personal);
    }
    Ok(())
}

async fn ensure_another_owner(
    conn: &mut AnyConnection,
    org: &OrgId,
    user: &UserId,
) -> Result<(), MembershipError> {
    let (others,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner' AND user_id <> $2",
    )
    .bind(org.as_str())
    .bind(user.as_str())
    .fetch_one(&mut *conn)
    .await?;
    if others == 0 {
        return Err(MembershipError::LastOwner);
    }
    Ok(())
}
