//! The store traits: small roles tied together by [`Store`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rassylka_model::ChannelKind;

use crate::{
    Delivery, Fence, JournalFilter, Lease, MailingRecord, MailingState, MailingTransition,
    NewDelivery, NewOccurrence, NoticeRefusal, OccurrenceRecord, OccurrenceStart, OccurrenceState,
    OutcomeRow, ReachedAddress, Recorded, Settle, StatusCounts, StoreError, Tally, Unsubscribe,
};

/// Mailings: their JSON, schedule version and state. State changes are compare-and-set, so
/// two workers that pause, resume or finish at once never lose an update.
#[async_trait]
pub trait MailingStore: Send + Sync {
    /// Inserts a new mailing; `false` (and nothing written) when the id exists.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn create_mailing(&self, record: &MailingRecord) -> Result<bool, StoreError>;

    /// Replaces a mailing's JSON and moves its schedule version from `version` to
    /// `new_version`, if it still has `version`; its state is left alone. `false` when the
    /// version changed meanwhile or the mailing does not exist.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn redefine_mailing(
        &self,
        id: &str,
        json: &str,
        version: u32,
        new_version: u32,
    ) -> Result<bool, StoreError>;

    /// Sets a mailing's state, reason and pause, if its state is one of `from`; `false` (and
    /// nothing written) otherwise.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn transition_mailing(
        &self,
        id: &str,
        from: &[MailingState],
        to: &MailingTransition,
    ) -> Result<bool, StoreError>;

    /// Marks a `queued` mailing `done` if none of its occurrences is still `freezing` or
    /// `frozen`, in one step (an occurrence reopened meanwhile keeps it queued); `false`
    /// otherwise.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn finish_mailing(&self, id: &str) -> Result<bool, StoreError>;

    /// Records that the schedule was looked at up to `at`; an earlier instant than the one
    /// stored changes nothing.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn advance_checked_at(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// A mailing by id.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn mailing(&self, id: &str) -> Result<Option<MailingRecord>, StoreError>;

    /// Every mailing, by id.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn mailings(&self) -> Result<Vec<MailingRecord>, StoreError>;
}

/// An occurrence's audience being written: see [`OccurrenceStore::begin_freeze`].
#[async_trait]
pub trait Freeze: Send {
    /// Writes deliveries, in the order they are to be sent.
    ///
    /// # Errors
    /// When the journal cannot be written; the freeze is then dropped, undoing it all.
    async fn write(&mut self, deliveries: Vec<NewDelivery>) -> Result<(), StoreError>;

    /// Makes the audience visible and the occurrence `frozen`, all at once. A delivery key
    /// written twice (the source lists a recipient twice) keeps its first delivery, and its
    /// first priority group whole; the later ones are journaled as skipped, and their number
    /// returned.
    ///
    /// # Errors
    /// When the journal cannot be written; nothing of the freeze stays.
    async fn commit(self: Box<Self>) -> Result<u64, StoreError>;
}

