//! The one transaction behind every write: idempotency key, target row lock, `If-Match`, new
//! version, job and `accepted` audit event commit together or not at all.

use axum::{
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

use super::{auth::Caller, AppState};
use crate::{
    domain::TargetRef,
    error::{current_request_id, ApiError},
    store::{
        idempotency::{self, KeyScope},
        targets::TargetRow,
    },
};

mod headers;

pub use headers::{idempotency_key, if_match, IdempotencyHeader, IfMatch, WriteHeaders};

/// A desired-state change to record.
pub struct Change<'a> {
    pub target: TargetRef,
    /// Scale-to-zero on (enable/update) or off (disable); None keeps it as it is (wake,
    /// keep-warm, pause, resume).
    pub enabled: Option<bool>,
    /// The full desired spec; None keeps the current one (disable).
    pub spec: Option<Value>,
    pub if_match: Option<IfMatch>,
    pub idempotency_key: Option<String>,
    pub method: &'static str,
    pub path: String,
    pub caller: &'a Caller,
    /// For a rollback: the version whose state this change restores (audited as `rollback`).
    pub rollback_to: Option<i32>,
    /// Keys set in the current spec (null removes one), and the action audited for them.
    pub patch: Option<(Value, &'static str)>,
    /// The request as the caller sent it, when the change is computed from it (a wake's window
    /// ends relative to now): what an Idempotency-Key's replay is compared by.
    pub request: Option<Value>,
}

/// The keys of a spec that only their own routes set: an enable's new spec keeps them.
pub const CARRIED: [&str; 2] = ["keep_warm", "pause"];

/// Checks the write headers (`If-Match`, `Idempotency-Key`) before anything else, so that a dry
/// run answers what the real request would.
pub fn check_headers(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    if_match(headers)?;
    idempotency_key(headers)?;
    Ok(())
}

impl<'a> Change<'a> {
    /// A change of nothing yet, by `caller` through `method path` with these headers: the
    /// caller sets what it changes.
    pub fn to(
        target: TargetRef,
        (method, path): (&'static str, String),
        caller: &'a Caller,
        headers: &axum::http::HeaderMap,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            target,
            enabled: None,
            spec: None,
            if_match: if_match(headers)?,
            idempotency_key: idempotency_key(headers)?,
            method,
            path,
            caller,
            rollback_to: None,
            patch: None,
            request: None,
        })
    }

    /// Records the change and answers as `record` says.
    pub async fn respond(self, state: &AppState) -> Result<Response, ApiError> {
        Ok(record(state, self, super::views::render)
            .await?
            .into_response())
    }

    /// A change of the whole spec (an enable, update or rollback), keeping the keys only their
    /// own routes set.
    fn carries(&self) -> bool {
        self.spec.is_some()
    }
}

/// What the write answers.
pub struct ChangeReply {
    pub status: StatusCode,
    pub body: Value,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub replayed: bool,
}

impl IntoResponse for ChangeReply {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        if let Some(loc) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert("location", loc);
        }
        if let Some(tag) = self.etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
            headers.insert("etag", tag);
        }
        if self.replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        response
    }
}

/// Renders a target (with its latest job) for the response body.
pub type Render = fn(&TargetRef, &TargetRow) -> Value;

/// Records `change` in one transaction and says what happened. A target zeroscale does not
/// manage yet is first checked with AWS for being the other kind (an async endpoint sent to a
/// component route, or the reverse), so the caller gets a 422 naming the right route instead of
/// a job that fails later. Only a first enable pays for it, and it runs with no database
/// connection or transaction held: AWS can take seconds, and a burst of first enables must not
/// drain the pool that every other request needs.
pub async fn record(
    state: &AppState,
    change: Change<'_>,
    render: Render,
) -> Result<ChangeReply, ApiError> {
    let mut create = state.aws.is_none();
    loop {
        let slot = state
            .write_slots
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable("the service is shutting down".into()))?;
        let recorded = record_once(state, &change, render, create).await;
        drop(slot);
        if let Some(reply) = recorded? {
            if reply.status == StatusCode::ACCEPTED {
                state.notifier.notify();
            }
            return Ok(reply);
        }
        // The target does not exist and nothing was written; the connection is back in the pool.
        if create {
            return Err(absent());
        }
        let aws = state.aws.as_ref().ok_or_else(absent)?;
        // Skipped when AWS is slow, failing or out of budget: it must never block a valid write.
        let check = crate::reconcile::kinds::wrong_kind(aws, &change.target);
        if let Ok(Some(message)) = tokio::time::timeout(KIND_CHECK_TIMEOUT, check).await {
            return Err(ApiError::WrongTargetKind(message));
        }
        create = true;
    }
}

