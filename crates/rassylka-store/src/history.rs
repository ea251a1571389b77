//! What the history and journal views read: an occurrence's rows counted by channel, status
//! and cost, and journal pages filtered by status and recipient.

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

/// Which journal rows to read; an empty filter reads them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalFilter {
    /// Only rows of this status.
    pub status: Option<DeliveryStatus>,
    /// Only rows of this recipient.
    pub recipient_id: Option<String>,
}
