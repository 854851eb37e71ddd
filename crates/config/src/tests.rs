use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    // Point at the repository's config so tests do not depend on the working directory.
    env.entry("PENSTOCK_CONFIG".into())
        .or_insert_with(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/penstock.toml").into());
    env
}

#[test]
fn the_repository_defaults_load_with_the_egrid_dataset() {
    let config = load_from(&env(&[])).unwrap();
    assert_eq!(config.queue_prefix, "penstock");
    assert_eq!(config.scan_interval, Duration::from_secs(2));
    assert!(matches!(config.storage, StorageUrl::Local(ref p) if p.is_absolute()));
    let spec = config.dataset_for("egrid/generators/egrid2023_gen.csv").unwrap();
    assert_eq!(spec.name, "egrid_generators");
    assert!(config.dataset_for("other/file.csv").is_none());
}

#[test]
fn environment_variables_override_the_file() {
    let config = load_from(&env(&[
        ("PENSTOCK_SCAN_INTERVAL", "1s"),
        ("PENSTOCK_QUEUE_PREFIX", "fleet-b"),
        ("PENSTOCK_STORAGE_URL", "s3://drops/incoming/"),
    ]))
    .unwrap();
    assert_eq!(config.scan_interval, Duration::from_secs(1));
    assert_eq!(config.queue_prefix, "fleet-b");
    assert_eq!(
        config.storage,
        StorageUrl::S3 {
            bucket: "drops".into(),
            prefix: "incoming/".into()
        }
    );
}

