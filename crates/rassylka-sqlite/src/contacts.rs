//! Contacts known gone and bonus accruals on [`SqliteStore`].

use async_trait::async_trait;
use rassylka_model::ChannelKind;
use rassylka_store::{AccrualStore, ContactStore, StoreError};
use sqlx::Row;

use crate::SqliteStore;
use crate::rows::{channel_from, db, to_json};
use crate::store::limit;

#[async_trait]
impl ContactStore for SqliteStore {
    async fn mark_unreachable(
        &self,
        recipient_id: &str,
        channel: ChannelKind,
        reason: &str,
    ) -> Result<(), StoreError> {
        let _writing = self.writing.lock().await;
        sqlx::query("INSERT INTO unreachable (recipient_id, channel, reason) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET reason = excluded.reason")
            .bind(recipient_id)
            .bind(channel.as_str())
            .bind(reason)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn unreachable_among(
        &self,
        recipient_ids: &[&str],
    ) -> Result<Vec<(String, ChannelKind)>, StoreError> {
        if recipient_ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids go in as one JSON array; each is looked up in the primary key.
        let rows = sqlx::query(
            "SELECT u.recipient_id, u.channel FROM json_each(?1) v JOIN unreachable u ON u.recipient_id = v.value",
        )
        .bind(to_json(recipient_ids)?)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let channel = channel_from(row.try_get("channel").map_err(db)?)?
                    .ok_or_else(|| StoreError::invalid("an unreachable row without a channel"))?;
                Ok((row.try_get("recipient_id").map_err(db)?, channel))
            })
            .collect()
    }
}

#[async_trait]
impl AccrualStore for SqliteStore {
    async fn accrued(
        &self,
        occurrence_id: i64,
        recipient_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if recipient_ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids go in as one JSON array: binding thousands of values one by one costs more
        // than the look-ups.
        sqlx::query_scalar(
            "SELECT value FROM json_each(?2)
             WHERE EXISTS (SELECT 1 FROM accruals a WHERE a.occurrence_id = ?1 AND a.recipient_id = value)",
        )
        .bind(occurrence_id)
        .bind(to_json(recipient_ids)?)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn finish_accruals(
        &self,
        occurrence_id: i64,
        recipient_ids: &[String],
    ) -> Result<(), StoreError> {
        if recipient_ids.is_empty() {
            return Ok(());
        }
        let _writing = self.writing.lock().await;
        sqlx::query(
            "INSERT INTO accruals (occurrence_id, recipient_id) SELECT ?1, value FROM json_each(?2)
             WHERE true ON CONFLICT DO NOTHING",
        )
        .bind(occurrence_id)
        .bind(to_json(recipient_ids)?)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn pending_accruals(
        &self,
        occurrence_id: i64,
        after_id: i64,
        limit_rows: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        // Keyset paging along the occurrence index: each page costs the rows it passes.
        let rows = sqlx::query(
            "SELECT d.id, m.recipient_id FROM deliveries d JOIN messages m ON m.id = d.id
             WHERE d.occurrence_id = ?1 AND d.status = 'sent' AND d.id > ?2
             AND NOT EXISTS (SELECT 1 FROM accruals a WHERE a.occurrence_id = ?1 AND a.recipient_id = m.recipient_id)
             ORDER BY d.id LIMIT ?3",
        )
        .bind(occurrence_id)
        .bind(after_id)
        .bind(limit(limit_rows))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("id").map_err(db)?,
                    row.try_get("recipient_id").map_err(db)?,
                ))
            })
            .collect()
    }
}
