//! The forms of a target page: the controls (each its own form, posted to `actions`), the
//! spec's edit form, and the hidden fields every write form carries (the session's CSRF token
//! and a fresh Idempotency-Key).

use maud::{html, Markup};

use super::Session;
use crate::store::targets::TargetRow;

/// The hidden fields every write form carries.
pub fn hidden(session: &Session, version: Option<i32>) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(session.csrf);
        input type="hidden" name="idem" value=(uuid::Uuid::new_v4().to_string());
        @if let Some(v) = version { input type="hidden" name="version" value=(v); }
    }
}

/// The spec as the edit form shows it: what an enable takes (the pin and pause have their own
/// buttons, and an enable keeps them).
pub fn editable_spec(row: &TargetRow) -> String {
    let mut spec = row.spec.clone();
    if let Some(o) = spec.as_object_mut() {
        for key in crate::api::changes::CARRIED {
            o.remove(key);
        }
    }
    serde_json::to_string_pretty(&spec).unwrap_or_default()
}

/// The edit form: the spec as JSON, dry run first.
pub fn edit_form(ui: &str, row: &TargetRow, session: &Session, typed: Option<&str>) -> Markup {
    let text = typed
        .map(str::to_string)
        .unwrap_or_else(|| editable_spec(row));
    html! {
        form.edit method="post" action=(format!("{ui}/edit")) {
            (hidden(session, Some(row.version)))
            input type="hidden" name="intent" value="dry_run";
            label for="spec" { "Spec (JSON; the fields of " code { "POST " (ui.trim_start_matches("/ui")) "/scale-to-zero" } ")" }
            textarea #spec name="spec" rows="14" spellcheck="false" { (text) }
            p.muted { "A dry run shows the exact AWS calls; nothing changes until you confirm." @if !row.enabled { " Applying turns scale-to-zero on." } }
            button type="submit" { "Dry run" }
        }
    }
}

/// The control buttons, each its own form.
pub fn forms(ui: &str, row: &TargetRow, session: &Session, pinned: bool, paused: bool) -> Markup {
    let unit = if row.kind == "component" {
        "Copies"
    } else {
        "Instances"
    };
    html! {
        section aria-labelledby="act-h" {
            h2 #act-h { "Actions" }
            @if !row.enabled { p.muted { "Scale-to-zero is off. Turn it on with the spec below." } }
            div.actions {
                form.card method="post" action=(format!("{ui}/wake")) {
                    h3 { "Wake" }
                    (hidden(session, None))
                    label for="wake-copies" { (unit) } input #wake-copies type="number" name="copies" min="1" max="1000" value="1";
                    label for="wake-for" { "Keep warm for" } input #wake-for type="text" name="keep_warm_for" placeholder="default: --wake-default (1h)" aria-describedby="wake-for-help";
                    p.muted #wake-for-help { "Such as 30m or 2h." }
                    button.primary type="submit" { "Wake now" }
                }
                form.card method="post" action=(format!("{ui}/keep-warm")) {
                    h3 { "Keep warm" }
                    (hidden(session, None))
                    label for="pin-until" { "Until (UTC)" } input #pin-until type="datetime-local" name="until" required;
                    label for="pin-copies" { (unit) } input #pin-copies type="number" name="copies" min="1" max="1000" value="1";
                    label for="pin-reason" { "Reason" } input #pin-reason type="text" name="reason" maxlength="500";
                    button type="submit" { "Pin warm" }
                }
                @if pinned {
                    form.card method="post" action=(format!("{ui}/unpin")) {
                        h3 { "End the pin" }
                        (hidden(session, None))
                        button type="submit" { "End keep-warm now" }
                    }
                }
                @if paused {
                    form.card method="post" action=(format!("{ui}/resume")) {
                        h3 { "Resume" }
                        (hidden(session, None))
                        p.muted { "Scaling resumes at once." }
                        button.primary type="submit" { "Resume scaling" }
                    }
                } @else {
                    form.card method="post" action=(format!("{ui}/pause")) {
                        h3 { "Pause" }
                        (hidden(session, None))
                        label for="pause-until" { "Until (UTC; default 1 hour)" } input #pause-until type="datetime-local" name="until";
                        label for="pause-reason" { "Reason" } input #pause-reason type="text" name="reason" maxlength="500";
                        button type="submit" { "Pause scaling" }
                    }
                }
                form.card method="post" action=(format!("{ui}/reconcile")) {
                    h3 { "Reconcile" }
                    (hidden(session, None))
                    p.muted { "Check AWS against the desired state now and repair any drift." }
                    button type="submit" { "Reconcile now" }
                }
                @if row.enabled {
                    form.card.danger method="post" action=(format!("{ui}/disable")) {
                        h3 { "Turn off" }
                        (hidden(session, None))
                        div.check { input #disable-confirm type="checkbox" name="confirm" value="yes" required; label for="disable-confirm" { "Remove zeroscale's alarm and policies and restore the minimum capacity" } }
                        button.danger type="submit" { "Turn scale-to-zero off" }
                    }
                }
            }
        }
    }
}
