//! Parsing one chunk: the bytes of whole records, as the chunk plan cut them, become typed
//! rows encoded for COPY (with their physical line) or quarantined records (with the line, the first bad
//! column, the raw record and every reason). A bad record never sinks the chunk.

use crate::coerce::{Value, coerce};
use crate::copy_text;
use crate::dedupe::LastWins;
use crate::header::HeaderMap;
use crate::scan::{Record, scan_all};
use crate::spec::DatasetSpec;

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
    /// Rows in COPY text format: the spec's columns, then source_file_id, source_line.
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
    let mut dedupe = LastWins::new();
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
fn coerce_records(
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
        let raw = || {
            let text = &bytes[record.start as usize..record.end as usize];
            let end = text
                .iter()
                .rposition(|b| *b != b'\n' && *b != b'\r')
                .map_or(0, |i| i + 1);
            String::from_utf8_lossy(&text[..end]).into_owned()
        };
        let quarantine = |column: Option<String>, reason: String| QuarantinedRecord {
            line,
            column,
            raw: raw(),
            reason,
        };
        match coerce_record(&record, spec, header, &mut values) {
            Ok(()) => on_row(line, &values),
            Err((None, reason)) => {
                // A record of the wrong shape that spans lines is usually a stray quote that
                // swallowed the lines after it: say so, with the lines it covers.
                let text = &bytes[record.start as usize..record.end as usize];
                let body = &text[..text
                    .iter()
                    .rposition(|b| *b != b'\n' && *b != b'\r')
                    .map_or(0, |i| i + 1)];
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
    if reasons.is_empty() {
        Ok(())
    } else {
        Err((first_bad, reasons.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Collecting rows as values is for asserting on them; loading streams them into COPY.
    /// A record that coerced cleanly: one value per spec column, in spec order.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Row {
        /// 1-based physical line where the record starts (header lines counted).
        pub line: u64,
        pub values: Vec<Value>,
    }

    /// What a chunk's bytes hold.
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct ChunkRows {
        pub rows: Vec<Row>,
        pub quarantined: Vec<QuarantinedRecord>,
        /// Records seen (rows + quarantined).
        pub records: u64,
    }

    /// Parses and coerces one chunk whose first byte sits on physical line `first_line`.
    pub fn parse_chunk(bytes: &[u8], spec: &DatasetSpec, header: &HeaderMap, first_line: u64) -> ChunkRows {
        let mut rows = Vec::new();
        let (records, quarantined) = coerce_records(bytes, spec, header, first_line, |line, values| {
            rows.push(Row {
                line,
                values: values.to_vec(),
            })
        });
        ChunkRows {
            rows,
            quarantined,
            records,
        }
    }
    use crate::plan::ChunkPlanner;
    use crate::spec::CsvDialect;
    use proptest::prelude::*;

    fn spec() -> DatasetSpec {
        DatasetSpec::from_toml(
            "t",
            r#"
name = "t"
key_prefix = "t/"
conflict_key = ["name"]
[[columns]]
name = "name"
source = "Name"
type = "text"
nullable = false
[[columns]]
name = "mwh"
source = "MWh"
type = "numeric"
thousands = ","
accounting_negatives = true
"#,
        )
        .unwrap()
    }
    fn header() -> HeaderMap {
        HeaderMap {
            field_count: 2,
            columns: vec![0, 1],
        }
    }

    #[test]
    fn quoted_commas_and_newlines_stay_inside_their_field_and_lines_are_physical() {
        let bytes = b"\"Smith, Jones\",\"20,961\"\r\n\"Two\r\nLines\",\" (2,443)\"\r\nLast,\r\n";
        let parsed = parse_chunk(bytes, &spec(), &header(), 3);
        assert_eq!(parsed.records, 3);
        assert_eq!(
            parsed.rows[0].values,
            vec![Value::Text("Smith, Jones".into()), Value::Numeric("20961".into())]
        );
        assert_eq!(parsed.rows[1].line, 4);
        assert_eq!(parsed.rows[1].values[0], Value::Text("Two\r\nLines".into()));
        assert_eq!(parsed.rows[1].values[1], Value::Numeric("-2443".into()));
        assert_eq!(parsed.rows[2].line, 6);
        assert_eq!(parsed.rows[2].values[1], Value::Null);
    }

    #[test]
    fn a_bad_value_is_quarantined_with_line_column_raw_and_reason() {
        let bytes = b"A,1\nB,lots\nC,3\n";
        let parsed = parse_chunk(bytes, &spec(), &header(), 10);
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(
            parsed.quarantined,
            vec![QuarantinedRecord {
                line: 11,
                column: Some("mwh".into()),
                raw: "B,lots".into(),
                reason: "column mwh (MWh): \"lots\" is not a number; expected digits with an optional sign, ',' thousands separators, (1,234) for a negative".into(),
            }]
        );
    }

    #[test]
    fn a_record_with_the_wrong_number_of_fields_is_quarantined() {
        let parsed = parse_chunk(b"A,1,extra\nB\n", &spec(), &header(), 2);
        assert_eq!(parsed.rows.len(), 0);
        assert_eq!(parsed.quarantined.len(), 2);
        assert!(parsed.quarantined[0].reason.contains("expected 2 fields, found 3"));
        assert_eq!(parsed.quarantined[1].raw, "B");
        assert_eq!(parsed.quarantined[1].column, None);
    }

    #[test]
    fn a_stray_quote_that_swallows_lines_is_named_with_the_lines_it_covers() {
        let parsed = parse_chunk(b"A,1\r\n\"B,2\r\nC,3\r\nD,4\r\n", &spec(), &header(), 10);
        let q = &parsed.quarantined[0];
        assert_eq!(q.line, 11);
        assert!(
            q.reason
                .contains("runs from line 11 to line 13: a quote opened on line 11 may never close"),
            "{}",
            q.reason
        );
    }

    #[test]
    fn every_bad_column_is_named_in_the_reason() {
        let parsed = parse_chunk(b" ,x\n", &spec(), &header(), 2);
        let q = &parsed.quarantined[0];
        assert_eq!(q.column.as_deref(), Some("name"));
        assert!(
            q.reason.contains("column name (Name)") && q.reason.contains("column mwh (MWh)"),
            "{}",
            q.reason
        );
    }

    #[test]
    fn invalid_utf8_is_quarantined_not_a_panic() {
        let parsed = parse_chunk(b"A\xff,1\n", &spec(), &header(), 2);
        assert!(parsed.quarantined[0].reason.contains("not valid UTF-8"));
    }

    #[test]
    fn a_prepared_chunk_keeps_the_last_duplicate_and_appends_lineage() {
        let prepared = prepare_chunk(b"A,1\nB,2\nA,\" (3)\"\nC,x\n", &spec(), &header(), 3, 42);
        assert_eq!(prepared.copy, b"B\t2\t42\t4\nA\t-3\t42\t5\n");
        assert_eq!((prepared.rows, prepared.superseded, prepared.records), (2, 1, 4));
        assert_eq!(prepared.quarantined[0].line, 6);
    }

    #[test]
    fn blank_lines_are_not_records() {
        let parsed = parse_chunk(b"A,1\n\n\nB,2\n", &spec(), &header(), 2);
        assert_eq!(parsed.records, 2);
        assert_eq!(parsed.rows[1].line, 5);
    }

    /// A CSV field drawn to exercise the state machine: quotes, delimiters, CR, LF.
    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9 ]{0,6}",
            "[a-z,\"\r\n ]{0,8}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        ]
    }

    fn file() -> impl Strategy<Value = (Vec<u8>, u64)> {
        (
            prop::collection::vec(prop::collection::vec(field(), 1..4), 0..40),
            any::<bool>(),
            any::<bool>(),
            1u64..64,
        )
            .prop_map(|(records, crlf, trailing, target)| {
                let eol = if crlf { "\r\n" } else { "\n" };
                let mut text = records.iter().map(|r| r.join(",")).collect::<Vec<_>>().join(eol);
                if trailing {
                    text.push_str(eol);
                }
                (text.into_bytes(), target)
            })
    }

    type Scanned = Vec<(u64, Vec<Vec<u8>>)>;

    fn scanned(bytes: &[u8], first_line: u64) -> (Scanned, Vec<(u64, u64)>) {
        let mut records = Vec::new();
        let mut starts = Vec::new();
        scan_all(&CsvDialect::default(), bytes, first_line, |r| {
            records.push((r.line, r.fields().map(|f| f.to_vec()).collect()));
            starts.push((r.start, r.line));
        });
        (records, starts)
    }

    proptest! {
        #[test]
        fn the_records_of_all_chunks_concatenated_equal_the_records_of_the_whole_file((bytes, target) in file()) {
            let (whole, starts) = scanned(&bytes, 1);
            // An independent parser (the csv crate) agrees on the fields.
            let reference: Vec<Vec<Vec<u8>>> = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(&bytes[..])
                .byte_records()
                .map(|r| r.unwrap().iter().map(|f| f.to_vec()).collect())
                .collect();
            prop_assert_eq!(whole.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>(), reference);
            let mut planner = ChunkPlanner::new(target);
            let mut plans = Vec::new();
            for (start, line) in starts {
                plans.extend(planner.record(start, line));
            }
            plans.extend(planner.finish(bytes.len() as u64));
            let mut pieces = Vec::new();
            for plan in &plans {
                let (got, _) = scanned(&bytes[plan.start as usize..plan.end as usize], plan.first_line);
                prop_assert_eq!(got.len() as u64, plan.records);
                pieces.extend(got);
            }
            prop_assert_eq!(pieces, whole);
        }

        #[test]
        fn a_record_line_is_one_plus_the_line_breaks_before_it((bytes, _target) in file()) {
            let (_, starts) = scanned(&bytes, 1);
            for (start, line) in starts {
                let before = &bytes[..start as usize];
                let breaks = before.iter().enumerate().filter(|(i, b)| **b == b'\n' && (*i == 0 || before[i - 1] != b'\r') || **b == b'\r').count();
                prop_assert_eq!(line, 1 + breaks as u64);
            }
        }
    }
}

#[cfg(test)]
mod never_panics {
    use super::*;
    use crate::plan::ChunkPlanner;
    use crate::scan::RecordScanner;
    use proptest::prelude::*;

    fn egrid() -> DatasetSpec {
        DatasetSpec::from_toml("egrid", include_str!("../../../config/datasets/egrid_generators.toml")).unwrap()
    }

    proptest! {
        // 512 cases in `just test`; `just fuzz` raises it through PROPTEST_CASES.
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
        ))]

        /// Whatever the bytes (in whatever blocks): scanning, header resolution, planning
        /// and coercion return results, never panic.
        #[test]
        fn arbitrary_bytes_never_panic_the_chunker_or_the_loader(
            bytes in prop::collection::vec(prop_oneof![
                Just(b','), Just(b'"'), Just(b'\r'), Just(b'\n'), Just(b' '), Just(b'('), Just(b')'),
                any::<u8>(), b'0'..=b'9',
            ], 0..400),
            block in 1usize..64,
        ) {
            let spec = egrid();
            let mut scanner = RecordScanner::new(&spec.csv, 0, 1);
            let mut planner = ChunkPlanner::new(16);
            let mut plans = Vec::new();
            let mut headers: Vec<Vec<String>> = Vec::new();
            let mut lines = Vec::new();
            let mut on = |r: crate::scan::Record<'_>| {
                if headers.len() < 2 {
                    headers.push(r.fields().map(|f| String::from_utf8_lossy(f).into_owned()).collect());
                    lines.push(r.line);
                } else {
                    plans.extend(planner.record(r.start, r.line));
                }
            };
            for piece in bytes.chunks(block) {
                scanner.feed(piece, &mut on);
            }
            let _ = scanner.unterminated_quote_line();
            scanner.finish(&mut on);
            let _ = crate::header::resolve(&spec, &headers, &lines);
            let header = HeaderMap { field_count: 6, columns: vec![1, 2, 3, 4, 5] };
            plans.extend(planner.finish(bytes.len() as u64));
            for plan in plans {
                let _ = prepare_chunk(&bytes[plan.start as usize..plan.end as usize], &spec, &header, plan.first_line, 1);
            }
            let _ = prepare_chunk(&bytes, &spec, &header, 1, 1);
        }

        #[test]
        fn any_text_coerces_to_a_value_or_an_error(text in ".{0,40}") {
            for column in &egrid().columns {
                let _ = crate::coerce::coerce(&text, column, &[String::new()]);
            }
        }
    }
}
