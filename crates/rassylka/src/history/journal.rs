//! The journal view: one row per delivery of a mailing, filtered by occurrence, status and
//! recipient, read a page at a time so that millions of rows never sit in memory.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::DateTime;
use chrono_tz::Tz;
use rassylka_model::ChannelKind;
use rassylka_store::{Delivery, DeliveryStatus, JournalFilter, OccurrenceRecord, Store};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::money;
use crate::{DispatchError, Mailing, Rassylka};

/// Rows per page.
const PAGE: usize = 2_000;

/// Which journal rows [`Rassylka::journal_rows`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalQuery {
    /// The mailing.
    pub mailing_id: String,
    /// Only this occurrence (its key).
    pub occurrence: Option<String>,
    /// Only rows of this status.
    pub status: Option<DeliveryStatus>,
    /// Only this recipient's rows.
    pub recipient_id: Option<String>,
}

/// One delivery as the journal view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalRow {
    /// Unique per occurrence, recipient, channel (and booking).
    pub delivery_key: String,
    /// The occurrence's key.
    pub occurrence: String,
    /// The recipient.
    pub recipient_id: String,
    /// The channel; `None` for a recipient-level row.
    pub channel: Option<ChannelKind>,
    /// The booking it is about.
    pub booking: Option<String>,
    /// Where it went.
    pub address: Option<String>,
    /// Its status.
    pub status: DeliveryStatus,
    /// Why it was skipped or failed, or what is unknown.
    pub reason: Option<String>,
    /// The class of its last error.
    pub error_class: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The provider's id for the message.
    pub provider_message_id: Option<String>,
    /// Billing units (SMS segments).
    pub units: u32,
    /// What was spent: its price when sent, zero otherwise.
    pub cost: Decimal,
    /// When the provider accepted it.
    pub sent_at: Option<DateTime<Tz>>,
    /// When the row last changed.
    pub updated_at: DateTime<Tz>,
}

impl JournalRow {
    fn new(d: Delivery, occurrence: &str, zone: Tz) -> JournalRow {
        let sent = d.planned.status == DeliveryStatus::Sent;
        JournalRow {
            delivery_key: d.planned.delivery_key,
            occurrence: occurrence.to_owned(),
            recipient_id: d.planned.recipient_id,
            channel: d.planned.channel,
            booking: d.planned.booking_id,
            address: d.planned.address,
            status: d.planned.status,
            reason: d.planned.error,
            error_class: d.error_class,
            attempts: d.attempts,
            provider_message_id: d.provider_id,
            units: d.planned.units,
            cost: if sent {
                d.planned.cost.unwrap_or_default()
            } else {
                Decimal::ZERO
            },
            sent_at: d.sent_at.map(|t| t.with_timezone(&zone)),
            updated_at: d.updated_at.with_timezone(&zone),
        }
    }

    /// The row as SPEC §8's `journal` line, fields in its order.
    pub fn to_json(&self) -> Value {
        json!({
            "delivery_key": self.delivery_key, "occurrence": self.occurrence,
            "recipient_id": self.recipient_id, "channel": self.channel.map(ChannelKind::as_str),
            "booking": self.booking, "address": self.address, "status": self.status.as_str(),
            "reason": self.reason, "error_class": self.error_class, "attempts": self.attempts,
            "provider_message_id": self.provider_message_id, "units": self.units,
            "cost": money(self.cost), "sent_at": self.sent_at.map(|t| t.to_rfc3339()),
            "updated_at": self.updated_at.to_rfc3339(),
        })
    }
}

/// The pages of a journal query, occurrence after occurrence in the order they fired.
pub struct JournalPages {
    store: Arc<dyn Store>,
    zone: Tz,
    filter: JournalFilter,
    occurrences: VecDeque<OccurrenceRecord>,
    after_id: i64,
}

impl std::fmt::Debug for JournalPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalPages")
            .field("zone", &self.zone)
            .field("filter", &self.filter)
            .field("occurrences_left", &self.occurrences.len())
            .finish_non_exhaustive()
    }
}

impl JournalPages {
    /// The mailing's zone, in which the rows' times are given.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The next page of rows, or `None` after the last.
    ///
    /// # Errors
    /// [`DispatchError::Store`] when the journal cannot be read.
    pub async fn next_page(&mut self) -> Result<Option<Vec<JournalRow>>, DispatchError> {
        while let Some(occurrence) = self.occurrences.front() {
            let rows = self
                .store
                .journal(occurrence.id, &self.filter, self.after_id, PAGE)
                .await?;
            let Some(last) = rows.last() else {
                self.occurrences.pop_front();
                self.after_id = 0;
                continue;
            };
            self.after_id = last.id;
            let key = occurrence.key.clone();
            return Ok(Some(
                rows.into_iter()
                    .map(|d| JournalRow::new(d, &key, self.zone))
                    .collect(),
            ));
        }
        Ok(None)
    }
}

impl Rassylka {
    /// The journal rows of a mailing that pass `query`, page by page.
    ///
    /// # Errors
    /// [`DispatchError::UnknownMailing`]; [`DispatchError::Refused`] for an occurrence the
    /// mailing does not have; [`DispatchError::Store`] when the journal cannot be read.
    pub async fn journal_rows(&self, query: &JournalQuery) -> Result<JournalPages, DispatchError> {
        let record = self.record(&query.mailing_id).await?;
        let zone = Mailing::from_json(&record.json)?.zone();
        let mut occurrences = self.store().occurrences(Some(&query.mailing_id)).await?;
        occurrences.sort_by(|a, b| a.fired_at.cmp(&b.fired_at).then(a.id.cmp(&b.id)));
        if let Some(key) = &query.occurrence {
            occurrences.retain(|o| &o.key == key);
            if occurrences.is_empty() {
                return Err(DispatchError::Refused(format!(
                    "mailing `{}` has no occurrence `{key}`",
                    query.mailing_id
                )));
            }
        }
        Ok(JournalPages {
            store: Arc::clone(self.store()),
            zone,
            filter: JournalFilter {
                status: query.status,
                recipient_id: query.recipient_id.clone(),
            },
            occurrences: occurrences.into(),
            after_id: 0,
        })
    }
}
