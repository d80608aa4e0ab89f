//! The model: names, specs and their validation. No axum, no sqlx.

pub mod names;
pub mod spec;

pub use names::{ComponentName, TargetRef};
pub use spec::{Comparison, ComponentSpec, ScaleFromZero};
