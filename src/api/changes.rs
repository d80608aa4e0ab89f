//! The one transaction behind every write: idempotency key, target row lock, `If-Match`, new
//! version, job and `accepted` audit event commit together or not at all.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{auth::Caller, AppState};
use crate::{
    domain::TargetRef,
    error::{current_request_id, ApiError},
    jobs,
    store::{
        audit::NewAuditEvent,
        idempotency::{self, KeyScope},
        targets::{self, TargetRow},
    },
};

/// The job kind that converges a target to its desired version.
pub const RECONCILE_JOB: &str = "reconcile";

/// `If-Match` as sent by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the target must exist.
    Any,
    /// `"<version>"`: the target must be at exactly this version.
    Version(i32),
}

/// Parses `If-Match` (`*`, `"3"` or `W/"3"`).
pub fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, ApiError> {
    let Some(v) = headers.get("if-match") else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| ApiError::BadRequest("If-Match is not valid text".into()))?
        .trim();
    if s == "*" {
        return Ok(Some(IfMatch::Any));
    }
    // RFC 9110 entity tags are quoted: `"3"`, or the weak `W/"3"`.
    s.strip_prefix("W/")
        .unwrap_or(s)
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse().ok())
        .map(|n| Some(IfMatch::Version(n)))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "If-Match must be an ETag this service issued, like \"3\" (got {s})"
            ))
        })
}

/// Reads `Idempotency-Key` (1-255 visible ASCII characters).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_graphic()));
    s.map(|s| Some(s.to_string())).ok_or_else(|| {
        ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters".into())
    })
}

/// A desired-state change to record.
pub struct Change<'a> {
    pub target: TargetRef,
    /// Scale-to-zero on (enable/update) or off (disable).
    pub enabled: bool,
    /// The full desired spec; None keeps the current one (disable).
    pub spec: Option<Value>,
    pub if_match: Option<IfMatch>,
    pub idempotency_key: Option<String>,
    pub method: &'static str,
    pub path: String,
    pub caller: &'a Caller,
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

/// Records `change` in one transaction and says what happened.
pub async fn record(
    state: &AppState,
    change: Change<'_>,
    render: Render,
) -> Result<ChangeReply, ApiError> {
    let body_sha256 = Sha256::digest(
        serde_json::to_vec(&json!([change.enabled, change.spec])).unwrap_or_default(),
    )
    .to_vec();
    let mut tx = state.pool.begin().await?;
    let key = change.idempotency_key.as_deref().map(|key| KeyScope {
        actor: &change.caller.token_name,
        method: change.method,
        path: &change.path,
        key,
    });
    if let Some(k) = &key {
        if !idempotency::try_lock(&mut tx, k).await? {
            return Err(ApiError::Conflict {
                code: "idempotency_key_in_flight",
                detail:
                    "a request with this Idempotency-Key is still being processed; retry shortly"
                        .into(),
            });
        }
        if let Some(stored) = idempotency::find(&mut tx, k).await? {
            if stored.body_sha256 != body_sha256 {
                return Err(ApiError::IdempotencyKeyReused(
                    "this Idempotency-Key was already used with a different request body; use a new key for a new request".into(),
                ));
            }
            let etag = stored
                .response
                .pointer("/target/version")
                .and_then(Value::as_i64)
                .map(|v| format!("\"{v}\""));
            return Ok(ChangeReply {
                status: StatusCode::from_u16(stored.status as u16).unwrap_or(StatusCode::OK),
                body: stored.response,
                location: stored.location,
                etag,
                replayed: true,
            });
        }
    }
    let reply = apply(&mut tx, &change, render).await?;
    if let Some(k) = &key {
        idempotency::store(
            &mut tx,
            k,
            &body_sha256,
            reply.status.as_u16(),
            &reply.body,
            reply.location.as_deref(),
        )
        .await?;
    }
    tx.commit().await?;
    if reply.status == StatusCode::ACCEPTED {
        state.notifier.notify();
    }
    Ok(reply)
}

