//! The step policy that scales out of zero (PutScalingPolicy, StepScaling): one step, lower
//! bound 0, ChangeInCapacity.

use aws_sdk_applicationautoscaling::{
    error::BuildError,
    types::{
        AdjustmentType, MetricAggregationType, StepAdjustment,
        StepScalingPolicyConfiguration as Config,
    },
};
use serde_json::{json, Value};

/// The step policy zeroscale puts.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPolicy {
    /// `MetricAggregationType`: Maximum for components (seed 000), Average for async (seed 001).
    pub aggregation: &'static str,
    pub cooldown: u32,
    pub adjustment: u32,
}

impl StepPolicy {
    /// The comparable configuration (seed 000's CLI example passes it as a target-tracking
    /// configuration; it is a StepScalingPolicyConfiguration), in the shape [`read_back`]
    /// produces.
    pub fn config(&self) -> Value {
        json!({
            "AdjustmentType": "ChangeInCapacity",
            "MetricAggregationType": self.aggregation,
            "Cooldown": self.cooldown,
            "MinAdjustmentMagnitude": null,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": null, "ScalingAdjustment": self.adjustment}],
        })
    }

    /// What `apply` sends as StepScalingPolicyConfiguration.
    pub fn to_sdk(&self) -> Result<Config, BuildError> {
        Ok(Config::builder()
            .adjustment_type(AdjustmentType::ChangeInCapacity)
            .metric_aggregation_type(MetricAggregationType::from(self.aggregation))
            .cooldown(self.cooldown as i32)
            .step_adjustments(
                StepAdjustment::builder()
                    .metric_interval_lower_bound(0.0)
                    .scaling_adjustment(self.adjustment as i32)
                    .build()?,
            )
            .build())
    }
}

/// A step configuration as DescribeScalingPolicies returns it, in the shape
/// [`StepPolicy::config`] produces.
pub fn read_back(c: Option<&Config>) -> Value {
    let steps: Vec<Value> = c
        .map(|c| c.step_adjustments())
        .unwrap_or_default()
        .iter()
        .map(|s| {
            json!({
                "MetricIntervalLowerBound": s.metric_interval_lower_bound(),
                "MetricIntervalUpperBound": s.metric_interval_upper_bound(),
                "ScalingAdjustment": s.scaling_adjustment(),
            })
        })
        .collect();
    json!({
        "AdjustmentType": c.and_then(|c| c.adjustment_type()).map(|a| a.as_str()),
        "MetricAggregationType": c.and_then(|c| c.metric_aggregation_type()).map(|a| a.as_str()),
        "Cooldown": c.and_then(|c| c.cooldown()),
        "MinAdjustmentMagnitude": c.and_then(|c| c.min_adjustment_magnitude()),
        "StepAdjustments": steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_apply_sends_reads_back_as_the_plan_configures_it() {
        for (aggregation, cooldown, adjustment) in [("Maximum", 60, 1), ("Average", 300, 2)] {
            let p = StepPolicy {
                aggregation,
                cooldown,
                adjustment,
            };
            assert_eq!(read_back(Some(&p.to_sdk().unwrap())), p.config(), "{p:?}");
        }
    }
}
