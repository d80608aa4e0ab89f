//! Reading the AWS objects zeroscale owns, for every kind of target: the scalable target, the
//! policies on it, our alarm, and the scaling-activity history. Nothing here knows which kind it
//! serves; the comparable shapes it builds are the ones `plan` produces.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ScalingActivity, ServiceNamespace};
use serde_json::{json, Value};

use super::{
    job_error, objects,
    plan::{Observed, ObservedAlarm, ObservedPolicy},
};
use crate::{aws::AwsClients, domain::OwnedNames, jobs::JobError};

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
/// known: a target that does not exist has no policies or scheduled actions
/// (DeregisterScalableTarget deletes them), which keeps a first enable at one describe (AWS's
/// request rate is shared by the account). Our scheduled actions are read when `scheduled`
/// says there may be some, and on every disable. Every list follows NextToken (aws-facts.md,
/// "Pages").
pub async fn observe(
    aws: &AwsClients,
    names: &OwnedNames,
    purpose: Purpose,
    scheduled: bool,
) -> Result<Observed, JobError> {
    let target = scalable_target(aws, names)
        .await?
        .as_ref()
        .map(objects::scalable_target::read_back);
    let mut observed = Observed {
        target,
        ..Default::default()
    };
    if target.is_some() {
        read_policies(aws, names, &mut observed).await?;
        if scheduled || purpose == Purpose::Disable {
            observed.scheduled = our_scheduled(aws, names).await?;
        }
    }
    if purpose == Purpose::Disable || observed.step.is_some() {
        read_alarms(aws, names, &mut observed).await?;
    }
    Ok(observed)
}

/// The target's scalable target as AWS lists it now, if registered: one DescribeScalableTargets
/// shared with the other jobs reading theirs at the same moment (`aws::batch`).
pub(super) async fn scalable_target(
    aws: &AwsClients,
    names: &OwnedNames,
) -> Result<Option<aws_sdk_applicationautoscaling::types::ScalableTarget>, JobError> {
    let dimension = dimension(names);
    let targets = aws
        .scalable_targets_of(&names.resource_id)
        .await
        .map_err(job_error)?;
    Ok(targets
        .into_iter()
        .find(|t| t.scalable_dimension() == &dimension))
}

/// Waits until AWS lists a target registered a moment ago, when the pacer is busy with other
/// users' calls. Registration is eventually consistent (aws-facts.md): a policy put before the
/// target is listed can miss it, and the put retries the miss, at the cost of one call. In a
/// burst, a describe is shared with the other jobs' reads (`aws::batch`) and costs a fraction of
/// a call, so the job waits for the listing instead; alone, it goes straight to the put. At most
/// four reads, and a failed read ends the wait: the put still retries a miss.
pub(super) async fn await_listed(aws: &AwsClients, names: &OwnedNames) {
    if !aws.pacer.busy() {
        return;
    }
    for _ in 0..4 {
        match scalable_target(aws, names).await {
            Ok(None) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            _ => return,
        }
    }
}

/// Sorts the target's policies into ours (by name) and foreign ones, page by page (10 a page:
/// ours may well be on page 2 of a target with many policies).
async fn read_policies(
    aws: &AwsClients,
    names: &OwnedNames,
    observed: &mut Observed,
) -> Result<(), JobError> {
    let request = aws
        .autoscaling
        .describe_scaling_policies()
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names));
    let pages = policy_pages(aws, request).await?;
    for page in &pages {
        for p in page.scaling_policies() {
            sort_policy(names, p, observed);
        }
    }
    Ok(())
}

/// Defines `$name`: every page of an Application Auto Scaling describe (`$op`) in SageMaker's
/// namespace, `$max` a page. The three describes differ only in their SDK types.
macro_rules! namespace_pages {
    ($(#[$doc:meta])* $name:ident, $module:ident, $builder:ident, $output:ident, $op:literal, $max:literal) => {
        $(#[$doc])*
        pub(super) async fn $name(
            aws: &AwsClients,
            request: aws_sdk_applicationautoscaling::operation::$module::builders::$builder,
        ) -> Result<Vec<aws_sdk_applicationautoscaling::operation::$module::$output>, JobError> {
            let pages = request
                .service_namespace(ServiceNamespace::Sagemaker)
                .max_results($max)
                .into_paginator()
                .send();
            aws.pages("application-autoscaling", $op, pages)
                .await
                .map_err(job_error)
        }
    };
}

namespace_pages!(
    /// Every page of a DescribeScalableTargets, 50 targets a page.
    target_pages, describe_scalable_targets, DescribeScalableTargetsFluentBuilder,
    DescribeScalableTargetsOutput, "DescribeScalableTargets", 50
);
namespace_pages!(
    /// Every page of a DescribeScalingPolicies, 10 policies a page (the model's maximum).
    policy_pages, describe_scaling_policies, DescribeScalingPoliciesFluentBuilder,
    DescribeScalingPoliciesOutput, "DescribeScalingPolicies", 10
);
namespace_pages!(
    /// Every page of a DescribeScheduledActions, 50 a page.
    scheduled_pages, describe_scheduled_actions, DescribeScheduledActionsFluentBuilder,
    DescribeScheduledActionsOutput, "DescribeScheduledActions", 50
);

/// A DescribeScalingActivities of the target's activities, newest first.
pub(super) fn activities(
    aws: &AwsClients,
    names: &OwnedNames,
) -> aws_sdk_applicationautoscaling::operation::describe_scaling_activities::builders::DescribeScalingActivitiesFluentBuilder{
    aws.autoscaling
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names))
}

