//! What real AWS does that a kinder sandbox hid (issue "Real-AWS behaviour"): each test drives
//! the whole stack against the sandbox's AWS-like defaults and fails on a reconciler that shares
//! the old blind spot.

use crate::common;

use aws_sdk_applicationautoscaling::types::{
    AdjustmentType, PolicyType, ScalableDimension, ServiceNamespace, StepAdjustment,
    StepScalingPolicyConfiguration, SuspendedState,
};
use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use aws_sdk_sagemaker::types::{ProductionVariant, ProductionVariantInstanceType};
use common::reconcile::{condition, env, step_calls, Env};
use reqwest::Method;
use serde_json::{json, Value};

const IC_DIM: ScalableDimension = ScalableDimension::SageMakerInferenceComponentDesiredCopyCount;
const VARIANT_DIM: ScalableDimension = ScalableDimension::SageMakerVariantDesiredInstanceCount;
const IC: &str = "/components/demo-component";
const IC_RID: &str = "inference-component/demo-component";
const VARIANT: &str = "/endpoints/demo-async-endpoint/variants/AllTraffic";
const VARIANT_RID: &str = "endpoint/demo-async-endpoint/variant/AllTraffic";
const IC_ALARM: &str = "zeroscale/inference-component/demo-component/no-capacity";

/// (MinCapacity, MaxCapacity) of a scalable target, None when it is not registered.
async fn target(e: &Env, rid: &str) -> Option<(i32, i32)> {
    let t =
        e.sb.aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_ids(rid)
            .send()
            .await
            .unwrap();
    t.scalable_targets()
        .first()
        .map(|t| (t.min_capacity(), t.max_capacity()))
}

/// Waits until a registration (eventually consistent) is listed, as a client of AWS must.
async fn visible(e: &Env, rid: &str) {
    for _ in 0..3 {
        if target(e, rid).await.is_some() {
            return;
        }
    }
    panic!("{rid} never became visible");
}

async fn enable(e: &Env, path: &str, body: Value) -> Value {
    e.converge_at(Method::POST, &format!("{path}/scale-to-zero"), Some(body))
        .await
}

async fn disable(e: &Env, path: &str) -> Value {
    e.converge_at(Method::DELETE, &format!("{path}/scale-to-zero"), None)
        .await
}

fn step_config(upper: Option<f64>) -> StepScalingPolicyConfiguration {
    StepScalingPolicyConfiguration::builder()
        .adjustment_type(AdjustmentType::ChangeInCapacity)
        .cooldown(60)
        .step_adjustments(
            StepAdjustment::builder()
                .metric_interval_lower_bound(0.0)
                .set_metric_interval_upper_bound(upper)
                .scaling_adjustment(1)
                .build()
                .unwrap(),
        )
        .build()
}

/// Defect 1: a first enable whose first attempt fails after RegisterScalableTarget must not
/// take zeroscale's own (0, max) for the original capacity; disable then deregisters the
/// target zeroscale created, and restores one that existed before.
#[tokio::test]
async fn a_retried_first_enable_keeps_the_capacity_from_before_zeroscale() {
    let e = env().await;
    // The first policy put fails after the registration; the retry meets eventual consistency.
    e.sb.control("PUT", "/faults/PutScalingPolicy", json!({"fail": 1}))
        .await;
    let op = enable(&e, IC, json!({"max_capacity": 2})).await;
    assert_eq!(op["state"], "completed", "{op}");
    assert!(op["attempt"].as_i64().unwrap() >= 2, "it was retried: {op}");
    let op = disable(&e, IC).await;
    assert_eq!(op["state"], "completed", "{op}");
    assert_eq!(
        target(&e, IC_RID).await,
        None,
        "no target existed before zeroscale: disable deregisters it"
    );

    // A variant the team had registered at (1, 3) (long ago: visible by now), a retried
    // enable, then disable restores it.
    e.sb.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(VARIANT_RID)
        .scalable_dimension(VARIANT_DIM)
        .min_capacity(1)
        .max_capacity(3)
        .send()
        .await
        .unwrap();
    visible(&e, VARIANT_RID).await;
    e.sb.control("PUT", "/faults/PutScalingPolicy", json!({"fail": 1}))
        .await;
    let op = enable(&e, VARIANT, json!({"max_capacity": 3})).await;
    assert_eq!(op["state"], "completed", "{op}");
    assert!(op["attempt"].as_i64().unwrap() >= 2, "{op}");
    disable(&e, VARIANT).await;
    assert_eq!(target(&e, VARIANT_RID).await, Some((1, 3)), "restored");
}

