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

/// DescribeEndpoint shared by the component preflights of one endpoint for
/// [`crate::aws::ENDPOINT_TTL`] (concurrent ones share one read). Only for a caller that needs
/// the config name and whether the status is terminal: a read up to ten seconds old (a refusal
/// made on it is confirmed on a fresh read).
pub(super) async fn shared_endpoint(
    aws: &AwsClients,
    name: &str,
) -> Result<std::sync::Arc<DescribeEndpointOutput>, JobError> {
    aws.endpoints
        .try_get_with(name.to_string(), async {
            endpoint(aws, name, None).await.map(std::sync::Arc::new)
        })
        .await
        .map_err(|e| (*e).clone())
}

/// DescribeEndpointConfig, the authoritative record of a variant's settings. A config cannot
/// change under its name, so it is read once per process (concurrent preflights share the
/// read) and remembered for the quota preflight's usage sweep.
pub(super) async fn endpoint_config(
    aws: &AwsClients,
    name: &str,
) -> Result<DescribeEndpointConfigOutput, JobError> {
    let config = aws
        .endpoint_configs
        .try_get_with(name.to_string(), async {
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
            Ok::<_, JobError>(std::sync::Arc::new(config))
        })
        .await
        .map_err(|e| (*e).clone())?;
    Ok((*config).clone())
}

/// A status as text (empty when AWS gave none).
pub(super) fn status<S: AsRef<str>>(s: Option<&S>) -> String {
    s.map(|s| s.as_ref().to_string()).unwrap_or_default()
}
