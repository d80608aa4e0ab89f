//! Thin wrappers over the AWS SDK clients zeroscale uses, built from `aws_config` (the standard
//! credential chain: env, profile, web identity, container and instance roles), with per-service
//! endpoint overrides so the sandbox can stand in, and one mapping of SDK errors.

pub mod batch;
pub mod budget;
pub mod directory;
pub mod errors;
pub mod observe;
pub mod pacer;
pub mod setup;

use std::{collections::HashMap, sync::Arc};

use aws_config::{retry::RetryConfig, BehaviorVersion, Region};

pub use errors::{AwsFailure, FailureKind};
pub use pacer::{in_background, Pacer, Priority};
pub use setup::{AwsSetup, Identity};

use crate::config::AwsArgs;

/// How long a quota or account-usage read is reused.
pub const QUOTA_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// Instance quotas by instance type (None: no quota of that name), for [`QUOTA_TTL`].
/// Concurrent preflights of one type share one read (`try_get_with`).
pub type QuotaCache = moka::future::Cache<String, Option<Quota>>;

/// The account's instances by instance type, (endpoint, variant, instances): one entry (the
/// key is `()`), for [`QUOTA_TTL`].
pub type UsageCache = moka::future::Cache<(), Arc<HashMap<String, Vec<(String, String, i32)>>>>;

/// Endpoint configs' variant instance types (configs are immutable under their name, so
/// entries never expire; the count is bounded).
pub type ConfigCache = moka::future::Cache<String, Arc<HashMap<String, Option<String>>>>;

/// Whole endpoint configs by name, for the preflights: an endpoint config cannot be changed
/// under its name, so an entry never expires (the count is bounded), and the components of one
/// endpoint enabled together share one DescribeEndpointConfig.
pub type EndpointConfigCache = moka::future::Cache<
    String,
    Arc<aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput>,
>;

/// Endpoints as one DescribeEndpoint saw them, for [`ENDPOINT_TTL`]: the components of one
/// endpoint enabled together share the read (their preflight needs only the endpoint's config
/// name and whether its status is terminal).
pub type EndpointCache = moka::future::Cache<
    String,
    Arc<aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput>,
>;

/// How long a component preflight's endpoint read is shared.
pub const ENDPOINT_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a quota's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaSource {
    /// The value the account applied (ListServiceQuotas).
    Applied,
    /// AWS's default: the account never applied one (ListAWSDefaultServiceQuotas).
    Default,
}

impl std::fmt::Display for QuotaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QuotaSource::Applied => "the value applied in this account, from Service Quotas",
            QuotaSource::Default => {
                "the AWS default, from Service Quotas: this account never applied a value"
            }
        })
    }
}

/// An instance quota's value and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub value: f64,
    pub source: QuotaSource,
}

/// The four clients a reconcile needs (and STS, for who the caller is), the caches that go
/// with them, and how they were configured.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub sagemaker: aws_sdk_sagemaker::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub quotas: aws_sdk_servicequotas::Client,
    pub sts: aws_sdk_sts::Client,
    /// Region, endpoints and credential chain, for start-up's log line and `doctor`.
    pub setup: Arc<AwsSetup>,
    pub quota_cache: QuotaCache,
    /// What other endpoints run, for the quota check.
    pub usage_cache: UsageCache,
    /// Endpoint configs already read (their variants' instance types).
    pub config_cache: ConfigCache,
    /// Endpoint configs already read, whole.
    pub endpoint_configs: EndpointConfigCache,
    /// Endpoints read in the last [`ENDPOINT_TTL`], for component preflights.
    pub endpoints: EndpointCache,
    /// ListInferenceComponents shared by the component preflights of a burst (`directory`).
    pub directory: Arc<directory::ComponentDirectory>,
    /// DescribeScalableTargets shared by the jobs that need one at the same moment (`batch`).
    pub target_reads: Arc<batch::TargetReads>,
    /// Paces AWS calls across every worker of this process and this process's share of the
    /// account's budget, user work first (`pacer`).
    pub pacer: Arc<Pacer>,
}

/// The pages of a paginated SDK call (`into_paginator().send()`).
pub type Pages<O, E> = aws_smithy_async::future::pagination_stream::PaginationStream<
    Result<
        O,
        aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
    >,
>;

