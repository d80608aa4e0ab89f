//! The protocol-level AWS sandbox: an HTTP server that the real AWS SDK clients and the aws CLI
//! talk to over the real wire protocols (SageMaker, Application Auto Scaling, CloudWatch,
//! Service Quotas and STS on one port), with AWS's documented semantics, IAM enforcement of an
//! attached policy, a controllable clock, fault injection and a log of every call. Control API
//! under `/_sandbox/`.
//!
//! Its own crate so that a production build of zeroscale (`--no-default-features`) carries none
//! of it: the control API has no authentication and must never run beside real AWS credentials.

pub mod autoscaling;
pub mod cloudwatch;
mod control;
pub mod iam;
pub mod params;
pub mod protocol;
pub mod quotas;
pub mod sagemaker;
pub mod sim;
pub mod sts;
pub mod world;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    Router,
};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use protocol::{AwsError, AwsRequest, Service};
use world::{CallRecord, Clock, World};

/// Shared handle on the sandbox's world.
#[derive(Clone, Default)]
pub struct Sandbox {
    world: Arc<Mutex<World>>,
}

impl Sandbox {
    /// An empty world on real time.
    pub fn new() -> Self {
        Self {
            world: Arc::new(Mutex::new(World::new(Clock::default()))),
        }
    }

    /// Locks the world (operations are short and never await while holding it).
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The HTTP router: AWS protocols at `/` and `/service/...`, control API at `/_sandbox/`.
    pub fn router(&self) -> Router {
        Router::new()
            .nest("/_sandbox", control::routes())
            .fallback(aws)
            .with_state(self.clone())
    }

    /// Binds and serves until `stop`; also ticks the simulation every second so that alarms
    /// and scaling play out on real time without anyone calling.
    pub async fn serve(self, listener: TcpListener, stop: CancellationToken) -> anyhow::Result<()> {
        let ticker = self.clone();
        let tick_stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! { _ = tick_stop.cancelled() => return, _ = tick.tick() => sim::settle(&mut ticker.world()) }
            }
        });
        axum::serve(listener, self.router())
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await?;
        Ok(())
    }

    /// Starts on `addr` in the background; returns the bound address.
    pub async fn start(
        self,
        addr: SocketAddr,
        stop: CancellationToken,
    ) -> anyhow::Result<SocketAddr> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("sandbox cannot listen on {addr}: {e}"))?;
        let bound = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(e) = self.serve(listener, stop).await {
                tracing::error!(error = %e, "sandbox server failed");
            }
        });
        tracing::info!(%bound, "AWS sandbox listening");
        Ok(bound)
    }

    /// Seeds the demo world of `serve --sandbox` (see control::seed for the document shape).
    pub fn seed(&self, doc: &Value) -> Result<Value, String> {
        control::seed(&mut self.world(), doc)
    }
}

/// The account's request rate for Application Auto Scaling (a token bucket on real time, since
/// rate limits are about wall-clock traffic, not the simulated clock).
fn over_account_rate(w: &mut World, req: &AwsRequest) -> bool {
    let Some(rate) = w
        .settings
        .autoscaling_requests_per_second
        .filter(|_| req.service == Service::AutoScaling)
    else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let (tokens, last) = w.autoscaling_bucket;
    let tokens = if last == 0.0 {
        rate
    } else {
        (tokens + (now - last) * rate).min(rate)
    };
    if tokens >= 1.0 {
        w.autoscaling_bucket = (tokens - 1.0, now);
        false
    } else {
        w.autoscaling_bucket = (tokens, now);
        true
    }
}

/// An injected bare status (empty body) for this call, if any.
fn take_bare_status(w: &mut World, req: &AwsRequest) -> Option<StatusCode> {
    let f = w.faults.get_mut(req.operation.as_str())?;
    let status = f.status.filter(|_| f.times > 0)?;
    f.times -= 1;
    StatusCode::from_u16(status).ok()
}

/// Injected fault for this call, if any (and the latency to add).
fn take_fault(w: &mut World, req: &AwsRequest) -> (Option<AwsError>, u64) {
    if over_account_rate(w, req) {
        return (
            Some(AwsError::client("ThrottlingException", "Rate exceeded")),
            0,
        );
    }
    let mut latency = 0;
    for key in [req.operation.as_str(), "*"] {
        if let Some(f) = w.faults.get_mut(key) {
            latency = latency.max(f.latency_ms);
            if f.throttle > 0 {
                f.throttle -= 1;
                let code = if req.service == Service::CloudWatch {
                    "Throttling"
                } else {
                    "ThrottlingException"
                };
                return (Some(AwsError::client(code, "Rate exceeded")), latency);
            }
            if f.fail > 0 {
                f.fail -= 1;
                let code = match req.service {
                    Service::AutoScaling => "InternalServiceException",
                    Service::CloudWatch => "InternalServiceError",
                    _ => "InternalFailure",
                };
                return (
                    Some(AwsError {
                        code,
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                        message: "injected failure".into(),
                    }),
                    latency,
                );
            }
        }
    }
    (None, latency)
}

