//! An end customer's identity inside an organisation's data: the organisation's secret salt,
//! the keyed hashes made with it (a stable pseudonym for masked exports, the erasure record's
//! hash), and masking of exports ([`mask`]).
//!
//! Both hashes are HMAC-SHA256 (RFC 2104) of the customer id, trimmed, with a 256-bit salt per
//! organisation kept in the database (`signing_keys`, name `customer-salt:{org}`, created on
//! first use and never changed), each under its own label so a pseudonym shown in an export
//! is not a prefix of the erasure record's hash. Without the salt neither can be matched to an
//! id by hashing guessed ids (customer ids are short and often sequential).

pub mod mask;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub use mask::Mask;

use crate::db::Db;
use crate::domain::OrgId;

/// The organisation's secret salt (32 bytes).
#[derive(Clone)]
pub struct Salt(Vec<u8>);

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(…)")
    }
}

impl Salt {
    /// `org`'s salt, created on first use (concurrent first uses agree on one: the insert
    /// keeps the first row).
    ///
    /// Errors: the database's.
    pub async fn of(db: &Db, org: &OrgId) -> Result<Salt, sqlx::Error> {
        let mut fresh = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh);
        let name = format!("customer-salt:{}", org.as_str());
        let stored = db
            .signing_secret(&name, &URL_SAFE_NO_PAD.encode(fresh))
            .await?;
        URL_SAFE_NO_PAD
            .decode(stored)
            .map(Salt)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }

    /// A salt from its bytes (tests, tools).
    pub fn from_bytes(bytes: Vec<u8>) -> Salt {
        Salt(bytes)
    }

    fn mac(&self, label: &str, customer_id: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(customer_id.trim().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The erasure record's hash of `customer_id` (trimmed): 64 lower-case hex digits.
    pub fn erasure_hash(&self, customer_id: &str) -> String {
        hex(&self.mac("erasure", customer_id))
    }

    /// The stable pseudonym of `customer_id` (trimmed) in a fully masked export: the first 10
    /// hex digits (40 bits) of its keyed hash, so rows of one customer still join across
    /// exports of the organisation. Collisions: about 1 pair in 10⁶ ids at 1.5 × 10⁶ ids
    /// (birthday bound, n²/2⁴¹).
    pub fn pseudonym(&self, customer_id: &str) -> String {
        hex(&self.mac("pseudonym", customer_id)[..5])
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_labelled_and_ignore_surrounding_space() {
        let a = Salt::from_bytes(vec![1; 32]);
        let b = Salt::from_bytes(vec![2; 32]);
        assert_eq!(a.erasure_hash("7590-VHVEG").len(), 64);
        assert_eq!(a.pseudonym("7590-VHVEG").len(), 10);
        assert_eq!(a.pseudonym("7590-VHVEG"), a.pseudonym(" 7590-VHVEG "));
        assert_ne!(a.pseudonym("7590-VHVEG"), b.pseudonym("7590-VHVEG"));
        assert!(!a
            .erasure_hash("7590-VHVEG")
            .starts_with(&a.pseudonym("7590-VHVEG")));
    }
}
