//! The journal: mailings, occurrences and one row per delivery. [`Store`] is the contract;
//! [`SqliteStore`] the embedded default.

mod sqlite;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rassylka_model::ChannelKind;
use rust_decimal::Decimal;

pub use sqlite::SqliteStore;

use crate::DispatchError;

/// `Display` and `FromStr` through the type's `as_str` and `ALL`: a name that is not one of
/// them means the store holds rows this version does not know.
macro_rules! stored_names {
    ($($name:ident: $what:literal),* $(,)?) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = DispatchError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .into_iter()
                    .find(|item| item.as_str() == text)
                    .ok_or_else(|| {
                        DispatchError::store(format!(concat!("unknown ", $what, " `{}` in the store"), text))
                    })
            }
        }
    )*};
}

stored_names!(
    MailingState: "mailing state",
    OccurrenceState: "occurrence state",
    DeliveryStatus: "delivery status",
);

/// Where a mailing is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailingState {
    /// Saved, not confirmed.
    Draft,
    /// Confirmed: occurrences fire when due.
    Queued,
    /// Paused by the operator or by a provider's quota (until `paused_until`).
    Paused,
    /// A one-time mailing that has finished.
    Done,
    /// Cancelled by the operator; never fires again.
    Cancelled,
    /// Stopped because a channel's settings are wrong; fix them and resume.
    Stopped,
}

impl MailingState {
    /// Every state.
    pub const ALL: [MailingState; 6] = [
        MailingState::Draft,
        MailingState::Queued,
        MailingState::Paused,
        MailingState::Done,
        MailingState::Cancelled,
        MailingState::Stopped,
    ];

    /// The lower-case name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            MailingState::Draft => "draft",
            MailingState::Queued => "queued",
            MailingState::Paused => "paused",
            MailingState::Done => "done",
            MailingState::Cancelled => "cancelled",
            MailingState::Stopped => "stopped",
        }
    }
}

/// A stored mailing.
#[derive(Debug, Clone, PartialEq)]
pub struct MailingRecord {
    /// Id.
    pub id: String,
    /// The mailing's JSON.
    pub json: String,
    /// State.
    pub state: MailingState,
    /// Schedule version: part of occurrence keys, bumped when the schedule changes.
    pub version: u32,
    /// Until when the schedule was looked at: occurrences up to here are decided.
    pub checked_at: Option<DateTime<Utc>>,
    /// A quota pause ends here.
    pub paused_until: Option<DateTime<Utc>>,
    /// Why it is paused or stopped.
    pub reason: Option<String>,
}

/// Where an occurrence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OccurrenceState {
    /// Its audience is being written into the journal.
    Freezing,
    /// The audience is in the journal; deliveries are being sent.
    Frozen,
    /// Every delivery has ended (or waits for nothing this occurrence can do).
    Done,
    /// Found too late by the misfire policy; never sent.
    Missed,
}

impl OccurrenceState {
    /// Every state.
    pub const ALL: [OccurrenceState; 4] = [
        OccurrenceState::Freezing,
        OccurrenceState::Frozen,
        OccurrenceState::Done,
        OccurrenceState::Missed,
    ];

    /// The lower-case name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            OccurrenceState::Freezing => "freezing",
            OccurrenceState::Frozen => "frozen",
            OccurrenceState::Done => "done",
            OccurrenceState::Missed => "missed",
        }
    }
}

/// An occurrence in the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct OccurrenceRecord {
    /// Row id.
    pub id: i64,
    /// Mailing.
    pub mailing_id: String,
    /// `mailing/vN/local date-time`, unique.
    pub key: String,
    /// When it fired (its scheduled instant).
    pub fired_at: DateTime<Utc>,
    /// The audience's «today».
    pub evaluation_date: NaiveDate,
    /// State.
    pub state: OccurrenceState,
}

/// The occurrence to start.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOccurrence {
    /// Mailing.
    pub mailing_id: String,
    /// Unique key.
    pub key: String,
    /// Scheduled instant.
    pub fired_at: DateTime<Utc>,
    /// «Today» of the audience rules.
    pub evaluation_date: NaiveDate,
    /// Freezing for one that will run, missed for one the misfire policy gave up.
    pub state: OccurrenceState,
}

/// What [`Store::start_occurrence`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum OccurrenceStart {
    /// Inserted now: this caller freezes it.
    Created(OccurrenceRecord),
    /// The key was there already (a restart, or another dispatcher).
    Existing(OccurrenceRecord),
}

/// A delivery's state in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryStatus {
    /// Waiting to be sent (maybe for a send window or a retry time).
    Queued,
    /// A lower-priority channel, sent only if the ones before it fail for good.
    Standby,
    /// Handed to the channel; the answer is not recorded yet.
    Sending,
    /// Delivered to the provider.
    Sent,
    /// Failed for good, with the reason.
    Failed,
    /// Not sent, with the reason (excluded, unreadable input, delivered through another
    /// channel, missing template values).
    Skipped,
    /// The process died while the provider held the request; not resent unless asked.
    Unknown,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [DeliveryStatus; 7] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Standby,
        DeliveryStatus::Sending,
        DeliveryStatus::Sent,
        DeliveryStatus::Failed,
        DeliveryStatus::Skipped,
        DeliveryStatus::Unknown,
    ];

    /// The lower-case name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Standby => "standby",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
            DeliveryStatus::Unknown => "unknown",
        }
    }
}

