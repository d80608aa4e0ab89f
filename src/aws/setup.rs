//! How zeroscale reaches AWS, known before any job runs: the Region and where it came from,
//! the endpoint of each service and what set it, the credentials, and the caller's identity
//! (STS GetCallerIdentity). `serve` and `worker` check this at start-up so that a missing
//! Region or missing credentials stop the process with a sentence, never a job later; `doctor`
//! reports the same facts as a checklist.

use std::time::Duration;

use anyhow::bail;
use aws_credential_types::provider::ProvideCredentials as _;

use super::{AwsClients, AwsFailure};
use crate::config::{AwsArgs, SERVICES};

/// What start-up and `doctor` say about the AWS set-up. Never holds a secret.
#[derive(Debug, Clone, Default)]
pub struct AwsSetup {
    /// The Region in use, if any was found.
    pub region: Option<String>,
    /// Where the Region came from, in the operator's terms.
    pub region_source: String,
    /// `serve --sandbox`: every call goes to the in-process sandbox.
    pub sandbox: bool,
    /// One entry per service zeroscale calls.
    pub endpoints: Vec<EndpointSetting>,
    /// The SDK configuration the clients were built from (for the credential chain).
    pub sdk: Option<aws_config::SdkConfig>,
}

/// Where one service's calls go.
#[derive(Debug, Clone)]
pub struct EndpointSetting {
    /// The service as AWS names it.
    pub service: &'static str,
    /// An override, if one is set.
    pub url: Option<String>,
    /// What set the override (a flag, an environment variable, `serve --sandbox`).
    pub source: Option<String>,
}

/// Who the credentials belong to (GetCallerIdentity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The account id.
    pub account: String,
    /// The user or assumed role (with its session name).
    pub arn: String,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl AwsSetup {
    /// Describes what `args`, the environment and the loaded SDK configuration select.
    pub fn describe(args: &AwsArgs, sdk: &aws_config::SdkConfig) -> Self {
        let region_source = if args.region.is_some() {
            "--aws-region (ZEROSCALE_AWS_REGION)".to_string()
        } else if args.sandbox_credentials {
            "serve --sandbox (us-east-1)".to_string()
        } else if env("AWS_REGION").is_some() {
            "AWS_REGION".to_string()
        } else if env("AWS_DEFAULT_REGION").is_some() {
            "AWS_DEFAULT_REGION".to_string()
        } else {
            "the SDK's chain (the AWS profile, or instance metadata)".to_string()
        };
        let ignore_env = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v == "true");
        let endpoints = SERVICES
            .iter()
            .map(|(service, flag, id, _)| {
                let own = args.endpoints.get(flag).map(str::to_string);
                let (url, source) = if let Some(u) = own {
                    (
                        Some(u),
                        Some(format!(
                            "--aws-endpoint-url-{flag} (ZEROSCALE_AWS_ENDPOINT_URL_{id})"
                        )),
                    )
                } else if let Some(u) = &args.endpoint_url {
                    let source = if args.sandbox_credentials {
                        "serve --sandbox".to_string()
                    } else {
                        "--aws-endpoint-url (ZEROSCALE_AWS_ENDPOINT_URL)".to_string()
                    };
                    (Some(u.clone()), Some(source))
                } else if let Some(u) =
                    env(&format!("AWS_ENDPOINT_URL_{id}")).filter(|_| !ignore_env)
                {
                    (Some(u), Some(format!("AWS_ENDPOINT_URL_{id}")))
                } else if let Some(u) = sdk.endpoint_url() {
                    // The shared configuration's override: AWS_ENDPOINT_URL, a profile's
                    // endpoint_url, or a caller that built the configuration itself.
                    let source = match env("AWS_ENDPOINT_URL").filter(|_| !ignore_env) {
                        Some(e) if e == u => "AWS_ENDPOINT_URL",
                        _ => "the SDK configuration (a profile's endpoint_url)",
                    };
                    (Some(u.to_string()), Some(source.to_string()))
                } else {
                    (None, None)
                };
                EndpointSetting {
                    service,
                    url,
                    source,
                }
            })
            .collect();
        Self {
            region: sdk.region().map(|r| r.to_string()),
            region_source,
            sandbox: args.sandbox_credentials,
            endpoints,
            sdk: Some(sdk.clone()),
        }
    }

    /// The credentials the SDK's chain finds now, or why there are none. Bounded, so a chain
    /// that waits on instance metadata that is not there cannot hang start-up.
    pub async fn credentials(
        &self,
        within: Duration,
    ) -> Result<aws_credential_types::Credentials, String> {
        let provider = self
            .sdk
            .as_ref()
            .and_then(|s| s.credentials_provider())
            .ok_or_else(|| "no credential provider is configured".to_string())?;
        match tokio::time::timeout(within, provider.provide_credentials()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(sentence(&e)),
            Err(_) => Err(format!(
                "the credential chain did not answer within {} s",
                within.as_secs()
            )),
        }
    }
}

/// The error and its sources on one line (the SDK's Display has no secrets, only which
/// provider failed and why).
fn sentence(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// How long start-up waits for the credential chain, and for STS.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// What to set when there is no Region.
pub const REGION_HINT: &str = "set AWS_REGION (or --aws-region / ZEROSCALE_AWS_REGION, or `region` in the AWS profile); `serve --sandbox` needs none";

/// What to set when there are no credentials.
pub const CREDENTIALS_HINT: &str = "give the process credentials: an instance role, an ECS task role or IRSA / EKS Pod Identity in production (docs/deploy.md), or AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";

impl AwsClients {
    /// The clients `serve` and `worker` run with. Outside sandbox mode a Region and credentials
    /// must be found now, or start-up stops with a message naming what to set. The identity
    /// and Region are logged once; an identity that cannot be read (STS unreachable) is a
    /// warning, since every other call may still work.
    pub async fn connect(args: &AwsArgs) -> anyhow::Result<Self> {
        let clients = Self::from_args(args).await;
        let setup = &clients.setup;
        if !setup.sandbox {
            if setup.region.is_none() {
                bail!("no AWS Region: {REGION_HINT}");
            }
            if let Err(why) = setup.credentials(STARTUP_TIMEOUT).await {
                bail!("no AWS credentials ({why}): {CREDENTIALS_HINT}");
            }
        }
        let region = setup.region.clone().unwrap_or_default();
        let overridden: Vec<String> = setup
            .endpoints
            .iter()
            .filter_map(|e| Some(format!("{}={}", e.service, e.url.as_ref()?)))
            .collect();
        let identity = tokio::time::timeout(STARTUP_TIMEOUT, clients.caller_identity()).await;
        match identity.unwrap_or_else(|_| Err(AwsFailure::timeout("sts", "GetCallerIdentity"))) {
            Ok(id) => tracing::info!(
                account = %id.account,
                arn = %id.arn,
                %region,
                region_source = %setup.region_source,
                endpoint_overrides = %overridden.join(", "),
                "AWS identity"
            ),
            Err(e) => tracing::warn!(
                %region,
                error = %e,
                "AWS identity unknown: STS GetCallerIdentity failed (run `zeroscale doctor`)"
            ),
        }
        Ok(clients)
    }

    /// Who the credentials belong to. Needs no permission.
    pub async fn caller_identity(&self) -> Result<Identity, AwsFailure> {
        self.pace().await;
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("sts", "GetCallerIdentity", e))?;
        Ok(Identity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }
}
