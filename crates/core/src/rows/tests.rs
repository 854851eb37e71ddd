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
        new_columns: vec![],
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
fn a_keep_spec_keeps_the_first_duplicate_of_a_chunk_instead() {
    let mut spec = spec();
    spec.on_conflict = crate::spec::OnConflict::Keep;
    let prepared = prepare_chunk(b"A,1\nB,2\nA,3\n", &spec, &header(), 3, 42);
    assert_eq!(prepared.copy, b"A\t1\t42\t3\nB\t2\t42\t4\n");
    assert_eq!((prepared.rows, prepared.superseded), (2, 1));
}

fn rescuing() -> DatasetSpec {
    let mut spec = spec();
    spec.on_new_columns = crate::spec::OnNewColumns::Rescue;
    spec
}

/// A header `Region,Name,MWh,Note` for `spec()`: two new columns around the known ones.
fn drifted_header() -> HeaderMap {
    let new = |name: &str, field| crate::header::NewColumn {
        name: name.into(),
        field,
        blank: false,
    };
    HeaderMap {
        field_count: 4,
        columns: vec![1, 2],
        new_columns: vec![new("Region", 0), new("Note", 3)],
    }
}

#[test]
fn a_rescuing_spec_keeps_each_rows_new_column_values_as_a_json_object_after_its_columns() {
    let prepared = prepare_chunk(
        b"West,A,1,\"said \"\"hi\"\"\"\n,B,2,\nEast,C,x,\n",
        &rescuing(),
        &drifted_header(),
        2,
        7,
    );
    assert_eq!(
        String::from_utf8(prepared.copy).unwrap(),
        "A\t1\t{\"Note\":\"said \\\\\"hi\\\\\"\",\"Region\":\"West\"}\t7\t2\nB\t2\t\\N\t7\t3\n"
    );
    // A row that fails coercion is quarantined whole, as written: nothing is lost either way.
    assert_eq!(prepared.quarantined[0].raw, "East,C,x,");
}

#[test]
fn without_rescue_new_columns_are_not_loaded() {
    let prepared = prepare_chunk(b"West,A,1,n\n", &spec(), &drifted_header(), 2, 7);
    assert_eq!(prepared.copy, b"A\t1\t7\t2\n");
}

#[test]
fn an_absent_optional_column_loads_null() {
    let header = HeaderMap {
        field_count: 1,
        columns: vec![0, crate::header::ABSENT],
        new_columns: vec![],
    };
    let prepared = prepare_chunk(b"A\nB\n", &spec(), &header, 2, 7);
    assert_eq!(prepared.copy, b"A\t\\N\t7\t2\nB\t\\N\t7\t3\n");
}

#[test]
fn raw_records_finds_the_records_that_start_on_the_asked_lines_as_written() {
    let bytes = b"A,1\r\n\"Two\r\nLines\",2\r\n\nC, (3)\r\n";
    let spec = spec();
    let found = raw_records(bytes, &spec.csv, 7, &[11, 8, 99]);
    assert_eq!(
        found,
        vec![(8, "\"Two\r\nLines\",2".to_string()), (11, "C, (3)".to_string())]
    );
    assert!(raw_records(bytes, &spec.csv, 7, &[]).is_empty());
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
