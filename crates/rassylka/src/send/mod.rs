//! Sending an occurrence: claims of `concurrency` deliveries under this worker's lease, sent
//! at once, judged by class (`policy.rs`), recorded together with the next claim; rows of
//! dead workers recovered as their leases run out, live workers' rows waited for.

mod lease;
mod limits;
mod outage;
mod policy;
mod suppress;

use std::time::Duration;

use futures_util::StreamExt;
use rassylka_channels::{ChannelError, ErrorClass, Image, Message};
use rassylka_model::{Address, ChannelKind, MessageClass};

pub(crate) use outage::is_outage_reason;
pub(crate) use policy::{BEHIND_UNKNOWN, Verdict};

use crate::DispatchError;
use crate::bonus::{ACCRUAL_BATCH, Accruals};
use crate::consent::Links;
use crate::dispatcher::{Progress, Rassylka, RunReport};
use crate::mailing::Mailing;
use crate::store::{
    Delivery, DeliveryStatus, Fence, GroupEffect, Lease, MailingState, OccurrenceRecord,
    OccurrenceState, Outcome, Settle,
};
use lease::Renewal;
use outage::OutageWatch;

/// How often a send loop reads the mailing's state to notice a pause or a cancel.
const STATE_CHECK: Duration = Duration::from_millis(100);

