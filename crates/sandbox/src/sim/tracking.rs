//! Target tracking through its own alarms (AlarmHigh / AlarmLow), one decision per minute.

use super::alarms::{period_value, transition};
use super::scaling::{capacity, set_capacity};
use crate::world::{AlarmConfig, Policy, TargetKey, World};

/// Datapoints of a target-tracking policy's own alarms (aws-facts.md, for one-minute
/// metrics): AlarmHigh scales out after 3 of 3 breaching minutes, AlarmLow scales in after 15
/// of 15. The low threshold is 90 % of the target value (an approximation of AWS's).
pub(super) const HIGH_DATAPOINTS: usize = 3;
pub(super) const LOW_DATAPOINTS: usize = 15;
pub(super) const LOW_FRACTION: f64 = 0.9;

/// Where a target-tracking policy's alarms stand after the minute that just ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Tracking {
    /// Not enough datapoints (at zero capacity there is no per-unit value at all).
    Insufficient,
    Ok,
    /// AlarmHigh in ALARM: scale out to this capacity.
    High(u32),
    /// AlarmLow in ALARM: scale in to this capacity.
    Low(u32),
}

/// One policy's verdict for the minute: (its target, its name, the policy before the minute,
/// the target's capacity, the verdict).
type Verdict = (TargetKey, String, Policy, u32, Tracking);

/// Target tracking, through its own alarms: each minute records the per-unit value (none at
/// zero capacity), the alarms evaluate their datapoints, and an alarm in ALARM scales.
pub(super) fn target_tracking(w: &mut World, boundary: f64) {
    let keys: Vec<(TargetKey, String)> = w
        .policies
        .iter()
        .filter(|(_, p)| p.target_tracking.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    let verdicts: Vec<Verdict> = keys
        .iter()
        .filter_map(|k| record_minute(w, k, boundary))
        .collect();
    for (target, name, p, current, verdict) in &verdicts {
        let key = (target.clone(), name.clone());
        // Scale-in happens only when every target-tracking policy on the target agrees.
        let agreed = !matches!(verdict, Tracking::Low(_))
            || verdicts
                .iter()
                .filter(|(t, ..)| t == target)
                .all(|(.., v)| matches!(v, Tracking::Low(_)));
        if agreed {
            scale(w, &key, p, *current, *verdict, boundary);
        }
    }
}

/// Records a policy's sample for the minute that just ended and shows its verdict on its
/// alarms; None when the policy or its target's capacity is gone.
fn record_minute(w: &mut World, k: &(TargetKey, String), boundary: f64) -> Option<Verdict> {
    let p = w.policies.get(k).cloned()?;
    let current = capacity(w, &k.0 .1)?;
    let sample = if current == 0 {
        None
    } else {
        per_unit(w, &p, current, boundary)
    };
    let pp = w.policies.get_mut(k)?;
    pp.samples.push(sample);
    let excess = pp.samples.len().saturating_sub(LOW_DATAPOINTS);
    pp.samples.drain(..excess);
    let verdict = tracking(&pp.clone(), current);
    set_tracking_alarms(w, &p, verdict, boundary);
    Some((k.0.clone(), k.1.clone(), p, current, verdict))
}

/// The cause AWS gives a scaling activity one of the policy's alarms started.
fn cause(p: &Policy, side: &str) -> String {
    let alarm = p.owned_alarms.iter().find(|a| a.contains(side));
    format!(
        "monitor alarm {} in state ALARM triggered policy {}",
        alarm.map(String::as_str).unwrap_or_default(),
        p.name
    )
}

/// The cooldown configured, or AWS's default of 300 seconds.
fn cooldown(c: Option<i64>) -> f64 {
    c.map_or(300.0, |c| c as f64)
}

/// Scales as the verdict says: AlarmHigh in ALARM scales out (to at most the maximum) once the
/// scale-out cooldown has passed; AlarmLow scales in (to at least the minimum) once both
/// cooldowns have passed; neither while that direction is suspended.
fn scale(
    w: &mut World,
    k: &(TargetKey, String),
    p: &Policy,
    current: u32,
    verdict: Tracking,
    boundary: f64,
) {
    let Some(target) = w.targets.get(&k.0).cloned() else {
        return;
    };
    let cfg = p.target_tracking.clone().unwrap_or_default();
    let (new, allowed, side) = match verdict {
        Tracking::High(desired) => {
            let wait = cooldown(cfg.scale_out_cooldown);
            let cooled = p.last_scale_out.is_none_or(|(t, _)| boundary >= t + wait);
            let new = desired.min(target.max);
            (
                new,
                !target.suspended_out && cooled && new > current,
                "AlarmHigh",
            )
        }
        Tracking::Low(desired) => {
            let wait = cooldown(cfg.scale_in_cooldown);
            let cooled = p.last_scale_in.is_none_or(|t| boundary >= t + wait)
                && p.last_scale_out.is_none_or(|(t, _)| boundary >= t + wait);
            let new = desired.max(target.min);
            (
                new,
                !target.suspended_in && cooled && new < current,
                "AlarmLow",
            )
        }
        Tracking::Insufficient | Tracking::Ok => return,
    };
    if !allowed || !set_capacity(w, &k.0, new, &cause(p, side), boundary) {
        return;
    }
    if let Some(pp) = w.policies.get_mut(k) {
        if new > current {
            pp.last_scale_out = Some((boundary, current));
        } else {
            pp.last_scale_in = Some(boundary);
        }
    }
}

/// The alarms' verdict over a policy's recorded minutes.
pub(super) fn tracking(p: &crate::world::Policy, current: u32) -> Tracking {
    let target_value = p
        .target_tracking
        .as_ref()
        .and_then(|c| c.target_value)
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
pub(super) fn set_tracking_alarms(
    w: &mut World,
    p: &crate::world::Policy,
    verdict: Tracking,
    at: f64,
) {
    for name in &p.owned_alarms {
        let high = name.contains("AlarmHigh");
        let state = match verdict {
            Tracking::Insufficient => "INSUFFICIENT_DATA",
            Tracking::High(_) if high => "ALARM",
            Tracking::Low(_) if !high => "ALARM",
            _ => "OK",
        };
        let reason = format!("Target tracking: {state} after the minute ending {at}");
        transition(w, name, state, &reason, None, at);
    }
}

/// The tracked metric per unit of capacity over the minute that just ended.
pub(super) fn per_unit(
    w: &World,
    p: &crate::world::Policy,
    current: u32,
    boundary: f64,
) -> Option<f64> {
    let cfg = p.target_tracking.as_ref()?;
    let start = boundary - 60.0;
    if let Some(custom) = &cfg.customized_metric_specification {
        let text = |k: &str| custom[k].as_str().map(str::to_string);
        let alarm_like = AlarmConfig {
            namespace: text("Namespace"),
            metric_name: text("MetricName"),
            statistic: text("Statistic"),
            dimensions: serde_json::from_value(custom["Dimensions"].clone()).unwrap_or_default(),
            ..AlarmConfig::default()
        };
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
