//! Wake, keep-warm, pause and resume: changes to the time-bound parts of a target's desired
//! state (`keep_warm`, `pause`). Each is one more version through the same change transaction
//! as an enable (`changes`), so it is audited under its own action, honours `Idempotency-Key`
//! and `If-Match`, and has `?dry_run=true`; the job carries it out with AWS's own mechanisms
//! (MinCapacity and an `at()` scheduled action, SuspendedState), which hold while zeroscale is
//! down. The routes of each kind (`kind_routes`) parse the path and carry the OpenAPI text.

use std::time::Duration;

use axum::{http::HeaderMap, response::Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{
    auth::Caller,
    changes::{self, Change},
    targets::{self, EnableQuery},
    AppState,
};
use crate::{
    domain::{KeepWarm, Pause, TargetRef, TargetSpec},
    error::ApiError,
    store::targets as stored,
};

/// `POST .../wake`.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WakeRequest {
    /// Copies (instances, for a variant) to bring up now and hold (default 1).
    #[schema(minimum = 1, maximum = 1000, example = 1)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "instances")]
    pub copies: Option<u32>,
    /// How long to hold them, such as `30m` or `2h` (default `--wake-default`, 1 hour; at
    /// most `--keep-warm-max`).
    #[schema(example = "30m")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_warm_for: Option<String>,
}

/// `PUT .../keep-warm`: a pin until a given time. `until` is required; `copies` defaults to 1
/// (instances, for a variant: `instances` is accepted for it).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepWarmRequest {
    /// When the pin ends (RFC 3339; at most `--keep-warm-max` ahead).
    pub until: Option<DateTime<Utc>>,
    /// At least this many are kept (copies; instances for a variant).
    #[schema(minimum = 1, maximum = 1000, example = 1)]
    #[serde(skip_serializing_if = "Option::is_none", alias = "instances")]
    pub copies: Option<u32>,
    /// Why (shown on the target and in the audit log; at most 500 characters).
    pub reason: Option<String>,
}

/// `POST .../pause`.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// When zeroscale resumes scaling by itself (RFC 3339; default `--pause-default` ahead, 1
    /// hour; at most `--pause-max`, 7 days).
    pub until: Option<DateTime<Utc>>,
    /// Why (shown in the `Paused` condition; at most 500 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A control route: its audited action, its last path segment and its method.
type Route = (&'static str, &'static str, &'static str);
const WAKE: Route = ("wake", "wake", "POST");
const KEEP_WARM: Route = ("keep_warm", "keep-warm", "PUT");
const UNPIN: Route = ("unpin", "keep-warm", "DELETE");
const PAUSE: Route = ("pause", "pause", "POST");
const RESUME: Route = ("resume", "resume", "POST");

/// What a control route asks of the change transaction.
struct Hold<'a> {
    /// The spec key set or (None) removed.
    key: &'static str,
    value: Option<Value>,
    /// The audited action and the route's last path segment.
    action: &'static str,
    segment: &'static str,
    method: &'static str,
    /// The request as sent (what an Idempotency-Key's replay is compared by).
    request: Value,
    /// Copies to check against the max capacity and the quota.
    copies: Option<u32>,
    caller: &'a Caller,
}

impl<'a> Hold<'a> {
    /// Sets `key` to `value` (None removes it) through `route`.
    fn new(key: &'static str, value: Option<Value>, route: Route, caller: &'a Caller) -> Self {
        let (action, segment, method) = route;
        Self {
            key,
            value,
            action,
            segment,
            method,
            request: json!({}),
            copies: None,
            caller,
        }
    }
}

