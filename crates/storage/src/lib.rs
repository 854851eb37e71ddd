//! Object storage behind one small trait, [`ObjectStore`]: list, identify a version, stream
//! a whole object, read a byte range. Two implementations: [`LocalStore`] (a folder; the
//! embedded default) and [`S3Store`] (any S3-compatible server: path-style addressing and
//! plain http work, as MinIO needs).
//!
//! Version identity: the ETag on S3, a SHA-256 of the content for a local folder (mtimes lie,
//! hashes do not). Identical bytes re-dropped under the same key keep their identity.

mod local;
mod s3;
mod store;

pub use local::LocalStore;
pub use s3::S3Store;
pub use store::{ObjectMeta, ObjectReader, ObjectStore, StorageError, check_key};

/// Opens the store a configuration names.
pub async fn open(config: &penstock_config::Config) -> std::sync::Arc<dyn ObjectStore> {
    match &config.storage {
        penstock_config::StorageUrl::Local(path) => std::sync::Arc::new(LocalStore::new(path.clone())),
        penstock_config::StorageUrl::S3 { bucket, prefix } => {
            std::sync::Arc::new(S3Store::new(&config.s3, bucket.clone(), prefix.clone()).await)
        }
    }
}
