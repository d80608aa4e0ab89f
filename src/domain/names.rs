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

/// Declares a validated SageMaker name type: parsing is the only way to build one.
macro_rules! sagemaker_name {
    ($(#[$doc:meta])* $ty:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize)]
        pub struct $ty(String);

        /// Debug is the quoted name, as users wrote it: messages built with `{:?}` must never
        /// show the Rust type (`ComponentName("x")`).
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl $ty {
            /// Validates the name against SageMaker's rules.
            pub fn parse(s: &str) -> Result<Self, String> {
                check_sagemaker_name($what, s)?;
                Ok(Self(s.to_string()))
            }

            /// The name as AWS knows it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

sagemaker_name!(
    /// The name of a SageMaker inference component.
    ComponentName,
    "an inference component name"
);
sagemaker_name!(
    /// The name of a SageMaker endpoint.
    EndpointName,
    "an endpoint name"
);
sagemaker_name!(
    /// The name of a production variant of an endpoint (SageMaker's VariantName pattern).
    VariantName,
    "a variant name"
);

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
            assert!(EndpointName::parse(bad).is_err(), "{bad}");
            assert!(VariantName::parse(bad).is_err(), "{bad}");
        }
    }
}
