//! Inference components (seed 000): the checks that must pass before any write.

use aws_sdk_sagemaker::{
    operation::{
        describe_endpoint::DescribeEndpointOutput,
        describe_inference_component::DescribeInferenceComponentOutput,
    },
    types::ProductionVariant,
};

use super::{job_error, kinds, reads, Preflight};
use crate::{
    aws::{AwsClients, AwsFailure},
    jobs::{ErrorClass, JobError},
};

fn permanent(msg: String) -> JobError {
    JobError::permanent(msg)
}

/// Checks, before any write, that scale-to-zero can work for component `name` (aws-facts.md,
/// "Preconditions for inference components"); each failure says what to change.
///
/// The component's endpoint and variant come from the shared listing when a burst of preflights
/// pays for one (`aws::directory`) and the change says its max capacity (the listing has no copy
/// count); otherwise from DescribeInferenceComponent. The endpoint's read is shared for a few
/// seconds. A refusal is never made on a shared read: it is confirmed on fresh ones (the
/// component described, the endpoint read again).
pub async fn preflight(
    aws: &AwsClients,
    name: &str,
    max_given: bool,
) -> Result<Preflight, JobError> {
    if max_given {
        if let Some(l) = aws.listed_component(name).await {
            match on_endpoint(aws, &l.endpoint, &l.variant, None).await {
                Err(e) if e.class == ErrorClass::Permanent => {}
                other => return other,
            }
        }
    }
    let ic = describe(aws, name).await?;
    let copies = ic
        .runtime_config()
        .and_then(|r| r.current_copy_count())
        .unwrap_or(0);
    on_endpoint(
        aws,
        ic.endpoint_name().unwrap_or_default(),
        ic.variant_name().unwrap_or_default(),
        Some(copies),
    )
    .await
}

/// The endpoint's checks for a component on `variant` of `endpoint` with `copies` running (None:
/// not read), on the shared endpoint read, and a refusal confirmed on a fresh one.
async fn on_endpoint(
    aws: &AwsClients,
    endpoint: &str,
    variant: &str,
    copies: Option<i32>,
) -> Result<Preflight, JobError> {
    let shared = reads::shared_endpoint(aws, endpoint).await?;
    let (config_name, (pv, max_instances)) =
        match endpoint_checks(aws, &shared, endpoint, variant).await {
            Err(e) if e.class == ErrorClass::Permanent => {
                aws.endpoints.invalidate(endpoint).await;
                let fresh = reads::shared_endpoint(aws, endpoint).await?;
                endpoint_checks(aws, &fresh, endpoint, variant).await?
            }
            other => other?,
        };
    Ok(Preflight::passed(
        (endpoint, variant),
        config_name,
        &pv,
        Some(max_instances),
        copies,
    ))
}

/// The endpoint's checks: not in a terminal status, and its config's variant allows zero
/// instances. (the config's name, (the variant, its MaxInstanceCount)).
async fn endpoint_checks(
    aws: &AwsClients,
    ep: &DescribeEndpointOutput,
    endpoint: &str,
    variant: &str,
) -> Result<(String, (ProductionVariant, i32)), JobError> {
    // An endpoint is Updating whenever any component on it scales: no reason for this one to
    // wait (its own status says whether it is being changed). Only a terminal status of the
    // endpoint stops it.
    let ep_status = reads::status(ep.endpoint_status());
    match kinds::status_check("Endpoint", &format!("endpoint {endpoint:?}"), &ep_status) {
        Err(e) if e.class == ErrorClass::Wait => {}
        other => other?,
    }
    let config_name = ep.endpoint_config_name().unwrap_or_default().to_string();
    let config = reads::endpoint_config(aws, &config_name).await?;
    let pv = config
        .production_variants()
        .iter()
        .find(|v| v.variant_name() == Some(variant))
        .ok_or_else(|| {
            permanent(format!(
                "endpoint config {config_name:?} has no production variant {variant:?}"
            ))
        })?;
    let max_instances = allows_zero(pv, &config_name, endpoint, variant)?;
    Ok((config_name, (pv.clone(), max_instances)))
}

/// DescribeInferenceComponent, checked to be InService; a missing one points at the endpoint
/// route when `name` is an endpoint.
async fn describe(
    aws: &AwsClients,
    name: &str,
) -> Result<DescribeInferenceComponentOutput, JobError> {
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
            if kinds::not_found(&f) {
                let hint = kinds::component_is_elsewhere(aws, name).await;
                let what = format!("inference component {name:?}");
                return Err(kinds::does_not_exist(&what, &hint));
            }
            return Err(job_error(f));
        }
    };
    let status = reads::status(ic.inference_component_status());
    let what = format!("inference component {name:?}");
    kinds::status_check("InferenceComponent", &what, &status)?;
    Ok(ic)
}

/// The variant's MaxInstanceCount, if its managed instance scaling allows zero instances;
/// otherwise a permanent error saying which endpoint config to create.
fn allows_zero(
    pv: &ProductionVariant,
    config_name: &str,
    endpoint: &str,
    variant: &str,
) -> Result<i32, JobError> {
    let mis = pv.managed_instance_scaling();
    let enabled = mis
        .and_then(|m| m.status())
        .is_some_and(|s| s.as_str() == "ENABLED");
    let min = mis.and_then(|m| m.min_instance_count()).unwrap_or(-1);
    let max_instances = mis.and_then(|m| m.max_instance_count()).unwrap_or(0);
    if enabled && min == 0 {
        return Ok(max_instances);
    }
    let now = if enabled {
        format!("MinInstanceCount {min}")
    } else {
        "ManagedInstanceScaling disabled".into()
    };
    Err(permanent(format!(
        "endpoint config {config_name:?} (variant {variant:?}) does not allow zero instances: it has {now}. \
         Create an endpoint config whose variant has ManagedInstanceScaling {{Status: ENABLED, MinInstanceCount: 0, MaxInstanceCount: {}}} \
         and UpdateEndpoint {endpoint:?} to it, then retry",
        max_instances.max(1)
    )))
}

/// The instances a component's scale-out may need, and how that was derived. The quota bounds
/// instances, not copies (aws-facts.md, "Quotas"): copies pack onto instances by their
/// ComputeResourceRequirements, so `max_copies` copies need at most that many instances, and
/// managed instance scaling never grows the variant past its MaxInstanceCount.
pub fn instance_need(pre: &Preflight, max_copies: i32) -> (i32, String, String) {
    let max_instances = pre.max_instance_count.unwrap_or(0);
    let need = max_copies.min(max_instances).max(1);
    let why = format!(
        "inference component copies run on variant {:?} of endpoint {:?}, which may use up to {need} instances: \
         managed instance scaling stops at MaxInstanceCount {max_instances} (endpoint config {:?}), and max_capacity \
         {max_copies} copies need at most {max_copies} (copies pack onto instances)",
        pre.variant, pre.endpoint, pre.config_name
    );
    let fix = "Lower max_capacity, or the variant's MaxInstanceCount (a new endpoint config and UpdateEndpoint), to at most the quota".to_string();
    (need, why, fix)
}
