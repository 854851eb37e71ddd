//! Query-string parsing with errors that name the parameter, what was given and what is
//! allowed. Unknown and repeated parameters are refused too, so a typo (`limt=5`) is an
//! error instead of a silently ignored filter. Path segments arrive as [`Segment`], whose
//! rejection is JSON like every other error.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use crate::error::{ApiError, ApiResult};

/// A route's one path parameter as text, for the handler to parse and name in its 400.
pub struct Segment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Segment, ApiError> {
        let Path(text) = Path::<String>::from_request_parts(parts, state).await?;
        Ok(Segment(text))
    }
}

/// The parameters of one request, checked against the names an endpoint accepts.
#[derive(Debug)]
pub struct Params {
    values: BTreeMap<String, String>,
}

/// The lowest and highest data year accepted (eGRID starts in 1996).
pub const YEARS: (i64, i64) = (1990, 2100);
/// The largest page size.
pub const MAX_PER_PAGE: i64 = 100;
/// The deepest page (keeps OFFSET bounded).
pub const MAX_PAGE: i64 = 10_000;

impl Params {
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> ApiResult<Params> {
        let mut values = BTreeMap::new();
        for (name, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                let allowed = if allowed.is_empty() {
                    "this endpoint takes no parameters".to_string()
                } else {
                    format!("allowed: {}", allowed.join(", "))
                };
                return Err(ApiError::bad_parameter(format!(
                    "unknown parameter {name:?}; {allowed}"
                )));
            }
            if values.insert(name.to_string(), value.to_string()).is_some() {
                return Err(ApiError::bad_parameter(format!(
                    "parameter {name:?} is given more than once"
                )));
            }
        }
        Ok(Params { values })
    }

    /// The parameters in a canonical order: a cache key.
    pub fn canonical(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.values.iter())
            .finish()
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// An optional integer in `[min, max]`.
    pub fn int(&self, name: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        let Some(raw) = self.get(name) else { return Ok(None) };
        match raw.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::bad_parameter(format!(
                "{name} must be an integer from {min} to {max}, got {raw:?}"
            ))),
        }
    }

    pub fn year(&self) -> ApiResult<Option<i32>> {
        Ok(self.int("year", YEARS.0, YEARS.1)?.map(|y| y as i32))
    }

    /// A two-letter state or territory code, upper-cased.
    pub fn state(&self) -> ApiResult<Option<String>> {
        let Some(raw) = self.get("state") else { return Ok(None) };
        if raw.len() == 2 && raw.chars().all(|c| c.is_ascii_alphabetic()) {
            Ok(Some(raw.to_ascii_uppercase()))
        } else {
            Err(ApiError::bad_parameter(format!(
                "state must be a two-letter code such as TX, got {raw:?}"
            )))
        }
    }

    /// An optional finite number.
    pub fn number(&self, name: &str) -> ApiResult<Option<f64>> {
        let Some(raw) = self.get(name) else { return Ok(None) };
        match raw.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n.abs() <= 1e15 => Ok(Some(n)),
            _ => Err(ApiError::bad_parameter(format!(
                "{name} must be a number (MWh, e.g. 1000 or -2.5) between -1e15 and 1e15, got {raw:?}"
            ))),
        }
    }

    /// Optional free text of 1 to `max_chars` characters (no NUL, which PostgreSQL text cannot
    /// hold).
    pub fn text(&self, name: &str, max_chars: usize) -> ApiResult<Option<String>> {
        let Some(raw) = self.get(name) else { return Ok(None) };
        let chars = raw.chars().count();
        if chars == 0 || chars > max_chars || raw.contains('\0') {
            return Err(ApiError::bad_parameter(format!(
                "{name} must be 1 to {max_chars} characters without NUL bytes, got {chars} characters"
            )));
        }
        Ok(Some(raw.to_string()))
    }

    /// One of a fixed set of words.
    pub fn choice<'a>(&self, name: &str, allowed: &[&'a str]) -> ApiResult<Option<&'a str>> {
        let Some(raw) = self.get(name) else { return Ok(None) };
        match allowed.iter().find(|a| **a == raw) {
            Some(word) => Ok(Some(word)),
            None => Err(ApiError::bad_parameter(format!(
                "{name} must be one of {}, got {raw:?}",
                allowed.join(", ")
            ))),
        }
    }

    /// `page` (from 1) and `per_page` (1 to 100, default 20).
    pub fn page(&self) -> ApiResult<Page> {
        let page = self.int("page", 1, MAX_PAGE)?.unwrap_or(1);
        let per_page = self.int("per_page", 1, MAX_PER_PAGE)?.unwrap_or(20);
        Ok(Page { page, per_page })
    }
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub per_page: i64,
}

