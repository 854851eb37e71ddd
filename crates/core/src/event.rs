//! Events: what the fleet tells the notification consumer (files finishing, rejections,
//! failures, dead letters, reconnect loops), and how each maps to an alert: its severity and
//! the dedupe key that makes a storm of the same event bump one alert.

use serde::{Deserialize, Serialize};

/// Alert severities, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Error, Severity::Critical]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// One event on `<prefix>.events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub v: u32,
    pub kind: EventKind,
    /// The role that saw it.
    pub source: String,
    pub message: String,
    pub metadata: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    FileDone {
        file_id: i64,
        key: String,
    },
    FileDoneWithErrors {
        file_id: i64,
        key: String,
        quarantined: i64,
    },
    FileRejected {
        file_id: i64,
        key: String,
    },
    FileFailed {
        file_id: i64,
        key: String,
    },
    DeadLetter {
        queue: String,
    },
    ReconnectLoop {
        role: String,
        failures: u32,
    },
    /// A dead item the error consumer could not record, parked in `queue`.
    Parked {
        queue: String,
    },
    /// A file version's header has columns its dataset does not declare (schema drift,
    /// `on_new_columns = "alert"`); its declared columns load as usual.
    NewColumns {
        file_id: i64,
        key: String,
        dataset: String,
        columns: Vec<String>,
    },
    /// The reconciler republished the lost items of a file that made no progress.
    FileRecovered {
        file_id: i64,
        key: String,
        /// Items republished by this recovery.
        items: u32,
        /// Recoveries of this file so far, this one included.
        recoveries: u32,
    },
}

impl Event {
    pub fn new(kind: EventKind, source: &str, message: impl Into<String>, metadata: serde_json::Value) -> Event {
        Event {
            v: crate::message::VERSION,
            kind,
            source: source.to_string(),
            message: message.into(),
            metadata,
        }
    }

    /// A file version that finished loading: every chunk committed (`done`, or
    /// `done_with_errors` when rows were quarantined).
    pub fn file_finished(
        file_id: i64,
        key: &str,
        rows_loaded: i64,
        rows_quarantined: i64,
        rows_superseded: i64,
    ) -> Event {
        let metadata = serde_json::json!({
            "file_id": file_id,
            "key": key,
            "rows_loaded": rows_loaded,
            "rows_quarantined": rows_quarantined,
            "rows_superseded": rows_superseded,
        });
        let key = key.to_string();
        if rows_quarantined > 0 {
            let message = format!("{key} loaded {rows_loaded} rows; {rows_quarantined} quarantined");
            let kind = EventKind::FileDoneWithErrors {
                file_id,
                key,
                quarantined: rows_quarantined,
            };
            Event::new(kind, "database", message, metadata)
        } else {
            let message = format!("{key} loaded {rows_loaded} rows");
            Event::new(EventKind::FileDone { file_id, key }, "database", message, metadata)
        }
    }

    /// A file version that failed (`source`: the role that saw why).
    pub fn file_failed(file_id: i64, key: &str, reason: &str, source: &str) -> Event {
        let metadata = serde_json::json!({ "file_id": file_id, "key": key, "reason": reason });
        let kind = EventKind::FileFailed {
            file_id,
            key: key.to_string(),
        };
        Event::new(kind, source, format!("{key}: {reason}"), metadata)
    }

    /// A file version the chunker rejected before loading anything.
    pub fn file_rejected(file_id: i64, key: &str, reason: &str) -> Event {
        let metadata = serde_json::json!({ "file_id": file_id, "key": key, "reason": reason });
        let kind = EventKind::FileRejected {
            file_id,
            key: key.to_string(),
        };
        Event::new(kind, "chunker", format!("{key} rejected: {reason}"), metadata)
    }

    /// A file version with columns its dataset does not declare: one event (and one alert)
    /// per file version, naming them.
    pub fn new_columns(file_id: i64, key: &str, dataset: &str, columns: Vec<String>) -> Event {
        let metadata = serde_json::json!({ "file_id": file_id, "key": key, "dataset": dataset, "columns": columns });
        let listed = columns.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ");
        let message = format!(
            "{key} has column(s) {listed} that dataset {dataset} does not declare; its declared columns load as usual. \
             Add them with `penstock infer --update {dataset} FILE`, or set on_new_columns (rescue, ignore, reject)"
        );
        let kind = EventKind::NewColumns {
            file_id,
            key: key.to_string(),
            dataset: dataset.to_string(),
            columns,
        };
        Event::new(kind, "chunker", message, metadata)
    }

    /// A dead work item the error consumer recorded.
    pub fn dead_item(
        queue: Option<&str>,
        message_id: &str,
        file_id: Option<i64>,
        attempts: i32,
        reason: &str,
    ) -> Event {
        let queue = queue.unwrap_or("unknown").to_string();
        let metadata = serde_json::json!({ "message_id": message_id, "file_id": file_id, "attempts": attempts });
        let message = format!("dead item from {queue}: {reason}");
        Event::new(EventKind::DeadLetter { queue }, "errors", message, metadata)
    }

