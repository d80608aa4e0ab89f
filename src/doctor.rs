//! `zeroscale doctor` and `GET /doctor`: a checklist of what zeroscale needs from its
//! environment, each line pass, warn or fail with a hint for what to change. It reads only:
//! the database is asked for its version and migrations, AWS for the caller's identity and
//! for harmless describes and lists (never a write).

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    aws::{
        setup::{self, EndpointSetting},
        AwsClients, AwsFailure, FailureKind,
    },
    config::DbArgs,
    store,
};

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Check {
    /// What was checked (for AWS permissions, the IAM action).
    pub name: String,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to change, for a warning or a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The whole checklist.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Report {
    /// No check failed (warnings allowed).
    pub ok: bool,
    pub passed: usize,
    pub warnings: usize,
    pub failed: usize,
    pub checks: Vec<Check>,
}

fn check(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        hint: None,
    }
}

impl Check {
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl Report {
    fn new(checks: Vec<Check>) -> Self {
        let count = |s| checks.iter().filter(|c| c.status == s).count();
        let (passed, warnings, failed) = (
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
        );
        Self {
            ok: failed == 0,
            passed,
            warnings,
            failed,
            checks,
        }
    }

    /// The checklist as `doctor` prints it: one line per check, its hint indented below.
    pub fn render(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let tag = match c.status {
                Status::Pass => "PASS",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            out.push_str(&format!("{tag}  {:width$}  {}\n", c.name, c.detail));
            if let Some(h) = &c.hint {
                out.push_str(&format!("      {:width$}  hint: {h}\n", ""));
            }
        }
        out.push_str(&format!(
            "{} passed, {} warning(s), {} failed\n",
            self.passed, self.warnings, self.failed
        ));
        out
    }
}

/// Where the database checks connect.
pub enum Database<'a> {
    /// The service's pool (`GET /doctor`).
    Pool(&'a sqlx::PgPool),
    /// A URL, connected to once (`zeroscale doctor`); a missing database is reported, not
    /// created.
    Url(&'a DbArgs),
}

/// Runs every check. `aws` is None when this process has no AWS clients (an API without
/// workers and without AWS access), which is itself a failure.
pub async fn run(db: Database<'_>, aws: Option<&AwsClients>) -> Report {
    let mut checks = database(db).await;
    match aws {
        Some(aws) => checks.extend(aws_checks(aws).await),
        None => checks.push(
            check("aws", Status::Fail, "this process has no AWS clients").hint(
                "run `serve` without --no-worker, or run `zeroscale doctor` on a worker host",
            ),
        ),
    }
    Report::new(checks)
}

/// How long each database step (connecting, each query) may take.
const DB_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection from the pool or of its own.
enum Conn {
    Pooled(sqlx::pool::PoolConnection<sqlx::Postgres>),
    Own(sqlx::PgConnection),
}

impl Conn {
    fn get(&mut self) -> &mut sqlx::PgConnection {
        match self {
            Conn::Pooled(c) => c,
            Conn::Own(c) => c,
        }
    }
}

async fn database(db: Database<'_>) -> Vec<Check> {
    let (conn, where_) = match db {
        Database::Pool(pool) => (
            tokio::time::timeout(DB_TIMEOUT, async { pool.acquire().await.map(Conn::Pooled) })
                .await,
            "the service's database".to_string(),
        ),
        Database::Url(args) => (
            tokio::time::timeout(DB_TIMEOUT, async {
                store::connect_once(args).await.map(Conn::Own)
            })
            .await,
            args.database_url.redacted(),
        ),
    };
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        failed => {
            let e = failed.ok().and_then(Result::err);
            if let Some(e) = &e {
                tracing::warn!(error = %e, database = %where_, "doctor: database unreachable");
            }
            let (detail, hint) = db_failure(e.as_ref());
            return vec![
                check("database", Status::Fail, format!("{detail} ({where_})")).hint(hint),
                check("migrations", Status::Fail, "not checked: no database")
                    .hint("fix the database first"),
            ];
        }
    };
    let conn = conn.get();
    let version = tokio::time::timeout(DB_TIMEOUT, store::server_version(conn))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| "PostgreSQL".into());
    let mut out = vec![check(
        "database",
        Status::Pass,
        format!("reachable: {version} ({where_})"),
    )];
    out.push(
        match tokio::time::timeout(DB_TIMEOUT, store::migration_state(conn)).await {
            Ok(Ok(state)) => migrations(&state),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "doctor: reading migrations failed");
                check(
                    "migrations",
                    Status::Fail,
                    "could not read the applied migrations",
                )
                .hint("check that the database user may read _sqlx_migrations")
            }
            Err(_) => check(
                "migrations",
                Status::Fail,
                format!("no answer within {} s", DB_TIMEOUT.as_secs()),
            )
            .hint("the database is reachable but does not answer: look for locks or load"),
        },
    );
    out
}

