//! A metric alarm's configuration, typed: what PutMetricAlarm takes and DescribeAlarms returns.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A metric alarm's configuration as PutMetricAlarm takes it (less its tags) and DescribeAlarms
/// returns it: the action lists and dimensions are always listed, other members left out stay
/// out. Members the simulation never reads (metric math, units, percentiles, ...) are kept as
/// sent in `other`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmConfig {
    pub alarm_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_description: Option<String>,
    #[serde(default = "enabled")]
    pub actions_enabled: bool,
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    #[serde(default, rename = "OKActions")]
    pub ok_actions: Vec<String>,
    #[serde(default)]
    pub insufficient_data_actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default)]
    pub evaluation_periods: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datapoints_to_alarm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub comparison_operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treat_missing_data: Option<String>,
    /// Every other member, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn enabled() -> bool {
    true
}

impl Default for AlarmConfig {
    /// What PutMetricAlarm makes of a request that names the alarm only: its defaults (actions
    /// enabled), not Rust's.
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({"AlarmName": ""}))
            .expect("an alarm name alone is a configuration")
    }
}

/// A metric dimension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

impl AlarmConfig {
    /// The period in seconds (60 when not given: a metric-math alarm's periods are in its
    /// queries).
    pub fn period_seconds(&self) -> f64 {
        self.period.map_or(60.0, |p| p as f64).max(10.0)
    }

    /// How many of the evaluated periods must breach (DatapointsToAlarm, else all of them).
    pub fn datapoints(&self) -> u64 {
        self.datapoints_to_alarm
            .unwrap_or(self.evaluation_periods)
            .max(1)
    }

    /// Whether `value` breaches the threshold.
    pub fn breaches(&self, value: f64) -> bool {
        let t = self.threshold.unwrap_or(0.0);
        match self.comparison_operator.as_str() {
            "GreaterThanOrEqualToThreshold" => value >= t,
            "GreaterThanThreshold" => value > t,
            "LessThanThreshold" => value < t,
            _ => value <= t,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn what_put_metric_alarm_takes_reads_back_with_the_lists_always_there() {
        let sent = json!({
            "AlarmName": "a", "MetricName": "m", "Namespace": "n", "Statistic": "Sum",
            "Period": 60, "EvaluationPeriods": 1, "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanThreshold", "Unit": "Count",
            "OKActions": ["arn:ok"],
        });
        let config: AlarmConfig = serde_json::from_value(sent).unwrap();
        assert!(config.actions_enabled);
        assert!(AlarmConfig::default().actions_enabled);
        assert_eq!(AlarmConfig::default().datapoints(), 1);
        assert_eq!(config.ok_actions, ["arn:ok"]);
        let back = serde_json::to_value(&config).unwrap();
        assert_eq!(back["Unit"], "Count");
        assert_eq!(back["AlarmActions"], json!([]));
        assert_eq!(back["Dimensions"], json!([]));
        assert_eq!(back["OKActions"], json!(["arn:ok"]));
        assert!(back.get("DatapointsToAlarm").is_none());
        assert!(back.get("TreatMissingData").is_none());
    }
}
