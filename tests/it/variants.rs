//! Async-inference endpoint variants (seed 001) end to end: the API, the job engine and the
//! reconciler against the sandbox, over HTTP with the real AWS SDK clients.

use crate::common;

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use common::{
    aws::SandboxEnv,
    reconcile::{env, step_calls, Env},
};
use reqwest::Method;
use serde_json::{json, Value};

const DIM: ScalableDimension = ScalableDimension::SageMakerVariantDesiredInstanceCount;
const RID: &str = "endpoint/demo-async-endpoint/variant/AllTraffic";
const PATH: &str = "/endpoints/demo-async-endpoint/variants/AllTraffic";
const ALARM: &str =
    "zeroscale/endpoint/demo-async-endpoint/variant/AllTraffic/backlog-without-capacity";

fn scale_to_zero() -> String {
    format!("{PATH}/scale-to-zero")
}

/// (desired, current) instances of the async endpoint's variant.
async fn instances(sb: &SandboxEnv) -> (i32, i32) {
    let ep = sb
        .sm
        .describe_endpoint()
        .endpoint_name("demo-async-endpoint")
        .send()
        .await
        .unwrap();
    let v = &ep.production_variants()[0];
    (
        v.desired_instance_count().unwrap(),
        v.current_instance_count().unwrap(),
    )
}

async fn alarm_state(sb: &SandboxEnv) -> Option<StateValue> {
    sb.cw
        .describe_alarms()
        .alarm_names(ALARM)
        .send()
        .await
        .unwrap()
        .metric_alarms()
        .first()
        .and_then(|a| a.state_value().cloned())
}

