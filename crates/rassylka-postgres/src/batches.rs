//! Claims by batch: an occurrence's fresh rows (frozen due at once, never claimed) are
//! claimed in id order by writing one `claim_batches` row per claim, not each row.
//!
//! Each claim and each result of a row claimed one by one writes a whole new row version and an
//! entry in every index of it; a claim of 512 rows spent most of its 5 ms on that. Here a claim
//! writes one batch row and the occurrence's `claimed_to`, under the occurrence's row lock
//! (taken before the claim's statement, held until its commit), and a row is written once,
//! with its result. The batch row is the lease of all its rows: renewed, fenced and expired as
//! one.

use rassylka_store::{Delivery, Fence, Lease, StoreError};
use sqlx::PgConnection;

use crate::db;
use crate::rows::delivery_from_row;
use crate::schema::NOW_MS;

/// A delivery `d` that batch `b` holds: a fresh row of its occurrence inside its range (every
/// fresh row there is the batch's, and leaves it with its result).
pub(crate) const HELD_BY_BATCH: &str = "d.occurrence_id = b.occurrence_id AND d.status = 'fresh' AND d.id BETWEEN b.first_id AND b.last_id";

/// Whether batch `b` still holds a row: looked for in its own id range, a subquery per batch
/// (as a join or an anti-join, the planner may scan every delivery).
pub(crate) fn holds_a_row() -> String {
    format!("(SELECT true FROM deliveries d WHERE {HELD_BY_BATCH} LIMIT 1)")
}

/// How many rows the batches `b` of a query hold, counted batch by batch as [`holds_a_row`]
/// looks.
pub(crate) fn rows_held() -> String {
    format!("COALESCE(sum((SELECT count(*) FROM deliveries d WHERE {HELD_BY_BATCH})), 0)::bigint")
}

/// Occurrence `$1`'s `claimed_to`: its fresh rows at or below it are claimed, above it queued.
pub(crate) const CLAIMED_TO: &str = "(SELECT claimed_to FROM occurrences WHERE id = $1)";

/// Occurrence `$1`'s fresh rows not yet claimed, `d`: after `claimed_to`, up to `fresh_to`
/// (its last fresh row), looked up through the primary key.
pub(crate) const UNCLAIMED_FRESH: &str = "d.occurrence_id = $1 AND d.status = 'fresh'
    AND d.id > (SELECT claimed_to FROM occurrences WHERE id = $1)
    AND d.id <= (SELECT fresh_to FROM occurrences WHERE id = $1)";

/// The columns of a fresh row `d` claimed by batch `b`, as `delivery_rows` shows it, with
/// its message `m`: what [`delivery_from_row`] reads, in the order of `deliveries`' columns
/// (so a claimed fresh row and a row claimed one by one can be read as one list).
pub(crate) const CLAIMED_FRESH: &str = "d.id, d.occurrence_id, d.channel, d.group_key, d.rank, 'sending' AS status,
    d.not_before, d.attempts + 1 AS attempts, d.cost, d.provider_id, d.error_class, d.error,
    b.claimed_at AS updated_at, d.sent_at, b.worker AS worker, b.lease_until AS lease_until, d.held_by,
    'sending' AS lane, m.*";

/// How many ids one claim statement looks at, per row it may claim: a window a few times the
/// batch holds a full batch even when the occurrence's fresh rows share their ids with
/// fallback rows of priority groups or with another occurrence frozen at the same time.
const WINDOW_PER_ROW: i64 = 2;

/// Claims up to `limit` of the occurrence's fresh rows after `claimed_to`, in id order.
pub(crate) async fn claim_fresh(
    conn: &mut PgConnection,
    occurrence_id: i64,
    lease: &Lease,
    due: i64,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut window = limit.saturating_mul(WINDOW_PER_ROW);
    loop {
        // The occurrence's row lock first, in a statement of its own: the claim's statement
        // then reads rows as they are after it (a freeze that held the lock has committed
        // its rows), and claims of the occurrence take turns.
        let more: Option<bool> = sqlx::query_scalar(
            "SELECT claimed_to < fresh_to FROM occurrences WHERE id = $1 FOR NO KEY UPDATE",
        )
        .bind(occurrence_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        if more != Some(true) {
            return Ok(Vec::new());
        }
        let rows = claim_window(conn, occurrence_id, lease, due, limit, window).await?;
        if !rows.is_empty() {
            return rows.iter().map(delivery_from_row).collect();
        }
        // A window without a fresh row moved `claimed_to` past it: the next one is looked at,
        // wider, since ids without a fresh row of this occurrence come in runs (another
        // occurrence's freeze, fallback rows).
        window = window.saturating_mul(2);
    }
}

/// One claim statement: the fresh rows among the `window` ids after `claimed_to`, up to
/// `limit`; `claimed_to` moves to the last one claimed, or past the window when it held
/// fewer.
async fn claim_window(
    conn: &mut PgConnection,
    occurrence_id: i64,
    lease: &Lease,
    due: i64,
    limit: i64,
    window: i64,
) -> Result<Vec<sqlx::postgres::PgRow>, StoreError> {
    // Under the occurrence's row lock (taken by the caller) the fresh rows after `claimed_to`
    // are nobody's: only a claim moves it, and a fresh row changes only by a result. They are
    // read once, by their ids (a range of the primary key), which bounds what a claim reads
    // whatever the planner guesses of how many rows are fresh.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH o AS (SELECT claimed_to AS after, LEAST(claimed_to + $6, fresh_to) AS upto
                    FROM occurrences WHERE id = $1),
         picked AS MATERIALIZED (
             SELECT d.* FROM deliveries d WHERE d.id > (SELECT after FROM o) AND d.id <= (SELECT upto FROM o)
             AND d.occurrence_id = $1 AND d.status = 'fresh' ORDER BY d.id LIMIT $3),
         b AS (
             INSERT INTO claim_batches (occurrence_id, first_id, last_id, worker, lease_until, claimed_at)
             SELECT $1, min(id), max(id), $4, {NOW_MS} + $5, $2 FROM picked HAVING count(*) > 0
             RETURNING last_id, worker, lease_until, claimed_at),
         moved AS (
             UPDATE occurrences SET claimed_to = CASE WHEN (SELECT count(*) FROM picked) = $3
                 THEN (SELECT max(id) FROM picked) ELSE (SELECT upto FROM o) END
             WHERE id = $1 AND claimed_to < (SELECT upto FROM o))
         SELECT {CLAIMED_FRESH}
         FROM picked d JOIN messages m ON m.id = d.id CROSS JOIN b
         ORDER BY d.id"
    )))
    .bind(occurrence_id)
    .bind(due)
    .bind(limit)
    .bind(&lease.worker)
    .bind(i64::try_from(lease.length.as_millis()).unwrap_or(i64::MAX))
    .bind(window)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)
}

