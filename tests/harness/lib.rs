//! The end-to-end harness: every test gets its own PostgreSQL database (created, migrated,
//! dropped), its own queue prefix on the real RabbitMQ (queues deleted afterwards) and its
//! own storage folder, so tests run in parallel and leave nothing behind — even when they
//! panic (cleanup runs in `Drop`).
//!
//! Services default to the machine's: `PENSTOCK_TEST_PG` (a server URL without database,
//! default `postgres://postgres@127.0.0.1:5432`) and `PENSTOCK_TEST_AMQP`.

pub mod cluster;
pub mod egrid;
pub mod http;
pub mod proxy;
pub mod replica;
pub mod s3;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use penstock_config::Config;
use penstock_db::FileStatus;
use penstock_fleet::{Fleet, Role};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub fn pg_server() -> String {
    std::env::var("PENSTOCK_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn amqp_url() -> String {
    std::env::var("PENSTOCK_TEST_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The repository root (for config/ and the shared data).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The real eGRID 2023 generator file shipped with the project.
pub fn real_egrid_file() -> Vec<u8> {
    std::fs::read(repo_root().join("data/egrid/egrid2023_gen.csv")).expect("data/egrid/egrid2023_gen.csv")
}

/// A copy of the repository's configuration in a temporary folder, with the eGRID dataset
/// spec edited by `edit`; `PENSTOCK_CONFIG` should name the returned folder's `penstock.toml`.
/// The trigger a recording (`on_conflict = "record"`) eGRID dataset's table needs.
pub const EGRID_HISTORY_TRIGGER: &str = "CREATE TRIGGER egrid_generators_history AFTER UPDATE ON egrid_generators
    FOR EACH ROW EXECUTE FUNCTION penstock_record_history('egrid_generators')";

pub fn config_with_egrid_spec(edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    std::fs::copy(root.join("config/penstock.toml"), dir.path().join("penstock.toml")).unwrap();
    std::fs::create_dir(dir.path().join("datasets")).unwrap();
    let spec = std::fs::read_to_string(root.join("config/datasets/egrid_generators.toml")).unwrap();
    std::fs::write(dir.path().join("datasets/egrid_generators.toml"), edit(spec)).unwrap();
    dir
}

/// Writes `key` under the folder `root` the way a careful uploader does: a hidden temporary
/// file, then a rename into place (a new inode).
pub fn drop_into(root: &Path, key: &str, bytes: &[u8]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_file_name(format!(".{}.tmp", path.file_name().unwrap().to_string_lossy()));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// One test's private world: database, queue prefix, storage folder.
pub struct TestEnv {
    pub name: String,
    pub database_url: String,
    pub prefix: String,
    pub inbox: tempfile::TempDir,
    pub pool: PgPool,
}

impl TestEnv {
    /// Creates and migrates a fresh database, picks a fresh queue prefix and folder.
    pub async fn new() -> TestEnv {
        // PENSTOCK_TEST_LOG=penstock_workers=debug,… prints the fleet's logs for one test.
        if let Ok(filter) = std::env::var("PENSTOCK_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let name = format!("penstock_test_{}", uuid::Uuid::new_v4().simple());
        let database_url = format!("{}/{name}", pg_server());
        // Migrated on a connection of its own, then wait for its backend to exit: a backend
        // reports its table statistics when it exits (or, idle, up to seconds later), and a
        // test that reads PostgreSQL's counters must not see the migrations' index builds
        // and scans arrive in the middle of its measurement.
        create_migrated(&database_url).await;
        // Numbered as `penstock migrate` does, so the roles of a test find it numbered.
        penstock_db::Databases::connect(&database_url, &[], 1)
            .await
            .expect("number the test database")
            .close()
            .await;
        let pool = penstock_db::connect(&database_url, 5)
            .await
            .expect("connect test database");
        wait_for_other_backends_to_exit(&pool).await;
        TestEnv {
            prefix: format!("t{}", &name["penstock_test_".len()..][..12]),
            name,
            database_url,
            inbox: tempfile::tempdir().expect("temp folder"),
            pool,
        }
    }

    /// The environment a fleet for this test reads its configuration from.
    pub fn env(&self, overrides: &[(&str, &str)]) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [
            (
                "PENSTOCK_CONFIG",
                repo_root().join("config/penstock.toml").display().to_string(),
            ),
            ("PENSTOCK_DATABASE_URL", self.database_url.clone()),
            ("PENSTOCK_AMQP_URL", amqp_url()),
            ("PENSTOCK_STORAGE_URL", self.inbox.path().display().to_string()),
            ("PENSTOCK_QUEUE_PREFIX", self.prefix.clone()),
            ("PENSTOCK_SCAN_INTERVAL", "200ms".into()),
            ("PENSTOCK_SHUTDOWN_GRACE", "10s".into()),
            // Any free port: tests run in parallel (Fleet::api_addr tells which).
            ("PENSTOCK_API_ADDR", "127.0.0.1:0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in overrides {
            env.insert(k.to_string(), v.to_string());
        }
        env
    }

    pub fn config(&self, overrides: &[(&str, &str)]) -> Config {
        penstock_config::load_from(&self.env(overrides)).expect("test configuration")
    }

    /// Starts the given roles in this process.
    pub async fn start(&self, config: Config, roles: &[Role]) -> Fleet {
        Fleet::start(config, roles, CancellationToken::new())
            .await
            .expect("fleet starts")
    }

    /// Drops a file into the local store the way a careful uploader does (see [`drop_into`]).
    pub fn drop_file(&self, key: &str, bytes: &[u8]) {
        drop_into(self.inbox.path(), key, bytes);
    }

    /// A second migrated database on the test server (dropped with this one), for a dataset
    /// of its own: its URL and a pool.
    pub async fn second_database(&self) -> (String, PgPool) {
        let url = format!("{}_b", self.database_url);
        create_migrated(&url).await;
        let pool = penstock_db::connect(&url, 3)
            .await
            .expect("connect the second database");
        (url, pool)
    }

    pub async fn files(&self) -> Vec<FileStatus> {
        let mut files = penstock_db::all_files(&self.pool).await.unwrap();
        files.reverse();
        files
    }

    /// Waits until the first file version is planned (`loading`); returns its chunk count.
    pub async fn wait_until_planned(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(file) = self.files().await.first()
                && file.status == "loading"
                && let Some(total) = file.chunks_total
            {
                return total as usize;
            }
            assert!(Instant::now() < deadline, "never planned: {:#?}", self.files().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `count` file versions exist and all are in a terminal state.
    pub async fn wait_for_files(&self, count: usize, timeout: Duration) -> Vec<FileStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let files = self.files().await;
            if files.len() >= count && files.iter().all(FileStatus::is_terminal) {
                return files;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {count} finished file version(s); ledger: {files:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts every role (the API included), loads the real eGRID file and waits until it is
    /// done; returns the running fleet and a client for its API.
    pub async fn loaded_with_real_egrid(&self, overrides: &[(&str, &str)]) -> (Fleet, http::Http) {
        let fleet = self.start(self.config(overrides), &Role::ALL).await;
        self.drop_file("egrid/generators/egrid2023_gen.csv", &real_egrid_file());
        let files = self.wait_for_files(1, Duration::from_secs(120)).await;
        assert_eq!(files[0].status, "done", "{files:?}");
        let http = http::Http::new(fleet.api_addr().expect("the api role runs"));
        (fleet, http)
    }

    /// Runs a scalar query.
    pub async fn scalar<T>(&self, sql: &'static str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// The eGRID table as key → (net generation as text, source file, source line).
    /// Checks that every one of `files` (versions of eGRID files of `records` records each)
    /// loaded completely and exactly once: each `done` with every record counted and every
    /// chunk loaded, the table equal to an independent parse of `latest` (the bytes of the
    /// newest of them) with its lineage, each chunk recorded once, and no item dead-lettered.
    pub async fn assert_loaded_exactly_once(&self, files: &[FileStatus], records: i64, latest: &[u8]) {
        for file in files {
            assert_eq!(file.status, "done", "{files:#?}");
            assert_eq!(file.records_total, Some(records), "{file:#?}");
            assert_eq!(file.rows_loaded + file.rows_superseded, records, "{file:#?}");
            assert_eq!(Some(file.chunks_done), file.chunks_total, "{file:#?}");
        }
        let newest = files.iter().map(|f| f.id).max().expect("some files");
        assert_eq!(
            self.egrid_table().await,
            egrid::expected(latest, newest),
            "every row once, from the newest file"
        );
        let chunk_records: i64 = self.scalar("SELECT sum(records)::bigint FROM ingest_chunks").await;
        assert_eq!(chunk_records, files.len() as i64 * records, "each chunk recorded once");
        let dead: i64 = self
            .scalar("SELECT count(*) FROM ingest_errors WHERE kind = 'dead_item'")
            .await;
        assert_eq!(dead, 0, "no work item was given up");
    }

    pub async fn egrid_table(&self) -> egrid::Table {
        self.egrid_table_named("egrid_generators").await
    }

    /// An eGRID-shaped table of another name (a test's own copy of `egrid_generators`).
    pub async fn egrid_table_named(&self, table: &'static str) -> egrid::Table {
        type Loaded = (i32, String, String, String, Option<String>, i64, i64);
        // The name is a test's own constant.
        let rows: Vec<Loaded> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT year, state, plant_name, generator_id, net_generation_mwh::text, source_file_id, source_line
             FROM {table}"
        )))
        .fetch_all(&self.pool)
        .await
        .unwrap();
        rows.into_iter()
            .map(|(y, s, p, g, v, f, l)| ((y, s, p, g), (v.map(|v| egrid::normalise(&v)), f, l)))
            .collect()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let (name, prefix) = (self.name.clone(), self.prefix.clone());
        // Cleanup needs async I/O; run it on its own runtime so it also runs after a panic.
        // (The test's pool belongs to the test's runtime, which is blocked here: it is not
        // closed, but cut off by DROP DATABASE … WITH (FORCE).)
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(broker) = penstock_broker::RabbitMq::connect(&amqp_url(), &prefix).await {
                    let _ = broker.delete_queues().await;
                    // The S3 event queue tests name after their prefix.
                    let _ = broker.delete_queue(&format!("{prefix}.s3-events")).await;
                    penstock_broker::WorkQueue::close(&broker).await;
                }
                if let Ok(admin) = penstock_db::connect(&format!("{}/postgres", pg_server()), 1).await {
                    // With the one a test may have made beside it (`second_database`).
                    for name in [name.clone(), format!("{name}_b")] {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
                    }
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Creates the database at `url` and applies the migrations, on a connection closed after.
async fn create_migrated(url: &str) {
    penstock_db::ensure_database(url).await.expect("create test database");
    let migrator = penstock_db::connect(url, 1).await.expect("connect test database");
    penstock_db::migrate(&migrator).await.expect("migrate test database");
    migrator.close().await;
}

/// Waits until no backend but the caller's is connected to the pool's database (a closed
/// pool's backends exit a moment after the client hangs up).
async fn wait_for_other_backends_to_exit(pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(pool)
        .await
        .expect("read pg_stat_activity");
        if others == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{others} other backends stayed connected to the new test database"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
