//! The audit log's hash chain: every event, once committed, sealed in order into a chain of
//! SHA-256 links, and the chain verified from its start.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::AuditRow;

/// Events sealed per statement.
const SEAL_BATCH: i64 = 500;

/// The canonical form of an event that the chain hashes: every column, in a fixed order, in a
/// fixed text form (JSON of a tuple; timestamps in RFC 3339 with microseconds).
pub fn canonical(e: &AuditRow) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([
        e.id,
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        e.actor,
        e.on_behalf_of,
        e.source_ip,
        e.user_agent,
        e.action,
        e.target_kind,
        e.target_name,
        e.version,
        e.request_id,
        e.job_id,
        e.before,
        e.after,
        e.outcome,
        e.error,
        e.aws_request_ids,
    ]))
    .unwrap_or_default()
}

/// The link after `prev` for event `e`.
pub fn link(prev: &[u8], e: &AuditRow) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(prev);
    h.update(canonical(e));
    h.finalize().to_vec()
}

/// The sealed head of the chain.
#[derive(Debug, Clone)]
pub struct Head {
    pub position: i64,
    pub hash: Vec<u8>,
    /// Events this call sealed.
    pub sealed: usize,
}

/// Seals every event not sealed yet, oldest first, `SEAL_BATCH` per transaction (at most
/// `rounds` of them); safe on every replica at once (one seals, the others skip). Returns the
/// new head when it moved.
pub async fn seal_all(pool: &PgPool, rounds: usize) -> sqlx::Result<Option<Head>> {
    let mut head = None;
    for _ in 0..rounds {
        match seal(pool).await? {
            Some(h) => {
                let full = h.sealed == SEAL_BATCH as usize;
                head = Some(h);
                if !full {
                    break;
                }
            }
            None => break,
        }
    }
    Ok(head)
}

/// Seals up to `SEAL_BATCH` events not sealed yet, oldest first. Returns the new head when it
/// moved.
pub async fn seal(pool: &PgPool) -> sqlx::Result<Option<Head>> {
    let mut tx = pool.begin().await?;
    let sealing = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended('zeroscale.audit_chain', 0)) AS "locked!""#
    )
    .fetch_one(&mut *tx)
    .await?;
    if !sealing {
        return Ok(None);
    }
    let last = sqlx::query!(
        "SELECT c.position, c.hash, a.at FROM audit_chain c JOIN audit_log a ON a.id = c.event_id \
         ORDER BY c.position DESC LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let (position, hash, last_at) = match last {
        Some(l) => (l.position, l.hash, Some(l.at)),
        None => (0, vec![0u8; 32], None),
    };
    let events = unsealed(&mut tx, last_at).await?;
    if events.is_empty() {
        return Ok(None);
    }
    let links = chain(&events, position, &hash);
    let (position, hash) = match links.last() {
        Some(l) => (l.position, l.hash.clone()),
        None => (position, hash),
    };
    insert_links(&mut tx, links).await?;
    tx.commit().await?;
    Ok(Some(Head {
        position,
        hash,
        sealed: events.len(),
    }))
}

/// Events not sealed yet, oldest first, one batch. Events commit in about id order; one that
/// committed late, behind events sealed already, is sealed now at the end of the chain (its
/// position, not its id, orders the chain). The look-back (events written up to ten minutes
/// before the last one sealed: far longer than any transaction may last under
/// statement_timeout) bounds the scan.
async fn unsealed(
    tx: &mut PgConnection,
    last_at: Option<DateTime<Utc>>,
) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as!(
        AuditRow,
        r#"SELECT a.id, a.at, a.actor, a.on_behalf_of, a.source_ip, a.user_agent, a.action,
            a.target_kind::text AS "target_kind!", a.target_name, a.version, a.request_id, a.job_id,
            a.before, a.after, a.outcome, a.error, a.aws_request_ids
        FROM audit_log a
        WHERE ($1::timestamptz IS NULL OR a.at > $1 - interval '10 minutes')
          AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_id = a.id)
        ORDER BY a.id LIMIT $2"#,
        last_at,
        SEAL_BATCH,
    )
    .fetch_all(tx)
    .await
}

