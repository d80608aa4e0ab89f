//! CloudWatch: metric alarms and metric data. One model, served over both AWS JSON 1.0 (the aws
//! CLI) and Smithy RPC v2 CBOR (the Rust SDK).

use serde_json::{json, Map, Value};

use super::{
    params::{check_enum, opt_str, page, req_str, str_list, with_token},
    protocol::{ts, AwsError},
    world::{arn, Alarm, AlarmConfig, World},
};

/// Runs one CloudWatch operation. CloudWatch's validation errors are `ValidationError` (a
/// query-protocol code), not the JSON services' `ValidationException` (aws-facts.md).
pub fn handle(w: &mut World, op: &str, p: &Value) -> Result<Value, AwsError> {
    let out = match op {
        "PutMetricAlarm" => put_alarm(w, p),
        "PutCompositeAlarm" => put_composite(w, p),
        "DescribeAlarms" => describe_alarms(w, p),
        "DeleteAlarms" => delete_alarms(w, p),
        "SetAlarmState" => set_state(w, p),
        "DisableAlarmActions" => alarm_actions(w, p, false),
        "EnableAlarmActions" => alarm_actions(w, p, true),
        "PutMetricData" => put_data(w, p),
        "DescribeAlarmHistory" => history(w, p),
        other => Err(AwsError::client(
            "InvalidAction",
            format!("the sandbox does not implement CloudWatch {other}"),
        )),
    };
    out.map_err(|e| match e.code {
        "ValidationException" => AwsError {
            code: "ValidationError",
            ..e
        },
        _ => e,
    })
}

