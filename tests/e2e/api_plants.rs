//! The read API's plant endpoints against the real eGRID 2023 file, each checked against
//! SQL computed here from the generators table (not from the API's materialized view).

use penstock_tests::TestEnv;
use serde_json::Value;

/// A plant id as the API defines it, restated independently.
const PLANT_ID: &str = "('x' || substr(md5(year::text || '|' || state || '|' || plant_name), 1, 13))::bit(52)::bigint";

type PlantRow = (i64, i32, String, String, Option<f64>, i64);

async fn expected_plants(env: &TestEnv, filter: &str, order_limit: &str) -> Vec<PlantRow> {
    let sql = format!(
        "SELECT {PLANT_ID}, year, state, plant_name, sum(net_generation_mwh)::float8 AS mwh, count(*)
         FROM egrid_generators {filter} GROUP BY year, state, plant_name {order_limit}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

fn plants_of(body: &Value) -> Vec<PlantRow> {
    body["data"]
        .as_array()
        .expect("data is a list")
        .iter()
        .map(|p| {
            (
                p["id"].as_i64().unwrap(),
                p["year"].as_i64().unwrap() as i32,
                p["state"].as_str().unwrap().to_string(),
                p["plant_name"].as_str().unwrap().to_string(),
                p["net_generation_mwh"].as_f64(),
                p["generators"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plant_endpoints_answer_what_sql_over_the_generators_says() {
    let env = TestEnv::new().await;
    let (fleet, api) = env.loaded_with_real_egrid(&[]).await;

    // Top 5 plants in Texas in 2023 (the README's example).
    let reply = api.get("/plants/top?year=2023&state=tx&limit=5").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let expected = expected_plants(
        &env,
        "WHERE year = 2023 AND state = 'TX'",
        "HAVING sum(net_generation_mwh) IS NOT NULL ORDER BY mwh DESC, 1 LIMIT 5",
    )
    .await;
    assert_eq!(plants_of(&reply.json()), expected);
    assert_eq!(expected.len(), 5);

    // Default limit is 10, nationwide.
    let top = plants_of(&api.get("/plants/top").await.json());
    let expected = expected_plants(
        &env,
        "",
        "HAVING sum(net_generation_mwh) IS NOT NULL ORDER BY mwh DESC, 1 LIMIT 10",
    )
    .await;
    assert_eq!(top, expected);

    // Search: case-insensitive name match, state filter, sorted by name, second page.
    let reply = api
        .get("/plants/search?q=SOLAR&state=ca&sort=plant_name&order=asc&page=2&per_page=7")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    let all = expected_plants(
        &env,
        "WHERE state = 'CA' AND plant_name ILIKE '%solar%'",
        "ORDER BY plant_name ASC, 1",
    )
    .await;
    assert!(all.len() > 14, "the real file has many Californian solar plants");
    assert_eq!(body["total"].as_i64().unwrap() as usize, all.len());
    assert_eq!((body["page"].as_i64(), body["per_page"].as_i64()), (Some(2), Some(7)));
    assert_eq!(plants_of(&body), all[7..14].to_vec());

    // Search by generation range, ascending.
    let body = api
        .get("/plants/search?min_mwh=1000000&max_mwh=2000000&sort=net_generation_mwh&order=asc&per_page=100")
        .await
        .json();
    let expected = expected_plants(
        &env,
        "",
        "HAVING sum(net_generation_mwh) BETWEEN 1000000 AND 2000000 ORDER BY mwh ASC, 1",
    )
    .await;
    assert_eq!(body["total"].as_i64().unwrap() as usize, expected.len());
    assert_eq!(plants_of(&body), expected.into_iter().take(100).collect::<Vec<_>>());

    // LIKE wildcards in the search text are literal.
    let body = api.get("/plants/search?q=%25").await.json();
    let literal: i64 = env
        .scalar(
            "SELECT count(DISTINCT (year, state, plant_name)) FROM egrid_generators WHERE strpos(plant_name, '%') > 0",
        )
        .await;
    assert_eq!(body["total"].as_i64().unwrap(), literal);

    // States and years with counts.
    let body = api.get("/plants/states").await.json();
    let expected: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT state, count(DISTINCT plant_name), count(*) FROM egrid_generators GROUP BY state ORDER BY state",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let got: Vec<(String, i64, i64)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap().into(),
                s["plants"].as_i64().unwrap(),
                s["generators"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert!(got.len() >= 51, "50 states and DC at least");
    let body = api.get("/plants/years").await.json();
    assert_eq!(body["data"][0]["year"], 2023);
    assert_eq!(body["data"][0]["generators"], 26_599);

    // Statistics.
    let stats = api.get("/plants/statistics").await.json();
    let (plants, generators, states, total, negative, unknown): (i64, i64, i64, f64, i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT (year, state, plant_name)), count(*), count(DISTINCT state),
                sum(net_generation_mwh)::float8,
                count(*) FILTER (WHERE net_generation_mwh < 0), count(*) FILTER (WHERE net_generation_mwh IS NULL)
         FROM egrid_generators",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(stats["plants"].as_i64(), Some(plants));
    assert_eq!(stats["generators"].as_i64(), Some(generators));
    assert_eq!(stats["states"].as_i64(), Some(states));
    assert_eq!(stats["years"].as_i64(), Some(1));
    assert!((stats["total_net_generation_mwh"].as_f64().unwrap() - total).abs() < 1.0);
    assert_eq!(stats["generators_negative"].as_i64(), Some(negative));
    assert_eq!(stats["generators_unknown"].as_i64(), Some(unknown));
    assert!(negative > 0 && unknown > 0, "the real file has both");
    assert!(stats["last_load_at"].is_string());

    // Charts.
    let chart = api.get("/plants/chart/by-state?year=2023").await.json();
    let expected: Vec<(String, f64)> = sqlx::query_as(
        "SELECT state, coalesce(sum(net_generation_mwh), 0)::float8 FROM egrid_generators WHERE year = 2023
         GROUP BY state ORDER BY 2 DESC, 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let labels: Vec<&str> = chart["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(labels, expected.iter().map(|e| e.0.as_str()).collect::<Vec<_>>());
    assert_eq!(chart["values"].as_array().unwrap().len(), expected.len());
    assert!((chart["values"][0].as_f64().unwrap() - expected[0].1).abs() < 1.0);
    let chart = api.get("/plants/chart/top-plants?state=TX").await.json();
    assert_eq!(chart["labels"].as_array().unwrap().len(), 10);
    assert!(chart["labels"][0].as_str().unwrap().ends_with("(TX, 2023)"));
    let chart = api.get("/plants/chart/by-year").await.json();
    assert_eq!(chart["labels"], serde_json::json!(["2023"]));

    // One plant, with its generators and their lineage.
    let top = &api.get("/plants/top?year=2023&state=TX&limit=1").await.json()["data"][0];
    let reply = api.get(&format!("/plants/{}", top["id"])).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let detail = reply.json();
    assert_eq!(&detail["plant"], top);
    let generators: Vec<(String, i64)> = sqlx::query_as(
        "SELECT generator_id, source_line FROM egrid_generators WHERE year = $1 AND state = $2 AND plant_name = $3
         ORDER BY generator_id",
    )
    .bind(2023)
    .bind("TX")
    .bind(top["plant_name"].as_str().unwrap())
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let got: Vec<(String, i64)> = detail["generators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["generator_id"].as_str().unwrap().into(),
                g["source"]["line"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, generators);
    assert_eq!(
        detail["generators"][0]["source"]["key"],
        "egrid/generators/egrid2023_gen.csv"
    );

    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plant_ids_stay_the_same_when_the_data_is_reloaded_into_a_new_database() {
    let first = TestEnv::new().await;
    let (fleet, api) = first.loaded_with_real_egrid(&[]).await;
    let before = api.get("/plants/top?limit=20").await.json();
    fleet.stop().await;
    let second = TestEnv::new().await;
    let (fleet, api) = second.loaded_with_real_egrid(&[]).await;
    let after = api.get("/plants/top?limit=20").await.json();
    fleet.stop().await;
    assert_eq!(before["data"], after["data"]);
    let id = &after["data"][3]["id"];
    assert_eq!(
        api_plant_name(&second, id.as_i64().unwrap()).await,
        after["data"][3]["plant_name"]
    );
}

async fn api_plant_name(env: &TestEnv, id: i64) -> Value {
    let name: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT plant_name FROM egrid_generators WHERE {PLANT_ID} = $1 LIMIT 1"
    )))
    .bind(id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    Value::String(name)
}
