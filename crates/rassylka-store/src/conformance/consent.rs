//! Checks of the consent role: kept secrets, unsubscribes, and the counts behind frequency
//! caps and provider limits.

use std::sync::Arc;

use chrono::TimeDelta;
use rassylka_model::ChannelKind;

use super::{delivery, frozen, long, now};
use crate::{DeliveryStatus, Fence, GroupEffect, Outcome, Settle, Store, Unsubscribe};

/// The first secret kept under a name stays; another name keeps its own.
pub async fn secrets_are_kept_once(store: Arc<dyn Store>) {
    let first = store.keep_secret("unsubscribe", b"first").await.unwrap();
    assert_eq!(first, b"first");
    let again = store.keep_secret("unsubscribe", b"second").await.unwrap();
    assert_eq!(again, b"first");
    let other = store.keep_secret("other", &[0, 255, 7]).await.unwrap();
    assert_eq!(other, [0, 255, 7]);
    assert_eq!(
        store.kept_secret("unsubscribe").await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
    assert_eq!(store.kept_secret("nothing").await.unwrap(), None);
}

/// An unsubscribe is kept once (a repeat keeps the first), listed since an instant, looked
/// up in batches, and forgotten by a resubscribe.
pub async fn unsubscribes_are_kept_once_listed_and_cleared(store: Arc<dyn Store>) {
    let unsubscribe = |recipient: &str, minutes: i64, source: &str| Unsubscribe {
        recipient_id: recipient.into(),
        mailing_id: "m-1".into(),
        channel: Some(ChannelKind::Email),
        at: now() + TimeDelta::minutes(minutes),
        source: source.into(),
    };
    assert_eq!(
        store
            .record_unsubscribe(&unsubscribe("c-1", 0, "link"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .record_unsubscribe(&unsubscribe("c-1", 3, "one_click"))
            .await
            .unwrap(),
        Some(unsubscribe("c-1", 0, "link")),
        "a repeat keeps and answers the first"
    );
    let mut no_channel = unsubscribe("c-2", 5, "mailto");
    no_channel.channel = None;
    assert_eq!(store.record_unsubscribe(&no_channel).await.unwrap(), None);
    assert_eq!(
        store.unsubscribes(None).await.unwrap(),
        vec![unsubscribe("c-1", 0, "link"), no_channel.clone()]
    );
    assert_eq!(
        store
            .unsubscribes(Some(now() + TimeDelta::minutes(1)))
            .await
            .unwrap(),
        vec![no_channel]
    );
    let mut among = store
        .unsubscribed_among(&["c-1", "c-2", "c-3"])
        .await
        .unwrap();
    among.sort();
    assert_eq!(among, ["c-1", "c-2"]);
    assert!(store.unsubscribed_among(&[]).await.unwrap().is_empty());
    assert!(store.resubscribe("c-1").await.unwrap());
    assert!(!store.resubscribe("c-1").await.unwrap());
    assert_eq!(
        store.unsubscribed_among(&["c-1"]).await.unwrap(),
        Vec::<String>::new()
    );
    let left: Vec<String> = store
        .unsubscribes(None)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.recipient_id)
        .collect();
    assert_eq!(left, ["c-2"]);
}

/// Reach is counted per recipient over the occurrences asked about (skipped and failed rows
/// do not count, a recipient counts once per occurrence); sent rows are counted per channel
/// since an instant; the latest address of a recipient in a mailing is found.
pub async fn reach_sends_and_addresses_are_counted(store: Arc<dyn Store>) {
    let mut skipped = delivery("o-1", "c-3");
    skipped.status = DeliveryStatus::Skipped;
    skipped.error = Some("no_consent".into());
    skipped.channel = None;
    skipped.address = None;
    let mut second_channel = delivery("o-1", "c-1");
    second_channel.delivery_key = "o-1/c-1/vk".into();
    second_channel.channel = Some(ChannelKind::Vk);
    let first = frozen(
        &store,
        "o-1",
        vec![
            delivery("o-1", "c-1"),
            second_channel,
            delivery("o-1", "c-2"),
            skipped,
        ],
    )
    .await;
    let mut moved = delivery("o-2", "c-1");
    moved.address = Some("77".into());
    let second = frozen(&store, "o-2", vec![moved, delivery("o-2", "c-2")]).await;
    // c-2 fails in the second occurrence; c-1 is sent in the first.
    let claimed = store.claim(second.id, &long("w"), now(), 10).await.unwrap();
    let c2 = claimed
        .iter()
        .find(|d| d.planned.recipient_id == "c-2")
        .unwrap();
    let c1 = claimed
        .iter()
        .find(|d| d.planned.recipient_id == "c-1")
        .unwrap();
    let results = [
        Settle {
            id: c2.id,
            attempt: c2.attempts,
            outcome: Outcome::Failed {
                class: "rejected".into(),
                error: "no".into(),
            },
            then: GroupEffect::Nothing,
        },
        Settle {
            id: c1.id,
            attempt: c1.attempts,
            outcome: Outcome::Sent {
                provider_id: None,
                cost: None,
            },
            then: GroupEffect::Nothing,
        },
    ];
    store
        .record(second.id, Fence::Holder("w"), &results, now())
        .await
        .unwrap();
    let mut reach = store
        .reached_in(&[first.id, second.id], &["c-1", "c-2", "c-3", "c-9"])
        .await
        .unwrap();
    reach.sort();
    assert_eq!(reach, [("c-1".to_owned(), 2), ("c-2".to_owned(), 1)]);
    let only_second = store
        .reached_in(&[second.id], &["c-1", "c-2"])
        .await
        .unwrap();
    assert_eq!(only_second, [("c-1".to_owned(), 1)]);
    assert!(store.reached_in(&[], &["c-1"]).await.unwrap().is_empty());

    // Sent rows count from when they were sent; rows being sent (or unknown) from when they
    // were last touched. The first occurrence's queued rows count for nothing yet.
    let since = now() - TimeDelta::seconds(1);
    let sends = |channel| {
        let store = Arc::clone(&store);
        async move { store.sends_since(channel, since).await.unwrap() }
    };
    assert_eq!(sends(ChannelKind::Telegram).await, 1);
    assert_eq!(sends(ChannelKind::Email).await, 0);
    let later = now() + TimeDelta::seconds(1);
    assert_eq!(
        store
            .sends_since(ChannelKind::Telegram, later)
            .await
            .unwrap(),
        0
    );
    let sending = store.claim(first.id, &long("w2"), now(), 1).await.unwrap();
    assert_eq!(sending.len(), 1);
    assert_eq!(sends(ChannelKind::Telegram).await, 2);
    // Both counts from one look equal the two looks, whichever instant comes first.
    for (a, b) in [(since, later), (later, since), (since, since)] {
        assert_eq!(
            store
                .sends_since_both(ChannelKind::Telegram, a, b)
                .await
                .unwrap(),
            (
                store.sends_since(ChannelKind::Telegram, a).await.unwrap(),
                store.sends_since(ChannelKind::Telegram, b).await.unwrap()
            )
        );
    }
    assert_eq!(
        store
            .sends_since_both(ChannelKind::Telegram, since, later)
            .await
            .unwrap(),
        (2, 0)
    );

    let seen: Vec<(ChannelKind, String, DeliveryStatus)> = store
        .addresses("m-1", "c-1")
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.channel, a.address, a.status))
        .collect();
    // The first occurrence's first row (c-1 on telegram) is the one just claimed.
    assert_eq!(
        seen,
        [
            (ChannelKind::Telegram, "77".to_owned(), DeliveryStatus::Sent),
            (ChannelKind::Vk, "42".to_owned(), DeliveryStatus::Queued),
            (
                ChannelKind::Telegram,
                "42".to_owned(),
                DeliveryStatus::Sending
            ),
        ],
        "newest first"
    );
    assert!(store.addresses("m-1", "c-3").await.unwrap().is_empty());
    assert!(store.addresses("m-2", "c-1").await.unwrap().is_empty());
}

