//! The read API against its own OpenAPI document: schemathesis (installed by
//! `scripts/test-tools.sh`) reads /openapi.json, sends requests the document calls valid and
//! requests it calls invalid to every operation, and checks each response's status, content
//! type, headers and body against the document. The fleet holds the real eGRID file, a file
//! with quarantined rows and alerts in every state, so the data endpoints answer with rows.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::{TestEnv, repo_root};

const TOKEN: &str = "test-admin-token-0123456789";

/// Fixed, so a failure reproduces with the command line printed below.
const SEED: &str = "20260101";
/// Per operation and phase: the 17 operations take about 15 s on two cores.
const MAX_EXAMPLES: &str = "100";

/// The checks that apply to a read API with two authorised actions. Left out:
/// `use_after_free` and `ensure_resource_availability` (nothing is created or deleted),
/// `object_level_authorization` (one admin token, no per-user objects) and
/// `missing_required_header` (no required headers besides the token, which `ignored_auth`
/// covers).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection,\
positive_data_acceptance,ignored_auth,unsupported_method,allow_header_conformance";

/// The whole run is bounded; a hung run fails instead of holding CI.
const RUN_TIMEOUT: Duration = Duration::from_secs(100);

fn schemathesis() -> PathBuf {
    std::env::var_os("PENSTOCK_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".penstock/tools/venv/bin/schemathesis"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_response_conforms_to_the_openapi_document_and_invalid_requests_are_refused() {
    let bin = schemathesis();
    assert!(
        bin.is_file(),
        "schemathesis is not at {}: run `scripts/test-tools.sh` (`just test` does), \
         or set PENSTOCK_SCHEMATHESIS to a schemathesis binary",
        bin.display()
    );
    let env = TestEnv::new().await;
    let (fleet, _api) = env.loaded_with_real_egrid(&[("PENSTOCK_ADMIN_TOKEN", TOKEN)]).await;
    let bad = egrid::file(
        &[
            (2022, "TX", "Alpha", "G1", "1,000"),
            (2022, "TX", "Alpha", "G2", "lots"),
            (2022, "TX", "Beta", "G1", "12"),
        ],
        &STANDARD_ORDER,
        "\n",
    );
    env.drop_file("egrid/generators/bad2022.csv", &bad);
    let files = env.wait_for_files(2, Duration::from_secs(60)).await;
    assert!(files.iter().any(|f| f.status == "done_with_errors"), "{files:?}");
    // One alert per severity and status, so every filter of /alerts finds one and the
    // actions meet active, acknowledged and resolved alerts.
    sqlx::query(
        "INSERT INTO alerts (dedupe_key, severity, status, source, message, metadata)
         SELECT sev || '/' || st, sev, st, 'database', 'file 2 had quarantined rows', '{\"file_id\": 2}'
         FROM unnest(ARRAY['info', 'warning', 'error', 'critical']) AS sev,
              unnest(ARRAY['active', 'acknowledged', 'resolved']) AS st",
    )
    .execute(&env.pool)
    .await
    .unwrap();

    let addr = fleet.api_addr().unwrap();
    let hooks = repo_root().join("tests/e2e/api_conformance_hooks.py");
    let args = [
        "run".to_string(),
        format!("http://{addr}/openapi.json"),
        "--header".into(),
        format!("Authorization: Bearer {TOKEN}"),
        "--checks".into(),
        CHECKS.into(),
        "--seed".into(),
        SEED.into(),
        "--max-examples".into(),
        MAX_EXAMPLES.into(),
        // No example database: every run generates from the seed alone.
        "--generation-database".into(),
        "none".into(),
        "--request-timeout".into(),
        "10".into(),
        "--no-color".into(),
    ];
    // schemathesis keeps state (.hypothesis, .schemathesis) in its working folder.
    let workdir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = tokio::process::Command::new(&bin)
        .args(&args)
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .current_dir(workdir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran longer than {RUN_TIMEOUT:?}"))
        .expect("schemathesis starts");
    fleet.stop().await;

    let report = format!(
        "$ SCHEMATHESIS_HOOKS={} {} {}\n({}, after {:.1?})\n{}{}",
        hooks.display(),
        bin.display(),
        args.map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .join(" "),
        output.status,
        started.elapsed(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "schemathesis found responses that break the OpenAPI document:\n{report}"
    );
    println!("{report}");
}
