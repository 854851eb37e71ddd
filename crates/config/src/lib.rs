//! penstock configuration: `config/penstock.toml` defaults (or the file `PENSTOCK_CONFIG`
//! names), each key overridable by `PENSTOCK_<KEY>`, plus the dataset specs under
//! `datasets_dir`. Everything is validated here, at start-up, and every error names the key,
//! where its value came from, and the fix.
//!
//! When no config file is found and `PENSTOCK_CONFIG` is unset, the defaults and dataset
//! specs compiled into the binary are used, so `penstock` runs from any directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use penstock_core::DatasetSpec;

mod error;
mod settings;
mod webhooks;

pub use error::ConfigError;
pub use webhooks::Webhook;

use settings::Settings;
use webhooks::webhooks;

/// Where objects are listed and read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local folder (absolute path).
    Local(PathBuf),
    /// An S3 bucket, with an optional key prefix that is stripped from keys.
    S3 { bucket: String, prefix: String },
}

impl StorageUrl {
    /// A stable name for the store, recorded with each file version.
    pub fn id(&self) -> String {
        match self {
            StorageUrl::Local(p) => format!("file://{}", p.display()),
            StorageUrl::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            StorageUrl::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

/// S3 connection settings from the standard AWS variables; unset ones fall back to the AWS
/// SDK's usual chain (profiles, instance metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`): set for MinIO and other S3 servers.
    pub endpoint_url: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub region: Option<String>,
}

impl S3Settings {
    fn from_env(env: &HashMap<String, String>) -> S3Settings {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        S3Settings {
            endpoint_url: get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL")),
            access_key_id: get("AWS_ACCESS_KEY_ID"),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
        }
    }
}

/// The validated configuration of one penstock process.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// RabbitMQ endpoints (one, or every node of a cluster): connections go to the first
    /// that answers, and move on to the next when it fails.
    pub amqp_urls: Vec<String>,
    /// Nodes of a RabbitMQ cluster that hold each quorum queue penstock declares; `None`:
    /// the broker's default (every node).
    pub quorum_group_size: Option<u32>,
    pub storage: StorageUrl,
    pub s3: S3Settings,
    pub queue_prefix: String,
    pub scan_interval: Duration,
    pub chunk_bytes: u64,
    pub database_concurrency: usize,
    pub shutdown_grace: Duration,
    /// How long a starting process waits for PostgreSQL and RabbitMQ to answer.
    pub startup_wait: Duration,
    /// Attempts a work item gets before it is dead-lettered.
    pub max_attempts: u32,
    /// How often the reconciler looks for files that made no progress.
    pub reconcile_interval: Duration,
    /// How long a file may go without progress before the reconciler looks at its items.
    pub reconcile_after: Duration,
    /// Recoveries a file gets before the reconciler fails it.
    pub max_recoveries: u32,
    pub webhooks: Vec<Webhook>,
    /// Where to serve `/health` and `/ready` (None: not served).
    pub health_addr: Option<std::net::SocketAddr>,
    /// Where to serve `/metrics` (and `/health`, `/ready`) for a process without the API.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// A queue of S3 bucket notifications (MinIO's AMQP target) the scanner consumes besides
    /// polling (None: polling only).
    pub s3_events_queue: Option<String>,
    /// Where the `api` role listens (None: the role is not served).
    pub api_addr: Option<std::net::SocketAddr>,
    /// How long the API keeps a computed aggregate (also dropped when a file finishes).
    pub api_cache_ttl: Duration,
    /// The longest the API works on one request before answering 503.
    pub api_request_timeout: Duration,
    /// PostgreSQL connections of the API's own pool (apart from the loaders').
    pub api_database_connections: u32,
    /// Where the read API reads from when that is not `database_url`: typically a hot
    /// standby, so reads do not compete with loading. Its writes (alert actions) still go to
    /// `database_url`.
    pub api_database_url: Option<String>,
    /// A standby further behind than this makes the API unready.
    pub api_replica_max_lag: Duration,
    /// Bearer token for the API's alert actions (None: the actions are disabled).
    pub admin_token: Option<String>,
    pub datasets: Vec<DatasetSpec>,
    /// The folder the dataset specs were read from (None: the built-in specs).
    pub datasets_path: Option<PathBuf>,
    /// Extra migrations for datasets added without rebuilding penstock (`penstock infer`
    /// writes here; `penstock migrate` applies them after the built-in ones). None: only the
    /// built-in migrations.
    pub migrations_path: Option<PathBuf>,
    /// Where the defaults came from (a path, or "built-in defaults").
    pub source: String,
}

impl Config {
    /// The dataset an object key belongs to (longest matching prefix wins).
    /// Every database penstock writes to, each URL once: `database_url` first, then the
    /// datasets' own.
    pub fn database_urls(&self) -> Vec<DatabaseUrl<'_>> {
        let mut urls = vec![DatabaseUrl {
            dataset: None,
            url: &self.database_url,
        }];
        for (dataset, url) in self.dataset_databases() {
            if !urls.iter().any(|known| known.url == url) {
                urls.push(DatabaseUrl {
                    dataset: Some(dataset),
                    url,
                });
            }
        }
        urls
    }

