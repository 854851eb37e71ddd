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
