//! Prometheus metrics after a real ingest: the counters equal what the tables say.

use std::time::{Duration, Instant};

use penstock_tests::TestEnv;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::http::Http;

/// The value of the sample `name{…}` whose labels include every pair given.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_ingest_the_counters_equal_the_table_counts() {
    let env = TestEnv::new().await;
    let metrics_addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let (fleet, api) = env
        .loaded_with_real_egrid(&[("PENSTOCK_METRICS_ADDR", &metrics_addr)])
        .await;
    let bad = egrid::file(
        &[
            (2022, "TX", "Alpha", "G1", "1,000"),
            (2022, "TX", "Alpha", "G2", "lots"),
            (2022, "TX", "Alpha", "G1", "7"),
        ],
        &STANDARD_ORDER,
        "\n",
    );
    env.drop_file("egrid/generators/bad2022.csv", &bad);
    env.wait_for_files(2, Duration::from_secs(60)).await;

    let dataset = ("dataset", "egrid_generators");
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = api.get("/metrics").await.text;
        // The queue-depth sampler runs every 5 s.
        if sample(
            &text,
            "penstock_broker_queue_ready_messages",
            &[("queue", &format!("{}.chunks", env.prefix))],
        )
        .is_some()
        {
            break text;
        }
        assert!(Instant::now() < deadline, "no queue depth was sampled:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (table_rows, loaded, quarantined, superseded, chunks): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM egrid_generators), sum(rows_loaded)::int8, sum(rows_quarantined)::int8,
                sum(rows_superseded)::int8, sum(chunks_done)::int8 FROM ingest_files",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let errors: i64 = env.scalar("SELECT count(*) FROM ingest_errors").await;
    assert_eq!((table_rows, quarantined, superseded), (26_600, 1, 3));
    let get = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} missing:\n{text}")) as i64
    };
    assert_eq!(get("penstock_loader_rows_loaded_total", &[dataset]), loaded);
    assert_eq!(loaded, table_rows, "every loaded row is a table row (distinct keys)");
    assert_eq!(get("penstock_loader_rows_quarantined_total", &[dataset]), errors);
    assert_eq!(get("penstock_loader_rows_superseded_total", &[dataset]), superseded);
    assert_eq!(
        get(
            "penstock_loader_chunks_processed_total",
            &[dataset, ("outcome", "loaded")]
        ),
        chunks
    );
    assert_eq!(get("penstock_scanner_files_discovered_total", &[dataset]), 2);
    assert_eq!(get("penstock_files_completed_total", &[dataset, ("status", "done")]), 1);
    assert_eq!(
        get(
            "penstock_files_completed_total",
            &[dataset, ("status", "done_with_errors")]
        ),
        1
    );
    assert_eq!(get("penstock_files_duration_seconds_count", &[dataset]), 2);
    assert_eq!(get("penstock_loader_chunk_duration_seconds_count", &[dataset]), chunks);
    assert_eq!(
        get(
            "penstock_broker_queue_ready_messages",
            &[("queue", &format!("{}.chunks", env.prefix))]
        ),
        0
    );
    assert!(text.contains("# HELP penstock_loader_rows_loaded_total"));

    // The same registry on metrics_addr, for processes without the API.
    let other = Http::new(metrics_addr.parse().unwrap()).get("/metrics").await;
    assert_eq!(other.status, 200);
    assert_eq!(
        sample(&other.text, "penstock_loader_rows_loaded_total", &[dataset]).map(|v| v as i64),
        Some(loaded)
    );
    fleet.stop().await;
}
