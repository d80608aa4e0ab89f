//! CloudWatch: metric alarms and metric data. One model, served over both AWS JSON 1.0 (the aws
//! CLI) and Smithy RPC v2 CBOR (the Rust SDK).

use serde_json::{json, Map, Value};

use super::{
    params::{check_enum, opt_str, req_str, str_list},
    protocol::{ts, AwsError},
    world::{arn, Alarm, World},
};

/// Runs one CloudWatch operation.
pub fn handle(w: &mut World, op: &str, p: &Value) -> Result<Value, AwsError> {
    match op {
        "PutMetricAlarm" => put_alarm(w, p),
        "DescribeAlarms" => describe_alarms(w, p),
        "DeleteAlarms" => delete_alarms(w, p),
        "SetAlarmState" => set_state(w, p),
        "PutMetricData" => put_data(w, p),
        "DescribeAlarmHistory" => history(w, p),
        other => Err(AwsError::client(
            "InvalidAction",
            format!("the sandbox does not implement CloudWatch {other}"),
        )),
    }
}

const COMPARISONS: [&str; 4] = [
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
];

fn validate_alarm(p: &Value) -> Result<(), AwsError> {
    req_str(p, "AlarmName")?;
    if p.get("Metrics").is_none() {
        req_str(p, "MetricName")?;
        req_str(p, "Namespace")?;
        match (opt_str(p, "Statistic"), opt_str(p, "ExtendedStatistic")) {
            (Some(s), _) => check_enum(
                "Statistic",
                &s,
                &["SampleCount", "Average", "Sum", "Minimum", "Maximum"],
            )?,
            (None, Some(_)) => {}
            (None, None) => {
                return Err(AwsError::validation(
                    "Statistic or ExtendedStatistic is required",
                ))
            }
        }
    }
    let period = p
        .get("Period")
        .and_then(Value::as_u64)
        .ok_or_else(|| AwsError::validation("Period is required"))?;
    if !(matches!(period, 10 | 20 | 30) || (period >= 60 && period % 60 == 0)) {
        return Err(AwsError::validation(format!(
            "Period ({period}) must be 10, 20, 30 or a multiple of 60"
        )));
    }
    let evaluations = p
        .get("EvaluationPeriods")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if evaluations < 1 {
        return Err(AwsError::validation("EvaluationPeriods must be at least 1"));
    }
    if period * evaluations > 86_400 {
        return Err(AwsError::validation(
            "The product of Period and EvaluationPeriods must not exceed 86400 seconds (one day)",
        ));
    }
    if let Some(d) = p.get("DatapointsToAlarm").and_then(Value::as_u64) {
        if d < 1 || d > evaluations {
            return Err(AwsError::validation(
                "DatapointsToAlarm must be between 1 and EvaluationPeriods",
            ));
        }
    }
    if p.get("Threshold").and_then(Value::as_f64).is_none() {
        return Err(AwsError::validation("Threshold is required"));
    }
    check_enum(
        "ComparisonOperator",
        &req_str(p, "ComparisonOperator")?,
        &COMPARISONS,
    )?;
    if let Some(t) = opt_str(p, "TreatMissingData") {
        check_enum(
            "TreatMissingData",
            &t,
            &["breaching", "notBreaching", "ignore", "missing"],
        )?;
    }
    Ok(())
}

fn put_alarm(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    validate_alarm(p)?;
    let name = req_str(p, "AlarmName")?;
    let now = w.now();
    // PutMetricAlarm overwrites the whole configuration and keeps the state.
    let mut config: Map<String, Value> = p.as_object().cloned().unwrap_or_default();
    config.remove("Tags");
    match w.alarms.get_mut(&name) {
        Some(a) => {
            a.config = Value::Object(config);
            a.config_updated = now;
        }
        None => {
            w.alarms.insert(
                name.clone(),
                Alarm {
                    arn: arn("cloudwatch", &format!("alarm:{name}")),
                    name,
                    config: Value::Object(config),
                    state: "INSUFFICIENT_DATA".into(),
                    reason: "Unchecked: Initial alarm creation".into(),
                    updated: now,
                    config_updated: now,
                    history: Vec::new(),
                    aws_owned: false,
                },
            );
        }
    }
    Ok(json!({}))
}

