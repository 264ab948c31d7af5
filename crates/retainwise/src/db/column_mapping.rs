//! A prediction's manual column mapping ([`retainwise_model::ManualMapping`], as JSON): written
//! in the transaction that queues the prediction, read by the worker that scores it.

use sqlx::AnyConnection;

use super::Db;
use crate::domain::{PredictionId, UserId};

/// Records `json` (a serialised [`retainwise_model::ManualMapping`]) on prediction `id`, on
/// `conn` (the transaction that inserted it).
///
/// Errors: the database failed.
pub async fn set_column_mapping(
    conn: &mut AnyConnection,
    id: PredictionId,
    json: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE predictions SET column_mapping = $1 WHERE id = $2")
        .bind(json)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Db {
    /// The manual column mapping sent with `user`'s prediction `id` (JSON), `None` when none
    /// was sent (or there is no such prediction of theirs).
    ///
    /// Errors: the database failed.
    pub async fn column_mapping(
        &self,
        user: &UserId,
        id: PredictionId,
    ) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT column_mapping FROM predictions WHERE id = $1 AND user_id = $2")
                .bind(id.to_string())
                .bind(user.as_str())
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(m,)| m))
    }
}
