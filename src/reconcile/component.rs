//! Inference components (seed 000): preflight checks, observation of the objects zeroscale owns,
//! and the AWS writes of a plan.

use aws_sdk_applicationautoscaling::{
    operation::RequestId as _,
    types::{
        AdjustmentType, MetricAggregationType, MetricType, PolicyType,
        PredefinedMetricSpecification, ScalableDimension, ServiceNamespace, StepAdjustment,
        StepScalingPolicyConfiguration, TargetTrackingScalingPolicyConfiguration,
    },
};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use serde_json::{json, Value};

use super::{
    plan::{Desired, Observed, ObservedAlarm, ObservedPolicy, Step},
    quotas, Warning,
};
use crate::{
    aws::{AwsClients, AwsFailure, FailureKind},
    domain::names::OwnedNames,
    jobs::JobError,
};

const DIM: ScalableDimension = ScalableDimension::SageMakerInferenceComponentDesiredCopyCount;

/// What the preflight learned (no writes were made to learn it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preflight {
    pub endpoint: String,
    pub variant: String,
    pub instance_type: String,
    pub max_instance_count: i32,
    pub current_copies: i32,
    pub warnings: Vec<Warning>,
}

fn permanent(msg: String) -> JobError {
    JobError::permanent(msg)
}

/// Checks, before any write, that scale-to-zero can work for `name` (aws-facts.md,
/// "Preconditions for inference components"); each failure says what to change.
pub async fn preflight(
    aws: &AwsClients,
    name: &str,
    max_capacity: Option<i32>,
) -> Result<Preflight, JobError> {
    aws.pace().await;
    let ic = match aws
        .sagemaker
        .describe_inference_component()
        .inference_component_name(name)
        .send()
        .await
    {
        Ok(ic) => ic,
        Err(e) => {
            let f = AwsFailure::from_sdk("sagemaker", "DescribeInferenceComponent", e);
            if f.kind == FailureKind::Permanent && f.message.contains("Could not find") {
                return Err(permanent(format!("inference component {name:?} does not exist in this account and region: check the name and the region zeroscale uses")));
            }
            return Err(f.into_job_error());
        }
    };
    let status = ic
        .inference_component_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    if status != "InService" {
        return Err(permanent(format!("inference component {name:?} is {status}, not InService: wait for it to finish deploying, then retry")));
    }
    let endpoint = ic.endpoint_name().unwrap_or_default().to_string();
    let variant = ic.variant_name().unwrap_or_default().to_string();
    let current_copies = ic
        .runtime_config()
        .and_then(|r| r.current_copy_count())
        .unwrap_or(0);
    aws.pace().await;
    let ep = aws
        .sagemaker
        .describe_endpoint()
        .endpoint_name(&endpoint)
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk("sagemaker", "DescribeEndpoint", e).into_job_error())?;
    let ep_status = ep
        .endpoint_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    if ep_status != "InService" {
        return Err(permanent(format!("endpoint {endpoint:?} is {ep_status}, not InService: scale to zero needs an InService endpoint")));
    }
    // The endpoint config is the authoritative record of the variant's settings.
    let config_name = ep.endpoint_config_name().unwrap_or_default().to_string();
    aws.pace().await;
    let config = aws
        .sagemaker
        .describe_endpoint_config()
        .endpoint_config_name(&config_name)
        .send()
        .await
        .map_err(|e| {
            AwsFailure::from_sdk("sagemaker", "DescribeEndpointConfig", e).into_job_error()
        })?;
    let pv = config
        .production_variants()
        .iter()
        .find(|v| v.variant_name() == Some(variant.as_str()))
        .ok_or_else(|| {
            permanent(format!(
                "endpoint config {config_name:?} has no production variant {variant:?}"
            ))
        })?;
    let mis = pv.managed_instance_scaling();
    let enabled = mis
        .and_then(|m| m.status())
        .map(|s| s.as_str() == "ENABLED")
        .unwrap_or(false);
    let min = mis.and_then(|m| m.min_instance_count()).unwrap_or(-1);
    let max_instances = mis.and_then(|m| m.max_instance_count()).unwrap_or(0);
    if !enabled || min != 0 {
        let now = if enabled {
            format!("MinInstanceCount {min}")
        } else {
            "ManagedInstanceScaling disabled".into()
        };
        return Err(permanent(format!(
            "endpoint config {config_name:?} (variant {variant:?}) does not allow zero instances: it has {now}. \
             Create an endpoint config whose variant has ManagedInstanceScaling {{Status: ENABLED, MinInstanceCount: 0, MaxInstanceCount: {}}} \
             and UpdateEndpoint {endpoint:?} to it, then retry",
            max_instances.max(1)
        )));
    }
    let instance_type = pv
        .instance_type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    let mut warnings = Vec::new();
    match quotas::instance_quota(aws, &instance_type).await {
        Ok(Some(quota)) => {
            let need = max_instances.max(max_capacity.unwrap_or(0));
            if f64::from(need) > quota {
                return Err(permanent(format!(
                    "the account's quota '{instance_type} for endpoint usage' is {quota} instances, but variant {variant:?} may use {max_instances} \
                     (its MaxInstanceCount) and max_capacity {} copies need {} (one instance per copy). AWS would accept this and then fail every \
                     scale-out past {quota}: lower max_capacity / MaxInstanceCount to at most {quota}, or request a quota increase in Service Quotas",
                    max_capacity.map(|m| m.to_string()).unwrap_or_else(|| "(unset)".into()),
                    max_capacity.unwrap_or(0),
                )));
            }
        }
        Ok(None) => warnings.push(Warning::new("QuotaUnknown", format!("no Service Quotas entry named '{instance_type} for endpoint usage'; the max capacity could not be checked against it"))),
        Err(why) => warnings.push(Warning::new("QuotaUnreadable", format!("Service Quotas could not be read ({why}); grant servicequotas:ListServiceQuotas so zeroscale can check the max capacity against the instance quota"))),
    }
    Ok(Preflight {
        endpoint,
        variant,
        instance_type,
        max_instance_count: max_instances,
        current_copies,
        warnings,
    })
}

