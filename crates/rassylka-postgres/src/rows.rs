//! Rows as the journal stores them, and back.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rassylka_model::ChannelKind;
use rassylka_store::{
    Delivery, DeliveryStatus, MailingRecord, MailingState, NewDelivery, OccurrenceRecord,
    OccurrenceState, StoreError,
};
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::db;

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Stored text this version cannot read.
fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::invalid(format!("the journal holds {e}"))
}

pub(crate) fn mailing_from_row(row: &PgRow) -> Result<MailingRecord, StoreError> {
    Ok(MailingRecord {
        id: row.try_get("id").map_err(db)?,
        json: row.try_get("json").map_err(db)?,
        state: MailingState::from_str(row.try_get("state").map_err(db)?)?,
        version: u32::try_from(row.try_get::<i32, _>("version").map_err(db)?).unwrap_or(1),
        checked_at: row
            .try_get::<Option<i64>, _>("checked_at")
            .map_err(db)?
            .map(from_millis),
        paused_until: row
            .try_get::<Option<i64>, _>("paused_until")
            .map_err(db)?
            .map(from_millis),
        reason: row.try_get("reason").map_err(db)?,
    })
}

pub(crate) fn occurrence_from_row(row: &PgRow) -> Result<OccurrenceRecord, StoreError> {
    let date: String = row.try_get("evaluation_date").map_err(db)?;
    Ok(OccurrenceRecord {
        id: row.try_get("id").map_err(db)?,
        mailing_id: row.try_get("mailing_id").map_err(db)?,
        key: row.try_get("key").map_err(db)?,
        fired_at: from_millis(row.try_get("fired_at").map_err(db)?),
        evaluation_date: NaiveDate::from_str(&date).map_err(invalid)?,
        state: OccurrenceState::from_str(row.try_get("state").map_err(db)?)?,
    })
}

pub(crate) fn channel_from(text: Option<String>) -> Result<Option<ChannelKind>, StoreError> {
    text.map(|t| ChannelKind::from_str(&t).map_err(invalid))
        .transpose()
}

/// A whole delivery row (`SELECT *` or `RETURNING *`).
pub(crate) fn delivery_from_row(row: &PgRow) -> Result<Delivery, StoreError> {
    let get_text = |name: &str| row.try_get::<Option<String>, _>(name).map_err(db);
    let not_before: i64 = row.try_get("not_before").map_err(db)?;
    let cost = get_text("cost")?;
    Ok(Delivery {
        id: row.try_get("id").map_err(db)?,
        occurrence_id: row.try_get("occurrence_id").map_err(db)?,
        planned: NewDelivery {
            delivery_key: row.try_get("delivery_key").map_err(db)?,
            recipient_id: row.try_get("recipient_id").map_err(db)?,
            channel: channel_from(get_text("channel")?)?,
            address: get_text("address")?,
            booking_id: get_text("booking_id")?,
            group_key: row.try_get("group_key").map_err(db)?,
            rank: u32::try_from(row.try_get::<i32, _>("rank").map_err(db)?).unwrap_or_default(),
            status: DeliveryStatus::from_str(row.try_get("status").map_err(db)?)?,
            not_before: (not_before != 0).then(|| from_millis(not_before)),
            subject: get_text("subject")?,
            text: get_text("text")?,
            html: get_text("html")?,
            image: get_text("image")?,
            units: u32::try_from(row.try_get::<i32, _>("units").map_err(db)?).unwrap_or_default(),
            cost: cost.and_then(|c| Decimal::from_str(&c).ok()),
            error: get_text("error")?,
        },
        attempts: u32::try_from(row.try_get::<i32, _>("attempts").map_err(db)?).unwrap_or_default(),
        provider_id: get_text("provider_id")?,
        error_class: get_text("error_class")?,
        updated_at: from_millis(row.try_get("updated_at").map_err(db)?),
        sent_at: row
            .try_get::<Option<i64>, _>("sent_at")
            .map_err(db)?
            .map(from_millis),
        worker: get_text("worker")?,
    })
}
