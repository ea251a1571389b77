//! The store contract's traits on [`PgStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rassylka_store::{
    Delivery, DeliveryStatus, Fence, Freeze, KeyOrder, Lease, MailingRecord, MailingState,
    MailingStore, MailingTransition, NewOccurrence, OccurrenceRecord, OccurrenceStart,
    OccurrenceState, OccurrenceStore, QueueStore, Recorded, Settle, StatusCounts, Store,
    StoreError,
};
use sqlx::Row;

use crate::batches::{
    CLAIMED_TO, UNCLAIMED_FRESH, claim_fresh, expired_fresh, holds_a_row, renew_batches, rows_held,
};
use crate::freeze::PgFreeze;
use crate::queue::{claim_in, record_in};
use crate::rows::{delivery_from_row, from_millis, mailing_from_row, millis, occurrence_from_row};
use crate::schema::NOW_MS;
use crate::{PgStore, db};

fn names<T: Copy>(states: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
    states.iter().map(|s| name(*s)).collect()
}

pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for PgStore {
    async fn close(&self) -> Result<(), StoreError> {
        PgStore::close(self).await
    }
}

#[async_trait]
impl MailingStore for PgStore {
    async fn create_mailing(&self, m: &MailingRecord) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO mailings (id, json, state, version, checked_at, paused_until, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&m.id)
        .bind(&m.json)
        .bind(m.state.as_str())
        .bind(i32::try_from(m.version).unwrap_or(i32::MAX))
        .bind(m.checked_at.map(millis))
        .bind(m.paused_until.map(millis))
        .bind(&m.reason)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(inserted == 1)
    }

    async fn redefine_mailing(
        &self,
        id: &str,
        json: &str,
        version: u32,
        new_version: u32,
    ) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE mailings SET json = $1, version = $2 WHERE id = $3 AND version = $4",
        )
        .bind(json)
        .bind(i32::try_from(new_version).unwrap_or(i32::MAX))
        .bind(id)
        .bind(i32::try_from(version).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn transition_mailing(
        &self,
        id: &str,
        from: &[MailingState],
        to: &MailingTransition,
    ) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE mailings SET state = $1, reason = $2, paused_until = $3, checked_at = COALESCE($4, checked_at)
             WHERE id = $5 AND state = ANY($6)",
        )
        .bind(to.state.as_str())
        .bind(&to.reason)
        .bind(to.paused_until.map(millis))
        .bind(to.checked_at.map(millis))
        .bind(id)
        .bind(names(from, MailingState::as_str))
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn finish_mailing(&self, id: &str) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE mailings SET state = 'done', reason = NULL, paused_until = NULL WHERE id = $1 AND state = 'queued'
             AND NOT EXISTS (SELECT 1 FROM occurrences WHERE mailing_id = $1 AND state IN ('freezing', 'frozen'))",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn advance_checked_at(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE mailings SET checked_at = $1 WHERE id = $2 AND (checked_at IS NULL OR checked_at < $1)",
        )
        .bind(millis(at))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn mailing(&self, id: &str) -> Result<Option<MailingRecord>, StoreError> {
        sqlx::query("SELECT * FROM mailings WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(mailing_from_row)
            .transpose()
    }

    async fn mailings(&self) -> Result<Vec<MailingRecord>, StoreError> {
        sqlx::query("SELECT * FROM mailings ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(mailing_from_row)
            .collect()
    }
}

#[async_trait]
impl OccurrenceStore for PgStore {
    async fn start_occurrence(&self, o: &NewOccurrence) -> Result<OccurrenceStart, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO occurrences (mailing_id, key, fired_at, evaluation_date, state)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING RETURNING *",
        )
        .bind(&o.mailing_id)
        .bind(&o.key)
        .bind(millis(o.fired_at))
        .bind(o.evaluation_date.to_string())
        .bind(o.state.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(row) = inserted {
            return Ok(OccurrenceStart::Created(occurrence_from_row(&row)?));
        }
        let row = sqlx::query("SELECT * FROM occurrences WHERE key = $1")
            .bind(&o.key)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(OccurrenceStart::Existing(occurrence_from_row(&row)?))
    }

    async fn transition_occurrence(
        &self,
        id: i64,
        from: &[OccurrenceState],
        to: OccurrenceState,
    ) -> Result<bool, StoreError> {
        let changed =
            sqlx::query("UPDATE occurrences SET state = $1 WHERE id = $2 AND state = ANY($3)")
                .bind(to.as_str())
                .bind(id)
                .bind(names(from, OccurrenceState::as_str))
                .execute(&self.pool)
                .await
                .map_err(db)?
                .rows_affected();
        Ok(changed == 1)
    }

    async fn finish_occurrence(&self, id: i64) -> Result<bool, StoreError> {
        // The occurrence's row lock first, as `reopen_unknown` takes it: then the look at the
        // deliveries (a statement of its own, so a snapshot taken after the lock) is current.
        let mut tx = self.pool.begin().await.map_err(db)?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM occurrences WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if state.as_deref() != Some(OccurrenceState::Frozen.as_str()) {
            return Ok(false);
        }
        let open: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM deliveries WHERE occurrence_id = $1 AND lane = 'queued')
                 OR EXISTS (SELECT 1 FROM deliveries WHERE occurrence_id = $1 AND lane = 'standby')
                 OR EXISTS (SELECT 1 FROM deliveries WHERE occurrence_id = $1 AND lane = 'sending')
                 OR EXISTS (SELECT 1 FROM claim_batches b WHERE b.occurrence_id = $1 AND {})
                 OR EXISTS (SELECT 1 FROM deliveries d WHERE {UNCLAIMED_FRESH})",
            holds_a_row()
        )))
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if open {
            return Ok(false);
        }
        sqlx::query("UPDATE occurrences SET state = 'done' WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // No fresh row is left: batches two results' transactions each left to the other go
        // (skipping any a late, refused result is deleting this moment, rather than waiting).
        sqlx::query(
            "DELETE FROM claim_batches WHERE id IN (
                 SELECT id FROM claim_batches WHERE occurrence_id = $1 FOR UPDATE SKIP LOCKED)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn occurrences(
        &self,
        mailing_id: Option<&str>,
    ) -> Result<Vec<OccurrenceRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM occurrences WHERE $1::text IS NULL OR mailing_id = $1 ORDER BY fired_at, id",
        )
        .bind(mailing_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(occurrence_from_row)
        .collect()
    }

    async fn occurrences_between(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<OccurrenceRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM occurrences WHERE fired_at > $1 AND fired_at < $2 ORDER BY fired_at, id",
        )
        .bind(millis(after))
        .bind(millis(before))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(occurrence_from_row)
        .collect()
    }

    async fn begin_freeze(
        &self,
        occurrence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Box<dyn Freeze>>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The row lock is held until the commit: another caller waits here, then reads
        // `frozen`; not forever, though, if the freezing worker stalls holding it.
        sqlx::query("SET LOCAL lock_timeout = '60s'")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM occurrences WHERE id = $1 FOR UPDATE")
                .bind(occurrence_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if state.as_deref() != Some(OccurrenceState::Freezing.as_str()) {
            return Ok(None);
        }
        Ok(Some(Box::new(PgFreeze {
            tx,
            occurrence_id,
            now: millis(now),
            keys: KeyOrder::default(),
            fresh: None,
        })))
    }
}

