//! The message attributes this backend puts on SQS messages, and reading them back.
//!
//! SQS keeps message attributes when its redrive policy moves a message to the DLQ, so a dead
//! message still carries its stable id (Amazon SQS Developer Guide, "Amazon SQS message
//! attributes": up to 10 per message, counted in the message size).

use crate::Priority;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use std::collections::HashMap;

/// The stable message id (UUID v7). SQS's own MessageId changes when redrive sends a new copy.
pub(super) const ID: &str = "RetainwiseId";
/// `normal` or `high`; informational only, SQS has no priority ordering.
pub(super) const PRIORITY: &str = "RetainwisePriority";
/// Present (`"1"`) when the body is empty: SQS requires at least one character, so an empty
/// body travels as [`EMPTY_PLACEHOLDER`].
pub(super) const EMPTY: &str = "RetainwiseEmptyBody";
const EMPTY_PLACEHOLDER: &str = "-";
/// On DLQ copies written by this library: the last error.
pub(super) const ERROR: &str = "RetainwiseError";
/// On DLQ copies: how many times it was received before it died.
pub(super) const RECEIVE_COUNT: &str = "RetainwiseReceiveCount";
/// On DLQ copies: the original SentTimestamp (epoch ms).
pub(super) const SENT_AT: &str = "RetainwiseSentAt";
/// On DLQ copies: when it was dead-lettered (epoch ms).
pub(super) const DEAD_AT: &str = "RetainwiseDeadAt";

/// Errors are truncated to this many bytes so a huge error cannot push the copy over the
/// message size limit.
const MAX_ERROR_BYTES: usize = 8 * 1024;

/// A `String` attribute value.
pub(super) fn string(value: impl Into<String>) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        // `build` fails only when data_type is missing, and it is set just above.
        .expect("data_type is set")
}

/// The body as sent on the wire (never empty).
pub(super) fn wire_body(body: &str) -> &str {
    if body.is_empty() {
        EMPTY_PLACEHOLDER
    } else {
        body
    }
}

/// The attributes of a message sent to the source queue.
pub(super) fn outgoing(
    id: &str,
    priority: Priority,
    body: &str,
) -> HashMap<String, MessageAttributeValue> {
    let mut attrs = HashMap::new();
    attrs.insert(ID.to_owned(), string(id));
    attrs.insert(PRIORITY.to_owned(), string(priority.as_str()));
    if body.is_empty() {
        attrs.insert(EMPTY.to_owned(), string("1"));
    }
    attrs
}

/// `error` cut at a character boundary to at most [`MAX_ERROR_BYTES`].
pub(super) fn truncate_error(error: &str) -> &str {
    let mut end = error.len().min(MAX_ERROR_BYTES);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    &error[..end]
}

/// A message attribute's string value.
pub(super) fn get<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.message_attributes
        .as_ref()?
        .get(name)?
        .string_value
        .as_deref()
}

/// A system attribute parsed as an integer (ApproximateReceiveCount, SentTimestamp).
pub(super) fn system_i64(m: &Message, name: MessageSystemAttributeName) -> Option<i64> {
    m.attributes.as_ref()?.get(&name)?.parse().ok()
}

/// The body as sent (undoing the empty-body placeholder).
pub(super) fn body(m: &Message) -> String {
    if get(m, EMPTY).is_some() {
        String::new()
    } else {
        m.body.clone().unwrap_or_default()
    }
}

/// The stable id, or SQS's MessageId for a message another producer sent.
pub(super) fn id(m: &Message) -> Option<String> {
    get(m, ID)
        .map(str::to_owned)
        .or_else(|| m.message_id.clone())
}

/// The priority attribute (normal when absent).
pub(super) fn priority(m: &Message) -> Priority {
    match get(m, PRIORITY) {
        Some("high") => Priority::High,
        _ => Priority::Normal,
    }
}
