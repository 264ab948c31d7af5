//! One storage facade over `object_store`, the backend chosen from configuration (DESIGN §4).
//! Uploads and results move as streams, so memory stays flat whatever the file size.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, BackoffConfig, ObjectStore, PutPayload, RetryConfig, WriteMultipart,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::StorageLocation;
use crate::domain::ObjectKey;

mod direct;
pub use direct::{IncomingPart, StoredPart};

/// Size of each part sent by a streamed upload (5 MiB, S3's minimum part size).
const PART_SIZE: usize = 5 * 1024 * 1024;

/// How long one S3 request is retried inside the client before the caller sees the error.
///
/// object_store's default (10 retries within 3 minutes) hides an outage inside a single job
/// attempt: the worker holds its lease and a slot for up to minutes, nothing is counted, and an
/// upload request outlives the API's request timeout. Five seconds of retries (backoff from
/// 0.1 s, capped at 1 s, decorrelated jitter) ride out a blip such as a restart of the store;
/// anything longer is handed to the queue, whose retries are visible (receive count,
/// `retainwise_jobs_retried_total`, the message's last error) and end in the dead-letter queue,
/// from which `retainwise queue redrive` runs the job again. With the worker's defaults (retry
/// after 2 s doubling, full jitter; dead-letter at the third receive) a job rides out about
/// 15–20 s of outage. Found by the storage-outage drill (`tests/it/drills.rs`).
fn s3_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: std::time::Duration::from_millis(100),
            max_backoff: std::time::Duration::from_secs(1),
            base: 2.0,
        },
        max_retries: 10,
        retry_timeout: std::time::Duration::from_secs(5),
    }
}

