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

pub(super) async fn aws_checks(aws: &AwsClients) -> Vec<Check> {
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
