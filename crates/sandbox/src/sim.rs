//! The simulation: traffic makes metrics, alarms evaluate them once per period, alarm actions
//! run step policies, target tracking follows its metric, and every scaling decision becomes a
//! scaling activity, failing past the account's instance quota. Rules: sandbox-semantics.md.
//!
//! Simplifications (documented, not hidden): one instance per component copy; target tracking
//! decides on the last minute's value alone; a served request is one `Invocations` datapoint;
//! an async endpoint with instances drains its whole backlog each minute.

use serde_json::{json, Value};

use super::world::{Activity, AlarmTransition, TargetKey, World};

/// Brings the world up to the clock: provisioning completions and every minute boundary passed.
pub fn settle(w: &mut World) {
    let now = w.now();
    let mut boundary = w.processed_until + 60.0;
    while boundary <= now {
        complete_provisioning(w, boundary);
        minute(w, boundary);
        w.processed_until = boundary;
        boundary += 60.0;
    }
    complete_provisioning(w, now);
}

/// Traffic from the control API: `count` requests to a component or an async endpoint.
pub fn invoke(
    w: &mut World,
    component: Option<&str>,
    endpoint: Option<&str>,
    count: u32,
) -> Result<Value, String> {
    settle(w);
    let now = w.now();
    if let Some(name) = component {
        let c = w
            .components
            .get(name)
            .ok_or_else(|| format!("no inference component {name}"))?;
        let copies = c.current_copies;
        // At zero copies every request fails and is counted as NoCapacityInvocationFailures.
        let metric = if copies == 0 {
            "NoCapacityInvocationFailures"
        } else {
            "Invocations"
        };
        w.put_metric(
            "AWS/SageMaker",
            metric,
            &[("InferenceComponentName", name)],
            now,
            f64::from(count),
        );
        return Ok(
            json!({"served": if copies > 0 { count } else { 0 }, "failed": if copies == 0 { count } else { 0 }, "copies": copies}),
        );
    }
    if let Some(name) = endpoint {
        let e = w
            .endpoints
            .get_mut(name)
            .ok_or_else(|| format!("no endpoint {name}"))?;
        if e.async_config.is_none() {
            return Err(format!(
                "endpoint {name} is not an async-inference endpoint; invoke a component instead"
            ));
        }
        // Async requests queue; they are served once capacity exists.
        e.backlog += u64::from(count);
        return Ok(json!({"queued": e.backlog}));
    }
    Err("give a component or an endpoint".into())
}

fn complete_provisioning(w: &mut World, until: f64) {
    settle_statuses(w, until);
    for c in w.components.values_mut() {
        let (ready, waiting): (Vec<_>, Vec<_>) =
            c.provisioning.drain(..).partition(|(at, _)| *at <= until);
        c.provisioning = waiting;
        c.current_copies =
            (c.current_copies + ready.iter().map(|(_, n)| n).sum::<u32>()).min(c.desired_copies);
    }
    for e in w.endpoints.values_mut() {
        for v in &mut e.variants {
            let (ready, waiting): (Vec<_>, Vec<_>) =
                v.provisioning.drain(..).partition(|(at, _)| *at <= until);
            v.provisioning = waiting;
            v.current_instances = (v.current_instances + ready.iter().map(|(_, n)| n).sum::<u32>())
                .min(v.desired_instances);
        }
    }
    sync_component_instances(w);
}

/// Keeps the instance counts of variants that host components in step with their copies
/// (one instance per copy, at least the managed minimum).
pub fn sync_component_instances(w: &mut World) {
    let comps: Vec<_> = w
        .components
        .values()
        .map(|c| {
            (
                c.endpoint.clone(),
                c.variant.clone(),
                c.desired_copies,
                c.current_copies,
            )
        })
        .collect();
    for e in w.endpoints.values_mut() {
        for v in &mut e.variants {
            let hosted: Vec<_> = comps
                .iter()
                .filter(|(ep, var, _, _)| *ep == e.name && *var == v.name)
                .collect();
            if hosted.is_empty() {
                continue;
            }
            let min = v
                .managed
                .as_ref()
                .and_then(|m| m.get("MinInstanceCount"))
                .and_then(Value::as_u64)
                .unwrap_or(0) as u32;
            v.desired_instances = hosted.iter().map(|h| h.2).sum::<u32>().max(min);
            v.current_instances = hosted.iter().map(|h| h.3).sum::<u32>().max(min);
        }
    }
}

