use super::*;
use crate::spec::{ColumnSpec, ColumnType, DatasetSpec};

fn options() -> InferOptions {
    InferOptions {
        name: "readings".into(),
        key_prefix: "readings/".into(),
        source: "test.csv".into(),
        max_records: 100_000,
        version: "20261130000000".into(),
        file_bytes: 1 << 20,
    }
}

fn column<'a>(spec: &'a DatasetSpec, name: &str) -> &'a ColumnSpec {
    spec.columns.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn names_become_snake_case() {
    assert_eq!(snake_case("Plant state abbreviation"), "plant_state_abbreviation");
    assert_eq!(snake_case("PNAME"), "pname");
    assert_eq!(snake_case("NetGen (MWh)"), "net_gen_mwh");
    assert_eq!(snake_case("2023 total"), "c_2023_total");
    assert_eq!(snake_case("  --  "), "");
}

#[test]
fn types_nullability_and_spreadsheet_numbers_are_inferred_with_evidence() {
    let csv = "site;reading date;taken at;value;ok;zip;count\n\
               A;2024-01-02;2024-01-02T10:00:00Z;\"1,234.5\";yes;02134;1\n\
               B;2024-01-03;2024-01-03T11:30:00+01:00;(12);no;10001;2\n\
               C;2024-01-04;2024-01-04T12:00:00Z;;yes;94105;3\n";
    let out = infer(csv.as_bytes(), &options()).unwrap();
    let spec = DatasetSpec::from_toml("inferred", &out.spec_toml).unwrap();
    assert_eq!(spec.csv.delimiter, ';');
    assert_eq!(spec.csv.header_rows, 1);
    assert_eq!(column(&spec, "site").ty, ColumnType::Text);
    assert_eq!(column(&spec, "reading_date").ty, ColumnType::Date);
    assert_eq!(column(&spec, "taken_at").ty, ColumnType::Timestamp);
    let value = column(&spec, "value");
    assert_eq!(value.ty, ColumnType::Numeric);
    assert!(value.nullable && value.accounting_negatives && value.thousands == Some(','));
    assert_eq!(column(&spec, "ok").ty, ColumnType::Boolean);
    assert_eq!(
        column(&spec, "zip").ty,
        ColumnType::Text,
        "leading zeros make it an identifier"
    );
    assert!(
        out.spec_toml.contains("\"02134\" has a leading zero"),
        "{}",
        out.spec_toml
    );
    assert!(out.up_sql.contains("taken_at timestamptz NOT NULL"), "{}", out.up_sql);
    assert!(out.up_sql.contains("value numeric,"), "{}", out.up_sql);
    // `count` is a row number, so the key is the unique text column.
    assert_eq!(spec.conflict_key, vec!["site"]);
    assert!(out.spec_toml.contains("count counts records one by one"));
}

#[test]
fn whole_numbers_with_thousands_separators_are_integers_and_bigint_when_they_may_not_fit() {
    let csv = "plant,net generation,capacity,total\n\
               A,\"85,463\",\"(2,443)\",\"1,999,000,000\"\n\
               B,\"1,200\",17,\"12,000,000,000\"\n\
               C,300,\"4,001\",5\n";
    let out = infer(csv.as_bytes(), &options()).unwrap();
    let spec = DatasetSpec::from_toml("inferred", &out.spec_toml).unwrap();
    let generation = column(&spec, "net_generation");
    assert_eq!(generation.ty, ColumnType::Integer, "{}", out.spec_toml);
    assert_eq!(generation.thousands, Some(','));
    let capacity = column(&spec, "capacity");
    assert_eq!(capacity.ty, ColumnType::Integer);
    assert!(capacity.accounting_negatives && capacity.thousands == Some(','));
    assert_eq!(column(&spec, "total").ty, ColumnType::Bigint, "{}", out.spec_toml);
    assert!(out.up_sql.contains("net_generation integer NOT NULL"), "{}", out.up_sql);
    assert!(out.up_sql.contains("total bigint NOT NULL"), "{}", out.up_sql);
    assert!(
        out.spec_toml.contains("whole number, with ',' thousands separators"),
        "{}",
        out.spec_toml
    );
}

#[test]
fn a_whole_number_sample_near_the_integer_limit_is_typed_bigint() {
    let csv = "id,count\na,1\nb,2000000000\n";
    let out = infer(csv.as_bytes(), &options()).unwrap();
    let spec = DatasetSpec::from_toml("inferred", &out.spec_toml).unwrap();
    assert_eq!(column(&spec, "count").ty, ColumnType::Bigint);
}

#[test]
fn misplaced_separators_or_fractions_keep_a_column_numeric_or_text() {
    let csv = "id,a,b\nx,\"1,5\",\"1,234.5\"\ny,2,3\n";
    let out = infer(csv.as_bytes(), &options()).unwrap();
    let spec = DatasetSpec::from_toml("inferred", &out.spec_toml).unwrap();
    assert_eq!(column(&spec, "a").ty, ColumnType::Text, "{}", out.spec_toml);
    assert_eq!(column(&spec, "b").ty, ColumnType::Numeric);
}

