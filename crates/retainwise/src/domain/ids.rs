use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::DomainError;

/// At most 64 characters of a rejected value, so an error never echoes a huge input back.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random (v4) id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            /// Accepts the hyphenated UUID form (any case), e.g. `6f1c…-…`.
            fn from_str(s: &str) -> Result<Self, DomainError> {
                Uuid::try_parse(s.trim()).map(Self).map_err(|_| {
                    DomainError(format!(
                        concat!($what, " {:?} is not a UUID (expected e.g. 3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b)"),
                        shown(s)
                    ))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// Identifies one prediction job (a UUID, stored as its lowercase hyphenated text).
    PredictionId,
    "prediction id"
);
uuid_id!(
    /// Identifies one uploaded file (a UUID, stored as its lowercase hyphenated text).
    UploadId,
    "upload id"
);

uuid_id!(
    /// Identifies one model-training job (a UUID, stored as its lowercase hyphenated text).
    TrainingId,
    "training id"
);

/// A model's id as written in every scored row's `model_version`, e.g.
/// `telco-gbdt-v2-ab81768d`: 1–100 characters of `a–z 0–9 -`, starting with a letter or digit.
/// It is a path segment of `models/{id}.json`, so nothing else gets in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelId(String);

impl ModelId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ModelId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        let ok = !s.is_empty()
            && s.len() <= 100
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError(format!(
                "model id {:?} is invalid: expected e.g. telco-gbdt-v2-ab81768d \
                 (lower-case letters, digits and '-', at most 100)",
                shown(s)
            )))
        }
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A signed-in person: the identity provider's subject as it is — Clerk's
/// `user_2abc…`, Auth0's `auth0|64f…` or `google-oauth2|1043…`, an e-mail address — 1 to
/// [`UserId::MAX_LEN`] bytes without control characters, and not `*` (the installation-wide
/// scope of the active model, [`crate::db::EVERYONE`]). Records belong to an organisation
/// ([`super::OrgId`], whose text follows the same rules); a user's personal organisation has
/// the user's id as its id, so the rows and object folders of a user from before organisations
/// are their personal organisation's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// Longest subject accepted, in bytes: room for any e-mail address (RFC 5321 caps a path at
    /// 256 octets) and for every provider's ids we know of.
    pub const MAX_LEN: usize = 255;

    /// The single user of an installation without sign-in.
    pub fn local() -> Self {
        Self("local".to_owned())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The user's folder name in object keys (`uploads/{folder}/…`). A subject of 1–64
    /// characters of `A–Z a–z 0–9 _ -` is its own folder, as it always was, so existing users'
    /// objects stay where they are; any other subject becomes `h.` and the hex SHA-256 of its
    /// text. The `.` cannot occur in a folder of the first kind, so the two kinds never meet, and
    /// neither contains `/` or is `.` or `..`.
    pub fn folder(&self) -> std::borrow::Cow<'_, str> {
        folder_of(&self.0)
    }
}

/// [`UserId::folder`] of any owner id's text (an organisation's too: see `OrgId::folder`).
pub(super) fn folder_of(id: &str) -> std::borrow::Cow<'_, str> {
    if is_plain_folder(id) {
        std::borrow::Cow::Borrowed(id)
    } else {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(id.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        std::borrow::Cow::Owned(format!("h.{hex}"))
    }
}

impl UserId {
    /// The tag a model trained for this user carries on its card (see
    /// `retainwise_model::TrainParams::namespace`): `owner-` and the first 16 hex digits of the
    /// SHA-256 of the id, so the card names nobody while the same file trained by two users
    /// gives two model ids.
    pub fn model_namespace(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.0.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("owner-{hex}")
    }
}

impl UserId {
    /// A user id of already-checked owner text (an [`super::OrgId`]'s), for the helpers both share.
    pub(super) fn personal_text(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// The ids every user had before any subject was accepted: usable as a folder name as they are.
fn is_plain_folder(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl FromStr for UserId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        if s.is_empty() || s.len() > Self::MAX_LEN || s.chars().any(char::is_control) {
            return Err(DomainError(format!(
                "user id {:?} is invalid: expected 1-{} bytes without control characters",
                shown(s),
                Self::MAX_LEN
            )));
        }
        if s == crate::db::EVERYONE {
            return Err(DomainError(format!(
                "user id {s:?} is reserved for the installation-wide setting"
            )));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids() {
        let id = PredictionId::new();
        assert_eq!(id.to_string().parse::<PredictionId>().unwrap(), id);
        assert!("not-a-uuid".parse::<PredictionId>().is_err());
        assert!("".parse::<UploadId>().is_err());
    }

    #[test]
    fn model_ids() {
        assert!("telco-gbdt-v2-ab81768d".parse::<ModelId>().is_ok());
        for bad in ["", "-x", "A", "a/b", "../x", "a.json", &"a".repeat(101)] {
            assert!(bad.parse::<ModelId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_ids() {
        for good in [
            "user_2abcXYZ-9",
            "auth0|64f1c2",
            "google-oauth2|1043",
            "ann@example.com",
            "a/b",
            "..",
            "é",
            &"a".repeat(255),
        ] {
            assert!(good.parse::<UserId>().is_ok(), "{good:?}");
        }
        for bad in ["", "*", "a\nb", "a\u{0}", &"a".repeat(256)] {
            assert!(bad.parse::<UserId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_folders_stay_inside_and_keep_old_names() {
        let user = |s: &str| s.parse::<UserId>().unwrap();
        // Existing (Clerk-style) users keep their folder: their objects do not move.
        assert_eq!(user("user_2abcXYZ-9").folder(), "user_2abcXYZ-9");
        for odd in [
            "..",
            ".",
            "a/b",
            "../other",
            "auth0|x",
            "ann@example.com",
            "x y",
        ] {
            let folder = user(odd).folder().into_owned();
            assert!(
                folder.starts_with("h.") && folder.len() == 66,
                "{odd:?} → {folder}"
            );
            assert!(folder[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(user("auth0|a").folder(), user("auth0|b").folder());
    }
}
