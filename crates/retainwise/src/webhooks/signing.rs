//! Signing by the Standard Webhooks specification (<https://www.standardwebhooks.com/>, text at
//! <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>),
//! the scheme Svix uses: a delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature` = `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with
//! the base64-decoded part of the endpoint's `whsec_…` secret. Receivers verify it with any of
//! the specification's libraries.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of a secret as shown to its owner.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a new secret: the specification asks for 24 to 64; 32 is one SHA-256 block
/// of key material.
const SECRET_BYTES: usize = 32;

/// A fresh signing secret, `whsec_` + standard base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key of a `whsec_…` secret (the prefix is optional, as the specification's libraries
/// accept it).
///
/// Errors: the rest is not standard base64, or decodes to fewer than 24 bytes.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = STANDARD
        .decode(encoded)
        .map_err(|e| format!("the webhook secret is not `whsec_` + base64 ({e})"))?;
    if key.len() < 24 {
        return Err(format!(
            "the webhook secret decodes to {} bytes; at least 24 are needed",
            key.len()
        ));
    }
    Ok(key)
}

/// The `webhook-signature` header value for a delivery: `v1,` + base64(HMAC-SHA256(key,
/// `{id}.{timestamp}.{body}`)); `timestamp` in Unix seconds.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_test_vector() {
        // The specification's published example (also in the Svix libraries' tests).
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn new_secrets_decode_and_bad_ones_are_refused() {
        let secret = new_secret();
        assert!(secret.starts_with(SECRET_PREFIX), "{secret}");
        assert_eq!(decode_secret(&secret).unwrap().len(), SECRET_BYTES);
        assert_ne!(secret, new_secret());
        assert!(decode_secret("whsec_not base64!")
            .unwrap_err()
            .contains("base64"));
        assert!(decode_secret("whsec_c2hvcnQ=").unwrap_err().contains("24"));
    }
}
