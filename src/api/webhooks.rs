//! `/webhooks`: subscriptions to notifications, and each one's delivery log. A secret goes in
//! once and never comes back out: it is sealed before it is stored, and no answer or log line
//! carries it. A URL is shown with its credential-bearing path masked.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    auth::{Reader, Writer},
    extract::{ApiJson, ApiQuery},
    problems,
    views::Page,
    AppState,
};
use crate::{
    domain::webhook::{redact_url, NewWebhook, NotificationKind, WebhookFormat},
    error::{ApiError, Problem},
    store::{
        idempotency::{self, KeyScope},
        webhooks::{self, NewWebhookRow, WebhookRow},
    },
};

const CURSOR_SCOPE: &str = "webhooks";
const LOG_SCOPE: &str = "deliveries";

/// A subscription as shown (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    pub id: i64,
    /// The URL with its path masked after the first segment (a Slack URL is a credential).
    pub url: String,
    pub kinds: Vec<NotificationKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub labels: Option<Value>,
    pub format: WebhookFormat,
    pub slow_wake_seconds: i32,
    pub not_at_zero_days: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

fn view(r: WebhookRow) -> Webhook {
    Webhook {
        id: r.id,
        url: redact_url(&r.url),
        kinds: r
            .kinds
            .iter()
            .filter_map(|k| NotificationKind::parse(k))
            .collect(),
        labels: r.labels,
        format: if r.format == "slack" {
            WebhookFormat::Slack
        } else {
            WebhookFormat::Json
        },
        slow_wake_seconds: r.slow_wake_seconds,
        not_at_zero_days: r.not_at_zero_days,
        created_by: r.created_by,
        created_at: r.created_at,
    }
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// The webhook id in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookPath {
    /// Webhook id
    id: String,
}

fn id_of(p: &WebhookPath) -> Result<i64, ApiError> {
    p.id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid_field("id", "must be a whole number from 1"))
}

async fn found(state: &AppState, id: i64) -> Result<WebhookRow, ApiError> {
    webhooks::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook {id}")))
}

/// Subscribe a URL to notifications.
///
/// Deliveries are POSTed as JSON (or as a Slack message with `format: slack`), at least once,
/// retried with backoff for about 17 minutes, each signed: `Zeroscale-Signature:
/// t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under `secret`, so a receiver can
/// check it and refuse an old `t` (a replay). `Zeroscale-Delivery` is the same on every attempt.
/// A retried POST with the same `Idempotency-Key` gets the first answer again, creating nothing.
#[utoipa::path(post, path = "/webhooks", operation_id = "create_webhook", tag = "events",
    params(super::changes::IdempotencyHeader),
    request_body(content = NewWebhook, example = json!({"url": "https://hooks.example.com/zeroscale",
        "kinds": ["wake_failed", "wake_slow"], "secret": "whsec_9f8e7d6c5b4a39281706", "labels": {"team": "search"}})),
    responses(
        (status = 201, description = "Subscribed (the secret is not shown again)", body = Webhook),
        problems::Write,
        (status = 422, description = "Invalid URL, kinds, secret, labels or thresholds; errors[].field names each", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No --secrets-key: secrets cannot be sealed, so no webhook can be stored", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Writer(caller): Writer,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<NewWebhook>,
) -> Result<Response, ApiError> {
    req.check().map_err(super::targets::invalid_spec)?;
    let key = state.secrets.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "webhooks need --secrets-key (ZEROSCALE_SECRETS_KEY) to seal their secrets".into(),
        )
    })?;
    let idempotency_key = super::changes::idempotency_key(&headers)?;
    let scope = idempotency_key.as_deref().map(|k| KeyScope {
        actor: &caller.token_name,
        method: "POST",
        path: "/webhooks",
        key: k,
    });
    // Compared by a hash of the request (the secret included: a hash, never the secret).
    let body_sha256 = {
        use sha2::Digest;
        let request = serde_json::json!([
            req.url,
            req.kinds,
            req.secret,
            req.labels,
            req.format,
            req.slow_wake_seconds,
            req.not_at_zero_days
        ]);
        sha2::Sha256::digest(serde_json::to_vec(&request).unwrap_or_default()).to_vec()
    };
    let mut tx = state.pool.begin().await?;
    if let Some(k) = &scope {
        if let Some(stored) =
            super::changes::claim_key(&mut tx, k, &body_sha256, state.idempotency_ttl).await?
        {
            tx.commit().await?;
            let status = StatusCode::from_u16(stored.status as u16).unwrap_or(StatusCode::CREATED);
            return Ok((
                status,
                [("idempotent-replayed", "true")],
                Json(stored.response),
            )
                .into_response());
        }
    }
    // Bound to the URL: a sealed secret copied onto another webhook's row does not open.
    let (secret_nonce, secret_sealed) = key.seal(req.secret.as_bytes(), req.url.as_bytes());
    let mut kinds: Vec<String> = req.kinds.iter().map(|k| k.as_str().to_string()).collect();
    kinds.sort();
    kinds.dedup();
    let row = webhooks::create(
        &mut tx,
        &NewWebhookRow {
            url: &req.url,
            kinds,
            labels: req.labels.as_ref().map(|l| serde_json::json!(l)),
            format: req.format.as_str(),
            slow_wake_seconds: req.slow_wake_seconds as i32,
            not_at_zero_days: req.not_at_zero_days as i32,
            secret_nonce,
            secret_sealed,
            created_by: &caller.token_name,
        },
    )
    .await?;
    let id = row.id;
    let shown = serde_json::to_value(view(row)).map_err(|e| ApiError::Internal(e.into()))?;
    if let Some(k) = &scope {
        idempotency::store(
            &mut tx,
            k,
            &body_sha256,
            StatusCode::CREATED.as_u16(),
            &shown,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(webhook_id = id, by = %caller.token_name, "webhook created");
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

/// List the subscriptions (never their secrets).
#[utoipa::path(get, path = "/webhooks", operation_id = "list_webhooks", tag = "events",
    params(PageQuery),
    responses((status = 200, description = "A page of webhooks", body = Page<Webhook>), problems::ReadList)
)]
pub async fn list(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Webhook>>, ApiError> {
    let limit = super::extract::page_limit(q.limit)?;
    let after = super::extract::parse_cursor(CURSOR_SCOPE, q.cursor, |id: &i64| *id > 0)?;
    let mut rows = webhooks::list(&state.pool, after, limit + 1).await?;
    let next_cursor = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        super::extract::cursor(
            CURSOR_SCOPE,
            &rows.last().map(|r| r.id).unwrap_or_default().to_string(),
        )
    });
    Ok(Json(Page {
        items: rows.into_iter().map(view).collect(),
        next_cursor,
    }))
}