/// Occurrences: unique keys, compare-and-set states, one freeze each.
#[async_trait]
pub trait OccurrenceStore: Send + Sync {
    /// Inserts an occurrence unless its key exists; says which.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn start_occurrence(
        &self,
        occurrence: &NewOccurrence,
    ) -> Result<OccurrenceStart, StoreError>;

    /// Sets an occurrence's state if it is one of `from`; `false` otherwise.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn transition_occurrence(
        &self,
        id: i64,
        from: &[OccurrenceState],
        to: OccurrenceState,
    ) -> Result<bool, StoreError>;

    /// Marks a `frozen` occurrence `done` if none of its deliveries is `queued`, `standby` or
    /// `sending`, in one step (deliveries reopened meanwhile keep it frozen); `false`
    /// otherwise.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn finish_occurrence(&self, id: i64) -> Result<bool, StoreError>;

    /// Occurrences of a mailing (of all mailings with `None`), oldest first.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn occurrences(
        &self,
        mailing_id: Option<&str>,
    ) -> Result<Vec<OccurrenceRecord>, StoreError>;

    /// Occurrences of every mailing that fired strictly between `after` and `before`, oldest
    /// first; the default filters [`OccurrenceStore::occurrences`].
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn occurrences_between(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<OccurrenceRecord>, StoreError> {
        Ok(self
            .occurrences(None)
            .await?
            .into_iter()
            .filter(|o| o.fired_at > after && o.fired_at < before)
            .collect())
    }

    /// Starts writing the audience of an occurrence that is still `freezing`, at `now`. One
    /// caller freezes: another caller waits until that freeze commits or is dropped, then gets
    /// `None` (frozen: only sending is left) or the freeze. Nothing written is visible until
    /// [`Freeze::commit`]; dropping the freeze (or the process dying) undoes it all.
    ///
    /// # Errors
    /// When the journal cannot be written, or the wait outlasted the backend's patience.
    async fn begin_freeze(
        &self,
        occurrence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Box<dyn Freeze>>, StoreError>;
}

/// The delivery queue: claims under leases, fenced results, recovery of expired leases, and
/// reads of one occurrence's journal.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Marks up to `limit` queued deliveries due at `due` as sending under `lease` (worker and
    /// a deadline of the store's clock + the lease length), counts the attempt, and returns
    /// them in row order with what sending needs. A row is handed to one caller only.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn claim(
        &self,
        occurrence_id: i64,
        lease: &Lease,
        due: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Records results, each only if its row is still held as `fence` says and still at the
    /// settled attempt; the others are refused and listed, nothing written for them.
    ///
    /// # Errors
    /// When the journal cannot be written: then nothing of this call was recorded.
    async fn record(
        &self,
        occurrence_id: i64,
        fence: Fence<'_>,
        results: &[Settle],
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError>;

    /// Records results as [`QueueStore::record`] with [`Fence::Holder`] and claims the next
    /// batch, so a send loop may pay one transaction per batch.
    ///
    /// # Errors
    /// As [`QueueStore::record`] and [`QueueStore::claim`].
    async fn record_and_claim(
        &self,
        occurrence_id: i64,
        lease: &Lease,
        results: &[Settle],
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Recorded, Vec<Delivery>), StoreError> {
        let recorded = self
            .record(occurrence_id, Fence::Holder(&lease.worker), results, now)
            .await?;
        let claimed = self.claim(occurrence_id, lease, now, limit).await?;
        Ok((recorded, claimed))
    }

    /// Extends the deadline of every row of the occurrence that `lease.worker` holds to the
    /// store's clock + the lease length; returns how many.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn renew(&self, occurrence_id: i64, lease: &Lease) -> Result<u64, StoreError>;

    /// Up to `limit` deliveries still `sending` whose lease has expired by the store's clock:
    /// their worker died or stalled. Settle them with [`Fence::Expired`].
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn expired(&self, occurrence_id: i64, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// Puts the occurrence's `unknown` deliveries back in the queue (the operator says they
    /// were not delivered), and the standby deliveries they held back in standby, and a `done`
    /// occurrence back to `frozen`, in one step with respect to
    /// [`OccurrenceStore::finish_occurrence`]; returns how many went back to the queue.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn reopen_unknown(
        &self,
        occurrence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// How many of the occurrence's deliveries are `sending` (held by some worker); the
    /// default counts them with [`QueueStore::counts`].
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn sending(&self, occurrence_id: i64) -> Result<u64, StoreError> {
        Ok(self.counts(occurrence_id).await?.sending)
    }

    /// The earliest instant a queued delivery waits for.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn next_due(&self, occurrence_id: i64) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Deliveries by status.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn counts(&self, occurrence_id: i64) -> Result<StatusCounts, StoreError>;

    /// Deliveries of an occurrence in row order: `limit` rows after row `after_id`.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn deliveries(
        &self,
        occurrence_id: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
}

/// Contacts reported gone, looked up in batches.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Remembers that a recipient's contact on a channel is gone.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn mark_unreachable(
        &self,
        recipient_id: &str,
        channel: ChannelKind,
        reason: &str,
    ) -> Result<(), StoreError>;

    /// The (recipient, channel) pairs known gone among `recipient_ids`.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn unreachable_among(
        &self,
        recipient_ids: &[&str],
    ) -> Result<Vec<(String, ChannelKind)>, StoreError>;
}

/// Bonus accruals done, once per (occurrence, recipient).
#[async_trait]
pub trait AccrualStore: Send + Sync {
    /// Those of `recipient_ids` whose accrual for the occurrence is done.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn accrued(
        &self,
        occurrence_id: i64,
        recipient_ids: &[String],
    ) -> Result<Vec<String>, StoreError>;

    /// Records the accruals of (occurrence, recipient) as done; repeating one is harmless.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn finish_accruals(
        &self,
        occurrence_id: i64,
        recipient_ids: &[String],
    ) -> Result<(), StoreError>;

    /// Sent deliveries (row id, recipient) of an occurrence after row `after_id` whose
    /// recipient's accrual is not done, up to `limit`, in row order.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn pending_accruals(
        &self,
        occurrence_id: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError>;
}

