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
        required: true,
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
