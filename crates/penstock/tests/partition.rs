//! Workers as separate hosts, one of them partitioned: every role is its own `penstock run
//! <role>` process, and one database consumer (the "victim") reaches PostgreSQL and RabbitMQ
//! through TCP proxies of the test's own (this machine gives tests no network namespaces).
//! Caught in the middle of a chunk's transaction, the victim is cut off from both: no byte
//! goes either way, as in a network partition, so its transaction stays open in PostgreSQL
//! and RabbitMQ only learns it is gone when heartbeats stop (5 s here). Its unacked chunk goes
//! to the other consumers. Then the partition ends two ways: once the victim's COMMIT arrives
//! late, once its connection is reset and PostgreSQL rolls the transaction back. Neither
//! changes the table, which equals an independent parse, every record counted once.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use penstock_db::FileStatus;
use penstock_tests::proxy::Proxy;
use penstock_tests::{TestEnv, real_egrid_file};
use sqlx::PgPool;

const RECORDS: i64 = 26_601;
const VICTIM: &str = "penstock-partition-victim";
const FIRST: &str = "egrid/generators/first.csv";
const SECOND: &str = "egrid/generators/second.csv";

struct Procs {
    env: HashMap<String, String>,
    logs: tempfile::TempDir,
    children: Vec<(String, Child)>,
}