#[test]
fn a_constant_column_joins_the_key_and_the_fewest_duplicates_win() {
    let csv = "year,state,plant,unit,mwh\n\
               2023,TX,Alpha,1,10\n\
               2023,TX,Alpha,2,11\n\
               2023,OK,Alpha,1,12\n\
               2023,OK,Beta,1,13\n\
               2023,OK,Beta,1,14\n";
    let out = infer(csv.as_bytes(), &options()).unwrap();
    let spec = DatasetSpec::from_toml("inferred", &out.spec_toml).unwrap();
    assert_eq!(spec.conflict_key, vec!["year", "state", "plant", "unit"]);
    assert!(
        out.spec_toml.contains("year is \"2023\" in every sampled record"),
        "{}",
        out.spec_toml
    );
    assert!(
        out.spec_toml.contains("1 in 5 records (e.g. lines 5 and 6)"),
        "{}",
        out.spec_toml
    );
    assert!(
        out.up_sql
            .contains("CONSTRAINT readings_key UNIQUE (year, state, plant, unit)")
    );
    assert!(
        out.up_sql.contains(") WITH (fillfactor = 50);"),
        "a proposed table leaves room for HOT lineage updates: {}",
        out.up_sql
    );
}

#[test]
fn two_header_rows_are_found_and_codes_name_the_columns() {
    let csv = "Sequence,Data Year,Plant name,Output\nSEQ,YEAR,PNAME,GEN\n1,2023,A,\"1,000\"\n2,2023,B,5\n";
    let out = infer(csv.as_bytes(), &options()).unwrap();
    let spec = DatasetSpec::from_toml("inferred", &out.spec_toml).unwrap();
    assert_eq!((spec.csv.header_rows, spec.csv.names_row), (2, Some(2)));
    assert_eq!(
        spec.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["seq", "year", "pname", "gen"]
    );
    assert!(out.spec_toml.contains("# Plant name"));
}

#[test]
fn a_reserved_word_is_quoted_in_the_migration() {
    let csv = "order,user\n1,a\n2,b\n";
    let out = infer(csv.as_bytes(), &options()).unwrap();
    assert!(out.up_sql.contains("\"order\" integer NOT NULL"), "{}", out.up_sql);
}

#[test]
fn a_file_without_a_header_or_not_in_utf8_is_refused_with_the_fix() {
    let err = infer(b"1,2\n3,4\n", &options()).unwrap_err();
    assert!(err.contains("add a header row"), "{err}");
    let err = infer(b"name,city\nJos\xe9,Paris\n", &options()).unwrap_err();
    assert!(err.contains("iconv"), "{err}");
}

/// Fifty readings of stations, every one with the same `value` in column `first`.
fn readings_of_one(first: &str, value: &str) -> String {
    let mut csv = format!("{first},station,reading\n");
    for i in 0..50 {
        csv.push_str(&format!("{value},S{i},{}.5\n", i * 3));
    }
    csv
}

/// The options for a file large enough to be proposed a partitioned table.
fn large_file() -> InferOptions {
    InferOptions {
        file_bytes: 3 << 30,
        ..options()
    }
}

#[test]
fn a_partition_bound_is_the_value_as_loading_stores_it_not_as_the_file_writes_it() {
    let csv = readings_of_one("day", "1/5/2023");
    let inferred = infer(csv.as_bytes(), &large_file()).unwrap();
    let spec = DatasetSpec::from_toml("readings.toml", &inferred.spec_toml).unwrap();
    assert_eq!(spec.partition_by.as_deref(), Some("day"));
    assert!(
        inferred
            .up_sql
            .contains("CREATE TABLE readings_2023_01_05 PARTITION OF readings FOR VALUES IN ('2023-01-05')"),
        "{}",
        inferred.up_sql
    );
}

#[test]
fn a_large_file_gets_a_table_partitioned_by_its_constant_key_column() {
    let csv = readings_of_one("year", "2023");
    let small = infer(csv.as_bytes(), &options()).unwrap();
    assert!(!small.spec_toml.contains("partition_by"), "{}", small.spec_toml);
    assert!(!small.up_sql.contains("PARTITION"), "{}", small.up_sql);

    let inferred = infer(csv.as_bytes(), &large_file()).unwrap();
    let spec = DatasetSpec::from_toml("readings.toml", &inferred.spec_toml).unwrap();
    assert_eq!(spec.partition_by.as_deref(), Some("year"));
    assert!(
        inferred.up_sql.contains(") PARTITION BY LIST (year);"),
        "{}",
        inferred.up_sql
    );
    assert!(
        inferred
            .up_sql
            .contains("CREATE TABLE readings_2023 PARTITION OF readings FOR VALUES IN (2023) WITH (fillfactor = 50);"),
        "{}",
        inferred.up_sql
    );
    assert!(
        inferred.up_sql.contains("PARTITION OF readings DEFAULT"),
        "{}",
        inferred.up_sql
    );
    assert!(
        inferred.summary.iter().any(|l| l.starts_with("partitioned by year")),
        "{:?}",
        inferred.summary
    );
}
