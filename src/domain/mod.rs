//! The model: names, specs and their validation. No axum, no sqlx.

pub mod audit;
pub mod cron;
pub mod event;
pub mod job;
pub mod labels;
pub mod names;
pub mod savings;
pub mod schedule;
pub mod spec;
pub mod target;
pub mod variant_spec;
pub mod webhook;

pub use event::EventKind;
pub use job::JobState;
pub use labels::Labels;
pub use names::{ComponentName, EndpointName, VariantName};
pub use schedule::{KeepWarm, Pause, Schedule};
pub use spec::{Comparison, ComponentSpec, ScaleFromZero};
pub use target::{OwnedNames, TargetKind, TargetRef, TargetSpec};
pub use variant_spec::{BacklogScaleFromZero, VariantSpec};
