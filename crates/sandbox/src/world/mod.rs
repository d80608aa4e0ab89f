//! The sandbox's state: one in-memory model per service, a clock, the call log and faults.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

mod alarm_config;
mod policy_config;

pub use alarm_config::{AlarmConfig, Dimension};
pub use policy_config::{PredefinedMetric, StepAdjustment, StepConfig, TargetTrackingConfig};

/// Account and region the sandbox pretends to be.
pub const ACCOUNT: &str = "123456789012";
/// Region in every ARN.
pub const REGION: &str = "us-east-1";

/// Time source: real time plus an offset, or frozen for tests. Every period, cooldown and
/// provisioning delay is measured on it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Clock {
    /// Frozen at this epoch second, if frozen.
    pub frozen: Option<f64>,
    /// Added to real time when not frozen.
    pub offset: f64,
}

impl Clock {
    /// Now, in epoch seconds.
    pub fn now(&self) -> f64 {
        self.frozen.unwrap_or_else(|| {
            let real = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            real + self.offset
        })
    }

    /// Moves time forward.
    pub fn advance(&mut self, seconds: f64) {
        match &mut self.frozen {
            Some(t) => *t += seconds,
            None => self.offset += seconds,
        }
    }
}

/// A production variant of an endpoint, with its live instance counts.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub name: String,
    pub instance_type: String,
    /// Instances serving now.
    pub current_instances: u32,
    /// Instances wanted (current plus provisioning).
    pub desired_instances: u32,
    /// Instances that become InService at the given time.
    pub provisioning: Vec<(f64, u32)>,
    /// ManagedInstanceScaling as configured.
    pub managed: Option<ManagedScaling>,
}

/// A variant's ManagedInstanceScaling, as CreateEndpointConfig takes it and DescribeEndpoint
/// returns it.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManagedScaling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_instance_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instance_count: Option<u32>,
}

impl ManagedScaling {
    /// The ManagedInstanceScaling of an endpoint configuration's variant, if it has one.
    pub fn of(variant: &Value) -> Option<Self> {
        serde_json::from_value(variant.get("ManagedInstanceScaling")?.clone()).ok()
    }
}

/// A SageMaker endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub name: String,
    pub arn: String,
    pub config_name: String,
    pub status: String,
    /// When a transitional status (Creating, Updating) ends and the endpoint is InService.
    pub status_until: Option<f64>,
    pub created: f64,
    pub modified: f64,
    pub variants: Vec<Variant>,
    /// AsyncInferenceConfig, for async endpoints. Kept as sent: the simulation only asks
    /// whether there is one, and DescribeEndpoint echoes it.
    pub async_config: Option<Value>,
    /// Queued async requests.
    pub backlog: u64,
}

/// A SageMaker inference component.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    pub name: String,
    pub arn: String,
    pub endpoint: String,
    pub variant: String,
    pub status: String,
    /// When a transitional status (Creating, Updating) ends and the component is InService.
    pub status_until: Option<f64>,
    pub created: f64,
    pub desired_copies: u32,
    pub current_copies: u32,
    /// Copies that become InService at the given time.
    pub provisioning: Vec<(f64, u32)>,
    /// Specification as given at creation. Kept as sent: the simulation never reads it, and
    /// DescribeInferenceComponent echoes it.
    pub specification: Value,
}

/// Key of a scalable target: (service namespace, resource id, scalable dimension).
pub type TargetKey = (String, String, String);

/// A registered scalable target.
#[derive(Debug, Clone, Serialize)]
pub struct ScalableTarget {
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    pub min: u32,
    pub max: u32,
    pub role_arn: String,
    pub created: f64,
    pub suspended_in: bool,
    pub suspended_out: bool,
    pub suspended_scheduled: bool,
    pub arn: String,
}

/// A scheduled action (PutScheduledAction), with where the simulation got to in its runs.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduledAction {
    pub name: String,
    pub arn: String,
    pub schedule: String,
    pub timezone: Option<String>,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub created: f64,
    /// Runs up to this time (sandbox clock) have been made or skipped.
    pub checked_until: f64,
}

