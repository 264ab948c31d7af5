//! Expiring download links for results on local storage, the counterpart of an S3 presigned
//! URL: `GET /api/downloads/{prediction}?user=…&expires=…&signature=…` needs no credentials,
//! only a signature that this server made, so a browser can follow it from another origin (the
//! original service's frontend opens the link it is given).
//!
//! The signature is HMAC-SHA256 (RFC 2104) over the prediction id, the expiry (Unix seconds)
//! and the user id, with a 256-bit secret kept in the database (`signing_keys`), so every
//! process on one database accepts the links of the others. The user id is signed and carried
//! in the link so the download is still a query scoped by its owner.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::db::Db;
use crate::domain::{OrgId, PredictionId, UploadId};

/// How long a link works: 10 minutes, as the original's presigned S3 URLs.
pub const LINK_LIFETIME: Duration = Duration::from_secs(600);

/// Name of the secret in `signing_keys`.
const SECRET_NAME: &str = "download-links";

/// Why a link was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    /// The expiry has passed.
    #[error("this download link expired; ask for a new one")]
    Expired,
    /// The signature does not match (altered or foreign link).
    #[error("this download link is not valid")]
    Invalid,
}

/// Signs and checks download links with the database's secret (loaded once).
#[derive(Default)]
pub struct DownloadLinks {
    secret: OnceCell<Vec<u8>>,
}

impl DownloadLinks {
    async fn secret(&self, db: &Db) -> Result<&[u8], sqlx::Error> {
        let secret = self
            .secret
            .get_or_try_init(|| async {
                let mut fresh = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut fresh);
                let stored = db
                    .signing_secret(SECRET_NAME, &URL_SAFE_NO_PAD.encode(fresh))
                    .await?;
                URL_SAFE_NO_PAD
                    .decode(stored)
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))
            })
            .await?;
        Ok(secret)
    }

    /// The query string (`user=…&expires=…&signature=…`) of a link to `prediction`'s results
    /// for `user`, valid for [`LINK_LIFETIME`] from now.
    ///
    /// Errors: the database (the secret is read or created on first use).
    pub async fn query(
        &self,
        db: &Db,
        user: &OrgId,
        prediction: PredictionId,
    ) -> Result<String, sqlx::Error> {
        let expires = unix_now() + LINK_LIFETIME.as_secs();
        let signature = sign(self.secret(db).await?, user, prediction, expires);
        Ok(format!(
            "user={}&expires={expires}&signature={signature}",
            percent_encode(user.as_str())
        ))
    }

    /// The query string (`user=…&expires=…&signature=…`) that lets the bytes of `user`'s
    /// direct upload `upload` be sent (`PUT /api/uploads/{id}`, `…/parts/{n}`) without other
    /// credentials until `expires` (Unix seconds): the local storage's counterpart of S3's
    /// presigned PUT. Signed apart from download links, so neither can stand for the other.
    ///
    /// Errors: the database (the secret is read or created on first use).
    pub async fn upload_query(
        &self,
        db: &Db,
        user: &OrgId,
        upload: UploadId,
        expires: u64,
    ) -> Result<String, sqlx::Error> {
        let secret = self.secret(db).await?;
        let signature = sign_any(secret, UPLOAD_LABEL, &upload.to_string(), user, expires);
        Ok(format!(
            "user={}&expires={expires}&signature={signature}",
            percent_encode(user.as_str())
        ))
    }

    /// Checks an upload link's `expires` and `signature` for `user` and `upload`.
    ///
    /// Errors: [`LinkError`] inside `Ok` for a refused link; the database as `Err`.
    pub async fn check_upload(
        &self,
        db: &Db,
        user: &OrgId,
        upload: UploadId,
        expires: u64,
        signature: &str,
    ) -> Result<Result<(), LinkError>, sqlx::Error> {
        let secret = self.secret(db).await?;
        Ok(verify_any(
            secret,
            UPLOAD_LABEL,
            &upload.to_string(),
            user,
            expires,
            signature,
            unix_now(),
        ))
    }

    /// Checks a link's `expires` and `signature` for `user` and `prediction`.
    ///
    /// Errors: [`LinkError`] inside `Ok` for a refused link; the database as `Err`.
    pub async fn check(
        &self,
        db: &Db,
        user: &OrgId,
        prediction: PredictionId,
        expires: u64,
        signature: &str,
    ) -> Result<Result<(), LinkError>, sqlx::Error> {
        let secret = self.secret(db).await?;
        Ok(verify(
            secret,
            user,
            prediction,
            expires,
            signature,
            unix_now(),
        ))
    }
}

