//! S3 bucket notifications: real S3 event documents (as MinIO publishes them to AMQP) on a
//! RabbitMQ queue, against the in-process S3 server. An event records the object at once;
//! duplicates and the next poll do not ingest it twice; a lost event is caught by polling.

use std::time::{Duration, Instant};

use penstock_broker::{Meta, RabbitMq, WorkQueue};
use penstock_fleet::{Fleet, Role};
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::s3::S3Server;
use penstock_tests::{TestEnv, amqp_url, real_egrid_file};

fn minio_event(bucket: &str, key: &str, size: usize, etag: &str) -> Vec<u8> {
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    serde_json::json!({
        "EventName": "s3:ObjectCreated:Put",
        "Key": format!("{bucket}/{key}"),
        "Records": [{
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2026-11-30T08:00:00.000Z",
            "eventName": "s3:ObjectCreated:Put",
            "userIdentity": {"principalId": "minioadmin"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "minioadmin"}, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": encoded, "size": size, "eTag": etag, "contentType": "text/csv", "sequencer": "187C2E0A4F3B2D10"}
            }
        }]
    })
    .to_string()
    .into_bytes()
}

async fn wait_done(env: &TestEnv, count: usize, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let files = env.files().await;
        if files.len() >= count && files.iter().all(|f| f.is_terminal()) {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "not done within {within:?}: {files:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every role against a bucket `drops` (store `s3://drops/incoming`) with the event queue
/// `<prefix>.s3-events` (deleted by the harness) and the given scan interval; returns the S3
/// server, the fleet, a broker connection to publish events with, and the queue name.
async fn start_with_events(env: &TestEnv, scan_interval: &str) -> (S3Server, Fleet, RabbitMq, String) {
    let s3 = S3Server::start("drops").await;
    let queue = format!("{}.s3-events", env.prefix);
    let mut settings = vec![
        ("PENSTOCK_STORAGE_URL", "s3://drops/incoming"),
        ("PENSTOCK_S3_EVENTS_QUEUE", queue.as_str()),
        ("PENSTOCK_SCAN_INTERVAL", scan_interval),
    ];
    settings.extend(s3.env());
    let fleet = env.start(env.config(&settings), &Role::ALL).await;
    let events = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    events.ensure_external_queue(&queue).await.unwrap();
    (s3, fleet, events, queue)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_ingests_at_once_repeats_change_nothing_and_polling_catches_a_lost_event() {
    let env = TestEnv::new().await;
    // Polls at start, then every 4 s: an event must beat the next poll by far.
    let (s3, fleet, events, queue) = start_with_events(&env, "4s").await;
    tokio::time::sleep(Duration::from_millis(500)).await; // past the first poll

    let key = "incoming/egrid/generators/egrid 2023.csv";
    let bytes = real_egrid_file();
    let etag = s3.put("drops", key, bytes.clone()).await;
    let dropped = Instant::now();
    let event = minio_event("drops", key, bytes.len(), &etag);
    events.publish(&queue, &event, &Meta::new("event-1")).await.unwrap();
    let took = wait_done(&env, 1, Duration::from_secs(3)).await;
    eprintln!("event: drop to done in {:?}", dropped.elapsed().max(took));
    let files = env.files().await;
    assert_eq!(files[0].key, "egrid/generators/egrid 2023.csv");
    assert_eq!(files[0].version, format!("etag:{}", etag.trim_matches('"')));
    assert_eq!(env.egrid_table().await, egrid::expected(&bytes, files[0].id));

    // The same event again (MinIO retries), an event for another bucket, and garbage: nothing new.
    events.publish(&queue, &event, &Meta::new("event-2")).await.unwrap();
    let elsewhere = minio_event("other", key, bytes.len(), &etag);
    events.publish(&queue, &elsewhere, &Meta::new("event-3")).await.unwrap();
    events
        .publish(&queue, b"not json", &Meta::new("event-4"))
        .await
        .unwrap();
    // A poll runs meanwhile and sees the version the event recorded.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        env.files().await.len(),
        1,
        "neither a repeated event nor the poll re-ingests"
    );

    // A lost event: a new version with no notification is found by the next poll.
    let v2 = egrid::file(&[(2023, "AK", "Alakanuk", "UNIT4", "1,234")], &STANDARD_ORDER, "\n");
    s3.put("drops", key, v2.clone()).await;
    wait_done(&env, 2, Duration::from_secs(15)).await;
    let files = env.files().await;
    assert_eq!(files.len(), 2);
    assert_eq!(files[1].rows_loaded, 1);
    // The garbage was dead-lettered with its reason and recorded by the error consumer.
    let (source, reason): (String, String) = sqlx::query_as(
        "SELECT source_queue, reason FROM ingest_errors WHERE kind = 'dead_item' AND message_id = 'event-4'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(source, queue);
    assert!(reason.contains("not an S3 event notification"), "{reason}");
    fleet.stop().await;
    events.close().await;
}

/// `just bench-events`: drop → queryable latency of a 1 MB eGRID file through an S3 bucket,
/// by event and by polling (default 2 s scan interval), five drops each. A measurement, not
/// a test: ignored by `just test`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with `just bench-events`"]
async fn bench_drop_to_queryable_latency_by_event_and_by_polling() {
    let env = TestEnv::new().await;
    let (s3, fleet, events, queue) = start_with_events(&env, "2s").await;
    let full = real_egrid_file();
    let cut = full[..1 << 20].iter().rposition(|b| *b == b'\n').unwrap() + 1;
    let sample = &full[..cut];
    let mut results = Vec::new();
    for (round, by_event) in [true, false, true, false, true, false, true, false, true, false]
        .into_iter()
        .enumerate()
    {
        // A distinct file each round: the same sample with a changed trailing generator.
        let mut bytes = sample.to_vec();
        bytes.extend(egrid_extra_line(round));
        let key = format!("incoming/egrid/generators/drop{round}.csv");
        let before = env.files().await.len();
        let dropped = Instant::now();
        let etag = s3.put("drops", &key, bytes.clone()).await;
        if by_event {
            let event = minio_event("drops", &key, bytes.len(), &etag);
            events
                .publish(&queue, &event, &Meta::new(format!("bench-{round}")))
                .await
                .unwrap();
        }
        wait_done(&env, before + 1, Duration::from_secs(30)).await;
        results.push((by_event, dropped.elapsed()));
    }
    fleet.stop().await;
    events.close().await;
    for (label, by_event) in [("event", true), ("polling (scan_interval 2s)", false)] {
        let mut times: Vec<Duration> = results.iter().filter(|r| r.0 == by_event).map(|r| r.1).collect();
        times.sort();
        eprintln!(
            "{label:<28} drop → queryable, {} drops of {} bytes: min {:?}, median {:?}, max {:?}",
            times.len(),
            cut,
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}

fn egrid_extra_line(round: usize) -> Vec<u8> {
    format!("999999,2023,ZZ,Benchmark Plant {round},G{round},\"1,000\"\n").into_bytes()
}
