//! The protocol-level AWS sandbox, driven by the real AWS SDK for Rust clients over HTTP.

use crate::common;

use aws_sdk_applicationautoscaling::{
    error::ProvideErrorMetadata,
    types::{
        AdjustmentType, CustomizedMetricSpecification, MetricAggregationType, MetricDimension,
        MetricStatistic, MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension,
        ServiceNamespace, StepAdjustment, StepScalingPolicyConfiguration, SuspendedState,
        TargetTrackingScalingPolicyConfiguration,
    },
};
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricDatum, StateValue, Statistic,
};
use aws_sdk_sagemaker::types::{
    AsyncInferenceConfig, AsyncInferenceOutputConfig, InferenceComponentRuntimeConfig,
    InferenceComponentSpecification, ManagedInstanceScalingStatus, ProductionVariant,
    ProductionVariantInstanceType, ProductionVariantManagedInstanceScaling,
};
use common::aws::SandboxEnv;
use serde_json::json;

const IC_DIM: ScalableDimension = ScalableDimension::SageMakerInferenceComponentDesiredCopyCount;
const VARIANT_DIM: ScalableDimension = ScalableDimension::SageMakerVariantDesiredInstanceCount;

fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

async fn register(env: &SandboxEnv, rid: &str, dim: ScalableDimension, min: i32, max: i32) {
    env.register_visible(rid, dim, min, max).await;
}

fn step_config(
    aggregation: MetricAggregationType,
    cooldown: i32,
    adjustment: i32,
) -> StepScalingPolicyConfiguration {
    StepScalingPolicyConfiguration::builder()
        .adjustment_type(AdjustmentType::ChangeInCapacity)
        .metric_aggregation_type(aggregation)
        .cooldown(cooldown)
        .step_adjustments(
            StepAdjustment::builder()
                .metric_interval_lower_bound(0.0)
                .scaling_adjustment(adjustment)
                .build()
                .unwrap(),
        )
        .build()
}

async fn put_step(
    env: &SandboxEnv,
    name: &str,
    rid: &str,
    dim: ScalableDimension,
    cfg: StepScalingPolicyConfiguration,
) -> String {
    env.aas
        .put_scaling_policy()
        .policy_name(name)
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(dim)
        .policy_type(PolicyType::StepScaling)
        .step_scaling_policy_configuration(cfg)
        .send()
        .await
        .unwrap()
        .policy_arn()
        .to_string()
}

