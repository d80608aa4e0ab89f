//! The desired-state API for async endpoint variants, through HTTP: the same idempotency,
//! concurrency, audit and status behaviour as components, with seed 001's defaults.

use crate::common;

use common::{spawn_app, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PATH: &str = "/endpoints/ep-a/variants/AllTraffic/scale-to-zero";

struct Api {
    app: TestApp,
    token: String,
}

impl Api {
    async fn new() -> Self {
        let app = spawn_app().await;
        let token = app.token("portal", "read,write").await;
        Self { app, token }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
    }

    async fn send(
        &self,
        r: reqwest::RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let resp = r.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn bare_post_enables_with_seed_001_defaults_and_versions_like_components() {
    let api = Api::new().await;
    let (status, headers, body) = api
        .send(
            api.req(Method::POST, PATH)
                .header("x-on-behalf-of", "alice@example.com"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(headers["etag"], "\"1\"");
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .starts_with("/operations/"));
    let t = &body["target"];
    assert_eq!(
        (t["endpoint"].as_str(), t["variant"].as_str()),
        (Some("ep-a"), Some("AllTraffic"))
    );
    assert_eq!(t["phase"], "pending");
    assert_eq!(t["spec"]["target_backlog_per_instance"], 5.0);
    assert_eq!(t["spec"]["scale_in_cooldown_seconds"], 600);
    let z = &t["spec"]["scale_from_zero"];
    assert_eq!(
        (
            z["cooldown_seconds"].as_u64(),
            z["evaluation_periods"].as_u64(),
            z["datapoints_to_alarm"].as_u64()
        ),
        (Some(300), Some(2), Some(2))
    );
    assert_eq!(
        t["aws"]["scalable_dimension"],
        "sagemaker:variant:DesiredInstanceCount"
    );
    let job: (String, Value) = sqlx::query_as("SELECT target, args FROM jobs")
        .fetch_one(&api.app.pool)
        .await
        .unwrap();
    assert_eq!(job.0, "endpoint/ep-a/variant/AllTraffic");
    assert_eq!(job.1["kind"], "endpoint_variant");

    // The identical spec again: nothing new.
    let (status, _, body) = api.send(api.req(Method::POST, PATH)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["changed"], false);
    // A stale If-Match is refused; the current one works.
    let (status, _, p) = api
        .send(
            api.req(Method::POST, PATH)
                .header("if-match", "\"7\"")
                .json(&json!({"max_capacity": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{p}");
    let (status, headers, _) = api
        .send(
            api.req(Method::POST, PATH)
                .header("if-match", "\"1\"")
                .json(&json!({"max_capacity": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(headers["etag"], "\"2\"");
    assert_eq!(api.app.count("target_versions").await, 2);
    assert_eq!(
        api.app.count("jobs WHERE state = 'available'").await,
        1,
        "the newer version superseded the queued job"
    );

    // Idempotency: replay on the same key and body, 422 on another body.
    let keyed = |body: Value| {
        api.req(Method::POST, PATH)
            .header("idempotency-key", "k-1")
            .json(&body)
    };
    let (s1, _, first) = api.send(keyed(json!({"max_capacity": 3}))).await;
    let (s2, h2, again) = api.send(keyed(json!({"max_capacity": 3}))).await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(first, again);
    assert_eq!(h2["idempotent-replayed"], "true");
    let (s3, _, p) = api.send(keyed(json!({"max_capacity": 4}))).await;
    assert_eq!(s3, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["code"], "idempotency_key_reused");

    // GET, with the ETag; the audit log names the kind and who asked on whose behalf.
    let (status, headers, v) = api
        .send(api.req(Method::GET, "/endpoints/ep-a/variants/AllTraffic"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["etag"], "\"3\"");
    assert_eq!(v["spec"]["max_capacity"], 3);
    let (_, _, audit) = api
        .send(api.req(
            Method::GET,
            "/audit?kind=endpoint_variant&target=endpoint/ep-a/variant/AllTraffic",
        ))
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["update", "update", "enable"]);
    assert_eq!(audit["items"][2]["on_behalf_of"], "alice@example.com");

    // Off, once.
    let (status, _, _) = api.send(api.req(Method::DELETE, PATH)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, body) = api.send(api.req(Method::DELETE, PATH)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let api = Api::new().await;
    let cases: [(&str, Option<Value>, StatusCode); 5] = [
        (
            "/endpoints/-ep/variants/AllTraffic/scale-to-zero",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/endpoints/ep/variants/all_traffic/scale-to-zero",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            PATH,
            Some(json!({"max_capacity": 0})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            PATH,
            Some(json!({"target_invocations_per_copy": 2})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            PATH,
            Some(json!({"scale_from_zero": {"evaluation_periods": 1}})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (path, body, want) in cases {
        let mut r = api.req(Method::POST, path);
        if let Some(b) = &body {
            r = r.json(b);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status(), want, "{path} {body:?}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
    }
    let (_, _, p) = api
        .send(
            api.req(Method::POST, PATH)
                .json(&json!({"scale_from_zero": {"evaluation_periods": 1}})),
        )
        .await;
    assert_eq!(
        p["errors"][0]["field"], "scale_from_zero.datapoints_to_alarm",
        "seed 001's 2 datapoints do not fit 1 period: {p}"
    );
    let (status, _, _) = api.send(api.req(Method::DELETE, PATH)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = api
        .send(api.req(Method::GET, "/endpoints/ep-a/variants/AllTraffic"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let reader = api.app.token("viewer", "read").await;
    let resp = api
        .app
        .client
        .post(api.app.url(PATH))
        .bearer_auth(reader)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = api.app.client.post(api.app.url(PATH)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    for table in [
        "targets",
        "target_versions",
        "jobs",
        "audit_log",
        "idempotency_keys",
    ] {
        assert_eq!(api.app.count(table).await, 0, "{table} untouched");
    }
}

#[tokio::test]
async fn the_list_filters_by_endpoint_prefix_and_phase_and_pages() {
    let api = Api::new().await;
    for (ep, v) in [
        ("ep-a", "AllTraffic"),
        ("ep-a", "Blue"),
        ("ep-b", "AllTraffic"),
        ("other", "AllTraffic"),
    ] {
        let (s, _, _) = api
            .send(api.req(
                Method::POST,
                &format!("/endpoints/{ep}/variants/{v}/scale-to-zero"),
            ))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    // A component is not an endpoint variant.
    api.send(api.req(Method::POST, "/components/ep-a/scale-to-zero"))
        .await;
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{}/{}",
                    i["endpoint"].as_str().unwrap(),
                    i["variant"].as_str().unwrap()
                )
            })
            .collect()
    };
    let (_, _, all) = api.send(api.req(Method::GET, "/endpoints")).await;
    assert_eq!(
        names(&all),
        [
            "ep-a/AllTraffic",
            "ep-a/Blue",
            "ep-b/AllTraffic",
            "other/AllTraffic"
        ]
    );
    let (_, _, ep) = api
        .send(api.req(Method::GET, "/endpoints?prefix=ep-"))
        .await;
    assert_eq!(
        names(&ep),
        ["ep-a/AllTraffic", "ep-a/Blue", "ep-b/AllTraffic"]
    );
    let (_, _, page1) = api.send(api.req(Method::GET, "/endpoints?limit=3")).await;
    assert_eq!(names(&page1).len(), 3);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, _, page2) = api
        .send(
            api.req(Method::GET, "/endpoints")
                .query(&[("limit", "3"), ("cursor", cursor)]),
        )
        .await;
    assert_eq!(names(&page2), ["other/AllTraffic"]);
    assert!(page2.get("next_cursor").is_none());
    let (_, _, ready) = api
        .send(api.req(Method::GET, "/endpoints?phase=ready"))
        .await;
    assert!(names(&ready).is_empty());
    let (status, _, _) = api
        .send(api.req(Method::GET, "/endpoints?phase=asleep"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
