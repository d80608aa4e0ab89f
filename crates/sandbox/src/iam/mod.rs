//! IAM as AWS enforces it on the caller. The sandbox has one identity; a policy document can be
//! attached to it (`PUT /_sandbox/iam`), and then every call is authorised for its own action
//! and resource, and for the actions AWS checks on the caller's behalf (Application Auto Scaling
//! checks that the caller may scale the resource it registers, and may create its
//! service-linked role the first time). A call that is not allowed gets AWS's AccessDenied in
//! AWS's words. With no policy attached the identity is an administrator, which is what a fresh
//! sandbox is.
//! The policy evaluator is in `policy`.

use serde::Serialize;
use serde_json::Value;

mod policy;

pub use policy::{decide, validate, wildcard, Decision};

use super::{
    protocol::{AwsError, Service},
    world::{arn, World, ACCOUNT},
};

/// The service principal whose service-linked role Application Auto Scaling creates for
/// SageMaker targets (AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint).
pub const SLR_SERVICE: &str = "sagemaker.application-autoscaling.amazonaws.com";

/// The sandbox identity's IAM state.
#[derive(Debug, Clone, Serialize)]
pub struct Iam {
    /// Who calls (GetCallerIdentity's Arn, and the `User:` of AccessDenied messages).
    pub caller_arn: String,
    /// The policy attached to the caller, as given; None: an administrator.
    pub policy: Option<Value>,
    /// Whether AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint exists yet (the first
    /// RegisterScalableTarget of a SageMaker resource creates it, as the caller).
    pub service_linked_role: bool,
}

impl Default for Iam {
    fn default() -> Self {
        Self {
            caller_arn: format!("arn:aws:sts::{ACCOUNT}:assumed-role/zeroscale/sandbox"),
            policy: None,
            service_linked_role: false,
        }
    }
}

/// One authorisation AWS makes for a call: an action on a resource, with condition keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// `service:Action`, as a policy names it.
    pub action: String,
    /// The resource's ARN, or `*` for actions without resource-level permissions.
    pub resource: String,
    /// Condition keys and their values for this request.
    pub context: Vec<(&'static str, String)>,
}

impl Check {
    fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
            context: Vec::new(),
        }
    }

    fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.context.push((key, value.into()));
        self
    }
}

/// The IAM action prefix of a service (CloudWatch signs as `monitoring` but authorises as
/// `cloudwatch`).
pub fn prefix(service: Service) -> &'static str {
    match service {
        Service::SageMaker => "sagemaker",
        Service::AutoScaling => "application-autoscaling",
        Service::CloudWatch => "cloudwatch",
        Service::ServiceQuotas => "servicequotas",
        Service::Sts => "sts",
    }
}

/// Every authorisation a call needs, in the order AWS makes them (the call's own first).
pub fn checks(w: &World, service: Service, op: &str, p: &Value) -> Vec<Check> {
    let own = format!("{}:{op}", prefix(service));
    let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
    match (service, op) {
        // GetCallerIdentity needs no permission, and even an explicit deny cannot block it.
        (Service::Sts, "GetCallerIdentity") => Vec::new(),
        (Service::SageMaker, "DescribeEndpoint") => {
            vec![Check::new(
                own,
                sagemaker_arn("endpoint", &s("EndpointName")),
            )]
        }
        (Service::SageMaker, "DescribeEndpointConfig") => vec![Check::new(
            own,
            sagemaker_arn("endpoint-config", &s("EndpointConfigName")),
        )],
        (Service::SageMaker, "DescribeInferenceComponent") => vec![Check::new(
            own,
            sagemaker_arn("inference-component", &s("InferenceComponentName")),
        )],
        (
            Service::AutoScaling,
            "RegisterScalableTarget"
            | "DeregisterScalableTarget"
            | "PutScalingPolicy"
            | "DeleteScalingPolicy"
            | "PutScheduledAction"
            | "DeleteScheduledAction",
        ) => autoscaling_write(w, own, op, p),
        (Service::CloudWatch, "PutMetricAlarm") => {
            vec![Check::new(own, alarm_arn(&s("AlarmName")))]
        }
        (Service::CloudWatch, "DeleteAlarms") if names(p, "AlarmNames").next().is_some() => {
            names(p, "AlarmNames")
                .map(|n| Check::new(own.clone(), alarm_arn(n)))
                .collect()
        }
        // Lists, describes without a named resource, quotas: no resource-level permissions.
        _ => vec![Check::new(own, "*")],
    }
}

fn names<'a>(p: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    p[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// SageMaker ARNs carry names in lower case.
fn sagemaker_arn(kind: &str, name: &str) -> String {
    arn("sagemaker", &format!("{kind}/{}", name.to_lowercase()))
}

fn alarm_arn(name: &str) -> String {
    arn("cloudwatch", &format!("alarm:{name}"))
}

