//! Schema drift: files whose headers gain columns the spec does not declare, or lack an
//! optional one, under each `on_new_columns` policy, through the whole fleet.

use std::time::Duration;

use penstock_fleet::Role;
use penstock_tests::{TestEnv, config_with_egrid_spec};

const TABLE: &str = "
CREATE TABLE readings (
    meter text NOT NULL, day date NOT NULL, kwh integer, note text, extra jsonb,
    source_file_id bigint NOT NULL, source_line bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT readings_key UNIQUE (meter, day)
);";

/// The readings spec with `policy` lines added (`on_new_columns = …`).
fn spec(policy: &str) -> String {
    format!(
        r#"
name = "readings"
key_prefix = "readings/"
conflict_key = ["meter", "day"]
{policy}
[[columns]]
name = "meter"
source = "Meter"
type = "text"
nullable = false
[[columns]]
name = "day"
source = "Day"
type = "date"
nullable = false
[[columns]]
name = "kwh"
source = "kWh"
type = "integer"
thousands = ","
[[columns]]
name = "note"
source = "Note"
type = "text"
required = false
"#
    )
}

pub(crate) struct Drift {
    pub(crate) env: TestEnv,
    // Kept for the fleet's lifetime: its config folder.
    _dir: tempfile::TempDir,
    pub(crate) fleet: penstock_fleet::Fleet,
}

async fn start(policy: &str) -> Drift {
    start_with(policy, "").await
}

/// The whole fleet with the readings dataset (`policy`: spec lines), its table created with
/// `sql` run after it.
pub(crate) async fn start_with(policy: &str, sql: &str) -> Drift {
    let env = TestEnv::new().await;
    sqlx::raw_sql(TABLE).execute(&env.pool).await.unwrap();
    if !sql.is_empty() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&env.pool)
            .await
            .unwrap();
    }
    let dir = config_with_egrid_spec(|spec| spec);
    std::fs::write(dir.path().join("datasets/readings.toml"), spec(policy)).unwrap();
    let config = dir.path().join("penstock.toml").display().to_string();
    let fleet = env.start(env.config(&[("PENSTOCK_CONFIG", &config)]), &Role::ALL).await;
    Drift { env, _dir: dir, fleet }
}

pub(crate) type Reading = (
    String,
    String,
    Option<i32>,
    Option<String>,
    Option<serde_json::Value>,
    i64,
);

