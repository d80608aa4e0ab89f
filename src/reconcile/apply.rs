//! Writing the AWS objects zeroscale owns: one planned step at a time, with AWS's request id.
//! Nothing here knows which kind of target it serves: the differences are in the `Desired`
//! that `plan::desired_for` builds.

use aws_sdk_applicationautoscaling::{
    operation::RequestId as _,
    types::{PolicyType, ServiceNamespace},
};
use serde_json::{json, Value};

use super::{
    job_error,
    objects::{alarm::put_members, Suspended},
    observe::dimension,
    plan::{Desired, Step},
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
    move |e| job_error(AwsFailure::from_sdk(service, op, e))
}

type PutPolicy =
    aws_sdk_applicationautoscaling::operation::put_scaling_policy::builders::PutScalingPolicyFluentBuilder;

/// A PutScalingPolicy on the target, awaiting its configuration. The whole configuration is
/// sent every time (aws-facts.md: PutScalingPolicy replaces it).
fn put_policy(
    aws: &AwsClients,
    names: &OwnedNames,
    policy_name: &str,
    policy_type: PolicyType,
) -> PutPolicy {
    aws.autoscaling
        .put_scaling_policy()
        .policy_name(policy_name)
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names))
        .policy_type(policy_type)
}

/// Sends a PutScalingPolicy, paced. Registration is eventually consistent (aws-facts.md): right
/// after RegisterScalableTarget the put can answer ObjectNotFoundException, so that answer is
/// retried here with a short backoff (about 3 s in all) instead of failing the whole run, which
/// would describe everything again.
async fn send_policy(
    aws: &AwsClients,
    put: PutPolicy,
) -> Result<(Option<String>, String), JobError> {
    use aws_sdk_applicationautoscaling::operation::RequestId as _;
    use backon::Retryable as _;
    let out = (|| {
        let put = put.clone();
        async move {
            aws.pace().await;
            put.send().await
        }
    })
    .retry(
        backon::ExponentialBuilder::default()
            .with_min_delay(std::time::Duration::from_millis(200))
            .with_max_times(4),
    )
    .when(|e| {
        e.as_service_error()
            .is_some_and(|se| se.is_object_not_found_exception())
    })
    .await
    .map_err(fail("application-autoscaling", "PutScalingPolicy"))?;
    Ok((
        out.request_id().map(str::to_string),
        out.policy_arn().to_string(),
    ))
}

/// What one call answered: AWS's request id and the part of the answer worth keeping.
type Answer = (Option<String>, Value);

/// Applies one step. `step_arn` carries the step policy's ARN to the alarm put after it.
pub async fn apply(
    aws: &AwsClients,
    d: &Desired,
    step: &Step,
    step_arn: &mut Option<String>,
) -> Result<StepRecord, JobError> {
    let names = &d.names;
    let (request_id, result) = match step {
        Step::RegisterScalableTarget {
            min_capacity,
            max_capacity,
            suspended_state,
        } => register(aws, names, (*min_capacity, *max_capacity), *suspended_state).await?,
        Step::DeregisterScalableTarget => deregister(aws, names).await?,
        Step::PutTargetTrackingPolicy { policy_name, .. } => {
            let cfg = d.target_tracking.to_sdk().map_err(invalid)?;
            let put = put_policy(aws, names, policy_name, PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(cfg);
            let (request_id, arn) = send_policy(aws, put).await?;
            (request_id, json!({"PolicyARN": arn}))
        }
        Step::PutStepScalingPolicy { policy_name, .. } => {
            let cfg = d.step.to_sdk().map_err(invalid)?;
            let put = put_policy(aws, names, policy_name, PolicyType::StepScaling)
                .step_scaling_policy_configuration(cfg);
            let (request_id, arn) = send_policy(aws, put).await?;
            // Store the ARN from every put: it is not assumed stable across updates.
            *step_arn = Some(arn.clone());
            (request_id, json!({"PolicyARN": arn}))
        }
        Step::PutMetricAlarm { alarm_name, .. } => {
            put_alarm(aws, d, alarm_name, step_arn.as_deref()).await?
        }
        Step::DeleteAlarm { alarm_name } => delete_alarm(aws, alarm_name).await?,
        Step::DeleteScalingPolicy { policy_name } => delete_policy(aws, names, policy_name).await?,
        Step::PutScheduledAction {
            scheduled_action_name,
            ..
        } => {
            let action = d
                .scheduled
                .iter()
                .find(|a| &a.name == scheduled_action_name)
                .ok_or_else(|| JobError::permanent("a planned scheduled action is not desired"))?;
            put_scheduled(aws, names, action).await?
        }
        Step::DeleteScheduledAction {
            scheduled_action_name,
        } => delete_scheduled(aws, names, scheduled_action_name).await?,
    };
    Ok(StepRecord {
        step: step.clone(),
        request_id,
        result,
    })
}

/// RegisterScalableTarget with these (MinCapacity, MaxCapacity) and, to resume a suspended
/// scale-out, the whole SuspendedState.
async fn register(
    aws: &AwsClients,
    names: &OwnedNames,
    (min, max): (i32, i32),
    suspended: Option<Suspended>,
) -> Result<Answer, JobError> {
    aws.pace().await;
    let out = aws
        .autoscaling
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names))
        .min_capacity(min)
        .max_capacity(max)
        .set_suspended_state(suspended.map(Suspended::to_sdk))
        .send()
        .await
        .map_err(fail("application-autoscaling", "RegisterScalableTarget"))?;
    Ok((
        out.request_id().map(str::to_string),
        json!({"ScalableTargetARN": out.scalable_target_arn()}),
    ))
}

