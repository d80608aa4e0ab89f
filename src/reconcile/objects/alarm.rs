//! The CloudWatch alarm whose action is the step policy (PutMetricAlarm).

use serde_json::{json, Value};

use crate::domain::ScaleFromZero;

/// The alarm zeroscale puts.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub metric_name: &'static str,
    pub statistic: &'static str,
    pub dimension: (&'static str, String),
    pub settings: ScaleFromZero,
    pub description: String,
}

/// Sets every member zeroscale puts on an alarm builder: PutMetricAlarm's fluent builder in
/// `apply`, and the `MetricAlarm` that DescribeAlarms returns in this file's test (the two
/// builders share member names and types but no trait, hence a macro). `$action` is the step
/// policy's ARN.
macro_rules! put_members {
    ($builder:expr, $alarm:expr, $action:expr) => {{
        use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
        let a: &$crate::reconcile::objects::Alarm = $alarm;
        let z = &a.settings;
        $builder
            .alarm_description(&a.description)
            .metric_name(a.metric_name)
            .namespace("AWS/SageMaker")
            .statistic(Statistic::from(a.statistic))
            .dimensions(
                Dimension::builder()
                    .name(a.dimension.0)
                    .value(&a.dimension.1)
                    .build(),
            )
            .period(z.period_seconds as i32)
            .evaluation_periods(z.evaluation_periods as i32)
            .datapoints_to_alarm(z.datapoints_to_alarm as i32)
            .threshold(z.threshold)
            .comparison_operator(ComparisonOperator::from(z.comparison.as_str()))
            .treat_missing_data("missing")
            .actions_enabled(true)
            .alarm_actions($action)
    }};
}
pub(crate) use put_members;

impl Alarm {
    /// The comparable configuration, without the action: every member PutMetricAlarm takes,
    /// including the ones zeroscale leaves empty (an OK action or a unit added by hand is
    /// drift too). [`read_back`] produces it, plus `AlarmActions`.
    pub fn config(&self) -> Value {
        let z = &self.settings;
        json!({
            "AlarmDescription": self.description,
            "ActionsEnabled": true,
            "OKActions": [],
            "InsufficientDataActions": [],
            "MetricName": self.metric_name,
            "Namespace": "AWS/SageMaker",
            "Statistic": self.statistic,
            "ExtendedStatistic": null,
            "Dimensions": [{"Name": self.dimension.0, "Value": self.dimension.1}],
            "Period": z.period_seconds,
            "Unit": null,
            "EvaluationPeriods": z.evaluation_periods,
            "DatapointsToAlarm": z.datapoints_to_alarm,
            "Threshold": z.threshold,
            "ComparisonOperator": z.comparison.as_str(),
            "TreatMissingData": "missing",
            "EvaluateLowSampleCountPercentile": null,
            "Metrics": 0,
            "ThresholdMetricId": null,
        })
    }

    /// The configuration with its action, as a converged alarm reads back.
    pub fn config_with_action(&self, step_policy_arn: &str) -> Value {
        let mut c = self.config();
        c["AlarmActions"] = json!([step_policy_arn]);
        c
    }
}

/// An alarm as DescribeAlarms returns it, in the shape [`Alarm::config`] produces (plus its
/// actions).
pub fn read_back(a: &aws_sdk_cloudwatch::types::MetricAlarm) -> Value {
    json!({
        "AlarmDescription": a.alarm_description(),
        "ActionsEnabled": a.actions_enabled().unwrap_or(true),
        "OKActions": a.ok_actions(),
        "InsufficientDataActions": a.insufficient_data_actions(),
        "MetricName": a.metric_name(),
        "Namespace": a.namespace(),
        "Statistic": a.statistic().map(|s| s.as_str()),
        "ExtendedStatistic": a.extended_statistic(),
        "Dimensions": super::dimensions_json(a.dimensions().iter().map(|d| (d.name(), d.value()))),
        "Period": a.period(),
        "Unit": a.unit().map(|u| u.as_str()),
        "EvaluationPeriods": a.evaluation_periods(),
        "DatapointsToAlarm": a.datapoints_to_alarm(),
        "Threshold": a.threshold(),
        "ComparisonOperator": a.comparison_operator().map(|c| c.as_str()),
        "TreatMissingData": a.treat_missing_data().unwrap_or("missing"),
        "EvaluateLowSampleCountPercentile": a.evaluate_low_sample_count_percentile(),
        "Metrics": a.metrics().len(),
        "ThresholdMetricId": a.threshold_metric_id(),
        "AlarmActions": a.alarm_actions(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ComponentSpec, VariantSpec};

    #[test]
    fn what_apply_sends_reads_back_as_the_plan_configures_it() {
        let component = Alarm {
            metric_name: "NoCapacityInvocationFailures",
            statistic: "Sum",
            dimension: ("InferenceComponentName", "ic".into()),
            settings: ComponentSpec::default().scale_from_zero,
            description: "zeroscale: component".into(),
        };
        let variant = Alarm {
            metric_name: "HasBacklogWithoutCapacity",
            statistic: "Average",
            dimension: ("EndpointName", "ep".into()),
            settings: VariantSpec::default().scale_from_zero.settings(),
            description: "zeroscale: variant".into(),
        };
        let arn = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x:resource/sagemaker/y:policyName/z";
        for a in [component, variant] {
            let sent =
                put_members!(aws_sdk_cloudwatch::types::MetricAlarm::builder(), &a, arn).build();
            assert_eq!(read_back(&sent), a.config_with_action(arn), "{a:?}");
        }
    }
}
