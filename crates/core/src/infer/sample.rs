//! Reading a sample: checking it is UTF-8, reading its records, naming its columns.

use std::collections::HashSet;

use super::input::Record;

/// The sample without a byte order mark, or why it is not UTF-8.
pub(super) fn utf8_sample(bytes: &[u8]) -> Result<&[u8], String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        // A sample cut mid-character is fine; anything else is not UTF-8.
        Err(e) if e.error_len().is_some() => Err(format!(
            "the file is not UTF-8 (invalid byte at offset {}); penstock reads UTF-8 only: convert it first, e.g. `iconv -f latin1 -t utf-8`",
            e.valid_up_to()
        )),
        _ => Ok(bytes),
    }
}

pub(super) fn read_records(bytes: &[u8], delimiter: u8, limit: usize) -> Vec<Record> {
    let mut builder = csv::ReaderBuilder::new();
    builder.has_headers(false).flexible(true).delimiter(delimiter);
    read_records_with(&builder, bytes, limit)
}

pub(super) fn read_records_with(builder: &csv::ReaderBuilder, bytes: &[u8], limit: usize) -> Vec<Record> {
    let mut reader = builder.from_reader(bytes);
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

/// snake_case names for `headers`, unique among themselves and never one of `taken` or a
/// lineage column.
pub(super) fn unique_names<'a>(headers: &[String], taken: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut used: HashSet<String> = ["source_file_id", "source_line", "loaded_at"]
        .into_iter()
        .chain(taken)
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
