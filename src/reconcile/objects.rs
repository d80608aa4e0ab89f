//! The AWS objects zeroscale owns, for every kind of target: observe them, apply one planned
//! write, and read the scaling-activity history. Nothing here knows which kind it serves: the
//! differences are in the `Desired` that `plan::desired_for` builds.

use aws_sdk_applicationautoscaling::{
    operation::RequestId as _,
    types::{
        AdjustmentType, CustomizedMetricSpecification, MetricAggregationType, MetricDimension,
        MetricStatistic, MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension,
        ServiceNamespace, StepAdjustment, StepScalingPolicyConfiguration,
        TargetTrackingScalingPolicyConfiguration,
    },
};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use serde_json::{json, Value};

use super::plan::{
    Desired, Observed, ObservedAlarm, ObservedPolicy, Step, TargetTracking, TrackedMetric,
};
use crate::{
    aws::{AwsClients, AwsFailure},
    domain::OwnedNames,
    jobs::JobError,
};

fn dimension(names: &OwnedNames) -> ScalableDimension {
    ScalableDimension::from(names.scalable_dimension.as_str())
}

/// Why a target is observed, which decides what is worth reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Enabling: the plan re-puts the alarm whenever the step policy is put, so the alarm is
    /// read only when the step policy exists.
    Enable,
    /// Disabling: our alarm is read whatever else exists, since deregistering a target deletes
    /// its policies but not the alarm that pointed at the step policy (aws-facts.md).
    Disable,
}

/// Reads the scalable target, every policy on it and our alarm, skipping reads whose answer is
/// known: a target that does not exist has no policies (DeregisterScalableTarget deletes them),
/// which keeps a first enable at one describe (AWS's request rate is shared by the account).
pub async fn observe(
    aws: &AwsClients,
    names: &OwnedNames,
    purpose: Purpose,
) -> Result<Observed, JobError> {
    let aas = &aws.autoscaling;
    aws.pace().await;
    let targets = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(&names.resource_id)
        .scalable_dimension(dimension(names))
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
    let mut observed = Observed {
        target,
        ..Default::default()
    };
    if target.is_some() {
        read_policies(aws, names, &mut observed).await?;
    }
    if purpose == Purpose::Disable || observed.step.is_some() {
        observed.alarm = read_alarm(aws, names).await?;
    }
    Ok(observed)
}

/// Sorts the target's policies into ours (by name) and foreign ones.
async fn read_policies(
    aws: &AwsClients,
    names: &OwnedNames,
    observed: &mut Observed,
) -> Result<(), JobError> {
    aws.pace().await;
    let policies = aws
        .autoscaling
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names))
        .send()
        .await
        .map_err(|e| {
            AwsFailure::from_sdk("application-autoscaling", "DescribeScalingPolicies", e)
                .into_job_error()
        })?;
    for p in policies.scaling_policies() {
        let arn = p.policy_arn().to_string();
        if p.policy_name() == names.target_tracking_policy {
            observed.target_tracking = Some(ObservedPolicy {
                arn,
                config: target_tracking_read_back(p.target_tracking_scaling_policy_configuration()),
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
    Ok(())
}

/// Our alarm's comparable configuration, if it exists.
async fn read_alarm(
    aws: &AwsClients,
    names: &OwnedNames,
) -> Result<Option<ObservedAlarm>, JobError> {
    aws.pace().await;
    let alarms = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(&names.alarm)
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk("monitoring", "DescribeAlarms", e).into_job_error())?;
    Ok(alarms.metric_alarms().first().map(|a| ObservedAlarm { config: json!({
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
    })}))
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

/// A PutScalingPolicy on the target, paced, awaiting its configuration. The whole
/// configuration is sent every time (aws-facts.md: PutScalingPolicy replaces it).
async fn put_policy(
    aws: &AwsClients,
    names: &OwnedNames,
    policy_name: &str,
    policy_type: PolicyType,
) -> aws_sdk_applicationautoscaling::operation::put_scaling_policy::builders::PutScalingPolicyFluentBuilder
{
    aws.pace().await;
    aws.autoscaling
        .put_scaling_policy()
        .policy_name(policy_name)
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names))
        .policy_type(policy_type)
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
    let z = &d.alarm.settings;
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
                .scalable_dimension(dimension(names))
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
            let cfg = target_tracking_input(&d.target_tracking)?;
            let put = put_policy(aws, names, policy_name, PolicyType::TargetTrackingScaling)
                .await
                .target_tracking_scaling_policy_configuration(cfg);
            let out = put
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
                .metric_aggregation_type(MetricAggregationType::from(d.step.aggregation))
                .cooldown(d.step.cooldown as i32)
                .step_adjustments(
                    StepAdjustment::builder()
                        .metric_interval_lower_bound(0.0)
                        .scaling_adjustment(d.step.adjustment as i32)
                        .build()
                        .map_err(|e| JobError::permanent(e.to_string()))?,
                )
                .build();
            let put = put_policy(aws, names, policy_name, PolicyType::StepScaling)
                .await
                .step_scaling_policy_configuration(cfg);
            let out = put
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
            let a = &d.alarm;
            let out = aws
                .cloudwatch
                .put_metric_alarm()
                .alarm_name(alarm_name)
                .alarm_description(&a.description)
                .metric_name(a.metric_name)
                .namespace("AWS/SageMaker")
                .statistic(Statistic::from(a.statistic))
                .dimensions(
                    Dimension::builder()
                        .name(a.dimension.0)
                        .value(&a.dimension.1)
                        .build(),
                )
                .period(z.period_seconds as i32)
                .evaluation_periods(z.evaluation_periods as i32)
                .datapoints_to_alarm(z.datapoints_to_alarm as i32)
                .threshold(z.threshold)
                .comparison_operator(ComparisonOperator::from(z.comparison.as_str()))
                .treat_missing_data("missing")
                .alarm_actions(&arn)
                .send()
                .await
                .map_err(fail("monitoring", "PutMetricAlarm"))?;
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
                .scalable_dimension(dimension(names))
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

/// The latest scaling activity that failed or did not scale, with AWS's message (seed 001:
/// such failures are visible only here, never in the alarm history). None when the latest
/// activities succeeded or the history cannot be read.
pub async fn last_scaling_problem(aws: &AwsClients, names: &OwnedNames) -> Option<Value> {
    aws.pace().await;
    let out = aws
        .autoscaling
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names))
        .include_not_scaled_activities(true)
        .max_results(10)
        .send()
        .await
        .ok()?;
    // Activities come newest first; a success after a failure means it has recovered.
    let latest = out.scaling_activities().iter().find(|a| {
        let code = a.status_code().as_str();
        code != "InProgress" && code != "Pending"
    })?;
    let failed = latest.status_code().as_str() == "Failed";
    let not_scaled = latest.not_scaled_reasons();
    if !failed && not_scaled.is_empty() {
        return None;
    }
    let message = match (failed, not_scaled.first()) {
        (false, Some(r)) => format!(
            "{} Not scaled: {} (current capacity {})",
            latest.description(),
            r.code(),
            r.current_capacity().unwrap_or_default()
        ),
        _ => latest.status_message().unwrap_or_default().to_string(),
    };
    Some(json!({
        "status": latest.status_code().as_str(),
        "description": latest.description(),
        "message": message,
        "cause": latest.cause(),
        "not_scaled_reasons": not_scaled.iter().map(|r| r.code()).collect::<Vec<_>>(),
        "at": latest.start_time().secs(),
    }))
}

