//! The problem answers many routes share, described once for the OpenAPI document: each
//! status and its words once, each set of them one line. A route lists the sets it can answer,
//! then its own statuses.

use std::collections::BTreeMap;

use utoipa::{
    openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder},
    IntoResponses,
};

/// One problem+json answer: its status and what it means.
type Answer = (u16, &'static str);

const BAD_QUERY: Answer = (400, "Bad query");
const MALFORMED: Answer = (400, "Malformed JSON or headers");
const MALFORMED_HEADERS: Answer = (400, "Malformed headers");
const UNAUTHORIZED: Answer = (401, "Missing or unknown token");
const READ_SCOPE: Answer = (403, "Token lacks the read scope");
const WRITE_SCOPE: Answer = (403, "Token lacks the write scope");
const NOT_MANAGED: Answer = (404, "Not managed by zeroscale");
const IN_FLIGHT: Answer = (409, "A request with this Idempotency-Key is in flight");
const STALE: Answer = (412, "If-Match does not match the current version");
const TOO_LARGE: Answer = (413, "Body too large");
const NOT_JSON: Answer = (415, "Body is not JSON");
const INVALID_FILTER: Answer = (422, "Invalid filter");
const INVALID_NAME: Answer = (422, "Invalid name");
const AWS_UNAVAILABLE: Answer = (503, "Dry run: AWS unavailable");
const NO_SUCH_VERSION: Answer = (404, "Not managed, or no such version");
const INVALID_VERSION: Answer = (422, "Invalid name or version");
const INVALID_PAGE: Answer = (422, "Invalid name, limit or cursor");
const NO_WEBHOOK: Answer = (404, "No such webhook");
const NOT_AN_ID: Answer = (422, "Not an id, or an invalid limit or cursor");
const INVALID_TIMELINE: Answer = (422, "Invalid name, filter, limit or cursor");
const HOLD_CONFLICT: Answer = (
    409,
    "A request with this Idempotency-Key is in flight, scale-to-zero is off (code scale_to_zero_off), or the target is paused (code paused: resume first)",
);
const HOLD_INVALID: Answer = (
    422,
    "Invalid name or body: copies above the max capacity or the instance quota, until too far ahead (the service's maximum) or in the past, keep_warm_for not a duration; errors[].field names the field",
);

/// The OpenAPI responses of `answers`, each a `Problem` as application/problem+json.
fn problems(answers: &[Answer]) -> BTreeMap<String, RefOr<Response>> {
    answers
        .iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/problem+json", content)
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// Declares a set of answers as a type a route's `responses(...)` can list.
macro_rules! problem_set {
    ($(#[$doc:meta])* $name:ident = [$($answer:ident),+]) => {
        $(#[$doc])*
        pub struct $name;
        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                problems(&[$($answer),+])
            }
        }
    };
}

problem_set!(
    /// A read that needs the `read` scope.
    ReadAuth = [UNAUTHORIZED, READ_SCOPE]
);
problem_set!(
    /// A read with a query string, with the `read` scope.
    ReadQuery = [BAD_QUERY, UNAUTHORIZED, READ_SCOPE]
);
problem_set!(
    /// A page of a list, filtered, with the `read` scope.
    ReadList = [BAD_QUERY, UNAUTHORIZED, READ_SCOPE, INVALID_FILTER]
);
problem_set!(
    /// A write with a JSON body, If-Match and Idempotency-Key, with the `write` scope.
    Write = [MALFORMED, UNAUTHORIZED, WRITE_SCOPE, IN_FLIGHT, STALE, TOO_LARGE, NOT_JSON]
);
problem_set!(
    /// A write that can be a dry run, which asks AWS.
    DryRun = [AWS_UNAVAILABLE]
);
problem_set!(
    /// A read of one target, named in the path.
    ReadOne = [UNAUTHORIZED, READ_SCOPE, NOT_MANAGED, INVALID_NAME]
);
problem_set!(
    /// A write to one target, named in the path, without a body.
    WriteOne = [UNAUTHORIZED, WRITE_SCOPE, NOT_MANAGED, INVALID_NAME]
);
problem_set!(
    /// A write to one target without a body, with If-Match and Idempotency-Key.
    WriteOneHeaders = [MALFORMED_HEADERS, UNAUTHORIZED, WRITE_SCOPE, NOT_MANAGED, IN_FLIGHT, STALE, INVALID_NAME]
);
problem_set!(
    /// Wake, keep-warm, pause and resume: a write to one target with If-Match,
    /// Idempotency-Key and a dry run.
    Hold = [MALFORMED, UNAUTHORIZED, WRITE_SCOPE, NOT_MANAGED, HOLD_CONFLICT, STALE, TOO_LARGE, NOT_JSON, HOLD_INVALID, AWS_UNAVAILABLE]
);
problem_set!(
    /// A route about one version of a target.
    NoSuchVersion = [NO_SUCH_VERSION, INVALID_VERSION]
);
problem_set!(
    /// A page of a target's versions.
    VersionPage = [NOT_MANAGED, INVALID_PAGE]
);
problem_set!(
    /// A page of a target's timeline.
    TimelinePage = [NOT_MANAGED, INVALID_TIMELINE]
);
problem_set!(
    /// A read of one webhook, named by id in the path.
    WebhookRead = [UNAUTHORIZED, READ_SCOPE, NO_WEBHOOK, NOT_AN_ID]
);
problem_set!(
    /// A delete of one webhook, named by id in the path.
    WebhookWrite = [UNAUTHORIZED, WRITE_SCOPE, NO_WEBHOOK, NOT_AN_ID]
);
