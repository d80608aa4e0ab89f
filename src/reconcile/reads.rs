//! The SageMaker reads both preflights make, each mapped to the job error a preflight needs.

use aws_sdk_sagemaker::operation::{
    describe_endpoint::DescribeEndpointOutput,
    describe_endpoint_config::DescribeEndpointConfigOutput,
};

use super::{job_error, kinds, quotas};
use crate::{
    aws::{AwsClients, AwsFailure},
    jobs::JobError,
};

/// DescribeEndpoint. A missing endpoint is a permanent error whose text comes from
/// `missing` (given the endpoint's name), so each kind can point at the route it meant.
pub(super) async fn endpoint(
    aws: &AwsClients,
    name: &str,
    missing: Option<&str>,
) -> Result<DescribeEndpointOutput, JobError> {
    aws.pace().await;
    match aws
        .sagemaker
        .describe_endpoint()
        .endpoint_name(name)
        .send()
        .await
    {
        Ok(ep) => Ok(ep),
        Err(e) => {
            let f = AwsFailure::from_sdk("sagemaker", "DescribeEndpoint", e);
            match missing {
                Some(what) if kinds::not_found(&f) => {
                    let hint = kinds::endpoint_is_elsewhere(aws, name).await;
                    Err(kinds::does_not_exist(what, &hint))
                }
                _ => Err(job_error(f)),
            }
        }
    }
}

/// DescribeEndpointConfig, the authoritative record of a variant's settings; remembered for
/// the quota preflight's usage sweep (configs are immutable under their name).
pub(super) async fn endpoint_config(
    aws: &AwsClients,
    name: &str,
) -> Result<DescribeEndpointConfigOutput, JobError> {
    aws.pace().await;
    let config = aws
        .sagemaker
        .describe_endpoint_config()
        .endpoint_config_name(name)
        .send()
        .await
        .map_err(|e| {
            job_error(AwsFailure::from_sdk(
                "sagemaker",
                "DescribeEndpointConfig",
                e,
            ))
        })?;
    quotas::remember_config(aws, name, &config).await;
    Ok(config)
}

/// A status as text (empty when AWS gave none).
pub(super) fn status<S: AsRef<str>>(s: Option<&S>) -> String {
    s.map(|s| s.as_ref().to_string()).unwrap_or_default()
}
