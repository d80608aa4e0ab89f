//! What a desired state, a job and an audit event are about: an inference component (seed 000)
//! or an async-inference endpoint variant (seed 001), and the AWS objects zeroscale owns for it.

use std::fmt;

use serde::Serialize;

use super::{
    names::{ComponentName, EndpointName, VariantName},
    spec::ComponentSpec,
    variant_spec::VariantSpec,
};

/// The two kinds of target, as stored in Postgres (`target_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// An inference component: scales copies (`DesiredCopyCount`).
    Component,
    /// A variant of an async-inference endpoint: scales instances (`DesiredInstanceCount`).
    EndpointVariant,
}

impl TargetKind {
    /// The `target_kind` value stored in Postgres.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Component => "component",
            TargetKind::EndpointVariant => "endpoint_variant",
        }
    }
}

/// One managed target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetRef {
    /// An inference component (seed 000).
    Component(ComponentName),
    /// A production variant of an async-inference endpoint (seed 001).
    EndpointVariant {
        endpoint: EndpointName,
        variant: VariantName,
    },
}

impl TargetRef {
    /// Rebuilds a target from its stored kind and name (names were validated on the way in).
    pub fn from_stored(kind: &str, name: &str) -> Result<Self, String> {
        match kind {
            "component" => Ok(TargetRef::Component(ComponentName::parse(name)?)),
            "endpoint_variant" => {
                let rest = name
                    .strip_prefix("endpoint/")
                    .ok_or_else(|| format!("stored variant name {name:?} is malformed"))?;
                let (endpoint, variant) = rest
                    .split_once("/variant/")
                    .ok_or_else(|| format!("stored variant name {name:?} is malformed"))?;
                Ok(TargetRef::EndpointVariant {
                    endpoint: EndpointName::parse(endpoint)?,
                    variant: VariantName::parse(variant)?,
                })
            }
            other => Err(format!("unknown target kind {other:?}")),
        }
    }

    /// Which kind of target this is.
    pub fn target_kind(&self) -> TargetKind {
        match self {
            TargetRef::Component(_) => TargetKind::Component,
            TargetRef::EndpointVariant { .. } => TargetKind::EndpointVariant,
        }
    }

    /// The `target_kind` value stored in Postgres.
    pub fn kind(&self) -> &'static str {
        self.target_kind().as_str()
    }

    /// The stored name (unique per kind): the component name, or the variant's ResourceId.
    pub fn name(&self) -> String {
        match self {
            TargetRef::Component(n) => n.to_string(),
            TargetRef::EndpointVariant { .. } => self.resource_id(),
        }
    }

    /// The Application Auto Scaling ResourceId (aws-facts.md, "What scale to zero means").
    pub fn resource_id(&self) -> String {
        match self {
            TargetRef::Component(n) => format!("inference-component/{n}"),
            TargetRef::EndpointVariant { endpoint, variant } => {
                format!("endpoint/{endpoint}/variant/{variant}")
            }
        }
    }

    /// The job-engine target key: one running job per key. It is the AWS ResourceId, so two
    /// kinds can never collide on one key.
    pub fn job_target(&self) -> String {
        self.resource_id()
    }

    /// The API path of the target's resource.
    pub fn api_path(&self) -> String {
        match self {
            TargetRef::Component(n) => format!("/components/{n}"),
            TargetRef::EndpointVariant { endpoint, variant } => {
                format!("/endpoints/{endpoint}/variants/{variant}")
            }
        }
    }

    /// Names of the AWS objects zeroscale creates for this target. Deterministic, so every run
    /// and every replica finds the same objects.
    ///
    /// Alarm names are unique per account and Region, so the alarm's name is derived
    /// injectively: `zeroscale/` + the ResourceId + `/` + its purpose. SageMaker names cannot
    /// contain `/`, so the name can be split back into its parts (aws-facts.md, "Names"). The
    /// old scheme joined endpoint and variant with `-` and collided (`a-b`/`c` and `a`/`b-c`);
    /// `legacy_alarm` keeps it so that targets enabled under it are moved. Policy names are
    /// unique per scalable target only, so theirs never collided and are unchanged.
    pub fn owned_names(&self) -> OwnedNames {
        let (dimension, stem, purpose, legacy_alarm, alarm_dimension) = match self {
            TargetRef::Component(n) => (
                "sagemaker:inference-component:DesiredCopyCount",
                format!("zeroscale-{n}"),
                "no-capacity",
                format!("zeroscale-{n}-no-capacity"),
                ("InferenceComponentName".to_string(), n.to_string()),
            ),
            TargetRef::EndpointVariant { endpoint, variant } => (
                "sagemaker:variant:DesiredInstanceCount",
                format!("zeroscale-{endpoint}-{variant}"),
                "backlog-without-capacity",
                format!("zeroscale-{endpoint}-{variant}-backlog-without-capacity"),
                ("EndpointName".to_string(), endpoint.to_string()),
            ),
        };
        let resource_id = self.resource_id();
        OwnedNames {
            service_namespace: "sagemaker".into(),
            alarm: format!("{ALARM_PREFIX}{resource_id}/{purpose}"),
            resource_id,
            scalable_dimension: dimension.into(),
            target_tracking_policy: format!("{stem}-target-tracking"),
            step_policy: format!("{stem}-scale-from-zero"),
            legacy_alarm,
            alarm_dimension,
        }
    }
}

impl fmt::Display for TargetRef {
    /// How messages name the target.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Names are checked to be SageMaker names (letters, digits, hyphens): quoted as the
            // user wrote them, never through Debug.
            TargetRef::Component(n) => write!(f, "inference component \"{n}\""),
            TargetRef::EndpointVariant { endpoint, variant } => {
                write!(f, "variant \"{variant}\" of endpoint \"{endpoint}\"")
            }
        }
    }
}

