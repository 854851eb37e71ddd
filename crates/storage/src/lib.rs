//! Object storage behind one small trait, [`ObjectStore`]: list, identify a version, stream
//! a whole object, read a byte range. Two implementations: [`LocalStore`] (a folder; the
//! embedded default) and [`S3Store`] (any S3-compatible server: path-style addressing and
//! plain http work, as MinIO needs).
//!
//! Version identity: the ETag on S3, a SHA-256 of the content for a local folder (mtimes lie,
//! hashes do not). Identical bytes re-dropped under the same key keep their identity.

mod local;
mod s3;

use std::time::SystemTime;

use bytes::Bytes;
use tokio::io::AsyncRead;

pub use local::LocalStore;
pub use s3::S3Store;

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

/// Opens the store a configuration names.
pub async fn open(config: &penstock_config::Config) -> std::sync::Arc<dyn ObjectStore> {
    match &config.storage {
        penstock_config::StorageUrl::Local(path) => std::sync::Arc::new(LocalStore::new(path.clone())),
        penstock_config::StorageUrl::S3 { bucket, prefix } => {
            std::sync::Arc::new(S3Store::new(&config.s3, bucket.clone(), prefix.clone()).await)
        }
    }
}
