//! What a reconcile did (the operation's output) and the conditions it implies.

use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Value};

use super::{apply::StepRecord, plan, Warning};

/// What a reconcile did, stored as the operation's output.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub version: i32,
    pub enabled: bool,
    pub preflight: Option<Value>,
    pub warnings: Vec<Warning>,
    pub resolved_max_capacity: Option<i32>,
    pub original_capacity: Option<(i32, i32)>,
    /// What AWS held before zeroscale's first write (restored on disable).
    pub baseline: Option<Value>,
    /// What the run waits for (an endpoint Updating), when it waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    pub plan: Vec<plan::Step>,
    pub steps: Vec<StepRecord>,
    pub target_tracking_policy_arn: Option<String>,
    pub step_policy_arn: Option<String>,
    pub foreign_policies: Vec<String>,
    pub last_scaling_failure: Option<Value>,
    pub error: Option<String>,
    /// Why the job ran: change, drift or manual.
    pub reason: String,
    /// Our scheduled actions after the run (schedules, a keep-warm window's end).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scheduled_actions: Vec<String>,
    /// The SuspendedState the target had before zeroscale paused it (given back on resume and
    /// on disable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_before_pause: Option<plan::Suspended>,
    /// The pause in force, if any (the `Paused` condition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<Value>,
    /// A keep-warm pin's capacity was waited for: whether it had to scale out, and the
    /// newest scaling activity before the change's write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warming: Option<super::warm::Warming>,
    /// Seconds from the scale-out's start to its capacity in service, by AWS's scaling
    /// activity (0: it was already warm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_after_seconds: Option<f64>,
}

impl Report {
    /// On a drift check or manual reconcile, any write means AWS had drifted from what zeroscale
    /// last applied.
    pub fn drift(&self) -> Option<String> {
        if self.reason == "change" || self.plan.is_empty() {
            return None;
        }
        let what: Vec<String> = self
            .plan
            .iter()
            .map(|s| {
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v["call"].as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect();
        Some(format!(
            "AWS differed from version {} and was repaired with: {}",
            self.version,
            what.join(", ")
        ))
    }
}

fn condition(kind: &str, ok: bool, reason: &str, message: String) -> Value {
    json!({"type": kind, "status": if ok { "True" } else { "False" }, "reason": reason, "message": message, "last_transition_time": Utc::now()})
}

/// A `Waiting` condition: AWS is changing the resource; the job retries.
pub fn waiting(reason: &str, message: &str) -> Value {
    condition("Waiting", true, reason, message.to_string())
}

/// The conditions a report implies.
pub fn conditions(report: &Report, error: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(e) = error {
        out.push(condition("Ready", false, "ReconcileFailed", e.to_string()));
        out.extend(scaling_problem(report));
        return out;
    }
    if report.enabled {
        let max = report.resolved_max_capacity.unwrap_or(0);
        out.push(condition(
            "Registered",
            true,
            "ScalableTarget",
            format!("scalable target registered with MaxCapacity {max}, and MinCapacity 0 outside schedules and keep-warm windows"),
        ));
        out.push(condition(
            "PoliciesApplied",
            true,
            "TargetTrackingAndStep",
            "target-tracking and step policies are in place".into(),
        ));
        out.push(condition(
            "AlarmArmed",
            true,
            "AlarmPointsAtStepPolicy",
            "the scale-from-zero alarm's action is the step policy".into(),
        ));
        out.push(condition(
            "Ready",
            true,
            "Converged",
            format!("AWS matches version {}", report.version),
        ));
    } else {
        out.push(condition(
            "Ready",
            true,
            "Disabled",
            "scale-to-zero is off; zeroscale's alarm and policies are removed".into(),
        ));
    }
    if let Some(p) = &report.paused {
        out.push(condition(
            "Paused",
            true,
            "ScalingSuspended",
            format!(
                "scaling is suspended (scale-in, scale-out and scheduled) by {} until {}{}; zeroscale resumes it then, or POST .../resume",
                p["by"].as_str().unwrap_or("?"),
                p["until"].as_str().unwrap_or("?"),
                p["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default()
            ),
        ));
    }
    for w in &report.warnings {
        out.push(condition("Degraded", true, &w.reason, w.message.clone()));
    }
    if !report.foreign_policies.is_empty() {
        out.push(condition("Degraded", true, "ForeignScalingPolicies", format!(
            "policies zeroscale did not create are on the target ({}); scale-in needs every target-tracking policy to agree, so they can keep it from reaching zero. zeroscale leaves them alone",
            report.foreign_policies.join(", "))));
    }
    if let Some(d) = report.drift() {
        out.push(condition("Drifted", true, "RepairedOutsideChange", d));
    }
    out.extend(scaling_problem(report));
    out
}

/// A Degraded condition for the latest failed or not-scaled scaling activity, in AWS's words.
fn scaling_problem(report: &Report) -> Option<Value> {
    report.last_scaling_failure.as_ref().map(scaling_condition)
}

/// The reason of the condition a failed scaling activity shows.
pub const SCALING_FAILED: &str = "ScalingActivityFailed";

/// The Degraded condition of a failed scaling activity (as `observe::scaling_problem` shapes
/// it).
pub fn scaling_condition(failure: &Value) -> Value {
    let message = failure["message"]
        .as_str()
        .unwrap_or("a scaling activity failed")
        .to_string();
    condition("Degraded", true, SCALING_FAILED, message)
}