/// Every alarm zeroscale names starts with this (DescribeAlarms' AlarmNamePrefix selects ours).
pub const ALARM_PREFIX: &str = "zeroscale/";

/// The AWS objects zeroscale owns for a target.
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
    /// The alarm's name under the old, colliding scheme (moved to `alarm` on the next run).
    #[serde(skip)]
    pub legacy_alarm: String,
    /// The (name, value) of the alarm's metric dimension: how an alarm under the legacy name is
    /// told to be this target's (the colliding targets differ in it).
    #[serde(skip)]
    pub alarm_dimension: (String, String),
}

/// A stored desired spec, read according to its target's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    Component(ComponentSpec),
    Variant(VariantSpec),
}

impl TargetSpec {
    /// Every violation of the spec at once.
    pub fn validate(&self) -> Result<(), Vec<super::spec::SpecViolation>> {
        match self {
            TargetSpec::Component(s) => s.validate(),
            TargetSpec::Variant(s) => s.validate(),
        }
    }

    /// Reads the stored spec of a target of `kind`.
    pub fn from_stored(kind: TargetKind, spec: &serde_json::Value) -> Result<Self, String> {
        let read = |e: serde_json::Error| format!("stored spec unreadable: {e}");
        Ok(match kind {
            TargetKind::Component => {
                TargetSpec::Component(serde_json::from_value(spec.clone()).map_err(read)?)
            }
            TargetKind::EndpointVariant => {
                TargetSpec::Variant(serde_json::from_value(spec.clone()).map_err(read)?)
            }
        })
    }

    /// The spec as stored.
    pub fn to_json(&self) -> serde_json::Value {
        let json = match self {
            TargetSpec::Component(s) => serde_json::to_value(s),
            TargetSpec::Variant(s) => serde_json::to_value(s),
        };
        // Plain data with string keys: serialising cannot fail.
        json.unwrap_or_default()
    }

    /// The requested max capacity, if any (copies or instances).
    pub fn max_capacity(&self) -> Option<i32> {
        let max = match self {
            TargetSpec::Component(s) => s.max_capacity,
            TargetSpec::Variant(s) => s.max_capacity,
        };
        max.map(|m| m as i32)
    }

    /// The schedules (AWS scheduled actions) of the spec.
    pub fn schedules(&self) -> &[super::Schedule] {
        match self {
            TargetSpec::Component(s) => &s.schedules,
            TargetSpec::Variant(s) => &s.schedules,
        }
    }

    /// The keep-warm pin, if any (active or not).
    pub fn keep_warm(&self) -> Option<&super::KeepWarm> {
        match self {
            TargetSpec::Component(s) => s.keep_warm.as_ref(),
            TargetSpec::Variant(s) => s.keep_warm.as_ref(),
        }
    }

    /// The pause, if any (active or not).
    pub fn pause(&self) -> Option<&super::Pause> {
        match self {
            TargetSpec::Component(s) => s.pause.as_ref(),
            TargetSpec::Variant(s) => s.pause.as_ref(),
        }
    }

    /// Whether the spec asks for scheduled actions (now or earlier: an expired pin's action may
    /// still be listed).
    pub fn uses_scheduled_actions(&self) -> bool {
        !self.schedules().is_empty() || self.keep_warm().is_some()
    }

    /// MinCapacity restored on disable when the original was not captured.
    pub fn restore_min_capacity(&self) -> i32 {
        match self {
            TargetSpec::Component(s) => s.restore_min_capacity as i32,
            TargetSpec::Variant(s) => s.restore_min_capacity as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant() -> TargetRef {
        TargetRef::EndpointVariant {
            endpoint: EndpointName::parse("ep").unwrap(),
            variant: VariantName::parse("AllTraffic").unwrap(),
        }
    }

    #[test]
    fn stored_names_round_trip() {
        let c = TargetRef::Component(ComponentName::parse("ic").unwrap());
        for t in [c, variant()] {
            assert_eq!(TargetRef::from_stored(t.kind(), &t.name()).unwrap(), t);
        }
        assert!(TargetRef::from_stored("endpoint_variant", "ep/AllTraffic").is_err());
        assert!(TargetRef::from_stored("endpoint_variant", "endpoint/e/variant/a_b").is_err());
    }

    #[test]
    fn variants_own_seed_001_objects() {
        let n = variant().owned_names();
        assert_eq!(n.resource_id, "endpoint/ep/variant/AllTraffic");
        assert_eq!(
            n.scalable_dimension,
            "sagemaker:variant:DesiredInstanceCount"
        );
        assert_eq!(
            n.alarm,
            "zeroscale/endpoint/ep/variant/AllTraffic/backlog-without-capacity"
        );
        assert_eq!(
            n.legacy_alarm,
            "zeroscale-ep-AllTraffic-backlog-without-capacity"
        );
    }

    #[test]
    fn alarm_names_are_injective() {
        let v = |e: &str, v: &str| TargetRef::EndpointVariant {
            endpoint: EndpointName::parse(e).unwrap(),
            variant: VariantName::parse(v).unwrap(),
        };
        let (one, two) = (v("a-b", "c").owned_names(), v("a", "b-c").owned_names());
        assert_eq!(
            one.legacy_alarm, two.legacy_alarm,
            "the old scheme collided"
        );
        assert_ne!(one.alarm, two.alarm);
        let ic = TargetRef::Component(ComponentName::parse("a-b-c").unwrap());
        assert_ne!(ic.owned_names().alarm, one.alarm);
    }
}