/// One try at recording the change on one connection (or the Idempotency-Key's transaction).
/// None when the target does not exist and `create` is false: nothing was written.
async fn record_once(
    state: &AppState,
    change: &Change<'_>,
    render: Render,
    create: bool,
) -> Result<Option<ChangeReply>, ApiError> {
    let key = change.idempotency_key.as_deref().map(|key| KeyScope {
        actor: &change.caller.token_name,
        method: change.method,
        path: &change.path,
        key,
    });
    let Some(k) = key else {
        // No key: one statement in autocommit, one round trip.
        let mut conn = state.pool.acquire().await?;
        return apply(&mut conn, change, render, create).await;
    };
    let body_sha256 = body_hash(change);
    let mut tx = state.pool.begin().await?;
    if let Some(stored) = claim_key(&mut tx, &k, &body_sha256, state.idempotency_ttl).await? {
        tx.commit().await?;
        return Ok(Some(replay(stored)));
    }
    let Some(reply) = apply(&mut tx, change, render, create).await? else {
        return Ok(None); // the transaction rolls back as it drops
    };
    idempotency::store(
        &mut tx,
        &k,
        &body_sha256,
        reply.status.as_u16(),
        &reply.body,
        reply.location.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(reply))
}

/// Claims an Idempotency-Key inside the caller's transaction: 409 while another request with
/// it is in flight, 422 when it was used with another body, the stored answer when it was used
/// with this one, None when it is new (the caller stores its answer with `idempotency::store`
/// before committing). Every keyed write goes through here.
pub async fn claim_key(
    tx: &mut sqlx::PgConnection,
    k: &KeyScope<'_>,
    body_sha256: &[u8],
    ttl: std::time::Duration,
) -> Result<Option<idempotency::StoredResponse>, ApiError> {
    if !idempotency::try_lock(tx, k).await? {
        return Err(ApiError::Conflict {
            code: "idempotency_key_in_flight",
            detail: "a request with this Idempotency-Key is still being processed; retry shortly"
                .into(),
        });
    }
    match idempotency::find(tx, k, ttl).await? {
        Some(stored) if stored.body_sha256 != body_sha256 => Err(ApiError::IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body; use a new key for a new request".into(),
        )),
        found => Ok(found),
    }
}

/// The hash an Idempotency-Key's request is compared by. A rollback's body names a version;
/// other changes hash as they always did (keys stored before rollbacks existed still replay).
fn body_hash(change: &Change<'_>) -> Vec<u8> {
    let body = match (change.rollback_to, &change.request) {
        (_, Some(request)) => json!([change.method, change.path, request]),
        (None, None) => json!([change.enabled.unwrap_or(true), change.spec]),
        (Some(n), None) => json!([change.enabled.unwrap_or(true), change.spec, n]),
    };
    Sha256::digest(serde_json::to_vec(&body).unwrap_or_default()).to_vec()
}

/// The stored answer to a request made again with its Idempotency-Key.
fn replay(stored: idempotency::StoredResponse) -> ChangeReply {
    let etag = stored
        .response
        .pointer("/target/version")
        .and_then(Value::as_i64)
        .map(|v| format!("\"{v}\""));
    ChangeReply {
        status: StatusCode::from_u16(stored.status as u16).unwrap_or(StatusCode::OK),
        body: stored.response,
        location: stored.location,
        etag,
        replayed: true,
    }
}

/// How long the first enable of a target waits for AWS to tell the kinds apart.
const KIND_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

fn absent() -> ApiError {
    anyhow::anyhow!("the change function reported an absent target it was asked to create").into()
}

/// What `zs_record_change` did with a change: a closed set, matched exhaustively. An answer
/// the function never gives is a server error, never a 202.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The target does not exist and the change may not create it.
    Absent,
    /// The target does not exist, and the change needed it (If-Match, or a disable).
    Missing,
    /// If-Match named an older version.
    Stale,
    /// Identical to the current version: no new version, no job.
    Unchanged,
    /// A new version, with its job queued.
    Accepted,
}

impl Outcome {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "absent" => Self::Absent,
            "missing" => Self::Missing,
            "stale" => Self::Stale,
            "unchanged" => Self::Unchanged,
            "accepted" => Self::Accepted,
            _ => return None,
        })
    }
}

