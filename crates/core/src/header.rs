//! Finding a dataset's columns in a file's header, by name: column order may differ between
//! files, extra columns are ignored, and a missing or ambiguous column rejects the file.

use crate::spec::DatasetSpec;

/// Where each of the spec's columns sits in the file's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMap {
    /// Fields per record, as the header declares.
    pub field_count: u32,
    /// For each spec column (in spec order), its 0-based field index in the file.
    pub columns: Vec<u32>,
}

/// Why a header does not fit the dataset; messages name the line and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error(
        "the file has {found} record(s) but the dataset expects {expected} header row(s); is the file empty or truncated?"
    )]
    TooFewHeaderRows { expected: u32, found: u32 },
    #[error("header on line {line} lacks column(s) {}; found {}{}", quoted(missing), quoted(found), hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    MissingColumns {
        line: u64,
        missing: Vec<String>,
        found: Vec<String>,
        hint: Option<String>,
    },
    #[error(
        "header on line {line} has column {name:?} more than once (fields {first} and {second}); penstock cannot tell which one to load"
    )]
    DuplicateColumn {
        line: u64,
        name: String,
        first: u32,
        second: u32,
    },
}

fn quoted(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(12).map(|n| format!("{n:?}")).collect();
    let more = names.len().saturating_sub(12);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn normalise(name: &str) -> String {
    name.trim_start_matches('\u{feff}').trim().to_lowercase()
}

/// Resolves the spec's columns in the header records (`headers[i]` is header record `i+1`,
/// starting on physical line `lines[i]`).
pub fn resolve(spec: &DatasetSpec, headers: &[Vec<String>], lines: &[u64]) -> Result<HeaderMap, HeaderError> {
    let names_row = spec.csv.names_row() as usize;
    if headers.len() < spec.csv.header_rows as usize {
        return Err(HeaderError::TooFewHeaderRows {
            expected: spec.csv.header_rows,
            found: headers.len() as u32,
        });
    }
    let names = &headers[names_row - 1];
    let line = lines[names_row - 1];
    let found: Vec<String> = names.iter().map(|n| normalise(n)).collect();
    let mut columns = Vec::with_capacity(spec.columns.len());
    let mut missing = Vec::new();
    for column in &spec.columns {
        let wanted = normalise(&column.source);
        let mut positions = found
            .iter()
            .enumerate()
            .filter(|(_, f)| **f == wanted)
            .map(|(i, _)| i as u32);
        match (positions.next(), positions.next()) {
            (Some(first), None) => columns.push(first),
            (Some(first), Some(second)) => {
                return Err(HeaderError::DuplicateColumn {
                    line,
                    name: column.source.clone(),
                    first: first + 1,
                    second: second + 1,
                });
            }
            (None, _) => missing.push(column.source.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(HeaderError::MissingColumns {
            line,
            hint: hint(spec, headers, lines, names_row),
            missing,
            found: names
                .iter()
                .map(|n| n.trim_start_matches('\u{feff}').trim().to_string())
                .collect(),
        });
    }
    Ok(HeaderMap {
        field_count: names.len() as u32,
        columns,
    })
}

/// If the column names sit on another row than the spec says, say so: it is the usual cause
/// (a file exported with one header row instead of two, or the other way round).
fn hint(spec: &DatasetSpec, headers: &[Vec<String>], lines: &[u64], names_row: usize) -> Option<String> {
    let wanted: Vec<String> = spec.columns.iter().map(|c| normalise(&c.source)).collect();
    headers.iter().enumerate().find_map(|(i, h)| {
        let found: Vec<String> = h.iter().map(|n| normalise(n)).collect();
        (i + 1 != names_row && wanted.iter().all(|w| found.contains(w))).then(|| {
            format!(
                "the column names are on line {}, but the dataset expects them in header row {names_row} of {}: check the file's header rows",
                lines[i], spec.csv.header_rows
            )
        })
    }).or_else(|| {
        let names = &headers[names_row - 1];
        (names.len() == 1 && names[0].contains([';', '\t', '|'])).then(|| {
            format!(
                "the header is a single field: the file may use another delimiter than {:?}",
                spec.csv.delimiter
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(header_rows: u32) -> DatasetSpec {
        DatasetSpec::from_toml(
            "t",
            &format!(
                r#"
name = "t"
key_prefix = "t/"
conflict_key = ["id"]
[csv]
header_rows = {header_rows}
[[columns]]
name = "id"
source = "ID"
type = "integer"
nullable = false
[[columns]]
name = "v"
source = "Value"
type = "numeric"
"#
            ),
        )
        .unwrap()
    }
    fn row(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let map = resolve(&spec(1), &[row(&["extra", "value", " ID "])], &[1]).unwrap();
        assert_eq!(
            map,
            HeaderMap {
                field_count: 3,
                columns: vec![2, 1]
            }
        );
    }

    #[test]
    fn a_byte_order_mark_on_the_first_header_is_ignored() {
        let map = resolve(&spec(1), &[row(&["\u{feff}ID", "Value"])], &[1]).unwrap();
        assert_eq!(map.columns, vec![0, 1]);
    }

    #[test]
    fn the_names_row_is_the_last_header_row_by_default() {
        let map = resolve(
            &spec(2),
            &[row(&["Identifier", "Some value"]), row(&["ID", "Value"])],
            &[1, 2],
        )
        .unwrap();
        assert_eq!(map.columns, vec![0, 1]);
    }

    #[test]
    fn a_missing_column_names_the_line_the_column_and_what_was_found() {
        let err = resolve(&spec(1), &[row(&["ID", "Valeur"])], &[1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
        assert!(err.contains("lacks column(s) \"Value\""), "{err}");
        assert!(err.contains("found \"ID\", \"Valeur\""), "{err}");
    }

    #[test]
    fn names_on_the_wrong_header_row_get_a_hint() {
        let err = resolve(&spec(2), &[row(&["ID", "Value"]), row(&["1", "2"])], &[1, 2])
            .unwrap_err()
            .to_string();
        assert!(err.contains("the column names are on line 1"), "{err}");
    }

    #[test]
    fn a_single_header_field_with_semicolons_hints_at_the_delimiter() {
        let err = resolve(&spec(1), &[row(&["ID;Value"])], &[1]).unwrap_err().to_string();
        assert!(err.contains("another delimiter"), "{err}");
    }

    #[test]
    fn a_duplicated_column_is_rejected() {
        let err = resolve(&spec(1), &[row(&["ID", "Value", "id"])], &[1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than once (fields 1 and 3)"), "{err}");
    }

    #[test]
    fn too_few_header_rows_is_reported() {
        let err = resolve(&spec(2), &[row(&["ID", "Value"])], &[1]).unwrap_err();
        assert_eq!(err, HeaderError::TooFewHeaderRows { expected: 2, found: 1 });
    }
}