/// Now in Unix seconds (the project's clock, [`crate::time::now_ms`]).
fn unix_now() -> u64 {
    u64::try_from(crate::time::now_ms() / 1000).unwrap_or(0)
}

/// What a download link signs for: the first line of its MAC input.
const DOWNLOAD_LABEL: &str = "retainwise-download-v1";
/// What an upload link signs for.
const UPLOAD_LABEL: &str = "retainwise-upload-v1";

fn mac(secret: &[u8], label: &str, id: &str, user: &OrgId, expires: u64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    // The label, the id and the number have fixed alphabets without '\n'; the user id comes last.
    mac.update(format!("{label}\n{id}\n{expires}\n").as_bytes());
    mac.update(user.as_str().as_bytes());
    mac
}

fn sign(secret: &[u8], user: &OrgId, prediction: PredictionId, expires: u64) -> String {
    sign_any(
        secret,
        DOWNLOAD_LABEL,
        &prediction.to_string(),
        user,
        expires,
    )
}

fn sign_any(secret: &[u8], label: &str, id: &str, user: &OrgId, expires: u64) -> String {
    URL_SAFE_NO_PAD.encode(
        mac(secret, label, id, user, expires)
            .finalize()
            .into_bytes(),
    )
}

fn verify(
    secret: &[u8],
    user: &OrgId,
    prediction: PredictionId,
    expires: u64,
    signature: &str,
    now: u64,
) -> Result<(), LinkError> {
    verify_any(
        secret,
        DOWNLOAD_LABEL,
        &prediction.to_string(),
        user,
        expires,
        signature,
        now,
    )
}

fn verify_any(
    secret: &[u8],
    label: &str,
    id: &str,
    user: &OrgId,
    expires: u64,
    signature: &str,
    now: u64,
) -> Result<(), LinkError> {
    let given = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| LinkError::Invalid)?;
    // Constant-time comparison (hmac's verify_slice).
    mac(secret, label, id, user, expires)
        .verify_slice(&given)
        .map_err(|_| LinkError::Invalid)?;
    if now > expires {
        return Err(LinkError::Expired);
    }
    Ok(())
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_refuses_changes() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let user: OrgId = "user_2abc".parse().unwrap();
        let other: OrgId = "user_2abd".parse().unwrap();
        let id = PredictionId::new();
        let sig = sign(secret, &user, id, 1_000);
        assert_eq!(verify(secret, &user, id, 1_000, &sig, 999), Ok(()));
        assert_eq!(verify(secret, &user, id, 1_000, &sig, 1_000), Ok(()));
        assert_eq!(
            verify(secret, &user, id, 1_000, &sig, 1_001),
            Err(LinkError::Expired)
        );
        assert_eq!(
            verify(secret, &user, id, 2_000, &sig, 999),
            Err(LinkError::Invalid),
            "a later expiry is not signed"
        );
        assert_eq!(
            verify(secret, &other, id, 1_000, &sig, 999),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            verify(secret, &user, PredictionId::new(), 1_000, &sig, 999),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            verify(b"another secret", &user, id, 1_000, &sig, 999),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            verify(secret, &user, id, 1_000, "not base64!", 999),
            Err(LinkError::Invalid)
        );
    }

    /// An upload URL's signature does not pass as a download link's for the same id, expiry
    /// and user, nor the reverse.
    #[test]
    fn upload_and_download_signatures_are_apart() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let user: OrgId = "user_2abc".parse().unwrap();
        let id = PredictionId::new();
        let upload = sign_any(secret, UPLOAD_LABEL, &id.to_string(), &user, 1_000);
        assert_eq!(
            verify(secret, &user, id, 1_000, &upload, 999),
            Err(LinkError::Invalid)
        );
        let download = sign(secret, &user, id, 1_000);
        assert_eq!(
            verify_any(
                secret,
                UPLOAD_LABEL,
                &id.to_string(),
                &user,
                1_000,
                &download,
                999
            ),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            verify_any(
                secret,
                UPLOAD_LABEL,
                &id.to_string(),
                &user,
                1_000,
                &upload,
                999
            ),
            Ok(())
        );
    }

    #[test]
    fn encodes_user_ids_for_a_query() {
        assert_eq!(percent_encode("user_2Ab-c.~"), "user_2Ab-c.~");
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
