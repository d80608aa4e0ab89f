//! Async-inference endpoint variants (seed 001): the checks that must pass before any write.

use aws_sdk_sagemaker::{
    operation::describe_endpoint_config::DescribeEndpointConfigOutput, types::ProductionVariant,
};

use super::{kinds, quotas, reads, Preflight};
use crate::{
    aws::AwsClients,
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
    let ep = reads::endpoint(aws, endpoint, Some(&format!("endpoint {endpoint:?}"))).await?;
    let status = reads::status(ep.endpoint_status());
    kinds::status_check("Endpoint", &format!("endpoint {endpoint:?}"), &status)?;
    let config_name = ep.endpoint_config_name().unwrap_or_default().to_string();
    let config = reads::endpoint_config(aws, &config_name).await?;
    let pv = async_variant(&config, endpoint, variant)?;
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
    Ok(Preflight::passed(
        (endpoint, variant),
        config_name,
        pv,
        None,
        Some(current_instances),
    ))
}

/// The variant's configuration, if the endpoint is an async-inference endpoint that has it.
fn async_variant<'c>(
    config: &'c DescribeEndpointConfigOutput,
    endpoint: &str,
    variant: &str,
) -> Result<&'c ProductionVariant, JobError> {
    let config_name = config.endpoint_config_name().unwrap_or_default();
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
    config
        .production_variants()
        .iter()
        .find(|v| v.variant_name() == Some(variant))
        .ok_or_else(|| {
            permanent(format!(
                "endpoint {endpoint:?} has no production variant {variant:?}; its variants are: {}",
                variants.join(", ")
            ))
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
