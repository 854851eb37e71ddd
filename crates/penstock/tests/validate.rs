//! `penstock validate` as a user runs it before a drop: its dry run must say exactly what a
//! real load of the same file then does, and refuse what the chunker would reject.

mod common;

use common::*;
use std::time::Duration;

use penstock_fleet::Role;
use penstock_tests::{TestEnv, real_egrid_file};

/// The real eGRID file with a bad value, a repeated key and a ragged record added.
fn flawed_egrid() -> Vec<u8> {
    let mut bytes = real_egrid_file();
    if !bytes.ends_with(b"\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"90001,2023,TX,Bad Number Plant,G1,twelve\r\n");
    bytes.extend_from_slice(b"90002,2023,AK,Alakanuk,UNIT4,\"1,000\"\r\n");
    bytes.extend_from_slice(b"90003,2023,TX,Short\r\n");
    bytes
}

fn report(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_predicts_what_loading_the_file_then_does_row_for_row_count() {
    let env = TestEnv::new().await;
    let folder = tempfile::tempdir().unwrap();
    let csv = folder.path().join("egrid2023_gen.csv");
    std::fs::write(&csv, flawed_egrid()).unwrap();
    let vars = env.env(&[]);
    let out = run(&vars, &["validate", csv.to_str().unwrap(), "--json", "--reasons", "5"]);
    assert!(out.status.success(), "{}", text(&out));
    let predicted = report(&out);
    assert_eq!(
        predicted["dataset"], "egrid_generators",
        "the only dataset whose header it fits"
    );
    assert_eq!(predicted["verdict"], "loads");
    let reasons: Vec<(u64, String)> = predicted["first_quarantined"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["line"].as_u64().unwrap(), q["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].1.contains("\"twelve\" is not a number"), "{reasons:?}");
    assert!(reasons[1].1.contains("expected 6 fields, found 4"), "{reasons:?}");
    // Nothing was touched.
    let files: i64 = env.scalar("SELECT count(*) FROM ingest_files").await;
    let rows: i64 = env.scalar("SELECT count(*) FROM egrid_generators").await;
    assert_eq!((files, rows), (0, 0));

    // The real load of the same bytes does what validate said.
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    env.drop_file("egrid/generators/egrid2023_gen.csv", &flawed_egrid());
    let files = env.wait_for_files(1, Duration::from_secs(120)).await;
    fleet.stop().await;
    let file = &files[0];
    assert_eq!(file.status, "done_with_errors");
    assert_eq!(
        (
            file.records_total.unwrap() as u64,
            file.rows_loaded as u64,
            file.rows_superseded as u64,
            file.rows_quarantined as u64
        ),
        (
            predicted["records"].as_u64().unwrap(),
            predicted["rows"].as_u64().unwrap(),
            predicted["superseded"].as_u64().unwrap(),
            predicted["quarantined"].as_u64().unwrap()
        ),
        "{predicted:#}"
    );
    let lines: Vec<i64> = sqlx::query_scalar("SELECT line FROM ingest_errors ORDER BY line")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(lines, reasons.iter().map(|r| r.0 as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn validate_exits_non_zero_with_the_reason_for_a_file_the_chunker_would_reject() {
    let env = TestEnv::new().await;
    let folder = tempfile::tempdir().unwrap();
    let csv = folder.path().join("bad.csv");
    std::fs::write(
        &csv,
        b"Desc\r\nSEQGEN23,YEAR,PSTATEABB,PNAME,GENID\r\n1,2023,AK,A,G\r\n",
    )
    .unwrap();
    let vars = env.env(&[]);
    let args = ["validate", csv.to_str().unwrap(), "--dataset", "egrid_generators"];
    let out = run(&vars, &args);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("REJECTED") && said.contains("lacks column(s) \"GENNTAN\""),
        "{said}"
    );
    assert!(stderr(&out).contains("would be rejected"), "{}", stderr(&out));

    // --json says the same for a script; --strict also fails a file that only quarantines.
    let out = run(&vars, &[&args[..], &["--json"]].concat());
    assert!(!out.status.success());
    assert_eq!(report(&out)["verdict"], "rejected");
    std::fs::write(&csv, b"Desc\r\nYEAR,PSTATEABB,PNAME,GENID,GENNTAN\r\n2023,AK,A,G,x\r\n").unwrap();
    assert!(run(&vars, &args).status.success(), "quarantining is not rejecting");
    assert!(!run(&vars, &[&args[..], &["--strict"]].concat()).status.success());

    let out = run(&vars, &["validate", csv.to_str().unwrap(), "--dataset", "nope"]);
    assert!(text(&out).contains("configured: egrid_generators"), "{}", text(&out));
}
