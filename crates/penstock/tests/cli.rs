//! The `penstock` binary as an operator runs it: configuration errors, migrate, status,
//! and SIGTERM during an ingest. Each test has its own database, queue prefix and folder.

mod common;

use common::*;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use penstock_tests::{TestEnv, real_egrid_file};

#[tokio::test]
async fn a_bad_setting_stops_start_up_naming_the_variable_and_the_fix() {
    let env = TestEnv::new().await;
    let out = run(&env.env(&[("PENSTOCK_SCAN_INTERVAL", "soon")]), &["run", "all"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("PENSTOCK_SCAN_INTERVAL") && err.contains("use e.g. 500ms"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unknown_role_is_refused_with_the_known_roles() {
    let env = TestEnv::new().await;
    let out = run(&env.env(&[]), &["run", "scaner"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "unknown role \"scaner\"; use all, scanner, chunker, database, errors, notifications, reconciler or api"
        ),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_dataset_spec_that_does_not_match_its_table_fails_fast_naming_the_column() {
    let env = TestEnv::new().await;
    let dir = penstock_tests::config_with_egrid_spec(|spec| {
        spec.replace("name = \"net_generation_mwh\"", "name = \"net_generation\"")
    });
    let config = dir.path().join("penstock.toml").display().to_string();
    let out = run(&env.env(&[("PENSTOCK_CONFIG", &config)]), &["run", "all"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("column \"net_generation\" is not in table \"egrid_generators\""),
        "{err}"
    );
}

#[tokio::test]
async fn migrate_creates_the_database_and_is_idempotent() {
    let env = TestEnv::new().await;
    let name = format!("{}_m", env.name);
    let url = format!("{}/{name}", penstock_tests::pg_server());
    let vars = env.env(&[("PENSTOCK_DATABASE_URL", &url)]);
    for _ in 0..2 {
        let out = run(&vars, &["migrate"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let pool = penstock_db::connect(&url, 1).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let admin = penstock_db::connect(&format!("{}/postgres", penstock_tests::pg_server()), 1)
        .await
        .unwrap();
    let drop = format!("DROP DATABASE \"{name}\" WITH (FORCE)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&admin).await.unwrap();
    assert_eq!(
        applied as usize,
        penstock_db::MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .count()
    );
}

/// Runs `penstock run all` as a child process, output discarded.
fn start_fleet(env: &HashMap<String, String>) -> Child {
    penstock(env, &["run", "all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("penstock starts")
}

/// Waits until the first chunk of the first file has committed.
async fn wait_until_loading(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.files().await.first().is_none_or(|f| f.chunks_done == 0) {
        assert!(Instant::now() < deadline, "loading never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_ingest_exits_zero_within_the_grace_period_and_loses_nothing() {
    let env = TestEnv::new().await;
    let vars = env.env(&[("PENSTOCK_CHUNK_BYTES", "16384"), ("PENSTOCK_SHUTDOWN_GRACE", "5s")]);
    let mut fleet = start_fleet(&vars);
    let bytes = real_egrid_file();
    env.drop_file("egrid/generators/egrid2023_gen.csv", &bytes);
    // Wait until loading has begun, then ask it to stop.
    wait_until_loading(&env).await;
    let signalled = Instant::now();
    Command::new("kill")
        .args(["-TERM", &fleet.id().to_string()])
        .status()
        .unwrap();
    let status = wait_exit(&mut fleet, Duration::from_secs(15)).expect("exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(6),
        "took {:?}",
        signalled.elapsed()
    );

    // A new fleet finishes the file; the table is exactly the file's.
    let mut again = start_fleet(&vars);
    let files = env.wait_for_files(1, Duration::from_secs(90)).await;
    Command::new("kill")
        .args(["-TERM", &again.id().to_string()])
        .status()
        .unwrap();
    wait_exit(&mut again, Duration::from_secs(15)).expect("exits");
    assert_eq!(files[0].status, "done", "{files:#?}");
    assert_eq!(
        env.egrid_table().await,
        penstock_tests::egrid::expected(&bytes, files[0].id)
    );
    assert_eq!(files[0].rows_loaded + files[0].rows_superseded, 26_601);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_lists_each_file_version_with_its_counts_and_ignored_objects() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &penstock_fleet::Role::ALL).await;
    env.drop_file("egrid/generators/egrid2023_gen.csv", &real_egrid_file());
    env.drop_file("misc/readme.txt", b"hello");
    env.wait_for_files(1, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    fleet.stop().await;
    let out = run(&env.env(&[]), &["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = &json["files"][0];
    assert_eq!(file["key"], "egrid/generators/egrid2023_gen.csv");
    assert_eq!(file["status"], "done");
    assert_eq!(
        (file["chunks_done"].as_i64(), file["chunks_total"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (
            file["rows_loaded"].as_i64(),
            file["rows_quarantined"].as_i64(),
            file["rows_superseded"].as_i64()
        ),
        (Some(26_599), Some(0), Some(2))
    );
    assert_eq!(json["ignored"][0]["key"], "misc/readme.txt");
    let table = run(&env.env(&[]), &["status"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("done") && text.contains("26599") && text.contains("misc/readme.txt"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_forces_exit_while_in_flight_work_is_stuck_and_nothing_is_lost() {
    let env = TestEnv::new().await;
    let pg = penstock_tests::proxy::Proxy::start("127.0.0.1:5432").await;
    let through_proxy = env.database_url.replace("127.0.0.1:5432", &pg.addr);
    let vars = env.env(&[
        ("PENSTOCK_DATABASE_URL", &through_proxy),
        ("PENSTOCK_CHUNK_BYTES", "16384"),
        ("PENSTOCK_SHUTDOWN_GRACE", "60s"),
    ]);
    let mut fleet = start_fleet(&vars);
    let bytes = real_egrid_file();
    env.drop_file("egrid/generators/egrid2023_gen.csv", &bytes);
    wait_until_loading(&env).await;
    // PostgreSQL hangs: in-flight chunks cannot finish, so the first SIGTERM waits for them.
    pg.stall(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kill = |pid: u32| Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    kill(fleet.id());
    assert!(
        wait_exit(&mut fleet, Duration::from_secs(2)).is_none(),
        "the first signal waits for in-flight work"
    );
    kill(fleet.id());
    let status = wait_exit(&mut fleet, Duration::from_secs(5)).expect("the second signal exits at once");
    assert_eq!(status.code(), Some(130));
    pg.stall(false);

    // Whatever was in flight is redelivered: a new fleet finishes the file exactly.
    let mut again = start_fleet(&env.env(&[("PENSTOCK_CHUNK_BYTES", "16384")]));
    let files = env.wait_for_files(1, Duration::from_secs(90)).await;
    kill(again.id());
    wait_exit(&mut again, Duration::from_secs(15)).expect("exits");
    assert_eq!(files[0].status, "done", "{files:#?}");
    assert_eq!(
        env.egrid_table().await,
        penstock_tests::egrid::expected(&bytes, files[0].id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_item_fields_for_containers() {
    let env = TestEnv::new().await;
    let vars = env.env(&[("PENSTOCK_LOG_FORMAT", "json"), ("PENSTOCK_API_ADDR", "")]);
    let mut child = penstock(&vars, &["run", "all"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("penstock starts");
    env.drop_file("egrid/generators/egrid2023_gen.csv", &real_egrid_file());
    env.wait_for_files(1, Duration::from_secs(90)).await;
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = wait_exit(&mut child, Duration::from_secs(30)).expect("exits after SIGTERM");
    assert!(status.success());
    let mut logs = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let committed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "chunk committed")
        .unwrap_or_else(|| panic!("no chunk committed line in {logs}"));
    let span = &committed["span"];
    assert_eq!(span["name"], "item", "{committed}");
    assert_eq!(span["dataset"], "egrid_generators", "{committed}");
    assert_eq!(span["queue"], format!("{}.chunks", env.prefix), "{committed}");
    assert!(
        span["message_id"].as_str().is_some_and(|m| m.starts_with("chunk-")),
        "{committed}"
    );
    assert!(span["file_id"].is_number() && span["chunk"].is_number(), "{committed}");
    assert!(committed["level"] == "INFO" && committed["timestamp"].is_string());
}
