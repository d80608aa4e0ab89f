//! Reading the AWS objects zeroscale owns, for every kind of target: the scalable target, the
//! policies on it, our alarm, and the scaling-activity history. Nothing here knows which kind it
//! serves; the comparable shapes it builds are the ones `plan` produces.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use serde_json::{json, Value};

use super::plan::{Observed, ObservedAlarm, ObservedPolicy};
use crate::{
    aws::{AwsClients, AwsFailure},
    domain::OwnedNames,
    jobs::JobError,
};

/// The target's scalable dimension as the SDK types it.
pub(super) fn dimension(names: &OwnedNames) -> ScalableDimension {
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
