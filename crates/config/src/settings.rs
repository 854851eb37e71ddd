//! Reading one setting: the environment (`PENSTOCK_<KEY>`) first, then the file, then the
//! built-in defaults; every error names the key, where the value came from, and the fix.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::ConfigError;

/// Looks a key up in the environment first, then the file.
pub(crate) struct Settings<'a> {
    pub(crate) table: toml::Table,
    /// The built-in defaults, for keys the file does not set.
    pub(crate) defaults: toml::Table,
    pub(crate) env: &'a HashMap<String, String>,
    pub(crate) source: &'a str,
}

impl Settings<'_> {
    pub(crate) fn env_name(key: &str) -> String {
        format!("PENSTOCK_{}", key.to_uppercase())
    }

    /// The raw value and where it came from.
    pub(crate) fn raw(&self, key: &str) -> Result<(String, String), ConfigError> {
        let var = Self::env_name(key);
        if let Some(v) = self.env.get(&var) {
            return Ok((v.clone(), format!("environment variable {var}")));
        }
        // A key missing from the file (one written for an older release) takes the built-in
        // default.
        let (value, origin) = match self.table.get(key) {
            Some(value) => (Some(value), self.source.to_string()),
            None => (self.defaults.get(key), "built-in defaults".to_string()),
        };
        match value {
            Some(toml::Value::String(s)) => Ok((s.clone(), origin)),
            Some(toml::Value::Integer(n)) => Ok((n.to_string(), origin)),
            Some(other) => Err(ConfigError {
                key: key.into(),
                origin: self.source.to_string(),
                message: format!("expected a string or an integer, found {}", other.type_str()),
            }),
            None => Err(ConfigError {
                key: key.into(),
                origin: self.source.to_string(),
                message: format!("missing; set it in the config file or with {var}"),
            }),
        }
    }

    pub(crate) fn error(&self, key: &str, message: String) -> ConfigError {
        let var = Self::env_name(key);
        let origin = if self.env.contains_key(&var) {
            format!("environment variable {var}")
        } else {
            self.source.to_string()
        };
        ConfigError {
            key: key.into(),
            origin,
            message,
        }
    }

    pub(crate) fn check(&self, key: &str, ok: bool, message: &str) -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(self.error(key, message.into()))
        }
    }

    /// A list of strings: a TOML array, or one string with the entries separated by commas
    /// (the only form an environment variable has); blank entries are refused.
    pub(crate) fn string_list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let entries: Vec<String> = match self.table.get(key).or(self.defaults.get(key)) {
            Some(toml::Value::Array(items)) if !self.env.contains_key(&Self::env_name(key)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.trim().to_string()),
                    other => Err(self.error(key, format!("expected strings in the list, found {}", other.type_str()))),
                })
                .collect::<Result<_, _>>()?,
            _ => self.raw(key)?.0.split(',').map(|s| s.trim().to_string()).collect(),
        };
        if entries.is_empty() || entries.iter().any(String::is_empty) {
            return Err(self.error(
                key,
                "has an empty entry; list one or more values, separated by commas".into(),
            ));
        }
        Ok(entries)
    }

    pub(crate) fn string(&self, key: &str) -> Result<String, ConfigError> {
        Ok(self.raw(key)?.0)
    }

    /// A socket address; empty means "not served".
    pub(crate) fn address(&self, key: &str, example: &str) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let (value, _) = self.raw(key)?;
        if value.trim().is_empty() {
            return Ok(None);
        }
        value.trim().parse().map(Some).map_err(|_| {
            self.error(
                key,
                format!("{value:?} is not an address; use e.g. {example}, or leave it empty"),
            )
        })
    }

    pub(crate) fn duration(&self, key: &str) -> Result<Duration, ConfigError> {
        let (value, _) = self.raw(key)?;
        match humantime::parse_duration(value.trim()) {
            Ok(d) if !d.is_zero() => Ok(d),
            _ => Err(self.error(
                key,
                format!("{value:?} is not a positive duration; use e.g. 500ms, 2s, 1m"),
            )),
        }
    }

    pub(crate) fn integer(&self, key: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
        let (value, _) = self.raw(key)?;
        match value.trim().replace('_', "").parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.error(key, format!("{value:?} is not a whole number between {min} and {max}"))),
        }
    }
}
