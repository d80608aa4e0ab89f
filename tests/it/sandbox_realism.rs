//! The sandbox is never kinder than AWS: pages, deletes, endpoint updates, not-scaled
//! activities and target tracking's own alarms, each as AWS's models and guides describe them
//! (shared/docs/aws-facts.md), driven by the real AWS SDK for Rust clients.

use crate::common;

use aws_sdk_applicationautoscaling::{
    error::ProvideErrorMetadata,
    types::{
        AdjustmentType, MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension,
        ServiceNamespace, StepAdjustment, StepScalingPolicyConfiguration,
        TargetTrackingScalingPolicyConfiguration,
    },
};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
use aws_sdk_sagemaker::types::{ProductionVariant, ProductionVariantInstanceType};
use common::aws::SandboxEnv;
use serde_json::json;

const IC_DIM: ScalableDimension = ScalableDimension::SageMakerInferenceComponentDesiredCopyCount;
const VARIANT_DIM: ScalableDimension = ScalableDimension::SageMakerVariantDesiredInstanceCount;
const RID: &str = "inference-component/demo-component";

fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

async fn register(env: &SandboxEnv, rid: &str, dim: ScalableDimension) {
    env.register_visible(rid, dim, 0, 4).await;
}

fn step() -> StepScalingPolicyConfiguration {
    StepScalingPolicyConfiguration::builder()
        .adjustment_type(AdjustmentType::ChangeInCapacity)
        .cooldown(60)
        .step_adjustments(
            StepAdjustment::builder()
                .metric_interval_lower_bound(0.0)
                .scaling_adjustment(1)
                .build()
                .unwrap(),
        )
        .build()
}

async fn put_step(env: &SandboxEnv, rid: &str, dim: ScalableDimension, name: &str) -> String {
    env.aas
        .put_scaling_policy()
        .policy_name(name)
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(dim)
        .policy_type(PolicyType::StepScaling)
        .step_scaling_policy_configuration(step())
        .send()
        .await
        .unwrap()
        .policy_arn()
        .to_string()
}

async fn put_alarm(env: &SandboxEnv, name: &str, action: Option<&str>) {
    let mut put = env
        .cw
        .put_metric_alarm()
        .alarm_name(name)
        .metric_name("NoCapacityInvocationFailures")
        .namespace("AWS/SageMaker")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold);
    if let Some(a) = action {
        put = put.alarm_actions(a);
    }
    put.send().await.unwrap();
}

#[tokio::test]
async fn every_list_and_describe_pages_as_aws_does() {
    let env = SandboxEnv::demo().await;
    register(&env, RID, IC_DIM).await;
    for i in 0..12 {
        put_step(&env, RID, IC_DIM, &format!("p{i:02}")).await;
    }
    // DescribeScalingPolicies: 10 a page by default, MaxResults at most 10 (the model).
    let first = env
        .aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .send()
        .await
        .unwrap();
    assert_eq!(first.scaling_policies().len(), 10);
    assert!(first.next_token().is_some());
    let too_many = env
        .aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .max_results(11)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&too_many), "ValidationException");
    let all: Vec<_> = env
        .aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(all.len(), 12, "the SDK's paginator follows NextToken");
    let bad = env
        .aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad), "InvalidNextTokenException");

    // DescribeAlarms: 50 a page by default, MaxRecords 1-100.
    for i in 0..55 {
        put_alarm(&env, &format!("a{i:02}"), None).await;
    }
    let page = env.cw.describe_alarms().send().await.unwrap();
    assert_eq!(page.metric_alarms().len(), 50);
    assert!(page.next_token().is_some());
    let over = env
        .cw
        .describe_alarms()
        .max_records(101)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&over), "ValidationError");

    // DescribeScalableTargets takes at most 50 ResourceIds.
    let ids: Vec<String> = (0..51)
        .map(|i| format!("inference-component/x{i}"))
        .collect();
    let over = env
        .aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .set_resource_ids(Some(ids))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&over), "ValidationException");

    // ListEndpoints: 10 a page by default.
    let mut endpoints = Vec::new();
    for i in 0..11 {
        endpoints.push(json!({"name": format!("ep-{i:02}")}));
    }
    env.control("POST", "/seed", json!({ "endpoints": endpoints }))
        .await;
    let page = env.sm.list_endpoints().send().await.unwrap();
    assert_eq!(page.endpoints().len(), 10);
    assert!(page.next_token().is_some());
}

#[tokio::test]
async fn step_policies_list_their_alarms_and_deleting_one_unhooks_them() {
    let env = SandboxEnv::demo().await;
    register(&env, RID, IC_DIM).await;
    let arn = put_step(&env, RID, IC_DIM, "step").await;
    put_alarm(&env, "wake", Some(&arn)).await;
    let p = env
        .aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .send()
        .await
        .unwrap();
    let alarms: Vec<&str> = p.scaling_policies()[0]
        .alarms()
        .iter()
        .map(|a| a.alarm_name())
        .collect();
    assert_eq!(alarms, ["wake"], "the alarms that invoke the step policy");
    env.aas
        .delete_scaling_policy()
        .policy_name("step")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(IC_DIM)
        .send()
        .await
        .unwrap();
    let a = env
        .cw
        .describe_alarms()
        .alarm_names("wake")
        .send()
        .await
        .unwrap();
    assert_eq!(a.metric_alarms().len(), 1, "the alarm stays");
    assert!(
        a.metric_alarms()[0].alarm_actions().is_empty(),
        "but no longer names the deleted policy"
    );
}

