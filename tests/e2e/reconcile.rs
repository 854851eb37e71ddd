//! The reconciler: work items that disappear (a purged queue, a broker that dropped them)
//! are published again, exactly the missing ones, with an alert; items still waiting in a
//! queue are left alone; a file that recoveries do not help fails saying so; two
//! reconcilers at once recover a file once.

use std::time::{Duration, Instant};

use penstock_broker::{Meta, RabbitMq, WorkQueue};
use penstock_fleet::Role;
use penstock_tests::egrid;
use penstock_tests::{TestEnv, amqp_url, real_egrid_file};

use crate::order::drain;
use crate::plan::planned_and_drained_bodies;

const WAIT: Duration = Duration::from_secs(120);
const KEY: &str = "egrid/generators/egrid2023_gen.csv";

/// A reconciler that looks every 200 ms at files idle for a second.
fn reconciling<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("PENSTOCK_RECONCILE_INTERVAL", "200ms"),
        ("PENSTOCK_RECONCILE_AFTER", "1s"),
        ("PENSTOCK_CHUNK_BYTES", "65536"),
    ];
    env.extend_from_slice(extra);
    env
}

async fn ready(env: &TestEnv, queue: impl Fn(&RabbitMq) -> String) -> u32 {
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    let ready = broker.ready_count(&queue(&broker)).await.unwrap();
    broker.close().await;
    ready
}

async fn recoveries(env: &TestEnv) -> i32 {
    env.scalar("SELECT coalesce(max(recoveries), 0) FROM ingest_files")
        .await
}

async fn wait_for_recoveries(env: &TestEnv, at_least: i32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while recoveries(env).await < at_least {
        assert!(Instant::now() < deadline, "no recovery: {:#?}", env.files().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The alert of a file's recoveries: (count, severity, message).
async fn recovery_alert(env: &TestEnv, file_id: i64) -> Option<(i64, String, String)> {
    sqlx::query_as("SELECT count, severity, message FROM alerts WHERE dedupe_key = $1")
        .bind(format!("file-recovered:{file_id}"))
        .fetch_optional(&env.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_chunk_items_are_published_again_exactly_once_and_the_file_loads_every_row_once() {
    let env = TestEnv::new().await;
    let lost = planned_and_drained_bodies(&env).await;
    let total = lost.len();
    assert!(total > 10, "64 KiB chunks give many chunk items ({total})");
    // The first five loaded before the rest were lost.
    let first = &lost[..5];
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    for body in first {
        broker
            .publish(&broker.queues().chunks, body, &Meta::new("first"))
            .await
            .unwrap();
    }
    broker.close().await;
    let loader = env.start(env.config(&reconciling(&[])), &[Role::Database]).await;
    while env.files().await[0].chunks_done < first.len() as i32 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loader.stop().await;
    assert_eq!(ready(&env, |b| b.queues().chunks.clone()).await, 0, "the rest are lost");

    // The reconciler, with no database consumer running: it republishes the missing ones.
    let reconciler = env
        .start(env.config(&reconciling(&[])), &[Role::Reconciler, Role::Notifications])
        .await;
    wait_for_recoveries(&env, 1).await;
    let missing = (total - first.len()) as u32;
    assert_eq!(
        ready(&env, |b| b.queues().chunks.clone()).await,
        missing,
        "exactly the missing chunk items"
    );
    // They wait in the queue now: more passes go by and publish nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        recoveries(&env).await,
        1,
        "items waiting in the queue are not republished"
    );
    assert_eq!(ready(&env, |b| b.queues().chunks.clone()).await, missing);
    reconciler.stop().await;

    let fleet = env.start(env.config(&reconciling(&[])), &[Role::Database]).await;
    let files = env.wait_for_files(1, WAIT).await;
    fleet.stop().await;
    let file = &files[0];
    assert_eq!(file.status, "done", "{file:#?}");
    assert_eq!(file.chunks_done as usize, total, "every planned chunk, each once");
    assert_eq!(env.egrid_table().await, egrid::expected(&real_egrid_file(), file.id));
    let (count, severity, message) = recovery_alert(&env, file.id).await.expect("a recovery alert");
    assert_eq!((count, severity.as_str()), (1, "warning"));
    assert!(
        message.starts_with(&format!("{KEY}: no progress for 1 s; chunks 5, 6, 7")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "({missing} of them) of {total} published again (recovery 1 of at most 3)"
        )),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_file_item_is_published_again_and_the_file_loads() {
    let env = TestEnv::new().await;
    let scanner = env.start(env.config(&reconciling(&[])), &[Role::Scanner]).await;
    env.drop_file(KEY, &real_egrid_file());
    let deadline = Instant::now() + WAIT;
    while env
        .scalar::<i64>("SELECT count(*) FROM ingest_files WHERE published_at IS NOT NULL")
        .await
        == 0
    {
        assert!(Instant::now() < deadline, "never published: {:#?}", env.files().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    scanner.stop().await;
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    drain(&broker, &broker.queues().files, 1).await;
    broker.close().await;

    let fleet = env
        .start(
            env.config(&reconciling(&[])),
            &[Role::Chunker, Role::Database, Role::Reconciler],
        )
        .await;
    let files = env.wait_for_files(1, WAIT).await;
    fleet.stop().await;
    assert_eq!(files[0].status, "done", "{:#?}", files[0]);
    assert_eq!(recoveries(&env).await, 1);
    assert_eq!(
        env.egrid_table().await,
        egrid::expected(&real_egrid_file(), files[0].id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_recoveries_do_not_help_fails_with_a_reason_that_says_so() {
    let env = TestEnv::new().await;
    let config = env.config(&reconciling(&[("PENSTOCK_MAX_RECOVERIES", "2")]));
    let fleet = env.start(config, &[Role::Scanner, Role::Reconciler]).await;
    env.drop_file(KEY, &real_egrid_file());
    // A broker that keeps losing the file item: every time it is published, it disappears.
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    let deadline = Instant::now() + WAIT;
    let lost = loop {
        let files = env.files().await;
        if files.first().is_some_and(|f| f.status == "failed") {
            break files;
        }
        assert!(Instant::now() < deadline, "never failed: {files:#?}");
        if broker.ready_count(&broker.queues().files).await.unwrap() > 0 {
            drain(&broker, &broker.queues().files, 1).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    broker.close().await;
    fleet.stop().await;
    let reason = lost[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("no progress after 2 recoveries by the reconciler: its file item was never chunked"),
        "{reason}"
    );
    assert_eq!(recoveries(&env).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reconcilers_at_once_recover_a_stalled_file_once() {
    let env = TestEnv::new().await;
    let total = planned_and_drained_bodies(&env).await.len();
    // Several passes each, at the same moments.
    let config = env.config(&reconciling(&[("PENSTOCK_RECONCILE_INTERVAL", "50ms")]));
    let a = env.start(config.clone(), &[Role::Reconciler]).await;
    let b = env.start(config, &[Role::Reconciler]).await;
    wait_for_recoveries(&env, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    a.stop().await;
    b.stop().await;
    assert_eq!(recoveries(&env).await, 1, "one recovery, not one per reconciler");
    assert_eq!(
        ready(&env, |q| q.queues().chunks.clone()).await as usize,
        total,
        "each lost chunk item published once"
    );
}
