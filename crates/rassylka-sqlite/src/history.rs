//! The history reads on [`SqliteStore`]: tallies by `GROUP BY`, filtered journal pages.

use std::str::FromStr;

use async_trait::async_trait;
use rassylka_store::{
    Delivery, DeliveryStatus, HistoryStore, JournalFilter, OutcomeRow, StoreError, Tally, TallyRow,
};
use rust_decimal::Decimal;
use sqlx::Row;

use crate::SqliteStore;
use crate::rows::{MessageColumn, channel_from, db, from_json, from_millis, invalid};

#[async_trait]
impl HistoryStore for SqliteStore {
    async fn tally(&self, occurrence_id: i64) -> Result<Tally, StoreError> {
        let recipients: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT m.recipient_id) FROM deliveries d JOIN messages m ON m.id = d.id
             WHERE d.occurrence_id = ?",
        )
        .bind(occurrence_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let rows = sqlx::query(
            "SELECT channel, status, cost, count(*) AS n FROM deliveries WHERE occurrence_id = ?
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
            Ok(TallyRow {
                channel: channel_from(row.try_get("channel").map_err(db)?)?,
                status: DeliveryStatus::from_str(row.try_get("status").map_err(db)?)?,
                cost: cost
                    .map(|c| Decimal::from_str(&c).map_err(invalid))
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
        page(&self.pool, occurrence_id, filter, after_id, limit).await
    }

    async fn outcomes(
        &self,
        occurrence_id: i64,
        status: DeliveryStatus,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<OutcomeRow>, StoreError> {
        // One JSON value per page, as in `page`: rows cross from SQLite's thread at once.
        let batch: String = sqlx::query_scalar(
            "SELECT '[' || COALESCE(group_concat('[' || d.id || ',' || json_quote(m.recipient_id)
                    || ',' || json_quote(d.sent_at) || ',' || json_quote(d.error) || ','
                    || json_quote(d.cost) || ']', ','), '') || ']'
             FROM (SELECT d.id FROM deliveries d
                   WHERE d.occurrence_id = ?1 AND d.id > ?2 AND d.status = ?3
                   ORDER BY d.id LIMIT ?4) q
             JOIN deliveries d ON d.id = q.id JOIN messages m ON m.id = q.id",
        )
        .bind(occurrence_id)
        .bind(after_id)
        .bind(status.as_str())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        type Row = (i64, String, Option<i64>, Option<String>, Option<String>);
        let rows: Vec<Row> = from_json(&batch)?;
        let mut rows: Vec<OutcomeRow> = rows
            .into_iter()
            .map(|(id, recipient_id, sent_at, reason, cost)| OutcomeRow {
                id,
                recipient_id,
                sent_at: sent_at.map(from_millis),
                reason,
                cost: cost.and_then(|c| Decimal::from_str(&c).ok()),
            })
            .collect();
        rows.sort_unstable_by_key(|r| r.id);
        Ok(rows)
    }
}

/// One journal row as the page's JSON array holds it, in [`page`]'s column order.
#[derive(serde::Deserialize)]
struct PageRow {
    id: i64,
    channel: Option<String>,
    group_key: String,
    rank: i64,
    status: String,
    not_before: i64,
    attempts: i64,
    cost: Option<String>,
    provider_id: Option<String>,
    error_class: Option<String>,
    error: Option<String>,
    updated_at: i64,
    sent_at: Option<i64>,
    worker: Option<String>,
    delivery_key: String,
    recipient_id: String,
    message: MessageColumn,
}

/// Up to `limit` rows of an occurrence after `after_id` that pass `filter`, in row order.
///
/// The page comes back as one JSON value put together by SQLite: rows cross from SQLite's
/// thread one at a time otherwise, and that hand-off cost more than the query (reading a
/// million rows took 9 s row by row).
pub(crate) async fn page(
    pool: &sqlx::SqlitePool,
    occurrence_id: i64,
    filter: &JournalFilter,
    after_id: i64,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let batch: String = sqlx::query_scalar(
        "SELECT '[' || COALESCE(group_concat('[' || d.id || ',' || json_quote(d.channel) || ','
                || json_quote(d.group_key) || ',' || d.rank || ',' || json_quote(d.status) || ','
                || d.not_before || ',' || d.attempts || ',' || json_quote(d.cost) || ','
                || json_quote(d.provider_id) || ',' || json_quote(d.error_class) || ','
                || json_quote(d.error) || ',' || d.updated_at || ',' || json_quote(d.sent_at) || ','
                || json_quote((SELECT w.name FROM workers w WHERE w.id = d.worker)) || ','
                || json_quote(m.delivery_key) || ',' || json_quote(m.recipient_id) || ','
                || m.message || ']', ','), '') || ']'
         FROM (SELECT d.id FROM deliveries d JOIN messages m ON m.id = d.id
               WHERE d.occurrence_id = ?1 AND d.id > ?2
               AND (?3 IS NULL OR d.status = ?3) AND (?4 IS NULL OR m.recipient_id = ?4)
               ORDER BY d.id LIMIT ?5) q
         JOIN deliveries d ON d.id = q.id JOIN messages m ON m.id = q.id",
    )
    .bind(occurrence_id)
    .bind(after_id)
    .bind(filter.status.map(DeliveryStatus::as_str))
    .bind(filter.recipient_id.as_deref())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_one(pool)
    .await
    .map_err(db)?;
    let rows: Vec<PageRow> = from_json(&batch)?;
    let mut page = rows
        .into_iter()
        .map(|r| {
            let status = DeliveryStatus::from_str(&r.status)?;
            let planned = r.message.planned(
                r.delivery_key,
                r.recipient_id,
                r.channel,
                r.group_key,
                r.rank,
                status,
            )?;
            Ok(Delivery {
                id: r.id,
                occurrence_id,
                planned: rassylka_store::NewDelivery {
                    not_before: (r.not_before != 0).then(|| from_millis(r.not_before)),
                    cost: r.cost.and_then(|c| Decimal::from_str(&c).ok()),
                    error: r.error,
                    ..planned
                },
                attempts: u32::try_from(r.attempts).unwrap_or_default(),
                provider_id: r.provider_id,
                error_class: r.error_class,
                updated_at: from_millis(r.updated_at),
                sent_at: r.sent_at.map(from_millis),
                worker: r.worker,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    page.sort_unstable_by_key(|d| d.id);
    Ok(page)
}
