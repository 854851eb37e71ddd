use super::*;

const HEADER: &str = "Generator file sequence number,Data Year,Plant state abbreviation,Plant name,Generator ID,Net generation (MWh)\nSEQGEN23,YEAR,PSTATEABB,PNAME,GENID,GENNTAN\n";

fn spec() -> DatasetSpec {
    DatasetSpec::from_toml(
        "egrid",
        include_str!("../../../../config/datasets/egrid_generators.toml"),
    )
    .unwrap()
}

fn rows(n: usize) -> String {
    let mut text = HEADER.to_string();
    for i in 0..n {
        text.push_str(&format!("{i},2023,TX,\"Plant, {i}\",G{i},\"1,{i:03}\"\n"));
    }
    text
}

fn hash(bytes: &[u8]) -> Expected {
    Expected::Sha256(hex::encode(Sha256::digest(bytes)))
}

/// The verdict for `bytes` fed in blocks of `block` bytes.
fn validate_with(spec: &DatasetSpec, bytes: &[u8], block: usize, chunk_bytes: u64) -> Verdict {
    let mut validator = Validator::new(spec, chunk_bytes, "egrid/generators/a.csv", hash(bytes));
    for piece in bytes.chunks(block) {
        if !validator.feed(piece) {
            break;
        }
    }
    validator.finish()
}

fn validate(bytes: &[u8]) -> Verdict {
    validate_with(&spec(), bytes, 4096, 1 << 20)
}

