//! The plan: the minimal AWS writes that take what was observed to what is desired. Pure
//! functions, no I/O, so "what AWS calls does enabling make?" is answered here.

use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::{names::OwnedNames, ComponentSpec};

/// What AWS should hold for one component.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub names: OwnedNames,
    pub component: String,
    pub max_capacity: i32,
    pub spec: ComponentSpec,
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

/// What AWS holds now for the component's objects.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observed {
    /// (MinCapacity, MaxCapacity) of the scalable target.
    pub target: Option<(i32, i32)>,
    pub target_tracking: Option<ObservedPolicy>,
    pub step: Option<ObservedPolicy>,
    pub alarm: Option<ObservedAlarm>,
    /// Policies on the target that zeroscale did not create.
    pub foreign_policies: Vec<String>,
}

/// One AWS write.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "call")]
pub enum Step {
    /// RegisterScalableTarget with these capacities.
    RegisterScalableTarget {
        min_capacity: i32,
        max_capacity: i32,
    },
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

/// The target-tracking configuration (seed 000's config.json, with the spec's values).
pub fn target_tracking_config(spec: &ComponentSpec) -> Value {
    json!({
        "TargetValue": spec.target_invocations_per_copy,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"},
        "ScaleInCooldown": spec.scale_in_cooldown_seconds,
        "ScaleOutCooldown": spec.scale_out_cooldown_seconds,
    })
}

/// The step configuration that brings a component out of zero (seed 000, with the CLI typo
/// fixed: this is a StepScalingPolicyConfiguration).
pub fn step_config(spec: &ComponentSpec) -> Value {
    json!({
        "AdjustmentType": "ChangeInCapacity",
        "MetricAggregationType": "Maximum",
        "Cooldown": spec.scale_from_zero.cooldown_seconds,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": spec.scale_from_zero.adjustment}],
    })
}

/// The alarm on NoCapacityInvocationFailures (seed 000), without its action.
pub fn alarm_config(d: &Desired) -> Value {
    let z = &d.spec.scale_from_zero;
    json!({
        "MetricName": "NoCapacityInvocationFailures",
        "Namespace": "AWS/SageMaker",
        "Statistic": "Sum",
        "Dimensions": [{"Name": "InferenceComponentName", "Value": d.component}],
        "Period": z.period_seconds,
        "EvaluationPeriods": z.evaluation_periods,
        "DatapointsToAlarm": z.datapoints_to_alarm,
        "Threshold": z.threshold,
        "ComparisonOperator": z.comparison.as_str(),
        "TreatMissingData": "missing",
    })
}

/// The writes that enable scale-to-zero, in order; nothing already as desired is written again,
/// and a changed step-policy ARN re-puts the alarm.
pub fn plan_enable(d: &Desired, o: &Observed) -> Vec<Step> {
    let mut steps = Vec::new();
    if o.target != Some((0, d.max_capacity)) {
        steps.push(Step::RegisterScalableTarget {
            min_capacity: 0,
            max_capacity: d.max_capacity,
        });
    }
    let tt = target_tracking_config(&d.spec);
    if o.target_tracking.as_ref().map(|p| &p.config) != Some(&tt) {
        steps.push(Step::PutTargetTrackingPolicy {
            policy_name: d.names.target_tracking_policy.clone(),
            configuration: tt,
        });
    }
    let step = step_config(&d.spec);
    let step_changes = o.step.as_ref().map(|p| &p.config) != Some(&step);
    if step_changes {
        steps.push(Step::PutStepScalingPolicy {
            policy_name: d.names.step_policy.clone(),
            configuration: step,
        });
    }
    let mut alarm = alarm_config(d);
    if let Some(arn) = o.step.as_ref().map(|p| p.arn.clone()) {
        alarm["AlarmActions"] = json!([arn]);
    }
    if step_changes || o.alarm.as_ref().map(|a| &a.config) != Some(&alarm) {
        steps.push(Step::PutMetricAlarm {
            alarm_name: d.names.alarm.clone(),
            configuration: alarm,
        });
    }
    steps
}

/// The writes that turn scale-to-zero off: our alarm, our policies, then the target back to the
/// capacity it had before zeroscale (or `restore_min`). Objects zeroscale did not create are
/// never touched; AWS's own `TargetTracking-*` alarms go with their policy, by AWS.
pub fn plan_disable(names: &OwnedNames, o: &Observed, restore: (i32, i32)) -> Vec<Step> {
    let mut steps = Vec::new();
    if o.alarm.is_some() {
        steps.push(Step::DeleteAlarm {
            alarm_name: names.alarm.clone(),
        });
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
    if let Some(current) = o.target {
        if current != restore {
            steps.push(Step::RegisterScalableTarget {
                min_capacity: restore.0,
                max_capacity: restore.1,
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ComponentName, TargetRef};

    fn desired() -> Desired {
        let target = TargetRef::Component(ComponentName::parse("ic").unwrap());
        Desired {
            names: target.owned_names(),
            component: "ic".into(),
            max_capacity: 4,
            spec: ComponentSpec::default(),
        }
    }

    fn converged(d: &Desired) -> Observed {
        let mut alarm = alarm_config(d);
        alarm["AlarmActions"] = json!(["arn:step"]);
        Observed {
            target: Some((0, 4)),
            target_tracking: Some(ObservedPolicy {
                arn: "arn:tt".into(),
                config: target_tracking_config(&d.spec),
            }),
            step: Some(ObservedPolicy {
                arn: "arn:step".into(),
                config: step_config(&d.spec),
            }),
            alarm: Some(ObservedAlarm { config: alarm }),
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
        let steps = plan_disable(&d.names, &converged(&d), (1, 4));
        assert_eq!(steps.len(), 4);
        assert_eq!(
            steps[3],
            Step::RegisterScalableTarget {
                min_capacity: 1,
                max_capacity: 4
            }
        );
        assert!(plan_disable(
            &d.names,
            &Observed {
                target: Some((1, 4)),
                ..Default::default()
            },
            (1, 4)
        )
        .is_empty());
    }
}
