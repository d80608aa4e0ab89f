//! The desired-state API for inference components, through HTTP.

use crate::common;

use common::{spawn_app, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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

    async fn post(&self, name: &str, body: Option<Value>) -> reqwest::Response {
        let mut r = self.req(Method::POST, &format!("/components/{name}/scale-to-zero"));
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    async fn nothing_written(&self) {
        for table in [
            "targets",
            "target_versions",
            "jobs",
            "audit_log",
            "idempotency_keys",
        ] {
            assert_eq!(self.app.count(table).await, 0, "{table} untouched");
        }
    }
}

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

#[tokio::test]
async fn bare_post_enables_with_defaults_and_queues_one_job() {
    let api = Api::new().await;
    let resp = api
        .req(Method::POST, "/components/demo-component/scale-to-zero")
        .header("x-on-behalf-of", "alice@example.com")
        .header("x-request-id", "req-enable-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let body = json_of(resp).await;
    assert_eq!(body["changed"], true);
    let t = &body["target"];
    assert_eq!(t["name"], "demo-component");
    assert_eq!(t["version"], 1);
    assert_eq!(t["phase"], "pending");
    assert_eq!(t["spec"]["target_invocations_per_copy"], 1.0);
    assert_eq!(
        t["spec"]["scale_from_zero"]["comparison"],
        "GreaterThanOrEqualToThreshold"
    );
    assert!(
        t["spec"].get("max_capacity").is_none(),
        "resolved by the job when absent"
    );
    assert_eq!(
        t["aws"]["resource_id"],
        "inference-component/demo-component"
    );
    assert_eq!(
        location,
        format!("/operations/{}", t["last_operation"]["id"])
    );

    let op = json_of(api.req(Method::GET, &location).send().await.unwrap()).await;
    assert_eq!(op["kind"], "reconcile");
    assert_eq!(op["state"], "available");
    // The operation converges its target to the current desired version when it runs.
    assert_eq!(
        op["args"],
        json!({"kind": "component", "name": "demo-component"})
    );
    assert_eq!(op["target"], "inference-component/demo-component");

    // The component's read shows the same operation, where it stands, and (none yet) its error.
    let read = api
        .req(Method::GET, "/components/demo-component")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.headers()["etag"], "\"1\"");
    let read = json_of(read).await;
    assert_eq!(read["last_operation"], t["last_operation"]);
    assert_eq!(read["last_operation"]["state"], "available");
    assert_eq!(read["last_operation"]["url"], location.as_str());

    let audit = json_of(api.req(Method::GET, "/audit").send().await.unwrap()).await;
    let e = &audit["items"][0];
    assert_eq!(e["action"], "enable");
    assert_eq!(e["outcome"], "accepted");
    assert_eq!(e["actor"], "portal");
    assert_eq!(e["on_behalf_of"], "alice@example.com");
    assert_eq!(e["request_id"], "req-enable-1");
    assert_eq!(e["job_id"], op["id"]);
    assert_eq!(e["before"], Value::Null);
    assert_eq!(e["after"]["version"], 1);
    assert_eq!(api.app.count("target_versions").await, 1);
}

#[tokio::test]
async fn identical_repost_changes_nothing_and_says_so() {
    let api = Api::new().await;
    assert_eq!(
        api.post("ic-a", Some(json!({"max_capacity": 3})))
            .await
            .status(),
        202
    );
    let resp = api
        .post(
            "ic-a",
            Some(json!({"max_capacity": 3, "restore_min_capacity": 1})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = json_of(resp).await;
    assert_eq!(body["changed"], false);
    assert!(body["detail"].as_str().unwrap().contains("no new version"));
    assert_eq!(body["target"]["version"], 1);
    assert_eq!(api.app.count("target_versions").await, 1);
    assert_eq!(api.app.count("jobs").await, 1);
    assert_eq!(api.app.count("audit_log").await, 1);
}

#[tokio::test]
async fn an_update_is_a_new_version_and_supersedes_the_queued_job() {
    let api = Api::new().await;
    let v1 = json_of(api.post("ic-b", None).await).await;
    let resp = api.post("ic-b", Some(json!({"max_capacity": 8}))).await;
    assert_eq!(resp.status(), 202);
    let v2 = json_of(resp).await;
    assert_eq!(v2["target"]["version"], 2);
    // Not started yet: the one queued operation now converges to version 2 (a reconcile job
    // converges to the target's current version when it runs, so it names only the target).
    let op = &v2["target"]["last_operation"]["id"];
    assert_eq!(
        op, &v1["target"]["last_operation"]["id"],
        "folded into one operation"
    );
    let args: Vec<Value> = sqlx::query_scalar("SELECT args FROM jobs")
        .fetch_all(&api.app.pool)
        .await
        .unwrap();
    assert_eq!(args.len(), 1, "not piled up");
    assert_eq!(args[0], json!({"kind": "component", "name": "ic-b"}));
    let folded: Vec<i64> = sqlx::query_scalar("SELECT job_id FROM audit_log ORDER BY id")
        .fetch_all(&api.app.pool)
        .await
        .unwrap();
    assert_eq!(
        folded,
        vec![op.as_i64().unwrap(); 2],
        "both versions name it"
    );
    let audit = json_of(
        api.req(Method::GET, "/audit?action=update")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(audit["items"][0]["before"]["version"], 1);
    assert_eq!(audit["items"][0]["after"]["spec"]["max_capacity"], 8);

    // Once attempted (here: failed and waiting to retry), the job keeps its errors with its
    // version and a new job supersedes it.
    sqlx::query(
        "UPDATE jobs SET state = 'retryable', attempt = 1, errors = jsonb_build_array( \
           jsonb_build_object('attempt', 1, 'at', now(), 'error', 'throttled', 'permanent', false))",
    )
    .execute(&api.app.pool)
    .await
    .unwrap();
    let v3 = json_of(api.post("ic-b", Some(json!({"max_capacity": 9}))).await).await;
    assert_ne!(v3["target"]["last_operation"]["id"], *op);
    let old = json_of(
        api.req(Method::GET, &format!("/operations/{op}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(old["state"], "cancelled", "superseded");
    assert_eq!(
        old["errors"][0]["error"], "throttled",
        "its errors stay with it"
    );
}

#[tokio::test]
async fn if_match_guards_against_stale_writes() {
    let api = Api::new().await;
    let resp = api
        .req(Method::POST, "/components/ic-c/scale-to-zero")
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::PRECONDITION_FAILED,
        "If-Match on a component that does not exist"
    );
    api.nothing_written().await;

    api.post("ic-c", None).await;
    let stale = api
        .req(Method::POST, "/components/ic-c/scale-to-zero")
        .header("if-match", "\"7\"")
        .json(&json!({"max_capacity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.headers()["content-type"], "application/problem+json");
    assert_eq!(json_of(stale).await["code"], "precondition_failed");
    assert_eq!(
        api.app.count("target_versions").await,
        1,
        "a rejected write changes nothing"
    );
    assert_eq!(api.app.count("audit_log").await, 1);

    let etag = api
        .req(Method::GET, "/components/ic-c")
        .send()
        .await
        .unwrap()
        .headers()["etag"]
        .clone();
    let fresh = api
        .req(Method::POST, "/components/ic-c/scale-to-zero")
        .header("if-match", etag)
        .json(&json!({"max_capacity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 202);
    let weak = api
        .req(Method::DELETE, "/components/ic-c/scale-to-zero")
        .header("if-match", "W/\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 202);
}

#[tokio::test]
async fn idempotency_keys_replay_reject_and_detect_in_flight() {
    let api = Api::new().await;
    let post = |key: &'static str, body: Value| {
        api.req(Method::POST, "/components/ic-d/scale-to-zero")
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = post("k-1", json!({"max_capacity": 2})).await.unwrap();
    assert_eq!(first.status(), 202);
    let first_body = json_of(first).await;
    let replay = post("k-1", json!({"max_capacity": 2})).await.unwrap();
    assert_eq!(replay.status(), 202, "the stored status is replayed");
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(replay).await, first_body);
    assert_eq!(
        api.app.count("target_versions").await,
        1,
        "done at most once"
    );

    let other = post("k-1", json!({"max_capacity": 3})).await.unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json_of(other).await["code"], "idempotency_key_reused");

    // Hold the key's lock as an in-flight request would.
    let mut tx = api.app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || E'\\n' || $2 || E'\\n' || $3 || E'\\n' || $4, 7))")
        .bind("portal")
        .bind("POST")
        .bind("/components/ic-d/scale-to-zero")
        .bind("k-2")
        .execute(&mut *tx)
        .await
        .unwrap();
    let busy = post("k-2", json!({"max_capacity": 5})).await.unwrap();
    assert_eq!(busy.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(busy).await["code"], "idempotency_key_in_flight");
    tx.rollback().await.unwrap();
    assert_eq!(
        post("k-2", json!({"max_capacity": 5}))
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(api.app.count("target_versions").await, 2);
    let bad_key = api
        .req(Method::POST, "/components/ic-d/scale-to-zero")
        .header("idempotency-key", "")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_key.status(), 400);
}

#[tokio::test]
async fn bad_input_is_rejected_and_changes_nothing() {
    let api = Api::new().await;
    let bad_name = api.post("-bad-", None).await;
    assert_eq!(bad_name.status(), 422);
    assert_eq!(json_of(bad_name).await["errors"][0]["field"], "name");

    let bad_spec = api
        .post("ic-e", Some(json!({"max_capacity": 1001, "scale_from_zero": {"period_seconds": 30, "comparison": "GreaterThanThreshold"}})))
        .await;
    assert_eq!(bad_spec.status(), 422);
    let body = json_of(bad_spec).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"max_capacity") && fields.contains(&"scale_from_zero.period_seconds"),
        "{body}"
    );

    let unknown = api.post("ic-e", Some(json!({"max_capacty": 3}))).await;
    assert_eq!(unknown.status(), 422);
    assert!(json_of(unknown).await["detail"]
        .as_str()
        .unwrap()
        .contains("max_capacty"));

    let bad_enum = api
        .post(
            "ic-e",
            Some(json!({"scale_from_zero": {"comparison": "LessThanThreshold"}})),
        )
        .await;
    assert_eq!(bad_enum.status(), 422);

    let malformed = api
        .req(Method::POST, "/components/ic-e/scale-to-zero")
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let text = api
        .req(Method::POST, "/components/ic-e/scale-to-zero")
        .header("content-type", "text/plain")
        .body("max=3")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);
    let no_ct = api
        .req(Method::POST, "/components/ic-e/scale-to-zero")
        .body(r#"{"max_capacity": 0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        no_ct.status(),
        415,
        "a body without a content type is refused, as the README says"
    );
    let missing = api
        .req(Method::DELETE, "/components/ic-e/scale-to-zero")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    api.nothing_written().await;
}

#[tokio::test]
async fn tokens_scopes_and_open_routes() {
    let api = Api::new().await;
    let reader = api.app.token("dashboard", "read").await;
    let c = &api.app.client;

    let none = c
        .post(api.app.url("/components/ic-f/scale-to-zero"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let wrong = c
        .get(api.app.url("/components"))
        .bearer_auth("zs_000000000000_".to_string() + &"0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let junk = c
        .get(api.app.url("/components"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), 401);
    let forbidden = c
        .post(api.app.url("/components/ic-f/scale-to-zero"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    assert_eq!(json_of(forbidden).await["code"], "forbidden");
    assert_eq!(
        c.get(api.app.url("/components"))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    api.nothing_written().await;

    let doomed = api.app.token("doomed", "read").await;
    assert!(zeroscale::store::tokens::revoke(&api.app.pool, "doomed")
        .await
        .unwrap());
    assert_eq!(
        c.get(api.app.url("/components"))
            .bearer_auth(&doomed)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    for open in ["/healthz", "/readyz", "/openapi.json", "/docs"] {
        assert_eq!(
            c.get(api.app.url(open)).send().await.unwrap().status(),
            200,
            "{open} needs no token"
        );
    }
    let docs = c
        .get(api.app.url("/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        docs.contains("swagger") && !docs.contains("https://"),
        "the docs page (Swagger UI, served by zeroscale) loads nothing from outside"
    );
    let init = c
        .get(api.app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("\"/openapi.json\""), "{init}");
}

#[tokio::test]
async fn delete_turns_it_off_once() {
    let api = Api::new().await;
    api.post("ic-g", Some(json!({"max_capacity": 2}))).await;
    let off = api
        .req(Method::DELETE, "/components/ic-g/scale-to-zero")
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 202);
    assert!(off.headers().contains_key("location"));
    let body = json_of(off).await;
    assert_eq!(body["target"]["enabled"], false);
    assert_eq!(body["target"]["version"], 2);
    assert_eq!(
        body["target"]["spec"]["max_capacity"], 2,
        "the spec is kept for the restore"
    );
    let again = api
        .req(Method::DELETE, "/components/ic-g/scale-to-zero")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(json_of(again).await["changed"], false);
    let audit = json_of(
        api.req(
            Method::GET,
            "/audit?action=disable&target=ic-g&kind=component",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
    let on = api.post("ic-g", Some(json!({"max_capacity": 2}))).await;
    assert_eq!(json_of(on).await["target"]["version"], 3);
    let audit = json_of(
        api.req(Method::GET, "/audit?target=ic-g&limit=1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        audit["items"][0]["action"], "enable",
        "re-enabling is an enable"
    );
}

#[tokio::test]
async fn list_filters_and_pages() {
    let api = Api::new().await;
    for name in ["alpha-1", "alpha-2", "alpha-3", "beta-1", "beta-2"] {
        api.post(name, None).await;
    }
    api.req(Method::DELETE, "/components/beta-2/scale-to-zero")
        .send()
        .await
        .unwrap();
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/components?limit=2&cursor={c}"),
            None => "/components?limit=2".into(),
        };
        let page = json_of(api.req(Method::GET, &path).send().await.unwrap()).await;
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["alpha-1", "alpha-2", "alpha-3", "beta-1", "beta-2"]);
    let alpha = json_of(
        api.req(Method::GET, "/components?prefix=alpha")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(alpha["items"].as_array().unwrap().len(), 3);
    let pending = json_of(
        api.req(Method::GET, "/components?phase=pending&prefix=beta")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        api.req(Method::GET, "/components?phase=sleeping")
            .send()
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        api.req(Method::GET, "/components?limit=0")
            .send()
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        api.req(Method::GET, "/components?bogus=1")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        api.req(Method::GET, "/components/nope")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        api.req(Method::GET, "/components/no_pe")
            .send()
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        api.req(Method::GET, "/operations/999999")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        api.req(Method::GET, "/operations/abc")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test]
async fn audit_filters_by_actor_and_time_and_pages() {
    let api = Api::new().await;
    let other = api.app.token("ci-bot", "read,write").await;
    api.post("ic-h", None).await;
    let before_bot = chrono::Utc::now();
    api.app
        .client
        .post(api.app.url("/components/ic-i/scale-to-zero"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    api.post("ic-h", Some(json!({"max_capacity": 4}))).await;

    let bot = json_of(
        api.req(Method::GET, "/audit?actor=ci-bot")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(bot["items"].as_array().unwrap().len(), 1);
    assert_eq!(bot["items"][0]["target_name"], "ic-i");
    let since = before_bot.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let recent = json_of(
        api.req(Method::GET, "/audit")
            .query(&[("since", since.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(recent["items"].as_array().unwrap().len(), 2);
    let old = json_of(
        api.req(Method::GET, "/audit")
            .query(&[("until", since.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(old["items"].as_array().unwrap().len(), 1);
    let page1 = json_of(api.req(Method::GET, "/audit?limit=2").send().await.unwrap()).await;
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = json_of(
        api.req(Method::GET, &format!("/audit?limit=2&cursor={cursor}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(page2["next_cursor"].is_null());
    assert_eq!(
        api.req(Method::GET, "/audit?since=yesterday")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test]
async fn fifty_concurrent_writes_get_gapless_versions_and_one_job() {
    let api = Api::new().await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..50u32 {
        let req = api
            .req(Method::POST, "/components/ic-race/scale-to-zero")
            .json(&json!({"max_capacity": i + 1}));
        set.spawn(async move { req.send().await.unwrap().status() });
    }
    while let Some(status) = set.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::ACCEPTED);
    }
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM target_versions ORDER BY version")
            .fetch_all(&api.app.pool)
            .await
            .unwrap();
    assert_eq!(versions, (1..=50).collect::<Vec<_>>(), "gapless");
    assert_eq!(
        api.app.count("audit_log").await,
        50,
        "one accepted event each"
    );
    let events: i64 = sqlx::query_scalar("SELECT count(DISTINCT version) FROM audit_log")
        .fetch_one(&api.app.pool)
        .await
        .unwrap();
    assert_eq!(events, 50);
    let queued: Vec<(i64, i32)> =
        sqlx::query_as("SELECT id, attempt FROM jobs WHERE state = 'available'")
            .fetch_all(&api.app.pool)
            .await
            .unwrap();
    assert_eq!(queued.len(), 1, "exactly one job left");
    assert_eq!(queued[0].1, 0, "never attempted");
    // A reconcile job converges to the target's current version when it runs: the target is
    // at version 50 and names that job, as does the version-50 event.
    let (current, last_job): (i32, i64) =
        sqlx::query_as("SELECT version, last_job_id FROM targets")
            .fetch_one(&api.app.pool)
            .await
            .unwrap();
    assert_eq!((current, last_job), (50, queued[0].0));
    let last_event_job: i64 = sqlx::query_scalar("SELECT job_id FROM audit_log WHERE version = 50")
        .fetch_one(&api.app.pool)
        .await
        .unwrap();
    assert_eq!(last_event_job, queued[0].0);
}

#[tokio::test]
async fn the_audit_log_is_append_only_even_for_the_service() {
    let api = Api::new().await;
    api.post("ic-j", None).await;
    for sql in [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(sql).execute(&api.app.pool).await.unwrap_err();
        // TRUNCATE is refused before the trigger runs: the audit chain references the log.
        let text = err.to_string();
        assert!(
            text.contains("append-only") || text.contains("referenced in a foreign key"),
            "{sql}: {err}"
        );
    }
    // Replication-role tricks do not skip the triggers (ENABLE ALWAYS).
    let mut tx = api.app.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("DELETE FROM audit_log")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    drop(tx);
    assert_eq!(api.app.count("audit_log").await, 1);
}

#[tokio::test]
async fn a_change_supersedes_a_queued_drift_check_instead_of_folding_into_it() {
    let api = Api::new().await;
    let first = json_of(api.post("ic-drift", None).await).await;
    let first_op = first["target"]["last_operation"]["id"].as_i64().unwrap();
    let job_target: String = sqlx::query_scalar("SELECT target FROM jobs WHERE id = $1")
        .bind(first_op)
        .fetch_one(&api.app.pool)
        .await
        .unwrap();
    assert!(zeroscale::store::jobs::cancel(&api.app.pool, first_op)
        .await
        .unwrap());
    assert!(zeroscale::reconcile::drift::enqueue_if_idle(
        &api.app.pool,
        "component",
        "ic-drift",
        &job_target,
        "drift"
    )
    .await
    .unwrap());
    let resp = api.post("ic-drift", Some(json!({"max_capacity": 2}))).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let op = json_of(resp).await["target"]["last_operation"]["id"]
        .as_i64()
        .unwrap();
    let jobs: Vec<(i64, String, Value)> =
        sqlx::query_as("SELECT id, state::text, args FROM jobs ORDER BY id")
            .fetch_all(&api.app.pool)
            .await
            .unwrap();
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    assert_eq!(jobs[1].1, "cancelled", "the drift check is superseded");
    assert_eq!(jobs[1].2["reason"], "drift");
    assert_eq!(
        (jobs[2].0, jobs[2].1.as_str()),
        (op, "available"),
        "the change has its own operation"
    );
    assert!(jobs[2].2.get("reason").is_none());
}

#[tokio::test]
async fn a_worker_cannot_claim_a_job_while_a_change_folding_into_it_commits() {
    let api = Api::new().await;
    let first = json_of(api.post("ic-fold", None).await).await;
    let op = first["target"]["last_operation"]["id"].as_i64().unwrap();
    // A change inside an open transaction (as with an Idempotency-Key) folds into the queued job
    // (through the 13-parameter signature an older replica calls during a rolling deploy).
    let mut tx = api.app.pool.begin().await.unwrap();
    let (outcome, job): (String, i64) = sqlx::query_as(
        "SELECT outcome, last_job_id FROM zs_record_change('component', 'ic-fold', true, \
         '{\"max_capacity\": 5}', NULL, 'reconcile', $1, 'test', NULL, NULL, NULL, NULL, true)",
    )
    .bind(
        sqlx::query_scalar::<_, String>("SELECT target FROM jobs WHERE id = $1")
            .bind(op)
            .fetch_one(&api.app.pool)
            .await
            .unwrap(),
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!((outcome.as_str(), job), ("accepted", op));
    let lease = std::time::Duration::from_secs(30);
    let claimed = zeroscale::store::jobs::claim(&api.app.pool, "w1", 10, lease)
        .await
        .unwrap();
    assert!(
        claimed.is_empty(),
        "claimed before the version it must converge to was visible"
    );
    tx.commit().await.unwrap();
    let claimed = zeroscale::store::jobs::claim(&api.app.pool, "w1", 10, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, op);
}
