//! The same flow through a real S3 API (s3s-fs, in process), configured the way a user
//! configures MinIO: `s3://bucket/prefix` plus the standard AWS variables.

use std::time::Duration;

use penstock_fleet::Role;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::s3::S3Server;
use penstock_tests::{TestEnv, real_egrid_file};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_file_loads_through_an_s3_bucket_and_versions_follow_etags() {
    let env = TestEnv::new().await;
    let s3 = S3Server::start("drops").await;
    let mut settings = vec![
        ("PENSTOCK_STORAGE_URL", "s3://drops/incoming"),
        ("PENSTOCK_CHUNK_BYTES", "200000"),
    ];
    settings.extend(s3.env());
    let config = env.config(&settings);
    let fleet = env.start(config, &Role::ALL).await;
    let bytes = real_egrid_file();
    s3.put("drops", "incoming/egrid/generators/egrid2023_gen.csv", bytes.clone())
        .await;
    s3.put("drops", "incoming/unrelated/readme.txt", b"hello".to_vec())
        .await;
    s3.put("drops", "outside-the-prefix/egrid/generators/x.csv", bytes.clone())
        .await;
    let files = env.wait_for_files(1, WAIT).await;
    assert_eq!(files[0].status, "done", "{files:#?}");
    assert!(files[0].chunks_total.unwrap() > 1, "ranged reads of several chunks");
    assert!(files[0].version.starts_with("etag:"), "{}", files[0].version);
    assert_eq!(files[0].store, "s3://drops/incoming");
    assert_eq!(env.egrid_table().await, egrid::expected(&bytes, files[0].id));

    // Re-uploading identical bytes keeps the ETag: no new version.
    s3.put("drops", "incoming/egrid/generators/egrid2023_gen.csv", bytes.clone())
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.files().await.len(), 1);

    // Changed bytes under the same key: a new version that upserts over the old rows.
    let v2 = egrid::file(&[(2023, "AK", "Alakanuk", "UNIT4", "1,234")], &STANDARD_ORDER, "\r\n");
    s3.put("drops", "incoming/egrid/generators/egrid2023_gen.csv", v2.clone())
        .await;
    let files = env.wait_for_files(2, WAIT).await;
    fleet.stop().await;
    assert_eq!(files[1].status, "done", "{files:#?}");
    let mut expected = egrid::expected(&bytes, files[0].id);
    expected.extend(egrid::expected(&v2, files[1].id));
    assert_eq!(env.egrid_table().await, expected);
    let ignored = penstock_db::ignored_objects(&env.pool).await.unwrap();
    assert_eq!(
        ignored.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        vec!["unrelated/readme.txt"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_climbs_out_of_the_prefix_is_refused_before_any_request() {
    let s3 = S3Server::start("drops").await;
    s3.put("drops", "secret.csv", b"password\n".to_vec()).await;
    let store = penstock_storage::S3Store::with_client(s3.client().await, "drops".into(), "incoming/".into());
    use penstock_storage::{ObjectStore, StorageError};
    for key in ["../secret.csv", "egrid/../../secret.csv", "/secret.csv", "a\0b"] {
        let err = store.read_range(key, 0, 4).await.unwrap_err();
        assert!(matches!(err, StorageError::Refused { .. }), "{key:?}: {err}");
        assert!(
            matches!(store.open(key).await, Err(StorageError::Refused { .. })),
            "{key:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_a_planned_version_are_refused_once_the_object_has_other_bytes() {
    use penstock_storage::{ObjectMeta, ObjectStore};
    use tokio::io::AsyncReadExt;
    let s3 = S3Server::start("drops").await;
    s3.put("drops", "incoming/a.csv", b"first,bytes\n".to_vec()).await;
    let store = penstock_storage::S3Store::with_client(s3.client().await, "drops".into(), "incoming/".into());
    let meta = ObjectMeta {
        key: "a.csv".into(),
        size: 12,
        modified: None,
        etag: None,
        change: None,
    };
    let version = store.version(&meta).await.unwrap();
    assert_eq!(
        &store.read_range_of("a.csv", &version, 0, 5).await.unwrap()[..],
        b"first"
    );
    let mut whole = String::new();
    let mut reader = store.open_version("a.csv", &version).await.unwrap();
    reader.read_to_string(&mut whole).await.unwrap();
    assert_eq!(whole, "first,bytes\n");

    // Overwritten with other bytes of the same size: the planned version is gone.
    s3.put("drops", "incoming/a.csv", b"other,bytes\n".to_vec()).await;
    let err = store.read_range_of("a.csv", &version, 0, 5).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(
        err.to_string().contains("the object changed after it was discovered"),
        "{err}"
    );
    assert!(store.open_version("a.csv", &version).await.is_err());
    // Unconditional reads still see the new bytes.
    assert_eq!(&store.read_range("a.csv", 0, 5).await.unwrap()[..], b"other");
}
