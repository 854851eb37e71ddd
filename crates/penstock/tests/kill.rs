//! kill -9: the fleet runs as a child process and is killed with SIGKILL at random moments
//! during a large ingest, several times, restarting it each time. The final table must equal
//! an independent parse of the file, the ledger must account for every record once, and no
//! quarantined row may be duplicated.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use penstock_tests::TestEnv;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use rand::Rng;

fn spawn(vars: &HashMap<String, String>) -> Child {
    Command::new(env!("CARGO_BIN_EXE_penstock"))
        .args(["run", "all"])
        .env_clear()
        .envs(vars)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("penstock starts")
}

const RECORDS: u32 = 150_000;

/// 150,000 generator records with the eGRID quirks, and every 500th record unloadable.
fn big_file() -> (Vec<u8>, Vec<String>) {
    let states = ["TX", "CA", "NC", "AK", "PR"];
    let mut owned: Vec<(i32, String, String, String, String)> = Vec::new();
    let mut bad = Vec::new();
    for i in 0..RECORDS {
        let plant = if i % 500 == 499 {
            format!("Bad, Plant {i}")
        } else {
            format!("Plant, No. {}", i / 3)
        };
        let mwh = match i % 11 {
            _ if i % 500 == 499 => {
                bad.push(plant.clone());
                "n/a".to_string()
            }
            0 => String::new(),
            1 => format!(" ({},{:03})", i % 97, i % 1000),
            2 => format!("{}.{}", i, i % 10),
            _ => format!("{},{:03}", i / 1000 + 1, i % 1000),
        };
        owned.push((2023, states[(i % 5) as usize].into(), plant, format!("G{}", i % 3), mwh));
    }
    let rows: Vec<egrid::Gen<'_>> = owned
        .iter()
        .map(|(y, s, p, g, m)| (*y, s.as_str(), p.as_str(), g.as_str(), m.as_str()))
        .collect();
    (egrid::file(&rows, &STANDARD_ORDER, "\r\n"), bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_fleet_with_sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let env = TestEnv::new().await;
    let vars = env.env(&[
        ("PENSTOCK_CHUNK_BYTES", "16384"),
        ("PENSTOCK_DATABASE_CONCURRENCY", "3"),
    ]);
    let (bytes, bad) = big_file();
    let mut fleet = spawn(&vars);
    env.drop_file("egrid/generators/big.csv", &bytes);
    let mut rng = rand::rng();
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..1200))).await;
        fleet.kill().unwrap(); // SIGKILL
        fleet.wait().unwrap();
        let progress = env.files().await;
        eprintln!(
            "round {round}: killed at {:?}",
            progress.first().map(|f| (&f.status, f.chunks_done, f.chunks_total))
        );
        fleet = spawn(&vars);
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    let file = loop {
        if let Some(f) = env.files().await.into_iter().next().filter(|f| f.is_terminal()) {
            break f;
        }
        assert!(Instant::now() < deadline, "never finished: {:#?}", env.files().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    fleet.kill().unwrap();
    fleet.wait().unwrap();

    assert_eq!(file.status, "done_with_errors", "{file:#?}");
    assert_eq!(
        env.files().await.len(),
        1,
        "one file version, however often the scanner restarted"
    );
    let mut expected = egrid::expected(&bytes, file.id);
    expected.retain(|k, _| !bad.contains(&k.2));
    assert_eq!(
        env.egrid_table().await,
        expected,
        "the table equals an uninterrupted load"
    );
    let records: i64 = env.scalar("SELECT sum(records)::bigint FROM ingest_chunks").await;
    assert_eq!(records, RECORDS as i64, "the ledger counts every record exactly once");
    assert_eq!(file.chunks_done, file.chunks_total.unwrap());
    let quarantined: i64 = env
        .scalar("SELECT count(*) FROM ingest_errors WHERE kind = 'row'")
        .await;
    let distinct: i64 = env
        .scalar("SELECT count(DISTINCT line) FROM ingest_errors WHERE kind = 'row'")
        .await;
    assert_eq!((quarantined, distinct), (bad.len() as i64, bad.len() as i64));
    assert_eq!(file.rows_quarantined, bad.len() as i64);
    assert_eq!(
        file.rows_loaded + file.rows_superseded + file.rows_quarantined,
        RECORDS as i64
    );
}