/// The batches of occurrence `occurrence` (a parameter) held as `fence` says (`$3` bound as
/// the fence's worker, or NULL), as a `WITH` entry named `held` for [`still_held`]: looked up
/// once per statement rather than once per result.
///
/// Recovery (an expired fence) share-locks the batches it settles until it commits, skipping
/// any being renewed this moment. A holder that wakes from a stall meanwhile and renews (which
/// skips locked batches) then does not count their rows as its own, and puts them back rather
/// than sending them while recovery settles them; a renewal that commits first makes the batch
/// unexpired for recovery.
pub(crate) fn held_batches(fence: Fence<'_>, occurrence: &str) -> String {
    let (held, lock) = match fence {
        Fence::Holder(_) => ("b.worker = $3".to_owned(), ""),
        // `$3` is bound but unused: a NULL text keeps the parameter list the same.
        Fence::Expired => (
            format!("b.lease_until < {NOW_MS} AND $3::text IS NULL"),
            "FOR SHARE OF b SKIP LOCKED",
        ),
    };
    format!(
        "held AS MATERIALIZED (SELECT b.occurrence_id, b.first_id, b.last_id FROM claim_batches b
             WHERE b.occurrence_id = {occurrence} AND {held} {lock})"
    )
}

/// The condition a delivery `d` must meet for a result of attempt `attempt` under `fence`:
/// held as a row claimed one by one, or as a fresh row of a batch in `held`
/// ([`held_batches`]).
pub(crate) fn still_held(fence: Fence<'_>, attempt: &str) -> String {
    let row = match fence {
        Fence::Holder(_) => "d.worker = $3".to_owned(),
        Fence::Expired => format!("d.lease_until < {NOW_MS} AND $3::text IS NULL"),
    };
    format!(
        "((d.status = 'sending' AND d.attempts = {attempt} AND {row})
          OR (d.status = 'fresh' AND {attempt} = d.attempts + 1
              AND EXISTS (SELECT 1 FROM held h WHERE d.occurrence_id = h.occurrence_id
                  AND d.id BETWEEN h.first_id AND h.last_id)))"
    )
}

/// Deletes the batches overlapping ids `first..=last` that hold no fresh row any more (every
/// row of theirs has a result), inside the caller's transaction, after it wrote results.
pub(crate) async fn release_settled(
    conn: &mut PgConnection,
    occurrence_id: i64,
    first: i64,
    last: i64,
) -> Result<(), StoreError> {
    // Locked in id order and skipping any being renewed this moment, as `renew` does.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM claim_batches WHERE id IN (
             SELECT b.id FROM claim_batches b WHERE b.occurrence_id = $1 AND b.last_id >= $2 AND b.first_id <= $3
             AND {} IS NULL
             ORDER BY b.id FOR UPDATE OF b SKIP LOCKED)",
        holds_a_row()
    )))
    .bind(occurrence_id)
    .bind(first)
    .bind(last)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Extends the deadline of `lease.worker`'s batches of the occurrence; returns how many
/// fresh rows they hold.
pub(crate) async fn renew_batches(
    conn: &mut PgConnection,
    occurrence_id: i64,
    lease: &Lease,
) -> Result<u64, StoreError> {
    let held: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "WITH renewed AS (
             UPDATE claim_batches SET lease_until = {NOW_MS} + $1 WHERE id IN (
                 SELECT id FROM claim_batches WHERE occurrence_id = $2 AND worker = $3
                 ORDER BY id FOR UPDATE SKIP LOCKED)
             RETURNING occurrence_id, first_id, last_id)
         SELECT {} FROM renewed b",
        rows_held()
    )))
    .bind(i64::try_from(lease.length.as_millis()).unwrap_or(i64::MAX))
    .bind(occurrence_id)
    .bind(&lease.worker)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    Ok(u64::try_from(held).unwrap_or_default())
}

/// The fresh rows of the occurrence's batches whose lease ran out (up to `$2`, in id order),
/// as a query [`delivery_from_row`] reads, to be joined with those claimed one by one.
pub(crate) fn expired_fresh() -> String {
    format!(
        "SELECT {CLAIMED_FRESH} FROM claim_batches b
         CROSS JOIN LATERAL (SELECT d.* FROM deliveries d WHERE {HELD_BY_BATCH} ORDER BY d.id LIMIT $2) d
         JOIN messages m ON m.id = d.id
         WHERE b.occurrence_id = $1 AND b.lease_until < {NOW_MS}
         ORDER BY d.id LIMIT $2"
    )
}
