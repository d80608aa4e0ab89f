//! The policy evaluator. It covers what identity-based policies need here: Allow and Deny
//! statements, `Action` and `Resource` with `*` and `?` wildcards, and the `StringEquals` /
//! `StringLike` condition operators. A policy with any other condition operator (or
//! `NotAction`, `NotResource`) is refused when attached: evaluating it wrongly would allow what a
//! Deny forbids (kinder than AWS) or refuse what an Allow grants. No crate evaluates IAM policies
//! offline; this is the smallest evaluator the sandbox needs.

use serde_json::Value;

use super::Check;

/// Effect of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// What evaluating a check against a policy found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No statement allows it.
    ImplicitDeny,
    /// A Deny statement matches.
    ExplicitDeny,
}

/// Checks that `doc` is a policy the evaluator understands (Version, Statement with Effect,
/// Action, Resource); the reason when not.
pub fn validate(doc: &Value) -> Result<(), String> {
    let statements = statements(doc);
    if statements.is_empty() {
        return Err("a policy needs a Statement (an object or a list of them)".into());
    }
    for st in statements {
        match st["Effect"].as_str() {
            Some("Allow" | "Deny") => {}
            _ => return Err(format!("Effect must be Allow or Deny in {st}")),
        }
        if strings(&st["Action"]).is_empty() || strings(&st["Resource"]).is_empty() {
            return Err(format!("Action and Resource are required in {st}"));
        }
        for unsupported in ["NotAction", "NotResource", "NotPrincipal", "Principal"] {
            if !st[unsupported].is_null() {
                return Err(format!(
                    "the sandbox does not evaluate {unsupported} (in {st})"
                ));
            }
        }
        match &st["Condition"] {
            Value::Null => {}
            Value::Object(ops) => {
                for (op, keys) in ops {
                    if !matches!(op.as_str(), "StringEquals" | "StringLike") || !keys.is_object() {
                        return Err(format!(
                            "the sandbox evaluates only StringEquals and StringLike conditions, not {op} (in {st})"
                        ));
                    }
                }
            }
            other => return Err(format!("Condition must be an object, not {other}")),
        }
    }
    Ok(())
}

fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        v @ Value::Object(_) => vec![v],
        _ => Vec::new(),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Evaluates one check: an explicit Deny wins, then any Allow, else the implicit deny.
pub fn decide(doc: &Value, check: &Check) -> Decision {
    let mut allowed = false;
    for st in statements(doc) {
        let effect = match st["Effect"].as_str() {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => continue,
        };
        let action = strings(&st["Action"]).iter().any(|pat| {
            wildcard(
                &pat.to_ascii_lowercase(),
                &check.action.to_ascii_lowercase(),
            )
        });
        let resource = strings(&st["Resource"])
            .iter()
            .any(|pat| wildcard(pat, &check.resource));
        if !(action && resource && conditions_hold(&st["Condition"], check)) {
            continue;
        }
        match effect {
            Effect::Deny => return Decision::ExplicitDeny,
            Effect::Allow => allowed = true,
        }
    }
    if allowed {
        Decision::Allowed
    } else {
        Decision::ImplicitDeny
    }
}

/// Every operator's keys must hold; a key missing from the request fails its test (as in IAM
/// without `...IfExists`). `validate` refused other operators when the policy was attached.
fn conditions_hold(cond: &Value, check: &Check) -> bool {
    let Some(ops) = cond.as_object() else {
        return cond.is_null();
    };
    ops.iter().all(|(op, keys)| {
        let Some(keys) = keys.as_object() else {
            return false;
        };
        keys.iter().all(|(key, wanted)| {
            let Some((_, value)) = check
                .context
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
            else {
                return false;
            };
            let wanted = strings(wanted);
            match op.as_str() {
                "StringEquals" => wanted.iter().any(|w| w == value),
                "StringLike" => wanted.iter().any(|w| wildcard(w, value)),
                _ => false,
            }
        })
    })
}

/// IAM's wildcard match: `*` any run of characters (including none), `?` any one character.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::SLR_SERVICE;
    use serde_json::json;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard(
            "arn:aws:cloudwatch:*:*:alarm:zeroscale/*",
            "arn:aws:cloudwatch:us-east-1:1:alarm:zeroscale/a/b"
        ));
        assert!(!wildcard(
            "arn:aws:cloudwatch:*:*:alarm:zeroscale/*",
            "arn:aws:cloudwatch:us-east-1:1:alarm:other"
        ));
        assert!(wildcard("*", "*"));
        assert!(
            !wildcard("arn:*", "*"),
            "a narrowed resource never matches a request on *"
        );
        assert!(wildcard("a?c", "abc") && !wildcard("a?c", "ac"));
    }

    #[test]
    fn deny_wins_and_conditions_are_required() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iam:CreateServiceLinkedRole", "Resource": "*",
             "Condition": {"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}}},
            {"Effect": "Allow", "Action": ["cloudwatch:*"], "Resource": "*"},
            {"Effect": "Deny", "Action": "cloudwatch:DeleteAlarms", "Resource": "*"}
        ]});
        let slr = Check::new("iam:CreateServiceLinkedRole", "r");
        assert_eq!(decide(&doc, &slr), Decision::ImplicitDeny, "key missing");
        assert_eq!(
            decide(&doc, &slr.clone().with("iam:AWSServiceName", SLR_SERVICE)),
            Decision::Allowed
        );
        assert_eq!(
            decide(&doc, &Check::new("CloudWatch:PutMetricAlarm", "x")),
            Decision::Allowed
        );
        assert_eq!(
            decide(&doc, &Check::new("cloudwatch:DeleteAlarms", "x")),
            Decision::ExplicitDeny
        );
        assert_eq!(
            decide(&doc, &Check::new("sagemaker:ListEndpoints", "*")),
            Decision::ImplicitDeny
        );
    }
}
