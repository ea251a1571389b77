//! The queue: claims under a lease, and fenced results.

use chrono::{DateTime, Utc};
use rassylka_store::{
    Delivery, DeliveryStatus, Fence, GroupEffect, Lease, Outcome, Recorded, Settle, StoreError,
};
use sqlx::SqliteConnection;

use crate::freeze::INSERT_CHUNK;
use crate::rows::{MessageColumn, db, from_json, from_millis, millis, to_json, wall_millis};

/// The wall-clock deadline of a lease taken now.
pub(crate) fn deadline(lease: &Lease) -> i64 {
    wall_millis().saturating_add(i64::try_from(lease.length.as_millis()).unwrap_or(i64::MAX))
}

/// A claimed delivery as the claim query encodes it: id, attempts, channel, group key, rank,
/// delivery key, recipient, message.
pub(crate) type ClaimedRow = (
    i64,
    i64,
    Option<String>,
    String,
    i64,
    String,
    String,
    MessageColumn,
    Option<String>,
);

/// The queued deliveries due at `?1` of occurrence `?2`, at most `?3`, oldest due first. The
/// queue index is ordered by due time, so deliveries waiting for a later send window are
/// never scanned while due ones are claimed.
const DUE: &str =
    "SELECT id FROM deliveries WHERE occurrence_id = ?2 AND status = 'queued' AND not_before <= ?1
     ORDER BY not_before, id LIMIT ?3";

/// Marks up to `limit` queued deliveries as sending, inside the caller's transaction (which
/// must hold the write lock from its start, so the rows read are the rows marked), and returns
/// them with what sending needs.
pub(crate) async fn claim_in(
    conn: &mut SqliteConnection,
    occurrence_id: i64,
    lease: &Lease,
    worker: i64,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // The whole batch comes back as one JSON value, put together from the stored message
    // JSON by concatenation: rows cross from SQLite's thread one at a time otherwise, and
    // that hand-off costs more than the query.
    let batch: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT '[' || COALESCE(group_concat('[' || d.id || ',' || (d.attempts + 1) || ',' || json_quote(d.channel) || ','
                || json_quote(d.group_key) || ',' || d.rank || ',' || json_quote(m.delivery_key) || ','
                || json_quote(m.recipient_id) || ',' || m.message || ',' || json_quote(d.error_class) || ']', ','), '') || ']'
         FROM ({DUE}) q JOIN deliveries d ON d.id = q.id JOIN messages m ON m.id = q.id"
    )))
    .bind(millis(now))
    .bind(occurrence_id)
    .bind(limit)
    .fetch_one(&mut *conn)
    .await.map_err(db)?;
    if batch == "[]" {
        return Ok(Vec::new());
    }
    // SQLite marks the rows while this thread reads the batch.
    let mark = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at = ?1, worker = ?4, lease_until = ?5
         WHERE id IN ({DUE})"
    )))
    .bind(millis(now))
    .bind(occurrence_id)
    .bind(limit)
    .bind(worker)
    .bind(deadline(lease))
    .execute(&mut *conn);
    let (marked, rows) = tokio::join!(mark, async { from_json::<Vec<ClaimedRow>>(&batch) });
    let rows = rows?;
    if marked.map_err(db)?.rows_affected() != u64::try_from(rows.len()).unwrap_or(u64::MAX) {
        return Err(StoreError::conflict(
            "the queue changed while a batch was claimed",
        ));
    }
    let claimed_at = from_millis(millis(now));
    let mut claimed = rows
        .into_iter()
        .map(
            |(
                id,
                attempts,
                channel,
                group_key,
                rank,
                delivery_key,
                recipient_id,
                message,
                error_class,
            )| {
                Ok(Delivery {
                    id,
                    occurrence_id,
                    planned: message.planned(
                        delivery_key,
                        recipient_id,
                        channel,
                        group_key,
                        rank,
                        DeliveryStatus::Sending,
                    )?,
                    attempts: u32::try_from(attempts).unwrap_or_default(),
                    provider_id: None,
                    // The last attempt's class: whether an earlier try may have arrived.
                    error_class,
                    updated_at: claimed_at,
                    sent_at: None,
                    worker: Some(lease.worker.clone()),
                })
            },
        )
        .collect::<Result<Vec<_>, StoreError>>()?;
    claimed.sort_unstable_by_key(|d| d.id);
    Ok(claimed)
}

