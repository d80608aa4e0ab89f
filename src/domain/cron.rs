//! Cron expressions as users write them and as Application Auto Scaling takes them: five
//! fields (crontab) or AWS's six (`minutes hours day-of-month month day-of-week year`, with `?`
//! in one of the day fields and SUN = 1). Firing times are computed by the `cron` crate, whose
//! fields and numbering are AWS's; `L`, `W` and `#` are refused (zeroscale could not show when
//! they fire).

use std::str::FromStr;

const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A user's cron as AWS's six fields, or why it cannot be one.
pub fn aws_cron(expr: &str) -> Result<String, String> {
    let expr = expr.trim();
    let inner = expr
        .strip_prefix("cron(")
        .and_then(|e| e.strip_suffix(')'))
        .unwrap_or(expr);
    let f: Vec<&str> = inner.split_whitespace().collect();
    let upper = inner.to_uppercase();
    let mut f: Vec<String> = match f.len() {
        5 => {
            let (dom, dow) = (f[2], f[4]);
            let dow = five_field_days(dow)?;
            let (dom, dow) = match (dom, dow.as_str()) {
                ("*" | "?", "*" | "?") => ("*".to_string(), "?".to_string()),
                ("*" | "?", _) => ("?".to_string(), dow),
                (_, "*" | "?") => (dom.to_string(), "?".to_string()),
                _ => return Err("AWS cannot combine a day of the month with a day of the week (standard cron runs on either); set one of them to *".into()),
            };
            vec![f[0].into(), f[1].into(), dom, f[3].into(), dow, "*".into()]
        }
        6 => f.iter().map(|s| s.to_string()).collect(),
        n => {
            return Err(format!(
            "has {n} fields: give five (minute hour day-of-month month day-of-week) or AWS's six (with a year)"
        ))
        }
    };
    if (f[2] == "?") == (f[4] == "?") {
        return Err("exactly one of day-of-month and day-of-week must be ? (AWS's rule)".into());
    }
    if f[2].to_uppercase().contains(['L', 'W']) || f[4].to_uppercase().contains(['L', '#']) {
        return Err("L, W and # are not supported by zeroscale".into());
    }
    if f[4].contains('/') {
        return Err("AWS takes no / in day-of-week: list the days (MON,WED,FRI)".into());
    }
    if upper.contains('@') {
        return Err("macros such as @daily are not cron fields AWS takes".into());
    }
    for x in &mut f {
        *x = x.to_uppercase();
    }
    let six = f.join(" ");
    evaluator(&six)?;
    Ok(six)
}

/// Five-field (crontab) day-of-week in AWS's terms. Crontab counts SUN = 0 (and 7), AWS SUN = 1,
/// and AWS takes no `/` in this field, so any item with a number or a step is spelled out as
/// day names (`1-7`, Monday to Sunday, would be a range running backwards in AWS's numbering;
/// `MON-5` mixes names and numbers). Plain names, `*` and `?` pass as they are.
fn five_field_days(dow: &str) -> Result<String, String> {
    let day = |tok: &str| -> Result<usize, String> {
        if let Ok(n) = tok.parse::<usize>() {
            return (n <= 7)
                .then_some(n % 7)
                .ok_or_else(|| format!("day-of-week {n} is out of range 0-7 (or SUN-SAT)"));
        }
        DAYS.iter()
            .position(|d| d.eq_ignore_ascii_case(tok))
            .ok_or_else(|| format!("day-of-week {tok:?} is not a number 0-7 or a name SUN-SAT"))
    };
    let mut out: Vec<String> = Vec::new();
    let mut push = |d: String| {
        if !out.contains(&d) {
            out.push(d);
        }
    };
    for item in dow.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let numeric = range.bytes().any(|b| b.is_ascii_digit());
        if !numeric && step.is_none() {
            push(item.to_uppercase()); // names, `*`, `?`: the same in both
            continue;
        }
        let (from, to) = match range.split_once('-') {
            _ if range == "*" => (0, 6),
            // A seven in a range is the Sunday at its end (crontab's `1-7`).
            Some((a, b)) => (day(a)?, if b.trim() == "7" { 7 } else { day(b)? }),
            None if step.is_some() => (day(range)?, 6),
            None => (day(range)?, day(range)?),
        };
        if from > to {
            return Err(format!("day-of-week range {range} runs backwards"));
        }
        let step: usize = match step {
            None => 1,
            Some(s) => s
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("day-of-week step {s} is not a whole number above 0"))?,
        };
        for n in (from..=to).step_by(step) {
            push(DAYS[n % 7].to_string());
        }
    }
    Ok(out.join(","))
}

/// AWS's six fields as the `cron` crate's seven (a leading seconds field).
pub(super) fn evaluator(aws_six: &str) -> Result<cron::Schedule, String> {
    cron::Schedule::from_str(&format!("0 {aws_six}"))
        .map_err(|e| format!("is not a valid cron expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_become_aws_six_with_sunday_first_names() {
        assert_eq!(aws_cron("0 8 * * MON-FRI").unwrap(), "0 8 ? * MON-FRI *");
        assert_eq!(
            aws_cron("0 20 * * 1-5").unwrap(),
            "0 20 ? * MON,TUE,WED,THU,FRI *"
        );
        assert_eq!(aws_cron("0 0 * * 0,7").unwrap(), "0 0 ? * SUN *");
        assert_eq!(
            aws_cron("0 0 * * 1-7").unwrap(),
            "0 0 ? * MON,TUE,WED,THU,FRI,SAT,SUN *",
            "Monday to Sunday, not a backwards range"
        );
        assert_eq!(
            aws_cron("0 0 * * 0-7").unwrap(),
            "0 0 ? * SUN,MON,TUE,WED,THU,FRI,SAT *"
        );
        assert_eq!(aws_cron("0 0 * * 1-5/2").unwrap(), "0 0 ? * MON,WED,FRI *");
        assert_eq!(
            aws_cron("0 0 * * MON-5").unwrap(),
            "0 0 ? * MON,TUE,WED,THU,FRI *"
        );
        assert_eq!(
            aws_cron("0 0 * * */2").unwrap(),
            "0 0 ? * SUN,TUE,THU,SAT *"
        );
        assert_eq!(aws_cron("0 0 * * SUN,6").unwrap(), "0 0 ? * SUN,SAT *");
        assert_eq!(aws_cron("0 0 * * 5-7").unwrap(), "0 0 ? * FRI,SAT,SUN *");
        assert!(
            aws_cron("0 0 ? * MON/2 *").is_err(),
            "no / in AWS's day-of-week"
        );
        assert_eq!(aws_cron("30 6 1 * *").unwrap(), "30 6 1 * ? *");
        assert_eq!(aws_cron("*/15 * * * *").unwrap(), "*/15 * * * ? *");
        assert_eq!(
            aws_cron("cron(0 8 ? * MON-FRI *)").unwrap(),
            "0 8 ? * MON-FRI *"
        );
    }

    #[test]
    fn impossible_and_unsupported_expressions_say_why() {
        for bad in [
            "0 8 1 * MON",
            "0 8 * *",
            "0 25 * * *",
            "0 8 L * ? *",
            "0 8 * * MON-FRI 2026 x",
            "0 8 ? * ? *",
            "0 0 * * 8",
        ] {
            assert!(aws_cron(bad).is_err(), "{bad}");
        }
    }
}
