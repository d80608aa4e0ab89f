//! Every integration test in one binary: one link instead of one per file, and the shared
//! set-up (`common/`) compiled once. A file is a module: run one with
//! `cargo test --test it <file>::`, e.g. `cargo test --test it drills::`.

mod common;

mod api_components;
mod api_variants;
mod cli;
mod doctor;
mod drill_burst;
mod drills;
mod drills_hardening;
mod fleet;
mod fleet_burst;
mod foundation;
mod hardening_api;
mod hardening_audit;
mod hardening_input;
mod hardening_jobs;
mod history;
mod holds;
mod iam_policy;
mod jobs;
mod layers;
mod model_conformance;
mod operations;
mod portal;
mod real_aws;
mod reconcile;
mod sandbox;
mod sandbox_cli;
mod sandbox_iam;
mod sandbox_realism;
mod sandbox_schedules;
mod savings;
mod timeline;
mod variants;
mod webhooks;
