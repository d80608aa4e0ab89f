//! The model: names, specs and their validation. No axum, no sqlx.

pub mod audit;
pub mod cron;
pub mod job;
pub mod names;
pub mod schedule;
pub mod spec;
pub mod target;
pub mod variant_spec;

pub use job::JobState;
pub use names::{ComponentName, EndpointName, VariantName};
pub use schedule::{KeepWarm, Pause, Schedule};
pub use spec::{Comparison, ComponentSpec, ScaleFromZero};
pub use target::{OwnedNames, TargetKind, TargetRef, TargetSpec};
pub use variant_spec::{BacklogScaleFromZero, VariantSpec};
