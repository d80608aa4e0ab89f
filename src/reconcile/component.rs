//! Inference components (seed 000): the checks that must pass before any write.

use super::{job_error, kinds, quotas, Preflight};
use crate::{
    aws::{AwsClients, AwsFailure},
    jobs::{ErrorClass, JobError},
};

fn permanent(msg: String) -> JobError {
    JobError::permanent(msg)
}

/// Checks, before any write, that scale-to-zero can work for component `name` (aws-facts.md,
/// "Preconditions for inference components"); each failure says what to change.
pub async fn preflight(aws: &AwsClients, name: &str) -> Result<Preflight, JobError> {
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
                return Err(kinds::does_not_exist(
                    &format!("inference component {name:?}"),
                    &hint,
                ));
            }
            return Err(job_error(f));
        }
    };
    let status = ic
        .inference_component_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    kinds::status_check(
        "InferenceComponent",
        &format!("inference component {name:?}"),
        &status,
    )?;
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
        .map_err(|e| job_error(AwsFailure::from_sdk("sagemaker", "DescribeEndpoint", e)))?;
    let ep_status = ep
        .endpoint_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    // An endpoint is Updating whenever any component on it scales: no reason for this one to
    // wait (its own status above says whether it is being changed). Only a terminal status
    // of the endpoint stops it.
    match kinds::status_check("Endpoint", &format!("endpoint {endpoint:?}"), &ep_status) {
        Err(e) if e.class == ErrorClass::Wait => {}
        other => other?,
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
            job_error(AwsFailure::from_sdk(
                "sagemaker",
                "DescribeEndpointConfig",
                e,
            ))
        })?;
    quotas::remember_config(aws, &config_name, &config).await;
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
    let (instance_type, instance_pools) = quotas::instance_types(pv);
    Ok(Preflight {
        endpoint,
        variant,
        config_name,
        instance_type,
        instance_pools,
        max_instance_count: Some(max_instances),
        current_capacity: current_copies,
        warnings: Vec::new(),
    })
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
