//! Notifications: the `webhook_delivery` job that sends one delivery (signed, at least once,
//! retried with the job engine's backoff, never on a reconcile's path), and the periodic checks
//! that notice what no event says (a pause about to end, a target that never reaches zero).
//!
//! A delivery is a POST of JSON with:
//! - `Zeroscale-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the
//!   subscription's secret (Stripe's scheme: receivers recompute it and reject an old `t`);
//! - `Zeroscale-Delivery: <id>` (the same on every attempt: receivers de-duplicate by it) and
//!   `Zeroscale-Event: <kind>`.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::{
    config::SecretsKey,
    domain::webhook::{signature, NotificationKind},
    jobs::{JobContext, JobError, Registry},
    store::webhooks::{self, Notification, Outgoing, DELIVERY_JOB},
};

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// `pause_expiring` fires this long before a pause ends.
const PAUSE_NOTICE: Duration = Duration::from_secs(3600);

/// The `webhook_delivery` handler.
#[derive(Clone)]
pub struct Deliverer {
    pub pool: PgPool,
    /// Opens the subscriptions' secrets; None: deliveries fail (no key configured).
    pub key: Option<SecretsKey>,
    pub http: reqwest::Client,
}

impl Deliverer {
    pub fn new(pool: PgPool, key: Option<SecretsKey>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("zeroscale/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with rustls");
        Self { pool, key, http }
    }

    pub fn register(self, registry: Registry) -> Registry {
        registry.register(DELIVERY_JOB, self)
    }

    async fn deliver(&self, ctx: &JobContext) -> Result<Option<Value>, JobError> {
        let id = ctx.job.args["delivery_id"]
            .as_i64()
            .ok_or_else(|| JobError::permanent("a delivery job without a delivery_id"))?;
        let Some(d) = webhooks::outgoing(&self.pool, id)
            .await
            .map_err(JobError::database)?
        else {
            return Ok(Some(json!({"skipped": "the webhook was deleted"})));
        };
        if d.state == "delivered" {
            return Ok(Some(json!({"delivered": true})));
        }
        let last = ctx.job.attempt >= ctx.job.max_attempts;
        let secret = self
            .key
            .as_ref()
            .and_then(|k| k.open(&d.secret_nonce, &d.secret_sealed, d.url.as_bytes()));
        let Some(secret) = secret else {
            let why = "the webhook's secret cannot be opened: --secrets-key is unset or differs from the key it was sealed with";
            self.record(id, false, None, Some(why), true).await?;
            return Err(JobError::permanent(why));
        };
        let body = body(&d);
        let t = Utc::now().timestamp();
        let sent = self
            .http
            .post(&d.url)
            .header("content-type", "application/json")
            .header("zeroscale-signature", signature(&secret, t, &body))
            .header("zeroscale-delivery", d.id.to_string())
            .header("zeroscale-event", d.kind.as_str())
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                self.record(id, true, Some(r.status().as_u16().into()), None, false)
                    .await?;
                Ok(Some(
                    json!({"delivered": true, "status": r.status().as_u16()}),
                ))
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let why = format!("the receiver answered {status}");
                self.record(id, false, Some(status.into()), Some(&why), last)
                    .await?;
                Err(JobError::retryable(why))
            }
            Err(e) => {
                // Without the URL: a Slack webhook's URL is its credential.
                let why = format!("the request failed: {}", e.without_url());
                self.record(id, false, None, Some(&why), last).await?;
                Err(JobError::retryable(why))
            }
        }
    }

    async fn record(
        &self,
        id: i64,
        delivered: bool,
        status: Option<i32>,
        error: Option<&str>,
        last: bool,
    ) -> Result<(), JobError> {
        webhooks::record_attempt(&self.pool, id, delivered, status, error, last)
            .await
            .map_err(JobError::database)
    }
}

