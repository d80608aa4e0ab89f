//! zeroscale: a control plane that makes Amazon SageMaker scale-to-zero safe and boring.

pub mod api;
pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
#[cfg(feature = "sandbox")]
pub mod demo;
pub mod doctor;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod notify;
pub mod reconcile;
pub mod store;
pub mod telemetry;

/// The AWS sandbox (crate `zeroscale-sandbox`), in builds with the `sandbox` feature.
#[cfg(feature = "sandbox")]
pub use zeroscale_sandbox as sandbox;

/// mimalloc for every binary built on this crate (the service, its tests and benchmarks): the
/// API path allocates for every request and response body, and glibc's malloc and free took a
/// sixth of the process's CPU under the API benchmark's write load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
