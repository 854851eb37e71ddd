//! Broker and database outages mid-ingest, through a TCP proxy in the test (the machine's
//! shared services are never restarted): connections are cut and stalled while a large file
//! loads, and the file still completes with exactly the table an uninterrupted load gives.

use std::time::{Duration, Instant};

use penstock_fleet::Role;
use penstock_tests::proxy::Proxy;
use penstock_tests::{TestEnv, real_egrid_file};

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

async fn get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await else {
        return (0, serde_json::Value::Null);
    };
    socket
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("null");
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

async fn wait_ready(addr: &str, want: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (status, body) = get(addr, "/ready").await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/ready never answered {want}: last {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A free loopback address for a fleet's health server.
fn free_addr() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_is_not_ready_until_every_role_has_connected_and_a_stuck_handshake_does_not_hang_it() {
    let env = TestEnv::new().await;
    let amqp = Proxy::start("127.0.0.1:5672").await;
    let amqp_url = penstock_tests::amqp_url().replace("127.0.0.1:5672", &amqp.addr);
    let health_addr = free_addr();
    // The fleet's start-up check connects first; every role's own handshake after it gets no
    // answer from the broker until released.
    amqp.hold_after(1);
    let config = env.config(&[("PENSTOCK_AMQP_URL", &amqp_url), ("PENSTOCK_HEALTH_ADDR", &health_addr)]);
    let fleet = env.start(config, &Role::ALL).await;
    let roles = ["chunker", "database", "errors", "notifications", "scanner"];
    let waiting = wait_ready(&health_addr, 503).await;
    for role in roles {
        assert_eq!(
            waiting["broker"][role], false,
            "{role} is listed as not connected: {waiting}"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, still) = get(&health_addr, "/ready").await;
    assert_eq!(
        status, 503,
        "not ready while every role waits on its handshake: {still}"
    );

    amqp.release();
    let ready = wait_ready(&health_addr, 200).await;
    for role in roles {
        assert_eq!(ready["broker"][role], true, "{ready}");
    }
    env.drop_file("egrid/generators/late.csv", &real_egrid_file());
    let files = env.wait_for_files(1, Duration::from_secs(60)).await;
    assert_eq!(files[0].status, "done");

    // Stopping does not wait for a handshake that never gets an answer.
    amqp.hold_after(0);
    amqp.cut();
    wait_ready(&health_addr, 503).await;
    let stopping = Instant::now();
    fleet.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "stopping took {:?}",
        stopping.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_not_ready_while_the_broker_is_unreachable_and_recovers_on_its_own() {
    let env = TestEnv::new().await;
    let amqp = Proxy::start("127.0.0.1:5672").await;
    let amqp_url = penstock_tests::amqp_url().replace("127.0.0.1:5672", &amqp.addr);
    let health_addr = free_addr();
    let config = env.config(&[("PENSTOCK_AMQP_URL", &amqp_url), ("PENSTOCK_HEALTH_ADDR", &health_addr)]);
    let fleet = env.start(config, &Role::ALL).await;
    assert_eq!(get(&health_addr, "/health").await.0, 200);
    let ready = wait_ready(&health_addr, 200).await;
    assert_eq!(ready["ready"], true, "{ready}");

    amqp.block(true);
    let down = wait_ready(&health_addr, 503).await;
    assert_eq!(down["database"], true, "{down}");
    assert!(
        down["broker"].as_object().unwrap().values().any(|c| c == false),
        "{down}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    amqp.block(false);
    wait_ready(&health_addr, 200).await;

    // And it still works: a file dropped after the outage loads.
    env.drop_file("egrid/generators/after.csv", &real_egrid_file());
    let files = env.wait_for_files(1, Duration::from_secs(60)).await;
    fleet.stop().await;
    assert_eq!(files[0].status, "done");
}