impl Procs {
    fn spawn(&mut self, name: &str, role: &str, extra: &[(&str, &str)]) {
        let log = std::fs::File::create(self.logs.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_penstock"))
            .args(["run", role])
            .env_clear()
            .envs(&self.env)
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("penstock starts");
        self.children.push((name.to_string(), child));
    }

    /// SIGKILLs the processes whose names start with `prefix`.
    fn kill(&mut self, prefix: &str) {
        for (_, child) in self.children.iter_mut().filter(|(n, _)| n.starts_with(prefix)) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.retain(|(n, _)| !n.starts_with(prefix));
    }

    /// Processes that exited by themselves, with the end of their logs.
    fn exited(&mut self) -> Vec<String> {
        let logs = self.logs.path().to_path_buf();
        self.children
            .iter_mut()
            .filter_map(|(name, child)| {
                let status = child.try_wait().unwrap()?;
                Some(format!(
                    "{name} exited ({status}): {}",
                    tail(&logs.join(format!("{name}.log")))
                ))
            })
            .collect()
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.kill("");
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Whether the victim has a transaction open that has written (it holds an xid).
async fn victim_mid_transaction(pool: &PgPool) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND backend_xid IS NOT NULL)",
    )
    .bind(VICTIM)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits until the victim is in the middle of a chunk's transaction of `key`'s version (the
/// chunker has taken it, so what the victim has open is a load, not anything of its start), and
/// partitions it there: both proxies stop forwarding while its transaction is still open.
async fn partition_mid_transaction(env: &TestEnv, key: &str, pg: &Proxy, amqp: &Proxy) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut taken = false;
    loop {
        assert!(
            Instant::now() < deadline,
            "the victim never had a chunk's transaction open: {:#?}",
            env.files().await
        );
        if !taken {
            taken = file_by_key(env, key).await.is_some_and(|f| f.status != "discovered");
        } else if victim_mid_transaction(&env.pool).await {
            pg.stall(true);
            amqp.stall(true);
            // Still open once nothing gets through: caught in the middle.
            tokio::time::sleep(Duration::from_millis(50)).await;
            if victim_mid_transaction(&env.pool).await {
                return;
            }
            pg.stall(false);
            amqp.stall(false);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn file_by_key(env: &TestEnv, key: &str) -> Option<FileStatus> {
    env.files().await.into_iter().find(|f| f.key == key)
}

/// Polls the version of `key` until `done` holds for it, at most `within`; fails early when a
/// process exited by itself, and with `what` (and the ledger) when time runs out.
async fn wait_for(
    env: &TestEnv,
    procs: &mut Procs,
    key: &str,
    within: Duration,
    what: &str,
    done: impl AsyncFn(&FileStatus) -> bool,
) -> FileStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(file) = file_by_key(env, key).await
            && done(&file).await
        {
            return file;
        }
        let exited = procs.exited();
        assert!(exited.is_empty(), "{exited:#?}");
        assert!(Instant::now() < deadline, "{key}: {what}: {:#?}", env.files().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// All chunks but (at most) one loaded.
fn all_but_one(file: &FileStatus) -> bool {
    file.chunks_total.is_some_and(|t| file.chunks_done >= t - 1)
}

/// Backends of this test's database, other than the victim's, waiting on a lock.
async fn others_waiting_on_locks(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND application_name <> $1 AND datname = current_database()",
    )
    .bind(VICTIM)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_consumer_partitioned_mid_transaction_hands_its_chunk_to_the_others_and_its_late_commit_or_rollback_changes_nothing()
 {
    let env = TestEnv::new().await;
    let pg = Proxy::start("127.0.0.1:5432").await;
    let amqp = Proxy::start("127.0.0.1:5672").await;
    let mut procs = Procs {
        env: env.env(&[("PENSTOCK_CHUNK_BYTES", "32768"), ("PENSTOCK_LOG", "info")]),
        logs: tempfile::tempdir().unwrap(),
        children: Vec::new(),
    };
    for role in ["scanner", "chunker", "errors", "notifications"] {
        procs.spawn(role, role, &[]);
    }
    let victim_db = format!(
        "{}?application_name={VICTIM}",
        env.database_url.replace("127.0.0.1:5432", &pg.addr)
    );
    // Heartbeats every 5 s: RabbitMQ drops a silent connection (and requeues its unacked
    // chunks) after two are missed.
    let victim_amqp = format!(
        "{}?heartbeat=5",
        penstock_tests::amqp_url().replace("127.0.0.1:5672", &amqp.addr)
    );
    let victim_env = [
        ("PENSTOCK_DATABASE_URL", victim_db.as_str()),
        ("PENSTOCK_AMQP_URL", victim_amqp.as_str()),
        ("PENSTOCK_DATABASE_CONCURRENCY", "1"),
    ];
    procs.spawn("victim", "database", &victim_env);
    let bytes = real_egrid_file();

    // 1. The victim, alone, loads the first file; partitioned mid-chunk, its chunk goes to
    //    two other consumers; then the partition heals and its late COMMIT arrives.
    env.drop_file(FIRST, &bytes);
    partition_mid_transaction(&env, FIRST, &pg, &amqp).await;
    procs.spawn("others-1", "database", &[]);
    procs.spawn("others-2", "database", &[]);
    // The others load the rest of the file; the victim's chunk is theirs once RabbitMQ drops
    // the victim (they may wait on the victim's open transaction's row locks for it).
    let took_over = async |file: &FileStatus| {
        file.is_terminal() || (all_but_one(file) && others_waiting_on_locks(&env.pool).await > 0)
    };
    let within = Duration::from_secs(120);
    wait_for(
        &env,
        &mut procs,
        FIRST,
        within,
        "the others did not take over",
        took_over,
    )
    .await;
    assert!(
        victim_mid_transaction(&env.pool).await,
        "the victim's transaction is still open"
    );
    pg.stall(false); // the victim's COMMIT (and whatever it was sending) arrives late
    let finished = async |file: &FileStatus| file.is_terminal();
    let done_within = Duration::from_secs(180);
    let first = wait_for(&env, &mut procs, FIRST, done_within, "did not finish", finished).await;
    amqp.stall(false);

    // 2. Alone again (the others crash), the victim is partitioned mid-chunk of the second
    //    file; the others come back and finish that file while the victim stays cut off; then
    //    its database connection is reset and PostgreSQL rolls its transaction back.
    procs.kill("others");
    let mut second_bytes = bytes.clone();
    second_bytes.extend_from_slice(b"\r\n"); // other bytes, the same rows: a new version
    env.drop_file(SECOND, &second_bytes);
    partition_mid_transaction(&env, SECOND, &pg, &amqp).await;
    procs.spawn("others-3", "database", &[]);
    procs.spawn("others-4", "database", &[]);
    let took_over = async |file: &FileStatus| all_but_one(file);
    wait_for(
        &env,
        &mut procs,
        SECOND,
        within,
        "the others did not take over",
        took_over,
    )
    .await;
    pg.cut(); // the victim's connection is reset: its transaction rolls back
    let second = wait_for(&env, &mut procs, SECOND, done_within, "did not finish", finished).await;
    assert!(
        !victim_mid_transaction(&env.pool).await,
        "the victim's transaction ended"
    );
    pg.stall(false);
    amqp.stall(false);
    let exited = procs.exited();
    assert!(exited.is_empty(), "{exited:#?}");

    env.assert_loaded_exactly_once(&[first, second], RECORDS, &second_bytes)
        .await;
}
