//! The history reads on [`PgStore`]: tallies by `GROUP BY`, filtered journal pages.

use std::str::FromStr;

use async_trait::async_trait;
use rassylka_store::{
    Delivery, DeliveryStatus, HistoryStore, JournalFilter, OutcomeRow, StoreError, Tally, TallyRow,
};
use rust_decimal::Decimal;
use sqlx::Row;

use crate::rows::{channel_from, delivery_from_row, from_millis};
use crate::{PgStore, db};

#[async_trait]
impl HistoryStore for PgStore {
    async fn tally(&self, occurrence_id: i64) -> Result<Tally, StoreError> {
        let recipients: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT m.recipient_id) FROM deliveries d JOIN messages m ON m.id = d.id
             WHERE d.occurrence_id = $1",
        )
        .bind(occurrence_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let rows = sqlx::query(
            "SELECT channel, status, cost, count(*) AS n FROM delivery_rows WHERE occurrence_id = $1
             GROUP BY channel, status, cost",
        )
        .bind(occurrence_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(|row| {
            let cost: Option<String> = row.try_get("cost").map_err(db)?;
            let n: i64 = row.try_get("n").map_err(db)?;
            let status: String = row.try_get("status").map_err(db)?;
            Ok(TallyRow {
                channel: channel_from(row.try_get("channel").map_err(db)?)?,
                status: DeliveryStatus::from_str(&status)?,
                cost: cost
                    .map(|c| {
                        Decimal::from_str(&c).map_err(|e| {
                            StoreError::invalid(format!("a journaled cost `{c}`: {e}"))
                        })
                    })
                    .transpose()?,
                rows: u64::try_from(n).unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Tally {
            recipients: u64::try_from(recipients).unwrap_or_default(),
            rows,
        })
    }

    async fn journal(
        &self,
        occurrence_id: i64,
        filter: &JournalFilter,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        sqlx::query(
            "SELECT d.*, m.* FROM delivery_rows d JOIN messages m ON m.id = d.id
             WHERE d.occurrence_id = $1 AND d.id > $2
             AND ($3::text IS NULL OR d.status = $3) AND ($4::text IS NULL OR m.recipient_id = $4)
             ORDER BY d.id LIMIT $5",
        )
        .bind(occurrence_id)
        .bind(after_id)
        .bind(filter.status.map(DeliveryStatus::as_str))
        .bind(filter.recipient_id.as_deref())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(delivery_from_row)
        .collect()
    }

    async fn outcomes(
        &self,
        occurrence_id: i64,
        status: DeliveryStatus,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<OutcomeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.id, m.recipient_id, d.sent_at, d.error, d.cost
             FROM delivery_rows d JOIN messages m ON m.id = d.id
             WHERE d.occurrence_id = $1 AND d.id > $2 AND d.status = $3
             ORDER BY d.id LIMIT $4",
        )
        .bind(occurrence_id)
        .bind(after_id)
        .bind(status.as_str())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let sent_at: Option<i64> = row.try_get("sent_at").map_err(db)?;
                Ok(OutcomeRow {
                    id: row.try_get("id").map_err(db)?,
                    recipient_id: row.try_get("recipient_id").map_err(db)?,
                    sent_at: sent_at.map(from_millis),
                    reason: row.try_get("error").map_err(db)?,
                    cost: row
                        .try_get::<Option<String>, _>("cost")
                        .map_err(db)?
                        .and_then(|c| Decimal::from_str(&c).ok()),
                })
            })
            .collect()
    }
}