/// Object storage for uploads, results, reports and models.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    root_url: String,
    /// The folder of the local backend (`None` on S3), for [`Storage::remove_abandoned_parts`].
    local_root: Option<std::path::PathBuf>,
    /// The S3 client and key prefix (`None` on local storage), for [`Storage::presigned_get`].
    s3: Option<(Arc<object_store::aws::AmazonS3>, Option<String>)>,
    /// The S3 region requests are signed for (empty on local storage).
    s3_region: String,
}

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist.
    #[error("object {0} not found")]
    NotFound(String),
    /// The backend failed (I/O, network, permissions); usually worth a retry.
    #[error("object storage: {0}")]
    Backend(#[from] object_store::Error),
    /// Local file I/O while streaming to or from storage.
    #[error("local file: {0}")]
    Io(#[from] std::io::Error),
    /// The caller's stream failed (e.g. the client broke off an upload).
    #[error("{0}")]
    Source(String),
}

impl Storage {
    /// Opens the configured store; a local folder is created if absent.
    ///
    /// Errors: the folder cannot be created or resolved.
    pub fn open(location: &StorageLocation) -> anyhow::Result<Self> {
        match location {
            StorageLocation::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(s3_retry());
                // The service-specific variable wins, as in the AWS SDKs, so S3 and SQS can live
                // on different endpoints.
                let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
                    .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                    .ok()
                    .filter(|e| !e.is_empty());
                if let Some(endpoint) = &endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                let region = builder
                    .get_config_value(&object_store::aws::AmazonS3ConfigKey::Region)
                    .unwrap_or_else(|| "us-east-1".to_owned());
                let signer = Arc::new(builder.build().context("configuring S3 storage")?);
                let s3: Arc<dyn ObjectStore> = signer.clone();
                let (store, root_url) = match prefix {
                    Some(prefix) => (
                        Arc::new(PrefixStore::new(s3, prefix.as_str())) as Arc<dyn ObjectStore>,
                        format!("s3://{bucket}/{prefix}"),
                    ),
                    None => (s3, format!("s3://{bucket}")),
                };
                Ok(Self {
                    store,
                    root_url,
                    local_root: None,
                    s3: Some((signer, prefix.clone())),
                    s3_region: region,
                })
            }
            StorageLocation::Local(dir) => {
                crate::config::create_private_dir(dir)
                    .with_context(|| format!("creating storage folder {}", dir.display()))?;
                let dir = dir
                    .canonicalize()
                    .with_context(|| format!("resolving {}", dir.display()))?;
                let store = LocalFileSystem::new_with_prefix(&dir)?;
                Ok(Self {
                    store: Arc::new(store),
                    root_url: format!("file://{}", dir.display()),
                    local_root: Some(dir),
                    s3: None,
                    s3_region: String::new(),
                })
            }
        }
    }

    /// Deletes the staged parts of local uploads that were never completed nor aborted (the
    /// process was killed mid-upload) and were last written more than `older_than` ago; returns
    /// how many were removed. object_store's local backend stages a multipart upload of `KEY`
    /// as the file `KEY#N` (N digits) and renames it into place on completion, so a SIGKILL
    /// leaves that file behind, invisible to listings but holding disk. On S3 this is the
    /// bucket's job: a lifecycle rule with `AbortIncompleteMultipartUpload` (AWS S3 user
    /// guide, "Configuring a bucket lifecycle configuration to delete incomplete multipart
    /// uploads"); here it returns 0.
    ///
    /// `older_than` must exceed the longest an upload may take (the request timeout), so that
    /// no upload in progress loses its part.
    ///
    /// # Errors
    /// [`StorageError::Io`] when the folder cannot be read; files that vanish meanwhile are
    /// skipped.
    pub async fn remove_abandoned_parts(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize, StorageError> {
        let Some(root) = self.local_root.clone() else {
            return Ok(0);
        };
        let removed = tokio::task::spawn_blocking(move || remove_parts_under(&root, older_than))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        Ok(removed)
    }

    /// The root as a URL, e.g. `file:///home/me/retainwise-data/objects`. Message object paths
    /// given as full URLs must start with it.
    pub fn root_url(&self) -> &str {
        &self.root_url
    }

    fn path(key: &ObjectKey) -> StorePath {
        StorePath::from(key.as_str())
    }

    /// The key's path in the bucket, with the configured prefix (for calls on the raw S3
    /// client, which does not see the prefix store).
    fn s3_path(&self, key: &ObjectKey) -> StorePath {
        match self.s3.as_ref().and_then(|(_, prefix)| prefix.as_ref()) {
            Some(prefix) => StorePath::from(format!("{}/{}", prefix.trim_matches('/'), key)),
            None => Self::path(key),
        }
    }

    /// Whether objects live in S3 (else in a local folder).
    pub fn is_s3(&self) -> bool {
        self.s3.is_some()
    }

    /// The object's size in bytes, or `None` when there is no object at `key` (one HEAD).
    pub async fn size_of(&self, key: &ObjectKey) -> Result<Option<u64>, StorageError> {
        match self.store.head(&Self::path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams `chunks` into `key` as a multipart upload; returns the bytes written. On a failing
    /// chunk the partial upload is aborted and nothing is left at `key`.
    pub async fn put_stream<S, E>(&self, key: &ObjectKey, chunks: S) -> Result<u64, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        self.put_stream_with(key, chunks, Attributes::new()).await
    }

    /// [`Storage::put_stream`] of a CSV for a browser to download as `filename`: stored with
    /// `Content-Type: text/csv` and `Content-Disposition: attachment`, which S3 answers a GET
    /// with (so a presigned link saves a file rather than showing text). S3 only: the local
    /// backend keeps no attributes and refuses them.
    pub async fn put_download_stream<S, E>(
        &self,
        key: &ObjectKey,
        chunks: S,
        filename: &str,
    ) -> Result<u64, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, "text/csv; charset=utf-8".into());
        attributes.insert(
            Attribute::ContentDisposition,
            format!("attachment; filename=\"{filename}\"").into(),
        );
        self.put_stream_with(key, chunks, attributes).await
    }

    async fn put_stream_with<S, E>(
        &self,
        key: &ObjectKey,
        chunks: S,
        attributes: Attributes,
    ) -> Result<u64, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let upload = self
            .store
            .put_multipart_opts(&Self::path(key), attributes.into())
            .await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut written = 0u64;
        futures::pin_mut!(chunks);
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => {
                    written += bytes.len() as u64;
                    if let Err(e) = writer.wait_for_capacity(8).await {
                        return Err(e.into());
                    }
                    writer.write(&bytes);
                }
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(StorageError::Source(e.to_string()));
                }
            }
        }
        writer.finish().await?;
        Ok(written)
    }

    /// Uploads a local file to `key`, streamed in parts.
    pub async fn put_file(&self, key: &ObjectKey, file: &Path) -> Result<u64, StorageError> {
        let file = tokio::fs::File::open(file).await?;
        let chunks = futures::stream::try_unfold(file, |mut file| async move {
            let mut buf = vec![0u8; 1024 * 1024];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            buf.truncate(n);
            Ok(Some((Bytes::from(buf), file)))
        });
        self.put_stream(key, chunks).await
    }

    /// Uploads a local file to `key` unless `key` already holds exactly these bytes; returns
    /// whether it wrote. A job run again after its result was stored (its worker was killed
    /// between the upload and the database update, or lost its lease) then leaves the stored
    /// object alone — no second version, no second object-created event — so each result is
    /// written once. Costs one HEAD per call, plus a read of the stored object when the sizes
    /// match.
    pub async fn put_file_if_changed(
        &self,
        key: &ObjectKey,
        file: &Path,
    ) -> Result<bool, StorageError> {
        if self.holds(key, file).await? {
            return Ok(false);
        }
        self.put_file(key, file).await?;
        Ok(true)
    }

    /// True when the object at `key` has exactly the bytes of the local `file`.
    async fn holds(&self, key: &ObjectKey, file: &Path) -> Result<bool, StorageError> {
        let len = tokio::fs::metadata(file).await?.len();
        match self.store.head(&Self::path(key)).await {
            Ok(meta) if meta.size == len => {}
            Ok(_) | Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let mut stored = self.get_stream(key).await?;
        let mut local = tokio::fs::File::open(file).await?;
        let mut buf = Vec::new();
        let mut seen = 0u64;
        while let Some(chunk) = stored.next().await {
            let chunk = chunk?;
            seen += chunk.len() as u64;
            if seen > len {
                return Ok(false);
            }
            buf.resize(chunk.len(), 0);
            local.read_exact(&mut buf).await?;
            if buf != chunk {
                return Ok(false);
            }
        }
        Ok(seen == len)
    }

    /// True when an object exists at `key`.
    pub async fn exists(&self, key: &ObjectKey) -> Result<bool, StorageError> {
        match self.store.head(&Self::path(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A presigned URL (AWS Signature Version 4 in the query string, AWS S3 user guide
    /// "Sharing objects with presigned URLs") that lets anyone GET the object at `key` for
    /// `expires_in`; `None` on local storage, which has no such URLs (see
    /// [`crate::download_link`]). Signing is local: no request is made.
    pub async fn presigned_get(
        &self,
        key: &ObjectKey,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>, StorageError> {
        let Some((s3, _)) = &self.s3 else {
            return Ok(None);
        };
        let path = self.s3_path(key);
        let url = s3
            .signed_url(reqwest::Method::GET, &path, expires_in)
            .await?;
        Ok(Some(url.to_string()))
    }

    /// Writes a small object in one request.
    pub async fn put_bytes(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.store
            .put(&Self::path(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// The object's bytes as a stream of chunks.
    pub async fn get_stream(
        &self,
        key: &ObjectKey,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        match self.store.get(&Self::path(key)).await {
            Ok(result) => Ok(result.into_stream().map_err(StorageError::from).boxed()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StorageError::NotFound(key.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The whole object in memory: for small objects only (model artifacts, reports).
    pub async fn get_bytes(&self, key: &ObjectKey) -> Result<Vec<u8>, StorageError> {
        let mut stream = self.get_stream(key).await?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// The bytes of each half-open byte range of the object, in the order given (object_store
    /// coalesces nearby ranges into one request). Used to read single rows of a large result.
    pub async fn get_ranges(
        &self,
        key: &ObjectKey,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<Bytes>, StorageError> {
        match self.store.get_ranges(&Self::path(key), ranges).await {
            Ok(parts) => Ok(parts),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StorageError::NotFound(key.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Copies the object into a local file; returns the bytes copied.
    pub async fn download_to(&self, key: &ObjectKey, file: &Path) -> Result<u64, StorageError> {
        let mut stream = self.get_stream(key).await?;
        let mut out = tokio::fs::File::create(file).await?;
        let mut copied = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            copied += chunk.len() as u64;
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        Ok(copied)
    }

    /// Copies bytes `range` (half-open, not empty) of the object into a local file, streamed (a
    /// range request on S3); returns the bytes copied. Reads one piece of a large upload.
    pub async fn download_range_to(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
        file: &Path,
    ) -> Result<u64, StorageError> {
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            ..Default::default()
        };
        let result = match self.store.get_opts(&Self::path(key), options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StorageError::NotFound(key.to_string()))
            }
            Err(e) => return Err(e.into()),
        };
        let mut stream = result.into_stream();
        let mut out = tokio::fs::File::create(file).await?;
        let mut copied = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            copied += chunk.len() as u64;
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        Ok(copied)
    }

    /// Copies the object at `from` to `to` (server-side on S3: CopyObject), replacing what is
    /// at `to`. False when there is no object at `from`.
    pub async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> Result<bool, StorageError> {
        match self.store.copy(&Self::path(from), &Self::path(to)).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        match self.store.delete(&Self::path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The keys of every object under `prefix` (a folder such as `results/org_1/`, a key's stem,
    /// or `""` for the whole store), relative to the store's root as every key is, in no
    /// particular order: what a deletion removes, what an erasure rewrites, and what their
    /// tests prove gone.
    /// Staged parts of local uploads in progress are not objects and are not listed.
    ///
    /// Errors: the backend's (one listing call per 1,000 keys on S3).
    pub async fn list_prefix(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let (folder, stem) = match prefix.rsplit_once('/') {
            Some((folder, stem)) => (Some(StorePath::from(folder)), stem),
            None => (None, prefix),
        };
        let mut listing = self.store.list(folder.as_ref());
        let mut keys = Vec::new();
        while let Some(item) = listing.next().await {
            let key = match item {
                Ok(meta) => meta.location.to_string(),
                // A folder that does not exist lists nothing.
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(e.into()),
            };
            let rest = match &folder {
                Some(f) => key
                    .strip_prefix(f.as_ref())
                    .and_then(|r| r.strip_prefix('/')),
                None => Some(key.as_str()),
            };
            // A local upload's staged parts are not objects.
            if rest.is_some_and(|r| r.starts_with(stem)) && !is_staged_part(&key) {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// Deletes every object under `prefix` ([`Storage::list_prefix`]); returns how many there
    /// were. Idempotent: a second call finds none.
    ///
    /// Errors: the backend's; the objects deleted before the error stay deleted.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let keys = self.list_prefix(prefix).await?;
        for key in &keys {
            match self.store.delete(&StorePath::from(key.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(keys.len() as u64)
    }

    /// Readiness probe: one cheap listing call against the backend.
    pub async fn check(&self) -> Result<(), StorageError> {
        let mut listing = self.store.list(None);
        if let Some(item) = listing.next().await {
            item?;
        }
        Ok(())
    }
}

/// Whether `name` is a staged part of object_store's local multipart upload: `…#` + digits.
fn is_staged_part(name: &str) -> bool {
    matches!(name.rsplit_once('#'), Some((_, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// [`Storage::remove_abandoned_parts`] on the folder tree under `dir`, blocking.
fn remove_parts_under(dir: &Path, older_than: std::time::Duration) -> std::io::Result<usize> {
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
                continue;
            }
            if !kind.is_file() || !is_staged_part(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let idle = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default());
            match idle {
                Ok(idle) if idle > older_than => match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                },
                _ => {}
            }
        }
    }
    Ok(removed)
}

/// True when `error` or one of its causes says the disk (or the owner's disk quota) is full:
/// an `io::Error` of kind `StorageFull` or `QuotaExceeded` (Linux `ENOSPC`, `EDQUOT`), or, for
/// a store that keeps only the text of its I/O error, that error's text (`No space left on
/// device`, `Disk quota exceeded`; strerror(3) on Linux).
pub fn is_storage_full(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) {
                return true;
            }
        }
        let text = e.to_string();
        if text.contains("No space left on device") || text.contains("Disk quota exceeded") {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_recognised_through_the_cause_chain() {
        let enospc = std::io::Error::from_raw_os_error(28);
        assert_eq!(enospc.kind(), std::io::ErrorKind::StorageFull);
        let wrapped = anyhow::Error::new(StorageError::Io(enospc)).context("object storage");
        assert!(is_storage_full(wrapped.as_ref()));
        let quota = StorageError::Io(std::io::Error::from_raw_os_error(122));
        assert!(is_storage_full(&quota));
        let text_only = StorageError::Source("write failed: No space left on device".to_owned());
        assert!(is_storage_full(&text_only));
        let denied = StorageError::Io(std::io::Error::from_raw_os_error(13));
        assert!(!is_storage_full(&denied));
    }
    use crate::domain::{OrgId, PredictionId};

    #[tokio::test]
    async fn a_file_already_stored_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&StorageLocation::Local(dir.path().join("objects"))).unwrap();
        let key = ObjectKey::result(&OrgId::local(), PredictionId::new());
        let file = dir.path().join("results.csv");
        std::fs::write(&file, b"customer_id,churn_probability\na,0.5\n").unwrap();
        assert!(storage.put_file_if_changed(&key, &file).await.unwrap());
        assert!(!storage.put_file_if_changed(&key, &file).await.unwrap());
        // Same size, other bytes: written.
        std::fs::write(&file, b"customer_id,churn_probability\nb,0.5\n").unwrap();
        assert!(storage.put_file_if_changed(&key, &file).await.unwrap());
        // Other size: written.
        std::fs::write(&file, b"customer_id\n").unwrap();
        assert!(storage.put_file_if_changed(&key, &file).await.unwrap());
        assert!(!storage.put_file_if_changed(&key, &file).await.unwrap());
    }

    /// An upload abandoned mid-way (the process killed: neither completed nor aborted) leaves
    /// object_store's staged part on disk; the sweep removes it once idle long enough, and
    /// leaves alone a part still being written and every real object.
    #[tokio::test]
    async fn parts_of_abandoned_uploads_are_removed_once_idle() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("objects");
        let storage = Storage::open(&StorageLocation::Local(root.clone())).unwrap();
        let key = ObjectKey::result(&OrgId::local(), PredictionId::new());
        let mut upload = storage
            .store
            .put_multipart(&Storage::path(&key))
            .await
            .unwrap();
        upload
            .put_part(PutPayload::from_static(b"half a file"))
            .await
            .unwrap();
        std::mem::forget(upload); // killed: no complete, no abort, no destructor
        let kept = ObjectKey::result(&OrgId::local(), PredictionId::new());
        let kept_file = dir.path().join("kept.csv");
        std::fs::write(&kept_file, b"a,b\n").unwrap();
        storage.put_file(&kept, &kept_file).await.unwrap();
        let parts = || {
            let mut found = Vec::new();
            let mut pending = vec![root.clone()];
            while let Some(d) = pending.pop() {
                for e in std::fs::read_dir(d).unwrap() {
                    let e = e.unwrap();
                    if e.file_type().unwrap().is_dir() {
                        pending.push(e.path());
                    } else if is_staged_part(&e.file_name().to_string_lossy()) {
                        found.push(e.path());
                    }
                }
            }
            found
        };
        let staged = parts();
        assert_eq!(staged.len(), 1, "the abandoned upload's part is on disk");
        // Still fresh: an upload in progress keeps its part.
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(storage.remove_abandoned_parts(hour).await.unwrap(), 0);
        let old = std::time::SystemTime::now() - 2 * hour;
        std::fs::File::options()
            .write(true)
            .open(&staged[0])
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(storage.remove_abandoned_parts(hour).await.unwrap(), 1);
        assert!(parts().is_empty());
        assert!(storage.get_bytes(&kept).await.is_ok(), "real objects stay");
        assert!(is_staged_part("x.csv#12") && !is_staged_part("a#b.csv") && !is_staged_part("x#"));
    }
}