/// Wake: at least `copies` now, held for `keep_warm_for`. On a target already pinned, the
/// larger copies and the later end win (waking something warm extends its window).
pub async fn wake(
    state: &AppState,
    caller: &Caller,
    target: TargetRef,
    q: EnableQuery,
    headers: &HeaderMap,
    req: WakeRequest,
) -> Result<Response, ApiError> {
    let copies = copies(req.copies)?;
    let window = match &req.keep_warm_for {
        None => state.holds.wake_default,
        Some(s) => humantime::parse_duration(s).map_err(|_| {
            ApiError::invalid_field("keep_warm_for", "must be a duration such as 30m or 2h")
        })?,
    };
    let until = now() + within(window, state.holds.keep_warm_max, "keep_warm_for")?;
    let row = current(state, &target).await?;
    let pin = match spec_of(&target, &row)?
        .keep_warm()
        .filter(|p| p.active(Utc::now()))
    {
        Some(p) => KeepWarm {
            until: until.max(p.until),
            copies: copies.max(p.copies),
            reason: p.reason.clone(),
            by: by(caller),
        },
        None => KeepWarm {
            until,
            copies,
            reason: Some("wake".into()),
            by: by(caller),
        },
    };
    let hold = Hold {
        request: json!(req),
        copies: Some(pin.copies),
        ..Hold::new("keep_warm", Some(json!(pin)), WAKE, caller)
    };
    record(state, target, row, q, headers, hold).await
}

/// Pin: at least `copies` until `until`.
pub async fn keep_warm(
    state: &AppState,
    caller: &Caller,
    target: TargetRef,
    q: EnableQuery,
    headers: &HeaderMap,
    req: KeepWarmRequest,
) -> Result<Response, ApiError> {
    let copies = copies(req.copies)?;
    let until = req
        .until
        .ok_or_else(|| ApiError::invalid_field("until", "is required (RFC 3339)"))?;
    ahead(until, state.holds.keep_warm_max, "until")?;
    let row = current(state, &target).await?;
    let pin = KeepWarm {
        until,
        copies,
        reason: reason(&req.reason)?,
        by: by(caller),
    };
    let hold = Hold {
        request: json!(req),
        copies: Some(copies),
        ..Hold::new("keep_warm", Some(json!(pin)), KEEP_WARM, caller)
    };
    record(state, target, row, q, headers, hold).await
}

/// Pause scaling until `until` (then zeroscale resumes it by itself).
pub async fn pause(
    state: &AppState,
    caller: &Caller,
    target: TargetRef,
    q: EnableQuery,
    headers: &HeaderMap,
    req: PauseRequest,
) -> Result<Response, ApiError> {
    let now = now();
    let until = match req.until {
        Some(u) => u,
        None => now + state.holds.pause_default,
    };
    ahead(until, state.holds.pause_max, "until")?;
    let row = current(state, &target).await?;
    let pause = Pause {
        until,
        reason: reason(&req.reason)?,
        by: by(caller),
        since: now,
    };
    let hold = Hold {
        request: json!(req),
        ..Hold::new("pause", Some(json!(pause)), PAUSE, caller)
    };
    record(state, target, row, q, headers, hold).await
}

/// What `lift` ends now.
pub enum Lift {
    /// The keep-warm window (MinCapacity back to what the schedules hold), audited as `unpin`.
    Pin,
    /// The pause (scaling resumed), audited as `resume`.
    Pause,
}

/// Ends a pin or a pause now.
pub async fn lift(
    state: &AppState,
    caller: &Caller,
    target: TargetRef,
    q: EnableQuery,
    headers: &HeaderMap,
    what: Lift,
) -> Result<Response, ApiError> {
    let row = current(state, &target).await?;
    let hold = match what {
        Lift::Pin => Hold::new("keep_warm", None, UNPIN, caller),
        Lift::Pause => Hold::new("pause", None, RESUME, caller),
    };
    record(state, target, row, q, headers, hold).await
}

/// A reason as stored and shown: printable text, at most 500 characters.
fn reason(r: &Option<String>) -> Result<Option<String>, ApiError> {
    match r {
        Some(r) if r.chars().count() > 500 || r.chars().any(char::is_control) => Err(
            ApiError::invalid_field("reason", "must be at most 500 characters of printable text"),
        ),
        Some(r) => Ok(Some(r.clone())),
        None => Ok(None),
    }
}

fn copies(c: Option<u32>) -> Result<u32, ApiError> {
    let c = c.unwrap_or(1);
    if !(1..=1000).contains(&c) {
        return Err(ApiError::invalid_field(
            "copies",
            format!("must be between 1 and 1000 (got {c})"),
        ));
    }
    Ok(c)
}

