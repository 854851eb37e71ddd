//! Datasets on their own databases (`database_url` in a spec): the dataset's table, file
//! versions, chunk ledger, quarantine and events live there; what belongs to no dataset
//! (ignored objects, alerts) stays in `database_url`. File ids are unique across both, so
//! the API, `penstock status` and replays find a file wherever it is.

use std::time::{Duration, Instant};

use penstock_db::{Databases, FileStatus, PgPool, SHARD_BITS};
use penstock_fleet::Role;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::http::Http;
use penstock_tests::{TestEnv, config_with_egrid_spec};

/// A configuration with the eGRID dataset at home and a second dataset, `elsewhere`, with the
/// same columns, under `elsewhere/`, in the database at `url`.
fn two_datasets(url: &str) -> tempfile::TempDir {
    let dir = config_with_egrid_spec(|spec| spec);
    let spec = std::fs::read_to_string(dir.path().join("datasets/egrid_generators.toml")).unwrap();
    let elsewhere = spec
        .replace(
            "name = \"egrid_generators\"",
            &format!("name = \"elsewhere\"\ndatabase_url = \"{url}\""),
        )
        .replace("key_prefix = \"egrid/generators/\"", "key_prefix = \"elsewhere/\"");
    assert_ne!(elsewhere, spec);
    std::fs::write(dir.path().join("datasets/elsewhere.toml"), elsewhere).unwrap();
    dir
}

async fn files_in(pool: &PgPool) -> Vec<FileStatus> {
    let mut files = penstock_db::all_files(pool).await.unwrap();
    files.reverse();
    files
}

