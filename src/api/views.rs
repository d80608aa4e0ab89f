//! Response shapes shared by every target kind.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    domain::{ComponentSpec, OwnedNames, TargetRef, VariantSpec},
    store::{jobs::JobState, targets::TargetRow},
};

/// Where a target stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// A change was accepted; its job has not started.
    Pending,
    /// The job is writing to AWS.
    Applying,
    /// AWS matches the desired state.
    Ready,
    /// The last job failed; see conditions and the operation's errors.
    Failed,
    /// Scale-to-zero is off and AWS has been restored.
    Disabled,
}

/// One observed condition (Registered, PoliciesApplied, AlarmArmed, Ready, Degraded, ...).
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Condition {
    /// Condition type.
    #[schema(example = "AlarmArmed")]
    pub r#type: String,
    /// `True`, `False` or `Unknown`.
    #[schema(example = "True")]
    pub status: String,
    /// Machine-readable reason.
    pub reason: String,
    /// What it means and what to do.
    pub message: String,
    /// When the status last changed.
    pub last_transition_time: DateTime<Utc>,
}

/// The operation (job) behind the latest change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperationSummary {
    /// Operation id.
    pub id: i64,
    /// `/operations/{id}`.
    pub url: String,
    /// Job state.
    #[schema(value_type = String, example = "available")]
    pub state: JobState,
    /// Attempts made.
    pub attempt: i32,
    /// The last attempt's error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl OperationSummary {
    /// The target's last job, as joined into its row.
    pub fn of_target(row: &TargetRow) -> Option<Self> {
        let (id, state) = (row.last_job_id?, row.job_state?);
        Some(Self {
            id,
            url: format!("/operations/{id}"),
            state,
            attempt: row.job_attempt.unwrap_or(0),
            last_error: row.job_last_error.clone(),
        })
    }
}

/// The state every target kind shares.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TargetState {
    /// Current desired version (also the ETag).
    pub version: i32,
    /// Whether scale-to-zero is wanted.
    pub enabled: bool,
    /// Where the target stands.
    #[schema(value_type = Phase)]
    pub phase: String,
    /// Conditions with reasons and times.
    pub conditions: Vec<Condition>,
    /// AWS objects zeroscale owns for this target.
    pub aws: OwnedNames,
    /// What the last job observed and applied (policy ARNs, resolved max capacity, ...).
    #[schema(value_type = Object)]
    pub observed: Value,
    /// The operation behind the latest change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_operation: Option<OperationSummary>,
    /// The next three runs of each schedule's scheduled actions, in UTC and local time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedule_runs: Vec<crate::domain::schedule::ScheduleRuns>,
    /// First accepted.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl TargetState {
    /// From the stored row.
    pub fn new(row: &TargetRow, aws: OwnedNames) -> Self {
        Self {
            version: row.version,
            enabled: row.enabled,
            phase: row.phase.clone(),
            conditions: serde_json::from_value(row.conditions.clone()).unwrap_or_default(),
            aws,
            observed: row.observed.clone(),
            last_operation: OperationSummary::of_target(row),
            schedule_runs: serde_json::from_value::<Vec<crate::domain::Schedule>>(
                row.spec["schedules"].clone(),
            )
            .map(|s| crate::domain::schedule::runs(&s, Utc::now()))
            .unwrap_or_default(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A page of items and the cursor of the next page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A component's desired state and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentStatus {
    /// The inference component's name.
    #[schema(example = "demo-component")]
    pub name: String,
    /// The desired configuration (defaults filled in).
    pub spec: ComponentSpec,
    #[serde(flatten)]
    pub state: TargetState,
}

/// A component's status from its stored row.
pub fn component_status(target: &TargetRef, row: &TargetRow) -> ComponentStatus {
    ComponentStatus {
        name: row.name.clone(),
        spec: serde_json::from_value(row.spec.clone()).unwrap_or_default(),
        state: TargetState::new(row, target.owned_names()),
    }
}

/// An async endpoint variant's desired state and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantStatus {
    /// The endpoint's name.
    #[schema(example = "demo-async-endpoint")]
    pub endpoint: String,
    /// The production variant's name.
    #[schema(example = "AllTraffic")]
    pub variant: String,
    /// The desired configuration (defaults filled in).
    pub spec: VariantSpec,
    #[serde(flatten)]
    pub state: TargetState,
}

/// A variant's status from its stored row.
pub fn variant_status(target: &TargetRef, row: &TargetRow) -> VariantStatus {
    let (endpoint, variant) = match target {
        TargetRef::EndpointVariant { endpoint, variant } => {
            (endpoint.to_string(), variant.to_string())
        }
        TargetRef::Component(_) => (String::new(), String::new()),
    };
    VariantStatus {
        endpoint,
        variant,
        spec: serde_json::from_value(row.spec.clone()).unwrap_or_default(),
        state: TargetState::new(row, target.owned_names()),
    }
}

/// Renders a target for a response body, by kind.
pub fn render(target: &TargetRef, row: &TargetRow) -> Value {
    let value = match target {
        TargetRef::Component(_) => serde_json::to_value(component_status(target, row)),
        TargetRef::EndpointVariant { .. } => serde_json::to_value(variant_status(target, row)),
    };
    value.unwrap_or(Value::Null)
}
