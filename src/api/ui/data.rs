//! What the portal shows of a target, worked out from its timeline (`target_events`) and its
//! stored row: capacity over time as the timeline knows it, what that means now (asleep,
//! waking, warm, paused, failed to wake), its last wake, and its time at zero. No AWS call:
//! the observation pass already recorded everything here.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{
    domain::{EventKind, KeepWarm, Pause},
    store::targets::TargetRow,
};

/// One recorded event.
#[derive(Debug, Clone)]
pub struct Ev {
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    pub details: Value,
}

/// Capacity as the timeline knows it: zero after a scale-in, the capacity a wake brought into
/// service, and unknown before anything was observed or after a disable (AWS's own scaling
/// between non-zero capacities is not on the timeline).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    Unknown,
    Zero,
    Waking,
    /// At zero after a wake that failed.
    Failed,
    Up(i64),
}

impl Level {
    /// The capacity to draw (None: a gap).
    pub fn capacity(self) -> Option<i64> {
        match self {
            Level::Unknown => None,
            Level::Zero | Level::Waking | Level::Failed => Some(0),
            Level::Up(n) => Some(n),
        }
    }

    fn after(self, kind: EventKind, details: &Value) -> Level {
        match kind {
            EventKind::ScaledToZero => Level::Zero,
            EventKind::WakeStarted => Level::Waking,
            EventKind::WakeFailed => Level::Failed,
            EventKind::CapacityInService => {
                Level::Up(details["capacity"].as_i64().filter(|n| *n > 0).unwrap_or(1))
            }
            EventKind::Disabled => Level::Unknown,
            _ => self,
        }
    }
}

/// A target's recent timeline: the last capacity event before the window, then the window's
/// events in time order.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub before: Option<(EventKind, Value)>,
    pub events: Vec<Ev>,
}

/// The last wake: when it ended, how long it took, or why it failed.
#[derive(Debug, Clone)]
pub struct LastWake {
    pub at: DateTime<Utc>,
    pub seconds: Option<f64>,
    pub failure: Option<String>,
}

impl History {
    /// A history from events in time order. Events of one instant are put in causal order: a
    /// wake's start before its end (a quota failure starts and ends at once, and both rows
    /// share their time).
    pub fn new(before: Option<(EventKind, Value)>, mut events: Vec<Ev>) -> Self {
        let rank = |k: EventKind| match k {
            EventKind::ScaledToZero => 0,
            EventKind::WakeStarted => 1,
            _ => 2,
        };
        events.sort_by(|a, b| a.at.cmp(&b.at).then(rank(a.kind).cmp(&rank(b.kind))));
        Self { before, events }
    }

    fn start(&self) -> Level {
        self.before
            .as_ref()
            .map(|(k, d)| Level::Unknown.after(*k, d))
            .unwrap_or(Level::Unknown)
    }

    /// The capacity level at `t`.
    pub fn level_at(&self, t: DateTime<Utc>) -> Level {
        self.events
            .iter()
            .take_while(|e| e.at <= t)
            .fold(self.start(), |l, e| l.after(e.kind, &e.details))
    }

    /// The level now: after every event recorded.
    pub fn now(&self) -> Level {
        self.events
            .iter()
            .fold(self.start(), |l, e| l.after(e.kind, &e.details))
    }

    /// The level from `from` to `to`: its value at `from`, then each change.
    pub fn steps(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(DateTime<Utc>, Level)> {
        let mut level = self.level_at(from);
        let mut out = vec![(from, level)];
        for e in self.events.iter().filter(|e| e.at > from && e.at <= to) {
            let next = level.after(e.kind, &e.details);
            if next != level {
                out.push((e.at, next));
                level = next;
            }
        }
        out
    }

    /// Seconds at zero capacity (waking and failed wakes included) within [from, to).
    pub fn zero_seconds(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        let steps = self.steps(from, to);
        let mut total = 0.0;
        for (i, (at, level)) in steps.iter().enumerate() {
            let end = steps.get(i + 1).map(|s| s.0).unwrap_or(to);
            if level.capacity() == Some(0) {
                total += (end - *at).num_milliseconds().max(0) as f64 / 1e3;
            }
        }
        total
    }

    /// The latest wake that ended, in service or failed.
    pub fn last_wake(&self) -> Option<LastWake> {
        self.events.iter().rev().find_map(|e| match e.kind {
            EventKind::CapacityInService => Some(LastWake {
                at: e.at,
                seconds: e.details["wake_seconds"].as_f64(),
                failure: None,
            }),
            EventKind::WakeFailed => Some(LastWake {
                at: e.at,
                seconds: None,
                failure: Some(
                    e.details["message"]
                        .as_str()
                        .unwrap_or("the wake failed")
                        .to_string(),
                ),
            }),
            _ => None,
        })
    }

    /// Paused stretches within [from, to]: from each `paused` to the next `resumed` (or `to`).
    pub fn pauses(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        paused_now: bool,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let mut out = Vec::new();
        let mut open: Option<DateTime<Utc>> = None;
        for e in self.events.iter().filter(|e| e.at <= to) {
            match e.kind {
                EventKind::Paused => open = open.or(Some(e.at.max(from))),
                EventKind::Resumed => {
                    let start = open.take().unwrap_or(from);
                    if e.at >= from {
                        out.push((start, e.at));
                    }
                }
                _ => {}
            }
        }
        match open {
            Some(start) => out.push((start, to)),
            None if paused_now && !self.events.iter().any(|e| e.kind == EventKind::Paused) => {
                out.push((from, to))
            }
            None => {}
        }
        out
    }
}

/// What a target's state means, in one word for people, with a CSS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    Off,
    Paused,
    Asleep,
    Waking,
    Warm,
    FailedToWake,
    Unknown,
}

