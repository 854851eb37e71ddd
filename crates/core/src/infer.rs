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

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::coerce::{Value, coerce};
use crate::spec::{ColumnSpec, ColumnType};

/// What to infer from, and how to name the result.
#[derive(Debug, Clone)]
pub struct InferOptions {
    /// Dataset (and table) name: a lowercase SQL identifier.
    pub name: String,
    /// Key prefix the dataset will own in the store.
    pub key_prefix: String,
    /// Where the sample came from (for the comments).
    pub source: String,
    /// At most this many data records are examined.
    pub max_records: usize,
    /// The migration's version (e.g. a UTC timestamp `YYYYMMDDHHMMSS`).
    pub version: String,
}

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
const MAX_KEY_COLUMNS: usize = 3;
/// Only the columns with the most distinct values are combined into key candidates.
const KEY_CANDIDATES: usize = 12;

struct Record {
    line: u64,
    fields: Vec<String>,
}

/// Infers a spec and a migration from the first bytes of a file.
pub fn infer(bytes: &[u8], options: &InferOptions) -> Result<Inferred, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Err(e) = std::str::from_utf8(bytes) {
        // A sample cut mid-character is fine; anything else is not UTF-8.
        if e.error_len().is_some() {
            return Err(format!(
                "the file is not UTF-8 (invalid byte at offset {}); penstock reads UTF-8 only: convert it first, e.g. `iconv -f latin1 -t utf-8`",
                e.valid_up_to()
            ));
        }
    }
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

    let key = conflict_key(&mut columns, &data, width);

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

    let spec_toml = spec_toml(
        options,
        delimiter,
        &delimiter_evidence,
        header_rows,
        names_row,
        &names_evidence,
        data.len(),
        ragged,
        width,
        &columns,
        &key,
    );
    let (up_sql, down_sql) = migration(options, &columns, &key);
    Ok(Inferred {
        spec_toml,
        up_sql,
        down_sql,
        summary,
    })
}

fn read_records(bytes: &[u8], delimiter: u8, limit: usize) -> Vec<Record> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes);
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    // Stops at the end, or at a sample cut mid-record: what was read is enough.
    while let Ok(true) = reader.read_record(&mut record) {
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        out.push(Record {
            line,
            fields: record.iter().map(str::to_string).collect(),
        });
        if out.len() >= limit {
            break;
        }
    }
    out
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

/// Looks like a number in any form penstock reads (spreadsheet forms included).
fn numberish(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty() && coerce(s, &probe(ColumnType::Numeric, true), &[]).is_ok()
}

fn probe(ty: ColumnType, spreadsheet: bool) -> ColumnSpec {
    ColumnSpec {
        name: "probe".into(),
        source: "probe".into(),
        ty,
        nullable: true,
        trim: true,
        thousands: spreadsheet.then_some(','),
        accounting_negatives: spreadsheet,
        case: None,
    }
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
    let mut used: HashSet<String> = ["source_file_id", "source_line", "loaded_at"]
        .into_iter()
        .map(String::from)
        .collect();
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let source = h.trim().to_string();
            let mut base = snake_case(&source);
            if base.is_empty() {
                base = format!("column_{}", i + 1);
            }
            let mut name = base.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}_{n}");
                n += 1;
            }
            (name, source)
        })
        .collect()
}

/// `Plant state abbreviation` → `plant_state_abbreviation`; `PNAME` → `pname`;
/// `NetGen (MWh)` → `net_gen_mwh`.
pub fn snake_case(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            let boundary = c.is_ascii_uppercase() && i > 0 && chars[i - 1].is_ascii_lowercase() && !out.ends_with('_');
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let mut out = out.trim_end_matches('_').to_string();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out = format!("c_{out}");
    }
    out.truncate(63);
    out.trim_end_matches('_').to_string()
}

struct Column {
    name: String,
    source: String,
    description: String,
    ty: ColumnType,
    /// For timestamps: whether values carry a UTC offset.
    with_zone: bool,
    thousands: bool,
    accounting: bool,
    nullable: bool,
    nulls: usize,
    values: usize,
    distinct: usize,
    examples: Vec<String>,
    evidence: String,
    /// Integers increasing by one from record to record: a row number, not a key.
    row_number: bool,
}

