//! The target-tracking policy (PutScalingPolicy, TargetTrackingScaling).

use aws_sdk_applicationautoscaling::{
    error::BuildError,
    types::{
        CustomizedMetricSpecification, MetricDimension, MetricStatistic, MetricType,
        PredefinedMetricSpecification, TargetTrackingScalingPolicyConfiguration as Config,
    },
};
use serde_json::{json, Value};

/// The metric a target-tracking policy follows.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackedMetric {
    /// A predefined metric type (components: `SageMakerInferenceComponentInvocationsPerCopy`).
    Predefined(&'static str),
    /// A customized CloudWatch metric (async endpoints: `ApproximateBacklogSizePerInstance`).
    Customized {
        metric_name: &'static str,
        namespace: &'static str,
        dimension: (&'static str, String),
        statistic: &'static str,
    },
}

/// The target-tracking policy zeroscale puts.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTracking {
    pub target_value: f64,
    pub metric: TrackedMetric,
    pub scale_in_cooldown: u32,
    pub scale_out_cooldown: u32,
}

impl TargetTracking {
    /// The comparable configuration, in the shape [`read_back`] produces.
    pub fn config(&self) -> Value {
        // Every member zeroscale sets or leaves at its default, so that an edit to any of them
        // is drift (aws-facts.md, "Alarm actions"; the alarm's promise "edits are reverted").
        let mut c = json!({
            "TargetValue": self.target_value,
            "ScaleInCooldown": self.scale_in_cooldown,
            "ScaleOutCooldown": self.scale_out_cooldown,
            "DisableScaleIn": false,
        });
        match &self.metric {
            TrackedMetric::Predefined(t) => {
                c["PredefinedMetricSpecification"] =
                    json!({ "PredefinedMetricType": t, "ResourceLabel": null });
            }
            TrackedMetric::Customized {
                metric_name,
                namespace,
                dimension,
                statistic,
            } => {
                c["CustomizedMetricSpecification"] = json!({
                    "MetricName": metric_name,
                    "Namespace": namespace,
                    "Dimensions": [{"Name": dimension.0, "Value": dimension.1}],
                    "Statistic": statistic,
                    "Unit": null,
                    "Metrics": 0,
                });
            }
        }
        c
    }

    /// What `apply` sends as TargetTrackingScalingPolicyConfiguration.
    pub fn to_sdk(&self) -> Result<Config, BuildError> {
        let cfg = Config::builder()
            .target_value(self.target_value)
            .scale_in_cooldown(self.scale_in_cooldown as i32)
            .scale_out_cooldown(self.scale_out_cooldown as i32);
        let cfg = match &self.metric {
            TrackedMetric::Predefined(kind) => cfg.predefined_metric_specification(
                PredefinedMetricSpecification::builder()
                    .predefined_metric_type(MetricType::from(*kind))
                    .build()?,
            ),
            TrackedMetric::Customized {
                metric_name,
                namespace,
                dimension,
                statistic,
            } => cfg.customized_metric_specification(
                CustomizedMetricSpecification::builder()
                    .metric_name(*metric_name)
                    .namespace(*namespace)
                    .dimensions(
                        MetricDimension::builder()
                            .name(dimension.0)
                            .value(&dimension.1)
                            .build()?,
                    )
                    .statistic(MetricStatistic::from(*statistic))
                    .build(),
            ),
        };
        cfg.build()
    }
}

/// A target-tracking configuration as DescribeScalingPolicies returns it, in the shape
/// [`TargetTracking::config`] produces, so the plan can compare them.
pub fn read_back(c: Option<&Config>) -> Value {
    let Some(c) = c else { return json!({}) };
    let mut out = json!({
        "TargetValue": c.target_value(),
        "ScaleInCooldown": c.scale_in_cooldown(),
        "ScaleOutCooldown": c.scale_out_cooldown(),
        "DisableScaleIn": c.disable_scale_in().unwrap_or(false),
    });
    if let Some(m) = c.predefined_metric_specification() {
        out["PredefinedMetricSpecification"] = json!({
            "PredefinedMetricType": m.predefined_metric_type().as_str(),
            "ResourceLabel": m.resource_label(),
        });
    }
    if let Some(m) = c.customized_metric_specification() {
        out["CustomizedMetricSpecification"] = json!({
            "MetricName": m.metric_name(),
            "Namespace": m.namespace(),
            "Dimensions": super::dimensions_json(m.dimensions().iter().map(|d| (Some(d.name()), Some(d.value())))),
            "Statistic": m.statistic().map(|s| s.as_str()),
            "Unit": m.unit(),
            "Metrics": m.metrics().len(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_apply_sends_reads_back_as_the_plan_configures_it() {
        let predefined = TargetTracking {
            target_value: 4.0,
            metric: TrackedMetric::Predefined("SageMakerInferenceComponentInvocationsPerCopy"),
            scale_in_cooldown: 300,
            scale_out_cooldown: 60,
        };
        let customized = TargetTracking {
            target_value: 5.0,
            metric: TrackedMetric::Customized {
                metric_name: "ApproximateBacklogSizePerInstance",
                namespace: "AWS/SageMaker",
                dimension: ("EndpointName", "ep".into()),
                statistic: "Average",
            },
            scale_in_cooldown: 600,
            scale_out_cooldown: 120,
        };
        for t in [predefined, customized] {
            let sent = t.to_sdk().unwrap();
            assert_eq!(read_back(Some(&sent)), t.config(), "{t:?}");
        }
    }
}
