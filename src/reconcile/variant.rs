//! Async-inference endpoint variants (seed 001): the checks that must pass before any write.

use super::{job_error, kinds, quotas, Preflight};
use crate::{
    aws::{AwsClients, AwsFailure},
    domain::{EndpointName, VariantName},
    jobs::JobError,
};

fn permanent(msg: String) -> JobError {
    JobError::permanent(msg)
}

/// Checks, before any write, that `variant` of `endpoint` can scale to zero: the endpoint
/// exists, is InService and is an async-inference endpoint (only those can run at zero
/// instances and queue requests meanwhile), and the variant is one of its production variants
/// with an instance type. Settings come from the endpoint's current EndpointConfig, the
/// authoritative record; counts from DescribeEndpoint (aws-facts.md, "Quotas").
pub async fn preflight(
    aws: &AwsClients,
    endpoint: &EndpointName,
    variant: &VariantName,
) -> Result<Preflight, JobError> {
    let (endpoint, variant) = (endpoint.as_str(), variant.as_str());
    aws.pace().await;
    let ep = match aws
        .sagemaker
        .describe_endpoint()
        .endpoint_name(endpoint)
        .send()
        .await
    {
        Ok(ep) => ep,
        Err(e) => {
            let f = AwsFailure::from_sdk("sagemaker", "DescribeEndpoint", e);
            if kinds::not_found(&f) {
                let hint = kinds::endpoint_is_elsewhere(aws, endpoint).await;
                return Err(kinds::does_not_exist(
                    &format!("endpoint {endpoint:?}"),
                    &hint,
                ));
            }
            return Err(job_error(f));
        }
    };
    let status = ep
        .endpoint_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    kinds::status_check("Endpoint", &format!("endpoint {endpoint:?}"), &status)?;
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
    if config.async_inference_config().is_none() {
        return Err(permanent(format!(
            "endpoint {endpoint:?} is a real-time endpoint (its config {config_name:?} has no AsyncInferenceConfig). \
             Only async-inference endpoints queue requests while at zero instances; a real-time endpoint scales to zero \
             through the inference components it hosts: use POST /components/{{component}}/scale-to-zero for each of them"
        )));
    }
    let variants: Vec<&str> = config
        .production_variants()
        .iter()
        .filter_map(|v| v.variant_name())
        .collect();
    let pv = config
        .production_variants()
        .iter()
        .find(|v| v.variant_name() == Some(variant))
        .ok_or_else(|| {
            permanent(format!(
                "endpoint {endpoint:?} has no production variant {variant:?}; its variants are: {}",
                variants.join(", ")
            ))
        })?;
    let (instance_type, instance_pools) = quotas::instance_types(pv);
    if instance_type.is_none() && instance_pools.is_empty() {
        return Err(permanent(format!(
            "variant {variant:?} of endpoint {endpoint:?} has no instance type or instance pools (a serverless variant?): \
             only instance-based variants are scaled with Application Auto Scaling"
        )));
    }
    let current_instances = ep
        .production_variants()
        .iter()
        .find(|v| v.variant_name() == Some(variant))
        .and_then(|v| v.current_instance_count())
        .unwrap_or(0);
    Ok(Preflight {
        endpoint: endpoint.to_string(),
        variant: variant.to_string(),
        config_name,
        instance_type,
        instance_pools,
        max_instance_count: None,
        current_capacity: current_instances,
        warnings: Vec::new(),
    })
}

/// The instances an async variant may need: its max_capacity (it scales instances directly),
/// and how to say so (seed 001, pitfall 2).
pub fn instance_need(pre: &Preflight, max_instances: i32) -> (i32, String, String) {
    let why = format!(
        "max_capacity {max_instances} lets variant {:?} of endpoint {:?} scale out to {max_instances} instances",
        pre.variant, pre.endpoint
    );
    (
        max_instances,
        why,
        "Lower max_capacity to at most the quota".into(),
    )
}
