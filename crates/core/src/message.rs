//! Work items on the broker. JSON with a schema version `v`; they name objects and byte
//! ranges, never carry rows (RabbitMQ is a queue, not a blob store).

use serde::{Deserialize, Serialize};

/// The schema version this build writes and reads.
pub const VERSION: u32 = 1;

/// "A new object version was discovered": consumed by the chunker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileItem {
    pub v: u32,
    pub file_id: i64,
    pub dataset: String,
    pub key: String,
    /// ETag (S3) or content hash (local folder) identifying the bytes.
    pub version: String,
    pub size: u64,
}

impl FileItem {
    /// Its message id on the broker: one per file version, so every publish of it (the
    /// scanner's, a republish, the reconciler's) is recognisably the same item.
    pub fn message_id(&self) -> String {
        format!("file-{}", self.file_id)
    }
}

/// "Load these whole records": consumed by the database consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkItem {
    pub v: u32,
    pub file_id: i64,
    pub dataset: String,
    pub key: String,
    pub version: String,
    pub chunk: u32,
    pub chunks_total: u32,
    /// Half-open byte range `[start, end)`.
    pub start: u64,
    pub end: u64,
    pub first_line: u64,
    pub records: u64,
    /// Fields per record, from the header.
    pub field_count: u32,
    /// For each spec column, its field index in this file ([`crate::header::ABSENT`]: the
    /// file lacks that optional column).
    pub columns: Vec<u32>,
    /// The file's columns the spec does not declare (a rescuing dataset keeps their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_columns: Vec<crate::header::NewColumn>,
    /// SHA-256 of the range, so a chunk is never loaded from bytes that changed.
    pub sha256: String,
}

/// Why a message body could not be used (a permanent error: retrying cannot fix it).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message is not a valid work item: {0}")]
    Json(#[from] serde_json::Error),
    #[error("message has schema version {0}, this build reads version {VERSION}")]
    Version(u32),
}

/// Decodes a work item and checks its schema version.
pub fn decode<T: for<'de> Deserialize<'de> + Versioned>(body: &[u8]) -> Result<T, DecodeError> {
    let item: T = serde_json::from_slice(body)?;
    match item.version() {
        VERSION => Ok(item),
        other => Err(DecodeError::Version(other)),
    }
}

/// Work items carry their schema version.
pub trait Versioned {
    fn version(&self) -> u32;
}
impl Versioned for FileItem {
    fn version(&self) -> u32 {
        self.v
    }
}
impl Versioned for ChunkItem {
    fn version(&self) -> u32 {
        self.v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_item_round_trips_through_json() {
        let item = FileItem {
            v: 1,
            file_id: 7,
            dataset: "d".into(),
            key: "k".into(),
            version: "e".into(),
            size: 3,
        };
        let body = serde_json::to_vec(&item).unwrap();
        assert_eq!(decode::<FileItem>(&body).unwrap(), item);
    }

    #[test]
    fn an_unknown_schema_version_is_refused() {
        let body = br#"{"v":2,"file_id":7,"dataset":"d","key":"k","version":"e","size":3}"#;
        assert!(matches!(decode::<FileItem>(body), Err(DecodeError::Version(2))));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(
            decode::<FileItem>(b"\xff not json"),
            Err(DecodeError::Json(_))
        ));
    }
}
