//! Application Auto Scaling: scalable targets, scaling policies and scaling activities, with
//! AWS's validation and error codes (aws-facts.md: RegisterScalableTarget fails only with
//! ValidationException; ObjectNotFoundException is for calls that need an existing object).

use serde_json::{json, Value};

use super::{
    params::{check_enum, opt_f64, opt_str, opt_u32, page, req_str, str_list, with_token},
    protocol::{ts, AwsError},
    world::{arn, Alarm, Policy, ScalableTarget, TargetKey, World},
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
    super::sim::clamp_to_bounds(w, &key, "registering the scalable target");
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
        if let Some(actions) = a
            .config
            .get_mut("AlarmActions")
            .and_then(Value::as_array_mut)
        {
            actions.retain(|x| x.as_str() != Some(policy_arn));
        }
    }
}

fn deregister(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let key = key_of(p)?;
    if w.targets.remove(&key).is_none() {
        return Err(not_found(format!("No scalable target registered for service namespace: {}, resource ID: {}, scalable dimension: {}", key.0, key.1, key.2)));
    }
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

fn validate_step(cfg: &Value) -> Result<(), AwsError> {
    let adjustment = cfg
        .get("AdjustmentType")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            AwsError::validation("StepScalingPolicyConfiguration.AdjustmentType is required")
        })?;
    check_enum(
        "AdjustmentType",
        adjustment,
        &[
            "ChangeInCapacity",
            "ExactCapacity",
            "PercentChangeInCapacity",
        ],
    )?;
    if let Some(agg) = cfg.get("MetricAggregationType").and_then(Value::as_str) {
        check_enum(
            "MetricAggregationType",
            agg,
            &["Average", "Minimum", "Maximum"],
        )?;
    }
    if cfg
        .get("Cooldown")
        .and_then(Value::as_i64)
        .is_some_and(|c| c < 0)
    {
        return Err(AwsError::validation("Cooldown must be >= 0"));
    }
    let steps = cfg
        .get("StepAdjustments")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty());
    let steps = steps.ok_or_else(|| {
        AwsError::validation("StepAdjustments must contain at least one step adjustment")
    })?;
    if steps.len() > 20 {
        return Err(AwsError::validation(
            "A step scaling policy can have at most 20 step adjustments",
        ));
    }
    let mut bounds: Vec<(f64, f64)> = Vec::new();
    for s in steps {
        if s.get("ScalingAdjustment").and_then(Value::as_i64).is_none() {
            return Err(AwsError::validation(
                "Each step adjustment needs an integer ScalingAdjustment",
            ));
        }
        let lo = opt_f64(s, "MetricIntervalLowerBound").unwrap_or(f64::NEG_INFINITY);
        let hi = opt_f64(s, "MetricIntervalUpperBound").unwrap_or(f64::INFINITY);
        if lo >= hi {
            return Err(AwsError::validation(
                "MetricIntervalLowerBound must be less than MetricIntervalUpperBound",
            ));
        }
        bounds.push((lo, hi));
    }
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in bounds.windows(2) {
        if pair[0].1 != pair[1].0 {
            return Err(AwsError::validation(
                "Step adjustments must not overlap or leave gaps between their intervals",
            ));
        }
    }
    Ok(())
}

fn validate_target_tracking(cfg: &Value, dim: &str) -> Result<(), AwsError> {
    let target = cfg
        .get("TargetValue")
        .and_then(Value::as_f64)
        .ok_or_else(|| {
            AwsError::validation("TargetTrackingScalingPolicyConfiguration.TargetValue is required")
        })?;
    if target <= 0.0 {
        return Err(AwsError::validation("TargetValue must be greater than 0"));
    }
    match (cfg.get("PredefinedMetricSpecification"), cfg.get("CustomizedMetricSpecification")) {
        (Some(pre), None) => {
            let t = pre.get("PredefinedMetricType").and_then(Value::as_str).unwrap_or_default();
            let allowed = if dim == IC_DIMENSION {
                ["SageMakerInferenceComponentInvocationsPerCopy", "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"]
            } else {
                ["SageMakerVariantInvocationsPerInstance", "SageMakerVariantConcurrentRequestsPerModelHighResolution"]
            };
            check_enum("PredefinedMetricType", t, &allowed)
        }
        (None, Some(custom)) => {
            if custom.get("MetricName").and_then(Value::as_str).is_none() && custom.get("Metrics").is_none() {
                return Err(AwsError::validation("CustomizedMetricSpecification needs MetricName (or Metrics)"));
            }
            if let Some(stat) = custom.get("Statistic").and_then(Value::as_str) {
                check_enum("Statistic", stat, &["Average", "Minimum", "Maximum", "SampleCount", "Sum"])?;
            }
            Ok(())
        }
        _ => Err(AwsError::validation("Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification is required")),
    }
}

