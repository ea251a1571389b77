//! Attribution (SPEC §7f; the BonusPlus «привязка к маркетинговой активности» and «привязка к
//! акции»): whether a mailing paid off, measured against a holdout group.
//!
//! Definitions, each a test:
//! - **reached**: recipients with at least one sent delivery in the occurrence(s); `reached_at`
//!   is their earliest `sent_at`. Failed, unknown and skipped deliveries do not reach.
//! - **window**: `(reached_at, reached_at + N days]` (N = 7 by default): a purchase at the very
//!   instant of the reach is not in it, one exactly N days later is.
//! - **converted**: reached recipients with a purchase in their window; **conversion** =
//!   converted / reached.
//! - **revenue**: the sum of the converted recipients' in-window purchases; **purchases**: their
//!   count; **average check** = revenue / purchases; **average check before**: the reached
//!   recipients' purchases in `[reached_at − N days, reached_at)`, sum / count (none: `null`).
//! - **cost**: sending (the journal's sent rows) + bonus (points accrued × the point's value);
//!   **ROI** = (revenue − cost) / cost, `null` at zero cost.
//! - **promotion**: reached recipients with an in-window purchase that used the mailing's
//!   promotion, their share of the reached, and the sum of those purchases.
//! - **holdout**: recipients held out (`"holdout": {"percent": P}`, chosen by a stable hash of
//!   mailing and recipient, journaled as skipped `holdout`); their window starts at the
//!   occurrence's `fired_at`. **lift** = conversion − control conversion, with Newcombe's
//!   hybrid score 95 % interval; **incremental revenue** = revenue − control revenue × reached /
//!   control size.
//! - Per activity: every mailing with that `activity_id`; a recipient counts once, from the
//!   first reach; the control group is the held out whom none of its mailings reached.
//!
//! Money is decimal throughout; rates are `f64` in 0..1.

mod audience;
mod holdout;
#[cfg(feature = "charts")]
mod html;
mod interval;
mod purchases;
mod report;

use std::collections::BTreeSet;

pub use audience::Attribution;
pub use holdout::Holdout;
pub(crate) use holdout::{is_held_out, read_holdout};
pub use interval::{Z95, newcombe_difference, wilson};
pub use purchases::read_purchases;
pub use report::{AttributionReport, DailyConversion, HoldoutResult, PromotionUse};
use rust_decimal::Decimal;

use crate::dispatcher::Rassylka;
use crate::mailing::Mailing;
use crate::store::{DeliveryStatus, OccurrenceState};
use crate::{DispatchError, Problem};

/// The reason a held-out recipient is journaled with.
pub(crate) const HOLDOUT: &str = "holdout";

/// Journal rows read per page.
const PAGE: usize = 10_000;

/// What a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributionScope {
    /// One mailing, all its occurrences.
    Mailing(String),
    /// Every mailing with this `activity_id`.
    Activity(String),
}

impl Rassylka {
    /// The attribution of a mailing or an activity with its audience read from the journal
    /// (reached, held out, sending cost, bonus points accrued): fold purchases into it, then
    /// ask for its report.
    ///
    /// # Errors
    /// [`DispatchError::UnknownMailing`] for a mailing the journal does not have,
    /// [`DispatchError::Refused`] for an activity no mailing names; journal errors.
    pub async fn attribution(
        &self,
        scope: &AttributionScope,
        window_days: u32,
    ) -> Result<Attribution, DispatchError> {
        let mailings = self.scope_mailings(scope).await?;
        let mut attribution = Attribution::new(window_days);
        let promotions: BTreeSet<&String> = mailings
            .iter()
            .filter_map(|m| m.promotion_id.as_ref())
            .collect();
        // An activity whose mailings name different promotions has no one promotion to count.
        if promotions.len() == 1 {
            attribution.promotion(promotions.into_iter().next().cloned());
        }
        for mailing in &mailings {
            self.read_audience(mailing, &mut attribution).await?;
        }
        Ok(attribution)
    }

    async fn scope_mailings(
        &self,
        scope: &AttributionScope,
    ) -> Result<Vec<Mailing>, DispatchError> {
        match scope {
            AttributionScope::Mailing(id) => {
                let record = self.record(id).await?;
                Ok(vec![Mailing::from_json(&record.json)?])
            }
            AttributionScope::Activity(activity) => {
                let mut found = Vec::new();
                for record in self.store().mailings().await? {
                    let Ok(mailing) = Mailing::from_json(&record.json) else {
                        continue;
                    };
                    if mailing.activity_id.as_deref() == Some(activity.as_str()) {
                        found.push(mailing);
                    }
                }
                if found.is_empty() {
                    return Err(DispatchError::Refused(format!(
                        "no mailing has activity_id `{activity}`"
                    )));
                }
                Ok(found)
            }
        }
    }

    /// Adds one mailing's reached and held-out recipients, sending cost and bonus points.
    async fn read_audience(
        &self,
        mailing: &Mailing,
        attribution: &mut Attribution,
    ) -> Result<(), DispatchError> {
        let store = self.store();
        for occurrence in store.occurrences(Some(&mailing.id)).await? {
            if occurrence.state == OccurrenceState::Missed {
                continue;
            }
            let mut after = 0;
            // A recipient's rows are adjacent (frozen together): one reached on two channels
            // may end a page and begin the next, and is counted for its bonus once.
            let mut previous: Option<String> = None;
            loop {
                let rows = store
                    .outcomes(occurrence.id, DeliveryStatus::Sent, after, PAGE)
                    .await?;
                let Some(last) = rows.last() else { break };
                after = last.id;
                let mut cost = Decimal::ZERO;
                for row in &rows {
                    if let Some(at) = row.sent_at {
                        attribution.reached(&row.recipient_id, at);
                    }
                    cost += row.cost.unwrap_or_default();
                }
                attribution.add_sending_cost(cost);
                if let Some(bonus) = &mailing.bonus {
                    let mut ids: Vec<String> = rows
                        .iter()
                        .map(|r| r.recipient_id.clone())
                        .filter(|id| Some(id) != previous.as_ref())
                        .collect();
                    previous = rows.last().map(|r| r.recipient_id.clone());
                    ids.sort_unstable();
                    ids.dedup();
                    let accrued = store.accrued(occurrence.id, &ids).await?.len();
                    attribution.add_bonus_points(bonus.amount.0 * Decimal::from(accrued));
                }
            }
            let mut after = 0;
            loop {
                let rows = store
                    .outcomes(occurrence.id, DeliveryStatus::Skipped, after, PAGE)
                    .await?;
                let Some(last) = rows.last() else { break };
                after = last.id;
                for row in rows.iter().filter(|r| r.reason.as_deref() == Some(HOLDOUT)) {
                    attribution.held_out(&row.recipient_id, occurrence.fired_at);
                }
            }
        }
        Ok(())
    }
}

/// A purchases file's problem with the file named: `FILE:LINE: what`.
pub fn purchases_problem(file: &str, problem: &Problem) -> String {
    let line = problem.path.strip_prefix("line ").unwrap_or(&problem.path);
    format!("{file}:{line}: {}", problem.message)
}
