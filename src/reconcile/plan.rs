//! The plan: the minimal AWS writes that take what was observed to what is desired. Pure
//! functions, no I/O, so "what AWS calls does enabling make?" is answered here.

use serde::Serialize;
use serde_json::{json, Value};

pub use super::objects::{
    Alarm, ObservedTarget, StepPolicy, Suspended, TargetTracking, TrackedMetric,
};
use crate::domain::{OwnedNames, TargetRef, TargetSpec};

/// What AWS should hold for one target. Built by [`desired_for`], the one place where the two
/// kinds differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub names: OwnedNames,
    pub max_capacity: i32,
    pub target_tracking: TargetTracking,
    pub step: StepPolicy,
    pub alarm: Alarm,
}

/// The desired AWS objects of `target` under `spec`, with `max_capacity` already resolved.
/// Errs only when the spec was read for another kind of target.
pub fn desired_for(
    target: &TargetRef,
    spec: &TargetSpec,
    max_capacity: i32,
) -> Result<Desired, String> {
    let names = target.owned_names();
    Ok(match (target, spec) {
        // Seed 000: invocations per copy; a request at zero copies is a
        // NoCapacityInvocationFailures datapoint (Sum), and one is enough to wake it.
        (TargetRef::Component(ic), TargetSpec::Component(s)) => Desired {
            names,
            max_capacity,
            target_tracking: TargetTracking {
                target_value: s.target_invocations_per_copy,
                metric: TrackedMetric::Predefined("SageMakerInferenceComponentInvocationsPerCopy"),
                scale_in_cooldown: s.scale_in_cooldown_seconds,
                scale_out_cooldown: s.scale_out_cooldown_seconds,
            },
            step: StepPolicy {
                aggregation: "Maximum",
                cooldown: s.scale_from_zero.cooldown_seconds,
                adjustment: s.scale_from_zero.adjustment,
            },
            alarm: Alarm {
                metric_name: "NoCapacityInvocationFailures",
                statistic: "Sum",
                dimension: ("InferenceComponentName", ic.to_string()),
                settings: s.scale_from_zero.clone(),
                description: format!("zeroscale: scale inference component {ic} out of zero copies. Managed by zeroscale; edits are reverted."),
            },
        },
        // Seed 001 and the AWS async-inference guide: backlog per instance for target tracking;
        // HasBacklogWithoutCapacity (Average, 2 of 2) fires the step policy. Both metrics are
        // per endpoint (dimension EndpointName).
        (TargetRef::EndpointVariant { endpoint, variant }, TargetSpec::Variant(s)) => Desired {
            names,
            max_capacity,
            target_tracking: TargetTracking {
                target_value: s.target_backlog_per_instance,
                metric: TrackedMetric::Customized {
                    metric_name: "ApproximateBacklogSizePerInstance",
                    namespace: "AWS/SageMaker",
                    dimension: ("EndpointName", endpoint.to_string()),
                    statistic: "Average",
                },
                scale_in_cooldown: s.scale_in_cooldown_seconds,
                scale_out_cooldown: s.scale_out_cooldown_seconds,
            },
            step: StepPolicy {
                aggregation: "Average",
                cooldown: s.scale_from_zero.cooldown_seconds,
                adjustment: s.scale_from_zero.adjustment,
            },
            alarm: Alarm {
                metric_name: "HasBacklogWithoutCapacity",
                statistic: "Average",
                dimension: ("EndpointName", endpoint.to_string()),
                settings: s.scale_from_zero.settings(),
                description: format!("zeroscale: scale variant {variant} of async endpoint {endpoint} out of zero instances. Managed by zeroscale; edits are reverted."),
            },
        },
        _ => return Err(format!("the stored spec of {target} is of another target kind")),
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
    }
}

/// What AWS held for a target before zeroscale's first write to it (issue "Real-AWS
/// behaviour", defect 1). Captured once, durably, before that write, and never from a target
/// that already carries zeroscale's objects; disable restores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// No scalable target: disable deregisters the one zeroscale registered.
    Absent,
    /// A target with these capacities and this SuspendedState (in, out, scheduled): disable
    /// restores them (enable resumes a suspended scale-out, which would keep the target from
    /// waking; the owner's suspension comes back when zeroscale steps aside).
    Existed {
        min: i32,
        max: i32,
        suspended: (bool, bool, bool),
    },
    /// A target already carrying zeroscale's objects (an earlier zeroscale's): what came before
    /// is unknown, so disable restores the spec's `restore_min_capacity`.
    Unknown,
}