/// Read one subscription.
#[utoipa::path(get, path = "/webhooks/{id}", operation_id = "get_webhook", tag = "events",
    params(WebhookPath),
    responses(
        (status = 200, description = "The webhook", body = Webhook),
        problems::WebhookRead,
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    super::extract::ApiPath(p): super::extract::ApiPath<WebhookPath>,
) -> Result<Json<Webhook>, ApiError> {
    Ok(Json(view(found(&state, id_of(&p)?).await?)))
}

/// Unsubscribe: the webhook and its delivery log are deleted; queued deliveries are dropped.
#[utoipa::path(delete, path = "/webhooks/{id}", operation_id = "delete_webhook", tag = "events",
    params(WebhookPath),
    responses(
        (status = 204, description = "Deleted"),
        problems::WebhookWrite,
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Writer(caller): Writer,
    super::extract::ApiPath(p): super::extract::ApiPath<WebhookPath>,
) -> Result<StatusCode, ApiError> {
    let id = id_of(&p)?;
    if !webhooks::delete(&state.pool, id).await? {
        return Err(ApiError::NotFound(format!("no webhook {id}")));
    }
    tracing::info!(webhook_id = id, by = %caller.token_name, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// One delivery: what it reported and how sending it went.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub kind: NotificationKind,
    /// What it reports (`<kind>:<target id>:<source>`): one delivery per subject.
    pub subject: String,
    /// `pending` (to be tried, or retrying), `delivered`, or `failed` (attempts used up).
    pub state: String,
    pub attempts: i32,
    /// The receiver's last HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A webhook's delivery log, newest first.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", operation_id = "webhook_deliveries", tag = "events",
    params(WebhookPath, PageQuery),
    responses(
        (status = 200, description = "A page of deliveries, newest first", body = Page<Delivery>),
        problems::ReadQuery,
        problems::WebhookRead,
    )
)]
pub async fn deliveries(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    super::extract::ApiPath(p): super::extract::ApiPath<WebhookPath>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Delivery>>, ApiError> {
    let id = id_of(&p)?;
    let limit = super::extract::page_limit(q.limit)?;
    let before = super::extract::parse_cursor(LOG_SCOPE, q.cursor, |id: &i64| *id > 0)?;
    found(&state, id).await?;
    let mut rows = webhooks::deliveries(&state.pool, id, before, limit + 1).await?;
    let next_cursor = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        super::extract::cursor(
            LOG_SCOPE,
            &rows.last().map(|r| r.id).unwrap_or_default().to_string(),
        )
    });
    let items = rows
        .into_iter()
        .filter_map(|r| {
            Some(Delivery {
                id: r.id,
                kind: NotificationKind::parse(&r.kind)?,
                subject: r.subject,
                state: r.state,
                attempts: r.attempts,
                last_status: r.last_status,
                last_error: r.last_error,
                created_at: r.created_at,
                last_attempt_at: r.last_attempt_at,
                delivered_at: r.delivered_at,
            })
        })
        .collect();
    Ok(Json(Page { items, next_cursor }))
}
