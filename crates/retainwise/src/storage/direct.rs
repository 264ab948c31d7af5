//! Where the bytes of a direct upload (`POST /api/uploads`) go before they become an upload
//! object, on each backend.
//!
//! - **S3**: the client sends the bytes to S3 itself, through presigned URLs (AWS Signature
//!   Version 4 in the query string, AWS S3 API reference "Authenticating Requests: Using Query
//!   Parameters"). The content length is signed too, so S3 refuses a body of any other size. A
//!   file in parts is an S3 multipart upload: created here, each part a presigned `UploadPart`
//!   URL, the parts present read back with `ListParts`, assembled with
//!   `CompleteMultipartUpload`, given up with `AbortMultipartUpload`.
//! - **Local folder**: the API receives the bytes itself; part `n` of upload key `K` is the file
//!   `incoming/K/n` under the objects folder, written under a temporary name and renamed once
//!   complete and synced, so a part is either wholly present or absent and a resent part
//!   replaces the old one atomically. Assembly streams the parts in order into the upload
//!   object (hashing on the way) through the ordinary streamed put.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::signer::Signer;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{Storage, StorageError};
use crate::domain::ObjectKey;

/// A part of an S3 multipart upload as `ListParts` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    /// 1-based part number.
    pub number: u32,
    /// Bytes in the part.
    pub size: u64,
    /// Its entity tag, needed to complete the upload.
    pub etag: String,
}

/// A part of a local direct upload present in the incoming folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingPart {
    /// 1-based part number.
    pub number: u32,
    /// Bytes in the part.
    pub size: u64,
}

fn other(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(object_store::Error::Generic {
        store: "S3",
        source: e.to_string().into(),
    })
}

impl Storage {
    /// Starts an S3 multipart upload at `key`; returns its upload id.
    ///
    /// # Errors
    /// [`StorageError::Backend`] from S3; on local storage there is nothing to start (an error).
    pub async fn create_multipart(&self, key: &ObjectKey) -> Result<String, StorageError> {
        let (s3, _) = self.s3.as_ref().ok_or_else(|| other("not S3 storage"))?;
        Ok(s3.create_multipart(&self.s3_path(key)).await?)
    }

    /// A presigned URL to `PUT` exactly `content_length` bytes to `key` (the whole object), or
    /// with `multipart` = (upload id, part number) to upload that part. Valid for `expires_in`
    /// (SigV4 allows at most 7 days; with temporary credentials, no longer than they last).
    /// Signing is local: no request is made.
    ///
    /// # Errors
    /// [`StorageError::Backend`] when the credentials cannot be loaded or the request signed.
    pub async fn presigned_put(
        &self,
        key: &ObjectKey,
        multipart: Option<(&str, u32)>,
        content_length: u64,
        expires_in: Duration,
    ) -> Result<String, StorageError> {
        let mut url = self.object_url(key).await?;
        if let Some((upload, part)) = multipart {
            url.query_pairs_mut()
                .append_pair("partNumber", &part.to_string())
                .append_pair("uploadId", upload);
        }
        self.presign("PUT", url, Some(content_length), expires_in)
            .await
    }

