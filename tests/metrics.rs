//! Prometheus metrics, in a test binary of their own.
//!
//! The recorder is process-global, and so are its gauges: in the shared `it` binary another
//! test's app sets `zeroscale_job_queue_depth` and `zeroscale_targets` from its own database
//! between this test's refresh and its scrape (CI failed that way once). Alone in its process,
//! this test is the only writer of the values it asserts.

#[path = "it/common/mod.rs"]
mod common;

use common::spawn_app;

#[tokio::test]
async fn metrics_expose_http_jobs_and_targets_with_low_cardinality_labels() {
    let app = spawn_app().await;
    let token = app.token("portal", "read,write").await;
    app.client
        .post(app.url("/components/metric-ic/scale-to-zero"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    // A pause (with its expiry) is counted, so a forgotten one is visible.
    let paused = app
        .client
        .post(app.url("/components/metric-ic/pause"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status().as_u16(), 202);
    app.client
        .get(app.url("/components/metric-ic"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    app.client
        .get(app.url("/components/unknown-ic"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    // The workers' maintenance tick sets the queue and target gauges; a scrape reads memory.
    zeroscale::jobs::gauges::refresh_gauges(&app.pool)
        .await
        .unwrap();
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#"zeroscale_http_requests_total{route="/components/{name}/scale-to-zero",method="POST",status="202"}"#), "{text}");
    assert!(text.contains(r#"route="/components/{name}",method="GET",status="404""#));
    assert!(text.contains("zeroscale_http_request_duration_seconds_bucket"));
    assert!(
        !text.contains("metric-ic") && !text.contains("unknown-ic"),
        "no raw paths or names in labels"
    );
    assert!(
        text.contains(r#"zeroscale_targets{kind="component",phase="pending"} 1"#),
        "{text}"
    );
    assert!(text.contains("zeroscale_job_queue_depth 1"));
    assert!(
        text.contains(r#"zeroscale_targets_paused{kind="component"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"zeroscale_targets_paused{kind="endpoint_variant"} 0"#));
}