#[tokio::test]
async fn sagemaker_operations_over_json_1_1() {
    let env = SandboxEnv::start().await;
    let sm = &env.sm;
    sm.create_endpoint_config()
        .endpoint_config_name("ep-config")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .instance_type(ProductionVariantInstanceType::MlG5Xlarge)
                .initial_instance_count(1)
                .managed_instance_scaling(
                    ProductionVariantManagedInstanceScaling::builder()
                        .status(ManagedInstanceScalingStatus::Enabled)
                        .min_instance_count(0)
                        .max_instance_count(4)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let cfg = sm
        .describe_endpoint_config()
        .endpoint_config_name("ep-config")
        .send()
        .await
        .unwrap();
    let mis = cfg.production_variants()[0]
        .managed_instance_scaling()
        .unwrap();
    assert_eq!(
        (mis.min_instance_count(), mis.max_instance_count()),
        (Some(0), Some(4))
    );
    sm.create_endpoint()
        .endpoint_name("ep")
        .endpoint_config_name("ep-config")
        .send()
        .await
        .unwrap();
    let status = |ep: &aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput| {
        ep.endpoint_status().unwrap().as_str().to_string()
    };
    let ep = sm
        .describe_endpoint()
        .endpoint_name("ep")
        .send()
        .await
        .unwrap();
    assert_eq!(status(&ep), "Creating", "as on AWS, creation takes a while");
    env.advance(60.0).await;
    let ep = sm
        .describe_endpoint()
        .endpoint_name("ep")
        .send()
        .await
        .unwrap();
    assert_eq!(status(&ep), "InService");
    assert_eq!(
        ep.production_variants()[0].current_instance_count(),
        Some(1)
    );

    let zero = sm
        .create_inference_component()
        .inference_component_name("ic")
        .endpoint_name("ep")
        .variant_name("AllTraffic")
        .specification(
            InferenceComponentSpecification::builder()
                .model_name("m")
                .build(),
        )
        .runtime_config(
            InferenceComponentRuntimeConfig::builder()
                .copy_count(0)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&zero),
        "ValidationException",
        "a component cannot start at zero copies"
    );
    sm.create_inference_component()
        .inference_component_name("ic")
        .endpoint_name("ep")
        .variant_name("AllTraffic")
        .specification(
            InferenceComponentSpecification::builder()
                .model_name("m")
                .build(),
        )
        .runtime_config(
            InferenceComponentRuntimeConfig::builder()
                .copy_count(2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(env.copies("ic").await, (2, 2));
    let listed = sm
        .list_inference_components()
        .endpoint_name_equals("ep")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.inference_components().len(), 1);
    assert_eq!(
        sm.list_inference_components()
            .endpoint_name_equals("other")
            .send()
            .await
            .unwrap()
            .inference_components()
            .len(),
        0
    );
    let ep = sm
        .describe_endpoint()
        .endpoint_name("ep")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ep.production_variants()[0].current_instance_count(),
        Some(2),
        "one instance per copy"
    );

    let busy = sm
        .delete_endpoint()
        .endpoint_name("ep")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&busy), "ValidationException");
    sm.delete_inference_component()
        .inference_component_name("ic")
        .send()
        .await
        .unwrap();
    sm.delete_endpoint()
        .endpoint_name("ep")
        .send()
        .await
        .unwrap();
    let missing = sm
        .describe_endpoint()
        .endpoint_name("ep")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "ValidationException");
    assert!(missing
        .message()
        .unwrap()
        .contains("Could not find endpoint"));

    sm.create_endpoint_config()
        .endpoint_config_name("async-config")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .instance_type(ProductionVariantInstanceType::MlG5Xlarge)
                .initial_instance_count(1)
                .build(),
        )
        .async_inference_config(
            AsyncInferenceConfig::builder()
                .output_config(
                    AsyncInferenceOutputConfig::builder()
                        .s3_output_path("s3://b/o/")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    sm.create_endpoint()
        .endpoint_name("async-ep")
        .endpoint_config_name("async-config")
        .send()
        .await
        .unwrap();
    let a = sm
        .describe_endpoint()
        .endpoint_name("async-ep")
        .send()
        .await
        .unwrap();
    assert!(a.async_inference_config().is_some());
}

#[tokio::test]
async fn application_auto_scaling_validates_like_aws() {
    let env = SandboxEnv::demo().await;
    let aas = &env.aas;
    let rid = "inference-component/demo-component";
    let missing = aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id("inference-component/ghost")
        .scalable_dimension(IC_DIM)
        .min_capacity(0)
        .max_capacity(2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&missing),
        "ValidationException",
        "RegisterScalableTarget fails only with ValidationException"
    );
    let no_caps = aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&no_caps), "ValidationException");
    let inverted = aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .min_capacity(3)
        .max_capacity(2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&inverted), "ValidationException");
    let wrong_dim = aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(VARIANT_DIM)
        .min_capacity(0)
        .max_capacity(2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&wrong_dim), "ValidationException");
    let unregistered = aas
        .put_scaling_policy()
        .policy_name("p")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .policy_type(PolicyType::StepScaling)
        .step_scaling_policy_configuration(step_config(MetricAggregationType::Maximum, 60, 1))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&unregistered), "ObjectNotFoundException");

    register(&env, rid, IC_DIM, 0, 3).await;
    // An update may omit capacities; they keep their values. SuspendedState goes through it.
    aas.register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .suspended_state(
            SuspendedState::builder()
                .dynamic_scaling_in_suspended(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let t = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(rid)
        .send()
        .await
        .unwrap();
    let t = &t.scalable_targets()[0];
    assert_eq!((t.min_capacity(), t.max_capacity()), (0, 3));
    assert_eq!(
        t.suspended_state().unwrap().dynamic_scaling_in_suspended(),
        Some(true)
    );

    let tt = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(1.0)
        .predefined_metric_specification(
            PredefinedMetricSpecification::builder()
                .predefined_metric_type(MetricType::SageMakerInferenceComponentInvocationsPerCopy)
                .build()
                .unwrap(),
        )
        .scale_in_cooldown(300)
        .scale_out_cooldown(300)
        .build()
        .unwrap();
    let tt_out = aas
        .put_scaling_policy()
        .policy_name("tt")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(tt)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tt_out.alarms().len(),
        2,
        "target tracking creates its own alarms"
    );
    let aws_alarms = env
        .cw
        .describe_alarms()
        .alarm_name_prefix("TargetTracking-")
        .send()
        .await
        .unwrap();
    assert_eq!(aws_alarms.metric_alarms().len(), 2);
    put_step(
        &env,
        "step",
        rid,
        IC_DIM,
        step_config(MetricAggregationType::Maximum, 60, 1),
    )
    .await;

    let gap = StepScalingPolicyConfiguration::builder()
        .adjustment_type(AdjustmentType::ChangeInCapacity)
        .step_adjustments(
            StepAdjustment::builder()
                .metric_interval_lower_bound(0.0)
                .metric_interval_upper_bound(1.0)
                .scaling_adjustment(1)
                .build()
                .unwrap(),
        )
        .step_adjustments(
            StepAdjustment::builder()
                .metric_interval_lower_bound(2.0)
                .scaling_adjustment(2)
                .build()
                .unwrap(),
        )
        .build();
    let bad = aas
        .put_scaling_policy()
        .policy_name("gappy")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .policy_type(PolicyType::StepScaling)
        .step_scaling_policy_configuration(gap)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad), "ValidationException");

    let by_name = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .policy_names("step")
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.scaling_policies().len(), 1);
    assert_eq!(
        by_name.scaling_policies()[0].policy_type().as_str(),
        "StepScaling"
    );
    let by_rid = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .send()
        .await
        .unwrap();
    assert_eq!(by_rid.scaling_policies().len(), 2);
    let other = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id("inference-component/demo")
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.scaling_policies().len(),
        0,
        "resource id matched exactly, not as a prefix"
    );

    aas.delete_scaling_policy()
        .policy_name("tt")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .send()
        .await
        .unwrap();
    assert_eq!(
        env.cw
            .describe_alarms()
            .alarm_name_prefix("TargetTracking-")
            .send()
            .await
            .unwrap()
            .metric_alarms()
            .len(),
        0
    );
    let again = aas
        .delete_scaling_policy()
        .policy_name("tt")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&again), "ObjectNotFoundException");
    aas.deregister_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .send()
        .await
        .unwrap();
    assert_eq!(
        aas.describe_scaling_policies()
            .service_namespace(ServiceNamespace::Sagemaker)
            .send()
            .await
            .unwrap()
            .scaling_policies()
            .len(),
        0,
        "deregistering deletes the policies"
    );
    let gone = aas
        .deregister_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&gone), "ObjectNotFoundException");
}

