//! The store contract's traits on [`SqliteStore`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rassylka_store::{
    Delivery, DeliveryStatus, Fence, Freeze, KeyOrder, Lease, MailingRecord, MailingState,
    MailingStore, MailingTransition, NewOccurrence, OccurrenceRecord, OccurrenceStart,
    OccurrenceState, OccurrenceStore, QueueStore, Recorded, Settle, StatusCounts, Store,
    StoreError,
};
use sqlx::Row;

use crate::SqliteStore;
use crate::freeze::SqliteFreeze;
use crate::queue::{claim_in, deadline, record_in, remember_worker, worker_number};
use crate::rows::{
    DELIVERY_COLUMNS, db, delivery_from_row, from_millis, mailing_from_row, millis,
    occurrence_from_row, to_json, wall_millis,
};

/// Names of states as one JSON array, for `IN (SELECT value FROM json_each(?))`.
fn names<T: Copy>(states: &[T], name: fn(T) -> &'static str) -> Result<String, StoreError> {
    to_json(&states.iter().map(|s| name(*s)).collect::<Vec<_>>())
}

pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// A write transaction that holds SQLite's write lock from its start (so what it reads is
    /// what it changes), after this process's other writers.
    async fn write_tx(
        &self,
    ) -> Result<
        (
            tokio::sync::MutexGuard<'_, ()>,
            sqlx::Transaction<'static, sqlx::Sqlite>,
        ),
        StoreError,
    > {
        let writing = self.writing.lock().await;
        let tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db)?;
        Ok((writing, tx))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn close(&self) -> Result<(), StoreError> {
        SqliteStore::close(self).await
    }
}