fn db_failure(e: Option<&sqlx::Error>) -> (String, &'static str) {
    let code = e
        .and_then(|e| e.as_database_error())
        .and_then(|d| d.code())
        .map(|c| c.to_string());
    match (e, code.as_deref()) {
        (None, _) => (
            format!("no answer within {} s", DB_TIMEOUT.as_secs()),
            "check that Postgres is up and reachable from here (host, port, firewall)",
        ),
        (_, Some("3D000")) => (
            "the database does not exist".into(),
            "run `zeroscale migrate` once (it creates the database and its tables)",
        ),
        (_, Some("28P01" | "28000")) => (
            "Postgres refused the login".into(),
            "check the user and password in DATABASE_URL (--database-url)",
        ),
        (Some(sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut), _) => (
            "Postgres is not reachable".into(),
            "start Postgres, or point DATABASE_URL (--database-url) at it",
        ),
        (Some(sqlx::Error::Configuration(_)), _) => (
            "DATABASE_URL is not a usable Postgres URL".into(),
            "set DATABASE_URL to postgres://user:password@host:5432/database",
        ),
        _ => (
            "could not connect to Postgres".into(),
            "see this process's log for the driver's error",
        ),
    }
}

fn migrations(state: &store::MigrationState) -> Check {
    let known = store::MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .count();
    if !state.table_exists {
        return check(
            "migrations",
            Status::Fail,
            "the database has no zeroscale tables",
        )
        .hint("run `zeroscale migrate` (serve also migrates unless --no-migrate)");
    }
    if !state.failed.is_empty() {
        return check(
            "migrations",
            Status::Fail,
            format!("migration(s) {:?} failed part-way", state.failed),
        )
        .hint("see the log of the last `zeroscale migrate`; fix and re-run it");
    }
    if !state.pending.is_empty() {
        return check(
            "migrations",
            Status::Fail,
            format!(
                "{} of {known} not applied: {:?}",
                state.pending.len(),
                state.pending
            ),
        )
        .hint("run `zeroscale migrate` before starting this version (docs/deploy.md, upgrades)");
    }
    if !state.unknown.is_empty() {
        return check(
            "migrations",
            Status::Warn,
            format!("the database has migration(s) {:?} this binary does not know", state.unknown),
        )
        .hint("a newer zeroscale migrated it: fine while an upgrade rolls out, otherwise upgrade this one");
    }
    check("migrations", Status::Pass, format!("all {known} applied"))
}

/// How long any one AWS step may take: the whole checklist stays well inside the API's request
/// timeout even when AWS does not answer at all.
const AWS_TIMEOUT: Duration = Duration::from_secs(5);

fn timed_out(operation: &'static str) -> AwsFailure {
    AwsFailure::timeout("doctor", operation)
}

async fn aws_checks(aws: &AwsClients) -> Vec<Check> {
    let s = &aws.setup;
    let mut out = Vec::new();
    out.push(match &s.region {
        Some(r) => check(
            "aws region",
            Status::Pass,
            format!("{r} (from {})", s.region_source),
        ),
        None => check("aws region", Status::Fail, "none found").hint(setup::REGION_HINT),
    });
    let credentials = if s.sandbox {
        check(
            "aws credentials",
            Status::Pass,
            "the sandbox's static credentials",
        )
    } else {
        match s.credentials(AWS_TIMEOUT).await {
            Ok(c) => {
                let key = c.access_key_id();
                let tail = &key[key.len().saturating_sub(4)..];
                let kind = if c.session_token().is_some() {
                    "temporary"
                } else {
                    "long-term"
                };
                check(
                    "aws credentials",
                    Status::Pass,
                    format!("{kind}, access key ending {tail}"),
                )
            }
            Err(why) => {
                // The chain's answer names providers and files: the log has it, clients of
                // GET /doctor get a sentence.
                tracing::warn!(reason = %why, "doctor: no AWS credentials");
                check(
                    "aws credentials",
                    Status::Fail,
                    "none found (this process's log says why)",
                )
                .hint(setup::CREDENTIALS_HINT)
            }
        }
    };
    let have_credentials = credentials.status == Status::Pass;
    out.push(credentials);
    let identity = match tokio::time::timeout(AWS_TIMEOUT, aws.caller_identity()).await {
        Ok(r) => r,
        Err(_) => Err(timed_out("GetCallerIdentity")),
    };
    let reachable = match &identity {
        Ok(_) => true,
        Err(f) => !matches!(
            f.code.as_str(),
            "DispatchFailure" | "Timeout" | "ConstructionFailure"
        ),
    };
    out.push(match identity {
        Ok(id) => check(
            "aws identity",
            Status::Pass,
            format!("account {} as {}", id.account, id.arn),
        ),
        Err(f) => check(
            "aws identity",
            Status::Fail,
            format!("STS GetCallerIdentity failed: {}", said(&f)),
        )
        .hint(reach_hint(&f)),
    });
    out.push(endpoints(s));
    if s.region.is_some() && have_credentials && reachable {
        out.extend(permissions(aws).await);
    } else {
        out.push(
            check(
                "aws permissions",
                Status::Fail,
                "not checked: AWS cannot be asked (see above)",
            )
            .hint("fix the Region, the credentials or the network first"),
        );
    }
    out
}

