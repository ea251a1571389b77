//! Mailings, occurrences and freezes: compare-and-set states, unique keys, one freeze.

use super::*;

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

/// Occurrences are found by when they fired, both bounds excluded.
pub async fn occurrences_are_found_between_two_instants(store: Arc<dyn Store>) {
    store.create_mailing(&mailing("m-1")).await.unwrap();
    for hours in [0, 1, 2, 3] {
        let new = NewOccurrence {
            mailing_id: "m-1".into(),
            key: format!("m-1/v1/{hours}"),
            fired_at: now() + chrono::TimeDelta::hours(hours),
            evaluation_date: NaiveDate::from_ymd_opt(2026, 11, 18).unwrap_or_default(),
            state: OccurrenceState::Freezing,
        };
        store.start_occurrence(&new).await.unwrap();
    }
    let keys: Vec<String> = store
        .occurrences_between(now(), now() + chrono::TimeDelta::hours(3))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["m-1/v1/1", "m-1/v1/2"]);
}
