//! The messages: what the API puts on the queue and the worker takes off it.
//!
//! Every body is a JSON object whose `kind` field names its job kind ([`encode`], [`kind_of`]);
//! the rest is the kind's payload. A prediction message carries what the original service's
//! message did (prediction id, user id, upload id, the object path of the upload, a timestamp,
//! a priority), and one without a `kind` is a prediction, so queues the original filled drain.
//! The worker never trusts a body: [`validate`] turns it into a [`PredictionJob`] or a reason to
//! dead-letter it.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::domain::{ObjectKey, OrgId, PredictionId, TrainingId, UploadId};

/// Messages older than this are refused (a redrive re-stamps the queue's send time, so an old
/// backlog can still be redriven).
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Messages stamped further in the future than this are refused (clock skew allowance).
pub const MAX_FUTURE: Duration = Duration::from_secs(3600);

/// The JSON body of a prediction message, as sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PredictionMessage {
    /// Prediction UUID.
    pub prediction_id: String,
    /// Owner of the upload and the prediction.
    pub user_id: String,
    /// Upload UUID.
    pub upload_id: String,
    /// Object path of the uploaded CSV, relative to the storage root (the original called it `s3_key`).
    #[serde(alias = "s3_key")]
    pub object_key: String,
    /// When the message was first sent, RFC 3339.
    pub timestamp: String,
    /// `normal` or `high`.
    #[serde(default = "normal")]
    pub priority: String,
}

fn normal() -> String {
    "normal".to_owned()
}

/// The `kind` of a prediction message.
pub const KIND_PREDICT: &str = "predict";

/// The body of a message of `kind`: `payload`'s JSON object with a `kind` field added.
///
/// Panics if `payload` does not serialize to a JSON object (a payload type is always a struct).
pub fn encode<P: Serialize>(kind: &str, payload: &P) -> String {
    let mut value = serde_json::to_value(payload).expect("a payload serializes");
    let object = value
        .as_object_mut()
        .expect("a payload serializes to a JSON object");
    object.insert("kind".to_owned(), kind.into());
    value.to_string()
}

/// The kind a body names: its `kind` field, or [`KIND_PREDICT`] when it has none (the original
/// service's prediction messages). `None` when the body is not a JSON object or its `kind` is
/// not a string.
pub fn kind_of(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        kind: Option<String>,
    }
    let probe: Probe = serde_json::from_str(body).ok()?;
    Some(probe.kind.unwrap_or_else(|| KIND_PREDICT.to_owned()))
}

/// A message's record id and owner, when both parse: what every kind's `owner` reads, whatever
/// else is wrong with the message, so the worker and the sweeper can close the job of a message
/// they dead-letter.
pub fn parse_owner<I: std::str::FromStr>(id: &str, owner: &str) -> Option<(I, OrgId)> {
    Some((id.parse().ok()?, owner.parse().ok()?))
}

impl PredictionMessage {
    /// The prediction and user it names, when they parse ([`parse_owner`]).
    pub fn owner(&self) -> Option<(PredictionId, OrgId)> {
        parse_owner(&self.prediction_id, &self.user_id)
    }
}

/// A validated message: everything the worker needs, already parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionJob {
    /// The prediction to run.
    pub prediction_id: PredictionId,
    /// Its owner; every query the job makes is scoped by it.
    pub user_id: OrgId,
    /// The upload it scores.
    pub upload_id: UploadId,
    /// Where the upload's bytes are, checked to be inside the user's upload folder.
    pub object_key: ObjectKey,
}

impl PredictionMessage {
    /// The message for a freshly queued prediction, stamped now.
    pub fn new(
        prediction: PredictionId,
        user: &OrgId,
        upload: UploadId,
        key: &ObjectKey,
        high: bool,
    ) -> Self {
        Self {
            prediction_id: prediction.to_string(),
            user_id: user.to_string(),
            upload_id: upload.to_string(),
            object_key: key.to_string(),
            timestamp: crate::time::rfc3339(crate::time::now_ms()),
            priority: if high { "high" } else { "normal" }.to_owned(),
        }
    }
}

/// Parses and checks a message body.
///
/// `sent_at` is the queue's own send time (re-stamped on redrive) and decides the age check;
/// the body's `timestamp` must parse and must not lie more than [`MAX_FUTURE`] ahead.
/// `storage_root` is the configured storage root URL the object path must lie inside.
///
/// Errors: a sentence naming the field, the raw value and what was expected.
pub fn validate(
    body: &str,
    sent_at: SystemTime,
    now: SystemTime,
    storage_root: &str,
) -> Result<PredictionJob, String> {
    let msg: PredictionMessage = serde_json::from_str(body)
        .map_err(|e| format!("message body is not a valid prediction message: {e}"))?;
    msg.check(sent_at, now, storage_root)
}

