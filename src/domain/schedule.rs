//! Business-hours schedules, keep-warm pins and pauses: the parts of a desired state that
//! change a target's MinCapacity and SuspendedState over time. Pure: the cron arithmetic is
//! here, the AWS objects that carry it out are `reconcile::objects::scheduled_action`.
//!
//! A schedule's cron is what users write (five fields, `0 8 * * MON-FRI`) or AWS's six fields
//! (`0 8 ? * MON-FRI *`); it is stored as given and sent to AWS in AWS's form, where the day of
//! the week counts from SUN = 1 (five-field numbers, SUN = 0 or 7, are turned into names) and
//! exactly one of day-of-month and day-of-week is `?` (`cron.rs`).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use super::cron::aws_cron;
use super::cron::evaluator;

/// A recurring window in which the target keeps at least `min_capacity`: at each `cron` time
/// MinCapacity becomes `min_capacity`, and at each `end_cron` time (if given) it goes back to 0.
/// Both are AWS scheduled actions, so they run while zeroscale is down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Unique within the target: letters, digits and hyphens, 1-64 characters.
    #[schema(example = "business-hours")]
    pub name: String,
    /// When the window starts: five fields (`minute hour day-of-month month day-of-week`) or
    /// AWS's six (with `?` and a year).
    #[schema(example = "0 8 * * MON-FRI")]
    pub cron: String,
    /// When the window ends (MinCapacity back to 0); same syntax. Without it the schedule is
    /// one scheduled action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "0 20 * * MON-FRI")]
    pub end_cron: Option<String>,
    /// IANA time zone both expressions are read in (default UTC).
    #[serde(default = "utc")]
    #[schema(default = "UTC", example = "Asia/Tokyo")]
    pub timezone: String,
    /// MinCapacity from `cron` on (copies or instances), 0-1000.
    #[schema(minimum = 0, maximum = 1000)]
    pub min_capacity: u32,
}

fn utc() -> String {
    "UTC".into()
}

/// A pin: at least `copies` until `until` (then MinCapacity goes back to what the schedules
/// say, by an AWS `at(...)` scheduled action).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepWarm {
    /// When the window ends.
    pub until: DateTime<Utc>,
    /// Copies (instances for a variant) kept at least, 1-1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub copies: u32,
    /// Why (shown on the target and in the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who pinned it (the token, and the portal user it acted for).
    pub by: String,
}

/// Scaling suspended (SuspendedState: scale-in, scale-out and scheduled scaling) until `until`,
/// when zeroscale resumes it by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// When zeroscale resumes scaling.
    pub until: DateTime<Utc>,
    /// Why (shown in the `Paused` condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who paused it.
    pub by: String,
    /// When it was paused.
    pub since: DateTime<Utc>,
}

impl KeepWarm {
    /// Whether the pin holds at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        now < self.until
    }
}

impl Pause {
    /// Whether the pause holds at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        now < self.until
    }
}

/// One end of a schedule as AWS runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Boundary {
    /// `start` or `end`.
    pub edge: &'static str,
    /// AWS's six fields.
    pub aws_cron: String,
    pub min_capacity: u32,
}

impl Schedule {
    /// Its scheduled actions' expressions, start first (valid once `check` passed).
    pub fn boundaries(&self) -> Vec<Boundary> {
        let mut out = Vec::new();
        if let Ok(c) = aws_cron(&self.cron) {
            out.push(Boundary {
                edge: "start",
                aws_cron: c,
                min_capacity: self.min_capacity,
            });
        }
        if let Some(Ok(c)) = self.end_cron.as_deref().map(aws_cron) {
            out.push(Boundary {
                edge: "end",
                aws_cron: c,
                min_capacity: 0,
            });
        }
        out
    }

    /// The time zone (UTC if unreadable; `check` refuses that).
    pub fn zone(&self) -> Tz {
        Tz::from_str(&self.timezone).unwrap_or(Tz::UTC)
    }

    /// Each boundary's latest run before `at`, with the MinCapacity it set.
    fn last_runs(&self, at: DateTime<Utc>) -> Vec<(DateTime<Utc>, u32)> {
        let tz = self.zone();
        self.boundaries()
            .into_iter()
            .filter_map(|b| {
                let e = evaluator(&b.aws_cron).ok()?;
                let last = e.after(&at.with_timezone(&tz)).next_back()?;
                Some((last.with_timezone(&Utc), b.min_capacity))
            })
            .collect()
    }

