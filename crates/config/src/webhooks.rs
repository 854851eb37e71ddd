//! Alert webhooks: `[[webhooks]]` tables and `PENSTOCK_WEBHOOK_*`.

use std::collections::HashMap;

use crate::error::ConfigError;

/// An alert webhook: alerts at or above `min_severity` are POSTed as JSON to `url`, signed
/// with HMAC-SHA256 of the body under `secret` (header `X-Penstock-Signature: sha256=<hex>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub min_severity: penstock_core::event::Severity,
    pub secret: String,
}

/// `[[webhooks]]` tables in the file (url, min_severity, secret or secret_env), plus one from
/// `PENSTOCK_WEBHOOK_URL` / `PENSTOCK_WEBHOOK_SECRET` / `PENSTOCK_WEBHOOK_MIN_SEVERITY`.
pub(crate) fn webhooks(
    table: &toml::Table,
    env: &HashMap<String, String>,
    source: &str,
) -> Result<Vec<Webhook>, ConfigError> {
    let fail = |origin: &str, message: String| ConfigError {
        key: "webhooks".into(),
        origin: origin.into(),
        message,
    };
    let build = |origin: &str, url: Option<&str>, severity: Option<&str>, secret: Option<String>| {
        let url = url.ok_or_else(|| fail(origin, "a webhook needs a url".into()))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(fail(
                origin,
                format!("webhook url {url:?} must start with http:// or https://"),
            ));
        }
        let min_severity = match severity {
            None => penstock_core::event::Severity::Error,
            Some(s) => penstock_core::event::Severity::parse(s).ok_or_else(|| {
                fail(
                    origin,
                    format!("min_severity {s:?} is not one of info, warning, error, critical"),
                )
            })?,
        };
        let secret = secret.filter(|s| !s.is_empty()).ok_or_else(|| {
            fail(
                origin,
                "a webhook needs a secret (secret, or secret_env naming a variable) to sign with".into(),
            )
        })?;
        Ok(Webhook {
            url: url.to_string(),
            min_severity,
            secret,
        })
    };
    let mut out = Vec::new();
    match table.get("webhooks") {
        None => {}
        Some(toml::Value::Array(items)) => {
            for item in items {
                let t = item
                    .as_table()
                    .ok_or_else(|| fail(source, "use [[webhooks]] tables".into()))?;
                let get = |k: &str| t.get(k).and_then(|v| v.as_str());
                let secret = get("secret")
                    .map(str::to_string)
                    .or_else(|| get("secret_env").and_then(|name| env.get(name).cloned()));
                out.push(build(source, get("url"), get("min_severity"), secret)?);
            }
        }
        Some(_) => {
            return Err(fail(
                source,
                "use [[webhooks]] tables with url, min_severity and secret".into(),
            ));
        }
    }
    if let Some(url) = env.get("PENSTOCK_WEBHOOK_URL").filter(|u| !u.is_empty()) {
        let origin = "environment variable PENSTOCK_WEBHOOK_URL";
        let severity = env.get("PENSTOCK_WEBHOOK_MIN_SEVERITY").map(String::as_str);
        out.push(build(
            origin,
            Some(url),
            severity,
            env.get("PENSTOCK_WEBHOOK_SECRET").cloned(),
        )?);
    }
    Ok(out)
}
