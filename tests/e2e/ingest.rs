//! The ingest path on the local-folder store.

use std::time::Duration;

use penstock_fleet::Role;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::{TestEnv, real_egrid_file};

const WAIT: Duration = Duration::from_secs(90);
const KEY: &str = "egrid/generators/egrid2023_gen.csv";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_egrid_file_loads_with_exactly_the_values_it_states() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    let bytes = real_egrid_file();
    env.drop_file(KEY, &bytes);
    let files = env.wait_for_files(1, WAIT).await;
    fleet.stop().await;

    let file = &files[0];
    assert_eq!(file.status, "done", "{file:?}");
    assert_eq!(
        (
            file.records_total,
            file.rows_loaded,
            file.rows_quarantined,
            file.rows_superseded
        ),
        (Some(26_601), 26_599, 0, 2)
    );
    assert_eq!(file.chunks_done, file.chunks_total.unwrap());

    let table = env.egrid_table().await;
    let expected = egrid::expected(&bytes, file.id);
    assert_eq!(table.len(), 26_599);
    assert_eq!(
        table, expected,
        "table differs from an independent parse of the file (values or lineage)"
    );

    // The file's own quirks, spelled out.
    assert_eq!(
        env.scalar::<i64>("SELECT count(*) FROM egrid_generators WHERE net_generation_mwh IS NULL")
            .await,
        705
    );
    // 985 accounting negatives, four of which are " (0)".
    assert_eq!(
        env.scalar::<i64>("SELECT count(*) FROM egrid_generators WHERE net_generation_mwh < 0")
            .await,
        981
    );
    assert_eq!(
        env.scalar::<i64>("SELECT count(*) FROM egrid_generators WHERE plant_name LIKE '%,%'")
            .await,
        1_456
    );
    assert_eq!(
        env.scalar::<i64>("SELECT count(DISTINCT state) FROM egrid_generators")
            .await,
        52
    );
    let bess: String = env
        .scalar("SELECT net_generation_mwh::text FROM egrid_generators WHERE plant_name = 'Battery Energy Storage System' AND state = 'AK'")
        .await;
    assert_eq!(bess, "-2443");
    let allison: String = env
        .scalar("SELECT net_generation_mwh::text FROM egrid_generators WHERE plant_name = 'Allison Creek Hydro'")
        .await;
    assert_eq!(allison, "20961");
    // The two duplicated keys: the later line stands.
    let dup_lines: Vec<i64> = sqlx::query_scalar(
        "SELECT source_line FROM egrid_generators
         WHERE plant_name = 'Smithfield Packaged Meats Corp.' AND state = 'NC' AND generator_id IN ('1', '2')
         ORDER BY generator_id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let lines: Vec<usize> = String::from_utf8_lossy(&bytes)
        .split("\r\n")
        .enumerate()
        .filter(|(_, l)| {
            l.contains(",NC,Smithfield Packaged Meats Corp.,1,") || l.contains(",NC,Smithfield Packaged Meats Corp.,2,")
        })
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 4, "the file holds each of the two keys twice");
    assert_eq!(dup_lines, vec![lines[2] as i64, lines[3] as i64]);
    let ledger: i64 = env.scalar("SELECT sum(records)::bigint FROM ingest_chunks").await;
    assert_eq!(ledger, 26_601);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_identical_bytes_again_creates_no_new_version() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    let bytes = egrid::file(&[(2023, "TX", "Alpha", "1", "10")], &STANDARD_ORDER, "\r\n");
    env.drop_file("egrid/generators/a.csv", &bytes);
    env.wait_for_files(1, WAIT).await;
    // Same bytes again (a new inode and mtime), and the same bytes under another name is a
    // different object, so it is a version of its own.
    env.drop_file("egrid/generators/a.csv", &bytes);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let files = env.files().await;
    fleet.stop().await;
    assert_eq!(files.len(), 1, "{files:#?}");
    assert_eq!(env.scalar::<i64>("SELECT count(*) FROM egrid_generators").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_under_the_same_key_upserts_over_the_old_rows() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    let v1 = egrid::file(
        &[
            (2023, "TX", "Alpha", "1", "10"),
            (2023, "TX", "Beta", "1", "20"),
            (2023, "TX", "Gamma", "1", "30"),
        ],
        &STANDARD_ORDER,
        "\r\n",
    );
    env.drop_file("egrid/generators/tx.csv", &v1);
    env.wait_for_files(1, WAIT).await;
    let v2 = egrid::file(
        &[
            (2023, "TX", "Beta", "1", "(25)"),
            (2023, "TX", "Alpha", "1", "11"),
            (2023, "TX", "Delta", "1", ""),
        ],
        &STANDARD_ORDER,
        "\r\n",
    );
    env.drop_file("egrid/generators/tx.csv", &v2);
    let files = env.wait_for_files(2, WAIT).await;
    fleet.stop().await;
    assert!(files.iter().all(|f| f.status == "done"), "{files:#?}");

    let mut expected = egrid::expected(&v1, files[0].id);
    expected.extend(egrid::expected(&v2, files[1].id));
    assert_eq!(env.egrid_table().await, expected);
    let gamma: i64 = env
        .scalar("SELECT source_file_id FROM egrid_generators WHERE plant_name = 'Gamma'")
        .await;
    assert_eq!(
        gamma, files[0].id,
        "a row the new version does not mention keeps its old lineage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_in_another_order_with_lf_endings_and_a_bom_load_the_same_values() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    let rows = [
        (2022, "ca", "Plant, With Comma", "G 1", " (1,234.50)"),
        (2022, "CA", "Quote \"Q\" Plant", "2", "1,000,000.25"),
        (2022, "CA", "Blank", "3", " "),
    ];
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend(egrid::file(
        &rows,
        &["GENNTAN", "PNAME", "SEQGEN23", "GENID", "PSTATEABB", "YEAR"],
        "\n",
    ));
    env.drop_file("egrid/generators/2022/reordered.csv", &bytes);
    let files = env.wait_for_files(1, WAIT).await;
    fleet.stop().await;
    assert_eq!(files[0].status, "done", "{files:#?}");
    let table = env.egrid_table().await;
    assert_eq!(table, egrid::expected(&bytes[3..], files[0].id));
    let key = (
        2022,
        "CA".to_string(),
        "Plant, With Comma".to_string(),
        "G 1".to_string(),
    );
    assert_eq!(table[&key].0.as_deref(), Some("-1234.5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_quarantined_with_line_column_raw_and_reason_and_the_rest_loads() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    let mut bytes = egrid::file(
        &[
            (2023, "TX", "Good", "1", "5"),
            (2023, "TX", "Bad Number", "1", "12,34"),
            (2023, "TX", "Good Too", "1", "6"),
        ],
        &STANDARD_ORDER,
        "\r\n",
    );
    bytes.extend_from_slice(b"4,2023,TX,Too Many,1,7,extra\r\n5,twenty,TX,Bad Year,1,8\r\n");
    env.drop_file("egrid/generators/bad.csv", &bytes);
    let files = env.wait_for_files(1, WAIT).await;
    fleet.stop().await;
    let file = &files[0];
    assert_eq!(file.status, "done_with_errors");
    assert_eq!((file.rows_loaded, file.rows_quarantined), (2, 3));
    let errors: Vec<(i64, Option<String>, String, String)> =
        sqlx::query_as("SELECT line, column_name, raw, reason FROM ingest_errors ORDER BY line")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0].0, 4);
    assert_eq!(errors[0].1.as_deref(), Some("net_generation_mwh"));
    assert_eq!(errors[0].2, "2,2023,TX,Bad Number,1,\"12,34\"");
    assert!(errors[0].3.contains("thousands separators"), "{}", errors[0].3);
    assert_eq!((errors[1].0, errors[1].1.as_deref()), (6, None));
    assert!(errors[1].3.contains("expected 6 fields, found 7"), "{}", errors[1].3);
    assert_eq!((errors[2].0, errors[2].1.as_deref()), (7, Some("year")));
    assert!(
        errors[2].3.contains("\"twenty\" is not a whole number"),
        "{}",
        errors[2].3
    );
    // Every input row is either in the table or in the quarantine.
    let loaded: i64 = env.scalar("SELECT count(*) FROM egrid_generators").await;
    assert_eq!(loaded + errors.len() as i64, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_matching_no_dataset_are_ignored_and_listed_once() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    env.drop_file("elsewhere/notes.csv", b"a,b\n1,2\n");
    env.drop_file(
        "egrid/generators/ok.csv",
        &egrid::file(&[(2023, "TX", "A", "1", "1")], &STANDARD_ORDER, "\n"),
    );
    env.wait_for_files(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    fleet.stop().await;
    let ignored = penstock_db::ignored_objects(&env.pool).await.unwrap();
    assert_eq!(
        ignored.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        vec!["elsewhere/notes.csv"]
    );
    assert_eq!(env.files().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_still_being_written_is_not_picked_up_until_it_is_stable() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    let rows: Vec<(i32, String)> = (0..40).map(|i| (2023, format!("Plant {i}"))).collect();
    let gens: Vec<egrid::Gen<'_>> = rows.iter().map(|(y, p)| (*y, "TX", p.as_str(), "1", "1")).collect();
    let bytes = egrid::file(&gens, &STANDARD_ORDER, "\r\n");
    // Written in place (no rename), a piece every 80 ms: the listing keeps changing.
    let path = env.inbox.path().join("egrid/generators/slow.csv");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut written = 0;
    for piece in bytes.chunks(bytes.len() / 20 + 1) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(piece).unwrap();
        written += piece.len();
        tokio::time::sleep(Duration::from_millis(80)).await;
        if written < bytes.len() {
            assert!(env.files().await.is_empty(), "picked up a file still being written");
        }
    }
    let files = env.wait_for_files(1, WAIT).await;
    fleet.stop().await;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].rows_loaded, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_renamed_into_the_folder_is_picked_up_without_waiting_for_the_next_scan() {
    let env = TestEnv::new().await;
    // No listing for an hour after the first: only the folder's notifications can find it.
    let fleet = env
        .start(env.config(&[("PENSTOCK_SCAN_INTERVAL", "1h")]), &Role::ALL)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    env.drop_file(KEY, &real_egrid_file());
    let files = env.wait_for_files(1, Duration::from_secs(30)).await;
    fleet.stop().await;
    assert_eq!(files[0].status, "done", "{files:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "found by the notification, not by a scan an hour later"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_only_its_header_rows_is_done_with_nothing_loaded() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    env.drop_file("egrid/generators/empty.csv", &egrid::file(&[], &STANDARD_ORDER, "\r\n"));
    let files = env.wait_for_files(1, WAIT).await;
    fleet.stop().await;
    assert_eq!(
        (files[0].status.as_str(), files[0].chunks_total, files[0].records_total),
        ("done", Some(0), Some(0))
    );
    assert_eq!(files[0].rows_loaded, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_old_mac_cr_line_endings_loads_with_the_right_lines() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    let bytes = egrid::file(
        &[
            (2021, "WY", "Multi\rLine, Plant", "1", "3.25"),
            (2021, "WY", "Next", "2", " (0.5)"),
        ],
        &STANDARD_ORDER,
        "\r",
    );
    env.drop_file("egrid/generators/cr.csv", &bytes);
    let files = env.wait_for_files(1, WAIT).await;
    fleet.stop().await;
    assert_eq!(files[0].status, "done", "{files:#?}");
    let table = env.egrid_table().await;
    assert_eq!(table, egrid::expected(&bytes, files[0].id));
    let next = &table[&(2021, "WY".to_string(), "Next".to_string(), "2".to_string())];
    assert_eq!(
        (next.0.as_deref(), next.2),
        (Some("-0.5"), 5),
        "a quoted CR inside a field still counts as a line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverting_a_key_to_earlier_bytes_makes_them_the_latest_version_again() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    let a = egrid::file(&[(2019, "TX", "Plant A", "1", "100")], &STANDARD_ORDER, "\n");
    let b = egrid::file(&[(2019, "TX", "Plant A", "1", "111")], &STANDARD_ORDER, "\n");
    for (i, bytes) in [&a, &b, &a].into_iter().enumerate() {
        env.drop_file("egrid/generators/2019.csv", bytes);
        env.wait_for_files(i + 1, WAIT).await;
    }
    let files = env.files().await;
    fleet.stop().await;
    assert_eq!(files.len(), 3, "{files:#?}");
    assert_eq!(files[0].version, files[2].version);
    assert_eq!(env.egrid_table().await, egrid::expected(&a, files[2].id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_in_place_with_the_same_size_and_mtime_is_a_new_version() {
    let env = TestEnv::new().await;
    let fleet = env
        .start(env.config(&[]), &[Role::Scanner, Role::Chunker, Role::Database])
        .await;
    let v1 = egrid::file(&[(2023, "TX", "Alpha", "1", "10")], &STANDARD_ORDER, "\r\n");
    let v2 = egrid::file(&[(2023, "TX", "Alpha", "1", "12")], &STANDARD_ORDER, "\r\n");
    assert_eq!(v1.len(), v2.len());
    let key = "egrid/generators/tx.csv";
    env.drop_file(key, &v1);
    env.wait_for_files(1, WAIT).await;
    // Rewritten in place and its modification time put back, as `cp -p` or `rsync -a
    // --inplace` do: the same size, the same mtime, other bytes.
    let path = env.inbox.path().join(key);
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, &v2).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    let files = env.wait_for_files(2, WAIT).await;
    fleet.stop().await;
    assert!(files.iter().all(|f| f.status == "done"), "{files:#?}");
    assert_eq!(env.egrid_table().await, egrid::expected(&v2, files[1].id));
}
