//! Postgres access: pool set-up, database creation, migrations, and one module of sqlx
//! functions per table. Functions take an executor or a transaction so callers choose the
//! transaction boundaries.

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    migrate::MigrateDatabase,
    postgres::{PgConnectOptions, PgPoolOptions},
    Connection, PgPool, Postgres,
};

use crate::config::DbArgs;

pub mod audit;
pub mod changes;
pub mod events;
pub mod holds;
pub mod idempotency;
pub mod jobs;
pub mod ledger;
pub mod observation;
pub mod replicas;
pub mod sessions;
pub mod targets;
pub mod tokens;
pub mod versions;
pub mod webhooks;

/// The migrations under `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates the database named in the URL if it does not exist yet, so that the README's first
/// command works on a fresh machine. Replicas racing to create it are fine.
pub async fn ensure_database(db: &DbArgs) -> anyhow::Result<()> {
    let url = db.database_url.expose();
    let redacted = db.database_url.redacted();
    let exists = Postgres::database_exists(url)
        .await
        .with_context(|| format!("cannot reach Postgres at {redacted}"))?;
    if !exists {
        tracing::info!(database = %redacted, "database does not exist; creating it");
        if let Err(e) = Postgres::create_database(url).await {
            // Another replica may have created it between our check and our CREATE.
            let now_exists = Postgres::database_exists(url).await.unwrap_or(false);
            if !now_exists {
                return Err(e).with_context(|| format!("cannot create database {redacted}"));
            }
        }
    }
    Ok(())
}

/// How long a pooled connection may sit idle before it is pinged on its way out.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Opens the connection pool.
pub async fn connect(db: &DbArgs) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(db.database_url.expose())
        .with_context(|| format!("invalid DATABASE_URL {}", db.database_url.redacted()))?
        .application_name("zeroscale")
        // Session defaults for every connection (`RESET` returns to them).
        .options([
            (
                "statement_timeout",
                format!("{}ms", db.db_statement_timeout.as_millis()),
            ),
            (
                "lock_timeout",
                format!("{}ms", db.db_lock_timeout.as_millis()),
            ),
        ]);
    PgPoolOptions::new()
        .max_connections(db.db_pool_size)
        .acquire_timeout(db.db_acquire_timeout)
        // sqlx pings every connection it hands out by default: one more round trip to
        // Postgres for each request. A connection back in the pool within the last second
        // has just worked, so only one that sat idle longer is pinged (a broken one is then
        // replaced before anyone uses it).
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IF_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to {}", db.database_url.redacted()))
}

/// Rows one clean-up statement deletes at most: a backlog of a million rows is deleted in short
/// statements that never hold many locks or hit the statement timeout.
pub const DELETE_BATCH: i64 = 1000;

