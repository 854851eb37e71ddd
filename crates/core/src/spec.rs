//! Dataset specs: a TOML file per dataset under `config/datasets/` declares which objects it
//! matches, the CSV dialect, the target table, every column's source header, type and
//! transforms, and the conflict key. Adding a dataset needs this file and a migration, no Rust.
//!
//! This module only parses and checks a spec for internal consistency; checking it against
//! the live table is the database layer's job.

use serde::Deserialize;

/// One dataset, as declared in `config/datasets/<name>.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Unique name; also the default table name.
    pub name: String,
    /// Target table (defaults to `name`).
    #[serde(default)]
    pub table: Option<String>,
    /// Objects whose key starts with this prefix belong to the dataset.
    pub key_prefix: String,
    #[serde(default)]
    pub csv: CsvDialect,
    /// Column names (target table) that form the unique conflict key.
    pub conflict_key: Vec<String>,
    /// Strings that mean "no value" in every column (compared after trimming).
    #[serde(default = "default_null_tokens")]
    pub null_tokens: Vec<String>,
    /// The largest share (0 to 1) of data records that may be quarantined; a file with more
    /// is rejected before any row loads. Unset: no limit.
    #[serde(default)]
    pub max_bad_rows: Option<f64>,
    /// The column the table is partitioned by (`PARTITION BY LIST` or `RANGE` on it), for a
    /// table too large to keep in one piece: it must be in the conflict key, as PostgreSQL
    /// requires of a partitioned table's unique constraint. Loading is the same (`ON
    /// CONFLICT` reaches the partition that holds the key); the start-up check confirms the
    /// table is partitioned so.
    #[serde(default)]
    pub partition_by: Option<String>,
    /// The PostgreSQL database that holds this dataset's table, its file versions, ledger
    /// and quarantine, when not `database_url`: so independent datasets scale on separate
    /// PostgreSQL clusters. `PENSTOCK_DATABASE_URL_<NAME>` (the name upper-cased, `-` as
    /// `_`) overrides it, to keep a password out of the spec.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Removed: refreshing a materialized view when a file finished cost every file the
    /// whole table. Kept only to refuse it with a message that says what to do instead.
    #[serde(default)]
    refresh_views: Option<toml::Value>,
    /// Which row stands when a file's row meets a row of the same key already in the table.
    #[serde(default)]
    pub on_conflict: OnConflict,
    /// What a file whose header has columns the spec does not declare does (schema drift).
    #[serde(default)]
    pub on_new_columns: OnNewColumns,
    /// With `on_new_columns = "rescue"`: the `jsonb` column that keeps each row's values of
    /// the columns the spec does not declare, as `{"header": "value as written"}`.
    #[serde(default = "default_rescue_column")]
    pub rescue_column: String,
    pub columns: Vec<ColumnSpec>,
}

/// Which row stands when two rows share a conflict key. Every policy is decided by lineage
/// (file version id, then line), never by arrival, so the table does not depend on the
/// order files and chunks are processed in.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// The row of the later file version (or the later line) replaces the earlier one.
    #[default]
    Update,
    /// The row of the earliest file version (or line) stays; later ones are counted as
    /// kept-existing, not as errors.
    Keep,
    /// As `update`, and every replaced row is written to `row_history` with its old and new
    /// lineage (by the table's `penstock_record_history` trigger).
    Record,
}

impl OnConflict {
    pub fn as_str(self) -> &'static str {
        match self {
            OnConflict::Update => "update",
            OnConflict::Keep => "keep",
            OnConflict::Record => "record",
        }
    }
}

/// What happens to a file whose header has columns the spec does not declare.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnNewColumns {
    /// Load the declared columns and raise one alert per file version naming the new ones.
    #[default]
    Alert,
    /// Load the declared columns and keep every row's other values in `rescue_column`.
    Rescue,
    /// Load the declared columns; say nothing (the file's record still names them).
    Ignore,
    /// Reject the file, naming the new columns.
    Reject,
}

impl OnNewColumns {
    pub fn as_str(self) -> &'static str {
        match self {
            OnNewColumns::Alert => "alert",
            OnNewColumns::Rescue => "rescue",
            OnNewColumns::Ignore => "ignore",
            OnNewColumns::Reject => "reject",
        }
    }
}

/// How the dataset's files are written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvDialect {
    /// Field delimiter, one ASCII character.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Quote character, one ASCII character.
    #[serde(default = "default_quote")]
    pub quote: char,
    /// How many records at the top of the file are headers (not data).
    #[serde(default = "default_header_rows")]
    pub header_rows: u32,
    /// Which of the header records (1-based) holds the column names.
    #[serde(default)]
    pub names_row: Option<u32>,
    /// Only `utf-8` is supported (a UTF-8 byte order mark is tolerated).
    #[serde(default = "default_encoding")]
    pub encoding: String,
    /// The largest field accepted; a larger one rejects the file (usually an unterminated
    /// quote that swallowed the rest of the file).
    #[serde(default = "default_max_field_bytes")]
    pub max_field_bytes: u64,
}

