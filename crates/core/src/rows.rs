//! Parsing one chunk: the bytes of whole records, as the chunk plan cut them, become typed
//! rows encoded for COPY (with their physical line) or quarantined records (with the line, the first bad
//! column, the raw record and every reason). A bad record never sinks the chunk.

use crate::coerce::{Value, coerce};
use crate::copy_text;
use crate::dedupe::LastWins;
use crate::header::{ABSENT, HeaderMap};
use crate::scan::{Record, scan_all};
use crate::spec::{CsvDialect, DatasetSpec, OnConflict};

/// A record that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedRecord {
    pub line: u64,
    /// The first target column that failed, if the problem is a column's.
    pub column: Option<String>,
    /// The record as it appears in the file (line terminator removed).
    pub raw: String,
    pub reason: String,
}

/// A chunk parsed, coerced and deduplicated, ready to load.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PreparedChunk {
    /// Rows in COPY text format: the spec's columns, the rescue column if the spec rescues,
    /// then source_file_id, source_line.
    pub copy: Vec<u8>,
    pub rows: u64,
    pub superseded: u64,
    pub quarantined: Vec<QuarantinedRecord>,
    pub records: u64,
}

/// Parses, coerces and deduplicates a chunk of file version `file_id`, and encodes the rows
/// for COPY. Rows are encoded as they are parsed (no per-row structures are kept), so memory
/// stays close to twice the chunk's size.
pub fn prepare_chunk(
    bytes: &[u8],
    spec: &DatasetSpec,
    header: &HeaderMap,
    first_line: u64,
    file_id: i64,
) -> PreparedChunk {
    let key_indexes = spec.key_indexes();
    let file = Value::Integer(file_id);
    let mut copy = Vec::with_capacity(bytes.len() + bytes.len() / 4);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut dead: Vec<usize> = Vec::new();
    let mut dedupe = match spec.on_conflict {
        OnConflict::Keep => LastWins::keep_first(),
        OnConflict::Update | OnConflict::Record => LastWins::new(),
    };
    let mut key = Vec::new();
    let (records, quarantined) = coerce_records(bytes, spec, header, first_line, |line, values| {
        key.clear();
        for &i in &key_indexes {
            copy_text::push_value(&mut key, &values[i]);
            key.push(b'\t');
        }
        let start = copy.len();
        copy_text::push_row(&mut copy, values.iter().chain([&file, &Value::Integer(line as i64)]));
        spans.push((start, copy.len()));
        dead.extend(dedupe.push(&key));
    });
    let superseded = dead.len() as u64;
    if !dead.is_empty() {
        let mut keep = vec![true; spans.len()];
        for i in dead {
            keep[i] = false;
        }
        let mut compact = Vec::with_capacity(copy.len());
        for (&(from, to), _) in spans.iter().zip(&keep).filter(|(_, k)| **k) {
            compact.extend_from_slice(&copy[from..to]);
        }
        copy = compact;
    }
    PreparedChunk {
        copy,
        rows: spans.len() as u64 - superseded,
        superseded,
        quarantined,
        records,
    }
}

/// Scans and coerces every record, handing each good row (its line and its values in spec
/// order) to `on_row`; returns the record count and the quarantined records.
pub(crate) fn coerce_records(
    bytes: &[u8],
    spec: &DatasetSpec,
    header: &HeaderMap,
    first_line: u64,
    mut on_row: impl FnMut(u64, &[Value]),
) -> (u64, Vec<QuarantinedRecord>) {
    let mut records = 0;
    let mut quarantined = Vec::new();
    let mut values = Vec::with_capacity(spec.columns.len());
    scan_all(&spec.csv, bytes, first_line, |record| {
        records += 1;
        let line = record.line;
        let quarantine = |column: Option<String>, reason: String| QuarantinedRecord {
            line,
            column,
            raw: String::from_utf8_lossy(record_text(bytes, &record)).into_owned(),
            reason,
        };
        match coerce_record(&record, spec, header, &mut values) {
            Ok(()) => on_row(line, &values),
            Err((None, reason)) => {
                // A record of the wrong shape that spans lines is usually a stray quote that
                // swallowed the lines after it: say so, with the lines it covers.
                let body = record_text(bytes, &record);
                let breaks = body
                    .iter()
                    .enumerate()
                    .filter(|(i, b)| **b == b'\r' || (**b == b'\n' && (*i == 0 || body[i - 1] != b'\r')))
                    .count() as u64;
                let reason = if breaks > 0 {
                    format!(
                        "{reason}; the record runs from line {line} to line {}: a quote opened on line {line} may never close",
                        line + breaks
                    )
                } else {
                    reason
                };
                quarantined.push(quarantine(None, reason))
            }
            Err((column, reason)) => quarantined.push(quarantine(column, reason)),
        }
    });
    (records, quarantined)
}