impl PredictionMessage {
    /// Checks a decoded message as [`validate`] does.
    ///
    /// Errors: a sentence naming the field, the raw value and what was expected.
    pub fn check(
        self,
        sent_at: SystemTime,
        now: SystemTime,
        storage_root: &str,
    ) -> Result<PredictionJob, String> {
        let msg = self;
        let prediction_id = msg.prediction_id.parse::<PredictionId>().map_err(|e| e.0)?;
        let upload_id = msg.upload_id.parse::<UploadId>().map_err(|e| e.0)?;
        let user_id = msg.user_id.parse::<OrgId>().map_err(|e| e.0)?;
        let object_key =
            ObjectKey::parse_upload(&msg.object_key, storage_root, &user_id).map_err(|e| e.0)?;
        if !matches!(msg.priority.as_str(), "normal" | "high") {
            return Err(format!(
                "priority {:?} is invalid: expected \"normal\" or \"high\"",
                msg.priority
            ));
        }
        check_times(&msg.timestamp, sent_at, now)?;
        Ok(PredictionJob {
            prediction_id,
            user_id,
            upload_id,
            object_key,
        })
    }
}

/// The `kind` of a training message.
pub const KIND_TRAIN: &str = "train";

/// The JSON body of a model-training message, as sent (besides its `kind`, [`KIND_TRAIN`]).
/// What to train (label, id column, name) is in the training's database row, not here: the
/// message only says which row to run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingMessage {
    /// Training UUID.
    pub training_id: String,
    /// Owner of the upload and the training.
    pub user_id: String,
    /// Upload UUID.
    pub upload_id: String,
    /// Object path of the labelled CSV, relative to the storage root.
    pub object_key: String,
    /// When the message was first sent, RFC 3339.
    pub timestamp: String,
}

impl TrainingMessage {
    /// The message for a freshly queued training, stamped now.
    pub fn new(training: TrainingId, user: &OrgId, upload: UploadId, key: &ObjectKey) -> Self {
        Self {
            training_id: training.to_string(),
            user_id: user.to_string(),
            upload_id: upload.to_string(),
            object_key: key.to_string(),
            timestamp: crate::time::rfc3339(crate::time::now_ms()),
        }
    }
}

/// A validated training message.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingJob {
    /// The training to run.
    pub training_id: TrainingId,
    /// Its owner; every query the job makes is scoped by it.
    pub user_id: OrgId,
    /// Where the labelled CSV is, checked to be inside the user's upload folder.
    pub object_key: ObjectKey,
}

impl TrainingMessage {
    /// The training and user it names, when they parse (see [`PredictionMessage::owner`]).
    pub fn owner(&self) -> Option<(TrainingId, OrgId)> {
        parse_owner(&self.training_id, &self.user_id)
    }

    /// Checks a decoded message with the same rules as [`validate`] (ids, object path inside
    /// the user's upload folder, timestamp, age by the queue's send time).
    ///
    /// Errors: a sentence naming the field, the raw value and what was expected.
    pub fn check(
        self,
        sent_at: SystemTime,
        now: SystemTime,
        storage_root: &str,
    ) -> Result<TrainingJob, String> {
        let msg = self;
        let training_id = msg.training_id.parse::<TrainingId>().map_err(|e| e.0)?;
        msg.upload_id.parse::<UploadId>().map_err(|e| e.0)?;
        let user_id = msg.user_id.parse::<OrgId>().map_err(|e| e.0)?;
        let object_key =
            ObjectKey::parse_upload(&msg.object_key, storage_root, &user_id).map_err(|e| e.0)?;
        check_times(&msg.timestamp, sent_at, now)?;
        Ok(TrainingJob {
            training_id,
            user_id,
            object_key,
        })
    }
}

