//! Whole-file rejections: nothing of the file is loaded, the reason names the problem.

use std::time::Duration;

use penstock_tests::TestEnv;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_workers::Role;

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
