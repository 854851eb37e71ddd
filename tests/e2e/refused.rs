//! Rows PostgreSQL refuses (a CHECK the user added, a value too long for a `varchar(n)`, a
//! NULL in a NOT NULL column, a trigger that raises, another unique constraint) are
//! quarantined one by one with PostgreSQL's message; the rest of their chunk commits, exactly
//! once.

use std::time::Duration;

use penstock_db::{ChunkOutcome, LoadPath};
use penstock_fleet::Role;
use penstock_tests::egrid;
use penstock_tests::{TestEnv, real_egrid_file};

use crate::load_path::{file_version, generators, load, path_of};

/// The quarantine of a file: (line, column, raw, reason), by line.
async fn quarantine(env: &TestEnv, file_id: i64) -> Vec<(i64, Option<String>, String, String)> {
    sqlx::query_as("SELECT line, column_name, raw, reason FROM ingest_errors WHERE file_id = $1 ORDER BY line")
        .bind(file_id)
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

async fn execute(env: &TestEnv, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&env.pool)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_row_postgresql_refuses_is_quarantined_with_its_message_and_the_rest_of_the_chunk_commits_once() {
    let env = TestEnv::new().await;
    execute(
        &env,
        r#"
        ALTER TABLE egrid_generators ADD CONSTRAINT net_generation_not_negative CHECK (net_generation_mwh >= 0);
        ALTER TABLE egrid_generators ALTER COLUMN generator_id TYPE varchar(4);
        ALTER TABLE egrid_generators ALTER COLUMN net_generation_mwh SET NOT NULL;
        CREATE UNIQUE INDEX one_generator_per_plant ON egrid_generators (plant_name);
        CREATE FUNCTION refuse_zz() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.state = 'ZZ' THEN RAISE EXCEPTION 'ZZ is not a state'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_zz BEFORE INSERT OR UPDATE ON egrid_generators
            FOR EACH ROW EXECUTE FUNCTION refuse_zz();
        "#,
    )
    .await;
    let file = file_version(&env, "a").await;
    let records = [
        "1,2023,AK,Alpha,G1,10",
        "2,2023,AK,Beta,G1, (5)",
        "3,2023,AK,Gamma,GENERATOR-7,1",
        "4,2023,AK,Delta,G1,",
        "5,2023,ZZ,Epsilon,G1,3",
        "6,2023,AK,Alpha,G2,4",
        "7,2023,AK,Zeta,G1,7",
    ];
    let outcome = load(&env, file, &records).await;
    assert_eq!(path_of(&outcome), LoadPath::Isolated);
    let ChunkOutcome::Loaded {
        refused, rows_changed, ..
    } = outcome
    else {
        unreachable!()
    };
    assert_eq!((refused, rows_changed), (5, 2));
    assert_eq!(
        generators(&env).await,
        vec![
            ("Alpha".into(), Some("10".into()), file, 3),
            ("Zeta".into(), Some("7".into()), file, 9)
        ]
    );

    let quarantined = quarantine(&env, file).await;
    let lines: Vec<i64> = quarantined.iter().map(|q| q.0).collect();
    assert_eq!(lines, vec![4, 5, 6, 7, 8], "{quarantined:#?}");
    for (line, _, raw, reason) in &quarantined {
        assert_eq!(raw, records[*line as usize - 3], "the record as written");
        assert!(reason.starts_with("PostgreSQL refused the row (SQLSTATE "), "{reason}");
    }
    let reason = |line: usize| quarantined[line - 4].3.as_str();
    let column = |line: usize| quarantined[line - 4].1.as_deref();
    assert!(
        reason(4).contains("23514") && reason(4).contains("net_generation_not_negative"),
        "{}",
        reason(4)
    );
    assert!(
        reason(5).contains("22001") && reason(5).contains("value too long"),
        "{}",
        reason(5)
    );
    assert_eq!(column(5), Some("generator_id"));
    assert!(
        reason(6).contains("23502") && reason(6).contains("not-null"),
        "{}",
        reason(6)
    );
    assert_eq!(column(6), Some("net_generation_mwh"));
    assert!(
        reason(7).contains("P0001") && reason(7).contains("ZZ is not a state"),
        "{}",
        reason(7)
    );
    assert!(
        reason(8).contains("23505") && reason(8).contains("one_generator_per_plant"),
        "{}",
        reason(8)
    );

    let counts: (i64, i64) =
        sqlx::query_as("SELECT rows_loaded, rows_quarantined FROM ingest_chunks WHERE file_id = $1")
            .bind(file)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        counts,
        (2, 5),
        "the chunk's ledger row counts the refused rows as quarantined"
    );
    let file_counts: (i64, i64) =
        sqlx::query_as("SELECT rows_loaded, rows_quarantined FROM ingest_files WHERE id = $1")
            .bind(file)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(file_counts, (2, 5));

    // Exactly once: the same chunk again changes nothing and quarantines nothing twice.
    assert_eq!(load(&env, file, &records).await, ChunkOutcome::AlreadyLoaded);
    assert_eq!(quarantine(&env, file).await.len(), 5);
    assert_eq!(generators(&env).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_update_keeps_the_row_it_would_have_replaced_and_the_other_updates_land() {
    let env = TestEnv::new().await;
    let older = file_version(&env, "older").await;
    let newer = file_version(&env, "newer").await;
    load(&env, older, &["1,2023,AK,Alpha,G1,10", "2,2023,AK,Beta,G1,20"]).await;
    execute(
        &env,
        "ALTER TABLE egrid_generators ADD CONSTRAINT net_generation_not_negative CHECK (net_generation_mwh >= 0)",
    )
    .await;
    let outcome = load(&env, newer, &["1,2023,AK,Alpha,G1, (1)", "2,2023,AK,Beta,G1,21"]).await;
    assert_eq!(path_of(&outcome), LoadPath::Isolated);
    assert_eq!(
        generators(&env).await,
        vec![
            ("Alpha".into(), Some("10".into()), older, 3),
            ("Beta".into(), Some("21".into()), newer, 4)
        ]
    );
    let quarantined = quarantine(&env, newer).await;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(
        (quarantined[0].0, quarantined[0].2.as_str()),
        (3, "1,2023,AK,Alpha,G1, (1)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_file_under_a_check_it_partly_violates_loads_every_other_row_and_quarantines_the_rest() {
    let env = TestEnv::new().await;
    // The file's accounting negatives are real (storage, auxiliary load); a user who
    // forbids them still gets every other row.
    execute(
        &env,
        "ALTER TABLE egrid_generators ADD CONSTRAINT net_generation_not_negative CHECK (net_generation_mwh >= 0)",
    )
    .await;
    // Small chunks, so refusals fall in several of them.
    let fleet = env
        .start(env.config(&[("PENSTOCK_CHUNK_BYTES", "262144")]), &Role::ALL)
        .await;
    let bytes = real_egrid_file();
    env.drop_file("egrid/generators/egrid2023_gen.csv", &bytes);
    let files = env.wait_for_files(1, Duration::from_secs(180)).await;
    fleet.stop().await;

    let file = &files[0];
    let expected = egrid::expected(&bytes, file.id);
    let (kept, refused): (egrid::Table, egrid::Table) = expected
        .into_iter()
        .partition(|(_, (value, _, _))| !value.as_deref().is_some_and(|v| v.starts_with('-')));
    assert_eq!(refused.len(), 981);
    assert_eq!(file.status, "done_with_errors", "{file:?}");
    assert!(file.chunks_total.unwrap() > 1, "{file:?}");
    assert_eq!(
        (file.rows_loaded, file.rows_quarantined, file.rows_superseded),
        (26_599 - 981, 981, 2)
    );
    assert_eq!(env.egrid_table().await, kept, "every row the CHECK allows, exactly");

    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    let quarantined = quarantine(&env, file.id).await;
    let mut refused_lines: Vec<i64> = refused.values().map(|(_, _, line)| *line).collect();
    refused_lines.sort();
    assert_eq!(quarantined.iter().map(|q| q.0).collect::<Vec<_>>(), refused_lines);
    for (line, _, raw, reason) in &quarantined {
        assert_eq!(raw, lines[*line as usize - 1]);
        assert!(reason.contains("net_generation_not_negative"), "{reason}");
    }
    let ledger: (i64, i64) = sqlx::query_as(
        "SELECT sum(rows_loaded)::int8, sum(rows_quarantined)::int8 FROM ingest_chunks WHERE file_id = $1",
    )
    .bind(file.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(ledger, (file.rows_loaded, file.rows_quarantined));
}
