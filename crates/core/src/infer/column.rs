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
    }
}