/// A delivery to write when the audience is frozen.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// Unique: `occurrence key/recipient/channel[/booking@anchor]`; the idempotency key.
    pub delivery_key: String,
    /// The recipient (or `line N` for an unreadable one).
    pub recipient_id: String,
    /// The channel; `None` for a recipient skipped before any channel was chosen.
    pub channel: Option<ChannelKind>,
    /// The validated address as text.
    pub address: Option<String>,
    /// The matched booking.
    pub booking_id: Option<String>,
    /// Deliveries that stand in for each other in priority mode share it.
    pub group_key: String,
    /// Priority rank inside the group (0 first).
    pub rank: u32,
    /// Queued, Standby or Skipped.
    pub status: DeliveryStatus,
    /// Not before this instant (send window).
    pub not_before: Option<DateTime<Utc>>,
    /// E-mail subject.
    pub subject: Option<String>,
    /// Text.
    pub text: Option<String>,
    /// E-mail HTML.
    pub html: Option<String>,
    /// Image path or URL.
    pub image: Option<String>,
    /// Billing units (SMS segments; 1 elsewhere).
    pub units: u32,
    /// Price of the units by the tariff.
    pub cost: Option<Decimal>,
    /// Why it is skipped.
    pub error: Option<String>,
}

/// A delivery as the journal holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Row id.
    pub id: i64,
    /// Occurrence row id.
    pub occurrence_id: i64,
    /// What was written at freezing.
    pub planned: NewDelivery,
    /// Sends attempted.
    pub attempts: u32,
    /// The provider's message id.
    pub provider_id: Option<String>,
    /// Error class of the last failure (`transient`, `recipient_gone` …).
    pub error_class: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
}

/// What became of a claimed delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryResult {
    /// The provider took it.
    Sent {
        /// Row id.
        id: i64,
        /// Provider's id.
        provider_id: Option<String>,
        /// What it cost, when the provider said.
        cost: Option<Decimal>,
    },
    /// Transient failure: queued again for `not_before`.
    Retry {
        /// Row id.
        id: i64,
        /// When to try again.
        not_before: DateTime<Utc>,
        /// Error class.
        class: String,
        /// The error.
        error: String,
    },
    /// Failed for good; in priority mode the next channel of the group is queued.
    Failed {
        /// Row id.
        id: i64,
        /// Error class.
        class: String,
        /// The error.
        error: String,
    },
    /// Not attempted after all (the mailing paused or stopped): back to the queue, the claim's
    /// attempt not counted.
    Requeue {
        /// Row id.
        id: i64,
    },
}

/// Deliveries of one occurrence by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Queued.
    pub queued: u64,
    /// Standby.
    pub standby: u64,
    /// Sending.
    pub sending: u64,
    /// Sent.
    pub sent: u64,
    /// Failed.
    pub failed: u64,
    /// Skipped.
    pub skipped: u64,
    /// Unknown.
    pub unknown: u64,
}

impl StatusCounts {
    pub(crate) fn add(&mut self, status: DeliveryStatus, n: u64) {
        *match status {
            DeliveryStatus::Queued => &mut self.queued,
            DeliveryStatus::Standby => &mut self.standby,
            DeliveryStatus::Sending => &mut self.sending,
            DeliveryStatus::Sent => &mut self.sent,
            DeliveryStatus::Failed => &mut self.failed,
            DeliveryStatus::Skipped => &mut self.skipped,
            DeliveryStatus::Unknown => &mut self.unknown,
        } += n;
    }

    /// Adds another count.
    pub fn merge(&mut self, other: &StatusCounts) {
        for status in DeliveryStatus::ALL {
            self.add(status, other.get(status));
        }
    }

    /// The count of one status.
    pub fn get(&self, status: DeliveryStatus) -> u64 {
        match status {
            DeliveryStatus::Queued => self.queued,
            DeliveryStatus::Standby => self.standby,
            DeliveryStatus::Sending => self.sending,
            DeliveryStatus::Sent => self.sent,
            DeliveryStatus::Failed => self.failed,
            DeliveryStatus::Skipped => self.skipped,
            DeliveryStatus::Unknown => self.unknown,
        }
    }
}

/// The audience of one occurrence being written: see [`Store::begin_freeze`].
#[async_trait]
pub trait Freeze: Send {
    /// Writes deliveries, in the order they are to be sent.
    async fn write(&mut self, deliveries: Vec<NewDelivery>) -> Result<(), DispatchError>;
    /// Makes the audience visible and the occurrence `frozen`, all at once. A delivery key
    /// written twice (the source lists a recipient twice) keeps its first delivery; the
    /// later ones are journaled as skipped, and their number returned. With `keys_unique`
    /// the caller knows no key was written twice, and the look for repeats is skipped.
    async fn commit(self: Box<Self>, keys_unique: bool) -> Result<u64, DispatchError>;
}