/// `ResourceNotFound`, which CloudWatch answers with HTTP 404.
fn not_found(message: String) -> AwsError {
    AwsError {
        code: "ResourceNotFound",
        status: axum::http::StatusCode::NOT_FOUND,
        message,
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
    let mut sent = p.clone();
    if let Some(m) = sent.as_object_mut() {
        m.remove("Tags");
    }
    let config: AlarmConfig =
        serde_json::from_value(sent).map_err(|e| AwsError::validation(e.to_string()))?;
    match w.alarms.get_mut(&name) {
        Some(a) => {
            a.config = config;
            a.config_updated = now;
        }
        None => {
            w.alarms.insert(
                name.clone(),
                Alarm {
                    arn: arn("cloudwatch", &format!("alarm:{name}")),
                    name,
                    config,
                    state: "INSUFFICIENT_DATA".into(),
                    reason: "Unchecked: Initial alarm creation".into(),
                    reason_data: None,
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
    let mut out = match serde_json::to_value(&a.config) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    out.insert("AlarmArn".into(), json!(a.arn));
    out.insert("StateValue".into(), json!(a.state));
    out.insert("StateReason".into(), json!(a.reason));
    if let Some(data) = &a.reason_data {
        out.insert("StateReasonData".into(), json!(data));
    }
    out.insert("StateUpdatedTimestamp".into(), ts(a.updated));
    out.insert(
        "AlarmConfigurationUpdatedTimestamp".into(),
        ts(a.config_updated),
    );
    Value::Object(out)
}

fn describe_alarms(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let names = str_list(p, "AlarmNames");
    if names.len() > 100 {
        return Err(AwsError::validation(
            "The collection AlarmNames must not have a size greater than 100.",
        ));
    }
    let prefix = opt_str(p, "AlarmNamePrefix");
    let state = opt_str(p, "StateValue");
    // Without AlarmTypes, DescribeAlarms returns metric alarms only.
    let types = str_list(p, "AlarmTypes");
    let wants = |t: &str| (types.is_empty() && t == "MetricAlarm") || types.iter().any(|x| x == t);
    let selected = |name: &str| {
        (names.is_empty() || names.iter().any(|n| n == name))
            && prefix.as_ref().is_none_or(|x| name.starts_with(x.as_str()))
    };
    let mut items: Vec<Value> = Vec::new();
    if wants("MetricAlarm") {
        items.extend(
            w.alarms
                .values()
                .filter(|a| selected(&a.name))
                .filter(|a| state.as_ref().is_none_or(|s| &a.state == s))
                .map(|a| json!({"metric": alarm_view(a)})),
        );
    }
    if wants("CompositeAlarm") {
        items.extend(
            w.composite_alarms
                .iter()
                .filter(|(n, _)| selected(n))
                .map(|(n, rule)| json!({"composite": {"AlarmName": n, "AlarmArn": arn("cloudwatch", &format!("alarm:{n}")), "AlarmRule": rule, "StateValue": "OK"}})),
        );
    }
    // Pages hold 50 alarms unless MaxRecords (1-100) says otherwise.
    let (items, next) = page(items, p, "MaxRecords", 50, 100, "InvalidNextToken")?;
    let pick = |k: &str| -> Vec<Value> { items.iter().filter_map(|i| i.get(k).cloned()).collect() };
    Ok(with_token(
        json!({"MetricAlarms": pick("metric"), "CompositeAlarms": pick("composite")}),
        next,
    ))
}

/// PutCompositeAlarm: stores the rule (composite alarms cannot trigger scaling policies, so the
/// sandbox never evaluates them).
fn put_composite(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "AlarmName")?;
    let rule = req_str(p, "AlarmRule")?;
    w.composite_alarms.insert(name, rule);
    Ok(json!({}))
}

/// DeleteAlarms: deletes the named alarms that exist, refuses (deleting nothing) when a
/// composite alarm's rule depends on one of them, and reports names that did not exist with
/// ResourceNotFound after deleting the rest (aws-facts.md, "Deletes").
fn delete_alarms(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let names = str_list(p, "AlarmNames");
    for n in &names {
        let depends = w
            .composite_alarms
            .iter()
            .any(|(c, rule)| !names.contains(c) && rule_names(rule, n));
        if depends {
            // AWS's words: it does not say which composite alarm depends on it.
            return Err(AwsError::validation(format!(
                "Cannot delete {n} as there are composite alarm(s) depending on it."
            )));
        }
    }
    let mut missing = Vec::new();
    for n in names {
        if w.alarms.remove(&n).is_none() && w.composite_alarms.remove(&n).is_none() {
            missing.push(n);
        }
    }
    if !missing.is_empty() {
        return Err(not_found(format!(
            "Could not find alarms: {}",
            missing.join(", ")
        )));
    }
    Ok(json!({}))
}

/// Whether a composite alarm's rule names `alarm`: by name (quoted or not) or by ARN.
pub fn rule_names(rule: &str, alarm: &str) -> bool {
    let arn = arn("cloudwatch", &format!("alarm:{alarm}"));
    [format!("\"{alarm}\""), format!("({alarm})"), arn]
        .iter()
        .any(|form| rule.contains(form.as_str()))
}

/// DisableAlarmActions / EnableAlarmActions: the alarm stays, its actions stop (or resume).
fn alarm_actions(w: &mut World, p: &Value, enabled: bool) -> Result<Value, AwsError> {
    for n in str_list(p, "AlarmNames") {
        if let Some(a) = w.alarms.get_mut(&n) {
            a.config.actions_enabled = enabled;
        }
    }
    Ok(json!({}))
}

fn set_state(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "AlarmName")?;
    let state = req_str(p, "StateValue")?;
    check_enum("StateValue", &state, &["OK", "ALARM", "INSUFFICIENT_DATA"])?;
    let reason = req_str(p, "StateReason")?;
    if !w.alarms.contains_key(&name) {
        return Err(not_found(format!("Alarm {name} does not exist")));
    }
    let now = w.now();
    let entering_alarm =
        state == "ALARM" && w.alarms.get(&name).is_some_and(|a| a.state != "ALARM");
    let data = opt_str(p, "StateReasonData");
    super::sim::transition(w, &name, &state, &reason, data, now);
    // As on AWS, a state set by hand runs the actions of the state it enters.
    if entering_alarm {
        let threshold = w
            .alarms
            .get(&name)
            .and_then(|a| a.config.threshold)
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
    let (items, next) = page(items, p, "MaxRecords", 50, 100, "InvalidNextToken")?;
    Ok(with_token(json!({ "AlarmHistoryItems": items }), next))
}
