//! The file validator: one state machine fed with a file's bytes, block by block, that
//! either rejects the file with a reason naming the line and the fix, or plans its chunks.
//!
//! Rules, in the order they apply:
//! 1. the first bytes look like CSV text ([`crate::sniff`]: not gzip, zip, a spreadsheet…);
//! 2. every record is valid UTF-8, holds no NUL byte, and no field is over
//!    `csv.max_field_bytes`; an open record may not grow past the widest record allowed
//!    (an unterminated quote swallowing the file), and a quote still open at the end is an
//!    error; the open chunk may not grow past [`crate::plan::max_chunk_span`] (a run of blank
//!    lines or a record of nothing but delimiters would otherwise hold the whole file in
//!    memory);
//! 3. the bytes are the version the scanner discovered (content hash or size): if not,
//!    the file is not rejected but [`Verdict::Changed`] (the scanner records the new version);
//! 4. at most `max_bad_rows` of the data records fail coercion, when the spec sets it;
//! 5. the dataset's header rows are there and name every mapped column ([`crate::header`]).
//!
//! Chunk boundaries come from the CSV state machine ([`crate::scan`]), so quoted commas and
//! newlines never split a record; each chunk's bytes are hashed as it closes, and only the
//! open chunk's bytes are held.

use sha2::{Digest, Sha256};

use crate::header::{self, HeaderMap};
use crate::plan::{ChunkPlan, ChunkPlanner};
use crate::scan::{Record, RecordScanner};
use crate::spec::DatasetSpec;

/// The version the scanner discovered, to check the streamed bytes against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The hex SHA-256 of the whole file (local folders).
    Sha256(String),
    /// Only the size is known (an S3 ETag is not a content hash).
    Size(u64),
}

impl Expected {
    /// What a file item's version and size promise: `sha256:<hex>` versions are content
    /// hashes; anything else (an ETag) leaves the size.
    pub fn of(version: &str, size: u64) -> Expected {
        match version.strip_prefix("sha256:") {
            Some(hash) => Expected::Sha256(hash.to_string()),
            None => Expected::Size(size),
        }
    }
}

/// A planned chunk and the SHA-256 (hex) of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChunk {
    pub plan: ChunkPlan,
    pub sha256: String,
}

/// What validating a whole file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing of the file may be loaded, for this reason.
    Rejected(String),
    /// The bytes are not the discovered version (it changed while being read).
    Changed(String),
    /// Load it in these chunks.
    Chunks {
        header: HeaderMap,
        chunks: Vec<PlannedChunk>,
        records: u64,
    },
}

/// The validator: the CSV scanner, and what it has learnt of the file so far.
pub struct Validator<'a> {
    scanner: RecordScanner,
    state: State<'a>,
}

/// What the validator has learnt of the file so far.
struct State<'a> {
    spec: &'a DatasetSpec,
    key: String,
    expected: Expected,
    planner: ChunkPlanner,
    chunk_bytes: u64,
    /// The line of the latest record start (for a reason that names where a flood began).
    last_line: u64,
    /// Bytes from `window_start` on: the open chunk (and the header before the first chunk).
    window: Vec<u8>,
    window_start: u64,
    headers: Vec<Vec<String>>,
    header_lines: Vec<u64>,
    header_map: Option<HeaderMap>,
    chunks: Vec<PlannedChunk>,
    problem: Option<String>,
    records: u64,
    /// Data records that would be quarantined (counted only when the spec sets a limit).
    bad_rows: u64,
    values: Vec<crate::Value>,
    size: u64,
    whole: Sha256,
}

impl<'a> Validator<'a> {
    /// A validator for the file `key` of dataset `spec`, cutting chunks of about
    /// `chunk_bytes`.
    pub fn new(spec: &'a DatasetSpec, chunk_bytes: u64, key: &str, expected: Expected) -> Validator<'a> {
        let state = State {
            spec,
            key: key.to_string(),
            expected,
            planner: ChunkPlanner::new(chunk_bytes),
            chunk_bytes,
            last_line: 0,
            window: Vec::new(),
            window_start: 0,
            headers: Vec::new(),
            header_lines: Vec::new(),
            header_map: None,
            chunks: Vec::new(),
            problem: None,
            records: 0,
            bad_rows: 0,
            values: Vec::new(),
            size: 0,
            whole: Sha256::new(),
        };
        Validator {
            scanner: RecordScanner::new(&spec.csv, 0, 1),
            state,
        }
    }

    /// Feeds the next bytes of the file. Returns `false` once the file is known to be
    /// rejected: reading more would change nothing.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        let state = &mut self.state;
        if state.problem.is_some() {
            return false;
        }
        if state.size == 0
            && !bytes.is_empty()
            && let Some(reason) = crate::sniff::not_csv(bytes)
        {
            state.problem = Some(reason);
            return false;
        }
        state.size += bytes.len() as u64;
        state.whole.update(bytes);
        state.window.extend_from_slice(bytes);
        self.scanner.feed(bytes, &mut |r| state.on_record(r));
        // An open record larger than any record may be is an unterminated quote swallowing
        // the file: stop before it takes the worker's memory.
        let fields = state.header_map.as_ref().map_or(1, |h| h.field_count as u64);
        let pending = self.scanner.pending_bytes();
        if pending as u64 > state.spec.csv.max_field_bytes.saturating_mul(fields)
            && let Some(line) = self.scanner.open_record_line()
        {
            state.problem.get_or_insert(format!(
                "the record starting on line {line} grows past {pending} bytes without ending: an unterminated quote?"
            ));
        }
        // Blank lines are no records and empty fields add no field bytes: bound the open
        // chunk itself, so neither can hold the file in memory.
        let cap = crate::plan::max_chunk_span(state.chunk_bytes, state.spec.csv.max_field_bytes, fields);
        if state.window.len() as u64 > cap {
            let after = match state.last_line {
                0 => "the start of the file".to_string(),
                line => format!("the record on line {line}"),
            };
            state.problem.get_or_insert(format!(
                "{} bytes after {after} hold no record boundary: a run of blank lines, or a record of nothing but \
                 delimiters? A chunk may span at most {cap} bytes (chunk_bytes plus the widest record allowed)",
                state.window.len()
            ));
        }
        state.problem.is_none()
    }