/// A failure as a sentence: AWS's code and zeroscale's words, never SDK text.
fn said(f: &AwsFailure) -> String {
    match f.kind {
        FailureKind::Retryable if f.code == "DispatchFailure" || f.code == "Timeout" => {
            format!("{} ({})", f.message, f.code)
        }
        _ => f.code.clone(),
    }
}

fn reach_hint(f: &AwsFailure) -> &'static str {
    match f.code.as_str() {
        "DispatchFailure" | "Timeout" => {
            "AWS is not reachable from here: check the network path (NAT, proxy, VPC endpoints) and the endpoint overrides below"
        }
        "InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException" => {
            "AWS refused the credentials: check which ones the process gets (AWS_PROFILE, AWS_ACCESS_KEY_ID, the role)"
        }
        "ExpiredToken" | "ExpiredTokenException" => "the credentials expired: refresh them (or use a role, which refreshes itself)",
        _ => "see this process's log for AWS's answer",
    }
}

/// Where each service's calls go, and whether that looks like what the operator meant.
fn endpoints(s: &setup::AwsSetup) -> Check {
    let list: Vec<String> = s
        .endpoints
        .iter()
        .map(|e| match (&e.url, &e.source) {
            (Some(u), Some(src)) => format!("{} -> {u} (from {src})", e.service),
            _ => format!("{} -> AWS", e.service),
        })
        .collect();
    let same = s
        .endpoints
        .windows(2)
        .all(|w| w[0].url == w[1].url && w[0].source == w[1].source);
    let detail = match s.endpoints.first() {
        Some(EndpointSetting {
            url: Some(u),
            source: Some(src),
            ..
        }) if same => {
            format!("every service -> {u} (from {src})")
        }
        _ if same => "every service -> AWS's regional endpoints".to_string(),
        _ => list.join("; "),
    };
    let overridden: Vec<_> = s.endpoints.iter().filter(|e| e.url.is_some()).collect();
    if s.sandbox {
        return check(
            "aws endpoints",
            Status::Pass,
            format!("sandbox mode: {detail}"),
        );
    }
    if !overridden.is_empty() && overridden.len() < s.endpoints.len() {
        let to_aws: Vec<_> = s
            .endpoints
            .iter()
            .filter(|e| e.url.is_none())
            .map(|e| e.service)
            .collect();
        return check("aws endpoints", Status::Warn, detail).hint(format!(
            "some services are overridden and {} still go(es) to AWS: override all of them (a sandbox) or none (AWS)",
            to_aws.join(", ")
        ));
    }
    for e in &overridden {
        let Some(url) = e.url.as_deref().and_then(|u| url::Url::parse(u).ok()) else {
            return check("aws endpoints", Status::Fail, detail)
                .hint(format!("the {} override is not a URL", e.service));
        };
        let host = url.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if url.scheme() == "http" && !loopback {
            return check("aws endpoints", Status::Warn, detail.clone()).hint(format!(
                "{} is called over plain HTTP on {host}: signed requests and answers cross the network unencrypted",
                e.service
            ));
        }
        if let (Some(region), true) = (&s.region, host.ends_with(".amazonaws.com")) {
            if !host.contains(&format!(".{region}.")) && host.split('.').count() > 3 {
                return check("aws endpoints", Status::Warn, detail.clone()).hint(format!(
                    "the {} override {host} names another Region than {region}: requests are signed for {region}",
                    e.service
                ));
            }
        }
    }
    check("aws endpoints", Status::Pass, detail)
}