#[async_trait]
impl MailingStore for SqliteStore {
    async fn create_mailing(&self, m: &MailingRecord) -> Result<bool, StoreError> {
        let _writing = self.writing.lock().await;
        let inserted = sqlx::query(
            "INSERT INTO mailings (id, json, state, version, checked_at, paused_until, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&m.id)
        .bind(&m.json)
        .bind(m.state.as_str())
        .bind(i64::from(m.version))
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
        let _writing = self.writing.lock().await;
        let changed =
            sqlx::query("UPDATE mailings SET json = ?, version = ? WHERE id = ? AND version = ?")
                .bind(json)
                .bind(i64::from(new_version))
                .bind(id)
                .bind(i64::from(version))
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
        let _writing = self.writing.lock().await;
        let changed = sqlx::query(
            "UPDATE mailings SET state = ?1, reason = ?2, paused_until = ?3, checked_at = COALESCE(?4, checked_at)
             WHERE id = ?5 AND state IN (SELECT value FROM json_each(?6))",
        )
        .bind(to.state.as_str())
        .bind(&to.reason)
        .bind(to.paused_until.map(millis))
        .bind(to.checked_at.map(millis))
        .bind(id)
        .bind(names(from, MailingState::as_str)?)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn finish_mailing(&self, id: &str) -> Result<bool, StoreError> {
        let _writing = self.writing.lock().await;
        let changed = sqlx::query(
            "UPDATE mailings SET state = 'done', reason = NULL, paused_until = NULL WHERE id = ?1 AND state = 'queued'
             AND NOT EXISTS (SELECT 1 FROM occurrences WHERE mailing_id = ?1 AND state IN ('freezing', 'frozen'))",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn advance_checked_at(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let _writing = self.writing.lock().await;
        sqlx::query(
            "UPDATE mailings SET checked_at = ?1 WHERE id = ?2 AND (checked_at IS NULL OR checked_at < ?1)",
        )
        .bind(millis(at))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn mailing(&self, id: &str) -> Result<Option<MailingRecord>, StoreError> {
        sqlx::query("SELECT * FROM mailings WHERE id = ?")
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
impl OccurrenceStore for SqliteStore {
    async fn start_occurrence(&self, o: &NewOccurrence) -> Result<OccurrenceStart, StoreError> {
        let (_writing, mut tx) = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO occurrences (mailing_id, key, fired_at, evaluation_date, state) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&o.mailing_id)
        .bind(&o.key)
        .bind(millis(o.fired_at))
        .bind(o.evaluation_date.to_string())
        .bind(o.state.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            == 1;
        let row = sqlx::query("SELECT * FROM occurrences WHERE key = ?")
            .bind(&o.key)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let record = occurrence_from_row(&row)?;
        Ok(if inserted {
            OccurrenceStart::Created(record)
        } else {
            OccurrenceStart::Existing(record)
        })
    }

    async fn transition_occurrence(
        &self,
        id: i64,
        from: &[OccurrenceState],
        to: OccurrenceState,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing.lock().await;
        let changed = sqlx::query(
            "UPDATE occurrences SET state = ? WHERE id = ? AND state IN (SELECT value FROM json_each(?))",
        )
        .bind(to.as_str())
        .bind(id)
        .bind(names(from, OccurrenceState::as_str)?)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn finish_occurrence(&self, id: i64) -> Result<bool, StoreError> {
        let _writing = self.writing.lock().await;
        // One look per status, each along its own partial index.
        let changed = sqlx::query(
            "UPDATE occurrences SET state = 'done' WHERE id = ?1 AND state = 'frozen'
             AND NOT EXISTS (SELECT 1 FROM deliveries WHERE occurrence_id = ?1 AND status = 'queued')
             AND NOT EXISTS (SELECT 1 FROM deliveries WHERE occurrence_id = ?1 AND status = 'standby')
             AND NOT EXISTS (SELECT 1 FROM deliveries WHERE occurrence_id = ?1 AND status = 'sending')",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn occurrences(
        &self,
        mailing_id: Option<&str>,
    ) -> Result<Vec<OccurrenceRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM occurrences WHERE ?1 IS NULL OR mailing_id = ?1 ORDER BY fired_at, id",
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
            "SELECT * FROM occurrences WHERE fired_at > ?1 AND fired_at < ?2 ORDER BY fired_at, id",
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
        // The write lock is held from here to the commit, so another caller (of this process
        // or another) waits for the commit and then finds the occurrence frozen. Ids are
        // given here, so that a delivery and its message share one.
        let writing = Arc::clone(&self.writing).lock_owned().await;
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db)?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM occurrences WHERE id = ?")
                .bind(occurrence_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if state.as_deref() != Some(OccurrenceState::Freezing.as_str()) {
            return Ok(None);
        }
        let first_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM messages")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        Ok(Some(Box::new(SqliteFreeze {
            tx,
            _writing: writing,
            occurrence_id,
            first_id,
            next_id: first_id,
            now: millis(now),
            keys: KeyOrder::default(),
        })))
    }
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn claim(
        &self,
        occurrence_id: i64,
        lease: &Lease,
        due: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let (_writing, mut tx) = self.write_tx().await?;
        let worker = worker_number(&mut tx, &self.workers, &lease.worker, true)
            .await?
            .unwrap_or(-1);
        let claimed = claim_in(&mut tx, occurrence_id, lease, worker, due, limit).await?;
        tx.commit().await.map_err(db)?;
        remember_worker(&self.workers, &lease.worker, worker);
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
        let (_writing, mut tx) = self.write_tx().await?;
        let worker = match fence {
            Fence::Holder(name) => worker_number(&mut tx, &self.workers, name, false).await?,
            Fence::Expired => None,
        };
        let recorded = record_in(&mut tx, occurrence_id, fence, worker, results, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(recorded)
    }

    async fn record_and_claim(
        &self,
        occurrence_id: i64,
        lease: &Lease,
        results: &[Settle],
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Recorded, Vec<Delivery>), StoreError> {
        // One transaction: the pages the results touch are mostly those the next batch
        // touches, so the WAL gets them once.
        let (_writing, mut tx) = self.write_tx().await?;
        let worker = worker_number(&mut tx, &self.workers, &lease.worker, true)
            .await?
            .unwrap_or(-1);
        let recorded = record_in(
            &mut tx,
            occurrence_id,
            Fence::Holder(&lease.worker),
            Some(worker),
            results,
            now,
        )
        .await?;
        let claimed = claim_in(&mut tx, occurrence_id, lease, worker, now, limit).await?;
        tx.commit().await.map_err(db)?;
        remember_worker(&self.workers, &lease.worker, worker);
        Ok((recorded, claimed))
    }

    async fn renew(&self, occurrence_id: i64, lease: &Lease) -> Result<u64, StoreError> {
        let (_writing, mut tx) = self.write_tx().await?;
        let Some(worker) = worker_number(&mut tx, &self.workers, &lease.worker, false).await?
        else {
            return Ok(0);
        };
        let renewed = sqlx::query(
            "UPDATE deliveries SET lease_until = ?1 WHERE occurrence_id = ?2 AND status = 'sending' AND worker = ?3",
        )
        .bind(deadline(lease))
        .bind(occurrence_id)
        .bind(worker)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(renewed)
    }

    async fn expired(
        &self,
        occurrence_id: i64,
        limit_rows: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.id
             WHERE d.occurrence_id = ? AND d.status = 'sending' AND d.lease_until < ? ORDER BY d.id LIMIT ?"
        )))
        .bind(occurrence_id)
        .bind(wall_millis())
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
        let (_writing, mut tx) = self.write_tx().await?;
        sqlx::query(
            "UPDATE deliveries SET status = 'standby', error = NULL, held_by = NULL, updated_at = ?1
             WHERE occurrence_id = ?2 AND status = 'skipped'
             AND held_by IN (SELECT id FROM deliveries WHERE occurrence_id = ?2 AND status = 'unknown')",
        )
        .bind(millis(now))
        .bind(occurrence_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let reopened = sqlx::query(
            "UPDATE deliveries SET status = 'queued', error = NULL, updated_at = ? WHERE occurrence_id = ? AND status = 'unknown'",
        )
        .bind(millis(now))
        .bind(occurrence_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if reopened > 0 {
            sqlx::query("UPDATE occurrences SET state = 'frozen' WHERE id = ? AND state = 'done'")
                .bind(occurrence_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(reopened)
    }

    async fn sending(&self, occurrence_id: i64) -> Result<u64, StoreError> {
        // Only sending rows are in the lease index.
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE occurrence_id = ? AND status = 'sending'",
        )
        .bind(occurrence_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn next_due(&self, occurrence_id: i64) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT not_before FROM deliveries WHERE occurrence_id = ? AND status = 'queued' ORDER BY not_before LIMIT 1",
        )
        .bind(occurrence_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|row| Ok(from_millis(row.try_get(0).map_err(db)?)))
            .transpose()
    }

    async fn counts(&self, occurrence_id: i64) -> Result<StatusCounts, StoreError> {
        // One pass with a sum per status: GROUP BY would sort every row of the occurrence
        // first, in memory as large as the occurrence.
        let sums: Vec<String> = DeliveryStatus::ALL
            .iter()
            .map(|s| format!("COALESCE(SUM(status = '{}'), 0)", s.as_str()))
            .collect();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM deliveries WHERE occurrence_id = ?",
            sums.join(", ")
        )))
        .bind(occurrence_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let mut counts = StatusCounts::default();
        for (i, status) in DeliveryStatus::ALL.iter().enumerate() {
            let n: i64 = row.try_get(i).map_err(db)?;
            counts.add(*status, u64::try_from(n).unwrap_or_default());
        }
        Ok(counts)
    }

    async fn deliveries(
        &self,
        occurrence_id: i64,
        after_id: i64,
        limit_rows: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        crate::history::page(
            &self.pool,
            occurrence_id,
            &rassylka_store::JournalFilter::default(),
            after_id,
            limit_rows,
        )
        .await
    }
}