fn minute(w: &mut World, boundary: f64) {
    async_metrics(w, boundary);
    let names: Vec<String> = w
        .alarms
        .iter()
        .filter(|(_, a)| !a.aws_owned)
        .map(|(n, _)| n.clone())
        .collect();
    for name in names {
        evaluate_alarm(w, &name, boundary);
    }
    target_tracking(w, boundary);
}

fn async_metrics(w: &mut World, boundary: f64) {
    let at = boundary - 1.0;
    let mut points = Vec::new();
    for e in w
        .endpoints
        .values_mut()
        .filter(|e| e.async_config.is_some())
    {
        let instances: u32 = e.variants.iter().map(|v| v.current_instances).sum();
        if e.backlog > 0 && instances == 0 {
            points.push((e.name.clone(), "HasBacklogWithoutCapacity", 1.0));
        }
        if instances > 0 {
            points.push((
                e.name.clone(),
                "ApproximateBacklogSizePerInstance",
                e.backlog as f64 / f64::from(instances),
            ));
            e.backlog = 0;
        }
    }
    for (name, metric, value) in points {
        w.put_metric(
            "AWS/SageMaker",
            metric,
            &[("EndpointName", &name)],
            at,
            value,
        );
    }
}

fn statistic(values: &[f64], stat: &str) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(match stat {
        "Sum" => values.iter().sum(),
        "Minimum" => values.iter().cloned().fold(f64::INFINITY, f64::min),
        "Maximum" => values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        "SampleCount" => values.len() as f64,
        _ => values.iter().sum::<f64>() / values.len() as f64,
    })
}

/// The statistic of one period [start, start + period) for an alarm's metric and dimensions.
fn period_value(w: &World, cfg: &Value, start: f64, period: f64) -> Option<f64> {
    let ns = cfg["Namespace"].as_str().unwrap_or_default();
    let metric = cfg["MetricName"].as_str().unwrap_or_default();
    let dims: Vec<(String, String)> = cfg["Dimensions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d["Name"].as_str()?.to_string(),
                d["Value"].as_str()?.to_string(),
            ))
        })
        .collect();
    let values: Vec<f64> = w
        .metrics
        .iter()
        .filter(|d| {
            d.namespace == ns && d.metric == metric && d.at >= start && d.at < start + period
        })
        .filter(|d| {
            d.dimensions.len() == dims.len()
                && dims.iter().all(|(k, v)| d.dimensions.get(k) == Some(v))
        })
        .map(|d| d.value)
        .collect();
    statistic(&values, cfg["Statistic"].as_str().unwrap_or("Average"))
}

fn breaches(value: f64, cfg: &Value) -> bool {
    let t = cfg["Threshold"].as_f64().unwrap_or(0.0);
    match cfg["ComparisonOperator"].as_str().unwrap_or_default() {
        "GreaterThanOrEqualToThreshold" => value >= t,
        "GreaterThanThreshold" => value > t,
        "LessThanThreshold" => value < t,
        _ => value <= t,
    }
}

fn evaluate_alarm(w: &mut World, name: &str, boundary: f64) {
    let Some(alarm) = w.alarms.get(name) else {
        return;
    };
    let cfg = alarm.config.clone();
    let period = cfg["Period"].as_f64().unwrap_or(60.0).max(10.0);
    if (boundary % period).abs() > 1e-6 {
        return;
    }
    let n = cfg["EvaluationPeriods"].as_u64().unwrap_or(1) as usize;
    let m = cfg["DatapointsToAlarm"]
        .as_u64()
        .map(|x| x as usize)
        .unwrap_or(n);
    let treat = cfg["TreatMissingData"].as_str().unwrap_or("missing");
    let values: Vec<Option<f64>> = (0..n)
        .map(|i| period_value(w, &cfg, boundary - (i as f64 + 1.0) * period, period))
        .collect();
    let present = values.iter().flatten().count();
    let mut bad = values
        .iter()
        .flatten()
        .filter(|v| breaches(**v, &cfg))
        .count();
    if treat == "breaching" {
        bad += n - present;
    }
    let state = if bad >= m {
        "ALARM"
    } else if present == 0 && treat == "missing" {
        "INSUFFICIENT_DATA"
    } else if present == 0 && treat == "ignore" {
        return;
    } else {
        "OK"
    };
    let shown: Vec<String> = values.iter().flatten().map(|v| format!("{v}")).collect();
    let reason = format!(
        "Threshold Crossed: {bad} out of the last {n} datapoints [{}] breached the threshold ({}) ({} of {n} needed).",
        shown.join(", "),
        cfg["Threshold"],
        m
    );
    transition(w, name, state, &reason, boundary);
    if state == "ALARM" {
        run_actions(
            w,
            name,
            values.first().copied().flatten().unwrap_or(0.0),
            boundary,
        );
    }
}

