//! A table declared partitioned (`partition_by`): eGRID generators partitioned by year, a
//! partition per year and a DEFAULT one. `ON CONFLICT` reaches the partition that holds each
//! key, so loading, the lineage rule and exactly-once are the same as on a plain table.

use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::{TestEnv, config_with_egrid_spec};

use crate::order::load_newest_chunks_first;

const BY_YEAR: &str = "
CREATE TABLE egrid_by_year (
    year integer NOT NULL, state text NOT NULL, plant_name text NOT NULL, generator_id text NOT NULL,
    net_generation_mwh numeric,
    source_file_id bigint NOT NULL, source_line bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT egrid_by_year_key UNIQUE (year, state, plant_name, generator_id)
) PARTITION BY LIST (year);
CREATE TABLE egrid_by_year_2022 PARTITION OF egrid_by_year FOR VALUES IN (2022) WITH (fillfactor = 50);
CREATE TABLE egrid_by_year_2023 PARTITION OF egrid_by_year FOR VALUES IN (2023) WITH (fillfactor = 50);
CREATE TABLE egrid_by_year_default PARTITION OF egrid_by_year DEFAULT WITH (fillfactor = 50);
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_partitioned_by_year_loads_each_row_into_its_partition_with_the_later_version_winning_in_any_order() {
    let env = TestEnv::new().await;
    sqlx::raw_sql(BY_YEAR).execute(&env.pool).await.unwrap();
    let dir = config_with_egrid_spec(|spec| {
        spec.replace(
            "table = \"egrid_generators\"",
            "table = \"egrid_by_year\"\npartition_by = \"year\"",
        )
    });
    let config_path = dir.path().join("penstock.toml").display().to_string();
    let config = env.config(&[
        ("PENSTOCK_CONFIG", &config_path),
        (
            "PENSTOCK_DATASETS_DIR",
            &dir.path().join("datasets").display().to_string(),
        ),
        // One record per chunk, so one key lands in several chunks.
        ("PENSTOCK_CHUNK_BYTES", "1"),
        ("PENSTOCK_DATABASE_CONCURRENCY", "4"),
    ]);
    let v1 = egrid::file(
        &[
            (2022, "TX", "Alpha", "1", "1"),
            (2023, "TX", "Alpha", "1", "2"),
            (2021, "OK", "Gamma", "1", "3"),
            (2023, "TX", "Alpha", "1", "4"),
            (2022, "TX", "Beta", "1", "5"),
        ],
        &STANDARD_ORDER,
        "\r\n",
    );
    let v2 = egrid::file(
        &[(2023, "TX", "Alpha", "1", "100"), (2021, "OK", "Gamma", "1", "30")],
        &STANDARD_ORDER,
        "\r\n",
    );
    // Both files are chunked before any chunk loads, then loaded newest first.
    let files = load_newest_chunks_first(&env, config, &[("first.csv", &v1), ("second.csv", &v2)], 7).await;
    assert!(files.iter().all(|f| f.status == "done"), "{files:#?}");
    let (first, second) = (files[0].id, files[1].id);

    let table = env.egrid_table_named("egrid_by_year").await;
    let row = |year: i32, state: &str, plant: &str| {
        let (value, file, line) = &table[&(year, state.into(), plant.into(), "1".into())];
        (value.clone().unwrap(), *file, *line)
    };
    assert_eq!(table.len(), 4, "{table:#?}");
    assert_eq!(
        row(2023, "TX", "Alpha"),
        ("100".into(), second, 3),
        "the later version wins"
    );
    assert_eq!(
        row(2021, "OK", "Gamma"),
        ("30".into(), second, 4),
        "also in the DEFAULT partition"
    );
    assert_eq!(row(2022, "TX", "Alpha"), ("1".into(), first, 3));
    assert_eq!(row(2022, "TX", "Beta"), ("5".into(), first, 7));
    let placed: Vec<(String, i64)> =
        sqlx::query_as("SELECT tableoid::regclass::text, count(*) FROM egrid_by_year GROUP BY 1 ORDER BY 1")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        placed,
        [
            ("egrid_by_year_2022".to_string(), 2),
            ("egrid_by_year_2023".to_string(), 1),
            ("egrid_by_year_default".to_string(), 1)
        ]
    );
    let records: i64 = env.scalar("SELECT sum(records)::bigint FROM ingest_chunks").await;
    assert_eq!(records, 7, "each chunk recorded once");
}

#[tokio::test]
async fn the_start_up_check_refuses_a_spec_declaring_a_partitioned_table_that_is_not() {
    let env = TestEnv::new().await;
    let text = std::fs::read_to_string(penstock_tests::repo_root().join("config/datasets/egrid_generators.toml"))
        .unwrap()
        .replace("conflict_key =", "partition_by = \"year\"\nconflict_key =");
    let spec = penstock_core::DatasetSpec::from_toml("egrid_generators.toml", &text).unwrap();
    let err = penstock_db::check_spec(&env.pool, &spec).await.unwrap_err().to_string();
    assert!(err.contains("is not partitioned"), "{err}");
    assert!(err.contains("PARTITION BY LIST (year)"), "{err}");

    sqlx::raw_sql(BY_YEAR).execute(&env.pool).await.unwrap();
    sqlx::raw_sql("DROP TABLE egrid_by_year_default")
        .execute(&env.pool)
        .await
        .unwrap();
    let by_year = penstock_core::DatasetSpec::from_toml(
        "egrid_by_year.toml",
        &text.replace("table = \"egrid_generators\"", "table = \"egrid_by_year\""),
    )
    .unwrap();
    let warnings = penstock_db::check_spec(&env.pool, &by_year).await.unwrap();
    assert!(
        warnings.iter().any(|w| w.contains("no DEFAULT partition")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn the_partitioned_table_penstock_infer_proposes_for_a_large_file_is_created_and_passes_the_start_up_check() {
    let env = TestEnv::new().await;
    let mut csv = String::from("year,station,reading\n");
    for i in 0..50 {
        csv.push_str(&format!("2024,S{i},{}.5\n", i * 3));
    }
    let options = penstock_core::infer::InferOptions {
        name: "readings".into(),
        key_prefix: "readings/".into(),
        source: "readings.csv".into(),
        max_records: 1000,
        version: "20261207000000".into(),
        file_bytes: penstock_core::infer::PARTITION_PROPOSAL_BYTES,
    };
    let inferred = penstock_core::infer::infer(csv.as_bytes(), &options).unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(inferred.up_sql.clone()))
        .execute(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}:\n{}", inferred.up_sql));
    let spec = penstock_core::DatasetSpec::from_toml("readings.toml", &inferred.spec_toml).unwrap();
    let warnings = penstock_db::check_spec(&env.pool, &spec).await.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let partitions: i64 = env
        .scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass")
        .await;
    assert_eq!(partitions, 2, "2024 and DEFAULT");
}
