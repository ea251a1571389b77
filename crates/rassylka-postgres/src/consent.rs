//! Unsubscribes, kept secrets and the counts behind caps and limits on [`PgStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rassylka_model::ChannelKind;
use std::str::FromStr;

use rassylka_store::{ConsentStore, DeliveryStatus, ReachedAddress, StoreError, Unsubscribe};
use sqlx::Row;

use crate::batches::HELD_BY_BATCH;
use crate::rows::{channel_from, from_millis, millis};
use crate::{PgStore, db};

#[async_trait]
impl ConsentStore for PgStore {
    async fn keep_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        // Inserted unless there, then read: two workers racing both read the one kept.
        sqlx::query("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        self.kept_secret(name)
            .await?
            .ok_or_else(|| StoreError::invalid("the journal kept no secret it was just given"))
    }

    async fn kept_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn record_unsubscribe(
        &self,
        unsubscribe: &Unsubscribe,
    ) -> Result<Option<Unsubscribe>, StoreError> {
        let done = sqlx::query(
            "INSERT INTO unsubscribes (recipient_id, mailing_id, channel, at, source)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (recipient_id) DO NOTHING",
        )
        .bind(&unsubscribe.recipient_id)
        .bind(&unsubscribe.mailing_id)
        .bind(unsubscribe.channel.map(ChannelKind::as_str))
        .bind(millis(unsubscribe.at))
        .bind(&unsubscribe.source)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 1 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT * FROM unsubscribes WHERE recipient_id = $1")
            .bind(&unsubscribe.recipient_id)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(Some(unsubscribe_from(&row)?))
    }

    async fn resubscribe(&self, recipient_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM unsubscribes WHERE recipient_id = $1")
            .bind(recipient_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn unsubscribes(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Unsubscribe>, StoreError> {
        sqlx::query("SELECT * FROM unsubscribes WHERE at >= $1 ORDER BY at, recipient_id")
            .bind(since.map_or(i64::MIN, millis))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(unsubscribe_from)
            .collect()
    }

    async fn unsubscribed_among(&self, recipient_ids: &[&str]) -> Result<Vec<String>, StoreError> {
        if recipient_ids.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT recipient_id FROM unsubscribes WHERE recipient_id = ANY($1)")
            .bind(recipient_ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    async fn reached_in(
        &self,
        occurrence_ids: &[i64],
        recipient_ids: &[&str],
    ) -> Result<Vec<(String, u32)>, StoreError> {
        if occurrence_ids.is_empty() || recipient_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT m.recipient_id, COUNT(DISTINCT d.occurrence_id) AS reached
             FROM messages m JOIN deliveries d ON d.id = m.id
             WHERE m.recipient_id = ANY($1) AND d.occurrence_id = ANY($2)
               AND d.status NOT IN ('skipped', 'failed')
             GROUP BY m.recipient_id",
        )
        .bind(recipient_ids)
        .bind(occurrence_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let reached: i64 = row.try_get("reached").map_err(db)?;
                Ok((
                    row.try_get("recipient_id").map_err(db)?,
                    u32::try_from(reached).unwrap_or(u32::MAX),
                ))
            })
            .collect()
    }

    async fn sends_since_both(
        &self,
        channel: ChannelKind,
        first: DateTime<Utc>,
        second: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        // One scan from the earlier instant; each count keeps the rows from its own.
        let (first_sends, second_sends): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FILTER (WHERE at >= $2), count(*) FILTER (WHERE at >= $3) FROM (
                 SELECT CASE WHEN status = 'sent' THEN sent_at ELSE updated_at END AS at
                 FROM deliveries WHERE channel = $1
                   AND ((status = 'sent' AND sent_at >= $4)
                     OR (status IN ('sending', 'unknown') AND updated_at >= $4))
                 UNION ALL
                 -- Fresh rows in flight count from their batch's claim.
                 SELECT b.claimed_at FROM claim_batches b JOIN deliveries d ON {HELD_BY_BATCH}
                 WHERE d.channel = $1 AND b.claimed_at >= $4) s"
        )))
        .bind(channel.as_str())
        .bind(millis(first))
        .bind(millis(second))
        .bind(millis(first.min(second)))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok((
            u64::try_from(first_sends).unwrap_or_default(),
            u64::try_from(second_sends).unwrap_or_default(),
        ))
    }

    async fn addresses(
        &self,
        mailing_id: &str,
        recipient_id: &str,
    ) -> Result<Vec<ReachedAddress>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.channel, d.status, m.address
             FROM messages m
             JOIN delivery_rows d ON d.id = m.id
             JOIN occurrences o ON o.id = d.occurrence_id
             WHERE m.recipient_id = $1 AND o.mailing_id = $2
               AND d.channel IS NOT NULL AND m.address IS NOT NULL
             ORDER BY d.id DESC",
        )
        .bind(recipient_id)
        .bind(mailing_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        // The query keeps rows with a channel only.
        rows.iter()
            .map(|row| {
                let channel = channel_from(row.try_get("channel").map_err(db)?)?
                    .ok_or_else(|| StoreError::invalid("a reached row without a channel"))?;
                Ok(ReachedAddress {
                    channel,
                    address: row.try_get("address").map_err(db)?,
                    status: DeliveryStatus::from_str(row.try_get("status").map_err(db)?)?,
                })
            })
            .collect()
    }
}

fn unsubscribe_from(row: &sqlx::postgres::PgRow) -> Result<Unsubscribe, StoreError> {
    Ok(Unsubscribe {
        recipient_id: row.try_get("recipient_id").map_err(db)?,
        mailing_id: row.try_get("mailing_id").map_err(db)?,
        channel: channel_from(row.try_get("channel").map_err(db)?)?,
        at: from_millis(row.try_get("at").map_err(db)?),
        source: row.try_get("source").map_err(db)?,
    })
}