/// DeregisterScalableTarget; already gone (DeleteEndpoint deregisters it too) is what disable
/// wanted.
async fn deregister(aws: &AwsClients, names: &OwnedNames) -> Result<Answer, JobError> {
    aws.pace().await;
    let out = aws
        .autoscaling
        .deregister_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names))
        .send()
        .await;
    gone_is_done(out, "DeregisterScalableTarget")
}

/// PutMetricAlarm with the step policy's ARN as its action (retried when the ARN is not known
/// yet: the run observes again).
async fn put_alarm(
    aws: &AwsClients,
    d: &Desired,
    alarm_name: &str,
    step_arn: Option<&str>,
) -> Result<Answer, JobError> {
    let arn = step_arn.ok_or_else(|| {
        JobError::retryable("the step policy's ARN is not known yet; observing again")
    })?;
    aws.pace().await;
    let put = aws.cloudwatch.put_metric_alarm().alarm_name(alarm_name);
    let out = put_members!(put, &d.alarm, arn)
        .send()
        .await
        .map_err(fail("monitoring", "PutMetricAlarm"))?;
    Ok((
        out.request_id().map(str::to_string),
        json!({"AlarmActions": [arn]}),
    ))
}

/// DeleteScalingPolicy of one of ours; already gone is done.
async fn delete_policy(
    aws: &AwsClients,
    names: &OwnedNames,
    policy_name: &str,
) -> Result<Answer, JobError> {
    aws.pace().await;
    let out = aws
        .autoscaling
        .delete_scaling_policy()
        .policy_name(policy_name)
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names))
        .send()
        .await;
    gone_is_done(out, "DeleteScalingPolicy")
}

/// PutScheduledAction (creates or replaces; StartTime and EndTime are left out, so any an
/// earlier put or someone else set are deleted).
async fn put_scheduled(
    aws: &AwsClients,
    names: &OwnedNames,
    a: &super::objects::ScheduledAction,
) -> Result<Answer, JobError> {
    aws.pace().await;
    let out = aws
        .autoscaling
        .put_scheduled_action()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names))
        .scheduled_action_name(&a.name)
        .schedule(&a.schedule)
        .set_timezone(a.timezone.clone())
        .scalable_target_action(a.target_action())
        .send()
        .await
        .map_err(fail("application-autoscaling", "PutScheduledAction"))?;
    Ok((out.request_id().map(str::to_string), json!({})))
}

