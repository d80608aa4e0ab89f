//! IAM as AWS enforces it on the caller. The sandbox has one identity; a policy document can be
//! attached to it (`PUT /_sandbox/iam`), and then every call is authorised for its own action
//! and resource, and for the actions AWS checks on the caller's behalf (Application Auto Scaling
//! checks that the caller may scale the resource it registers, and may create its
//! service-linked role the first time). A call that is not allowed gets AWS's AccessDenied in
//! AWS's words. With no policy attached the identity is an administrator, which is what a fresh
//! sandbox is.
//!
//! The evaluator covers what identity-based policies need here: Allow and Deny statements,
//! `Action` and `Resource` with `*` and `?` wildcards, and the `StringEquals` / `StringLike`
//! condition operators. A policy with any other condition operator (or `NotAction`,
//! `NotResource`) is refused when attached: evaluating it wrongly would allow what a Deny
//! forbids (kinder than AWS) or refuse what an Allow grants. No crate evaluates IAM policies
//! offline; this is the smallest evaluator the sandbox needs.

use serde::Serialize;
use serde_json::Value;

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
            | "DeleteScalingPolicy",
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

/// The four Application Auto Scaling writes act on the scalable target (its ARN names a
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
        "RegisterScalableTarget" if ns == "sagemaker" => {
            let parts: Vec<&str> = rid.split('/').collect();
            match parts.as_slice() {
                ["endpoint", endpoint, "variant", _] => {
                    let ep = sagemaker_arn("endpoint", endpoint);
                    out.push(Check::new("sagemaker:DescribeEndpoint", ep.clone()));
                    out.push(Check::new(
                        "sagemaker:UpdateEndpointWeightsAndCapacities",
                        ep,
                    ));
                }
                ["inference-component", name] => {
                    let ic = sagemaker_arn("inference-component", name);
                    out.push(Check::new(
                        "sagemaker:DescribeInferenceComponent",
                        ic.clone(),
                    ));
                    out.push(Check::new(
                        "sagemaker:UpdateInferenceComponentRuntimeConfig",
                        ic,
                    ));
                }
                _ => {}
            }
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
        }
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

/// Effect of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// What evaluating a check against a policy found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No statement allows it.
    ImplicitDeny,
    /// A Deny statement matches.
    ExplicitDeny,
}

/// Checks that `doc` is a policy the evaluator understands (Version, Statement with Effect,
/// Action, Resource); the reason when not.
pub fn validate(doc: &Value) -> Result<(), String> {
    let statements = statements(doc);
    if statements.is_empty() {
        return Err("a policy needs a Statement (an object or a list of them)".into());
    }
    for st in statements {
        match st["Effect"].as_str() {
            Some("Allow" | "Deny") => {}
            _ => return Err(format!("Effect must be Allow or Deny in {st}")),
        }
        if strings(&st["Action"]).is_empty() || strings(&st["Resource"]).is_empty() {
            return Err(format!("Action and Resource are required in {st}"));
        }
        for unsupported in ["NotAction", "NotResource", "NotPrincipal", "Principal"] {
            if !st[unsupported].is_null() {
                return Err(format!(
                    "the sandbox does not evaluate {unsupported} (in {st})"
                ));
            }
        }
        match &st["Condition"] {
            Value::Null => {}
            Value::Object(ops) => {
                for (op, keys) in ops {
                    if !matches!(op.as_str(), "StringEquals" | "StringLike") || !keys.is_object() {
                        return Err(format!(
                            "the sandbox evaluates only StringEquals and StringLike conditions, not {op} (in {st})"
                        ));
                    }
                }
            }
            other => return Err(format!("Condition must be an object, not {other}")),
        }
    }
    Ok(())
}

fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        v @ Value::Object(_) => vec![v],
        _ => Vec::new(),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Evaluates one check: an explicit Deny wins, then any Allow, else the implicit deny.
pub fn decide(doc: &Value, check: &Check) -> Decision {
    let mut allowed = false;
    for st in statements(doc) {
        let effect = match st["Effect"].as_str() {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => continue,
        };
        let action = strings(&st["Action"]).iter().any(|pat| {
            wildcard(
                &pat.to_ascii_lowercase(),
                &check.action.to_ascii_lowercase(),
            )
        });
        let resource = strings(&st["Resource"])
            .iter()
            .any(|pat| wildcard(pat, &check.resource));
        if !(action && resource && conditions_hold(&st["Condition"], check)) {
            continue;
        }
        match effect {
            Effect::Deny => return Decision::ExplicitDeny,
            Effect::Allow => allowed = true,
        }
    }
    if allowed {
        Decision::Allowed
    } else {
        Decision::ImplicitDeny
    }
}

/// Every operator's keys must hold; a key missing from the request fails its test (as in IAM
/// without `...IfExists`). `validate` refused other operators when the policy was attached.
fn conditions_hold(cond: &Value, check: &Check) -> bool {
    let Some(ops) = cond.as_object() else {
        return cond.is_null();
    };
    ops.iter().all(|(op, keys)| {
        let Some(keys) = keys.as_object() else {
            return false;
        };
        keys.iter().all(|(key, wanted)| {
            let Some((_, value)) = check
                .context
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
            else {
                return false;
            };
            let wanted = strings(wanted);
            match op.as_str() {
                "StringEquals" => wanted.iter().any(|w| w == value),
                "StringLike" => wanted.iter().any(|w| wildcard(w, value)),
                _ => false,
            }
        })
    })
}

/// IAM's wildcard match: `*` any run of characters (including none), `?` any one character.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard(
            "arn:aws:cloudwatch:*:*:alarm:zeroscale/*",
            "arn:aws:cloudwatch:us-east-1:1:alarm:zeroscale/a/b"
        ));
        assert!(!wildcard(
            "arn:aws:cloudwatch:*:*:alarm:zeroscale/*",
            "arn:aws:cloudwatch:us-east-1:1:alarm:other"
        ));
        assert!(wildcard("*", "*"));
        assert!(
            !wildcard("arn:*", "*"),
            "a narrowed resource never matches a request on *"
        );
        assert!(wildcard("a?c", "abc") && !wildcard("a?c", "ac"));
    }

    #[test]
    fn deny_wins_and_conditions_are_required() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iam:CreateServiceLinkedRole", "Resource": "*",
             "Condition": {"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}}},
            {"Effect": "Allow", "Action": ["cloudwatch:*"], "Resource": "*"},
            {"Effect": "Deny", "Action": "cloudwatch:DeleteAlarms", "Resource": "*"}
        ]});
        let slr = Check::new("iam:CreateServiceLinkedRole", "r");
        assert_eq!(decide(&doc, &slr), Decision::ImplicitDeny, "key missing");
        assert_eq!(
            decide(&doc, &slr.clone().with("iam:AWSServiceName", SLR_SERVICE)),
            Decision::Allowed
        );
        assert_eq!(
            decide(&doc, &Check::new("CloudWatch:PutMetricAlarm", "x")),
            Decision::Allowed
        );
        assert_eq!(
            decide(&doc, &Check::new("cloudwatch:DeleteAlarms", "x")),
            Decision::ExplicitDeny
        );
        assert_eq!(
            decide(&doc, &Check::new("sagemaker:ListEndpoints", "*")),
            Decision::ImplicitDeny
        );
    }
}
