//! One column's type, nullability and evidence, from every sampled value.

use std::collections::HashSet;

use crate::coerce::{Value, coerce};
use crate::spec::{ColumnSpec, ColumnType};

pub(super) struct Column {
    pub(super) name: String,
    pub(super) source: String,
    pub(super) description: String,
    pub(super) ty: ColumnType,
    /// For timestamps: whether values carry a UTC offset.
    pub(super) with_zone: bool,
    pub(super) thousands: bool,
    pub(super) accounting: bool,
    pub(super) nullable: bool,
    /// False for a column added to an existing spec (older files lack it).
    pub(super) required: bool,
    pub(super) nulls: usize,
    pub(super) values: usize,
    pub(super) distinct: usize,
    pub(super) examples: Vec<String>,
    pub(super) evidence: String,
    /// Integers increasing by one from record to record: a row number, not a key.
    pub(super) row_number: bool,
}

impl Column {
    pub(super) fn infer(name: String, source: String, description: String, raw: &[&str]) -> Column {
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
        // Whole numbers as a spreadsheet writes them: `"85,463"`, `(2,443)`.
        let spreadsheet_integers = !plain_integers
            && present.iter().all(|v| {
                let v = v.strip_prefix('(').and_then(|v| v.strip_suffix(')')).unwrap_or(v);
                let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b',')
            });
        let whole = plain_integers || spreadsheet_integers;
        // A sample cannot prove the rest of the file fits: integer only with headroom.
        let near_limit = present
            .iter()
            .any(|v| whole_value(v).is_none_or(|n| n.unsigned_abs() > INTEGER_HEADROOM));
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
        } else if whole && !near_limit && all(ColumnType::Integer, spreadsheet_integers) {
            (
                ColumnType::Integer,
                format!(
                    "every value is a whole number{}, well within integer range",
                    written_as(thousands, accounting)
                ),
            )
        } else if whole && all(ColumnType::Bigint, spreadsheet_integers) {
            (
                ColumnType::Bigint,
                format!(
                    "every value is a whole number{}, some beyond a tenth of integer's range (a sample cannot prove the rest fits)",
                    written_as(thousands, accounting)
                ),
            )
        } else if all(ColumnType::Numeric, true) {
            (
                ColumnType::Numeric,
                format!(
                    "every value is a number{}; kept exact",
                    written_as(thousands, accounting)
                ),
            )
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
            thousands: ty.is_number() && thousands,
            accounting: ty.is_number() && accounting,
            nullable: nulls > 0,
            required: true,
            nulls,
            values: raw.len(),
            distinct: distinct.len(),
            examples,
            evidence,
            row_number,
        }
    }

    pub(super) fn type_word(&self) -> &'static str {
        self.ty.name()
    }

    /// The PostgreSQL type: the spec's type name, which is a PostgreSQL type too, except
    /// that timestamps with a UTC offset become `timestamptz`.
    pub(super) fn sql_type(&self) -> &'static str {
        match self.ty {
            ColumnType::Timestamp if self.with_zone => "timestamptz",
            ty => ty.name(),
        }
    }

    pub(super) fn key_eligible(&self) -> bool {
        !self.nullable
            && !self.row_number
            && matches!(
                self.ty,
                ColumnType::Text | ColumnType::Integer | ColumnType::Bigint | ColumnType::Date
            )
    }
}

/// The largest magnitude a sampled value may have for the column to be typed `integer`: a
/// tenth of its range, so a file whose sample tops out near the limit gets `bigint`.
const INTEGER_HEADROOM: u64 = i32::MAX as u64 / 10;

/// A whole number in any form the spreadsheet probe reads, or None.
fn whole_value(v: &str) -> Option<i64> {
    match coerce(v, &probe(ColumnType::Bigint, true), &[]) {
        Ok(Value::Integer(n)) => Some(n),
        _ => None,
    }
}

/// How the sample writes its numbers, for the evidence line.
fn written_as(thousands: bool, accounting: bool) -> String {
    let mut forms = String::new();
    if thousands {
        forms.push_str(", with ',' thousands separators (\"1,234\")");
    }
    if accounting {
        forms.push_str(", with accounting negatives (\"(12)\")");
    }
    forms
}

/// Looks like a number in any form penstock reads (spreadsheet forms included).
pub(super) fn numberish(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty() && coerce(s, &probe(ColumnType::Numeric, true), &[]).is_ok()
}

pub(super) fn probe(ty: ColumnType, spreadsheet: bool) -> ColumnSpec {
    ColumnSpec {
        name: "probe".into(),
        source: "probe".into(),
        ty,
        nullable: true,
        trim: true,
        thousands: spreadsheet.then_some(','),
        accounting_negatives: spreadsheet,
        case: None,
        required: true,
    }
}
