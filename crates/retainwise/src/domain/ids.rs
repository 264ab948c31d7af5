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

/// The owner of uploads and predictions: 1–64 characters of `A–Z a–z 0–9 _ -` (Clerk's
/// `user_2abc…` ids fit). Every query a user's request causes is scoped by it, and it is a
/// path segment of every object key, so nothing else gets in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// The single user of an installation without sign-in.
    pub fn local() -> Self {
        Self("local".to_owned())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UserId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError(format!(
                "user id {:?} is invalid: expected 1-64 characters of letters, digits, '_' or '-'",
                shown(s)
            )))
        }
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
        assert!("user_2abcXYZ-9".parse::<UserId>().is_ok());
        for bad in ["", "a/b", "a b", "..", "x;rm", "é", &"a".repeat(65)] {
            assert!(bad.parse::<UserId>().is_err(), "{bad:?}");
        }
    }
}
