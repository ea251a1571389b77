//! Recovery: deliveries whose worker's lease ran out while they were `sending` (the worker
//! died or stalled) are settled by any other worker — resent on channels that take the
//! delivery key as an idempotency key, «unknown» elsewhere, their priority group held — and
//! the operator's resend of unknown deliveries.

use crate::DispatchError;
use crate::dispatcher::Rassylka;
use crate::send::BEHIND_UNKNOWN;
use crate::store::{
    Fence, GroupEffect, MailingState, MailingTransition, OccurrenceRecord, Outcome, Settle,
};

/// Expired rows settled per journal transaction.
const RECOVERY_PAGE: usize = 1000;

/// Why a delivery whose worker vanished is unknown.
const WORKER_GONE: &str =
    "its worker stopped (lease expired) while the provider may have held the request";

impl Rassylka {
    /// Settles the occurrence's deliveries whose lease has expired; returns how many became
    /// unknown. A live worker's rows are never touched.
    pub(crate) async fn recover_expired(
        &self,
        occurrence: &OccurrenceRecord,
    ) -> Result<u64, DispatchError> {
        let store = self.store();
        let mut unknown = 0;
        loop {
            let expired = store.expired(occurrence.id, RECOVERY_PAGE).await?;
            if expired.is_empty() {
                return Ok(unknown);
            }
            let now = self.now();
            let settles: Vec<Settle> = expired
                .iter()
                .map(|d| {
                    let (outcome, then) = if self.idempotent(d.planned.channel) {
                        // The same key again: the provider drops a repeat.
                        (
                            Outcome::Retry {
                                not_before: now,
                                class: "interrupted".into(),
                                error: "its worker stopped before the result was recorded; resent with the same key".into(),
                            },
                            GroupEffect::Nothing,
                        )
                    } else {
                        (
                            Outcome::Unknown {
                                error: WORKER_GONE.into(),
                            },
                            GroupEffect::Hold {
                                reason: BEHIND_UNKNOWN.into(),
                            },
                        )
                    };
                    Settle {
                        id: d.id,
                        attempt: d.attempts,
                        outcome,
                        then,
                    }
                })
                .collect();
            let recorded = store
                .record(occurrence.id, Fence::Expired, &settles, now)
                .await?;
            unknown += settles
                .iter()
                .filter(|s| {
                    matches!(s.outcome, Outcome::Unknown { .. })
                        && !recorded.refused.contains(&s.id)
                })
                .count() as u64;
            if expired.len() < RECOVERY_PAGE {
                return Ok(unknown);
            }
        }
    }

    /// Puts the deliveries left «unknown» back in the queue, on the operator's word that
    /// they were not delivered. Returns how many.
    ///
    /// # Errors
    /// [`DispatchError::Store`] when the journal cannot be updated.
    pub async fn resend_unknown(&self, mailing_id: &str) -> Result<u64, DispatchError> {
        let store = self.store();
        let mut n = 0;
        for occurrence in store.occurrences(Some(mailing_id)).await? {
            n += store.reopen_unknown(occurrence.id, self.now()).await?;
        }
        // A one-time mailing that looked finished has work again.
        if n > 0 {
            store
                .transition_mailing(
                    mailing_id,
                    &[MailingState::Done],
                    &MailingTransition::to(MailingState::Queued),
                )
                .await?;
        }
        Ok(n)
    }
}
