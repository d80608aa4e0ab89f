//! Application Auto Scaling: scalable targets, scaling policies and scaling activities, with
//! AWS's validation and error codes (aws-facts.md: RegisterScalableTarget fails only with
//! ValidationException; ObjectNotFoundException is for calls that need an existing object).

use serde_json::{json, Value};

mod policies;
pub mod schedule;
mod scheduled;

use policies::{delete_policy, describe_policies, put_policy};

use crate::{
    params::{check_enum, opt_str, opt_u32, page, req_str, str_list, with_token},
    protocol::{ts, AwsError},
    world::{arn, ScalableTarget, TargetKey, World},
};

const IC_DIMENSION: &str = "sagemaker:inference-component:DesiredCopyCount";
const VARIANT_DIMENSION: &str = "sagemaker:variant:DesiredInstanceCount";

/// Runs one Application Auto Scaling operation.
pub fn handle(w: &mut World, op: &str, p: &Value) -> Result<Value, AwsError> {
    match op {
        "RegisterScalableTarget" => register(w, p),
        "DescribeScalableTargets" => describe_targets(w, p),
        "DeregisterScalableTarget" => deregister(w, p),
        "PutScalingPolicy" => put_policy(w, p),
        "DescribeScalingPolicies" => describe_policies(w, p),
        "DeleteScalingPolicy" => delete_policy(w, p),
        "DescribeScalingActivities" => describe_activities(w, p),
        "PutScheduledAction" => scheduled::put(w, p),
        "DescribeScheduledActions" => scheduled::describe(w, p),
        "DeleteScheduledAction" => scheduled::delete(w, p),
        other => Err(AwsError::client(
            "UnknownOperationException",
            format!("the sandbox does not implement AnyScaleFrontendService.{other}"),
        )),
    }
}

fn not_found(message: String) -> AwsError {
    AwsError::client("ObjectNotFoundException", message)
}

fn key_of(p: &Value) -> Result<TargetKey, AwsError> {
    let ns = req_str(p, "ServiceNamespace")?;
    check_enum(
        "ServiceNamespace",
        &ns,
        &[
            "sagemaker",
            "ecs",
            "elasticmapreduce",
            "ec2",
            "appstream",
            "dynamodb",
            "rds",
            "custom-resource",
            "comprehend",
            "lambda",
            "cassandra",
            "kafka",
            "elasticache",
            "neptune",
            "workspaces",
        ],
    )?;
    let dim = req_str(p, "ScalableDimension")?;
    Ok((ns, req_str(p, "ResourceId")?, dim))
}

/// Checks that the resource exists and the dimension fits it (ValidationException otherwise).
fn check_resource(w: &World, (ns, rid, dim): &TargetKey) -> Result<(), AwsError> {
    if ns != "sagemaker" {
        return Err(AwsError::validation(format!(
            "the sandbox only simulates the sagemaker namespace, not {ns}"
        )));
    }
    if let Some(name) = rid.strip_prefix("inference-component/") {
        if dim != IC_DIMENSION {
            return Err(AwsError::validation(format!(
                "Unsupported scalable dimension {dim} for resource {rid}"
            )));
        }
        if !w.components.contains_key(name) {
            return Err(AwsError::validation(format!(
                "Inference component {name} does not exist."
            )));
        }
        return Ok(());
    }
    let parts: Vec<&str> = rid.split('/').collect();
    if let ["endpoint", endpoint, "variant", variant] = parts[..] {
        if dim != VARIANT_DIMENSION {
            return Err(AwsError::validation(format!(
                "Unsupported scalable dimension {dim} for resource {rid}"
            )));
        }
        let ok = w
            .endpoints
            .get(endpoint)
            .is_some_and(|e| e.variants.iter().any(|v| v.name == variant));
        if !ok {
            return Err(AwsError::validation(format!(
                "The endpoint variant {variant} of endpoint {endpoint} does not exist."
            )));
        }
        return Ok(());
    }
    Err(AwsError::validation(format!(
        "Unsupported resource id {rid} for namespace sagemaker"
    )))
}

fn register(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let key = key_of(p)?;
    check_resource(w, &key)?;
    let min = opt_u32(p, "MinCapacity")?;
    let max = opt_u32(p, "MaxCapacity")?;
    let existing = w.targets.get(&key).cloned();
    let (min, max) =
        match (&existing, min, max) {
            (None, Some(min), Some(max)) => (min, max),
            (None, _, _) => return Err(AwsError::validation(
                "MinCapacity and MaxCapacity are required when registering a new scalable target",
            )),
            // On update, omitted parameters stay as they were.
            (Some(t), min, max) => (min.unwrap_or(t.min), max.unwrap_or(t.max)),
        };
    if min > max {
        return Err(AwsError::validation(format!(
            "Minimum capacity {min} cannot be greater than maximum capacity {max}"
        )));
    }
    let s = p.get("SuspendedState");
    let flag = |name: &str, old: bool| {
        s.and_then(|s| s.get(name))
            .and_then(Value::as_bool)
            .unwrap_or(old)
    };
    let now = w.now();
    let (ns, rid, dim) = key.clone();
    let target_arn = existing.as_ref().map(|t| t.arn.clone()).unwrap_or_else(|| {
        arn(
            "application-autoscaling",
            &format!("scalable-target/{}", w.id()),
        )
    });
    let target = ScalableTarget {
        namespace: ns,
        resource_id: rid.clone(),
        dimension: dim,
        min,
        max,
        role_arn: opt_str(p, "RoleARN").unwrap_or_else(|| arn("iam", "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")),
        created: existing.as_ref().map(|t| t.created).unwrap_or(now),
        suspended_in: flag("DynamicScalingInSuspended", existing.as_ref().is_some_and(|t| t.suspended_in)),
        suspended_out: flag("DynamicScalingOutSuspended", existing.as_ref().is_some_and(|t| t.suspended_out)),
        suspended_scheduled: flag("ScheduledScalingSuspended", existing.as_ref().is_some_and(|t| t.suspended_scheduled)),
        arn: target_arn.clone(),
    };
    w.targets.insert(key.clone(), target);
    if existing.is_none() && w.settings.eventual_consistency {
        w.fresh_registrations.push(rid.clone());
        w.unlisted_registrations.push(rid);
    }
    super::sim::clamp_to_bounds(w, &key);
    Ok(json!({"ScalableTargetARN": target_arn}))
}

