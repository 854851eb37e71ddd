//! `penstock infer --update <dataset> FILE`: a file of a configured dataset whose header
//! gained columns gets them proposed as `[[columns]]` for the spec (typed from the sample,
//! `required = false` and nullable, since the files before it lack them) and as an
//! `ALTER TABLE … ADD COLUMN` migration. The file is read with the spec's own dialect and
//! header rows, and its declared columns must all be there.

use super::column::Column;
use super::sample::{read_records_with, unique_names, utf8_sample};
use super::write::{add_columns_migration, added_columns_toml};
use crate::header;
use crate::spec::DatasetSpec;

/// What `--update` proposes.
#[derive(Debug, Clone)]
pub struct Update {
    /// The new columns' names in the table, in file order (empty: the header matches).
    pub columns: Vec<String>,
    /// `[[columns]]` tables to append to the spec.
    pub spec_toml: String,
    pub up_sql: String,
    pub down_sql: String,
    /// One line per new column, for the terminal.
    pub summary: Vec<String>,
}

/// Proposes the columns of `bytes`' header that `spec` does not declare. `source` names the
/// file in the comments; at most `max_records` data records are sampled.
pub fn update(bytes: &[u8], spec: &DatasetSpec, source: &str, max_records: usize) -> Result<Update, String> {
    let bytes = utf8_sample(bytes)?;
    let header_rows = spec.csv.header_rows as usize;
    let records = read_records_with(&spec.csv.reader_builder(), bytes, max_records + header_rows);
    let (headers, data) = records.split_at(header_rows.min(records.len()));
    let fields: Vec<Vec<String>> = headers.iter().map(|r| r.fields.clone()).collect();
    let lines: Vec<u64> = headers.iter().map(|r| r.line).collect();
    // Resolved as loading resolves it, but never rejected for the new columns themselves.
    let map = header::resolve_declared(spec, &fields, &lines).map_err(|e| e.to_string())?;
    let width = map.field_count as usize;
    let new: Vec<&header::NewColumn> = map.named_new_columns().collect();
    let sources = map.new_column_names();
    let taken = spec.columns.iter().map(|c| c.name.as_str()).chain(spec.rescue());
    let columns: Vec<Column> = unique_names(&sources, taken)
        .into_iter()
        .zip(&new)
        .map(|((name, source), column)| {
            let values: Vec<&str> = data
                .iter()
                .filter(|r| r.fields.len() == width)
                .map(|r| r.fields[column.field as usize].as_str())
                .collect();
            let mut inferred = Column::infer(name, source, String::new(), &values);
            inferred.nullable = true;
            inferred.required = false;
            inferred
        })
        .collect();
    let summary = columns
        .iter()
        .map(|c| format!("{:<24} {:<10} from {:?}", c.name, c.type_word(), c.source))
        .collect();
    let (up_sql, down_sql) = add_columns_migration(spec, source, &columns);
    Ok(Update {
        columns: columns.iter().map(|c| c.name.clone()).collect(),
        spec_toml: added_columns_toml(source, data.len(), &columns),
        up_sql,
        down_sql,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ColumnType;

    const SPEC: &str = r#"
name = "plants"
key_prefix = "plants/"
conflict_key = ["id"]
[csv]
header_rows = 2
[[columns]]
name = "id"
source = "ID"
type = "integer"
nullable = false
[[columns]]
name = "mwh"
source = "MWh"
type = "numeric"
"#;

    fn spec() -> DatasetSpec {
        DatasetSpec::from_toml("plants.toml", SPEC).unwrap()
    }

    #[test]
    fn the_new_columns_of_a_file_are_proposed_optional_and_typed_with_their_migration() {
        let csv = "Plant id,Output,Plant region,Fuel\nID,MWh,Region,Fuel Type\n1,2.5,\"1,200\",Gas\n2,3,17,\n";
        let update = update(csv.as_bytes(), &spec(), "plants_2024.csv", 1000).unwrap();
        assert_eq!(update.columns, vec!["region", "fuel_type"]);
        let appended = format!("{SPEC}\n{}", update.spec_toml);
        let grown = DatasetSpec::from_toml("plants.toml", &appended).unwrap_or_else(|e| panic!("{e}\n{appended}"));
        let region = grown.columns.iter().find(|c| c.name == "region").unwrap();
        assert_eq!(region.ty, ColumnType::Integer);
        assert_eq!(region.thousands, Some(','));
        assert!(!region.required && region.nullable);
        let fuel = grown.columns.iter().find(|c| c.name == "fuel_type").unwrap();
        assert_eq!((fuel.ty, fuel.source.as_str()), (ColumnType::Text, "Fuel Type"));
        assert!(
            update
                .up_sql
                .contains("ALTER TABLE plants\n    ADD COLUMN region integer,\n    ADD COLUMN fuel_type text;"),
            "{}",
            update.up_sql
        );
        assert!(
            update.down_sql.contains("DROP COLUMN IF EXISTS region"),
            "{}",
            update.down_sql
        );
    }

    #[test]
    fn a_header_that_matches_the_spec_proposes_nothing() {
        let update = update(b"a,b\nID,MWh\n1,2\n", &spec(), "f.csv", 10).unwrap();
        assert!(update.columns.is_empty());
    }

    #[test]
    fn a_file_that_lacks_a_declared_column_is_refused_as_loading_would() {
        let err = update(b"a,b\nID,Region\n1,2\n", &spec(), "f.csv", 10).unwrap_err();
        assert!(err.contains("lacks column(s) \"MWh\""), "{err}");
    }
}