#[tokio::test]
async fn cloudwatch_alarms_over_cbor() {
    let env = SandboxEnv::demo().await;
    let cw = &env.cw;
    let put = |threshold: f64| {
        cw.put_metric_alarm()
            .alarm_name("zs-nocap")
            .metric_name("NoCapacityInvocationFailures")
            .namespace("AWS/SageMaker")
            .statistic(Statistic::Sum)
            .dimensions(
                Dimension::builder()
                    .name("InferenceComponentName")
                    .value("demo-component")
                    .build(),
            )
            .period(60)
            .evaluation_periods(1)
            .datapoints_to_alarm(1)
            .threshold(threshold)
            .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
            .alarm_actions("arn:aws:sns:us-east-1:123456789012:topic")
            .send()
    };
    put(1.0).await.unwrap();
    let a = cw
        .describe_alarms()
        .alarm_names("zs-nocap")
        .send()
        .await
        .unwrap();
    let alarm = &a.metric_alarms()[0];
    assert_eq!(
        alarm.state_value(),
        Some(&StateValue::InsufficientData),
        "new alarms start INSUFFICIENT_DATA"
    );
    assert_eq!(alarm.threshold(), Some(1.0));
    assert_eq!(alarm.period(), Some(60));
    assert_eq!(alarm.dimensions()[0].value(), Some("demo-component"));
    assert!(alarm.state_updated_timestamp().is_some());

    cw.set_alarm_state()
        .alarm_name("zs-nocap")
        .state_value(StateValue::Alarm)
        .state_reason("test")
        .send()
        .await
        .unwrap();
    put(5.0).await.unwrap();
    let a = cw
        .describe_alarms()
        .alarm_name_prefix("zs-")
        .send()
        .await
        .unwrap();
    assert_eq!(
        a.metric_alarms()[0].threshold(),
        Some(5.0),
        "an update overwrites the configuration"
    );
    assert_eq!(
        a.metric_alarms()[0].state_value(),
        Some(&StateValue::Alarm),
        "and keeps the state"
    );

    let bad = cw
        .put_metric_alarm()
        .alarm_name("bad")
        .metric_name("m")
        .namespace("n")
        .statistic(Statistic::Sum)
        .period(45)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&bad),
        "ValidationError",
        "CloudWatch's code, not the JSON services'"
    );
    let missing = cw
        .delete_alarms()
        .alarm_names("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "ResourceNotFound");
    cw.put_metric_data()
        .namespace("Custom/Test")
        .metric_data(MetricDatum::builder().metric_name("x").value(3.0).build())
        .send()
        .await
        .unwrap();
    cw.delete_alarms()
        .alarm_names("zs-nocap")
        .send()
        .await
        .unwrap();
    assert!(cw
        .describe_alarms()
        .send()
        .await
        .unwrap()
        .metric_alarms()
        .is_empty());
    let calls = env.calls().await;
    assert!(calls
        .iter()
        .any(|c| c["operation"] == "PutMetricAlarm" && c["protocol"] == "RpcV2Cbor"));
}

