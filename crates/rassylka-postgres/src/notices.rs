//! Refused service notices on [`PgStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rassylka_store::{NoticeRefusal, NoticeStore, StoreError};
use sqlx::Row;

use crate::rows::{from_millis, millis};
use crate::{PgStore, db};

#[async_trait]
impl NoticeStore for PgStore {
    async fn record_refusal(&self, refusal: &NoticeRefusal) -> Result<(), StoreError> {
        sqlx::query(
            r#"INSERT INTO notice_refusals (event_id, event, recipient_id, "user", role, department, reason, at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#,
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
        sqlx::query("SELECT * FROM notice_refusals WHERE at >= $1 ORDER BY at, id")
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
