//! Several broker endpoints (the nodes of a cluster): a fleet given two reaches RabbitMQ
//! through whichever answers, and when the one it uses goes away, its roles reconnect
//! through the other and keep loading. Both "nodes" are TCP proxies to the machine's
//! broker, so the test can take either away without touching the shared service.

use std::time::{Duration, Instant};

use penstock_fleet::Role;
use penstock_tests::proxy::Proxy;
use penstock_tests::{TestEnv, amqp_url, egrid, real_egrid_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_given_two_broker_endpoints_starts_on_the_one_that_answers_and_moves_to_the_other_when_it_fails() {
    let env = TestEnv::new().await;
    let (one, two) = (
        Proxy::start("127.0.0.1:5672").await,
        Proxy::start("127.0.0.1:5672").await,
    );
    let through = |proxy: &Proxy| amqp_url().replace("127.0.0.1:5672", &proxy.addr);
    let urls = format!("{},{}", through(&one), through(&two));
    one.block(true); // the first node is down when the fleet starts
    let fleet = env.start(env.config(&[("PENSTOCK_AMQP_URL", &urls)]), &Role::ALL).await;
    let bytes = real_egrid_file();
    env.drop_file("egrid/generators/first.csv", &bytes);
    let first = env.wait_for_files(1, Duration::from_secs(120)).await;
    assert_eq!(first[0].status, "done", "{first:#?}");

    // The first node is back; the second, which every role is connected to, goes away.
    one.block(false);
    two.block(true);
    let ready = Instant::now() + Duration::from_secs(60);
    let http = penstock_tests::http::Http::new(fleet.api_addr().unwrap());
    while http.get("/ready").await.status != 200 {
        assert!(
            Instant::now() < ready,
            "the roles never reconnected through the first endpoint"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut second_bytes = bytes.clone();
    second_bytes.extend_from_slice(b"\r\n"); // other bytes, the same rows: a new version
    env.drop_file("egrid/generators/second.csv", &second_bytes);
    let files = env.wait_for_files(2, Duration::from_secs(120)).await;
    fleet.stop().await;
    assert!(files.iter().all(|f| f.status == "done"), "{files:#?}");
    let second = files.iter().map(|f| f.id).max().unwrap();
    assert_eq!(
        egrid::values(&env.egrid_table().await),
        egrid::values(&egrid::expected(&second_bytes, second)),
        "the second file loaded through the other endpoint"
    );
    let lineage: i64 = env
        .scalar("SELECT count(DISTINCT source_file_id) FROM egrid_generators")
        .await;
    assert_eq!(lineage, 1, "every row now comes from the second file");
}

#[tokio::test]
async fn every_queue_the_fleet_declares_is_a_quorum_queue_so_a_cluster_keeps_it_when_a_node_is_down() {
    let env = TestEnv::new().await;
    let broker = penstock_broker::RabbitMq::connect(&amqp_url(), &env.prefix)
        .await
        .unwrap();
    let declared = penstock_broker::Queues::new(&env.prefix).every();
    penstock_broker::WorkQueue::close(&broker).await;
    // The listing covers every test's queues; under load it can come back partial, so it is
    // read again until it names all of ours.
    let mut types = std::collections::HashMap::new();
    for _ in 0..10 {
        let listed = std::process::Command::new("rabbitmqctl")
            .args(["-q", "-t", "60", "list_queues", "name", "type"])
            .output()
            .expect("rabbitmqctl runs");
        types = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter_map(|line| line.split_once(char::is_whitespace))
            .map(|(name, kind)| (name.to_string(), kind.trim().to_string()))
            .filter(|(name, _)| declared.contains(name))
            .collect();
        if types.len() == declared.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert!(declared.iter().any(|q| q.contains(".retry.")), "{declared:?}");
    for queue in &declared {
        assert_eq!(
            types.get(queue).map(String::as_str),
            Some("quorum"),
            "{queue}: {types:?}"
        );
    }
}