impl Baseline {
    /// What `o` says about the state before zeroscale (to be recorded before any write).
    pub fn capture(o: &Observed) -> Self {
        match o.target {
            None => Baseline::Absent,
            Some(_) if o.owns_something() => Baseline::Unknown,
            Some(t) => Baseline::Existed {
                min: t.min,
                max: t.max,
                suspended: (t.suspended_in, t.suspended_out, t.suspended_scheduled),
            },
        }
    }

    /// As stored (migrations/20261130000001_baseline.sql).
    pub fn to_json(self) -> Value {
        match self {
            Baseline::Absent => json!({"existed": false}),
            Baseline::Existed {
                min,
                max,
                suspended,
            } => json!({
                "existed": true, "min": min, "max": max,
                "suspended": {"in": suspended.0, "out": suspended.1, "scheduled": suspended.2},
            }),
            Baseline::Unknown => json!({"existed": true, "unknown": true}),
        }
    }

    /// Reads a stored baseline.
    pub fn from_json(v: &Value) -> Option<Self> {
        match (
            v["existed"].as_bool()?,
            v["min"].as_i64(),
            v["max"].as_i64(),
        ) {
            (false, _, _) => Some(Baseline::Absent),
            (true, Some(min), Some(max)) => {
                let flag = |k: &str| v["suspended"][k].as_bool().unwrap_or(false);
                Some(Baseline::Existed {
                    min: min as i32,
                    max: max as i32,
                    suspended: (flag("in"), flag("out"), flag("scheduled")),
                })
            }
            (true, _, _) => Some(Baseline::Unknown),
        }
    }

