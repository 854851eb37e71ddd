//! A real RabbitMQ cluster: three nodes the test starts itself from the machine's
//! `rabbitmq-server` (`penstock_tests::cluster`), the fleet given all three. Nodes die with
//! SIGKILL in the middle of an ingest — first one the fleet does not use, then the one every
//! role is connected to — and the files still load exactly; the killed nodes restart and
//! rejoin, and their queue replicas come back online.

use std::time::{Duration, Instant};

use penstock_broker::{Queues, RabbitMq, Topology, WorkQueue};
use penstock_fleet::Role;
use penstock_tests::cluster::Cluster;
use penstock_tests::{TestEnv, real_egrid_file};

const RECORDS: i64 = 26_601;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_load_exactly_once_while_a_cluster_node_and_then_the_node_the_fleet_uses_are_killed() {
    let mut cluster = Cluster::start(3);
    let env = TestEnv::new().await;
    let config = env.config(&[
        ("PENSTOCK_AMQP_URL", &cluster.urls()),
        ("PENSTOCK_QUORUM_GROUP_SIZE", "3"),
        ("PENSTOCK_CHUNK_BYTES", "8192"),
        ("PENSTOCK_DATABASE_CONCURRENCY", "2"),
    ]);
    let fleet = env.start(config, &Role::ALL).await;
    let chunks = Queues::new(&env.prefix).chunks;

    // A node the fleet is not connected to dies mid-file, and comes back.
    let first = real_egrid_file();
    env.drop_file("egrid/generators/first.csv", &first);
    wait_for_chunks(&env, 0, 10).await;
    let used = connected_node(&cluster);
    let other = (0..3).find(|n| *n != used).unwrap();
    cluster.kill(other);
    wait_for_chunks(&env, 0, 20).await;
    cluster.restart(other);
    cluster.await_running(3);

    // The node every role is connected to dies in the middle of the second file.
    let mut second = first.clone();
    second.extend_from_slice(b"\r\n"); // other bytes, the same rows: a new version
    env.drop_file("egrid/generators/second.csv", &second);
    wait_for_chunks(&env, 1, 10).await;
    let used = connected_node(&cluster);
    cluster.kill(used);
    let files = env.wait_for_files(2, Duration::from_secs(240)).await;
    let moved_to = connected_node(&cluster);
    fleet.stop().await;
    assert_ne!(moved_to, used, "the roles reconnected to a node that is up");

    env.assert_loaded_exactly_once(&files, RECORDS, &second).await;

    // The killed node restarts and rejoins, and holds its replica of the queues again.
    cluster.restart(used);
    cluster.await_running(3);
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.quorum_members(moved_to, &chunks).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "{chunks} is online on {:?} only",
            cluster.quorum_members(moved_to, &chunks)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quorum_group_size_sets_on_how_many_nodes_each_queue_is_replicated() {
    let cluster = Cluster::start(3);
    let prefix = format!("group-{}", uuid::Uuid::new_v4().simple());
    let two = Topology {
        quorum_group_size: Some(2),
        ..Topology::new(&prefix)
    };
    let broker = RabbitMq::connect_with(&cluster.url(0), &two).await.unwrap();
    broker.close().await;
    for queue in Queues::new(&prefix).every() {
        assert_eq!(cluster.quorum_members(0, &queue).len(), 2, "{queue}");
    }
    // A process configured otherwise uses the queues as they are (with a warning) instead
    // of failing to start: the size only counts when a queue is first declared.
    let other = RabbitMq::connect(&cluster.url(1), &prefix).await;
    assert!(other.is_ok(), "{:?}", other.err());
    other.unwrap().close().await;
    assert_eq!(cluster.quorum_members(0, &Queues::new(&prefix).chunks).len(), 2);
}

/// The node that holds most of the fleet's connections (there must be some).
fn connected_node(cluster: &Cluster) -> usize {
    let running = (0..cluster.nodes.len())
        .find(|n| cluster.is_running(*n))
        .expect("a node runs");
    let counts = cluster.connections_by_node(running);
    let node = (0..counts.len()).max_by_key(|n| counts[*n]).unwrap();
    assert!(counts[node] > 0, "the fleet holds no connection: {counts:?}");
    node
}

/// Waits until the `nth` file version (by id) has `chunks` chunks loaded.
async fn wait_for_chunks(env: &TestEnv, nth: usize, chunks: i32) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut files = env.files().await;
        files.sort_by_key(|f| f.id);
        if files.get(nth).is_some_and(|f| f.chunks_done >= chunks) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "file {nth} stuck before {chunks} chunks: {files:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
