//! The simulation's rules, on a frozen clock.

use serde_json::json;

use super::scaling::step_scale;
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
    // registered a moment ago; eventual consistency has its own tests (tests/it/sandbox.rs).
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
    bigger.step.as_mut().unwrap().step_adjustments[0].scaling_adjustment = Some(3);
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

#[test]
fn a_scale_out_without_capacity_runs_then_fails_in_sagemakers_words() {
    let mut w = world();
    w.settings.provisioning_delay_seconds = 120.0;
    w.settings
        .insufficient_capacity
        .insert("ml.g5.xlarge".into());
    let arn = step_policy(&mut w, 1, 0);
    let policy = w.policies.values().find(|p| p.arn == arn).cloned().unwrap();
    let now = w.now();
    step_scale(&mut w, &policy, 1.0, "test", now);
    assert_eq!(instances(&w), 1, "no capacity was added");
    let last = w.activities.last().unwrap().clone();
    assert_eq!((last.status.as_str(), last.end), ("Failed", now + 120.0));
    assert!(
        last.message
            .contains("Unable to provision requested ML compute capacity"),
        "{}",
        last.message
    );
    assert_eq!(w.endpoints["ep"].status, "Updating", "SageMaker tried");
    advance(&mut w, 121.0);
    assert_eq!(
        (w.endpoints["ep"].status.as_str(), instances(&w)),
        ("InService", 1)
    );
}

#[test]
fn a_threshold_evaluation_leaves_its_datapoints_in_state_reason_data() {
    let mut w = world();
    alarm(&mut w, "a", "notBreaching", 1, 1);
    let now = w.now();
    w.put_metric("T", "m", &[], now + 5.0, 3.0);
    advance(&mut w, 61.0);
    let a = &w.alarms["a"];
    assert_eq!(a.state, "ALARM");
    let data: serde_json::Value = serde_json::from_str(a.reason_data.as_deref().unwrap()).unwrap();
    let point = &data["evaluatedDatapoints"][0];
    assert_eq!(point["value"], 3.0);
    let at = chrono::DateTime::parse_from_str(
        point["timestamp"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S%.3f%z",
    )
    .unwrap();
    assert!(
        at.timestamp() as f64 <= now + 5.0 && now + 5.0 < at.timestamp() as f64 + 60.0,
        "{data}"
    );
}
