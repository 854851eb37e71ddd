//! PostgreSQL `COPY … FROM STDIN` text format: tab-separated, `\N` for NULL, backslash
//! escapes for the four bytes that would otherwise end a field or a row.

use crate::coerce::Value;

/// Appends one value in COPY text format (no separator).
pub fn push_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"\\N"),
        Value::Text(s) => push_escaped(out, s),
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Numeric(s) | Value::Date(s) | Value::Timestamp(s) => out.extend_from_slice(s.as_bytes()),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"t" } else { b"f" }),
    }
}

fn push_escaped(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// Appends one row: values separated by tabs, ended by a newline.
pub fn push_row<'a>(out: &mut Vec<u8>, values: impl IntoIterator<Item = &'a Value>) {
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        push_value(out, v);
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_bytes_are_escaped_and_null_is_backslash_n() {
        let mut out = Vec::new();
        push_row(
            &mut out,
            &[
                Value::Text("a\tb\\c\nd\re".into()),
                Value::Null,
                Value::Integer(-3),
                Value::Numeric("1.5".into()),
                Value::Boolean(true),
            ],
        );
        assert_eq!(out, b"a\\tb\\\\c\\nd\\re\t\\N\t-3\t1.5\tt\n");
    }

    #[test]
    fn the_text_n_is_not_confused_with_null() {
        let mut out = Vec::new();
        push_row(&mut out, &[Value::Text("\\N".into())]);
        assert_eq!(out, b"\\\\N\n");
    }
}
