//! One line per read zeroscale needs, each tried once in its most harmless form.

use super::{
    check,
    probe::{reach_hint, said, timed_out, AWS_TIMEOUT},
    Check, Status,
};
use crate::aws::{AwsClients, AwsFailure, FailureKind};

/// A name no account uses, for describes that need one: not-found means permitted.
const PROBE: &str = "zeroscale-doctor-probe";

/// What zeroscale does without a read the account may choose not to grant.
type Optional = Option<&'static str>;

/// Quotas and the usage count feed the instance-quota preflight, which an enable skips with a
/// warning condition when they cannot be read (aws-facts.md, "Quotas").
const QUOTA_CHECK: Optional = Some(
    "zeroscale enables targets without the instance-quota check and says so in a warning condition",
);

/// Each read zeroscale needs, tried once in its most harmless form, all at once.
pub(super) async fn permissions(aws: &AwsClients) -> Vec<Check> {
    use crate::domain::target::ALARM_PREFIX;
    use futures::future::BoxFuture;
    let ns = aws_sdk_applicationautoscaling::types::ServiceNamespace::Sagemaker;
    let mut probes: Vec<BoxFuture<'_, Check>> = Vec::new();
    macro_rules! probe {
        ($action:expr, $optional:expr, $call:expr) => {{
            let call = $call;
            probes.push(Box::pin(async move {
                aws.pace().await;
                let r = match tokio::time::timeout(AWS_TIMEOUT, call.send()).await {
                    Ok(r) => r
                        .map(|_| ())
                        .map_err(|e| AwsFailure::from_sdk("doctor", $action, e)),
                    Err(_) => Err(timed_out($action)),
                };
                verdict($action, $optional, r)
            }));
        }};
    }
    probe!(
        "application-autoscaling:DescribeScalableTargets",
        None,
        aws.autoscaling
            .describe_scalable_targets()
            .service_namespace(ns.clone())
            .max_results(1)
    );
    probe!(
        "application-autoscaling:DescribeScalingPolicies",
        None,
        aws.autoscaling
            .describe_scaling_policies()
            .service_namespace(ns.clone())
            .max_results(1)
    );
    probe!(
        "application-autoscaling:DescribeScalingActivities",
        None,
        aws.autoscaling
            .describe_scaling_activities()
            .service_namespace(ns)
            .max_results(1)
    );
    probe!(
        "cloudwatch:DescribeAlarms",
        None,
        aws.cloudwatch
            .describe_alarms()
            .alarm_name_prefix(ALARM_PREFIX)
            .max_records(1)
    );
    probe!(
        "sagemaker:ListEndpoints",
        QUOTA_CHECK,
        aws.sagemaker.list_endpoints().max_results(1)
    );
    probe!(
        "sagemaker:DescribeEndpoint",
        None,
        aws.sagemaker.describe_endpoint().endpoint_name(PROBE)
    );
    probe!(
        "sagemaker:DescribeEndpointConfig",
        None,
        aws.sagemaker
            .describe_endpoint_config()
            .endpoint_config_name(PROBE)
    );
    probe!(
        "sagemaker:DescribeInferenceComponent",
        None,
        aws.sagemaker
            .describe_inference_component()
            .inference_component_name(PROBE)
    );
    probe!(
        "servicequotas:ListServiceQuotas",
        QUOTA_CHECK,
        aws.quotas
            .list_service_quotas()
            .service_code("sagemaker")
            .max_results(1)
    );
    probe!(
        "servicequotas:ListAWSDefaultServiceQuotas",
        QUOTA_CHECK,
        aws.quotas
            .list_aws_default_service_quotas()
            .service_code("sagemaker")
            .max_results(1)
    );
    futures::future::join_all(probes).await
}

/// What one probe's answer means. A denied optional read warns (with what zeroscale does
/// without it); a denied required read fails.
fn verdict(action: &'static str, optional: Optional, r: Result<(), AwsFailure>) -> Check {
    match r {
        Ok(()) => check(action, Status::Pass, "permitted"),
        // Probed with a name that does not exist: AWS looked, so the call was permitted.
        Err(f) if f.kind == FailureKind::NotFound || f.code == "ValidationException" => check(
            action,
            Status::Pass,
            "permitted (probed with a name that does not exist)",
        ),
        Err(f) if f.code.starts_with("AccessDenied") || f.code == "HTTP 403" => {
            let (status, why) = match optional {
                Some(without) => (Status::Warn, without),
                None => (Status::Fail, "zeroscale's jobs need it"),
            };
            check(action, status, format!("denied ({}): {why}", f.code)).hint(format!(
                "grant {action} to the role zeroscale runs as (deploy/iam-policy.json has every action it needs)"
            ))
        }
        Err(f) => check(
            action,
            Status::Fail,
            format!("could not be checked: {}", said(&f)),
        )
        .hint(reach_hint(&f)),
    }
}
