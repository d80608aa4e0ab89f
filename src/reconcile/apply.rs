//! Writing the AWS objects zeroscale owns: one planned step at a time, with AWS's request id.
//! Nothing here knows which kind of target it serves: the differences are in the `Desired`
//! that `plan::desired_for` builds.

use aws_sdk_applicationautoscaling::{
    operation::RequestId as _,
    types::{
        AdjustmentType, CustomizedMetricSpecification, MetricAggregationType, MetricDimension,
        MetricStatistic, MetricType, PolicyType, PredefinedMetricSpecification, ServiceNamespace,
        StepAdjustment, StepScalingPolicyConfiguration, TargetTrackingScalingPolicyConfiguration,
    },
};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use serde_json::{json, Value};

use super::{
    observe::dimension,
    plan::{Desired, Step, TargetTracking, TrackedMetric},
};
use crate::{
    aws::{AwsClients, AwsFailure},
    domain::OwnedNames,
    jobs::JobError,
};

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
