//! The load path's two ways in (COPY straight into the table for new keys, the staging merge
//! for keys that exist) and its cost: finishing a file touches rows in proportion to the
//! file, not to the table, as PostgreSQL's own counters tell.

use std::time::{Duration, Instant};

use penstock_core::header::HeaderMap;
use penstock_core::{ChunkItem, DatasetSpec, prepare_chunk};
use penstock_db::{ChunkOutcome, LoadPath, MergeSql};
use penstock_fleet::Role;
use penstock_tests::{TestEnv, repo_root};

const HEADER: &str = "Generator file sequence number,Data Year,Plant state abbreviation,Plant name,Generator ID,Generator annual net generation (MWh)\r\nSEQGEN23,YEAR,PSTATEABB,PNAME,GENID,GENNTAN\r\n";

pub(crate) fn egrid_spec() -> DatasetSpec {
    let path = repo_root().join("config/datasets/egrid_generators.toml");
    DatasetSpec::from_toml(&path.display().to_string(), &std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A file version in the ledger, for chunks to belong to.
pub(crate) async fn file_version(env: &TestEnv, name: &str) -> i64 {
    penstock_db::discover(&env.pool, "test", name, name, "egrid_generators", 1)
        .await
        .unwrap()
        .expect("a new version")
}

/// Loads `records` (data lines of an eGRID file, first on line 3) as chunk 0 of `file_id`.
pub(crate) async fn load(env: &TestEnv, file_id: i64, records: &[&str]) -> ChunkOutcome {
    try_load(env, file_id, records).await.unwrap()
}

/// [`load`], which may fail.
pub(crate) async fn try_load(
    env: &TestEnv,
    file_id: i64,
    records: &[&str],
) -> Result<ChunkOutcome, penstock_db::DbError> {
    let spec = egrid_spec();
    let body = records.iter().map(|r| format!("{r}\r\n")).collect::<String>();
    let header = HeaderMap {
        field_count: 6,
        columns: vec![1, 2, 3, 4, 5],
        new_columns: vec![],
    };
    let prepared = prepare_chunk(body.as_bytes(), &spec, &header, 3, file_id);
    assert!(prepared.quarantined.is_empty(), "{:?}", prepared.quarantined);
    let item = ChunkItem {
        v: 1,
        file_id,
        dataset: spec.name.clone(),
        key: format!("egrid/generators/{file_id}.csv"),
        version: file_id.to_string(),
        chunk: 0,
        chunks_total: 1,
        start: HEADER.len() as u64,
        end: (HEADER.len() + body.len()) as u64,
        first_line: 3,
        records: prepared.records,
        field_count: header.field_count,
        columns: header.columns.clone(),
        new_columns: vec![],
        sha256: String::new(),
    };
    penstock_db::load_chunk(&env.pool, &MergeSql::new(&spec), &item, &prepared, body.as_bytes()).await
}

pub(crate) fn path_of(outcome: &ChunkOutcome) -> LoadPath {
    match outcome {
        ChunkOutcome::Loaded { path, .. } => *path,
        ChunkOutcome::AlreadyLoaded => panic!("the chunk was loaded before"),
    }
}

/// Plant name → (net generation as text, source file id, source line), ordered by name.
pub(crate) async fn generators(env: &TestEnv) -> Vec<(String, Option<String>, i64, i64)> {
    sqlx::query_as(
        "SELECT plant_name, net_generation_mwh::text, source_file_id, source_line FROM egrid_generators ORDER BY plant_name",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_of_new_keys_is_copied_straight_into_the_table() {
    let env = TestEnv::new().await;
    let file = file_version(&env, "a").await;
    let outcome = load(&env, file, &["1,2023,AK,Alpha,G1,\"1,000\"", "2,2023,AK,Beta,G1, (5)"]).await;
    assert_eq!(path_of(&outcome), LoadPath::Direct);
    assert_eq!(
        generators(&env).await,
        vec![
            ("Alpha".into(), Some("1000".into()), file, 3),
            ("Beta".into(), Some("-5".into()), file, 4),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_that_meets_existing_keys_merges_and_the_later_version_wins_in_any_order() {
    let env = TestEnv::new().await;
    let (older, newer, newest) = (
        file_version(&env, "older").await,
        file_version(&env, "newer").await,
        file_version(&env, "newest").await,
    );
    // The newest version arrives first: its keys are new.
    let first = load(&env, newest, &["1,2023,AK,Alpha,G1,30"]).await;
    assert_eq!(path_of(&first), LoadPath::Direct);
    // An older version, processed later: Alpha exists (and stays the newest's), Beta is new;
    // in-chunk duplicates resolve to the last line.
    let second = load(
        &env,
        older,
        &["1,2023,AK,Alpha,G1,10", "2,2023,AK,Beta,G1,11", "3,2023,AK,Beta,G1,12"],
    )
    .await;
    assert_eq!(path_of(&second), LoadPath::Merged);
    let ChunkOutcome::Loaded { rows_changed, .. } = second else {
        unreachable!()
    };
    assert_eq!(rows_changed, 1, "only Beta is written");
    // A version between them: it replaces the older's Beta, not the newest's Alpha.
    let third = load(&env, newer, &["1,2023,AK,Beta,G1,20", "2,2023,AK,Alpha,G1,20"]).await;
    assert_eq!(path_of(&third), LoadPath::Merged);
    assert_eq!(
        generators(&env).await,
        vec![
            ("Alpha".into(), Some("30".into()), newest, 3),
            ("Beta".into(), Some("20".into()), newer, 3),
        ]
    );
    let superseded: i64 = sqlx::query_scalar("SELECT rows_superseded FROM ingest_files WHERE id = $1")
        .bind(older)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(superseded, 1, "the duplicate Beta line is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_loaded_twice_changes_nothing_the_second_time() {
    let env = TestEnv::new().await;
    let file = file_version(&env, "a").await;
    let records = ["1,2023,AK,Alpha,G1,1"];
    assert_eq!(path_of(&load(&env, file, &records).await), LoadPath::Direct);
    assert_eq!(load(&env, file, &records).await, ChunkOutcome::AlreadyLoaded);
    assert_eq!(generators(&env).await.len(), 1);
}

/// What PostgreSQL counted for the eGRID table: sequential scans, rows they read, rows
/// fetched through indexes, rows inserted, rows updated.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct TableCounters {
    seq_scan: i64,
    seq_tup_read: i64,
    idx_tup_fetch: i64,
    n_tup_ins: i64,
    n_tup_upd: i64,
}

async fn counters(env: &TestEnv) -> TableCounters {
    sqlx::query_as(
        "SELECT seq_scan, seq_tup_read, coalesce(idx_tup_fetch, 0) AS idx_tup_fetch, n_tup_ins, n_tup_upd
         FROM pg_stat_user_tables WHERE relid = 'egrid_generators'::regclass",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

/// Waits until the counters show at least `written` rows inserted or updated: a backend
/// reports its counts when it is idle or exits, not at once.
async fn counters_after(env: &TestEnv, written: i64) -> TableCounters {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = counters(env).await;
        if c.n_tup_ins + c.n_tup_upd >= written {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL never counted {written} rows written: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const TABLE_ROWS: i64 = 200_000;

/// Asserts that a load that wrote `file_rows` rows read and wrote in proportion to them.
fn assert_proportional(what: &str, before: TableCounters, after: TableCounters, file_rows: i64) {
    let read_seq = after.seq_tup_read - before.seq_tup_read;
    let fetched = after.idx_tup_fetch - before.idx_tup_fetch;
    let written = (after.n_tup_ins - before.n_tup_ins) + (after.n_tup_upd - before.n_tup_upd);
    // A handful of rows of slack per file row; a scan of the table is 200,000.
    let bound = 4 * file_rows + 100;
    assert_eq!(
        after.seq_scan, before.seq_scan,
        "{what}: no sequential scan of the table"
    );
    assert!(
        read_seq <= bound,
        "{what}: read {read_seq} rows by sequential scan for a {file_rows}-row file"
    );
    assert!(
        fetched <= bound,
        "{what}: fetched {fetched} rows through indexes for a {file_rows}-row file"
    );
    // Each row once, plus the re-load's first direct COPY attempt: COPY writes a batch of
    // rows before it checks their keys (at most one batch per file and process).
    assert!(
        written <= 2 * file_rows,
        "{what}: wrote {written} rows for a {file_rows}-row file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_a_small_file_on_a_large_table_touches_rows_in_proportion_to_the_file() {
    let env = TestEnv::new().await;
    // The table already holds 200,000 generators of another year; analyse it now so that
    // no background statistics pass runs during the load.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE egrid_generators SET (autovacuum_enabled = false);
         INSERT INTO egrid_generators (year, state, plant_name, generator_id, net_generation_mwh, source_file_id, source_line)
         SELECT 2001, 'TX', 'Plant ' || (n / 3), 'G' || (n % 3), n, 0, n + 3 FROM generate_series(1, {TABLE_ROWS}) n;
         ANALYZE egrid_generators;"
    )))
    .execute(&env.pool)
    .await
    .unwrap();
    let before = counters_after(&env, TABLE_ROWS).await;

    // A small file: new keys (the direct path), then the same bytes under another key
    // (every key exists: the merge path, lineage moves forward).
    let mut file = String::from(HEADER);
    let file_rows = 300;
    for n in 0..file_rows {
        file.push_str(&format!(
            "{n},2023,NM,\"Small, plant {}\",G{},\"{},{:03}\"\r\n",
            n / 2,
            n % 2,
            n + 1,
            n
        ));
    }
    let fleet = env
        .start(env.config(&[]), &[Role::Scanner, Role::Chunker, Role::Database])
        .await;
    env.drop_file("egrid/generators/small.csv", file.as_bytes());
    env.wait_for_files(1, Duration::from_secs(60)).await;
    env.drop_file("egrid/generators/small-again.csv", file.as_bytes());
    let files = env.wait_for_files(2, Duration::from_secs(60)).await;
    fleet.stop().await;
    assert!(files.iter().all(|f| f.status == "done"), "{files:#?}");
    assert!(files.iter().all(|f| f.rows_loaded == file_rows), "{files:#?}");

    let after = counters_after(&env, TABLE_ROWS + 2 * file_rows).await;
    assert_proportional("a new file and its re-load", before, after, 2 * file_rows);
    assert!(
        after.n_tup_upd - before.n_tup_upd <= file_rows,
        "the re-load updates each row once: {after:?}"
    );
    let moved: i64 = sqlx::query_scalar("SELECT count(*) FROM egrid_generators WHERE source_file_id = $1")
        .bind(files[1].id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(moved, file_rows, "the re-load moved every row's lineage forward");
}
