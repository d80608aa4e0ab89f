//! Waking: a change that pins a target warm completes when the capacity is in service, not when
//! MinCapacity was raised. Application Auto Scaling scales out to a raised minimum at once, and
//! SageMaker takes minutes to provision it (aws-facts.md, "Raising MinCapacity"); until then the
//! run waits (the job retries, showing a `Waiting` condition). How long it took is AWS's own
//! account of it: the scaling activity the raise started, from its StartTime to its EndTime.

use aws_sdk_applicationautoscaling::types::ScalingActivity;

use super::job_error;
use crate::{
    aws::{AwsClients, AwsFailure},
    domain::{OwnedNames, TargetRef},
    jobs::JobError,
};

/// Capacity in service now, and whether the resource is settled (InService).
pub async fn in_service(aws: &AwsClients, target: &TargetRef) -> Result<(i32, bool), JobError> {
    match target {
        TargetRef::Component(name) => {
            aws.pace().await;
            let c = aws
                .sagemaker
                .describe_inference_component()
                .inference_component_name(name.as_str())
                .send()
                .await
                .map_err(|e| {
                    job_error(AwsFailure::from_sdk(
                        "sagemaker",
                        "DescribeInferenceComponent",
                        e,
                    ))
                })?;
            let copies = c
                .runtime_config()
                .and_then(|r| r.current_copy_count())
                .unwrap_or(0);
            let settled = c
                .inference_component_status()
                .is_some_and(|s| s.as_str() == "InService");
            Ok((copies, settled))
        }
        TargetRef::EndpointVariant { endpoint, variant } => {
            aws.pace().await;
            let e = aws
                .sagemaker
                .describe_endpoint()
                .endpoint_name(endpoint.as_str())
                .send()
                .await
                .map_err(|e| job_error(AwsFailure::from_sdk("sagemaker", "DescribeEndpoint", e)))?;
            let instances = e
                .production_variants()
                .iter()
                .find(|v| v.variant_name() == Some(variant.as_str()))
                .and_then(|v| v.current_instance_count())
                .unwrap_or(0);
            let settled = e
                .endpoint_status()
                .is_some_and(|s| s.as_str() == "InService");
            Ok((instances, settled))
        }
    }
}

/// Waits (as a job error of class Wait) until `copies` are in service; then how long the
/// scale-out took by AWS's activity when `warming` (the run had to scale out), else 0. Only the
/// newest activity a MinCapacity raise started counts (this change's: an older failure, since
/// fixed, says nothing about it): when it failed (the instance quota, seed 001), the wait ends
/// with AWS's words.
pub async fn await_capacity(
    aws: &AwsClients,
    target: &TargetRef,
    copies: i32,
    warming: &Warming,
) -> Result<f64, JobError> {
    let (now, settled) = in_service(aws, target).await?;
    let raise = newest_raise(aws, &target.owned_names(), &warming.activity_before).await;
    if now >= copies && settled {
        let took = raise
            .filter(|a| warming.scale_out && a.status_code().as_str() == "Successful")
            .and_then(|a| {
                let end = a.end_time()?;
                Some((end.as_secs_f64() - a.start_time().as_secs_f64()).max(0.0))
            });
        return Ok(took.unwrap_or(0.0));
    }
    if let Some(failed) =
        raise.filter(|a| a.status_code().as_str() == "Failed" && a.not_scaled_reasons().is_empty())
    {
        return Err(JobError::permanent(format!(
            "{target} could not be warmed to {copies}: the scale-out failed: {}",
            failed
                .status_message()
                .unwrap_or("see the scaling activities")
        )));
    }
    Err(JobError::wait(
        "Warming",
        format!("waiting for {copies} in service ({now} now): AWS is provisioning the capacity the raised MinCapacity asked for"),
    ))
}

/// The newest activity a MinCapacity raise started (AWS's cause: "minimum capacity was set to
/// N") after `before` (the newest activity before this change's write), on the first page
/// (newest first). None when there is none yet or it cannot be read.
async fn newest_raise(
    aws: &AwsClients,
    names: &OwnedNames,
    before: &str,
) -> Option<ScalingActivity> {
    aws.pace().await;
    let out = super::observe::activities(aws, names).send().await.ok()?;
    out.scaling_activities()
        .iter()
        .take_while(|a| before.is_empty() || a.activity_id() != before)
        .find(|a| a.cause().contains("minimum capacity was set to"))
        .cloned()
}

/// The copies a user's change pins warm now (None: no active pin, a pause, or not a change).
pub fn pinned(spec: &crate::domain::TargetSpec, reason: &str) -> Option<i32> {
    let now = chrono::Utc::now();
    if reason != "change" || spec.pause().is_some_and(|p| p.active(now)) {
        return None;
    }
    spec.keep_warm()
        .filter(|p| p.active(now))
        .map(|p| p.copies as i32)
}

/// What a change that pins capacity learns before its first write, kept in the operation's
/// output for its later attempts.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Warming {
    /// It has to scale out to reach the copies (fewer were in service).
    pub scale_out: bool,
    /// The newest scaling activity before its write (`""`: none): only newer ones are its own.
    pub activity_before: String,
}

/// What an earlier attempt of this change found, else what is in service and the newest
/// activity before the first write.
pub async fn must_warm(
    aws: &AwsClients,
    target: &TargetRef,
    copies: i32,
    earlier: Option<Warming>,
) -> Result<Warming, JobError> {
    if let Some(w) = earlier {
        return Ok(w);
    }
    let scale_out = in_service(aws, target).await?.0 < copies;
    aws.pace().await;
    let newest = super::observe::activities(aws, &target.owned_names())
        .send()
        .await
        .map_err(|e| {
            job_error(AwsFailure::from_sdk(
                "application-autoscaling",
                "DescribeScalingActivities",
                e,
            ))
        })?;
    let activity_before = newest
        .scaling_activities()
        .first()
        .map(|a| a.activity_id().to_string())
        .unwrap_or_default();
    Ok(Warming {
        scale_out,
        activity_before,
    })
}

/// The same checks as an enable's preflight, for a pin of `copies`: at most the max capacity
/// the job would use, and within the instance quota less what other endpoints run now (a
/// scale-out past it fails, visible only in the scaling activities: seed 001). `Err` says why
/// `copies` is refused; a preflight that cannot answer (AWS busy, the resource updating)
/// refuses nothing: the job checks again.
pub async fn check_copies(
    aws: &AwsClients,
    target: &TargetRef,
    spec: &crate::domain::TargetSpec,
    copies: u32,
) -> Result<(), String> {
    let Ok(p) = super::prepare(aws, target, spec, false).await else {
        return Ok(());
    };
    let max = p.desired.max_capacity;
    if copies as i32 > max {
        return Err(format!(
            "must not exceed the max capacity {max} (the scalable target's MaxCapacity): raise max_capacity first"
        ));
    }
    let (need, why, fix) = match target {
        TargetRef::Component(_) => super::component::instance_need(&p.preflight, copies as i32),
        TargetRef::EndpointVariant { .. } => {
            super::variant::instance_need(&p.preflight, copies as i32)
        }
    };
    match super::quotas::check(aws, &p.preflight, need, &why, &fix).await {
        Err(e) if e.class == crate::jobs::ErrorClass::Permanent => Err(e.message),
        Ok(warnings) => match warnings.into_iter().find(|w| w.reason == "QuotaHeadroom") {
            Some(w) => Err(format!(
                "a scale-out to {copies} would fail now: {}",
                w.message
            )),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    }
}
