//! The desired zero-scaling configuration of an inference component, with seed 000's defaults,
//! and the checks both kinds of spec share.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How the scale-from-zero alarm compares the failure count with its threshold.
///
/// The AWS guide's example uses `GreaterThanThreshold` with threshold 1, which needs *two*
/// failed requests in a period before anything happens; a lone request to an idle component
/// would then fail without ever waking it. zeroscale defaults to `GreaterThanOrEqualToThreshold`
/// so the first failed request starts the scale-out (aws-facts.md, "The AWS doc example alarm").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub enum Comparison {
    /// Fire when the metric is >= threshold (default: the first failed request wakes it).
    #[default]
    GreaterThanOrEqualToThreshold,
    /// Fire when the metric is > threshold (the AWS guide's example).
    GreaterThanThreshold,
}

impl Comparison {
    /// The CloudWatch `ComparisonOperator` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Comparison::GreaterThanThreshold => "GreaterThanThreshold",
        }
    }
}

/// The step policy and alarm that bring a component back from zero copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ScaleFromZero {
    /// Step policy cooldown, seconds.
    #[schema(default = 60, minimum = 0, maximum = 86400)]
    pub cooldown_seconds: u32,
    /// Copies added when the alarm fires (ChangeInCapacity).
    #[schema(default = 1, minimum = 1, maximum = 1000)]
    pub adjustment: u32,
    /// Alarm period, seconds (a multiple of 60: SageMaker metrics are per minute).
    #[schema(default = 60, minimum = 60, maximum = 86400)]
    pub period_seconds: u32,
    /// Periods the alarm evaluates.
    #[schema(default = 1, minimum = 1)]
    pub evaluation_periods: u32,
    /// Breaching periods (of `evaluation_periods`) that fire the alarm.
    #[schema(default = 1, minimum = 1)]
    pub datapoints_to_alarm: u32,
    /// `NoCapacityInvocationFailures` threshold (Sum per period).
    #[schema(default = 1.0, minimum = 0.0)]
    pub threshold: f64,
    /// Comparison operator.
    #[schema(default = "GreaterThanOrEqualToThreshold")]
    pub comparison: Comparison,
}

impl Default for ScaleFromZero {
    fn default() -> Self {
        Self {
            cooldown_seconds: 60,
            adjustment: 1,
            period_seconds: 60,
            evaluation_periods: 1,
            datapoints_to_alarm: 1,
            threshold: 1.0,
            comparison: Comparison::default(),
        }
    }
}

impl ScaleFromZero {
    /// Checks the step policy and alarm settings (CloudWatch's and our own limits).
    pub(super) fn check(&self, errs: &mut Vec<SpecViolation>) {
        let z = self;
        range(
            errs,
            "scale_from_zero.cooldown_seconds",
            z.cooldown_seconds,
            0,
            86_400,
        );
        range(errs, "scale_from_zero.adjustment", z.adjustment, 1, 1000);
        if z.period_seconds == 0 || z.period_seconds % 60 != 0 || z.period_seconds > 86_400 {
            errs.push((
                "scale_from_zero.period_seconds".into(),
                "must be a multiple of 60 up to 86400: SageMaker publishes its metrics per minute"
                    .into(),
            ));
        }
        range(
            errs,
            "scale_from_zero.evaluation_periods",
            z.evaluation_periods,
            1,
            1440,
        );
        if z.datapoints_to_alarm < 1 || z.datapoints_to_alarm > z.evaluation_periods {
            errs.push((
                "scale_from_zero.datapoints_to_alarm".into(),
                format!(
                    "must be between 1 and evaluation_periods ({})",
                    z.evaluation_periods
                ),
            ));
        }
        if u64::from(z.period_seconds) * u64::from(z.evaluation_periods) > 86_400 {
            errs.push((
                "scale_from_zero.evaluation_periods".into(),
                "period_seconds x evaluation_periods must not exceed one day (CloudWatch's limit)"
                    .into(),
            ));
        }
        if !z.threshold.is_finite() || z.threshold < 0.0 {
            errs.push((
                "scale_from_zero.threshold".into(),
                "must be a number >= 0".into(),
            ));
        }
    }
}

