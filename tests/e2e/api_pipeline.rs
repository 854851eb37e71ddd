//! The read API's pipeline endpoints (files, quarantined rows, alerts, datasets), parameter
//! validation, alert authorisation, caching and readiness — against the real services.

use std::time::Duration;

use penstock_fleet::Role;
use penstock_tests::TestEnv;
use penstock_tests::egrid::{self, STANDARD_ORDER};
use penstock_tests::http::Http;
use penstock_tests::proxy::Proxy;
use serde_json::json;

const TOKEN: &str = "test-admin-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_get_a_400_that_names_the_parameter_and_never_a_500() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &[Role::Api]).await;
    let api = Http::new(fleet.api_addr().unwrap());
    let cases = [
        ("/plants/top?year=abc", 400, "year must be an integer from 1990 to 2100"),
        (
            "/plants/top?year=1800",
            400,
            "year must be an integer from 1990 to 2100",
        ),
        (
            "/plants/top?limit=-1",
            400,
            "limit must be an integer from 1 to 100, got \"-1\"",
        ),
        ("/plants/top?limit=0", 400, "limit must be an integer from 1 to 100"),
        ("/plants/top?limit=101", 400, "limit must be an integer from 1 to 100"),
        (
            "/plants/top?limt=5",
            400,
            "unknown parameter \"limt\"; allowed: year, state, limit",
        ),
        ("/plants/top?state=Texas", 400, "state must be a two-letter code"),
        ("/plants/top?year=2023&year=2022", 400, "given more than once"),
        (
            "/plants/search?per_page=100000",
            400,
            "per_page must be an integer from 1 to 100",
        ),
        ("/plants/search?page=0", 400, "page must be an integer from 1 to 10000"),
        (
            "/plants/search?sort=password",
            400,
            "sort must be one of net_generation_mwh, plant_name",
        ),
        (
            "/plants/search?sort=plant_name%3BDROP%20TABLE%20x",
            400,
            "sort must be one of",
        ),
        ("/plants/search?order=sideways", 400, "order must be one of asc, desc"),
        (
            "/plants/search?q=a%00b",
            400,
            "q must be 1 to 100 characters without NUL bytes",
        ),
        (
            "/plants/search?min_mwh=10&max_mwh=1",
            400,
            "min_mwh (10) is greater than max_mwh (1)",
        ),
        ("/plants/search?min_mwh=lots", 400, "min_mwh must be a number"),
        ("/plants/years?year=2023", 400, "this endpoint takes no parameters"),
        ("/plants/abc", 400, "plant id must be an integer"),
        ("/plants/-1", 400, "plant id must be an integer"),
        ("/plants/12345", 404, "no plant has id 12345"),
        (
            "/plants/chart/pie",
            404,
            "no chart \"pie\"; use one of by-state, by-year, top-plants",
        ),
        ("/files?status=lost", 400, "status must be one of discovered, chunking"),
        ("/files?dataset=nope", 400, "dataset must be one of egrid_generators"),
        ("/files/1.5", 400, "file id must be an integer"),
        ("/files/99", 404, "no file has id 99"),
        ("/files/99/errors", 404, "no file has id 99"),
        (
            "/alerts?severity=loud",
            400,
            "severity must be one of info, warning, error, critical",
        ),
        ("/nowhere", 404, "no route GET /nowhere"),
        // Path segments that are not UTF-8, and known paths with the wrong method, are JSON
        // errors too (axum's own answers were plain text and empty).
        ("/files/%FF", 400, "path parameter id must be UTF-8 text"),
        ("/plants/chart/%FF", 400, "path parameter chart must be UTF-8 text"),
        (
            "/alerts/1/resolve",
            405,
            "GET is not served on /alerts/1/resolve; the Allow header lists",
        ),
    ];
    for (path, status, detail) in cases {
        let reply = api.get(path).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text);
        assert_eq!(reply.header("content-type"), Some("application/json"), "{path}");
        let body = reply.json();
        assert!(body["error"].is_string(), "{path}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(detail),
            "{path}: expected {detail:?} in {body}"
        );
    }

    // SQL-looking input is only ever data.
    let reply = api
        .get("/plants/search?q=x%27%3B%20DROP%20TABLE%20egrid_generators%3B--")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["total"], 0);
    let reply = api.get("/plants/search?q=%27%20OR%20%271%27%3D%271").await;
    assert_eq!(reply.json()["total"], 0);
    let exists: bool = env.scalar("SELECT to_regclass('egrid_generators') IS NOT NULL").await;
    assert!(exists);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_show_status_progress_counts_and_their_quarantined_rows() {
    let env = TestEnv::new().await;
    let (fleet, api) = env.loaded_with_real_egrid(&[]).await;
    let bad = egrid::file(
        &[
            (2022, "TX", "Alpha", "G1", "1,000"),
            (2022, "TX", "Alpha", "G2", "lots"),
            (2022, "TX", "Beta", "G1", "12"),
            (2022, "TX", "Beta", "G2", "1.2.3"),
        ],
        &STANDARD_ORDER,
        "\n",
    );
    env.drop_file("egrid/generators/bad2022.csv", &bad);
    let files = env.wait_for_files(2, Duration::from_secs(60)).await;
    let bad_file = files.iter().find(|f| f.key.ends_with("bad2022.csv")).unwrap();
    assert_eq!(bad_file.status, "done_with_errors");

    let list = api.get("/files").await.json();
    assert_eq!(list["total"], 2);
    assert_eq!(list["data"][0]["id"], bad_file.id, "newest first");
    let list = api.get("/files?status=done&dataset=egrid_generators").await.json();
    assert_eq!(list["total"], 1);
    assert_eq!(list["data"][0]["key"], "egrid/generators/egrid2023_gen.csv");
    let paged = api.get("/files?per_page=1&page=2").await.json();
    assert_eq!(paged["data"].as_array().unwrap().len(), 1);
    assert_eq!(paged["data"][0]["id"], files[0].id);

    let file = api.get(&format!("/files/{}", files[0].id)).await.json();
    assert_eq!(file["status"], "done");
    assert_eq!(file["progress"], 1.0);
    assert_eq!(file["records_total"], 26_601);
    assert_eq!(file["rows_loaded"], 26_599);
    assert_eq!(file["rows_superseded"], 2);
    assert_eq!(file["chunks_done"], file["chunks_total"]);
    assert!(file["duration_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(file["size_bytes"], penstock_tests::real_egrid_file().len());

    let errors = api.get(&format!("/files/{}/errors", bad_file.id)).await.json();
    let expected: Vec<(i64, Option<String>, String, String)> =
        sqlx::query_as("SELECT line, column_name, raw, reason FROM ingest_errors WHERE file_id = $1 ORDER BY line")
            .bind(bad_file.id)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(expected.len(), 2);
    assert_eq!(errors["total"], 2);
    for (got, (line, column, raw, reason)) in errors["data"].as_array().unwrap().iter().zip(&expected) {
        assert_eq!(got["line"], *line);
        assert_eq!(got["column"], json!(column));
        assert_eq!(got["raw"], *raw);
        assert_eq!(got["reason"], *reason);
    }
    assert_eq!(errors["data"][0]["line"], 4, "line numbers count the two header lines");
    assert_eq!(errors["data"][0]["column"], "net_generation_mwh");
    let second = api
        .get(&format!("/files/{}/errors?per_page=1&page=2", bad_file.id))
        .await
        .json();
    assert_eq!(second["data"][0]["line"], 6);

    let datasets = api.get("/datasets").await.json();
    let egrid = &datasets["data"][0];
    assert_eq!(egrid["name"], "egrid_generators");
    assert_eq!(
        egrid["conflict_key"],
        json!(["year", "state", "plant_name", "generator_id"])
    );
    assert_eq!(egrid["files"], json!({"done": 1, "done_with_errors": 1}));
    assert_eq!(egrid["rows_loaded"], 26_599 + 2);
    assert_eq!(egrid["rows_quarantined"], 2);
    assert_eq!(egrid["columns"][4]["type"], "numeric");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_files_errors_include_its_dead_lettered_work_items_which_have_no_line() {
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &[Role::Api]).await;
    let api = Http::new(fleet.api_addr().unwrap());
    let key = "egrid/generators/gone.csv";
    let id = penstock_db::discover(&env.pool, "store", key, "v1", "egrid_generators", 10).await;
    let id = id.unwrap().unwrap();
    let dead = penstock_db::DeadItem {
        message_id: "m-1".into(),
        source_queue: Some("t.chunks".into()),
        reason: "the object is gone".into(),
        attempts: 5,
        file_id: Some(id),
        raw: "{}".into(),
        item: None,
    };
    penstock_db::record_dead_items(&env.pool, &[dead]).await.unwrap();
    let reply = api.get(&format!("/files/{id}/errors")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let errors = reply.json();
    assert_eq!(errors["total"], 1);
    assert_eq!(errors["data"][0]["line"], serde_json::Value::Null);
    assert_eq!(errors["data"][0]["reason"], "the object is gone");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_actions_need_the_admin_token_and_follow_the_alert_lifecycle() {
    let env = TestEnv::new().await;
    let fleet = env
        .start(env.config(&[("PENSTOCK_ADMIN_TOKEN", TOKEN)]), &[Role::Api])
        .await;
    let api = Http::new(fleet.api_addr().unwrap());
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO alerts (dedupe_key, severity, source, message) VALUES
            ('a', 'error', 'database', 'file x failed'), ('b', 'warning', 'scanner', 'slow listing')
         RETURNING id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let (error_alert, warning_alert) = (ids[0], ids[1]);
    let ack = format!("/alerts/{error_alert}/acknowledge");

    let reply = api.post(&ack, None).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert!(
        reply.json()["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
    let reply = api.post(&ack, Some("wrong-token-wrong-token")).await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    let status: String = env.scalar("SELECT status FROM alerts WHERE dedupe_key = 'a'").await;
    assert_eq!(status, "active", "a refused action changes nothing");

    let reply = api.post(&ack, Some(TOKEN)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["status"], "acknowledged");
    assert_eq!(
        api.post(&ack, Some(TOKEN)).await.json()["status"],
        "acknowledged",
        "idempotent"
    );

    let listed = api.get("/alerts?status=acknowledged").await.json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["data"][0]["id"], error_alert);
    let listed = api.get("/alerts?severity=warning").await.json();
    assert_eq!(listed["data"][0]["id"], warning_alert);
    assert_eq!(listed["data"][0]["message"], "slow listing");

    let reply = api.post(&format!("/alerts/{error_alert}/resolve"), Some(TOKEN)).await;
    assert_eq!(reply.json()["status"], "resolved");
    let reply = api.post(&ack, Some(TOKEN)).await;
    assert_eq!(reply.status, 409, "{}", reply.text);
    assert_eq!(api.post("/alerts/999999/resolve", Some(TOKEN)).await.status, 404);
    assert_eq!(api.get("/alerts?status=active").await.json()["total"], 1);
    fleet.stop().await;

    // Without a configured token the actions are disabled, and say how to enable them.
    let fleet = env.start(env.config(&[]), &[Role::Api]).await;
    let api = Http::new(fleet.api_addr().unwrap());
    let reply = api
        .post(&format!("/alerts/{warning_alert}/acknowledge"), Some(TOKEN))
        .await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["error"], "alert actions are disabled");
    assert!(body["detail"].as_str().unwrap().contains("PENSTOCK_ADMIN_TOKEN"));
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_are_cached_until_a_file_finishes_loading() {
    let env = TestEnv::new().await;
    // A TTL far longer than the test: only the finished-file notification can refresh.
    let fleet = env
        .start(env.config(&[("PENSTOCK_API_CACHE_TTL", "1h")]), &Role::ALL)
        .await;
    let api = Http::new(fleet.api_addr().unwrap());
    let first = egrid::file(&[(2023, "TX", "Alpha", "G1", "100")], &STANDARD_ORDER, "\n");
    env.drop_file("egrid/generators/a.csv", &first);
    env.wait_for_files(1, Duration::from_secs(60)).await;

    // The listener connects in the background; until it does nothing is kept.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        api.get("/plants/statistics").await;
        if api.get("/plants/statistics").await.header("x-cache") == Some("hit") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "statistics never came from the cache"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(api.get("/plants/statistics").await.json()["plants"], 1);
    // Free-text searches have no bounded key space: answered from the in-memory plant
    // index, never kept as responses.
    for _ in 0..2 {
        let reply = api.get("/plants/search?q=alp").await;
        assert_eq!(reply.header("x-cache"), Some("index"));
        assert_eq!(reply.json()["total"], 1);
    }

    let second = egrid::file(&[(2023, "OK", "Beta", "G1", "5")], &STANDARD_ORDER, "\n");
    env.drop_file("egrid/generators/b.csv", &second);
    env.wait_for_files(2, Duration::from_secs(60)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let reply = api.get("/plants/statistics").await;
        if reply.json()["plants"] == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cache was not dropped when the file finished: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The plant index follows the same notification: the new plant is found at once.
    let reply = api.get("/plants/search?q=bet").await;
    assert_eq!(reply.header("x-cache"), Some("index"));
    assert_eq!(reply.json()["total"], 1, "{}", reply.text);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics_tell_an_operator_what_they_need() {
    let env = TestEnv::new().await;
    let amqp = Proxy::start("127.0.0.1:5672").await;
    let amqp_url = penstock_tests::amqp_url().replace("127.0.0.1:5672", &amqp.addr);
    let fleet = env
        .start(env.config(&[("PENSTOCK_AMQP_URL", &amqp_url)]), &[Role::Api])
        .await;
    let api = Http::new(fleet.api_addr().unwrap());
    assert_eq!(api.get("/health").await.json(), json!({"status": "alive"}));
    let ready = api.get("/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    // One readiness rule for every process: the api role alone needs only the database.
    assert_eq!(ready.json(), json!({"ready": true, "database": true, "broker": {}}));

    amqp.block(true);
    tokio::time::sleep(Duration::from_millis(2100)).await; // past the 2 s readiness cache
    let ready = api.get("/ready").await;
    assert_eq!(ready.status, 200, "a read API does not need the broker: {}", ready.text);

    api.get("/plants/top?limit=3").await;
    api.get("/plants/top?limit=-3").await;
    let metrics = api.get("/metrics").await;
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain"));
    assert!(
        metrics
            .text
            .contains("penstock_api_requests_total{route=\"/plants/top\",status=\"400\"}"),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("penstock_api_request_duration_seconds_bucket{route=\"/plants/top\"")
    );

    let doc = api.get("/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let docs = api.get("/docs/").await;
    assert_eq!(docs.status, 200);
    assert!(docs.text.contains("swagger-ui"), "{}", docs.text);
    assert!(
        !docs.text.contains("https://"),
        "the docs page fetches nothing from the internet"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_takes_too_long_gets_503_and_a_large_body_is_refused_unread() {
    let env = TestEnv::new().await;
    let config = env.config(&[("PENSTOCK_API_REQUEST_TIMEOUT", "500ms")]);
    let fleet = env.start(config, &[Role::Api]).await;
    let api = Http::new(fleet.api_addr().unwrap());
    assert_eq!(api.get("/files").await.status, 200);
    // A lock the file listing waits on: the request cannot finish.
    let mut tx = env.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE ingest_files IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let reply = api.get("/files").await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert!(
        reply.text.contains("longer than api_request_timeout (500 ms)"),
        "{}",
        reply.text
    );
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    tx.rollback().await.unwrap();
    assert_eq!(api.get("/files").await.status, 200, "the API recovers at once");

    // A body announced larger than allowed is refused from its headers alone: the answer
    // comes before a byte of it is sent. (Sending the body too raced the server's close:
    // the client could hit a broken pipe before reading the 413.)
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(fleet.api_addr().unwrap()).await.unwrap();
        socket
            .write_all(
                b"POST /alerts/1/acknowledge HTTP/1.1\r\nHost: penstock\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
            .await
            .expect("answered without the body")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("limited to 16384 bytes"), "{answer}");
    }
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_headers_is_cut_off_and_others_are_still_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new().await;
    let fleet = env.start(env.config(&[]), &[Role::Api]).await;
    let addr = fleet.api_addr().unwrap();
    // Half a request, and then nothing: a slowloris client.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /files HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let api = Http::new(addr);
    assert_eq!(api.get("/files").await.status, 200, "others are served meanwhile");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), slow.read_to_end(&mut rest)).await;
    let waited = started.elapsed();
    assert!(read.is_ok(), "the connection was never closed");
    assert!(
        // penstock_api::HEADER_READ_TIMEOUT is 5 s.
        waited >= Duration::from_millis(4500),
        "closed after {waited:?}, before the header timeout"
    );
    let said = String::from_utf8_lossy(&rest);
    assert!(said.is_empty() || said.starts_with("HTTP/1.1 408"), "{said}");
    fleet.stop().await;
}
