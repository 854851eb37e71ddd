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
mod tests {
    use super::*;

    fn column(ty: ColumnType) -> ColumnSpec {
        ColumnSpec {
            name: "c".into(),
            source: "C".into(),
            ty,
            nullable: true,
            trim: true,
            thousands: Some(','),
            accounting_negatives: true,
            case: None,
        }
    }
    fn nulls() -> Vec<String> {
        vec![String::new(), "NA".into()]
    }
    fn numeric(s: &str) -> Result<Value, CoerceError> {
        coerce(s, &column(ColumnType::Numeric), &nulls())
    }
    fn num(s: &str) -> Value {
        Value::Numeric(s.into())
    }

    #[test]
    fn thousands_separators_are_removed() {
        assert_eq!(numeric("20,961").unwrap(), num("20961"));
        assert_eq!(numeric("1,234,567.25").unwrap(), num("1234567.25"));
    }

    #[test]
    fn accounting_negatives_with_a_leading_space_become_negative_numbers() {
        assert_eq!(numeric(" (2,443)").unwrap(), num("-2443"));
        assert_eq!(numeric("(12)").unwrap(), num("-12"));
        assert_eq!(numeric("( 7.5 )").unwrap(), num("-7.5"));
    }

    #[test]
    fn blanks_and_null_tokens_become_null_not_zero() {
        assert_eq!(numeric("").unwrap(), Value::Null);
        assert_eq!(numeric("   ").unwrap(), Value::Null);
        assert_eq!(numeric("NA").unwrap(), Value::Null);
    }

    #[test]
    fn zero_stays_zero() {
        assert_eq!(numeric("0").unwrap(), num("0"));
        assert_eq!(numeric("-0.00").unwrap(), num("0"));
    }

    #[test]
    fn decimals_are_kept_exact() {
        assert_eq!(numeric("0.1").unwrap(), num("0.1"));
        assert_eq!(
            numeric("123456789012345678901234.000000000000000001").unwrap(),
            num("123456789012345678901234.000000000000000001")
        );
        assert_eq!(numeric("-5,716.330").unwrap(), num("-5716.33"));
        assert_eq!(numeric(".5").unwrap(), num("0.5"));
        assert_eq!(numeric("7.").unwrap(), num("7"));
        assert_eq!(numeric("+0042").unwrap(), num("42"));
    }

    #[test]
    fn exponents_are_expanded_exactly() {
        assert_eq!(numeric("1.5E3").unwrap(), num("1500"));
        assert_eq!(numeric("25e-3").unwrap(), num("0.025"));
    }

    #[test]
    fn misplaced_thousands_separators_are_rejected() {
        let err = numeric("12,34").unwrap_err().to_string();
        assert!(err.contains("thousands separators"), "{err}");
        assert!(numeric(",123").is_err());
        assert!(numeric("1234,567").is_err());
    }