    /// The datasets that name their own database, with its URL (in configuration order).
    pub fn dataset_databases(&self) -> Vec<(&str, &str)> {
        self.datasets
            .iter()
            .filter_map(|d| Some((d.name.as_str(), d.database_url.as_deref()?)))
            .collect()
    }

    pub fn dataset_for(&self, key: &str) -> Option<&DatasetSpec> {
        self.datasets
            .iter()
            .filter(|d| d.matches(key))
            .max_by_key(|d| d.key_prefix.len())
    }

    pub fn dataset(&self, name: &str) -> Option<&DatasetSpec> {
        self.datasets.iter().find(|d| d.name == name)
    }
}

/// The defaults compiled into the binary (`config/penstock.toml` of this repository).
pub const BUILTIN_CONFIG: &str = include_str!("../../../config/penstock.toml");
const BUILTIN_DATASETS: &[(&str, &str)] = &[(
    "egrid_generators.toml",
    include_str!("../../../config/datasets/egrid_generators.toml"),
)];

const KEYS: &[&str] = &[
    "database_url",
    "amqp_url",
    "quorum_group_size",
    "storage_url",
    "queue_prefix",
    "scan_interval",
    "chunk_bytes",
    "database_concurrency",
    "shutdown_grace",
    "startup_wait",
    "max_attempts",
    "reconcile_interval",
    "reconcile_after",
    "max_recoveries",
    "datasets_dir",
    "migrations_dir",
    "webhooks",
    "health_addr",
    "metrics_addr",
    "s3_events_queue",
    "api_addr",
    "api_cache_ttl",
    "api_request_timeout",
    "api_database_connections",
    "api_database_url",
    "api_replica_max_lag",
    "admin_token",
];

/// Loads the configuration from the process environment.
pub fn load() -> Result<Config, ConfigError> {
    load_from(&std::env::vars().collect())
}

