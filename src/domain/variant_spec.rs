//! The desired zero-scaling configuration of an async-inference endpoint variant: seed 001's
//! step policy and alarm, and the AWS async-inference guide's target tracking on the backlog.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::spec::{validate_spec, Comparison, ScaleFromZero, SpecViolation, Tracking};

/// The step policy and the `HasBacklogWithoutCapacity` alarm that bring an async endpoint back
/// from zero instances. Target tracking on the backlog alone never does: with no instances
/// there is no per-instance backlog (seed 001, pitfall 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BacklogScaleFromZero {
    /// Step policy cooldown, seconds (seed 001: 300).
    #[schema(default = 300, minimum = 0, maximum = 86400)]
    pub cooldown_seconds: u32,
    /// Instances added when the alarm fires (ChangeInCapacity).
    #[schema(default = 1, minimum = 1, maximum = 1000)]
    pub adjustment: u32,
    /// Alarm period, seconds (a multiple of 60).
    #[schema(default = 60, minimum = 60, maximum = 86400)]
    pub period_seconds: u32,
    /// Periods the alarm evaluates (seed 001: 2).
    #[schema(default = 2, minimum = 1)]
    pub evaluation_periods: u32,
    /// Breaching periods (of `evaluation_periods`) that fire the alarm (seed 001: 2).
    #[schema(default = 2, minimum = 1)]
    pub datapoints_to_alarm: u32,
    /// `HasBacklogWithoutCapacity` threshold (Average per period; the metric is 1 while
    /// requests wait with no instance).
    #[schema(default = 1.0, minimum = 0.0)]
    pub threshold: f64,
    /// Comparison operator (seed 001: GreaterThanOrEqualToThreshold).
    #[schema(default = "GreaterThanOrEqualToThreshold")]
    pub comparison: Comparison,
}

impl Default for BacklogScaleFromZero {
    fn default() -> Self {
        Self {
            cooldown_seconds: 300,
            adjustment: 1,
            period_seconds: 60,
            evaluation_periods: 2,
            datapoints_to_alarm: 2,
            threshold: 1.0,
            comparison: Comparison::GreaterThanOrEqualToThreshold,
        }
    }
}

impl BacklogScaleFromZero {
    /// The same settings in the shape the plan uses for every kind.
    pub fn settings(&self) -> ScaleFromZero {
        ScaleFromZero {
            cooldown_seconds: self.cooldown_seconds,
            adjustment: self.adjustment,
            period_seconds: self.period_seconds,
            evaluation_periods: self.evaluation_periods,
            datapoints_to_alarm: self.datapoints_to_alarm,
            threshold: self.threshold,
            comparison: self.comparison,
        }
    }
}

/// Desired scale-to-zero configuration of an async-inference endpoint variant. Every field is
/// optional in requests; the defaults are seed 001's and the AWS async-inference guide's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct VariantSpec {
    /// Most instances scale-out may reach (1-1000). It must fit the account's instance quota
    /// for the variant's instance type. When absent, the job keeps the scalable target's
    /// current MaxCapacity, else the variant's current instance count (at least 1).
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<u32>,
    /// Target of `ApproximateBacklogSizePerInstance` (AWS/SageMaker, EndpointName, Average)
    /// for target tracking: queued requests per instance.
    #[schema(default = 5.0, minimum = 0.0, exclusive_minimum = 0.0)]
    pub target_backlog_per_instance: f64,
    /// Target-tracking scale-in cooldown, seconds.
    #[schema(default = 600, minimum = 0, maximum = 86400)]
    pub scale_in_cooldown_seconds: u32,
    /// Target-tracking scale-out cooldown, seconds.
    #[schema(default = 300, minimum = 0, maximum = 86400)]
    pub scale_out_cooldown_seconds: u32,
    /// The step policy + alarm that scale out of zero.
    pub scale_from_zero: BacklogScaleFromZero,
    /// MinCapacity restored when scale-to-zero is turned off (if zeroscale did not capture
    /// the target's earlier minimum).
    #[schema(default = 1, minimum = 1, maximum = 1000)]
    pub restore_min_capacity: u32,
    /// Business-hours windows of warm instances: each an AWS scheduled action that sets
    /// MinCapacity (instances) on AWS's clock.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<crate::domain::Schedule>,
    /// Instances pinned warm until a time; read-only here: `wake` and `keep-warm` set it, and
    /// an enable keeps the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_warm: Option<crate::domain::KeepWarm>,
    /// Scaling paused until a time; read-only here: `pause` and `resume` set it, and an enable
    /// keeps the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<crate::domain::Pause>,
    /// Labels (Kubernetes rules), e.g. `{"team": "search", "cost_center": "ml-42"}`: they
    /// filter lists, events and reports. Part of the spec: versioned, and replaced as a whole
    /// by an enable.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schema(value_type = std::collections::BTreeMap<String, String>, example = json!({"team": "search"}))]
    pub labels: crate::domain::Labels,
}

impl Default for VariantSpec {
    fn default() -> Self {
        Self {
            max_capacity: None,
            target_backlog_per_instance: 5.0,
            scale_in_cooldown_seconds: 600,
            scale_out_cooldown_seconds: 300,
            scale_from_zero: BacklogScaleFromZero::default(),
            restore_min_capacity: 1,
            schedules: Vec::new(),
            keep_warm: None,
            pause: None,
            labels: Default::default(),
        }
    }
}

impl VariantSpec {
    /// Checks every rule AWS would enforce later (and a few of our own), all at once.
    pub fn validate(&self) -> Result<(), Vec<SpecViolation>> {
        let tracking = Tracking {
            max_capacity: self.max_capacity,
            restore_min_capacity: self.restore_min_capacity,
            target_field: "target_backlog_per_instance",
            target_value: self.target_backlog_per_instance,
            scale_in_cooldown_seconds: self.scale_in_cooldown_seconds,
            scale_out_cooldown_seconds: self.scale_out_cooldown_seconds,
            schedules: &self.schedules,
            keep_warm: self.keep_warm.as_ref(),
            labels: &self.labels,
        };
        validate_spec(tracking, &self.scale_from_zero.settings())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_seed_001s() {
        let spec: VariantSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec, VariantSpec::default());
        let z = &spec.scale_from_zero;
        assert_eq!((z.cooldown_seconds, z.adjustment), (300, 1));
        assert_eq!((z.evaluation_periods, z.datapoints_to_alarm), (2, 2));
        assert_eq!(z.comparison, Comparison::GreaterThanOrEqualToThreshold);
        assert!(spec.validate().is_ok());
    }

    #[test]
    fn a_partial_scale_from_zero_keeps_seed_001s_other_defaults() {
        let spec: VariantSpec =
            serde_json::from_str(r#"{"scale_from_zero": {"threshold": 2}}"#).unwrap();
        assert_eq!(spec.scale_from_zero.threshold, 2.0);
        assert_eq!(spec.scale_from_zero.evaluation_periods, 2);
    }

    #[test]
    fn violations_name_the_variant_fields() {
        let spec: VariantSpec = serde_json::from_value(serde_json::json!({
            "max_capacity": 2, "restore_min_capacity": 3, "target_backlog_per_instance": 0,
            "scale_from_zero": {"datapoints_to_alarm": 3}
        }))
        .unwrap();
        let fields: Vec<String> = spec
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(
            fields,
            [
                "restore_min_capacity",
                "target_backlog_per_instance",
                "scale_from_zero.datapoints_to_alarm"
            ]
        );
    }
}
