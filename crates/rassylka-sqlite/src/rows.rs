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
use sqlx::sqlite::SqliteRow;

pub(crate) use crate::db;

/// Stored text this version cannot read.
pub(crate) fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::invalid(format!("the journal holds {e}"))
}

/// Milliseconds of the wall clock: lease deadlines are kept on it, never on the dispatcher's
/// «now».
pub(crate) fn wall_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(crate) fn mailing_from_row(row: &SqliteRow) -> Result<MailingRecord, StoreError> {
    Ok(MailingRecord {
        id: row.try_get("id").map_err(db)?,
        json: row.try_get("json").map_err(db)?,
        state: MailingState::from_str(row.try_get("state").map_err(db)?)?,
        version: u32::try_from(row.try_get::<i64, _>("version").map_err(db)?).unwrap_or(1),
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

pub(crate) fn occurrence_from_row(row: &SqliteRow) -> Result<OccurrenceRecord, StoreError> {
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

/// Every column of a journal row, both tables joined (`d` deliveries, `m` messages).
pub(crate) const DELIVERY_COLUMNS: &str = "d.id, d.occurrence_id, d.channel, d.group_key, d.rank, d.status, d.not_before, d.attempts,
     d.cost, d.provider_id, d.error_class, d.error, d.updated_at, d.sent_at,
     (SELECT w.name FROM workers w WHERE w.id = d.worker) AS worker, m.delivery_key, m.recipient_id, m.message";

/// A value as JSON text for SQLite's JSON functions.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(invalid)
}

/// JSON text that SQLite put together.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(invalid)
}

/// The `message` column as written.
#[derive(serde::Serialize)]
pub(crate) struct MessageRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    booking_id: Option<&'a str>,
    units: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
}

impl<'a> MessageRef<'a> {
    pub(crate) fn of(d: &'a NewDelivery) -> Self {
        MessageRef {
            address: d.address.as_deref(),
            booking_id: d.booking_id.as_deref(),
            units: d.units,
            subject: d.subject.as_deref(),
            text: d.text.as_deref(),
            html: d.html.as_deref(),
            image: d.image.as_deref(),
        }
    }
}

/// The `message` column as read.
#[derive(serde::Deserialize)]
pub(crate) struct MessageColumn {
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    booking_id: Option<String>,
    #[serde(default)]
    units: u32,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    image: Option<String>,
}

impl MessageColumn {
    /// The planned delivery this message is of, with what its `deliveries` row says; the
    /// wait, cost and error are left empty.
    pub(crate) fn planned(
        self,
        delivery_key: String,
        recipient_id: String,
        channel: Option<String>,
        group_key: String,
        rank: i64,
        status: DeliveryStatus,
    ) -> Result<NewDelivery, StoreError> {
        Ok(NewDelivery {
            delivery_key,
            recipient_id,
            channel: channel_from(channel)?,
            address: self.address,
            booking_id: self.booking_id,
            group_key,
            rank: u32::try_from(rank).unwrap_or_default(),
            status,
            not_before: None,
            subject: self.subject,
            text: self.text,
            html: self.html,
            image: self.image,
            units: self.units,
            cost: None,
            error: None,
        })
    }
}

/// A whole journal row, read with [`DELIVERY_COLUMNS`].
pub(crate) fn delivery_from_row(row: &SqliteRow) -> Result<Delivery, StoreError> {
    let cost: Option<String> = row.try_get("cost").map_err(db)?;
    let not_before: i64 = row.try_get("not_before").map_err(db)?;
    let message: MessageColumn = from_json(row.try_get("message").map_err(db)?)?;
    Ok(Delivery {
        id: row.try_get("id").map_err(db)?,
        occurrence_id: row.try_get("occurrence_id").map_err(db)?,
        planned: NewDelivery {
            not_before: (not_before != 0).then(|| from_millis(not_before)),
            cost: cost.and_then(|c| Decimal::from_str(&c).ok()),
            error: row.try_get("error").map_err(db)?,
            ..message.planned(
                row.try_get("delivery_key").map_err(db)?,
                row.try_get("recipient_id").map_err(db)?,
                row.try_get("channel").map_err(db)?,
                row.try_get("group_key").map_err(db)?,
                row.try_get("rank").map_err(db)?,
                DeliveryStatus::from_str(row.try_get("status").map_err(db)?)?,
            )?
        },
        attempts: u32::try_from(row.try_get::<i64, _>("attempts").map_err(db)?).unwrap_or_default(),
        provider_id: row.try_get("provider_id").map_err(db)?,
        error_class: row.try_get("error_class").map_err(db)?,
        updated_at: from_millis(row.try_get("updated_at").map_err(db)?),
        sent_at: row
            .try_get::<Option<i64>, _>("sent_at")
            .map_err(db)?
            .map(from_millis),
        worker: row.try_get("worker").map_err(db)?,
    })
}