/// DeleteScheduledAction of one of ours; already gone is done.
async fn delete_scheduled(
    aws: &AwsClients,
    names: &OwnedNames,
    name: &str,
) -> Result<Answer, JobError> {
    aws.pace().await;
    let out = aws
        .autoscaling
        .delete_scheduled_action()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&names.resource_id)
        .scalable_dimension(dimension(names))
        .scheduled_action_name(name)
        .send()
        .await;
    gone_is_done(out, "DeleteScheduledAction")
}

/// The outcome of a delete or deregister: ObjectNotFoundException means the object is already
/// gone, which is what the call wanted (aws-facts.md: it is the answer for deleting something
/// that is not there).
fn gone_is_done<O, E>(
    out: Result<
        O,
        aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
    >,
    op: &'static str,
) -> Result<(Option<String>, Value), JobError>
where
    O: aws_sdk_applicationautoscaling::operation::RequestId,
    E: aws_sdk_sagemaker::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_applicationautoscaling::{
        error::ProvideErrorMetadata as _, operation::RequestId as _,
    };
    match out {
        Ok(out) => Ok((out.request_id().map(str::to_string), json!({}))),
        Err(e) if e.code() == Some("ObjectNotFoundException") => Ok((
            e.request_id().map(str::to_string),
            json!({"already_gone": true}),
        )),
        Err(e) => Err(fail("application-autoscaling", op)(e)),
    }
}

/// DeleteAlarms of one of ours. An alarm already gone is what was wanted (AWS answers
/// ResourceNotFound for it); a composite alarm that depends on ours makes AWS refuse, and the
/// error names the composite alarms to change (aws-facts.md, "Deletes").
async fn delete_alarm(
    aws: &AwsClients,
    alarm_name: &str,
) -> Result<(Option<String>, Value), JobError> {
    use aws_sdk_cloudwatch::operation::RequestId as _;
    aws.pace().await;
    match aws
        .cloudwatch
        .delete_alarms()
        .alarm_names(alarm_name)
        .send()
        .await
    {
        Ok(out) => Ok((out.request_id().map(str::to_string), json!({}))),
        Err(e) => {
            let request_id = e.request_id().map(str::to_string);
            let f = AwsFailure::from_sdk("monitoring", "DeleteAlarms", e);
            match f.code.as_str() {
                "ResourceNotFound" => Ok((request_id, json!({"already_gone": true}))),
                "ValidationError" => {
                    let dependents = composites_naming(aws, alarm_name).await;
                    Err(JobError::permanent(format!(
                        "CloudWatch refused to delete alarm {alarm_name:?}: composite alarm(s) depend on it ({}; AWS said: {}). \
                         Remove {alarm_name:?} from their AlarmRule (or delete them), then disable again",
                        if dependents.is_empty() { "see AWS's message".to_string() } else { dependents.join(", ") },
                        f.message
                    )))
                }
                _ => Err(job_error(f)),
            }
        }
    }
}

/// Composite alarms whose rule names `alarm` (first five pages; best effort, for a message).
async fn composites_naming(aws: &AwsClients, alarm: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pages = aws
        .cloudwatch
        .describe_alarms()
        .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
        .into_paginator()
        .send();
    for _ in 0..5 {
        aws.pace().await;
        let Some(Ok(page)) = pages.next().await else {
            break;
        };
        out.extend(
            page.composite_alarms()
                .iter()
                .filter(|c| c.alarm_rule().is_some_and(|r| rule_names(r, alarm)))
                .filter_map(|c| c.alarm_name().map(str::to_string)),
        );
    }
    out
}

/// Whether a composite alarm's rule names `alarm`: by name (quoted or not, as AWS allows) or by
/// its ARN, which ends in `:alarm:<name>`.
fn rule_names(rule: &str, alarm: &str) -> bool {
    [
        format!("\"{alarm}\""),
        format!("({alarm})"),
        format!(":alarm:{alarm}"),
    ]
    .iter()
    .any(|form| rule.contains(form.as_str()))
}

/// A description the SDK refuses to build (a required member missing): a defect, not worth
/// retrying.
fn invalid(e: aws_sdk_applicationautoscaling::error::BuildError) -> JobError {
    JobError::permanent(e.to_string())
}
