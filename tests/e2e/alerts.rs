//! Events become alerts: severities by what went wrong, and a storm of one event bumps one
//! alert instead of inserting many.

use std::time::{Duration, Instant};

use penstock_broker::{Meta, RabbitMq, WorkQueue};
use penstock_fleet::Role;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::{TestEnv, amqp_url};

type AlertRow = (String, String, String, i64, String);

async fn alerts(env: &TestEnv) -> Vec<AlertRow> {
    sqlx::query_as("SELECT dedupe_key, severity, status, count, message FROM alerts ORDER BY dedupe_key")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_outcomes_and_dead_letters_raise_deduplicated_alerts_with_severities() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    env.drop_file(
        "egrid/generators/good.csv",
        &egrid::file(&[(2023, "TX", "A", "1", "1")], &STANDARD_ORDER, "\n"),
    );
    env.drop_file(
        "egrid/generators/partial.csv",
        &egrid::file(&[(2023, "TX", "B", "1", "x")], &STANDARD_ORDER, "\n"),
    );
    env.drop_file("egrid/generators/bad.csv", b"not,the,right,header\n1,2,3,4\n");
    let broker = RabbitMq::connect(&amqp_url(), &env.prefix).await.unwrap();
    for i in 0..15 {
        broker
            .publish(&broker.queues().chunks, b"garbage", &Meta::new(format!("storm-{i}")))
            .await
            .unwrap();
    }
    broker.close().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = alerts(&env).await;
        let storm = rows.iter().find(|r| r.0.starts_with("dead-letter:")).map_or(0, |r| r.3);
        if rows.len() >= 4 && storm >= 15 {
            break rows;
        }
        assert!(Instant::now() < deadline, "alerts never settled: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    fleet.stop().await;
    let find = |prefix: &str| {
        rows.iter()
            .find(|r| r.0.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {rows:#?}"))
    };
    let done = find("file-done:egrid/generators/good.csv");
    assert_eq!((done.1.as_str(), done.2.as_str(), done.3), ("info", "active", 1));
    assert_eq!(find("file-done-with-errors:egrid/generators/partial.csv").1, "warning");
    let rejected = find("file-rejected:egrid/generators/bad.csv");
    assert_eq!(rejected.1, "error");
    assert!(rejected.4.contains("lacks column(s)"), "{}", rejected.4);
    let storm = find(&format!("dead-letter:{}.chunks", env.prefix));
    assert_eq!(
        (storm.1.as_str(), storm.3),
        ("error", 15),
        "fifteen dead letters, one alert"
    );
    assert_eq!(rows.len(), 4, "{rows:#?}");
}

/// A tiny HTTP receiver: answers 500 to the first request and 200 after, and hands over
/// every request's signature header and body.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/penstock", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut served = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, length) = loop {
                let n = socket.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    break (end + 4, length);
                }
            };
            while buf.len() < head_end + length {
                let n = socket.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
            let signature = head
                .lines()
                .find_map(|l| l.strip_prefix("x-penstock-signature:"))
                .unwrap_or("")
                .trim();
            let _ = tx.send((signature.to_string(), buf[head_end..].to_vec()));
            served += 1;
            let status = if served == 1 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = socket
                .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes())
                .await;
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_error_alert_is_posted_to_the_webhook_signed_retried_and_recorded() {
    use hmac::{Hmac, Mac};
    let env = TestEnv::new().await;
    let (url, mut requests) = receiver().await;
    let config = env.config(&[
        ("PENSTOCK_WEBHOOK_URL", &url),
        ("PENSTOCK_WEBHOOK_SECRET", "receiver-secret"),
        ("PENSTOCK_WEBHOOK_MIN_SEVERITY", "error"),
    ]);
    let fleet = env.start(config, &Role::ALL).await;
    // An info alert (below the webhook's minimum) and an error alert.
    env.drop_file(
        "egrid/generators/good.csv",
        &egrid::file(&[(2023, "TX", "A", "1", "1")], &STANDARD_ORDER, "\n"),
    );
    env.drop_file("egrid/generators/bad.csv", b"wrong,header\n1,2\n");
    let first = tokio::time::timeout(Duration::from_secs(60), requests.recv())
        .await
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(30), requests.recv())
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let deliveries: Vec<(i32, Option<i32>, bool)> = loop {
        let rows = sqlx::query_as("SELECT attempts, status_code, delivered FROM webhook_deliveries")
            .fetch_all(&env.pool)
            .await
            .unwrap();
        if !rows.is_empty() || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    fleet.stop().await;
    assert!(
        requests.try_recv().is_err(),
        "only the error alert is posted, once delivered"
    );
    assert_eq!(first.1, second.1, "the retry sends the same body");
    let payload: serde_json::Value = serde_json::from_slice(&second.1).unwrap();
    assert_eq!(payload["severity"], "error");
    assert_eq!(payload["dedupe_key"], "file-rejected:egrid/generators/bad.csv");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"receiver-secret").unwrap();
    mac.update(&second.1);
    assert_eq!(
        second.0,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        "the receiver verifies the signature"
    );
    assert_eq!(deliveries, vec![(2, Some(200), true)]);
}