impl Page {
    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }
}

/// The largest id of a file version or an alert (their ids are `bigserial`).
pub const ID_MAX: i64 = i64::MAX;

/// Parses a path id, naming what it is and the allowed range.
pub fn parse_id(raw: &str, what: &str, max: i64) -> ApiResult<i64> {
    match raw.parse::<i64>() {
        Ok(id) if (0..=max).contains(&id) => Ok(id),
        _ => Err(ApiError::bad_parameter(format!(
            "{what} must be an integer from 0 to {max}, got {raw:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, allowed: &[&str]) -> ApiResult<Params> {
        Params::parse(Some(raw), allowed)
    }

    #[test]
    fn an_unknown_parameter_is_refused_with_the_allowed_names() {
        let err = parse("limt=5", &["year", "limit"]).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.body.detail, "unknown parameter \"limt\"; allowed: year, limit");
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        let err = parse("year=2023&year=2022", &["year"]).unwrap_err();
        assert!(err.body.detail.contains("more than once"), "{}", err.body.detail);
    }

    #[test]
    fn integers_outside_their_range_name_the_range() {
        let p = parse("limit=-1&year=abc", &["limit", "year"]).unwrap();
        assert_eq!(
            p.int("limit", 1, 100).unwrap_err().body.detail,
            "limit must be an integer from 1 to 100, got \"-1\""
        );
        assert!(p.year().unwrap_err().body.detail.contains("from 1990 to 2100"));
        assert_eq!(parse("", &[]).unwrap().int("limit", 1, 100).unwrap(), None);
    }

    #[test]
    fn a_state_is_two_letters_and_comes_back_upper_case() {
        assert_eq!(
            parse("state=tx", &["state"]).unwrap().state().unwrap().as_deref(),
            Some("TX")
        );
        for bad in ["state=TEX", "state=T1", "state=%27%3B", "state="] {
            assert!(parse(bad, &["state"]).unwrap().state().is_err(), "{bad}");
        }
    }

    #[test]
    fn sql_looking_text_is_just_text_and_nul_is_refused() {
        let p = parse("q=x%27%3B+DROP+TABLE+egrid_generators%3B--", &["q"]).unwrap();
        assert_eq!(
            p.text("q", 100).unwrap().as_deref(),
            Some("x'; DROP TABLE egrid_generators;--")
        );
        assert!(parse("q=a%00b", &["q"]).unwrap().text("q", 100).is_err());
        assert!(parse("q=", &["q"]).unwrap().text("q", 100).is_err());
        assert!(
            parse(&format!("q={}", "a".repeat(101)), &["q"])
                .unwrap()
                .text("q", 100)
                .is_err()
        );
    }

    #[test]
    fn numbers_must_be_finite() {
        let p = parse("min_mwh=NaN&max_mwh=1e3", &["min_mwh", "max_mwh"]).unwrap();
        assert!(p.number("min_mwh").is_err());
        assert_eq!(p.number("max_mwh").unwrap(), Some(1000.0));
    }

    #[test]
    fn choices_list_what_is_allowed() {
        let p = parse("sort=password", &["sort"]).unwrap();
        let err = p.choice("sort", &["year", "state"]).unwrap_err();
        assert_eq!(err.body.detail, "sort must be one of year, state, got \"password\"");
    }

    #[test]
    fn pages_default_to_twenty_rows_and_cap_per_page() {
        let p = parse("", &[]).unwrap();
        assert_eq!(p.page().unwrap(), Page { page: 1, per_page: 20 });
        let p = parse("page=3&per_page=50", &["page", "per_page"]).unwrap();
        assert_eq!(p.page().unwrap().offset(), 100);
        let p = parse("per_page=100000", &["per_page"]).unwrap();
        assert!(p.page().unwrap_err().body.detail.contains("from 1 to 100"));
    }

    #[test]
    fn the_canonical_form_sorts_parameters() {
        let a = parse("year=2023&state=TX", &["year", "state"]).unwrap();
        let b = parse("state=TX&year=2023", &["year", "state"]).unwrap();
        assert_eq!(a.canonical(), b.canonical());
    }
}