/// Desired scale-to-zero configuration of an inference component. Every field is optional in
/// requests; the defaults are seed 000's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ComponentSpec {
    /// Most copies scale-out may reach (1-1000). When absent, the job keeps the scalable
    /// target's current MaxCapacity, else the component's current copy count (at least 1).
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<u32>,
    /// Target of `SageMakerInferenceComponentInvocationsPerCopy` for target tracking.
    #[schema(default = 1.0, minimum = 0.0, exclusive_minimum = 0.0)]
    pub target_invocations_per_copy: f64,
    /// Target-tracking scale-in cooldown, seconds.
    #[schema(default = 300, minimum = 0, maximum = 86400)]
    pub scale_in_cooldown_seconds: u32,
    /// Target-tracking scale-out cooldown, seconds.
    #[schema(default = 300, minimum = 0, maximum = 86400)]
    pub scale_out_cooldown_seconds: u32,
    /// The step policy + alarm that scale out of zero.
    pub scale_from_zero: ScaleFromZero,
    /// MinCapacity restored when scale-to-zero is turned off (if zeroscale did not capture
    /// the target's earlier minimum).
    #[schema(default = 1, minimum = 1, maximum = 1000)]
    pub restore_min_capacity: u32,
    /// Recurring windows of warm copies (AWS scheduled actions setting MinCapacity).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<super::Schedule>,
    /// A keep-warm pin of copies (read-only in an enable's body: `wake` and `keep-warm` set it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_warm: Option<super::KeepWarm>,
    /// A pause (read-only in an enable's body: `pause` and `resume` set it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<super::Pause>,
    /// Labels (Kubernetes rules), e.g. `{"team": "search", "cost_center": "ml-42"}`: they
    /// filter lists, events and reports. Part of the spec: versioned, and replaced as a whole
    /// by an enable.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schema(value_type = std::collections::BTreeMap<String, String>, example = json!({"team": "search"}))]
    pub labels: super::Labels,
}

impl Default for ComponentSpec {
    fn default() -> Self {
        Self {
            max_capacity: None,
            target_invocations_per_copy: 1.0,
            scale_in_cooldown_seconds: 300,
            scale_out_cooldown_seconds: 300,
            scale_from_zero: ScaleFromZero::default(),
            restore_min_capacity: 1,
            schedules: Vec::new(),
            keep_warm: None,
            pause: None,
            labels: Default::default(),
        }
    }
}

/// One rule a spec breaks: the field's path and what is accepted.
pub type SpecViolation = (String, String);

fn range(errs: &mut Vec<SpecViolation>, field: &str, v: u32, lo: u32, hi: u32) {
    if v < lo || v > hi {
        errs.push((
            field.into(),
            format!("must be between {lo} and {hi} (got {v})"),
        ));
    }
}

/// The capacity and target-tracking settings every kind of spec has.
pub(super) struct Tracking<'a> {
    pub max_capacity: Option<u32>,
    pub restore_min_capacity: u32,
    /// The spec's name for the target value (it differs per kind).
    pub target_field: &'static str,
    pub target_value: f64,
    pub scale_in_cooldown_seconds: u32,
    pub scale_out_cooldown_seconds: u32,
    pub schedules: &'a [super::Schedule],
    pub keep_warm: Option<&'a super::KeepWarm>,
    pub labels: &'a super::Labels,
}