fn conditions(target: &Value) -> Vec<(String, String)> {
    target["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Acceptance: enabling produces exactly seed 001's target, policies and alarm, field by field;
/// queued requests at zero raise the backlog metric, the alarm fires after 2 datapoints and the
/// endpoint scales to 1.
#[tokio::test]
async fn enabling_produces_seed_001s_objects_and_a_backlog_at_zero_brings_an_instance_back() {
    let e = env().await;
    let op = e
        .converge_at(
            Method::POST,
            &scale_to_zero(),
            Some(json!({"max_capacity": 2})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    assert_eq!(
        step_calls(&op),
        [
            "RegisterScalableTarget",
            "PutTargetTrackingPolicy",
            "PutStepScalingPolicy",
            "PutMetricAlarm"
        ]
    );

    let aas = &e.sb.aas;
    let t = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(RID)
        .scalable_dimension(DIM)
        .send()
        .await
        .unwrap();
    let t = &t.scalable_targets()[0];
    assert_eq!((t.min_capacity(), t.max_capacity()), (0, 2));
    let p = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .send()
        .await
        .unwrap();
    assert_eq!(p.scaling_policies().len(), 2);
    let by_name = |n: &str| {
        p.scaling_policies()
            .iter()
            .find(|p| p.policy_name() == n)
            .unwrap_or_else(|| panic!("policy {n}"))
            .clone()
    };
    let tt = by_name("zeroscale-demo-async-endpoint-AllTraffic-target-tracking");
    assert_eq!(tt.policy_type().as_str(), "TargetTrackingScaling");
    let ttc = tt.target_tracking_scaling_policy_configuration().unwrap();
    assert_eq!(ttc.target_value(), 5.0);
    assert!(ttc.predefined_metric_specification().is_none());
    let m = ttc.customized_metric_specification().unwrap();
    assert_eq!(m.metric_name(), Some("ApproximateBacklogSizePerInstance"));
    assert_eq!(m.namespace(), Some("AWS/SageMaker"));
    assert_eq!(m.statistic().map(|s| s.as_str()), Some("Average"));
    assert_eq!(m.dimensions().len(), 1);
    assert_eq!(m.dimensions()[0].name(), "EndpointName");
    assert_eq!(m.dimensions()[0].value(), "demo-async-endpoint");
    assert_eq!(
        (ttc.scale_in_cooldown(), ttc.scale_out_cooldown()),
        (Some(600), Some(300))
    );
    let step = by_name("zeroscale-demo-async-endpoint-AllTraffic-scale-from-zero");
    assert_eq!(step.policy_type().as_str(), "StepScaling");
    let sc = step.step_scaling_policy_configuration().unwrap();
    assert_eq!(sc.adjustment_type().unwrap().as_str(), "ChangeInCapacity");
    assert_eq!(sc.metric_aggregation_type().unwrap().as_str(), "Average");
    assert_eq!(sc.cooldown(), Some(300));
    assert_eq!(sc.step_adjustments().len(), 1);
    assert_eq!(
        sc.step_adjustments()[0].metric_interval_lower_bound(),
        Some(0.0)
    );
    assert_eq!(sc.step_adjustments()[0].metric_interval_upper_bound(), None);
    assert_eq!(sc.step_adjustments()[0].scaling_adjustment(), 1);

    let alarms =
        e.sb.cw
            .describe_alarms()
            .alarm_names(ALARM)
            .send()
            .await
            .unwrap();
    let a = &alarms.metric_alarms()[0];
    assert_eq!(a.metric_name(), Some("HasBacklogWithoutCapacity"));
    assert_eq!(a.namespace(), Some("AWS/SageMaker"));
    assert_eq!(a.statistic(), Some(&Statistic::Average));
    assert_eq!(a.dimensions().len(), 1);
    assert_eq!(a.dimensions()[0].name(), Some("EndpointName"));
    assert_eq!(a.dimensions()[0].value(), Some("demo-async-endpoint"));
    assert_eq!(
        (a.period(), a.evaluation_periods(), a.datapoints_to_alarm()),
        (Some(60), Some(2), Some(2))
    );
    assert_eq!(a.threshold(), Some(1.0));
    assert_eq!(
        a.comparison_operator(),
        Some(&ComparisonOperator::GreaterThanOrEqualToThreshold)
    );
    assert_eq!(a.treat_missing_data(), Some("missing"));
    assert_eq!(a.alarm_actions(), [step.policy_arn().to_string()]);

    let (status, v) = e.call(Method::GET, PATH, None).await;
    assert_eq!(status, 200);
    assert_eq!(v["endpoint"], "demo-async-endpoint");
    assert_eq!(v["variant"], "AllTraffic");
    assert_eq!(v["phase"], "ready", "{v}");
    assert_eq!(v["aws"]["resource_id"], RID);
    assert_eq!(v["aws"]["alarm"], ALARM);
    assert_eq!(v["observed"]["step_policy_arn"], step.policy_arn());
    assert_eq!(v["observed"]["resolved_max_capacity"], 2);

    // Idle: target tracking takes it to zero (its low alarm needs 15 of 15 minutes). Queued
    // requests at zero breach the alarm; one datapoint is not enough (2 of 2), the second fires
    // it and the step policy adds one.
    e.sb.advance(15.0 * 60.0).await;
    assert_eq!(instances(&e.sb).await, (0, 0), "idle: scaled in to zero");
    e.sb.control(
        "POST",
        "/invoke",
        json!({"endpoint": "demo-async-endpoint", "count": 3}),
    )
    .await;
    e.sb.advance(60.0).await;
    assert_ne!(alarm_state(&e.sb).await, Some(StateValue::Alarm));
    assert_eq!(instances(&e.sb).await.0, 0, "one datapoint of two");
    e.sb.advance(60.0).await;
    assert_eq!(alarm_state(&e.sb).await, Some(StateValue::Alarm));
    assert_eq!(
        instances(&e.sb).await.0,
        1,
        "the alarm fired the step policy"
    );
    e.sb.advance(60.0).await;
    assert_eq!(instances(&e.sb).await, (1, 1));

    // Disable: our alarm goes, and the target zeroscale registered is deregistered (its
    // policies with it), so the endpoint can be updated freely.
    e.sb.advance(60.0).await; // the scale-out's Updating passes
    let op = e.converge_at(Method::DELETE, &scale_to_zero(), None).await;
    assert_eq!(op["state"], "completed", "{op}");
    assert_eq!(step_calls(&op), ["DeleteAlarm", "DeregisterScalableTarget"]);
    assert!(alarm_state(&e.sb).await.is_none(), "our alarm is gone");
    let p = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .send()
        .await
        .unwrap();
    assert!(p.scaling_policies().is_empty());
    let (_, v) = e.call(Method::GET, PATH, None).await;
    assert_eq!(v["phase"], "disabled");
}

/// Acceptance: a max above the quota is refused before any AWS write, with an error naming the
/// quota, its value, the requested max and how to raise it.
#[tokio::test]
async fn a_max_above_the_instance_quota_is_refused_before_any_write() {
    let e = env().await;
    let before = e.last_seq().await;
    let (status, out) = e
        .call(
            Method::POST,
            &format!("{}?dry_run=true", scale_to_zero()),
            Some(json!({"max_capacity": 9})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(out["verdict"], "blocked", "{out}");
    let op = e
        .converge_at(
            Method::POST,
            &scale_to_zero(),
            Some(json!({"max_capacity": 9})),
        )
        .await;
    assert_eq!(op["state"], "discarded", "a permanent failure: {op}");
    assert_eq!(op["attempt"], 1, "no retries for a refusal");
    let (_, v) = e.call(Method::GET, PATH, None).await;
    assert_eq!(v["phase"], "failed");
    let message = v["conditions"][0]["message"].as_str().unwrap();
    for part in [
        "max_capacity 9",
        "quota 'ml.g5.xlarge for endpoint usage'",
        "4 instances",
        "Service Quotas",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    assert_eq!(
        out["message"].as_str(),
        Some(message),
        "dry run says the same"
    );
    assert!(
        e.writes_since(before).await.is_empty(),
        "nothing written to AWS"
    );
}

/// Acceptance: with the quota lowered after enabling, a scale-out failure appears in the
/// variant's status with the scaling activity's message.
#[tokio::test]
async fn a_scale_out_failure_after_the_quota_is_lowered_shows_in_the_status() {
    let e = env().await;
    // 3 instances, plus the one demo-endpoint runs, fit the quota of 4.
    let op = e
        .converge_at(
            Method::POST,
            &scale_to_zero(),
            Some(json!({"max_capacity": 3})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    let (_, v) = e.call(Method::GET, PATH, None).await;
    assert!(
        !conditions(&v).iter().any(|(t, _)| t == "Degraded"),
        "healthy to begin with: {v}"
    );
    // Two instances are in use in the account (one per demo endpoint); the quota drops to 1.
    e.sb.control("PUT", "/quotas/ml.g5.xlarge", json!({"value": 1}))
        .await;
    // A burst: backlog per instance 40 for 3 minutes (target tracking's high alarm needs 3 of 3)
    // wants 8 instances, clamped to the max of 3: it fails.
    for _ in 0..3 {
        e.sb.control(
            "POST",
            "/invoke",
            json!({"endpoint": "demo-async-endpoint", "count": 40}),
        )
        .await;
        e.sb.advance(60.0).await;
    }
    assert_eq!(instances(&e.sb).await, (1, 1), "nothing scaled");

    let (status, out) = e
        .call(Method::POST, &format!("{PATH}/reconcile"), None)
        .await;
    assert_eq!(status, 202, "{out}");
    e.wait(out["target"]["last_operation"]["url"].as_str().unwrap())
        .await;
    let (_, v) = e.call(Method::GET, PATH, None).await;
    assert!(
        conditions(&v).contains(&("Degraded".into(), "ScalingActivityFailed".into())),
        "{v}"
    );
    let failure = &v["observed"]["last_scaling_failure"];
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.contains(
            "The account-level service limit 'ml.g5.xlarge for endpoint usage' is 1 Instances"
        ),
        "{message}"
    );
    let degraded = v["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["reason"] == "ScalingActivityFailed")
        .unwrap();
    assert_eq!(degraded["message"].as_str(), Some(message));
}

async fn wait_for(e: &Env, body: &Value) -> Value {
    e.wait(body["target"]["last_operation"]["url"].as_str().unwrap())
        .await
}

/// Acceptance: an async endpoint and a component enabled at once converge independently.
#[tokio::test]
async fn a_component_and_an_async_variant_enabled_at_once_converge_independently() {
    let e = env().await;
    let variant_path = scale_to_zero();
    let ((s1, component), (s2, variant)) = tokio::join!(
        e.call(
            Method::POST,
            "/components/demo-component/scale-to-zero",
            Some(json!({"max_capacity": 2}))
        ),
        e.call(
            Method::POST,
            &variant_path,
            Some(json!({"max_capacity": 3}))
        ),
    );
    assert_eq!((s1, s2), (202, 202), "{component} {variant}");
    let (op1, op2) = tokio::join!(wait_for(&e, &component), wait_for(&e, &variant));
    assert_eq!(
        (&op1["state"], &op2["state"]),
        (&json!("completed"), &json!("completed"))
    );
    assert_ne!(op1["target"], op2["target"], "separate job keys");

    let (_, c) = e
        .call(Method::GET, "/components/demo-component", None)
        .await;
    let (_, v) = e.call(Method::GET, PATH, None).await;
    assert_eq!(
        (&c["phase"], &v["phase"]),
        (&json!("ready"), &json!("ready"))
    );
    assert_eq!(c["observed"]["resolved_max_capacity"], 2);
    assert_eq!(v["observed"]["resolved_max_capacity"], 3);
    assert_ne!(
        c["observed"]["step_policy_arn"],
        v["observed"]["step_policy_arn"]
    );

    let targets =
        e.sb.aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .send()
            .await
            .unwrap();
    let mut found: Vec<(String, String, i32)> = targets
        .scalable_targets()
        .iter()
        .map(|t| {
            (
                t.resource_id().to_string(),
                t.scalable_dimension().as_str().to_string(),
                t.max_capacity(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (RID.to_string(), DIM.as_str().to_string(), 3),
            (
                "inference-component/demo-component".to_string(),
                "sagemaker:inference-component:DesiredCopyCount".to_string(),
                2
            ),
        ]
    );

    // Turning one off leaves the other alone.
    let op = e.converge_at(Method::DELETE, &scale_to_zero(), None).await;
    assert_eq!(op["state"], "completed");
    let (_, c) = e
        .call(Method::GET, "/components/demo-component", None)
        .await;
    assert_eq!(c["phase"], "ready");
    let alarms =
        e.sb.cw
            .describe_alarms()
            .alarm_names("zeroscale/inference-component/demo-component/no-capacity")
            .send()
            .await
            .unwrap();
    assert_eq!(
        alarms.metric_alarms().len(),
        1,
        "the component's alarm stays"
    );
    let (_, list) = e.call(Method::GET, "/endpoints", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["phase"], "disabled");
    let (_, list) = e.call(Method::GET, "/components", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

/// Acceptance: a component route given an endpoint name (or the reverse) gets a clear 422 on
/// the first enable and a clear 404 on reads, each naming the right route; a real-time endpoint
/// on a variant route fails with a message saying why.
#[tokio::test]
async fn the_wrong_kind_of_name_gets_a_clear_answer() {
    let e = env().await;
    let (status, p) = e
        .call(
            Method::POST,
            "/components/demo-async-endpoint/scale-to-zero",
            None,
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["code"], "wrong_target_kind");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("POST /endpoints/demo-async-endpoint/variants/{variant}/scale-to-zero")
            && detail.contains("AllTraffic"),
        "{detail}"
    );
    let (status, p) = e
        .call(
            Method::POST,
            "/endpoints/demo-component/variants/AllTraffic/scale-to-zero",
            None,
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("use POST /components/demo-component/scale-to-zero"),
        "{p}"
    );
    assert_eq!(e.app.count("targets").await, 0, "refusals change nothing");
    assert_eq!(e.app.count("jobs").await, 0);
    assert_eq!(e.app.count("audit_log").await, 0);

    // Once each is managed under its own kind, reading it through the other points the way.
    let (_, c) = e
        .call(
            Method::POST,
            "/components/demo-component/scale-to-zero",
            None,
        )
        .await;
    let (_, v) = e.call(Method::POST, &scale_to_zero(), None).await;
    wait_for(&e, &c).await;
    wait_for(&e, &v).await;
    let (status, p) = e
        .call(Method::GET, "/components/demo-async-endpoint", None)
        .await;
    assert_eq!(status, 404);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("see /endpoints/demo-async-endpoint/variants/AllTraffic"),
        "{p}"
    );
    let (status, p) = e
        .call(
            Method::GET,
            "/endpoints/demo-component/variants/AllTraffic",
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("see /components/demo-component"),
        "{p}"
    );

    // A real-time endpoint exists, so the API accepts; the job refuses and says why.
    let op = e
        .converge_at(
            Method::POST,
            "/endpoints/demo-endpoint/variants/AllTraffic/scale-to-zero",
            None,
        )
        .await;
    assert_eq!(op["state"], "discarded");
    let (_, v) = e
        .call(
            Method::GET,
            "/endpoints/demo-endpoint/variants/AllTraffic",
            None,
        )
        .await;
    let message = v["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("real-time endpoint") && message.contains("/components/"),
        "{message}"
    );
    // A variant the endpoint does not have is named with the ones it has.
    let op = e
        .converge_at(
            Method::POST,
            "/endpoints/demo-async-endpoint/variants/Blue/scale-to-zero",
            None,
        )
        .await;
    assert_eq!(op["state"], "discarded");
    let (_, v) = e
        .call(
            Method::GET,
            "/endpoints/demo-async-endpoint/variants/Blue",
            None,
        )
        .await;
    assert!(
        v["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("has no production variant \"Blue\"; its variants are: AllTraffic"),
        "{v}"
    );
}

/// Dynamic scale-out suspended on the target (someone paused it) means the step policy cannot
/// wake it: AWS records no activity for it, so the target's SuspendedState is read and the
/// suspension repaired as drift; the backlog then wakes the variant.
#[tokio::test]
async fn a_suspended_scale_out_is_repaired_as_drift() {
    let e = env().await;
    let op = e
        .converge_at(
            Method::POST,
            &scale_to_zero(),
            Some(json!({"max_capacity": 2})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    e.sb.advance(16.0 * 60.0).await;
    assert_eq!(instances(&e.sb).await, (0, 0));
    e.sb.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .suspended_state(
            aws_sdk_applicationautoscaling::types::SuspendedState::builder()
                .dynamic_scaling_out_suspended(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    e.sb.control(
        "POST",
        "/invoke",
        json!({"endpoint": "demo-async-endpoint", "count": 3}),
    )
    .await;
    e.sb.advance(120.0).await;
    assert_eq!(alarm_state(&e.sb).await, Some(StateValue::Alarm));
    assert_eq!(instances(&e.sb).await, (0, 0), "scale-out is suspended");

    let (_, out) = e
        .call(Method::POST, &format!("{PATH}/reconcile"), None)
        .await;
    let op = wait_for(&e, &out).await;
    assert_eq!(step_calls(&op), ["RegisterScalableTarget"], "{op}");
    let (_, v) = e.call(Method::GET, PATH, None).await;
    assert!(
        conditions(&v).contains(&("Drifted".into(), "RepairedOutsideChange".into())),
        "{v}"
    );
    // The alarm is still in ALARM: its action runs again next period and wakes the variant.
    e.sb.advance(60.0).await;
    assert_eq!(instances(&e.sb).await.0, 1, "woken once resumed");
}