/// Runs `delete` (one batch: a DELETE of at most `limit` rows older than `age_secs`, answering
/// how many went) until a batch deletes fewer than `DELETE_BATCH`; returns how many rows went.
pub async fn delete_in_batches<F, Fut>(age: Duration, mut delete: F) -> sqlx::Result<u64>
where
    F: FnMut(f64, i64) -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<sqlx::postgres::PgQueryResult>>,
{
    let mut total = 0;
    loop {
        let done = delete(age.as_secs_f64(), DELETE_BATCH)
            .await?
            .rows_affected();
        total += done;
        if done < DELETE_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// A LISTEN connection of its own, outside `pool` (a listener on a pooled connection would
/// hold one of the pool's connections for good), with the pool's settings.
pub async fn listener(pool: &PgPool) -> sqlx::Result<sqlx::postgres::PgListener> {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with((*pool.connect_options()).clone())
        .await?;
    sqlx::postgres::PgListener::connect_with(&own).await
}

/// Applies pending migrations. sqlx's migrator holds a Postgres advisory lock while it runs, so
/// several replicas starting together apply each migration exactly once.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    // Migrations may rewrite big tables and wait for locks: the service's timeouts do not apply
    // to them (and are back once the connection returns to the pool).
    let mut conn = pool.acquire().await.context("connecting to migrate")?;
    sqlx::query!(
        "SELECT set_config(name, '0', false) FROM unnest(ARRAY['statement_timeout', 'lock_timeout']) AS name"
    )
    .fetch_all(&mut *conn)
    .await?;
    let ran = match MIGRATOR.run(&mut *conn).await {
        Ok(()) => apply_functions(&mut conn).await,
        Err(e) => Err(e.into()),
    };
    let reset = sqlx::query!(
        "SELECT set_config(name, reset_val, false) FROM pg_settings \
         WHERE name IN ('statement_timeout', 'lock_timeout')"
    )
    .fetch_all(&mut *conn)
    .await;
    ran.context("running database migrations")?;
    if reset.is_err() {
        // The connection is in doubt: do not hand it back to the pool.
        conn.detach();
    }
    Ok(())
}

/// The change function and its helpers (sql/functions.sql): every statement is CREATE OR
/// REPLACE, so this is re-applied after the migrations at every start-up that migrates.
const FUNCTIONS: &str = include_str!("../../sql/functions.sql");

/// Applies [`FUNCTIONS`] in one transaction, serialised across replicas by an advisory lock
/// (concurrent CREATE OR REPLACE of one function fails with "tuple concurrently updated").
async fn apply_functions(conn: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    let mut tx = conn.begin().await?;
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended('zeroscale.functions', 0))")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::raw_sql(FUNCTIONS)
        .execute(&mut *tx)
        .await
        .context("applying sql/functions.sql")?;
    tx.commit().await?;
    Ok(())
}

/// Creates the database if needed, connects, and (unless told not to) migrates.
pub async fn prepare(db: &DbArgs, run_migrations: bool) -> anyhow::Result<PgPool> {
    ensure_database(db).await?;
    let pool = connect(db).await?;
    if run_migrations {
        migrate(&pool).await?;
    }
    Ok(pool)
}

/// One connection to the database in `db`, with none of the service's set-up: `doctor` looks
/// and never creates or migrates.
pub async fn connect_once(db: &DbArgs) -> sqlx::Result<sqlx::PgConnection> {
    let options =
        PgConnectOptions::from_str(db.database_url.expose())?.application_name("zeroscale-doctor");
    sqlx::PgConnection::connect_with(&options).await
}

/// The server's product and version, for `doctor`.
pub async fn server_version(conn: &mut sqlx::PgConnection) -> sqlx::Result<String> {
    let v = sqlx::query_scalar!(r#"SELECT current_setting('server_version') AS "v!""#)
        .fetch_one(conn)
        .await?;
    Ok(format!("PostgreSQL {v}"))
}

/// How the database's applied migrations compare with the ones this binary carries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// sqlx's bookkeeping table exists (the database was migrated at least once).
    pub table_exists: bool,
    /// Versions this binary has that were not applied.
    pub pending: Vec<i64>,
    /// Applied versions this binary does not have (a newer binary migrated the database).
    pub unknown: Vec<i64>,
    /// Versions that failed part-way, or whose file changed since it was applied.
    pub failed: Vec<i64>,
}

/// Reads the applied migrations and compares them with [`MIGRATOR`].
pub async fn migration_state(conn: &mut sqlx::PgConnection) -> sqlx::Result<MigrationState> {
    let exists =
        sqlx::query_scalar!(r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS "exists!""#)
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        return Ok(MigrationState::default());
    }
    let applied: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query!("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|m| (m.version, m.success, m.checksum))
            .collect();
    let mut state = MigrationState {
        table_exists: true,
        ..Default::default()
    };
    let ours: Vec<_> = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .collect();
    for m in &ours {
        match applied.iter().find(|(v, _, _)| *v == m.version) {
            None => state.pending.push(m.version),
            Some((_, ok, sum)) if !ok || sum.as_slice() != &*m.checksum => {
                state.failed.push(m.version)
            }
            Some(_) => {}
        }
    }
    state.unknown = applied
        .iter()
        .map(|(v, _, _)| *v)
        .filter(|v| !ours.iter().any(|m| m.version == *v))
        .collect();
    Ok(state)
}

/// One round trip to the database (readiness).
pub async fn ping(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query_scalar!("SELECT 1 AS one")
        .fetch_one(pool)
        .await
        .map(drop)
}
