//! The savings ledger's arithmetic, from a target's timeline: hours at zero, hours waking, and
//! what they are worth at a price table's hourly list prices.
//!
//! A target is at zero from `scaled_to_zero` until `capacity_in_service`, and of that, waking
//! from `wake_started` (a `wake_failed` ends the waking, not the zero). Without scale-to-zero it
//! would have held its restore minimum the whole time, so for a period:
//! `savings = (hours at zero - hours waking) x instances it would have held x hourly price`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::EventKind;

/// Where a target stands for the ledger.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Up,
    /// At zero since then.
    Zero(DateTime<Utc>),
    /// At zero since `zero`, waking since `wake` (no capacity serves yet).
    Waking {
        zero: DateTime<Utc>,
        wake: DateTime<Utc>,
    },
}

/// Hours at zero (no capacity in service, waking included) and hours of that spent waking,
/// within a period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hours {
    pub at_zero: f64,
    pub waking: f64,
}

impl Hours {
    /// Hours at zero less hours waking: the hours nothing ran and nothing was being started
    /// (never below zero).
    pub fn net(&self) -> f64 {
        (self.at_zero - self.waking).max(0.0)
    }
}

/// Hours at zero and waking within [since, until), from the last capacity event before
/// `since` (`before`) and the events within the period, in time order.
pub fn hours(
    before: Option<EventKind>,
    events: &[(EventKind, DateTime<Utc>)],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Hours {
    let span =
        |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_milliseconds().max(0) as f64 / 3.6e6;
    let mut state = match before {
        Some(EventKind::ScaledToZero | EventKind::WakeFailed) => State::Zero(since),
        Some(EventKind::WakeStarted) => State::Waking {
            zero: since,
            wake: since,
        },
        _ => State::Up,
    };
    let mut out = Hours::default();
    for &(kind, at) in events.iter().filter(|(_, at)| *at >= since && *at < until) {
        state = match (state, kind) {
            (State::Up, EventKind::ScaledToZero) => State::Zero(at),
            (State::Zero(zero), EventKind::WakeStarted) => State::Waking { zero, wake: at },
            // A wake without a recorded scale-in: at zero from its start.
            (State::Up, EventKind::WakeStarted) => State::Waking { zero: at, wake: at },
            (State::Waking { zero, wake }, EventKind::WakeFailed) => {
                out.waking += span(wake, at);
                State::Zero(zero)
            }
            (State::Waking { zero, wake }, EventKind::CapacityInService) => {
                out.at_zero += span(zero, at);
                out.waking += span(wake, at);
                State::Up
            }
            (State::Zero(zero), EventKind::CapacityInService | EventKind::Disabled) => {
                out.at_zero += span(zero, at);
                State::Up
            }
            (State::Waking { zero, wake }, EventKind::Disabled) => {
                out.at_zero += span(zero, at);
                out.waking += span(wake, at);
                State::Up
            }
            (other, _) => other,
        };
    }
    match state {
        State::Zero(zero) => out.at_zero += span(zero, until),
        State::Waking { zero, wake } => {
            out.at_zero += span(zero, until);
            out.waking += span(wake, until);
        }
        State::Up => {}
    }
    out
}

/// Hourly list prices by instance type, with where they come from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// The AWS Region the prices are for.
    pub region: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The date the prices were list prices on.
    pub as_of: chrono::NaiveDate,
    /// What the prices are (`list prices`).
    pub kind: String,
    /// Anything else the reader should know.
    #[serde(default)]
    pub note: String,
    /// Price per instance-hour, by instance type.
    #[serde(skip_serializing)]
    pub hourly: BTreeMap<String, f64>,
}

/// The table shipped with zeroscale (replace it with `--price-table`).
pub const DEFAULT_PRICES: &str =
    include_str!("../../assets/prices/sagemaker-realtime-us-east-1.json");

impl PriceTable {
    /// Parses and checks a table: every price a finite number of at least 0, keys `ml.*`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let table: Self =
            serde_json::from_str(text).map_err(|e| format!("not a price table: {e}"))?;
        if let Some((k, v)) = table
            .hourly
            .iter()
            .find(|(k, v)| !k.starts_with("ml.") || !v.is_finite() || **v < 0.0)
        {
            return Err(format!("price of {k:?} ({v}): keys must be ml.* instance types and prices numbers of at least 0"));
        }
        Ok(table)
    }

    pub fn default_table() -> Self {
        Self::parse(DEFAULT_PRICES).expect("the shipped price table parses")
    }

    pub fn hourly(&self, instance_type: &str) -> Option<f64> {
        self.hourly.get(instance_type).copied()
    }
}

/// Rounds money to the cent.
pub fn cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventKind::*;

    fn t(h: f64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap()
            + chrono::TimeDelta::milliseconds((h * 3.6e6) as i64)
    }

    #[test]
    fn a_day_with_two_nights_at_zero_and_a_wake() {
        let events = [
            (ScaledToZero, t(2.0)),
            (WakeStarted, t(8.0)),
            (CapacityInService, t(8.25)),
            (ScaledToZero, t(20.0)),
        ];
        let h = hours(None, &events, t(0.0), t(24.0));
        assert_eq!(
            h,
            Hours {
                at_zero: 10.25,
                waking: 0.25
            }
        );
        assert_eq!(
            h.net(),
            10.0,
            "2:00-8:00 and 20:00-24:00 with nothing running"
        );
        // At zero since before the period: counted from its start.
        let h = hours(Some(ScaledToZero), &events[1..], t(0.0), t(24.0));
        assert_eq!(h.at_zero, 12.25);
    }

    #[test]
    fn failed_wakes_leave_the_target_at_zero() {
        let events = [
            (WakeStarted, t(1.0)),
            (WakeFailed, t(1.5)),
            (WakeFailed, t(2.0)),
        ];
        let h = hours(Some(ScaledToZero), &events, t(0.0), t(3.0));
        assert_eq!(
            h,
            Hours {
                at_zero: 3.0,
                waking: 0.5
            }
        );
        assert_eq!(h.net(), 2.5);
    }

    #[test]
    fn the_shipped_table_is_dated_list_prices() {
        let p = PriceTable::default_table();
        assert_eq!(
            (p.region.as_str(), p.kind.as_str()),
            ("us-east-1", "list prices")
        );
        assert!(p.hourly("ml.g5.xlarge").is_some());
        assert!(PriceTable::parse(r#"{"region":"x","currency":"USD","as_of":"2026-01-01","kind":"list prices","hourly":{"g5":1}}"#).is_err());
    }
}
