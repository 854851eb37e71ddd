//! Operator commands: `check`, `replay`, `backfill`, `migrate status` / `migrate revert`.

use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use penstock_broker::{RabbitMq, WorkQueue};
use penstock_config::{Config, StorageUrl};
use penstock_db::FileState;
use penstock_workers::context::{Context, connect_broker};

/// `penstock check`: configuration, dataset specs against live tables, connectivity to the
/// database, the broker and the store, with a line of advice for each problem.
pub async fn check(config: &Config) -> anyhow::Result<()> {
    let mut problems = 0;
    let mut report = |ok: bool, what: &str, detail: String, advice: &str| {
        if ok {
            println!("ok    {what:<22} {detail}");
        } else {
            problems += 1;
            println!("FAIL  {what:<22} {detail}");
            println!("      {:<22} → {advice}", "");
        }
    };
    report(
        true,
        "configuration",
        format!(
            "{} ({} dataset(s): {})",
            config.source,
            config.datasets.len(),
            config
                .datasets
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "",
    );
    let timeout = Duration::from_secs(5);
    let urls = config.database_urls();
    for db in &urls {
        let url = db.url;
        // `database` for database_url alone (as before datasets could have their own).
        let what = match db.dataset {
            _ if urls.len() == 1 => "database".to_string(),
            None => "database_url".to_string(),
            Some(dataset) => format!("database of {dataset}"),
        };
        let (variable, shown) = (db.variable(), penstock_core::redact::password(url));
        let pool = match tokio::time::timeout(timeout, penstock_db::connect(url, 2)).await {
            Ok(Ok(pool)) => {
                let version = penstock_db::server_version(&pool).await?;
                report(true, &what, format!("{shown} (PostgreSQL {version})"), "");
                pool
            }
            Ok(Err(e)) => {
                report(
                    false,
                    &what,
                    format!("{shown}: {e}"),
                    &format!("start PostgreSQL or fix {variable}; `penstock migrate` creates a missing database"),
                );
                continue;
            }
            Err(_) => {
                report(
                    false,
                    &what,
                    format!("{shown}: no answer in 5 s"),
                    &format!("check the host and port in {variable} and that PostgreSQL accepts connections"),
                );
                continue;
            }
        };
        let states = penstock_db::migration_status(&pool, config.migrations_path.as_deref()).await?;
        let pending: Vec<String> = states
            .iter()
            .filter(|m| m.applied_on.is_none())
            .map(|m| format!("{} {}", m.version, m.description))
            .collect();
        report(
            pending.is_empty(),
            if urls.len() == 1 { "migrations" } else { "  migrations" },
            if pending.is_empty() {
                format!("{} applied, none pending", states.len())
            } else {
                format!("{} pending: {}", pending.len(), pending.join(", "))
            },
            "run `penstock migrate`",
        );
        let here = config
            .datasets
            .iter()
            .filter(|d| d.database_url.as_deref().unwrap_or(&config.database_url) == url);
        for spec in here {
            match penstock_db::check_spec(&pool, spec).await {
                Ok(warnings) => {
                    report(
                        true,
                        &format!("dataset {}", spec.name),
                        format!("table {} matches the spec", spec.table()),
                        "",
                    );
                    for warning in warnings {
                        println!("warn  {:<22} {warning}", "");
                    }
                }
                Err(e) => report(
                    false,
                    &format!("dataset {}", spec.name),
                    e.to_string(),
                    "fix the spec or add a migration, then `penstock migrate`",
                ),
            }
        }
        pool.close().await;
    }
    if let Some(url) = &config.api_database_url {
        let shown = penstock_core::redact::password(url);
        let replica = async {
            let pool = penstock_db::connect(url, 1).await?;
            let status = penstock_db::replica_status(&pool).await;
            pool.close().await;
            status
        };
        match tokio::time::timeout(timeout, replica).await {
            Ok(Ok(Some(status))) => report(
                status
                    .lag_seconds
                    .is_some_and(|lag| lag <= config.api_replica_max_lag.as_secs_f64()),
                "api reads",
                format!(
                    "{shown}: a hot standby, {}, {} (api_replica_max_lag {} s)",
                    if status.streaming { "streaming" } else { "not streaming" },
                    match status.lag_seconds {
                        Some(lag) => format!("{lag:.1} s behind"),
                        None => "lag unknown (nothing replayed since it started)".to_string(),
                    },
                    config.api_replica_max_lag.as_secs()
                ),
                "the standby is too far behind or not streaming: check its replication and the primary",
            ),
            Ok(Ok(None)) => report(
                true,
                "api reads",
                format!("{shown}: a primary (the API hears changes by LISTEN)"),
                "",
            ),
            Ok(Err(e)) => report(
                false,
                "api reads",
                format!("{shown}: {e}"),
                "fix PENSTOCK_API_DATABASE_URL or start the standby",
            ),
            Err(_) => report(
                false,
                "api reads",
                format!("{shown}: no answer in 5 s"),
                "check the host and port in PENSTOCK_API_DATABASE_URL",
            ),
        }
    }
    // A probe, not a worker's connection: checking declares no queues. Every endpoint is
    // probed; the broker is usable while one answers (a cluster with a node down).
    let mut answered = 0;
    let mut said = Vec::new();
    let mut hint = "";
    for url in &config.amqp_urls {
        let shown = penstock_core::redact::password(url);
        match tokio::time::timeout(timeout, RabbitMq::probe(url)).await {
            Ok(Ok(())) => {
                answered += 1;
                said.push(shown);
            }
            Ok(Err(e)) => {
                said.push(format!("{shown}: {e}"));
                hint = "start RabbitMQ or fix PENSTOCK_AMQP_URL (user, password and vhost)";
            }
            Err(_) => {
                said.push(format!("{shown}: no answer in 5 s"));
                if hint.is_empty() {
                    hint = "check the host and port in PENSTOCK_AMQP_URL";
                }
            }
        }
    }
    let ok = answered > 0;
    let mut details = said.join("; ");
    if ok {
        details = format!("{details} (queues {}.*)", config.queue_prefix);
    }
    report(ok, "broker", details, if ok { "" } else { hint });
    let store = penstock_storage::open(config).await;
    match tokio::time::timeout(Duration::from_secs(15), store.list()).await {
        Ok(Ok(objects)) => {
            let matching = objects.iter().filter(|o| config.dataset_for(&o.key).is_some()).count();
            report(
                true,
                "store",
                format!(
                    "{} ({} objects, {matching} under a dataset prefix)",
                    store.id(),
                    objects.len()
                ),
                "",
            );
        }
        Ok(Err(e)) => {
            let advice = match &config.storage {
                StorageUrl::Local(_) => "create the folder, or fix PENSTOCK_STORAGE_URL",
                StorageUrl::S3 { .. } => "check the bucket name, AWS_ENDPOINT_URL and the AWS_* credentials",
            };
            report(false, "store", format!("{}: {e}", store.id()), advice);
        }
        Err(_) => report(
            false,
            "store",
            format!("{}: listing took over 15 s", store.id()),
            "check the S3 endpoint (AWS_ENDPOINT_URL) is reachable",
        ),
    }
    if let Some(addr) = config.api_addr {
        match std::net::TcpListener::bind(addr) {
            Ok(_) => report(true, "api address", format!("{addr} is free"), ""),
            Err(e) => report(
                false,
                "api address",
                format!("{addr}: {e}"),
                "another process (a running penstock?) uses it; set PENSTOCK_API_ADDR, or ignore this while the fleet runs",
            ),
        }
    }
    if problems > 0 {
        bail!("{problems} problem(s) found");
    }
    println!("\nall checks passed");
    Ok(())
}

/// Connects to `database_url` and every dataset's own database (few connections: for the
/// commands, not the fleet).
pub async fn connect_databases(config: &Config) -> anyhow::Result<penstock_db::Databases> {
    Ok(penstock_db::Databases::connect(&config.database_url, &config.dataset_databases(), 2).await?)
}

/// `penstock replay <id>… | --failed`: re-runs file versions from their stored objects.
pub async fn replay(config: &Config, ids: Vec<i64>, failed: bool) -> anyhow::Result<()> {
    let dbs = connect_databases(config).await?;
    let mut ids = ids;
    if failed {
        ids.extend(
            dbs.all_files()
                .await?
                .into_iter()
                .filter(|f| f.status == FileState::Failed)
                .map(|f| f.id),
        );
    }
    if ids.is_empty() {
        println!(
            "{}",
            if failed {
                "no failed file versions"
            } else {
                "nothing to replay"
            }
        );
        return Ok(());
    }
    let broker = connect_broker(config)
        .await
        .context("connecting to RabbitMQ (amqp_url)")?;
    for id in ids {
        let pool = dbs.for_file(id);
        let before = penstock_db::file(pool, id).await?;
        let file = penstock_db::reset_for_replay(pool, id).await?;
        penstock_workers::scanner::publish_file(pool, &broker, &file).await?;
        let was = before
            .map(|b| match b.reason {
                Some(r) => format!("{}: {r}", b.status),
                None => b.status.to_string(),
            })
            .unwrap_or_default();
        println!("file {id} {}: replaying (was {was})", file.key);
    }
    broker.close().await;
    println!("`penstock status` shows progress; a running fleet does the work");
    Ok(())
}

/// `penstock backfill --prefix P [--since DATE]`.
pub async fn backfill(config: Config, prefix: String, since: Option<String>) -> anyhow::Result<()> {
    let since = since.map(|s| parse_since(&s)).transpose()?;
    let ctx = Context::open(config).await?;
    let broker = connect_broker(&ctx.config)
        .await
        .context("connecting to RabbitMQ (amqp_url)")?;
    let report = penstock_workers::backfill::backfill(&ctx, &broker, &prefix, since).await?;
    broker.close().await;
    println!(
        "{} object(s) under {prefix:?}{}: {} new version(s) recorded and queued, {} already in the ledger",
        report.objects,
        since.map(|_| " (since the given date)").unwrap_or(""),
        report.recorded.len(),
        report.known
    );
    if !report.recorded.is_empty() {
        println!(
            "  file ids: {}",
            report
                .recorded
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for key in &report.unmatched {
        println!("  skipped {key}: no dataset's key_prefix matches it");
    }
    for key in &report.unsettled {
        println!(
            "  skipped {key}: modified moments ago (maybe still being written); the scanner takes it once settled"
        );
    }
    for line in &report.unreadable {
        println!("  skipped {line}");
    }
    Ok(())
}

/// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 timestamp.
fn parse_since(s: &str) -> anyhow::Result<SystemTime> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc).into());
    }
    match chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().into()),
        Err(_) => {
            bail!("--since {s:?} is not a date; use YYYY-MM-DD or an RFC 3339 timestamp like 2026-11-30T08:00:00Z")
        }
    }
}