impl crate::jobs::JobHandler for Deliverer {
    fn run(&self, ctx: JobContext) -> crate::jobs::HandlerFuture {
        let this = self.clone();
        Box::pin(async move { this.deliver(&ctx).await })
    }
}

/// The bytes sent: zeroscale's envelope, or a Slack message.
fn body(d: &Outgoing) -> Vec<u8> {
    let p = &d.payload;
    let value = if d.format == "slack" {
        json!({"text": slack_text(&d.kind, p)})
    } else {
        json!({
            "id": d.id.to_string(),
            "type": d.kind,
            "created_at": d.created_at,
            "at": p["at"],
            "target": p["target"],
            "data": p["data"],
        })
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// One line a person reads in Slack.
fn slack_text(kind: &str, p: &Value) -> String {
    let target = format!(
        "{} `{}`",
        p["target"]["kind"]
            .as_str()
            .unwrap_or("target")
            .replace('_', " "),
        p["target"]["name"].as_str().unwrap_or("?")
    );
    let d = &p["data"];
    let what = match NotificationKind::parse(kind) {
        Some(NotificationKind::WakeFailed) => format!(
            "failed to wake ({}): {}",
            d["reason"].as_str().unwrap_or("other"),
            d["message"].as_str().unwrap_or("")
        ),
        Some(NotificationKind::WakeSlow) => format!(
            "woke slowly: {} s to capacity in service",
            d["wake_seconds"]
        ),
        Some(NotificationKind::Degraded) => format!(
            "is Degraded: {}",
            d["message"].as_str().unwrap_or("a scaling activity failed")
        ),
        Some(NotificationKind::DriftRepaired) => format!(
            "had drifted and was repaired ({})",
            d["drift"].as_str().unwrap_or("AWS differed")
        ),
        Some(NotificationKind::PauseExpiring) => {
            format!(
                "is paused until {}: scaling resumes then",
                d["until"].as_str().unwrap_or("?")
            )
        }
        Some(NotificationKind::NotReachingZero) => format!(
            "has not reached zero for {} days: scale-to-zero saves nothing",
            d["days"]
        ),
        None => kind.to_string(),
    };
    format!(":zzz: zeroscale: {target} {what}")
}

/// The notifications the periodic checks find now: pauses ending within the hour, and targets
/// that have not reached zero for as long as a subscription asks.
pub async fn check_periodic(pool: &PgPool) -> sqlx::Result<usize> {
    let mut found = Vec::new();
    for (id, until) in webhooks::pauses_ending(pool, PAUSE_NOTICE).await? {
        found.push(Notification::new(
            NotificationKind::PauseExpiring.as_str(),
            id,
            format!("until:{}", until.to_rfc3339()),
            Utc::now(),
            json!({"until": until}),
        ));
    }
    for (id, _, since) in webhooks::not_reaching_zero(pool).await? {
        let days = (Utc::now() - since).num_days() as i32;
        found.push(Notification {
            days_not_at_zero: Some(days),
            ..Notification::new(
                NotificationKind::NotReachingZero.as_str(),
                id,
                format!("since:{}", since.to_rfc3339()),
                Utc::now(),
                json!({"days": days, "at_zero_last": since}),
            )
        });
    }
    fan_out_all(pool, &found).await
}

/// Fans notifications out in one transaction; wakes the workers when any was queued.
pub async fn fan_out_all(pool: &PgPool, found: &[Notification]) -> sqlx::Result<usize> {
    if found.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let mut queued = 0;
    for n in found {
        queued += webhooks::fan_out(&mut tx, n).await?;
    }
    tx.commit().await?;
    if queued > 0 {
        let _ = crate::store::jobs::notify_workers(pool).await;
    }
    Ok(queued)
}

/// Runs [`check_periodic`] every `every` until `stop`.
pub async fn run_periodic(
    pool: PgPool,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = check_periodic(&pool).await {
                    tracing::warn!(error = %e, "notification checks failed; retrying next interval");
                }
            }
        }
    }
}