/// Our scheduled actions on the target, by name (the `zeroscale.` prefix: others' are not ours).
async fn our_scheduled(
    aws: &AwsClients,
    names: &OwnedNames,
) -> Result<std::collections::BTreeMap<String, Value>, JobError> {
    let listed = aws
        .autoscaling
        .describe_scheduled_actions()
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names));
    let pages = scheduled_pages(aws, listed).await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.scheduled_actions())
        .map(objects::scheduled_action::read_back)
        .filter(|(name, _)| name.starts_with(objects::scheduled_action::PREFIX))
        .collect())
}

/// Every page of a DescribeAlarms.
pub(super) async fn alarm_pages(
    aws: &AwsClients,
    request: aws_sdk_cloudwatch::operation::describe_alarms::builders::DescribeAlarmsFluentBuilder,
) -> Result<Vec<aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput>, JobError> {
    let pages = request.into_paginator().send();
    aws.pages("monitoring", "DescribeAlarms", pages)
        .await
        .map_err(job_error)
}

pub(super) fn sort_policy(
    names: &OwnedNames,
    p: &aws_sdk_applicationautoscaling::types::ScalingPolicy,
    observed: &mut Observed,
) {
    let arn = p.policy_arn().to_string();
    if p.policy_name() == names.target_tracking_policy {
        observed.target_tracking = Some(ObservedPolicy {
            arn,
            config: objects::target_tracking::read_back(
                p.target_tracking_scaling_policy_configuration(),
            ),
        });
    } else if p.policy_name() == names.step_policy {
        observed.step = Some(ObservedPolicy {
            arn,
            config: objects::step_policy::read_back(p.step_scaling_policy_configuration()),
        });
    } else {
        observed.foreign_policies.push(format!(
            "{} ({})",
            p.policy_name(),
            p.policy_type().as_str()
        ));
    }
}

/// Our alarm's comparable configuration, and whether this target's alarm under the legacy name
/// is still there (one DescribeAlarms for both names).
async fn read_alarms(
    aws: &AwsClients,
    names: &OwnedNames,
    observed: &mut Observed,
) -> Result<(), JobError> {
    let request = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(&names.alarm)
        .alarm_names(&names.legacy_alarm);
    let pages = alarm_pages(aws, request).await?;
    for page in &pages {
        for a in page.metric_alarms() {
            let name = a.alarm_name().unwrap_or_default();
            if name == names.alarm {
                observed.alarm = Some(ObservedAlarm {
                    config: objects::alarm::read_back(a),
                });
            } else if name == names.legacy_alarm {
                // The old scheme's names collided; the metric dimension tells whose it is.
                let (k, v) = &names.alarm_dimension;
                observed.legacy_alarm = a
                    .dimensions()
                    .iter()
                    .any(|d| d.name() == Some(k.as_str()) && d.value() == Some(v.as_str()));
            }
        }
    }
    Ok(())
}

/// The latest scaling activity that failed, with AWS's message (seed 001: such failures are
/// visible only here, never in the alarm history). None when the latest one succeeded or the
/// history cannot be read. Not-scaled activities (StatusCode Failed with NotScaledReasons and
/// no message, such as AlreadyAtMaxCapacity) are routine (aws-facts.md, "Not scaled"): they are
/// not asked for (IncludeNotScaledActivities off), so an alarm that keeps firing at max capacity
/// cannot bury a real failure, and any that come anyway are skipped. Pages are followed until a
/// finished activity is found (at most three).
pub async fn last_scaling_problem(aws: &AwsClients, names: &OwnedNames) -> Option<Value> {
    let mut token: Option<String> = None;
    for _ in 0..3 {
        aws.pace().await;
        let out = activities(aws, names)
            .set_next_token(token.clone())
            .send()
            .await
            .ok()?;
        // Activities come newest first; a success after a failure means it has recovered.
        if let Some(outcome) = out.scaling_activities().iter().find_map(scaling_outcome) {
            return outcome;
        }
        token = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        token.as_ref()?;
    }
    None
}

/// What a scaling activity says about its target: None when it is unfinished or not scaled
/// (it says nothing), `Some(None)` when it succeeded, `Some(Some(problem))` when it failed.
pub fn scaling_outcome(a: &ScalingActivity) -> Option<Option<Value>> {
    let code = a.status_code().as_str();
    if code == "InProgress" || code == "Pending" || !a.not_scaled_reasons().is_empty() {
        return None;
    }
    if code != "Failed" {
        return Some(None);
    }
    Some(Some(json!({
        "status": code,
        "description": a.description(),
        "message": a.status_message().unwrap_or("the scaling activity failed without a message"),
        "cause": a.cause(),
        "at": a.start_time().secs(),
    })))
}