/// The six Application Auto Scaling writes act on the scalable target (its ARN names a
/// generated id, so policies select targets by condition keys), and AWS checks more as the
/// caller: registering a SageMaker resource needs permission to describe and scale it, and the
/// first registration creates the service-linked role; target tracking creates and deletes its
/// own alarms (`TargetTracking-...`).
fn autoscaling_write(w: &World, own: String, op: &str, p: &Value) -> Vec<Check> {
    let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
    let (ns, rid, dim) = (
        s("ServiceNamespace"),
        s("ResourceId"),
        s("ScalableDimension"),
    );
    let target_arn = w
        .targets
        .get(&(ns.clone(), rid.clone(), dim.clone()))
        .map(|t| t.arn.clone())
        .unwrap_or_else(|| arn("application-autoscaling", "scalable-target/new"));
    let mut out = vec![Check::new(own, target_arn)
        .with("application-autoscaling:service-namespace", ns.clone())
        .with("application-autoscaling:scalable-dimension", dim)];
    let tracking_alarm = |side: &str| alarm_arn(&format!("TargetTracking-{rid}-{side}-sandbox"));
    match op {
        "RegisterScalableTarget" if ns == "sagemaker" => out.extend(register_checks(w, &rid)),
        "PutScalingPolicy" if p["PolicyType"].as_str() == Some("TargetTrackingScaling") => {
            for side in ["AlarmHigh", "AlarmLow"] {
                out.push(Check::new(
                    "cloudwatch:PutMetricAlarm",
                    tracking_alarm(side),
                ));
            }
        }
        "DeleteScalingPolicy" | "DeregisterScalableTarget" => {
            let tracking = w.policies.iter().any(|((k, name), pol)| {
                k.1 == rid
                    && (op == "DeregisterScalableTarget"
                        || Some(name.as_str()) == p["PolicyName"].as_str())
                    && pol.policy_type == "TargetTrackingScaling"
            });
            if tracking {
                out.push(Check::new(
                    "cloudwatch:DeleteAlarms",
                    tracking_alarm("AlarmHigh"),
                ));
            }
        }
        _ => {}
    }
    out
}

/// What registering a SageMaker resource checks as the caller: permission to describe and
/// scale it, and (the first time) to create the service-linked role.
fn register_checks(w: &World, rid: &str) -> Vec<Check> {
    let parts: Vec<&str> = rid.split('/').collect();
    let mut out = match parts.as_slice() {
        ["endpoint", endpoint, "variant", _] => {
            let ep = sagemaker_arn("endpoint", endpoint);
            vec![
                Check::new("sagemaker:DescribeEndpoint", ep.clone()),
                Check::new("sagemaker:UpdateEndpointWeightsAndCapacities", ep),
            ]
        }
        ["inference-component", name] => {
            let ic = sagemaker_arn("inference-component", name);
            vec![
                Check::new("sagemaker:DescribeInferenceComponent", ic.clone()),
                Check::new("sagemaker:UpdateInferenceComponentRuntimeConfig", ic),
            ]
        }
        _ => vec![],
    };
    if !w.iam.service_linked_role {
        out.push(
            Check::new(
                "iam:CreateServiceLinkedRole",
                format!(
                    "arn:aws:iam::{ACCOUNT}:role/aws-service-role/{SLR_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                ),
            )
            .with("iam:AWSServiceName", SLR_SERVICE),
        );
    }
    out
}

/// The first check the caller's policy refuses, as the AccessDenied AWS answers with.
pub fn authorize(w: &World, service: Service, checks: &[Check]) -> Result<(), AwsError> {
    let Some(doc) = &w.iam.policy else {
        return Ok(());
    };
    for check in checks {
        let why = match decide(doc, check) {
            Decision::Allowed => continue,
            Decision::ImplicitDeny => format!(
                "because no identity-based policy allows the {} action",
                check.action
            ),
            Decision::ExplicitDeny => "with an explicit deny in an identity-based policy".into(),
        };
        let on = if check.resource == "*" {
            String::new()
        } else {
            format!(" on resource: {}", check.resource)
        };
        let message = format!(
            "User: {} is not authorized to perform: {}{on} {why}",
            w.iam.caller_arn, check.action
        );
        return Err(match service {
            // Query and query-compatible services: AccessDenied, 403.
            Service::CloudWatch | Service::Sts => AwsError {
                code: "AccessDenied",
                status: axum::http::StatusCode::FORBIDDEN,
                message,
            },
            _ => AwsError::client("AccessDeniedException", message),
        });
    }
    Ok(())
}

/// What a successful call changed in IAM: the first SageMaker registration created the
/// service-linked role.
pub fn after_success(w: &mut World, service: Service, op: &str, p: &Value) {
    if service == Service::AutoScaling
        && op == "RegisterScalableTarget"
        && p["ServiceNamespace"].as_str() == Some("sagemaker")
    {
        w.iam.service_linked_role = true;
    }
}
