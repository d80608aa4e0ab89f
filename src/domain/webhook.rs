//! Webhooks: what a subscription asks for and the rules it must follow. The signing secret is
//! the subscriber's; zeroscale keeps it sealed (`config::secrets`) and never shows it again.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Labels;

/// What a webhook can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A wake's scaling activity failed (quota, insufficient capacity, ...), in AWS's words.
    WakeFailed,
    /// A wake took longer than the webhook's `slow_wake_seconds`.
    WakeSlow,
    /// A target's scaling became Degraded (a failed scaling activity, in AWS's words).
    Degraded,
    /// The observation pass found AWS differing from the desired version, and a run repaired it.
    DriftRepaired,
    /// A pause ends within the hour.
    PauseExpiring,
    /// Scale-to-zero is on, but the target has not reached zero in `not_at_zero_days` days: it
    /// saves nothing.
    NotReachingZero,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 6] = [
        Self::WakeFailed,
        Self::WakeSlow,
        Self::Degraded,
        Self::DriftRepaired,
        Self::PauseExpiring,
        Self::NotReachingZero,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WakeFailed => "wake_failed",
            Self::WakeSlow => "wake_slow",
            Self::Degraded => "degraded",
            Self::DriftRepaired => "drift_repaired",
            Self::PauseExpiring => "pause_expiring",
            Self::NotReachingZero => "not_reaching_zero",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How a delivery's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// zeroscale's JSON envelope (`id`, `type`, `created_at`, `target`, `data`).
    #[default]
    Json,
    /// A Slack incoming-webhook message (`{"text": ...}`).
    Slack,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
        }
    }
}

/// A new subscription.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are POSTed: https, or http to a loopback address (a local receiver).
    #[schema(example = "https://hooks.example.com/zeroscale")]
    pub url: String,
    /// What to send (at least one).
    pub kinds: Vec<NotificationKind>,
    /// The signing secret (16-256 printable characters): every delivery carries
    /// `Zeroscale-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. Never
    /// returned.
    #[schema(example = "whsec_9f8e7d6c5b4a39281706")]
    pub secret: String,
    /// Only targets with these labels (all when absent).
    #[serde(default)]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    pub labels: Option<Labels>,
    #[serde(default)]
    pub format: WebhookFormat,
    /// `wake_slow` fires above this many seconds (default 300).
    #[serde(default = "default_slow")]
    #[schema(default = 300, minimum = 1, maximum = 86400)]
    pub slow_wake_seconds: u32,
    /// `not_reaching_zero` fires after this many days without reaching zero (default 7).
    #[serde(default = "default_days")]
    #[schema(default = 7, minimum = 1, maximum = 90)]
    pub not_at_zero_days: u32,
}

fn default_slow() -> u32 {
    300
}

fn default_days() -> u32 {
    7
}

/// Whether `host` is a loopback name or address.
fn loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => *d == "localhost",
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
    }
}

/// Addresses no receiver has a reason to be at: link-local (the instance metadata service,
/// 169.254.169.254 and fd00:ec2::254 among them) and unspecified.
fn internal_only(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(_) => false,
        url::Host::Ipv4(a) => a.is_link_local() || a.is_unspecified(),
        url::Host::Ipv6(a) => {
            a.is_unspecified()
                || (a.segments()[0] & 0xffc0) == 0xfe80
                || *a == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

impl NewWebhook {
    /// Every broken rule, each with its field.
    pub fn check(&self) -> Result<(), Vec<(String, String)>> {
        let mut errs = Vec::new();
        match url::Url::parse(&self.url) {
            Err(e) => errs.push(("url".into(), format!("not an absolute URL: {e}"))),
            Ok(u) => {
                let host = u.host();
                if self.url.len() > 2048 {
                    errs.push(("url".into(), "at most 2048 characters".into()));
                } else if !u.username().is_empty() || u.password().is_some() {
                    errs.push((
                        "url".into(),
                        "must not carry a user name or password".into(),
                    ));
                } else if u.fragment().is_some() {
                    errs.push(("url".into(), "must not have a #fragment".into()));
                } else if host.as_ref().is_some_and(internal_only) {
                    errs.push((
                        "url".into(),
                        "must not be a link-local or unspecified address (instance metadata lives there)".into(),
                    ));
                } else if u.scheme() == "http" && host.as_ref().is_some_and(loopback) {
                    // A receiver on this machine (tests, a local relay).
                } else if u.scheme() != "https" || host.is_none() {
                    errs.push((
                        "url".into(),
                        "must be https (http only to a loopback address)".into(),
                    ));
                }
            }
        }
        if self.kinds.is_empty() {
            errs.push(("kinds".into(), "give at least one kind".into()));
        }
        let printable = self.secret.chars().all(|c| !c.is_control());
        if !(16..=256).contains(&self.secret.chars().count()) || !printable {
            errs.push((
                "secret".into(),
                "must be 16-256 printable characters".into(),
            ));
        }
        if let Some(labels) = &self.labels {
            super::labels::check(labels, &mut errs);
        }
        if !(1..=86_400).contains(&self.slow_wake_seconds) {
            errs.push((
                "slow_wake_seconds".into(),
                "must be between 1 and 86400".into(),
            ));
        }
        if !(1..=90).contains(&self.not_at_zero_days) {
            errs.push(("not_at_zero_days".into(), "must be between 1 and 90".into()));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}

/// A URL as shown back: its origin and path, with the path's last segments (where services
/// such as Slack put the credential) masked.
pub fn redact_url(url: &str) -> String {
    let Ok(u) = url::Url::parse(url) else {
        return "***".into();
    };
    let segments: Vec<&str> = u.path_segments().map(|s| s.collect()).unwrap_or_default();
    let shown = segments
        .first()
        .filter(|s| !s.is_empty() && segments.len() > 1);
    match shown {
        Some(first) => format!("{}/{first}/***", u.origin().ascii_serialization()),
        None if segments.iter().all(|s| s.is_empty()) => u.origin().ascii_serialization(),
        None => format!("{}/***", u.origin().ascii_serialization()),
    }
}

/// The signature header's value for `body` sent at `t` (Unix seconds): Stripe's scheme.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={t},v1={}", hex::encode(ctx.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(url: &str) -> NewWebhook {
        NewWebhook {
            url: url.into(),
            kinds: vec![NotificationKind::WakeFailed],
            secret: "0123456789abcdef".into(),
            labels: None,
            format: WebhookFormat::Json,
            slow_wake_seconds: 300,
            not_at_zero_days: 7,
        }
    }

    #[test]
    fn urls_are_https_or_loopback_http() {
        assert!(hook("https://hooks.example.com/x").check().is_ok());
        assert!(hook("http://127.0.0.1:9000/x").check().is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "ftp://x/y",
            "https://u:p@x/y",
            "not a url",
            "https://x/y#f",
        ] {
            assert!(hook(bad).check().is_err(), "{bad}");
        }
    }

    #[test]
    fn slack_urls_are_shown_without_their_credential() {
        let shown = redact_url("https://hooks.slack.com/services/T000/B000/XXXXXXXX");
        assert_eq!(shown, "https://hooks.slack.com/services/***");
        assert_eq!(redact_url("https://x.example/"), "https://x.example");
    }

    #[test]
    fn the_signature_is_stripes_scheme() {
        // HMAC-SHA256("key", "1.{}"), computed with Python's hmac module.
        assert_eq!(
            signature(b"key", 1, b"{}"),
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }
}