/// How long a worker waits before looking again at rows another live worker is sending.
const OTHERS_POLL: Duration = Duration::from_millis(200);

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

    /// Sends queued deliveries of one occurrence until none is due and no other worker holds
    /// any; returns why it stopped.
    async fn send_occurrence(
        &self,
        mailing: &Mailing,
        occurrence: &OccurrenceRecord,
        report: &mut RunReport,
    ) -> Result<Verdict, DispatchError> {
        let store = self.store();
        let lease = self.lease();
        let concurrency = self.inner.config.concurrency;
        let _renewal = Renewal::start(store.clone(), occurrence.id, lease.clone());
        self.start_account_usage().await?;
        let mut usage_read = std::time::Instant::now();
        let refresh = self.inner.config.usage_refresh;
        // Only channels with provider limits need the journal's count read again.
        let limited = self
            .inner
            .channels
            .values()
            .any(|channel| channel.account_limits().is_some());
        let list = match mailing.class {
            MessageClass::Advertising if self.inner.channels.contains_key(&ChannelKind::Email) => {
                Some(std::sync::Arc::new((
                    self.links().await?,
                    mailing.id.clone(),
                )))
            }
            _ => None,
        };
        let started = std::time::Instant::now();
        let mut progress = match &self.inner.progress {
            Some(_) => Some(self.progress(occurrence).await?),
            None => None,
        };
        // The next batch, claimed together with the previous batch's results, and when.
        let mut next: Option<Vec<Delivery>> = None;
        let mut claimed_at = std::time::Instant::now();
        // Recipients reached whose bonus is not accrued yet: the ledger is called once per
        // several batches, in the background while sending goes on. A crash before that
        // leaves them to `accrue_pending`.
        let mut owed: Vec<String> = Vec::new();
        let mut accruals = Accruals::new(self, mailing, occurrence);
        // When the mailing was last seen queued.
        let mut checked: Option<std::time::Instant> = None;
        // Channels that failed as a whole (SPEC §7b) in this pass.
        let mut outages = OutageWatch::default();
        let verdict = loop {
            // The operator (or another worker) may pause or cancel while a big occurrence is
            // being sent; the state is read every so often rather than for every batch.
            if checked.is_none_or(|at| at.elapsed() >= STATE_CHECK) {
                let state = match self.record(&mailing.id).await {
                    Ok(record) => record.state,
                    Err(e) => {
                        self.requeue(occurrence.id, &lease, next.take()).await?;
                        return Err(e);
                    }
                };
                if state != MailingState::Queued {
                    self.requeue(occurrence.id, &lease, next.take()).await?;
                    break Verdict::Continue;
                }
                checked = Some(std::time::Instant::now());
            }
            // A failed accrual stops the run before more is claimed.
            if let Err(e) = accruals.check() {
                self.requeue(occurrence.id, &lease, next.take()).await?;
                return Err(e);
            }
            // Other workers spend the same provider limits: their count is read again now
            // and then, so together they overshoot by at most what they send meanwhile.
            // Only between batches: a batch this worker holds counts as `sending` in the journal
            // and again when the channel sends it. (When the count is due, the last results
            // were recorded without claiming the next batch.)
            if limited && next.is_none() && usage_read.elapsed() >= refresh {
                if let Err(e) = self.start_account_usage().await {
                    self.requeue(occurrence.id, &lease, next.take()).await?;
                    return Err(e);
                }
                usage_read = std::time::Instant::now();
            }
            let now = self.now();
            let claimed = match next.take() {
                Some(claimed) => claimed,
                None => {
                    claimed_at = std::time::Instant::now();
                    store.claim(occurrence.id, &lease, now, concurrency).await?
                }
            };
            // A batch held longer than half a lease (this process stalled) is sent only if
            // every row of it is still this worker's: the others may have been recovered.
            if !claimed.is_empty()
                && claimed_at.elapsed() > lease.length / 2
                && store.renew(occurrence.id, &lease).await? < claimed.len() as u64
            {
                report.lease_lost += self.put_back(occurrence.id, &lease, claimed).await?;
                continue;
            }
            if claimed.is_empty() {
                // Rows of a worker that died or stalled, once its lease has run out.
                let recovered = self.recover_expired(occurrence).await?;
                report.recovered_unknown += recovered;
                if store.sending(occurrence.id).await? > 0 {
                    // Another live worker is sending: its rows end, or its lease runs out.
                    accruals.finish(std::mem::take(&mut owed)).await?;
                    tokio::time::sleep(OTHERS_POLL).await;
                    continue;
                }
                let Some(due) = store.next_due(occurrence.id).await? else {
                    break Verdict::Continue;
                };
                if due <= now {
                    // Recovery queued rows again (idempotent channels), or another worker's
                    // retry came due: claim them.
                    continue;
                }
                let wait = (due - now).to_std().unwrap_or_default();
                if started.elapsed() + wait > self.inner.config.max_wait {
                    break Verdict::Continue;
                }
                accruals.finish(std::mem::take(&mut owed)).await?;
                tokio::time::sleep(wait.max(Duration::from_millis(5))).await;
                continue;
            }
            // Advertising to someone who unsubscribed since the freeze is not sent: skipped,
            // and the rest of their priority group with it.
            let (claimed, mut suppressed) = match self.unsubscribed_since(mailing, claimed).await {
                Ok(split) => split,
                Err((claimed, e)) => {
                    self.requeue(occurrence.id, &lease, Some(claimed)).await?;
                    return Err(e);
                }
            };
            // A channel found down sends nothing more in this pass: its rows wait, uncounted.
            let (claimed, waiting): (Vec<Delivery>, Vec<Delivery>) = claimed
                .into_iter()
                .partition(|d| outages.down(d.planned.channel).is_none());
            let mut postponed: Vec<Settle> = waiting
                .iter()
                .filter_map(|d| {
                    let (channel, down) = outages.down(d.planned.channel)?;
                    Some(Settle {
                        id: d.id,
                        attempt: d.attempts,
                        outcome: Outcome::Postpone {
                            not_before: down.until,
                            reason: down.reason(channel),
                        },
                        then: GroupEffect::Nothing,
                    })
                })
                .collect();
            let this = self.clone();
            let batch_list = list.clone();
            let sends = futures_util::stream::iter(claimed.into_iter().map(move |mut d| {
                let this = this.clone();
                let list = batch_list.clone();
                async move {
                    let outcome = this.send_one(&mut d, list.as_deref()).await;
                    (d, outcome)
                }
            }))
            .buffer_unordered(concurrency)
            .collect::<Vec<_>>()
            .await;
            let now = self.now();
            let mut results = Vec::with_capacity(sends.len());
            let mut verdict = Verdict::Continue;
            // Contacts reported gone and recipients reached (for bonuses), by row: acted on
            // once the results are safely recorded.
            let mut gone: Vec<(i64, (String, ChannelKind, String))> = Vec::new();
            let mut reached: Vec<(i64, String)> = Vec::new();
            for (delivery, outcome) in sends {
                let channel = delivery.planned.channel;
                if let Some(kind) = channel
                    && outages.observe(kind, &outcome)
                {
                    let cause = outcome.as_ref().err().map(ToString::to_string);
                    // The last pause's reason, kept while the mailing resumed, makes this
                    // one longer.
                    let previous = self.record(&mailing.id).await.ok().and_then(|r| r.reason);
                    outages.take_down(kind, cause.unwrap_or_default(), now, previous.as_deref());
                }
                if let (Err(e), Some((kind, down))) = (&outcome, outages.down(channel))
                    && e.is_outage()
                    && e.class() != ErrorClass::Ambiguous
                {
                    // Not the recipient's failure: back in the queue, the attempt uncounted.
                    postponed.push(Settle {
                        id: delivery.id,
                        attempt: delivery.attempts,
                        outcome: Outcome::Postpone {
                            not_before: down.until,
                            reason: down.reason(kind),
                        },
                        then: GroupEffect::Nothing,
                    });
                    continue;
                }
                let judged = self.judge(mailing, delivery, outcome, now, &mut verdict);
                let id = judged.settle.id;
                results.push(judged.settle);
                gone.extend(judged.gone.map(|g| (id, g)));
                if mailing.bonus.is_some() {
                    reached.extend(judged.reached.map(|r| (id, r)));
                }
            }
            results.append(&mut postponed);
            results.append(&mut suppressed);
            // The next batch is claimed with these results unless the mailing stops here, or
            // the limits' count is to be read before it.
            let recorded = if matches!(verdict, Verdict::Continue)
                && (!limited || usage_read.elapsed() < refresh)
            {
                match store
                    .record_and_claim(occurrence.id, &lease, &results, now, concurrency)
                    .await
                {
                    Ok((recorded, claimed)) => {
                        next = Some(claimed);
                        claimed_at = std::time::Instant::now();
                        recorded
                    }
                    Err(e) => {
                        // The claim may be what failed: the results of a batch already sent
                        // are kept if they can be, so it does not come back as unknown.
                        let _ = store
                            .record(occurrence.id, Fence::Holder(&lease.worker), &results, now)
                            .await;
                        return Err(e.into());
                    }
                }
            } else {
                store
                    .record(occurrence.id, Fence::Holder(&lease.worker), &results, now)
                    .await?
            };
            // Results this worker sent after its lease ran out and another worker took the
            // rows over: refused by the journal, so nothing of the other's is overwritten.
            report.lease_lost += recorded.refused.len() as u64;
            let kept = |id: &i64| !recorded.refused.contains(id);
            let gone = gone
                .into_iter()
                .filter(|(id, _)| kept(id))
                .map(|(_, g)| g)
                .collect();
            // Whatever fails from here on puts the batch just claimed back unsent.
            if let Err(e) = self.remember_gone(gone).await {
                self.requeue(occurrence.id, &lease, next.take()).await?;
                return Err(e);
            }
            if mailing.bonus.is_some() {
                owed.extend(
                    reached
                        .into_iter()
                        .filter(|(id, _)| kept(id))
                        .map(|(_, r)| r),
                );
                if owed.len() >= ACCRUAL_BATCH
                    && let Err(e) = accruals.start(std::mem::take(&mut owed)).await
                {
                    // A failing ledger stops the run; what was claimed goes back unsent.
                    self.requeue(occurrence.id, &lease, next.take()).await?;
                    return Err(e);
                }
            }
            if let (Some(progress), Some(hook)) = (progress.as_mut(), &self.inner.progress) {
                progress.done += results
                    .iter()
                    .filter(|r| {
                        !recorded.refused.contains(&r.id)
                            && !matches!(
                                r.outcome,
                                Outcome::Retry { .. } | Outcome::Requeue | Outcome::Postpone { .. }
                            )
                    })
                    .count() as u64;
                hook(progress);
            }
            if !matches!(verdict, Verdict::Continue) {
                break verdict;
            }
        };
        accruals.finish(owed).await?;
        // A channel down pauses the mailing once the rest is sent.
        Ok(match (verdict, outages.pause()) {
            (Verdict::Continue, Some((until, reason))) => Verdict::Pause { until, reason },
            (verdict, _) => verdict,
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

    /// Puts claimed deliveries back in the queue unsent, their attempt not counted.
    async fn requeue(
        &self,
        occurrence_id: i64,
        lease: &Lease,
        claimed: Option<Vec<Delivery>>,
    ) -> Result<(), DispatchError> {
        if let Some(claimed) = claimed {
            self.put_back(occurrence_id, lease, claimed).await?;
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