#[tokio::test]
async fn delete_alarms_deletes_what_exists_and_refuses_when_a_composite_depends() {
    let env = SandboxEnv::demo().await;
    put_alarm(&env, "mine", None).await;
    put_alarm(&env, "kept", None).await;
    let partly = env
        .cw
        .delete_alarms()
        .alarm_names("mine")
        .alarm_names("gone")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&partly), "ResourceNotFound");
    let left = env.cw.describe_alarms().send().await.unwrap();
    let names: Vec<_> = left
        .metric_alarms()
        .iter()
        .filter_map(|a| a.alarm_name())
        .collect();
    assert_eq!(names, ["kept"], "the existing one was deleted anyway");
    env.cw
        .put_composite_alarm()
        .alarm_name("both")
        .alarm_rule("ALARM(\"kept\")")
        .send()
        .await
        .unwrap();
    let refused = env
        .cw
        .delete_alarms()
        .alarm_names("kept")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&refused), "ValidationError");
    assert!(
        refused
            .message()
            .unwrap_or_default()
            .contains("composite alarm(s) depending on it"),
        "AWS's words, which do not name the composite"
    );
    // A rule may name the alarm by ARN too.
    put_alarm(&env, "by-arn", None).await;
    env.cw
        .put_composite_alarm()
        .alarm_name("arn-rule")
        .alarm_rule("ALARM(arn:aws:cloudwatch:us-east-1:123456789012:alarm:by-arn)")
        .send()
        .await
        .unwrap();
    let refused = env
        .cw
        .delete_alarms()
        .alarm_names("by-arn")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&refused), "ValidationError");
}

#[tokio::test]
async fn update_endpoint_refuses_a_registered_variants_new_instance_type_and_delete_deregisters() {
    let env = SandboxEnv::demo().await;
    let rid = "endpoint/demo-async-endpoint/variant/AllTraffic";
    register(&env, rid, VARIANT_DIM).await;
    put_step(&env, rid, VARIANT_DIM, "step").await;
    env.sm
        .create_endpoint_config()
        .endpoint_config_name("bigger")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .instance_type(ProductionVariantInstanceType::MlG52Xlarge)
                .initial_instance_count(1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let refused = env
        .sm
        .update_endpoint()
        .endpoint_name("demo-async-endpoint")
        .endpoint_config_name("bigger")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&refused), "ValidationException");
    assert!(refused
        .message()
        .unwrap_or_default()
        .contains("must be deregistered"));
    env.aas
        .deregister_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(VARIANT_DIM)
        .send()
        .await
        .unwrap();
    env.sm
        .update_endpoint()
        .endpoint_name("demo-async-endpoint")
        .endpoint_config_name("bigger")
        .send()
        .await
        .unwrap();
    let ep = env
        .sm
        .describe_endpoint()
        .endpoint_name("demo-async-endpoint")
        .send()
        .await
        .unwrap();
    assert_eq!(ep.endpoint_status().unwrap().as_str(), "Updating");
    env.advance(60.0).await;
    // Registered again, then the endpoint deleted: AWS deregisters the variant's target.
    register(&env, rid, VARIANT_DIM).await;
    env.sm
        .delete_endpoint()
        .endpoint_name("demo-async-endpoint")
        .send()
        .await
        .unwrap();
    let t = env
        .aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(rid)
        .send()
        .await
        .unwrap();
    assert!(t.scalable_targets().is_empty());
}

#[tokio::test]
async fn not_scaled_activities_come_in_aws_shape_and_target_tracking_alarms_as_aws_makes_them() {
    let env = SandboxEnv::demo().await;
    register(&env, RID, IC_DIM).await;
    let tt = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(1.0)
        .predefined_metric_specification(
            PredefinedMetricSpecification::builder()
                .predefined_metric_type(MetricType::SageMakerInferenceComponentInvocationsPerCopy)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = env
        .aas
        .put_scaling_policy()
        .policy_name("tt")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(IC_DIM)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(tt)
        .send()
        .await
        .unwrap();
    let names: Vec<String> = out
        .alarms()
        .iter()
        .map(|a| a.alarm_name().to_string())
        .collect();
    let alarms = env
        .cw
        .describe_alarms()
        .set_alarm_names(Some(names))
        .send()
        .await
        .unwrap();
    let mut periods: Vec<(i32, i32)> = alarms
        .metric_alarms()
        .iter()
        .map(|a| {
            (
                a.evaluation_periods().unwrap(),
                a.datapoints_to_alarm().unwrap(),
            )
        })
        .collect();
    periods.sort();
    assert_eq!(periods, [(3, 3), (15, 15)], "high 3 of 3, low 15 of 15");

    // A step policy at max capacity: a not-scaled activity, AWS's shape.
    env.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(IC_DIM)
        .max_capacity(1)
        .send()
        .await
        .unwrap();
    let arn = put_step(&env, RID, IC_DIM, "step").await;
    put_alarm(&env, "wake", Some(&arn)).await;
    env.cw
        .set_alarm_state()
        .alarm_name("wake")
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("test")
        .send()
        .await
        .unwrap();
    let acts = env
        .aas
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .include_not_scaled_activities(true)
        .send()
        .await
        .unwrap();
    let a = &acts.scaling_activities()[0];
    assert_eq!(a.status_code().as_str(), "Failed");
    assert_eq!(a.status_message(), None, "no StatusMessage");
    let r = &a.not_scaled_reasons()[0];
    assert_eq!(
        (r.code(), r.max_capacity()),
        ("AlreadyAtMaxCapacity", Some(1))
    );
    let plain = env
        .aas
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .send()
        .await
        .unwrap();
    assert!(
        plain
            .scaling_activities()
            .iter()
            .all(|a| a.not_scaled_reasons().is_empty()),
        "only listed with IncludeNotScaledActivities"
    );
}
