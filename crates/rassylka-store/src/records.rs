//! What the journal holds: mailings, occurrences and deliveries, and their states.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rassylka_model::ChannelKind;
use rust_decimal::Decimal;

use crate::StoreError;

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
            type Err = StoreError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .into_iter()
                    .find(|item| item.as_str() == text)
                    .ok_or_else(|| {
                        StoreError::invalid(format!(concat!("unknown ", $what, " `{}` in the journal"), text))
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

/// What [`OccurrenceStore::start_occurrence`](crate::OccurrenceStore::start_occurrence) found.
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
    /// The worker holding it while it is `sending`.
    pub worker: Option<String>,
}

/// What became of a claimed delivery, as the dispatcher decided it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The provider took it.
    Sent {
        /// The provider's id.
        provider_id: Option<String>,
        /// What it cost, when the provider said (else the planned cost stands).
        cost: Option<Decimal>,
    },
    /// A transient failure: queued again, not before `not_before`.
    Retry {
        /// When to try again.
        not_before: DateTime<Utc>,
        /// Error class.
        class: String,
        /// The error.
        error: String,
    },
    /// Failed for good.
    Failed {
        /// Error class.
        class: String,
        /// The error.
        error: String,
    },
    /// Not attempted after all (the mailing paused, the channel is down): back to the queue,
    /// the claim's attempt not counted.
    Requeue,
    /// Not attempted after all, and not to be tried before `not_before` (its channel is
    /// down): back to the queue, the claim's attempt not counted, `reason` kept as its error.
    Postpone {
        /// When to try again.
        not_before: DateTime<Utc>,
        /// Why it waits.
        reason: String,
    },
    /// Not sent after all, and never to be (the recipient unsubscribed after the freeze):
    /// skipped with `reason`, the claim's attempt not counted.
    Skip {
        /// Why.
        reason: String,
    },
    /// The provider may or may not hold it (no answer, or its sender died): never resent
    /// unless the operator asks.
    Unknown {
        /// Why it is unknown.
        error: String,
    },
}

/// What a settled delivery does to the other deliveries of its priority group (those in
/// `standby`). The dispatcher decides; the store only applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEffect {
    /// Nothing.
    Nothing,
    /// The standby delivery of the lowest rank is queued (priority fallback).
    FallBack,
    /// Every standby delivery is skipped with the reason, for good.
    Close {
        /// Why (`delivered through telegram`).
        reason: String,
    },
    /// Every standby delivery is skipped with the reason, held by this delivery:
    /// [`QueueStore::reopen_unknown`](crate::QueueStore::reopen_unknown) puts them back in
    /// standby when it reopens it.
    Hold {
        /// Why.
        reason: String,
    },
}

/// One result to record: a claimed delivery, the attempt it was claimed for (a fence against
/// results of an older claim), what became of it, and what that does to its group.
#[derive(Debug, Clone, PartialEq)]
pub struct Settle {
    /// Row id.
    pub id: i64,
    /// [`Delivery::attempts`] as claimed.
    pub attempt: u32,
    /// What became of it.
    pub outcome: Outcome,
    /// Its group's fate.
    pub then: GroupEffect,
}

/// Who may record a result: the store refuses a result whose row is not held so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence<'a> {
    /// The worker that claimed the row, while the row is still its own (sending, same
    /// attempt). A row another worker took over after the lease expired is not.
    Holder(&'a str),
    /// Any worker, for a row still sending whose lease has expired (recovery).
    Expired,
}

/// A claim's owner and how long the claim lasts without renewal. Deadlines are kept on the
/// store's own wall clock, so workers on several machines agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The worker's id, unique per process.
    pub worker: String,
    /// How long a claim or a renewal lasts.
    pub length: std::time::Duration,
}

/// What [`QueueStore::record`](crate::QueueStore::record) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Rows whose result was refused: not held under the fence any more (another worker
    /// recovered them after the lease expired). Nothing was written for them.
    pub refused: Vec<i64>,
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
    /// Adds `n` deliveries of `status`.
    pub fn add(&mut self, status: DeliveryStatus, n: u64) {
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

/// A mailing's new state, written by
/// [`MailingStore::transition_mailing`](crate::MailingStore::transition_mailing) only if the
/// mailing is still in one of the states the caller saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailingTransition {
    /// The new state.
    pub state: MailingState,
    /// Why (a pause, a stop, a cancel); `None` clears it.
    pub reason: Option<String>,
    /// Until when a pause lasts; `None` clears it.
    pub paused_until: Option<DateTime<Utc>>,
    /// `Some` sets the instant up to which the schedule was looked at; `None` keeps it.
    pub checked_at: Option<DateTime<Utc>>,
}

impl MailingTransition {
    /// To `state`, with no reason, no pause, `checked_at` kept.
    pub fn to(state: MailingState) -> Self {
        MailingTransition {
            state,
            reason: None,
            paused_until: None,
            checked_at: None,
        }
    }

    /// With a reason.
    #[must_use]
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}
