//! The proposed spec (TOML, evidence as comments) and migration (SQL).

use std::fmt::Write as _;

use super::column::Column;
use super::input::{InferOptions, Layout, Partition};
use super::key::Key;

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

pub(super) fn spec_toml(
    options: &InferOptions,
    layout: &Layout,
    columns: &[Column],
    key: &Key,
    partition: Option<&Partition>,
) -> String {
    let Layout {
        delimiter,
        ref delimiter_evidence,
        header_rows,
        names_row,
        ref names_evidence,
        sampled,
        ragged,
        width,
    } = *layout;
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
    if let Some(p) = partition {
        let _ = writeln!(
            t,
            "# the file is {} MiB: the table is partitioned by {} (a key column with one value in the sample), so \
             each {} keeps its own indexes and vacuums (see the migration)",
            options.file_bytes >> 20,
            p.column,
            p.column
        );
        let _ = writeln!(t, "partition_by = {}", toml_string(&p.column));
    }
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
        column_block(&mut t, c);
    }
    t
}

/// One `[[columns]]` table, its evidence as comments.
fn column_block(t: &mut String, c: &Column) {
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
    if !c.required {
        let _ = writeln!(t, "# older files lack it: they load NULL here");
        let _ = writeln!(t, "required = false");
    }
}

/// The `[[columns]]` tables `penstock infer --update` appends to a spec.
pub(super) fn added_columns_toml(source: &str, sampled: usize, columns: &[Column]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Columns added by `penstock infer --update` from {} ({sampled} data records sampled).",
        comment(source)
    );
    for c in columns {
        column_block(&mut t, c);
    }
    t
}

/// The migration that adds `columns` to the spec's table (and removes them again).
pub(super) fn add_columns_migration(
    spec: &crate::spec::DatasetSpec,
    source: &str,
    columns: &[Column],
) -> (String, String) {
    if columns.is_empty() {
        return (String::new(), String::new());
    }
    let table = quote_ident(spec.table());
    let list = |each: &dyn Fn(&Column) -> String| columns.iter().map(each).collect::<Vec<_>>().join(",\n");
    let up = format!(
        "-- Columns of {} that dataset {:?} did not declare, proposed by `penstock infer --update`.\n\
         -- Nullable: the rows loaded before have no value for them.\n\
         ALTER TABLE {table}\n{};\n",
        comment(source),
        spec.name,
        list(&|c| format!("    ADD COLUMN {} {}", quote_ident(&c.name), c.sql_type()))
    );
    let down = format!(
        "ALTER TABLE {table}\n{};\n",
        list(&|c| format!("    DROP COLUMN IF EXISTS {}", quote_ident(&c.name)))
    );
    (up, down)
}

pub(super) fn migration(
    options: &InferOptions,
    columns: &[Column],
    key: &Key,
    partition: Option<&Partition>,
) -> (String, String) {
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
    // Only the key is indexed: every index costs each loaded row a write. Half of each page
    // stays free so a re-load's lineage updates are HOT: no key index write (see README,
    // "Benchmarks").
    let Some(p) = partition else {
        let _ = writeln!(up, ") WITH (fillfactor = 50);");
        return (up, format!("DROP TABLE IF EXISTS {table};\n"));
    };
    // A partitioned table holds no rows itself: each partition gets the fill factor.
    let _ = writeln!(up, ") PARTITION BY LIST ({});", quote_ident(&p.column));
    let _ = writeln!(
        up,
        "-- One partition per {}: this file's, and a DEFAULT one for any other until it has its own\n\
         -- (add one before its files arrive, or move its rows out of DEFAULT with DETACH / ATTACH).",
        p.column
    );
    let literal = &p.literal;
    // After the table's name, so it may start with a digit (a year); never the name of the
    // key's index or of the DEFAULT partition.
    let mut suffix: String = p
        .value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    suffix.truncate(30);
    if suffix == "key" || suffix == "default" {
        suffix = format!("v_{suffix}");
    }
    let _ = writeln!(
        up,
        "CREATE TABLE {} PARTITION OF {table} FOR VALUES IN ({literal}) WITH (fillfactor = 50);",
        quote_ident(&constraint_name(&options.name, &suffix))
    );
    let _ = writeln!(
        up,
        "CREATE TABLE {} PARTITION OF {table} DEFAULT WITH (fillfactor = 50);",
        quote_ident(&constraint_name(&options.name, "default"))
    );
    (up, format!("DROP TABLE IF EXISTS {table};\n"))
}

fn constraint_name(table: &str, suffix: &str) -> String {
    let mut base = table.to_string();
    base.truncate(62usize.saturating_sub(suffix.len()));
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
