//! Finding a dataset's columns in a file's header, by name: column order may differ between
//! files; a missing required or an ambiguous column rejects the file; a missing optional
//! column (`required = false`) loads NULL; columns the spec does not declare are new columns,
//! which the dataset's `on_new_columns` alerts on, rescues, ignores or rejects.

use crate::spec::{DatasetSpec, OnNewColumns};

/// The field index of a spec column the file does not have (`required = false`): it loads
/// NULL. As `i32` (the stored plan) it is -1.
pub const ABSENT: u32 = u32::MAX;

/// Where each of the spec's columns sits in the file's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMap {
    /// Fields per record, as the header declares.
    pub field_count: u32,
    /// For each spec column (in spec order), its 0-based field index in the file, or
    /// [`ABSENT`].
    pub columns: Vec<u32>,
    /// The header's columns the spec does not declare, in file order.
    pub new_columns: Vec<NewColumn>,
}

/// A column of the file that the spec does not declare.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewColumn {
    /// The header as written (surrounding spaces and a byte order mark removed); a field
    /// with a blank header is named `field_<n>` (1-based).
    pub name: String,
    /// Its 0-based field index.
    pub field: u32,
    /// The header is blank (usually a trailing delimiter): not announced, not rejected.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blank: bool,
}

impl HeaderMap {
    /// The spec's columns this file does not have (each loads NULL).
    pub fn absent<'s>(&self, spec: &'s DatasetSpec) -> Vec<&'s str> {
        spec.columns
            .iter()
            .zip(&self.columns)
            .filter(|(_, i)| **i == ABSENT)
            .map(|(c, _)| c.name.as_str())
            .collect()
    }

    /// New columns with a header (a blank-headed field is not announced: it is usually a
    /// trailing delimiter; `rescue` still keeps its values).
    pub fn named_new_columns(&self) -> impl Iterator<Item = &NewColumn> {
        self.new_columns.iter().filter(|c| !c.blank)
    }

    /// The names of [`HeaderMap::named_new_columns`]: what an alert, a rejection or a
    /// report names.
    pub fn new_column_names(&self) -> Vec<String> {
        self.named_new_columns().map(|c| c.name.clone()).collect()
    }
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
        "header on line {line} has column(s) {} that the dataset does not declare, and its on_new_columns is \"reject\"; \
         add them to the spec (`penstock infer --update {dataset} FILE` proposes them and their migration), or set \
         on_new_columns to \"alert\", \"rescue\" or \"ignore\"",
        quoted(new)
    )]
    NewColumns {
        line: u64,
        dataset: String,
        new: Vec<String>,
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
/// starting on physical line `lines[i]`), refusing new columns if the spec rejects them.
pub fn resolve(spec: &DatasetSpec, headers: &[Vec<String>], lines: &[u64]) -> Result<HeaderMap, HeaderError> {
    let map = resolve_declared(spec, headers, lines)?;
    let new = map.new_column_names();
    if spec.on_new_columns == OnNewColumns::Reject && !new.is_empty() {
        return Err(HeaderError::NewColumns {
            line: lines[spec.csv.names_row() as usize - 1],
            dataset: spec.name.clone(),
            new,
        });
    }
    Ok(map)
}

/// [`resolve`] whatever the spec's `on_new_columns`: only the declared columns can make
/// the header not fit (what `infer --update` and `validate`'s dataset choice ask).
pub fn resolve_declared(spec: &DatasetSpec, headers: &[Vec<String>], lines: &[u64]) -> Result<HeaderMap, HeaderError> {
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
    let mut mapped = vec![false; found.len()];
    for column in &spec.columns {
        let wanted = normalise(&column.source);
        let mut positions = found
            .iter()
            .enumerate()
            .filter(|(_, f)| **f == wanted)
            .map(|(i, _)| i as u32);
        match (positions.next(), positions.next()) {
            (Some(first), None) => {
                mapped[first as usize] = true;
                columns.push(first)
            }
            (Some(first), Some(second)) => {
                return Err(HeaderError::DuplicateColumn {
                    line,
                    name: column.source.clone(),
                    first: first + 1,
                    second: second + 1,
                });
            }
            (None, _) if !column.required => columns.push(ABSENT),
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
        new_columns: new_columns(names, &mapped),
    })
}

/// The header's fields that no spec column maps, named as written; a repeated name gets
/// its field number (`note (field 7)`), so each keeps its own key in a rescued object.
fn new_columns(names: &[String], mapped: &[bool]) -> Vec<NewColumn> {
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| !mapped[*i])
        .map(|(i, raw)| {
            let written = raw.trim_start_matches('\u{feff}').trim();
            let name = if written.is_empty() {
                format!("field_{}", i + 1)
            } else if seen.insert(written.to_lowercase()) {
                written.to_string()
            } else {
                format!("{written} (field {})", i + 1)
            };
            NewColumn {
                name,
                field: i as u32,
                blank: written.is_empty(),
            }
        })
        .collect()
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

    fn drifting(extra: &str) -> DatasetSpec {
        let text = format!(
            r#"
name = "t"
key_prefix = "t/"
conflict_key = ["id"]
{extra}
[[columns]]
name = "id"
source = "ID"
type = "integer"
nullable = false
[[columns]]
name = "v"
source = "Value"
type = "numeric"
[[columns]]
name = "note"
source = "Note"
type = "text"
required = false
"#
        );
        DatasetSpec::from_toml("t", &text).unwrap()
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let map = resolve(&spec(1), &[row(&["extra", "value", " ID "])], &[1]).unwrap();
        assert_eq!(
            map,
            HeaderMap {
                field_count: 3,
                columns: vec![2, 1],
                new_columns: vec![NewColumn {
                    name: "extra".into(),
                    field: 0,
                    blank: false,
                }],
            }
        );
    }

    #[test]
    fn an_optional_column_the_file_lacks_is_absent_and_a_required_one_still_rejects() {
        let map = resolve(&drifting(""), &[row(&["ID", "Value"])], &[1]).unwrap();
        assert_eq!(map.columns, vec![0, 1, ABSENT]);
        assert_eq!(map.absent(&drifting("")), vec!["note"]);
        let err = resolve(&drifting(""), &[row(&["ID", "Note"])], &[1]).unwrap_err();
        assert!(err.to_string().contains("lacks column(s) \"Value\""), "{err}");
    }

    #[test]
    fn new_columns_are_named_as_written_with_blank_and_repeated_headers_told_apart() {
        let map = resolve(
            &drifting(""),
            &[row(&["ID", " Region ", "Value", "", "region", "Note"])],
            &[1],
        )
        .unwrap();
        let names: Vec<&str> = map.new_columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["Region", "field_4", "region (field 5)"]);
        let announced: Vec<&str> = map.named_new_columns().map(|c| c.name.as_str()).collect();
        assert_eq!(announced, vec!["Region", "region (field 5)"]);
    }

    #[test]
    fn on_new_columns_reject_names_them_and_the_fix() {
        let spec = drifting("on_new_columns = \"reject\"");
        let err = resolve(&spec, &[row(&["ID", "Value", "Region", "Plant type"])], &[3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("\"Region\", \"Plant type\""), "{err}");
        assert!(err.contains("penstock infer --update t FILE"), "{err}");
        // A trailing delimiter (a blank header) is not a new column.
        assert!(resolve(&spec, &[row(&["ID", "Value", ""])], &[1]).is_ok());
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
