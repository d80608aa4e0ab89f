//! What every AWS line of the checklist shares: the time bound of one step, and how a failure
//! is said (AWS's code and zeroscale's words, never SDK text).

use std::time::Duration;

use crate::aws::{AwsFailure, FailureKind};

/// How long any one AWS step may take: the whole checklist stays well inside the API's request
/// timeout even when AWS does not answer at all.
pub(super) const AWS_TIMEOUT: Duration = Duration::from_secs(5);

/// A step that did not answer within [`AWS_TIMEOUT`], as a failure of `operation`.
pub(super) fn timed_out(operation: &'static str) -> AwsFailure {
    AwsFailure::timeout("doctor", operation)
}

/// A failure as a sentence: AWS's code and zeroscale's words, never SDK text.
pub(super) fn said(f: &AwsFailure) -> String {
    match f.kind {
        FailureKind::Retryable if f.code == "DispatchFailure" || f.code == "Timeout" => {
            format!("{} ({})", f.message, f.code)
        }
        _ => f.code.clone(),
    }
}

/// What to look at after a failure that kept a call from being answered.
pub(super) fn reach_hint(f: &AwsFailure) -> &'static str {
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
