//! The conformance suite: every backend runs these checks unchanged, each on a fresh, empty
//! store. A check panics (as a test does) when the store breaks the contract.
//!
//! A backend's tests call [`conformance_tests!`](crate::conformance_tests) with an async
//! function that makes a fresh store, or `None` to skip (a server that is not configured).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rassylka_model::ChannelKind;

use crate::{
    DeliveryStatus, Fence, GroupEffect, JournalFilter, Lease, MailingRecord, MailingState,
    MailingTransition, NewDelivery, NewOccurrence, OccurrenceRecord, OccurrenceStart,
    OccurrenceState, Outcome, Settle, Store,
};

/// One `#[tokio::test]` per check of [`conformance`](crate::conformance), each on a store made
/// by `$make`: an async function returning `Option<Arc<dyn Store>>` (`None` skips the check).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@each $make;
            mailings_are_created_once_and_change_state_by_compare_and_set,
            schedule_versions_change_by_compare_and_set,
            checked_at_only_moves_forward,
            occurrence_keys_are_unique_and_states_compare_and_set,
            occurrences_are_found_between_two_instants,
            a_dropped_freeze_leaves_nothing_and_a_committed_one_everything,
            one_caller_freezes_while_another_waits_for_the_commit,
            repeated_keys_are_skipped_at_commit,
            claims_hand_each_delivery_to_one_worker,
            claims_respect_due_times,
            results_are_fenced_by_holder_and_attempt,
            refused_results_deep_in_a_large_set_leave_the_others_written,
            expired_leases_are_recovered_and_late_results_refused,
            renewed_leases_do_not_expire,
            group_effects_fall_back_close_and_hold,
            requeued_deliveries_do_not_count_the_attempt,
            rows_queued_again_are_claimed_again,
            postponed_deliveries_wait_uncounted_with_their_reason,
            counts_and_pages_of_the_journal,
            tallies_and_filtered_journal_pages,
            notice_refusals_are_kept_and_listed_since,
            secrets_are_kept_once,
            unsubscribes_are_kept_once_listed_and_cleared,
            reach_sends_and_addresses_are_counted,
            deliveries_skipped_after_the_claim_close_their_group_uncounted,
            unreachable_contacts_are_looked_up_in_batches,
            accruals_are_kept_once,
            finishing_waits_for_open_work_and_reopening_undoes_it,
        );
    };
    (@each $make:path; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let Some(store) = $make().await else { return };
            $crate::conformance::$check(store).await;
        }
    )*};
}

/// A fixed «now» for the checks.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

fn lease(worker: &str, length: Duration) -> Lease {
    Lease {
        worker: worker.into(),
        length,
    }
}

fn long(worker: &str) -> Lease {
    lease(worker, Duration::from_secs(60))
}

fn mailing(id: &str) -> MailingRecord {
    MailingRecord {
        id: id.into(),
        json: format!("{{\"id\":\"{id}\"}}"),
        state: MailingState::Draft,
        version: 1,
        checked_at: None,
        paused_until: None,
        reason: None,
    }
}

/// A queued telegram delivery for `recipient`, in its own group.
pub fn delivery(occurrence_key: &str, recipient: &str) -> NewDelivery {
    NewDelivery {
        delivery_key: format!("{occurrence_key}/{recipient}/telegram"),
        recipient_id: recipient.into(),
        channel: Some(ChannelKind::Telegram),
        address: Some("42".into()),
        booking_id: None,
        group_key: recipient.into(),
        rank: 0,
        status: DeliveryStatus::Queued,
        not_before: None,
        subject: None,
        text: Some(format!("привет, {recipient}")),
        html: None,
        image: None,
        units: 1,
        cost: None,
        error: None,
    }
}

async fn occurrence(store: &Arc<dyn Store>, key: &str) -> OccurrenceRecord {
    let _ = store.create_mailing(&mailing("m-1")).await.unwrap();
    let start = store
        .start_occurrence(&NewOccurrence {
            mailing_id: "m-1".into(),
            key: key.into(),
            fired_at: now(),
            evaluation_date: NaiveDate::from_ymd_opt(2026, 11, 18).unwrap_or_default(),
            state: OccurrenceState::Freezing,
        })
        .await
        .unwrap();
    match start {
        OccurrenceStart::Created(o) | OccurrenceStart::Existing(o) => o,
    }
}

/// An occurrence frozen with `deliveries`.
async fn frozen(
    store: &Arc<dyn Store>,
    key: &str,
    deliveries: Vec<NewDelivery>,
) -> OccurrenceRecord {
    let o = occurrence(store, key).await;
    let mut freeze = store.begin_freeze(o.id, now()).await.unwrap().unwrap();
    freeze.write(deliveries).await.unwrap();
    assert_eq!(freeze.commit().await.unwrap(), 0);
    o
}

fn audience(key: &str, n: usize) -> Vec<NewDelivery> {
    (0..n)
        .map(|i| delivery(key, &format!("c-{i:05}")))
        .collect()
}

fn sent(id: i64, attempt: u32) -> Settle {
    Settle {
        id,
        attempt,
        outcome: Outcome::Sent {
            provider_id: Some(format!("p-{id}")),
            cost: None,
        },
        then: GroupEffect::Nothing,
    }
}

async fn status_of(store: &Arc<dyn Store>, o: &OccurrenceRecord) -> Vec<(String, DeliveryStatus)> {
    store
        .deliveries(o.id, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.planned.recipient_id, d.planned.status))
        .collect()
}

mod consent;
mod journal;
mod queue;
mod states;

pub use consent::*;
pub use journal::*;
pub use queue::*;
pub use states::*;