/// A window of at least a minute and at most `max`.
fn within(d: Duration, max: Duration, field: &str) -> Result<chrono::Duration, ApiError> {
    if d < Duration::from_secs(60) || d > max {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "must be between 1 minute and {} (the service's maximum)",
                words(max)
            ),
        ));
    }
    chrono::Duration::from_std(d).map_err(|_| ApiError::invalid_field(field, "is too long"))
}

/// A time in the future, at most `max` ahead.
fn ahead(until: DateTime<Utc>, max: Duration, field: &str) -> Result<(), ApiError> {
    let left = (until - Utc::now()).to_std().unwrap_or_default();
    if left.is_zero() {
        return Err(ApiError::invalid_field(field, "must be in the future"));
    }
    if left > max {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "must be at most {} ahead (the service's maximum)",
                words(max)
            ),
        ));
    }
    Ok(())
}

/// A duration as people write it: `7 days`, `36 hours`, else humantime's form.
fn words(d: Duration) -> String {
    let (secs, day, hour) = (d.as_secs(), 86_400, 3600);
    match secs {
        s if s % day == 0 => format!("{} day{}", s / day, if s == day { "" } else { "s" }),
        s if s % hour == 0 => format!("{} hour{}", s / hour, if s == hour { "" } else { "s" }),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// Now, to the second (the times zeroscale computes are shown and sent to AWS in seconds).
fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// Who made it: the token, and the portal user it acted for.
fn by(caller: &Caller) -> String {
    match &caller.on_behalf_of {
        Some(user) => format!("{user} (via {})", caller.token_name),
        None => caller.token_name.clone(),
    }
}

/// The managed target, which must have scale-to-zero on.
async fn current(state: &AppState, target: &TargetRef) -> Result<stored::TargetRow, ApiError> {
    let Some(row) = stored::get(&state.pool, target.kind(), &target.name()).await? else {
        return Err(targets::not_managed(state, target).await);
    };
    if !row.enabled {
        return Err(ApiError::Conflict {
            code: "scale_to_zero_off",
            detail: format!(
                "scale-to-zero is off for {target}: enable it first (POST {}/scale-to-zero)",
                target.api_path()
            ),
        });
    }
    Ok(row)
}

fn spec_of(target: &TargetRef, row: &stored::TargetRow) -> Result<TargetSpec, ApiError> {
    TargetSpec::from_stored(target.target_kind(), &row.spec)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))
}

/// Checks the change against the current spec (a pin while paused is refused, the new spec
/// must be valid, copies must fit the max capacity and the quota), then answers a dry run or
/// records it.
async fn record(
    state: &AppState,
    target: TargetRef,
    row: stored::TargetRow,
    q: EnableQuery,
    headers: &HeaderMap,
    hold: Hold<'_>,
) -> Result<Response, ApiError> {
    changes::check_headers(headers)?;
    let now = Utc::now();
    let spec = spec_of(&target, &row)?;
    if hold.key == "keep_warm" && hold.value.is_some() {
        if let Some(p) = spec.pause().filter(|p| p.active(now)) {
            return Err(ApiError::Conflict {
                code: "paused",
                detail: format!(
                    "{target} is paused until {} (scaling is suspended): resume it first (POST {}/resume)",
                    p.until.to_rfc3339(),
                    target.api_path()
                ),
            });
        }
    }
    let mut next = row.spec.clone();
    match (&hold.value, next.as_object_mut()) {
        (Some(v), Some(o)) => {
            o.insert(hold.key.into(), v.clone());
        }
        (None, Some(o)) => {
            o.remove(hold.key);
        }
        _ => {}
    }
    let next = TargetSpec::from_stored(target.target_kind(), &next)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
    next.validate().map_err(targets::invalid_spec)?;
    if let (Some(copies), Some(aws)) = (hold.copies, state.aws.as_ref()) {
        crate::reconcile::warm::check_copies(aws, &target, &next, copies)
            .await
            .map_err(|why| ApiError::invalid_field("copies", why))?;
    }
    if q.dry_run.unwrap_or(false) {
        return targets::run_dry(state, &target, &next).await;
    }
    let path = format!("{}/{}", target.api_path(), hold.segment);
    let change = Change {
        patch: Some((json!({ hold.key: hold.value }), hold.action)),
        request: Some(hold.request),
        ..Change::to(target, (hold.method, path), hold.caller, headers)?
    };
    change.respond(state).await
}