#[test]
fn a_bad_duration_names_the_variable_and_the_fix() {
    let err = load_from(&env(&[("PENSTOCK_SCAN_INTERVAL", "soon")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("scan_interval (environment variable PENSTOCK_SCAN_INTERVAL)"),
        "{err}"
    );
    assert!(err.contains("use e.g."), "{err}");
}

#[test]
fn a_bad_database_url_is_refused() {
    let err = load_from(&env(&[("PENSTOCK_DATABASE_URL", "mysql://x")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("database_url") && err.contains("postgres://"), "{err}");
}

#[test]
fn an_unreadable_config_file_is_named() {
    let err = load_from(&env(&[("PENSTOCK_CONFIG", "/nonexistent/penstock.toml")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("PENSTOCK_CONFIG") && err.contains("/nonexistent/penstock.toml"),
        "{err}"
    );
}

#[test]
fn an_unknown_key_in_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("penstock.toml");
    std::fs::write(&path, "scan_intervall = \"1s\"\n").unwrap();
    let err = load_from(&env(&[("PENSTOCK_CONFIG", path.to_str().unwrap())]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("scan_intervall") && err.contains("known keys"), "{err}");
}

#[test]
fn a_key_the_file_leaves_out_takes_the_built_in_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("penstock.toml");
    std::fs::write(&path, "queue_prefix = \"mine\"\n").unwrap();
    let datasets = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/datasets");
    let config = load_from(&env(&[
        ("PENSTOCK_CONFIG", path.to_str().unwrap()),
        ("PENSTOCK_DATASETS_DIR", datasets),
    ]))
    .unwrap();
    assert_eq!(config.queue_prefix, "mine");
    assert_eq!(config.database_url, "postgres://postgres@127.0.0.1:5432/penstock");
    assert_eq!(config.api_addr, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(config.api_cache_ttl, Duration::from_secs(30));
}

#[test]
fn the_api_serves_nothing_when_its_address_is_empty_and_has_no_token_by_default() {
    let config = load_from(&env(&[("PENSTOCK_API_ADDR", "")])).unwrap();
    assert_eq!(config.api_addr, None);
    assert_eq!(config.admin_token, None);
    let err = load_from(&env(&[("PENSTOCK_API_ADDR", "localhost")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("api_addr") && err.contains("not an address"), "{err}");
}

#[test]
fn a_short_admin_token_is_refused_with_a_way_to_make_a_good_one() {
    let err = load_from(&env(&[("PENSTOCK_ADMIN_TOKEN", "secret")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("admin_token") && err.contains("openssl rand"), "{err}");
    let config = load_from(&env(&[("PENSTOCK_ADMIN_TOKEN", "0123456789abcdef0123")])).unwrap();
    assert_eq!(config.admin_token.as_deref(), Some("0123456789abcdef0123"));
}

#[test]
fn a_webhook_from_the_environment_needs_a_secret_and_a_known_severity() {
    let config = load_from(&env(&[
        ("PENSTOCK_WEBHOOK_URL", "http://127.0.0.1:9/hook"),
        ("PENSTOCK_WEBHOOK_SECRET", "s3cret"),
        ("PENSTOCK_WEBHOOK_MIN_SEVERITY", "warning"),
    ]))
    .unwrap();
    assert_eq!(config.webhooks[0].min_severity, penstock_core::event::Severity::Warning);
    let err = load_from(&env(&[("PENSTOCK_WEBHOOK_URL", "http://x/h")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs a secret"), "{err}");
    let err = load_from(&env(&[
        ("PENSTOCK_WEBHOOK_URL", "http://x/h"),
        ("PENSTOCK_WEBHOOK_SECRET", "s"),
        ("PENSTOCK_WEBHOOK_MIN_SEVERITY", "loud"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.contains("not one of info, warning, error, critical"), "{err}");
}

#[test]
fn storage_urls_parse_local_and_s3_forms() {
    assert_eq!(parse_storage("/srv/in").unwrap(), StorageUrl::Local("/srv/in".into()));
    assert_eq!(
        parse_storage("file:///srv/in").unwrap(),
        StorageUrl::Local("/srv/in".into())
    );
    assert_eq!(
        parse_storage("s3://b").unwrap(),
        StorageUrl::S3 {
            bucket: "b".into(),
            prefix: String::new()
        }
    );
    assert!(parse_storage("file://relative").is_err());
    assert!(parse_storage("gs://b").unwrap_err().contains("unsupported scheme"));
    assert!(parse_storage("s3:///x").is_err());
}

#[test]
fn several_broker_endpoints_come_as_a_list_in_the_file_or_comma_separated_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("penstock.toml");
    std::fs::write(
        &path,
        "amqp_url = [\"amqp://a:a@node1:5672/%2f\", \"amqp://a:a@node2:5672/%2f\"]\n",
    )
    .unwrap();
    let file = path.display().to_string();
    let datasets = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/datasets");
    let config = load_from(&env(&[("PENSTOCK_CONFIG", &file), ("PENSTOCK_DATASETS_DIR", datasets)])).unwrap();
    assert_eq!(
        config.amqp_urls,
        ["amqp://a:a@node1:5672/%2f", "amqp://a:a@node2:5672/%2f"]
    );
    let config = load_from(&env(&[(
        "PENSTOCK_AMQP_URL",
        "amqp://g:g@n1:5672/%2f, amqp://g:g@n2:5672/%2f,amqp://g:g@n3:5672/%2f",
    )]))
    .unwrap();
    assert_eq!(config.amqp_urls.len(), 3);
    assert_eq!(config.amqp_urls[1], "amqp://g:g@n2:5672/%2f");
    assert_eq!(
        load_from(&env(&[])).unwrap().amqp_urls.len(),
        1,
        "the default is one broker"
    );
}

#[test]
fn a_broker_list_with_a_blank_or_a_wrong_entry_is_refused_naming_the_key() {
    let err = load_from(&env(&[("PENSTOCK_AMQP_URL", "amqp://g:g@n1:5672/%2f,,")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("amqp_url") && err.contains("empty entry"), "{err}");
    let err = load_from(&env(&[("PENSTOCK_AMQP_URL", "amqp://g:g@n1:5672/%2f,http://n2")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("amqp_url") && err.contains("amqp://"), "{err}");
}

#[test]
fn the_quorum_group_size_is_left_to_the_broker_unless_set() {
    assert_eq!(load_from(&env(&[])).unwrap().quorum_group_size, None);
    let three = load_from(&env(&[("PENSTOCK_QUORUM_GROUP_SIZE", "3")])).unwrap();
    assert_eq!(three.quorum_group_size, Some(3));
    let zero = load_from(&env(&[("PENSTOCK_QUORUM_GROUP_SIZE", "0")])).unwrap();
    assert_eq!(zero.quorum_group_size, None, "0 means the broker's default");
    let err = load_from(&env(&[("PENSTOCK_QUORUM_GROUP_SIZE", "three")])).unwrap_err();
    assert!(err.to_string().contains("quorum_group_size"), "{err}");
}

#[test]
fn the_api_reads_from_the_database_unless_a_replica_url_is_given() {
    assert_eq!(load_from(&env(&[])).unwrap().api_database_url, None);
    let replica = load_from(&env(&[(
        "PENSTOCK_API_DATABASE_URL",
        "postgres://u@replica:5432/penstock",
    )]))
    .unwrap();
    assert_eq!(
        replica.api_database_url.as_deref(),
        Some("postgres://u@replica:5432/penstock")
    );
    let err = load_from(&env(&[("PENSTOCK_API_DATABASE_URL", "mysql://replica")])).unwrap_err();
    assert!(err.to_string().contains("api_database_url"), "{err}");
}

#[test]
fn a_dataset_keeps_to_database_url_unless_its_own_database_is_named() {
    let config = load_from(&env(&[])).unwrap();
    assert!(config.dataset_databases().is_empty());
    assert_eq!(
        dataset_database_variable("egrid_generators"),
        "PENSTOCK_DATABASE_URL_EGRID_GENERATORS"
    );
    let own = load_from(&env(&[(
        "PENSTOCK_DATABASE_URL_EGRID_GENERATORS",
        "postgres://u:secret@power:5432/egrid",
    )]))
    .unwrap();
    assert_eq!(
        own.dataset_databases(),
        vec![("egrid_generators", "postgres://u:secret@power:5432/egrid")]
    );
    let err = load_from(&env(&[(
        "PENSTOCK_DATABASE_URL_EGRID_GENERATORS",
        "mysql://u:secret@power/egrid",
    )]))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("egrid_generators") && err.contains("postgres://") && !err.contains("secret"),
        "{err}"
    );
}
