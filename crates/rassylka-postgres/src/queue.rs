//! The queue: claims with `FOR UPDATE SKIP LOCKED` under a lease on the server's clock, and
//! fenced results.

use rassylka_store::{Delivery, Fence, GroupEffect, Lease, Outcome, Recorded, Settle, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::PgConnection;

use crate::batches::{held_batches, release_settled, still_held};
use crate::db;
use crate::rows::delivery_from_row;
use crate::schema::NOW_MS;

fn lease_ms(lease: &Lease) -> i64 {
    i64::try_from(lease.length.as_millis()).unwrap_or(i64::MAX)
}

/// Where each occurrence's last claim began, in queue order (`not_before`, `id`).
///
/// A claim marks rows `sending`, and PostgreSQL keeps their entries in the queue index until
/// vacuum: a claim that scans the index from its start walks over every row claimed before it,
/// which made the claims of a million-row occurrence quadratic (7 ms per batch on average, a
/// third of the run). The next claim starts where the last began instead. Rows queued again
/// behind that point (put back, a fallback rank, reopened) are found when this worker queues
/// them (it forgets its cursor) or when the rows ahead run short (a full look); nothing is
/// skipped for good, a row put back by another worker may only wait for the rows ahead of it.
#[derive(Debug, Default)]
pub(crate) struct ClaimCursors(Mutex<HashMap<i64, (i64, i64)>>);

impl ClaimCursors {
    fn get(&self, occurrence_id: i64) -> Option<(i64, i64)> {
        self.lock().get(&occurrence_id).copied()
    }

    fn set(&self, occurrence_id: i64, at: (i64, i64)) {
        self.lock().insert(occurrence_id, at);
    }

    /// After rows were queued again: the next claim looks at the whole queue.
    pub(crate) fn forget(&self, occurrence_id: i64) {
        self.lock().remove(&occurrence_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (i64, i64)>> {
        // A map of hints stays usable even if a thread panicked holding it.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Marks up to `limit` queued deliveries due at `due` as sending under `lease`, skipping rows
/// another worker is claiming this very moment; returns them in row order.
pub(crate) async fn claim_in(
    conn: &mut PgConnection,
    cursors: &ClaimCursors,
    occurrence_id: i64,
    lease: &Lease,
    due: i64,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let from = cursors.get(occurrence_id);
    let mut claimed = claim_from(conn, occurrence_id, lease, due, limit, from).await?;
    if from.is_some() && claimed.len() < limit {
        let rest = limit - claimed.len();
        claimed.extend(claim_from(conn, occurrence_id, lease, due, rest, None).await?);
    }
    let first = claimed
        .iter()
        .map(|d| (d.planned.not_before.map_or(0, crate::rows::millis), d.id))
        .min();
    match first {
        Some(first) => cursors.set(occurrence_id, first),
        None => cursors.forget(occurrence_id),
    }
    claimed.sort_unstable_by_key(|d| d.id);
    Ok(claimed)
}

/// One claim statement: from `from` on in queue order, or from the start.
async fn claim_from(
    conn: &mut PgConnection,
    occurrence_id: i64,
    lease: &Lease,
    due: i64,
    limit: usize,
    from: Option<(i64, i64)>,
) -> Result<Vec<Delivery>, StoreError> {
    let (from_not_before, from_id) = from.unwrap_or((i64::MIN, i64::MIN));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH due AS (
             SELECT id FROM deliveries WHERE occurrence_id = $1 AND lane = 'queued' AND not_before <= $2
             AND (not_before, id) >= ($6, $7)
             ORDER BY not_before, id LIMIT $3 FOR UPDATE SKIP LOCKED)
         , claimed AS (
             UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1, updated_at = $2,
                 worker = $4, lease_until = {NOW_MS} + $5
             FROM due WHERE d.id = due.id RETURNING d.*)
         SELECT c.*, m.* FROM claimed c JOIN messages m ON m.id = c.id"
    )))
    .bind(occurrence_id)
    .bind(due)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .bind(&lease.worker)
    .bind(lease_ms(lease))
    .bind(from_not_before)
    .bind(from_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows.iter().map(delivery_from_row).collect()
}

fn fence_value(fence: Fence<'_>) -> Option<&str> {
    match fence {
        Fence::Holder(worker) => Some(worker),
        Fence::Expired => None,
    }
}

/// Records results inside the caller's transaction: each only if its row is still held as
/// the fence says, at the settled attempt; then the group effects of those written.
pub(crate) async fn record_in(
    conn: &mut PgConnection,
    cursors: &ClaimCursors,
    occurrence_id: i64,
    fence: Fence<'_>,
    results: &[Settle],
    now: i64,
) -> Result<Recorded, StoreError> {
    let worker = fence_value(fence);
    let queues_again = |r: &Settle| {
        matches!(
            r.outcome,
            Outcome::Retry { .. } | Outcome::Requeue | Outcome::Postpone { .. }
        ) || r.then == GroupEffect::FallBack
    };
    if results.iter().any(queues_again) {
        cursors.forget(occurrence_id);
    }
    // Rows are locked in id order, as `renew` locks them, so the two never deadlock.
    let mut ordered: Vec<&Settle> = results.iter().collect();
    ordered.sort_unstable_by_key(|r| r.id);
    let results = ordered;
    let held = still_held(fence, "$2");
    let batches = held_batches(fence, "$8");
    let mut written: Vec<i64> = Vec::with_capacity(results.len());
    // Sends are the bulk: one statement for all of them.
    let (mut ids, mut attempts, mut providers, mut costs) = (vec![], vec![], vec![], vec![]);
    for r in &results {
        if let Outcome::Sent { provider_id, cost } = &r.outcome {
            ids.push(r.id);
            attempts.push(i32::try_from(r.attempt).unwrap_or(i32::MAX));
            providers.push(provider_id.clone());
            costs.push(cost.map(|c| c.to_string()));
        }
    }
    if !ids.is_empty() {
        let sent: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "WITH {}
             UPDATE deliveries d SET status = 'sent', attempts = v.attempt, provider_id = v.provider_id,
                 cost = COALESCE(v.cost, d.cost), error = NULL, error_class = NULL, updated_at = $2, sent_at = $2,
                 worker = NULL, lease_until = NULL
             FROM UNNEST($1::bigint[], $4::int[], $5::text[], $6::text[]) AS v(id, attempt, provider_id, cost)
             WHERE d.id = v.id AND {}
             RETURNING d.id",
            held_batches(fence, "$7"),
            still_held(fence, "v.attempt")
        )))
        .bind(ids)
        .bind(now)
        .bind(worker)
        .bind(attempts)
        .bind(providers)
        .bind(costs)
        .bind(occurrence_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        written.extend(sent);
    }
    for result in &results {
        let (set, class, error, not_before): (&str, Option<&str>, Option<&str>, Option<i64>) =
            match &result.outcome {
                Outcome::Sent { .. } => continue,
                Outcome::Retry {
                    not_before,
                    class,
                    error,
                } => (
                    "status = 'queued', attempts = $2, not_before = COALESCE($6, d.not_before), error_class = $4, error = $5",
                    Some(class),
                    Some(error),
                    Some(crate::rows::millis(*not_before)),
                ),
                Outcome::Failed { class, error } => (
                    "status = 'failed', attempts = $2, error_class = COALESCE($4, d.error_class), error = COALESCE($5, d.error)",
                    Some(class),
                    Some(error),
                    None,
                ),
                Outcome::Requeue => (
                    "status = 'queued', attempts = GREATEST($2 - 1, 0)",
                    None,
                    None,
                    None,
                ),
                Outcome::Postpone { not_before, reason } => (
                    "status = 'queued', attempts = GREATEST($2 - 1, 0), not_before = COALESCE($6, d.not_before), error = $5",
                    None,
                    Some(reason),
                    Some(crate::rows::millis(*not_before)),
                ),
                Outcome::Skip { reason } => (
                    "status = 'skipped', attempts = GREATEST($2 - 1, 0), error = $5",
                    None,
                    Some(reason),
                    None,
                ),
                Outcome::Unknown { error } => (
                    "status = 'unknown', attempts = $2, error = COALESCE($5, d.error)",
                    None,
                    Some(error),
                    None,
                ),
            };
        let sql = format!(
            "WITH {batches}
             UPDATE deliveries d SET {set}, updated_at = $7, worker = NULL, lease_until = NULL
             WHERE d.id = $1 AND {held}
             AND ($4::text IS NULL OR true) AND ($5::text IS NULL OR true) AND ($6::bigint IS NULL OR true)"
        );
        let changed = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(result.id)
            .bind(i32::try_from(result.attempt).unwrap_or(i32::MAX))
            .bind(worker)
            .bind(class)
            .bind(error)
            .bind(not_before)
            .bind(now)
            .bind(occurrence_id)
            .execute(&mut *conn)
            .await
            .map_err(db)?
            .rows_affected();
        if changed == 1 {
            written.push(result.id);
        }
    }
    written.sort_unstable();
    if let (Some(first), Some(last)) = (written.first(), written.last()) {
        release_settled(conn, occurrence_id, *first, *last).await?;
    }
    apply_group_effects(conn, occurrence_id, &results, &written, now).await?;
    let refused = results
        .iter()
        .map(|r| r.id)
        .filter(|id| written.binary_search(id).is_err())
        .collect();
    Ok(Recorded { refused })
}

/// What written results do to the standby deliveries of their priority groups.
async fn apply_group_effects(
    conn: &mut PgConnection,
    occurrence_id: i64,
    results: &[&Settle],
    written: &[i64],
    now: i64,
) -> Result<(), StoreError> {
    const GROUP: &str = "occurrence_id = $1 AND lane = 'standby' AND group_key = (SELECT group_key FROM deliveries WHERE id = $2)";
    for r in results {
        if r.then == GroupEffect::Nothing || written.binary_search(&r.id).is_err() {
            continue;
        }
        let (sql, reason, held_by) = match &r.then {
            GroupEffect::Nothing => continue,
            GroupEffect::FallBack => (
                format!(
                    "UPDATE deliveries SET status = 'queued', updated_at = $3 WHERE id = (
                         SELECT id FROM deliveries WHERE {GROUP} ORDER BY rank LIMIT 1)
                     AND ($4::text IS NULL OR true) AND ($5::bigint IS NULL OR true)"
                ),
                None,
                None,
            ),
            GroupEffect::Close { reason } => (
                format!(
                    "UPDATE deliveries SET status = 'skipped', error = $4, held_by = $5, updated_at = $3 WHERE {GROUP}"
                ),
                Some(reason.as_str()),
                None,
            ),
            GroupEffect::Hold { reason } => (
                format!(
                    "UPDATE deliveries SET status = 'skipped', error = $4, held_by = $5, updated_at = $3 WHERE {GROUP}"
                ),
                Some(reason.as_str()),
                Some(r.id),
            ),
        };
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(occurrence_id)
            .bind(r.id)
            .bind(now)
            .bind(reason)
            .bind(held_by)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}
