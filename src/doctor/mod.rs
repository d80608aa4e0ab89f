//! `zeroscale doctor` and `GET /doctor`: a checklist of what zeroscale needs from its
//! environment, each line pass, warn or fail with a hint for what to change. It reads only:
//! the database is asked for its version and migrations, AWS for the caller's identity and
//! for harmless describes and lists (never a write).

use serde::Serialize;
use utoipa::ToSchema;

use crate::{aws::AwsClients, config::DbArgs};

mod aws;
mod database;
mod permissions;
mod probe;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Check {
    /// What was checked (for AWS permissions, the IAM action).
    pub name: String,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to change, for a warning or a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The whole checklist.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Report {
    /// No check failed (warnings allowed).
    pub ok: bool,
    pub passed: usize,
    pub warnings: usize,
    pub failed: usize,
    pub checks: Vec<Check>,
}

fn check(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        hint: None,
    }
}

impl Check {
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl Report {
    fn new(checks: Vec<Check>) -> Self {
        let count = |s| checks.iter().filter(|c| c.status == s).count();
        let (passed, warnings, failed) = (
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
        );
        Self {
            ok: failed == 0,
            passed,
            warnings,
            failed,
            checks,
        }
    }

    /// The checklist as `doctor` prints it: one line per check, its hint indented below.
    pub fn render(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let tag = match c.status {
                Status::Pass => "PASS",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            out.push_str(&format!("{tag}  {:width$}  {}\n", c.name, c.detail));
            if let Some(h) = &c.hint {
                out.push_str(&format!("      {:width$}  hint: {h}\n", ""));
            }
        }
        out.push_str(&format!(
            "{} passed, {} warning(s), {} failed\n",
            self.passed, self.warnings, self.failed
        ));
        out
    }
}

/// Where the database checks connect.
pub enum Database<'a> {
    /// The service's pool (`GET /doctor`).
    Pool(&'a sqlx::PgPool),
    /// A URL, connected to once (`zeroscale doctor`); a missing database is reported, not
    /// created.
    Url(&'a DbArgs),
}

/// Runs every check. `aws` is None when this process has no AWS clients (an API without
/// workers and without AWS access), which is itself a failure.
pub async fn run(db: Database<'_>, aws: Option<&AwsClients>) -> Report {
    let mut checks = database::database(db).await;
    match aws {
        Some(aws) => checks.extend(aws::aws_checks(aws).await),
        None => checks.push(
            check("aws", Status::Fail, "this process has no AWS clients").hint(
                "run `serve` without --no-worker, or run `zeroscale doctor` on a worker host",
            ),
        ),
    }
    Report::new(checks)
}
