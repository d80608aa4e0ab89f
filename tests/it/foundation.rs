//! The service foundation: request ids, readiness, problem+json errors, limits, shutdown.

use crate::common;

use std::time::Duration;

use axum::{
    routing::{get, post},
    Router,
};
use common::{spawn_app, spawn_app_with, TestOptions};
use serde::Deserialize;
use serde_json::Value;
use zeroscale::{
    api::{extract::ApiJson, AppState},
    config::HttpArgs,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Echo {
    name: String,
    count: u32,
}

/// A request held in a handler until the test lets it go: the test waits for `started` (the
/// handler is running) instead of sleeping and hoping it is.
#[derive(Clone, Default)]
struct Gate {
    started: std::sync::Arc<tokio::sync::Notify>,
    release: std::sync::Arc<tokio::sync::Notify>,
}

/// Routes mounted behind the real stack to exercise it. `/test/slow` answers "done" once the
/// gate releases it (never, unless the test does).
fn probe_routes() -> Router<AppState> {
    gated_routes(Gate::default())
}

fn gated_routes(gate: Gate) -> Router<AppState> {
    Router::new()
        .route(
            "/test/echo",
            post(|ApiJson(e): ApiJson<Echo>| async move { format!("{}:{}", e.name, e.count) }),
        )
        .route(
            "/test/slow",
            get(move || async move {
                gate.started.notify_one();
                gate.release.notified().await;
                "done"
            }),
        )
        .route(
            "/test/panic",
            get(|| async {
                if std::env::var_os("NEVER_SET_zeroscale").is_none() {
                    panic!("boom: secret detail");
                }
                "unreachable"
            }),
        )
}

async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let header_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(
        body["request_id"], header_id,
        "request id in body and header: {body}"
    );
    assert!(body["code"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

#[tokio::test]
async fn healthz_answers_and_request_ids_propagate() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "caller-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "caller-id-42");

    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    let made = resp.headers()["x-request-id"].to_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(made).is_ok(),
        "generated id is a UUID: {made}"
    );

    // A caller id that would pollute logs is replaced, not echoed.
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .unwrap();
    assert_ne!(resp.headers()["x-request-id"], "a b\tc");
    let long = "x".repeat(500);
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    assert_ne!(resp.headers()["x-request-id"].to_str().unwrap(), long);
}

#[tokio::test]
async fn readiness_flips_with_the_database_without_restart() {
    let app = spawn_app_with(TestOptions {
        via_proxy: true,
        ..Default::default()
    })
    .await;
    let proxy = app.proxy.as_ref().unwrap();
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["database"], "up");

    proxy.cut();
    let body = problem(
        app.client.get(app.url("/readyz")).send().await.unwrap(),
        503,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("database"),
        "{body}"
    );
    assert_eq!(body["code"], "unavailable");
    // Liveness does no I/O and stays up.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    proxy.restore();
    let mut ok = false;
    for _ in 0..50 {
        if app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "readiness came back after the database did");
}

