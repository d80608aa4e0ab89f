//! The plan: the minimal AWS writes that take what was observed to what is desired. Pure
//! functions, no I/O, so "what AWS calls does enabling make?" is answered here.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

pub use super::objects::{
    Alarm, ObservedTarget, ScheduledAction, StepPolicy, Suspended, TargetTracking, TrackedMetric,
};
use crate::domain::{OwnedNames, TargetRef, TargetSpec};

mod baseline;
mod disable;
#[cfg(test)]
mod tests;
pub mod timed;

pub use baseline::Baseline;
pub use disable::plan_disable;
pub use timed::Floor;

/// What AWS should hold for one target. Built by [`desired_for`], the one place where the two
/// kinds differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub names: OwnedNames,
    pub max_capacity: i32,
    pub target_tracking: TargetTracking,
    pub step: StepPolicy,
    pub alarm: Alarm,
    /// The MinCapacity the schedules and a keep-warm pin hold (0 without them).
    pub floor: Floor,
    /// Scaling suspended (a pause).
    pub paused: bool,
    /// Our scheduled actions: the schedules' and a pin's end.
    pub scheduled: Vec<ScheduledAction>,
    /// The SuspendedState the target had when zeroscale paused it (the last run recorded it):
    /// what resuming gives back, scale-out and, with our scheduled actions, scheduled scaling
    /// resumed. None: nothing recorded, what is there now is kept likewise.
    pub before_pause: Option<Suspended>,
}

/// The desired AWS objects of `target` under `spec` now, with `max_capacity` already resolved.
/// Errs only when the spec was read for another kind of target.
pub fn desired_for(
    target: &TargetRef,
    spec: &TargetSpec,
    max_capacity: i32,
) -> Result<Desired, String> {
    desired_at(target, spec, max_capacity, chrono::Utc::now())
}

/// [`desired_for`] at `now`.
pub fn desired_at(
    target: &TargetRef,
    spec: &TargetSpec,
    max_capacity: i32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Desired, String> {
    // What differs by kind: the tracked value and metric, the step policy's aggregation and
    // the alarm's metric, statistic, dimension and words; the rest is shared.
    let (target_value, metric, cooldowns, zero, aggregation, alarm) = match (target, spec) {
        // Seed 000: invocations per copy; a request at zero copies is a
        // NoCapacityInvocationFailures datapoint (Sum), and one is enough to wake it.
        (TargetRef::Component(ic), TargetSpec::Component(s)) => (
            s.target_invocations_per_copy,
            TrackedMetric::Predefined("SageMakerInferenceComponentInvocationsPerCopy"),
            (s.scale_in_cooldown_seconds, s.scale_out_cooldown_seconds),
            s.scale_from_zero.clone(),
            "Maximum",
            (
                "NoCapacityInvocationFailures",
                "Sum",
                ("InferenceComponentName", ic.to_string()),
                format!("scale inference component {ic} out of zero copies"),
            ),
        ),
        // Seed 001 and the AWS async-inference guide: backlog per instance for target
        // tracking; HasBacklogWithoutCapacity (Average, 2 of 2) fires the step policy. Both
        // metrics are per endpoint (dimension EndpointName).
        (TargetRef::EndpointVariant { endpoint, variant }, TargetSpec::Variant(s)) => (
            s.target_backlog_per_instance,
            TrackedMetric::Customized {
                metric_name: "ApproximateBacklogSizePerInstance",
                namespace: "AWS/SageMaker",
                dimension: ("EndpointName", endpoint.to_string()),
                statistic: "Average",
            },
            (s.scale_in_cooldown_seconds, s.scale_out_cooldown_seconds),
            s.scale_from_zero.settings(),
            "Average",
            (
                "HasBacklogWithoutCapacity",
                "Average",
                ("EndpointName", endpoint.to_string()),
                format!(
                    "scale variant {variant} of async endpoint {endpoint} out of zero instances"
                ),
            ),
        ),
        _ => {
            return Err(format!(
                "the stored spec of {target} is of another target kind"
            ))
        }
    };
    let (metric_name, statistic, dimension, purpose) = alarm;
    let (floor, paused, scheduled) = timed::at(spec, now);
    Ok(Desired {
        floor,
        paused,
        scheduled,
        before_pause: None,
        names: target.owned_names(),
        max_capacity,
        target_tracking: TargetTracking {
            target_value,
            metric,
            scale_in_cooldown: cooldowns.0,
            scale_out_cooldown: cooldowns.1,
        },
        step: StepPolicy {
            aggregation,
            cooldown: zero.cooldown_seconds,
            adjustment: zero.adjustment,
        },
        alarm: Alarm {
            metric_name,
            statistic,
            dimension,
            settings: zero,
            description: format!("zeroscale: {purpose}. Managed by zeroscale; edits are reverted."),
        },
    })
}

/// A scaling policy as observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedPolicy {
    pub arn: String,
    /// The configuration as AWS returned it (the comparable subset).
    pub config: Value,
}

/// The alarm as observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedAlarm {
    /// The comparable subset of its configuration.
    pub config: Value,
}

