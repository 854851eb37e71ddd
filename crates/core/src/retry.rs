//! Retry decisions for work items, as plain functions: a transiently failing item goes to
//! the retry queue for its attempt (1 s, 5 s, 30 s, 2 min, then 10 min), never straight
//! back to the work queue; a permanent failure, or one past the attempt limit, goes to the
//! dead-letter queue with its reason.

use std::time::Duration;

/// The retry delays, one per retry queue, shortest first.
pub const DELAYS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

/// What to do with an item whose attempt `attempt` (1-based) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Publish to the retry queue with this delay, as attempt `next_attempt`.
    Retry { delay: Duration, next_attempt: u32 },
    /// Give up: dead-letter with this reason.
    DeadLetter(String),
}

/// Decides the fate of a failed attempt.
pub fn decide(attempt: u32, max_attempts: u32, transient: bool, reason: &str) -> Decision {
    if !transient {
        return Decision::DeadLetter(reason.to_string());
    }
    if attempt >= max_attempts {
        return Decision::DeadLetter(format!("gave up after {attempt} attempt(s): {reason}"));
    }
    Decision::Retry {
        delay: delay_for(attempt),
        next_attempt: attempt + 1,
    }
}

/// The delay before the attempt after `attempt`.
pub fn delay_for(attempt: u32) -> Duration {
    DELAYS[(attempt.max(1) as usize - 1).min(DELAYS.len() - 1)]
}

/// A retry queue's name suffix for a delay, e.g. `retry.30s`, `retry.2m`.
pub fn queue_suffix(delay: Duration) -> String {
    let secs = delay.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("retry.{}m", secs / 60)
    } else {
        format!("retry.{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permanent_failure_dead_letters_at_once_with_its_reason() {
        assert_eq!(
            decide(1, 5, false, "bad header"),
            Decision::DeadLetter("bad header".into())
        );
    }

    #[test]
    fn transient_failures_retry_with_growing_delays() {
        let delays: Vec<Duration> = (1..5)
            .map(|a| match decide(a, 5, true, "x") {
                Decision::Retry { delay, next_attempt } => {
                    assert_eq!(next_attempt, a + 1);
                    delay
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays, DELAYS[..4].to_vec());
        assert!(delays.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_last_allowed_attempt_dead_letters_saying_how_many_were_made() {
        assert_eq!(
            decide(5, 5, true, "timeout"),
            Decision::DeadLetter("gave up after 5 attempt(s): timeout".into())
        );
    }

    #[test]
    fn attempts_past_the_schedule_keep_the_longest_delay() {
        assert_eq!(delay_for(40), Duration::from_secs(600));
        assert_eq!(delay_for(0), Duration::from_secs(1));
    }

    #[test]
    fn queue_suffixes_name_the_delay() {
        let names: Vec<String> = DELAYS.iter().map(|d| queue_suffix(*d)).collect();
        assert_eq!(names, ["retry.1s", "retry.5s", "retry.30s", "retry.2m", "retry.10m"]);
    }
}
