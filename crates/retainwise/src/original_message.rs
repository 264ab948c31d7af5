//! The original service's prediction message, translated into retainwise's before it is
//! checked, so retainwise workers can take over the queue its FastAPI publisher writes to.
//!
//! The original publisher (`backend/services/sqs_service.py` of muhammadzeb86/churn-saas) sends
//! `{"prediction_id", "upload_id": "<integer>", "user_id", "s3_file_path":
//! "s3://{bucket}/uploads/{user}/{ts}-{name}.csv", "timestamp": "<datetime.utcnow().isoformat()>",
//! "priority"}`. Translated: `s3_file_path` becomes `object_key` (still checked by
//! [`crate::message::validate`] to lie inside the configured bucket and prefix, in the user's
//! upload folder, without `..`); an integer upload id becomes the UUID
//! [`crate::import_original::upload_id`] derives from it (the worker reads the upload through
//! the prediction's row, never through this id); a timestamp without a zone is UTC, as Python's
//! `utcnow()` means. Everything else is left for the validation to judge.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// `body` in retainwise's format when it is the original's prediction message (it has
/// `s3_file_path` and neither `object_key` nor `s3_key`); any other body as it is.
pub fn translate(body: &str) -> Cow<'_, str> {
    let Ok(Value::Object(mut msg)) = serde_json::from_str::<Value>(body) else {
        return Cow::Borrowed(body);
    };
    if !msg.contains_key("s3_file_path")
        || msg.contains_key("object_key")
        || msg.contains_key("s3_key")
    {
        return Cow::Borrowed(body);
    }
    if let Some(path) = msg.remove("s3_file_path") {
        msg.insert("object_key".to_owned(), path);
    }
    translate_upload_id(&mut msg);
    if let Some(Value::String(stamp)) = msg.get_mut("timestamp") {
        if !has_zone(stamp) {
            stamp.push('Z');
        }
    }
    Cow::Owned(Value::Object(msg).to_string())
}

/// The delivery with its body translated by [`translate`].
pub fn normalized(mut delivery: retainwise_queue::Delivery) -> retainwise_queue::Delivery {
    if let Cow::Owned(body) = translate(&delivery.body) {
        delivery.body = body;
    }
    delivery
}

/// An integer upload id (`"15"` or `15`) → its derived UUID; anything else is left alone.
fn translate_upload_id(msg: &mut Map<String, Value>) {
    let integer = match msg.get("upload_id") {
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<i64>().ok()
        }
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    if let Some(n) = integer {
        msg.insert(
            "upload_id".to_owned(),
            Value::String(crate::import_original::upload_id(n).to_string()),
        );
    }
}

/// True when an ISO 8601 date-time carries a zone: `Z` or a `±hh:mm` offset after the time.
fn has_zone(stamp: &str) -> bool {
    let time = stamp
        .split_once(['T', 't', ' '])
        .map_or(stamp, |(_, time)| time);
    time.ends_with(['Z', 'z']) || time.contains(['+', '-'])
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::domain::{ObjectKey, OrgId, UploadId};

    const ROOT: &str = "s3://retainwise-uploads";

    /// The original publisher's body, as `json.dumps` writes it.
    fn original(path: &str, stamp: &str) -> String {
        format!(
            "{{\"prediction_id\": \"{}\", \"upload_id\": \"15\", \"user_id\": \"user_2abc\", \
             \"s3_file_path\": \"{path}\", \"timestamp\": \"{stamp}\", \"priority\": \"normal\"}}",
            crate::domain::PredictionId::new()
        )
    }

    fn now_naive() -> String {
        let z = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
        z.trim_end_matches('Z').to_owned()
    }

    #[test]
    fn the_originals_message_validates() {
        let path = format!("{ROOT}/uploads/user_2abc/20251102_123456-customers.csv");
        let body = translate(&original(&path, &now_naive())).into_owned();
        let now = SystemTime::now();
        let job = crate::message::validate(&body, now, now, ROOT).unwrap();
        assert_eq!(
            job.object_key.as_str(),
            "uploads/user_2abc/20251102_123456-customers.csv"
        );
        assert_eq!(job.upload_id, crate::import_original::upload_id(15));
        let user: OrgId = "user_2abc".parse().unwrap();
        let msg: crate::message::PredictionMessage = serde_json::from_str(&body).unwrap();
        assert_eq!(msg.owner().unwrap().1, user);
    }

    #[test]
    fn zoneless_timestamps_are_utc() {
        let path = format!("{ROOT}/uploads/user_2abc/a.csv");
        let body = translate(&original(&path, "2025-11-02T12:34:56.789012")).into_owned();
        let msg: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(msg["timestamp"], "2025-11-02T12:34:56.789012Z");
        for zoned in ["2025-11-02T12:34:56Z", "2025-11-02T12:34:56+01:00"] {
            let body = translate(&original(&path, zoned)).into_owned();
            let msg: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(msg["timestamp"], zoned);
        }
    }

    #[test]
    fn other_buckets_and_climbs_are_still_refused() {
        let now = SystemTime::now();
        for path in [
            "s3://retainwise-other/uploads/user_2abc/a.csv",
            "s3://retainwise-uploads/uploads/user_2abc/../user_2xyz/a.csv",
            "s3://retainwise-uploads/uploads/user_2xyz/a.csv",
        ] {
            let body = translate(&original(path, &now_naive())).into_owned();
            let err = crate::message::validate(&body, now, now, ROOT).unwrap_err();
            assert!(err.contains("rejected"), "{path}: {err}");
        }
    }

    #[test]
    fn retainwise_bodies_pass_unchanged() {
        let user: OrgId = "user_2abc".parse().unwrap();
        let upload = UploadId::new();
        let ours = serde_json::to_string(&crate::message::PredictionMessage::new(
            crate::domain::PredictionId::new(),
            &user,
            upload,
            &ObjectKey::upload(&user, upload),
            false,
        ))
        .unwrap();
        assert!(matches!(translate(&ours), Cow::Borrowed(_)));
        assert!(matches!(translate("not json"), Cow::Borrowed(_)));
        assert!(matches!(translate("[1]"), Cow::Borrowed(_)));
    }
}
