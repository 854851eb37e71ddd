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
