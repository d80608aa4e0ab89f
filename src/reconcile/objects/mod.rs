//! The AWS objects zeroscale owns, one file each, each described once: the typed description
//! the plan builds, its comparable configuration (what the plan compares and shows), the SDK
//! request `apply` sends, and how `observe` reads it back into that comparable shape. Each
//! file's unit test sends nothing but checks that what `apply` would send, read back as
//! `observe` reads it, equals the plan's configuration: a mismatch there would mean a repair
//! on every drift check.

pub mod alarm;
pub mod scalable_target;
pub mod scheduled_action;
pub mod step_policy;
pub mod target_tracking;

pub use alarm::Alarm;
pub use scalable_target::{ObservedTarget, Suspended};
pub use scheduled_action::ScheduledAction;
pub use step_policy::StepPolicy;
pub use target_tracking::{TargetTracking, TrackedMetric};

use serde_json::{json, Value};

/// Metric dimensions in the comparable shape (`[{"Name", "Value"}]`).
fn dimensions_json<'a>(dims: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>) -> Value {
    Value::Array(dims.map(|(n, v)| json!({"Name": n, "Value": v})).collect())
}
