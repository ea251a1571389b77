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
    DeliveryStatus, Fence, GroupEffect, Lease, MailingRecord, MailingState, MailingTransition,
    NewDelivery, NewOccurrence, OccurrenceRecord, OccurrenceStart, OccurrenceState, Outcome,
    Settle, Store,
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
            a_dropped_freeze_leaves_nothing_and_a_committed_one_everything,
            one_caller_freezes_while_another_waits_for_the_commit,
            repeated_keys_are_skipped_at_commit,
            claims_hand_each_delivery_to_one_worker,
            claims_respect_due_times,
            results_are_fenced_by_holder_and_attempt,
            expired_leases_are_recovered_and_late_results_refused,
            renewed_leases_do_not_expire,
            group_effects_fall_back_close_and_hold,
            requeued_deliveries_do_not_count_the_attempt,
            counts_and_pages_of_the_journal,
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

/// Mailings: created once; state changed only from the states the caller saw.
pub async fn mailings_are_created_once_and_change_state_by_compare_and_set(store: Arc<dyn Store>) {
    assert!(store.create_mailing(&mailing("m-1")).await.unwrap());
    assert!(!store.create_mailing(&mailing("m-1")).await.unwrap());
    let queue = MailingTransition {
        checked_at: Some(now()),
        ..MailingTransition::to(MailingState::Queued)
    };
    assert!(
        store
            .transition_mailing("m-1", &[MailingState::Draft], &queue)
            .await
            .unwrap()
    );
    // A second confirmation saw `draft`, which is gone.
    assert!(
        !store
            .transition_mailing("m-1", &[MailingState::Draft], &queue)
            .await
            .unwrap()
    );
    // Two workers pause and finish at once: exactly one wins.
    let pause = MailingTransition::to(MailingState::Paused).because("paused by the operator");
    let done = MailingTransition::to(MailingState::Done);
    let (a, b) = tokio::join!(
        store.transition_mailing("m-1", &[MailingState::Queued], &pause),
        store.transition_mailing("m-1", &[MailingState::Queued], &done),
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one transition wins");
    let record = store.mailing("m-1").await.unwrap().unwrap();
    assert!(matches!(
        record.state,
        MailingState::Paused | MailingState::Done
    ));
    assert_eq!(record.checked_at, Some(now()), "checked_at kept");
    assert!(
        !store
            .transition_mailing("nope", &MailingState::ALL, &done)
            .await
            .unwrap()
    );
    assert_eq!(store.mailings().await.unwrap().len(), 1);
    assert!(store.mailing("nope").await.unwrap().is_none());
}

/// A mailing's definition changes only from the schedule version the caller saw, and never
/// touches its state.
pub async fn schedule_versions_change_by_compare_and_set(store: Arc<dyn Store>) {
    store.create_mailing(&mailing("m-1")).await.unwrap();
    store
        .transition_mailing(
            "m-1",
            &[MailingState::Draft],
            &MailingTransition::to(MailingState::Queued),
        )
        .await
        .unwrap();
    assert!(
        store
            .redefine_mailing("m-1", "{\"v\":2}", 1, 2)
            .await
            .unwrap()
    );
    assert!(
        !store
            .redefine_mailing("m-1", "{\"v\":3}", 1, 2)
            .await
            .unwrap()
    );
    let record = store.mailing("m-1").await.unwrap().unwrap();
    assert_eq!((record.version, record.json.as_str()), (2, "{\"v\":2}"));
    assert_eq!(
        record.state,
        MailingState::Queued,
        "a redefinition keeps the state"
    );
}

/// `checked_at` never moves back.
pub async fn checked_at_only_moves_forward(store: Arc<dyn Store>) {
    store.create_mailing(&mailing("m-1")).await.unwrap();
    store.advance_checked_at("m-1", now()).await.unwrap();
    store
        .advance_checked_at("m-1", now() - TimeDelta::hours(1))
        .await
        .unwrap();
    let at = store.mailing("m-1").await.unwrap().unwrap().checked_at;
    assert_eq!(at, Some(now()));
    store
        .advance_checked_at("m-1", now() + TimeDelta::hours(1))
        .await
        .unwrap();
    let at = store.mailing("m-1").await.unwrap().unwrap().checked_at;
    assert_eq!(at, Some(now() + TimeDelta::hours(1)));
}

/// An occurrence key is inserted once; its state changes by compare-and-set.
pub async fn occurrence_keys_are_unique_and_states_compare_and_set(store: Arc<dyn Store>) {
    store.create_mailing(&mailing("m-1")).await.unwrap();
    let new = NewOccurrence {
        mailing_id: "m-1".into(),
        key: "m-1/v1/2026-11-18T10:00".into(),
        fired_at: now(),
        evaluation_date: NaiveDate::from_ymd_opt(2026, 11, 18).unwrap_or_default(),
        state: OccurrenceState::Freezing,
    };
    let (a, b) = tokio::join!(store.start_occurrence(&new), store.start_occurrence(&new));
    let created = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|s| matches!(s, OccurrenceStart::Created(_)))
        .count();
    assert_eq!(
        created, 1,
        "one of two simultaneous starts creates the occurrence"
    );
    let all = store.occurrences(Some("m-1")).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].fired_at, now());
    let id = all[0].id;
    assert!(
        !store
            .transition_occurrence(id, &[OccurrenceState::Frozen], OccurrenceState::Done)
            .await
            .unwrap()
    );
    assert!(
        store
            .transition_occurrence(id, &[OccurrenceState::Freezing], OccurrenceState::Missed)
            .await
            .unwrap()
    );
    assert_eq!(
        store.occurrences(None).await.unwrap()[0].state,
        OccurrenceState::Missed
    );
}

