//! Reads of the journal, contacts gone and bonus accruals.

use super::*;

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
    let owned: Vec<String> = (0..5000).map(|i| format!("c-{i}")).collect();
    let ids: Vec<&str> = owned.iter().map(String::as_str).collect();
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

/// A tally counts distinct recipients and groups rows by channel, status and cost exactly;
/// journal pages filter by status and recipient and follow row order.
pub async fn tallies_and_filtered_journal_pages(store: Arc<dyn Store>) {
    let mut rows = audience("m-1/o", 6);
    // c-00000 on two channels: one recipient, two rows.
    let mut sms = delivery("m-1/o", "c-00000");
    sms.delivery_key = "m-1/o/c-00000/sms".into();
    sms.channel = Some(ChannelKind::Sms);
    sms.cost = Some(rust_decimal::Decimal::new(450, 2));
    sms.group_key = "c-00000/sms".into();
    rows.push(sms);
    rows[5].status = DeliveryStatus::Skipped;
    rows[5].channel = None;
    rows[5].error = Some("no_consent".into());
    let o = frozen(&store, "m-1/o", rows).await;
    let claimed = store.claim(o.id, &long("w"), now(), 10).await.unwrap();
    assert_eq!(claimed.len(), 6);
    let price = rust_decimal::Decimal::new(450, 2);
    let results: Vec<Settle> = claimed
        .iter()
        .map(|d| {
            let mut s = sent(d.id, 1);
            if d.planned.channel == Some(ChannelKind::Sms) {
                s.outcome = Outcome::Sent {
                    provider_id: Some("sms-1".into()),
                    cost: Some(price),
                };
            } else if d.planned.recipient_id == "c-00001" {
                s.outcome = Outcome::Failed {
                    class: "invalid_address".into(),
                    error: "chat not found".into(),
                };
            }
            s
        })
        .collect();
    store
        .record(o.id, Fence::Holder("w"), &results, now())
        .await
        .unwrap();
    let tally = store.tally(o.id).await.unwrap();
    assert_eq!(tally.recipients, 6);
    let mut grouped: Vec<(Option<ChannelKind>, DeliveryStatus, Option<String>, u64)> = tally
        .rows
        .into_iter()
        .map(|r| (r.channel, r.status, r.cost.map(|c| c.to_string()), r.rows))
        .collect();
    grouped.sort_by_key(|g| (g.0.map(ChannelKind::as_str), g.1.as_str()));
    assert_eq!(
        grouped,
        vec![
            (None, DeliveryStatus::Skipped, None, 1),
            (
                Some(ChannelKind::Sms),
                DeliveryStatus::Sent,
                Some("4.50".into()),
                1
            ),
            (Some(ChannelKind::Telegram), DeliveryStatus::Failed, None, 1),
            (Some(ChannelKind::Telegram), DeliveryStatus::Sent, None, 4),
        ]
    );
    let page = |filter: JournalFilter, after: i64, limit: usize| {
        let store = Arc::clone(&store);
        async move { store.journal(o.id, &filter, after, limit).await.unwrap() }
    };
    let sent_rows = page(
        JournalFilter {
            status: Some(DeliveryStatus::Sent),
            ..JournalFilter::default()
        },
        0,
        100,
    )
    .await;
    assert_eq!(sent_rows.len(), 5);
    assert!(sent_rows.windows(2).all(|w| w[0].id < w[1].id));
    let first_two = page(JournalFilter::default(), 0, 2).await;
    let next = page(JournalFilter::default(), first_two[1].id, 100).await;
    assert_eq!(first_two.len() + next.len(), 7);
    let of_one = page(
        JournalFilter {
            recipient_id: Some("c-00000".into()),
            ..JournalFilter::default()
        },
        0,
        100,
    )
    .await;
    let channels: Vec<Option<ChannelKind>> = of_one.iter().map(|d| d.planned.channel).collect();
    assert_eq!(
        channels,
        [Some(ChannelKind::Telegram), Some(ChannelKind::Sms)]
    );
    let none = page(
        JournalFilter {
            status: Some(DeliveryStatus::Unknown),
            recipient_id: Some("c-00000".into()),
        },
        0,
        100,
    )
    .await;
    assert!(none.is_empty());
    // Outcomes: the same rows, a few columns, paged alike.
    for status in [
        DeliveryStatus::Sent,
        DeliveryStatus::Skipped,
        DeliveryStatus::Failed,
    ] {
        let full = page(
            JournalFilter {
                status: Some(status),
                ..JournalFilter::default()
            },
            0,
            100,
        )
        .await;
        let want: Vec<crate::OutcomeRow> = full
            .into_iter()
            .map(|d| crate::OutcomeRow {
                id: d.id,
                recipient_id: d.planned.recipient_id,
                sent_at: d.sent_at,
                reason: d.planned.error,
                cost: d.planned.cost,
            })
            .collect();
        let first = store.outcomes(o.id, status, 0, 2).await.unwrap();
        let after = first.last().map_or(0, |r| r.id);
        let rest = store.outcomes(o.id, status, after, 100).await.unwrap();
        let got: Vec<crate::OutcomeRow> = first.into_iter().chain(rest).collect();
        assert_eq!(got, want, "{status:?}");
    }
    let sent = store
        .outcomes(o.id, DeliveryStatus::Sent, 0, 100)
        .await
        .unwrap();
    assert!(sent.iter().all(|r| r.sent_at == Some(now())));
    let skipped = store
        .outcomes(o.id, DeliveryStatus::Skipped, 0, 100)
        .await
        .unwrap();
    assert_eq!(skipped[0].reason.as_deref(), Some("no_consent"));
}

/// Refused notices are kept and listed oldest first, from a given time on.
pub async fn notice_refusals_are_kept_and_listed_since(store: Arc<dyn Store>) {
    let refusal = |event_id: &str, minutes: i64| crate::NoticeRefusal {
        event_id: event_id.into(),
        event: "order_ready".into(),
        recipient_id: "c-1".into(),
        user: "u-7".into(),
        role: "seller".into(),
        department: Some("salon-1".into()),
        reason: "the order A-553 is not ready (status in_work)".into(),
        at: now() + TimeDelta::minutes(minutes),
    };
    store.record_refusal(&refusal("ev-2", 5)).await.unwrap();
    store.record_refusal(&refusal("ev-1", 0)).await.unwrap();
    let mut no_department = refusal("ev-3", 9);
    no_department.department = None;
    store.record_refusal(&no_department).await.unwrap();
    let all: Vec<String> = store
        .refusals(None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    assert_eq!(all, ["ev-1", "ev-2", "ev-3"]);
    let later = store
        .refusals(Some(now() + TimeDelta::minutes(5)))
        .await
        .unwrap();
    assert_eq!(later, vec![refusal("ev-2", 5), no_department]);
}
