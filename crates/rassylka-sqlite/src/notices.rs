//! Refused service notices on [`SqliteStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rassylka_store::{NoticeRefusal, NoticeStore, StoreError};
use sqlx::Row;

use crate::SqliteStore;
use crate::rows::{db, from_millis, millis};

#[async_trait]
impl NoticeStore for SqliteStore {
    async fn record_refusal(&self, refusal: &NoticeRefusal) -> Result<(), StoreError> {
        let _writing = self.writing.lock().await;
        sqlx::query(
            "INSERT INTO notice_refusals (event_id, event, recipient_id, user, role, department, reason, at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&refusal.event_id)
        .bind(&refusal.event)
        .bind(&refusal.recipient_id)
        .bind(&refusal.user)
        .bind(&refusal.role)
        .bind(refusal.department.as_deref())
        .bind(&refusal.reason)
        .bind(millis(refusal.at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn refusals(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<NoticeRefusal>, StoreError> {
        sqlx::query("SELECT * FROM notice_refusals WHERE at >= ? ORDER BY at, id")
            .bind(since.map_or(i64::MIN, millis))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|row| {
                Ok(NoticeRefusal {
                    event_id: row.try_get("event_id").map_err(db)?,
                    event: row.try_get("event").map_err(db)?,
                    recipient_id: row.try_get("recipient_id").map_err(db)?,
                    user: row.try_get("user").map_err(db)?,
                    role: row.try_get("role").map_err(db)?,
                    department: row.try_get("department").map_err(db)?,
                    reason: row.try_get("reason").map_err(db)?,
                    at: from_millis(row.try_get("at").map_err(db)?),
                })
            })
            .collect()
    }
}
