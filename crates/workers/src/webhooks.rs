//! Alert webhooks: a new alert at or above a webhook's minimum severity is POSTed as JSON,
//! signed with HMAC-SHA256 of the exact body under the webhook's secret
//! (`X-Penstock-Signature: sha256=<hex>`), retried with exponential backoff and jitter on
//! failure, and every outcome is recorded in `webhook_deliveries`.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use hmac::{Hmac, Mac};
use penstock_config::Webhook;
use sha2::Sha256;

/// The signature header value for a body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The outcome of delivering one alert to one webhook.
pub struct Delivery {
    pub attempts: i32,
    pub status_code: Option<i32>,
    pub delivered: bool,
    pub error: Option<String>,
}

/// POSTs `body` to the webhook, retrying failures (network errors, 5xx, 429) a few times.
pub async fn deliver(client: &reqwest::Client, hook: &Webhook, body: &[u8]) -> Delivery {
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(4)
        .with_jitter()
        .build();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let response = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-penstock-signature", signature(&hook.secret, body))
            .timeout(Duration::from_secs(10))
            .body(body.to_vec())
            .send()
            .await;
        let (status_code, retryable, error) = match response {
            Ok(r) if r.status().is_success() => {
                return Delivery {
                    attempts,
                    status_code: Some(r.status().as_u16() as i32),
                    delivered: true,
                    error: None,
                };
            }
            Ok(r) => {
                let code = r.status().as_u16();
                (Some(code as i32), code >= 500 || code == 429, format!("HTTP {code}"))
            }
            // Without the URL: it often carries the webhook's secret.
            Err(e) => (None, true, e.without_url().to_string()),
        };
        match delays.next().filter(|_| retryable) {
            Some(delay) => tokio::time::sleep(delay).await,
            None => {
                return Delivery {
                    attempts,
                    status_code,
                    delivered: false,
                    error: Some(error),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231 test case 2.
        let sig = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