async fn aws(State(sb): State<Sandbox>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let req = match protocol::decode(uri.path(), &headers, &body) {
        Ok(r) => r,
        Err(msg) => {
            return (
                StatusCode::BAD_REQUEST,
                [("x-amzn-requestid", request_id)],
                format!("{{\"__type\":\"UnknownOperationException\",\"message\":{msg:?}}}"),
            )
                .into_response();
        }
    };
    if let Some(status) = take_bare_status(&mut sb.world(), &req) {
        return (status, [("x-amzn-requestid", request_id)]).into_response();
    }
    let (fault, latency) = take_fault(&mut sb.world(), &req);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let mut authorized = Vec::new();
    let result = match fault {
        Some(e) => Err(e),
        None => {
            let mut w = sb.world();
            sim::settle(&mut w);
            let checks = iam::checks(&w, req.service, &req.operation, &req.params);
            authorized = checks.iter().map(|c| c.action.clone()).collect();
            let (op, p) = (req.operation.as_str(), &req.params);
            let out = iam::authorize(&w, req.service, &checks).and_then(|()| match req.service {
                Service::SageMaker => sagemaker::handle(&mut w, op, p),
                Service::AutoScaling => autoscaling::handle(&mut w, op, p),
                Service::CloudWatch => cloudwatch::handle(&mut w, op, p),
                Service::ServiceQuotas => quotas::handle(&mut w, op, p),
                Service::Sts => sts::handle(&mut w, op, p),
            });
            if out.is_ok() {
                iam::after_success(&mut w, req.service, op, p);
            }
            drop(w);
            out
        }
    };
    let mut w = sb.world();
    let seq = w.calls.len() as u64 + 1;
    let at = w.now();
    w.calls.push(CallRecord {
        seq,
        at,
        service: req.service.name(),
        operation: req.operation.clone(),
        protocol: req.protocol,
        params: req.params.clone(),
        error: result.as_ref().err().map(|e| e.code.to_string()),
        authorized,
        request_id: request_id.clone(),
        response: result.as_ref().ok().cloned(),
    });
    drop(w);
    match result {
        Ok(out) => protocol::success(req.protocol, &req.operation, &request_id, out),
        Err(e) => protocol::error(req.protocol, req.service, &request_id, &e),
    }
}

/// The demo world of `zeroscale serve --sandbox` and `zeroscale-sandbox --demo`: an endpoint
/// hosting one inference component (seed 000) and an async endpoint (seed 001), both
/// ml.g5.xlarge with an instance quota of 4. The document shape is `POST /_sandbox/seed`'s.
pub fn demo_world() -> Value {
    serde_json::json!({
        // The account never raised its quota: AWS's default is what is in force.
        "default_quotas": {"ml.g5.xlarge": 4},
        "endpoints": [
            {"name": "demo-endpoint", "variant": "AllTraffic", "instance_type": "ml.g5.xlarge",
             "min_instances": 0, "max_instances": 4, "initial_instances": 1},
            {"name": "demo-async-endpoint", "variant": "AllTraffic", "instance_type": "ml.g5.xlarge",
             "initial_instances": 1, "async": true}
        ],
        "components": [{"name": "demo-component", "endpoint": "demo-endpoint", "variant": "AllTraffic", "copies": 1}]
    })
}

/// The demo fleet `serve --sandbox` adds to [`demo_world`] and then drives into every state the
/// portal shows (asleep, waking, warm, paused, failed to wake): endpoints on instance types of
/// their own, so their quotas are independent of the demo world's ml.g5.xlarge. Same document
/// shape as `POST /_sandbox/seed`.
pub fn demo_fleet() -> Value {
    serde_json::json!({
        "default_quotas": {"ml.g5.2xlarge": 16, "ml.g6.xlarge": 4},
        "endpoints": [
            {"name": "fleet-chat", "variant": "AllTraffic", "instance_type": "ml.g5.2xlarge",
             "min_instances": 0, "max_instances": 4, "initial_instances": 2},
            {"name": "fleet-search", "variant": "AllTraffic", "instance_type": "ml.g5.2xlarge",
             "min_instances": 0, "max_instances": 4, "initial_instances": 2},
            {"name": "fleet-docs", "variant": "AllTraffic", "instance_type": "ml.g6.xlarge",
             "min_instances": 0, "max_instances": 4, "initial_instances": 1},
            {"name": "fleet-batch", "variant": "AllTraffic", "instance_type": "ml.g5.2xlarge",
             "initial_instances": 1, "async": true}
        ],
        "components": [
            {"name": "chat-small", "endpoint": "fleet-chat", "copies": 1},
            {"name": "chat-large", "endpoint": "fleet-chat", "copies": 1},
            {"name": "embed", "endpoint": "fleet-search", "copies": 1},
            {"name": "rerank", "endpoint": "fleet-search", "copies": 1},
            {"name": "summarize", "endpoint": "fleet-docs", "copies": 1}
        ]
    })
}

/// The standalone sandbox (`zeroscale-sandbox`, `zeroscale sandbox`): listens on `listen`,
/// optionally seeded with [`demo_world`], until `stop`.
pub async fn run(listen: SocketAddr, demo: bool, stop: CancellationToken) -> anyhow::Result<()> {
    let sb = Sandbox::new();
    if demo {
        sb.seed(&demo_world())
            .map_err(|e| anyhow::anyhow!("seeding the demo world: {e}"))?;
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("sandbox cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, "AWS sandbox listening; use AWS_ENDPOINT_URL=http://{listen}");
    sb.serve(listener, stop).await
}
