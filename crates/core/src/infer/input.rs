//! What inference works from: the caller's options, the layout found in the file, and the
//! raw records read from it.

/// What to infer from, and how to name the result.
#[derive(Debug, Clone)]
pub struct InferOptions {
    /// Dataset (and table) name: a lowercase SQL identifier.
    pub name: String,
    /// Key prefix the dataset will own in the store.
    pub key_prefix: String,
    /// Where the sample came from (for the comments).
    pub source: String,
    /// At most this many data records are examined.
    pub max_records: usize,
    /// The migration's version (e.g. a UTC timestamp `YYYYMMDDHHMMSS`).
    pub version: String,
    /// The whole file's size: a file of [`PARTITION_PROPOSAL_BYTES`] or more gets a
    /// partitioned table proposed (by the key column that is constant in the sample).
    pub file_bytes: u64,
}

/// From this size on, `penstock infer` proposes a partitioned table (1 GiB: a few million
/// rows, where keeping each year apart keeps its indexes and vacuums small).
pub const PARTITION_PROPOSAL_BYTES: u64 = 1 << 30;

/// How the file is laid out, with the evidence for each finding.
pub(super) struct Layout {
    pub(super) delimiter: u8,
    pub(super) delimiter_evidence: String,
    pub(super) header_rows: usize,
    pub(super) names_row: usize,
    pub(super) names_evidence: String,
    /// Data records examined.
    pub(super) sampled: usize,
    /// Of those, records without `width` fields.
    pub(super) ragged: usize,
    pub(super) width: usize,
}

pub(super) struct Record {
    pub(super) line: u64,
    pub(super) fields: Vec<String>,
}

/// A partitioned table proposed for a large file: by which key column, and the one value
/// the sample holds, as loading coerces it.
pub(super) struct Partition {
    pub(super) column: String,
    /// The value as loading stores it (an ISO date, a number without separators).
    pub(super) value: String,
    /// That value as an SQL literal: bare for numbers and booleans, quoted otherwise.
    pub(super) literal: String,
}