impl Column {
    fn infer(name: String, source: String, description: String, raw: &[&str]) -> Column {
        let present: Vec<&str> = raw.iter().map(|v| v.trim()).filter(|v| !v.is_empty()).collect();
        let distinct: HashSet<&str> = present.iter().copied().collect();
        let mut examples: Vec<String> = Vec::new();
        for v in &present {
            if examples.len() == 3 {
                break;
            }
            if !examples.iter().any(|e| e == v) {
                examples.push(v.to_string());
            }
        }
        let all = |ty: ColumnType, spreadsheet: bool| {
            let spec = probe(ty, spreadsheet);
            !present.is_empty() && present.iter().all(|v| coerce(v, &spec, &[]).is_ok())
        };
        let leading_zero = present
            .iter()
            .find(|v| v.len() > 1 && v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit()));
        let plain_integers = present.iter().all(|v| {
            let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        });
        let thousands = present.iter().any(|v| v.contains(','));
        let accounting = present.iter().any(|v| v.starts_with('('));
        let mut with_zone = false;
        let (ty, evidence) = if present.is_empty() {
            (
                ColumnType::Text,
                "every sampled value is empty, so text is the safe choice".to_string(),
            )
        } else if let Some(v) = leading_zero.filter(|_| plain_integers) {
            (
                ColumnType::Text,
                format!("digits only, but {v:?} has a leading zero that a number would lose: an identifier"),
            )
        } else if plain_integers && all(ColumnType::Integer, false) {
            (
                ColumnType::Integer,
                "every value is a whole number within integer range".into(),
            )
        } else if plain_integers && all(ColumnType::Bigint, false) {
            (
                ColumnType::Bigint,
                "every value is a whole number, some beyond integer range".into(),
            )
        } else if all(ColumnType::Numeric, true) {
            let mut forms = vec!["every value is a number"];
            if thousands {
                forms.push("with ',' thousands separators (\"1,234\")");
            }
            if accounting {
                forms.push("with accounting negatives (\"(12)\")");
            }
            (ColumnType::Numeric, forms.join(", ") + "; kept exact")
        } else if present.iter().any(|v| v.chars().any(|c| c.is_ascii_alphabetic())) && all(ColumnType::Boolean, false)
        {
            (
                ColumnType::Boolean,
                "every value is true/false, yes/no, t/f or y/n".into(),
            )
        } else if all(ColumnType::Date, false) {
            (
                ColumnType::Date,
                "every value is a calendar date (YYYY-MM-DD or M/D/YYYY)".into(),
            )
        } else if all(ColumnType::Timestamp, false) {
            with_zone = present.iter().all(|v| {
                matches!(coerce(v, &probe(ColumnType::Timestamp, false), &[]), Ok(Value::Timestamp(t)) if t.len() > 19 && (t.ends_with(|c: char| c.is_ascii_digit()) && t[19..].contains(['+', '-'])))
            });
            (
                ColumnType::Timestamp,
                format!(
                    "every value is a date and time{}",
                    if with_zone {
                        " with a UTC offset"
                    } else {
                        " (no UTC offset)"
                    }
                ),
            )
        } else {
            let odd = present
                .iter()
                .find(|v| !numberish(v))
                .map(|v| format!("; e.g. {v:?} is not a number"))
                .unwrap_or_default();
            (ColumnType::Text, format!("values are free text{odd}"))
        };
        let row_number = ty == ColumnType::Integer
            && present.len() == raw.len()
            && present.len() > 1
            && present
                .windows(2)
                .all(|w| w[1].parse::<i64>().ok() == w[0].parse::<i64>().ok().map(|n| n + 1));
        let nulls = raw.len() - present.len();
        Column {
            name,
            source,
            description,
            ty,
            with_zone,
            thousands: ty == ColumnType::Numeric && thousands,
            accounting: ty == ColumnType::Numeric && accounting,
            nullable: nulls > 0,
            nulls,
            values: raw.len(),
            distinct: distinct.len(),
            examples,
            evidence,
            row_number,
        }
    }

    fn type_word(&self) -> &'static str {
        self.ty.name()
    }

    fn sql_type(&self) -> &'static str {
        match self.ty {
            ColumnType::Text => "text",
            ColumnType::Integer => "integer",
            ColumnType::Bigint => "bigint",
            ColumnType::Numeric => "numeric",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Timestamp if self.with_zone => "timestamptz",
            ColumnType::Timestamp => "timestamp",
        }
    }

    fn key_eligible(&self) -> bool {
        !self.nullable
            && !self.row_number
            && matches!(
                self.ty,
                ColumnType::Text | ColumnType::Integer | ColumnType::Bigint | ColumnType::Date
            )
    }
}

struct Key {
    columns: Vec<String>,
    evidence: Vec<String>,
}

