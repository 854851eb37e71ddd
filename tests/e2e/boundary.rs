//! The store boundary: a work item naming a key outside the store reads nothing there.

use std::time::Duration;

use penstock_broker::{Meta, RabbitMq, WorkQueue};
use penstock_core::{FileItem, message};
use penstock_fleet::Role;
use penstock_tests::{TestEnv, amqp_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_file_item_for_a_key_outside_the_folder_fails_the_file_and_reads_nothing() {
    let env = TestEnv::new().await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.csv"), "plant_name,secret\nx,hunter2\n").unwrap();
    let key = format!("../../../../../..{}/secret.csv", outside.path().display());
    let store = format!("file://{}", env.inbox.path().display());
    let id = penstock_db::discover(&env.pool, &store, &key, "v1", "egrid_generators", 30)
        .await
        .unwrap()
        .unwrap();
    let item = FileItem {
        v: message::VERSION,
        file_id: id,
        dataset: "egrid_generators".into(),
        key: key.clone(),
        version: "v1".into(),
        size: 30,
    };
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    let files = broker.queues().files.clone();
    broker
        .publish(&files, &serde_json::to_vec(&item).unwrap(), &Meta::new("forged"))
        .await
        .unwrap();
    broker.close().await;
    let fleet = env.start(env.config(&[]), &[Role::Chunker, Role::Errors]).await;
    let files = env.wait_for_files(1, Duration::from_secs(60)).await;
    fleet.stop().await;
    let file = &files[0];
    assert_eq!(file.status, "failed", "{file:#?}");
    let reason = file.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("refused") && reason.contains("`..`"), "{reason}");
    assert!(
        !reason.contains("hunter2") && !reason.contains("plant_name"),
        "{reason}"
    );
}
