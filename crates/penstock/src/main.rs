//! The penstock binary: parses the command line and calls the library crates.

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use penstock_fleet::{Fleet, Role};
use penstock_workers::startup::waiting_for;
use tokio_util::sync::CancellationToken;

mod allocator;
mod diff;
mod infer;
mod ops;
mod status;
mod validate;
mod watch;

#[derive(Parser)]
#[command(
    name = "penstock",
    version,
    about = "Streaming CSV → PostgreSQL ingest through RabbitMQ"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the built-in migrations, then those in migrations_dir (creates the database if
    /// missing; idempotent). `migrate status` lists them; `migrate revert` undoes the latest.
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Check the configuration, the dataset specs against their tables, and the database,
    /// broker and store connections; advice for every problem (exit 1 if any).
    Check,
    /// Re-run file versions from their stored objects (after fixing a spec or a table).
    Replay {
        /// File version ids (see `penstock status`).
        #[arg(value_name = "FILE_ID", required_unless_present = "failed")]
        ids: Vec<i64>,
        /// Every file version that failed.
        #[arg(long)]
        failed: bool,
    },
    /// Ingest objects already in the store under a prefix, without waiting for a scan.
    Backfill {
        /// Only objects whose key starts with this ("" for all).
        #[arg(long)]
        prefix: String,
        /// Only objects modified at or after this date (YYYY-MM-DD, UTC) or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
    /// Propose a dataset spec and a migration for a CSV file, from a sample of it, with the
    /// evidence for every choice as comments; writes them to datasets_dir and migrations_dir.
    Infer(infer::Args),
    /// The rows added, changed (old → new values) and absent from one file version of a
    /// dataset to another, by conflict key.
    Diff {
        /// The older file version (see `penstock status`).
        from: i64,
        /// The newer one.
        to: i64,
        /// Rows shown of each kind.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Dry-run loading a CSV file: the same validation and coercion as a load, touching no
    /// table; prints what would load, be superseded and be quarantined (exit 1: rejected).
    Validate(validate::Args),
    /// Run roles in this process: `all`, or any of scanner, chunker, database, errors, notifications, reconciler, api.
    Run {
        #[arg(required = true, value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// Show every file version: status, chunks, rows loaded / quarantined / superseded.
    Status {
        /// Print JSON instead of a table.
        #[arg(long, conflicts_with = "watch")]
        json: bool,
        /// A live view: files by status, progress bars, rows/s, queue depths (plain lines
        /// when not on a terminal).
        #[arg(long)]
        watch: bool,
        /// With --watch: the refresh interval.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// With --watch: stop once no file is in flight.
        #[arg(long, requires = "watch")]
        until_idle: bool,
    },
}

#[derive(Subcommand)]
enum MigrateAction {
    /// List every migration (built in and from migrations_dir) and whether it is applied.
    Status,
    /// Undo the most recently applied migration with its .down.sql.
    Revert,
}

fn main() -> std::process::ExitCode {
    allocator::tune();
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    runtime.block_on(async_main())
}

async fn async_main() -> std::process::ExitCode {
    init_logging();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = penstock_config::load()?;
    match cli.command {
        Command::Migrate {
            action: Some(MigrateAction::Status),
        } => ops::migrate_status(&config).await,
        Command::Migrate {
            action: Some(MigrateAction::Revert),
        } => ops::migrate_revert(&config).await,
        Command::Check => ops::check(&config).await,
        Command::Replay { ids, failed } => ops::replay(&config, ids, failed).await,
        Command::Backfill { prefix, since } => ops::backfill(config, prefix, since).await,
        Command::Migrate { action: None } => {
            // Run beside a database that is still starting (compose, a deploy): wait for it.
            let wait = config.startup_wait;
            let is_transient = penstock_db::DbError::is_transient;
            let urls = config.database_urls();
            for db in &urls {
                let (label, url) = (db.label(), db.url);
                waiting_for("PostgreSQL", wait, is_transient, async || {
                    penstock_db::ensure_database(url).await
                })
                .await
                .with_context(|| format!("creating the database named by {label}"))?;
                let pool = waiting_for("PostgreSQL", wait, is_transient, async || {
                    penstock_db::connect(url, 2).await
                })
                .await
                .with_context(|| format!("connecting to {label}"))?;
                penstock_db::migrate_with(&pool, config.migrations_path.as_deref())
                    .await
                    .with_context(|| format!("migrating {label}"))?;
                pool.close().await;
            }
            // Gives each dataset's own database its shard (the range of its file ids).
            let dbs = ops::connect_databases(&config).await?;
            if urls.len() > 1 {
                for db in dbs.all() {
                    println!("{}: shard {}", db.label, db.shard);
                }
            }
            dbs.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Infer(args) => infer::run(&config, args),
        Command::Diff { from, to, limit, json } => diff::run(&config, from, to, limit, json).await,
        Command::Validate(args) => {
            let strict = args.strict;
            if validate::run(&config, args)? {
                Ok(())
            } else if strict {
                bail!("the file would be rejected, or some of its records quarantined (--strict)")
            } else {
                bail!("the file would be rejected")
            }
        }
        Command::Run { roles } => {
            let mut selected = Vec::new();
            for name in &roles {
                match Role::parse(name) {
                    Some(r) => selected.extend(r),
                    None => {
                        bail!(
                            "unknown role {name:?}; use all, scanner, chunker, database, errors, notifications, reconciler or api"
                        )
                    }
                }
            }
            let shutdown = CancellationToken::new();
            penstock_workers::shutdown::on_signals(shutdown.clone())?;
            let fleet = Fleet::start(config, &selected, shutdown).await?;
            tracing::info!(roles = ?selected.iter().map(|r| r.name()).collect::<Vec<_>>(), "penstock running");
            fleet.wait().await;
            Ok(())
        }
        Command::Status {
            json,
            watch,
            interval,
            until_idle,
        } => {
            let dbs = ops::connect_databases(&config).await?;
            if watch {
                watch::run(&dbs, &config, interval, until_idle).await
            } else {
                status::print(&dbs, json).await
            }
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PENSTOCK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PENSTOCK_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
