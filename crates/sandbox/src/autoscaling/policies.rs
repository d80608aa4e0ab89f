//! Scaling policies: PutScalingPolicy with AWS's validation, the alarms AWS owns for a
//! target-tracking policy, DescribeScalingPolicies and DeleteScalingPolicy.

use serde_json::{json, Value};

use super::{key_of, not_found, unhook, IC_DIMENSION};
use crate::{
    params::{check_enum, opt_str, page, req_str, str_list, with_token},
    protocol::{ts, AwsError},
    world::{
        arn, Alarm, AlarmConfig, Dimension, Policy, StepConfig, TargetKey, TargetTrackingConfig,
        World,
    },
};

/// AWS's checks of a step configuration: an adjustment type, 1 to 20 steps with integer
/// adjustments, and intervals that neither overlap nor leave gaps.
fn validate_step(cfg: &StepConfig) -> Result<(), AwsError> {
    let adjustment = cfg.adjustment_type.as_deref().ok_or_else(|| {
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
    if let Some(agg) = &cfg.metric_aggregation_type {
        check_enum(
            "MetricAggregationType",
            agg,
            &["Average", "Minimum", "Maximum"],
        )?;
    }
    if cfg.cooldown.is_some_and(|c| c < 0) {
        return Err(AwsError::validation("Cooldown must be >= 0"));
    }
    let steps = &cfg.step_adjustments;
    if steps.is_empty() {
        return Err(AwsError::validation(
            "StepAdjustments must contain at least one step adjustment",
        ));
    }
    if steps.len() > 20 {
        return Err(AwsError::validation(
            "A step scaling policy can have at most 20 step adjustments",
        ));
    }
    let mut bounds: Vec<(f64, f64)> = Vec::new();
    for s in steps {
        if s.scaling_adjustment.is_none() {
            return Err(AwsError::validation(
                "Each step adjustment needs an integer ScalingAdjustment",
            ));
        }
        let lo = s.metric_interval_lower_bound.unwrap_or(f64::NEG_INFINITY);
        let hi = s.metric_interval_upper_bound.unwrap_or(f64::INFINITY);
        if lo >= hi {
            return Err(AwsError::validation(
                "MetricIntervalLowerBound must be less than MetricIntervalUpperBound",
            ));
        }
        bounds.push((lo, hi));
    }
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    if bounds.windows(2).any(|pair| pair[0].1 != pair[1].0) {
        return Err(AwsError::validation(
            "Step adjustments must not overlap or leave gaps between their intervals",
        ));
    }
    Ok(())
}

/// AWS's checks of a target-tracking configuration: a positive target value and exactly one
/// metric, predefined ones limited to those of the scalable dimension.
fn validate_target_tracking(cfg: &TargetTrackingConfig, dim: &str) -> Result<(), AwsError> {
    let target = cfg.target_value.ok_or_else(|| {
        AwsError::validation("TargetTrackingScalingPolicyConfiguration.TargetValue is required")
    })?;
    if target <= 0.0 {
        return Err(AwsError::validation("TargetValue must be greater than 0"));
    }
    match (&cfg.predefined_metric_specification, &cfg.customized_metric_specification) {
        (Some(pre), None) => {
            let allowed = if dim == IC_DIMENSION {
                ["SageMakerInferenceComponentInvocationsPerCopy", "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"]
            } else {
                ["SageMakerVariantInvocationsPerInstance", "SageMakerVariantConcurrentRequestsPerModelHighResolution"]
            };
            check_enum("PredefinedMetricType", &pre.predefined_metric_type, &allowed)
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

/// PutScalingPolicy: validates, then creates or replaces the policy (its ARN, creation time
/// and scaling history survive a replacement; target tracking's own alarms are made afresh).
pub(super) fn put_policy(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "PolicyName")?;
    let key = key_of(p)?;
    let policy_type = opt_str(p, "PolicyType").unwrap_or_else(|| "StepScaling".into());
    check_enum(
        "PolicyType",
        &policy_type,
        &["StepScaling", "TargetTrackingScaling", "PredictiveScaling"],
    )?;
    target_is_listed(w, &key)?;
    let (step, tt) = configuration(p, &policy_type, &key)?;
    let existing = w.policies.get(&(key.clone(), name.clone())).cloned();
    if existing.is_none() && w.policies.keys().filter(|(k, _)| *k == key).count() >= 50 {
        return Err(AwsError::client(
            "LimitExceededException",
            "A scalable target can have at most 50 scaling policies",
        ));
    }
    let policy_arn = existing.as_ref().map(|e| e.arn.clone()).unwrap_or_else(|| {
        let id = w.id();
        arn(
            "autoscaling",
            &format!(
                "scalingPolicy:{id}:resource/{}/{}:policyName/{name}",
                key.0, key.1
            ),
        )
    });
    let now = w.now();
    let owned_alarms = replace_owned_alarms(w, existing.as_ref(), tt.as_ref(), &policy_arn, &key);
    let policy = Policy {
        name: name.clone(),
        arn: policy_arn.clone(),
        namespace: key.0.clone(),
        resource_id: key.1.clone(),
        dimension: key.2.clone(),
        policy_type,
        step,
        target_tracking: tt,
        created: existing.as_ref().map_or(now, |e| e.created),
        owned_alarms: owned_alarms.clone(),
        last_scale_out: existing.as_ref().and_then(|e| e.last_scale_out),
        last_scale_in: existing.as_ref().and_then(|e| e.last_scale_in),
        samples: existing.map(|e| e.samples).unwrap_or_default(),
    };
    w.policies.insert((key, name), policy);
    let alarms: Vec<Value> = owned_alarms
        .iter()
        .map(|a| json!({"AlarmName": a, "AlarmARN": arn("cloudwatch", &format!("alarm:{a}"))}))
        .collect();
    Ok(json!({"PolicyARN": policy_arn, "Alarms": alarms}))
}

/// The target must be registered and, by eventual consistency, already visible: the first
/// policy put right after a registration misses it (one miss per registration, by a put or a
/// describe, whichever comes first).
fn target_is_listed(w: &mut World, key: &TargetKey) -> Result<(), AwsError> {
    let missing = || {
        not_found(format!(
            "No scalable target registered for service namespace: {}, resource ID: {}, scalable dimension: {}",
            key.0, key.1, key.2
        ))
    };
    if !w.targets.contains_key(key) {
        return Err(missing());
    }
    if let Some(i) = w.fresh_registrations.iter().position(|r| r == &key.1) {
        w.fresh_registrations.remove(i);
        w.unlisted_registrations.retain(|r| r != &key.1);
        return Err(missing());
    }
    Ok(())
}

/// The policy's (step, target-tracking) configuration, the one its type needs, parsed and
/// validated.
fn configuration(
    p: &Value,
    policy_type: &str,
    key: &TargetKey,
) -> Result<(Option<StepConfig>, Option<TargetTrackingConfig>), AwsError> {
    fn parse<T: serde::de::DeserializeOwned>(
        p: &Value,
        member: &str,
        policy_type: &str,
    ) -> Result<T, AwsError> {
        let v = p.get(member).ok_or_else(|| {
            AwsError::validation(format!("{member} is required for a {policy_type} policy"))
        })?;
        serde_json::from_value(v.clone())
            .map_err(|e| AwsError::validation(format!("{member} is not valid: {e}")))
    }
    match policy_type {
        "StepScaling" => {
            let cfg: StepConfig = parse(p, "StepScalingPolicyConfiguration", policy_type)?;
            validate_step(&cfg)?;
            Ok((Some(cfg), None))
        }
        "TargetTrackingScaling" => {
            let cfg: TargetTrackingConfig =
                parse(p, "TargetTrackingScalingPolicyConfiguration", policy_type)?;
            validate_target_tracking(&cfg, &key.2)?;
            Ok((None, Some(cfg)))
        }
        _ => Err(AwsError::validation(
            "the sandbox does not simulate predictive scaling",
        )),
    }
}

/// Target tracking creates (and re-creates on update) its own alarms, which belong to AWS: the
/// replaced policy's go, and a target-tracking policy gets a new AlarmHigh and AlarmLow.
fn replace_owned_alarms(
    w: &mut World,
    existing: Option<&Policy>,
    tt: Option<&TargetTrackingConfig>,
    policy_arn: &str,
    key: &TargetKey,
) -> Vec<String> {
    for a in existing.map(|e| e.owned_alarms.clone()).unwrap_or_default() {
        w.alarms.remove(&a);
    }
    let Some(cfg) = tt else { return Vec::new() };
    let (now, suffix) = (w.now(), w.id());
    ["AlarmHigh", "AlarmLow"]
        .into_iter()
        .map(|side| {
            let alarm_name = format!("TargetTracking-{}-{side}-{suffix}", key.1);
            let alarm = aws_owned_alarm(&alarm_name, policy_arn, now, side, cfg, &key.1);
            w.alarms.insert(alarm_name.clone(), alarm);
            alarm_name
        })
        .collect()
}

/// One of the two alarms AWS makes for a target-tracking policy: AlarmHigh on 3 of 3 one-minute
/// datapoints above the target, AlarmLow on 15 of 15 below 90 % of it (aws-facts.md; the sim
/// evaluates them in `sim::target_tracking`).
pub(super) fn aws_owned_alarm(
    name: &str,
    policy_arn: &str,
    now: f64,
    side: &str,
    cfg: &TargetTrackingConfig,
    resource_id: &str,
) -> Alarm {
    let target = cfg.target_value.unwrap_or(1.0);
    let high = side == "AlarmHigh";
    let (metric, dimensions) = match &cfg.customized_metric_specification {
        Some(c) => (
            c["MetricName"].as_str().unwrap_or_default().to_string(),
            serde_json::from_value(c["Dimensions"].clone()).unwrap_or_default(),
        ),
        None => (
            "InvocationsPerCopy".to_string(),
            vec![Dimension {
                name: "InferenceComponentName".into(),
                value: resource_id
                    .trim_start_matches("inference-component/")
                    .into(),
            }],
        ),
    };
    let n = if high { 3 } else { 15 };
    Alarm {
        name: name.into(),
        arn: arn("cloudwatch", &format!("alarm:{name}")),
        config: AlarmConfig {
            alarm_name: name.into(),
            alarm_description: Some(format!(
                "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}."
            )),
            actions_enabled: true,
            alarm_actions: vec![policy_arn.into()],
            metric_name: Some(metric),
            namespace: Some("AWS/SageMaker".into()),
            statistic: Some("Average".into()),
            dimensions,
            period: Some(60),
            evaluation_periods: n,
            datapoints_to_alarm: Some(n),
            threshold: Some(if high { target } else { target * 0.9 }),
            comparison_operator: if high {
                "GreaterThanThreshold"
            } else {
                "LessThanThreshold"
            }
            .into(),
            treat_missing_data: Some("missing".into()),
            ..AlarmConfig::default()
        },
        state: "INSUFFICIENT_DATA".into(),
        reason: "Unchecked: Initial alarm creation".into(),
        reason_data: None,
        updated: now,
        config_updated: now,
        history: Vec::new(),
        aws_owned: true,
    }
}

pub(super) fn policy_view(w: &World, p: &Policy) -> Value {
    // A step policy lists the CloudWatch alarms whose actions invoke it; a target-tracking
    // policy the alarms AWS made for it.
    let alarms: Vec<Value> = if p.step.is_some() {
        w.alarms
            .values()
            .filter(|a| a.config.alarm_actions.contains(&p.arn))
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
        out["StepScalingPolicyConfiguration"] = json!(s);
    }
    if let Some(t) = &p.target_tracking {
        out["TargetTrackingScalingPolicyConfiguration"] = json!(t);
    }
    out
}

pub(super) fn describe_policies(w: &mut World, p: &Value) -> Result<Value, AwsError> {
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

pub(super) fn delete_policy(w: &mut World, p: &Value) -> Result<Value, AwsError> {
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