/// Records the change with one call of `zs_record_change` (migrations/..._lighter_change.sql):
/// lock or create the target, check `If-Match`, and unless nothing changed, fold into the
/// target's queued reconcile job or enqueue one, then write the new version and its `accepted`
/// audit event (which is also its history row). `conn` is a pooled connection (autocommit: the
/// function is atomic) or the idempotency key's transaction. `None` when the target does not
/// exist and `create` is false.
async fn apply(
    conn: &mut sqlx::PgConnection,
    change: &Change<'_>,
    render: Render,
    create: bool,
) -> Result<Option<ChangeReply>, ApiError> {
    let if_match = match change.if_match {
        None => None,
        Some(IfMatch::Any) => Some(-1),
        Some(IfMatch::Version(v)) => Some(v),
    };
    let recorded = record_in_db(conn, change, if_match, create).await?;
    let said = recorded.outcome.as_deref().unwrap_or_default();
    let outcome = Outcome::parse(said).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "zs_record_change answered outcome {said:?}, which this version does not know"
        ))
    })?;
    let row = match outcome {
        Outcome::Absent => return Ok(None),
        Outcome::Missing => return Err(missing(change)),
        Outcome::Stale | Outcome::Unchanged | Outcome::Accepted => recorded.target()?,
    };
    if outcome == Outcome::Stale {
        return Err(ApiError::PreconditionFailed(format!(
            "If-Match \"{}\" is stale: the current version is {}; GET it again and retry",
            if_match.unwrap_or_default(),
            row.version
        )));
    }
    let location = row.last_job_id.map(|id| format!("/operations/{id}"));
    let (changed, status, detail) = if outcome == Outcome::Unchanged {
        let detail = format!(
            "identical to the current version {}: no new version and no new job",
            row.version
        );
        (false, StatusCode::OK, detail)
    } else {
        let poll = location.as_deref().unwrap_or_default();
        let detail = format!(
            "accepted as version {}; poll {poll} to follow it",
            row.version
        );
        (true, StatusCode::ACCEPTED, detail)
    };
    Ok(Some(ChangeReply {
        status,
        body: json!({"changed": changed, "detail": detail, "target": render(&change.target, &row)}),
        location,
        etag: Some(format!("\"{}\"", row.version)),
        replayed: false,
    }))
}

/// The answer to a change whose target does not exist: with If-Match (an enable), the
/// precondition failed; a disable has nothing to turn off.
fn missing(change: &Change<'_>) -> ApiError {
    if change.enabled == Some(true) {
        ApiError::PreconditionFailed(format!(
            "If-Match was given but {} is not managed by zeroscale yet",
            change.target
        ))
    } else {
        ApiError::NotFound(format!("{} is not managed by zeroscale", change.target))
    }
}

/// One call of the change function for `change`, as its caller and request.
async fn record_in_db(
    conn: &mut sqlx::PgConnection,
    change: &Change<'_>,
    if_match: Option<i32>,
    create: bool,
) -> Result<crate::store::changes::Recorded, ApiError> {
    let caller = change.caller;
    let (name, job_target, request_id) = (
        change.target.name(),
        change.target.job_target(),
        current_request_id(),
    );
    let carried: Vec<String> = CARRIED.iter().map(|k| k.to_string()).collect();
    let input = crate::store::changes::ChangeInput {
        kind: change.target.kind(),
        name: &name,
        enabled: change.enabled,
        spec: change.spec.as_ref(),
        if_match,
        job_kind: crate::reconcile::RECONCILE_JOB,
        job_target: &job_target,
        token_name: &caller.token_name,
        on_behalf_of: caller.on_behalf_of.as_deref(),
        source_ip: caller.source_ip.as_deref(),
        user_agent: caller.user_agent.as_deref(),
        request_id: request_id.as_deref(),
        create,
        rollback_to: change.rollback_to,
        action: change.patch.as_ref().map(|(_, action)| *action),
        patch: change.patch.as_ref().map(|(patch, _)| patch),
        carry: change.carries().then_some(carried.as_slice()),
    };
    Ok(crate::store::changes::record(conn, &input).await?)
}

#[cfg(test)]
mod outcome_tests {
    use super::Outcome;

    #[test]
    fn every_outcome_the_function_gives_is_known_and_nothing_else() {
        for (s, o) in [
            ("absent", Outcome::Absent),
            ("missing", Outcome::Missing),
            ("stale", Outcome::Stale),
            ("unchanged", Outcome::Unchanged),
            ("accepted", Outcome::Accepted),
        ] {
            assert_eq!(Outcome::parse(s), Some(o));
        }
        assert_eq!(
            Outcome::parse("queued"),
            None,
            "an unknown answer is never a 202"
        );
    }
}
