//! Parse, don't validate: identifiers whose constructor is the only way in. Anything holding a
//! [`UserId`] or an [`ObjectKey`] has already been checked, so queries and storage paths built
//! from them cannot be steered by input.

mod ids;
mod object_key;
mod org;

pub use ids::{ModelId, PredictionId, TrainingId, UploadId, UserId};
pub use object_key::ObjectKey;
pub use org::{OrgId, Role};

/// Why a value was refused by a domain constructor; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DomainError(pub String);
