//! The frequency cap (SPEC §7c) through the public API: advertising occurrences counted
//! across mailings from the journal, service mail exempt, previews planned alike.

use rassylka::Dispatcher;
use rassylka::channels::FrequencyCap;
use rassylka::model::ChannelKind;
use rassylka::store::DeliveryStatus;

use crate::consent::{LETTER, at, journal, mailing, send, world};

#[tokio::test]
async fn the_frequency_cap_counts_advertising_occurrences_across_mailings() {
    let w = world(|b| b.frequency_cap(FrequencyCap { max: 2, days: 7 })).await;
    send(
        &w,
        &mailing("d1", "advertising", "2026-12-01T10:00", LETTER),
        "2026-12-01T10:01:00+03:00",
    )
    .await;
    // Service mail neither counts nor is capped.
    send(
        &w,
        &mailing("s2", "service", "2026-12-02T10:00", LETTER),
        "2026-12-02T10:01:00+03:00",
    )
    .await;
    send(
        &w,
        &mailing("d3", "advertising", "2026-12-03T10:00", LETTER),
        "2026-12-03T10:01:00+03:00",
    )
    .await;
    let d5 = mailing("d5", "advertising", "2026-12-05T10:00", LETTER);
    w.clock.set(at("2026-12-05T10:00:00+03:00"));
    w.dispatcher.save(&d5).await.unwrap();
    let preview = w.dispatcher.preview(&d5, None).await.unwrap();
    assert_eq!(
        preview.per_channel.get(&ChannelKind::Email),
        Some(&0),
        "a preview counts as the run"
    );
    send(&w, &d5, "2026-12-05T10:01:00+03:00").await;
    let rows = journal(&w, "d5").await;
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r.1 == DeliveryStatus::Skipped && r.2.as_deref() == Some("frequency_cap")),
        "{rows:?}"
    );
    send(
        &w,
        &mailing("s6", "service", "2026-12-06T10:00", LETTER),
        "2026-12-06T10:01:00+03:00",
    )
    .await;
    assert!(
        journal(&w, "s6")
            .await
            .iter()
            .all(|r| r.1 == DeliveryStatus::Sent)
    );
    // Seven days after the first: only d3 is less than 7 days away (d5 sent nothing).
    send(
        &w,
        &mailing("d8", "advertising", "2026-12-08T10:00", LETTER),
        "2026-12-08T10:01:00+03:00",
    )
    .await;
    assert!(
        journal(&w, "d8")
            .await
            .iter()
            .all(|r| r.1 == DeliveryStatus::Sent)
    );
    // Now d3 and d8 are both within 7 days of d9.
    send(
        &w,
        &mailing("d9", "advertising", "2026-12-09T10:00", LETTER),
        "2026-12-09T10:01:00+03:00",
    )
    .await;
    assert!(
        journal(&w, "d9")
            .await
            .iter()
            .all(|r| r.2.as_deref() == Some("frequency_cap"))
    );
    // A preview plans for the mailing's own time: on the 20th nothing is near.
    let later = mailing("d20", "advertising", "2026-12-20T10:00", LETTER);
    w.dispatcher.save(&later).await.unwrap();
    let preview = w.dispatcher.preview(&later, None).await.unwrap();
    assert_eq!(preview.per_channel.get(&ChannelKind::Email), Some(&3));
    // Asked for a date, it counts back from that date, as a run on that day would.
    let on_the_10th = chrono::NaiveDate::from_ymd_opt(2026, 12, 10);
    let preview = w.dispatcher.preview(&later, on_the_10th).await.unwrap();
    assert_eq!(preview.per_channel.get(&ChannelKind::Email), Some(&0));
}