    /// The next `n` times each boundary fires after `now`.
    pub fn next_runs(&self, now: DateTime<Utc>, n: usize) -> Vec<(Boundary, Vec<DateTime<Tz>>)> {
        let tz = self.zone();
        self.boundaries()
            .into_iter()
            .map(|b| {
                let runs = evaluator(&b.aws_cron)
                    .map(|s| s.after(&now.with_timezone(&tz)).take(n).collect())
                    .unwrap_or_default();
                (b, runs)
            })
            .collect()
    }
}

/// The next runs of one of a schedule's scheduled actions (GET and dry runs show them).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleRuns {
    /// The schedule's name.
    pub schedule: String,
    /// `start` (MinCapacity becomes `min_capacity`) or `end` (back to 0).
    pub edge: String,
    /// As PutScheduledAction sends it.
    #[schema(example = "cron(0 8 ? * MON-FRI *)")]
    pub expression: String,
    /// The zone the expression is read in.
    pub timezone: String,
    /// MinCapacity from this run on.
    pub min_capacity: u32,
    /// The next three runs.
    pub next: Vec<Run>,
}

/// One run, in UTC and in the schedule's zone.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Run {
    /// The run in UTC.
    pub utc: DateTime<Utc>,
    /// RFC 3339 with the zone's offset.
    #[schema(example = "2026-12-07T08:00:00+09:00")]
    pub local: String,
}

/// The next three runs of every scheduled action of `schedules`.
pub fn runs(schedules: &[Schedule], now: DateTime<Utc>) -> Vec<ScheduleRuns> {
    schedules
        .iter()
        .flat_map(|s| {
            s.next_runs(now, 3)
                .into_iter()
                .map(|(b, next)| ScheduleRuns {
                    schedule: s.name.clone(),
                    edge: b.edge.into(),
                    expression: format!("cron({})", b.aws_cron),
                    timezone: s.timezone.clone(),
                    min_capacity: b.min_capacity,
                    next: next
                        .into_iter()
                        .map(|t| Run {
                            utc: t.with_timezone(&Utc),
                            local: t.to_rfc3339(),
                        })
                        .collect(),
                })
        })
        .collect()
}

/// The MinCapacity the schedules hold at `at`: what the action that ran last set, as on AWS,
/// where each scheduled action sets MinCapacity when it runs and the latest one wins (overlapping
/// schedules do not add up); 0 before any has run.
pub fn scheduled_min(schedules: &[Schedule], at: DateTime<Utc>) -> u32 {
    schedules
        .iter()
        .flat_map(|s| s.last_runs(at))
        .max()
        .map_or(0, |(_, min)| min)
}