/// Sets an alarm's state, recording the change; entering ALARM runs its actions (SetAlarmState
/// goes through here too).
pub fn transition(w: &mut World, name: &str, state: &str, reason: &str, at: f64) {
    let Some(a) = w.alarms.get_mut(name) else {
        return;
    };
    if a.state != state {
        a.history.push(AlarmTransition {
            at,
            from: a.state.clone(),
            to: state.into(),
            reason: reason.into(),
        });
        a.state = state.into();
        a.reason = reason.into();
        a.updated = at;
    }
}

/// Runs the alarm's Application Auto Scaling actions (other actions are recorded only).
pub fn run_actions(w: &mut World, alarm: &str, value: f64, at: f64) {
    let Some(a) = w.alarms.get(alarm) else { return };
    if a.config["ActionsEnabled"].as_bool() == Some(false) {
        return;
    }
    let threshold = a.config["Threshold"].as_f64().unwrap_or(0.0);
    let actions: Vec<String> = a.config["AlarmActions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    for action in actions {
        let policy = w
            .policies
            .values()
            .find(|p| p.arn == action && p.step.is_some())
            .cloned();
        if let Some(policy) = policy {
            let cause = format!(
                "monitor alarm {alarm} in state ALARM triggered policy {}",
                policy.name
            );
            step_scale(w, &policy, value - threshold, &cause, at);
        }
    }
}

fn key_of(p: &super::world::Policy) -> TargetKey {
    (
        p.namespace.clone(),
        p.resource_id.clone(),
        p.dimension.clone(),
    )
}

/// The capacity a target's resource has asked for (desired copies or instances).
pub fn capacity(w: &World, rid: &str) -> Option<u32> {
    if let Some(name) = rid.strip_prefix("inference-component/") {
        return w.components.get(name).map(|c| c.desired_copies);
    }
    let parts: Vec<&str> = rid.split('/').collect();
    if let ["endpoint", ep, "variant", var] = parts[..] {
        return w
            .endpoints
            .get(ep)?
            .variants
            .iter()
            .find(|v| v.name == var)
            .map(|v| v.desired_instances);
    }
    None
}

fn step_scale(w: &mut World, policy: &super::world::Policy, breach: f64, cause: &str, at: f64) {
    let key = key_of(policy);
    let (Some(target), Some(current)) = (w.targets.get(&key).cloned(), capacity(w, &key.1)) else {
        return;
    };
    let cfg = policy.step.clone().unwrap_or_default();
    let step = cfg["StepAdjustments"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| {
            let lo = s["MetricIntervalLowerBound"]
                .as_f64()
                .unwrap_or(f64::NEG_INFINITY);
            let hi = s["MetricIntervalUpperBound"]
                .as_f64()
                .unwrap_or(f64::INFINITY);
            breach >= lo && breach < hi
        });
    let Some(adj) = step.and_then(|s| s["ScalingAdjustment"].as_i64()) else {
        return;
    };
    let cooldown = cfg["Cooldown"].as_f64().unwrap_or(0.0);
    // During a scale-out cooldown, capacity the previous activity added counts toward this one.
    let base = match policy.last_scale_out {
        Some((t, before)) if adj > 0 && at < t + cooldown => i64::from(before),
        _ => i64::from(current),
    };
    let wanted = match cfg["AdjustmentType"].as_str().unwrap_or("ChangeInCapacity") {
        "ExactCapacity" => adj,
        "PercentChangeInCapacity" => {
            let min_mag = cfg["MinAdjustmentMagnitude"].as_i64().unwrap_or(1);
            let delta = (base as f64 * adj as f64 / 100.0).round() as i64;
            base + if adj > 0 {
                delta.max(min_mag)
            } else {
                delta.min(-min_mag)
            }
        }
        _ => base + adj,
    };
    let new = wanted.clamp(i64::from(target.min), i64::from(target.max)) as u32;
    let out = new > current;
    // Suspended dynamic scaling: the policy does not run and no activity is recorded (the
    // suspension is visible only in the target's SuspendedState).
    if (out && target.suspended_out) || (!out && new < current && target.suspended_in) {
        return;
    }
    if new == current {
        if adj > 0
            && at
                < policy
                    .last_scale_out
                    .map(|(t, _)| t + cooldown)
                    .unwrap_or(0.0)
        {
            return; // still in cooldown: the earlier activity already covers this breach
        }
        let code = if adj > 0 {
            "AlreadyAtMaxCapacity"
        } else {
            "AlreadyAtMinCapacity"
        };
        not_scaled(w, &key, cause, at, code, new, current);
        return;
    }
    if set_capacity(w, &key, new, cause, at) && out {
        if let Some(p) = w.policies.get_mut(&(key, policy.name.clone())) {
            let before = p
                .last_scale_out
                .filter(|(t, _)| at < t + cooldown)
                .map(|(_, b)| b)
                .unwrap_or(current);
            p.last_scale_out = Some((at, before));
        }
    }
}