    /// The file has ended (or reading stopped after `feed` returned `false`): the verdict.
    pub fn finish(self) -> Verdict {
        let Validator { mut scanner, mut state } = self;
        if state.problem.is_none()
            && let Some(line) = scanner.unterminated_quote_line()
        {
            state.problem = Some(format!(
                "the quoted field opened on line {line} is never closed (unterminated quote); check the quotes on that line"
            ));
        }
        scanner.finish(&mut |r| state.on_record(r));
        state.verdict()
    }
}

impl State<'_> {
    fn verdict(mut self) -> Verdict {
        if let Some(reason) = self.problem.take() {
            return Verdict::Rejected(reason);
        }
        if let Some(changed) = self.changed() {
            return Verdict::Changed(changed);
        }
        if let Some(reason) = self.too_many_bad_rows() {
            return Verdict::Rejected(reason);
        }
        let Some(header) = self.header_map.take() else {
            let reason = if self.size == 0 {
                "the file is empty (0 bytes); expected a header".to_string()
            } else {
                header::HeaderError::TooFewHeaderRows {
                    expected: self.spec.csv.header_rows,
                    found: self.headers.len() as u32,
                }
                .to_string()
            };
            return Verdict::Rejected(reason);
        };
        let planner = std::mem::replace(&mut self.planner, ChunkPlanner::new(1));
        if let Some(last) = planner.finish(self.size) {
            self.close(last);
        }
        Verdict::Chunks {
            header,
            chunks: self.chunks,
            records: self.records,
        }
    }

    fn changed(&self) -> Option<String> {
        match &self.expected {
            Expected::Sha256(hash) => (hex::encode(self.whole.clone().finalize()) != *hash).then(|| {
                format!(
                    "{:?} changed after it was discovered; the scanner will pick up the new version",
                    self.key
                )
            }),
            Expected::Size(size) => (self.size != *size).then(|| {
                format!(
                    "{:?} is {} bytes but was {size} when discovered; the scanner will pick up the new version",
                    self.key, self.size
                )
            }),
        }
    }

    fn too_many_bad_rows(&self) -> Option<String> {
        let limit = self.spec.max_bad_rows?;
        if self.records == 0 {
            return None;
        }
        let share = self.bad_rows as f64 / self.records as f64;
        (share > limit).then(|| {
            format!(
                "{} of {} data records ({:.1} %) cannot be loaded, over the dataset's limit of {:.1} % (max_bad_rows); fix the file or raise the limit",
                self.bad_rows,
                self.records,
                share * 100.0,
                limit * 100.0
            )
        })
    }

    /// Hashes a closed chunk's bytes out of the window and drops them.
    fn close(&mut self, plan: ChunkPlan) {
        let from = (plan.start - self.window_start) as usize;
        let to = (plan.end - self.window_start) as usize;
        let sha256 = hex::encode(Sha256::digest(&self.window[from..to]));
        self.window.drain(..to);
        self.window_start = plan.end;
        self.chunks.push(PlannedChunk { plan, sha256 });
    }

    fn on_record(&mut self, record: Record<'_>) {
        if self.problem.is_some() {
            return;
        }
        if let Some(problem) = self.refuse(&record) {
            self.problem = Some(problem);
            return;
        }
        if self.headers.len() < self.spec.csv.header_rows as usize {
            self.headers.push(
                record
                    .fields()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect(),
            );
            self.header_lines.push(record.line);
            if self.headers.len() == self.spec.csv.header_rows as usize {
                match header::resolve(self.spec, &self.headers, &self.header_lines) {
                    Ok(map) => self.header_map = Some(map),
                    Err(e) => self.problem = Some(e.to_string()),
                }
            }
            return;
        }
        self.records += 1;
        self.last_line = record.line;
        if self.spec.max_bad_rows.is_some()
            && let Some(header) = &self.header_map
            && crate::rows::coerce_record(&record, self.spec, header, &mut self.values).is_err()
        {
            self.bad_rows += 1;
        }
        if self.planner.open_start().is_none() {
            // The first data record: the header bytes before it belong to no chunk.
            let skip = (record.start - self.window_start) as usize;
            self.window.drain(..skip);
            self.window_start = record.start;
        }
        if let Some(closed) = self.planner.record(record.start, record.line) {
            self.close(closed);
        }
    }

    /// Why a record makes the whole file unloadable, if it does.
    fn refuse(&self, record: &Record<'_>) -> Option<String> {
        if let Err(e) = std::str::from_utf8(record.data()) {
            return Some(format!(
                "line {} is not valid UTF-8 (invalid byte {} bytes into the record's fields); save the file as UTF-8",
                record.line,
                e.valid_up_to()
            ));
        }
        if record.data().contains(&0) {
            return Some(format!(
                "line {} holds a NUL byte: the file looks binary, not CSV text",
                record.line
            ));
        }
        let max = self.spec.csv.max_field_bytes;
        let (i, field) = record.fields().enumerate().find(|(_, f)| f.len() as u64 > max)?;
        Some(format!(
            "field {} of the record on line {} is {} bytes, over the limit of {max} (csv.max_field_bytes); an unterminated quote?",
            i + 1,
            record.line,
            field.len()
        ))
    }
}

#[cfg(test)]
mod tests;