pub(crate) async fn readings(env: &TestEnv) -> Vec<Reading> {
    sqlx::query_as("SELECT meter, day::text, kwh, note, extra, source_line FROM readings ORDER BY meter, day")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

async fn alerts(env: &TestEnv) -> Vec<(String, String, i64, String)> {
    sqlx::query_as("SELECT dedupe_key, severity, count, message FROM alerts ORDER BY dedupe_key")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

/// A file with two columns the spec does not declare (`Region`, `Meter type`) and without
/// the optional `Note`, in another column order than the spec's.
const DRIFTED: &str = "Region,kWh,Meter,Meter type,Day\nWest,\"1,200\",M1,smart,2024-01-02\n,7,M2,,2024-01-02\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_new_columns_raise_one_alert_per_file_version_and_the_declared_columns_load() {
    let Drift { env, fleet, .. } = start("").await;
    env.drop_file("readings/a.csv", DRIFTED.as_bytes());
    let files = env.wait_for_files(1, Duration::from_secs(60)).await;
    let file = &files[0];
    assert_eq!(file.status, "done", "{file:#?}");
    assert_eq!(file.new_columns, vec!["Region", "Meter type"]);
    assert_eq!(file.absent_columns, vec!["note"]);
    assert_eq!(
        readings(&env).await,
        vec![
            ("M1".into(), "2024-01-02".into(), Some(1200), None, None, 2),
            ("M2".into(), "2024-01-02".into(), Some(7), None, None, 3),
        ]
    );
    // The alert is raised by the notification consumer, after the outbox relay publishes it.
    let key = format!("new-columns:{}", file.id);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let alert = loop {
        if let Some(alert) = alerts(&env).await.into_iter().find(|a| a.0 == key) {
            break alert;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", alerts(&env).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((alert.1.as_str(), alert.2), ("warning", 1));
    assert!(alert.3.contains("\"Region\", \"Meter type\""), "{}", alert.3);
    assert!(alert.3.contains("penstock infer --update readings FILE"), "{}", alert.3);
    // The next version of the file raises its own alert; the first stays at one.
    env.drop_file("readings/a.csv", format!("{DRIFTED}M3,,7,x,2024-01-03\n").as_bytes());
    let files = env.wait_for_files(2, Duration::from_secs(60)).await;
    let second = format!("new-columns:{}", files.iter().map(|f| f.id).max().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !alerts(&env).await.iter().any(|a| a.0 == second) {
        assert!(std::time::Instant::now() < deadline, "{:?}", alerts(&env).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = alerts(&env).await.into_iter().find(|a| a.0 == key).unwrap();
    assert_eq!(first.2, 1, "one alert per file version");

    // /files/{id} and /datasets show it.
    let http = penstock_tests::http::Http::new(fleet.api_addr().unwrap());
    let body = http.get(&format!("/files/{}", file.id)).await.json();
    assert_eq!(body["new_columns"], serde_json::json!(["Region", "Meter type"]));
    assert_eq!(body["absent_columns"], serde_json::json!(["note"]));
    let body = http.get("/datasets").await.json();
    let dataset = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "readings")
        .unwrap();
    assert_eq!(dataset["on_new_columns"], "alert");
    let note = dataset["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "note")
        .unwrap();
    assert_eq!(note["required"], false);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescue_keeps_every_rows_undeclared_values_in_the_jsonb_column_and_a_later_version_replaces_them() {
    let Drift { env, fleet, .. } = start("on_new_columns = \"rescue\"\nrescue_column = \"extra\"").await;
    env.drop_file("readings/a.csv", DRIFTED.as_bytes());
    env.wait_for_files(1, Duration::from_secs(60)).await;
    let rows = readings(&env).await;
    assert_eq!(
        rows[0].4,
        Some(serde_json::json!({"Region": "West", "Meter type": "smart"}))
    );
    assert_eq!(rows[1].4, None, "a row whose new columns are empty rescues nothing");
    // The next version of the file has the note, and one new column fewer.
    env.drop_file(
        "readings/a.csv",
        b"Meter,Day,kWh,Note,Region\nM1,2024-01-02,5,read twice,East\nM2,2024-01-02,8,,\n",
    );
    let files = env.wait_for_files(2, Duration::from_secs(60)).await;
    assert!(files.iter().all(|f| f.status == "done"), "{files:#?}");
    assert_eq!(
        readings(&env).await,
        vec![
            (
                "M1".into(),
                "2024-01-02".into(),
                Some(5),
                Some("read twice".into()),
                Some(serde_json::json!({"Region": "East"})),
                2
            ),
            ("M2".into(), "2024-01-02".into(), Some(8), None, None, 3),
        ]
    );
    let alerts = alerts(&env).await;
    assert!(
        !alerts.iter().any(|a| a.0.starts_with("new-columns:")),
        "rescue does not alert: {alerts:?}"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_rejects_a_file_with_new_columns_naming_them_and_loads_nothing() {
    let Drift { env, fleet, .. } = start("on_new_columns = \"reject\"").await;
    env.drop_file("readings/a.csv", DRIFTED.as_bytes());
    env.drop_file("readings/b.csv", b"Meter,Day,kWh\nM3,2024-01-03,1\n");
    let files = env.wait_for_files(2, Duration::from_secs(60)).await;
    let by_key = |key: &str| files.iter().find(|f| f.key == key).unwrap();
    let rejected = by_key("readings/a.csv");
    assert_eq!(rejected.status, "rejected", "{rejected:#?}");
    let reason = rejected.reason.as_deref().unwrap();
    assert!(reason.contains("\"Region\", \"Meter type\""), "{reason}");
    assert!(reason.contains("on_new_columns"), "{reason}");
    assert_eq!(
        by_key("readings/b.csv").status,
        "done",
        "a file without new columns loads"
    );
    let rows = readings(&env).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "M3");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_loads_a_drifted_file_silently_and_a_missing_required_column_still_rejects() {
    let Drift { env, fleet, .. } = start("on_new_columns = \"ignore\"").await;
    env.drop_file("readings/b.csv", DRIFTED.as_bytes());
    env.drop_file("readings/a.csv", b"Meter,Day,Note\nM1,2024-01-02,x\n");
    let files = env.wait_for_files(2, Duration::from_secs(60)).await;
    let by_key = |key: &str| files.iter().find(|f| f.key == key).unwrap();
    let drifted = by_key("readings/b.csv");
    assert_eq!(drifted.status, "done", "{drifted:#?}");
    assert_eq!(
        drifted.new_columns,
        vec!["Region", "Meter type"],
        "still on the file's record"
    );
    let rejected = by_key("readings/a.csv");
    assert_eq!(rejected.status, "rejected");
    assert!(
        rejected.reason.as_deref().unwrap().contains("lacks column(s) \"kWh\""),
        "{:?}",
        rejected.reason
    );
    // Both files' own alerts land; none is about new columns.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while env
        .scalar::<i64>("SELECT count(*) FROM outbox WHERE alerted_at IS NULL")
        .await
        > 0
    {
        assert!(std::time::Instant::now() < deadline, "the events were never alerted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alerts = alerts(&env).await;
    assert!(!alerts.iter().any(|a| a.0.starts_with("new-columns:")), "{alerts:?}");
    fleet.stop().await;
}
