//! The dashboard in headless Chromium (Debian's, driven by playwright-core; both installed by
//! scripts/test-tools.sh) against the API with the real eGRID file loaded.

use std::process::Command;
use std::time::Duration;

use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::{TestEnv, repo_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_real_data_in_chromium_without_console_errors() {
    let env = TestEnv::new().await;
    let (fleet, api) = env.loaded_with_real_egrid(&[]).await;
    let bad = egrid::file(
        &[(2022, "TX", "Alpha", "G1", "12"), (2022, "TX", "Alpha", "G2", "lots")],
        &STANDARD_ORDER,
        "\n",
    );
    env.drop_file("egrid/generators/bad2022.csv", &bad);
    env.wait_for_files(2, Duration::from_secs(60)).await;
    // The files' alerts come through the outbox relay: let them land first, so the test
    // alert below is the newest.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while env
        .scalar::<i64>("SELECT count(*) FROM outbox WHERE alerted_at IS NULL")
        .await
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the files' events were never alerted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sqlx::query(
        "INSERT INTO alerts (dedupe_key, severity, source, message) VALUES ('x', 'error', 'database', 'a test alert')",
    )
    .execute(&env.pool)
    .await
    .unwrap();

    // The docs page must show every operation the API documents.
    let document = api.get("/openapi.json").await.json();
    let operations: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().keys())
        .filter(|method| ["get", "post", "put", "patch", "delete"].contains(&method.as_str()))
        .count();
    let screenshot = repo_root().join(".penstock/screenshots/dashboard.png");
    std::fs::create_dir_all(screenshot.parent().unwrap()).unwrap();
    let script = repo_root().join("tests/browser/dashboard.mjs");
    let url = api.url("/");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(url)
            .arg(&screenshot)
            .output()
            .expect("node runs (install Node.js 20)")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser run failed (run scripts/test-tools.sh to install Chromium and playwright-core):\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("findings");
    fleet.stop().await;

    for kind in ["console_errors", "page_errors", "failed_requests", "foreign_requests"] {
        assert_eq!(seen[kind], serde_json::json!([]), "{kind}: {seen}");
    }
    assert_eq!(seen["title"], "penstock");
    // One bar per state, each with a height; the tallest is the state SQL says generates most.
    let states: Vec<(String,)> = sqlx::query_as(
        "SELECT state FROM egrid_generators GROUP BY state ORDER BY coalesce(sum(net_generation_mwh), 0) DESC, state",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let bars = seen["bars"].as_array().unwrap();
    assert_eq!(bars.len(), states.len(), "{seen}");
    assert_eq!(bars[0][0], states[0].0.as_str());
    assert!(
        bars[0][1].as_f64().unwrap() > 100.0,
        "the largest bar is drawn tall: {}",
        bars[0]
    );
    let plants: i64 = env
        .scalar("SELECT count(DISTINCT (year, state, plant_name)) FROM egrid_generators")
        .await;
    assert_eq!(
        seen["stat_plants"].as_str().unwrap().replace(',', ""),
        plants.to_string()
    );
    assert_eq!(seen["top_rows"].as_array().unwrap().len(), 10);
    assert_eq!(seen["top_tx"].as_array().unwrap().len(), 10);

    let rows = seen["search_rows"].as_array().unwrap();
    assert_eq!(rows.len(), 20, "a full first page: {seen}");
    assert!(
        rows.iter()
            .all(|r| r.as_str().unwrap().to_lowercase().contains("solar"))
    );
    assert!(seen["plant_generators"].as_u64().unwrap() >= 1);
    assert_eq!(seen["files"].as_array().unwrap().len(), 2);
    assert_eq!(seen["quarantine_rows"][0][0], 4, "{seen}");
    assert_eq!(seen["alerts"][0], "a test alert", "newest first: {seen}");
    // The docs page: every operation shown, and (checked above) no request left the server.
    assert_eq!(seen["docs_operations"], operations, "{seen}");
    assert!(seen["docs_title"].as_str().unwrap().starts_with("penstock"), "{seen}");
    let png = std::fs::read(repo_root().join(".penstock/screenshots/dashboard.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a screenshot is saved");
}
