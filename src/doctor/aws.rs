//! The AWS lines: Region, credentials, identity, where each service's calls go.

use super::{
    check,
    permissions::permissions,
    probe::{reach_hint, said, timed_out, AWS_TIMEOUT},
    Check, Status,
};
use crate::aws::{
    setup::{self, EndpointSetting},
    AwsClients,
};

/// Region, credentials, identity, endpoints, and (when AWS can be asked) the permissions.
pub(super) async fn aws_checks(aws: &AwsClients) -> Vec<Check> {
    let s = &aws.setup;
    let region = match &s.region {
        Some(r) => check(
            "aws region",
            Status::Pass,
            format!("{r} (from {})", s.region_source),
        ),
        None => check("aws region", Status::Fail, "none found").hint(setup::REGION_HINT),
    };
    let credentials = credentials(s).await;
    let askable = s.region.is_some() && credentials.status == Status::Pass;
    let (identity, reachable) = identity(aws).await;
    let mut out = vec![region, credentials, identity, endpoints(s)];
    if askable && reachable {
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

/// Which credentials the chain finds: temporary or long-term, and the key id's last four.
async fn credentials(s: &setup::AwsSetup) -> Check {
    if s.sandbox {
        return check(
            "aws credentials",
            Status::Pass,
            "the sandbox's static credentials",
        );
    }
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
}

/// Who STS says the credentials are, and whether AWS answered at all (an answer that refuses
/// still means the permission probes can run).
async fn identity(aws: &AwsClients) -> (Check, bool) {
    let identity = match tokio::time::timeout(AWS_TIMEOUT, aws.caller_identity()).await {
        Ok(r) => r,
        Err(_) => Err(timed_out("GetCallerIdentity")),
    };
    match identity {
        Ok(id) => (
            check(
                "aws identity",
                Status::Pass,
                format!("account {} as {}", id.account, id.arn),
            ),
            true,
        ),
        Err(f) => {
            let reachable = !matches!(
                f.code.as_str(),
                "DispatchFailure" | "Timeout" | "ConstructionFailure"
            );
            let line = check(
                "aws identity",
                Status::Fail,
                format!("STS GetCallerIdentity failed: {}", said(&f)),
            )
            .hint(reach_hint(&f));
            (line, reachable)
        }
    }
}

/// Where each service's calls go, and whether that looks like what the operator meant.
fn endpoints(s: &setup::AwsSetup) -> Check {
    let detail = endpoint_detail(&s.endpoints);
    if s.sandbox {
        return check(
            "aws endpoints",
            Status::Pass,
            format!("sandbox mode: {detail}"),
        );
    }
    let overridden: Vec<_> = s.endpoints.iter().filter(|e| e.url.is_some()).collect();
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
    match overridden
        .iter()
        .find_map(|e| doubt(e, s.region.as_deref()))
    {
        Some((status, hint)) => check("aws endpoints", status, detail).hint(hint),
        None => check("aws endpoints", Status::Pass, detail),
    }
}

/// The endpoints in one line: one phrase when every service goes to the same place.
fn endpoint_detail(endpoints: &[EndpointSetting]) -> String {
    let same = endpoints
        .windows(2)
        .all(|w| w[0].url == w[1].url && w[0].source == w[1].source);
    match endpoints.first() {
        Some(EndpointSetting {
            url: Some(u),
            source: Some(src),
            ..
        }) if same => format!("every service -> {u} (from {src})"),
        _ if same => "every service -> AWS's regional endpoints".to_string(),
        _ => endpoints
            .iter()
            .map(|e| match (&e.url, &e.source) {
                (Some(u), Some(src)) => format!("{} -> {u} (from {src})", e.service),
                _ => format!("{} -> AWS", e.service),
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// What is wrong with one override, if anything: not a URL (a failure), plain HTTP to a
/// remote host, or an AWS host of another Region than the one requests are signed for.
fn doubt(e: &EndpointSetting, region: Option<&str>) -> Option<(Status, String)> {
    let Some(url) = e.url.as_deref().and_then(|u| url::Url::parse(u).ok()) else {
        return Some((
            Status::Fail,
            format!("the {} override is not a URL", e.service),
        ));
    };
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if url.scheme() == "http" && !loopback {
        return Some((Status::Warn, format!(
            "{} is called over plain HTTP on {host}: signed requests and answers cross the network unencrypted",
            e.service
        )));
    }
    let region = region?;
    let other_region = host.ends_with(".amazonaws.com")
        && !host.contains(&format!(".{region}."))
        && host.split('.').count() > 3;
    other_region.then(|| (Status::Warn, format!(
        "the {} override {host} names another Region than {region}: requests are signed for {region}",
        e.service
    )))
}
