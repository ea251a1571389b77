//! What happens to the rows a worker holds: claimed rows started or set aside (unsubscribed,
//! their channel down), each send's end judged, and, once the results are recorded, what
//! follows them (contacts gone, bonuses owed, progress).

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use rassylka_channels::{ChannelError, ErrorClass, Receipt};
use rassylka_model::ChannelKind;

use super::journal::Written;
use super::outage::OutageWatch;
use super::policy::Verdict;
use super::suppress::skip_unsubscribed;
use crate::DispatchError;
use crate::bonus::{ACCRUAL_BATCH, Accruals};
use crate::consent::Links;
use crate::dispatcher::{Progress, Rassylka, RunReport};
use crate::mailing::Mailing;
use crate::store::{Delivery, GroupEffect, Outcome, Settle};

/// Sends under way, each ending with its delivery and the channel's answer.
pub(crate) type InFlight =
    FuturesUnordered<BoxFuture<'static, (Delivery, Result<Receipt, ChannelError>)>>;

/// Sends ended and judged whose results are not recorded yet.
#[derive(Default)]
pub(crate) struct Ended {
    /// What to record, a result per row.
    pub(crate) results: Vec<Settle>,
    /// Contacts a channel reported gone (recipient, channel, why), by row: remembered once
    /// the results are recorded.
    pub(crate) gone: Vec<(i64, (String, ChannelKind, String))>,
    /// Recipients reached (bonus mailings only), by row.
    pub(crate) reached: Vec<(i64, String)>,
}

/// What a worker owes as results get recorded.
pub(crate) struct Tally {
    /// The occurrence's progress, when someone listens.
    pub(crate) progress: Option<Progress>,
    /// Recipients reached whose bonus is not accrued yet: the ledger is called once per
    /// several batches, in the background while sending goes on. A crash before that leaves
    /// them to `accrue_pending`.
    pub(crate) owed: Vec<String>,
    pub(crate) accruals: Accruals,
}

impl Rassylka {
    /// Starts sending claimed rows, except to recipients who unsubscribed and through
    /// channels found down: those are settled at once (skipped, or postponed uncounted).
    pub(crate) fn start_sends(
        &self,
        claimed: Vec<Delivery>,
        unsubscribed: &HashSet<String>,
        outages: &OutageWatch,
        list: Option<&Arc<(Links, String)>>,
        in_flight: &mut InFlight,
        ended: &mut Ended,
    ) {
        for mut delivery in claimed {
            if unsubscribed.contains(&delivery.planned.recipient_id) {
                ended.results.push(skip_unsubscribed(&delivery));
                continue;
            }
            if let Some((channel, down)) = outages.down(delivery.planned.channel) {
                ended.results.push(Settle {
                    id: delivery.id,
                    attempt: delivery.attempts,
                    outcome: Outcome::Postpone {
                        not_before: down.until,
                        reason: down.reason(channel),
                    },
                    then: GroupEffect::Nothing,
                });
                continue;
            }
            let this = self.clone();
            let list = list.cloned();
            in_flight.push(Box::pin(async move {
                let outcome = this.send_one(&mut delivery, list.as_deref()).await;
                (delivery, outcome)
            }));
        }
    }

    /// Judges one ended send into `ended`; a channel failing as a whole is taken down (its
    /// row waits, uncounted), a quota or configuration failure sets the verdict.
    pub(crate) async fn judge_ended(
        &self,
        mailing: &Mailing,
        (delivery, outcome): (Delivery, Result<Receipt, ChannelError>),
        outages: &mut OutageWatch,
        verdict: &mut Verdict,
        ended: &mut Ended,
    ) {
        let now = self.now();
        let channel = delivery.planned.channel;
        if let Some(kind) = channel
            && outages.observe(kind, &outcome)
        {
            let cause = outcome.as_ref().err().map(ToString::to_string);
            // The last pause's reason, kept while the mailing resumed, makes this one longer.
            let previous = self.record(&mailing.id).await.ok().and_then(|r| r.reason);
            outages.take_down(kind, cause.unwrap_or_default(), now, previous.as_deref());
        }
        if let (Err(e), Some((kind, down))) = (&outcome, outages.down(channel))
            && e.is_outage()
            && e.class() != ErrorClass::Ambiguous
        {
            // Not the recipient's failure: back in the queue, the attempt uncounted.
            ended.results.push(Settle {
                id: delivery.id,
                attempt: delivery.attempts,
                outcome: Outcome::Postpone {
                    not_before: down.until,
                    reason: down.reason(kind),
                },
                then: GroupEffect::Nothing,
            });
            return;
        }
        let judged = self.judge(mailing, delivery, outcome, now, verdict);
        let id = judged.settle.id;
        ended.results.push(judged.settle);
        ended.gone.extend(judged.gone.map(|g| (id, g)));
        if mailing.bonus.is_some() {
            ended.reached.extend(judged.reached.map(|r| (id, r)));
        }
    }

    /// Acts on results the journal recorded: contacts gone remembered, bonuses owed (accrued
    /// once enough are), progress told. Results refused (rows lost with the lease) count as
    /// lost and nothing follows them.
    ///
    /// # Errors
    /// When a contact cannot be remembered or the ledger fails.
    pub(crate) async fn tally(
        &self,
        written: &Written,
        gone: Vec<(i64, (String, ChannelKind, String))>,
        reached: Vec<(i64, String)>,
        tally: &mut Tally,
        report: &mut RunReport,
    ) -> Result<(), DispatchError> {
        let refused = &written.recorded.refused;
        report.lease_lost += refused.len() as u64;
        let kept = |id: &i64| !refused.contains(id);
        let gone = gone
            .into_iter()
            .filter(|(id, _)| kept(id))
            .map(|(_, g)| g)
            .collect();
        self.remember_gone(gone).await?;
        tally.owed.extend(
            reached
                .into_iter()
                .filter(|(id, _)| kept(id))
                .map(|(_, r)| r),
        );
        if tally.owed.len() >= ACCRUAL_BATCH {
            tally
                .accruals
                .start(std::mem::take(&mut tally.owed))
                .await?;
        }
        if let (Some(progress), Some(hook)) = (tally.progress.as_mut(), &self.inner.progress) {
            progress.done += written
                .results
                .iter()
                .filter(|r| {
                    kept(&r.id)
                        && !matches!(
                            r.outcome,
                            Outcome::Retry { .. } | Outcome::Requeue | Outcome::Postpone { .. }
                        )
                })
                .count() as u64;
            hook(progress);
        }
        Ok(())
    }
}