fn target_view(t: &ScalableTarget) -> Value {
    json!({
        "ServiceNamespace": t.namespace,
        "ResourceId": t.resource_id,
        "ScalableDimension": t.dimension,
        "MinCapacity": t.min,
        "MaxCapacity": t.max,
        "RoleARN": t.role_arn,
        "CreationTime": ts(t.created),
        "SuspendedState": {
            "DynamicScalingInSuspended": t.suspended_in,
            "DynamicScalingOutSuspended": t.suspended_out,
            "ScheduledScalingSuspended": t.suspended_scheduled,
        },
        "ScalableTargetARN": t.arn,
    })
}

fn describe_targets(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let ns = req_str(p, "ServiceNamespace")?;
    let ids = str_list(p, "ResourceIds");
    if ids.len() > 50 {
        return Err(AwsError::validation(
            "1 validation error detected: Value at 'resourceIds' failed to satisfy constraint: Member must have length less than or equal to 50",
        ));
    }
    let dim = opt_str(p, "ScalableDimension");
    // Eventual consistency: a target registered a moment ago is not listed by the next describe
    // that asks for it (one miss per registration, by a describe or a policy put, whichever
    // comes first).
    let (unlisted, later): (Vec<String>, Vec<String>) =
        std::mem::take(&mut w.unlisted_registrations)
            .into_iter()
            .partition(|r| ids.is_empty() || ids.contains(r));
    w.unlisted_registrations = later;
    w.fresh_registrations.retain(|r| !unlisted.contains(r));
    let items: Vec<Value> = w
        .targets
        .values()
        .filter(|t| t.namespace == ns)
        .filter(|t| !unlisted.contains(&t.resource_id))
        .filter(|t| ids.is_empty() || ids.contains(&t.resource_id))
        .filter(|t| dim.as_ref().is_none_or(|d| &t.dimension == d))
        .map(target_view)
        .collect();
    let (items, next) = page(items, p, "MaxResults", 50, 50, "InvalidNextTokenException")?;
    Ok(with_token(json!({"ScalableTargets": items}), next))
}

/// Removes a deleted policy's ARN from every alarm's actions (DeleteScalingPolicy and
/// DeregisterScalableTarget do this on AWS; the alarms themselves stay).
fn unhook(w: &mut World, policy_arn: &str) {
    for a in w.alarms.values_mut() {
        a.config.alarm_actions.retain(|x| x != policy_arn);
    }
}

fn deregister(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let key = key_of(p)?;
    if w.targets.remove(&key).is_none() {
        return Err(not_found(format!("No scalable target registered for service namespace: {}, resource ID: {}, scalable dimension: {}", key.0, key.1, key.2)));
    }
    scheduled::delete_all(w, &key);
    // Deregistering deletes the target's policies (and the alarms AWS made for them), but not
    // the step policies' alarms, which belong to whoever created them.
    let gone: Vec<(TargetKey, String)> = w
        .policies
        .keys()
        .filter(|(k, _)| *k == key)
        .cloned()
        .collect();
    for k in gone {
        if let Some(policy) = w.policies.remove(&k) {
            for alarm in policy.owned_alarms {
                w.alarms.remove(&alarm);
            }
            unhook(w, &policy.arn);
        }
    }
    Ok(json!({}))
}

fn describe_activities(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let ns = req_str(p, "ServiceNamespace")?;
    let rid = opt_str(p, "ResourceId");
    let dim = opt_str(p, "ScalableDimension");
    let include_not_scaled = p
        .get("IncludeNotScaledActivities")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let now = w.now();
    let items: Vec<Value> = w
        .activities
        .iter()
        .rev()
        .filter(|a| a.namespace == ns)
        .filter(|a| rid.as_ref().is_none_or(|r| &a.resource_id == r))
        .filter(|a| dim.as_ref().is_none_or(|d| &a.dimension == d))
        .filter(|a| include_not_scaled || a.not_scaled.is_none())
        .map(|a| {
            let mut out = json!({
                "ActivityId": a.id,
                "ServiceNamespace": a.namespace,
                "ResourceId": a.resource_id,
                "ScalableDimension": a.dimension,
                "Description": a.description,
                "Cause": a.cause,
                "StartTime": ts(a.start),
                "StatusCode": a.status,
            });
            // A scale-out runs until its capacity is in service: InProgress, with no end and
            // no message, until then.
            if a.end > now {
                out["StatusCode"] = json!("InProgress");
                return out;
            }
            out["EndTime"] = ts(a.end);
            // A not-scaled activity has reasons and no message (aws-facts.md, "Not scaled").
            if !a.message.is_empty() {
                out["StatusMessage"] = json!(a.message);
            }
            if let Some(r) = &a.not_scaled {
                out["NotScaledReasons"] = r.clone();
            }
            out
        })
        .collect();
    let (items, next) = page(items, p, "MaxResults", 50, 50, "InvalidNextTokenException")?;
    Ok(with_token(json!({"ScalingActivities": items}), next))
}