impl Meaning {
    /// Its word for people and its CSS class (also the fleet filter's value).
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Meaning::Off => ("off", "off"),
            Meaning::Paused => ("paused", "paused"),
            Meaning::Asleep => ("asleep", "asleep"),
            Meaning::Waking => ("waking", "waking"),
            Meaning::Warm => ("warm", "warm"),
            Meaning::FailedToWake => ("failed to wake", "failed"),
            Meaning::Unknown => ("not observed yet", "unknown"),
        }
    }

    pub fn word(self) -> &'static str {
        self.names().0
    }

    pub fn class(self) -> &'static str {
        self.names().1
    }

    /// Every meaning the fleet page filters by.
    pub const ALL: [Meaning; 7] = [
        Meaning::Asleep,
        Meaning::Waking,
        Meaning::Warm,
        Meaning::Paused,
        Meaning::FailedToWake,
        Meaning::Off,
        Meaning::Unknown,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.class() == s)
    }
}

/// The target's pause, if one holds now.
pub fn pause(row: &TargetRow, now: DateTime<Utc>) -> Option<Pause> {
    serde_json::from_value::<Pause>(row.spec["pause"].clone())
        .ok()
        .filter(|p| p.until > now)
}

/// The target's keep-warm pin, if one holds now.
pub fn pin(row: &TargetRow, now: DateTime<Utc>) -> Option<KeepWarm> {
    serde_json::from_value::<KeepWarm>(row.spec["keep_warm"].clone())
        .ok()
        .filter(|k| k.active(now))
}

/// What the target's state means now.
pub fn meaning(row: &TargetRow, history: &History, now: DateTime<Utc>) -> Meaning {
    if !row.enabled {
        return Meaning::Off;
    }
    if pause(row, now).is_some() {
        return Meaning::Paused;
    }
    match history.now() {
        Level::Zero => Meaning::Asleep,
        Level::Waking => Meaning::Waking,
        Level::Failed => Meaning::FailedToWake,
        Level::Up(_) => Meaning::Warm,
        Level::Unknown => Meaning::Unknown,
    }
}

/// The wake latencies (seconds) among `events`, for the median and p90.
pub fn wake_seconds<'a>(events: impl Iterator<Item = &'a Ev>) -> Vec<f64> {
    let mut v: Vec<f64> = events
        .filter(|e| e.kind == EventKind::CapacityInService)
        .filter_map(|e| e.details["wake_seconds"].as_f64())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The `q`-quantile of sorted values (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(kind: EventKind, min: i64, details: Value) -> Ev {
        Ev {
            kind,
            at: DateTime::from_timestamp(min * 60, 0).unwrap(),
            details,
        }
    }

    #[test]
    fn levels_follow_the_timeline_and_time_at_zero_counts_waking() {
        let h = History {
            before: Some((EventKind::CapacityInService, json!({"capacity": 2}))),
            events: vec![
                ev(EventKind::ScaledToZero, 10, json!({})),
                ev(EventKind::WakeStarted, 40, json!({})),
                ev(
                    EventKind::CapacityInService,
                    43,
                    json!({"capacity": 1, "wake_seconds": 180.0}),
                ),
                ev(EventKind::ScaledToZero, 70, json!({})),
                ev(EventKind::WakeStarted, 80, json!({})),
                ev(EventKind::WakeFailed, 81, json!({"message": "quota"})),
            ],
        };
        let t = |m: i64| DateTime::from_timestamp(m * 60, 0).unwrap();
        assert_eq!(h.level_at(t(5)), Level::Up(2));
        assert_eq!(h.level_at(t(41)), Level::Waking);
        assert_eq!(h.now(), Level::Failed);
        // 10..43 and 70..90: 33 + 20 minutes.
        assert_eq!(h.zero_seconds(t(0), t(90)), 53.0 * 60.0);
        let last = h.last_wake().unwrap();
        assert_eq!(last.failure.as_deref(), Some("quota"));
        assert_eq!(quantile(&wake_seconds(h.events.iter()), 0.5), Some(180.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 10.0], 0.9), Some(10.0));
    }

    #[test]
    fn pauses_run_from_paused_to_resumed() {
        let t = |m: i64| DateTime::from_timestamp(m * 60, 0).unwrap();
        let h = History {
            before: None,
            events: vec![
                ev(EventKind::Paused, 10, json!({})),
                ev(EventKind::Resumed, 20, json!({})),
                ev(EventKind::Paused, 30, json!({})),
            ],
        };
        assert_eq!(
            h.pauses(t(0), t(60), true),
            vec![(t(10), t(20)), (t(30), t(60))]
        );
    }
}
