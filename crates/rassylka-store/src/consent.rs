//! What the consent role keeps: unsubscribes, as records.

use chrono::{DateTime, Utc};
use rassylka_model::ChannelKind;

use crate::DeliveryStatus;

/// A recipient's unsubscribe: from which mailing and channel, when, and how it came
/// (`link`, `one_click` or `mailto`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Who.
    pub recipient_id: String,
    /// The mailing whose link was used.
    pub mailing_id: String,
    /// The channel that carried the link, when the journal knows it.
    pub channel: Option<ChannelKind>,
    /// When.
    pub at: DateTime<Utc>,
    /// How: `link`, `one_click` or `mailto`.
    pub source: String,
}

/// An address a mailing's delivery to one recipient used, and how that delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachedAddress {
    /// The channel.
    pub channel: ChannelKind,
    /// The address.
    pub address: String,
    /// The delivery's status.
    pub status: DeliveryStatus,
}