/// A scaling policy.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub name: String,
    pub arn: String,
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    pub policy_type: String,
    pub step: Option<StepConfig>,
    pub target_tracking: Option<TargetTrackingConfig>,
    pub created: f64,
    /// Alarms AWS created for a target-tracking policy.
    pub owned_alarms: Vec<String>,
    /// The last scale-out this policy made: (time, capacity before it).
    pub last_scale_out: Option<(f64, u32)>,
    pub last_scale_in: Option<f64>,
    /// Target tracking: the tracked metric per unit of capacity, one per minute, newest last
    /// (None: no capacity, so no datapoint). What its own alarms evaluate.
    #[serde(default)]
    pub samples: Vec<Option<f64>>,
}

/// One state change of an alarm (what DescribeAlarmHistory would show).
#[derive(Debug, Clone, Serialize)]
pub struct AlarmTransition {
    pub at: f64,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// A CloudWatch metric alarm: its full configuration as put, and its state.
#[derive(Debug, Clone, Serialize)]
pub struct Alarm {
    pub name: String,
    pub arn: String,
    pub config: AlarmConfig,
    pub state: String,
    pub reason: String,
    /// StateReasonData: the JSON CloudWatch attaches to a threshold evaluation (the evaluated
    /// datapoints with their timestamps); None after SetAlarmState without one.
    pub reason_data: Option<String>,
    pub updated: f64,
    pub config_updated: f64,
    pub history: Vec<AlarmTransition>,
    /// Created by a target-tracking policy (AWS's own alarm).
    pub aws_owned: bool,
}

/// One metric datapoint.
#[derive(Debug, Clone, Serialize)]
pub struct Datapoint {
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    pub at: f64,
    pub value: f64,
}

/// A scaling activity, successful or not.
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    pub id: String,
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    pub description: String,
    pub cause: String,
    pub start: f64,
    pub end: f64,
    pub status: String,
    pub message: String,
    /// NotScaledReasons (only listed with IncludeNotScaledActivities).
    pub not_scaled: Option<Value>,
}

/// A received AWS call, for tests and the demo.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub seq: u64,
    pub at: f64,
    pub service: &'static str,
    pub operation: String,
    pub protocol: super::protocol::Protocol,
    pub params: Value,
    /// The error code answered, if any.
    pub error: Option<String>,
    /// The IAM actions AWS authorises for this call: its own and those AWS checks on the
    /// caller's behalf (empty for calls that need no permission, and for injected faults).
    pub authorized: Vec<String>,
    pub request_id: String,
    /// The output answered (None for an error), in the model's shape, for conformance checks.
    pub response: Option<Value>,
}

/// Faults to inject into an operation.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Fault {
    /// Answer the next N calls with ThrottlingException.
    #[serde(default)]
    pub throttle: u32,
    /// Answer the next N calls with a 500 (InternalServiceException / InternalFailure).
    #[serde(default)]
    pub fail: u32,
    /// Delay every call by this many milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Answer the next `times` calls with this HTTP status and an empty body (as a proxy or a
    /// denied request without an error document would).
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub times: u32,
}

/// Behaviour switches. The defaults are AWS's behaviour; turning `eventual_consistency` or
/// `status_transitions` off makes the sandbox kinder than AWS, which only a test that needs it
/// may do (and must say why).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Seconds new capacity takes to become InService (minutes on AWS).
    pub provisioning_delay_seconds: f64,
    /// As AWS's eventual consistency after RegisterScalableTarget (aws-facts.md): the first call
    /// that needs a new target misses it once: a PutScalingPolicy fails with
    /// ObjectNotFoundException, or a DescribeScalableTargets does not list it (whichever comes
    /// first; the sandbox counts calls rather than seconds so that tests are deterministic).
    /// On by default.
    pub eventual_consistency: bool,
    /// As AWS: creating an endpoint or component goes through `Creating`, and every capacity
    /// change (UpdateEndpointWeightsAndCapacities, UpdateInferenceComponentRuntimeConfig) puts
    /// the endpoint (and the component) in `Updating` for the provisioning delay. On by default.
    pub status_transitions: bool,
    /// The account's Application Auto Scaling request rate (calls per second, bursts of the
    /// same size); calls beyond it get ThrottlingException. None: unlimited.
    #[serde(default)]
    pub autoscaling_requests_per_second: Option<f64>,
    /// Instance types AWS has no capacity for right now: a scale-out onto one runs for the
    /// provisioning delay and then fails with SageMaker's CapacityError words. Empty by default.
    #[serde(default)]
    pub insufficient_capacity: std::collections::BTreeSet<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            provisioning_delay_seconds: 60.0,
            eventual_consistency: true,
            status_transitions: true,
            autoscaling_requests_per_second: None,
            insufficient_capacity: Default::default(),
        }
    }
}

