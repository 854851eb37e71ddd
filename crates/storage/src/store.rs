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
    /// What else moves when the bytes change, besides size and mtime: a local file's inode
    /// and ctime (`cp -p`, `rsync -a` and some sync tools keep the mtime, but a rewrite in
    /// place moves the ctime and a rename brings another inode). None on S3 (the ETag is it).
    pub change: Option<String>,
}

/// A storage failure; `transient` ones are worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {key:?} does not exist (deleted after discovery?)")]
    NotFound { key: String },
    /// A key that could name something outside the store (never retried).
    #[error("object key {key:?} refused: {reason}")]
    Refused { key: String, reason: String },
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

/// Refuses a key that could name something outside the store it is read from: empty, with
/// a NUL, absolute (a leading `/`), or with a `.` or `..` segment. Keys come from listings,
/// S3 events and work items; a forged work item must not make a worker read any file.
pub fn check_key(key: &str) -> Result<(), StorageError> {
    let refuse = |reason: &str| {
        Err(StorageError::Refused {
            key: key.into(),
            reason: reason.into(),
        })
    };
    if key.is_empty() {
        return refuse("it is empty");
    }
    if key.contains('\0') {
        return refuse("it contains a NUL byte");
    }
    if key.starts_with('/') {
        return refuse("it is an absolute path; keys are relative to the store's root");
    }
    if key.split('/').any(|segment| segment == ".." || segment == ".") {
        return refuse("it has a `.` or `..` segment, which could leave the store's root");
    }
    Ok(())
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
    /// Streams the object only if it is still `version` (what [`ObjectStore::version`]
    /// said): a store that can make the read conditional (S3: `If-Match` on the ETag) refuses
    /// other bytes with a permanent error saying the object changed. By default the read is
    /// plain, and the caller's own checks (the whole file's hash, each chunk's checksum) tell.
    async fn open_version(&self, key: &str, _version: &str) -> Result<ObjectReader, StorageError> {
        self.open(key).await
    }
    /// Reads `[start, end)` only if the object is still `version` (see
    /// [`ObjectStore::open_version`]).
    async fn read_range_of(&self, key: &str, _version: &str, start: u64, end: u64) -> Result<Bytes, StorageError> {
        self.read_range(key, start, end).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_leave_the_store_are_refused_with_why() {
        for (key, why) in [
            ("", "empty"),
            ("egrid/a\0.csv", "NUL"),
            ("/etc/passwd", "absolute"),
            ("../secret.csv", "`..`"),
            ("egrid/../../secret.csv", "`..`"),
            ("egrid/./a.csv", "`.`"),
        ] {
            let err = check_key(key).unwrap_err().to_string();
            assert!(err.contains("refused") && err.contains(why), "{key:?}: {err}");
        }
    }

    #[test]
    fn ordinary_keys_pass_dots_inside_names_included() {
        for key in [
            "a.csv",
            "egrid/generators/egrid2023_gen.csv",
            "x/..hidden/y..csv",
            "v1.2/a.b.csv",
        ] {
            check_key(key).unwrap();
        }
    }
}
