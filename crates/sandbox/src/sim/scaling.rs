//! Application Auto Scaling's side: step scaling, capacity changes as scaling activities
//! (failing past the account's instance quota), and what a capacity change does to instances.

use serde_json::json;

use super::{sync_component_instances, updating};
use crate::world::{Activity, StepConfig, TargetKey, World};

pub(super) fn key_of(p: &crate::world::Policy) -> TargetKey {
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

/// Runs a step policy for a breach of `breach` past the alarm's threshold: the matching step's
/// adjustment, from the capacity (or, within a scale-out cooldown, the capacity before the last
/// scale-out), within the target's bounds; a change becomes a scaling activity, no change a
/// not-scaled one.
pub(super) fn step_scale(
    w: &mut World,
    policy: &crate::world::Policy,
    breach: f64,
    cause: &str,
    at: f64,
) {
    let key = key_of(policy);
    let (Some(target), Some(current)) = (w.targets.get(&key).cloned(), capacity(w, &key.1)) else {
        return;
    };
    let cfg = policy.step.clone().unwrap_or_default();
    let Some(adj) = step_adjustment(&cfg, breach) else {
        return;
    };
    let cooldown = cfg.cooldown.unwrap_or(0) as f64;
    let cooling = policy.last_scale_out.filter(|(t, _)| at < t + cooldown);
    // During a scale-out cooldown, capacity the previous activity added counts toward this one.
    let base = match cooling {
        Some((_, before)) if adj > 0 => i64::from(before),
        _ => i64::from(current),
    };
    let new =
        wanted_capacity(&cfg, adj, base).clamp(i64::from(target.min), i64::from(target.max)) as u32;
    let out = new > current;
    // Suspended dynamic scaling: the policy does not run and no activity is recorded (the
    // suspension is visible only in the target's SuspendedState).
    if (out && target.suspended_out) || (!out && new < current && target.suspended_in) {
        return;
    }
    if new == current {
        if adj > 0 && cooling.is_some() {
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
            let before = cooling.map(|(_, b)| b).unwrap_or(current);
            p.last_scale_out = Some((at, before));
        }
    }
}

/// The ScalingAdjustment of the step whose interval holds `breach`, if any.
fn step_adjustment(cfg: &StepConfig, breach: f64) -> Option<i64> {
    cfg.step_adjustments
        .iter()
        .find(|s| {
            let lo = s.metric_interval_lower_bound.unwrap_or(f64::NEG_INFINITY);
            let hi = s.metric_interval_upper_bound.unwrap_or(f64::INFINITY);
            breach >= lo && breach < hi
        })?
        .scaling_adjustment
}

/// The capacity an adjustment of `adj` asks for from `base`, by AdjustmentType.
fn wanted_capacity(cfg: &StepConfig, adj: i64, base: i64) -> i64 {
    match cfg.adjustment_type.as_deref().unwrap_or("ChangeInCapacity") {
        "ExactCapacity" => adj,
        "PercentChangeInCapacity" => {
            let min_mag = cfg.min_adjustment_magnitude.unwrap_or(1);
            let delta = (base as f64 * adj as f64 / 100.0).round() as i64;
            base + if adj > 0 {
                delta.max(min_mag)
            } else {
                delta.min(-min_mag)
            }
        }
        _ => base + adj,
    }
}

pub(super) fn not_scaled(
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

pub(super) fn unit(key: &TargetKey) -> &'static str {
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
    if let (Some(itype), true) = (&instance_type, extra_instances > 0) {
        if w.settings.insufficient_capacity.contains(itype) {
            short_of_capacity(w, key, activity, new, at);
            return false;
        }
    }
    apply_capacity(w, &key.1, current, new, at);
    if new > current {
        // The activity ends when the new capacity is in service (InProgress until then).
        activity.end = at + w.settings.provisioning_delay_seconds;
    }
    w.activities.push(activity);
    true
}

/// A scale-out AWS has no instances for: SageMaker tries for the provisioning delay (the
/// endpoint `Updating`), then the activity fails in SageMaker's CapacityError words (its
/// FailureReason: "Unable to provision requested ML compute capacity. Please retry using a
/// different ML instance type.") and the capacity stays as it was.
fn short_of_capacity(w: &mut World, key: &TargetKey, mut activity: Activity, new: u32, at: f64) {
    let until = at + w.settings.provisioning_delay_seconds;
    if w.settings.status_transitions {
        if let Some(endpoint) = endpoint_of(w, &key.1) {
            updating(w, &endpoint, at, until);
        }
    }
    activity.end = until;
    activity.status = "Failed".into();
    activity.message = format!(
        "Failed to set desired {} to {new}. Reason: Unable to provision requested ML compute capacity. Please retry using a different ML instance type.",
        unit(key)
    );
    w.activities.push(activity);
}

fn endpoint_of(w: &World, rid: &str) -> Option<String> {
    if let Some(name) = rid.strip_prefix("inference-component/") {
        return w.components.get(name).map(|c| c.endpoint.clone());
    }
    rid.strip_prefix("endpoint/")
        .and_then(|r| r.split('/').next())
        .map(str::to_string)
}

/// The instance type behind a resource and how many more instances going to `new` needs.
pub(super) fn instance_delta(
    w: &World,
    rid: &str,
    current: u32,
    new: u32,
) -> (Option<String>, u32) {
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

pub(super) fn apply_capacity(w: &mut World, rid: &str, current: u32, new: u32, at: f64) {
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

/// After (re-)registration, capacity outside [min, max] is brought inside, as AWS does (also
/// while dynamic scaling is suspended: that suspends policies, not the bounds), with AWS's
/// cause ("minimum capacity was set to 15").
pub fn clamp_to_bounds(w: &mut World, key: &TargetKey) {
    let (Some(t), Some(current)) = (w.targets.get(key).cloned(), capacity(w, &key.1)) else {
        return;
    };
    let new = current.clamp(t.min, t.max);
    if new != current {
        let now = w.now();
        let cause = if new > current {
            format!("minimum capacity was set to {}", t.min)
        } else {
            format!("maximum capacity was set to {}", t.max)
        };
        set_capacity(w, key, new, &cause, now);
    }
}
