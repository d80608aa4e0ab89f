//! The demo fleet of `serve --sandbox`: after start-up, zeroscale enables a handful of targets
//! in the in-process sandbox and drives them, through its own API functions and the sandbox's
//! control API (its clock, traffic and quotas), into every state the portal shows:
//!
//! | target                   | state          | how                                               |
//! |--------------------------|----------------|---------------------------------------------------|
//! | `chat-large`             | asleep         | idle for 16 minutes: target tracking scaled it in  |
//! | `fleet-batch/AllTraffic` | asleep         | the same, for an async endpoint variant           |
//! | `chat-small`             | warm           | woken and kept warm for 8 hours                   |
//! | `rerank`                 | paused         | paused for 6 hours                                |
//! | `embed`                  | waking         | a request at zero; the wake takes the 5-minute provisioning delay |
//! | `summarize`              | failed to wake | a request at zero with the account's quota for its instance type at 0 |
//!
//! Nothing here is faked: the events are what the observation pass reads from the sandbox's
//! scaling activities and alarms, as it would from AWS. The sandbox clock is moved forward to
//! get there in seconds, so it runs about 20 minutes ahead of the host's. A database that
//! already holds the fleet (a restart) is left as it is; the reconciler repairs the fresh
//! sandbox from it.

use std::time::Duration;

use anyhow::{bail, Context};
use axum::http::HeaderMap;
use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};

use crate::{
    api::{
        auth::Caller,
        controls::{self, PauseRequest, WakeRequest},
        targets::{self as api_targets, EnableQuery},
        AppState,
    },
    aws::AwsClients,
    domain::{
        ComponentName, ComponentSpec, EndpointName, JobState, TargetRef, TargetSpec, VariantName,
        VariantSpec,
    },
    store::targets,
};

/// The sandbox's provisioning delay in the demo: five minutes, about what AWS takes, so a wake
/// is visible for that long (`PUT /_sandbox/settings` shortens it).
const PROVISIONING_SECONDS: f64 = 300.0;

fn component(name: &str) -> TargetRef {
    TargetRef::Component(ComponentName::parse(name).expect("a valid demo name"))
}

fn spec(target: &TargetRef, team: &str) -> anyhow::Result<TargetSpec> {
    let body = json!({"labels": {"team": team, "env": "demo"}});
    Ok(match target {
        TargetRef::Component(_) => {
            TargetSpec::Component(serde_json::from_value::<ComponentSpec>(body)?)
        }
        TargetRef::EndpointVariant { .. } => {
            TargetSpec::Variant(serde_json::from_value::<VariantSpec>(body)?)
        }
    })
}

/// The sandbox's control API.
struct Control {
    http: reqwest::Client,
    url: String,
}

impl Control {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let resp = self
            .http
            .request(method, format!("{}/_sandbox{path}", self.url))
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("sandbox {path}: {status} {body}");
        }
        Ok(body)
    }

    async fn advance(&self, seconds: f64) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            "/clock",
            json!({"advance_seconds": seconds}),
        )
        .await
        .map(|_| ())
    }
}

/// Waits until every target's last job has finished (completed), up to `limit`, moving the
/// sandbox clock 15 s a second meanwhile: the jobs wait for AWS (Updating, capacity coming into
/// service) on their own backoff, and the demo gets there in seconds instead of minutes.
async fn settled(
    state: &AppState,
    sb: &Control,
    all: &[TargetRef],
    limit: Duration,
) -> anyhow::Result<()> {
    let until = tokio::time::Instant::now() + limit;
    loop {
        let mut waiting = Vec::new();
        for t in all {
            let row = targets::get(&state.pool, t.kind(), &t.name())
                .await?
                .context("demo target vanished")?;
            if row.job_state != Some(JobState::Completed) {
                waiting.push(format!("{t} ({:?})", row.job_state));
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() > until {
            bail!("demo targets not settled: {}", waiting.join(", "));
        }
        sb.advance(15.0).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Builds the demo fleet. Runs once, in the background, after the workers start.
pub async fn populate(state: AppState, aws: AwsClients, sandbox_url: String) -> anyhow::Result<()> {
    let batch = TargetRef::EndpointVariant {
        endpoint: EndpointName::parse("fleet-batch").expect("valid"),
        variant: VariantName::parse("AllTraffic").expect("valid"),
    };
    let fleet: Vec<(TargetRef, &str)> = vec![
        (component("chat-small"), "chat"),
        (component("chat-large"), "chat"),
        (component("embed"), "search"),
        (component("rerank"), "search"),
        (component("summarize"), "docs"),
        (batch, "batch"),
    ];
    if targets::get(&state.pool, "component", "chat-small")
        .await?
        .is_some()
    {
        tracing::info!(
            "demo fleet: already in this database; the reconciler brings the fresh sandbox to it"
        );
        return Ok(());
    }
    let sb = Control {
        http: reqwest::Client::new(),
        url: sandbox_url,
    };
    let mut settings = sb
        .call(reqwest::Method::GET, "/settings", json!({}))
        .await?;
    settings["provisioning_delay_seconds"] = json!(PROVISIONING_SECONDS);
    sb.call(reqwest::Method::PUT, "/settings", settings).await?;
    let caller = Caller {
        token_name: "demo".into(),
        scopes: vec!["read".into(), "write".into()],
        on_behalf_of: Some("serve --sandbox".into()),
        source_ip: None,
        user_agent: None,
    };
    let none = HeaderMap::new;
    let q = || EnableQuery { dry_run: None };
    for (t, team) in &fleet {
        api_targets::enable(&state, &caller, t.clone(), spec(t, team)?, q(), &none())
            .await
            .map_err(|e| anyhow::anyhow!("enabling {t}: {}", e.to_problem().detail))?;
    }
    let all: Vec<TargetRef> = fleet.iter().map(|(t, _)| t.clone()).collect();
    settled(&state, &sb, &all, Duration::from_secs(120)).await?;
    // Idle for 16 minutes: target tracking scales everything in to zero.
    sb.advance(16.0 * 60.0).await?;
    crate::reconcile::fleet::pass(&aws, &state.pool)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let soon = |h: i64| Some(Utc::now() + TimeDelta::hours(h));
    controls::pause(
        &state,
        &caller,
        component("rerank"),
        q(),
        &none(),
        PauseRequest {
            until: soon(6),
            reason: Some("load test on fleet-search; hold at zero".into()),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("pausing: {}", e.to_problem().detail))?;
    controls::wake(
        &state,
        &caller,
        component("chat-small"),
        q(),
        &none(),
        WakeRequest {
            copies: Some(1),
            keep_warm_for: Some("8h".into()),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("waking: {}", e.to_problem().detail))?;
    // The wake completes when its capacity is in service, after the provisioning delay.
    settled(&state, &sb, &all, Duration::from_secs(120)).await?;
    // The account's quota for summarize's instance type drops to 0 after its preflight passed;
    // then requests reach embed and summarize at zero.
    sb.call(
        reqwest::Method::PUT,
        "/quotas/ml.g6.xlarge",
        json!({"value": 0.0}),
    )
    .await?;
    for name in ["embed", "summarize"] {
        sb.call(
            reqwest::Method::POST,
            "/invoke",
            json!({"component": name, "count": 3}),
        )
        .await?;
    }
    sb.advance(61.0).await?;
    crate::reconcile::fleet::pass(&aws, &state.pool)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    tracing::info!("demo fleet ready: chat-large and fleet-batch asleep, chat-small warm, rerank paused, embed waking, summarize failed to wake");
    Ok(())
}
