//! penstock's pure core: everything that decides what happens to bytes and values, with no
//! I/O and no async, so it can be unit- and property-tested in isolation.
//!
//! - [`spec`]: dataset specs (which objects, CSV dialect, columns, conflict key).
//! - [`header`]: finding the spec's columns in a file's header rows, by name.
//! - [`coerce`]: turning raw CSV fields into typed values (spreadsheet quirks included).
//! - [`plan`]: splitting a file into record-aligned byte ranges (chunks).
//! - [`rows`]: parsing one chunk's bytes into COPY-ready rows and quarantined records.
//! - [`dedupe`]: last-occurrence-wins dedupe on the conflict key inside a chunk.
//! - [`copy_text`]: encoding rows in PostgreSQL's `COPY … FROM STDIN` text format.
//! - [`message`]: the work items that travel through the broker.
//! - [`reconcile`]: what the reconciler does about a file that made no progress.

pub mod coerce;
pub mod copy_text;
pub mod dedupe;
pub mod dry_run;
pub mod endpoints;
pub mod event;
pub mod header;
pub mod infer;
pub mod message;
pub mod plan;
pub mod reconcile;
pub mod redact;
pub mod retry;
pub mod rows;
pub mod s3_event;
pub mod scan;
pub mod sniff;
pub mod spec;
pub mod validate;

pub use coerce::{CoerceError, Value};
pub use header::{HeaderError, HeaderMap};
pub use message::{ChunkItem, FileItem};
pub use plan::{ChunkPlan, ChunkPlanner};
pub use rows::{PreparedChunk, QuarantinedRecord, prepare_chunk, raw_records};
pub use spec::{ColumnSpec, ColumnType, CsvDialect, DatasetSpec, SpecError};
