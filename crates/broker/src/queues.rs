//! The fleet's queue names.

use std::time::Duration;

/// The fleet's queue names, all starting with the configured prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queues {
    pub files: String,
    pub chunks: String,
    pub errors: String,
    pub events: String,
    /// Dead items the error consumer could not record (PostgreSQL refused them): kept here,
    /// bytes intact, for an operator, instead of being requeued forever. Nothing consumes it.
    pub parked: String,
}

impl Queues {
    pub fn new(prefix: &str) -> Queues {
        Queues {
            files: format!("{prefix}.files"),
            chunks: format!("{prefix}.chunks"),
            errors: format!("{prefix}.errors"),
            events: format!("{prefix}.events"),
            parked: format!("{prefix}.errors.parked"),
        }
    }

    pub fn all(&self) -> [&str; 4] {
        [&self.files, &self.chunks, &self.errors, &self.events]
    }

    /// The queues whose items are retried through retry queues.
    pub fn work(&self) -> [&str; 3] {
        [&self.files, &self.chunks, &self.events]
    }

    /// The retry queue that holds items of `work_queue` for `delay`, then dead-letters them
    /// back into `work_queue`.
    pub fn retry(work_queue: &str, delay: Duration) -> String {
        format!("{work_queue}.{}", penstock_core::retry::queue_suffix(delay))
    }

    /// Every queue the fleet declares, retry queues included.
    pub fn every(&self) -> Vec<String> {
        let mut names: Vec<String> = self.all().iter().map(|q| q.to_string()).collect();
        names.push(self.parked.clone());
        for work in self.work() {
            names.extend(penstock_core::retry::DELAYS.iter().map(|d| Queues::retry(work, *d)));
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_name_starts_with_the_prefix() {
        let q = Queues::new("fleet-a");
        assert_eq!(
            q.all(),
            ["fleet-a.files", "fleet-a.chunks", "fleet-a.errors", "fleet-a.events"]
        );
        assert!(q.every().iter().all(|n| n.starts_with("fleet-a.")));
        assert!(q.every().contains(&"fleet-a.chunks.retry.30s".to_string()));
        assert!(q.every().contains(&"fleet-a.errors.parked".to_string()));
        assert_eq!(q.every().len(), 20);
    }
}
