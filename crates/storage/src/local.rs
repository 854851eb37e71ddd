//! A local folder as an object store. Keys are paths relative to the root with `/`
//! separators. Hidden files and the usual partial-download names (`.tmp`, `.part`,
//! `.crdownload`, `~`) are skipped: they are files being written, not drops.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::store::{ObjectMeta, ObjectReader, ObjectStore, StorageError, check_key};

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        resolve(&self.root, key)
    }
}

/// The file a key names under `root`, refused if the key or a symlink on the way leads
/// outside the root (the root itself may be a symlink).
fn resolve(root: &Path, key: &str) -> Result<PathBuf, StorageError> {
    check_key(key)?;
    let root = std::fs::canonicalize(root).map_err(|e| io_error(key, e))?;
    let real = std::fs::canonicalize(root.join(key)).map_err(|e| io_error(key, e))?;
    if !real.starts_with(&root) {
        return Err(StorageError::Refused {
            key: key.into(),
            reason: format!(
                "it resolves to {} (through a symlink), outside the store's root {}",
                real.display(),
                root.display()
            ),
        });
    }
    Ok(real)
}

fn io_error(key: &str, e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound { key: key.into() }
    } else {
        StorageError::Failed {
            key: key.into(),
            message: e.to_string(),
            transient: false,
        }
    }
}

fn skipped(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [".tmp", ".part", ".crdownload", ".partial"]
            .iter()
            .any(|s| name.ends_with(s))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<ObjectMeta>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if skipped(&name) {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &entry.path(), out)?;
        } else if kind.is_file() {
            // A file can vanish between read_dir and metadata: skip it this time.
            let Ok(meta) = entry.metadata() else { continue };
            let rel = entry
                .path()
                .strip_prefix(root)
                .expect("walked under root")
                .to_path_buf();
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            use std::os::unix::fs::MetadataExt;
            out.push(ObjectMeta {
                key,
                size: meta.len(),
                modified: meta.modified().ok(),
                etag: None,
                change: Some(format!(
                    "ino {} ctime {}.{:09}",
                    meta.ino(),
                    meta.ctime(),
                    meta.ctime_nsec()
                )),
            });
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl ObjectStore for LocalStore {
    fn id(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn needs_settling(&self) -> bool {
        true
    }

    async fn list(&self) -> Result<Vec<ObjectMeta>, StorageError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &root, &mut out).map_err(|e| io_error(&root.display().to_string(), e))?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .expect("listing task does not panic")
    }

    async fn version(&self, meta: &ObjectMeta) -> Result<String, StorageError> {
        let (root, key) = (self.root.clone(), meta.key.clone());
        tokio::task::spawn_blocking(move || {
            let path = resolve(&root, &key)?;
            let mut file = std::fs::File::open(&path).map_err(|e| io_error(&key, e))?;
            let mut hasher = Sha256::new();
            std::io::copy(&mut file, &mut hasher).map_err(|e| io_error(&key, e))?;
            Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
        })
        .await
        .expect("hashing task does not panic")
    }

    async fn open(&self, key: &str) -> Result<ObjectReader, StorageError> {
        let file = tokio::fs::File::open(self.path(key)?)
            .await
            .map_err(|e| io_error(key, e))?;
        Ok(Box::new(tokio::io::BufReader::with_capacity(1 << 16, file)))
    }

    async fn read_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes, StorageError> {
        let mut file = tokio::fs::File::open(self.path(key)?)
            .await
            .map_err(|e| io_error(key, e))?;
        file.seek(SeekFrom::Start(start)).await.map_err(|e| io_error(key, e))?;
        let mut buf = vec![0; (end - start) as usize];
        file.read_exact(&mut buf).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => StorageError::Failed {
                key: key.into(),
                message: format!("is shorter than byte {end}: it changed after it was discovered"),
                transient: false,
            },
            _ => io_error(key, e),
        })?;
        Ok(Bytes::from(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listing_is_recursive_sorted_and_skips_partial_and_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("egrid/generators")).unwrap();
        std::fs::write(dir.path().join("egrid/generators/b.csv"), "x").unwrap();
        std::fs::write(dir.path().join("a.csv"), "yy").unwrap();
        std::fs::write(dir.path().join(".hidden.csv"), "z").unwrap();
        std::fs::write(dir.path().join("upload.csv.part"), "z").unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        let keys: Vec<(String, u64)> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.key, m.size))
            .collect();
        assert_eq!(keys, vec![("a.csv".into(), 2), ("egrid/generators/b.csv".into(), 1)]);
    }

    #[tokio::test]
    async fn a_missing_root_lists_as_empty() {
        let store = LocalStore::new("/nonexistent/penstock-root".into());
        assert!(store.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_version_is_the_content_hash_so_identical_bytes_keep_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        std::fs::write(dir.path().join("f.csv"), "abc").unwrap();
        let meta = store.list().await.unwrap().remove(0);
        let v1 = store.version(&meta).await.unwrap();
        assert_eq!(
            v1,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::write(dir.path().join("f.csv"), "abc").unwrap();
        assert_eq!(store.version(&meta).await.unwrap(), v1);
        std::fs::write(dir.path().join("f.csv"), "abd").unwrap();
        assert_ne!(store.version(&meta).await.unwrap(), v1);
    }

    #[tokio::test]
    async fn a_range_read_returns_exactly_the_range() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.csv"), "0123456789").unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        assert_eq!(&store.read_range("f.csv", 2, 5).await.unwrap()[..], b"234");
        let err = store.read_range("f.csv", 8, 20).await.unwrap_err().to_string();
        assert!(err.contains("changed after it was discovered"), "{err}");
        assert!(matches!(
            store.read_range("gone.csv", 0, 1).await,
            Err(StorageError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_key_that_leaves_the_root_is_refused_before_anything_is_read() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.csv"), "password\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("inbox");
        std::fs::create_dir_all(root.join("egrid")).unwrap();
        let store = LocalStore::new(root.clone());
        let escape = format!("../../{}/secret.csv", outside.path().display());
        for key in [escape.as_str(), "../secret.csv", "/etc/passwd", "egrid/\0x"] {
            let err = store.read_range(key, 0, 4).await.unwrap_err();
            assert!(matches!(err, StorageError::Refused { .. }), "{key:?}: {err}");
            assert!(store.open(key).await.is_err(), "{key:?}");
        }
        // A symlink inside the root that points outside it.
        std::os::unix::fs::symlink(outside.path().join("secret.csv"), root.join("egrid/link.csv")).unwrap();
        let err = store.read_range("egrid/link.csv", 0, 4).await.unwrap_err();
        assert!(err.to_string().contains("outside the store's root"), "{err}");
        let meta = ObjectMeta {
            key: "egrid/link.csv".into(),
            size: 9,
            modified: None,
            etag: None,
            change: None,
        };
        assert!(matches!(store.version(&meta).await, Err(StorageError::Refused { .. })));
    }

    #[tokio::test]
    async fn symlinks_that_stay_inside_the_root_are_followed_even_when_the_root_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir_all(real.join("egrid")).unwrap();
        std::fs::write(real.join("egrid/a.csv"), "abcdef").unwrap();
        std::os::unix::fs::symlink(real.join("egrid/a.csv"), real.join("egrid/b.csv")).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("root")).unwrap();
        let store = LocalStore::new(dir.path().join("root"));
        assert_eq!(&store.read_range("egrid/b.csv", 1, 3).await.unwrap()[..], b"bc");
        assert_eq!(&store.read_range("egrid/a.csv", 0, 2).await.unwrap()[..], b"ab");
    }
}
