//! Unsubscribes that arrive while an occurrence is being sent: the freeze already planned the
//! recipient, but advertising must stop when asked (38-FZ art. 18), so each claimed batch is
//! checked and their rows are skipped instead of sent.

use std::collections::HashSet;

use rassylka_model::MessageClass;

use crate::DispatchError;
use crate::dispatcher::Rassylka;
use crate::mailing::Mailing;
use crate::plan::UNSUBSCRIBED;
use crate::store::{Delivery, GroupEffect, Outcome, Settle};

/// Deliveries to send, and what to record for those not to send.
type Split = (Vec<Delivery>, Vec<Settle>);

impl Rassylka {
    /// Splits a claimed batch of an advertising mailing: the deliveries to send, and skips
    /// (closing their priority groups) for recipients who unsubscribed since the freeze. On a
    /// journal error the batch comes back whole, to be put back.
    pub(crate) async fn unsubscribed_since(
        &self,
        mailing: &Mailing,
        claimed: Vec<Delivery>,
    ) -> Result<Split, (Vec<Delivery>, DispatchError)> {
        if mailing.class != MessageClass::Advertising || claimed.is_empty() {
            return Ok((claimed, Vec::new()));
        }
        let looked_up = {
            let ids: Vec<&str> = claimed
                .iter()
                .map(|d| d.planned.recipient_id.as_str())
                .collect();
            self.store().unsubscribed_among(&ids).await
        };
        let gone: HashSet<String> = match looked_up {
            Ok(gone) if gone.is_empty() => return Ok((claimed, Vec::new())),
            Ok(gone) => gone.into_iter().collect(),
            Err(e) => return Err((claimed, e.into())),
        };
        let (skipped, kept): (Vec<Delivery>, Vec<Delivery>) = claimed
            .into_iter()
            .partition(|d| gone.contains(&d.planned.recipient_id));
        let settles = skipped
            .iter()
            .map(|d| Settle {
                id: d.id,
                attempt: d.attempts,
                outcome: Outcome::Skip {
                    reason: UNSUBSCRIBED.into(),
                },
                then: GroupEffect::Close {
                    reason: UNSUBSCRIBED.into(),
                },
            })
            .collect();
        Ok((kept, settles))
    }
}