/// The condition a row must meet for a result under `fence` (`?3` bound by [`fence_value`]),
/// beside being `sending` at the settled attempt.
fn fence_sql(fence: Fence<'_>) -> &'static str {
    match fence {
        Fence::Holder(_) => "deliveries.worker = ?3",
        Fence::Expired => "deliveries.lease_until < ?3",
    }
}

/// The value bound for the fence's `?3`: the holder's worker number, or the wall clock.
fn fence_value(fence: Fence<'_>, worker: Option<i64>) -> i64 {
    match fence {
        // A name the journal never saw holds nothing: -1 matches no row.
        Fence::Holder(_) => worker.unwrap_or(-1),
        Fence::Expired => wall_millis(),
    }
}

/// Records results, inside the caller's transaction: each only if its row is still held as
/// the fence says, at the settled attempt; then the group effects of those written.
pub(crate) async fn record_in(
    conn: &mut SqliteConnection,
    occurrence_id: i64,
    fence: Fence<'_>,
    worker: Option<i64>,
    results: &[Settle],
    now: DateTime<Utc>,
) -> Result<Recorded, StoreError> {
    let now = millis(now);
    let held = fence_sql(fence);
    let value = fence_value(fence, worker);
    let mut written: Vec<i64> = Vec::with_capacity(results.len());
    // Sends are the bulk: one statement per chunk rather than one per delivery.
    let sent: Vec<(i64, u32, Option<&String>, Option<String>)> = results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Sent { provider_id, cost } => Some((
                r.id,
                r.attempt,
                provider_id.as_ref(),
                cost.map(|c| c.to_string()),
            )),
            _ => None,
        })
        .collect();
    for chunk in sent.chunks(INSERT_CHUNK) {
        // One JSON value for the chunk: cheaper than four bound values a row.
        let rows = to_json(chunk)?;
        // Usually every row is still held as the fence says, and one update writes them all.
        // When it writes fewer, it is undone, the rows not held are looked for, and the
        // others written: the transaction holds the write lock, so nothing moves meanwhile.
        let update = format!(
            "UPDATE deliveries SET status = 'sent', provider_id = v.value ->> 2, cost = COALESCE(v.value ->> 3, deliveries.cost),
             error = NULL, error_class = NULL, updated_at = ?2, sent_at = ?2, worker = NULL, lease_until = NULL
             FROM json_each(?1) v WHERE deliveries.id = v.value ->> 0 AND deliveries.attempts = v.value ->> 1
             AND deliveries.status = 'sending' AND {held}"
        );
        savepoint(conn, "SAVEPOINT sent_results").await?;
        let updated = write_sent(conn, &update, &rows, now, value).await?;
        let refused: Vec<i64> = if updated as usize == chunk.len() {
            // The savepoint is left open: the transaction's commit releases it, and a round
            // trip to SQLite's thread per batch is saved.
            Vec::new()
        } else {
            savepoint(conn, "ROLLBACK TO sent_results").await?;
            savepoint(conn, "RELEASE sent_results").await?;
            // The rows not held as the fence says come back as one JSON value (rows cross
            // from SQLite's thread one at a time, which costs more than the look).
            let refused: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT json_group_array(v.value ->> 0) FROM json_each(?1) v
                 WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE deliveries.id = v.value ->> 0
                     AND deliveries.attempts = v.value ->> 1 AND deliveries.status = 'sending' AND {held})"
            )))
            .bind(&rows)
            .bind(now)
            .bind(value)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            let refused: Vec<i64> = from_json(&refused)?;
            let updated = write_sent(conn, &update, &rows, now, value).await?;
            if updated as usize + refused.len() != chunk.len() {
                return Err(StoreError::conflict(
                    "the journal changed while results were recorded",
                ));
            }
            refused
        };
        written.extend(chunk.iter().map(|c| c.0).filter(|id| !refused.contains(id)));
    }
    for result in results {
        let (set, class, error, not_before): (&str, Option<&str>, Option<&str>, Option<i64>) =
            match &result.outcome {
                Outcome::Sent { .. } => continue,
                Outcome::Retry {
                    not_before,
                    class,
                    error,
                } => (
                    "status = 'queued', not_before = ?6, error_class = ?4, error = ?5",
                    Some(class),
                    Some(error),
                    Some(millis(*not_before)),
                ),
                Outcome::Failed { class, error } => (
                    "status = 'failed', error_class = ?4, error = ?5",
                    Some(class),
                    Some(error),
                    None,
                ),
                Outcome::Requeue => (
                    "status = 'queued', attempts = MAX(attempts - 1, 0)",
                    None,
                    None,
                    None,
                ),
                Outcome::Postpone { not_before, reason } => (
                    "status = 'queued', attempts = MAX(attempts - 1, 0), not_before = ?6, error = ?5",
                    None,
                    Some(reason),
                    Some(millis(*not_before)),
                ),
                Outcome::Skip { reason } => (
                    "status = 'skipped', attempts = MAX(attempts - 1, 0), error = ?5",
                    None,
                    Some(reason),
                    None,
                ),
                Outcome::Unknown { error } => {
                    ("status = 'unknown', error = ?5", None, Some(error), None)
                }
            };
        let sql = format!(
            "UPDATE deliveries SET {set}, updated_at = ?7, worker = NULL, lease_until = NULL
             WHERE id = ?1 AND attempts = ?2 AND status = 'sending' AND {held}"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(result.id)
            .bind(i64::from(result.attempt))
            .bind(value)
            .bind(class)
            .bind(error)
            .bind(not_before)
            .bind(now);
        if query.execute(&mut *conn).await.map_err(db)?.rows_affected() == 1 {
            written.push(result.id);
        }
    }
    written.sort_unstable();
    apply_group_effects(conn, occurrence_id, results, &written, now).await?;
    let refused = results
        .iter()
        .map(|r| r.id)
        .filter(|id| written.binary_search(id).is_err())
        .collect();
    Ok(Recorded { refused })
}