fn conflict_key(columns: &mut [Column], data: &[&Record], width: usize) -> Key {
    let rows: Vec<&Record> = data.iter().copied().filter(|r| r.fields.len() == width).collect();
    let mut evidence = Vec::new();
    let constant: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i].key_eligible() && columns[i].distinct == 1 && rows.len() > 1)
        .collect();
    for &i in &constant {
        evidence.push(format!(
            "{} is {:?} in every sampled record: a file-level partition (a year, a region), kept in the key so files of other partitions do not overwrite these rows",
            columns[i].name, columns[i].examples[0]
        ));
    }
    let mut candidates: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i].key_eligible() && !constant.contains(&i))
        .collect();
    candidates.sort_by_key(|&i| std::cmp::Reverse(columns[i].distinct));
    candidates.truncate(KEY_CANDIDATES);
    for (i, c) in columns.iter().enumerate() {
        if c.row_number {
            evidence.push(format!(
                "{} counts records one by one: a row number, not part of the key",
                columns[i].name
            ));
        }
    }

    let duplicates = |set: &[usize]| -> (usize, Option<(u64, u64)>) {
        let mut seen: HashMap<Vec<&str>, u64> = HashMap::with_capacity(rows.len());
        let mut dups = 0;
        let mut example = None;
        for r in &rows {
            let key: Vec<&str> = set.iter().map(|&i| r.fields[i].trim()).collect();
            if let Some(first) = seen.insert(key, r.line) {
                dups += 1;
                example.get_or_insert((first, r.line));
            }
        }
        (dups, example)
    };

    /// Duplicates left, the column set, and the lines of a first duplicate pair.
    type Candidate = (usize, Vec<usize>, Option<(u64, u64)>);
    let mut best: Option<Candidate> = None;
    let mut smaller_sets = Vec::new();
    'sizes: for size in 1..=MAX_KEY_COLUMNS.min(candidates.len()) {
        for set in combinations(&candidates, size) {
            let mut ordered = set.clone();
            ordered.sort();
            let (dups, example) = duplicates(&ordered);
            let better = best.as_ref().is_none_or(|(d, _, _)| dups < *d);
            if better {
                if let Some((d, prev, _)) = &best {
                    smaller_sets.push(format!("({}) leaves {d}", names(columns, prev)));
                }
                best = Some((dups, ordered, example));
                if dups == 0 {
                    break 'sizes;
                }
            }
        }
    }
    let mut key: Vec<usize> = constant.clone();
    match best {
        Some((dups, set, example)) => {
            key.extend(&set);
            if dups == 0 {
                evidence.push(format!(
                    "({}) is unique in the {} sampled records{}",
                    names(columns, &set),
                    rows.len(),
                    if smaller_sets.is_empty() {
                        String::new()
                    } else {
                        format!("; fewer columns are not ({})", smaller_sets.join(", "))
                    }
                ));
            } else {
                let (a, b) = example.unwrap_or((0, 0));
                evidence.push(format!(
                    "({}) leaves the fewest duplicate keys of any set of up to {MAX_KEY_COLUMNS} columns: {dups} in {} records (e.g. lines {a} and {b}); on load the later line wins and the earlier counts as superseded{}",
                    names(columns, &set),
                    rows.len(),
                    if smaller_sets.is_empty() {
                        String::new()
                    } else {
                        format!("; smaller sets leave more ({})", smaller_sets.join(", "))
                    }
                ));
            }
        }
        None if key.is_empty() => {
            // Nothing eligible: every non-null column, so that at least nothing collides wrongly.
            key = (0..columns.len()).filter(|&i| !columns[i].nullable).collect();
            evidence.push(
                "no text, integer or date column without empty values could serve as a key; every non-null column is used — choose a better key by hand".into(),
            );
        }
        None => {}
    }
    key.sort();
    for &i in &key {
        columns[i].nullable = false;
    }
    Key {
        columns: key.iter().map(|&i| columns[i].name.clone()).collect(),
        evidence,
    }
}

