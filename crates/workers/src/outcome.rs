//! What a handler returns and how it is settled: one attempt's [`Step`], the in-process
//! [`retrying`] of transient steps, and the [`Disposition`] of a delivery (ack, retry with
//! delay, dead-letter, release); and [`RunError`], why a role stopped.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use penstock_broker::BrokerError;
use penstock_db::DbError;
use penstock_storage::StorageError;

/// What to do with a delivery once its handler has finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The effect is committed (or there is none to have): acknowledge.
    Ack,
    /// A transient failure outlasted the in-process retries: publish it to the retry queue
    /// for its attempt (or dead-letter it past the attempt limit), then ack.
    Retry(String),
    /// A permanent failure: publish it to `<prefix>.errors` with the reason, then ack.
    DeadLetter(String),
    /// Cannot be handled now for a reason outside the item (the database is down): give it
    /// back to its queue as it is, to be delivered again.
    Release(String),
    /// Can never be handled (the error consumer could not record it): publish it to
    /// `<prefix>.errors.parked` with the reason, bytes intact, then ack.
    Park(String),
}

/// Why the fleet (or a role) stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Startup(String),
}

/// The outcome of one attempt at a unit of work.
#[derive(Debug)]
pub enum Step {
    Transient(String),
    Permanent(String),
}

impl Step {
    fn classified(transient: bool, reason: String) -> Step {
        if transient {
            Step::Transient(reason)
        } else {
            Step::Permanent(reason)
        }
    }
}

impl From<DbError> for Step {
    fn from(e: DbError) -> Step {
        Step::classified(e.is_transient(), e.to_string())
    }
}

impl From<StorageError> for Step {
    fn from(e: StorageError) -> Step {
        Step::classified(e.is_transient(), e.to_string())
    }
}

impl From<RunError> for Step {
    fn from(e: RunError) -> Step {
        match e {
            RunError::Db(e) => e.into(),
            RunError::Storage(e) => e.into(),
            RunError::Broker(e) => e.into(),
            other => Step::Permanent(other.to_string()),
        }
    }
}

impl From<BrokerError> for Step {
    fn from(e: BrokerError) -> Step {
        // A publish that failed leaves the item unacked; it will be redelivered.
        Step::Transient(e.to_string())
    }
}

/// Retries a unit of work on transient failures with exponential backoff and jitter
/// (a few attempts in process; past those the caller requeues the item).
pub async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, Step>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Step>>,
{
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(1))
        .with_max_times(3)
        .with_jitter()
        .build();
    loop {
        match attempt().await {
            Err(Step::Transient(reason)) => match delays.next() {
                Some(delay) => {
                    crate::metrics::Occurrence::TransientFailure { reason: &reason, delay }.record();
                    tokio::time::sleep(delay).await;
                }
                None => return Err(Step::Transient(reason)),
            },
            other => return other,
        }
    }
}
