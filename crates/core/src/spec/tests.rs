use super::*;

const GOOD: &str = r#"
name = "things"
key_prefix = "things/"
conflict_key = ["id"]
[csv]
header_rows = 2
[[columns]]
name = "id"
source = "ID"
type = "integer"
nullable = false
[[columns]]
name = "label"
source = "Label"
type = "text"
"#;

#[test]
fn a_valid_spec_parses_with_defaults() {
    let spec = DatasetSpec::from_toml("t.toml", GOOD).unwrap();
    assert_eq!(spec.table(), "things");
    assert_eq!(spec.csv.delimiter, ',');
    assert_eq!(spec.csv.names_row(), 2);
    assert_eq!(spec.null_tokens, vec![String::new()]);
    assert!(spec.columns[1].trim);
    assert_eq!(spec.key_indexes(), vec![0]);
    assert!(spec.matches("things/2023.csv"));
    assert!(!spec.matches("other/2023.csv"));
}

#[test]
fn a_conflict_key_that_is_not_a_column_is_rejected_with_the_columns_listed() {
    let text = GOOD.replace(r#"conflict_key = ["id"]"#, r#"conflict_key = ["idd"]"#);
    let err = DatasetSpec::from_toml("t.toml", &text).unwrap_err().to_string();
    assert!(err.contains("\"idd\""), "{err}");
    assert!(err.contains("columns: id, label"), "{err}");
}

#[test]
fn a_nullable_key_column_is_rejected() {
    let text = GOOD.replace("nullable = false\n", "");
    let err = DatasetSpec::from_toml("t.toml", &text).unwrap_err().to_string();
    assert!(err.contains("nullable = false"), "{err}");
}

#[test]
fn an_unknown_field_is_rejected_by_name() {
    let text = GOOD.replace("type = \"text\"", "type = \"text\"\nnulable = true");
    let err = DatasetSpec::from_toml("t.toml", &text).unwrap_err().to_string();
    assert!(err.contains("nulable"), "{err}");
}

#[test]
fn refresh_views_is_refused_with_what_to_do_instead() {
    let text = GOOD.replace(
        "conflict_key = [\"id\"]",
        "conflict_key = [\"id\"]\nrefresh_views = [\"v\"]",
    );
    let err = DatasetSpec::from_toml("t.toml", &text).unwrap_err().to_string();
    assert!(err.contains("refresh_views is no longer supported"), "{err}");
    assert!(err.contains("plain VIEW"), "{err}");
}

#[test]
fn an_unknown_type_is_rejected() {
    let text = GOOD.replace("type = \"text\"", "type = \"string\"");
    let err = DatasetSpec::from_toml("t.toml", &text).unwrap_err().to_string();
    assert!(err.contains("string"), "{err}");
}

#[test]
fn a_names_row_outside_the_header_rows_is_rejected() {
    let text = GOOD.replace("header_rows = 2", "header_rows = 2\nnames_row = 3");
    let err = DatasetSpec::from_toml("t.toml", &text).unwrap_err().to_string();
    assert!(err.contains("names_row"), "{err}");
}

#[test]
fn a_bad_row_share_outside_zero_to_one_is_rejected() {
    let text = GOOD.replace("conflict_key = [\"id\"]", "conflict_key = [\"id\"]\nmax_bad_rows = 5");
    let err = DatasetSpec::from_toml("t.toml", &text).unwrap_err().to_string();
    assert!(err.contains("max_bad_rows"), "{err}");
}

#[test]
fn lineage_column_names_are_reserved() {
    let text = GOOD.replace("name = \"label\"", "name = \"source_line\"");
    let err = DatasetSpec::from_toml("t.toml", &text).unwrap_err().to_string();
    assert!(err.contains("reserved"), "{err}");
}

#[test]
fn a_partition_column_must_be_in_the_conflict_key() {
    let partitioned = GOOD.replace(
        r#"conflict_key = ["id"]"#,
        "conflict_key = [\"id\"]\npartition_by = \"id\"",
    );
    let spec = DatasetSpec::from_toml("t.toml", &partitioned).unwrap();
    assert_eq!(spec.partition_by.as_deref(), Some("id"));
    let outside = GOOD.replace(
        r#"conflict_key = ["id"]"#,
        "conflict_key = [\"id\"]\npartition_by = \"label\"",
    );
    let err = DatasetSpec::from_toml("t.toml", &outside).unwrap_err().to_string();
    assert!(
        err.contains("partition_by = \"label\" is not in the conflict_key (id)"),
        "{err}"
    );
}