/// Nothing of a dropped freeze stays; a committed one is visible whole, and frozen.
pub async fn a_dropped_freeze_leaves_nothing_and_a_committed_one_everything(store: Arc<dyn Store>) {
    let o = occurrence(&store, "m-1/o").await;
    let mut freeze = store.begin_freeze(o.id, now()).await.unwrap().unwrap();
    freeze.write(audience("m-1/o", 50)).await.unwrap();
    drop(freeze);
    assert!(store.deliveries(o.id, 0, 100).await.unwrap().is_empty());
    let mut freeze = store.begin_freeze(o.id, now()).await.unwrap().unwrap();
    freeze.write(audience("m-1/o", 30)).await.unwrap();
    freeze
        .write(audience("m-1/o", 50).split_off(30))
        .await
        .unwrap();
    assert_eq!(freeze.commit().await.unwrap(), 0);
    let rows = store.deliveries(o.id, 0, 100).await.unwrap();
    assert_eq!(rows.len(), 50);
    assert!(
        rows.windows(2).all(|w| w[0].id < w[1].id),
        "row order is write order"
    );
    assert_eq!(rows[0].planned.recipient_id, "c-00000");
    assert_eq!(rows[0].planned.text.as_deref(), Some("привет, c-00000"));
    assert_eq!(
        store.occurrences(None).await.unwrap()[0].state,
        OccurrenceState::Frozen
    );
    assert!(
        store.begin_freeze(o.id, now()).await.unwrap().is_none(),
        "frozen once"
    );
}