fn names(columns: &[Column], set: &[usize]) -> String {
    set.iter()
        .map(|&i| columns[i].name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn combinations(items: &[usize], size: usize) -> Vec<Vec<usize>> {
    if size == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for (i, &first) in items.iter().enumerate() {
        for mut rest in combinations(&items[i + 1..], size - 1) {
            rest.insert(0, first);
            out.push(rest);
        }
    }
    out
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn comment(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[allow(clippy::too_many_arguments)]
fn spec_toml(
    options: &InferOptions,
    delimiter: u8,
    delimiter_evidence: &str,
    header_rows: usize,
    names_row: usize,
    names_evidence: &str,
    sampled: usize,
    ragged: usize,
    width: usize,
    columns: &[Column],
    key: &Key,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Dataset spec inferred by `penstock infer` from {}",
        comment(&options.source)
    );
    let _ = writeln!(
        t,
        "# ({sampled} data records sampled). Review it: every choice says why it was made."
    );
    if ragged > 0 {
        let _ = writeln!(
            t,
            "# Note: {ragged} sampled records do not have {width} fields; they will be quarantined."
        );
    }
    let _ = writeln!(t, "name = {}", toml_string(&options.name));
    let _ = writeln!(t, "table = {}", toml_string(&options.name));
    let _ = writeln!(t, "key_prefix = {}", toml_string(&options.key_prefix));
    for line in &key.evidence {
        let _ = writeln!(t, "# conflict key: {}", comment(line));
    }
    let _ = writeln!(
        t,
        "conflict_key = [{}]",
        key.columns
            .iter()
            .map(|c| toml_string(c))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(t, "null_tokens = [\"\"]");
    let _ = writeln!(t);
    let _ = writeln!(t, "[csv]");
    let _ = writeln!(t, "# {}", comment(delimiter_evidence));
    let _ = writeln!(t, "delimiter = {}", toml_string(&(delimiter as char).to_string()));
    let _ = writeln!(t, "quote = '\"'");
    let _ = writeln!(
        t,
        "# the first {header_rows} record(s) hold no numbers while the records below do"
    );
    let _ = writeln!(t, "header_rows = {header_rows}");
    let _ = writeln!(t, "# {}", comment(names_evidence));
    let _ = writeln!(t, "names_row = {names_row}");
    let _ = writeln!(t, "encoding = \"utf-8\"");
    for c in columns {
        let _ = writeln!(t);
        let _ = writeln!(t, "[[columns]]");
        if !c.description.is_empty() {
            let _ = writeln!(t, "# {}", comment(&c.description));
        }
        let _ = writeln!(t, "# {}", comment(&c.evidence));
        let _ = writeln!(
            t,
            "# {} values, {} empty, {} distinct; e.g. {}",
            c.values,
            c.nulls,
            c.distinct,
            c.examples
                .iter()
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(t, "name = {}", toml_string(&c.name));
        let _ = writeln!(t, "source = {}", toml_string(&c.source));
        let _ = writeln!(t, "type = \"{}\"", c.type_word());
        let _ = writeln!(t, "nullable = {}", c.nullable);
        if c.thousands {
            let _ = writeln!(t, "thousands = \",\"");
        }
        if c.accounting {
            let _ = writeln!(t, "accounting_negatives = true");
        }
    }
    t
}

fn migration(options: &InferOptions, columns: &[Column], key: &Key) -> (String, String) {
    let table = quote_ident(&options.name);
    let mut up = String::new();
    let _ = writeln!(
        up,
        "-- Table for the dataset {:?}, inferred by `penstock infer` from {}.",
        options.name,
        comment(&options.source)
    );
    let _ = writeln!(up, "CREATE TABLE {table} (");
    for c in columns {
        let _ = writeln!(
            up,
            "    {} {}{},",
            quote_ident(&c.name),
            c.sql_type(),
            if c.nullable { "" } else { " NOT NULL" }
        );
    }
    let _ = writeln!(
        up,
        "    -- Lineage: which file version and physical line the row came from."
    );
    let _ = writeln!(up, "    source_file_id bigint NOT NULL,");
    let _ = writeln!(up, "    source_line bigint NOT NULL,");
    let _ = writeln!(up, "    loaded_at timestamptz NOT NULL DEFAULT now(),");
    let _ = writeln!(
        up,
        "    CONSTRAINT {} UNIQUE ({})",
        quote_ident(&constraint_name(&options.name, "key")),
        key.columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(up, ");");
    let _ = writeln!(
        up,
        "CREATE INDEX {} ON {table} (source_file_id);",
        quote_ident(&constraint_name(&options.name, "source_idx"))
    );
    let down = format!("DROP TABLE IF EXISTS {table};\n");
    (up, down)
}

fn constraint_name(table: &str, suffix: &str) -> String {
    let mut base = table.to_string();
    base.truncate(62 - suffix.len());
    format!("{base}_{suffix}")
}

/// Quotes an identifier only when PostgreSQL needs it (a reserved word).
fn quote_ident(name: &str) -> String {
    const RESERVED: &[&str] = &[
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_catalog",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    ];
    if RESERVED.contains(&name) {
        format!("\"{name}\"")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::DatasetSpec;

    fn options() -> InferOptions {
        InferOptions {
            name: "readings".into(),
            key_prefix: "readings/".into(),
            source: "test.csv".into(),
            max_records: 100_000,
            version: "20261130000000".into(),
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
}
