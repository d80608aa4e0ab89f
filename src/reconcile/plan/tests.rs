//! The plan's decisions, without AWS.

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
        scheduled: Default::default(),
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
    let (steps, _) = plan_disable(&d.names, &converged(&d), (existed, 1, None));
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
    assert!(plan_disable(&d.names, &restored, (existed, 1, None))
        .0
        .is_empty());
    assert!(
        plan_disable(&d.names, &restored, (None, 1, None))
            .0
            .is_empty(),
        "never captured, nothing of ours: not touched"
    );
}

#[test]
fn disable_deregisters_a_target_zeroscale_registered() {
    let d = desired();
    let (steps, warning) =
        plan_disable(&d.names, &converged(&d), (Some(Baseline::Absent), 1, None));
    assert!(matches!(
        steps[..],
        [Step::DeleteAlarm { .. }, Step::DeregisterScalableTarget]
    ));
    assert!(warning.is_none());
    let mut shared = converged(&d);
    shared.foreign_policies = vec!["team (StepScaling)".into()];
    let (steps, warning) = plan_disable(&d.names, &shared, (Some(Baseline::Absent), 1, None));
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
    let (steps, _) = plan_disable(&d.names, &o, (paused, 1, None));
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
    let (steps, _) = plan_disable(&d.names, &unlisted, (Some(Baseline::Absent), 1, None));
    assert_eq!(
        steps.len(),
        3,
        "both policies by name, then deregister: {steps:?}"
    );
    assert_eq!(steps[2], Step::DeregisterScalableTarget);
    assert!(plan_disable(&d.names, &unlisted, (None, 1, None))
        .0
        .is_empty());
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