#[tokio::test]
async fn service_quotas_by_name_and_code() {
    let env = SandboxEnv::demo().await;
    // The demo account never applied a quota: only AWS's defaults exist.
    let applied = env
        .sq
        .list_service_quotas()
        .service_code("sagemaker")
        .send()
        .await
        .unwrap();
    assert!(
        applied.quotas().is_empty(),
        "ListServiceQuotas lists applied values only"
    );
    let defaults = env
        .sq
        .list_aws_default_service_quotas()
        .service_code("sagemaker")
        .send()
        .await
        .unwrap();
    let d = defaults
        .quotas()
        .iter()
        .find(|q| q.quota_name() == Some("ml.g5.xlarge for endpoint usage"))
        .expect("the default is listed by name");
    assert_eq!(d.value(), Some(4.0));
    let default = env
        .sq
        .get_aws_default_service_quota()
        .service_code("sagemaker")
        .quota_code(d.quota_code().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(default.quota().unwrap().value(), Some(4.0));
    // The account raises it: now there is an applied value.
    env.control("PUT", "/quotas/ml.g5.xlarge", json!({"value": 4}))
        .await;
    let list = env
        .sq
        .list_service_quotas()
        .service_code("sagemaker")
        .send()
        .await
        .unwrap();
    let q = list
        .quotas()
        .iter()
        .find(|q| q.quota_name() == Some("ml.g5.xlarge for endpoint usage"))
        .expect("quota listed by name");
    assert_eq!(q.value(), Some(4.0));
    let code = q.quota_code().unwrap();
    assert!(code.starts_with("L-"));
    let got = env
        .sq
        .get_service_quota()
        .service_code("sagemaker")
        .quota_code(code)
        .send()
        .await
        .unwrap();
    assert_eq!(got.quota().unwrap().value(), Some(4.0));
    let none = env
        .sq
        .get_service_quota()
        .service_code("sagemaker")
        .quota_code("L-00000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(super_code(&none), "NoSuchResourceException");
}

fn super_code<E: aws_sdk_servicequotas::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

/// Seed 000 end to end: target tracking scales an idle component in to zero; a request at zero
/// fails, the alarm fires within its period, the step policy brings it back to one copy.
#[tokio::test]
async fn seed_000_scale_to_zero_and_back() {
    let env = SandboxEnv::demo().await;
    let rid = "inference-component/demo-component";
    register(&env, rid, IC_DIM, 0, 2).await;
    let tt = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(1.0)
        .predefined_metric_specification(
            PredefinedMetricSpecification::builder()
                .predefined_metric_type(MetricType::SageMakerInferenceComponentInvocationsPerCopy)
                .build()
                .unwrap(),
        )
        .scale_in_cooldown(300)
        .scale_out_cooldown(300)
        .build()
        .unwrap();
    env.aas
        .put_scaling_policy()
        .policy_name("tt")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(tt)
        .send()
        .await
        .unwrap();
    let step_arn = put_step(
        &env,
        "step",
        rid,
        IC_DIM,
        step_config(MetricAggregationType::Maximum, 60, 1),
    )
    .await;
    env.cw
        .put_metric_alarm()
        .alarm_name("ic-step-scaling-alarm")
        .alarm_actions(&step_arn)
        .alarm_description("Alarm when SM IC endpoint invoked that has 0 instances.")
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .datapoints_to_alarm(1)
        .dimensions(
            Dimension::builder()
                .name("InferenceComponentName")
                .value("demo-component")
                .build(),
        )
        .evaluation_periods(1)
        .metric_name("NoCapacityInvocationFailures")
        .namespace("AWS/SageMaker")
        .period(60)
        .statistic(Statistic::Sum)
        .threshold(1.0)
        .send()
        .await
        .unwrap();

    // Idle: target tracking sees 0 invocations per copy; its low alarm needs 15 of 15 one-minute
    // datapoints (as AWS makes it), so the component reaches zero after about 15 minutes.
    env.advance(14.0 * 60.0).await;
    assert_eq!(
        env.copies("demo-component").await,
        (1, 1),
        "14 idle minutes are not enough"
    );
    env.advance(60.0).await;
    assert_eq!(
        env.copies("demo-component").await,
        (0, 0),
        "scaled in to zero after 15"
    );
    let ep = env
        .sm
        .describe_endpoint()
        .endpoint_name("demo-endpoint")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ep.endpoint_status().unwrap().as_str(),
        "Updating",
        "a capacity change leaves the endpoint Updating, as on AWS"
    );

    // Two failed requests at zero copies (GreaterThanThreshold 1 needs two).
    let r = env
        .control(
            "POST",
            "/invoke",
            json!({"component": "demo-component", "count": 2}),
        )
        .await;
    assert_eq!(r["failed"], 2);
    env.advance(60.0).await;
    let alarm = env
        .cw
        .describe_alarms()
        .alarm_names("ic-step-scaling-alarm")
        .send()
        .await
        .unwrap();
    assert_eq!(
        alarm.metric_alarms()[0].state_value(),
        Some(&StateValue::Alarm),
        "fired within its period"
    );
    assert_eq!(
        env.copies("demo-component").await.0,
        1,
        "the step policy asked for one copy"
    );
    env.advance(60.0).await; // provisioning delay
    assert_eq!(env.copies("demo-component").await, (1, 1));
    let acts = env
        .aas
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .send()
        .await
        .unwrap();
    let up = acts
        .scaling_activities()
        .iter()
        .find(|a| a.description() == "Setting desired copy count to 1.")
        .expect("activity says so");
    assert_eq!(up.status_code().as_str(), "Successful");
    assert!(
        up.cause().contains("ic-step-scaling-alarm"),
        "{}",
        up.cause()
    );
}

async fn async_endpoint_env(quota: f64, max: i32) -> (SandboxEnv, String) {
    let env = SandboxEnv::start().await;
    env.control("POST", "/seed", json!({
        "quotas": {"ml.g4dn.xlarge": quota},
        "endpoints": [{"name": "ep-async", "variant": "AllTraffic", "instance_type": "ml.g4dn.xlarge", "initial_instances": 1, "async": true}]
    })).await;
    let rid = "endpoint/ep-async/variant/AllTraffic".to_string();
    register(&env, &rid, VARIANT_DIM, 0, max).await;
    (env, rid)
}

async fn instances(env: &SandboxEnv) -> (i32, i32) {
    let ep = env
        .sm
        .describe_endpoint()
        .endpoint_name("ep-async")
        .send()
        .await
        .unwrap();
    let v = &ep.production_variants()[0];
    (
        v.desired_instance_count().unwrap(),
        v.current_instance_count().unwrap(),
    )
}

/// Seed 001: an async endpoint at zero queues requests; HasBacklogWithoutCapacity breaches for
/// 2 of 2 minutes, the alarm fires and the step policy adds an instance.
#[tokio::test]
async fn seed_001_async_backlog_brings_the_endpoint_back() {
    let (env, rid) = async_endpoint_env(4.0, 4).await;
    let tt = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(5.0)
        .customized_metric_specification(
            CustomizedMetricSpecification::builder()
                .metric_name("ApproximateBacklogSizePerInstance")
                .namespace("AWS/SageMaker")
                .dimensions(
                    MetricDimension::builder()
                        .name("EndpointName")
                        .value("ep-async")
                        .build()
                        .unwrap(),
                )
                .statistic(MetricStatistic::Average)
                .build(),
        )
        .scale_in_cooldown(300)
        .scale_out_cooldown(300)
        .build()
        .unwrap();
    env.aas
        .put_scaling_policy()
        .policy_name("backlog-tt")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&rid)
        .scalable_dimension(VARIANT_DIM)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(tt)
        .send()
        .await
        .unwrap();
    let step_arn = put_step(
        &env,
        "HasBacklogWithoutCapacity-ScalingPolicy",
        &rid,
        VARIANT_DIM,
        step_config(MetricAggregationType::Average, 300, 1),
    )
    .await;
    env.cw
        .put_metric_alarm()
        .alarm_name("backlog-alarm")
        .metric_name("HasBacklogWithoutCapacity")
        .namespace("AWS/SageMaker")
        .statistic(Statistic::Average)
        .evaluation_periods(2)
        .datapoints_to_alarm(2)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .treat_missing_data("missing")
        .dimensions(
            Dimension::builder()
                .name("EndpointName")
                .value("ep-async")
                .build(),
        )
        .period(60)
        .alarm_actions(&step_arn)
        .send()
        .await
        .unwrap();
    env.advance(14.0 * 60.0).await;
    assert_eq!(instances(&env).await, (1, 1), "not yet: 15 of 15 needed");
    env.advance(60.0).await;
    assert_eq!(instances(&env).await, (0, 0), "idle: scaled in to zero");

    env.control(
        "POST",
        "/invoke",
        json!({"endpoint": "ep-async", "count": 5}),
    )
    .await;
    env.advance(60.0).await;
    let state = |env: &SandboxEnv| {
        let cw = env.cw.clone();
        async move {
            cw.describe_alarms()
                .alarm_names("backlog-alarm")
                .send()
                .await
                .unwrap()
                .metric_alarms()[0]
                .state_value()
                .cloned()
        }
    };
    assert_ne!(
        state(&env).await,
        Some(StateValue::Alarm),
        "one datapoint is not enough for 2 of 2"
    );
    assert_eq!(instances(&env).await.0, 0);
    env.advance(60.0).await;
    assert_eq!(
        state(&env).await,
        Some(StateValue::Alarm),
        "fires after the second datapoint"
    );
    assert_eq!(instances(&env).await.0, 1);
    env.advance(60.0).await;
    assert_eq!(
        instances(&env).await,
        (1, 1),
        "an instance serves the backlog"
    );
}