/// Defect 2: scaling out leaves the endpoint and component `Updating` for minutes. A change in
/// that window waits (a Waiting condition naming the status, the phase kept) and converges once
/// the endpoint is InService again.
#[tokio::test]
async fn updating_during_a_scale_out_is_a_wait_not_a_failure() {
    let e = env().await;
    enable(&e, IC, json!({"max_capacity": 2})).await;
    // The wake-up alarm fires: +1 copy, and the endpoint is Updating for the provisioning delay.
    e.sb.cw
        .set_alarm_state()
        .alarm_name(IC_ALARM)
        .state_value(StateValue::Alarm)
        .state_reason("test")
        .send()
        .await
        .unwrap();
    let (status, out) = e
        .call(
            Method::POST,
            &format!("{IC}/scale-to-zero"),
            Some(json!({"max_capacity": 3})),
        )
        .await;
    assert_eq!(status, 202, "{out}");
    let op_url = out["target"]["last_operation"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let mut waiting = None;
    for _ in 0..100 {
        let t = e.target(IC).await;
        if let Some(c) = condition(&t, "Waiting", "EndpointUpdating")
            .or_else(|| condition(&t, "Waiting", "InferenceComponentUpdating"))
        {
            waiting = Some((t, c));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (t, c) = waiting.expect("a Waiting condition while AWS is Updating");
    assert!(c["message"].as_str().unwrap().contains("Updating"), "{c}");
    assert_ne!(t["phase"], "failed", "{t}");
    let (_, op) = e.call(Method::GET, &op_url, None).await;
    assert_ne!(op["state"], "discarded", "a wait is not fatal: {op}");
    e.sb.advance(60.0).await;
    let op = e.wait(&op_url).await;
    assert_eq!(op["state"], "completed", "{op}");
    let t = e.target(IC).await;
    assert_eq!(t["phase"], "ready");
    assert!(condition(&t, "Waiting", "EndpointUpdating").is_none());
}

/// Defect 3: the instance quota bounds instances; copies pack onto at most the variant's
/// MaxInstanceCount instances. The message says where each number came from.
#[tokio::test]
async fn a_components_quota_check_counts_instances_not_copies() {
    let e = env().await;
    e.sb.control("POST", "/seed", json!({
        "quotas": {"ml.g4dn.xlarge": 2},
        "endpoints": [
            {"name": "ep-two", "instance_type": "ml.g4dn.xlarge", "min_instances": 0, "max_instances": 2},
            {"name": "ep-three", "instance_type": "ml.g4dn.xlarge", "min_instances": 0, "max_instances": 3},
            {"name": "ep-other", "instance_type": "ml.g4dn.xlarge", "initial_instances": 1, "async": true}
        ],
        "components": [{"name": "ic-two", "endpoint": "ep-two"}, {"name": "ic-three", "endpoint": "ep-three"}]
    })).await;
    let op = enable(&e, "/components/ic-two", json!({"max_capacity": 8})).await;
    assert_eq!(
        op["state"], "completed",
        "8 copies on at most 2 instances fit a quota of 2: {op}"
    );
    let t = e.target("/components/ic-two").await;
    let headroom = condition(&t, "Degraded", "QuotaHeadroom")
        .expect("another endpoint already runs an instance of the type");
    let msg = headroom["message"].as_str().unwrap();
    assert!(msg.contains("ep-other"), "{msg}");
    let op = enable(&e, "/components/ic-three", json!({"max_capacity": 8})).await;
    assert_eq!(op["state"], "discarded", "{op}");
    let msg = op["errors"][0]["error"].as_str().unwrap();
    assert!(msg.contains("MaxInstanceCount 3"), "{msg}");
    assert!(msg.contains("applied"), "where the quota came from: {msg}");
}

/// Defect 4: DescribeScalingPolicies pages at 10; ours on page 2 are still ours.
#[tokio::test]
async fn policies_on_a_later_page_are_found() {
    let e = env().await;
    e.sb.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(IC_RID)
        .scalable_dimension(IC_DIM)
        .min_capacity(1)
        .max_capacity(4)
        .send()
        .await
        .unwrap();
    visible(&e, IC_RID).await;
    for i in 0..10 {
        e.sb.aas
            .put_scaling_policy()
            .policy_name(format!("team-{i:02}"))
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(IC_RID)
            .scalable_dimension(IC_DIM)
            .policy_type(PolicyType::StepScaling)
            .step_scaling_policy_configuration(step_config(None))
            .send()
            .await
            .unwrap();
    }
    let op = enable(&e, IC, json!({"max_capacity": 4})).await;
    assert_eq!(op["state"], "completed", "{op}");
    let seq = e.last_seq().await;
    let op = e.reconcile(IC).await;
    assert_eq!(op["output"]["plan"], json!([]), "{op}");
    assert!(e.writes_since(seq).await.is_empty());
    assert_eq!(
        op["output"]["foreign_policies"].as_array().unwrap().len(),
        10
    );
    disable(&e, IC).await;
    let left: Vec<String> =
        e.sb.aas
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(IC_RID)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap()
            .iter()
            .map(|p| p.policy_name().to_string())
            .collect();
    assert_eq!(left.len(), 10, "ours deleted, the team's kept: {left:?}");
    assert!(left.iter().all(|n| n.starts_with("team-")));
}

/// Defect 5: endpoint `a-b` / variant `c` and endpoint `a` / variant `b-c` get distinct alarms;
/// a target enabled under the old name is moved to the new one (put new, then delete old).
#[tokio::test]
async fn alarm_names_are_injective_and_old_names_are_moved() {
    let e = env().await;
    e.sb.control(
        "POST",
        "/seed",
        json!({"endpoints": [
            {"name": "a-b", "variant": "c", "initial_instances": 1, "async": true},
            {"name": "a", "variant": "b-c", "initial_instances": 1, "async": true}
        ]}),
    )
    .await;
    let one = enable(&e, "/endpoints/a-b/variants/c", json!({"max_capacity": 1})).await;
    let two = enable(&e, "/endpoints/a/variants/b-c", json!({"max_capacity": 1})).await;
    assert_eq!(
        (&one["state"], &two["state"]),
        (&json!("completed"), &json!("completed"))
    );
    let alarms =
        e.sb.cw
            .describe_alarms()
            .alarm_name_prefix("zeroscale")
            .send()
            .await
            .unwrap();
    let mut actions: Vec<(String, String)> = alarms
        .metric_alarms()
        .iter()
        .map(|a| {
            (
                a.alarm_name().unwrap().to_string(),
                a.alarm_actions()[0].clone(),
            )
        })
        .collect();
    actions.sort();
    assert_eq!(actions.len(), 2, "two alarms: {actions:?}");
    assert_ne!(actions[0].1, actions[1].1, "each wakes its own variant");

    // An alarm under the old (colliding) scheme, as an earlier zeroscale left it.
    enable(&e, VARIANT, json!({"max_capacity": 1})).await;
    let step_arn = e.target(VARIANT).await["observed"]["step_policy_arn"]
        .as_str()
        .unwrap()
        .to_string();
    let legacy = "zeroscale-demo-async-endpoint-AllTraffic-backlog-without-capacity";
    e.sb.cw
        .put_metric_alarm()
        .alarm_name(legacy)
        .metric_name("HasBacklogWithoutCapacity")
        .namespace("AWS/SageMaker")
        .statistic(Statistic::Average)
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("EndpointName")
                .value("demo-async-endpoint")
                .build(),
        )
        .period(60)
        .evaluation_periods(2)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .alarm_actions(&step_arn)
        .send()
        .await
        .unwrap();
    // The new alarm is missing (an old zeroscale never made it): the move puts it first.
    e.sb.cw
        .delete_alarms()
        .alarm_names(
            "zeroscale/endpoint/demo-async-endpoint/variant/AllTraffic/backlog-without-capacity",
        )
        .send()
        .await
        .unwrap();
    let op = e.reconcile(VARIANT).await;
    let calls = step_calls(&op);
    assert_eq!(calls, ["PutMetricAlarm", "DeleteAlarm"], "{op}");
    let left =
        e.sb.cw
            .describe_alarms()
            .alarm_names(legacy)
            .send()
            .await
            .unwrap();
    assert!(left.metric_alarms().is_empty(), "the old name is gone");
}

/// Defect 6: AWS reports a routine not-scaled activity as Failed with NotScaledReasons and no
/// message; it is not a scaling failure.
#[tokio::test]
async fn a_routine_not_scaled_activity_is_not_a_failure() {
    let e = env().await;
    enable(&e, VARIANT, json!({"max_capacity": 1})).await;
    let alarm =
        "zeroscale/endpoint/demo-async-endpoint/variant/AllTraffic/backlog-without-capacity";
    e.sb.cw
        .set_alarm_state()
        .alarm_name(alarm)
        .state_value(StateValue::Alarm)
        .state_reason("test")
        .send()
        .await
        .unwrap();
    e.reconcile(VARIANT).await;
    let t = e.target(VARIANT).await;
    let degraded: Vec<&Value> = t["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "Degraded")
        .collect();
    assert!(
        degraded.is_empty(),
        "AlreadyAtMaxCapacity is routine: {degraded:?}"
    );
    assert_eq!(t["phase"], "ready");
}

/// Defect 7: an account that never raised its quota has only AWS's default (the demo world).
#[tokio::test]
async fn the_default_quota_is_checked_when_none_was_applied() {
    let e = env().await;
    let seq = e.last_seq().await;
    let op = enable(&e, VARIANT, json!({"max_capacity": 9})).await;
    assert_eq!(op["state"], "discarded", "{op}");
    let msg = op["errors"][0]["error"].as_str().unwrap();
    assert!(msg.contains("AWS default"), "{msg}");
    assert!(msg.contains("is 4"), "{msg}");
    assert!(e.writes_since(seq).await.is_empty());
}

/// Defect 8: disabled alarm actions, suspended scale-out and edits to fields zeroscale sets are
/// drift, read and repaired.
#[tokio::test]
async fn disabled_actions_suspended_scale_out_and_every_set_field_are_drift() {
    let e = env().await;
    enable(&e, IC, json!({"max_capacity": 2})).await;
    e.sb.cw
        .disable_alarm_actions()
        .alarm_names(IC_ALARM)
        .send()
        .await
        .unwrap();
    let op = e.reconcile(IC).await;
    assert_eq!(step_calls(&op), ["PutMetricAlarm"], "{op}");
    let a =
        e.sb.cw
            .describe_alarms()
            .alarm_names(IC_ALARM)
            .send()
            .await
            .unwrap();
    assert_eq!(a.metric_alarms()[0].actions_enabled(), Some(true));

    e.sb.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(IC_RID)
        .scalable_dimension(IC_DIM)
        .suspended_state(
            SuspendedState::builder()
                .dynamic_scaling_out_suspended(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let op = e.reconcile(IC).await;
    assert_eq!(step_calls(&op), ["RegisterScalableTarget"], "{op}");
    let t =
        e.sb.aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_ids(IC_RID)
            .send()
            .await
            .unwrap();
    assert_eq!(
        t.scalable_targets()[0]
            .suspended_state()
            .unwrap()
            .dynamic_scaling_out_suspended(),
        Some(false)
    );

    // An upper bound on our step and an OK action on our alarm: both are ours to revert.
    let step_arn = e.target(IC).await["observed"]["step_policy_arn"]
        .as_str()
        .unwrap()
        .to_string();
    e.sb.aas
        .put_scaling_policy()
        .policy_name("zeroscale-demo-component-scale-from-zero")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(IC_RID)
        .scalable_dimension(IC_DIM)
        .policy_type(PolicyType::StepScaling)
        .step_scaling_policy_configuration(
            StepScalingPolicyConfiguration::builder()
                .adjustment_type(AdjustmentType::ChangeInCapacity)
                .cooldown(60)
                .metric_aggregation_type(
                    aws_sdk_applicationautoscaling::types::MetricAggregationType::Maximum,
                )
                .step_adjustments(
                    StepAdjustment::builder()
                        .metric_interval_lower_bound(0.0)
                        .metric_interval_upper_bound(10.0)
                        .scaling_adjustment(1)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let op = e.reconcile(IC).await;
    assert!(
        step_calls(&op).contains(&"PutStepScalingPolicy".to_string()),
        "{op}"
    );
    let a =
        e.sb.cw
            .describe_alarms()
            .alarm_names(IC_ALARM)
            .send()
            .await
            .unwrap();
    let a = &a.metric_alarms()[0];
    e.sb.cw
        .put_metric_alarm()
        .alarm_name(IC_ALARM)
        .metric_name("NoCapacityInvocationFailures")
        .namespace("AWS/SageMaker")
        .statistic(Statistic::Sum)
        .set_dimensions(Some(a.dimensions().to_vec()))
        .period(60)
        .evaluation_periods(1)
        .datapoints_to_alarm(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .treat_missing_data("missing")
        .set_alarm_description(a.alarm_description().map(str::to_string))
        .set_alarm_actions(Some(a.alarm_actions().to_vec()))
        .ok_actions(&step_arn)
        .send()
        .await
        .unwrap();
    let op = e.reconcile(IC).await;
    assert_eq!(step_calls(&op), ["PutMetricAlarm"], "{op}");
    let a =
        e.sb.cw
            .describe_alarms()
            .alarm_names(IC_ALARM)
            .send()
            .await
            .unwrap();
    assert!(a.metric_alarms()[0].ok_actions().is_empty());
    let t = e.target(IC).await;
    assert!(condition(&t, "Drifted", "RepairedOutsideChange").is_some());
}

/// Defect 9: disable deregisters a target zeroscale created, so an UpdateEndpoint that changes
/// the instance type goes through: disable, update, enable.
#[tokio::test]
async fn disable_steps_aside_so_the_endpoint_can_change_instance_type() {
    let e = env().await;
    enable(&e, VARIANT, json!({"max_capacity": 2})).await;
    disable(&e, VARIANT).await;
    assert_eq!(target(&e, VARIANT_RID).await, None);
    e.sb.sm
        .create_endpoint_config()
        .endpoint_config_name("demo-async-endpoint-g5-2x")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .instance_type(ProductionVariantInstanceType::MlG52Xlarge)
                .initial_instance_count(1)
                .build(),
        )
        .async_inference_config(
            aws_sdk_sagemaker::types::AsyncInferenceConfig::builder()
                .output_config(
                    aws_sdk_sagemaker::types::AsyncInferenceOutputConfig::builder()
                        .s3_output_path("s3://bucket/out/")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    e.sb.sm
        .update_endpoint()
        .endpoint_name("demo-async-endpoint")
        .endpoint_config_name("demo-async-endpoint-g5-2x")
        .send()
        .await
        .expect("nothing registered blocks the update");
    e.sb.advance(60.0).await;
    e.sb.control("PUT", "/quotas/ml.g5.2xlarge", json!({"value": 4}))
        .await;
    let op = enable(&e, VARIANT, json!({"max_capacity": 2})).await;
    assert_eq!(op["state"], "completed", "{op}");
    assert_eq!(target(&e, VARIANT_RID).await, Some((0, 2)));
}

/// Defect 10: a variant of instance pools gets no quota lookup for " for endpoint usage"; a
/// composite alarm that depends on ours is explained; an alarm already gone is no error; an
/// unreadable Service Quotas answer is reported as AWS gave it.
#[tokio::test]
async fn pools_composite_alarms_gone_alarms_and_quota_errors() {
    let e = env().await;
    e.sb.control(
        "POST",
        "/seed",
        json!({"endpoints": [{"name": "pooled", "instance_pools": ["ml.g5.xlarge", "ml.g6.xlarge"], "initial_instances": 1, "async": true}]}),
    )
    .await;
    let seq = e.last_seq().await;
    let op = enable(
        &e,
        "/endpoints/pooled/variants/AllTraffic",
        json!({"max_capacity": 2}),
    )
    .await;
    assert_eq!(op["state"], "completed", "{op}");
    let t = e.target("/endpoints/pooled/variants/AllTraffic").await;
    let w = condition(&t, "Degraded", "QuotaNotChecked").expect("says why");
    assert!(
        w["message"].as_str().unwrap().contains("ml.g6.xlarge"),
        "{w}"
    );
    let calls =
        e.sb.control("GET", &format!("/calls?since={seq}"), json!({}))
            .await;
    assert!(
        !calls.to_string().contains("\" for endpoint usage"),
        "no lookup of a quota with an empty instance type"
    );

    // A composite alarm depends on our alarm: disable explains what to change.
    enable(&e, IC, json!({"max_capacity": 2})).await;
    e.sb.cw
        .put_composite_alarm()
        .alarm_name("team-composite")
        .alarm_rule(format!("ALARM(\"{IC_ALARM}\")"))
        .send()
        .await
        .unwrap();
    let op = disable(&e, IC).await;
    assert_eq!(op["state"], "discarded", "{op}");
    let msg = op["errors"][0]["error"].as_str().unwrap();
    assert!(
        msg.contains("team-composite") && msg.contains("composite alarm"),
        "{msg}"
    );
    e.sb.cw
        .delete_alarms()
        .alarm_names("team-composite")
        .send()
        .await
        .unwrap();

    // Our alarm disappears between the observation and the delete: not an error.
    e.sb.control("PUT", "/faults/DeleteAlarms", json!({"latency_ms": 3000}))
        .await;
    let seq = e.last_seq().await;
    let (status, out) = e.call(Method::POST, &format!("{IC}/reconcile"), None).await;
    assert_eq!(status, 202, "{out}");
    let op_url = out["target"]["last_operation"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    // The DeleteAlarms call is in flight (delayed) once the observation is done.
    common::wait_for(
        "the observation (DescribeAlarms)",
        std::time::Duration::from_secs(10),
        || async {
            let ops = e.ops_since(seq).await;
            ops.iter().any(|o| o == "DescribeAlarms").then_some(())
        },
    )
    .await;
    // Aim for the window in which the delayed DeleteAlarms is in flight. Either order passes
    // the assertions below: an alarm gone before the delete arrives answers ResourceNotFound,
    // which is tolerated the same way.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let gone = e.sb.sandbox.world().alarms.remove(IC_ALARM);
    assert!(gone.is_some(), "deleted behind zeroscale's back");
    let op = e.wait(&op_url).await;
    assert_eq!(op["state"], "completed", "{op}");
    assert_eq!(op["attempt"], 1, "tolerated, not retried: {op}");
    e.sb.control("DELETE", "/faults", json!({})).await;

    // Service Quotas answers 403 with an empty body: the warning says what came back.
    e.sb.control(
        "PUT",
        "/faults/ListServiceQuotas",
        json!({"status": 403, "times": 5}),
    )
    .await;
    e.sb.control("POST", "/seed", json!({"endpoints": [{"name": "ep-q", "instance_type": "ml.p4d.24xlarge", "initial_instances": 1, "async": true}]})).await;
    let op = enable(
        &e,
        "/endpoints/ep-q/variants/AllTraffic",
        json!({"max_capacity": 1}),
    )
    .await;
    assert_eq!(op["state"], "completed", "{op}");
    let t = e.target("/endpoints/ep-q/variants/AllTraffic").await;
    let w = condition(&t, "Degraded", "QuotaUnreadable").expect("warned");
    let msg = w["message"].as_str().unwrap();
    assert!(msg.contains("HTTP 403"), "{msg}");
    assert!(!msg.contains("Unknown"), "{msg}");
}
