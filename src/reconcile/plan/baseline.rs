//! What AWS held for a target before zeroscale's first write, as captured and stored.

use serde_json::{json, Value};

use super::Observed;

/// What AWS held for a target before zeroscale's first write to it (issue "Real-AWS
/// behaviour", defect 1). Captured once, durably, before that write, and never from a target
/// that already carries zeroscale's objects; disable restores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// No scalable target: disable deregisters the one zeroscale registered.
    Absent,
    /// A target with these capacities and this SuspendedState (in, out, scheduled): disable
    /// restores them (enable resumes a suspended scale-out, which would keep the target from
    /// waking; the owner's suspension comes back when zeroscale steps aside).
    Existed {
        min: i32,
        max: i32,
        suspended: (bool, bool, bool),
    },
    /// A target already carrying zeroscale's objects (an earlier zeroscale's): what came before
    /// is unknown, so disable restores the spec's `restore_min_capacity`.
    Unknown,
}

impl Baseline {
    /// What `o` says about the state before zeroscale (to be recorded before any write).
    pub fn capture(o: &Observed) -> Self {
        match o.target {
            None => Baseline::Absent,
            Some(_) if o.owns_something() => Baseline::Unknown,
            Some(t) => Baseline::Existed {
                min: t.min,
                max: t.max,
                suspended: (t.suspended_in, t.suspended_out, t.suspended_scheduled),
            },
        }
    }

    /// As stored (migrations/20261130000001_baseline.sql).
    pub fn to_json(self) -> Value {
        match self {
            Baseline::Absent => json!({"existed": false}),
            Baseline::Existed {
                min,
                max,
                suspended,
            } => json!({
                "existed": true, "min": min, "max": max,
                "suspended": {"in": suspended.0, "out": suspended.1, "scheduled": suspended.2},
            }),
            Baseline::Unknown => json!({"existed": true, "unknown": true}),
        }
    }

    /// Reads a stored baseline.
    pub fn from_json(v: &Value) -> Option<Self> {
        match (
            v["existed"].as_bool()?,
            v["min"].as_i64(),
            v["max"].as_i64(),
        ) {
            (false, _, _) => Some(Baseline::Absent),
            (true, Some(min), Some(max)) => {
                let flag = |k: &str| v["suspended"][k].as_bool().unwrap_or(false);
                Some(Baseline::Existed {
                    min: min as i32,
                    max: max as i32,
                    suspended: (flag("in"), flag("out"), flag("scheduled")),
                })
            }
            (true, _, _) => Some(Baseline::Unknown),
        }
    }

    /// The capacities from before zeroscale, when known.
    pub fn capacity(self) -> Option<(i32, i32)> {
        match self {
            Baseline::Existed { min, max, .. } => Some((min, max)),
            _ => None,
        }
    }
}
