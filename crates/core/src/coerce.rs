//! Coercion: one raw CSV field to one typed value, by the column's spec.
//!
//! Order: trim (if enabled) → null tokens → type-specific parsing. Numbers are kept exact:
//! a numeric value is validated and normalised as a decimal string, never through `f64`.
//! Spreadsheet quirks handled: thousands separators (`"20,961"`), accounting negatives
//! (`" (2,443)"` → -2443), a leading `+`, blanks as NULL. Dates and timestamps: the accepted
//! forms are checked here, byte by byte; whether a day or a time of day exists (leap years,
//! month lengths, leap seconds) is chrono's answer.

use std::fmt::Write as _;

use chrono::{NaiveDate, NaiveTime};

use crate::spec::{Case, ColumnSpec, ColumnType};

/// A coerced value, ready to be written to PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Null,
    Text(String),
    Integer(i64),
    /// An exact decimal in canonical form: optional `-`, digits, optional `.digits`.
    Numeric(String),
    Boolean(bool),
    /// ISO `YYYY-MM-DD`.
    Date(String),
    /// `YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]`.
    Timestamp(String),
}

/// Why a field could not be coerced; the message is written for the person fixing the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CoerceError(pub String);

/// Coerces one raw field. `null_tokens` are the dataset's "no value" strings.
pub fn coerce(raw: &str, column: &ColumnSpec, null_tokens: &[String]) -> Result<Value, CoerceError> {
    let s = if column.trim { raw.trim() } else { raw };
    if null_tokens.iter().any(|t| t == s) {
        return if column.nullable {
            Ok(Value::Null)
        } else {
            Err(CoerceError(format!(
                "a value is required, but the field is {}",
                if s.is_empty() {
                    "blank".to_string()
                } else {
                    format!("the null token {s:?}")
                }
            )))
        };
    }
    if s.contains('\0') {
        return Err(CoerceError(
            "the field contains a NUL byte, which PostgreSQL cannot store".into(),
        ));
    }
    match column.ty {
        ColumnType::Text => Ok(Value::Text(match column.case {
            None => s.to_string(),
            Some(Case::Upper) => s.to_uppercase(),
            Some(Case::Lower) => s.to_lowercase(),
        })),
        ColumnType::Integer => parse_integer(s, column, i32::MIN as i64, i32::MAX as i64),
        ColumnType::Bigint => parse_integer(s, column, i64::MIN, i64::MAX),
        ColumnType::Numeric => parse_decimal(s, column).map(Value::Numeric),
        ColumnType::Boolean => parse_boolean(s),
        ColumnType::Date => parse_date(s),
        ColumnType::Timestamp => parse_timestamp(s),
    }
}

fn parse_integer(s: &str, column: &ColumnSpec, min: i64, max: i64) -> Result<Value, CoerceError> {
    let decimal = parse_decimal(s, column)
        .map_err(|_| CoerceError(format!("{s:?} is not a whole number{}", number_hint(column))))?;
    if decimal.contains('.') {
        return Err(CoerceError(format!(
            "{s:?} is not a whole number (it has a fractional part)"
        )));
    }
    match decimal.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Value::Integer(n)),
        _ => Err(CoerceError(format!("{s:?} is out of range ({min} to {max})"))),
    }
}

fn number_hint(column: &ColumnSpec) -> String {
    let mut parts = vec!["digits with an optional sign".to_string()];
    if let Some(t) = column.thousands {
        parts.push(format!("'{t}' thousands separators"));
    }
    if column.accounting_negatives {
        parts.push("(1,234) for a negative".into());
    }
    format!("; expected {}", parts.join(", "))
}

