//! [`ConfigError`]: a setting that cannot be used, with its key, origin and fix.

/// A setting that cannot be used. The message names the key and the fix.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {key} ({origin}): {message}")]
pub struct ConfigError {
    pub key: String,
    pub origin: String,
    pub message: String,
}
