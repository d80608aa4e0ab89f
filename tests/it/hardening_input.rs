//! Bad input and outages (issue 14): every refusal is a clear problem+json that changes
//! nothing, from whichever layer refuses.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    aws::SandboxEnv, reconcile::clients, spawn_app, spawn_app_with, TestApp, TestOptions,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroscale::config::HttpArgs;

/// Sends raw bytes and reads the answer until the server closes or `wait` passes: the status,
/// the content type and the body.
async fn raw(app: &TestApp, request: &[u8], wait: Duration) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

fn assert_problem(what: &str, (status, content_type, body): &(u16, String, String), expected: u16) {
    assert_eq!(*status, expected, "{what}: {body}");
    assert_eq!(content_type, "application/problem+json", "{what}: {body:?}");
    let problem: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{what}: {body:?}"));
    assert_eq!(problem["status"], expected, "{what}");
    assert!(
        problem["code"].is_string() && problem["detail"].is_string(),
        "{what}: {problem}"
    );
}

async fn post_json(app: &TestApp, token: &str, path: &str, body: &str) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn json_arrays_and_scalars_are_not_specs() {
    let app = spawn_app().await;
    let token = app.token("portal", "read,write").await;
    for body in ["[]", "[5]", "[5, 1]", "5", "\"max_capacity\"", "true"] {
        let (status, problem) =
            post_json(&app, &token, "/components/ic-arrays/scale-to-zero", body).await;
        assert_eq!(status, 422, "{body} was taken as a spec: {problem}");
        assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
    }
    assert_eq!(
        app.count("targets").await,
        0,
        "a refused body changed something"
    );
    assert_eq!(app.count("audit_log").await, 0);
}

#[tokio::test]
async fn a_json_body_without_a_content_type_is_415() {
    let app = spawn_app().await;
    let token = app.token("portal", "read,write").await;
    let resp = app
        .client
        .post(app.url("/components/ic-no-type/scale-to-zero"))
        .bearer_auth(&token)
        .body(r#"{"max_capacity": 2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert_eq!(app.count("targets").await, 0);
}

#[tokio::test]
async fn every_error_from_every_layer_is_problem_json() {
    let app = spawn_app().await;
    let token = app.token("portal", "read,write").await;
    let auth = format!("Authorization: Bearer {token}\r\n");
    let long = "a".repeat(100 * 1024);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "invalid UTF-8 in a path segment",
            format!("GET /components/%FF%FE HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "a control byte in Authorization",
            b"GET /components HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \x01zz\r\nConnection: close\r\n\r\n".to_vec(),
            400,
        ),
        (
            "a control byte in If-Match",
            format!("POST /components/ic/scale-to-zero HTTP/1.1\r\nHost: x\r\n{auth}If-Match: \"1\x02\"\r\nConnection: close\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "a control byte in Idempotency-Key",
            format!("POST /components/ic/scale-to-zero HTTP/1.1\r\nHost: x\r\n{auth}Idempotency-Key: k\x03\r\nConnection: close\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "a control byte in X-On-Behalf-Of",
            format!("POST /components/ic/scale-to-zero HTTP/1.1\r\nHost: x\r\n{auth}X-On-Behalf-Of: al\x04ice\r\nConnection: close\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "a raw NUL in the path",
            b"GET /components/a\x00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            400,
        ),
        (
            "a 100 KB URI",
            format!("GET /components?prefix={long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes(),
            414,
        ),
    ];
    for (what, request, expected) in cases {
        let answer = raw(&app, &request, Duration::from_secs(5)).await;
        assert_problem(what, &answer, expected);
    }
    assert_eq!(app.count("targets").await, 0);
}

#[tokio::test]
async fn messages_say_names_and_etags_as_the_user_wrote_them() {
    let app = spawn_app().await;
    let token = app.token("portal", "read,write").await;
    let missing: Value = app
        .client
        .get(app.url("/components/never-seen"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let detail = missing["detail"].as_str().unwrap();
    assert!(
        detail.contains("inference component \"never-seen\"") && !detail.contains("ComponentName"),
        "{detail}"
    );
    let resp = app
        .client
        .post(app.url("/components/ic-etag/scale-to-zero"))
        .bearer_auth(&token)
        .header("if-match", "\"-1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let problem: Value = resp.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("\"-1\""),
        "{problem}"
    );
    assert_eq!(app.count("targets").await, 0);
}

/// Cursors are opaque and scoped to the list that issued them: a made-up one, a bare key
/// (what a client might guess from an id or a name) and one issued by another list are all
/// refused.
#[tokio::test]
async fn junk_cursors_are_refused_on_every_list() {
    let app = spawn_app().await;
    let token = app.token("portal", "read,write").await;
    for name in ["a", "b"] {
        let resp = app
            .client
            .post(app.url(&format!("/components/{name}/scale-to-zero?dry_run=false")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    let page = |path: String| {
        let (client, token) = (app.client.clone(), token.clone());
        async move {
            let page: Value = client
                .get(path)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page["next_cursor"]
                .as_str()
                .expect("a next page")
                .to_string()
        }
    };
    let audit_cursor = page(app.url("/audit?limit=1")).await;
    let components_cursor = page(app.url("/components?limit=1")).await;
    assert!(
        app.client
            .get(app.url(&format!("/components?cursor={components_cursor}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .is_success(),
        "the list's own cursor is taken"
    );
    for path in [
        "/components?cursor=junk".to_string(),
        "/endpoints?cursor=junk".to_string(),
        "/audit?cursor=junk".to_string(),
        "/components?cursor=%2F%2F%2F".to_string(),
        "/audit?cursor=1".to_string(),
        "/components?cursor=a".to_string(),
        format!("/components?cursor={audit_cursor}"),
        format!("/audit?cursor={components_cursor}"),
        format!("/endpoints?cursor={components_cursor}"),
    ] {
        let resp = app
            .client
            .get(app.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{path}");
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "cursor", "{path}: {problem}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_takes_a_null_body_as_the_spec_says() {
    let sb = SandboxEnv::demo().await;
    let app = spawn_app_with(TestOptions {
        aws: Some(clients(&sb.url).await),
        ..Default::default()
    })
    .await;
    let token = app.token("portal", "read,write").await;
    let (status, verdict) = post_json(
        &app,
        &token,
        "/components/demo-component/scale-to-zero?dry_run=true",
        "null",
    )
    .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(app.count("targets").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_down_the_api_answers_503_with_retry_after() {
    let app = spawn_app_with(TestOptions {
        via_proxy: true,
        ..Default::default()
    })
    .await;
    let token = app.token("portal", "read,write").await;
    let get = || {
        app.client
            .get(app.url("/components"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    app.proxy.as_ref().unwrap().cut();
    for resp in [
        get().await.unwrap(),
        app.client
            .post(app.url("/components/ic-outage/scale-to-zero"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(resp.status(), 503);
        assert!(resp.headers().contains_key("retry-after"));
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["code"], "database_unavailable", "{problem}");
    }
    app.proxy.as_ref().unwrap().restore();
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_cut_off_quickly() {
    let app = spawn_app_with(TestOptions {
        http: Some(HttpArgs {
            body_read_timeout: Duration::from_millis(500),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    let token = app.token("portal", "read,write").await;
    let request = format!(
        "POST /components/ic-slow/scale-to-zero HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"max_capa"
    );
    let started = Instant::now();
    let answer = raw(&app, request.as_bytes(), Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "held for {:?}",
        started.elapsed()
    );
    assert_problem("a short body", &answer, 408);
    assert_eq!(app.count("targets").await, 0);
}