/// Everything the sandbox knows.
#[derive(Debug, Default, Serialize)]
pub struct World {
    pub clock: Clock,
    pub settings: Settings,
    pub endpoint_configs: BTreeMap<String, Value>,
    pub endpoints: BTreeMap<String, Endpoint>,
    pub components: BTreeMap<String, Component>,
    pub targets: BTreeMap<TargetKey, ScalableTarget>,
    /// Policies by (target key, policy name).
    pub policies: BTreeMap<(TargetKey, String), Policy>,
    /// Scheduled actions by (target key, action name).
    pub scheduled_actions: BTreeMap<(TargetKey, String), ScheduledAction>,
    pub alarms: BTreeMap<String, Alarm>,
    pub metrics: Vec<Datapoint>,
    pub activities: Vec<Activity>,
    /// Applied instance quotas by instance type (`<type> for endpoint usage`): only where the
    /// account has set one (ListServiceQuotas lists only these).
    pub quotas: BTreeMap<String, f64>,
    /// AWS's default instance quotas (ListAWSDefaultServiceQuotas); in force where no applied
    /// value exists.
    pub default_quotas: BTreeMap<String, f64>,
    /// Composite alarms: name -> AlarmRule.
    pub composite_alarms: BTreeMap<String, String>,
    pub calls: Vec<CallRecord>,
    pub faults: HashMap<String, Fault>,
    /// The caller's identity and attached policy.
    pub iam: super::iam::Iam,
    /// Resource ids registered while eventual consistency is on, whose next policy put fails.
    pub fresh_registrations: Vec<String>,
    /// Resource ids registered while eventual consistency is on, which the next
    /// DescribeScalableTargets does not list yet.
    pub unlisted_registrations: Vec<String>,
    /// Application Auto Scaling rate bucket: (tokens, last refill in real seconds).
    #[serde(skip)]
    pub autoscaling_bucket: (f64, f64),
    /// Last minute boundary the simulation processed.
    pub processed_until: f64,
    pub next_id: u64,
}

impl World {
    /// A fresh world on the given clock.
    pub fn new(clock: Clock) -> Self {
        let now = clock.now();
        Self {
            processed_until: (now / 60.0).floor() * 60.0,
            clock,
            ..Default::default()
        }
    }

    /// Now on the sandbox clock.
    pub fn now(&self) -> f64 {
        self.clock.now()
    }

    /// A fresh identifier (hex), unique within this world.
    pub fn id(&mut self) -> String {
        self.next_id += 1;
        format!("{:08x}-{:04x}", rand::random::<u32>(), self.next_id)
    }

    /// Records a datapoint.
    pub fn put_metric(
        &mut self,
        namespace: &str,
        metric: &str,
        dims: &[(&str, &str)],
        at: f64,
        value: f64,
    ) {
        self.metrics.push(Datapoint {
            namespace: namespace.into(),
            metric: metric.into(),
            dimensions: dims
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            at,
            value,
        });
    }

    /// The instance quota in force for a type: the applied value, else AWS's default.
    pub fn quota(&self, instance_type: &str) -> Option<f64> {
        self.quotas
            .get(instance_type)
            .or_else(|| self.default_quotas.get(instance_type))
            .copied()
    }

    /// Instances of a type in use across the account (serving or provisioning), for quotas.
    pub fn instances_in_use(&self, instance_type: &str) -> u32 {
        self.endpoints
            .values()
            .flat_map(|e| e.variants.iter())
            .filter(|v| v.instance_type == instance_type)
            .map(|v| v.desired_instances)
            .sum()
    }
}

/// `arn:aws:<service>:us-east-1:123456789012:<rest>`.
pub fn arn(service: &str, rest: &str) -> String {
    format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{rest}")
}
