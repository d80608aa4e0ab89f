//! Telling a user who named the wrong kind of target what they meant: an endpoint sent to a
//! component route, or a component sent to a variant route. Both are SageMaker names of the
//! same shape, so only AWS can tell them apart.

use crate::{
    aws::{AwsClients, AwsFailure, FailureKind},
    domain::TargetRef,
    jobs::JobError,
};

/// Whether `op` failed because the resource does not exist (SageMaker answers a missing
/// endpoint or component with a ValidationException "Could not find ...").
pub(crate) fn not_found(f: &AwsFailure) -> bool {
    f.kind == FailureKind::Permanent && f.message.contains("Could not find")
}

/// The permanent error of a preflight whose target's own resource is missing, with `hint` (a
/// pointer to the other kind's route, or empty) appended.
pub(crate) fn does_not_exist(what: &str, hint: &str) -> JobError {
    JobError::permanent(format!(
        "{what} does not exist in this account and region: check the name and the region zeroscale uses{hint}"
    ))
}

/// What a SageMaker status means for a run (aws-facts.md, "Statuses move"): InService goes on;
/// Creating, Updating, SystemUpdating and RollingBack are transitional (every scale-out from zero
/// leaves the endpoint Updating for minutes), so the run waits and retries; Failed,
/// OutOfService, Deleting and UpdateRollbackFailed will not fix themselves.
pub(crate) fn status_check(kind: &str, what: &str, status: &str) -> Result<(), JobError> {
    match status {
        "InService" => Ok(()),
        "Creating" | "Updating" | "SystemUpdating" | "RollingBack" => Err(JobError::wait(
            format!("{kind}{status}"),
            format!(
                "{what} is {status}: AWS is changing it (scaling capacity keeps it Updating for \
                 minutes); zeroscale waits and retries until it is InService"
            ),
        )),
        other => Err(JobError::permanent(format!(
            "{what} is {other}, not InService: scale to zero needs it InService; fix or \
             recreate it, then retry"
        ))),
    }
}

/// Whether a resource exists, as far as AWS said.
enum Exists {
    /// It does (for endpoints: with these variant names).
    Yes(Vec<String>),
    /// AWS said it does not.
    No,
    /// AWS could not say (throttled, unavailable, denied).
    Unknown,
}

fn answer<T>(r: Result<T, AwsFailure>, found: impl FnOnce(T) -> Vec<String>) -> Exists {
    match r {
        Ok(v) => Exists::Yes(found(v)),
        Err(f) if not_found(&f) => Exists::No,
        Err(_) => Exists::Unknown,
    }
}

/// DescribeEndpoint, unpaced: callers take the pacer's permission.
async fn endpoint_named(aws: &AwsClients, name: &str) -> Exists {
    let r = aws
        .sagemaker
        .describe_endpoint()
        .endpoint_name(name)
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk("sagemaker", "DescribeEndpoint", e));
    answer(r, |ep| {
        ep.production_variants()
            .iter()
            .filter_map(|v| v.variant_name().map(str::to_string))
            .collect()
    })
}

/// DescribeInferenceComponent, unpaced: callers take the pacer's permission.
async fn component_named(aws: &AwsClients, name: &str) -> Exists {
    let r = aws
        .sagemaker
        .describe_inference_component()
        .inference_component_name(name)
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk("sagemaker", "DescribeInferenceComponent", e));
    answer(r, |_| Vec::new())
}

/// For a component that does not exist: a hint if `name` is an endpoint (empty otherwise).
pub async fn component_is_elsewhere(aws: &AwsClients, name: &str) -> String {
    aws.pace().await;
    match endpoint_named(aws, name).await {
        Exists::Yes(variants) => endpoint_hint(name, &variants),
        Exists::No | Exists::Unknown => String::new(),
    }
}

fn endpoint_hint(name: &str, variants: &[String]) -> String {
    format!(
        ". {name:?} is an endpoint: for an async-inference endpoint use \
         POST /endpoints/{name}/variants/{{variant}}/scale-to-zero (its variants: {}); for a \
         real-time endpoint, enable each inference component it hosts",
        variants.join(", ")
    )
}

fn component_hint(name: &str) -> String {
    format!(". {name:?} is an inference component: use POST /components/{name}/scale-to-zero")
}

/// For an endpoint that does not exist: a hint if `name` is an inference component.
pub async fn endpoint_is_elsewhere(aws: &AwsClients, name: &str) -> String {
    aws.pace().await;
    if let Exists::Yes(_) = component_named(aws, name).await {
        component_hint(name)
    } else {
        String::new()
    }
}

/// Before the first enable of `target`: `Some(message)` when AWS has no resource of this kind
/// under that name but has one of the other kind (the caller used the wrong route). `None`
/// when it exists, when neither exists (the job's preflight reports that), when AWS cannot
/// answer now, or when the pacer has no budget for the two reads right now (a burst of enables
/// must not queue behind the workers' calls; the job's preflight gives the same hint): the check
/// must never block or slow a valid write.
pub async fn wrong_kind(aws: &AwsClients, target: &TargetRef) -> Option<String> {
    if !aws.try_pace(2) {
        return None;
    }
    match target {
        TargetRef::Component(name) => {
            let name = name.as_str();
            let Exists::No = component_named(aws, name).await else {
                return None;
            };
            let Exists::Yes(variants) = endpoint_named(aws, name).await else {
                return None;
            };
            Some(format!(
                "no inference component is named {name:?}{}",
                endpoint_hint(name, &variants)
            ))
        }
        TargetRef::EndpointVariant { endpoint, .. } => {
            let name = endpoint.as_str();
            let Exists::No = endpoint_named(aws, name).await else {
                return None;
            };
            let Exists::Yes(_) = component_named(aws, name).await else {
                return None;
            };
            Some(format!(
                "no endpoint is named {name:?}{}",
                component_hint(name)
            ))
        }
    }
}