/// Writes the links.
async fn insert_links(tx: &mut PgConnection, links: Vec<Link>) -> sqlx::Result<()> {
    let positions: Vec<i64> = links.iter().map(|l| l.position).collect();
    let ids: Vec<i64> = links.iter().map(|l| l.event_id).collect();
    let prevs: Vec<Vec<u8>> = links.iter().map(|l| l.prev_hash.clone()).collect();
    let hashes: Vec<Vec<u8>> = links.into_iter().map(|l| l.hash).collect();
    sqlx::query!(
        "INSERT INTO audit_chain (position, event_id, prev_hash, hash) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])",
        &positions,
        &ids,
        &prevs,
        &hashes,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// The links that seal `events`, in order, after the link at `position` with hash `hash`.
fn chain(events: &[AuditRow], mut position: i64, hash: &[u8]) -> Vec<Link> {
    let mut prev = hash.to_vec();
    events
        .iter()
        .map(|e| {
            let next = link(&prev, e);
            position += 1;
            Link {
                position,
                event_id: e.id,
                prev_hash: std::mem::replace(&mut prev, next.clone()),
                hash: next,
            }
        })
        .collect()
}

pub use crate::domain::audit::{Broken, Verification};

/// One link of the hash chain.
struct Link {
    position: i64,
    event_id: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// Why `l` does not hold, if it does not: it is not at the next position, it does not follow
/// the previous link, or its event no longer hashes to it.
fn broken_link(
    l: &Link,
    next_position: i64,
    expected_prev: &[u8],
    event: Option<&AuditRow>,
) -> Option<&'static str> {
    if l.position != next_position {
        Some("position_missing")
    } else if l.prev_hash != expected_prev {
        Some("link_rewritten")
    } else {
        match event {
            Some(e) if link(&l.prev_hash, e) == l.hash => None,
            _ => Some("event_changed"),
        }
    }
}

/// The events these links name, by id.
async fn events_of(
    pool: &PgPool,
    links: &[Link],
) -> sqlx::Result<std::collections::HashMap<i64, AuditRow>> {
    let ids: Vec<i64> = links.iter().map(|l| l.event_id).collect();
    let events = sqlx::query_as!(
        AuditRow,
        r#"SELECT a.id, a.at, a.actor, a.on_behalf_of, a.source_ip, a.user_agent, a.action,
            a.target_kind::text AS "target_kind!", a.target_name, a.version, a.request_id,
            a.job_id, a.before, a.after, a.outcome, a.error, a.aws_request_ids
        FROM audit_log a WHERE a.id = ANY($1)"#,
        &ids,
    )
    .fetch_all(pool)
    .await?;
    Ok(events.into_iter().map(|e| (e.id, e)).collect())
}

/// Recomputes the whole chain, `SEAL_BATCH` links at a time.
pub async fn verify(pool: &PgPool) -> sqlx::Result<Verification> {
    let mut expected_prev = vec![0u8; 32];
    let mut next_position = 1;
    let mut first_broken = None;
    let mut sealed = 0;
    loop {
        let links = sqlx::query_as!(
            Link,
            "SELECT position, event_id, prev_hash, hash FROM audit_chain \
             WHERE position >= $1 ORDER BY position LIMIT $2",
            next_position,
            SEAL_BATCH,
        )
        .fetch_all(pool)
        .await?;
        if links.is_empty() {
            break;
        }
        let events = events_of(pool, &links).await?;
        for l in &links {
            sealed += 1;
            let event = events.get(&l.event_id);
            if let Some(reason) = broken_link(l, next_position, &expected_prev, event) {
                first_broken.get_or_insert(Broken {
                    position: l.position,
                    event_id: l.event_id,
                    reason: reason.into(),
                });
            }
            expected_prev = l.hash.clone();
            next_position = l.position + 1;
        }
    }
    let counts = sqlx::query!(
        r#"SELECT count(*) AS "events!", count(*) FILTER (WHERE at < now() - interval '1 minute'
             AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_id = a.id)) AS "unsealed_old!"
           FROM audit_log a"#,
    )
    .fetch_one(pool)
    .await?;
    let (events, unsealed_old) = (counts.events, counts.unsealed_old);
    Ok(Verification {
        ok: first_broken.is_none() && unsealed_old == 0,
        events,
        sealed,
        unsealed_old,
        head_position: next_position - 1,
        head_hash: (next_position > 1).then(|| hex::encode(&expected_prev)),
        first_broken,
    })
}
