//! The routes of one kind of target, written once. The two kinds, inference components
//! (`/components/{name}`) and async endpoint variants (`/endpoints/{endpoint}/variants/{variant}`),
//! differ only in the path that names a target ([`KindPath`]), their spec type and their words;
//! everything a route does is in `targets` and `history`. `kind_routes!` expands, for one kind,
//! to every route with its OpenAPI description, so the two kinds cannot drift apart and no
//! route is written twice. (utoipa describes a route by an attribute on its handler, and the
//! handlers of two kinds need two descriptions: a declarative macro is the one way to write
//! them once.)

use std::marker::PhantomData;

use axum::{extract::FromRequestParts, http::request::Parts};
use serde::{de::DeserializeOwned, Deserialize};
use utoipa::{
    openapi::{schema::Type, ObjectBuilder, RefOr, Schema},
    IntoParams,
};

use super::extract::ApiPath;
use crate::{
    domain::{ComponentName, EndpointName, TargetRef, VariantName},
    error::ApiError,
};

/// The path parameters that name one target of a kind.
pub trait KindPath: DeserializeOwned + Send {
    /// The target named, or a 422 naming the invalid parameter.
    fn target(self) -> Result<TargetRef, ApiError>;
}

/// A SageMaker resource name in a path, as SageMaker constrains it (`domain::names` checks it):
/// the schema of every name parameter.
pub struct SageMakerName;

impl utoipa::PartialSchema for SageMakerName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"))
            .max_length(Some(63))
            .into()
    }
}

impl utoipa::ToSchema for SageMakerName {}

/// The name in `/components/{name}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ComponentPath {
    /// Inference component name
    #[param(value_type = SageMakerName, inline, example = "demo-component")]
    name: String,
}

impl KindPath for ComponentPath {
    fn target(self) -> Result<TargetRef, ApiError> {
        ComponentName::parse(&self.name)
            .map(TargetRef::Component)
            .map_err(|m| ApiError::invalid_field("name", m))
    }
}

/// The names in `/endpoints/{endpoint}/variants/{variant}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VariantPath {
    /// Async-inference endpoint name
    #[param(value_type = SageMakerName, inline, example = "demo-async-endpoint")]
    endpoint: String,
    /// Production variant name
    #[param(value_type = SageMakerName, inline, example = "AllTraffic")]
    variant: String,
}

impl KindPath for VariantPath {
    fn target(self) -> Result<TargetRef, ApiError> {
        Ok(TargetRef::EndpointVariant {
            endpoint: EndpointName::parse(&self.endpoint)
                .map_err(|m| ApiError::invalid_field("endpoint", m))?,
            variant: VariantName::parse(&self.variant)
                .map_err(|m| ApiError::invalid_field("variant", m))?,
        })
    }
}

/// The version in `.../versions/{version}` (parsed by `history`, which answers 404 or 422).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VersionPath {
    /// Version number
    #[param(value_type = i32, minimum = 1)]
    pub version: String,
}

/// The target a route's path names, parsed by `P` (a 422 for an invalid name).
pub struct Target<P>(pub TargetRef, pub PhantomData<P>);

impl<S: Send + Sync, P: KindPath> FromRequestParts<S> for Target<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(path) = ApiPath::<P>::from_request_parts(parts, state).await?;
        Ok(Self(path.target()?, PhantomData))
    }
}

