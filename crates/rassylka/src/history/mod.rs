//! What happened (SPEC §7e, the ProBonus history): one row per occurrence with its totals,
//! journal rows filtered and read page by page, and copying a one-time mailing.

mod copy;
mod journal;
mod money;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use rassylka_model::{ChannelKind, MessageClass};
use rassylka_store::{DeliveryStatus, OccurrenceRecord, OccurrenceState};
use rust_decimal::Decimal;
use serde_json::{Value, json};

pub use journal::{JournalPages, JournalQuery, JournalRow};
pub(crate) use money::money;

use crate::{DispatchError, Mailing, MailingKind, Rassylka};

/// Which occurrences [`Rassylka::history`] lists; an empty query lists them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only occurrences on or after this local date (in their mailing's zone).
    pub from: Option<NaiveDate>,
    /// Only occurrences on or before this local date (inclusive).
    pub to: Option<NaiveDate>,
    /// Only mailings of this kind.
    pub kind: Option<MailingKind>,
    /// Only this mailing.
    pub mailing_id: Option<String>,
}

/// One channel's part of an occurrence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelTotals {
    /// Rows sent.
    pub sent: u64,
    /// Rows failed.
    pub failed: u64,
    /// Rows skipped (a standby channel not needed, a contact gone…).
    pub skipped: u64,
    /// What the sent rows cost.
    pub cost: Decimal,
}

/// One occurrence of a mailing, counted.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The mailing.
    pub mailing_id: String,
    /// Its name for people.
    pub name: String,
    /// One-time or periodic.
    pub kind: MailingKind,
    /// Advertising or service.
    pub class: MessageClass,
    /// The occurrence's key.
    pub occurrence: String,
    /// Its scheduled instant, in the mailing's zone.
    pub fired_at: DateTime<Tz>,
    /// Where it is.
    pub state: OccurrenceState,
    /// Distinct recipients in its journal.
    pub recipients: u64,
    /// Journal rows sent.
    pub sent: u64,
    /// Journal rows failed.
    pub failed: u64,
    /// Journal rows skipped, recipient-level skips (no consent, unsubscribed) among them.
    pub skipped: u64,
    /// Journal rows whose fate is unknown.
    pub unknown: u64,
    /// Journal rows not yet final: queued, standby, sending.
    pub queued: u64,
    /// What the sent rows cost.
    pub cost: Decimal,
    /// Per channel present in the journal; a recipient-level skip belongs to none.
    pub per_channel: BTreeMap<ChannelKind, ChannelTotals>,
}

impl HistoryRow {
    /// The row as SPEC §8's `history` line, fields in its order.
    pub fn to_json(&self) -> Value {
        let per_channel: serde_json::Map<String, Value> = self
            .per_channel
            .iter()
            .map(|(channel, t)| {
                let totals = json!({"sent": t.sent, "failed": t.failed, "skipped": t.skipped,
                    "cost": money(t.cost)});
                (channel.as_str().to_owned(), totals)
            })
            .collect();
        json!({
            "mailing_id": self.mailing_id, "name": self.name, "kind": self.kind.as_str(),
            "class": class_name(self.class), "occurrence": self.occurrence,
            "fired_at": self.fired_at.to_rfc3339(), "state": self.state.as_str(),
            "recipients": self.recipients, "sent": self.sent, "failed": self.failed,
            "skipped": self.skipped, "unknown": self.unknown, "queued": self.queued,
            "cost": money(self.cost), "per_channel": per_channel,
        })
    }
}

pub(crate) fn class_name(class: MessageClass) -> &'static str {
    match class {
        MessageClass::Advertising => "advertising",
        MessageClass::Service => "service",
    }
}

impl Rassylka {
    /// One row per occurrence, newest first, with totals per status and channel and the cost,
    /// counted by the journal (no occurrence is loaded into memory).
    ///
    /// # Errors
    /// [`DispatchError::Store`] when the journal cannot be read; [`DispatchError::InvalidMailing`]
    /// when a stored mailing no longer reads.
    pub async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryRow>, DispatchError> {
        let store = self.store();
        let mut occurrences = store.occurrences(query.mailing_id.as_deref()).await?;
        occurrences.sort_by(|a, b| b.fired_at.cmp(&a.fired_at).then(b.id.cmp(&a.id)));
        let mut mailings: BTreeMap<String, Mailing> = BTreeMap::new();
        let mut rows = Vec::new();
        for occurrence in occurrences {
            if !mailings.contains_key(&occurrence.mailing_id) {
                let record = self.record(&occurrence.mailing_id).await?;
                mailings.insert(
                    occurrence.mailing_id.clone(),
                    Mailing::from_json(&record.json)?,
                );
            }
            let Some(mailing) = mailings.get(&occurrence.mailing_id) else {
                continue;
            };
            let fired_at = occurrence.fired_at.with_timezone(&mailing.zone());
            let day = fired_at.date_naive();
            if query.kind.is_some_and(|k| k != mailing.kind)
                || query.from.is_some_and(|from| day < from)
                || query.to.is_some_and(|to| day > to)
            {
                continue;
            }
            rows.push(self.history_row(mailing, occurrence, fired_at).await?);
        }
        Ok(rows)
    }

    async fn history_row(
        &self,
        mailing: &Mailing,
        occurrence: OccurrenceRecord,
        fired_at: DateTime<Tz>,
    ) -> Result<HistoryRow, DispatchError> {
        let tally = self.store().tally(occurrence.id).await?;
        let mut row = HistoryRow {
            mailing_id: mailing.id.clone(),
            name: mailing.name.clone(),
            kind: mailing.kind,
            class: mailing.class,
            occurrence: occurrence.key,
            fired_at,
            state: occurrence.state,
            recipients: tally.recipients,
            sent: 0,
            failed: 0,
            skipped: 0,
            unknown: 0,
            queued: 0,
            cost: Decimal::ZERO,
            per_channel: BTreeMap::new(),
        };
        for group in tally.rows {
            let n = group.rows;
            let spent = match group.status {
                DeliveryStatus::Sent => group.cost.unwrap_or_default() * Decimal::from(n),
                _ => Decimal::ZERO,
            };
            match group.status {
                DeliveryStatus::Sent => row.sent += n,
                DeliveryStatus::Failed => row.failed += n,
                DeliveryStatus::Skipped => row.skipped += n,
                DeliveryStatus::Unknown => row.unknown += n,
                DeliveryStatus::Queued | DeliveryStatus::Standby | DeliveryStatus::Sending => {
                    row.queued += n;
                }
            }
            row.cost += spent;
            let Some(channel) = group.channel else {
                continue;
            };
            let totals = row.per_channel.entry(channel).or_default();
            match group.status {
                DeliveryStatus::Sent => totals.sent += n,
                DeliveryStatus::Failed => totals.failed += n,
                DeliveryStatus::Skipped => totals.skipped += n,
                _ => {}
            }
            totals.cost += spent;
        }
        Ok(row)
    }
}