/// A record's bytes as they appear in the file, without its line terminator.
fn record_text<'a>(bytes: &'a [u8], record: &Record<'_>) -> &'a [u8] {
    let text = &bytes[record.start as usize..record.end as usize];
    let end = text
        .iter()
        .rposition(|b| *b != b'\n' && *b != b'\r')
        .map_or(0, |i| i + 1);
    &text[..end]
}

/// The records of a chunk (`bytes`, whose first byte sits on physical line `first_line`)
/// that start on one of `lines`, as they appear in the file, in file order: what the
/// quarantine keeps of a row the database refused.
pub fn raw_records(bytes: &[u8], dialect: &CsvDialect, first_line: u64, lines: &[u64]) -> Vec<(u64, String)> {
    let mut wanted = lines.to_vec();
    wanted.sort_unstable();
    let mut found = Vec::with_capacity(wanted.len());
    scan_all(dialect, bytes, first_line, |record| {
        if wanted.binary_search(&record.line).is_ok() {
            found.push((
                record.line,
                String::from_utf8_lossy(record_text(bytes, &record)).into_owned(),
            ));
        }
    });
    found
}

/// Checks one record's shape and coerces its mapped fields into `values` (spec order).
/// On failure returns the first bad column (None for a shape problem) and every reason.
pub fn coerce_record(
    record: &Record<'_>,
    spec: &DatasetSpec,
    header: &HeaderMap,
    values: &mut Vec<Value>,
) -> Result<(), (Option<String>, String)> {
    if record.len() != header.field_count as usize {
        return Err((
            None,
            format!(
                "expected {} fields, found {} (an unquoted delimiter inside a value, or a missing field?)",
                header.field_count,
                record.len()
            ),
        ));
    }
    values.clear();
    let mut first_bad: Option<String> = None;
    let mut reasons = Vec::new();
    for (column, &index) in spec.columns.iter().zip(&header.columns) {
        if index == ABSENT {
            values.push(Value::Null);
            continue;
        }
        let result = match std::str::from_utf8(record.field(index as usize)) {
            Ok(text) => coerce(text, column, &spec.null_tokens).map_err(|e| e.0),
            Err(e) => Err(format!(
                "the field is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            )),
        };
        match result {
            Ok(v) => values.push(v),
            Err(reason) => {
                first_bad.get_or_insert_with(|| column.name.clone());
                reasons.push(format!("column {} ({}): {reason}", column.name, column.source));
            }
        }
    }
    if !reasons.is_empty() {
        return Err((first_bad, reasons.join("; ")));
    }
    if spec.rescue().is_some() {
        values.push(rescued(record, header));
    }
    Ok(())
}

/// The rescue column's value of a record: its non-empty values of the header's new columns,
/// as written (`{"Region": "West"}`), or NULL when it has none. A value that is not UTF-8
/// is kept with its invalid bytes replaced (U+FFFD).
fn rescued(record: &Record<'_>, header: &HeaderMap) -> Value {
    let mut object = serde_json::Map::new();
    for column in &header.new_columns {
        let raw = record.field(column.field as usize);
        if !raw.is_empty() {
            let text = String::from_utf8_lossy(raw).into_owned();
            object.insert(column.name.clone(), serde_json::Value::String(text));
        }
    }
    if object.is_empty() {
        Value::Null
    } else {
        Value::Text(serde_json::Value::Object(object).to_string())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod never_panics;
