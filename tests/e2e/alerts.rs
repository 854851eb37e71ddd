//! Events become alerts: severities by what went wrong, and a storm of one event bumps one
//! alert instead of inserting many.

use std::time::{Duration, Instant};

use penstock_broker::Broker;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::{TestEnv, amqp_url};
use penstock_workers::Role;

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
    let broker = Broker::connect(&amqp_url(), &env.prefix).await.unwrap();
    for i in 0..15 {
        broker
            .publish_raw(
                &broker.queues.chunks,
                b"garbage",
                &format!("storm-{i}"),
                Default::default(),
            )
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