fn put_policy(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "PolicyName")?;
    let key = key_of(p)?;
    let policy_type = opt_str(p, "PolicyType").unwrap_or_else(|| "StepScaling".into());
    check_enum(
        "PolicyType",
        &policy_type,
        &["StepScaling", "TargetTrackingScaling", "PredictiveScaling"],
    )?;
    if !w.targets.contains_key(&key) {
        return Err(not_found(format!("No scalable target registered for service namespace: {}, resource ID: {}, scalable dimension: {}", key.0, key.1, key.2)));
    }
    // Eventual consistency: the first policy put right after a registration misses the target
    // (one miss per registration, by a put or a describe, whichever comes first).
    if let Some(i) = w.fresh_registrations.iter().position(|r| r == &key.1) {
        w.fresh_registrations.remove(i);
        w.unlisted_registrations.retain(|r| r != &key.1);
        return Err(not_found(format!("No scalable target registered for service namespace: {}, resource ID: {}, scalable dimension: {}", key.0, key.1, key.2)));
    }
    let (step, tt) = match policy_type.as_str() {
        "StepScaling" => {
            let cfg = p.get("StepScalingPolicyConfiguration").ok_or_else(|| {
                AwsError::validation(
                    "StepScalingPolicyConfiguration is required for a StepScaling policy",
                )
            })?;
            validate_step(cfg)?;
            (Some(cfg.clone()), None)
        }
        "TargetTrackingScaling" => {
            let cfg = p.get("TargetTrackingScalingPolicyConfiguration").ok_or_else(|| AwsError::validation("TargetTrackingScalingPolicyConfiguration is required for a TargetTrackingScaling policy"))?;
            validate_target_tracking(cfg, &key.2)?;
            (None, Some(cfg.clone()))
        }
        _ => {
            return Err(AwsError::validation(
                "the sandbox does not simulate predictive scaling",
            ))
        }
    };
    let existing = w.policies.get(&(key.clone(), name.clone())).cloned();
    if existing.is_none() && w.policies.keys().filter(|(k, _)| *k == key).count() >= 50 {
        return Err(AwsError::client(
            "LimitExceededException",
            "A scalable target can have at most 50 scaling policies",
        ));
    }
    let policy_arn = existing.as_ref().map(|e| e.arn.clone()).unwrap_or_else(|| {
        arn(
            "autoscaling",
            &format!(
                "scalingPolicy:{}:resource/{}/{}:policyName/{name}",
                w.id(),
                key.0,
                key.1
            ),
        )
    });
    let now = w.now();
    // Target tracking creates (and re-creates on update) its own alarms; they belong to AWS.
    let mut owned_alarms = existing
        .as_ref()
        .map(|e| e.owned_alarms.clone())
        .unwrap_or_default();
    for a in owned_alarms.drain(..) {
        w.alarms.remove(&a);
    }
    if let Some(cfg) = &tt {
        let suffix = w.id();
        for side in ["AlarmHigh", "AlarmLow"] {
            let alarm_name = format!("TargetTracking-{}-{side}-{suffix}", key.1);
            w.alarms.insert(
                alarm_name.clone(),
                aws_owned_alarm(&alarm_name, &policy_arn, now, side, cfg, &key.1),
            );
            owned_alarms.push(alarm_name);
        }
    }
    let policy = Policy {
        name: name.clone(),
        arn: policy_arn.clone(),
        namespace: key.0.clone(),
        resource_id: key.1.clone(),
        dimension: key.2.clone(),
        policy_type,
        step,
        target_tracking: tt,
        created: existing.as_ref().map(|e| e.created).unwrap_or(now),
        owned_alarms: owned_alarms.clone(),
        last_scale_out: existing.as_ref().and_then(|e| e.last_scale_out),
        last_scale_in: existing.as_ref().and_then(|e| e.last_scale_in),
        samples: existing
            .as_ref()
            .map(|e| e.samples.clone())
            .unwrap_or_default(),
    };
    w.policies.insert((key, name), policy);
    let alarms: Vec<Value> = owned_alarms
        .iter()
        .map(|a| json!({"AlarmName": a, "AlarmARN": arn("cloudwatch", &format!("alarm:{a}"))}))
        .collect();
    Ok(json!({"PolicyARN": policy_arn, "Alarms": alarms}))
}