/// Seed 001's second pitfall: a max above the instance quota is accepted, and scale-out then
/// fails, visible only as a failed scaling activity with AWS's wording.
#[tokio::test]
async fn scale_out_past_the_quota_fails_loudly_in_the_activity() {
    let (env, rid) = async_endpoint_env(4.0, 20).await;
    let exact = StepScalingPolicyConfiguration::builder()
        .adjustment_type(AdjustmentType::ExactCapacity)
        .step_adjustments(
            StepAdjustment::builder()
                .metric_interval_lower_bound(0.0)
                .scaling_adjustment(20)
                .build()
                .unwrap(),
        )
        .build();
    let arn = put_step(&env, "burst", &rid, VARIANT_DIM, exact).await;
    env.cw
        .put_metric_alarm()
        .alarm_name("burst-alarm")
        .metric_name("m")
        .namespace("Custom/x")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .alarm_actions(&arn)
        .send()
        .await
        .unwrap();
    env.cw
        .set_alarm_state()
        .alarm_name("burst-alarm")
        .state_value(StateValue::Alarm)
        .state_reason("load test")
        .send()
        .await
        .unwrap();
    let acts = env
        .aas
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&rid)
        .send()
        .await
        .unwrap();
    let failed = &acts.scaling_activities()[0];
    assert_eq!(failed.status_code().as_str(), "Failed");
    let msg = failed.status_message().unwrap();
    assert!(msg.starts_with("Failed to set desired instance count to 20. Reason: The account-level service limit 'ml.g4dn.xlarge for endpoint usage' is 4 Instances, with current utilization of 1 Instances and a request delta of 19 Instances."), "{msg}");
    assert_eq!(instances(&env).await, (1, 1), "nothing scaled");
}