/// Of two callers, one freezes; the other waits for its commit, then finds it frozen.
pub async fn one_caller_freezes_while_another_waits_for_the_commit(store: Arc<dyn Store>) {
    let o = occurrence(&store, "m-1/o").await;
    let mut freeze = store.begin_freeze(o.id, now()).await.unwrap().unwrap();
    let other = Arc::clone(&store);
    let waiting =
        tokio::spawn(async move { other.begin_freeze(o.id, now()).await.map(|f| f.is_some()) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "the second caller waits for the first freeze"
    );
    freeze.write(audience("m-1/o", 10)).await.unwrap();
    freeze.commit().await.unwrap();
    assert!(
        !waiting.await.unwrap().unwrap(),
        "after the commit there is nothing to freeze"
    );
    assert_eq!(store.counts(o.id).await.unwrap().queued, 10);
}

/// A key written twice keeps its first delivery; the repeat is skipped and counted.
pub async fn repeated_keys_are_skipped_at_commit(store: Arc<dyn Store>) {
    let o = occurrence(&store, "m-1/o").await;
    let mut freeze = store.begin_freeze(o.id, now()).await.unwrap().unwrap();
    let mut rows = audience("m-1/o", 5);
    rows.push(delivery("m-1/o", "c-00002"));
    freeze.write(rows).await.unwrap();
    assert_eq!(freeze.commit().await.unwrap(), 1);
    let statuses = status_of(&store, &o).await;
    assert_eq!(statuses[2].1, DeliveryStatus::Queued);
    assert_eq!(statuses[5], ("c-00002".to_owned(), DeliveryStatus::Skipped));
    assert_eq!(store.counts(o.id).await.unwrap().queued, 5);
}

/// Two workers claiming at once never get the same delivery, and together get them all.
pub async fn claims_hand_each_delivery_to_one_worker(store: Arc<dyn Store>) {
    let o = frozen(&store, "m-1/o", audience("m-1/o", 400)).await;
    let worker = |name: &'static str| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim(o.id, &long(name), now(), 7).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                for d in &batch {
                    assert_eq!(d.worker.as_deref(), Some(name));
                    assert_eq!(d.attempts, 1);
                    assert_eq!(d.planned.status, DeliveryStatus::Sending);
                }
                mine.extend(batch.into_iter().map(|d| d.id));
            }
        })
    };
    let (a, b) = (worker("w-a"), worker("w-b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let all: HashSet<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(all.len(), a.len() + b.len(), "no delivery claimed twice");
    assert_eq!(all.len(), 400);
    assert_eq!(store.counts(o.id).await.unwrap().sending, 400);
}

/// Only deliveries due are claimed, earliest first; `next_due` tells when the rest are.
pub async fn claims_respect_due_times(store: Arc<dyn Store>) {
    let mut rows = audience("m-1/o", 3);
    rows[0].not_before = Some(now() + TimeDelta::hours(2));
    rows[1].not_before = Some(now() + TimeDelta::hours(1));
    let o = frozen(&store, "m-1/o", rows).await;
    let first = store.claim(o.id, &long("w"), now(), 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].planned.recipient_id, "c-00002");
    assert_eq!(
        store.next_due(o.id).await.unwrap(),
        Some(now() + TimeDelta::hours(1))
    );
    let later = store
        .claim(o.id, &long("w"), now() + TimeDelta::hours(3), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = later
        .iter()
        .map(|d| d.planned.recipient_id.as_str())
        .collect();
    assert_eq!(ids, ["c-00000", "c-00001"]);
    assert_eq!(store.next_due(o.id).await.unwrap(), None);
}

/// A result is written only by the worker holding the row, for the attempt it claimed.
pub async fn results_are_fenced_by_holder_and_attempt(store: Arc<dyn Store>) {
    let o = frozen(&store, "m-1/o", audience("m-1/o", 2)).await;
    let claimed = store.claim(o.id, &long("w-a"), now(), 10).await.unwrap();
    let (first, second) = (claimed[0].id, claimed[1].id);
    let by_other = store
        .record(o.id, Fence::Holder("w-b"), &[sent(first, 1)], now())
        .await
        .unwrap();
    assert_eq!(by_other.refused, vec![first]);
    let stale = store
        .record(o.id, Fence::Holder("w-a"), &[sent(first, 7)], now())
        .await
        .unwrap();
    assert_eq!(
        stale.refused,
        vec![first],
        "another attempt's result is refused"
    );
    let ok = store
        .record(
            o.id,
            Fence::Holder("w-a"),
            &[sent(first, 1), sent(second, 1)],
            now(),
        )
        .await
        .unwrap();
    assert!(ok.refused.is_empty());
    let again = store
        .record(o.id, Fence::Holder("w-a"), &[sent(first, 1)], now())
        .await
        .unwrap();
    assert_eq!(
        again.refused,
        vec![first],
        "a settled row is not written twice"
    );
    let rows = store.deliveries(o.id, 0, 10).await.unwrap();
    assert!(
        rows.iter()
            .all(|d| d.planned.status == DeliveryStatus::Sent)
    );
    assert_eq!(rows[0].provider_id.as_deref(), Some(&*format!("p-{first}")));
    assert_eq!(rows[0].sent_at, Some(now()));
    assert_eq!(rows[0].worker, None, "a settled row is held by nobody");
}

/// A lease that runs out hands the rows to recovery; the late result of the old holder is
/// refused.
pub async fn expired_leases_are_recovered_and_late_results_refused(store: Arc<dyn Store>) {
    let o = frozen(&store, "m-1/o", audience("m-1/o", 3)).await;
    let short = store
        .claim(o.id, &lease("w-dead", Duration::from_millis(300)), now(), 2)
        .await
        .unwrap();
    let live = store.claim(o.id, &long("w-live"), now(), 1).await.unwrap();
    assert!(
        store.expired(o.id, 10).await.unwrap().is_empty(),
        "no lease ran out yet"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let expired = store.expired(o.id, 10).await.unwrap();
    let mut ids: Vec<i64> = expired.iter().map(|d| d.id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        short.iter().map(|d| d.id).collect::<Vec<_>>(),
        "only the lapsed lease"
    );
    assert_eq!(expired[0].worker.as_deref(), Some("w-dead"));
    let settle = [
        Settle {
            id: short[0].id,
            attempt: 1,
            outcome: Outcome::Unknown {
                error: "its worker stopped".into(),
            },
            then: GroupEffect::Nothing,
        },
        Settle {
            id: short[1].id,
            attempt: 1,
            outcome: Outcome::Requeue,
            then: GroupEffect::Nothing,
        },
        // A live lease is never touched.
        Settle {
            id: live[0].id,
            attempt: 1,
            outcome: Outcome::Requeue,
            then: GroupEffect::Nothing,
        },
    ];
    let recovered = store
        .record(o.id, Fence::Expired, &settle, now())
        .await
        .unwrap();
    assert_eq!(recovered.refused, vec![live[0].id]);
    let late = store
        .record(
            o.id,
            Fence::Holder("w-dead"),
            &[sent(short[0].id, 1), sent(short[1].id, 1)],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        late.refused.len(),
        2,
        "the stalled worker's late results are refused"
    );
    let counts = store.counts(o.id).await.unwrap();
    assert_eq!((counts.unknown, counts.queued, counts.sending), (1, 1, 1));
    // The requeued row is claimed again, as a new attempt.
    let again = store.claim(o.id, &long("w-live"), now(), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, short[1].id);
    assert_eq!(again[0].attempts, 1, "a requeue does not count the attempt");
}

/// A worker that renews keeps its rows.
pub async fn renewed_leases_do_not_expire(store: Arc<dyn Store>) {
    let o = frozen(&store, "m-1/o", audience("m-1/o", 2)).await;
    let short = lease("w-a", Duration::from_millis(600));
    store.claim(o.id, &short, now(), 10).await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(store.renew(o.id, &short).await.unwrap(), 2);
    }
    assert!(store.expired(o.id, 10).await.unwrap().is_empty());
    assert_eq!(store.renew(o.id, &long("w-b")).await.unwrap(), 0);
}

/// Priority groups: a final failure queues the next rank, a send closes the group, an
/// unknown holds it until the operator reopens the unknown delivery.
pub async fn group_effects_fall_back_close_and_hold(store: Arc<dyn Store>) {
    let group = |recipient: &str| {
        [ChannelKind::Telegram, ChannelKind::Sms, ChannelKind::Email]
            .into_iter()
            .enumerate()
            .map(|(rank, channel)| NewDelivery {
                delivery_key: format!("m-1/o/{recipient}/{channel}"),
                channel: Some(channel),
                rank: rank as u32,
                status: if rank == 0 {
                    DeliveryStatus::Queued
                } else {
                    DeliveryStatus::Standby
                },
                ..delivery("m-1/o", recipient)
            })
            .collect::<Vec<_>>()
    };
    let rows: Vec<NewDelivery> = ["c-1", "c-2", "c-3"].into_iter().flat_map(group).collect();
    let o = frozen(&store, "m-1/o", rows).await;
    let w = long("w");
    let first = store.claim(o.id, &w, now(), 10).await.unwrap();
    assert_eq!(first.len(), 3, "only rank 0 is queued");
    let settle = |i: usize, outcome: Outcome, then: GroupEffect| Settle {
        id: first[i].id,
        attempt: 1,
        outcome,
        then,
    };
    let failed = Outcome::Failed {
        class: "recipient_gone".into(),
        error: "blocked".into(),
    };
    let results = [
        settle(0, failed, GroupEffect::FallBack),
        settle(
            1,
            Outcome::Sent {
                provider_id: None,
                cost: None,
            },
            GroupEffect::Close {
                reason: "delivered through telegram".into(),
            },
        ),
        settle(
            2,
            Outcome::Unknown {
                error: "no answer".into(),
            },
            GroupEffect::Hold {
                reason: "held: the telegram delivery is unknown".into(),
            },
        ),
    ];
    assert!(
        store
            .record(o.id, Fence::Holder("w"), &results, now())
            .await
            .unwrap()
            .refused
            .is_empty()
    );
    let next = store.claim(o.id, &w, now(), 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(
        (
            next[0].planned.recipient_id.as_str(),
            next[0].planned.channel
        ),
        ("c-1", Some(ChannelKind::Sms)),
        "the failed group falls back to its next rank"
    );
    let rows = store.deliveries(o.id, 0, 100).await.unwrap();
    let c2: Vec<_> = rows
        .iter()
        .filter(|d| d.planned.recipient_id == "c-2")
        .collect();
    assert!(
        c2[1..]
            .iter()
            .all(|d| d.planned.status == DeliveryStatus::Skipped
                && d.planned.error.as_deref() == Some("delivered through telegram"))
    );
    let c3: Vec<_> = rows
        .iter()
        .filter(|d| d.planned.recipient_id == "c-3")
        .collect();
    assert_eq!(c3[0].planned.status, DeliveryStatus::Unknown);
    assert!(
        c3[1..]
            .iter()
            .all(|d| d.planned.status == DeliveryStatus::Skipped)
    );
    assert_eq!(store.reopen_unknown(o.id, now()).await.unwrap(), 1);
    let rows = store.deliveries(o.id, 0, 100).await.unwrap();
    let c3: Vec<_> = rows
        .iter()
        .filter(|d| d.planned.recipient_id == "c-3")
        .collect();
    assert_eq!(c3[0].planned.status, DeliveryStatus::Queued);
    assert!(
        c3[1..]
            .iter()
            .all(|d| d.planned.status == DeliveryStatus::Standby && d.planned.error.is_none()),
        "held standby rows stand by again"
    );
    // Closed (not held) rows stay closed.
    let c2: Vec<_> = rows
        .iter()
        .filter(|d| d.planned.recipient_id == "c-2")
        .collect();
    assert!(
        c2[1..]
            .iter()
            .all(|d| d.planned.status == DeliveryStatus::Skipped)
    );
}

/// Retries wait for their time and count attempts; requeues do not.
pub async fn requeued_deliveries_do_not_count_the_attempt(store: Arc<dyn Store>) {
    let o = frozen(&store, "m-1/o", audience("m-1/o", 2)).await;
    let w = long("w");
    let claimed = store.claim(o.id, &w, now(), 10).await.unwrap();
    let later = now() + TimeDelta::minutes(5);
    let results = [
        Settle {
            id: claimed[0].id,
            attempt: 1,
            outcome: Outcome::Retry {
                not_before: later,
                class: "transient".into(),
                error: "HTTP 502".into(),
            },
            then: GroupEffect::Nothing,
        },
        Settle {
            id: claimed[1].id,
            attempt: 1,
            outcome: Outcome::Requeue,
            then: GroupEffect::Nothing,
        },
    ];
    store
        .record(o.id, Fence::Holder("w"), &results, now())
        .await
        .unwrap();
    let now_due = store.claim(o.id, &w, now(), 10).await.unwrap();
    assert_eq!(now_due.len(), 1);
    assert_eq!((now_due[0].id, now_due[0].attempts), (claimed[1].id, 1));
    let retried = store.claim(o.id, &w, later, 10).await.unwrap();
    assert_eq!((retried[0].id, retried[0].attempts), (claimed[0].id, 2));
    let rows = store.deliveries(o.id, 0, 10).await.unwrap();
    assert_eq!(rows[0].error_class.as_deref(), Some("transient"));
}

/// Counts split every row; pages follow row order.
pub async fn counts_and_pages_of_the_journal(store: Arc<dyn Store>) {
    let mut rows = audience("m-1/o", 25);
    rows[3].status = DeliveryStatus::Skipped;
    rows[3].error = Some("no_consent".into());
    let o = frozen(&store, "m-1/o", rows).await;
    let counts = store.counts(o.id).await.unwrap();
    assert_eq!((counts.queued, counts.skipped), (24, 1));
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.deliveries(o.id, after, 10).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        seen.extend(page.into_iter().map(|d| d.planned.recipient_id));
    }
    let expected: Vec<String> = (0..25).map(|i| format!("c-{i:05}")).collect();
    assert_eq!(seen, expected);
    let other = frozen(&store, "m-1/other", audience("m-1/other", 2)).await;
    assert_eq!(
        store.counts(other.id).await.unwrap().queued,
        2,
        "counts are per occurrence"
    );
}

/// Unreachable contacts are found among a batch of ids.
pub async fn unreachable_contacts_are_looked_up_in_batches(store: Arc<dyn Store>) {
    store
        .mark_unreachable("c-2", ChannelKind::Telegram, "blocked the bot")
        .await
        .unwrap();
    store
        .mark_unreachable("c-2", ChannelKind::Email, "no such mailbox")
        .await
        .unwrap();
    store
        .mark_unreachable("c-2", ChannelKind::Email, "no such mailbox, again")
        .await
        .unwrap();
    store
        .mark_unreachable("c-9", ChannelKind::Sms, "no such number")
        .await
        .unwrap();
    let ids: Vec<String> = (0..5000).map(|i| format!("c-{i}")).collect();
    let mut found = store.unreachable_among(&ids[..5]).await.unwrap();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("c-2".to_owned(), ChannelKind::Email),
            ("c-2".to_owned(), ChannelKind::Telegram)
        ]
    );
    assert_eq!(store.unreachable_among(&ids).await.unwrap().len(), 3);
    assert!(store.unreachable_among(&[]).await.unwrap().is_empty());
}