/// Loads the configuration from the given environment (tests pass their own).
pub fn load_from(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    let explicit = env.get("PENSTOCK_CONFIG").filter(|p| !p.is_empty());
    let (text, source, base) = match explicit {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                key: "PENSTOCK_CONFIG".into(),
                origin: "environment".into(),
                message: format!("cannot read {path}: {e}; point it at a penstock.toml"),
            })?;
            let base = Path::new(path).parent().map(Path::to_path_buf).unwrap_or_default();
            (text, path.clone(), Some(base))
        }
        None => match std::fs::read_to_string("config/penstock.toml") {
            Ok(text) => (text, "config/penstock.toml".to_string(), Some(PathBuf::from("config"))),
            Err(_) => (BUILTIN_CONFIG.to_string(), "built-in defaults".to_string(), None),
        },
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError {
        key: "config file".into(),
        origin: source.clone(),
        message: format!("not valid TOML: {e}"),
    })?;
    for key in table.keys() {
        if !KEYS.contains(&key.as_str()) {
            return Err(ConfigError {
                key: key.clone(),
                origin: source.clone(),
                message: format!("unknown key; known keys are {}", KEYS.join(", ")),
            });
        }
    }
    let settings = Settings {
        table,
        defaults: toml::from_str(BUILTIN_CONFIG).expect("the built-in config is valid TOML"),
        env,
        source: &source,
    };

    let database_url = settings.string("database_url")?;
    settings.check(
        "database_url",
        database_url.starts_with("postgres://") || database_url.starts_with("postgresql://"),
        "must be a postgres:// URL, e.g. postgres://user@127.0.0.1:5432/penstock",
    )?;
    let amqp_urls = settings.string_list("amqp_url")?;
    settings.check(
        "amqp_url",
        amqp_urls
            .iter()
            .all(|u| u.starts_with("amqp://") || u.starts_with("amqps://")),
        "must be amqp:// URLs with the vhost, e.g. amqp://guest:guest@127.0.0.1:5672/%2f (several for a cluster: \
         a list, or separated by commas)",
    )?;
    let quorum_group_size = Some(settings.integer("quorum_group_size", 0, 99)? as u32).filter(|n| *n > 0);
    let storage = parse_storage(&settings.string("storage_url")?).map_err(|m| settings.error("storage_url", m))?;
    let queue_prefix = settings.string("queue_prefix")?;
    settings.check(
        "queue_prefix",
        !queue_prefix.is_empty()
            && queue_prefix.len() <= 200
            && queue_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)),
        "must be non-empty and use only letters, digits, '-', '_', '.' or ':'",
    )?;
    let scan_interval = settings.duration("scan_interval")?;
    let chunk_bytes = settings.integer("chunk_bytes", 1, 1 << 30)?;
    let database_concurrency = settings.integer("database_concurrency", 1, 256)? as usize;
    let shutdown_grace = settings.duration("shutdown_grace")?;
    let startup_wait = settings.duration("startup_wait")?;
    let max_attempts = settings.integer("max_attempts", 1, 100)? as u32;
    let reconcile_interval = settings.duration("reconcile_interval")?;
    let reconcile_after = settings.duration("reconcile_after")?;
    let max_recoveries = settings.integer("max_recoveries", 1, 100)? as u32;
    let webhooks = webhooks(&settings.table, env, &source)?;
    let health_addr = settings.address("health_addr", "0.0.0.0:9000")?;
    let metrics_addr = settings.address("metrics_addr", "0.0.0.0:9100")?;
    let s3_events_queue = Some(settings.string("s3_events_queue")?.trim().to_string()).filter(|q| !q.is_empty());
    if s3_events_queue.is_some() && !matches!(storage, StorageUrl::S3 { .. }) {
        return Err(settings.error(
            "s3_events_queue",
            "bucket notifications need an s3:// storage_url; leave it empty for a local folder (polling sees every change)".into(),
        ));
    }
    let api_addr = settings.address("api_addr", "127.0.0.1:8080")?;
    let api_cache_ttl = settings.duration("api_cache_ttl")?;
    let api_request_timeout = settings.duration("api_request_timeout")?;
    let api_database_connections = settings.integer("api_database_connections", 1, 1000)? as u32;
    let api_database_url = Some(settings.string("api_database_url")?.trim().to_string()).filter(|u| !u.is_empty());
    settings.check(
        "api_database_url",
        api_database_url
            .as_deref()
            .is_none_or(|u| u.starts_with("postgres://") || u.starts_with("postgresql://")),
        "must be empty (read from database_url) or a postgres:// URL, e.g. of a hot standby: \
         postgres://user@replica:5432/penstock",
    )?;
    let api_replica_max_lag = settings.duration("api_replica_max_lag")?;
    let admin_token = match settings.raw("admin_token") {
        Ok((value, _)) if value.trim().is_empty() => None,
        Ok((value, _)) => {
            settings.check(
                "admin_token",
                value.trim().len() >= 16 && value.trim().chars().all(|c| c.is_ascii_graphic()),
                "must be at least 16 printable ASCII characters without spaces (e.g. `openssl rand -hex 24`)",
            )?;
            Some(value.trim().to_string())
        }
        Err(_) => None,
    };

    let datasets_dir = settings.string("datasets_dir")?;
    let mut datasets_path = None;
    let datasets = match (&base, env.get("PENSTOCK_DATASETS_DIR")) {
        (None, None) => BUILTIN_DATASETS
            .iter()
            .map(|(name, text)| DatasetSpec::from_toml(&format!("built-in {name}"), text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| settings.error("datasets_dir", e.to_string()))?,
        _ => {
            let dir = match &base {
                Some(base) if env.get("PENSTOCK_DATASETS_DIR").is_none() => base.join(&datasets_dir),
                _ => PathBuf::from(&datasets_dir),
            };
            let specs = load_datasets(&dir).map_err(|m| settings.error("datasets_dir", m))?;
            datasets_path = Some(dir);
            specs
        }
    };
    let migrations_dir = settings.string("migrations_dir")?;
    let migrations_path = match (&base, env.get("PENSTOCK_MIGRATIONS_DIR")) {
        (_, Some(dir)) if !dir.is_empty() => Some(PathBuf::from(dir)),
        (Some(base), None) if !migrations_dir.is_empty() => Some(base.join(&migrations_dir)),
        _ => None,
    };
    if datasets.is_empty() {
        return Err(settings.error("datasets_dir", "holds no dataset spec (*.toml); add one".into()));
    }
    for (i, a) in datasets.iter().enumerate() {
        if let Some(b) = datasets[..i].iter().find(|b| b.name == a.name) {
            return Err(settings.error("datasets_dir", format!("two specs declare the dataset {:?}", b.name)));
        }
    }
    let mut datasets = datasets;
    for spec in &mut datasets {
        let variable = dataset_database_variable(&spec.name);
        if let Some(url) = env.get(&variable) {
            spec.database_url = Some(url.trim().to_string()).filter(|u| !u.is_empty());
        }
        if let Some(url) = &spec.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(settings.error(
                "datasets_dir",
                format!(
                    "dataset {:?} has database_url {:?} (or {variable}); use a postgres:// URL, or leave it out to \
                     keep the dataset in database_url",
                    spec.name,
                    penstock_core::redact::password(url)
                ),
            ));
        }
    }
    Ok(Config {
        database_url,
        amqp_urls,
        quorum_group_size,
        storage,
        s3: S3Settings::from_env(env),
        queue_prefix,
        scan_interval,
        chunk_bytes,
        database_concurrency,
        shutdown_grace,
        startup_wait,
        max_attempts,
        reconcile_interval,
        reconcile_after,
        max_recoveries,
        webhooks,
        health_addr,
        metrics_addr,
        s3_events_queue,
        api_addr,
        api_cache_ttl,
        api_request_timeout,
        api_database_connections,
        api_database_url,
        api_replica_max_lag,
        admin_token,
        datasets,
        datasets_path,
        migrations_path,
        source,
    })
}

