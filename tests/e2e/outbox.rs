//! Events that cannot be lost: the transaction that ends a file writes its event to the
//! outbox; the relay publishes it when it can; each event raises its alert once, however
//! often it is published; work that did not commit announces nothing.

use std::time::{Duration, Instant};

use penstock_broker::{Meta, RabbitMq, WorkQueue};
use penstock_db::ChunkOutcome;
use penstock_fleet::Role;
use penstock_tests::{TestEnv, amqp_url, real_egrid_file};

use crate::load_path::{file_version, try_load};

/// The outbox: (id, event type, sent, alerted), by id.
async fn outbox(env: &TestEnv) -> Vec<(i64, String, bool, bool)> {
    sqlx::query_as(
        "SELECT id, event->'kind'->>'type', sent_at IS NOT NULL, alerted_at IS NOT NULL FROM outbox ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

/// The alerts: (dedupe key, count), by key.
async fn alerts(env: &TestEnv) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT dedupe_key, count FROM alerts ORDER BY dedupe_key")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_in_the_outbox_while_no_relay_runs_and_each_raises_its_alert_once() {
    let env = TestEnv::new().await;
    // No notifications role: nothing relays or alerts.
    let fleet = env
        .start(
            env.config(&[]),
            &[Role::Scanner, Role::Chunker, Role::Database, Role::Errors],
        )
        .await;
    env.drop_file("egrid/generators/egrid2023_gen.csv", &real_egrid_file());
    env.drop_file("egrid/generators/empty.csv", b"");
    let files = env.wait_for_files(2, Duration::from_secs(90)).await;
    fleet.stop().await;
    let mut statuses: Vec<String> = files.iter().map(|f| f.status.to_string()).collect();
    statuses.sort();
    assert_eq!(statuses, ["done", "rejected"]);
    let waiting = outbox(&env).await;
    let mut kinds: Vec<&str> = waiting.iter().map(|(_, kind, _, _)| kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["file_done", "file_rejected"], "{waiting:?}");
    assert!(waiting.iter().all(|(_, _, sent, _)| !sent), "{waiting:?}");
    assert!(alerts(&env).await.is_empty());

    // The notifications role relays them and raises one alert each.
    let fleet = env.start(env.config(&[]), &[Role::Notifications]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while outbox(&env).await.iter().any(|(_, _, sent, alerted)| !sent || !alerted) {
        assert!(Instant::now() < deadline, "never relayed: {:?}", outbox(&env).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let raised = alerts(&env).await;
    assert_eq!(
        raised,
        vec![
            ("file-done:egrid/generators/egrid2023_gen.csv".to_string(), 1),
            ("file-rejected:egrid/generators/empty.csv".to_string(), 1)
        ]
    );

    // A relay that stopped between its publish and its commit publishes them again: the
    // alerts do not count them twice.
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    let events = broker.queues().events.clone();
    let rows: Vec<(i64, serde_json::Value)> = sqlx::query_as("SELECT id, event FROM outbox ORDER BY id")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    for (id, event) in &rows {
        let body = serde_json::to_vec(event).unwrap();
        broker
            .publish(&events, &body, &Meta::new(penstock_workers::relay::message_id(*id)))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while broker.ready_count(&events).await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the events were never consumed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Consumed, and (acked after its transaction) settled.
    tokio::time::sleep(Duration::from_millis(500)).await;
    fleet.stop().await;
    broker.close().await;
    assert_eq!(alerts(&env).await, raised);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_whose_commit_fails_writes_no_event_and_its_retry_writes_one() {
    let env = TestEnv::new().await;
    let file = file_version(&env, "a").await;
    sqlx::query("UPDATE ingest_files SET status = 'loading', chunks_total = 1 WHERE id = $1")
        .bind(file)
        .execute(&env.pool)
        .await
        .unwrap();
    // A check PostgreSQL makes only at commit, after the chunk wrote its rows, its ledger
    // row and its event.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_done() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'not now' USING ERRCODE = '40001'; END $$;
         CREATE CONSTRAINT TRIGGER refuse_done AFTER UPDATE ON ingest_files
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
             WHEN (NEW.status = 'done') EXECUTE FUNCTION refuse_done();",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let records = ["1,2023,AK,Alpha,G1,10"];
    let failed = try_load(&env, file, &records).await;
    assert!(failed.as_ref().is_err_and(|e| e.is_transient()), "{failed:?}");
    assert!(outbox(&env).await.is_empty(), "an event for work that did not commit");
    let chunks: i64 = env.scalar("SELECT count(*) FROM ingest_chunks").await;
    assert_eq!(chunks, 0);

    sqlx::raw_sql("DROP TRIGGER refuse_done ON ingest_files")
        .execute(&env.pool)
        .await
        .unwrap();
    let ChunkOutcome::Loaded { finished, .. } = try_load(&env, file, &records).await.unwrap() else {
        panic!("the chunk was not loaded before")
    };
    assert!(finished.is_some());
    let events = outbox(&env).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1, "file_done");
    // A redelivery changes nothing and writes nothing more.
    assert_eq!(
        try_load(&env, file, &records).await.unwrap(),
        ChunkOutcome::AlreadyLoaded
    );
    assert_eq!(outbox(&env).await.len(), 1);
}
