//! Reading request members with AWS-style validation messages.

use serde_json::Value;

use super::protocol::AwsError;

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// A required string member.
pub fn req_str(p: &Value, key: &str) -> Result<String, AwsError> {
    match p.get(key).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(AwsError::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(key)
        ))),
    }
}

/// An optional string member.
pub fn opt_str(p: &Value, key: &str) -> Option<String> {
    p.get(key).and_then(Value::as_str).map(str::to_string)
}

/// An optional integer member (must be a non-negative whole number when present).
pub fn opt_u32(p: &Value, key: &str) -> Result<Option<u32>, AwsError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| AwsError::validation(format!("{key} must be a non-negative integer"))),
    }
}

/// An optional number member.
pub fn opt_f64(p: &Value, key: &str) -> Option<f64> {
    p.get(key).and_then(Value::as_f64)
}

/// A list of strings (absent is empty).
pub fn str_list(p: &Value, key: &str) -> Vec<String> {
    p.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Checks an enum member against its allowed values.
pub fn check_enum(key: &str, value: &str, allowed: &[&str]) -> Result<(), AwsError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(AwsError::validation(format!(
            "1 validation error detected: Value '{value}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            lower_first(key),
            allowed.join(", ")
        )))
    }
}

/// One page of `items` as AWS pages them: `limit_key` (MaxResults / MaxRecords) between 1 and
/// `max`, `default` when absent, and an opaque NextToken naming where the next page starts.
/// A token that did not come from here is refused with `bad_token` (AWS services differ).
pub fn page(
    items: Vec<Value>,
    p: &Value,
    limit_key: &str,
    default: usize,
    max: usize,
    bad_token: &'static str,
) -> Result<(Vec<Value>, Option<String>), AwsError> {
    let limit = match p.get(limit_key) {
        None | Some(Value::Null) => default,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && n as usize <= max => n as usize,
            _ => {
                return Err(AwsError::validation(format!(
                    "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must be between 1 and {max}",
                    lower_first(limit_key)
                )))
            }
        },
    };
    let start = match p.get("NextToken").and_then(Value::as_str) {
        None | Some("") => 0,
        Some(t) => t
            .strip_prefix("sbx-page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| AwsError::client(bad_token, "The NextToken is invalid."))?,
    };
    let end = (start + limit).min(items.len());
    let next = (end < items.len()).then(|| format!("sbx-page-{end}"));
    Ok((items[start..end].to_vec(), next))
}

/// Adds `NextToken` to an output when there is a next page.
pub fn with_token(mut out: Value, next: Option<String>) -> Value {
    if let Some(t) = next {
        out["NextToken"] = Value::String(t);
    }
    out
}