    /// The capacities from before zeroscale, when known.
    pub fn capacity(self) -> Option<(i32, i32)> {
        match self {
            Baseline::Existed { min, max, .. } => Some((min, max)),
            _ => None,
        }
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
}

/// The writes that enable scale-to-zero, in order; nothing already as desired is written again,
/// and a changed step-policy ARN re-puts the alarm. A suspended scale-out is resumed (it keeps
/// the step policy from waking the target), and this target's alarm under the old name is
/// deleted once the new one is in place, so there is no moment without an alarm.
pub fn plan_enable(d: &Desired, o: &Observed) -> Vec<Step> {
    let mut steps = Vec::new();
    let target_ok = o
        .target
        .is_some_and(|t| t.min == 0 && t.max == d.max_capacity && !t.suspended_out);
    if !target_ok {
        steps.push(Step::RegisterScalableTarget {
            min_capacity: 0,
            max_capacity: d.max_capacity,
            suspended_state: o
                .target
                .filter(|t| t.suspended_out)
                .map(|t| t.resume_scale_out()),
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
    steps
}

/// The writes that turn scale-to-zero off: our alarms, then our policies and the target as
/// they were before zeroscale (`baseline`): a target zeroscale registered is deregistered (its
/// policies go with it), one that existed is restored to its capacities. Objects zeroscale did
/// not create are never touched; a target zeroscale registered that now carries someone
/// else's policies stays registered (at `restore_min`), with a warning. AWS's own
/// `TargetTracking-*` alarms go with their policy, by AWS.
pub fn plan_disable(
    names: &OwnedNames,
    o: &Observed,
    baseline: Option<Baseline>,
    restore_min: i32,
) -> (Vec<Step>, Option<String>) {
    let mut steps = Vec::new();
    if o.alarm.is_some() {
        steps.push(Step::DeleteAlarm {
            alarm_name: names.alarm.clone(),
        });
    }
    if o.legacy_alarm {
        steps.push(Step::DeleteAlarm {
            alarm_name: names.legacy_alarm.clone(),
        });
    }
    let Some(current) = o.target else {
        // Not listed: gone, or registered a moment ago and not listed yet (registration is
        // eventually consistent). If zeroscale may have written here (a baseline was recorded
        // before its first write), what it may have put is removed by name: deleting something
        // already gone is done (ObjectNotFoundException is tolerated).
        if let Some(b) = baseline {
            steps.push(Step::DeleteScalingPolicy {
                policy_name: names.step_policy.clone(),
            });
            steps.push(Step::DeleteScalingPolicy {
                policy_name: names.target_tracking_policy.clone(),
            });
            if b == Baseline::Absent {
                steps.push(Step::DeregisterScalableTarget);
            }
        }
        return (steps, None);
    };
    // Never captured and nothing of ours there: the target was never touched by zeroscale.
    let baseline = match baseline {
        Some(b) => b,
        None if o.owns_something() => Baseline::Unknown,
        None => return (steps, None),
    };
    let mut warning = None;
    if baseline == Baseline::Absent && o.foreign_policies.is_empty() {
        steps.push(Step::DeregisterScalableTarget);
        return (steps, None);
    }
    if o.step.is_some() {
        steps.push(Step::DeleteScalingPolicy {
            policy_name: names.step_policy.clone(),
        });
    }
    if o.target_tracking.is_some() {
        steps.push(Step::DeleteScalingPolicy {
            policy_name: names.target_tracking_policy.clone(),
        });
    }
    let (restore, suspended) = match baseline {
        Baseline::Existed {
            min,
            max,
            suspended,
        } => ((min, max), Some(suspended)),
        Baseline::Absent | Baseline::Unknown => ((restore_min, current.max.max(restore_min)), None),
    };
    let now = (
        current.suspended_in,
        current.suspended_out,
        current.suspended_scheduled,
    );
    let suspended_state = suspended.filter(|s| *s != now).map(|s| Suspended {
        dynamic_scaling_in_suspended: s.0,
        dynamic_scaling_out_suspended: s.1,
        scheduled_scaling_suspended: s.2,
    });
    if baseline == Baseline::Absent {
        warning = Some(format!(
            "zeroscale registered this scalable target, but policies it did not create are on it ({}): it stays registered (MinCapacity {}) so they keep working. Deregister it yourself to step aside completely (for example before an UpdateEndpoint that changes the instance type)",
            o.foreign_policies.join(", "), restore.0
        ));
    }
    if (current.min, current.max) != restore || suspended_state.is_some() {
        steps.push(Step::RegisterScalableTarget {
            min_capacity: restore.0,
            max_capacity: restore.1,
            suspended_state,
        });
    }
    (steps, warning)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ComponentName, ComponentSpec, EndpointName, VariantName, VariantSpec};

    fn desired() -> Desired {
        let target = TargetRef::Component(ComponentName::parse("ic").unwrap());
        desired_for(&target, &TargetSpec::Component(ComponentSpec::default()), 4).unwrap()
    }

    fn converged(d: &Desired) -> Observed {
        let mut alarm = d.alarm.config();
        alarm["AlarmActions"] = json!(["arn:step"]);
        Observed {
            target: Some(ObservedTarget {
                min: 0,
                max: 4,
                ..Default::default()
            }),
            target_tracking: Some(ObservedPolicy {
                arn: "arn:tt".into(),
                config: d.target_tracking.config(),
            }),
            step: Some(ObservedPolicy {
                arn: "arn:step".into(),
                config: d.step.config(),
            }),
            alarm: Some(ObservedAlarm { config: alarm }),
            legacy_alarm: false,
            foreign_policies: vec![],
        }
    }

    #[test]
    fn from_nothing_all_four_writes_in_order() {
        let steps = plan_enable(&desired(), &Observed::default());
        let calls: Vec<&str> = steps
            .iter()
            .map(|s| match s {
                Step::RegisterScalableTarget { .. } => "register",
                Step::PutTargetTrackingPolicy { .. } => "tt",
                Step::PutStepScalingPolicy { .. } => "step",
                Step::PutMetricAlarm { .. } => "alarm",
                _ => "other",
            })
            .collect();
        assert_eq!(calls, ["register", "tt", "step", "alarm"]);
    }

    #[test]
    fn converged_means_no_writes() {
        let d = desired();
        assert!(plan_enable(&d, &converged(&d)).is_empty());
    }

    #[test]
    fn drifted_alarm_threshold_is_the_only_write() {
        let d = desired();
        let mut o = converged(&d);
        o.alarm.as_mut().unwrap().config["Threshold"] = json!(5.0);
        assert!(matches!(
            plan_enable(&d, &o)[..],
            [Step::PutMetricAlarm { .. }]
        ));
    }

    #[test]
    fn an_alarm_pointing_at_an_old_arn_is_re_put() {
        let d = desired();
        let mut o = converged(&d);
        o.step.as_mut().unwrap().arn = "arn:step-new".into();
        assert!(matches!(
            plan_enable(&d, &o)[..],
            [Step::PutMetricAlarm { .. }]
        ));
    }

    #[test]
    fn disable_removes_ours_and_restores_the_target() {
        let d = desired();
        let existed = Some(Baseline::Existed {
            min: 1,
            max: 4,
            suspended: (false, false, false),
        });
        let (steps, _) = plan_disable(&d.names, &converged(&d), existed, 1);
        assert_eq!(steps.len(), 4);
        assert_eq!(
            steps[3],
            Step::RegisterScalableTarget {
                min_capacity: 1,
                max_capacity: 4,
                suspended_state: None,
            }
        );
        let restored = Observed {
            target: Some(ObservedTarget {
                min: 1,
                max: 4,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(plan_disable(&d.names, &restored, existed, 1).0.is_empty());
        assert!(
            plan_disable(&d.names, &restored, None, 1).0.is_empty(),
            "never captured, nothing of ours: not touched"
        );
    }

    #[test]
    fn disable_deregisters_a_target_zeroscale_registered() {
        let d = desired();
        let (steps, warning) = plan_disable(&d.names, &converged(&d), Some(Baseline::Absent), 1);
        assert!(matches!(
            steps[..],
            [Step::DeleteAlarm { .. }, Step::DeregisterScalableTarget]
        ));
        assert!(warning.is_none());
        let mut shared = converged(&d);
        shared.foreign_policies = vec!["team (StepScaling)".into()];
        let (steps, warning) = plan_disable(&d.names, &shared, Some(Baseline::Absent), 1);
        assert!(!steps.contains(&Step::DeregisterScalableTarget));
        assert!(warning.unwrap().contains("team"));
    }

    #[test]
    fn disable_gives_back_the_owners_suspension() {
        let d = desired();
        let mut o = converged(&d);
        o.target = Some(ObservedTarget {
            min: 0,
            max: 3,
            ..Default::default()
        });
        let paused = Some(Baseline::Existed {
            min: 1,
            max: 3,
            suspended: (false, true, false),
        });
        let (steps, _) = plan_disable(&d.names, &o, paused, 1);
        assert!(matches!(
            steps.last(),
            Some(Step::RegisterScalableTarget { min_capacity: 1, suspended_state: Some(s), .. })
                if s.dynamic_scaling_out_suspended
        ));
    }

    #[test]
    fn a_target_not_listed_yet_is_still_stepped_away_from() {
        let d = desired();
        let unlisted = Observed::default();
        let (steps, _) = plan_disable(&d.names, &unlisted, Some(Baseline::Absent), 1);
        assert_eq!(
            steps.len(),
            3,
            "both policies by name, then deregister: {steps:?}"
        );
        assert_eq!(steps[2], Step::DeregisterScalableTarget);
        assert!(plan_disable(&d.names, &unlisted, None, 1).0.is_empty());
    }

    #[test]
    fn a_baseline_is_never_taken_from_zeroscales_own_target() {
        let d = desired();
        assert_eq!(Baseline::capture(&converged(&d)), Baseline::Unknown);
        assert_eq!(Baseline::capture(&Observed::default()), Baseline::Absent);
        for b in [
            Baseline::Absent,
            Baseline::Unknown,
            Baseline::Existed {
                min: 2,
                max: 3,
                suspended: (false, true, false),
            },
        ] {
            assert_eq!(Baseline::from_json(&b.to_json()), Some(b));
        }
    }

    #[test]
    fn suspended_scale_out_is_resumed_and_an_old_alarm_moved_after_the_new_one() {
        let d = desired();
        let mut o = converged(&d);
        o.target.as_mut().unwrap().suspended_out = true;
        o.legacy_alarm = true;
        let steps = plan_enable(&d, &o);
        assert!(matches!(
            &steps[..],
            [Step::RegisterScalableTarget { suspended_state: Some(s), .. }, Step::DeleteAlarm { alarm_name }]
                if !s.dynamic_scaling_out_suspended && *alarm_name == d.names.legacy_alarm
        ));
        o.alarm.as_mut().unwrap().config["ActionsEnabled"] = json!(false);
        assert!(plan_enable(&d, &o)
            .iter()
            .any(|s| matches!(s, Step::PutMetricAlarm { .. })));
    }

    #[test]
    fn async_variants_get_seed_001s_metric_aggregation_and_alarm() {
        let target = TargetRef::EndpointVariant {
            endpoint: EndpointName::parse("ep").unwrap(),
            variant: VariantName::parse("AllTraffic").unwrap(),
        };
        let d = desired_for(&target, &TargetSpec::Variant(VariantSpec::default()), 4).unwrap();
        let tt = d.target_tracking.config();
        assert_eq!(
            tt["CustomizedMetricSpecification"]["MetricName"],
            "ApproximateBacklogSizePerInstance"
        );
        assert!(tt.get("PredefinedMetricSpecification").is_none());
        assert_eq!(d.step.config()["MetricAggregationType"], "Average");
        let alarm = d.alarm.config();
        assert_eq!(alarm["MetricName"], "HasBacklogWithoutCapacity");
        assert_eq!(alarm["Dimensions"][0]["Name"], "EndpointName");
        assert_eq!(
            (
                alarm["EvaluationPeriods"].as_u64(),
                alarm["DatapointsToAlarm"].as_u64()
            ),
            (Some(2), Some(2))
        );
    }
}