fn not_scaled(
    w: &mut World,
    key: &TargetKey,
    cause: &str,
    at: f64,
    code: &str,
    new: u32,
    current: u32,
) {
    let id = w.id();
    let (min, max) = w
        .targets
        .get(key)
        .map(|t| (t.min, t.max))
        .unwrap_or_default();
    // AWS's shape (aws-facts.md, "Not scaled"): StatusCode Failed, NotScaledReasons, and no
    // StatusMessage.
    let mut reason = json!({"Code": code, "CurrentCapacity": current});
    match code {
        "AlreadyAtMaxCapacity" => reason["MaxCapacity"] = json!(max),
        "AlreadyAtMinCapacity" => reason["MinCapacity"] = json!(min),
        _ => {}
    }
    w.activities.push(Activity {
        id,
        namespace: key.0.clone(),
        resource_id: key.1.clone(),
        dimension: key.2.clone(),
        description: format!("Setting desired {} to {new}.", unit(key)),
        cause: cause.into(),
        start: at,
        end: at,
        status: "Failed".into(),
        message: String::new(),
        not_scaled: Some(json!([reason])),
    });
}

fn unit(key: &TargetKey) -> &'static str {
    if key.1.starts_with("inference-component/") {
        "copy count"
    } else {
        "instance count"
    }
}

/// Sets the desired capacity of a target's resource, checking the instance quota; records the
/// activity either way. True when it succeeded.
pub fn set_capacity(w: &mut World, key: &TargetKey, new: u32, cause: &str, at: f64) -> bool {
    let Some(current) = capacity(w, &key.1) else {
        return false;
    };
    let (instance_type, extra_instances) = instance_delta(w, &key.1, current, new);
    let id = w.id();
    let mut activity = Activity {
        id,
        namespace: key.0.clone(),
        resource_id: key.1.clone(),
        dimension: key.2.clone(),
        description: format!("Setting desired {} to {new}.", unit(key)),
        cause: cause.into(),
        start: at,
        end: at,
        status: "Successful".into(),
        message: format!(
            "Successfully set desired {} to {new}. Change successfully fulfilled by sagemaker.",
            unit(key)
        ),
        not_scaled: None,
    };
    if let (Some(itype), true) = (&instance_type, extra_instances > 0) {
        let used = w.instances_in_use(itype);
        if let Some(quota) = w.quota(itype) {
            if f64::from(used + extra_instances) > quota {
                activity.status = "Failed".into();
                activity.message = format!(
                    "Failed to set desired {} to {new}. Reason: The account-level service limit '{itype} for endpoint usage' is {quota} Instances, with current utilization of {used} Instances and a request delta of {extra_instances} Instances. Please use AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is not available, contact AWS support to request an increase for this quota.",
                    unit(key)
                );
                w.activities.push(activity);
                return false;
            }
        }
    }
    apply_capacity(w, &key.1, current, new, at);
    w.activities.push(activity);
    true
}

