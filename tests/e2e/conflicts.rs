//! Conflict policies (`on_conflict`): which row stands when a key meets itself again, the
//! history a recording dataset keeps, and the diff between two file versions.

use std::time::Duration;

use penstock_tests::config_with_egrid_spec;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::http::Http;

use crate::drift::{Drift, readings, start_with};
use crate::order::load_newest_chunks_first;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_lets_the_earliest_row_of_a_key_stand_whatever_order_the_chunks_load_in() {
    let env = penstock_tests::TestEnv::new().await;
    let dir = config_with_egrid_spec(|spec| spec.replace("conflict_key =", "on_conflict = \"keep\"\nconflict_key ="));
    let config_path = dir.path().join("penstock.toml").display().to_string();
    let config = env.config(&[
        ("PENSTOCK_CONFIG", &config_path),
        // One record per chunk, so one key lands in several chunks.
        ("PENSTOCK_CHUNK_BYTES", "1"),
        ("PENSTOCK_DATABASE_CONCURRENCY", "4"),
    ]);
    let v1 = egrid::file(
        &[
            (2022, "TX", "Alpha", "1", "1"),
            (2022, "TX", "Alpha", "1", "2"),
            (2023, "TX", "Beta", "1", "5"),
        ],
        &STANDARD_ORDER,
        "\r\n",
    );
    let v2 = egrid::file(
        &[(2022, "TX", "Alpha", "1", "100"), (2024, "OK", "Gamma", "1", "3")],
        &STANDARD_ORDER,
        "\r\n",
    );
    let files = load_newest_chunks_first(&env, config, &[("first.csv", &v1), ("second.csv", &v2)], 5).await;
    assert!(
        files.iter().all(|f| f.status == "done"),
        "kept rows are no errors: {files:#?}"
    );
    let (first, second) = (files[0].id, files[1].id);
    let table = env.egrid_table().await;
    let row = |year: i32, state: &str, plant: &str| {
        let (value, file, line) = &table[&(year, state.into(), plant.into(), "1".into())];
        (value.clone().unwrap(), *file, *line)
    };
    assert_eq!(table.len(), 3, "{table:#?}");
    assert_eq!(
        row(2022, "TX", "Alpha"),
        ("1".into(), first, 3),
        "the first line of the first version stands"
    );
    assert_eq!(row(2023, "TX", "Beta"), ("5".into(), first, 5));
    assert_eq!(row(2024, "OK", "Gamma"), ("3".into(), second, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_counts_the_rows_an_earlier_version_kept_out_as_kept_not_as_errors() {
    let Drift { env, fleet, .. } = start_with("on_conflict = \"keep\"", "").await;
    env.drop_file("readings/a.csv", b"Meter,Day,kWh\nM1,2024-01-02,1\nM2,2024-01-02,2\n");
    env.wait_for_files(1, Duration::from_secs(60)).await;
    env.drop_file("readings/a.csv", b"Meter,Day,kWh\nM1,2024-01-02,10\nM3,2024-01-02,3\n");
    let files = env.wait_for_files(2, Duration::from_secs(60)).await;
    let second = files.iter().max_by_key(|f| f.id).unwrap();
    assert_eq!(second.status, "done", "{second:#?}");
    assert_eq!(
        (second.rows_loaded, second.rows_kept, second.rows_quarantined),
        (1, 1, 0)
    );
    let kwh: Vec<Option<i32>> = readings(&env).await.into_iter().map(|r| r.2).collect();
    assert_eq!(kwh, vec![Some(1), Some(2), Some(3)]);
    fleet.stop().await;
}

const HISTORY: &str = "CREATE TRIGGER readings_history AFTER UPDATE ON readings
    FOR EACH ROW EXECUTE FUNCTION penstock_record_history('readings');";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_keeps_every_replaced_row_with_both_lineages_and_the_diff_shows_each_change() {
    let Drift { env, fleet, .. } = start_with("on_conflict = \"record\"", HISTORY).await;
    env.drop_file(
        "readings/a.csv",
        b"Meter,Day,kWh\nM1,2024-01-02,1\nM2,2024-01-02,2\nM3,2024-01-02,3\n",
    );
    let v1 = env.wait_for_files(1, Duration::from_secs(60)).await[0].id;
    env.drop_file(
        "readings/a.csv",
        b"Meter,Day,kWh\nM2,2024-01-02,2\nM1,2024-01-02,10\nM4,2024-01-02,4\n",
    );
    let files = env.wait_for_files(2, Duration::from_secs(60)).await;
    let v2 = files.iter().map(|f| f.id).max().unwrap();
    let history: Vec<(serde_json::Value, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT old_row - 'source_file_id' - 'source_line', old_file_id, old_line, new_file_id, new_line
           FROM row_history WHERE dataset = 'readings' ORDER BY old_line",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        history,
        vec![
            (
                serde_json::json!({"meter": "M1", "day": "2024-01-02", "kwh": 1, "note": null, "extra": null}),
                v1,
                2,
                v2,
                3
            ),
            (
                serde_json::json!({"meter": "M2", "day": "2024-01-02", "kwh": 2, "note": null, "extra": null}),
                v1,
                3,
                v2,
                2
            ),
        ],
        "both replaced rows, the unchanged one too: its lineage moved"
    );

    let http = Http::new(fleet.api_addr().unwrap());
    let diff = http.get(&format!("/files/{v2}/diff?against={v1}")).await.json();
    assert_eq!(diff["complete"], true, "{diff:#}");
    assert_eq!(
        (
            &diff["added_total"],
            &diff["changed_total"],
            &diff["absent_total"],
            &diff["unchanged"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(1)
        )
    );
    assert_eq!(
        diff["added"][0]["key"],
        serde_json::json!({"meter": "M4", "day": "2024-01-02"})
    );
    assert_eq!(diff["changed"][0]["key"]["meter"], "M1");
    assert_eq!(
        diff["changed"][0]["columns"],
        serde_json::json!({"kwh": {"old": 1, "new": 10}})
    );
    assert_eq!(diff["absent"][0]["key"]["meter"], "M3");
    assert_eq!(
        diff["absent"][0]["columns"]["kwh"],
        serde_json::json!({"old": 3, "new": null})
    );

    // An unknown side is a 404, a missing one a 400 naming the parameter.
    let other = http.get(&format!("/files/{v2}/diff?against=999999")).await;
    assert_eq!(other.status, 404, "{}", other.text);
    let missing = http.get(&format!("/files/{v2}/diff")).await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert!(missing.text.contains("against is required"), "{}", missing.text);
    fleet.stop().await;
}

/// Loads two versions of `readings/a.csv` under `policy`, one after the other, and returns
/// the API's diff from the first to the second.
async fn diff_of_two_versions(policy: &str, first: &[u8], second: &[u8]) -> serde_json::Value {
    let Drift { env, fleet, .. } = start_with(policy, "").await;
    env.drop_file("readings/a.csv", first);
    let v1 = env.wait_for_files(1, Duration::from_secs(60)).await[0].id;
    env.drop_file("readings/a.csv", second);
    let files = env.wait_for_files(2, Duration::from_secs(60)).await;
    let v2 = files.iter().map(|f| f.id).max().unwrap();
    let http = Http::new(fleet.api_addr().unwrap());
    let diff = http.get(&format!("/files/{v2}/diff?against={v1}")).await.json();
    fleet.stop().await;
    diff
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_update_a_diff_with_a_replaced_version_says_it_is_incomplete() {
    let diff = diff_of_two_versions(
        "",
        b"Meter,Day,kWh\nM1,2024-01-02,1\n",
        b"Meter,Day,kWh\nM1,2024-01-02,2\n",
    )
    .await;
    assert_eq!(diff["complete"], false, "{diff:#}");
    assert!(
        diff["note"].as_str().unwrap().contains("on_conflict = \"record\""),
        "{diff:#}"
    );
}

#[tokio::test]
async fn a_recording_dataset_whose_table_lacks_the_history_trigger_is_refused_with_the_sql() {
    let env = penstock_tests::TestEnv::new().await;
    let text = std::fs::read_to_string(penstock_tests::repo_root().join("config/datasets/egrid_generators.toml"))
        .unwrap()
        .replace("conflict_key =", "on_conflict = \"record\"\nconflict_key =");
    let spec = penstock_core::DatasetSpec::from_toml("egrid_generators.toml", &text).unwrap();
    let err = penstock_db::check_spec(&env.pool, &spec).await.unwrap_err().to_string();
    assert!(
        err.contains("FOR EACH ROW EXECUTE FUNCTION penstock_record_history('egrid_generators')"),
        "{err}"
    );
    sqlx::raw_sql(penstock_tests::EGRID_HISTORY_TRIGGER)
        .execute(&env.pool)
        .await
        .unwrap();
    penstock_db::check_spec(&env.pool, &spec).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_keeps_an_older_versions_row_that_loaded_after_the_newer_one_and_the_diff_stays_complete() {
    let env = penstock_tests::TestEnv::new().await;
    sqlx::raw_sql(penstock_tests::EGRID_HISTORY_TRIGGER)
        .execute(&env.pool)
        .await
        .unwrap();
    let dir = config_with_egrid_spec(|spec| spec.replace("conflict_key =", "on_conflict = \"record\"\nconflict_key ="));
    let config_path = dir.path().join("penstock.toml").display().to_string();
    let config = env.config(&[("PENSTOCK_CONFIG", &config_path), ("PENSTOCK_CHUNK_BYTES", "1")]);
    let v1 = egrid::file(&[(2022, "TX", "Alpha", "1", "1")], &STANDARD_ORDER, "\r\n");
    let v2 = egrid::file(&[(2022, "TX", "Alpha", "1", "2")], &STANDARD_ORDER, "\r\n");
    // The newer version's chunk loads first: the older row never enters the table.
    let files = load_newest_chunks_first(&env, config.clone(), &[("a.csv", &v1), ("b.csv", &v2)], 2).await;
    let (first, second) = (files[0].id.min(files[1].id), files[0].id.max(files[1].id));
    let history: Vec<(i64, i64, serde_json::Value)> =
        sqlx::query_as("SELECT old_file_id, new_file_id, old_row->'net_generation_mwh' FROM row_history")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(history, vec![(first, second, serde_json::json!(1))]);
    let spec = config.dataset("egrid_generators").unwrap();
    let diff = penstock_db::read::diff(&env.pool, spec, first, second, 10)
        .await
        .unwrap();
    assert!(diff.complete, "{diff:?}");
    assert_eq!((diff.changed_total, diff.added_total, diff.absent_total), (1, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_keep_a_diff_with_rows_kept_out_says_it_is_incomplete() {
    let diff = diff_of_two_versions(
        "on_conflict = \"keep\"",
        b"Meter,Day,kWh\nM1,2024-01-02,1\n",
        b"Meter,Day,kWh\nM1,2024-01-02,2\nM2,2024-01-02,3\n",
    )
    .await;
    assert_eq!(diff["complete"], false, "{diff:#}");
}
