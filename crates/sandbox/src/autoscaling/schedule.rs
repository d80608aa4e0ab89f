//! Application Auto Scaling's schedule expressions, as PutScheduledAction takes them:
//! `at(yyyy-mm-ddThh:mm:ss)`, `cron(minutes hours day-of-month month day-of-week year)` and
//! `rate(n unit)`, in an IANA `Timezone` (UTC when absent), within StartTime and EndTime.
//!
//! The cron fields are evaluated by the `cron` crate, whose day-of-week numbering is AWS's
//! (1 = SUN ... 7 = SAT) and which takes `?` and a year field: AWS's six fields get a leading
//! seconds field of 0. AWS's `L`, `W` and `#` are not simulated: such an expression is refused
//! with a ValidationException that says so, rather than run wrongly.

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed schedule expression.
#[derive(Debug, Clone)]
pub enum Expression {
    At(NaiveDateTime),
    Cron(Box<cron::Schedule>),
    Rate(f64),
}

/// Parses a schedule expression; the error says what AWS's rules are.
pub fn parse(expr: &str) -> Result<Expression, String> {
    let inner = |prefix: &str| {
        expr.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
            .map(str::trim)
    };
    if let Some(at) = inner("at(") {
        return NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S")
            .map(Expression::At)
            .map_err(|_| format!("Schedule at({at}) is not of the form at(yyyy-mm-ddThh:mm:ss)"));
    }
    if let Some(rate) = inner("rate(") {
        return parse_rate(rate).map(Expression::Rate);
    }
    if let Some(fields) = inner("cron(") {
        return parse_cron(fields).map(|s| Expression::Cron(Box::new(s)));
    }
    Err(format!(
        "Schedule {expr} is not a valid expression: use at(...), cron(...) or rate(...)"
    ))
}

fn parse_rate(rate: &str) -> Result<f64, String> {
    let bad = || {
        format!("rate({rate}) is not of the form rate(value unit) with value > 0 and unit minute(s), hour(s) or day(s)")
    };
    let (n, unit) = rate.split_once(' ').ok_or_else(bad)?;
    let n: u32 = n.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
    let seconds = match (n, unit.trim()) {
        (1, "minute") | (2.., "minutes") => 60.0,
        (1, "hour") | (2.., "hours") => 3600.0,
        (1, "day") | (2.., "days") => 86_400.0,
        _ => return Err(bad()),
    };
    Ok(f64::from(n) * seconds)
}

fn parse_cron(fields: &str) -> Result<cron::Schedule, String> {
    let parts: Vec<&str> = fields.split_whitespace().collect();
    if parts.len() != 6 {
        return Err(format!(
            "cron({fields}) must have six fields: minutes hours day-of-month month day-of-week year"
        ));
    }
    let (dom, dow) = (parts[2], parts[4]);
    if (dom == "?") == (dow == "?") {
        return Err(format!(
            "cron({fields}): exactly one of day-of-month and day-of-week must be ?"
        ));
    }
    // Day names never contain L, and day-of-month has only digits: these are the wildcards.
    let (dom_up, dow_up) = (dom.to_uppercase(), dow.to_uppercase());
    if dow.contains('/') {
        return Err(format!(
            "cron({fields}): the day-of-week field takes no / (AWS's rules)"
        ));
    }
    if dom_up.contains(['L', 'W']) || dow_up.contains(['L', '#']) {
        return Err(format!(
            "cron({fields}): the sandbox does not simulate L, W or # (AWS does)"
        ));
    }
    cron::Schedule::from_str(&format!("0 {fields}"))
        .map_err(|e| format!("cron({fields}) is not a valid cron expression: {e}"))
}

/// The time zone of a `Timezone` member (UTC when absent).
pub fn zone(tz: Option<&str>) -> Result<Tz, String> {
    match tz {
        None => Ok(Tz::UTC),
        Some(name) => Tz::from_str(name)
            .map_err(|_| format!("Timezone {name} is not a valid IANA time zone name")),
    }
}

/// When a scheduled action runs next after `after` (epoch seconds), if ever: `anchor` is when
/// a rate() counts from (StartTime, else creation), `start` and `end` bound every run.
pub fn next_after(
    expr: &Expression,
    tz: Tz,
    anchor: f64,
    (start, end): (Option<f64>, Option<f64>),
    after: f64,
) -> Option<f64> {
    let after = after.max(start.map_or(f64::MIN, |s| s - 1e-6));
    let next = match expr {
        Expression::At(local) => {
            let at = tz.from_local_datetime(local).earliest()?.timestamp() as f64;
            (at > after).then_some(at)?
        }
        Expression::Rate(period) => {
            let k = ((after - anchor) / period).floor().max(0.0) + 1.0;
            anchor + k * period
        }
        Expression::Cron(schedule) => {
            let from = Utc.timestamp_opt(after.floor() as i64, 0).single()?;
            let from: DateTime<Tz> = from.with_timezone(&tz);
            schedule.after(&from).next()?.timestamp() as f64
        }
    };
    end.is_none_or(|e| next <= e).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(s: &str) -> f64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp() as f64
    }

    #[test]
    fn weekday_mornings_in_tokyo_are_the_previous_evening_in_utc() {
        let e = parse("cron(0 8 ? * MON-FRI *)").unwrap();
        let tz = zone(Some("Asia/Tokyo")).unwrap();
        // Friday 2026-12-04 09:00 JST: the next run is Monday 08:00 JST = Sunday 23:00 UTC.
        let after = epoch("2026-12-04T00:00:00Z");
        let next = next_after(&e, tz, 0.0, (None, None), after).unwrap();
        assert_eq!(next, epoch("2026-12-06T23:00:00Z"));
    }

    #[test]
    fn day_of_week_numbers_are_aws_s_sunday_first() {
        let e = parse("cron(0 0 ? * 2 *)").unwrap();
        let next = next_after(
            &e,
            Tz::UTC,
            0.0,
            (None, None),
            epoch("2026-12-01T00:00:00Z"),
        );
        assert_eq!(next, Some(epoch("2026-12-07T00:00:00Z")), "2 is Monday");
    }

    #[test]
    fn aws_s_rules_are_enforced() {
        for bad in [
            "cron(0 8 * * MON-FRI *)",
            "cron(0 8 ? * ?)",
            "cron(0 8 * * MON-FRI)",
            "cron(0 8 L * ? *)",
            "cron(0 8 ? * MON/2 *)",
            "rate(0 minutes)",
            "rate(1 minutes)",
            "at(2026-12-01 08:00)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(zone(Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn at_and_rate_respect_the_window() {
        let at = parse("at(2026-12-01T09:00:00)").unwrap();
        let tz = zone(Some("Asia/Tokyo")).unwrap();
        let t = epoch("2026-12-01T00:00:00Z");
        assert_eq!(next_after(&at, tz, 0.0, (None, None), t - 60.0), Some(t));
        assert_eq!(next_after(&at, tz, 0.0, (None, None), t), None, "runs once");
        let rate = parse("rate(2 hours)").unwrap();
        let next = next_after(&rate, Tz::UTC, t, (None, Some(t + 3600.0)), t);
        assert_eq!(next, None, "past EndTime");
        assert_eq!(
            next_after(&rate, Tz::UTC, t, (None, None), t),
            Some(t + 7200.0)
        );
    }
}