/// A delivery skipped after its claim (its recipient unsubscribed since the freeze) is
/// skipped with the reason, its attempt uncounted, and its priority group closed.
pub async fn deliveries_skipped_after_the_claim_close_their_group_uncounted(store: Arc<dyn Store>) {
    let mut standby = delivery("o-1", "c-1");
    standby.delivery_key = "o-1/c-1/vk".into();
    standby.channel = Some(ChannelKind::Vk);
    standby.rank = 1;
    standby.status = DeliveryStatus::Standby;
    let o = frozen(
        &store,
        "o-1",
        vec![delivery("o-1", "c-1"), standby, delivery("o-1", "c-2")],
    )
    .await;
    let claimed = store.claim(o.id, &long("w"), now(), 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let c1 = claimed
        .iter()
        .find(|d| d.planned.recipient_id == "c-1")
        .unwrap();
    let recorded = store
        .record(
            o.id,
            Fence::Holder("w"),
            &[Settle {
                id: c1.id,
                attempt: c1.attempts,
                outcome: Outcome::Skip {
                    reason: "unsubscribed".into(),
                },
                then: GroupEffect::Close {
                    reason: "unsubscribed".into(),
                },
            }],
            now(),
        )
        .await
        .unwrap();
    assert!(recorded.refused.is_empty());
    let rows = store.deliveries(o.id, 0, 10).await.unwrap();
    let of_c1: Vec<(DeliveryStatus, Option<&str>, u32)> = rows
        .iter()
        .filter(|d| d.planned.recipient_id == "c-1")
        .map(|d| (d.planned.status, d.planned.error.as_deref(), d.attempts))
        .collect();
    assert_eq!(
        of_c1,
        [
            (DeliveryStatus::Skipped, Some("unsubscribed"), 0),
            (DeliveryStatus::Skipped, Some("unsubscribed"), 0),
        ]
    );
    let counts = store.counts(o.id).await.unwrap();
    assert_eq!((counts.skipped, counts.sending), (2, 1));
}