#[tokio::test]
async fn bad_json_is_problem_json_with_request_id() {
    let app = spawn_app_with(TestOptions {
        extra: Some(probe_routes()),
        ..Default::default()
    })
    .await;
    let post = |body: &'static str, ct: Option<&'static str>| {
        let mut req = app
            .client
            .post(app.url("/test/echo"))
            .header("x-request-id", "rid-json-1")
            .body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    let ok = post(r#"{"name":"a","count":2}"#, Some("application/json"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "a:2");

    let body = problem(
        post(r#"{"name": "a", "#, Some("application/json"))
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_eq!(body["code"], "bad_request");
    assert_eq!(body["request_id"], "rid-json-1");

    let body = problem(
        post(
            r#"{"name":"a","count":2,"extra":1}"#,
            Some("application/json"),
        )
        .await
        .unwrap(),
        422,
    )
    .await;
    assert_eq!(body["code"], "validation_failed");
    assert!(body["detail"].as_str().unwrap().contains("extra"), "{body}");

    let body = problem(
        post(r#"{"name":"a","count":-1}"#, Some("application/json"))
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "count", "{body}");

    let body = problem(
        post(r#"{"name":"a","count":2}"#, Some("text/plain"))
            .await
            .unwrap(),
        415,
    )
    .await;
    assert_eq!(body["code"], "unsupported_media_type");
}

#[tokio::test]
async fn oversized_body_is_413_problem_json() {
    let http = HttpArgs {
        body_limit: 1024,
        ..Default::default()
    };
    let app = spawn_app_with(TestOptions {
        extra: Some(probe_routes()),
        http: Some(http),
        ..Default::default()
    })
    .await;
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(4096));
    let resp = app
        .client
        .post(app.url("/test/echo"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let body = problem(resp, 413).await;
    assert_eq!(body["code"], "payload_too_large");
}

#[tokio::test]
async fn panics_and_unknown_routes_are_problem_json() {
    let app = spawn_app_with(TestOptions {
        extra: Some(probe_routes()),
        ..Default::default()
    })
    .await;
    let body = problem(
        app.client.get(app.url("/test/panic")).send().await.unwrap(),
        500,
    )
    .await;
    assert!(
        !body["detail"].as_str().unwrap().contains("secret"),
        "500s are opaque: {body}"
    );
    problem(
        app.client
            .get(app.url("/no/such/route"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    problem(
        app.client.delete(app.url("/healthz")).send().await.unwrap(),
        405,
    )
    .await;
    // The server survived the panic.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn request_timeout_is_503_problem_json() {
    let http = HttpArgs {
        request_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let app = spawn_app_with(TestOptions {
        extra: Some(probe_routes()),
        http: Some(http),
        ..Default::default()
    })
    .await;
    let body = problem(
        app.client.get(app.url("/test/slow")).send().await.unwrap(),
        503,
    )
    .await;
    assert_eq!(body["code"], "timeout");
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let gate = Gate::default();
    let mut app = spawn_app_with(TestOptions {
        extra: Some(gated_routes(gate.clone())),
        ..Default::default()
    })
    .await;
    let client = app.client.clone();
    let url = app.url("/test/slow");
    let in_flight = tokio::spawn(async move { client.get(url).send().await });
    gate.started.notified().await;
    let started = std::time::Instant::now();
    app.shutdown.cancel();
    // Shutdown has begun with the request in its handler; now let it finish.
    gate.release.notify_one();
    let resp = in_flight
        .await
        .unwrap()
        .expect("in-flight request completed");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "done");
    app.stop().await.expect("server stopped cleanly");
    assert!(started.elapsed() < Duration::from_secs(10));
    // No new connections after shutdown.
    let fresh = reqwest::Client::new();
    assert!(fresh.get(app.url("/healthz")).send().await.is_err());
}

#[tokio::test]
async fn graceful_shutdown_gives_up_after_the_grace_period() {
    let http = HttpArgs {
        shutdown_grace: Duration::from_millis(100),
        ..Default::default()
    };
    let gate = Gate::default();
    let mut app = spawn_app_with(TestOptions {
        extra: Some(gated_routes(gate.clone())),
        http: Some(http),
        ..Default::default()
    })
    .await;
    let client = app.client.clone();
    let url = app.url("/test/slow");
    let in_flight = tokio::spawn(async move { client.get(url).send().await });
    gate.started.notified().await;
    // The request is never released: only the grace period can end the wait (the process
    // exits right after `run_until_stopped` returns). The bound is generous on purpose.
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("stopped at the grace period, not waiting for the held request")
        .unwrap();
    in_flight.abort();
}

/// The change function lives in sql/functions.sql, re-applied after the migrations by every
/// start-up that migrates: replicas migrating at once all succeed, and a function that is
/// missing (or was edited by hand) is back as the file has it.
#[tokio::test]
async fn every_migrating_start_reapplies_the_change_functions() {
    let app = spawn_app().await;
    sqlx::query(
        "DROP FUNCTION zs_record_change(target_kind, text, boolean, jsonb, integer, text, text, \
         text, text, text, text, text, boolean)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let count = "SELECT count(*) FROM pg_proc WHERE proname = 'zs_record_change'";
    let before: i64 = sqlx::query_scalar(count)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, 2);
    let starts = (0..4).map(|_| zeroscale::store::migrate(&app.pool));
    for started in futures::future::join_all(starts).await {
        started.expect("a replica migrating beside others starts");
    }
    let after: i64 = sqlx::query_scalar(count)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(after, 3, "every signature is back");
}
