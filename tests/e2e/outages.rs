//! Broker and database outages mid-ingest, through a TCP proxy in the test (the machine's
//! shared services are never restarted): connections are cut and stalled while a large file
//! loads, and the file still completes with exactly the table an uninterrupted load gives.

use std::time::{Duration, Instant};

use penstock_tests::proxy::Proxy;
use penstock_tests::{TestEnv, real_egrid_file};
use penstock_workers::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_and_stalling_broker_and_database_connections_mid_ingest_still_loads_the_file_exactly() {
    let env = TestEnv::new().await;
    let pg = Proxy::start("127.0.0.1:5432").await;
    let amqp = Proxy::start("127.0.0.1:5672").await;
    let database_url = env.database_url.replace("127.0.0.1:5432", &pg.addr);
    let amqp_url = penstock_tests::amqp_url().replace("127.0.0.1:5672", &amqp.addr);
    assert_ne!(database_url, env.database_url, "the fleet must go through the proxy");
    let config = env.config(&[
        ("PENSTOCK_DATABASE_URL", &database_url),
        ("PENSTOCK_AMQP_URL", &amqp_url),
        ("PENSTOCK_CHUNK_BYTES", "8192"),
        ("PENSTOCK_DATABASE_CONCURRENCY", "2"),
    ]);
    let fleet = env.start(config, &Role::ALL).await;
    let bytes = real_egrid_file();
    env.drop_file("egrid/generators/egrid2023_gen.csv", &bytes);

    wait_for(&env, 5).await;
    amqp.cut(); // RabbitMQ "restarts"
    wait_for(&env, 25).await;
    pg.cut(); // PostgreSQL "restarts"
    wait_for(&env, 45).await;
    amqp.stall(true); // the network hangs for a while
    pg.stall(true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    amqp.stall(false);
    pg.stall(false);
    wait_for(&env, 65).await;
    amqp.cut();
    pg.cut();

    let files = env.wait_for_files(1, Duration::from_secs(180)).await;
    fleet.stop().await;
    let file = &files[0];
    assert_eq!(file.status, "done", "{file:#?}");
    assert_eq!(file.chunks_done, file.chunks_total.unwrap());
    assert_eq!(
        env.egrid_table().await,
        penstock_tests::egrid::expected(&bytes, file.id)
    );
    let records: i64 = env.scalar("SELECT sum(records)::bigint FROM ingest_chunks").await;
    assert_eq!(records, 26_601);
}

async fn wait_for(env: &TestEnv, chunks: i32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.files().await.first().map_or(0, |f| f.chunks_done) < chunks {
        assert!(
            Instant::now() < deadline,
            "stuck before {chunks} chunks: {:#?}",
            env.files().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