/// Reads the scalable target, every policy on it and our alarm.
pub async fn observe(aws: &AwsClients, names: &OwnedNames) -> Result<Observed, JobError> {
    let aas = &aws.autoscaling;
    aws.pace().await;
    let targets = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(&names.resource_id)
        .scalable_dimension(DIM)
        .send()
        .await
        .map_err(|e| {
            AwsFailure::from_sdk("application-autoscaling", "DescribeScalableTargets", e)
                .into_job_error()
        })?;
    let target = targets
        .scalable_targets()
        .first()
        .map(|t| (t.min_capacity(), t.max_capacity()));
    aws.pace().await;
    let policies = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(DIM)
        .send()
        .await
        .map_err(|e| {
            AwsFailure::from_sdk("application-autoscaling", "DescribeScalingPolicies", e)
                .into_job_error()
        })?;
    let mut observed = Observed {
        target,
        ..Default::default()
    };
    for p in policies.scaling_policies() {
        let arn = p.policy_arn().to_string();
        if p.policy_name() == names.target_tracking_policy {
            let c = p.target_tracking_scaling_policy_configuration();
            observed.target_tracking = Some(ObservedPolicy {
                arn,
                config: json!({
                    "TargetValue": c.map(|c| c.target_value()),
                    "PredefinedMetricSpecification": {"PredefinedMetricType": c.and_then(|c| c.predefined_metric_specification()).map(|m| m.predefined_metric_type().as_str())},
                    "ScaleInCooldown": c.and_then(|c| c.scale_in_cooldown()),
                    "ScaleOutCooldown": c.and_then(|c| c.scale_out_cooldown()),
                }),
            });
        } else if p.policy_name() == names.step_policy {
            let c = p.step_scaling_policy_configuration();
            let steps: Vec<Value> = c.map(|c| c.step_adjustments()).unwrap_or_default().iter()
                .map(|s| json!({"MetricIntervalLowerBound": s.metric_interval_lower_bound(), "ScalingAdjustment": s.scaling_adjustment()}))
                .collect();
            observed.step = Some(ObservedPolicy {
                arn,
                config: json!({
                    "AdjustmentType": c.and_then(|c| c.adjustment_type()).map(|a| a.as_str()),
                    "MetricAggregationType": c.and_then(|c| c.metric_aggregation_type()).map(|a| a.as_str()),
                    "Cooldown": c.and_then(|c| c.cooldown()),
                    "StepAdjustments": steps,
                }),
            });
        } else {
            observed.foreign_policies.push(format!(
                "{} ({})",
                p.policy_name(),
                p.policy_type().as_str()
            ));
        }
    }
    aws.pace().await;
    let alarms = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(&names.alarm)
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk("monitoring", "DescribeAlarms", e).into_job_error())?;
    observed.alarm = alarms.metric_alarms().first().map(|a| ObservedAlarm { config: json!({
        "MetricName": a.metric_name(),
        "Namespace": a.namespace(),
        "Statistic": a.statistic().map(|s| s.as_str()),
        "Dimensions": a.dimensions().iter().map(|d| json!({"Name": d.name(), "Value": d.value()})).collect::<Vec<_>>(),
        "Period": a.period(),
        "EvaluationPeriods": a.evaluation_periods(),
        "DatapointsToAlarm": a.datapoints_to_alarm(),
        "Threshold": a.threshold(),
        "ComparisonOperator": a.comparison_operator().map(|c| c.as_str()),
        "TreatMissingData": a.treat_missing_data().unwrap_or("missing"),
        "AlarmActions": a.alarm_actions(),
    })});
    Ok(observed)
}