/// `penstock migrate status`: per database when datasets have their own.
pub async fn migrate_status(config: &Config) -> anyhow::Result<()> {
    let urls = config.database_urls();
    let mut pending = 0;
    for db in &urls {
        let pool = penstock_db::connect(db.url, 2)
            .await
            .with_context(|| format!("connecting to {}", db.label()))?;
        let states = penstock_db::migration_status(&pool, config.migrations_path.as_deref()).await?;
        pool.close().await;
        if urls.len() > 1 {
            println!("{} ({})", db.label(), penstock_core::redact::password(db.url));
        }
        println!("{:>16}  {:<26} {:<30} source", "version", "applied", "description");
        for m in &states {
            println!(
                "{:>16}  {:<26} {:<30} {}{}",
                m.version,
                m.applied_on
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| "pending".into()),
                m.description,
                m.source,
                if m.reversible { "" } else { " (no down)" }
            );
        }
        pending += states.iter().filter(|m| m.applied_on.is_none()).count();
    }
    if pending > 0 {
        println!("\n{pending} pending: run `penstock migrate`");
    }
    Ok(())
}

/// `penstock migrate revert`: undoes the latest applied migration, in every database (they
/// keep one schema).
pub async fn migrate_revert(config: &Config) -> anyhow::Result<()> {
    let urls = config.database_urls();
    for db in &urls {
        let label = db.label();
        let pool = penstock_db::connect(db.url, 2)
            .await
            .with_context(|| format!("connecting to {label}"))?;
        let reverted = penstock_db::revert_latest(&pool, config.migrations_path.as_deref()).await?;
        pool.close().await;
        let place = if urls.len() > 1 {
            format!(" in {label}")
        } else {
            String::new()
        };
        match reverted {
            Some(m) => println!("reverted {} {} ({}){place}", m.version, m.description, m.source),
            None => println!("no migration is applied{place}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_date_or_a_timestamp_and_explains_a_bad_one() {
        let day = parse_since("2026-11-30").unwrap();
        let at = parse_since("2026-11-30T00:00:00Z").unwrap();
        assert_eq!(day, at);
        assert!(parse_since("yesterday").unwrap_err().to_string().contains("YYYY-MM-DD"));
    }
}