/// The instance type behind a resource and how many more instances going to `new` needs.
fn instance_delta(w: &World, rid: &str, current: u32, new: u32) -> (Option<String>, u32) {
    let variant = if let Some(name) = rid.strip_prefix("inference-component/") {
        w.components.get(name).and_then(|c| {
            w.endpoints
                .get(&c.endpoint)?
                .variants
                .iter()
                .find(|v| v.name == c.variant)
        })
    } else {
        let parts: Vec<&str> = rid.split('/').collect();
        match parts[..] {
            ["endpoint", ep, "variant", var] => w
                .endpoints
                .get(ep)
                .and_then(|e| e.variants.iter().find(|v| v.name == var)),
            _ => None,
        }
    };
    (
        variant.map(|v| v.instance_type.clone()),
        new.saturating_sub(current),
    )
}

fn apply_capacity(w: &mut World, rid: &str, current: u32, new: u32, at: f64) {
    let ready_at = at + w.settings.provisioning_delay_seconds;
    let transitions = w.settings.status_transitions;
    if let Some(name) = rid.strip_prefix("inference-component/") {
        if let Some(c) = w.components.get_mut(name) {
            // UpdateInferenceComponentRuntimeConfig: the component, and the endpoint whose
            // instances follow it, are Updating while the change runs (aws-facts.md).
            if transitions {
                c.status = "Updating".into();
                c.status_until = Some(ready_at);
                let endpoint = c.endpoint.clone();
                updating(w, &endpoint, at, ready_at);
            }
            let Some(c) = w.components.get_mut(name) else {
                return;
            };
            c.desired_copies = new;
            if new > current {
                c.provisioning.push((ready_at, new - current));
            } else {
                c.provisioning.clear();
                c.current_copies = c.current_copies.min(new);
            }
        }
        sync_component_instances(w);
        return;
    }
    let parts: Vec<String> = rid.split('/').map(str::to_string).collect();
    if let [a, ep, b, var] = &parts[..] {
        if a == "endpoint" && b == "variant" {
            // UpdateEndpointWeightsAndCapacities: "SageMaker sets the endpoint status to
            // Updating" until the capacity is in service (aws-facts.md).
            if transitions {
                updating(w, ep, at, ready_at);
            }
            if let Some(v) = w
                .endpoints
                .get_mut(ep)
                .and_then(|e| e.variants.iter_mut().find(|v| &v.name == var))
            {
                v.desired_instances = new;
                if new > current {
                    v.provisioning.push((ready_at, new - current));
                } else {
                    v.provisioning.clear();
                    v.current_instances = v.current_instances.min(new);
                }
            }
        }
    }
}

/// Puts an endpoint in `Updating` until `until` (or later, if it already is).
pub fn updating(w: &mut World, endpoint: &str, at: f64, until: f64) {
    if let Some(e) = w.endpoints.get_mut(endpoint) {
        e.status = "Updating".into();
        e.status_until = Some(e.status_until.map_or(until, |u| u.max(until)));
        e.modified = at;
    }
}

/// Transitional statuses whose time has come become InService.
fn settle_statuses(w: &mut World, until: f64) {
    for e in w.endpoints.values_mut() {
        if e.status_until.is_some_and(|t| t <= until) {
            e.status = "InService".into();
            e.status_until = None;
        }
    }
    for c in w.components.values_mut() {
        if c.status_until.is_some_and(|t| t <= until) {
            c.status = "InService".into();
            c.status_until = None;
        }
    }
}

/// After (re-)registration, capacity outside [min, max] is brought inside, as AWS does.
pub fn clamp_to_bounds(w: &mut World, key: &TargetKey, cause: &str) {
    let (Some(t), Some(current)) = (w.targets.get(key).cloned(), capacity(w, &key.1)) else {
        return;
    };
    let new = current.clamp(t.min, t.max);
    if new != current {
        let now = w.now();
        set_capacity(w, key, new, cause, now);
    }
}

/// Datapoints of a target-tracking policy's own alarms (aws-facts.md, for one-minute
/// metrics): AlarmHigh scales out after 3 of 3 breaching minutes, AlarmLow scales in after 15
/// of 15. The low threshold is 90 % of the target value (an approximation of AWS's).
const HIGH_DATAPOINTS: usize = 3;
const LOW_DATAPOINTS: usize = 15;
const LOW_FRACTION: f64 = 0.9;

/// Where a target-tracking policy's alarms stand after the minute that just ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tracking {
    /// Not enough datapoints (at zero capacity there is no per-unit value at all).
    Insufficient,
    Ok,
    /// AlarmHigh in ALARM: scale out to this capacity.
    High(u32),
    /// AlarmLow in ALARM: scale in to this capacity.
    Low(u32),
}

