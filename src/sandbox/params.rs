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
