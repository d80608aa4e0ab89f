//! zeroscale: a control plane that makes Amazon SageMaker scale-to-zero safe and boring.

pub mod api;
pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod reconcile;
pub mod sandbox;
pub mod store;
pub mod telemetry;

/// mimalloc for every binary built on this crate (the service, its tests and benchmarks): the
/// API path allocates for every request and response body, and glibc's malloc and free took a
/// sixth of the process's CPU under the API benchmark's write load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
