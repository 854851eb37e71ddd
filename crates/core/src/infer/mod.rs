//! `penstock infer`: reads a sample of a CSV file and proposes a dataset spec and a
//! migration, with the evidence for every choice written beside it as comments.
//!
//! What is inferred, in order:
//! 1. the delimiter: the candidate (`,` `;` tab `|`) that splits the most records into the
//!    same number of fields (more than one);
//! 2. the header rows: the leading records that hold no number while the records below do;
//!    the names row is the last of them whose values are unique and non-empty;
//! 3. each column's type, from every sampled value: integer/bigint, exact numeric (with
//!    `"1,234"` thousands separators and `(12)` accounting negatives when the sample has
//!    them), boolean, date, timestamp, else text; integers with leading zeros stay text
//!    (identifiers); nullable when the sample has an empty value;
//! 4. the conflict key: columns constant in the sample (a year, a region: a file-level
//!    partition) first, then the smallest set of other non-null text/integer/date columns
//!    that leaves the fewest duplicate keys (row-number columns and measures are skipped).

mod column;
mod input;
mod key;
mod sample;
mod update;
mod write;

use std::collections::{HashMap, HashSet};

use column::{Column, numberish};
pub use input::{InferOptions, PARTITION_PROPOSAL_BYTES};
use input::{Layout, Partition, Record};
pub use sample::snake_case;
use sample::{read_records, unique_names, utf8_sample};
pub use update::{Update, update};

/// The proposed spec (TOML) and migration (up and down SQL).
#[derive(Debug, Clone)]
pub struct Inferred {
    pub spec_toml: String,
    pub up_sql: String,
    pub down_sql: String,
    /// One line per decision, for the terminal.
    pub summary: Vec<String>,
}

const DELIMITERS: [(char, &str); 4] = [(',', "comma"), (';', "semicolon"), ('\t', "tab"), ('|', "pipe")];
const MAX_HEADER_ROWS: usize = 5;

/// A large file whose key has a column constant in the sample (a year) gets a table
/// partitioned by it: the first such column, integers (a year) before text (a region).
fn partition_proposal(options: &InferOptions, columns: &[Column], key: &key::Key) -> Option<Partition> {
    if options.file_bytes < PARTITION_PROPOSAL_BYTES {
        return None;
    }
    let constant: Vec<&Column> = key
        .constant
        .iter()
        .filter_map(|name| columns.iter().find(|c| &c.name == name))
        .collect();
    let integer = |c: &Column| matches!(c.ty, crate::spec::ColumnType::Integer | crate::spec::ColumnType::Bigint);
    let chosen = constant.iter().find(|c| integer(c)).or_else(|| constant.first())?;
    let (value, literal) = partition_value(chosen, chosen.examples.first()?)?;
    Some(Partition {
        column: chosen.name.clone(),
        value,
        literal,
    })
}

/// A sampled value of `column` as loading stores it, and as an SQL literal (the partition's
/// bound must be the stored value: `2023-01-05` for `1/5/2023`, `2023` for `"2,023"`).
fn partition_value(column: &Column, raw: &str) -> Option<(String, String)> {
    use crate::coerce::Value;
    let spec = crate::spec::ColumnSpec {
        thousands: column.thousands.then_some(','),
        accounting_negatives: column.accounting,
        ..column::probe(column.ty, false)
    };
    let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
    Some(match crate::coerce::coerce(raw, &spec, &[]).ok()? {
        Value::Null => return None,
        Value::Integer(i) => (i.to_string(), i.to_string()),
        Value::Numeric(n) => (n.clone(), n),
        Value::Boolean(b) => (b.to_string(), b.to_string()),
        Value::Date(s) | Value::Timestamp(s) | Value::Text(s) => (s.clone(), quoted(&s)),
    })
}

