//! The delivery queue: claims, leases, fencing, recovery, priority groups.

use super::*;

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

/// A large set of results, some refused far into it, writes every other one: a backend that
/// writes results in chunks and undoes a chunk to find its refused rows keeps the chunks
/// before it.
pub async fn refused_results_deep_in_a_large_set_leave_the_others_written(store: Arc<dyn Store>) {
    let o = frozen(&store, "m-1/o", audience("m-1/o", 2_500)).await;
    let claimed = store.claim(o.id, &long("w-a"), now(), 2_500).await.unwrap();
    assert_eq!(claimed.len(), 2_500);
    let stale: HashSet<i64> = claimed[2_100..2_105].iter().map(|d| d.id).collect();
    let results: Vec<Settle> = claimed
        .iter()
        .map(|d| sent(d.id, if stale.contains(&d.id) { 9 } else { 1 }))
        .collect();
    let recorded = store
        .record(o.id, Fence::Holder("w-a"), &results, now())
        .await
        .unwrap();
    let refused: HashSet<i64> = recorded.refused.into_iter().collect();
    assert_eq!(refused, stale);
    let counts = store.counts(o.id).await.unwrap();
    assert_eq!((counts.sent, counts.sending), (2_495, 5));
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
    assert_eq!(
        retried[0].error_class.as_deref(),
        Some("transient"),
        "a claim tells how the last attempt ended"
    );
    let rows = store.deliveries(o.id, 0, 10).await.unwrap();
    assert_eq!(rows[0].error_class.as_deref(), Some("transient"));
}

/// A delivery put back behind rows already claimed comes first in the next claim (queue order
/// is due time, then row), and nothing is left queued when claims come back empty.
pub async fn rows_queued_again_are_claimed_again(store: Arc<dyn Store>) {
    let o = frozen(&store, "m-1/o", audience("m-1/o", 10)).await;
    let w = long("w");
    let first = store.claim(o.id, &w, now(), 3).await.unwrap();
    let second = store.claim(o.id, &w, now(), 3).await.unwrap();
    assert!(second.iter().all(|d| d.id > first[2].id));
    let back = Settle {
        id: first[1].id,
        attempt: 1,
        outcome: Outcome::Requeue,
        then: GroupEffect::Nothing,
    };
    let recorded = store
        .record(o.id, Fence::Holder("w"), &[back], now())
        .await
        .unwrap();
    assert!(recorded.refused.is_empty());
    let third = store.claim(o.id, &w, now(), 2).await.unwrap();
    assert_eq!(
        third[0].id, first[1].id,
        "the row put back is claimed first"
    );
    assert!(third[1].id > second[2].id);
    let mut all: Vec<i64> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|d| d.id)
        .collect();
    loop {
        let batch = store.claim(o.id, &w, now(), 3).await.unwrap();
        if batch.is_empty() {
            break;
        }
        all.extend(batch.iter().map(|d| d.id));
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 10, "every delivery claimed");
    assert_eq!(store.counts(o.id).await.unwrap().queued, 0);
}

/// A postponed delivery waits until its time, its attempt not counted and its reason kept.
pub async fn postponed_deliveries_wait_uncounted_with_their_reason(store: Arc<dyn Store>) {
    let o = frozen(&store, "m-1/o", audience("m-1/o", 2)).await;
    let w = long("w");
    let claimed = store.claim(o.id, &w, now(), 10).await.unwrap();
    let later = now() + TimeDelta::minutes(2);
    let postpone = Settle {
        id: claimed[0].id,
        attempt: 1,
        outcome: Outcome::Postpone {
            not_before: later,
            reason: "the telegram channel is down: cannot connect".into(),
        },
        then: GroupEffect::Nothing,
    };
    let recorded = store
        .record(
            o.id,
            Fence::Holder("w"),
            &[postpone, sent(claimed[1].id, 1)],
            now(),
        )
        .await
        .unwrap();
    assert!(recorded.refused.is_empty());
    assert!(store.claim(o.id, &w, now(), 10).await.unwrap().is_empty());
    assert_eq!(store.next_due(o.id).await.unwrap(), Some(later));
    let rows = store.deliveries(o.id, 0, 10).await.unwrap();
    assert_eq!(rows[0].planned.status, DeliveryStatus::Queued);
    assert_eq!(
        rows[0].planned.error.as_deref(),
        Some("the telegram channel is down: cannot connect")
    );
    let again = store.claim(o.id, &w, later, 10).await.unwrap();
    assert_eq!((again[0].id, again[0].attempts), (claimed[0].id, 1));
}