    /// The parts S3 holds of multipart upload `upload` at `key`, by part number; `None` when
    /// the upload no longer exists (completed or aborted).
    ///
    /// # Errors
    /// [`StorageError::Backend`] from S3 or an answer that cannot be read.
    pub async fn list_parts(
        &self,
        key: &ObjectKey,
        upload: &str,
    ) -> Result<Option<Vec<StoredPart>>, StorageError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct ListPartsResult {
            #[serde(default)]
            is_truncated: bool,
            next_part_number_marker: Option<u32>,
            #[serde(default, rename = "Part")]
            parts: Vec<XmlPart>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct XmlPart {
            part_number: u32,
            #[serde(rename = "ETag")]
            etag: String,
            size: u64,
        }
        let client = reqwest::Client::new();
        let mut parts = Vec::new();
        let mut marker = None::<u32>;
        loop {
            let mut url = self.object_url(key).await?;
            url.query_pairs_mut().append_pair("uploadId", upload);
            if let Some(m) = marker {
                url.query_pairs_mut()
                    .append_pair("part-number-marker", &m.to_string());
            }
            let signed = self
                .presign("GET", url, None, Duration::from_secs(60))
                .await?;
            let response = client.get(signed).send().await.map_err(other)?;
            let status = response.status();
            let body = response.text().await.map_err(other)?;
            if status == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(other(format!("ListParts answered {status}: {body}")));
            }
            let page: ListPartsResult = quick_xml::de::from_str(&body).map_err(other)?;
            parts.extend(page.parts.into_iter().map(|p| StoredPart {
                number: p.part_number,
                size: p.size,
                etag: p.etag,
            }));
            match (page.is_truncated, page.next_part_number_marker) {
                (true, Some(next)) => marker = Some(next),
                _ => return Ok(Some(parts)),
            }
        }
    }

    /// Assembles multipart upload `upload` at `key` from `etags`, the entity tags of parts
    /// 1, 2, … in order.
    ///
    /// # Errors
    /// [`StorageError::Backend`] from S3 (e.g. a part smaller than 5 MiB but the last).
    pub async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload: &str,
        etags: Vec<String>,
    ) -> Result<(), StorageError> {
        let (s3, _) = self.s3.as_ref().ok_or_else(|| other("not S3 storage"))?;
        let parts = etags
            .into_iter()
            .map(|content_id| PartId { content_id })
            .collect();
        s3.complete_multipart(&self.s3_path(key), &upload.to_owned(), parts)
            .await?;
        Ok(())
    }

    /// Gives up multipart upload `upload` at `key`, freeing its parts; one already gone is not
    /// an error.
    ///
    /// # Errors
    /// [`StorageError::Backend`] from S3.
    pub async fn abort_multipart(&self, key: &ObjectKey, upload: &str) -> Result<(), StorageError> {
        let (s3, _) = self.s3.as_ref().ok_or_else(|| other("not S3 storage"))?;
        match s3
            .abort_multipart(&self.s3_path(key), &upload.to_owned())
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The SHA-256 and length of the object at `key`, read as a stream.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] or the backend's error.
    pub async fn sha256_of(&self, key: &ObjectKey) -> Result<([u8; 32], u64), StorageError> {
        let mut stream = self.get_stream(key).await?;
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            len += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((hasher.finalize().into(), len))
    }

    /// The origin (`scheme://host[:port]`) a browser sends the parts of a direct upload to on
    /// S3; `None` on local storage (the API's own origin).
    ///
    /// # Errors
    /// [`StorageError::Backend`] when the credentials cannot be loaded.
    pub async fn direct_origin(&self) -> Result<Option<String>, StorageError> {
        if self.s3.is_none() {
            return Ok(None);
        }
        let probe = ObjectKey::model(&"probe-0".parse().map_err(|_| other("model id"))?);
        let url = self.object_url(&probe).await?;
        Ok(Some(url.origin().ascii_serialization()))
    }

    /// The object's URL without a query (endpoint, bucket and path style as object_store
    /// addresses it), taken from a URL it signs.
    async fn object_url(&self, key: &ObjectKey) -> Result<reqwest::Url, StorageError> {
        let (s3, _) = self.s3.as_ref().ok_or_else(|| other("not S3 storage"))?;
        let mut url = s3
            .signed_url(
                reqwest::Method::PUT,
                &self.s3_path(key),
                Duration::from_secs(1),
            )
            .await?;
        url.set_query(None);
        Ok(url)
    }

    /// `url` with a SigV4 query-string signature for `method`, the content length signed when
    /// given.
    async fn presign(
        &self,
        method: &str,
        mut url: reqwest::Url,
        content_length: Option<u64>,
        expires_in: Duration,
    ) -> Result<String, StorageError> {
        use aws_sigv4::http_request::{
            sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
            SigningSettings, UriPathNormalizationMode,
        };
        let (s3, _) = self.s3.as_ref().ok_or_else(|| other("not S3 storage"))?;
        let credential = s3.credentials().get_credential().await?;
        let identity = aws_credential_types::Credentials::new(
            credential.key_id.clone(),
            credential.secret_key.clone(),
            credential.token.clone(),
            None,
            "retainwise",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires_in);
        // S3 encodes the path once and does not normalise it (AWS S3 API reference,
        // "Signature Calculations for the Authorization Header").
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.s3_region)
            .name("s3")
            .time(std::time::SystemTime::now())
            .settings(settings)
            .build()
            .map_err(other)?
            .into();
        let length = content_length.map(|n| n.to_string());
        let headers = length.iter().map(|l| ("content-length", l.as_str()));
        let request = SignableRequest::new(
            method,
            url.as_str().to_owned(),
            headers,
            SignableBody::UnsignedPayload,
        )
        .map_err(other)?;
        let (instructions, _) = sign(request, &params).map_err(other)?.into_parts();
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in instructions.params() {
                query.append_pair(name, value);
            }
        }
        Ok(url.to_string())
    }

    /// The folder of a local direct upload's parts, `incoming/{key}/` under the objects folder.
    fn incoming_dir(&self, key: &ObjectKey) -> Result<PathBuf, StorageError> {
        let root = self
            .local_root
            .as_ref()
            .ok_or_else(|| other("not local storage"))?;
        Ok(root.join("incoming").join(key.as_str()))
    }

    /// Writes part `number` of the local direct upload whose object will be `key` from
    /// `chunks`; returns the bytes received. The part is kept (replacing any earlier copy) only
    /// when exactly `expected` bytes arrived; otherwise nothing changes and the count tells the
    /// caller what came. Memory stays at one chunk.
    ///
    /// # Errors
    /// [`StorageError::Source`] when the stream fails (the client broke off; nothing is kept),
    /// [`StorageError::Io`] for the disk.
    pub async fn write_incoming_part<S, E>(
        &self,
        key: &ObjectKey,
        number: u32,
        expected: u64,
        chunks: S,
    ) -> Result<u64, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let dir = self.incoming_dir(key)?;
        crate::config::create_private_dir(&dir)?;
        let temp = dir.join(format!(
            "{number}.writing.{}",
            uuid::Uuid::new_v4().simple()
        ));
        let result = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            let mut written = 0u64;
            futures::pin_mut!(chunks);
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| StorageError::Source(e.to_string()))?;
                written += chunk.len() as u64;
                file.write_all(&chunk).await?;
            }
            if written == expected {
                file.sync_all().await?;
                tokio::fs::rename(&temp, dir.join(number.to_string())).await?;
            }
            Ok::<_, StorageError>(written)
        }
        .await;
        if !matches!(result, Ok(n) if n == expected) {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }

    /// The parts of the local direct upload `key` that are present, by number.
    ///
    /// # Errors
    /// [`StorageError::Io`] when the folder cannot be read.
    pub async fn incoming_parts(
        &self,
        key: &ObjectKey,
    ) -> Result<BTreeMap<u32, IncomingPart>, StorageError> {
        let dir = self.incoming_dir(key)?;
        let mut found = BTreeMap::new();
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e.into()),
        };
        while let Some(entry) = entries.next_entry().await? {
            let Ok(number) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let size = entry.metadata().await?.len();
            found.insert(number, IncomingPart { number, size });
        }
        Ok(found)
    }

    /// Streams parts 1..=`parts` of the local direct upload `key` into the object at `key`;
    /// returns the SHA-256 and the length of what was stored. The object appears whole or not
    /// at all; the parts stay until [`Storage::remove_incoming`].
    ///
    /// # Errors
    /// [`StorageError::Io`] for a missing part or the disk.
    pub async fn assemble_incoming(
        &self,
        key: &ObjectKey,
        parts: u32,
    ) -> Result<([u8; 32], u64), StorageError> {
        let dir = self.incoming_dir(key)?;
        let hasher = Arc::new(Mutex::new(Sha256::new()));
        let files = futures::stream::iter(1..=parts)
            .then(move |n| {
                let path = dir.join(n.to_string());
                async move { tokio::fs::File::open(path).await }
            })
            .map(|file| match file {
                Ok(file) => tokio_util::io::ReaderStream::with_capacity(file, 1024 * 1024).boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten()
            .map({
                let hasher = hasher.clone();
                move |chunk| {
                    if let Ok(bytes) = &chunk {
                        hasher.lock().expect("hasher lock").update(bytes);
                    }
                    chunk
                }
            });
        let len = self.put_stream(key, files).await?;
        let digest = std::mem::take(&mut *hasher.lock().expect("hasher lock")).finalize();
        Ok((digest.into(), len))
    }

    /// Removes the parts of the local direct upload `key` (nothing on S3, or when none).
    ///
    /// # Errors
    /// [`StorageError::Io`] when the folder cannot be removed.
    pub async fn remove_incoming(&self, key: &ObjectKey) -> Result<(), StorageError> {
        if self.local_root.is_none() {
            return Ok(());
        }
        match tokio::fs::remove_dir_all(self.incoming_dir(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