/// Target tracking, through its own alarms: each minute records the per-unit value (none at
/// zero capacity), the alarms evaluate their datapoints, and an alarm in ALARM scales.
fn target_tracking(w: &mut World, boundary: f64) {
    let keys: Vec<(TargetKey, String)> = w
        .policies
        .iter()
        .filter(|(_, p)| p.target_tracking.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    let mut verdicts = Vec::new();
    for k in &keys {
        let Some(p) = w.policies.get(k).cloned() else {
            continue;
        };
        let Some(current) = capacity(w, &k.0 .1) else {
            continue;
        };
        let sample = if current == 0 {
            None
        } else {
            per_unit(w, &p, current, boundary)
        };
        let Some(pp) = w.policies.get_mut(k) else {
            continue;
        };
        pp.samples.push(sample);
        let excess = pp.samples.len().saturating_sub(LOW_DATAPOINTS);
        pp.samples.drain(..excess);
        let verdict = tracking(&pp.clone(), current);
        set_tracking_alarms(w, &p, verdict, boundary);
        verdicts.push((k.clone(), p, current, verdict));
    }
    for (k, p, current, verdict) in verdicts.iter().cloned() {
        let Some(target) = w.targets.get(&k.0).cloned() else {
            continue;
        };
        let cfg = p.target_tracking.clone().unwrap_or_default();
        let alarm = |side: &str| {
            p.owned_alarms
                .iter()
                .find(|a| a.contains(side))
                .cloned()
                .unwrap_or_default()
        };
        match verdict {
            Tracking::High(desired) if !target.suspended_out => {
                let cooldown = cfg["ScaleOutCooldown"].as_f64().unwrap_or(300.0);
                let new = desired.min(target.max);
                let cooled = p
                    .last_scale_out
                    .is_none_or(|(t, _)| boundary >= t + cooldown);
                let cause = format!(
                    "monitor alarm {} in state ALARM triggered policy {}",
                    alarm("AlarmHigh"),
                    p.name
                );
                if cooled && new > current && set_capacity(w, &k.0, new, &cause, boundary) {
                    if let Some(pp) = w.policies.get_mut(&k) {
                        pp.last_scale_out = Some((boundary, current));
                    }
                }
            }
            Tracking::Low(desired) if !target.suspended_in => {
                let cooldown = cfg["ScaleInCooldown"].as_f64().unwrap_or(300.0);
                let cooled = p.last_scale_in.is_none_or(|t| boundary >= t + cooldown)
                    && p.last_scale_out
                        .is_none_or(|(t, _)| boundary >= t + cooldown);
                // Scale-in happens only when every target-tracking policy on the target agrees.
                let all_agree = verdicts
                    .iter()
                    .filter(|(o, ..)| o.0 == k.0)
                    .all(|(.., v)| matches!(v, Tracking::Low(_)));
                let new = desired.max(target.min);
                let cause = format!(
                    "monitor alarm {} in state ALARM triggered policy {}",
                    alarm("AlarmLow"),
                    p.name
                );
                if cooled
                    && all_agree
                    && new < current
                    && set_capacity(w, &k.0, new, &cause, boundary)
                {
                    if let Some(pp) = w.policies.get_mut(&k) {
                        pp.last_scale_in = Some(boundary);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The alarms' verdict over a policy's recorded minutes.
fn tracking(p: &super::world::Policy, current: u32) -> Tracking {
    let target_value = p
        .target_tracking
        .as_ref()
        .and_then(|c| c["TargetValue"].as_f64())
        .unwrap_or(1.0)
        .max(1e-9);
    let last = |n: usize| -> Option<Vec<f64>> {
        (p.samples.len() >= n)
            .then(|| p.samples[p.samples.len() - n..].to_vec())?
            .into_iter()
            .collect()
    };
    let Some(Some(latest)) = p.samples.last().copied() else {
        return Tracking::Insufficient;
    };
    let desired = (f64::from(current) * latest / target_value).ceil() as u32;
    if last(HIGH_DATAPOINTS).is_some_and(|v| v.iter().all(|x| *x > target_value)) {
        return Tracking::High(desired);
    }
    if last(LOW_DATAPOINTS).is_some_and(|v| v.iter().all(|x| *x < LOW_FRACTION * target_value)) {
        return Tracking::Low(desired);
    }
    Tracking::Ok
}

/// Shows the verdict on the policy's two alarms (AWS's own; nobody else may edit them).
fn set_tracking_alarms(w: &mut World, p: &super::world::Policy, verdict: Tracking, at: f64) {
    for name in &p.owned_alarms {
        let high = name.contains("AlarmHigh");
        let state = match verdict {
            Tracking::Insufficient => "INSUFFICIENT_DATA",
            Tracking::High(_) if high => "ALARM",
            Tracking::Low(_) if !high => "ALARM",
            _ => "OK",
        };
        let reason = format!("Target tracking: {state} after the minute ending {at}");
        transition(w, name, state, &reason, at);
    }
}

/// The tracked metric per unit of capacity over the minute that just ended.
fn per_unit(w: &World, p: &super::world::Policy, current: u32, boundary: f64) -> Option<f64> {
    let cfg = p.target_tracking.as_ref()?;
    let start = boundary - 60.0;
    if let Some(custom) = cfg.get("CustomizedMetricSpecification") {
        let alarm_like = json!({
            "Namespace": custom["Namespace"], "MetricName": custom["MetricName"],
            "Dimensions": custom["Dimensions"], "Statistic": custom["Statistic"],
        });
        return Some(period_value(w, &alarm_like, start, 60.0).unwrap_or(0.0));
    }
    let name = p.resource_id.strip_prefix("inference-component/")?;
    let sum: f64 = w
        .metrics
        .iter()
        .filter(|d| d.metric == "Invocations" && d.at >= start && d.at < boundary)
        .filter(|d| {
            d.dimensions
                .get("InferenceComponentName")
                .map(String::as_str)
                == Some(name)
        })
        .map(|d| d.value)
        .sum();
    Some(sum / f64::from(current))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{autoscaling, cloudwatch, control, world::Clock};

    fn world() -> World {
        let mut w = World::new(Clock {
            frozen: Some(1_800_000_000.0),
            offset: 0.0,
        });
        control::seed(
            &mut w,
            &json!({"quotas": {"ml.g5.xlarge": 100},
                    "endpoints": [{"name": "ep", "instance_type": "ml.g5.xlarge", "initial_instances": 1, "async": true}]}),
        )
        .unwrap();
        w.settings.provisioning_delay_seconds = 0.0;
        // Kinder than AWS on purpose: these tests exercise the scaling arithmetic on a target
        // registered a moment ago; eventual consistency has its own tests (tests/sandbox.rs).
        w.settings.eventual_consistency = false;
        autoscaling::handle(&mut w, "RegisterScalableTarget", &json!({"ServiceNamespace": "sagemaker",
            "ResourceId": "endpoint/ep/variant/AllTraffic", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "MinCapacity": 0, "MaxCapacity": 50})).unwrap();
        w
    }

    fn step_policy(w: &mut World, adjustment: i64, cooldown: i64) -> String {
        let out = autoscaling::handle(w, "PutScalingPolicy", &json!({"PolicyName": "s", "ServiceNamespace": "sagemaker",
            "ResourceId": "endpoint/ep/variant/AllTraffic", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "PolicyType": "StepScaling", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity",
            "Cooldown": cooldown, "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": adjustment}]}})).unwrap();
        out["PolicyARN"].as_str().unwrap().to_string()
    }

    fn alarm(w: &mut World, name: &str, treat: &str, evaluations: u64, to_alarm: u64) {
        cloudwatch::handle(w, "PutMetricAlarm", &json!({"AlarmName": name, "Namespace": "T", "MetricName": "m",
            "Statistic": "Sum", "Period": 60, "EvaluationPeriods": evaluations, "DatapointsToAlarm": to_alarm,
            "Threshold": 1.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": treat})).unwrap();
    }

    fn advance(w: &mut World, seconds: f64) {
        w.clock.advance(seconds);
        settle(w);
    }

    fn instances(w: &World) -> u32 {
        capacity(w, "endpoint/ep/variant/AllTraffic").unwrap()
    }

    #[test]
    fn missing_data_follows_treat_missing_data() {
        let mut w = world();
        for (name, treat) in [
            ("missing", "missing"),
            ("bad", "breaching"),
            ("good", "notBreaching"),
            ("keep", "ignore"),
        ] {
            alarm(&mut w, name, treat, 1, 1);
        }
        advance(&mut w, 60.0);
        let state = |w: &World, n: &str| w.alarms[n].state.clone();
        assert_eq!(state(&w, "missing"), "INSUFFICIENT_DATA");
        assert_eq!(state(&w, "bad"), "ALARM");
        assert_eq!(state(&w, "good"), "OK");
        assert_eq!(
            state(&w, "keep"),
            "INSUFFICIENT_DATA",
            "ignore keeps the current state"
        );
        let now = w.now();
        w.put_metric("T", "m", &[], now, 5.0);
        advance(&mut w, 60.0);
        assert_eq!(state(&w, "missing"), "ALARM");
        assert_eq!(state(&w, "keep"), "ALARM");
        assert!(
            w.alarms["missing"].history.iter().any(|h| h.to == "ALARM"),
            "transitions are recorded"
        );
    }

    #[test]
    fn datapoints_to_alarm_m_of_n() {
        let mut w = world();
        alarm(&mut w, "two-of-three", "missing", 3, 2);
        let now = w.now();
        w.put_metric("T", "m", &[], now, 1.0);
        advance(&mut w, 60.0);
        assert_ne!(w.alarms["two-of-three"].state, "ALARM", "1 of 3 breaching");
        advance(&mut w, 60.0);
        let now = w.now() - 30.0;
        w.put_metric("T", "m", &[], now, 2.0);
        advance(&mut w, 60.0);
        assert_eq!(
            w.alarms["two-of-three"].state, "ALARM",
            "2 of the last 3 breaching"
        );
    }

    #[test]
    fn scale_out_during_cooldown_counts_what_the_last_activity_added() {
        let mut w = world();
        let arn = step_policy(&mut w, 2, 300);
        let policy = w.policies.values().find(|p| p.arn == arn).cloned().unwrap();
        let now = w.now();
        step_scale(&mut w, &policy, 1.0, "test", now);
        assert_eq!(instances(&w), 3, "1 + 2");
        // Same policy, now +3, still in cooldown: +3 from the pre-activity capacity (1) = 4.
        let mut bigger = w.policies.values().find(|p| p.arn == arn).cloned().unwrap();
        bigger.step.as_mut().unwrap()["StepAdjustments"][0]["ScalingAdjustment"] = json!(3);
        step_scale(&mut w, &bigger, 1.0, "test", now + 30.0);
        assert_eq!(
            instances(&w),
            4,
            "+2 then +3 during the cooldown gives +1 more"
        );
        // After the cooldown, a fresh +2 applies to the current capacity.
        let policy = w.policies.values().find(|p| p.arn == arn).cloned().unwrap();
        step_scale(&mut w, &policy, 1.0, "test", now + 400.0);
        assert_eq!(instances(&w), 6);
    }

    #[test]
    fn suspended_scale_out_does_not_scale_and_records_no_activity() {
        let mut w = world();
        autoscaling::handle(&mut w, "RegisterScalableTarget", &json!({"ServiceNamespace": "sagemaker",
            "ResourceId": "endpoint/ep/variant/AllTraffic", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "SuspendedState": {"DynamicScalingOutSuspended": true}})).unwrap();
        let arn = step_policy(&mut w, 1, 60);
        let policy = w.policies.values().find(|p| p.arn == arn).cloned().unwrap();
        let now = w.now();
        let before = w.activities.len();
        step_scale(&mut w, &policy, 1.0, "test", now);
        assert_eq!(instances(&w), 1);
        assert_eq!(
            w.activities.len(),
            before,
            "suspension is not a NotScaledReason: it shows only in SuspendedState"
        );
    }

    #[test]
    fn capacity_is_clamped_to_the_target_bounds() {
        let mut w = world();
        let arn = step_policy(&mut w, 100, 0);
        let policy = w.policies.values().find(|p| p.arn == arn).cloned().unwrap();
        let now = w.now();
        step_scale(&mut w, &policy, 1.0, "test", now);
        assert_eq!(instances(&w), 50, "MaxCapacity bounds scale-out");
        step_scale(&mut w, &policy, 1.0, "test", now + 10.0);
        let last = w.activities.last().unwrap();
        assert_eq!(
            last.not_scaled.as_ref().unwrap()[0],
            json!({"Code": "AlreadyAtMaxCapacity", "CurrentCapacity": 50, "MaxCapacity": 50})
        );
        assert_eq!(
            last.status, "Failed",
            "AWS's shape for a not-scaled activity"
        );
        assert!(last.message.is_empty(), "and no StatusMessage");
    }
}