async fn scalar(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_with_its_own_database_loads_there_and_is_listed_with_the_others() {
    let env = TestEnv::new().await;
    let (url, other) = env.second_database().await;
    let dir = two_datasets(&url);
    let config = env.config(&[
        (
            "PENSTOCK_CONFIG",
            &dir.path().join("penstock.toml").display().to_string(),
        ),
        (
            "PENSTOCK_DATASETS_DIR",
            &dir.path().join("datasets").display().to_string(),
        ),
        ("PENSTOCK_CHUNK_BYTES", "200"),
    ]);
    let fleet = env.start(config, &Role::ALL).await;
    let api = Http::new(fleet.api_addr().unwrap());
    let home_rows = [(2023, "TX", "Alpha", "1", "10"), (2023, "TX", "Beta", "1", "20")];
    let other_rows = [
        (2022, "OK", "Gamma", "1", "30"),
        (2022, "OK", "Delta", "1", "40"),
        (2022, "OK", "Gamma", "1", "31"),
    ];
    env.drop_file(
        "egrid/generators/home.csv",
        &egrid::file(&home_rows, &STANDARD_ORDER, "\n"),
    );
    env.drop_file("elsewhere/other.csv", &egrid::file(&other_rows, &STANDARD_ORDER, "\n"));
    env.drop_file("elsewhere/broken.csv", b"not,an\negrid,file\n");
    env.drop_file("nobody/notes.txt", b"matches no dataset");

    let deadline = Instant::now() + Duration::from_secs(90);
    let (home, there) = loop {
        let (home, there) = (files_in(&env.pool).await, files_in(&other).await);
        if home.len() == 1 && there.len() == 2 && home.iter().chain(&there).all(FileStatus::is_terminal) {
            break (home, there);
        }
        assert!(Instant::now() < deadline, "home: {home:#?}\nelsewhere: {there:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Each file version is in its dataset's database, numbered in that database's range.
    assert_eq!(
        (home[0].key.as_str(), home[0].status.as_str()),
        ("egrid/generators/home.csv", "done")
    );
    assert!(home[0].id < 1 << SHARD_BITS, "{home:#?}");
    let loaded = there.iter().find(|f| f.key == "elsewhere/other.csv").unwrap();
    let broken = there.iter().find(|f| f.key == "elsewhere/broken.csv").unwrap();
    assert_eq!((loaded.status.as_str(), broken.status.as_str()), ("done", "rejected"));
    assert!(there.iter().all(|f| f.id >> SHARD_BITS == 1), "{there:#?}");
    assert_eq!((loaded.rows_loaded, loaded.rows_superseded), (2, 1));

    // The rows are in the dataset's own table, and only there.
    let table = |pool: &PgPool| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (String, String, i64)>(
                "SELECT plant_name, net_generation_mwh::text, source_file_id FROM egrid_generators ORDER BY plant_name",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        table(&other).await,
        vec![
            ("Delta".into(), "40".into(), loaded.id),
            ("Gamma".into(), "31".into(), loaded.id)
        ]
    );
    let at_home = table(&env.pool).await;
    assert_eq!(at_home.len(), 2, "{at_home:?}");
    assert!(at_home.iter().all(|(_, _, file)| *file == home[0].id));
    // The ledger of each file is beside it.
    assert_eq!(scalar(&other, "SELECT count(*) FROM ingest_chunks").await, 1);
    assert_eq!(scalar(&env.pool, "SELECT count(*) FROM ingest_chunks").await, 1);
    assert_eq!(scalar(&other, "SELECT count(*) FROM ingest_ignored").await, 0);
    assert_eq!(scalar(&env.pool, "SELECT count(*) FROM ingest_ignored").await, 1);

    // The rejection's event went out from the dataset's outbox and raised its alert at home.
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(
        &other,
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL OR alerted_at IS NULL",
    )
    .await
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "the other database's events were not all alerted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alerts: Vec<String> = sqlx::query_scalar("SELECT message FROM alerts")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert!(alerts.iter().any(|m| m.contains("elsewhere/broken.csv")), "{alerts:#?}");
    assert_eq!(scalar(&other, "SELECT count(*) FROM alerts").await, 0);

    // The API lists every file, finds each by id, and counts each dataset where it is.
    let listed = api.get("/files").await.json();
    assert_eq!(listed["total"], 3, "{listed}");
    let ids: Vec<i64> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{listed}");
    let one = api.get(&format!("/files/{}", loaded.id)).await.json();
    assert_eq!(one["key"], "elsewhere/other.csv", "{one}");
    let only = api.get("/files?dataset=elsewhere").await.json();
    assert_eq!(only["total"], 2, "{only}");
    let errors = api.get(&format!("/files/{}/errors", broken.id)).await;
    assert_eq!(errors.status, 200);
    let datasets = api.get("/datasets").await.json();
    let count = |name: &str| {
        datasets["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .map(|d| d["rows_loaded"].as_i64().unwrap())
    };
    assert_eq!(
        (count("egrid_generators"), count("elsewhere")),
        (Some(2), Some(2)),
        "{datasets}"
    );
    // The read model is the eGRID dataset's: its plants are the home database's.
    let plants = api.get("/plants/search").await.json();
    assert_eq!(plants["total"], 2, "{plants}");
    fleet.stop().await;

    // Every file of both, as `penstock status` lists them.
    let dbs = Databases::connect(&env.database_url, &[("elsewhere", &url)], 2)
        .await
        .unwrap();
    assert_eq!(dbs.all_files().await.unwrap().len(), 3);
    // A dead item is recorded beside the file it names; one that names no file, at home.
    let dead = |message_id: &str, file_id: Option<i64>| penstock_db::DeadItem {
        message_id: message_id.into(),
        source_queue: Some("chunks".into()),
        reason: "test".into(),
        attempts: 5,
        file_id,
        raw: "{}".into(),
        item: None,
    };
    let recorded = dbs
        .record_dead_items(&[dead("dead-there", Some(loaded.id)), dead("dead-nowhere", None)])
        .await
        .unwrap();
    assert_eq!(recorded, 2);
    let where_dead = |pool: &PgPool| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (String, Option<i64>)>(
                "SELECT message_id, file_id FROM ingest_errors WHERE kind = 'dead_item' ORDER BY message_id",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(where_dead(&other).await, vec![("dead-there".into(), Some(loaded.id))]);
    assert_eq!(where_dead(&env.pool).await, vec![("dead-nowhere".into(), None)]);
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(dbs.for_file(loaded.id))
        .await
        .unwrap();
    assert_eq!(name, format!("{}_b", env.name));
    dbs.close().await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_database_that_already_holds_file_versions_is_refused_and_an_empty_one_is_numbered_anew() {
    let env = TestEnv::new().await;
    let (url, other) = env.second_database().await;
    sqlx::query(
        "INSERT INTO ingest_files (store, key, version, dataset, size_bytes) VALUES ('s', 'k', 'v', 'elsewhere', 1)",
    )
    .execute(&other)
    .await
    .unwrap();
    let refused = Databases::connect(&env.database_url, &[("elsewhere", &url)], 2)
        .await
        .err()
        .expect("refused");
    let message = refused.to_string();
    assert!(
        message.contains("database_url of dataset elsewhere") && message.contains("already holds 1 file versions"),
        "{message}"
    );
    // Once empty, and after serving as a database_url of its own (shard 0), it is given the
    // next shard, and its ids start in that range.
    sqlx::query("DELETE FROM ingest_files").execute(&other).await.unwrap();
    let alone = Databases::connect(&url, &[], 1).await.unwrap();
    assert_eq!(alone.all()[0].shard, 0);
    alone.close().await;
    let both = Databases::connect(&env.database_url, &[("elsewhere", &url)], 2)
        .await
        .unwrap();
    assert_eq!(both.all().iter().map(|d| d.shard).collect::<Vec<_>>(), vec![0, 1]);
    both.close().await;
    let next: i64 = sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('ingest_files', 'id'))")
        .fetch_one(&other)
        .await
        .unwrap();
    assert_eq!(next >> SHARD_BITS, 1, "{next}");

    // The same database under two names is one database, not two.
    let again = Databases::connect(
        &env.database_url,
        &[("elsewhere", &env.database_url.replace("127.0.0.1", "localhost"))],
        2,
    )
    .await
    .unwrap();
    assert_eq!(again.all().len(), 1);
    again.close().await;
    other.close().await;
}