#[tokio::test]
async fn injected_throttling_and_failures_reach_the_sdk() {
    let env = SandboxEnv::demo().await;
    env.control(
        "PUT",
        "/faults/DescribeScalableTargets",
        json!({"throttle": 3}),
    )
    .await;
    for _ in 0..3 {
        let e = env
            .aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "ThrottlingException");
    }
    env.aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .send()
        .await
        .expect("the fourth call goes through");

    env.control(
        "PUT",
        "/faults/DescribeAlarms",
        json!({"throttle": 1, "fail": 1}),
    )
    .await;
    let throttled = env.cw.describe_alarms().send().await.unwrap_err();
    assert_eq!(
        throttled.code(),
        Some("Throttling"),
        "CloudWatch's own throttling code over CBOR"
    );
    let failed = env.cw.describe_alarms().send().await.unwrap_err();
    assert_eq!(
        failed.raw_response().map(|r| r.status().as_u16()),
        Some(500)
    );
    assert_eq!(
        aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(&failed),
        Some("InternalServiceError"),
        "CloudWatch's model code for a server fault"
    );
    env.cw.describe_alarms().send().await.unwrap();

    env.control("PUT", "/faults/DescribeEndpoint", json!({"fail": 1}))
        .await;
    let e = env
        .sm
        .describe_endpoint()
        .endpoint_name("demo-endpoint")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(500));
    let calls = env.calls().await;
    assert_eq!(
        calls
            .iter()
            .filter(|c| c["error"] == "ThrottlingException")
            .count(),
        3
    );
    assert!(calls
        .iter()
        .all(|c| c["request_id"].as_str().is_some_and(|r| !r.is_empty())));
}

