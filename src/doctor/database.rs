//! The database lines: reachable, and migrated by this binary's migrations.

use std::time::Duration;

use super::{check, Check, Database, Status};
use crate::store;

/// How long each database step (connecting, each query) may take.
const DB_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection from the pool or of its own.
enum Conn {
    Pooled(sqlx::pool::PoolConnection<sqlx::Postgres>),
    Own(sqlx::PgConnection),
}

impl Conn {
    fn get(&mut self) -> &mut sqlx::PgConnection {
        match self {
            Conn::Pooled(c) => c,
            Conn::Own(c) => c,
        }
    }
}

pub(super) async fn database(db: Database<'_>) -> Vec<Check> {
    let (conn, where_) = match db {
        Database::Pool(pool) => (
            tokio::time::timeout(DB_TIMEOUT, async { pool.acquire().await.map(Conn::Pooled) })
                .await,
            "the service's database".to_string(),
        ),
        Database::Url(args) => (
            tokio::time::timeout(DB_TIMEOUT, async {
                store::connect_once(args).await.map(Conn::Own)
            })
            .await,
            args.database_url.redacted(),
        ),
    };
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        failed => {
            let e = failed.ok().and_then(Result::err);
            if let Some(e) = &e {
                tracing::warn!(error = %e, database = %where_, "doctor: database unreachable");
            }
            let (detail, hint) = db_failure(e.as_ref());
            return vec![
                check("database", Status::Fail, format!("{detail} ({where_})")).hint(hint),
                check("migrations", Status::Fail, "not checked: no database")
                    .hint("fix the database first"),
            ];
        }
    };
    let conn = conn.get();
    let version = tokio::time::timeout(DB_TIMEOUT, store::server_version(conn))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| "PostgreSQL".into());
    let mut out = vec![check(
        "database",
        Status::Pass,
        format!("reachable: {version} ({where_})"),
    )];
    out.push(
        match tokio::time::timeout(DB_TIMEOUT, store::migration_state(conn)).await {
            Ok(Ok(state)) => migrations(&state),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "doctor: reading migrations failed");
                check(
                    "migrations",
                    Status::Fail,
                    "could not read the applied migrations",
                )
                .hint("check that the database user may read _sqlx_migrations")
            }
            Err(_) => check(
                "migrations",
                Status::Fail,
                format!("no answer within {} s", DB_TIMEOUT.as_secs()),
            )
            .hint("the database is reachable but does not answer: look for locks or load"),
        },
    );
    out
}

fn db_failure(e: Option<&sqlx::Error>) -> (String, &'static str) {
    let code = e
        .and_then(|e| e.as_database_error())
        .and_then(|d| d.code())
        .map(|c| c.to_string());
    match (e, code.as_deref()) {
        (None, _) => (
            format!("no answer within {} s", DB_TIMEOUT.as_secs()),
            "check that Postgres is up and reachable from here (host, port, firewall)",
        ),
        (_, Some("3D000")) => (
            "the database does not exist".into(),
            "run `zeroscale migrate` once (it creates the database and its tables)",
        ),
        (_, Some("28P01" | "28000")) => (
            "Postgres refused the login".into(),
            "check the user and password in DATABASE_URL (--database-url)",
        ),
        (Some(sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut), _) => (
            "Postgres is not reachable".into(),
            "start Postgres, or point DATABASE_URL (--database-url) at it",
        ),
        (Some(sqlx::Error::Configuration(_)), _) => (
            "DATABASE_URL is not a usable Postgres URL".into(),
            "set DATABASE_URL to postgres://user:password@host:5432/database",
        ),
        _ => (
            "could not connect to Postgres".into(),
            "see this process's log for the driver's error",
        ),
    }
}

fn migrations(state: &store::MigrationState) -> Check {
    let known = store::MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .count();
    if !state.table_exists {
        return check(
            "migrations",
            Status::Fail,
            "the database has no zeroscale tables",
        )
        .hint("run `zeroscale migrate` (serve also migrates unless --no-migrate)");
    }
    if !state.failed.is_empty() {
        return check(
            "migrations",
            Status::Fail,
            format!("migration(s) {:?} failed part-way", state.failed),
        )
        .hint("see the log of the last `zeroscale migrate`; fix and re-run it");
    }
    if !state.pending.is_empty() {
        return check(
            "migrations",
            Status::Fail,
            format!(
                "{} of {known} not applied: {:?}",
                state.pending.len(),
                state.pending
            ),
        )
        .hint("run `zeroscale migrate` before starting this version (docs/deploy.md, upgrades)");
    }
    if !state.unknown.is_empty() {
        return check(
            "migrations",
            Status::Warn,
            format!("the database has migration(s) {:?} this binary does not know", state.unknown),
        )
        .hint("a newer zeroscale migrated it: fine while an upgrade rolls out, otherwise upgrade this one");
    }
    check("migrations", Status::Pass, format!("all {known} applied"))
}
