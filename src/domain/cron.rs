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

/// Five-field day-of-week numbers (SUN = 0 or 7) as names, which AWS reads the same way.
fn five_field_days(dow: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut num = String::new();
    let mut after_slash = false;
    let flush = |num: &mut String, out: &mut String, after_slash: bool| -> Result<(), String> {
        if num.is_empty() {
            return Ok(());
        }
        let n: usize = num.parse().map_err(|_| "bad day-of-week".to_string())?;
        if after_slash {
            out.push_str(num);
        } else {
            let name = DAYS
                .get(n % 7)
                .filter(|_| n <= 7)
                .ok_or_else(|| format!("day-of-week {n} is out of range 0-7"))?;
            out.push_str(name);
        }
        num.clear();
        Ok(())
    };
    for c in dow.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        flush(&mut num, &mut out, after_slash)?;
        after_slash = c == '/';
        if c == ',' || c == '-' {
            after_slash = false;
        }
        out.push(c);
    }
    flush(&mut num, &mut out, after_slash)?;
    Ok(out)
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
        assert_eq!(aws_cron("0 20 * * 1-5").unwrap(), "0 20 ? * MON-FRI *");
        assert_eq!(aws_cron("0 0 * * 0,7").unwrap(), "0 0 ? * SUN,SUN *");
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
