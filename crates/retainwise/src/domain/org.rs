//! Organisations and roles: who owns a record and what a member may do with it.
//!
//! Every record (upload, prediction, model, training, webhook, API key, direct upload) belongs
//! to one organisation, and every query a request causes is scoped by the caller's [`OrgId`]:
//! the one scope type the database layer takes. A user's personal organisation has the user's
//! id as its id, so data from before organisations (owned by a user id) is theirs unchanged.

use std::fmt;
use std::str::FromStr;

use super::{DomainError, UserId};

/// The organisation that owns a record: the scope of every query a request causes (bound as a
/// parameter, never spliced into SQL). Its text follows [`UserId`]'s rules (1–255 bytes, no
/// control characters, not `*`): a personal organisation's id is its user's id, a team's is
/// the identity provider's organisation id (Clerk's `org_2abc…`) or one the operator chose.
/// Object keys use [`OrgId::folder`], never the raw text, so no id can leave its own folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrgId(String);

impl OrgId {
    /// The organisation of an installation without sign-in (the local user's personal one).
    pub fn local() -> Self {
        Self::personal(&UserId::local())
    }

    /// `user`'s personal organisation: the same text as the user id.
    pub fn personal(user: &UserId) -> Self {
        Self(user.as_str().to_owned())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The organisation's folder in object keys (`uploads/{folder}/…`): the same rule as
    /// [`UserId::folder`], so a personal organisation's objects are where its user's were.
    pub fn folder(&self) -> std::borrow::Cow<'_, str> {
        super::ids::folder_of(&self.0)
    }

    /// The tag a model trained for this organisation carries on its card (see
    /// `retainwise_model::TrainParams::namespace`): `owner-` and the first 16 hex digits of the
    /// SHA-256 of the id, as [`UserId::model_namespace`] (a personal organisation's models keep
    /// their ids).
    pub fn model_namespace(&self) -> String {
        UserId::personal_text(&self.0).model_namespace()
    }
}

impl FromStr for OrgId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        s.parse::<UserId>()
            .map(|u| Self(u.as_str().to_owned()))
            .map_err(|e| DomainError(e.0.replacen("user id", "organisation id", 1)))
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a member may do, least to most: each role may do everything the ones below it may.
///
/// | role | may |
/// |---|---|
/// | `viewer` | read pages and the API's lists and dashboards; no download of customer rows |
/// | `analyst` | upload, score, cancel, download results and exports |
/// | `admin` | models (train, activate), webhooks |
/// | `owner` | members and their roles, the organisation's settings |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads, uploads, scores, exports.
    Analyst,
    /// An analyst who also manages models and webhooks.
    Admin,
    /// An admin who also manages members.
    Owner,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Analyst, Role::Admin, Role::Owner];

    /// The role's name as stored and shown: `viewer`, `analyst`, `admin`, `owner`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

impl FromStr for Role {
    type Err = DomainError;
    /// One of `viewer`, `analyst`, `admin`, `owner` (any case); Clerk's `org:admin` and
    /// `org:member` read as `admin` and `viewer`.
    fn from_str(s: &str) -> Result<Self, DomainError> {
        let lower = s.trim().to_ascii_lowercase();
        let name = lower.strip_prefix("org:").unwrap_or(&lower);
        match name {
            "viewer" | "member" => Ok(Role::Viewer),
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            _ => Err(DomainError(format!(
                "role {:?} is not one of viewer, analyst, admin, owner",
                s.chars().take(64).collect::<String>()
            ))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_organisation_keeps_the_users_folder_and_namespace() {
        let user: UserId = "user_2abc".parse().unwrap();
        let org = OrgId::personal(&user);
        assert_eq!(org.as_str(), "user_2abc");
        assert_eq!(org.folder(), user.folder());
        assert_eq!(org.model_namespace(), user.model_namespace());
        assert!("*".parse::<OrgId>().is_err());
        assert!(""
            .parse::<OrgId>()
            .unwrap_err()
            .0
            .contains("organisation id"));
    }

    #[test]
    fn roles_are_ordered_and_read_back() {
        assert!(Role::Viewer < Role::Analyst && Role::Analyst < Role::Admin);
        assert!(Role::Admin < Role::Owner);
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert_eq!("org:admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
    }
}