fn rejection(bytes: &[u8]) -> String {
    match validate(bytes) {
        Verdict::Rejected(reason) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_good_file_is_planned_into_chunks_that_tile_its_data_records() {
    let text = rows(50);
    let Verdict::Chunks {
        header,
        chunks,
        records,
    } = validate_with(&spec(), text.as_bytes(), 4096, 300)
    else {
        panic!("a good file is accepted");
    };
    assert_eq!((records, header.field_count), (50, 6));
    assert_eq!(
        chunks[0].plan.start,
        HEADER.len() as u64,
        "the header belongs to no chunk"
    );
    assert_eq!(chunks.last().unwrap().plan.end, text.len() as u64);
    assert!(chunks.windows(2).all(|w| w[0].plan.end == w[1].plan.start));
    assert_eq!(chunks.iter().map(|c| c.plan.records).sum::<u64>(), 50);
    assert_eq!(chunks[0].plan.first_line, 3);
    for c in &chunks {
        let bytes = &text.as_bytes()[c.plan.start as usize..c.plan.end as usize];
        assert_eq!(
            c.sha256,
            hex::encode(Sha256::digest(bytes)),
            "each chunk's hash is of its bytes"
        );
    }
}

#[test]
fn the_plan_does_not_depend_on_how_the_bytes_are_split_into_blocks() {
    let text = rows(40);
    let whole = validate_with(&spec(), text.as_bytes(), text.len(), 256);
    for block in [1, 7, 64, 1000] {
        assert_eq!(
            validate_with(&spec(), text.as_bytes(), block, 256),
            whole,
            "block {block}"
        );
    }
}

#[test]
fn a_compressed_file_is_rejected_from_its_first_bytes() {
    let reason = rejection(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    assert!(reason.contains("gzip"), "{reason}");
}

#[test]
fn bytes_that_are_not_utf8_are_rejected_naming_the_line() {
    let mut bytes = rows(3).into_bytes();
    bytes.extend_from_slice(b"9,2023,TX,Caf\xe9,G9,1\n");
    assert_eq!(
        rejection(&bytes),
        "line 6 is not valid UTF-8 (invalid byte 10 bytes into the record's fields); save the file as UTF-8"
    );
}

#[test]
fn a_nul_byte_marks_the_file_as_binary() {
    let mut bytes = rows(1).into_bytes();
    bytes.extend_from_slice(b"9,2023,TX,A\0B,G9,1\n");
    assert_eq!(
        rejection(&bytes),
        "line 4 holds a NUL byte: the file looks binary, not CSV text"
    );
}

#[test]
fn a_field_over_the_size_limit_is_rejected_naming_field_and_line() {
    let mut spec = spec();
    spec.csv.max_field_bytes = 32;
    let mut text = rows(1);
    text.push_str("9,2023,TX,A very long plant name over the limit,G9,1\n");
    let Verdict::Rejected(reason) = validate_with(&spec, text.as_bytes(), 4096, 1 << 20) else {
        panic!("rejected");
    };
    assert!(
        reason.starts_with("field 4 of the record on line 4 is 37 bytes, over the limit of 32"),
        "{reason}"
    );
}

#[test]
fn a_record_that_grows_without_ending_stops_the_read() {
    let mut spec = spec();
    spec.csv.max_field_bytes = 32;
    let mut validator = Validator::new(&spec, 1 << 20, "k", Expected::Size(0));
    assert!(validator.feed(rows(0).as_bytes()));
    assert!(validator.feed(b"1,2023,TX,\"open"), "not past the limit yet");
    assert!(
        !validator.feed(&[b'x'; 200]),
        "past the widest record (6 fields of 32 bytes): stop"
    );
    let Verdict::Rejected(reason) = validator.finish() else {
        panic!("rejected")
    };
    assert!(
        reason.starts_with("the record starting on line 3 grows past"),
        "{reason}"
    );
}

#[test]
fn a_quote_still_open_at_the_end_is_rejected_naming_its_line() {
    let mut text = rows(2);
    text.push_str("9,2023,TX,\"Open quote,G9,1\n");
    assert_eq!(
        rejection(text.as_bytes()),
        "the quoted field opened on line 5 is never closed (unterminated quote); check the quotes on that line"
    );
}

#[test]
fn bytes_that_are_not_the_discovered_version_are_changed_not_rejected() {
    let (text, spec) = (rows(2), spec());
    let mut by_hash = Validator::new(&spec, 1 << 20, "a.csv", Expected::Sha256("00".into()));
    by_hash.feed(text.as_bytes());
    assert_eq!(
        by_hash.finish(),
        Verdict::Changed("\"a.csv\" changed after it was discovered; the scanner will pick up the new version".into())
    );
    let mut by_size = Validator::new(&spec, 1 << 20, "a.csv", Expected::of("etag-1", 5));
    by_size.feed(text.as_bytes());
    let Verdict::Changed(reason) = by_size.finish() else {
        panic!("changed")
    };
    assert!(reason.ends_with("bytes but was 5 when discovered; the scanner will pick up the new version"));
}

#[test]
fn more_bad_rows_than_the_dataset_allows_rejects_the_file_with_the_share() {
    let mut spec = spec();
    spec.max_bad_rows = Some(0.25);
    let mut text = rows(2);
    text.push_str("9,not a year,TX,P,G9,1\n");
    let Verdict::Rejected(reason) = validate_with(&spec, text.as_bytes(), 4096, 1 << 20) else {
        panic!("rejected");
    };
    assert!(
        reason.starts_with("1 of 3 data records (33.3 %) cannot be loaded, over the dataset's limit of 25.0 %"),
        "{reason}"
    );
    spec.max_bad_rows = Some(0.5);
    assert!(matches!(
        validate_with(&spec, text.as_bytes(), 4096, 1 << 20),
        Verdict::Chunks { .. }
    ));
}

#[test]
fn bad_rows_are_not_counted_without_a_limit() {
    let mut text = rows(1);
    text.push_str("9,not a year,TX,P,G9,1\n");
    assert!(matches!(validate(text.as_bytes()), Verdict::Chunks { records: 2, .. }));
}

#[test]
fn an_empty_file_is_rejected_as_empty() {
    assert_eq!(rejection(b""), "the file is empty (0 bytes); expected a header");
}

#[test]
fn a_file_shorter_than_its_header_is_rejected_with_the_rows_found() {
    let reason = rejection(b"Generator file sequence number,Data Year\n");
    assert!(reason.contains('2') && reason.contains('1'), "{reason}");
}

#[test]
fn a_header_without_a_mapped_column_is_rejected_naming_it() {
    let text = HEADER.replace("GENNTAN", "SOMETHING") + "1,2023,TX,P,G1,5\n";
    let reason = rejection(text.as_bytes());
    assert!(reason.contains("GENNTAN"), "{reason}");
}

#[test]
fn a_header_only_file_is_accepted_with_no_chunks() {
    let Verdict::Chunks { chunks, records, .. } = validate(HEADER.as_bytes()) else {
        panic!("accepted");
    };
    assert_eq!((chunks.len(), records), (0, 0));
}

#[test]
fn nothing_is_read_after_a_rejection() {
    let spec = spec();
    let mut validator = Validator::new(&spec, 1 << 20, "k", Expected::Size(0));
    assert!(!validator.feed(&[0x1f, 0x8b, 8, 0]));
    assert!(!validator.feed(HEADER.as_bytes()));
}

/// Feeds a flood after two good records in 64 KiB blocks; returns whether reading stopped
/// early, the verdict, and how many bytes the validator held at most.
fn flood(unit: &[u8], total: usize) -> (bool, Verdict, usize) {
    let mut spec = spec();
    spec.csv.max_field_bytes = 1024;
    let mut validator = Validator::new(&spec, 64 * 1024, "k", Expected::Size(0));
    assert!(validator.feed(rows(2).as_bytes()));
    let block: Vec<u8> = unit.iter().copied().cycle().take(64 * 1024).collect();
    let (mut fed, mut held, mut stopped) = (0, 0, false);
    while fed < total {
        if !validator.feed(&block) {
            stopped = true;
            break;
        }
        fed += block.len();
        held = held.max(validator.state.window.len());
    }
    (stopped, validator.finish(), held)
}

#[test]
fn a_flood_of_blank_lines_is_rejected_before_it_fills_memory() {
    let (stopped, verdict, held) = flood(b"\n", 64 << 20);
    assert!(stopped, "reading stopped early");
    assert!(held < 1 << 20, "held {held} bytes");
    let Verdict::Rejected(reason) = verdict else {
        panic!("rejected, got {verdict:?}")
    };
    assert!(
        reason.contains("after the record on line 4 hold no record boundary: a run of blank lines"),
        "{reason}"
    );
}

#[test]
fn a_record_of_nothing_but_delimiters_is_rejected_before_it_fills_memory() {
    let (stopped, verdict, held) = flood(b",", 64 << 20);
    assert!(stopped, "reading stopped early");
    assert!(held < 1 << 20, "held {held} bytes");
    assert!(matches!(verdict, Verdict::Rejected(_)), "{verdict:?}");
}

#[test]
fn a_few_blank_lines_between_records_are_fine() {
    let mut text = rows(3);
    text.push_str(&"\n".repeat(1000));
    text.push_str("9,2023,TX,Late,G9,1\n");
    assert!(matches!(validate(text.as_bytes()), Verdict::Chunks { records: 4, .. }));
}