/// The reads behind history and journal views: aggregates and filtered pages, never whole
/// occurrences in memory.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// An occurrence's distinct recipients and its rows counted by channel, status and cost.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn tally(&self, occurrence_id: i64) -> Result<Tally, StoreError>;

    /// Up to `limit` rows of an occurrence after row `after_id` that pass `filter`, in row
    /// order.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn journal(
        &self,
        occurrence_id: i64,
        filter: &JournalFilter,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Up to `limit` rows of an occurrence with `status` after row `after_id`, in row order,
    /// as the few columns attribution reads; the default reads them with
    /// [`HistoryStore::journal`].
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn outcomes(
        &self,
        occurrence_id: i64,
        status: crate::DeliveryStatus,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<OutcomeRow>, StoreError> {
        let filter = JournalFilter {
            status: Some(status),
            recipient_id: None,
        };
        Ok(self
            .journal(occurrence_id, &filter, after_id, limit)
            .await?
            .into_iter()
            .map(|d| OutcomeRow {
                id: d.id,
                recipient_id: d.planned.recipient_id,
                sent_at: d.sent_at,
                reason: d.planned.error,
                cost: d.planned.cost,
            })
            .collect())
    }
}

/// Refused service notices, kept for whoever audits who sends what.
#[async_trait]
pub trait NoticeStore: Send + Sync {
    /// Keeps a refusal.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn record_refusal(&self, refusal: &NoticeRefusal) -> Result<(), StoreError>;

    /// Refusals at or after `since` (all when `None`), oldest first.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn refusals(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<NoticeRefusal>, StoreError>;
}

/// Consent and frequency: unsubscribes, the signing secret kept for them, and the counts
/// that caps and provider limits are decided on (the dispatcher decides; the store counts).
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The secret kept under `name`; when there is none yet, `candidate` is kept and returned.
    /// Two callers racing both get the one that was kept.
    ///
    /// # Errors
    /// When the journal cannot be read or written.
    async fn keep_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// The secret kept under `name`, if any; keeps nothing.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn kept_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Keeps an unsubscribe; when the recipient is unsubscribed already, keeps nothing and
    /// answers the earlier one.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn record_unsubscribe(
        &self,
        unsubscribe: &Unsubscribe,
    ) -> Result<Option<Unsubscribe>, StoreError>;

    /// Forgets a recipient's unsubscribe; `false` when there was none.
    ///
    /// # Errors
    /// When the journal cannot be written.
    async fn resubscribe(&self, recipient_id: &str) -> Result<bool, StoreError>;

    /// The unsubscribes kept now, at or after `since` (all when `None`), oldest first.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn unsubscribes(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Unsubscribe>, StoreError>;

    /// Those of `recipient_ids` who are unsubscribed, looked up as one batch.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn unsubscribed_among(&self, recipient_ids: &[&str]) -> Result<Vec<String>, StoreError>;

    /// For each of `recipient_ids` that has one, in how many of `occurrence_ids` it has a
    /// delivery that is neither skipped nor failed; looked up as one batch.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn reached_in(
        &self,
        occurrence_ids: &[i64],
        recipient_ids: &[&str],
    ) -> Result<Vec<(String, u32)>, StoreError>;

    /// Deliveries on `channel` that reached (or may have reached) the provider at or after
    /// `since`: sent then, or `sending` or `unknown` since.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn sends_since(
        &self,
        channel: ChannelKind,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(self.sends_since_both(channel, since, since).await?.0)
    }

    /// [`Self::sends_since`] `first` and `second` at once (a provider's day and month), from
    /// one look at the journal, which a sending worker takes every few seconds: the backend's
    /// one counting rule, which [`Self::sends_since`] asks for one instant.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn sends_since_both(
        &self,
        channel: ChannelKind,
        first: DateTime<Utc>,
        second: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError>;

    /// The channels and addresses of every delivery of any occurrence of `mailing_id` to
    /// `recipient_id` that has both, newest first, with their status.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn addresses(
        &self,
        mailing_id: &str,
        recipient_id: &str,
    ) -> Result<Vec<ReachedAddress>, StoreError>;
}

/// The whole journal: every role, and the store's own life.
#[async_trait]
pub trait Store:
    MailingStore
    + OccurrenceStore
    + QueueStore
    + ContactStore
    + AccrualStore
    + HistoryStore
    + NoticeStore
    + ConsentStore
{
    /// Finishes the store's work before the process ends (SQLite moves its write-ahead log
    /// into the file, so a copy of the file alone is whole) and closes its connections; the
    /// store is not used afterwards. The default does nothing.
    ///
    /// # Errors
    /// When the store cannot finish its work.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