#[tokio::test]
async fn eventual_consistency_after_register_is_on_by_default() {
    let env = SandboxEnv::demo().await;
    let rid = "inference-component/demo-component";
    env.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .min_capacity(0)
        .max_capacity(2)
        .send()
        .await
        .unwrap();
    let first = env
        .aas
        .put_scaling_policy()
        .policy_name("step")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(rid)
        .scalable_dimension(IC_DIM)
        .policy_type(PolicyType::StepScaling)
        .step_scaling_policy_configuration(step_config(MetricAggregationType::Maximum, 60, 1))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&first),
        "ObjectNotFoundException",
        "right after registering"
    );
    // One miss per registration: now the target is there for every call.
    let listed = env
        .aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(rid)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.scalable_targets().len(), 1);
    // Another registration: this time a describe comes first and misses it.
    let other = "endpoint/demo-async-endpoint/variant/AllTraffic";
    env.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(other)
        .scalable_dimension(VARIANT_DIM)
        .min_capacity(0)
        .max_capacity(2)
        .send()
        .await
        .unwrap();
    // A describe of another resource does not use up the miss.
    let elsewhere = env
        .aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(rid)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.scalable_targets().len(), 1);
    let unlisted = env
        .aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(other)
        .send()
        .await
        .unwrap();
    assert!(
        unlisted.scalable_targets().is_empty(),
        "not listed by the first describe that asks for it"
    );
    put_step(
        &env,
        "step",
        rid,
        IC_DIM,
        step_config(MetricAggregationType::Maximum, 60, 1),
    )
    .await;
}