    pub fn severity(&self) -> Severity {
        match &self.kind {
            EventKind::FileDone { .. } => Severity::Info,
            EventKind::FileDoneWithErrors { .. } => Severity::Warning,
            EventKind::FileRejected { .. } | EventKind::FileFailed { .. } | EventKind::DeadLetter { .. } => {
                Severity::Error
            }
            EventKind::Parked { .. } => Severity::Critical,
            EventKind::ReconnectLoop { failures, .. } if *failures >= 10 => Severity::Critical,
            EventKind::ReconnectLoop { .. } | EventKind::FileRecovered { .. } | EventKind::NewColumns { .. } => {
                Severity::Warning
            }
        }
    }

    /// Events with the same key update one alert instead of adding another.
    pub fn dedupe_key(&self) -> String {
        match &self.kind {
            EventKind::FileDone { key, .. } => format!("file-done:{key}"),
            EventKind::FileDoneWithErrors { key, .. } => format!("file-done-with-errors:{key}"),
            EventKind::FileRejected { key, .. } => format!("file-rejected:{key}"),
            EventKind::FileFailed { key, .. } => format!("file-failed:{key}"),
            EventKind::DeadLetter { queue } => format!("dead-letter:{queue}"),
            EventKind::Parked { queue } => format!("parked:{queue}"),
            EventKind::ReconnectLoop { role, .. } => format!("reconnect-loop:{role}"),
            EventKind::FileRecovered { file_id, .. } => format!("file-recovered:{file_id}"),
            EventKind::NewColumns { file_id, .. } => format!("new-columns:{file_id}"),
        }
    }
}

impl crate::message::Versioned for Event {
    fn version(&self) -> u32 {
        self.v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event::new(kind, "test", "m", serde_json::json!({}))
    }

    #[test]
    fn severities_follow_what_went_wrong() {
        assert_eq!(
            event(EventKind::FileDone {
                file_id: 1,
                key: "k".into()
            })
            .severity(),
            Severity::Info
        );
        let partial = EventKind::FileDoneWithErrors {
            file_id: 1,
            key: "k".into(),
            quarantined: 3,
        };
        assert_eq!(event(partial).severity(), Severity::Warning);
        assert_eq!(
            event(EventKind::FileRejected {
                file_id: 1,
                key: "k".into()
            })
            .severity(),
            Severity::Error
        );
        assert_eq!(
            event(EventKind::DeadLetter { queue: "q".into() }).severity(),
            Severity::Error
        );
        let looping = |failures| {
            event(EventKind::ReconnectLoop {
                role: "database".into(),
                failures,
            })
            .severity()
        };
        assert_eq!((looping(3), looping(10)), (Severity::Warning, Severity::Critical));
        assert!(Severity::Critical > Severity::Error && Severity::Error > Severity::Warning);
    }

    #[test]
    fn a_finished_file_is_done_or_done_with_errors_by_its_quarantine_and_says_its_counts() {
        let clean = Event::file_finished(4, "a.csv", 10, 0, 1);
        assert_eq!(
            clean.kind,
            EventKind::FileDone {
                file_id: 4,
                key: "a.csv".into()
            }
        );
        assert_eq!(clean.message, "a.csv loaded 10 rows");
        assert_eq!(clean.metadata["rows_superseded"], 1);
        let partial = Event::file_finished(4, "a.csv", 10, 2, 0);
        assert_eq!(partial.severity(), Severity::Warning);
        assert_eq!(partial.message, "a.csv loaded 10 rows; 2 quarantined");
    }

    #[test]
    fn failures_rejections_and_dead_items_carry_their_reason() {
        let failed = Event::file_failed(3, "b.csv", "object gone", "worker");
        assert_eq!(
            (failed.message.as_str(), failed.source.as_str()),
            ("b.csv: object gone", "worker")
        );
        assert_eq!(failed.metadata["reason"], "object gone");
        let rejected = Event::file_rejected(3, "b.csv", "the file is empty");
        assert_eq!(rejected.dedupe_key(), "file-rejected:b.csv");
        let dead = Event::dead_item(Some("p.chunks"), "m-1", Some(3), 5, "gave up");
        assert_eq!(dead.dedupe_key(), "dead-letter:p.chunks");
        assert_eq!(dead.message, "dead item from p.chunks: gave up");
    }

    #[test]
    fn a_storm_of_dead_letters_from_one_queue_shares_one_key() {
        let a = event(EventKind::DeadLetter {
            queue: "p.chunks".into(),
        });
        let b = event(EventKind::DeadLetter {
            queue: "p.chunks".into(),
        });
        let c = event(EventKind::DeadLetter {
            queue: "p.files".into(),
        });
        assert_eq!(a.dedupe_key(), b.dedupe_key());
        assert_ne!(a.dedupe_key(), c.dedupe_key());
    }

    #[test]
    fn events_round_trip_through_json_with_their_type() {
        let e = event(EventKind::FileRejected {
            file_id: 7,
            key: "egrid/x.csv".into(),
        });
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""type":"file_rejected""#), "{json}");
        assert_eq!(crate::message::decode::<Event>(json.as_bytes()).unwrap(), e);
    }
}
