//! Version history, diffs and rollback: who changed a target, what changed, and putting it back,
//! through the API, with the job engine and the sandbox behind it.

use crate::common;

use aws_sdk_applicationautoscaling::types::ServiceNamespace;
use common::reconcile::{env, Env};
use reqwest::Method;
use serde_json::{json, Value};

const IC: &str = "/components/demo-component";

/// Sends a change as `token` (optionally on behalf of a portal user) and waits for its
/// operation; returns the response body.
async fn change_as(
    e: &Env,
    token: &str,
    on_behalf_of: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut r = e
        .app
        .client
        .request(method, e.app.url(path))
        .bearer_auth(token);
    if let Some(u) = on_behalf_of {
        r = r.header("x-on-behalf-of", u);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let out: Value = resp.json().await.unwrap();
    let op = e
        .wait(out["target"]["last_operation"]["url"].as_str().unwrap())
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    out
}

/// Five changes by two actors: enable (portal), two updates (ops for alice, portal), another
/// update (ops), disable (portal).
async fn five_changes(e: &Env) -> String {
    let ops = e.app.token("ops", "read,write").await;
    let portal = e.token.clone();
    let post = format!("{IC}/scale-to-zero");
    change_as(
        e,
        &portal,
        None,
        Method::POST,
        &post,
        Some(json!({"max_capacity": 1})),
    )
    .await;
    change_as(
        e,
        &ops,
        Some("alice"),
        Method::POST,
        &post,
        Some(json!({"max_capacity": 2})),
    )
    .await;
    change_as(
        e,
        &portal,
        None,
        Method::POST,
        &post,
        Some(json!({"max_capacity": 3})),
    )
    .await;
    change_as(
        e,
        &ops,
        None,
        Method::POST,
        &post,
        Some(json!({"max_capacity": 4, "target_invocations_per_copy": 2.0})),
    )
    .await;
    change_as(e, &portal, None, Method::DELETE, &post, None).await;
    ops
}

#[tokio::test]
async fn five_changes_by_two_actors_are_listed_with_actors_and_outcomes() {
    let e = env().await;
    five_changes(&e).await;
    let (status, page) = e.call(Method::GET, &format!("{IC}/versions"), None).await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    let seen: Vec<(i64, &str, &str, &str)> = items
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["actor"].as_str().unwrap(),
                v["action"].as_str().unwrap(),
                v["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (5, "portal", "disable", "applied"),
            (4, "ops", "update", "applied"),
            (3, "portal", "update", "applied"),
            (2, "ops", "update", "applied"),
            (1, "portal", "enable", "applied"),
        ]
    );
    assert_eq!(items[3]["on_behalf_of"], "alice");
    assert!(items[0]["operation"]
        .as_str()
        .unwrap()
        .starts_with("/operations/"));
    assert!(items[0]["request_id"].as_str().is_some());

    // Pages of two, by cursor; a cursor this service did not issue is refused.
    let (_, first) = e
        .call(Method::GET, &format!("{IC}/versions?limit=2"), None)
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second) = e
        .call(
            Method::GET,
            &format!("{IC}/versions?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(second["items"][0]["version"], 3);
    let (status, p) = e
        .call(Method::GET, &format!("{IC}/versions?cursor=junk"), None)
        .await;
    assert_eq!(status, 422, "{p}");

    // One version in full.
    let (status, v2) = e.call(Method::GET, &format!("{IC}/versions/2"), None).await;
    assert_eq!(status, 200);
    assert_eq!(v2["spec"]["max_capacity"], 2);
    assert_eq!(v2["enabled"], true);
    assert_eq!(v2["actor"], "ops");
    let (status, _) = e.call(Method::GET, &format!("{IC}/versions/9"), None).await;
    assert_eq!(status, 404);
    let (status, _) = e.call(Method::GET, &format!("{IC}/versions/0"), None).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn a_version_a_newer_one_overtook_before_its_job_ran_is_superseded() {
    // The API alone (no worker): both changes stay queued, folded into one operation.
    let app = common::spawn_app().await;
    let token = app.token("portal", "read,write").await;
    for max in [1, 2] {
        let resp = app
            .client
            .post(app.url(&format!("{IC}/scale-to-zero")))
            .bearer_auth(&token)
            .json(&json!({ "max_capacity": max }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    let page: Value = app
        .client
        .get(app.url(&format!("{IC}/versions")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outcomes: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["pending", "superseded"]);
}

#[tokio::test]
async fn the_diff_between_versions_2_and_4_is_a_json_patch() {
    let e = env().await;
    five_changes(&e).await;
    let (status, d) = e
        .call(
            Method::GET,
            &format!("{IC}/versions/4/diff?against=2"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["version"], 4);
    assert_eq!(d["against"], 2);
    let mut ops: Vec<Value> = d["patch"].as_array().unwrap().clone();
    ops.sort_by_key(|o| o["path"].as_str().unwrap().to_string());
    assert_eq!(
        ops,
        [
            json!({"op": "replace", "path": "/spec/max_capacity", "value": 4}),
            json!({"op": "replace", "path": "/spec/target_invocations_per_copy", "value": 2.0}),
        ]
    );
    // By default, against the version before; version 1 against nothing.
    let (_, d) = e
        .call(Method::GET, &format!("{IC}/versions/5/diff"), None)
        .await;
    assert_eq!(d["against"], 4);
    assert_eq!(
        d["patch"],
        json!([{"op": "replace", "path": "/enabled", "value": false}])
    );
    let (_, d) = e
        .call(Method::GET, &format!("{IC}/versions/1/diff"), None)
        .await;
    assert!(d.get("against").is_none());
    assert_eq!(d["patch"][0]["op"], "add");
    let (status, _) = e
        .call(
            Method::GET,
            &format!("{IC}/versions/4/diff?against=9"),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn rolling_back_to_version_2_makes_version_6_converges_and_is_audited() {
    let e = env().await;
    five_changes(&e).await;
    // A dry run shows the calls and writes nothing.
    let jobs = e.app.count("jobs").await;
    let (status, dry) = e
        .call(
            Method::POST,
            &format!("{IC}/rollback?dry_run=true"),
            Some(json!({"to_version": 2})),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["verdict"], "ok");
    assert_eq!(dry["plan"][0]["call"], "RegisterScalableTarget", "{dry}");
    assert_eq!(e.app.count("jobs").await, jobs);
    // A dry run checks the headers the real request would (an empty If-Match is malformed).
    let resp = e
        .app
        .client
        .post(e.app.url(&format!("{IC}/rollback?dry_run=true")))
        .bearer_auth(&e.token)
        .header("if-match", "")
        .json(&json!({"to_version": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "{:?}", resp.text().await);

    let resp = e
        .app
        .client
        .post(e.app.url(&format!("{IC}/rollback")))
        .bearer_auth(&e.token)
        .header("if-match", "\"5\"")
        .header("idempotency-key", "rollback-1")
        .json(&json!({"to_version": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["etag"], "\"6\"");
    let out: Value = resp.json().await.unwrap();
    let op = e
        .wait(out["target"]["last_operation"]["url"].as_str().unwrap())
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    let c = e.component("demo-component").await;
    assert_eq!(c["version"], 6);
    assert_eq!(c["enabled"], true);
    assert_eq!(c["phase"], "ready");
    let (_, v2) = e.call(Method::GET, &format!("{IC}/versions/2"), None).await;
    assert_eq!(c["spec"], v2["spec"], "version 6 has version 2's spec");
    let t =
        e.sb.aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_ids("inference-component/demo-component")
            .send()
            .await
            .unwrap();
    assert_eq!(t.scalable_targets()[0].max_capacity(), 2, "AWS converged");
    let (_, audit) = e.call(Method::GET, "/audit?action=rollback", None).await;
    assert_eq!(audit["items"][0]["version"], 6);
    assert_eq!(audit["items"][0]["after"]["rollback_to"], 2);
    let (_, page) = e.call(Method::GET, &format!("{IC}/versions"), None).await;
    assert_eq!(page["items"][0]["action"], "rollback");
    assert_eq!(page["items"][0]["rollback_to"], 2);
    assert_eq!(page["items"][0]["outcome"], "applied");

    // Rolling back to a version equal to the current one is a no-op, as an identical POST is.
    let (status, same) = e
        .call(
            Method::POST,
            &format!("{IC}/rollback"),
            Some(json!({"to_version": 2})),
        )
        .await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["changed"], false);
}

#[tokio::test]
async fn refused_rollbacks_change_nothing() {
    let e = env().await;
    five_changes(&e).await;
    e.sb.control(
        "POST",
        "/seed",
        json!({"endpoints": [{"name": "ep-other", "min_instances": 0, "max_instances": 2}],
               "components": [{"name": "ic-other", "endpoint": "ep-other"}]}),
    )
    .await;
    change_as(
        &e,
        &e.token,
        None,
        Method::POST,
        "/components/ic-other/scale-to-zero",
        None,
    )
    .await;
    let counts = (
        e.app.count("audit_log").await,
        e.app.count("jobs").await,
        e.component("demo-component").await["version"].clone(),
    );
    let attempt = |path: &str, body: Value, if_match: Option<&str>| {
        let mut r = e
            .app
            .client
            .post(e.app.url(path))
            .bearer_auth(&e.token)
            .json(&body);
        if let Some(m) = if_match {
            r = r.header("if-match", m);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    let rollback = format!("{IC}/rollback");
    assert_eq!(
        attempt(&rollback, json!({"to_version": 2}), Some("\"3\"")).await,
        412
    );
    assert_eq!(
        attempt(&rollback, json!({"to_version": 99}), None).await,
        404
    );
    // ic-other has one version: version 4 is demo-component's, not its.
    assert_eq!(
        attempt(
            "/components/ic-other/rollback",
            json!({"to_version": 4}),
            None
        )
        .await,
        404
    );
    assert_eq!(
        attempt(&rollback, json!([2]), None).await,
        422,
        "a spec is an object"
    );
    assert_eq!(attempt(&rollback, json!({}), None).await, 422);
    assert_eq!(
        attempt(&rollback, json!({"to_version": 2, "extra": 1}), None).await,
        422
    );
    assert_eq!(
        attempt("/components/ghost/rollback", json!({"to_version": 1}), None).await,
        404
    );
    assert_eq!(
        (
            e.app.count("audit_log").await,
            e.app.count("jobs").await,
            e.component("demo-component").await["version"].clone(),
        ),
        counts,
        "nothing changed"
    );
}

#[tokio::test]
async fn variants_have_the_same_history_and_rollback() {
    let e = env().await;
    let path = "/endpoints/demo-async-endpoint/variants/AllTraffic";
    let post = format!("{path}/scale-to-zero");
    change_as(
        &e,
        &e.token,
        None,
        Method::POST,
        &post,
        Some(json!({"max_capacity": 1})),
    )
    .await;
    change_as(
        &e,
        &e.token,
        None,
        Method::POST,
        &post,
        Some(json!({"max_capacity": 2})),
    )
    .await;
    let (_, page) = e.call(Method::GET, &format!("{path}/versions"), None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let (_, d) = e
        .call(Method::GET, &format!("{path}/versions/2/diff"), None)
        .await;
    assert_eq!(
        d["patch"],
        json!([{"op": "replace", "path": "/spec/max_capacity", "value": 2}])
    );
    let out = change_as(
        &e,
        &e.token,
        None,
        Method::POST,
        &format!("{path}/rollback"),
        Some(json!({"to_version": 1})),
    )
    .await;
    assert_eq!(out["target"]["version"], 3);
    let (_, v) = e.call(Method::GET, path, None).await;
    assert_eq!(v["spec"]["max_capacity"], 1);
}