impl Default for CsvDialect {
    fn default() -> Self {
        CsvDialect {
            delimiter: default_delimiter(),
            quote: default_quote(),
            header_rows: default_header_rows(),
            names_row: None,
            encoding: default_encoding(),
            max_field_bytes: default_max_field_bytes(),
        }
    }
}

impl CsvDialect {
    /// The 1-based header record that holds the column names (the last header by default).
    pub fn names_row(&self) -> u32 {
        self.names_row.unwrap_or(self.header_rows)
    }

    /// A `csv` reader builder for this dialect that reads data records (no header handling:
    /// penstock finds headers itself) and tolerates ragged records so they can be quarantined.
    pub fn reader_builder(&self) -> csv::ReaderBuilder {
        let mut builder = csv::ReaderBuilder::new();
        builder
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter as u8)
            .quote(self.quote as u8);
        builder
    }
}

/// One target column.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Column name in the target table.
    pub name: String,
    /// Header name in the file (matched case-insensitively, surrounding spaces ignored).
    pub source: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Whether NULL is allowed (conflict-key columns never are).
    #[serde(default = "yes")]
    pub nullable: bool,
    /// Trim surrounding whitespace before anything else (default true).
    #[serde(default = "yes")]
    pub trim: bool,
    /// Accept thousands separators in numbers, e.g. `"20,961"`.
    #[serde(default)]
    pub thousands: Option<char>,
    /// Accept accounting negatives, e.g. `(2,443)` for -2443.
    #[serde(default)]
    pub accounting_negatives: bool,
    /// Change the case of text values.
    #[serde(default)]
    pub case: Option<Case>,
    /// Whether a file must have this column (default true). `false`: a file without it
    /// loads NULL there (a column added to the spec after older files were written).
    #[serde(default = "yes")]
    pub required: bool,
}

/// The value types penstock coerces to; each maps to one PostgreSQL type.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Text,
    Integer,
    Bigint,
    Numeric,
    Boolean,
    Date,
    /// Date and time of day, optionally with a UTC offset (ISO 8601, `T` or space).
    Timestamp,
}

impl ColumnType {
    /// The name a spec uses for this type.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "integer",
            ColumnType::Bigint => "bigint",
            ColumnType::Numeric => "numeric",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
        }
    }

    /// Whether values are numbers (thousands separators and accounting negatives apply).
    pub fn is_number(self) -> bool {
        matches!(self, ColumnType::Integer | ColumnType::Bigint | ColumnType::Numeric)
    }

    /// PostgreSQL type names (as `information_schema.columns.data_type` reports them) that
    /// can hold this type's values.
    pub fn compatible_pg_types(self) -> &'static [&'static str] {
        match self {
            ColumnType::Text => &["text", "character varying", "character"],
            ColumnType::Integer => &["integer", "bigint", "numeric"],
            ColumnType::Bigint => &["bigint", "numeric"],
            ColumnType::Numeric => &["numeric", "double precision", "real"],
            ColumnType::Boolean => &["boolean"],
            ColumnType::Date => &["date"],
            ColumnType::Timestamp => &["timestamp with time zone", "timestamp without time zone"],
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    Upper,
    Lower,
}

/// A spec that cannot be used, with the fix in the message.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("dataset spec {path}: {message}")]
    Invalid { path: String, message: String },
}

fn default_delimiter() -> char {
    ','
}
fn default_quote() -> char {
    '"'
}
fn default_header_rows() -> u32 {
    1
}
fn default_encoding() -> String {
    "utf-8".to_string()
}
fn default_max_field_bytes() -> u64 {
    1 << 20
}
fn default_null_tokens() -> Vec<String> {
    vec![String::new()]
}
fn default_rescue_column() -> String {
    "_rescued_data".to_string()
}
fn yes() -> bool {
    true
}

impl DatasetSpec {
    /// Parses and checks a spec; `path` is only used in error messages.
    pub fn from_toml(path: &str, text: &str) -> Result<DatasetSpec, SpecError> {
        let invalid = |message: String| SpecError::Invalid {
            path: path.to_string(),
            message,
        };
        let spec: DatasetSpec = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        spec.check().map_err(invalid)?;
        Ok(spec)
    }

    /// The table rows are loaded into.
    pub fn table(&self) -> &str {
        self.table.as_deref().unwrap_or(&self.name)
    }

    /// Whether an object key belongs to this dataset.
    pub fn matches(&self, key: &str) -> bool {
        key.starts_with(&self.key_prefix)
    }

