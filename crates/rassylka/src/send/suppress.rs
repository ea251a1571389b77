//! Unsubscribes that arrive while an occurrence is being sent: the freeze already planned the
//! recipient, but advertising must stop when asked (38-FZ art. 18), so each claim is checked
//! and its rows for such recipients are skipped instead of sent.

use std::collections::HashSet;

use crate::plan::UNSUBSCRIBED;
use crate::store::{Delivery, GroupEffect, Outcome, Settle, Store, StoreError};

/// The recipients of `claimed` who unsubscribed since the freeze; none unless `advertising`.
///
/// # Errors
/// When the journal cannot be read.
pub(crate) async fn unsubscribed_among(
    store: &dyn Store,
    advertising: bool,
    claimed: &[Delivery],
) -> Result<HashSet<String>, StoreError> {
    if !advertising || claimed.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<&str> = claimed
        .iter()
        .map(|d| d.planned.recipient_id.as_str())
        .collect();
    Ok(store.unsubscribed_among(&ids).await?.into_iter().collect())
}

/// The skip recorded for a delivery to someone who unsubscribed: the rest of their priority
/// group closes with it.
pub(crate) fn skip_unsubscribed(delivery: &Delivery) -> Settle {
    Settle {
        id: delivery.id,
        attempt: delivery.attempts,
        outcome: Outcome::Skip {
            reason: UNSUBSCRIBED.into(),
        },
        then: GroupEffect::Close {
            reason: UNSUBSCRIBED.into(),
        },
    }
}