/// One applied step: the call, its parameters, AWS's request id and what came back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRecord {
    pub step: Step,
    pub request_id: Option<String>,
    pub result: Value,
}

/// Maps an SDK error of `service.op` to a job error.
fn fail<E>(
    service: &'static str,
    op: &'static str,
) -> impl FnOnce(
    aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> JobError
where
    E: aws_sdk_sagemaker::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| AwsFailure::from_sdk(service, op, e).into_job_error()
}

/// Applies one step. `step_arn` carries the step policy's ARN to the alarm put after it.
pub async fn apply(
    aws: &AwsClients,
    d: &Desired,
    step: &Step,
    step_arn: &mut Option<String>,
) -> Result<StepRecord, JobError> {
    let aas = &aws.autoscaling;
    let names = &d.names;
    let z = &d.spec.scale_from_zero;
    let (request_id, result) = match step {
        Step::RegisterScalableTarget {
            min_capacity,
            max_capacity,
        } => {
            aws.pace().await;
            let out = aas
                .register_scalable_target()
                .service_namespace(ServiceNamespace::Sagemaker)
                .resource_id(&names.resource_id)
                .scalable_dimension(DIM)
                .min_capacity(*min_capacity)
                .max_capacity(*max_capacity)
                .send()
                .await
                .map_err(fail("application-autoscaling", "RegisterScalableTarget"))?;
            (
                out.request_id().map(str::to_string),
                json!({"ScalableTargetARN": out.scalable_target_arn()}),
            )
        }
        Step::PutTargetTrackingPolicy { policy_name, .. } => {
            let cfg = TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(d.spec.target_invocations_per_copy)
                .predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type(
                            MetricType::SageMakerInferenceComponentInvocationsPerCopy,
                        )
                        .build()
                        .map_err(|e| JobError::permanent(e.to_string()))?,
                )
                .scale_in_cooldown(d.spec.scale_in_cooldown_seconds as i32)
                .scale_out_cooldown(d.spec.scale_out_cooldown_seconds as i32)
                .build()
                .map_err(|e| JobError::permanent(e.to_string()))?;
            aws.pace().await;
            let out = aas
                .put_scaling_policy()
                .policy_name(policy_name)
                .service_namespace(ServiceNamespace::Sagemaker)
                .resource_id(&names.resource_id)
                .scalable_dimension(DIM)
                .policy_type(PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(cfg)
                .send()
                .await
                .map_err(fail("application-autoscaling", "PutScalingPolicy"))?;
            (
                out.request_id().map(str::to_string),
                json!({"PolicyARN": out.policy_arn()}),
            )
        }
        Step::PutStepScalingPolicy { policy_name, .. } => {
            let cfg = StepScalingPolicyConfiguration::builder()
                .adjustment_type(AdjustmentType::ChangeInCapacity)
                .metric_aggregation_type(MetricAggregationType::Maximum)
                .cooldown(z.cooldown_seconds as i32)
                .step_adjustments(
                    StepAdjustment::builder()
                        .metric_interval_lower_bound(0.0)
                        .scaling_adjustment(z.adjustment as i32)
                        .build()
                        .map_err(|e| JobError::permanent(e.to_string()))?,
                )
                .build();
            aws.pace().await;
            let out = aas
                .put_scaling_policy()
                .policy_name(policy_name)
                .service_namespace(ServiceNamespace::Sagemaker)
                .resource_id(&names.resource_id)
                .scalable_dimension(DIM)
                .policy_type(PolicyType::StepScaling)
                .step_scaling_policy_configuration(cfg)
                .send()
                .await
                .map_err(fail("application-autoscaling", "PutScalingPolicy"))?;
            // Store the ARN from every put: it is not assumed stable across updates.
            *step_arn = Some(out.policy_arn().to_string());
            (
                out.request_id().map(str::to_string),
                json!({"PolicyARN": out.policy_arn()}),
            )
        }
        Step::PutMetricAlarm { alarm_name, .. } => {
            let arn = step_arn.clone().ok_or_else(|| {
                JobError::retryable("the step policy's ARN is not known yet; observing again")
            })?;
            aws.pace().await;
            let out = aws.cloudwatch.put_metric_alarm()
                .alarm_name(alarm_name)
                .alarm_description(format!("zeroscale: scale inference component {} out of zero copies. Managed by zeroscale; edits are reverted.", d.component))
                .metric_name("NoCapacityInvocationFailures")
                .namespace("AWS/SageMaker")
                .statistic(Statistic::Sum)
                .dimensions(Dimension::builder().name("InferenceComponentName").value(&d.component).build())
                .period(z.period_seconds as i32)
                .evaluation_periods(z.evaluation_periods as i32)
                .datapoints_to_alarm(z.datapoints_to_alarm as i32)
                .threshold(z.threshold)
                .comparison_operator(ComparisonOperator::from(z.comparison.as_str()))
                .treat_missing_data("missing")
                .alarm_actions(&arn)
                .send().await.map_err(fail("monitoring", "PutMetricAlarm"))?;
            (
                out.request_id().map(str::to_string),
                json!({"AlarmActions": [arn]}),
            )
        }
        Step::DeleteAlarm { alarm_name } => {
            aws.pace().await;
            let out = aws
                .cloudwatch
                .delete_alarms()
                .alarm_names(alarm_name)
                .send()
                .await
                .map_err(fail("monitoring", "DeleteAlarms"))?;
            (out.request_id().map(str::to_string), json!({}))
        }
        Step::DeleteScalingPolicy { policy_name } => {
            aws.pace().await;
            let out = aas
                .delete_scaling_policy()
                .policy_name(policy_name)
                .service_namespace(ServiceNamespace::Sagemaker)
                .resource_id(&names.resource_id)
                .scalable_dimension(DIM)
                .send()
                .await
                .map_err(fail("application-autoscaling", "DeleteScalingPolicy"))?;
            (out.request_id().map(str::to_string), json!({}))
        }
    };
    Ok(StepRecord {
        step: step.clone(),
        request_id,
        result,
    })
}

/// The latest failed scaling activity of the target, with AWS's message (seed 001: failures are
/// visible only here).
pub async fn last_failed_activity(aws: &AwsClients, names: &OwnedNames) -> Option<Value> {
    aws.pace().await;
    let out = aws
        .autoscaling
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(DIM)
        .max_results(10)
        .send()
        .await
        .ok()?;
    out.scaling_activities()
        .iter()
        .find(|a| a.status_code().as_str() == "Failed")
        .map(|a| {
            json!({
                "description": a.description(),
                "message": a.status_message(),
                "cause": a.cause(),
                "at": a.start_time().secs(),
            })
        })
}
