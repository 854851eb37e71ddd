//! The chunk plan is data: a file re-planned after a restart with another `chunk_bytes`
//! loads from the plan it was first given, and a chunk item that disagrees with the stored
//! plan is refused with a reason.

use std::time::Duration;

use penstock_broker::{Meta, RabbitMq, WorkQueue};
use penstock_core::{ChunkItem, FileItem, message};
use penstock_fleet::Role;
use penstock_tests::egrid;
use penstock_tests::{TestEnv, amqp_url, real_egrid_file};

use crate::order::drain;

const WAIT: Duration = Duration::from_secs(120);
const KEY: &str = "egrid/generators/egrid2023_gen.csv";

/// Plans the real eGRID file with 64 KiB chunks (scanner and chunker only), then takes its
/// chunk items off the queue, as a purge would; returns their bodies.
pub(crate) async fn planned_and_drained_bodies(env: &TestEnv) -> Vec<Vec<u8>> {
    let config = env.config(&[("PENSTOCK_CHUNK_BYTES", "65536")]);
    let front = env.start(config, &[Role::Scanner, Role::Chunker]).await;
    env.drop_file(KEY, &real_egrid_file());
    let total = env.wait_until_planned().await;
    front.stop().await;
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    let bodies = drain(&broker, &broker.queues().chunks, total).await;
    broker.close().await;
    bodies
}

/// [`planned_and_drained_bodies`], decoded.
async fn planned_and_drained(env: &TestEnv) -> Vec<ChunkItem> {
    let bodies = planned_and_drained_bodies(env).await;
    bodies.iter().map(|b| message::decode(b).unwrap()).collect()
}

async fn publish(env: &TestEnv, queue: impl Fn(&RabbitMq) -> String, bodies: &[Vec<u8>]) {
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    let queue = queue(&broker);
    for (i, body) in bodies.iter().enumerate() {
        broker
            .publish(&queue, body, &Meta::new(format!("again-{i}")))
            .await
            .unwrap();
    }
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replanned_after_a_restart_with_another_chunk_size_loads_every_row_once() {
    let env = TestEnv::new().await;
    let items = planned_and_drained(&env).await;
    let total = items.len();
    assert!(total > 10, "64 KiB chunks give many chunk items ({total})");
    // The chunker stopped half-way through publishing: only the first half reached the queue.
    let half: Vec<Vec<u8>> = items[..total / 2]
        .iter()
        .map(|i| serde_json::to_vec(i).unwrap())
        .collect();
    publish(&env, |b| b.queues().chunks.clone(), &half).await;
    // Its file item comes back (unacked when it stopped), to a chunker deployed with another
    // chunk size: planning again would give other ranges under the same chunk numbers.
    let file = env.files().await.remove(0);
    let item = FileItem {
        v: message::VERSION,
        file_id: file.id,
        dataset: file.dataset.clone(),
        key: file.key.clone(),
        version: file.version.clone(),
        size: file.size_bytes as u64,
    };
    publish(
        &env,
        |b| b.queues().files.clone(),
        &[serde_json::to_vec(&item).unwrap()],
    )
    .await;
    let config = env.config(&[("PENSTOCK_CHUNK_BYTES", "300000")]);
    let fleet = env.start(config, &[Role::Chunker, Role::Database]).await;
    let files = env.wait_for_files(1, WAIT).await;
    fleet.stop().await;

    let file = &files[0];
    assert_eq!(file.status, "done", "{file:#?}");
    assert_eq!(file.chunks_done as usize, total, "the first plan's chunks, each once");
    assert_eq!(file.rows_loaded + file.rows_superseded, 26_601);
    let ranges: i64 = env
        .scalar("SELECT count(*) FROM ingest_chunks c JOIN ingest_chunk_plans p USING (file_id, chunk) WHERE c.byte_start = p.byte_start AND c.byte_end = p.byte_end")
        .await;
    assert_eq!(ranges as usize, total, "every committed chunk is its planned range");
    assert_eq!(env.egrid_table().await, egrid::expected(&real_egrid_file(), file.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_item_that_disagrees_with_the_stored_plan_fails_the_file_with_why() {
    let env = TestEnv::new().await;
    let mut items = planned_and_drained(&env).await;
    // Same bytes and checksum, another first line: line numbers in the quarantine and the
    // lineage would be wrong, so the loader must not trust it.
    items[2].first_line += 1;
    let bodies: Vec<Vec<u8>> = items.iter().map(|i| serde_json::to_vec(i).unwrap()).collect();
    publish(&env, |b| b.queues().chunks.clone(), &bodies).await;
    let fleet = env.start(env.config(&[]), &[Role::Database]).await;
    let files = env.wait_for_files(1, WAIT).await;
    fleet.stop().await;

    let file = &files[0];
    assert_eq!(file.status, "failed", "{file:#?}");
    let reason = file.reason.as_deref().unwrap_or_default();
    let planned = items[2].first_line - 1;
    assert!(
        reason.contains(&format!(
            "chunk {} of file {} does not match its stored plan: first line {} (planned {planned})",
            items[2].chunk, file.id, items[2].first_line
        )),
        "{reason}"
    );
}