impl AwsClients {
    /// Builds the clients. The SDK's own variables (`AWS_REGION`, `AWS_PROFILE`,
    /// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, credentials) apply as usual; the flags in
    /// `args` override them only when given. The SDK retries throttling and 5xx twice with
    /// jittered backoff; the job engine retries what is left.
    pub async fn from_args(args: &AwsArgs) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(region) = &args.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &args.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if args.sandbox_credentials {
            loader = loader
                .credentials_provider(aws_sdk_sagemaker::config::Credentials::new(
                    "SANDBOX",
                    "sandbox",
                    None,
                    None,
                    "zeroscale-sandbox",
                ))
                .region(Region::new(
                    args.region.clone().unwrap_or_else(|| "us-east-1".into()),
                ));
        }
        let shared = loader.load().await;
        Self::from_shared(&shared, args)
    }

    /// Every page of a paginated call (the SDK's paginator follows NextToken and stops on a
    /// repeated token), each page paced like any call. aws-facts.md, "Pages": lists and
    /// describes page at 10 to 100 items, so one target's objects may be on a later page.
    pub async fn pages<O, E>(
        &self,
        service: &'static str,
        operation: &'static str,
        pages: Pages<O, E>,
    ) -> Result<Vec<O>, AwsFailure>
    where
        E: aws_sdk_sagemaker::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut out = Vec::new();
        self.each_page(service, operation, pages, true, |page| {
            out.push(page);
            None::<()>
        })
        .await?;
        Ok(out)
    }

    /// Every page of ListEndpoints, 100 endpoints a page (the quota sweep and the observation
    /// pass both read the account's endpoints).
    pub async fn endpoint_pages(
        &self,
    ) -> Result<Vec<aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput>, AwsFailure>
    {
        let pages = self
            .sagemaker
            .list_endpoints()
            .max_results(100)
            .into_paginator()
            .send();
        self.pages("sagemaker", "ListEndpoints", pages).await
    }

    /// Pages through a paginated call until `find` finds what it looks for in a page (the
    /// pages after it are never requested), or the pages end (`None`).
    pub async fn find_in_pages<O, E, T>(
        &self,
        service: &'static str,
        operation: &'static str,
        pages: Pages<O, E>,
        mut find: impl FnMut(&O) -> Option<T>,
    ) -> Result<Option<T>, AwsFailure>
    where
        E: aws_sdk_sagemaker::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.each_page(service, operation, pages, true, |page| find(&page))
            .await
    }

    /// Hands each page, paced (the first only if `pace_first`: a caller may have taken its
    /// permission already), to `each` until it returns `Some` or the pages end.
    pub async fn each_page<O, E, T>(
        &self,
        service: &'static str,
        operation: &'static str,
        mut pages: Pages<O, E>,
        pace_first: bool,
        mut each: impl FnMut(O) -> Option<T>,
    ) -> Result<Option<T>, AwsFailure>
    where
        E: aws_sdk_sagemaker::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut paced = !pace_first;
        loop {
            if !std::mem::take(&mut paced) {
                self.pace().await;
            }
            match pages.next().await {
                None => return Ok(None),
                Some(Ok(page)) => {
                    if let Some(found) = each(page) {
                        return Ok(Some(found));
                    }
                }
                Some(Err(e)) => return Err(AwsFailure::from_sdk(service, operation, e)),
            }
        }
    }

    /// Waits for the pacer's permission to make one AWS call (at the task's [`Priority`]).
    pub async fn pace(&self) {
        self.pacer.pace().await;
    }

    /// Takes permission for `n` calls only if it is there now: for optional calls (the API's
    /// kind check) that must never wait behind the workers' budget.
    pub fn try_pace(&self, n: u32) -> bool {
        self.pacer.try_pace(n)
    }

    /// Builds the clients from an SDK config, applying the per-service overrides in `args`.
    pub fn from_shared(shared: &aws_config::SdkConfig, args: &AwsArgs) -> Self {
        let pacer = Arc::new(Pacer::new(args.rate_limit));
        // One client per service, with the call metrics and its endpoint override if given.
        macro_rules! client {
            ($sdk:ident, $flag:literal) => {{
                let mut b = $sdk::config::Builder::from(shared)
                    .interceptor(observe::CallMetrics::new(pacer.clone()));
                if let Some(url) = args.endpoints.get($flag) {
                    b = b.endpoint_url(url);
                }
                $sdk::Client::from_conf(b.build())
            }};
        }
        let sagemaker = client!(aws_sdk_sagemaker, "sagemaker");
        let autoscaling = client!(aws_sdk_applicationautoscaling, "application-auto-scaling");
        let cloudwatch = client!(aws_sdk_cloudwatch, "cloudwatch");
        let quotas = client!(aws_sdk_servicequotas, "service-quotas");
        let sts = client!(aws_sdk_sts, "sts");
        Self {
            sagemaker,
            autoscaling,
            cloudwatch,
            quotas,
            sts,
            setup: Arc::new(AwsSetup::describe(args, shared)),
            quota_cache: QuotaCache::builder()
                .time_to_live(QUOTA_TTL)
                .max_capacity(1_000)
                .build(),
            usage_cache: UsageCache::builder().time_to_live(QUOTA_TTL).build(),
            config_cache: ConfigCache::builder().max_capacity(10_000).build(),
            endpoint_configs: EndpointConfigCache::builder().max_capacity(10_000).build(),
            endpoints: EndpointCache::builder()
                .time_to_live(ENDPOINT_TTL)
                .max_capacity(10_000)
                .build(),
            target_reads: Arc::default(),
            directory: Arc::default(),
            pacer,
        }
    }
}