/// DescribeAlarms' view of one alarm.
pub fn alarm_view(a: &Alarm) -> Value {
    let mut out = a.config.as_object().cloned().unwrap_or_default();
    let defaults = [
        ("ActionsEnabled", json!(true)),
        ("AlarmActions", json!([])),
        ("OKActions", json!([])),
        ("InsufficientDataActions", json!([])),
        ("Dimensions", json!([])),
    ];
    for (k, v) in defaults {
        out.entry(k).or_insert(v);
    }
    out.insert("AlarmArn".into(), json!(a.arn));
    out.insert("StateValue".into(), json!(a.state));
    out.insert("StateReason".into(), json!(a.reason));
    out.insert("StateUpdatedTimestamp".into(), ts(a.updated));
    out.insert(
        "AlarmConfigurationUpdatedTimestamp".into(),
        ts(a.config_updated),
    );
    Value::Object(out)
}

fn describe_alarms(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let names = str_list(p, "AlarmNames");
    let prefix = opt_str(p, "AlarmNamePrefix");
    let state = opt_str(p, "StateValue");
    let items: Vec<Value> = w
        .alarms
        .values()
        .filter(|a| names.is_empty() || names.contains(&a.name))
        .filter(|a| {
            prefix
                .as_ref()
                .is_none_or(|x| a.name.starts_with(x.as_str()))
        })
        .filter(|a| state.as_ref().is_none_or(|s| &a.state == s))
        .map(alarm_view)
        .collect();
    Ok(json!({"MetricAlarms": items, "CompositeAlarms": []}))
}

fn delete_alarms(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let names = str_list(p, "AlarmNames");
    if let Some(missing) = names.iter().find(|n| !w.alarms.contains_key(n.as_str())) {
        return Err(AwsError::client(
            "ResourceNotFound",
            format!("Alarm {missing} does not exist"),
        ));
    }
    for n in names {
        w.alarms.remove(&n);
    }
    Ok(json!({}))
}

fn set_state(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "AlarmName")?;
    let state = req_str(p, "StateValue")?;
    check_enum("StateValue", &state, &["OK", "ALARM", "INSUFFICIENT_DATA"])?;
    let reason = req_str(p, "StateReason")?;
    if !w.alarms.contains_key(&name) {
        return Err(AwsError::client(
            "ResourceNotFound",
            format!("Alarm {name} does not exist"),
        ));
    }
    let now = w.now();
    let entering_alarm =
        state == "ALARM" && w.alarms.get(&name).is_some_and(|a| a.state != "ALARM");
    super::sim::transition(w, &name, &state, &reason, now);
    // As on AWS, a state set by hand runs the actions of the state it enters.
    if entering_alarm {
        let threshold = w
            .alarms
            .get(&name)
            .and_then(|a| a.config["Threshold"].as_f64())
            .unwrap_or(0.0);
        super::sim::run_actions(w, &name, threshold, now);
    }
    Ok(json!({}))
}

fn put_data(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let namespace = req_str(p, "Namespace")?;
    if namespace.starts_with("AWS/") {
        return Err(AwsError::client("InvalidParameterValue", "The value AWS/ for parameter Namespace is invalid: namespaces starting with AWS/ are reserved"));
    }
    let now = w.now();
    for d in p
        .get("MetricData")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let metric = req_str(d, "MetricName")?;
        let dims: Vec<(String, String)> = d
            .get("Dimensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| {
                Some((
                    x.get("Name")?.as_str()?.to_string(),
                    x.get("Value")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let at = d.get("Timestamp").and_then(Value::as_f64).unwrap_or(now);
        let value = d.get("Value").and_then(Value::as_f64).unwrap_or(0.0);
        let dims_ref: Vec<(&str, &str)> =
            dims.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        w.put_metric(&namespace, &metric, &dims_ref, at, value);
    }
    Ok(json!({}))
}

fn history(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = opt_str(p, "AlarmName");
    let items: Vec<Value> = w
        .alarms
        .values()
        .filter(|a| name.as_ref().is_none_or(|n| &a.name == n))
        .flat_map(|a| {
            a.history.iter().rev().map(|h| {
                json!({
                    "AlarmName": a.name,
                    "AlarmType": "MetricAlarm",
                    "Timestamp": ts(h.at),
                    "HistoryItemType": "StateUpdate",
                    "HistorySummary": format!("Alarm updated from {} to {}", h.from, h.to),
                    "HistoryData": json!({"oldState": h.from, "newState": h.to, "reason": h.reason}).to_string(),
                })
            })
        })
        .collect();
    Ok(json!({"AlarmHistoryItems": items}))
}
