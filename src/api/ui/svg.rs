//! Capacity drawn as inline SVG: a sparkline per fleet row and a timeline chart per target.
//! Written by hand rather than with `plotters`: the drawing is a step line, bands and marks, a
//! few dozen lines of SVG that the page's stylesheet colours, with a text alternative for
//! screen readers; plotters would add a dependency tree to produce the same elements with
//! inline styles, which the portal's CSP forbids.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::data::{Ev, Level};
use crate::domain::EventKind;

/// x of `t` within [from, to] on a width of `w`.
fn x_of(t: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>, w: f64) -> f64 {
    let span = (to - from).num_milliseconds().max(1) as f64;
    ((t - from).num_milliseconds() as f64 / span).clamp(0.0, 1.0) * w
}

/// The step line of `steps` as an SVG path (gaps where the level is unknown).
fn step_path(
    steps: &[(DateTime<Utc>, Level)],
    to: DateTime<Utc>,
    (x0, w): (f64, f64),
    y: impl Fn(i64) -> f64,
) -> String {
    let from = steps.first().map(|s| s.0).unwrap_or(to);
    let mut d = String::new();
    let mut pen_down = false;
    for (i, (at, level)) in steps.iter().enumerate() {
        let end = steps.get(i + 1).map(|s| s.0).unwrap_or(to);
        let (xa, xb) = (x0 + x_of(*at, from, to, w), x0 + x_of(end, from, to, w));
        match level.capacity() {
            Some(c) => {
                let yc = y(c);
                if pen_down {
                    let _ = write!(d, "V{yc:.1}H{xb:.1}");
                } else {
                    let _ = write!(d, "M{xa:.1},{yc:.1}H{xb:.1}");
                }
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    d
}

fn highest(steps: &[(DateTime<Utc>, Level)]) -> i64 {
    steps
        .iter()
        .filter_map(|s| s.1.capacity())
        .max()
        .unwrap_or(1)
        .max(1)
}

/// In words, for screen readers: the capacity at each change.
fn describe(steps: &[(DateTime<Utc>, Level)]) -> String {
    let parts: Vec<String> = steps
        .iter()
        .map(|(at, l)| match l.capacity() {
            Some(c) => format!("{c} at {}", at.format("%H:%M UTC")),
            None => format!("unknown at {}", at.format("%H:%M UTC")),
        })
        .collect();
    format!("Capacity: {}", parts.join(", "))
}

/// A 24-hour sparkline (120 x 28).
pub fn sparkline(steps: &[(DateTime<Utc>, Level)], to: DateTime<Utc>) -> Markup {
    let (w, h) = (120.0, 28.0);
    let top = highest(steps) as f64;
    let d = step_path(steps, to, (0.0, w), |c| {
        2.0 + (h - 4.0) * (1.0 - c as f64 / top)
    });
    let label = describe(steps);
    html! {
        svg.spark viewBox="0 0 120 28" width="120" height="28" role="img" aria-label=(label) {
            title { (label) }
            line.base x1="0" y1="26" x2="120" y2="26" {}
            path.cap d=(d) {}
        }
    }
}

/// A mark on the chart.
fn mark(kind: EventKind) -> Option<(&'static str, &'static str)> {
    match kind {
        EventKind::WakeStarted => Some(("wake", "wake started")),
        EventKind::CapacityInService => Some(("in-service", "capacity in service")),
        EventKind::WakeFailed => Some(("failed", "wake failed")),
        EventKind::ScheduledActionFired => Some(("schedule", "scheduled action fired")),
        _ => None,
    }
}

/// The capacity chart of one target over [from, to]: the step line, paused stretches as
/// bands, and wakes, failed wakes and schedule firings as marks with their time on hover.
pub fn chart(
    steps: &[(DateTime<Utc>, Level)],
    events: &[Ev],
    pauses: &[(DateTime<Utc>, DateTime<Utc>)],
    to: DateTime<Utc>,
) -> Markup {
    let (left, right, top_pad, bottom) = (36.0, 12.0, 24.0, 28.0);
    let (w, h) = (800.0, 220.0);
    let plot_w = w - left - right;
    let plot_h = h - top_pad - bottom;
    let from = steps.first().map(|s| s.0).unwrap_or(to);
    let top = highest(steps);
    let y = |c: i64| top_pad + plot_h * (1.0 - c as f64 / top as f64);
    let d = step_path(steps, to, (left, plot_w), y);
    let x = |t: DateTime<Utc>| left + x_of(t, from, to, plot_w);
    let span_h = (to - from).num_hours().max(1);
    let tick_every = if span_h <= 30 { 4 } else { 24 };
    let ticks: Vec<DateTime<Utc>> = {
        use chrono::DurationRound;
        let mut t = from
            .duration_trunc(chrono::TimeDelta::hours(tick_every))
            .unwrap_or(from);
        let mut v = Vec::new();
        while t <= to {
            if t >= from {
                v.push(t);
            }
            t += chrono::TimeDelta::hours(tick_every);
        }
        v
    };
    let levels: Vec<i64> = (0..=top).step_by(((top / 4).max(1)) as usize).collect();
    let label = describe(steps);
    html! {
        svg.chart viewBox="0 0 800 220" role="img" aria-label=(label) preserveAspectRatio="none" {
            title { (label) }
            @for (a, b) in pauses {
                rect.pause-band x=(format!("{:.1}", x(*a))) y=(top_pad) width=(format!("{:.1}", (x(*b) - x(*a)).max(1.0))) height=(plot_h) {
                    title { "paused " (a.format("%Y-%m-%d %H:%M")) " – " (b.format("%Y-%m-%d %H:%M UTC")) }
                }
            }
            @for l in &levels {
                line.grid x1=(left) x2=(w - right) y1=(format!("{:.1}", y(*l))) y2=(format!("{:.1}", y(*l))) {}
                text.axis x=(left - 6.0) y=(format!("{:.1}", y(*l) + 4.0)) text-anchor="end" { (l) }
            }
            @for t in &ticks {
                line.tick x1=(format!("{:.1}", x(*t))) x2=(format!("{:.1}", x(*t))) y1=(top_pad) y2=(h - bottom) {}
                text.axis x=(format!("{:.1}", x(*t))) y=(h - 8.0) text-anchor="middle" {
                    @if tick_every == 24 { (t.format("%a %d")) } @else { (t.format("%H:%M")) }
                }
            }
            path.cap d=(d) {}
            @for e in events.iter().filter(|e| e.at >= from && e.at <= to) {
                @if let Some((class, what)) = mark(e.kind) {
                    @let cx = x(e.at);
                    g class=(format!("mark {class}")) {
                        title { (what) " at " (e.at.format("%Y-%m-%d %H:%M:%S UTC"))
                            @if let Some(m) = e.details["message"].as_str() { ": " (m) }
                            @if let Some(s) = e.details["wake_seconds"].as_f64() { " (" (super::duration(s)) ")" }
                            @if let Some(s) = e.details["scheduled_action"].as_str() { ": " (s) } }
                        @match class {
                            "failed" => {
                                path d=(format!("M{:.1},6l8,8m0,-8l-8,8", cx - 4.0)) {}
                            }
                            "schedule" => {
                                path d=(format!("M{cx:.1},4l5,6l-5,6l-5,-6z")) {}
                            }
                            "in-service" => {
                                circle cx=(format!("{cx:.1}")) cy="10" r="4" {}
                            }
                            _ => {
                                path d=(format!("M{cx:.1},4l6,11h-12z")) {}
                            }
                        }
                        line x1=(format!("{cx:.1}")) x2=(format!("{cx:.1}")) y1=(top_pad) y2=(h - bottom) {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_line_breaks_where_capacity_is_unknown() {
        let t = |m: i64| DateTime::from_timestamp(m * 60, 0).unwrap();
        let steps = vec![
            (t(0), Level::Up(2)),
            (t(30), Level::Zero),
            (t(60), Level::Unknown),
            (t(90), Level::Up(1)),
        ];
        let d = step_path(&steps, t(120), (0.0, 120.0), |c| 10.0 - c as f64);
        assert_eq!(d, "M0.0,8.0H30.0V10.0H60.0M90.0,9.0H120.0");
    }
}