/// One of the two alarms AWS makes for a target-tracking policy: AlarmHigh on 3 of 3 one-minute
/// datapoints above the target, AlarmLow on 15 of 15 below 90 % of it (aws-facts.md; the sim
/// evaluates them in `sim::target_tracking`).
fn aws_owned_alarm(
    name: &str,
    policy_arn: &str,
    now: f64,
    side: &str,
    cfg: &Value,
    resource_id: &str,
) -> Alarm {
    let target = cfg["TargetValue"].as_f64().unwrap_or(1.0);
    let high = side == "AlarmHigh";
    let (metric, dims) = match cfg.get("CustomizedMetricSpecification") {
        Some(c) => (
            c["MetricName"].as_str().unwrap_or_default().to_string(),
            c["Dimensions"].clone(),
        ),
        None => (
            "InvocationsPerCopy".to_string(),
            json!([{"Name": "InferenceComponentName", "Value": resource_id.trim_start_matches("inference-component/")}]),
        ),
    };
    let n = if high { 3 } else { 15 };
    Alarm {
        name: name.into(),
        arn: arn("cloudwatch", &format!("alarm:{name}")),
        config: json!({
            "AlarmName": name,
            "AlarmDescription": format!("DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}."),
            "ActionsEnabled": true,
            "AlarmActions": [policy_arn],
            "MetricName": metric,
            "Namespace": "AWS/SageMaker",
            "Statistic": "Average",
            "Dimensions": dims,
            "Period": 60,
            "EvaluationPeriods": n,
            "DatapointsToAlarm": n,
            "Threshold": if high { target } else { target * 0.9 },
            "ComparisonOperator": if high { "GreaterThanThreshold" } else { "LessThanThreshold" },
            "TreatMissingData": "missing",
        }),
        state: "INSUFFICIENT_DATA".into(),
        reason: "Unchecked: Initial alarm creation".into(),
        updated: now,
        config_updated: now,
        history: Vec::new(),
        aws_owned: true,
    }
}

fn policy_view(w: &World, p: &Policy) -> Value {
    // A step policy lists the CloudWatch alarms whose actions invoke it; a target-tracking
    // policy the alarms AWS made for it.
    let alarms: Vec<Value> = if p.step.is_some() {
        w.alarms
            .values()
            .filter(|a| {
                a.config["AlarmActions"]
                    .as_array()
                    .is_some_and(|x| x.iter().any(|v| v.as_str() == Some(p.arn.as_str())))
            })
            .map(|a| json!({"AlarmName": a.name, "AlarmARN": a.arn}))
            .collect()
    } else {
        p.owned_alarms
            .iter()
            .map(|a| json!({"AlarmName": a, "AlarmARN": arn("cloudwatch", &format!("alarm:{a}"))}))
            .collect()
    };
    let mut out = json!({
        "PolicyARN": p.arn,
        "PolicyName": p.name,
        "ServiceNamespace": p.namespace,
        "ResourceId": p.resource_id,
        "ScalableDimension": p.dimension,
        "PolicyType": p.policy_type,
        "CreationTime": ts(p.created),
        "Alarms": alarms,
    });
    if let Some(s) = &p.step {
        out["StepScalingPolicyConfiguration"] = s.clone();
    }
    if let Some(t) = &p.target_tracking {
        out["TargetTrackingScalingPolicyConfiguration"] = t.clone();
    }
    out
}

fn describe_policies(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let ns = req_str(p, "ServiceNamespace")?;
    let names = str_list(p, "PolicyNames");
    let rid = opt_str(p, "ResourceId");
    let dim = opt_str(p, "ScalableDimension");
    let items: Vec<Value> = w
        .policies
        .values()
        .filter(|x| x.namespace == ns)
        .filter(|x| names.is_empty() || names.contains(&x.name))
        .filter(|x| rid.as_ref().is_none_or(|r| &x.resource_id == r))
        .filter(|x| dim.as_ref().is_none_or(|d| &x.dimension == d))
        .map(|x| policy_view(w, x))
        .collect();
    // The model: MaxResults between 1 and 10, default 10.
    let (items, next) = page(items, p, "MaxResults", 10, 10, "InvalidNextTokenException")?;
    Ok(with_token(json!({"ScalingPolicies": items}), next))
}

fn delete_policy(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "PolicyName")?;
    let key = key_of(p)?;
    let policy = w
        .policies
        .remove(&(key.clone(), name.clone()))
        .ok_or_else(|| not_found(format!("No scaling policy found for service namespace: {}, resource ID: {}, scalable dimension: {}, policy name: {name}", key.0, key.1, key.2)))?;
    // A step policy's alarm is not deleted with it (aws-facts.md); target tracking's own are.
    for alarm in policy.owned_alarms {
        w.alarms.remove(&alarm);
    }
    unhook(w, &policy.arn);
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
                "EndTime": ts(a.end),
                "StatusCode": a.status,
            });
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
