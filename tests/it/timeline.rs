//! The timeline (issue 18): events built from what the observation pass reads (scaling
//! activities, the scale-from-zero alarm's state) and from zeroscale's own runs, against the
//! sandbox on its frozen clock through the real SDK clients.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use zeroscale::reconcile::fleet;

use crate::common::reconcile::{env, Env};

const IC: &str = "demo-component";

async fn pass(e: &Env) -> fleet::PassReport {
    fleet::pass(&e.aws, &e.app.pool).await.unwrap()
}

async fn sandbox_now(e: &Env) -> f64 {
    e.sb.control("GET", "/clock", json!({})).await["now"]
        .as_f64()
        .unwrap()
}

async fn timeline(e: &Env, query: &str) -> Vec<Value> {
    let (status, page) = e
        .call(
            Method::GET,
            &format!("/components/{IC}/timeline{query}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn at(ev: &Value) -> f64 {
    let t: DateTime<Utc> = ev["at"].as_str().unwrap().parse().unwrap();
    t.timestamp_millis() as f64 / 1e3
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

fn find<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {events:#?}"))
}

/// Enables the component and lets target tracking take it to zero (15 minutes idle).
async fn enabled_at_zero(e: &Env, spec: Value) {
    let op = e.converge(Method::POST, IC, Some(spec)).await;
    assert_eq!(op["state"], "completed", "{op}");
    e.sb.advance(16.0 * 60.0).await;
    assert_eq!(e.sb.copies(IC).await, (0, 0), "idle: scaled in to zero");
}

#[tokio::test]
async fn a_full_cycle_is_on_the_timeline_in_order_with_the_sandbox_clocks_durations() {
    let e = env().await;
    e.sb.control("PUT", "/settings", json!({"provisioning_delay_seconds": 180.0, "eventual_consistency": true, "status_transitions": true}))
        .await;
    enabled_at_zero(&e, json!({"max_capacity": 2, "labels": {"team": "search"}})).await;
    pass(&e).await;
    // A request at zero, 10 s into a minute: the alarm evaluates the minute at its end and
    // fires the step policy; the copy takes the provisioning delay to come into service.
    let t0 = sandbox_now(&e).await;
    let minute = (t0 / 60.0).floor() * 60.0;
    e.sb.advance(minute + 70.0 - t0).await;
    let requested = sandbox_now(&e).await;
    e.sb.control("POST", "/invoke", json!({"component": IC, "count": 3}))
        .await;
    e.sb.advance(60.0).await;
    let report = pass(&e).await;
    assert!(report.events_recorded >= 3, "{report:?}");
    let during = timeline(&e, "").await;
    assert_eq!(
        kinds(&during),
        [
            "enabled",
            "scaled_to_zero",
            "request_at_zero",
            "alarm_fired",
            "wake_started"
        ],
        "{during:#?}"
    );
    e.sb.advance(200.0).await;
    pass(&e).await;
    pass(&e).await; // a second pass over the same activities records nothing twice
    let events = timeline(&e, "").await;
    assert_eq!(
        kinds(&events),
        [
            "enabled",
            "scaled_to_zero",
            "request_at_zero",
            "alarm_fired",
            "wake_started",
            "capacity_in_service"
        ],
        "{events:#?}"
    );
    let (request, alarm) = (
        find(&events, "request_at_zero"),
        find(&events, "alarm_fired"),
    );
    let (wake, ready) = (
        find(&events, "wake_started"),
        find(&events, "capacity_in_service"),
    );
    assert_eq!(
        at(request),
        (requested / 60.0).floor() * 60.0,
        "the minute of the first request"
    );
    assert_eq!(
        at(alarm),
        at(request) + 60.0,
        "evaluated at the end of that minute"
    );
    assert_eq!(at(wake), at(alarm), "the alarm's action starts the wake");
    assert_eq!(at(ready) - at(wake), 180.0, "the provisioning delay");
    assert_eq!(ready["details"]["wake_seconds"], 180.0);
    let zero = find(&events, "scaled_to_zero");
    assert_eq!(
        wake["details"]["at_zero_seconds"].as_f64().unwrap(),
        at(wake) - at(zero)
    );
    assert_eq!(events[0]["labels"], json!({"team": "search"}));
    // The fleet-wide route filters by label and kind, and pages.
    let (_, page) = e
        .call(
            Method::GET,
            "/events?label=team=search&kind=wake_started,capacity_in_service&limit=1",
            None,
        )
        .await;
    assert_eq!(kinds(page["items"].as_array().unwrap()), ["wake_started"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = e
        .call(Method::GET, &format!("/events?label=team=search&kind=wake_started,capacity_in_service&limit=1&cursor={cursor}"), None)
        .await;
    assert_eq!(
        kinds(next["items"].as_array().unwrap()),
        ["capacity_in_service"]
    );
    assert!(next["next_cursor"].is_null(), "{next}");
    let (_, other) = e.call(Method::GET, "/events?label=team=ads", None).await;
    assert_eq!(other["items"], json!([]));
    let (status, bad) = e.call(Method::GET, "/events?label=team", None).await;
    assert_eq!(
        (status, bad["errors"][0]["field"].as_str()),
        (422, Some("label")),
        "{bad}"
    );
    // Metrics: wakes counted, latency by kind only.
    let metrics = e.app.metrics().await;
    assert!(
        metrics.contains("zeroscale_wakes_total{kind=\"component\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zeroscale_wake_seconds_count{kind=\"component\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("zeroscale_wake_seconds_count{kind=\"component\",target"));
}

#[tokio::test]
async fn a_quota_failure_and_a_capacity_shortage_are_failed_wakes_in_aws_words() {
    let e = env().await;
    e.sb.control("PUT", "/settings", json!({"provisioning_delay_seconds": 120.0, "eventual_consistency": true, "status_transitions": true}))
        .await;
    enabled_at_zero(&e, json!({"max_capacity": 2})).await;
    pass(&e).await;
    // The account's quota is lowered after the enable's preflight passed.
    e.sb.control("PUT", "/quotas/ml.g5.xlarge", json!({"value": 0.0}))
        .await;
    e.sb.control("POST", "/invoke", json!({"component": IC, "count": 1}))
        .await;
    e.sb.advance(61.0).await;
    pass(&e).await;
    let events = timeline(&e, "?kind=wake_failed").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["details"]["reason"], "quota");
    assert!(
        events[0]["details"]["message"].as_str().unwrap().contains(
            "account-level service limit 'ml.g5.xlarge for endpoint usage' is 0 Instances"
        ),
        "{events:#?}"
    );
    // Quota back; now AWS has no ml.g5.xlarge: the alarm's repeated action tries again, runs for
    // the provisioning delay and fails.
    e.sb.control("PUT", "/quotas/ml.g5.xlarge", json!({"value": 4.0}))
        .await;
    e.sb.control("PUT", "/insufficient-capacity/ml.g5.xlarge", json!({}))
        .await;
    e.sb.control("POST", "/invoke", json!({"component": IC, "count": 1}))
        .await;
    e.sb.advance(60.0).await;
    pass(&e).await;
    let open = timeline(&e, "?kind=wake_failed").await;
    assert_eq!(
        open.len(),
        1,
        "the second attempt is still in progress: {open:#?}"
    );
    e.sb.advance(121.0).await;
    pass(&e).await;
    let failed = timeline(&e, "?kind=wake_failed").await;
    assert_eq!(failed.len(), 2, "{failed:#?}");
    assert_eq!(failed[1]["details"]["reason"], "insufficient_capacity");
    assert!(failed[1]["details"]["message"]
        .as_str()
        .unwrap()
        .contains("Unable to provision requested ML compute capacity"));
    let started = timeline(&e, "?kind=wake_started").await;
    assert_eq!(at(&failed[1]) - at(&started[1]), 120.0, "{started:#?}");
    let metrics = e.app.metrics().await;
    assert!(
        metrics.contains("zeroscale_wake_failures_total{kind=\"component\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_wake_application_auto_scaling_declines_is_a_failed_wake_not_scaled() {
    let mut e = env().await;
    e.allow_unfinished_jobs("the drift repair of MaxCapacity 0 may still run when the test ends");
    enabled_at_zero(&e, json!({"max_capacity": 2})).await;
    pass(&e).await;
    // Someone sets MaxCapacity to 0 outside zeroscale: the step policy runs at zero and
    // Application Auto Scaling does not scale (AlreadyAtMaxCapacity).
    e.sb.aas
        .register_scalable_target()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Sagemaker)
        .resource_id(format!("inference-component/{IC}"))
        .scalable_dimension(aws_sdk_applicationautoscaling::types::ScalableDimension::SageMakerInferenceComponentDesiredCopyCount)
        .min_capacity(0)
        .max_capacity(0)
        .send()
        .await
        .unwrap();
    e.sb.control("POST", "/invoke", json!({"component": IC, "count": 1}))
        .await;
    e.sb.advance(61.0).await;
    pass(&e).await;
    let failed = timeline(&e, "?kind=wake_failed").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["details"]["reason"], "not_scaled");
    assert_eq!(
        failed[0]["details"]["not_scaled_reasons"][0]["code"],
        "AlreadyAtMaxCapacity"
    );
    assert!(
        timeline(&e, "?kind=wake_started").await.is_empty(),
        "no wake started"
    );
}

#[tokio::test]
async fn a_variant_has_its_timeline_and_pause_and_resume_are_on_it() {
    let e = env().await;
    let path = "/endpoints/demo-async-endpoint/variants/AllTraffic";
    let op = e
        .converge_at(
            Method::POST,
            &format!("{path}/scale-to-zero"),
            Some(json!({"max_capacity": 1})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    let op = e
        .converge_at(Method::POST, &format!("{path}/pause"), None)
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    let op = e
        .converge_at(Method::POST, &format!("{path}/resume"), None)
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    let (status, page) = e.call(Method::GET, &format!("{path}/timeline"), None).await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(kinds(items), ["enabled", "paused", "resumed"], "{page:#}");
    assert_eq!(
        items[0]["target"],
        "endpoint/demo-async-endpoint/variant/AllTraffic"
    );
    assert_eq!(items[0]["target_kind"], "endpoint_variant");
    let (status, _) = e
        .call(
            Method::GET,
            "/endpoints/demo-async-endpoint/variants/Other/timeline",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, bad) = e
        .call(Method::GET, &format!("{path}/timeline?kind=nap"), None)
        .await;
    assert_eq!(
        (status, bad["errors"][0]["field"].as_str()),
        (422, Some("kind")),
        "{bad}"
    );
}