async fn lock_or_create(
    tx: &mut sqlx::PgConnection,
    change: &Change<'_>,
    spec: &Value,
) -> Result<(Option<TargetRow>, bool), ApiError> {
    let (kind, name) = (change.target.kind(), change.target.name());
    if let Some(row) = targets::lock(tx, kind, &name).await? {
        return Ok((Some(row), false));
    }
    if !change.enabled {
        return Err(ApiError::NotFound(format!(
            "{} is not managed by zeroscale",
            change.target
        )));
    }
    if let Some(IfMatch::Any | IfMatch::Version(_)) = change.if_match {
        return Err(ApiError::PreconditionFailed(format!(
            "If-Match was given but {} is not managed by zeroscale yet",
            change.target
        )));
    }
    match targets::insert(tx, kind, &name, true, spec).await? {
        Some(row) => Ok((Some(row), true)),
        // A concurrent request created it first; take its row like any other update.
        None => Ok((targets::lock(tx, kind, &name).await?, false)),
    }
}

async fn apply(
    tx: &mut sqlx::PgConnection,
    change: &Change<'_>,
    render: Render,
) -> Result<ChangeReply, ApiError> {
    let placeholder = change.spec.clone().unwrap_or(Value::Null);
    let (row, created) = lock_or_create(tx, change, &placeholder).await?;
    let current = row.ok_or_else(|| anyhow::anyhow!("target vanished while locked"))?;
    if !created {
        match change.if_match {
            Some(IfMatch::Version(v)) if v != current.version => {
                return Err(ApiError::PreconditionFailed(format!(
                    "If-Match \"{v}\" is stale: the current version is {}; GET it again and retry",
                    current.version
                )));
            }
            _ => {}
        }
    }
    let spec = change.spec.clone().unwrap_or_else(|| current.spec.clone());
    if !created && current.enabled == change.enabled && current.spec == spec {
        let body = json!({
            "changed": false,
            "detail": format!("identical to the current version {}: no new version and no new job", current.version),
            "target": render(&change.target, &current),
        });
        return Ok(ChangeReply {
            status: StatusCode::OK,
            location: current.last_job_id.map(|id| format!("/operations/{id}")),
            etag: Some(format!("\"{}\"", current.version)),
            body,
            replayed: false,
        });
    }
    let version = if created { 1 } else { current.version + 1 };
    let job = jobs::enqueue(
        tx,
        &jobs::new_job(
            RECONCILE_JOB,
            Some(change.target.job_target()),
            json!({"kind": change.target.kind(), "name": change.target.name(), "version": version}),
        ),
    )
    .await?;
    let action = match (change.enabled, created || !current.enabled) {
        (false, _) => "disable",
        (true, true) => "enable",
        (true, false) => "update",
    };
    let before = (!created).then(
        || json!({"version": current.version, "enabled": current.enabled, "spec": current.spec}),
    );
    let event = NewAuditEvent {
        actor: change.caller.token_name.clone(),
        on_behalf_of: change.caller.on_behalf_of.clone(),
        source_ip: change.caller.source_ip.clone(),
        user_agent: change.caller.user_agent.clone(),
        action: action.into(),
        request_id: current_request_id(),
        before,
        after: Some(json!({"version": version, "enabled": change.enabled, "spec": spec})),
        ..Default::default()
    };
    let updated = targets::record_version(
        tx,
        current.id,
        version,
        change.enabled,
        &spec,
        job.id,
        &event,
    )
    .await?
    .with_job(&job);
    let location = format!("/operations/{}", job.id);
    let body = json!({
        "changed": true,
        "detail": format!("accepted as version {version}; poll {location} to follow it"),
        "target": render(&change.target, &updated),
    });
    Ok(ChangeReply {
        status: StatusCode::ACCEPTED,
        body,
        location: Some(location),
        etag: Some(format!("\"{version}\"")),
        replayed: false,
    })
}
