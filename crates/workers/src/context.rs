//! What every role shares: configuration, the databases, the store, the datasets, and failing
//! a file.

use std::collections::HashMap;
use std::sync::Arc;

use penstock_broker::{BrokerError, RabbitMq, Topology};
use penstock_config::Config;
use penstock_core::DatasetSpec;
use penstock_core::event::Event;
use penstock_db::{Databases, DbError, FileState, MergeSql, PgPool};
use penstock_storage::ObjectStore;

use crate::metrics::Occurrence;
use crate::outcome::{Disposition, RunError};
use crate::startup::waiting_for;

/// Connects to the first of the configured RabbitMQ endpoints that answers (see
/// [`RabbitMq::connect_any`]) and declares the fleet's queues there.
pub async fn connect_broker(config: &Config) -> Result<RabbitMq, BrokerError> {
    let topology = Topology {
        quorum_group_size: config.quorum_group_size,
        ..Topology::new(&config.queue_prefix)
    };
    RabbitMq::connect_any(&config.amqp_urls, &topology).await
}

/// What every role shares: configuration, the databases, the store, the datasets.
pub struct Context {
    pub config: Config,
    /// `database_url` and every dataset's own database.
    pub dbs: Databases,
    pub store: Arc<dyn ObjectStore>,
    datasets: HashMap<String, (DatasetSpec, MergeSql)>,
}

impl Context {
    /// The home database (`database_url`): ignored objects, dead items, alerts.
    pub fn home(&self) -> &PgPool {
        self.dbs.home()
    }

    /// The database that holds a file version (and its chunks, quarantine and events).
    pub fn file_db(&self, file_id: i64) -> &PgPool {
        self.dbs.for_file(file_id)
    }

    /// A dataset's spec and merge statements.
    pub fn dataset(&self, name: &str) -> Option<(&DatasetSpec, &MergeSql)> {
        self.datasets.get(name).map(|(s, m)| (s, m))
    }

    /// What every stage shares: the shutdown grace period and the attempt limit.
    pub fn settings(&self) -> crate::stage::Settings {
        crate::stage::Settings {
            grace: self.config.shutdown_grace,
            max_attempts: self.config.max_attempts,
        }
    }

    /// Marks a file version failed with a reason (its event goes to the outbox in the same
    /// transaction, for the notification consumer) and dead-letters its item.
    pub async fn fail_file(&self, file_id: i64, key: &str, reason: &str) -> Disposition {
        let event = Event::file_failed(file_id, key, reason, "worker");
        match penstock_db::finish_with(self.file_db(file_id), file_id, FileState::Failed, reason, &event).await {
            Ok(changed) => {
                if changed {
                    let dataset = self
                        .config
                        .dataset_for(key)
                        .map(|d| d.name.as_str())
                        .unwrap_or("unknown");
                    Occurrence::FileCompleted {
                        file_id,
                        key,
                        dataset,
                        status: FileState::Failed,
                        took: None,
                        reason: Some(reason),
                    }
                    .record();
                }
                Disposition::DeadLetter(reason.to_string())
            }
            // Could not record the failure: keep the item so the failure is not lost.
            Err(e) if e.is_transient() => {
                Disposition::Retry(format!("{reason} (and recording the failure failed: {e})"))
            }
            Err(_) => Disposition::DeadLetter(reason.to_string()),
        }
    }

    /// Connects to the database, checks every dataset spec against its live table and opens
    /// the store. Fails fast, with the fix, on configuration problems.
    pub async fn open(config: Config) -> Result<Arc<Context>, RunError> {
        let connections = (config.database_concurrency as u32 + 4).max(5);
        let wait = config.startup_wait;
        let dbs = waiting_for("PostgreSQL", wait, DbError::is_transient, async || {
            Databases::connect(&config.database_url, &config.dataset_databases(), connections).await
        })
        .await
        .map_err(|e| match e {
            DbError::Invalid(message) => RunError::Startup(message),
            e => RunError::Startup(format!(
                "cannot connect to PostgreSQL at database_url (or a dataset's database_url): {e}; check \
                 PENSTOCK_DATABASE_URL and run `penstock migrate`"
            )),
        })?;
        let mut datasets = HashMap::new();
        for spec in &config.datasets {
            let warnings = waiting_for("PostgreSQL", wait, DbError::is_transient, async || {
                penstock_db::check_spec(dbs.for_dataset(&spec.name), spec).await
            })
            .await
            .map_err(|e| RunError::Startup(e.to_string()))?;
            for warning in warnings {
                tracing::warn!(dataset = %spec.name, "{warning}");
            }
            datasets.insert(spec.name.clone(), (spec.clone(), MergeSql::new(spec)));
        }
        let store = penstock_storage::open(&config).await;
        Ok(Arc::new(Context {
            config,
            dbs,
            store,
            datasets,
        }))
    }

    /// A context whose database is unreachable (every query fails fast and transiently) and
    /// whose store is an empty folder: for unit tests of decisions made before, or about,
    /// the database.
    #[cfg(test)]
    pub(crate) async fn unreachable_database(store: &std::path::Path) -> Arc<Context> {
        let env = HashMap::from([
            ("PENSTOCK_STORAGE_URL".to_string(), store.display().to_string()),
            ("PENSTOCK_SHUTDOWN_GRACE".to_string(), "2s".to_string()),
        ]);
        let config = penstock_config::load_from(&env).expect("the built-in configuration loads");
        let pool = penstock_db::connect_lazy(
            "postgres://penstock@127.0.0.1:1/unreachable",
            1,
            std::time::Duration::from_millis(200),
        )
        .expect("a valid URL");
        let datasets = config
            .datasets
            .iter()
            .map(|spec| (spec.name.clone(), (spec.clone(), MergeSql::new(spec))))
            .collect();
        let store = penstock_storage::open(&config).await;
        Arc::new(Context {
            config,
            dbs: Databases::single(pool),
            store,
            datasets,
        })
    }
}
