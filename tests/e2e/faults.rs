//! Work items that cannot be processed: poison messages dead-letter at once; transient
//! failures retry through the delay queues with growing delays, then dead-letter; the
//! error consumer records each dead item once and fails its file.

use std::time::{Duration, Instant};

use penstock_broker::{Meta, RabbitMq, WorkQueue};
use penstock_fleet::Role;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::s3::S3Server;
use penstock_tests::{TestEnv, amqp_url};

type DeadRow = (String, i32, Option<i64>, Option<String>, String);

async fn dead_items(env: &TestEnv) -> Vec<DeadRow> {
    sqlx::query_as(
        "SELECT message_id, attempts, file_id, source_queue, reason FROM ingest_errors
         WHERE kind = 'dead_item' ORDER BY message_id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

async fn wait_for_dead_items(env: &TestEnv, count: usize, timeout: Duration) -> Vec<DeadRow> {
    let deadline = Instant::now() + timeout;
    loop {
        let rows = dead_items(env).await;
        if rows.len() >= count {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {count} dead item(s): {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_item_dead_letters_after_one_attempt_and_is_recorded_once() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    for _ in 0..2 {
        // The same poison twice (a redelivery): one row.
        broker
            .publish(&broker.queues().chunks, b"\x00 not json", &Meta::new("poison-1"))
            .await
            .unwrap();
    }
    broker
        .publish(
            &broker.queues().files,
            br#"{"v":1,"file_id":424242}"#,
            &Meta::new("poison-2"),
        )
        .await
        .unwrap();
    let rows = wait_for_dead_items(&env, 2, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rows_after = dead_items(&env).await;
    broker.close().await;
    fleet.stop().await;
    assert_eq!(rows_after.len(), 2, "{rows_after:#?}");
    let (id, attempts, file_id, queue, reason) = &rows[0];
    assert_eq!((id.as_str(), *attempts, *file_id), ("poison-1", 1, None));
    assert_eq!(queue.as_deref(), Some(format!("{}.chunks", env.prefix).as_str()));
    assert!(reason.contains("not a valid work item"), "{reason}");
    assert_eq!(rows[1].2, None, "a file id that names no file version is not trusted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transiently_failing_chunk_retries_with_growing_delays_then_dead_letters_and_fails_its_file() {
    let env = TestEnv::new().await;
    let s3 = S3Server::start("drops").await;
    let mut settings = vec![("PENSTOCK_STORAGE_URL", "s3://drops"), ("PENSTOCK_MAX_ATTEMPTS", "3")];
    settings.extend(s3.env());
    let config = env.config(&settings);
    let front = env.start(config.clone(), &[Role::Scanner, Role::Chunker]).await;
    let bytes = egrid::file(&[(2023, "TX", "A", "1", "1")], &STANDARD_ORDER, "\r\n");
    s3.put("drops", "egrid/generators/a.csv", bytes).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.files().await.first().is_none_or(|f| f.status != "loading") {
        assert!(Instant::now() < deadline, "never chunked: {:#?}", env.files().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    front.stop().await;
    // The store goes away: every ranged read now fails with a connection error (transient).
    drop(s3);
    let started = Instant::now();
    let back = env.start(config, &[Role::Database, Role::Errors]).await;
    let rows = wait_for_dead_items(&env, 1, Duration::from_secs(60)).await;
    let elapsed = started.elapsed();
    let files = env.wait_for_files(1, Duration::from_secs(10)).await;
    back.stop().await;
    let (id, attempts, file_id, _, reason) = &rows[0];
    assert_eq!(id, &format!("chunk-{}-0", files[0].id));
    assert_eq!((*attempts, *file_id), (3, Some(files[0].id)));
    assert!(reason.starts_with("gave up after 3 attempt(s)"), "{reason}");
    // Attempt 1, then 1 s later attempt 2, then 5 s later attempt 3.
    assert!(elapsed >= Duration::from_secs(6), "retries waited only {elapsed:?}");
    assert_eq!(files[0].status, "failed");
    assert!(
        files[0].reason.as_deref().unwrap().contains("after 3 attempt(s)"),
        "{files:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_item_with_nul_bytes_is_recorded_with_them_replaced() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &[Role::Errors]).await;
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    let meta = Meta::new("nul-\u{0}-id").dead_lettered(&broker.queues().chunks, "bad \u{0} bytes");
    broker
        .publish(&broker.queues().errors, br#"{"v":1,"key":"a\u0000b"}"#, &meta)
        .await
        .unwrap();
    let rows = wait_for_dead_items(&env, 1, Duration::from_secs(30)).await;
    broker.close().await;
    fleet.stop().await;
    assert_eq!(rows[0].0, "nul-\u{FFFD}-id");
    assert_eq!(rows[0].4, "bad \u{FFFD} bytes");
    let key: String = env
        .scalar("SELECT item->>'key' FROM ingest_errors WHERE kind = 'dead_item'")
        .await;
    assert_eq!(key, "a\u{FFFD}b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_item_postgresql_refuses_is_parked_with_an_alert_and_the_rest_of_its_batch_is_recorded() {
    let env = TestEnv::new().await;
    // A rule an operator added that this one item breaks.
    sqlx::query("ALTER TABLE ingest_errors ADD CONSTRAINT no_refuse_me CHECK (reason NOT LIKE '%refuse-me%')")
        .execute(&env.pool)
        .await
        .unwrap();
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    let errors = broker.queues().errors.clone();
    for (id, reason) in [("d-1", "fine"), ("d-2", "refuse-me"), ("d-3", "also fine")] {
        let meta = Meta::new(id).dead_lettered(&broker.queues().chunks, reason);
        broker.publish(&errors, b"{}", &meta).await.unwrap();
    }
    let fleet = env.start(env.config(&[]), &[Role::Errors, Role::Notifications]).await;
    let rows = wait_for_dead_items(&env, 2, Duration::from_secs(30)).await;
    let parked = broker.queues().parked.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while broker.ready_count(&parked).await.unwrap() < 1 {
        assert!(Instant::now() < deadline, "nothing was parked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alert: (String, String) = loop {
        let found = sqlx::query_as("SELECT severity, message FROM alerts WHERE dedupe_key = $1")
            .bind(format!("parked:{parked}"))
            .fetch_optional(&env.pool)
            .await
            .unwrap();
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no alert for the parked item");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Nothing goes round again: the errors queue is empty, the parked item stays parked.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(broker.ready_count(&errors).await.unwrap(), 0);
    fleet.stop().await;
    let bodies = crate::order::drain(&broker, &parked, 1).await;
    broker.close().await;

    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ids, ["d-1", "d-3"]);
    assert_eq!(bodies, [b"{}".to_vec()], "parked with its bytes intact");
    assert_eq!(alert.0, "critical");
    assert!(
        alert.1.starts_with("dead item d-2 parked in ")
            && alert.1.contains("violates check constraint \"no_refuse_me\"")
            && alert.1.contains("refuse-me"),
        "{}",
        alert.1
    );
}