/// What AWS holds now for the target's objects.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observed {
    pub target: Option<ObservedTarget>,
    pub target_tracking: Option<ObservedPolicy>,
    pub step: Option<ObservedPolicy>,
    pub alarm: Option<ObservedAlarm>,
    /// This target's alarm under the old, colliding name scheme is still there.
    pub legacy_alarm: bool,
    /// Policies on the target that zeroscale did not create.
    pub foreign_policies: Vec<String>,
    /// Our scheduled actions (by name, comparable configuration), when they were read.
    pub scheduled: BTreeMap<String, Value>,
}

impl Observed {
    /// (MinCapacity, MaxCapacity) of the scalable target, if registered.
    pub fn capacity(&self) -> Option<(i32, i32)> {
        self.target.map(|t| (t.min, t.max))
    }

    /// Whether any object zeroscale names exists.
    pub fn owns_something(&self) -> bool {
        self.target_tracking.is_some()
            || self.step.is_some()
            || self.alarm.is_some()
            || self.legacy_alarm
            || !self.scheduled.is_empty()
    }
}

/// One AWS write.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "call")]
pub enum Step {
    /// RegisterScalableTarget with these capacities (and, to resume a suspended scale-out, the
    /// whole SuspendedState).
    RegisterScalableTarget {
        min_capacity: i32,
        max_capacity: i32,
        #[serde(skip_serializing_if = "Option::is_none")]
        suspended_state: Option<Suspended>,
    },
    /// DeregisterScalableTarget: steps aside from a target zeroscale registered (its policies
    /// go with it).
    DeregisterScalableTarget,
    /// PutScalingPolicy (TargetTrackingScaling).
    PutTargetTrackingPolicy {
        policy_name: String,
        configuration: Value,
    },
    /// PutScalingPolicy (StepScaling).
    PutStepScalingPolicy {
        policy_name: String,
        configuration: Value,
    },
    /// PutMetricAlarm whose action is the step policy's current ARN (filled in at apply time
    /// when the step policy is put in the same run).
    PutMetricAlarm {
        alarm_name: String,
        configuration: Value,
    },
    /// DeleteAlarms (ours only).
    DeleteAlarm { alarm_name: String },
    /// DeleteScalingPolicy (ours only).
    DeleteScalingPolicy { policy_name: String },
    /// PutScheduledAction (a schedule's start or end, or a keep-warm window's end).
    PutScheduledAction {
        scheduled_action_name: String,
        configuration: Value,
    },
    /// DeleteScheduledAction (ours only).
    DeleteScheduledAction { scheduled_action_name: String },
}

/// The writes that enable scale-to-zero, in order; nothing already as desired is written again,
/// and a changed step-policy ARN re-puts the alarm. The registration holds MinCapacity at the
/// floor the schedules and a keep-warm pin ask for (0 without them) and the SuspendedState a
/// pause asks for; without a pause a suspended scale-out is resumed (it keeps the step policy
/// from waking the target). This target's alarm under the old name is deleted once the new one
/// is in place, so there is no moment without an alarm; the scheduled actions come last.
pub fn plan_enable(d: &Desired, o: &Observed) -> Vec<Step> {
    let mut steps = Vec::new();
    let has_actions = !d.scheduled.is_empty();
    let register = match o.target {
        None => Some((
            d.floor.now,
            timed::suspension(&ObservedTarget::default(), d.paused, has_actions, None),
        )),
        Some(t) => {
            let suspended = timed::suspension(&t, d.paused, has_actions, d.before_pause);
            // A pause freezes scaling, MinCapacity included (a schedule's run it skipped is
            // not made up by zeroscale): the run that resumes sets it.
            let min_ok = d.paused || d.floor.accepts(t.min);
            (!min_ok || t.max != d.max_capacity || suspended.is_some()).then(|| {
                let min = if min_ok { t.min } else { d.floor.now };
                (min, suspended)
            })
        }
    };
    if let Some((min_capacity, suspended_state)) = register {
        steps.push(Step::RegisterScalableTarget {
            min_capacity,
            max_capacity: d.max_capacity,
            suspended_state,
        });
    }
    let tt = d.target_tracking.config();
    if o.target_tracking.as_ref().map(|p| &p.config) != Some(&tt) {
        steps.push(Step::PutTargetTrackingPolicy {
            policy_name: d.names.target_tracking_policy.clone(),
            configuration: tt,
        });
    }
    let step = d.step.config();
    let step_changes = o.step.as_ref().map(|p| &p.config) != Some(&step);
    if step_changes {
        steps.push(Step::PutStepScalingPolicy {
            policy_name: d.names.step_policy.clone(),
            configuration: step,
        });
    }
    let mut alarm = d.alarm.config();
    if let Some(arn) = o.step.as_ref().map(|p| p.arn.clone()) {
        alarm["AlarmActions"] = json!([arn]);
    }
    if step_changes || o.alarm.as_ref().map(|a| &a.config) != Some(&alarm) {
        steps.push(Step::PutMetricAlarm {
            alarm_name: d.names.alarm.clone(),
            configuration: alarm,
        });
    }
    if o.legacy_alarm {
        steps.push(Step::DeleteAlarm {
            alarm_name: d.names.legacy_alarm.clone(),
        });
    }
    steps.extend(timed::scheduled_steps(&d.scheduled, &o.scheduled));
    steps
}
