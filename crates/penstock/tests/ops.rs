//! The operator's commands against the real services: check, migrate status / revert,
//! replay and backfill. Each test has its own database, queue prefix and folder.

mod common;

use common::*;
use std::time::{Duration, SystemTime};

use penstock_fleet::Role;
use penstock_tests::{TestEnv, real_egrid_file};

const KEY: &str = "egrid/generators/egrid2023_gen.csv";

#[tokio::test]
async fn check_passes_on_a_good_setup_and_gives_advice_for_each_problem() {
    let env = TestEnv::new().await;
    let out = run(&env.env(&[]), &["check"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    for line in [
        "ok    database",
        "ok    migrations",
        "ok    dataset egrid_generators",
        "ok    broker",
        "ok    store",
    ] {
        assert!(said.contains(line), "{line:?} missing:\n{said}");
    }
    assert!(said.contains("all checks passed"));

    let out = run(
        &env.env(&[("PENSTOCK_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")]),
        &["check"],
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("FAIL  broker"), "{said}");
    assert!(said.contains("→ start RabbitMQ or fix PENSTOCK_AMQP_URL"), "{said}");
    assert!(said.contains("guest:***@"), "passwords are not printed: {said}");
    assert!(said.contains("ok    database"), "the other checks still run: {said}");

    sqlx::query("ALTER TABLE egrid_generators RENAME COLUMN plant_name TO name")
        .execute(&env.pool)
        .await
        .unwrap();
    let out = run(&env.env(&[]), &["check"]);
    let said = text(&out);
    assert!(!out.status.success());
    assert!(said.contains("FAIL  dataset egrid_generators"), "{said}");
    assert!(said.contains("\"plant_name\" is not in table"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_whether_the_api_reads_from_a_streaming_standby_and_how_far_behind_it_is() {
    let env = TestEnv::new().await;
    let pg = tokio::task::spawn_blocking(penstock_tests::replica::Replicated::start)
        .await
        .unwrap();
    let standby = pg.standby_url("postgres");
    let out = run(&env.env(&[("PENSTOCK_API_DATABASE_URL", &standby)]), &["check"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("ok    api reads") && said.contains("a hot standby, streaming, 0.0 s behind"),
        "{said}"
    );
    let primary = pg.primary_url("postgres");
    let said = text(&run(&env.env(&[("PENSTOCK_API_DATABASE_URL", &primary)]), &["check"]));
    assert!(said.contains("a primary"), "{said}");
}

#[tokio::test]
async fn migrate_status_lists_every_migration_and_revert_undoes_the_latest() {
    let env = TestEnv::new().await;
    let vars = env.env(&[]);
    let out = run(&vars, &["migrate", "status"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("room for lineage updates") && said.contains("built-in"),
        "{said}"
    );
    assert!(!said.contains("pending"), "{said}");

    // Reverting undoes the latest migration with its down script; migrating again applies
    // it again (which fails if the down script left what the up script creates).
    let (version, description): (i64, String) =
        sqlx::query_as("SELECT version, description FROM _sqlx_migrations ORDER BY version DESC LIMIT 1")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    let applied = |n: i64| format!("SELECT count(*) FROM _sqlx_migrations WHERE version = {n}");
    let out = run(&vars, &["migrate", "revert"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("reverted {version} {description}")),
        "{}",
        text(&out)
    );
    let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(applied(version)))
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "no longer applied");
    let said = text(&run(&vars, &["migrate", "status"]));
    assert!(
        said.contains("pending") && said.contains("1 pending: run `penstock migrate`"),
        "{said}"
    );

    let out = run(&vars, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    let again: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(applied(version)))
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(again, 1, "re-applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_failed_files_reloads_them_from_their_stored_objects() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    env.drop_file(KEY, &real_egrid_file());
    let files = env.wait_for_files(1, Duration::from_secs(90)).await;
    let before = env.egrid_table().await;
    // Damage: rows lost and the file marked failed (as after a fault fixed since).
    sqlx::query("DELETE FROM egrid_generators WHERE state = 'TX'")
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE ingest_files SET status = 'failed', reason = 'disk full' WHERE id = $1")
        .bind(files[0].id)
        .execute(&env.pool)
        .await
        .unwrap();

    let out = run(&env.env(&[]), &["replay", "--failed"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "file {} {KEY}: replaying (was failed: disk full)",
            files[0].id
        )),
        "{}",
        text(&out)
    );
    let files = env.wait_for_files(1, Duration::from_secs(90)).await;
    fleet.stop().await;
    assert_eq!(files[0].status, "done", "{files:?}");
    assert_eq!((files[0].rows_loaded, files[0].rows_superseded), (26_599, 2));
    assert_eq!(
        env.egrid_table().await,
        before,
        "every row is back, with the same lineage"
    );

    let out = run(&env.env(&[]), &["replay", "999"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no file version has id 999"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_records_objects_already_in_the_store_once() {
    let env = TestEnv::new().await;
    env.drop_file(KEY, &real_egrid_file());
    env.drop_file("elsewhere/readme.csv", b"a,b\n1,2\n");
    let old = SystemTime::now() - Duration::from_secs(3600);
    for key in [KEY, "elsewhere/readme.csv"] {
        std::fs::File::options()
            .write(true)
            .open(env.inbox.path().join(key))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let vars = env.env(&[]);

    let out = run(&vars, &["backfill", "--prefix", "egrid/", "--since", "2999-01-01"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("0 object(s)"), "{}", text(&out));

    let out = run(&vars, &["backfill", "--prefix", ""]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("2 object(s) under \"\": 1 new version(s) recorded and queued, 0 already"),
        "{said}"
    );
    assert!(
        said.contains("skipped elsewhere/readme.csv: no dataset's key_prefix matches it"),
        "{said}"
    );
    let again = text(&run(&vars, &["backfill", "--prefix", "egrid/"]));
    assert!(
        again.contains("0 new version(s) recorded and queued, 1 already in the ledger"),
        "{again}"
    );

    // The database consumer and chunker load it; no scanner runs.
    let fleet = env.start(env.config(&[]), &[Role::Chunker, Role::Database]).await;
    let files = env.wait_for_files(1, Duration::from_secs(90)).await;
    fleet.stop().await;
    assert_eq!(files.len(), 1);
    assert_eq!((files[0].status.as_str(), files[0].rows_loaded), ("done", 26_599));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_prints_plain_progress_lines_off_a_terminal_and_stops_when_idle() {
    let env = TestEnv::new().await;
    let fleet = env
        .start(env.config(&[("PENSTOCK_CHUNK_BYTES", "65536")]), &Role::ALL)
        .await;
    env.drop_file(KEY, &real_egrid_file());
    let vars = env.env(&[]);
    let watcher = std::thread::spawn(move || run(&vars, &["status", "--watch", "--until-idle", "--interval", "100ms"]));
    env.wait_for_files(1, Duration::from_secs(90)).await;
    let out = tokio::task::spawn_blocking(move || watcher.join().unwrap())
        .await
        .unwrap();
    fleet.stop().await;
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !said.contains('\x1b'),
        "no terminal control codes off a terminal: {said:?}"
    );
    let last = said.lines().last().unwrap_or_default();
    assert!(
        last.contains("files: done 1 | in flight:  | queues ready: files=0 chunks=0"),
        "{said}"
    );
    assert!(said.lines().count() >= 2, "progress was shown while it loaded: {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_waits_for_a_database_that_does_not_answer_yet_then_applies_the_migrations() {
    let env = TestEnv::new().await;
    let proxy = penstock_tests::proxy::Proxy::start("127.0.0.1:5432").await;
    proxy.block(true); // PostgreSQL is "still starting"
    let url = env.database_url.replace("127.0.0.1:5432", &proxy.addr);
    let vars = env.env(&[("PENSTOCK_DATABASE_URL", &url), ("PENSTOCK_LOG", "warn")]);
    let mut migrate = penstock(&vars, &["migrate"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        migrate.try_wait().unwrap().is_none(),
        "migrate gave up while the database did not answer"
    );
    proxy.block(false);
    let out = tokio::task::spawn_blocking(move || migrate.wait_with_output().unwrap())
        .await
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("migrations applied"), "{said}");
    assert!(
        said.contains("PostgreSQL does not answer yet; trying again"),
        "each wait is logged: {said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_check_status_and_replay_reach_a_dataset_on_its_own_database() {
    let env = TestEnv::new().await;
    let (url, other) = env.second_database().await;
    let own = [("PENSTOCK_DATABASE_URL_EGRID_GENERATORS", url.as_str())];
    let out = run(&env.env(&own), &["migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("database_url: shard 0")
            && said.contains("database_url of dataset egrid_generators: shard 1")
            && said.contains("migrations applied"),
        "{said}"
    );

    let out = run(&env.env(&own), &["check"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for line in [
        "ok    database_url",
        "ok    database of egrid_generators",
        "ok    dataset egrid_generators",
    ] {
        assert!(said.contains(line), "{line:?} missing:\n{said}");
    }

    let fleet = env.start(env.config(&own), &Role::ALL).await;
    env.drop_file(KEY, &real_egrid_file());
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let file = loop {
        let files = penstock_db::all_files(&other).await.unwrap();
        if let Some(f) = files.first().filter(|f| f.is_terminal()) {
            break f.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{files:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((file.status.as_str(), file.rows_loaded), ("done", 26_599));
    assert!(file.id >> penstock_db::SHARD_BITS == 1, "{file:?}");
    assert!(env.files().await.is_empty(), "nothing of the dataset is at home");

    let out = run(&env.env(&own), &["status", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["files"][0]["id"], file.id, "{listed}");

    sqlx::query("UPDATE ingest_files SET status = 'failed', reason = 'disk full' WHERE id = $1")
        .bind(file.id)
        .execute(&other)
        .await
        .unwrap();
    let out = run(&env.env(&own), &["replay", "--failed"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("file {} {KEY}: replaying (was failed: disk full)", file.id)),
        "{}",
        text(&out)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let again = penstock_db::file(&other, file.id).await.unwrap().unwrap();
        if again.status == "done" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{again:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleet.stop().await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_prints_what_changed_between_two_versions_of_a_recording_dataset() {
    let env = TestEnv::new().await;
    let dir = penstock_tests::config_with_egrid_spec(|spec| {
        spec.replace("conflict_key =", "on_conflict = \"record\"\nconflict_key =")
    });
    sqlx::raw_sql(penstock_tests::EGRID_HISTORY_TRIGGER)
        .execute(&env.pool)
        .await
        .unwrap();
    let config = dir.path().join("penstock.toml").display().to_string();
    let vars = env.env(&[("PENSTOCK_CONFIG", &config)]);
    let fleet = env.start(penstock_config::load_from(&vars).unwrap(), &Role::ALL).await;
    let v1 = real_egrid_file();
    env.drop_file(KEY, &v1);
    env.wait_for_files(1, Duration::from_secs(90)).await;
    // The next version: the first generator's value changed, the last record gone.
    let csv = String::from_utf8(v1).unwrap();
    let mut lines: Vec<&str> = csv.lines().collect();
    assert!(lines[2].starts_with("1,2023,AK,Alakanuk,UNIT4,"), "{}", lines[2]);
    let changed = "1,2023,AK,Alakanuk,UNIT4,12".to_string();
    lines[2] = &changed;
    lines.pop();
    env.drop_file(KEY, (lines.join("\r\n") + "\r\n").as_bytes());
    let files = env.wait_for_files(2, Duration::from_secs(90)).await;
    fleet.stop().await;
    let (old, new) = (files[0].id.min(files[1].id), files[0].id.max(files[1].id));

    let out = run(&vars, &["diff", &old.to_string(), &new.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("0 added, 1 changed, 1 absent, 26597 unchanged"), "{said}");
    assert!(
        said.contains(
            "~ year=2023 state=\"AK\" plant_name=\"Alakanuk\" generator_id=\"UNIT4\"  net_generation_mwh: 0 → 12"
        ),
        "{said}"
    );
    let out = run(&vars, &["diff", &old.to_string(), &new.to_string(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["complete"], true, "{json:#}");
    assert_eq!(json["absent"].as_array().unwrap().len(), 1);
}
