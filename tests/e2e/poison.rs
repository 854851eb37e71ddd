//! Poison messages and long work: an item that stops its consumer every time it is
//! delivered ends in the errors queue after RabbitMQ's delivery limit, with a reason, and
//! fails its file; work queues an earlier penstock declared without the limit are used as
//! they are.

use std::time::{Duration, Instant};

use penstock_broker::{DELIVERY_LIMIT, Meta, RabbitMq, WorkQueue};
use penstock_fleet::Role;
use penstock_tests::{TestEnv, amqp_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_that_stops_its_consumer_every_time_ends_in_the_errors_queue_and_fails_its_file() {
    let env = TestEnv::new().await;
    let items = crate::plan::planned_and_drained_bodies(&env).await;
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    let chunks = broker.queues().chunks.clone();
    broker
        .publish(&chunks, &items[0], &Meta::new("chunk-poison"))
        .await
        .unwrap();

    // A consumer that dies holding it, again and again (as a loader killed by the item would).
    let mut deliveries = 0;
    loop {
        let mut subscription = broker.subscribe(&chunks, 1).await.unwrap();
        let next = tokio::time::timeout(Duration::from_secs(3), subscription.next()).await;
        subscription.close().await;
        match next {
            Ok(Some(Ok(_))) => deliveries += 1,
            _ => break,
        }
        assert!(
            deliveries <= DELIVERY_LIMIT + 5,
            "never dead-lettered after {deliveries} deliveries"
        );
    }
    assert!(
        (DELIVERY_LIMIT..=DELIVERY_LIMIT + 1).contains(&deliveries),
        "dead-lettered after {deliveries} deliveries (limit {DELIVERY_LIMIT})"
    );
    broker.close().await;

    let errors = env.start(env.config(&[]), &[Role::Errors]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let file = loop {
        let file = env.files().await.remove(0);
        if file.status == "failed" {
            break file;
        }
        assert!(Instant::now() < deadline, "the file never failed: {file:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    errors.stop().await;
    let reason = file.reason.unwrap_or_default();
    assert!(
        reason.contains(&format!(
            "RabbitMQ dead-lettered it after {DELIVERY_LIMIT} deliveries that were never settled"
        )),
        "{reason}"
    );
    let (source, message_id): (Option<String>, String) =
        sqlx::query_as("SELECT source_queue, message_id FROM ingest_errors WHERE kind = 'dead_item'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        (source.as_deref(), message_id.as_str()),
        (Some(chunks.as_str()), "chunk-poison")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_queue_declared_without_the_delivery_limit_is_used_as_it_is() {
    let env = TestEnv::new().await;
    // An earlier penstock's queue: the same name, other arguments.
    let other = RabbitMq::connect(&amqp_url(), &format!("{}-old", env.prefix))
        .await
        .unwrap();
    let chunks = format!("{}.chunks", env.prefix);
    (&other as &dyn WorkQueue).ensure_external_queue(&chunks).await.unwrap();

    let broker = RabbitMq::connect(&amqp_url(), &env.prefix)
        .await
        .expect("connects although the queue refuses the new arguments");
    broker.publish(&chunks, b"{}", &Meta::new("still-works")).await.unwrap();
    assert_eq!(broker.ready_count(&chunks).await.unwrap(), 1);
    broker.close().await;
    other.delete_queues().await.unwrap();
    other.close().await;
}