/// Every MinCapacity the schedules hold at some time in [`from`, `to`]: the one at `from` and
/// the one after each run in between (at most 50 runs a boundary are looked at).
pub fn scheduled_mins_between(
    schedules: &[Schedule],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<u32> {
    let mut instants = vec![from];
    for s in schedules {
        let tz = s.zone();
        for b in s.boundaries() {
            let Ok(e) = evaluator(&b.aws_cron) else {
                continue;
            };
            let runs = e
                .after(&from.with_timezone(&tz))
                .take(50)
                .map(|t| t.with_timezone(&Utc))
                .take_while(|t| *t <= to);
            // Just after the run: `scheduled_min` counts runs strictly before its instant.
            instants.extend(runs.map(|t| t + chrono::Duration::seconds(1)));
        }
    }
    // Schedules that run at the same minutes share their instants (each is worth a parse of
    // every schedule's expressions).
    instants.sort_unstable();
    instants.dedup();
    let mut mins: Vec<u32> = instants
        .into_iter()
        .map(|t| scheduled_min(schedules, t))
        .collect();
    mins.sort_unstable();
    mins.dedup();
    mins
}

/// Each violation is (field, what is accepted), as `spec::SpecViolation`.
pub fn check(schedules: &[Schedule], max_capacity: Option<u32>, errs: &mut Vec<(String, String)>) {
    if schedules.len() > 20 {
        errs.push((
            "schedules".into(),
            "at most 20 schedules (AWS allows 200 scheduled actions per target)".into(),
        ));
    }
    for (i, s) in schedules.iter().enumerate() {
        let field = |f: &str| format!("schedules[{i}].{f}");
        let name_ok = (1..=64).contains(&s.name.len())
            && s.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !name_ok {
            errs.push((
                field("name"),
                "must be 1-64 letters, digits or hyphens".into(),
            ));
        } else if schedules[..i].iter().any(|o| o.name == s.name) {
            errs.push((field("name"), format!("{:?} is used twice", s.name)));
        }
        for (f, expr) in [("cron", Some(&s.cron)), ("end_cron", s.end_cron.as_ref())] {
            let Some(expr) = expr else { continue };
            match aws_cron(expr).and_then(|c| {
                let e = evaluator(&c)?;
                e.upcoming(Utc)
                    .next()
                    .map(|_| ())
                    .ok_or_else(|| "never fires: no date matches it".to_string())
            }) {
                Ok(()) => {}
                Err(why) => errs.push((field(f), why)),
            }
        }
        if Tz::from_str(&s.timezone).is_err() {
            errs.push((
                field("timezone"),
                format!(
                    "{:?} is not an IANA time zone name (for example Asia/Tokyo or UTC)",
                    s.timezone
                ),
            ));
        }
        let max = max_capacity.unwrap_or(1000);
        if s.min_capacity > max {
            errs.push((
                field("min_capacity"),
                format!("must be between 0 and max_capacity ({max})"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hours() -> Schedule {
        Schedule {
            name: "business-hours".into(),
            cron: "0 8 * * MON-FRI".into(),
            end_cron: Some("0 20 * * 1-5".into()),
            timezone: "Asia/Tokyo".into(),
            min_capacity: 1,
        }
    }

    #[test]
    fn a_cron_that_never_fires_is_refused_on_its_field() {
        let mut errs = Vec::new();
        let never = Schedule {
            cron: "0 8 31 2 ?".into(),
            ..hours()
        };
        check(&[never], None, &mut errs);
        assert_eq!(errs[0].0, "schedules[0].cron");
        assert!(errs[0].1.contains("never fires"), "{errs:?}");
    }

    #[test]
    fn overlapping_schedules_hold_what_ran_last_as_aws_does() {
        let wide = Schedule {
            name: "wide".into(),
            cron: "0 8 * * *".into(),
            end_cron: Some("0 20 * * *".into()),
            timezone: "UTC".into(),
            min_capacity: 2,
        };
        let narrow = Schedule {
            name: "narrow".into(),
            cron: "0 9 * * *".into(),
            end_cron: Some("0 17 * * *".into()),
            timezone: "UTC".into(),
            min_capacity: 1,
        };
        let both = [wide, narrow];
        assert_eq!(scheduled_min(&both, at("2026-12-07T08:30:00Z")), 2);
        assert_eq!(
            scheduled_min(&both, at("2026-12-07T10:00:00Z")),
            1,
            "09:00 ran last"
        );
        assert_eq!(
            scheduled_min(&both, at("2026-12-07T18:00:00Z")),
            0,
            "17:00 ran last"
        );
    }

    #[test]
    fn the_window_holds_during_tokyo_business_hours_only() {
        let s = [hours()];
        // Monday 2026-12-07 09:00 JST = 00:00 UTC.
        assert_eq!(scheduled_min(&s, at("2026-12-07T00:00:00Z")), 1);
        // Monday 21:00 JST.
        assert_eq!(scheduled_min(&s, at("2026-12-07T12:00:00Z")), 0);
        // Saturday noon JST.
        assert_eq!(scheduled_min(&s, at("2026-12-12T03:00:00Z")), 0);
        let runs = hours().next_runs(at("2026-12-04T12:00:00Z"), 3);
        assert_eq!(runs[0].0.aws_cron, "0 8 ? * MON-FRI *");
        assert_eq!(
            runs[0].1[0].with_timezone(&Utc),
            at("2026-12-06T23:00:00Z"),
            "Monday 08:00 JST is Sunday 23:00 UTC"
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let bad = Schedule {
            name: "a b".into(),
            cron: "0 8 * * MON-FRI".into(),
            end_cron: Some("nope".into()),
            timezone: "Mars/Base".into(),
            min_capacity: 5,
        };
        let mut errs = Vec::new();
        check(&[bad], Some(2), &mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            fields,
            [
                "schedules[0].name",
                "schedules[0].end_cron",
                "schedules[0].timezone",
                "schedules[0].min_capacity"
            ]
        );
    }
}
