//! Exactly once in effect, whatever the order: redelivered chunks, parallel consumers,
//! versions processed out of order.

use std::time::Duration;

use penstock_broker::{Meta, RabbitMq, WorkQueue};
use penstock_fleet::Role;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::{TestEnv, amqp_url, real_egrid_file};

const WAIT: Duration = Duration::from_secs(120);

/// Takes every message off a queue (acking it) and returns the bodies.
pub(crate) async fn drain(broker: &RabbitMq, queue: &str, expected: usize) -> Vec<Vec<u8>> {
    let mut subscription = broker.subscribe(queue, 100).await.unwrap();
    let mut bodies = Vec::new();
    while bodies.len() < expected {
        let delivery = tokio::time::timeout(Duration::from_secs(30), subscription.next())
            .await
            .expect("messages arrive")
            .unwrap()
            .unwrap();
        bodies.push(delivery.body.to_vec());
        delivery.ack().await.unwrap();
    }
    subscription.close().await;
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_chunk_changes_nothing() {
    let env = TestEnv::new().await;
    let config = env.config(&[("PENSTOCK_CHUNK_BYTES", "65536")]);
    // Scanner and chunker only: the chunk items wait on the queue.
    let front = env.start(config.clone(), &[Role::Scanner, Role::Chunker]).await;
    let bytes = real_egrid_file();
    env.drop_file("egrid/generators/egrid2023_gen.csv", &bytes);
    let chunks_total = env.wait_until_planned().await;
    front.stop().await;
    assert!(chunks_total > 10, "small chunks give many chunk items ({chunks_total})");

    // Every chunk item three times, shuffled: at-least-once delivery at its worst.
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    let bodies = drain(&broker, &broker.queues().chunks, chunks_total).await;
    let mut copies: Vec<(usize, Vec<u8>)> = (0..3)
        .flat_map(|round| {
            bodies
                .iter()
                .cloned()
                .enumerate()
                .map(move |(i, b)| (i * 7 + round * 13, b))
        })
        .collect();
    copies.sort_by_key(|(k, _)| k % 17);
    for (i, (_, body)) in copies.iter().enumerate() {
        broker
            .publish(&broker.queues().chunks, body, &Meta::new(format!("copy-{i}")))
            .await
            .unwrap();
    }
    broker.close().await;

    let fleet = env.start(config, &[Role::Database]).await;
    let files = env.wait_for_files(1, WAIT).await;
    // Let the surplus copies drain too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    fleet.stop().await;
    let file = &env.files().await[0];
    assert_eq!(files[0].status, "done");
    assert_eq!(file.chunks_done as usize, chunks_total);
    assert_eq!(
        (file.rows_loaded + file.rows_superseded, file.rows_quarantined),
        (26_601, 0)
    );
    assert_eq!(
        env.scalar::<i64>("SELECT count(*) FROM ingest_chunks").await as usize,
        chunks_total
    );
    assert_eq!(env.egrid_table().await, egrid::expected(&bytes, file.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_database_consumers_in_parallel_give_the_same_table() {
    let env = TestEnv::new().await;
    let config = env.config(&[
        ("PENSTOCK_CHUNK_BYTES", "32768"),
        ("PENSTOCK_DATABASE_CONCURRENCY", "3"),
    ]);
    let front = env.start(config.clone(), &[Role::Scanner, Role::Chunker]).await;
    let one = env.start(config.clone(), &[Role::Database]).await;
    let two = env.start(config, &[Role::Database]).await;
    let bytes = real_egrid_file();
    env.drop_file("egrid/generators/egrid2023_gen.csv", &bytes);
    let files = env.wait_for_files(1, WAIT).await;
    for fleet in [front, one, two] {
        fleet.stop().await;
    }
    assert_eq!(files[0].status, "done", "{files:#?}");
    assert!(files[0].chunks_total.unwrap() > 20);
    assert_eq!(files[0].rows_loaded + files[0].rows_superseded, 26_601);
    assert_eq!(env.egrid_table().await, egrid::expected(&bytes, files[0].id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_later_line_and_the_later_version_win_whatever_order_chunks_are_loaded_in() {
    let env = TestEnv::new().await;
    // One record per chunk, so the same key lands in different chunks.
    let config = env.config(&[("PENSTOCK_CHUNK_BYTES", "1"), ("PENSTOCK_DATABASE_CONCURRENCY", "4")]);
    let v1 = egrid::file(
        &[
            (2023, "TX", "Alpha", "1", "1"),
            (2023, "TX", "Alpha", "1", "2"),
            (2023, "TX", "Beta", "1", "3"),
            (2023, "TX", "Alpha", "1", "4"),
            (2023, "TX", "Beta", "1", "5"),
        ],
        &STANDARD_ORDER,
        "\r\n",
    );
    let v2 = egrid::file(
        &[(2023, "TX", "Alpha", "1", "100"), (2023, "TX", "Alpha", "1", "4")],
        &STANDARD_ORDER,
        "\r\n",
    );
    // Both files are chunked before any chunk loads; then the chunk items are loaded newest
    // first. (Two object keys: a local folder keeps only the latest bytes of one key, so an
    // overwritten version cannot be loaded late — it fails as "changed after discovery".)
    let files = load_newest_chunks_first(&env, config, &[("first.csv", &v1), ("second.csv", &v2)], 7).await;
    let table = env.egrid_table().await;
    assert!(files.iter().all(|f| f.status == "done"), "{files:#?}");
    assert_eq!(table.len(), 2, "{table:#?}");
    let alpha = &table[&(2023, "TX".into(), "Alpha".into(), "1".into())];
    let beta = &table[&(2023, "TX".into(), "Beta".into(), "1".into())];
    assert_eq!(
        (alpha.0.as_deref(), alpha.1, alpha.2),
        (Some("4"), files[1].id, 4),
        "the later file's last Alpha line wins"
    );
    assert_eq!(
        (beta.0.as_deref(), beta.1, beta.2),
        (Some("5"), files[0].id, 7),
        "the first file's last Beta line wins"
    );
}

/// Drops `files` (under `egrid/generators/`) with only the scanner and chunker running, so
/// each is chunked before any chunk loads; then publishes their `chunks` chunk items again
/// in reverse order (newest first), loads them with a database consumer, and returns the
/// finished file versions.
pub(crate) async fn load_newest_chunks_first(
    env: &TestEnv,
    config: penstock_config::Config,
    files: &[(&str, &[u8])],
    chunks: usize,
) -> Vec<penstock_db::FileStatus> {
    let front = env.start(config.clone(), &[Role::Scanner, Role::Chunker]).await;
    for (n, (name, bytes)) in files.iter().enumerate() {
        env.drop_file(&format!("egrid/generators/{name}"), bytes);
        wait_until_loading(env, n + 1).await;
    }
    front.stop().await;
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    let mut bodies = drain(&broker, &broker.queues().chunks, chunks).await;
    bodies.reverse();
    for (i, body) in bodies.iter().enumerate() {
        broker
            .publish(&broker.queues().chunks, body, &Meta::new(format!("r-{i}")))
            .await
            .unwrap();
    }
    broker.close().await;
    let fleet = env.start(config, &[Role::Database]).await;
    let finished = env.wait_for_files(files.len(), WAIT).await;
    fleet.stop().await;
    finished
}

async fn wait_until_loading(env: &TestEnv, count: usize) {
    for _ in 0..600 {
        let files = env.files().await;
        if files.len() >= count && files.iter().all(|f| f.status == "loading") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("files never reached loading: {:#?}", env.files().await);
}
