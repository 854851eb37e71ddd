//! The [`ObjectStore`] trait every store implements, what a listing says about an object,
//! and [`StorageError`].

use std::time::SystemTime;

use bytes::Bytes;
use tokio::io::AsyncRead;

/// What a listing says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Key relative to the store root (a `/`-separated path).
    pub key: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
    /// The ETag, when the listing carries one.
    pub etag: Option<String>,
}

/// A storage failure; `transient` ones are worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {key:?} does not exist (deleted after discovery?)")]
    NotFound { key: String },
    #[error("object {key:?}: {message}")]
    Failed {
        key: String,
        message: String,
        transient: bool,
    },
}

impl StorageError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StorageError::Failed { transient: true, .. })
    }
}

/// A boxed byte stream of a whole object.
pub type ObjectReader = Box<dyn AsyncRead + Send + Unpin>;

#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync {
    /// A stable name for the store (`file:///…`, `s3://bucket/prefix`).
    fn id(&self) -> String;
    /// Whether a listed object may still be changing: a local file still being written
    /// is picked up only once two listings agree (see the scanner). S3 objects appear whole.
    fn needs_settling(&self) -> bool;
    /// Every object, recursively.
    async fn list(&self) -> Result<Vec<ObjectMeta>, StorageError>;
    /// The version identity of a listed object (ETag, or content hash).
    async fn version(&self, meta: &ObjectMeta) -> Result<String, StorageError>;
    /// Streams the whole object.
    async fn open(&self, key: &str) -> Result<ObjectReader, StorageError>;
    /// Reads the half-open byte range `[start, end)`.
    async fn read_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes, StorageError>;
}