/// The SDK input of the target-tracking policy.
fn target_tracking_input(
    t: &TargetTracking,
) -> Result<TargetTrackingScalingPolicyConfiguration, JobError> {
    let invalid =
        |e: aws_sdk_applicationautoscaling::error::BuildError| JobError::permanent(e.to_string());
    let mut cfg = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(t.target_value)
        .scale_in_cooldown(t.scale_in_cooldown as i32)
        .scale_out_cooldown(t.scale_out_cooldown as i32);
    cfg = match &t.metric {
        TrackedMetric::Predefined(kind) => cfg.predefined_metric_specification(
            PredefinedMetricSpecification::builder()
                .predefined_metric_type(MetricType::from(*kind))
                .build()
                .map_err(invalid)?,
        ),
        TrackedMetric::Customized {
            metric_name,
            namespace,
            dimension,
            statistic,
        } => cfg.customized_metric_specification(
            CustomizedMetricSpecification::builder()
                .metric_name(*metric_name)
                .namespace(*namespace)
                .dimensions(
                    MetricDimension::builder()
                        .name(dimension.0)
                        .value(&dimension.1)
                        .build()
                        .map_err(invalid)?,
                )
                .statistic(MetricStatistic::from(*statistic))
                .build(),
        ),
    };
    cfg.build().map_err(invalid)
}

/// A target-tracking configuration as AWS returns it, in the shape `TargetTracking::config`
/// produces, so the plan can compare them.
fn target_tracking_read_back(
    c: Option<&aws_sdk_applicationautoscaling::types::TargetTrackingScalingPolicyConfiguration>,
) -> Value {
    let Some(c) = c else { return json!({}) };
    let mut out = json!({
        "TargetValue": c.target_value(),
        "ScaleInCooldown": c.scale_in_cooldown(),
        "ScaleOutCooldown": c.scale_out_cooldown(),
    });
    if let Some(m) = c.predefined_metric_specification() {
        out["PredefinedMetricSpecification"] =
            json!({"PredefinedMetricType": m.predefined_metric_type().as_str()});
    }
    if let Some(m) = c.customized_metric_specification() {
        out["CustomizedMetricSpecification"] = json!({
            "MetricName": m.metric_name(),
            "Namespace": m.namespace(),
            "Dimensions": m.dimensions().iter().map(|d| json!({"Name": d.name(), "Value": d.value()})).collect::<Vec<_>>(),
            "Statistic": m.statistic().map(|s| s.as_str()),
        });
    }
    out
}