/// The journal's storage.
///
/// Designed for several workers: [`Store::claim`] hands each queued delivery to one caller
/// (SQLite serialises writers; a PostgreSQL implementation claims with `FOR UPDATE SKIP
/// LOCKED`), occurrence keys are unique, an audience is frozen once and all at once, and
/// [`Store::recover`] turns the deliveries a dead worker left in `sending` into `unknown` (or
/// back to the queue on channels that take an idempotency key).
#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts or replaces a mailing.
    async fn save_mailing(&self, record: &MailingRecord) -> Result<(), DispatchError>;
    /// A mailing by id.
    async fn mailing(&self, id: &str) -> Result<Option<MailingRecord>, DispatchError>;
    /// Every mailing.
    async fn mailings(&self) -> Result<Vec<MailingRecord>, DispatchError>;
    /// Inserts an occurrence unless its key exists.
    async fn start_occurrence(
        &self,
        occurrence: &NewOccurrence,
    ) -> Result<OccurrenceStart, DispatchError>;
    /// Sets an occurrence's state.
    async fn set_occurrence_state(
        &self,
        id: i64,
        state: OccurrenceState,
    ) -> Result<(), DispatchError>;
    /// Occurrences of a mailing (all mailings with `None`), oldest first.
    async fn occurrences(
        &self,
        mailing_id: Option<&str>,
    ) -> Result<Vec<OccurrenceRecord>, DispatchError>;
    /// Starts writing the audience of an occurrence that is still `freezing`, at `now`;
    /// `None` when it is not (another dispatcher froze it meanwhile). Nothing written is
    /// visible until [`Freeze::commit`]; dropping the freeze undoes it all, so a run refused
    /// half-way (or killed) leaves the occurrence to be frozen again from the start.
    async fn begin_freeze(
        &self,
        occurrence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Box<dyn Freeze>>, DispatchError>;
    /// Marks up to `limit` queued deliveries due at `now` as sending and returns them, in row
    /// order, with what sending needs (keys, address, texts, image, attempts); the result
    /// columns (provider id, errors, times) are left empty.
    async fn claim(
        &self,
        occurrence_id: i64,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, DispatchError>;
    /// Records what became of claimed deliveries.
    async fn record(
        &self,
        occurrence_id: i64,
        results: &[DeliveryResult],
        now: DateTime<Utc>,
    ) -> Result<(), DispatchError>;
    /// Records results and claims the next batch at once, so a send loop pays one
    /// transaction per batch; the default calls [`Store::record`] then [`Store::claim`].
    async fn record_and_claim(
        &self,
        occurrence_id: i64,
        results: &[DeliveryResult],
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, DispatchError> {
        self.record(occurrence_id, results, now).await?;
        self.claim(occurrence_id, now, limit).await
    }
    /// Deliveries left in `sending` by a dead process: back to the queue on `idempotent`
    /// channels, `unknown` elsewhere, as of `now`. Returns how many became unknown.
    async fn recover(
        &self,
        occurrence_id: i64,
        idempotent: &[ChannelKind],
        now: DateTime<Utc>,
    ) -> Result<u64, DispatchError>;
    /// Puts `unknown` deliveries back in the queue, when the operator asks to resend them,
    /// with the standby channels that recovery skipped because of them.
    async fn requeue_unknown(
        &self,
        occurrence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<u64, DispatchError>;
    /// The earliest instant a queued delivery waits for.
    async fn next_due(&self, occurrence_id: i64) -> Result<Option<DateTime<Utc>>, DispatchError>;
    /// Deliveries by status.
    async fn counts(&self, occurrence_id: i64) -> Result<StatusCounts, DispatchError>;
    /// Deliveries of an occurrence in order, `limit` from `after_id`.
    async fn deliveries(
        &self,
        occurrence_id: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, DispatchError>;
    /// Remembers that a recipient's contact on a channel is gone.
    async fn mark_unreachable(
        &self,
        recipient_id: &str,
        channel: ChannelKind,
        reason: &str,
    ) -> Result<(), DispatchError>;
    /// Every (recipient, channel) known gone.
    async fn unreachable(&self) -> Result<Vec<(String, ChannelKind)>, DispatchError>;
    /// Those of `recipient_ids` whose accrual for the occurrence is done.
    async fn accrued(
        &self,
        occurrence_id: i64,
        recipient_ids: &[String],
    ) -> Result<Vec<String>, DispatchError>;
    /// Records the bonus accruals of (occurrence, recipient) as done.
    async fn finish_accruals(
        &self,
        occurrence_id: i64,
        recipient_ids: &[String],
    ) -> Result<(), DispatchError>;
    /// Sent deliveries (row id, recipient) of an occurrence after row `after_id` whose
    /// recipient's accrual is not done, up to `limit`, in row order.
    async fn pending_accruals(
        &self,
        occurrence_id: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, DispatchError>;
}
