//! Reads that do not compete with writes: the fleet loads into a primary while the API
//! reads from its streaming hot standby (`api_database_url`). Both servers are the test's
//! own (`penstock_tests::replica`). NOTIFY does not reach a standby, so the API hears each
//! load by the standby's replay position; `/ready` and a metric report the lag, and an
//! alert action still writes to the primary.

use std::time::{Duration, Instant};

use penstock_fleet::Role;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::http::{Http, Reply};
use penstock_tests::replica::Replicated;
use penstock_tests::{TestEnv, real_egrid_file};

const TOKEN: &str = "standby-test-admin-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_reading_from_a_hot_standby_sees_each_load_reports_the_lag_and_writes_alert_actions_to_the_primary() {
    let pg = tokio::task::spawn_blocking(Replicated::start).await.unwrap();
    let env = TestEnv::new().await; // its queue prefix and folder; the data lives on `pg`
    let primary_url = pg.primary_url("penstock");
    penstock_db::ensure_database(&primary_url).await.unwrap();
    let migrator = penstock_db::connect(&primary_url, 1).await.unwrap();
    penstock_db::migrate(&migrator).await.unwrap();
    migrator.close().await;
    // Before `penstock migrate` has numbered the primary, an API cannot start on the standby,
    // and says what to run.
    let standby_url = pg.standby_url("penstock");
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let error = penstock_db::Databases::connect(&standby_url, &[], 1)
            .await
            .err()
            .expect("a standby of an unnumbered primary is refused")
            .to_string();
        // Until the standby has replayed the database and its migration, it is refused for that.
        if error.contains("hot standby") || Instant::now() > deadline {
            break error;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        refused.contains("hot standby") && refused.contains("penstock migrate"),
        "{refused}"
    );
    penstock_db::Databases::connect(&primary_url, &[], 1)
        .await
        .unwrap()
        .close()
        .await;
    let primary = penstock_db::connect(&primary_url, 2).await.unwrap();
    let config = env.config(&[
        ("PENSTOCK_DATABASE_URL", &primary_url),
        ("PENSTOCK_API_DATABASE_URL", &standby_url),
        // Far longer than the test: only a heard change can refresh a cached answer.
        ("PENSTOCK_API_CACHE_TTL", "1h"),
        ("PENSTOCK_API_REPLICA_MAX_LAG", "3s"),
        ("PENSTOCK_ADMIN_TOKEN", TOKEN),
    ]);
    // The whole fleet in one process, its health also on a port of its own; and an API
    // alone, as a read host would run it.
    let with_health = penstock_config::Config {
        health_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..config.clone()
    };
    let fleet = env.start(with_health, &Role::ALL).await;
    let api = Http::new(fleet.api_addr().unwrap());
    let health = Http::new(fleet.health_addrs()[0]);
    let reader = env.start(config, &[Role::Api]).await;
    let read_api = Http::new(reader.api_addr().unwrap());

    let ready = until(&api, "/ready", |r| r.status == 200).await.json();
    assert_eq!(ready["replica"]["streaming"], true, "{ready}");
    assert!(
        ready["replica"]["lag_seconds"].as_f64().is_some_and(|lag| lag <= 3.0),
        "{ready}"
    );
    let ready = until(&health, "/ready", |r| r.status == 200).await.json();
    assert_eq!(
        ready["replica"]["streaming"], true,
        "the fleet's health port gives the same answer: {ready}"
    );
    until(&read_api, "/ready", |r| r.status == 200).await;

    // One small file, then an aggregate kept in the cache.
    let small = egrid::file(&[(2023, "TX", "Alpha", "G1", "100")], &STANDARD_ORDER, "\n");
    env.drop_file("egrid/generators/small.csv", &small);
    until(&api, "/plants/statistics", |r| r.json()["plants"] == 1).await;
    until(&api, "/plants/statistics", |r| r.header("x-cache") == Some("hit")).await;

    // The real file loads into the primary; the API, reading the standby, sees it without
    // waiting for the TTL: the change was heard on the standby.
    env.drop_file("egrid/generators/egrid2023_gen.csv", &real_egrid_file());
    let deadline = Instant::now() + Duration::from_secs(120);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM ingest_files WHERE status = 'done'")
        .fetch_one(&primary)
        .await
        .unwrap()
        < 2
    {
        assert!(Instant::now() < deadline, "the real file did not load");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let generators: i64 = sqlx::query_scalar("SELECT count(*) FROM egrid_generators")
        .fetch_one(&primary)
        .await
        .unwrap();
    assert!(generators > 20_000);
    let stats = until(&api, "/plants/statistics", |r| r.json()["generators"] == generators).await;
    assert!(stats.json()["last_load_at"].is_string(), "{}", stats.text);
    let metrics = api.get("/metrics").await.text;
    assert!(
        metrics.contains("penstock_api_replica_lag_seconds"),
        "the lag is exported:\n{metrics}"
    );

    // Reads come from the standby: with its replay paused, the primary's new rows stay
    // out of the answers, and the lag grows until the API says it is not ready.
    pg.standby_sql("SELECT pg_wal_replay_pause()");
    let before = api.get("/files").await.json()["total"].clone();
    env.drop_file("egrid/generators/bad.csv", b"not,the,right,header\n1,2,3,4\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM alerts")
        .fetch_one(&primary)
        .await
        .unwrap()
        == 0
    {
        assert!(Instant::now() < deadline, "the bad file raised no alert");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let behind = until(&api, "/ready", |r| r.status == 503).await.json();
    assert!(behind["replica"]["lag_seconds"].as_f64().unwrap() > 3.0, "{behind}");
    assert_eq!(behind["database"], true, "{behind}");
    let behind = until(&health, "/ready", |r| r.status == 503).await.json();
    assert!(
        behind["replica"]["lag_seconds"].as_f64().unwrap() > 3.0,
        "the health port applies the standby's lag rule too: {behind}"
    );
    assert_eq!(
        api.get("/files").await.json()["total"],
        before,
        "read from the paused standby"
    );
    pg.standby_sql("SELECT pg_wal_replay_resume()");
    until(&api, "/ready", |r| r.status == 200).await;
    until(&health, "/ready", |r| r.status == 200).await;
    let alerts = until(&api, "/alerts", |r| r.json()["total"].as_i64() > Some(0))
        .await
        .json();

    // An alert action is a write: it goes to the primary, and the standby shows it after.
    let id = alerts["data"][0]["id"].as_i64().unwrap();
    let acknowledged = api.post(&format!("/alerts/{id}/acknowledge"), Some(TOKEN)).await;
    assert_eq!(acknowledged.status, 200, "{}", acknowledged.text);
    assert_eq!(acknowledged.json()["status"], "acknowledged");
    let status: String = sqlx::query_scalar("SELECT status FROM alerts WHERE id = $1")
        .bind(id)
        .fetch_one(&primary)
        .await
        .unwrap();
    assert_eq!(status, "acknowledged");

    // The primary goes away: both APIs keep answering from the standby (the file list is
    // read on every request). The API alone says only that the standby stopped streaming
    // (and is unready once that is longer ago than the max lag); the whole fleet's process
    // also that its loaders' database does not answer.
    primary.close().await;
    pg.stop_primary();
    for api in [&api, &read_api] {
        let files = api.get("/files").await;
        assert_eq!(files.status, 200, "{}", files.text);
        assert_eq!(files.json()["total"], 3, "{}", files.text);
    }
    let cut_off = until(&read_api, "/ready", |r| r.json()["replica"]["streaming"] == false).await;
    assert_eq!(cut_off.json()["database"], true, "{}", cut_off.text);
    // Unready once what it serves may be older than the max lag.
    let stale = until(&read_api, "/ready", |r| r.status == 503).await;
    assert_eq!(stale.json()["database"], true, "{}", stale.text);
    let down = until(&health, "/ready", |r| r.json()["database"] == false).await;
    assert_eq!(down.status, 503, "{}", down.text);
    assert_eq!(
        api.get("/ready").await.json()["database"],
        false,
        "one answer per process"
    );
    reader.stop().await;
    fleet.stop().await;
}

/// GETs `path` until `done` holds for the reply (at most 60 s); returns that reply.
async fn until(api: &Http, path: &str, done: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = api.get(path).await;
        if done(&reply) {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} never became what the test waits for; last: {} {}",
            reply.status,
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