/// An accrual is kept once; pending ones are the sent deliveries without one.
pub async fn accruals_are_kept_once(store: Arc<dyn Store>) {
    let o = frozen(&store, "m-1/o", audience("m-1/o", 3)).await;
    let claimed = store.claim(o.id, &long("w"), now(), 10).await.unwrap();
    let results: Vec<Settle> = claimed.iter().map(|d| sent(d.id, 1)).collect();
    store
        .record(o.id, Fence::Holder("w"), &results, now())
        .await
        .unwrap();
    let ids: Vec<String> = (0..3).map(|i| format!("c-{i:05}")).collect();
    store.finish_accruals(o.id, &ids[..1]).await.unwrap();
    store.finish_accruals(o.id, &ids[..1]).await.unwrap();
    assert_eq!(
        store.accrued(o.id, &ids).await.unwrap(),
        vec![ids[0].clone()]
    );
    let pending = store.pending_accruals(o.id, 0, 10).await.unwrap();
    let who: Vec<&str> = pending.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(who, [ids[1].as_str(), ids[2].as_str()]);
    let after_first = store
        .pending_accruals(o.id, pending[0].0, 10)
        .await
        .unwrap();
    assert_eq!(after_first.len(), 1);
}

/// An occurrence (and a mailing) is finished only when nothing of it is open, and reopening
/// unknown deliveries opens a finished occurrence again.
pub async fn finishing_waits_for_open_work_and_reopening_undoes_it(store: Arc<dyn Store>) {
    let o = frozen(&store, "m-1/o", audience("m-1/o", 2)).await;
    store
        .transition_mailing(
            "m-1",
            &[MailingState::Draft],
            &MailingTransition::to(MailingState::Queued),
        )
        .await
        .unwrap();
    assert!(
        !store.finish_occurrence(o.id).await.unwrap(),
        "queued deliveries"
    );
    assert!(
        !store.finish_mailing("m-1").await.unwrap(),
        "a frozen occurrence"
    );
    let claimed = store.claim(o.id, &long("w"), now(), 10).await.unwrap();
    assert!(
        !store.finish_occurrence(o.id).await.unwrap(),
        "sending deliveries"
    );
    let results = [
        sent(claimed[0].id, 1),
        Settle {
            id: claimed[1].id,
            attempt: 1,
            outcome: Outcome::Unknown {
                error: "no answer".into(),
            },
            then: GroupEffect::Nothing,
        },
    ];
    store
        .record(o.id, Fence::Holder("w"), &results, now())
        .await
        .unwrap();
    assert!(store.finish_occurrence(o.id).await.unwrap());
    assert!(
        !store.finish_occurrence(o.id).await.unwrap(),
        "finished once"
    );
    assert_eq!(store.reopen_unknown(o.id, now()).await.unwrap(), 1);
    assert_eq!(
        store.occurrences(None).await.unwrap()[0].state,
        OccurrenceState::Frozen
    );
    assert!(!store.finish_occurrence(o.id).await.unwrap(), "reopened");
    let again = store.claim(o.id, &long("w"), now(), 10).await.unwrap();
    store
        .record(o.id, Fence::Holder("w"), &[sent(again[0].id, 2)], now())
        .await
        .unwrap();
    assert!(store.finish_occurrence(o.id).await.unwrap());
    assert!(store.finish_mailing("m-1").await.unwrap());
    assert_eq!(
        store.mailing("m-1").await.unwrap().unwrap().state,
        MailingState::Done
    );
}