/// Every violation of a spec at once: its capacity and target-tracking settings, then its
/// scale-from-zero settings.
pub(super) fn validate_spec(t: Tracking, zero: &ScaleFromZero) -> Result<(), Vec<SpecViolation>> {
    let mut errs = Vec::new();
    super::labels::check(t.labels, &mut errs);
    super::schedule::check(t.schedules, t.max_capacity, &mut errs);
    if let Some(pin) = t.keep_warm {
        range(&mut errs, "keep_warm.copies", pin.copies, 1, 1000);
    }
    let pin = t.keep_warm.filter(|p| p.active(chrono::Utc::now()));
    if let (Some(pin), Some(max)) = (pin, t.max_capacity) {
        if pin.copies > max {
            errs.push((
                "copies".into(),
                format!("must not exceed max_capacity ({max})"),
            ));
        }
    }
    check_tracking(&mut errs, t);
    zero.check(&mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Checks capacity and target-tracking settings (Application Auto Scaling's limits).
fn check_tracking(errs: &mut Vec<SpecViolation>, t: Tracking) {
    if let Some(max) = t.max_capacity {
        range(errs, "max_capacity", max, 1, 1000);
        if t.restore_min_capacity > max {
            errs.push((
                "restore_min_capacity".into(),
                format!("must not exceed max_capacity ({max})"),
            ));
        }
    }
    let v = t.target_value;
    if !v.is_finite() || v <= 0.0 || v > 1e6 {
        errs.push((
            t.target_field.into(),
            "must be a number above 0 and at most 1000000".into(),
        ));
    }
    range(
        errs,
        "scale_in_cooldown_seconds",
        t.scale_in_cooldown_seconds,
        0,
        86_400,
    );
    range(
        errs,
        "scale_out_cooldown_seconds",
        t.scale_out_cooldown_seconds,
        0,
        86_400,
    );
    range(
        errs,
        "restore_min_capacity",
        t.restore_min_capacity,
        1,
        1000,
    );
}

impl ComponentSpec {
    /// Checks every rule AWS would enforce later (and a few of our own), all at once.
    pub fn validate(&self) -> Result<(), Vec<SpecViolation>> {
        let tracking = Tracking {
            max_capacity: self.max_capacity,
            restore_min_capacity: self.restore_min_capacity,
            target_field: "target_invocations_per_copy",
            target_value: self.target_invocations_per_copy,
            scale_in_cooldown_seconds: self.scale_in_cooldown_seconds,
            scale_out_cooldown_seconds: self.scale_out_cooldown_seconds,
            schedules: &self.schedules,
            keep_warm: self.keep_warm.as_ref(),
            labels: &self.labels,
        };
        validate_spec(tracking, &self.scale_from_zero)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_seed_000s_with_the_safer_comparison() {
        let spec: ComponentSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec, ComponentSpec::default());
        assert_eq!(spec.target_invocations_per_copy, 1.0);
        assert_eq!(spec.scale_from_zero.cooldown_seconds, 60);
        assert_eq!(
            spec.scale_from_zero.comparison,
            Comparison::GreaterThanOrEqualToThreshold
        );
        assert!(spec.validate().is_ok());
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let spec: ComponentSpec = serde_json::from_value(serde_json::json!({
            "max_capacity": 0,
            "target_invocations_per_copy": -1.0,
            "scale_from_zero": {"period_seconds": 45, "evaluation_periods": 2, "datapoints_to_alarm": 3}
        }))
        .unwrap();
        let errs = spec.validate().unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"max_capacity"));
        assert!(fields.contains(&"target_invocations_per_copy"));
        assert!(fields.contains(&"scale_from_zero.period_seconds"));
        assert!(fields.contains(&"scale_from_zero.datapoints_to_alarm"));
    }

    #[test]
    fn a_pin_in_a_body_is_held_to_its_schema_even_though_an_enable_ignores_it() {
        let spec: ComponentSpec = serde_json::from_value(serde_json::json!({
            "keep_warm": {"until": "2000-01-01T00:00:00Z", "copies": 2147483648u64, "by": ""}
        }))
        .unwrap();
        let errs = spec.validate().unwrap_err();
        assert_eq!(errs[0].0, "keep_warm.copies");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<ComponentSpec>(r#"{"max_capacty": 3}"#).is_err());
    }
}
