//! The queue: claims with `FOR UPDATE SKIP LOCKED` under a lease on the server's clock, and
//! fenced results.

use rassylka_store::{Delivery, Fence, GroupEffect, Lease, Outcome, Recorded, Settle, StoreError};
use sqlx::PgConnection;

use crate::db;
use crate::rows::delivery_from_row;
use crate::schema::NOW_MS;

fn lease_ms(lease: &Lease) -> i64 {
    i64::try_from(lease.length.as_millis()).unwrap_or(i64::MAX)
}

/// Marks up to `limit` queued deliveries due at `due` as sending under `lease`, skipping rows
/// another worker is claiming this very moment; returns them in row order.
pub(crate) async fn claim_in(
    conn: &mut PgConnection,
    occurrence_id: i64,
    lease: &Lease,
    due: i64,
    now: i64,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH due AS (
             SELECT id FROM deliveries WHERE occurrence_id = $1 AND status = 'queued' AND not_before <= $2
             ORDER BY not_before, id LIMIT $3 FOR UPDATE SKIP LOCKED)
         , claimed AS (
             UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1, updated_at = $4,
                 worker = $5, lease_until = {NOW_MS} + $6
             FROM due WHERE d.id = due.id RETURNING d.*)
         SELECT c.*, m.* FROM claimed c JOIN messages m ON m.id = c.id"
    )))
    .bind(occurrence_id)
    .bind(due)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .bind(now)
    .bind(&lease.worker)
    .bind(lease_ms(lease))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut claimed = rows
        .iter()
        .map(delivery_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    claimed.sort_unstable_by_key(|d| d.id);
    Ok(claimed)
}

/// The condition a row must meet for a result under `fence` (`$3`), beside being `sending` at
/// the settled attempt.
fn held(fence: Fence<'_>) -> String {
    match fence {
        Fence::Holder(_) => "d.worker = $3".into(),
        // `$3` is bound but unused: a NULL text keeps the parameter list the same.
        Fence::Expired => format!("d.lease_until < {NOW_MS} AND $3::text IS NULL"),
    }
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
    occurrence_id: i64,
    fence: Fence<'_>,
    results: &[Settle],
    now: i64,
) -> Result<Recorded, StoreError> {
    let held = held(fence);
    let worker = fence_value(fence);
    // Rows are locked in id order, as `renew` locks them, so the two never deadlock.
    let mut ordered: Vec<&Settle> = results.iter().collect();
    ordered.sort_unstable_by_key(|r| r.id);
    let results = ordered;
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
            "UPDATE deliveries d SET status = 'sent', provider_id = v.provider_id, cost = COALESCE(v.cost, d.cost),
                 error = NULL, error_class = NULL, updated_at = $2, sent_at = $2, worker = NULL, lease_until = NULL
             FROM UNNEST($1::bigint[], $4::int[], $5::text[], $6::text[]) AS v(id, attempt, provider_id, cost)
             WHERE d.id = v.id AND d.attempts = v.attempt AND d.status = 'sending' AND {held}
             RETURNING d.id"
        )))
        .bind(ids)
        .bind(now)
        .bind(worker)
        .bind(attempts)
        .bind(providers)
        .bind(costs)
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
                    "status = 'queued', not_before = COALESCE($6, d.not_before), error_class = $4, error = $5",
                    Some(class),
                    Some(error),
                    Some(crate::rows::millis(*not_before)),
                ),
                Outcome::Failed { class, error } => (
                    "status = 'failed', error_class = COALESCE($4, d.error_class), error = COALESCE($5, d.error)",
                    Some(class),
                    Some(error),
                    None,
                ),
                Outcome::Requeue => (
                    "status = 'queued', attempts = GREATEST(d.attempts - 1, 0)",
                    None,
                    None,
                    None,
                ),
                Outcome::Unknown { error } => (
                    "status = 'unknown', error = COALESCE($5, d.error)",
                    None,
                    Some(error),
                    None,
                ),
            };
        let sql = format!(
            "UPDATE deliveries d SET {set}, updated_at = $7, worker = NULL, lease_until = NULL
             WHERE d.id = $1 AND d.attempts = $2 AND d.status = 'sending' AND {held}
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
            .execute(&mut *conn)
            .await
            .map_err(db)?
            .rows_affected();
        if changed == 1 {
            written.push(result.id);
        }
    }
    written.sort_unstable();
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
    const GROUP: &str = "occurrence_id = $1 AND status = 'standby' AND group_key = (SELECT group_key FROM deliveries WHERE id = $2)";
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
