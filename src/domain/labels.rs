//! Labels: a map of short strings on every target (`{"team": "search", "cost_center": "ml-42"}`),
//! validated as Kubernetes validates labels, and the equality selectors that filter lists,
//! events and reports by them (`team=search,cost_center=ml-42`).
//!
//! Written here rather than taken from a crate: the Kubernetes crates carry the types, not the
//! apimachinery validation, and the rules are a few lines.

use std::collections::BTreeMap;

/// A target's labels, by key.
pub type Labels = BTreeMap<String, String>;

/// Most labels one target may carry (ours; Kubernetes sets none).
pub const MAX_LABELS: usize = 64;

/// A label name or value: at most 63 characters, alphanumerics at both ends, `-`, `_` and `.`
/// between (Kubernetes' "qualified name" part).
fn is_name(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// A DNS subdomain (RFC 1123): lowercase labels of alphanumerics and `-`, joined by dots, at
/// most 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// Why `key` is not a label key (`[prefix/]name`, the prefix a DNS subdomain), if it is not.
pub fn key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) {
        return Some(
            "a key's prefix must be a DNS subdomain (lowercase, at most 253 characters)".into(),
        );
    }
    (!is_name(name)).then(|| {
        "a key must be at most 63 characters, alphanumeric at both ends, with - _ . between (an optional DNS-subdomain prefix and /)".into()
    })
}

/// Why `value` is not a label value, if it is not (an empty value is allowed).
pub fn value_problem(value: &str) -> Option<String> {
    (!value.is_empty() && !is_name(value)).then(|| {
        "a value must be empty or at most 63 characters, alphanumeric at both ends, with - _ . between".into()
    })
}

/// Every broken rule of a label map, each naming `labels.<key>`.
/// (Violations as `spec::SpecViolation`: field path and rule.)
pub fn check(labels: &Labels, errs: &mut Vec<(String, String)>) {
    if labels.len() > MAX_LABELS {
        errs.push((
            "labels".into(),
            format!("at most {MAX_LABELS} labels (got {})", labels.len()),
        ));
    }
    for (k, v) in labels {
        if let Some(why) = key_problem(k).or_else(|| value_problem(v)) {
            errs.push((format!("labels.{k}"), why));
        }
    }
}

/// Parses an equality selector, `key=value[,key=value...]`, into the labels a target must have.
pub fn parse_selector(selector: &str) -> Result<Labels, String> {
    let mut out = Labels::new();
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (k, v) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .ok_or_else(|| format!("`{term}` is not key=value"))?;
        let (k, v) = (k.trim(), v.trim());
        if let Some(why) = key_problem(k).or_else(|| value_problem(v)) {
            return Err(format!("`{term}`: {why}"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    if out.is_empty() {
        return Err("give at least one key=value".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_follow_kubernetes() {
        for ok in ["team", "cost_center", "example.com/team", "a", "a.b-c_d"] {
            assert!(key_problem(ok).is_none(), "{ok}");
        }
        for bad in [
            "",
            "-team",
            "team-",
            "Ex.com/team",
            "a/b/c",
            &"x".repeat(64),
            "té",
        ] {
            assert!(key_problem(bad).is_some(), "{bad}");
        }
        assert!(value_problem("").is_none());
        assert!(value_problem("ml-42").is_none());
        assert!(value_problem("has space").is_some());
    }

    #[test]
    fn selectors_are_equalities() {
        let s = parse_selector("team=search, cost_center==ml-42").unwrap();
        assert_eq!(s["team"], "search");
        assert_eq!(s["cost_center"], "ml-42");
        assert!(parse_selector("team").is_err());
        assert!(parse_selector("").is_err());
        assert!(parse_selector("team=a b").is_err());
    }
}