#[async_trait]
impl QueueStore for PgStore {
    async fn claim(
        &self,
        occurrence_id: i64,
        lease: &Lease,
        due: DateTime<Utc>,
        limit_rows: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let claimed = claim_both(
            &mut tx,
            &self.cursors,
            occurrence_id,
            lease,
            millis(due),
            limit_rows,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(claimed)
    }

    async fn record(
        &self,
        occurrence_id: i64,
        fence: Fence<'_>,
        results: &[Settle],
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        if results.is_empty() {
            return Ok(Recorded::default());
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        let recorded = record_in(
            &mut tx,
            &self.cursors,
            occurrence_id,
            fence,
            results,
            millis(now),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(recorded)
    }

    async fn record_and_claim(
        &self,
        occurrence_id: i64,
        lease: &Lease,
        results: &[Settle],
        now: DateTime<Utc>,
        limit_rows: usize,
    ) -> Result<(Recorded, Vec<Delivery>), StoreError> {
        // One transaction, the claim last: the occurrence's row lock a claim of fresh rows
        // takes is held for that statement and the commit, not for the results' writes.
        let mut tx = self.pool.begin().await.map_err(db)?;
        let recorded = record_in(
            &mut tx,
            &self.cursors,
            occurrence_id,
            Fence::Holder(&lease.worker),
            results,
            millis(now),
        )
        .await?;
        let claimed = claim_both(
            &mut tx,
            &self.cursors,
            occurrence_id,
            lease,
            millis(now),
            limit_rows,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok((recorded, claimed))
    }

    async fn renew(&self, occurrence_id: i64, lease: &Lease) -> Result<u64, StoreError> {
        let _turn = self.renewing.lock().await;
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let in_batches = renew_batches(&mut conn, occurrence_id, lease).await?;
        // Rows in id order, skipping any a result is being written to this moment: the same
        // order `record_in` locks them in, so the two never deadlock.
        let one_by_one = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET lease_until = {NOW_MS} + $1 WHERE id IN (
                 SELECT id FROM deliveries WHERE occurrence_id = $2 AND lane = 'sending' AND worker = $3
                 ORDER BY id FOR UPDATE SKIP LOCKED)"
        )))
        .bind(i64::try_from(lease.length.as_millis()).unwrap_or(i64::MAX))
        .bind(occurrence_id)
        .bind(&lease.worker)
        .execute(&mut *conn)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(in_batches + one_by_one)
    }

    async fn expired(
        &self,
        occurrence_id: i64,
        limit_rows: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "(SELECT d.*, m.* FROM deliveries d JOIN messages m ON m.id = d.id
              WHERE d.occurrence_id = $1 AND d.lane = 'sending' AND d.lease_until < {NOW_MS}
              ORDER BY d.id LIMIT $2)
             UNION ALL ({})
             ORDER BY 1 LIMIT $2",
            expired_fresh()
        )))
        .bind(occurrence_id)
        .bind(limit(limit_rows))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(delivery_from_row)
        .collect()
    }

    async fn reopen_unknown(
        &self,
        occurrence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.cursors.forget(occurrence_id);
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The occurrence's row lock, as `finish_occurrence` takes it.
        sqlx::query("SELECT 1 FROM occurrences WHERE id = $1 FOR UPDATE")
            .bind(occurrence_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "UPDATE deliveries SET status = 'standby', error = NULL, held_by = NULL, updated_at = $1
             WHERE occurrence_id = $2 AND status = 'skipped'
             AND held_by IN (SELECT id FROM deliveries WHERE occurrence_id = $2 AND status = 'unknown')",
        )
        .bind(millis(now))
        .bind(occurrence_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let reopened = sqlx::query(
            "UPDATE deliveries SET status = 'queued', error = NULL, updated_at = $1
             WHERE occurrence_id = $2 AND status = 'unknown'",
        )
        .bind(millis(now))
        .bind(occurrence_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if reopened > 0 {
            sqlx::query("UPDATE occurrences SET state = 'frozen' WHERE id = $1 AND state = 'done'")
                .bind(occurrence_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(reopened)
    }

    async fn sending(&self, occurrence_id: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT count(*) FROM deliveries WHERE occurrence_id = $1 AND lane = 'sending')
                  + (SELECT {} FROM claim_batches b WHERE b.occurrence_id = $1)",
            rows_held()
        )))
        .bind(occurrence_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn next_due(&self, occurrence_id: i64) -> Result<Option<DateTime<Utc>>, StoreError> {
        // A fresh row waits for nothing (`not_before` 0): one not yet claimed is due now.
        let due: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT LEAST(
                 (SELECT min(not_before) FROM deliveries WHERE occurrence_id = $1 AND lane = 'queued'),
                 (SELECT 0::bigint WHERE EXISTS (SELECT 1 FROM deliveries d WHERE {UNCLAIMED_FRESH})))"
        )))
        .bind(occurrence_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(due.map(from_millis))
    }

    async fn counts(&self, occurrence_id: i64) -> Result<StatusCounts, StoreError> {
        // Stored statuses, a fresh row counted as `sending` at or below `claimed_to`, else
        // `queued`: cheaper than reading every row through `delivery_rows`.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT CASE WHEN d.status <> 'fresh' THEN d.status
                         WHEN d.id <= {CLAIMED_TO} THEN 'sending'
                         ELSE 'queued' END AS status, count(*) AS n
             FROM deliveries d WHERE d.occurrence_id = $1 GROUP BY 1"
        )))
        .bind(occurrence_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut counts = StatusCounts::default();
        for row in rows {
            let status: String = row.try_get("status").map_err(db)?;
            let n: i64 = row.try_get("n").map_err(db)?;
            counts.add(
                status.parse::<DeliveryStatus>()?,
                u64::try_from(n).unwrap_or_default(),
            );
        }
        Ok(counts)
    }

    async fn deliveries(
        &self,
        occurrence_id: i64,
        after_id: i64,
        limit_rows: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        sqlx::query(
            "SELECT d.*, m.* FROM delivery_rows d JOIN messages m ON m.id = d.id
             WHERE d.occurrence_id = $1 AND d.id > $2 ORDER BY d.id LIMIT $3",
        )
        .bind(occurrence_id)
        .bind(after_id)
        .bind(limit(limit_rows))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(delivery_from_row)
        .collect()
    }
}

/// Claims rows queued one by one, then fresh rows up to `limit`, all in row order, inside the
/// caller's transaction: rows are read (and any error met) before the claim commits, so a
/// failed claim holds nothing.
async fn claim_both(
    conn: &mut sqlx::PgConnection,
    cursors: &crate::queue::ClaimCursors,
    occurrence_id: i64,
    lease: &Lease,
    due: i64,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let mut claimed = claim_in(&mut *conn, cursors, occurrence_id, lease, due, limit).await?;
    if claimed.len() < limit {
        claimed.extend(claim_fresh(conn, occurrence_id, lease, due, limit - claimed.len()).await?);
        claimed.sort_unstable_by_key(|d| d.id);
    }
    Ok(claimed)
}