/// Validates a decimal number and returns it in canonical form (`-` sign only, no
/// separators, no leading zeros, no trailing `.`); exponents are expanded exactly.
pub fn parse_decimal(s: &str, column: &ColumnSpec) -> Result<String, CoerceError> {
    let bad = || CoerceError(format!("{s:?} is not a number{}", number_hint(column)));
    let mut body = s;
    let mut negative = false;
    if column.accounting_negatives && body.starts_with('(') && body.ends_with(')') && body.len() >= 2 {
        body = body[1..body.len() - 1].trim();
        negative = true;
    }
    if let Some(rest) = body.strip_prefix('-') {
        if negative {
            return Err(bad());
        }
        negative = true;
        body = rest;
    } else if let Some(rest) = body.strip_prefix('+') {
        body = rest;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => {
            let exp: i32 = body[i + 1..].parse().map_err(|_| bad())?;
            if exp.abs() > 1000 {
                return Err(bad());
            }
            (&body[..i], exp)
        }
        None => (body, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad());
    }
    if !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let int_digits = strip_thousands(int_part, column.thousands).ok_or_else(|| {
        CoerceError(format!(
            "{s:?} has misplaced thousands separators; groups after the first must have exactly 3 digits"
        ))
    })?;
    if !int_digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(canonical_decimal(negative, &int_digits, frac_part, exponent))
}

/// Removes well-formed thousands separators (`1,234,567`), or None if they are misplaced.
fn strip_thousands(int_part: &str, sep: Option<char>) -> Option<String> {
    let Some(sep) = sep else {
        return Some(int_part.to_string());
    };
    if !int_part.contains(sep) {
        return Some(int_part.to_string());
    }
    let groups: Vec<&str> = int_part.split(sep).collect();
    let first_ok = (1..=3).contains(&groups[0].len());
    let rest_ok = groups[1..].iter().all(|g| g.len() == 3);
    (first_ok && rest_ok).then(|| groups.concat())
}

fn canonical_decimal(negative: bool, int_digits: &str, frac: &str, exponent: i32) -> String {
    // Shift the decimal point by the exponent over the full digit string.
    let mut digits: String = format!("{int_digits}{frac}");
    let mut point = int_digits.len() as i64 + exponent as i64;
    if point < 0 {
        digits = "0".repeat((-point) as usize) + &digits;
        point = 0;
    }
    if point as usize > digits.len() {
        digits.push_str(&"0".repeat(point as usize - digits.len()));
    }
    let (i, f) = digits.split_at(point as usize);
    let i = i.trim_start_matches('0');
    let f = f.trim_end_matches('0');
    let i = if i.is_empty() { "0" } else { i };
    let zero = i == "0" && f.is_empty();
    let sign = if negative && !zero { "-" } else { "" };
    if f.is_empty() {
        format!("{sign}{i}")
    } else {
        format!("{sign}{i}.{f}")
    }
}

fn parse_boolean(s: &str) -> Result<Value, CoerceError> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Ok(Value::Boolean(true)),
        "false" | "f" | "no" | "n" | "0" => Ok(Value::Boolean(false)),
        _ => Err(CoerceError(format!(
            "{s:?} is not a boolean; expected true/false, t/f, yes/no, y/n or 1/0"
        ))),
    }
}

