//! One line per read zeroscale needs, each tried once in its most harmless form.

use std::future::Future;

use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::{client::result::SdkError, http::Response as HttpResponse};
use futures::future::BoxFuture;

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
    let mut probes = autoscaling_probes(aws);
    probes.push(probe(
        aws,
        "cloudwatch:DescribeAlarms",
        None,
        aws.cloudwatch
            .describe_alarms()
            .alarm_name_prefix(crate::domain::target::ALARM_PREFIX)
            .max_records(1)
            .send(),
    ));
    probes.extend(sagemaker_probes(aws));
    probes.extend(quota_probes(aws));
    futures::future::join_all(probes).await
}

/// One read, paced and bounded at `AWS_TIMEOUT`, and its verdict.
fn probe<'a, O, E>(
    aws: &'a AwsClients,
    action: &'static str,
    optional: Optional,
    send: impl Future<Output = Result<O, SdkError<E, HttpResponse>>> + Send + 'a,
) -> BoxFuture<'a, Check>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    Box::pin(async move {
        aws.pace().await;
        let r = match tokio::time::timeout(AWS_TIMEOUT, send).await {
            Ok(r) => r
                .map(|_| ())
                .map_err(|e| AwsFailure::from_sdk("doctor", action, e)),
            Err(_) => Err(timed_out(action)),
        };
        verdict(action, optional, r)
    })
}

/// The Application Auto Scaling reads, namespace-wide, one item each.
fn autoscaling_probes(aws: &AwsClients) -> Vec<BoxFuture<'_, Check>> {
    let ns = || aws_sdk_applicationautoscaling::types::ServiceNamespace::Sagemaker;
    let a = &aws.autoscaling;
    vec![
        probe(
            aws,
            "application-autoscaling:DescribeScalableTargets",
            None,
            a.describe_scalable_targets()
                .service_namespace(ns())
                .max_results(1)
                .send(),
        ),
        probe(
            aws,
            "application-autoscaling:DescribeScalingPolicies",
            None,
            a.describe_scaling_policies()
                .service_namespace(ns())
                .max_results(1)
                .send(),
        ),
        probe(
            aws,
            "application-autoscaling:DescribeScalingActivities",
            None,
            a.describe_scaling_activities()
                .service_namespace(ns())
                .max_results(1)
                .send(),
        ),
        probe(
            aws,
            "application-autoscaling:DescribeScheduledActions",
            None,
            a.describe_scheduled_actions()
                .service_namespace(ns())
                .max_results(1)
                .send(),
        ),
    ]
}

/// The SageMaker reads: the list with one item, the describes with a name no account uses.
fn sagemaker_probes(aws: &AwsClients) -> Vec<BoxFuture<'_, Check>> {
    let sm = &aws.sagemaker;
    vec![
        // Optional for the quota preflight, but the observation pass needs both lists.
        probe(
            aws,
            "sagemaker:ListEndpoints",
            None,
            sm.list_endpoints().max_results(1).send(),
        ),
        probe(
            aws,
            "sagemaker:ListInferenceComponents",
            None,
            sm.list_inference_components().max_results(1).send(),
        ),
        probe(
            aws,
            "sagemaker:DescribeEndpoint",
            None,
            sm.describe_endpoint().endpoint_name(PROBE).send(),
        ),
        probe(
            aws,
            "sagemaker:DescribeEndpointConfig",
            None,
            sm.describe_endpoint_config()
                .endpoint_config_name(PROBE)
                .send(),
        ),
        probe(
            aws,
            "sagemaker:DescribeInferenceComponent",
            None,
            sm.describe_inference_component()
                .inference_component_name(PROBE)
                .send(),
        ),
    ]
}

/// The Service Quotas reads, SageMaker's, one item each.
fn quota_probes(aws: &AwsClients) -> Vec<BoxFuture<'_, Check>> {
    let q = &aws.quotas;
    vec![
        probe(
            aws,
            "servicequotas:ListServiceQuotas",
            QUOTA_CHECK,
            q.list_service_quotas()
                .service_code("sagemaker")
                .max_results(1)
                .send(),
        ),
        probe(
            aws,
            "servicequotas:ListAWSDefaultServiceQuotas",
            QUOTA_CHECK,
            q.list_aws_default_service_quotas()
                .service_code("sagemaker")
                .max_results(1)
                .send(),
        ),
    ]
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