/// Infers a spec and a migration from the first bytes of a file.
pub fn infer(bytes: &[u8], options: &InferOptions) -> Result<Inferred, String> {
    let bytes = utf8_sample(bytes)?;
    let (delimiter, delimiter_evidence) = sniff_delimiter(bytes)?;
    let records = read_records(bytes, delimiter, options.max_records + MAX_HEADER_ROWS);
    if records.is_empty() {
        return Err("the file holds no records".into());
    }
    let width = mode(records.iter().map(|r| r.fields.len()));
    let header_rows = header_rows(&records, width);
    if header_rows == 0 {
        return Err(
            "the first record already holds numbers, so the file seems to have no header row; penstock finds columns by name: add a header row".into(),
        );
    }
    let (names_row, names_evidence) = names_row(&records[..header_rows]);
    let data: Vec<&Record> = records[header_rows..].iter().take(options.max_records).collect();
    if data.is_empty() {
        return Err(format!(
            "the file holds {header_rows} header record(s) and no data to learn types from"
        ));
    }
    let ragged = data.iter().filter(|r| r.fields.len() != width).count();

    let names = column_names(&records[names_row - 1].fields[..width.min(records[names_row - 1].fields.len())]);
    let mut columns: Vec<Column> = names
        .into_iter()
        .enumerate()
        .map(|(i, (name, source))| {
            let values: Vec<&str> = data
                .iter()
                .filter(|r| r.fields.len() == width)
                .map(|r| r.fields[i].as_str())
                .collect();
            let descriptions: Vec<&str> = records[..header_rows]
                .iter()
                .enumerate()
                .filter(|(row, _)| row + 1 != names_row)
                .filter_map(|(_, r)| r.fields.get(i).map(|s| s.trim()))
                .filter(|s| !s.is_empty())
                .collect();
            Column::infer(name, source, descriptions.join(" / "), &values)
        })
        .collect();

    let key = key::conflict_key(&mut columns, &data, width);

    let mut summary = vec![
        format!("delimiter: {}", delimiter_evidence),
        format!("header rows: {header_rows}, names in row {names_row}"),
    ];
    for c in &columns {
        summary.push(format!(
            "{:<24} {:<10} {}",
            c.name,
            c.type_word(),
            if c.nullable { "nullable" } else { "not null" }
        ));
    }
    summary.push(format!("conflict key: {}", key.columns.join(", ")));
    let partition = partition_proposal(options, &columns, &key);
    if let Some(p) = &partition {
        summary.push(format!(
            "partitioned by {} (LIST; the file is {} MiB): a partition for {}, and a DEFAULT one",
            p.column,
            options.file_bytes >> 20,
            p.value
        ));
    }

    let layout = Layout {
        delimiter,
        delimiter_evidence,
        header_rows,
        names_row,
        names_evidence,
        sampled: data.len(),
        ragged,
        width,
    };
    let spec_toml = write::spec_toml(options, &layout, &columns, &key, partition.as_ref());
    let (up_sql, down_sql) = write::migration(options, &columns, &key, partition.as_ref());
    Ok(Inferred {
        spec_toml,
        up_sql,
        down_sql,
        summary,
    })
}

fn mode(values: impl Iterator<Item = usize>) -> usize {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(v, n)| (*n, *v))
        .map(|(v, _)| v)
        .unwrap_or(0)
}

fn sniff_delimiter(bytes: &[u8]) -> Result<(u8, String), String> {
    let mut scored = Vec::new();
    for (d, word) in DELIMITERS {
        let records = read_records(bytes, d as u8, 200);
        let width = mode(records.iter().map(|r| r.fields.len()));
        let agreeing = records.iter().filter(|r| r.fields.len() == width).count();
        scored.push((d, word, width, agreeing, records.len()));
    }
    let best = scored
        .iter()
        .filter(|s| s.2 > 1)
        .max_by_key(|s| (s.3, s.2))
        .ok_or("no delimiter (comma, semicolon, tab, pipe) splits the records into more than one field")?;
    let others: Vec<String> = scored
        .iter()
        .filter(|s| s.0 != best.0)
        .map(|s| format!("{} {} field(s)", s.1, s.2))
        .collect();
    Ok((
        best.0 as u8,
        format!(
            "{}: {} of the first {} records have {} fields (by the others: {})",
            best.1,
            best.3,
            best.4,
            best.2,
            others.join(", ")
        ),
    ))
}

/// Leading records with no number in a column that holds numbers below.
fn header_rows(records: &[Record], width: usize) -> usize {
    // Learn which columns are numeric from records surely below the header.
    let sample: Vec<&Record> = records[MAX_HEADER_ROWS.min(records.len() / 2)..].iter().collect();
    let numeric_columns: Vec<usize> = (0..width)
        .filter(|&i| {
            let values: Vec<&str> = sample
                .iter()
                .filter_map(|r| r.fields.get(i).map(String::as_str))
                .filter(|v| !v.trim().is_empty())
                .collect();
            !values.is_empty() && values.iter().filter(|v| numberish(v)).count() * 2 > values.len()
        })
        .collect();
    if numeric_columns.is_empty() {
        return 1; // all text: assume one header row
    }
    records
        .iter()
        .take(MAX_HEADER_ROWS)
        .take_while(|r| {
            !numeric_columns
                .iter()
                .any(|&i| r.fields.get(i).is_some_and(|v| numberish(v)))
        })
        .count()
}

/// The last header row whose values are unique and non-empty (codes beat descriptions).
fn names_row(headers: &[Record]) -> (usize, String) {
    for (i, r) in headers.iter().enumerate().rev() {
        let values: Vec<&str> = r.fields.iter().map(|f| f.trim()).collect();
        let unique: HashSet<&str> = values.iter().copied().collect();
        if values.iter().all(|v| !v.is_empty()) && unique.len() == values.len() {
            let evidence = if headers.len() > 1 {
                format!(
                    "row {} is the last header row whose values are all present and unique",
                    i + 1
                )
            } else {
                "the only header row".into()
            };
            return (i + 1, evidence);
        }
    }
    (
        headers.len(),
        "no header row has unique non-empty values; the last one is used and duplicates get a suffix".into(),
    )
}

/// snake_case names, unique, never clashing with the lineage columns.
fn column_names(headers: &[String]) -> Vec<(String, String)> {
    unique_names(headers, std::iter::empty())
}

#[cfg(test)]
mod tests;