/// `YYYY-MM-DD` then `T` or a space, `HH:MM[:SS[.f…]]`, then optionally `Z` or `±HH[:MM]`.
/// The form is checked here, byte by byte; chrono decides whether the date and the
/// time of day exist. The fraction and the offset are kept as written.
fn parse_timestamp(s: &str) -> Result<Value, CoerceError> {
    let bad = || {
        CoerceError(format!(
            "{s:?} is not a timestamp; expected YYYY-MM-DD HH:MM[:SS[.ffffff]] with an optional Z or +HH:MM"
        ))
    };
    let (date, rest) = s.split_once('T').or_else(|| s.split_once(' ')).ok_or_else(bad)?;
    if date.len() != 10 || !date.contains('-') {
        return Err(bad());
    }
    let date = calendar_date(date).map_err(|_| bad())?;
    let rest = rest.trim_start();
    let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let (clock, fraction) = match time.trim_end().split_once('.') {
        Some((c, f)) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => (c, Some(f)),
        Some(_) => return Err(bad()),
        None => (time.trim_end(), None),
    };
    let mut parts = clock.split(':');
    let (h, m, sec) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(m), None, None) if fraction.is_none() => (h, m, "00"),
        (Some(h), Some(m), Some(sec), None) => (h, m, sec),
        _ => return Err(bad()),
    };
    let time = match (two_digits(h), two_digits(m), two_digits(sec)) {
        // A leap second: chrono holds it as second 59 plus a whole second, and writes it as 60.
        (Some(h), Some(m), Some(60)) => NaiveTime::from_hms_milli_opt(h, m, 59, 1_000),
        (Some(h), Some(m), Some(sec)) => NaiveTime::from_hms_opt(h, m, sec),
        _ => None,
    }
    .ok_or_else(bad)?;
    // Written once into a string of the longest form's size: 2024-02-29 13:05:09.123456+05:30.
    let mut out = String::with_capacity(32);
    write!(out, "{date} {time}").expect("writing to a String cannot fail");
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    match zone {
        None => {}
        Some("Z" | "z") => out.push_str("+00:00"),
        Some(z) => {
            let (sign, offset) = z.split_at(1);
            let hours = |x: &str| two_digits(x).filter(|h| *h <= 15);
            let minutes = |x: &str| two_digits(x).filter(|m| *m <= 59);
            let (oh, om) = match offset.split_once(':') {
                Some((oh, om)) => (hours(oh), minutes(om)),
                None if offset.len() == 2 => (hours(offset), Some(0)),
                None if offset.len() == 4 => (hours(&offset[..2]), minutes(&offset[2..])),
                None => (None, None),
            };
            let (oh, om) = (oh.ok_or_else(bad)?, om.ok_or_else(bad)?);
            write!(out, "{sign}{oh:02}:{om:02}").expect("writing to a String cannot fail");
        }
    }
    Ok(Value::Timestamp(out))
}

fn parse_date(s: &str) -> Result<Value, CoerceError> {
    match calendar_date(s) {
        Ok(date) => {
            let mut out = String::with_capacity(10);
            write!(out, "{date}").expect("writing to a String cannot fail");
            Ok(Value::Date(out))
        }
        Err(DateError::Form) => Err(CoerceError(format!(
            "{s:?} is not a date; expected YYYY-MM-DD or M/D/YYYY"
        ))),
        Err(DateError::Calendar) => Err(CoerceError(format!("{s:?} is not a valid calendar date"))),
    }
}

enum DateError {
    /// Not `YYYY-MM-DD` (month and day may have one digit) nor `M/D/YYYY`.
    Form,
    /// The right form, but no such day (month 13, February 29 of a common year, …).
    Calendar,
}

/// Splits `YYYY-M-D` or `M/D/YYYY` into numbers and asks chrono whether that day exists.
fn calendar_date(s: &str) -> Result<NaiveDate, DateError> {
    let (y, m, d) = if let Some((y, rest)) = s.split_once('-') {
        let (m, d) = rest.split_once('-').ok_or(DateError::Form)?;
        (y, m, d)
    } else if let Some((m, rest)) = s.split_once('/') {
        let (d, y) = rest.split_once('/').ok_or(DateError::Form)?;
        (y, m, d)
    } else {
        return Err(DateError::Form);
    };
    let number = |x: &str, len: std::ops::RangeInclusive<usize>| {
        (len.contains(&x.len()) && x.bytes().all(|b| b.is_ascii_digit()))
            .then(|| x.bytes().fold(0, |n, b| n * 10 + u32::from(b - b'0')))
            .ok_or(DateError::Form)
    };
    let (y, m, d) = (number(y, 4..=4)?, number(m, 1..=2)?, number(d, 1..=2)?);
    // Four digits always fit an i32.
    NaiveDate::from_ymd_opt(y as i32, m, d).ok_or(DateError::Calendar)
}

/// Exactly two ASCII digits, as a number.
fn two_digits(x: &str) -> Option<u32> {
    match x.as_bytes() {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(b - b'0')),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
