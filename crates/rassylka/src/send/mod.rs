//! Sending an occurrence: up to `concurrency` deliveries held under this worker's lease and
//! sent at once (`window.rs`), judged by class (`policy.rs`), recorded together with the
//! next claim in the background (`journal.rs`); rows of dead workers recovered as their
//! leases run out, live workers' rows waited for.

mod ended;
mod journal;
mod lease;
mod limits;
mod outage;
mod policy;
mod suppress;
mod window;

use rassylka_channels::{ChannelError, Image, Message};
use rassylka_model::{Address, ChannelKind};

pub(crate) use outage::is_outage_reason;
pub(crate) use policy::{BEHIND_UNKNOWN, Verdict};

use crate::DispatchError;
use crate::consent::Links;
use crate::dispatcher::{Progress, Rassylka, RunReport};
use crate::mailing::Mailing;
use crate::store::{
    Delivery, DeliveryStatus, Fence, GroupEffect, Lease, OccurrenceRecord, OccurrenceState,
    Outcome, Settle,
};

impl Rassylka {
    /// Freezes (if not yet) and sends one occurrence.
    pub(crate) async fn run_occurrence(
        &self,
        mailing: &Mailing,
        occurrence: OccurrenceRecord,
        report: &mut RunReport,
    ) -> Result<Verdict, DispatchError> {
        let store = self.store();
        let freezing = std::time::Instant::now();
        let frozen_now = occurrence.state == OccurrenceState::Freezing
            && self.freeze(mailing, &occurrence, report).await?;
        report.freezing += freezing.elapsed();
        let sending = std::time::Instant::now();
        // An occurrence this run froze has sent nothing: nothing to recover or accrue.
        if !frozen_now {
            report.recovered_unknown += self.recover_expired(&occurrence).await?;
            self.accrue_pending(mailing, &occurrence).await?;
        }
        let verdict = self.send_occurrence(mailing, &occurrence, report).await?;
        report.sending += sending.elapsed();
        let counts = store.counts(occurrence.id).await?;
        // Done only if nothing was reopened meanwhile: the store decides it in one step.
        if !store.finish_occurrence(occurrence.id).await?
            && let Some(due) = store.next_due(occurrence.id).await?
        {
            report.next_due = Some(report.next_due.map_or(due, |d| d.min(due)));
        }
        report.counts.merge(&counts);
        report.occurrences.push(occurrence.key.clone());
        Ok(verdict)
    }

    /// Sends one claimed delivery. Its texts move into the message: afterwards only its id,
    /// attempts, channel and recipient are needed. `list` (advertising only) gives an e-mail
    /// its unsubscribe headers.
    async fn send_one(
        &self,
        delivery: &mut Delivery,
        list: Option<&(Links, String)>,
    ) -> Result<rassylka_channels::Receipt, ChannelError> {
        let planned = &mut delivery.planned;
        let channel_kind = planned
            .channel
            .ok_or_else(|| ChannelError::rejected("a delivery without a channel"))?;
        let channel = self.inner.channels.get(&channel_kind).ok_or_else(|| {
            ChannelError::configuration(format!("channel `{channel_kind}` is not configured"))
        })?;
        let to = Address::parse(channel_kind, planned.address.as_deref().unwrap_or_default())
            .map_err(|e| ChannelError::rejected(e.to_string()))?;
        let mut message = Message::new(
            std::mem::take(&mut planned.delivery_key),
            planned.text.take().unwrap_or_default(),
        );
        if let Some(subject) = planned.subject.take() {
            message = message.with_subject(subject);
        }
        if let Some(html) = planned.html.take() {
            message = message.with_html(html);
        }
        if let Some(image) = &planned.image {
            message = message.with_image(Image::parse(image));
        }
        if channel_kind == ChannelKind::Email
            && let Some((links, mailing_id)) = list
        {
            message.headers = links.headers(mailing_id, &planned.recipient_id);
        }
        channel.send(&to, &message).await
    }

    /// The progress of an occurrence as the journal counts it.
    async fn progress(&self, occurrence: &OccurrenceRecord) -> Result<Progress, DispatchError> {
        let counts = self.store().counts(occurrence.id).await?;
        let total = DeliveryStatus::ALL
            .iter()
            .map(|s| counts.get(*s))
            .sum::<u64>();
        Ok(Progress {
            occurrence: occurrence.key.clone(),
            done: total - counts.queued - counts.standby - counts.sending,
            total,
        })
    }

    /// Remembers contacts a channel reported gone, in the journal and at the source.
    async fn remember_gone(
        &self,
        gone: Vec<(String, ChannelKind, String)>,
    ) -> Result<(), DispatchError> {
        for (recipient_id, channel, reason) in gone {
            self.store()
                .mark_unreachable(&recipient_id, channel, &reason)
                .await?;
            self.inner
                .source
                .mark_unreachable(&recipient_id, channel)
                .await
                .map_err(DispatchError::Source)?;
        }
        Ok(())
    }

    /// Puts claimed deliveries back in the queue unsent, their attempt not counted; returns
    /// how many were no longer this worker's (refused).
    async fn put_back(
        &self,
        occurrence_id: i64,
        lease: &Lease,
        claimed: Vec<Delivery>,
    ) -> Result<u64, DispatchError> {
        let back: Vec<Settle> = claimed
            .iter()
            .map(|d| Settle {
                id: d.id,
                attempt: d.attempts,
                outcome: Outcome::Requeue,
                then: GroupEffect::Nothing,
            })
            .collect();
        let recorded = self
            .store()
            .record(
                occurrence_id,
                Fence::Holder(&lease.worker),
                &back,
                self.now(),
            )
            .await?;
        Ok(recorded.refused.len() as u64)
    }
}