    /// The `jsonb` column that keeps values of undeclared columns, if the spec rescues them.
    pub fn rescue(&self) -> Option<&str> {
        (self.on_new_columns == OnNewColumns::Rescue).then_some(self.rescue_column.as_str())
    }

    /// Indexes (into `columns`) of the conflict-key columns, in key order.
    pub fn key_indexes(&self) -> Vec<usize> {
        self.conflict_key
            .iter()
            .map(|k| {
                self.columns
                    .iter()
                    .position(|c| &c.name == k)
                    .expect("checked at load: every key column is a column")
            })
            .collect()
    }

    fn check(&self) -> Result<(), String> {
        let ident_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if !ident_ok(&self.name) {
            return Err(format!(
                "name {:?} must be a lowercase SQL identifier (a-z, 0-9, _)",
                self.name
            ));
        }
        if !ident_ok(self.table()) {
            return Err(format!(
                "table {:?} must be a lowercase SQL identifier (a-z, 0-9, _)",
                self.table()
            ));
        }
        if self.refresh_views.is_some() {
            return Err("refresh_views is no longer supported: a view refreshed when a file finishes costs every file the whole table. \
                 Delete the line and make the view a plain VIEW over the table (computed when read, through its indexes), \
                 as migrations/0008_plants_at_read_time.up.sql does for egrid_plants"
                .into());
        }
        if self.key_prefix.is_empty() {
            return Err(
                "key_prefix is empty; set the object-key prefix this dataset owns, e.g. \"egrid/generators/\"".into(),
            );
        }
        if !self.csv.delimiter.is_ascii() || !self.csv.quote.is_ascii() {
            return Err("csv.delimiter and csv.quote must be ASCII characters".into());
        }
        if !self.csv.encoding.eq_ignore_ascii_case("utf-8") && !self.csv.encoding.eq_ignore_ascii_case("utf8") {
            return Err(format!(
                "csv.encoding {:?} is not supported; use \"utf-8\"",
                self.csv.encoding
            ));
        }
        let names_row = self.csv.names_row();
        if names_row == 0 || names_row > self.csv.header_rows {
            return Err(format!(
                "csv.names_row is {names_row} but csv.header_rows is {}; the names row must be one of the header rows",
                self.csv.header_rows
            ));
        }
        if self.max_bad_rows.is_some_and(|m| !(0.0..=1.0).contains(&m)) {
            return Err("max_bad_rows is a share of the data records, between 0 and 1 (e.g. 0.05 for 5 %)".into());
        }
        if self.csv.max_field_bytes == 0 {
            return Err("csv.max_field_bytes must be at least 1".into());
        }
        if self.columns.is_empty() {
            return Err("no [[columns]]; declare at least one column".into());
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.columns {
            if !ident_ok(&c.name) {
                return Err(format!("column name {:?} must be a lowercase SQL identifier", c.name));
            }
            if ["source_file_id", "source_line", "loaded_at"].contains(&c.name.as_str()) {
                return Err(format!("column name {:?} is reserved for lineage; rename it", c.name));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(format!("column {:?} is declared twice", c.name));
            }
            if c.source.trim().is_empty() {
                return Err(format!("column {:?} has an empty source header", c.name));
            }
            if !c.required && !c.nullable {
                return Err(format!(
                    "column {:?} sets required = false but nullable = false: a file without it would load NULL there; \
                     make it nullable, or required",
                    c.name
                ));
            }
        }
        if let Some(rescue) = self.rescue() {
            if !ident_ok(rescue) {
                return Err(format!("rescue_column {rescue:?} must be a lowercase SQL identifier"));
            }
            if seen.contains(rescue) || ["source_file_id", "source_line", "loaded_at"].contains(&rescue) {
                return Err(format!(
                    "rescue_column {rescue:?} is also a declared or lineage column; name another jsonb column"
                ));
            }
        }
        if self.conflict_key.is_empty() {
            return Err("conflict_key is empty; name the columns that identify a record".into());
        }
        for k in &self.conflict_key {
            match self.columns.iter().find(|c| &c.name == k) {
                None => {
                    return Err(format!(
                        "conflict_key names {k:?}, which is not a declared column (columns: {})",
                        self.columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                Some(c) if c.nullable => {
                    return Err(format!(
                        "conflict-key column {k:?} must set nullable = false (a NULL key cannot be deduplicated)"
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(column) = &self.partition_by
            && !self.conflict_key.contains(column)
        {
            return Err(format!(
                "partition_by = {column:?} is not in the conflict_key ({}): PostgreSQL's unique constraint on a \
                 partitioned table must include the partition column; partition by a key column (a year, a region)",
                self.conflict_key.join(", ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
