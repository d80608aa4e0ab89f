//! Metrics for every AWS call, from one SDK interceptor: calls by service, operation and outcome,
//! latency per attempt, and throttles.

use std::time::Instant;

use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{
            context::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef},
            Intercept,
        },
        orchestrator::Metadata,
        runtime_components::RuntimeComponents,
    },
};
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

#[derive(Debug, Clone)]
struct AttemptStarted(Instant);

impl Storable for AttemptStarted {
    type Storer = StoreReplace<Self>;
}

/// Records `zeroscale_aws_calls_total`, `zeroscale_aws_call_duration_seconds` and
/// `zeroscale_aws_throttles_total` for each attempt, and tells the pacer whether AWS throttled
/// it (AIMD).
#[derive(Debug, Clone)]
pub struct CallMetrics {
    pacer: std::sync::Arc<super::Pacer>,
}

impl CallMetrics {
    /// Metrics for calls paced by `pacer`.
    pub fn new(pacer: std::sync::Arc<super::Pacer>) -> Self {
        Self { pacer }
    }
}

impl Intercept for CallMetrics {
    fn name(&self) -> &'static str {
        "zeroscale-call-metrics"
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptStarted(Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let response = ctx.response();
        let status = response.map(|r| r.status().as_u16());
        let throttled = response.is_some_and(|r| {
            ["x-amzn-errortype", "x-amzn-query-error"]
                .iter()
                .any(|h| r.headers().get(*h).is_some_and(|v| v.contains("Throttl")))
        });
        let outcome = match status {
            Some(s) if s < 300 => "ok",
            Some(_) if throttled => "throttled",
            Some(s) if s >= 500 => "server_error",
            Some(_) => "client_error",
            None => "transport_error",
        };
        if let Some(started) = cfg.load::<AttemptStarted>() {
            metrics::histogram!("zeroscale_aws_call_duration_seconds", "service" => service.clone(), "operation" => operation.clone())
                .record(started.0.elapsed().as_secs_f64());
        }
        if throttled {
            self.pacer.throttled();
            metrics::counter!("zeroscale_aws_throttles_total", "service" => service.clone(), "operation" => operation.clone()).increment(1);
        }
        if status.is_some() && !throttled {
            self.pacer.succeeded();
        }
        metrics::counter!("zeroscale_aws_calls_total", "service" => service, "operation" => operation, "outcome" => outcome).increment(1);
        Ok(())
    }
}
