//! What the history and journal views read: an occurrence's rows counted by channel, status
//! and cost, and journal pages filtered by status and recipient.

use chrono::{DateTime, Utc};
use rassylka_model::ChannelKind;
use rust_decimal::Decimal;

use crate::DeliveryStatus;

/// How many rows of one occurrence share a channel, a status and a cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallyRow {
    /// The channel; `None` for a recipient-level row (no consent, unsubscribed, unreadable).
    pub channel: Option<ChannelKind>,
    /// Their status.
    pub status: DeliveryStatus,
    /// Their cost, as journaled.
    pub cost: Option<Decimal>,
    /// How many rows.
    pub rows: u64,
}

/// One occurrence counted: distinct recipients, and its rows grouped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Distinct recipients among its rows.
    pub recipients: u64,
    /// Its rows by channel, status and cost, in no particular order.
    pub rows: Vec<TallyRow>,
}

/// The few columns of a journal row that attribution reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRow {
    /// Row id.
    pub id: i64,
    /// The recipient.
    pub recipient_id: String,
    /// When it was sent (sent rows only).
    pub sent_at: Option<DateTime<Utc>>,
    /// Its error or reason (a skipped row's reason).
    pub reason: Option<String>,
    /// What it cost, as journaled.
    pub cost: Option<Decimal>,
}

/// Which journal rows to read; an empty filter reads them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalFilter {
    /// Only rows of this status.
    pub status: Option<DeliveryStatus>,
    /// Only rows of this recipient.
    pub recipient_id: Option<String>,
}
