//! Start-up that outlasts a database or broker still starting: a connection that fails
//! because the service cannot be reached is tried again, with backoff and jitter, for up to
//! `startup_wait`; an answer that waiting does not change (a refused login, an unknown
//! database) fails at once.

use std::fmt::Display;
use std::time::Duration;

use tokio::time::Instant;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Runs `attempt` until it succeeds, fails with an error `unreachable` says waiting will not
/// fix, or `wait` has passed; every retry is logged naming `what`.
pub async fn waiting_for<T, E: Display>(
    what: &str,
    wait: Duration,
    unreachable: impl Fn(&E) -> bool,
    mut attempt: impl AsyncFnMut() -> Result<T, E>,
) -> Result<T, E> {
    let started = Instant::now();
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
        .with_jitter()
        .build();
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let delay = delays.next().unwrap_or(Duration::from_secs(5));
        if !unreachable(&error) || started.elapsed() + delay > wait {
            return Err(error);
        }
        tracing::warn!(
            error = %error,
            waited = ?started.elapsed(),
            startup_wait = ?wait,
            "{what} does not answer yet; trying again in {delay:?}"
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_service_is_tried_again_until_it_answers() {
        let mut tries = 0;
        let got = waiting_for(
            "the test service",
            Duration::from_secs(60),
            |_: &String| true,
            async || {
                tries += 1;
                if tries < 4 {
                    Err("refused".to_string())
                } else {
                    Ok(tries)
                }
            },
        )
        .await;
        assert_eq!(got, Ok(4));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_waiting_cannot_change_fails_at_once() {
        let mut tries = 0;
        let got: Result<(), String> = waiting_for(
            "the test service",
            Duration::from_secs(60),
            |e: &String| e != "bad password",
            async || {
                tries += 1;
                Err("bad password".to_string())
            },
        )
        .await;
        assert_eq!((got, tries), (Err("bad password".to_string()), 1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_bounded_and_the_last_error_returned() {
        let started = tokio::time::Instant::now();
        let got: Result<(), String> = waiting_for(
            "the test service",
            Duration::from_secs(10),
            |_: &String| true,
            async || Err("connection refused".to_string()),
        )
        .await;
        assert_eq!(got, Err("connection refused".to_string()));
        assert!(started.elapsed() <= Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn no_wait_fails_at_the_first_refusal() {
        let mut tries = 0;
        let got: Result<(), String> = waiting_for(
            "the test service",
            Duration::ZERO,
            |_: &String| true,
            async || {
                tries += 1;
                Err("connection refused".to_string())
            },
        )
        .await;
        assert_eq!((got.is_err(), tries), (true, 1));
    }
}
