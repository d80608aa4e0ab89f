//! Validated names. A handler never sees an invalid one: parsing is the only way in.

use std::fmt;

use serde::Serialize;

/// A SageMaker resource name: 1-63 characters, ASCII letters, digits and hyphens, no leading or
/// trailing hyphen (SageMaker's pattern `^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$`).
fn check_sagemaker_name(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err(format!(
            "{what} must be 1 to 63 characters long (got {})",
            s.len()
        ));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!(
            "{what} may contain only ASCII letters, digits and hyphens"
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(format!("{what} must not start or end with a hyphen"));
    }
    Ok(())
}

/// The name of a SageMaker inference component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ComponentName(String);

impl ComponentName {
    /// Validates a component name.
    pub fn parse(s: &str) -> Result<Self, String> {
        check_sagemaker_name("an inference component name", s)?;
        Ok(Self(s.to_string()))
    }

    /// The name as AWS knows it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ComponentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a desired state, a job and an audit event are about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetRef {
    /// An inference component (seed 000).
    Component(ComponentName),
}

impl TargetRef {
    /// The `target_kind` value stored in Postgres.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetRef::Component(_) => "component",
        }
    }

    /// The stored name (unique per kind).
    pub fn name(&self) -> String {
        match self {
            TargetRef::Component(n) => n.to_string(),
        }
    }

    /// The job-engine target key: one running job per key. Mirrors the AWS ResourceId.
    pub fn job_target(&self) -> String {
        match self {
            TargetRef::Component(n) => format!("inference-component/{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_names_follow_sagemaker_rules() {
        for ok in ["a", "my-ic-1", "A1", &"x".repeat(63)] {
            assert!(ComponentName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a.b", "a b", "ü", &"x".repeat(64)] {
            assert!(ComponentName::parse(bad).is_err(), "{bad}");
        }
    }
}

/// The AWS objects zeroscale owns for a target, with names derived deterministically from the
/// target so that every run (and every replica) finds the same objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OwnedNames {
    /// Application Auto Scaling service namespace.
    pub service_namespace: String,
    /// Scalable target resource id.
    pub resource_id: String,
    /// Scalable dimension.
    pub scalable_dimension: String,
    /// The target-tracking policy's name.
    pub target_tracking_policy: String,
    /// The step policy's name (scale out of zero).
    pub step_policy: String,
    /// The CloudWatch alarm that fires the step policy.
    pub alarm: String,
}

impl TargetRef {
    /// Names of the AWS objects zeroscale creates for this target.
    pub fn owned_names(&self) -> OwnedNames {
        match self {
            TargetRef::Component(n) => OwnedNames {
                service_namespace: "sagemaker".into(),
                resource_id: format!("inference-component/{n}"),
                scalable_dimension: "sagemaker:inference-component:DesiredCopyCount".into(),
                target_tracking_policy: format!("zeroscale-{n}-target-tracking"),
                step_policy: format!("zeroscale-{n}-scale-from-zero"),
                alarm: format!("zeroscale-{n}-no-capacity"),
            },
        }
    }
}