/// One database of a configuration: `database_url` (no dataset) or the first dataset that
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseUrl<'a> {
    pub dataset: Option<&'a str>,
    pub url: &'a str,
}

impl DatabaseUrl<'_> {
    /// What names it in messages: `database_url`, or `database_url of dataset NAME`.
    pub fn label(&self) -> String {
        match self.dataset {
            None => "database_url".into(),
            Some(dataset) => format!("database_url of dataset {dataset}"),
        }
    }

    /// The environment variable that sets it.
    pub fn variable(&self) -> String {
        match self.dataset {
            None => "PENSTOCK_DATABASE_URL".into(),
            Some(dataset) => dataset_database_variable(dataset),
        }
    }
}

/// The variable that overrides a dataset's `database_url`: `PENSTOCK_DATABASE_URL_` and
/// the name upper-cased, every character other than a letter or digit as `_`.
pub fn dataset_database_variable(dataset: &str) -> String {
    let name: String = dataset
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("PENSTOCK_DATABASE_URL_{name}")
}

fn load_datasets(dir: &Path) -> Result<Vec<DatasetSpec>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read folder {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            DatasetSpec::from_toml(&p.display().to_string(), &text).map_err(|e| e.to_string())
        })
        .collect()
}

/// Parses `storage_url`: a local folder or `s3://bucket[/prefix]`.
pub fn parse_storage(value: &str) -> Result<StorageUrl, String> {
    if let Some(rest) = value.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("s3:// URL has no bucket; use s3://bucket or s3://bucket/prefix".into());
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        return Ok(StorageUrl::S3 {
            bucket: bucket.to_string(),
            prefix,
        });
    }
    let path = match value.strip_prefix("file://") {
        Some(p) if p.starts_with('/') => PathBuf::from(p),
        Some(_) => return Err("file:// URLs must be absolute, e.g. file:///srv/inbox".into()),
        None if value.contains("://") => {
            return Err(format!(
                "unsupported scheme in {value:?}; use a folder path, file:///abs/path or s3://bucket[/prefix]"
            ));
        }
        None if value.is_empty() => {
            return Err("is empty; use a folder path or s3://bucket[/prefix]".into());
        }
        None => PathBuf::from(value),
    };
    let path = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot resolve relative path: {e}"))?
            .join(path)
    };
    Ok(StorageUrl::Local(path))
}

#[cfg(test)]
mod tests;
