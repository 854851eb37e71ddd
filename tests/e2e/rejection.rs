//! Whole-file rejections: nothing of the file is loaded, the reason names the problem.

use std::time::Duration;

use penstock_fleet::Role;
use penstock_tests::TestEnv;
use penstock_tests::egrid::{self, STANDARD_ORDER};

const WAIT: Duration = Duration::from_secs(90);

async fn reject(bytes: &[u8]) -> String {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &Role::ALL).await;
    env.drop_file("egrid/generators/bad.csv", bytes);
    let files = env.wait_for_files(1, WAIT).await;
    fleet.stop().await;
    assert_eq!(files[0].status, "rejected", "{files:#?}");
    assert_eq!(
        env.scalar::<i64>("SELECT count(*) FROM egrid_generators").await,
        0,
        "nothing loaded"
    );
    files[0].reason.clone().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_missing_a_mapped_column_is_rejected_naming_the_column_and_line() {
    let bytes = egrid::file(
        &[(2023, "TX", "A", "1", "1")],
        &["SEQGEN23", "YEAR", "PSTATEABB", "PNAME", "GENNTAN"],
        "\r\n",
    );
    let reason = reject(&bytes).await;
    assert!(
        reason.contains("header on line 2 lacks column(s) \"GENID\""),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_one_header_row_is_rejected_with_a_hint() {
    let full = egrid::file(
        &[(2023, "TX", "A", "1", "1"), (2023, "TX", "B", "1", "2")],
        &STANDARD_ORDER,
        "\n",
    );
    let text = String::from_utf8(full).unwrap();
    let one_header: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let reason = reject(one_header.as_bytes()).await;
    assert!(reason.contains("the column names are on line 1"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_rejects_the_file_naming_the_line() {
    let mut bytes = egrid::file(
        &[(2023, "TX", "A", "1", "1"), (2023, "TX", "B", "1", "2")],
        &STANDARD_ORDER,
        "\r\n",
    );
    bytes.extend_from_slice(b"3,2023,TX,Caf\xe9,1,3\r\n");
    let reason = reject(&bytes).await;
    assert!(reason.contains("line 5 is not valid UTF-8"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_is_rejected_as_empty() {
    let reason = reject(b"").await;
    assert!(reason.contains("empty"), "{reason}");
}

fn two_rows() -> Vec<u8> {
    egrid::file(
        &[(2023, "TX", "A", "1", "1"), (2023, "TX", "B", "1", "2")],
        &STANDARD_ORDER,
        "\r\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semicolon_delimited_file_is_rejected_with_a_delimiter_hint() {
    let text = String::from_utf8(two_rows()).unwrap().replace(',', ";");
    let reason = reject(text.as_bytes()).await;
    assert!(reason.contains("another delimiter"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_column_is_rejected() {
    let bytes = egrid::file(
        &[(2023, "TX", "A", "1", "1")],
        &["SEQGEN23", "YEAR", "PSTATEABB", "PNAME", "GENID", "GENNTAN", "YEAR"],
        "\n",
    );
    let reason = reject(&bytes).await;
    assert!(reason.contains("\"YEAR\" more than once (fields 2 and 7)"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_content_is_rejected_naming_the_line() {
    let mut bytes = two_rows();
    bytes.extend_from_slice(b"3,2023,TX,C\x00\x01\x02,1,3\r\n");
    let reason = reject(&bytes).await;
    assert!(reason.contains("line 5 holds a NUL byte"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unterminated_quote_is_rejected_naming_the_line() {
    let mut bytes = two_rows();
    bytes.extend_from_slice(b"3,2023,TX,\"Never closed,1,3\r\n4,2023,TX,D,1,4\r\n");
    let reason = reject(&bytes).await;
    assert!(reason.contains("opened on line 5 is never closed"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_over_the_size_limit_is_rejected() {
    let mut bytes = two_rows();
    bytes.extend_from_slice(format!("3,2023,TX,\"{}\",1,3\r\n", "x".repeat(1_100_000)).as_bytes());
    let reason = reject(&bytes).await;
    assert!(
        reason.contains("field 4 of the record on line 5 is 1100000 bytes, over the limit of 1048576"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_file_named_csv_is_rejected_as_compressed() {
    let reason = reject(&[0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 3, 1, 2, 3]).await;
    assert!(reason.contains("gzip-compressed"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_bad_row_limit_is_rejected_before_any_row_loads() {
    let env = TestEnv::new().await;
    let dir = penstock_tests::config_with_egrid_spec(|spec| {
        spec.replace("null_tokens = [\"\"]", "null_tokens = [\"\"]\nmax_bad_rows = 0.4")
    });
    let config = env.config(&[("PENSTOCK_CONFIG", dir.path().join("penstock.toml").to_str().unwrap())]);
    let fleet = env.start(config, &Role::ALL).await;
    let ok = egrid::file(
        &[
            (2023, "TX", "A", "1", "1"),
            (2023, "TX", "B", "1", "x"),
            (2023, "TX", "C", "1", "3"),
        ],
        &STANDARD_ORDER,
        "\n",
    );
    let bad = egrid::file(
        &[
            (2023, "TX", "A", "1", "1"),
            (2023, "TX", "B", "1", "x"),
            (2023, "TX", "C", "1", "y"),
        ],
        &STANDARD_ORDER,
        "\n",
    );
    env.drop_file("egrid/generators/ok.csv", &ok);
    env.drop_file("egrid/generators/bad.csv", &bad);
    let files = env.wait_for_files(2, WAIT).await;
    fleet.stop().await;
    let by_key = |k: &str| files.iter().find(|f| f.key.ends_with(k)).unwrap().clone();
    assert_eq!(
        by_key("ok.csv").status,
        "done_with_errors",
        "1 of 3 is under 40 %: {files:#?}"
    );
    assert_eq!(by_key("bad.csv").status, "rejected");
    let reason = by_key("bad.csv").reason.unwrap();
    assert!(
        reason.contains("2 of 3 data records (66.7 %) cannot be loaded, over the dataset's limit of 40.0 %"),
        "{reason}"
    );
    let loaded: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT source_file_id FROM egrid_generators")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(
        loaded,
        vec![by_key("ok.csv").id],
        "nothing of the rejected file is loaded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_blank_lines_is_rejected_naming_where_it_starts() {
    // Far more blank lines than any chunk may span (2 MiB chunks plus the widest record).
    let mut bytes = two_rows();
    bytes.extend(std::iter::repeat_n(b'\n', 48 << 20));
    bytes.extend_from_slice(b"3,2023,TX,Late,1,3\r\n");
    let reason = reject(&bytes).await;
    assert!(
        reason.contains("after the record on line 4 hold no record boundary: a run of blank lines"),
        "{reason}"
    );
}