/// The body's stamp must parse and not lie more than [`MAX_FUTURE`] ahead; the queue's send
/// time must be within [`MAX_AGE`].
fn check_times(timestamp: &str, sent_at: SystemTime, now: SystemTime) -> Result<(), String> {
    let stamped = crate::time::parse_rfc3339(timestamp)
        .map_err(|_| format!("timestamp {timestamp:?} is not an RFC 3339 time"))?;
    if stamped
        .duration_since(now)
        .is_ok_and(|ahead| ahead > MAX_FUTURE)
    {
        return Err(format!(
            "timestamp {timestamp} is more than 1 hour in the future"
        ));
    }
    if now.duration_since(sent_at).is_ok_and(|age| age > MAX_AGE) {
        return Err(format!(
            "message is older than 24 hours (sent {}); redrive it to run it again",
            crate::time::rfc3339(crate::time::to_ms(sent_at))
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "file:///srv/objects";

    fn good() -> PredictionMessage {
        let user: OrgId = "user_1".parse().unwrap();
        let upload = UploadId::new();
        PredictionMessage::new(
            PredictionId::new(),
            &user,
            upload,
            &ObjectKey::upload(&user, upload),
            false,
        )
    }

    fn check(msg: &PredictionMessage) -> Result<PredictionJob, String> {
        let now = SystemTime::now();
        validate(&serde_json::to_string(msg).unwrap(), now, now, ROOT)
    }

    #[test]
    fn accepts_a_fresh_message() {
        let msg = good();
        let job = check(&msg).unwrap();
        assert_eq!(job.prediction_id.to_string(), msg.prediction_id);
    }

    #[test]
    fn rejects_each_bad_field() {
        type Mutation = fn(&mut PredictionMessage);
        let cases: Vec<(Mutation, &str)> = vec![
            (|m| m.prediction_id = "123".into(), "prediction id"),
            (|m| m.upload_id = "x".into(), "upload id"),
            (|m| m.user_id = "a\u{7}b".into(), "organisation id"),
            (
                |m| m.object_key = "uploads/user_1/../x.csv".into(),
                "object path",
            ),
            (
                |m| m.object_key = "s3://other/uploads/user_1/x.csv".into(),
                "outside",
            ),
            (|m| m.priority = "urgent".into(), "priority"),
            (|m| m.timestamp = "yesterday".into(), "RFC 3339"),
            (
                |m| m.timestamp = crate::time::rfc3339(crate::time::now_ms() + 2 * 3600 * 1000),
                "future",
            ),
        ];
        for (mutate, expect) in cases {
            let mut msg = good();
            mutate(&mut msg);
            let err = check(&msg).unwrap_err();
            assert!(err.contains(expect), "{err:?} should mention {expect:?}");
        }
        let now = SystemTime::now();
        assert!(validate("{not json", now, now, ROOT).is_err());
    }

    #[test]
    fn training_messages_are_told_apart_and_checked() {
        let user: OrgId = "user_1".parse().unwrap();
        let upload = UploadId::new();
        let msg = TrainingMessage::new(
            TrainingId::new(),
            &user,
            upload,
            &ObjectKey::upload(&user, upload),
        );
        let body = encode(KIND_TRAIN, &msg);
        assert_eq!(kind_of(&body).as_deref(), Some(KIND_TRAIN));
        // The original's prediction message has no kind: it is a prediction.
        let original = serde_json::to_string(&good()).unwrap();
        assert_eq!(kind_of(&original).as_deref(), Some(KIND_PREDICT));
        assert_eq!(
            kind_of(&encode(KIND_PREDICT, &good())).as_deref(),
            Some(KIND_PREDICT)
        );
        assert_eq!(kind_of("not json"), None);
        assert_eq!(kind_of(r#"{"kind": 7}"#), None);
        let now = SystemTime::now();
        let decoded: TrainingMessage = serde_json::from_str(&body).unwrap();
        assert_eq!(decoded.owner().unwrap().1, user);
        let job = decoded.check(now, now, ROOT).unwrap();
        assert_eq!(job.training_id.to_string(), msg.training_id);
        let mut escaped = msg.clone();
        escaped.object_key = "uploads/user_2/x.csv".into();
        let err = escaped.check(now, now, ROOT).unwrap_err();
        assert!(err.contains("user_1"), "{err}");
    }

    #[test]
    fn age_uses_the_queue_send_time() {
        let body = serde_json::to_string(&good()).unwrap();
        let now = SystemTime::now();
        let old = now - Duration::from_secs(25 * 3600);
        assert!(validate(&body, old, now, ROOT)
            .unwrap_err()
            .contains("older than 24 hours"));
        // A redriven message is re-stamped by the queue and runs even if its body is old.
        let mut msg = good();
        msg.timestamp = crate::time::rfc3339(crate::time::to_ms(old));
        assert!(validate(&serde_json::to_string(&msg).unwrap(), now, now, ROOT).is_ok());
    }

    #[test]
    fn honours_the_original_field_name() {
        let msg = good();
        let body = serde_json::to_string(&msg)
            .unwrap()
            .replace("\"object_key\"", "\"s3_key\"");
        let now = SystemTime::now();
        assert!(validate(&body, now, now, ROOT).is_ok());
    }
}
