//! An independent reading of eGRID generator files, for checking the loaded table record
//! for record. It shares no code with penstock's parser: the `csv` crate reads the records,
//! and the spreadsheet quirks are undone here in the plainest way.

use std::collections::BTreeMap;

/// (year, state, plant name, generator id)
pub type Key = (i32, String, String, String);
/// Key → (net generation, normalised text; source file id; source line).
pub type Table = BTreeMap<Key, (Option<String>, i64, i64)>;

/// Normalises a decimal's text: no trailing fractional zeros, no "-0".
pub fn normalise(v: &str) -> String {
    let v = if v.contains('.') {
        v.trim_end_matches('0').trim_end_matches('.')
    } else {
        v
    };
    if v == "-0" { "0".into() } else { v.to_string() }
}

/// A net-generation field as a spreadsheet prints it → its exact value.
pub fn net_generation(raw: &str) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    let (negative, body) = match s.strip_prefix('(').and_then(|b| b.strip_suffix(')')) {
        Some(b) => (true, b.trim()),
        None => (false, s),
    };
    let digits = body.replace(',', "");
    let digits = normalise(&digits);
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() || digits.starts_with('.') {
        format!("0{digits}")
    } else {
        digits.to_string()
    };
    Some(if negative && digits != "0" {
        format!("-{digits}")
    } else {
        digits
    })
}

/// What the table must hold after loading `bytes` as file version `file_id`: the last
/// occurrence of each key wins. Columns are found by their header code on line 2.
pub fn expected(bytes: &[u8], file_id: i64) -> Table {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    records.next().expect("description row").unwrap();
    let codes = records.next().expect("code row").unwrap();
    let find = |code: &str| {
        codes
            .iter()
            .position(|c| c == code.as_bytes())
            .unwrap_or_else(|| panic!("no {code}"))
    };
    let (y, s, p, g, n) = (
        find("YEAR"),
        find("PSTATEABB"),
        find("PNAME"),
        find("GENID"),
        find("GENNTAN"),
    );
    let mut table = Table::new();
    let (mut counted_to, mut line) = (0, 1);
    for record in records {
        let record = record.unwrap();
        let start = record.position().unwrap().byte() as usize;
        line += line_breaks(bytes, counted_to, start);
        counted_to = start;
        let text = |i: usize| String::from_utf8(record[i].to_vec()).unwrap().trim().to_string();
        let key = (text(y).parse().unwrap(), text(s).to_uppercase(), text(p), text(g));
        table.insert(key, (net_generation(&text(n)), file_id, line as i64));
    }
    table
}

/// Line breaks (`\r\n`, `\n` or a lone `\r`) in `bytes[from..to]`.
fn line_breaks(bytes: &[u8], from: usize, to: usize) -> usize {
    (from..to)
        .filter(|&i| bytes[i] == b'\r' || (bytes[i] == b'\n' && (i == 0 || bytes[i - 1] != b'\r')))
        .count()
}

/// Drops lineage to compare values only.
pub fn values(table: &Table) -> BTreeMap<Key, Option<String>> {
    table.iter().map(|(k, (v, _, _))| (k.clone(), v.clone())).collect()
}

/// One generator record for a synthetic file: (year, state, plant, generator, GENNTAN as written).
pub type Gen<'a> = (i32, &'a str, &'a str, &'a str, &'a str);

/// Writes an eGRID-shaped file (two header rows) with the given column order and line ending.
pub fn file(rows: &[Gen<'_>], order: &[&str], eol: &str) -> Vec<u8> {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    fn describe(code: &str) -> &str {
        match code {
            "SEQGEN23" => "Generator file sequence number",
            "YEAR" => "Data Year",
            "PSTATEABB" => "Plant state abbreviation",
            "PNAME" => "Plant name",
            "GENID" => "Generator ID",
            "GENNTAN" => "Generator annual net generation (MWh)",
            other => other,
        }
    }
    let mut out = String::new();
    out.push_str(&order.iter().map(|c| describe(c)).collect::<Vec<_>>().join(","));
    out.push_str(eol);
    out.push_str(&order.join(","));
    out.push_str(eol);
    for (i, (year, state, plant, gen_id, mwh)) in rows.iter().enumerate() {
        let fields: Vec<String> = order
            .iter()
            .map(|c| match *c {
                "SEQGEN23" => (i + 1).to_string(),
                "YEAR" => year.to_string(),
                "PSTATEABB" => state.to_string(),
                "PNAME" => quote(plant),
                "GENID" => quote(gen_id),
                "GENNTAN" => quote(mwh),
                _ => String::new(),
            })
            .collect();
        out.push_str(&fields.join(","));
        out.push_str(eol);
    }
    out.into_bytes()
}

pub const STANDARD_ORDER: [&str; 6] = ["SEQGEN23", "YEAR", "PSTATEABB", "PNAME", "GENID", "GENNTAN"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreadsheet_numbers_are_read_as_their_exact_values() {
        assert_eq!(net_generation("\"20,961\"".trim_matches('"')), Some("20961".into()));
        assert_eq!(net_generation(" (2,443)"), Some("-2443".into()));
        assert_eq!(net_generation(" (0)"), Some("0".into()));
        assert_eq!(net_generation("12.50"), Some("12.5".into()));
        assert_eq!(net_generation(""), None);
    }
}
