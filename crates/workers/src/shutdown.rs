//! The one shutdown path. Order: stop intake (cancel consumers, stop scanning) → drain
//! in-flight work for at most the grace period (each item commits and acks, or is released
//! unacknowledged when its channel closes) → close channels and connections → close the
//! database pool → exit 0. A second SIGTERM/SIGINT forces exit at once.

use futures::StreamExt;
use signal_hook::consts::{SIGINT, SIGTERM};
use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGTERM or SIGINT; exits the process on the second.
pub fn on_signals(token: CancellationToken) -> std::io::Result<()> {
    let mut signals = signal_hook_tokio::Signals::new([SIGTERM, SIGINT])?;
    tokio::spawn(async move {
        if let Some(signal) = signals.next().await {
            tracing::info!(
                signal,
                "shutting down: stopping intake, draining in-flight work (signal again to force)"
            );
            token.cancel();
        }
        if let Some(signal) = signals.next().await {
            tracing::warn!(
                signal,
                "second signal: exiting now; unacknowledged work will be redelivered"
            );
            std::process::exit(130);
        }
    });
    Ok(())
}
