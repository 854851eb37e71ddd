//! `penstock infer` as a new user runs it: from an unknown CSV to a loaded table with
//! `penstock infer`, `penstock migrate` and a drop — checked on the real eGRID file against
//! the hand-written spec.

mod common;

use common::*;
use std::time::Duration;

use penstock_fleet::Role;
use penstock_tests::{TestEnv, real_egrid_file, repo_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_inferred_from_the_real_egrid_file_loads_it_exactly_like_the_hand_written_one() {
    let env = TestEnv::new().await;
    // A configuration folder of the user's own, holding the hand-written eGRID spec.
    let dir = penstock_tests::config_with_egrid_spec(|spec| spec);
    let config = dir.path().join("penstock.toml");
    let vars = env.env(&[("PENSTOCK_CONFIG", config.to_str().unwrap())]);
    let csv = repo_root().join("data/egrid/egrid2023_gen.csv");
    let infer = || {
        run(
            &vars,
            &[
                "infer",
                csv.to_str().unwrap(),
                "--name",
                "egrid_inferred",
                "--key-prefix",
                "inferred/",
            ],
        )
    };

    let out = infer();
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("conflict key: year, pstateabb, pname, genid"), "{said}");
    assert!(said.contains("penstock migrate"), "it says what to do next: {said}");
    let spec = std::fs::read_to_string(dir.path().join("datasets/egrid_inferred.toml")).unwrap();
    assert!(spec.contains("# Generator annual net generation (MWh)"), "{spec}");
    assert!(spec.contains("seqgen23 counts records one by one"), "{spec}");

    // Inferring again under the same name is refused rather than overwriting the spec.
    let again = infer();
    assert!(!again.status.success());
    assert!(text(&again).contains("--force"), "{}", text(&again));

    let out = run(&vars, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&vars, &["migrate"]);
    assert!(out.status.success(), "migrate stays idempotent: {}", text(&out));

    let config = penstock_config::load_from(&vars).unwrap();
    let fleet = env.start(config, &Role::ALL).await;
    let bytes = real_egrid_file();
    env.drop_file("egrid/generators/egrid2023_gen.csv", &bytes);
    env.drop_file("inferred/egrid2023_gen.csv", &bytes);
    let files = env.wait_for_files(2, Duration::from_secs(120)).await;
    fleet.stop().await;

    let counts = |key: &str| {
        let f = files.iter().find(|f| f.key == key).unwrap();
        (
            f.status,
            f.records_total,
            f.rows_loaded,
            f.rows_quarantined,
            f.rows_superseded,
        )
    };
    assert_eq!(
        counts("inferred/egrid2023_gen.csv"),
        counts("egrid/generators/egrid2023_gen.csv")
    );
    assert_eq!(counts("inferred/egrid2023_gen.csv").2, 26_599);

    // Row for row, value for value, line for line.
    let differ: i64 = env
        .scalar(
            "SELECT count(*) FROM (
                (SELECT year, state, plant_name, generator_id, net_generation_mwh, source_line FROM egrid_generators
                 EXCEPT SELECT year, pstateabb, pname, genid, genntan, source_line FROM egrid_inferred)
                UNION ALL
                (SELECT year, pstateabb, pname, genid, genntan, source_line FROM egrid_inferred
                 EXCEPT SELECT year, state, plant_name, generator_id, net_generation_mwh, source_line FROM egrid_generators)
             ) d",
        )
        .await;
    assert_eq!(differ, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_folder_without_a_config_infer_prints_for_a_script_and_writes_a_config_folder_when_asked() {
    let env = TestEnv::new().await;
    let folder = tempfile::tempdir().unwrap();
    let csv = folder.path().join("Meter Readings.csv");
    std::fs::write(
        &csv,
        "meter,read on,kwh\nM1,2024-01-02,\"85,463\"\nM2,2024-01-02,\"1,200\"\n",
    )
    .unwrap();
    // No PENSTOCK_CONFIG and no ./config/: penstock runs on its built-in configuration.
    let vars = env.env(&[("PENSTOCK_CONFIG", "")]);
    let infer = |extra: &[&str]| {
        let mut args = vec!["infer", csv.to_str().unwrap()];
        args.extend_from_slice(extra);
        penstock(&vars, &args).current_dir(folder.path()).output().unwrap()
    };

    // Standard output is a pipe here: the spec is printed, and nothing is written.
    let out = infer(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("name = \"meter_readings\""), "{printed}");
    assert!(printed.contains("CREATE TABLE meter_readings"), "{printed}");
    assert!(stderr(&out).contains("pass --write"), "{}", stderr(&out));
    assert!(!folder.path().join("config").exists());

    // --write starts ./config/ and says so; migrate and the config loader started here use it.
    let out = infer(&["--write"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    for made in [
        "created config/datasets/",
        "created config/migrations/",
        "created config/penstock.toml",
    ] {
        assert!(said.contains(made), "{said}");
    }
    let spec = std::fs::read_to_string(folder.path().join("config/datasets/meter_readings.toml")).unwrap();
    assert!(
        spec.contains("type = \"integer\"") && spec.contains("thousands = \",\""),
        "{spec}"
    );
    let out = penstock(&vars, &["migrate"])
        .current_dir(folder.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let kwh: String = env
        .scalar(
            "SELECT data_type::text FROM information_schema.columns WHERE table_name = 'meter_readings' AND column_name = 'kwh'",
        )
        .await;
    assert_eq!(kwh, "integer");

    // A second run finds the folder and does not write it again.
    let out = infer(&["--name", "meters_again"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("created config"), "{}", text(&out));
    assert!(folder.path().join("config/datasets/meters_again.toml").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infer_update_adds_a_files_new_columns_to_the_spec_and_the_table_and_they_load() {
    let env = TestEnv::new().await;
    let dir = penstock_tests::config_with_egrid_spec(|spec| spec);
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("datasets/meters.toml"),
        "name = \"meters\"\nkey_prefix = \"meters/\"\nconflict_key = [\"meter\"]\n\
         [[columns]]\nname = \"meter\"\nsource = \"Meter\"\ntype = \"text\"\nnullable = false\n",
    )
    .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE meters (meter text NOT NULL UNIQUE, source_file_id bigint NOT NULL,
         source_line bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let config = dir.path().join("penstock.toml");
    let vars = env.env(&[("PENSTOCK_CONFIG", config.to_str().unwrap())]);
    let csv = dir.path().join("meters_2024.csv");
    let bytes = b"Meter,Peak KW,Site\nM1,\"1,250\",North\nM2,17,\n";
    std::fs::write(&csv, bytes).unwrap();

    let out = run(&vars, &["infer", "--update", "meters", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("added 2 column(s)"), "{}", text(&out));
    let spec = std::fs::read_to_string(dir.path().join("datasets/meters.toml")).unwrap();
    assert!(
        spec.contains("name = \"peak_kw\"") && spec.contains("required = false"),
        "{spec}"
    );
    let out = run(&vars, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out));

    let config = penstock_config::load_from(&vars).unwrap();
    let fleet = env.start(config, &Role::ALL).await;
    env.drop_file("meters/meters_2024.csv", bytes);
    // An older file without the new columns loads too: they are optional.
    env.drop_file("meters/meters_2023.csv", b"Meter\nM0\n");
    let files = env.wait_for_files(2, Duration::from_secs(60)).await;
    fleet.stop().await;
    assert!(files.iter().all(|f| f.status == "done"), "{files:#?}");
    let rows: Vec<(String, Option<i32>, Option<String>)> =
        sqlx::query_as("SELECT meter, peak_kw, site FROM meters ORDER BY meter")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            ("M0".into(), None, None),
            ("M1".into(), Some(1250), Some("North".into())),
            ("M2".into(), Some(17), None),
        ]
    );

    // Run again on the same file: nothing left to add.
    let out = run(&vars, &["infer", "--update", "meters", csv.to_str().unwrap()]);
    assert!(text(&out).contains("nothing to add"), "{}", text(&out));
}
