//! zeroscale: a control plane that makes Amazon SageMaker scale-to-zero safe and boring.

pub mod api;
pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod reconcile;
pub mod sandbox;
pub mod store;
pub mod telemetry;