/// Every route of one kind of target, with its OpenAPI description:
/// - `kind`: the kind's [`TargetKind`](crate::domain::TargetKind) variant;
/// - `path`, `spec`, `status`: the kind's [`KindPath`], its [`TargetSpec`](crate::domain::TargetSpec)
///   variant with the spec type, and its status type;
/// - `change`, `enable_ok`: the names of the answer types this defines for the kind;
/// - `base`, `list`: the path of one target and of the list; `tag`: the OpenAPI tag;
/// - `noun`: the kind in operation ids (`enable_<noun>`); `a`: the kind in words, with its
///   article; `order`: the list's order; `enabling`: what enabling does beyond recording the
///   version (a sentence).
macro_rules! kind_routes {
    (
        kind: $kind:ident, path: $path:ident, spec: $spec_variant:ident($spec:ident), status: $status:ident,
        change: $change:ident, enable_ok: $enable_ok:ident,
        base: $base:literal, list: $list:literal, tag: $tag:literal,
        noun: $noun:literal, a: $a:literal, order: $order:literal, enabling: $enabling:literal $(,)?
    ) => {
        use axum::{extract::State, http::HeaderMap, response::Response, Json};
        use serde_json::{Map, Value};
        use $crate::api::{
            auth::{Reader, Writer},
            extract::{ApiJson, ApiPath, ApiQuery, OptionalJson},
            history::{
                self, DiffQuery, HistoryQuery, RollbackQuery, RollbackRequest, VersionDetail,
                VersionDiff, VersionSummary,
            },
            kind_routes::{Target, VersionPath, $path},
            problems,
            targets::{self, EnableQuery, ListQuery},
            views::{Page, $status},
            AppState,
        };
        use $crate::{domain::{$spec, TargetKind, TargetSpec}, error::{ApiError, Problem}};

        /// The answer to a write.
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $change {
            /// False when the request matched the current version (no new version, no job).
            pub changed: bool,
            /// What happened, in words.
            pub detail: String,
            /// The target after the change.
            pub target: $status,
        }

        /// A 200 from the enable route: an unchanged write, or a dry run's verdict.
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        #[serde(untagged)]
        pub enum $enable_ok {
            /// Identical to the current version.
            Unchanged(Box<$change>),
            /// `dry_run=true`: the verdict and plan.
            DryRun($crate::reconcile::DryRun),
        }

        #[utoipa::path(post, path = concat!($base, "/scale-to-zero"), operation_id = concat!("enable_", $noun), tag = $tag,
            summary = concat!("Enable or update scale-to-zero for ", $a, "."),
            description = concat!("Records a new desired version and queues the job that converges AWS to it. ", $enabling,
                " With no body, every setting takes its default. Re-posting the current spec changes nothing (200)."),
            params($path, EnableQuery, $crate::api::changes::WriteHeaders),
            request_body(content = Option<$spec>, description = "Desired settings; omit for all defaults",
                example = json!({"max_capacity": 4})),
            responses(
                (status = 202, description = "Accepted as a new version; poll the operation in Location", body = $change,
                    headers(("Location" = String, description = "The operation"), ("ETag" = String, description = "The new version"))),
                (status = 200, description = "Identical to the current version: nothing to do; or, with dry_run, the verdict and plan", body = $enable_ok),
                problems::Write,
                (status = 422, description = concat!("Invalid name or settings, Idempotency-Key reused with another body, or the name is not ", $a, " (code wrong_target_kind)"), body = Problem, content_type = "application/problem+json"),
                problems::DryRun,
            )
        )]
        pub async fn enable(
            State(state): State<AppState>, Writer(caller): Writer, Target(target, _): Target<$path>, ApiQuery(q): ApiQuery<EnableQuery>, headers: HeaderMap, OptionalJson(spec): OptionalJson<$spec>,
        ) -> Result<Response, ApiError> {
            targets::enable(&state, &caller, target, TargetSpec::$spec_variant(spec), q, &headers).await
        }

        #[utoipa::path(delete, path = concat!($base, "/scale-to-zero"), operation_id = concat!("disable_", $noun), tag = $tag,
            summary = concat!("Turn scale-to-zero off for ", $a, "."),
            description = "The job removes the alarm and policies zeroscale created and restores the scalable \
                target's capacity from before zeroscale (or `restore_min_capacity`).",
            params($path, $crate::api::changes::WriteHeaders),
            responses(
                (status = 202, description = "Accepted; poll the operation in Location", body = $change),
                (status = 200, description = "Already off: nothing to do", body = $change),
                problems::WriteOneHeaders,
            )
        )]
        pub async fn disable(
            State(state): State<AppState>, Writer(caller): Writer, Target(target, _): Target<$path>, headers: HeaderMap,
        ) -> Result<Response, ApiError> {
            targets::disable(&state, &caller, target, &headers).await
        }

        #[utoipa::path(post, path = concat!($base, "/reconcile"), operation_id = concat!("reconcile_", $noun), tag = $tag,
            summary = concat!("Re-observe ", $a, " now and repair whatever differs from its current version."),
            description = "Queues a reconcile job (no new version); the job's plan shows what, if anything, \
                had drifted, and the status's scaling-activity findings are refreshed.",
            params($path),
            responses(
                (status = 202, description = "Queued; poll the operation in Location", body = $change),
                problems::WriteOne,
            )
        )]
        pub async fn reconcile(
            State(state): State<AppState>, Writer(caller): Writer, Target(target, _): Target<$path>,
        ) -> Result<Response, ApiError> {
            targets::reconcile(&state, &caller, &target).await
        }

        #[utoipa::path(get, path = $base, operation_id = concat!("get_", $noun), tag = $tag,
            summary = concat!("Read ", $a, ": spec, version (also the ETag), phase, conditions (with the last failed or \
                not-scaled scaling activity, in AWS's words), owned AWS objects and the last operation."),
            params($path),
            responses(
                (status = 200, description = concat!("The ", $noun), body = $status,
                    headers(("ETag" = String, description = "The current version"))),
                problems::ReadOne,
            )
        )]
        pub async fn get_one(
            State(state): State<AppState>, Reader(_caller): Reader, Target(target, _): Target<$path>,
        ) -> Result<Response, ApiError> {
            targets::get_one(&state, &target).await
        }

        #[utoipa::path(get, path = $list, operation_id = concat!("list_", $noun, "s"), tag = $tag,
            summary = concat!("List managed ", $noun, "s, ", $order, ", with filters and cursor pagination."),
            params(ListQuery),
            responses(
                (status = 200, description = concat!("A page of ", $noun, "s"), body = Page<$status>),
                problems::ReadList,
            )
        )]
        pub async fn list(
            State(state): State<AppState>, Reader(_caller): Reader, ApiQuery(q): ApiQuery<ListQuery>,
        ) -> Result<Json<Page<Value>>, ApiError> {
            Ok(Json(targets::list(&state, TargetKind::$kind, q).await?))
        }

        #[utoipa::path(get, path = concat!($base, "/versions"), operation_id = concat!($noun, "_versions"), tag = $tag,
            summary = concat!("List ", $a, "'s versions, newest first: who changed it, when, and whether AWS converged to each."),
            params($path, HistoryQuery),
            responses(
                (status = 200, description = "A page of versions, newest first", body = Page<VersionSummary>),
                problems::ReadQuery,
                problems::VersionPage,
            )
        )]
        pub async fn versions(
            State(state): State<AppState>, Reader(_caller): Reader, Target(target, _): Target<$path>, ApiQuery(q): ApiQuery<HistoryQuery>,
        ) -> Result<Json<Page<VersionSummary>>, ApiError> {
            history::list(&state, &target, q).await
        }

        #[utoipa::path(get, path = concat!($base, "/timeline"), operation_id = concat!($noun, "_timeline"), tag = $tag,
            summary = concat!("What happened to ", $a, ", oldest first: scale-ins to zero, requests at zero, wakes with their latency or AWS's failure, scheduled actions, pauses and repairs."),
            params($path, $crate::api::events::EventQuery),
            responses(
                (status = 200, description = "A page of events, oldest first", body = Page<$crate::api::events::Event>),
                problems::ReadQuery,
                problems::TimelinePage,
            )
        )]
        pub async fn timeline(
            State(state): State<AppState>, Reader(_caller): Reader, Target(target, _): Target<$path>, ApiQuery(q): ApiQuery<$crate::api::events::EventQuery>,
        ) -> Result<Json<Page<$crate::api::events::Event>>, ApiError> {
            $crate::api::events::timeline(&state, &target, q).await
        }

        #[utoipa::path(get, path = concat!($base, "/versions/{version}"), operation_id = concat!($noun, "_version"), tag = $tag,
            summary = concat!("Read one version of ", $a, ": its full spec and who made it."),
            params($path, VersionPath),
            responses(
                (status = 200, description = "The version", body = VersionDetail),
                problems::ReadAuth,
                problems::NoSuchVersion,
            )
        )]
        pub async fn version(
            State(state): State<AppState>, Reader(_caller): Reader, Target(target, _): Target<$path>, ApiPath(v): ApiPath<VersionPath>,
        ) -> Result<Json<VersionDetail>, ApiError> {
            history::get_one(&state, &target, &v.version).await
        }

        #[utoipa::path(get, path = concat!($base, "/versions/{version}/diff"), operation_id = concat!($noun, "_diff"), tag = $tag,
            summary = concat!("What changed in ", $a, " between two versions, as a JSON Patch (RFC 6902)."),
            params($path, VersionPath, DiffQuery),
            responses(
                (status = 200, description = "The patch from `against` to `version`", body = VersionDiff),
                problems::ReadQuery,
                problems::NoSuchVersion,
            )
        )]
        pub async fn diff(
            State(state): State<AppState>, Reader(_caller): Reader, Target(target, _): Target<$path>, ApiPath(v): ApiPath<VersionPath>, ApiQuery(q): ApiQuery<DiffQuery>,
        ) -> Result<Json<VersionDiff>, ApiError> {
            history::diff(&state, &target, &v.version, q).await
        }

        #[utoipa::path(post, path = concat!($base, "/rollback"), operation_id = concat!($noun, "_rollback"), tag = $tag,
            summary = concat!("Roll ", $a, " back to an earlier version."),
            description = "Creates a new version whose state equals version `to_version`'s (audited as \
                `rollback`) and queues its job; history is never rewritten. 200 when that state is the current one.",
            params($path, RollbackQuery, $crate::api::changes::WriteHeaders),
            request_body(content = RollbackRequest, description = "The version to restore", example = json!({"to_version": 2})),
            responses(
                (status = 202, description = "Accepted as a new version; poll the operation in Location", body = $change,
                    headers(("Location" = String, description = "The operation"), ("ETag" = String, description = "The new version"))),
                (status = 200, description = "Already in that state: nothing to do; or, with dry_run, the verdict and plan", body = $enable_ok),
                problems::Write,
                (status = 404, description = "Not managed, or no such version", body = Problem, content_type = "application/problem+json"),
                (status = 422, description = "Invalid name or body, or Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
                problems::DryRun,
            )
        )]
        pub async fn rollback(
            State(state): State<AppState>, Writer(caller): Writer, Target(target, _): Target<$path>, ApiQuery(q): ApiQuery<RollbackQuery>, headers: HeaderMap, ApiJson(body): ApiJson<Map<String, Value>>,
        ) -> Result<Response, ApiError> {
            history::rollback(&state, &caller, target, q, &headers, body).await
        }

        #[utoipa::path(post, path = concat!($base, "/wake"), operation_id = concat!("wake_", $noun), tag = $tag,
            summary = concat!("Wake ", $a, " now and keep it warm for a while."),
            description = concat!("Raises the scalable target's MinCapacity to `copies` (Application Auto Scaling scales out to it at once) ",
                "and puts an `at(...)` scheduled action that lowers it again when the window ends, so it goes back to sleep on time ",
                "even while zeroscale is down. The operation completes when that capacity is InService and records ",
                "`warm_after_seconds`; waking a target already warm completes at once and extends the window. ",
                "Refused while the target is paused. Audited as `wake`."),
            params($path, EnableQuery, $crate::api::changes::WriteHeaders),
            request_body(content = Option<$crate::api::controls::WakeRequest>, description = "Both optional", example = json!({"copies": 1, "keep_warm_for": "30m"})),
            responses(
                (status = 202, description = "Accepted as a new version; poll the operation in Location", body = $change),
                (status = 200, description = "Identical to the current version; or, with dry_run, the verdict and plan", body = $enable_ok),
                problems::Hold,
            )
        )]
        pub async fn wake(
            State(state): State<AppState>, Writer(caller): Writer, Target(target, _): Target<$path>, ApiQuery(q): ApiQuery<EnableQuery>, headers: HeaderMap, OptionalJson(req): OptionalJson<$crate::api::controls::WakeRequest>,
        ) -> Result<Response, ApiError> {
            $crate::api::controls::wake(&state, &caller, target, q, &headers, req).await
        }

        #[utoipa::path(put, path = concat!($base, "/keep-warm"), operation_id = concat!("keep_warm_", $noun), tag = $tag,
            summary = concat!("Pin ", $a, " warm until a given time."),
            description = "As a wake, with an end time: MinCapacity at least `copies` until `until`, then back to what the \
                schedules hold, by an AWS `at(...)` scheduled action. Audited as `keep_warm`.",
            params($path, EnableQuery, $crate::api::changes::WriteHeaders),
            request_body(content = $crate::api::controls::KeepWarmRequest, example = json!({"until": "2026-12-01T18:00:00Z", "copies": 1, "reason": "demo"})),
            responses(
                (status = 202, description = "Accepted as a new version; poll the operation in Location", body = $change),
                (status = 200, description = "Identical to the current version; or, with dry_run, the verdict and plan", body = $enable_ok),
                problems::Hold,
            )
        )]
        pub async fn keep_warm(
            State(state): State<AppState>, Writer(caller): Writer, Target(target, _): Target<$path>, ApiQuery(q): ApiQuery<EnableQuery>, headers: HeaderMap, ApiJson(req): ApiJson<$crate::api::controls::KeepWarmRequest>,
        ) -> Result<Response, ApiError> {
            $crate::api::controls::keep_warm(&state, &caller, target, q, &headers, req).await
        }

        #[utoipa::path(delete, path = concat!($base, "/keep-warm"), operation_id = concat!("unpin_", $noun), tag = $tag,
            summary = concat!("End ", $a, "'s keep-warm window now."),
            description = "MinCapacity goes back to what the schedules hold, and the window's `at(...)` scheduled action is \
                deleted. Audited as `unpin`.",
            params($path, EnableQuery, $crate::api::changes::WriteHeaders),
            responses(
                (status = 202, description = "Accepted as a new version; poll the operation in Location", body = $change),
                (status = 200, description = "No pin: nothing to do; or, with dry_run, the verdict and plan", body = $enable_ok),
                problems::Hold,
            )
        )]
        pub async fn unpin(
            State(state): State<AppState>, Writer(caller): Writer, Target(target, _): Target<$path>, ApiQuery(q): ApiQuery<EnableQuery>, headers: HeaderMap,
        ) -> Result<Response, ApiError> {
            $crate::api::controls::lift(&state, &caller, target, q, &headers, $crate::api::controls::Lift::Pin).await
        }

        #[utoipa::path(post, path = concat!($base, "/pause"), operation_id = concat!("pause_", $noun), tag = $tag,
            summary = concat!("Pause scaling of ", $a, " until a given time."),
            description = "Suspends dynamic scale-in, dynamic scale-out and scheduled scaling (the scalable target's \
                SuspendedState): a request at zero does not wake it, and schedules do not run. The pause has an expiry \
                (default `--pause-default`, at most `--pause-max`); zeroscale resumes by itself then, audited as \
                `resume` by `zeroscale`. A `Paused` condition names who paused, why and until when, and `/metrics` \
                counts paused targets (`zeroscale_targets_paused`). Audited as `pause`.",
            params($path, EnableQuery, $crate::api::changes::WriteHeaders),
            request_body(content = Option<$crate::api::controls::PauseRequest>, description = "Both optional", example = json!({"until": "2026-12-01T18:00:00Z", "reason": "incident 4711"})),
            responses(
                (status = 202, description = "Accepted as a new version; poll the operation in Location", body = $change),
                (status = 200, description = "Identical to the current version; or, with dry_run, the verdict and plan", body = $enable_ok),
                problems::Hold,
            )
        )]
        pub async fn pause(
            State(state): State<AppState>, Writer(caller): Writer, Target(target, _): Target<$path>, ApiQuery(q): ApiQuery<EnableQuery>, headers: HeaderMap, OptionalJson(req): OptionalJson<$crate::api::controls::PauseRequest>,
        ) -> Result<Response, ApiError> {
            $crate::api::controls::pause(&state, &caller, target, q, &headers, req).await
        }

        #[utoipa::path(post, path = concat!($base, "/resume"), operation_id = concat!("resume_", $noun), tag = $tag,
            summary = concat!("Resume scaling of ", $a, " now."),
            description = "Lifts the pause (SuspendedState back to nothing suspended). Audited as `resume`.",
            params($path, EnableQuery, $crate::api::changes::WriteHeaders),
            responses(
                (status = 202, description = "Accepted as a new version; poll the operation in Location", body = $change),
                (status = 200, description = "Not paused: nothing to do; or, with dry_run, the verdict and plan", body = $enable_ok),
                problems::Hold,
            )
        )]
        pub async fn resume(
            State(state): State<AppState>, Writer(caller): Writer, Target(target, _): Target<$path>, ApiQuery(q): ApiQuery<EnableQuery>, headers: HeaderMap,
        ) -> Result<Response, ApiError> {
            $crate::api::controls::lift(&state, &caller, target, q, &headers, $crate::api::controls::Lift::Pause).await
        }
    };
}
pub(crate) use kind_routes;