#[tokio::test]
async fn responses_carry_request_ids_in_every_protocol() {
    let env = SandboxEnv::demo().await;
    let http = reqwest::Client::new();
    let json11 = http
        .post(&env.url)
        .header("x-amz-target", "SageMaker.DescribeEndpoint")
        .header("content-type", "application/x-amz-json-1.1")
        .body(r#"{"EndpointName":"demo-endpoint"}"#)
        .send()
        .await
        .unwrap();
    assert!(json11.headers().contains_key("x-amzn-requestid"));
    let json10 = http
        .post(&env.url)
        .header("x-amz-target", "GraniteServiceVersion20100801.DeleteAlarms")
        .header("content-type", "application/x-amz-json-1.0")
        .body(r#"{"AlarmNames":["nope"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json10.status(),
        404,
        "CloudWatch's ResourceNotFound is a 404"
    );
    assert_eq!(
        json10.headers()["x-amzn-query-error"],
        "ResourceNotFound;Sender"
    );
    assert!(json10.headers().contains_key("x-amzn-requestid"));
    let body: serde_json::Value = json10.json().await.unwrap();
    assert_eq!(body["__type"], "com.amazonaws.cloudwatch#ResourceNotFound");
}

#[tokio::test]
async fn the_accounts_autoscaling_request_rate_throttles_bursts() {
    let env = SandboxEnv::demo().await;
    env.control(
        "PUT",
        "/settings",
        json!({"autoscaling_requests_per_second": 2.0}),
    )
    .await;
    let call = || {
        env.aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .send()
    };
    call().await.unwrap();
    call().await.unwrap();
    let e = call().await.unwrap_err();
    assert_eq!(
        code(&e),
        "ThrottlingException",
        "the third call in the same second is over the account's rate"
    );
    env.sm
        .describe_endpoint()
        .endpoint_name("demo-endpoint")
        .send()
        .await
        .expect("other services are not limited");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    call().await.expect("the bucket refills");
}