    #[test]
    fn garbage_is_rejected_with_what_was_expected() {
        let err = numeric("abc").unwrap_err().to_string();
        assert!(err.contains("\"abc\" is not a number"), "{err}");
        assert!(err.contains("(1,234) for a negative"), "{err}");
        for bad in [
            "1.2.3", "--1", "(-1)", "1e", "e5", ".", "-", "()", "1 2", "$5", "1e99999",
        ] {
            assert!(numeric(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn thousands_separators_are_rejected_when_the_column_does_not_allow_them() {
        let mut c = column(ColumnType::Numeric);
        c.thousands = None;
        c.accounting_negatives = false;
        assert!(coerce("1,234", &c, &nulls()).is_err());
        assert!(coerce("(12)", &c, &nulls()).is_err());
    }

    #[test]
    fn integers_are_parsed_and_range_checked() {
        let c = column(ColumnType::Integer);
        assert_eq!(coerce(" 2023 ", &c, &nulls()).unwrap(), Value::Integer(2023));
        assert_eq!(coerce("(1,000)", &c, &nulls()).unwrap(), Value::Integer(-1000));
        assert!(coerce("2023.5", &c, &nulls()).unwrap_err().0.contains("fractional"));
        assert!(
            coerce("3000000000", &c, &nulls())
                .unwrap_err()
                .0
                .contains("out of range")
        );
        assert!(
            coerce("twenty", &c, &nulls())
                .unwrap_err()
                .0
                .contains("not a whole number")
        );
        let b = column(ColumnType::Bigint);
        assert_eq!(
            coerce("3,000,000,000", &b, &nulls()).unwrap(),
            Value::Integer(3_000_000_000)
        );
    }

    #[test]
    fn a_required_value_that_is_blank_is_an_error() {
        let mut c = column(ColumnType::Text);
        c.nullable = false;
        let err = coerce(" ", &c, &nulls()).unwrap_err().to_string();
        assert!(err.contains("required") && err.contains("blank"), "{err}");
    }

    #[test]
    fn text_is_trimmed_and_keeps_inner_commas() {
        let c = column(ColumnType::Text);
        assert_eq!(
            coerce("  Smith, Jones Plant ", &c, &nulls()).unwrap(),
            Value::Text("Smith, Jones Plant".into())
        );
        let mut raw = column(ColumnType::Text);
        raw.trim = false;
        assert_eq!(coerce(" x ", &raw, &nulls()).unwrap(), Value::Text(" x ".into()));
    }

    #[test]
    fn text_case_can_be_normalised() {
        let mut c = column(ColumnType::Text);
        c.case = Some(Case::Upper);
        assert_eq!(coerce("tx", &c, &nulls()).unwrap(), Value::Text("TX".into()));
    }

    #[test]
    fn nul_bytes_are_rejected() {
        assert!(
            coerce("a\0b", &column(ColumnType::Text), &nulls())
                .unwrap_err()
                .0
                .contains("NUL")
        );
    }

    #[test]
    fn booleans_accept_common_spellings() {
        let c = column(ColumnType::Boolean);
        assert_eq!(coerce("Yes", &c, &nulls()).unwrap(), Value::Boolean(true));
        assert_eq!(coerce("f", &c, &nulls()).unwrap(), Value::Boolean(false));
        assert!(coerce("maybe", &c, &nulls()).is_err());
    }

    #[test]
    fn dates_accept_iso_and_us_forms_and_check_the_calendar() {
        let c = column(ColumnType::Date);
        assert_eq!(
            coerce("2024-02-29", &c, &nulls()).unwrap(),
            Value::Date("2024-02-29".into())
        );
        assert_eq!(
            coerce("3/7/2023", &c, &nulls()).unwrap(),
            Value::Date("2023-03-07".into())
        );
        assert!(coerce("2023-02-29", &c, &nulls()).unwrap_err().0.contains("calendar"));
        assert!(coerce("2023/01/01", &c, &nulls()).is_err());
    }

    #[test]
    fn timestamps_accept_iso_forms_with_and_without_an_offset() {
        let c = column(ColumnType::Timestamp);
        let ok = |raw: &str| match coerce(raw, &c, &nulls()).unwrap() {
            Value::Timestamp(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(ok("2024-02-29T13:05:09Z"), "2024-02-29 13:05:09+00:00");
        assert_eq!(ok("2024-02-29 13:05"), "2024-02-29 13:05:00");
        assert_eq!(ok("2024-02-29T13:05:09.123-05:00"), "2024-02-29 13:05:09.123-05:00");
        assert_eq!(ok("2024-02-29T13:05:09+0530"), "2024-02-29 13:05:09+05:30");
        for bad in [
            "2024-02-30 10:00",
            "2024-01-01",
            "2024-01-01 24:00",
            "2024-01-01T10:00:00.",
            "01/02/2024 10:00",
        ] {
            let err = coerce(bad, &c, &nulls()).unwrap_err().0;
            assert!(err.contains("not a timestamp"), "{bad}: {err}");
        }
    }

    fn date(raw: &str) -> Result<String, String> {
        match coerce(raw, &column(ColumnType::Date), &nulls()) {
            Ok(Value::Date(d)) => Ok(d),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.0),
        }
    }

    fn timestamp(raw: &str) -> Result<String, String> {
        match coerce(raw, &column(ColumnType::Timestamp), &nulls()) {
            Ok(Value::Timestamp(t)) => Ok(t),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.0),
        }
    }

    #[test]
    fn february_29_exists_only_in_leap_years_in_either_date_form() {
        for leap in ["2024-02-29", "2000-02-29", "1600-02-29", "2/29/2024", "02/29/2000"] {
            assert!(date(leap).unwrap().ends_with("-02-29"), "{leap}");
        }
        for common in ["2023-02-29", "1900-02-29", "2100-02-29", "2/29/1900", "2/29/2023"] {
            let err = date(common).unwrap_err();
            assert_eq!(err, format!("{common:?} is not a valid calendar date"));
        }
    }

    #[test]
    fn days_past_the_end_of_their_month_and_months_past_12_are_not_calendar_dates() {
        assert_eq!(date("2023-12-31").unwrap(), "2023-12-31");
        assert_eq!(date("4/30/2023").unwrap(), "2023-04-30");
        for bad in [
            "2023-04-31",
            "2023-13-01",
            "2023-00-10",
            "2023-01-00",
            "11/31/2023",
            "0/1/2023",
        ] {
            assert!(date(bad).unwrap_err().contains("not a valid calendar date"), "{bad}");
        }
    }

    #[test]
    fn dates_accept_one_or_two_digit_months_and_days_and_are_written_as_iso() {
        assert_eq!(date("2024-2-9").unwrap(), "2024-02-09");
        assert_eq!(date("12/25/2023").unwrap(), "2023-12-25");
        assert_eq!(date("03/07/2023").unwrap(), "2023-03-07");
    }

    #[test]
    fn dates_in_other_forms_say_which_forms_are_expected() {
        for bad in [
            "2023/01/01",
            "23-01-01",
            "1/2/23",
            "2024-001-01",
            "2024-01-01-",
            "20240101",
            "2024-01",
            "2024-01-01T00:00",
            "２０２４-01-01",
            "Jan 1 2024",
        ] {
            assert_eq!(
                date(bad).unwrap_err(),
                format!("{bad:?} is not a date; expected YYYY-MM-DD or M/D/YYYY"),
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamps_on_february_29_follow_the_leap_years() {
        assert_eq!(timestamp("2000-02-29 00:00").unwrap(), "2000-02-29 00:00:00");
        for bad in ["1900-02-29 00:00", "2023-02-29T12:00:00Z", "2024-2-29 00:00"] {
            assert!(timestamp(bad).unwrap_err().contains("not a timestamp"), "{bad}");
        }
    }

    #[test]
    fn timestamp_fractions_are_kept_as_written_up_to_six_digits() {
        assert_eq!(timestamp("2024-01-01 10:00:00.1").unwrap(), "2024-01-01 10:00:00.1");
        assert_eq!(timestamp("2024-01-01 10:00:00.000").unwrap(), "2024-01-01 10:00:00.000");
        assert_eq!(
            timestamp("2024-01-01T10:00:00.123456Z").unwrap(),
            "2024-01-01 10:00:00.123456+00:00"
        );
        for bad in [
            "2024-01-01 10:00:00.1234567",
            "2024-01-01 10:00.5",
            "2024-01-01 10:00:00.5a",
        ] {
            assert!(timestamp(bad).unwrap_err().contains("not a timestamp"), "{bad}");
        }
    }

    #[test]
    fn timestamp_offsets_are_written_as_a_sign_and_hh_mm_up_to_15_hours() {
        assert_eq!(timestamp("2024-01-01 10:00+05").unwrap(), "2024-01-01 10:00:00+05:00");
        assert_eq!(timestamp("2024-01-01 10:00-0930").unwrap(), "2024-01-01 10:00:00-09:30");
        assert_eq!(
            timestamp("2024-01-01 10:00:00+15:59").unwrap(),
            "2024-01-01 10:00:00+15:59"
        );
        assert_eq!(
            timestamp("2024-01-01 10:00:00-00:00").unwrap(),
            "2024-01-01 10:00:00-00:00"
        );
        assert_eq!(timestamp("2024-01-01 10:00:00 z").unwrap(), "2024-01-01 10:00:00+00:00");
        for bad in [
            "2024-01-01 10:00+16",
            "2024-01-01 10:00+05:60",
            "2024-01-01 10:00+5",
            "2024-01-01 10:00+053",
            "2024-01-01 10:00+05:30:00",
        ] {
            assert!(timestamp(bad).unwrap_err().contains("not a timestamp"), "{bad}");
        }
    }

    #[test]
    fn a_leap_second_is_kept_as_second_60() {
        assert_eq!(timestamp("2016-12-31 23:59:60Z").unwrap(), "2016-12-31 23:59:60+00:00");
        for bad in [
            "2016-12-31 23:59:61",
            "2016-12-31 23:60",
            "2016-12-31 1:05",
            "2016-12-31 01:05:9",
        ] {
            assert!(timestamp(bad).unwrap_err().contains("not a timestamp"), "{bad}");
        }
    }

    #[test]
    fn timestamps_in_us_form_are_refused() {
        for bad in ["3/7/2023 10:00", "03/07/2023T10:00:00Z"] {
            assert!(timestamp(bad).unwrap_err().contains("not a timestamp"), "{bad}");
        }
    }
}
