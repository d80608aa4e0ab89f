//! CloudWatch's side of the simulation: metric statistics over a period, alarm evaluation,
//! state transitions and the actions an alarm runs.

use serde_json::json;

use super::scaling::step_scale;
use crate::world::{AlarmConfig, AlarmTransition, World};

pub(super) fn statistic(values: &[f64], stat: &str) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(match stat {
        "Sum" => values.iter().sum(),
        "Minimum" => values.iter().cloned().fold(f64::INFINITY, f64::min),
        "Maximum" => values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        "SampleCount" => values.len() as f64,
        _ => values.iter().sum::<f64>() / values.len() as f64,
    })
}

/// The statistic of one period [start, start + period) for an alarm's metric and dimensions.
pub(super) fn period_value(w: &World, cfg: &AlarmConfig, start: f64, period: f64) -> Option<f64> {
    let values = period_samples(w, cfg, start, period);
    statistic(&values, cfg.statistic.as_deref().unwrap_or("Average"))
}

/// The datapoints of one period for an alarm's metric and dimensions.
fn period_samples(w: &World, cfg: &AlarmConfig, start: f64, period: f64) -> Vec<f64> {
    let ns = cfg.namespace.as_deref().unwrap_or_default();
    let metric = cfg.metric_name.as_deref().unwrap_or_default();
    let dims = &cfg.dimensions;
    w.metrics
        .iter()
        .filter(|d| {
            d.namespace == ns && d.metric == metric && d.at >= start && d.at < start + period
        })
        .filter(|d| {
            d.dimensions.len() == dims.len()
                && dims
                    .iter()
                    .all(|x| d.dimensions.get(&x.name) == Some(&x.value))
        })
        .map(|d| d.value)
        .collect()
}

pub(super) fn evaluate_alarm(w: &mut World, name: &str, boundary: f64) {
    let Some(alarm) = w.alarms.get(name) else {
        return;
    };
    let cfg = alarm.config.clone();
    let period = cfg.period_seconds();
    if (boundary % period).abs() > 1e-6 {
        return;
    }
    let n = cfg.evaluation_periods.max(1) as usize;
    let m = cfg.datapoints() as usize;
    let treat = cfg.treat_missing_data.as_deref().unwrap_or("missing");
    let values: Vec<Option<f64>> = (0..n)
        .map(|i| period_value(w, &cfg, boundary - (i as f64 + 1.0) * period, period))
        .collect();
    let present = values.iter().flatten().count();
    let mut bad = values
        .iter()
        .flatten()
        .filter(|v| cfg.breaches(**v))
        .count();
    if treat == "breaching" {
        bad += n - present;
    }
    let state = if bad >= m {
        "ALARM"
    } else if present == 0 && treat == "missing" {
        "INSUFFICIENT_DATA"
    } else if present == 0 && treat == "ignore" {
        return;
    } else {
        "OK"
    };
    let shown: Vec<String> = values.iter().flatten().map(|v| format!("{v}")).collect();
    let reason = format!(
        "Threshold Crossed: {bad} out of the last {n} datapoints [{}] breached the threshold ({}) ({} of {n} needed).",
        shown.join(", "),
        cfg.threshold.unwrap_or_default(),
        m
    );
    let samples: Vec<usize> = (0..n)
        .map(|i| period_samples(w, &cfg, boundary - (i as f64 + 1.0) * period, period).len())
        .collect();
    let data = reason_data(&cfg, &values, &samples, boundary, period);
    transition(w, name, state, &reason, Some(data), boundary);
    if state == "ALARM" {
        run_actions(
            w,
            name,
            values.first().copied().flatten().unwrap_or(0.0),
            boundary,
        );
    }
}

/// CloudWatch's StateReasonData for a threshold evaluation at `boundary`: the evaluated periods,
/// newest first, each with its start as `timestamp` (CloudWatch's format,
/// `2026-12-01T10:04:00.000+0000`).
fn reason_data(
    cfg: &AlarmConfig,
    values: &[Option<f64>],
    samples: &[usize],
    boundary: f64,
    period: f64,
) -> String {
    let stamp = |t: f64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp(t as i64, 0)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string())
            .unwrap_or_default()
    };
    let evaluated: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let timestamp = stamp(boundary - (i as f64 + 1.0) * period);
            // As CloudWatch: every evaluated period is listed; one without data has only its
            // timestamp.
            match v {
                Some(v) => json!({"timestamp": timestamp, "sampleCount": samples.get(i).copied().unwrap_or(0) as f64, "value": v}),
                None => json!({"timestamp": timestamp}),
            }
        })
        .collect();
    json!({
        "version": "1.0",
        "queryDate": stamp(boundary),
        "startDate": stamp(boundary - values.len() as f64 * period),
        "statistic": cfg.statistic.as_deref().unwrap_or("Average"),
        "period": period as i64,
        "recentDatapoints": values.iter().rev().flatten().collect::<Vec<_>>(),
        "threshold": cfg.threshold.unwrap_or_default(),
        "evaluatedDatapoints": evaluated,
    })
    .to_string()
}

/// Sets an alarm's state, recording the change; entering ALARM runs its actions (SetAlarmState
/// goes through here too). `data` is the StateReasonData, if any.
pub fn transition(
    w: &mut World,
    name: &str,
    state: &str,
    reason: &str,
    data: Option<String>,
    at: f64,
) {
    let Some(a) = w.alarms.get_mut(name) else {
        return;
    };
    if a.state != state {
        a.history.push(AlarmTransition {
            at,
            from: a.state.clone(),
            to: state.into(),
            reason: reason.into(),
        });
        a.state = state.into();
        a.reason = reason.into();
        a.reason_data = data;
        a.updated = at;
    }
}

/// Runs the alarm's Application Auto Scaling actions (other actions are recorded only).
pub fn run_actions(w: &mut World, alarm: &str, value: f64, at: f64) {
    let Some(a) = w.alarms.get(alarm) else { return };
    if !a.config.actions_enabled {
        return;
    }
    let threshold = a.config.threshold.unwrap_or(0.0);
    let actions = a.config.alarm_actions.clone();
    for action in actions {
        let policy = w
            .policies
            .values()
            .find(|p| p.arn == action && p.step.is_some())
            .cloned();
        if let Some(policy) = policy {
            let cause = format!(
                "monitor alarm {alarm} in state ALARM triggered policy {}",
                policy.name
            );
            step_scale(w, &policy, value - threshold, &cause, at);
        }
    }
}