/// Runs the sent rows' update; how many it wrote.
async fn write_sent(
    conn: &mut SqliteConnection,
    update: &str,
    rows: &str,
    now: i64,
    value: i64,
) -> Result<u64, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(update.to_owned()))
        .bind(rows)
        .bind(now)
        .bind(value)
        .execute(conn)
        .await
        .map_err(db)
        .map(|done| done.rows_affected())
}

/// Runs a savepoint statement (`SAVEPOINT`, `RELEASE`, `ROLLBACK TO`) on the transaction.
async fn savepoint(conn: &mut SqliteConnection, statement: &'static str) -> Result<(), StoreError> {
    sqlx::query(statement)
        .execute(conn)
        .await
        .map_err(db)
        .map(|_| ())
}

/// What written results do to the standby deliveries of their priority groups.
async fn apply_group_effects(
    conn: &mut SqliteConnection,
    occurrence_id: i64,
    results: &[Settle],
    written: &[i64],
    now: i64,
) -> Result<(), StoreError> {
    let effects: Vec<&Settle> = results
        .iter()
        .filter(|r| r.then != GroupEffect::Nothing && written.binary_search(&r.id).is_ok())
        .collect();
    if effects.is_empty() {
        return Ok(());
    }
    // Standby rows exist only in priority mode with several channels: one look spares every
    // other occurrence a statement per result.
    let standby: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM deliveries WHERE occurrence_id = ? AND status = 'standby')",
    )
    .bind(occurrence_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    if !standby {
        return Ok(());
    }
    const GROUP: &str = "occurrence_id = ?1 AND status = 'standby' AND group_key = (SELECT group_key FROM deliveries WHERE id = ?2)";
    for r in effects {
        let (sql, reason, held_by) = match &r.then {
            GroupEffect::Nothing => continue,
            GroupEffect::FallBack => (
                format!(
                    "UPDATE deliveries SET status = 'queued', updated_at = ?3 WHERE id = (
                         SELECT id FROM deliveries WHERE {GROUP} ORDER BY rank LIMIT 1)"
                ),
                None,
                None,
            ),
            GroupEffect::Close { reason } => (
                format!(
                    "UPDATE deliveries SET status = 'skipped', error = ?4, updated_at = ?3 WHERE {GROUP}"
                ),
                Some(reason),
                None,
            ),
            GroupEffect::Hold { reason } => (
                format!(
                    "UPDATE deliveries SET status = 'skipped', error = ?4, held_by = ?5, updated_at = ?3 WHERE {GROUP}"
                ),
                Some(reason),
                Some(r.id),
            ),
        };
        // Only the parameters the statement names are bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(occurrence_id)
            .bind(r.id)
            .bind(now);
        if let Some(reason) = reason {
            query = query.bind(reason);
        }
        if let Some(held_by) = held_by {
            query = query.bind(held_by);
        }
        query.execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

/// The journal's number for a worker name, from `cache` or the `workers` table; with
/// `register`, a new name is given one (inside the caller's write transaction). Only a number
/// read from the table is cached here: a new one is cached by the caller once its transaction
/// has committed ([`remember_worker`]), since a rolled-back number may go to another worker.
pub(crate) async fn worker_number(
    conn: &mut SqliteConnection,
    cache: &std::sync::Mutex<std::collections::HashMap<String, i64>>,
    name: &str,
    register: bool,
) -> Result<Option<i64>, StoreError> {
    if let Some(n) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
        return Ok(Some(*n));
    }
    let known: Option<i64> = sqlx::query_scalar("SELECT id FROM workers WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    if let Some(n) = known {
        remember_worker(cache, name, n);
        return Ok(Some(n));
    }
    if !register {
        return Ok(None);
    }
    let fresh: i64 = sqlx::query_scalar("INSERT INTO workers (name) VALUES (?) RETURNING id")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    Ok(Some(fresh))
}

/// Caches a worker's number once it is in the journal for good.
pub(crate) fn remember_worker(
    cache: &std::sync::Mutex<std::collections::HashMap<String, i64>>,
    name: &str,
    number: i64,
) {
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_owned(), number);
}