/// A name no account uses, for describes that need one: not-found means permitted.
const PROBE: &str = "zeroscale-doctor-probe";

/// What zeroscale does without a read the account may choose not to grant.
type Optional = Option<&'static str>;

/// Quotas and the usage count feed the instance-quota preflight, which an enable skips with a
/// warning condition when they cannot be read (aws-facts.md, "Quotas").
const QUOTA_CHECK: Optional = Some(
    "zeroscale enables targets without the instance-quota check and says so in a warning condition",
);

/// Each read zeroscale needs, tried once in its most harmless form, all at once.
async fn permissions(aws: &AwsClients) -> Vec<Check> {
    use crate::domain::target::ALARM_PREFIX;
    use futures::future::BoxFuture;
    let ns = aws_sdk_applicationautoscaling::types::ServiceNamespace::Sagemaker;
    let mut probes: Vec<BoxFuture<'_, Check>> = Vec::new();
    macro_rules! probe {
        ($action:expr, $optional:expr, $call:expr) => {{
            let call = $call;
            probes.push(Box::pin(async move {
                aws.pace().await;
                let r = match tokio::time::timeout(AWS_TIMEOUT, call.send()).await {
                    Ok(r) => r
                        .map(|_| ())
                        .map_err(|e| AwsFailure::from_sdk("doctor", $action, e)),
                    Err(_) => Err(timed_out($action)),
                };
                verdict($action, $optional, r)
            }));
        }};
    }
    probe!(
        "application-autoscaling:DescribeScalableTargets",
        None,
        aws.autoscaling
            .describe_scalable_targets()
            .service_namespace(ns.clone())
            .max_results(1)
    );
    probe!(
        "application-autoscaling:DescribeScalingPolicies",
        None,
        aws.autoscaling
            .describe_scaling_policies()
            .service_namespace(ns.clone())
            .max_results(1)
    );
    probe!(
        "application-autoscaling:DescribeScalingActivities",
        None,
        aws.autoscaling
            .describe_scaling_activities()
            .service_namespace(ns)
            .max_results(1)
    );
    probe!(
        "cloudwatch:DescribeAlarms",
        None,
        aws.cloudwatch
            .describe_alarms()
            .alarm_name_prefix(ALARM_PREFIX)
            .max_records(1)
    );
    probe!(
        "sagemaker:ListEndpoints",
        QUOTA_CHECK,
        aws.sagemaker.list_endpoints().max_results(1)
    );
    probe!(
        "sagemaker:DescribeEndpoint",
        None,
        aws.sagemaker.describe_endpoint().endpoint_name(PROBE)
    );
    probe!(
        "sagemaker:DescribeEndpointConfig",
        None,
        aws.sagemaker
            .describe_endpoint_config()
            .endpoint_config_name(PROBE)
    );
    probe!(
        "sagemaker:DescribeInferenceComponent",
        None,
        aws.sagemaker
            .describe_inference_component()
            .inference_component_name(PROBE)
    );
    probe!(
        "servicequotas:ListServiceQuotas",
        QUOTA_CHECK,
        aws.quotas
            .list_service_quotas()
            .service_code("sagemaker")
            .max_results(1)
    );
    probe!(
        "servicequotas:ListAWSDefaultServiceQuotas",
        QUOTA_CHECK,
        aws.quotas
            .list_aws_default_service_quotas()
            .service_code("sagemaker")
            .max_results(1)
    );
    futures::future::join_all(probes).await
}

/// What one probe's answer means. A denied optional read warns (with what zeroscale does
/// without it); a denied required read fails.
fn verdict(action: &'static str, optional: Optional, r: Result<(), AwsFailure>) -> Check {
    match r {
        Ok(()) => check(action, Status::Pass, "permitted"),
        // Probed with a name that does not exist: AWS looked, so the call was permitted.
        Err(f) if f.kind == FailureKind::NotFound || f.code == "ValidationException" => check(
            action,
            Status::Pass,
            "permitted (probed with a name that does not exist)",
        ),
        Err(f) if f.code.starts_with("AccessDenied") || f.code == "HTTP 403" => {
            let (status, why) = match optional {
                Some(without) => (Status::Warn, without),
                None => (Status::Fail, "zeroscale's jobs need it"),
            };
            check(action, status, format!("denied ({}): {why}", f.code)).hint(format!(
                "grant {action} to the role zeroscale runs as (deploy/iam-policy.json has every action it needs)"
            ))
        }
        Err(f) => check(
            action,
            Status::Fail,
            format!("could not be checked: {}", said(&f)),
        )
        .hint(reach_hint(&f)),
    }
}
