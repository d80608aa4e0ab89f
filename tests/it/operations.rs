//! What the platform team runs on: write rate limits, CORS (metrics: `tests/metrics.rs`).

use crate::common;

use std::time::Duration;

use common::{spawn_app, spawn_app_with, TestOptions};
use zeroscale::config::HttpArgs;

#[tokio::test]
async fn writes_are_rate_limited_per_token_with_retry_after() {
    let http = HttpArgs {
        write_rate_limit: 1,
        write_burst: 2,
        ..Default::default()
    };
    let app = spawn_app_with(TestOptions {
        http: Some(http),
        ..Default::default()
    })
    .await;
    let a = app.token("a", "read,write").await;
    let b = app.token("b", "read,write").await;
    let post = |t: &str, i: u32| {
        app.client
            .post(app.url(&format!("/components/ic-{i}/scale-to-zero")))
            .bearer_auth(t)
            .send()
    };
    assert_eq!(post(&a, 1).await.unwrap().status(), 202);
    assert_eq!(post(&a, 2).await.unwrap().status(), 202);
    let limited = post(&a, 3).await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        post(&b, 4).await.unwrap().status(),
        202,
        "other tokens have their own budget"
    );
    assert_eq!(
        app.client
            .get(app.url("/components"))
            .bearer_auth(&a)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "reads are not limited"
    );
    assert_eq!(
        app.count("target_versions").await,
        3,
        "the limited write changed nothing"
    );
    // The server's own answer says when to come back; no guess at the refill rate.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        post(&a, 5).await.unwrap().status(),
        202,
        "the budget refills by the time Retry-After said"
    );
}

#[tokio::test]
async fn cors_is_off_by_default_and_allows_the_configured_portal() {
    let app = spawn_app().await;
    let pre = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/components"))
        .header("origin", "https://portal.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(!pre.headers().contains_key("access-control-allow-origin"));

    let http = HttpArgs {
        cors_origins: vec!["https://portal.example".into()],
        ..Default::default()
    };
    let app = spawn_app_with(TestOptions {
        http: Some(http),
        ..Default::default()
    })
    .await;
    let pre = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            app.url("/components/x/scale-to-zero"),
        )
        .header("origin", "https://portal.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,idempotency-key,if-match",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://portal.example"
    );
    let other = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}
