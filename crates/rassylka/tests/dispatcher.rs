//! The dispatcher through its public API, on real SQLite (in memory and in files) with
//! in-memory channels: lifecycle, preview = run, priority fallback, error classes, crash
//! recovery, bonuses, send windows, malformed input.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rassylka::channels::{Channel, ErrorClass, FileOutbox, MemoryChannel};
use rassylka::model::{Address, ChannelKind, PhoneNumber, Recipient};
use rassylka::store::prelude::*;
use rassylka::store::{DeliveryStatus, MailingState, OccurrenceState};
use rassylka::{
    DispatchError, Dispatcher, Mailing, ManualClock, MemoryLedger, MemorySource, Rassylka,
    RassylkaBuilder, SqliteStore,
};

fn people() -> Vec<Recipient> {
    let lines = [
        r#"{"id": "a", "first_name": "Анна", "gender": "female", "timezone": "Asia/Vladivostok", "consent": {"advertising": true},
            "contacts": {"telegram_chat_id": 1, "phone": "+79160000001", "email": "a@example.com"}}"#,
        r#"{"id": "b", "first_name": "Борис", "consent": {"advertising": true}, "contacts": {"phone": "8 916 000-00-02"}}"#,
        r#"{"id": "c", "first_name": "Вера", "consent": {"advertising": true}, "contacts": {"telegram_chat_id": 3, "vk_user_id": 33}}"#,
        r#"{"id": "d", "first_name": "Глеб", "consent": {"advertising": false}, "contacts": {"telegram_chat_id": 4}}"#,
        r#"{"id": "e", "first_name": "Дина", "consent": {"advertising": true}, "no_mailings": true, "contacts": {"phone": "+79160000005"}}"#,
        r#"{"id": "f", "consent": {"advertising": true}, "contacts": {"email": "broken@"}}"#,
    ];
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

struct World {
    dispatcher: Rassylka,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    telegram: Arc<MemoryChannel>,
    sms: Arc<MemoryChannel>,
    vk: Arc<MemoryChannel>,
    ledger: Arc<MemoryLedger>,
}

async fn world_with(
    store: SqliteStore,
    now: &str,
    tweak: impl FnOnce(RassylkaBuilder) -> RassylkaBuilder,
) -> World {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::starting_at(at(now)));
    let (telegram, sms, vk, email) = (
        Arc::new(MemoryChannel::new(ChannelKind::Telegram)),
        Arc::new(MemoryChannel::new(ChannelKind::Sms)),
        Arc::new(MemoryChannel::new(ChannelKind::Vk)),
        Arc::new(MemoryChannel::new(ChannelKind::Email)),
    );
    let ledger = Arc::new(MemoryLedger::default());
    let builder = Rassylka::builder()
        .recipients(MemorySource::new(people()))
        .store_shared(store.clone())
        .clock(clock.clone())
        .ledger(ledger.clone())
        .channel(telegram.clone())
        .channel(sms.clone())
        .channel(vk.clone())
        .channel(email)
        .tariff(ChannelKind::Sms, "4.5".parse().unwrap())
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .max_wait(Duration::from_secs(5));
    World {
        dispatcher: tweak(builder).build().unwrap(),
        store,
        clock,
        telegram,
        sms,
        vk,
        ledger,
    }
}

async fn world(now: &str) -> World {
    world_with(SqliteStore::temporary().await.unwrap(), now, |b| b).await
}

fn mailing(mode: &str, extra: &str) -> Mailing {
    Mailing::from_json(&format!(
        r#"{{"id": "m-1", "name": "Тест", "class": "advertising", "mode": "{mode}",
            "schedule": {{"start": "2026-11-22T10:00", "tz": "Europe/Moscow", "every": "once"}},
            "channels": ["telegram", "sms", "vk"],
            "content": {{"default": {{"dialect": "bonusplus", "text": "[ИМЯ|Друг], дарим [БОН2] бонусов!"}}}},
            "bonus": {{"amount": 300, "expires_in_days": 14}}{extra}}}"#
    ))
    .unwrap()
}

/// The one-time advertising mailing `m-1` through `channel` alone, with `extra` JSON members.
fn one_channel(channel: &str, text: &str, extra: &str) -> Mailing {
    Mailing::from_json(&format!(
        r#"{{"id": "m-1", "class": "advertising",
            "schedule": {{"start": "2026-11-22T10:00", "tz": "Europe/Moscow", "every": "once"}},
            "channels": ["{channel}"], "content": {{"default": {{"dialect": "bonusplus", "text": "{text}"}}}}{extra}}}"#
    ))
    .unwrap()
}

async fn statuses(w: &World) -> Vec<(String, Option<ChannelKind>, DeliveryStatus)> {
    let mut out = Vec::new();
    for o in w.store.occurrences(Some("m-1")).await.unwrap() {
        for d in w.store.deliveries(o.id, 0, 1000).await.unwrap() {
            out.push((
                d.planned.recipient_id.clone(),
                d.planned.channel,
                d.planned.status,
            ));
        }
    }
    out
}

#[tokio::test]
async fn preview_equals_what_the_run_sends_in_both_modes() {
    for mode in ["all", "priority"] {
        let w = world("2026-11-22T07:00:30Z").await;
        let m = mailing(mode, "");
        w.dispatcher.save(&m).await.unwrap();
        let preview = w.dispatcher.preview(&m, None).await.unwrap();
        assert_eq!(preview.matched, 6);
        w.dispatcher.confirm("m-1").await.unwrap();
        let report = w.dispatcher.run_due().await.unwrap();
        let sent = |k| preview.per_channel[&k];
        assert_eq!(
            w.telegram.sent().len() as u64,
            sent(ChannelKind::Telegram),
            "{mode}"
        );
        assert_eq!(w.sms.sent().len() as u64, sent(ChannelKind::Sms), "{mode}");
        assert_eq!(w.vk.sent().len() as u64, sent(ChannelKind::Vk), "{mode}");
        assert_eq!(
            report.counts.sent,
            preview.per_channel.values().sum::<u64>()
        );
        if mode == "priority" {
            // a: telegram; b: sms; c: telegram (vk on standby, then skipped).
            assert_eq!(
                (
                    sent(ChannelKind::Telegram),
                    sent(ChannelKind::Sms),
                    sent(ChannelKind::Vk)
                ),
                (2, 1, 0)
            );
        } else {
            assert_eq!(
                (
                    sent(ChannelKind::Telegram),
                    sent(ChannelKind::Sms),
                    sent(ChannelKind::Vk)
                ),
                (2, 2, 1)
            );
        }
        assert_eq!(
            w.telegram.sent()[0].message.text,
            "Анна, дарим 300 бонусов!"
        );
        let record = w.store.mailing("m-1").await.unwrap().unwrap();
        assert_eq!(record.state, MailingState::Done);
        // Excluded recipients are journaled as skipped with the reason.
        let rows = statuses(&w).await;
        assert!(rows.contains(&("d".into(), None, DeliveryStatus::Skipped)));
        assert!(rows.contains(&("e".into(), None, DeliveryStatus::Skipped)));
        assert!(rows.contains(&("f".into(), None, DeliveryStatus::Skipped)));
        if mode == "priority" {
            // The channels standing by behind a sent delivery are closed with the reason.
            let occurrence = w.store.occurrences(Some("m-1")).await.unwrap().remove(0);
            let closed: Vec<(String, Option<ChannelKind>, Option<String>)> = w
                .store
                .deliveries(occurrence.id, 0, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|d| {
                    d.planned.status == DeliveryStatus::Skipped && d.planned.channel.is_some()
                })
                .map(|d| (d.planned.recipient_id, d.planned.channel, d.planned.error))
                .collect();
            let through = Some("delivered through telegram".to_owned());
            assert_eq!(
                closed,
                [
                    ("a".into(), Some(ChannelKind::Sms), through.clone()),
                    ("c".into(), Some(ChannelKind::Vk), through)
                ]
            );
        }
        // Running again sends nothing more.
        w.dispatcher.run_due().await.unwrap();
        assert_eq!(w.telegram.sent().len() as u64, sent(ChannelKind::Telegram));
    }
}

#[tokio::test]
async fn cost_counts_sms_segments_of_each_recipients_own_text() {
    let w = world("2026-11-22T07:00:30Z").await;
    let long = "Ж".repeat(65);
    let m = Mailing::from_json(&format!(
        r#"{{"id": "m-1", "class": "service", "channels": ["sms"], "tz": "Europe/Moscow",
            "content": {{"sms": {{"text": "{{first_name|}}{long}"}}}}}}"#
    ))
    .unwrap();
    let cost = w.dispatcher.cost(&m, None).await.unwrap();
    // a: «Анна» + 65 = 69 UCS-2 characters, one part; b: «Борис» + 65 = 70; e: «Дина» + 65 = 69.
    // Service mailings ignore consent, so a, b and e (who unsubscribed) all get one.
    let sms = &cost.per_channel[&ChannelKind::Sms];
    assert_eq!((sms.messages, sms.units), (3, 3));
    assert_eq!(cost.total.to_string(), "13.5");
    let m = Mailing::from_json(&format!(
        r#"{{"id": "m-1", "class": "service", "channels": ["sms"],
            "content": {{"sms": {{"text": "{{first_name|}}{long}Ж"}}}}}}"#
    ))
    .unwrap();
    // One more character: 71 for «Борис» makes two parts (67 + 4), the others stay at 70.
    let sms = w.dispatcher.cost(&m, None).await.unwrap().per_channel[&ChannelKind::Sms].clone();
    assert_eq!((sms.messages, sms.units), (3, 4));
}

#[tokio::test]
async fn priority_falls_back_when_a_channel_fails_for_good_and_remembers_gone_contacts() {
    let w = world("2026-11-22T07:00:30Z").await;
    w.telegram
        .fail_for(Address::TelegramChat(1), ErrorClass::RecipientGone);
    w.telegram
        .fail_for(Address::TelegramChat(3), ErrorClass::Rejected);
    w.dispatcher.save(&mailing("priority", "")).await.unwrap();
    w.dispatcher.confirm("m-1").await.unwrap();
    let report = w.dispatcher.run_due().await.unwrap();
    assert_eq!(report.counts.failed, 2);
    // a fell back to sms, c to vk.
    let sms: Vec<_> = w.sms.sent().iter().map(|s| s.to.clone()).collect();
    assert!(sms.contains(&Address::Phone(PhoneNumber::parse("+79160000001").unwrap())));
    assert_eq!(w.vk.sent().len(), 1);
    assert!(
        w.store
            .unreachable_among(&["a", "b"])
            .await
            .unwrap()
            .contains(&("a".to_owned(), ChannelKind::Telegram))
    );
    // The next mailing does not try a's telegram again.
    let m2 = Mailing::from_json(
        r#"{"id": "m-2", "class": "service", "channels": ["telegram"], "content": {"default": {"text": "hi"}}}"#,
    )
    .unwrap();
    let preview = w.dispatcher.preview(&m2, None).await.unwrap();
    assert_eq!(
        preview.per_channel[&ChannelKind::Telegram],
        2,
        "c and d, not a"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff_until_sent_or_out_of_attempts() {
    let w = world_with(
        SqliteStore::temporary().await.unwrap(),
        "2026-11-22T07:00:30Z",
        |b| b.max_attempts(3),
    )
    .await;
    w.telegram.fail_next(ErrorClass::Transient);
    w.telegram.fail_next(ErrorClass::Transient);
    w.sms.fail_always(Some(ErrorClass::Transient));
    w.dispatcher.save(&mailing("all", "")).await.unwrap();
    w.dispatcher.confirm("m-1").await.unwrap();
    let report = w.dispatcher.run_due().await.unwrap();
    assert_eq!(
        w.telegram.sent().len(),
        2,
        "both telegram deliveries got through on a retry"
    );
    assert_eq!(
        report.counts.failed, 2,
        "the two sms deliveries gave up after 3 attempts"
    );
    for o in w.store.occurrences(Some("m-1")).await.unwrap() {
        for d in w.store.deliveries(o.id, 0, 100).await.unwrap() {
            if d.planned.channel == Some(ChannelKind::Sms) {
                assert_eq!((d.planned.status, d.attempts), (DeliveryStatus::Failed, 3));
                assert_eq!(d.error_class.as_deref(), Some("transient"));
            }
        }
    }
}

#[tokio::test]
async fn an_ambiguous_failure_is_unknown_and_never_retried_blind() {
    // No answer after the request may have reached the provider: it may hold the message.
    let w = world("2026-11-22T07:00:30Z").await;
    w.telegram.fail_next(ErrorClass::Ambiguous);
    w.dispatcher.save(&mailing("all", "")).await.unwrap();
    w.dispatcher.confirm("m-1").await.unwrap();
    let report = w.dispatcher.run_due().await.unwrap();
    assert_eq!(report.counts.unknown, 1);
    let sent_first = w.telegram.sent().len();
    assert_eq!(
        sent_first, 1,
        "the other telegram delivery went out; this one is unknown"
    );
    w.dispatcher.run_due().await.unwrap();
    assert_eq!(
        w.telegram.sent().len(),
        sent_first,
        "not resent unless asked"
    );
    assert_eq!(w.dispatcher.resend_unknown("m-1").await.unwrap(), 1);
    w.dispatcher.run_due().await.unwrap();
    assert_eq!(
        w.telegram.sent().len(),
        sent_first + 1,
        "resent on the operator's word"
    );
}

#[tokio::test]
async fn quota_pauses_the_mailing_until_it_renews_and_configuration_stops_it() {
    let w = world("2026-11-22T07:00:30Z").await;
    w.sms.fail_next(ErrorClass::Quota);
    w.dispatcher.save(&mailing("all", "")).await.unwrap();
    w.dispatcher.confirm("m-1").await.unwrap();
    w.dispatcher.run_due().await.unwrap();
    let record = w.store.mailing("m-1").await.unwrap().unwrap();
    assert_eq!(record.state, MailingState::Paused);
    let until = record.paused_until.unwrap();
    assert_eq!(
        until.to_rfc3339(),
        "2026-11-22T21:00:00+00:00",
        "next midnight in Moscow"
    );
    // Still paused before that.
    w.dispatcher.run_due().await.unwrap();
    let before = w.sms.sent().len();
    w.clock.advance(TimeDelta::hours(15));
    let report = w.dispatcher.run_due().await.unwrap();
    assert!(w.sms.sent().len() > before);
    assert_eq!(report.counts.queued, 0);

    let w = world("2026-11-22T07:00:30Z").await;
    w.telegram.fail_always(Some(ErrorClass::Configuration));
    w.dispatcher.save(&mailing("all", "")).await.unwrap();
    w.dispatcher.confirm("m-1").await.unwrap();
    let err = w.dispatcher.run_mailing("m-1").await.unwrap_err();
    assert!(
        matches!(
            err,
            DispatchError::Configuration {
                channel: ChannelKind::Telegram,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        w.store.mailing("m-1").await.unwrap().unwrap().state,
        MailingState::Stopped
    );
    // Through run_due the failure is reported and other mailings still run.
    w.dispatcher.resume("m-1").await.unwrap();
    let m2 = Mailing::from_json(
        r#"{"id": "m-2", "class": "service", "channels": ["sms"], "content": {"default": {"text": "hi"}}}"#,
    )
    .unwrap();
    w.dispatcher.save(&m2).await.unwrap();
    w.dispatcher.confirm("m-2").await.unwrap();
    let report = w.dispatcher.run_due().await.unwrap();
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].0, "m-1");
    assert!(
        report.failures[0]
            .1
            .contains("telegram channel's settings are wrong"),
        "{:?}",
        report.failures
    );
    assert_eq!(
        w.sms.sent().len(),
        5,
        "two from m-1's first batch, three from m-2 (a, b and e: service ignores opt-outs)"
    );
    w.telegram.fail_always(None);
    w.dispatcher.resume("m-1").await.unwrap();
    w.dispatcher.run_due().await.unwrap();
    assert_eq!(w.telegram.sent().len(), 2);
}

#[tokio::test]
async fn bonuses_are_accrued_once_per_occurrence_and_recipient() {
    let w = world("2026-11-22T07:00:30Z").await;
    w.dispatcher.save(&mailing("all", "")).await.unwrap();
    w.dispatcher.confirm("m-1").await.unwrap();
    w.dispatcher.run_due().await.unwrap();
    w.dispatcher.run_due().await.unwrap();
    let mut who: Vec<_> = w
        .ledger
        .accruals()
        .iter()
        .map(|a| a.recipient_id.clone())
        .collect();
    who.sort();
    assert_eq!(
        who,
        ["a", "b", "c"],
        "reached recipients, each once although a got two messages"
    );
    let a = &w.ledger.accruals()[0];
    assert_eq!(a.amount.to_string(), "300");
    assert_eq!(a.expires_on.unwrap().to_string(), "2026-12-06");
    assert!(a.key.starts_with("m-1/v1/2026-11-22T10:00/"));
}

#[tokio::test]
async fn deliveries_wait_for_the_send_window_in_the_recipients_zone() {
    // 10:00 in Moscow is 17:00 in Vladivostok: a's window (09:00–16:00) is closed until tomorrow.
    let w = world("2026-11-22T07:00:30Z").await;
    w.dispatcher
        .save(&mailing(
            "priority",
            r#", "send_window": {"from": "09:00", "to": "16:00"}"#,
        ))
        .await
        .unwrap();
    w.dispatcher.confirm("m-1").await.unwrap();
    let report = w.dispatcher.run_due().await.unwrap();
    assert_eq!(report.counts.sent, 2, "b and c, in Moscow");
    assert_eq!(report.counts.queued, 1);
    assert_eq!(
        report.next_due.unwrap().to_rfc3339(),
        "2026-11-22T23:00:00+00:00",
        "09:00 next day in Vladivostok"
    );
    w.clock.advance(TimeDelta::hours(16));
    let report = w.dispatcher.run_due().await.unwrap();
    assert_eq!((report.counts.sent, report.counts.queued), (3, 0));
}

/// A first process on a journal file freezes `m-1` in `mode`; its first send hits a quota, so
/// it pauses with every delivery still queued. Then it marks every queued delivery `sending`
/// under a short lease and is killed before any answer (its lease runs out). Returns the
/// folder (kept alive), the file and the claim.
async fn killed_holding_every_delivery(
    mode: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Vec<rassylka::store::Delivery>,
) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let first = world_with(
        SqliteStore::open(&db).await.unwrap(),
        "2026-11-22T07:00:30Z",
        |b| b.concurrency(1),
    )
    .await;
    first.telegram.fail_next(ErrorClass::Quota);
    first.dispatcher.save(&mailing(mode, "")).await.unwrap();
    first.dispatcher.confirm("m-1").await.unwrap();
    first.dispatcher.run_due().await.unwrap();
    let occurrence = first.dispatcher.occurrences("m-1").await.unwrap().remove(0);
    assert_eq!(occurrence.state, OccurrenceState::Frozen);
    let dead = rassylka::store::Lease {
        worker: "killed-worker".into(),
        length: std::time::Duration::from_millis(200),
    };
    let claimed = first
        .store
        .claim(occurrence.id, &dead, at("2026-11-22T07:01:00Z"), 100)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    (dir, db, claimed)
}

#[tokio::test]
async fn a_crash_leaves_in_flight_deliveries_unknown_except_on_idempotent_channels() {
    let (_dir, db, claimed) = killed_holding_every_delivery("all").await;
    assert_eq!(
        claimed.len(),
        5,
        "a: telegram + sms, b: sms, c: telegram + vk"
    );
    // A new process, whose vk channel (the file outbox) takes the delivery key.
    let outbox_dir = tempfile::tempdir().unwrap();
    let vk_outbox: Arc<dyn Channel> =
        Arc::new(FileOutbox::open(outbox_dir.path(), ChannelKind::Vk).unwrap());
    let restarted = world_with(
        SqliteStore::open(&db).await.unwrap(),
        "2026-11-22T07:02:00Z",
        move |b| b.channel(vk_outbox),
    )
    .await;
    restarted.dispatcher.resume("m-1").await.unwrap();
    let report = restarted.dispatcher.run_due().await.unwrap();
    assert_eq!(
        report.recovered_unknown, 4,
        "telegram ×2 and sms ×2 may have been delivered: unknown"
    );
    assert_eq!((report.counts.unknown, report.counts.sent), (4, 1));
    let outbox = std::fs::read_to_string(outbox_dir.path().join("vk.jsonl")).unwrap();
    assert_eq!(
        outbox.lines().count(),
        1,
        "the vk message was resent safely"
    );
    // Unknown deliveries are not resent unless the operator asks.
    restarted.dispatcher.run_due().await.unwrap();
    assert!(restarted.telegram.sent().is_empty() && restarted.sms.sent().is_empty());
    assert_eq!(restarted.dispatcher.resend_unknown("m-1").await.unwrap(), 4);
    let report = restarted.dispatcher.run_due().await.unwrap();
    assert_eq!((report.counts.sent, report.counts.unknown), (5, 0));
    assert_eq!(
        restarted.telegram.sent().len() + restarted.sms.sent().len(),
        4
    );
}

#[tokio::test]
async fn two_dispatchers_on_one_journal_send_each_delivery_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let one = world_with(
        SqliteStore::open(&db).await.unwrap(),
        "2026-11-22T07:00:30Z",
        |b| b.concurrency(1),
    )
    .await;
    let two = world_with(
        SqliteStore::open(&db).await.unwrap(),
        "2026-11-22T07:00:30Z",
        |b| b.concurrency(1),
    )
    .await;
    one.dispatcher.save(&mailing("all", "")).await.unwrap();
    one.dispatcher.confirm("m-1").await.unwrap();
    let (a, b) = tokio::join!(one.dispatcher.run_due(), two.dispatcher.run_due());
    a.unwrap();
    b.unwrap();
    let total = |w: &World| w.telegram.sent().len() + w.sms.sent().len() + w.vk.sent().len();
    assert_eq!(total(&one) + total(&two), 5);
    assert_eq!(one.dispatcher.occurrences("m-1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn periodic_mailings_fire_each_occurrence_once_and_an_edited_schedule_is_a_new_version() {
    let w = world("2026-11-22T06:59:00Z").await;
    let daily = |start: &str| {
        Mailing::from_json(&format!(
            r#"{{"id": "m-1", "kind": "periodic", "class": "service",
                "schedule": {{"start": "{start}", "tz": "Europe/Moscow", "every": "day"}},
                "channels": ["telegram"], "content": {{"default": {{"text": "{{first_name|?}}: {{today}}"}}}}}}"#
        ))
        .unwrap()
    };
    w.dispatcher.save(&daily("2026-11-22T10:00")).await.unwrap();
    w.dispatcher.confirm("m-1").await.unwrap();
    assert_eq!(
        w.dispatcher.run_due().await.unwrap().occurrences.len(),
        0,
        "not yet 10:00"
    );
    w.clock.advance(TimeDelta::minutes(2));
    w.dispatcher.run_due().await.unwrap();
    w.dispatcher.run_due().await.unwrap();
    assert_eq!(w.telegram.sent().len(), 3);
    assert_eq!(w.telegram.sent()[0].message.text, "Анна: 22.11.2026");
    w.clock.advance(TimeDelta::days(1));
    w.dispatcher.run_due().await.unwrap();
    assert_eq!(w.telegram.sent().len(), 6);
    assert_eq!(w.telegram.sent()[3].message.text, "Анна: 23.11.2026");
    // Moving the time makes version 2; version 1's occurrences stay as they were.
    w.dispatcher.save(&daily("2026-11-22T11:00")).await.unwrap();
    assert_eq!(w.store.mailing("m-1").await.unwrap().unwrap().version, 2);
    w.clock.advance(TimeDelta::hours(1));
    w.dispatcher.run_due().await.unwrap();
    let keys: Vec<String> = w
        .dispatcher
        .occurrences("m-1")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        keys,
        [
            "m-1/v1/2026-11-22T10:00",
            "m-1/v1/2026-11-23T10:00",
            "m-1/v2/2026-11-23T11:00"
        ]
    );
}

#[tokio::test]
async fn malformed_recipients_refuse_the_run_unless_skipped_and_then_are_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.jsonl");
    std::fs::write(
        &file,
        "{\"id\": \"a\", \"contacts\": {\"telegram_chat_id\": 1}}\n{\"id\": \"b\", \"balance\": \"много\"}\nnot json\n{\"id\": \"c\", \"contacts\": {\"telegram_chat_id\": 3}}\n",
    )
    .unwrap();
    let m = Mailing::from_json(r#"{"id": "m-1", "class": "service", "channels": ["telegram"], "content": {"default": {"text": "hi"}}}"#).unwrap();
    // Skipping first: the other case fixes the file at its end.
    for skip in [true, false] {
        let telegram = Arc::new(MemoryChannel::new(ChannelKind::Telegram));
        let store = Arc::new(SqliteStore::temporary().await.unwrap());
        let d = Rassylka::builder()
            .recipients(rassylka::JsonlFile::new(&file))
            .store_shared(store.clone())
            .channel(telegram.clone())
            .skip_malformed(skip)
            .build()
            .unwrap();
        d.save(&m).await.unwrap();
        d.confirm("m-1").await.unwrap();
        let result = d.run_mailing("m-1").await;
        if skip {
            let report = result.unwrap();
            assert_eq!((report.counts.sent, report.counts.skipped), (2, 2));
            assert_eq!(telegram.sent().len(), 2);
        } else {
            let err = result.unwrap_err();
            assert!(err.is_bad_input());
            let text = err.to_string();
            assert!(
                text.contains("line 2: ") && text.contains("line 3: "),
                "{text}"
            );
            assert!(telegram.sent().is_empty(), "nothing is sent");
            let occurrence = d.occurrences("m-1").await.unwrap().remove(0);
            assert_eq!(
                occurrence.state,
                OccurrenceState::Freezing,
                "to be frozen again"
            );
            assert_eq!(
                store.counts(occurrence.id).await.unwrap(),
                Default::default(),
                "no rows kept"
            );
            // Once the file is fixed, the same occurrence runs.
            std::fs::write(
                &file,
                "{\"id\": \"a\", \"contacts\": {\"telegram_chat_id\": 1}}\n{\"id\": \"c\", \"contacts\": {\"telegram_chat_id\": 3}}\n",
            )
            .unwrap();
            let report = d.run_mailing("m-1").await.unwrap();
            assert_eq!(report.counts.sent, 2);
            assert_eq!(report.occurrences, [occurrence.key]);
        }
    }
}

#[test]
fn invalid_mailings_name_every_problem_by_json_path() {
    let err = Mailing::from_json(
        r#"{"id": "", "kind": "weekly", "class": "spam", "channels": ["telegram", "fax", "telegram"],
            "audience": {"all": [{"gender": "female"}, {"age": {"gte": -1}}]},
            "schedule": {"start": "2027-01-01T10:00", "tz": "Mars/Base", "every": "day"},
            "content": {"default": {"dialect": "probonus", "text": "{frist_name}"}, "email": {"html": "x"}},
            "bonus": {"amount": -5}, "colour": "red"}"#,
    )
    .unwrap_err();
    let DispatchError::InvalidMailing(problems) = &err else {
        panic!("{err}")
    };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "colour",
        "id",
        "kind",
        "class",
        "audience.all[1].age.gte",
        "schedule",
        "channels[1]",
        "channels[2]",
        "bonus.amount",
        "content.default.text",
    ] {
        assert!(paths.contains(&expected), "{expected} missing in {paths:?}");
    }
    let text = err.to_string();
    assert!(text.contains("content.default.text: 1:1: unknown placeholder `{frist_name}`, did you mean `{first_name}`?"), "{text}");
}

#[tokio::test]
async fn a_date_rule_mailing_catches_up_every_missed_day_with_its_own_date() {
    let guests: Vec<Recipient> = [
        r#"{"id": "g-1", "first_name": "Ада", "contacts": {"telegram_chat_id": 1}, "bookings": [{"id": "b-1", "check_in": "2026-11-26"}]}"#,
        r#"{"id": "g-2", "first_name": "Бэла", "contacts": {"telegram_chat_id": 2}, "bookings": [{"id": "b-2", "check_in": "2026-11-27"}]}"#,
        r#"{"id": "g-3", "first_name": "Вика", "contacts": {"telegram_chat_id": 3}, "bookings": [{"id": "b-3", "check_in": "2026-12-20"}]}"#,
    ]
    .iter()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    let telegram = Arc::new(MemoryChannel::new(ChannelKind::Telegram));
    let clock = Arc::new(ManualClock::starting_at(at("2026-11-22T07:01:00Z")));
    let dispatcher = Rassylka::builder()
        .recipients(MemorySource::new(guests))
        .store(SqliteStore::temporary().await.unwrap())
        .channel(telegram.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let m = Mailing::from_json(
        r#"{"id": "m-remind", "kind": "periodic", "class": "service",
            "audience": {"date": {"dynamic": {"field": "check_in", "days": 3, "when": "before"}}},
            "schedule": {"start": "2026-11-22T10:00", "tz": "Europe/Moscow", "every": "day"},
            "channels": ["telegram"], "content": {"default": {"text": "{first_name}, заезд {check_in}"}}}"#,
    )
    .unwrap();
    dispatcher.save(&m).await.unwrap();
    dispatcher.confirm("m-remind").await.unwrap();
    dispatcher.run_due().await.unwrap();
    assert!(telegram.sent().is_empty(), "nobody checks in on 11-25");
    // Down for two days: the 23rd and 24th runs were missed; both are evaluated with their own date.
    clock.advance(TimeDelta::days(2));
    let report = dispatcher.run_due().await.unwrap();
    assert_eq!(
        report.occurrences,
        [
            "m-remind/v1/2026-11-23T10:00",
            "m-remind/v1/2026-11-24T10:00"
        ]
    );
    let texts: Vec<String> = telegram
        .sent()
        .into_iter()
        .map(|s| s.message.text)
        .collect();
    assert_eq!(texts, ["Ада, заезд 26.11.2026", "Бэла, заезд 27.11.2026"]);
    // Running again the same day repeats nothing.
    dispatcher.run_due().await.unwrap();
    assert_eq!(telegram.sent().len(), 2);
    // Down for 40 days: the newest 31 runs are caught up, the 9 before them reported missed.
    clock.advance(TimeDelta::days(40));
    let report = dispatcher.run_due().await.unwrap();
    assert_eq!(report.occurrences.len(), 31);
    assert_eq!(report.occurrences[0], "m-remind/v1/2026-12-04T10:00");
    assert_eq!(
        report.missed,
        (25..=30)
            .map(|d| format!("m-remind/v1/2026-11-{d}T10:00"))
            .chain((1..=3).map(|d| format!("m-remind/v1/2026-12-0{d}T10:00")))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn after_a_crash_in_priority_mode_an_unknown_delivery_closes_its_group() {
    // Killed holding every first-rank delivery: a's and c's telegram, b's sms.
    let (_dir, db, claimed) = killed_holding_every_delivery("priority").await;
    assert_eq!(claimed.len(), 3);
    let restarted = world_with(
        SqliteStore::open(&db).await.unwrap(),
        "2026-11-22T07:02:00Z",
        |b| b,
    )
    .await;
    restarted.dispatcher.resume("m-1").await.unwrap();
    let report = restarted.dispatcher.run_due().await.unwrap();
    assert_eq!(
        (
            report.counts.unknown,
            report.counts.standby,
            report.counts.sent
        ),
        (3, 0, 0)
    );
    assert!(
        restarted.sms.sent().is_empty() && restarted.vk.sent().is_empty(),
        "no fallback after an unknown"
    );
    let occurrence = restarted
        .dispatcher
        .occurrences("m-1")
        .await
        .unwrap()
        .remove(0);
    assert_eq!(occurrence.state, OccurrenceState::Done);
    assert_eq!(
        restarted.store.mailing("m-1").await.unwrap().unwrap().state,
        MailingState::Done
    );

    // The operator resends them; telegram now refuses for good, so the channels recovery
    // closed behind a's and c's unknown telegram deliveries take over after all.
    restarted.telegram.fail_always(Some(ErrorClass::Rejected));
    assert_eq!(restarted.dispatcher.resend_unknown("m-1").await.unwrap(), 3);
    let report = restarted.dispatcher.run_due().await.unwrap();
    assert_eq!((report.counts.unknown, report.counts.standby), (0, 0));
    let to: Vec<String> = restarted
        .sms
        .sent()
        .iter()
        .map(|m| m.message.delivery_key.clone())
        .chain(
            restarted
                .vk
                .sent()
                .iter()
                .map(|m| m.message.delivery_key.clone()),
        )
        .collect();
    assert_eq!(to.len(), 3, "{to:?}");
    assert!(
        to[0].ends_with("/a/sms") || to[1].ends_with("/a/sms"),
        "{to:?}"
    );
    assert!(to.iter().any(|k| k.ends_with("/b/sms")), "{to:?}");
    assert!(to[2].ends_with("/c/vk"), "{to:?}");
}

#[tokio::test]
async fn lifecycle_actions_follow_the_state_machine() {
    let w = world("2026-11-22T07:00:30Z").await;
    w.dispatcher.save(&mailing("all", "")).await.unwrap();
    let refused = w.dispatcher.pause("m-1").await.unwrap_err();
    assert!(
        matches!(
            refused,
            DispatchError::WrongState {
                action: "pause",
                ..
            }
        ),
        "{refused}"
    );
    assert!(
        w.dispatcher.resume("m-1").await.is_err(),
        "a draft is confirmed, not resumed"
    );
    w.dispatcher.confirm("m-1").await.unwrap();
    w.dispatcher.pause("m-1").await.unwrap();
    let report = w.dispatcher.run_due().await.unwrap();
    assert!(
        report.occurrences.is_empty() && w.telegram.sent().is_empty(),
        "a paused mailing sends nothing"
    );
    w.dispatcher.resume("m-1").await.unwrap();
    w.dispatcher.run_due().await.unwrap();
    assert_eq!(
        w.store.mailing("m-1").await.unwrap().unwrap().state,
        MailingState::Done
    );
    assert!(
        w.dispatcher.cancel("m-1").await.is_err(),
        "a finished mailing cannot be cancelled"
    );
    assert!(w.dispatcher.confirm("m-1").await.is_err());
}

/// A ledger that refuses while `down` is set and counts every accrual it is asked for.
#[derive(Default)]
struct FlakyLedger {
    down: std::sync::atomic::AtomicBool,
    asked: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl rassylka::BonusLedger for FlakyLedger {
    async fn accrue(
        &self,
        accrual: &rassylka::Accrual,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("the loyalty system is down".into());
        }
        self.asked.lock().unwrap().push(accrual.key.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_failing_ledger_stops_the_run_and_the_next_run_accrues_each_recipient_once() {
    // Enough recipients that accruals go to the ledger in several calls beside the sending.
    let crowd: Vec<Recipient> = (0..10_000)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "id": format!("r-{i}"), "first_name": "Анна", "consent": {"advertising": true},
                "contacts": {"telegram_chat_id": i + 1}
            }))
            .unwrap()
        })
        .collect();
    let ledger = Arc::new(FlakyLedger::default());
    ledger.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let telegram = Arc::new(MemoryChannel::new(ChannelKind::Telegram));
    let store = Arc::new(SqliteStore::temporary().await.unwrap());
    let dispatcher = Rassylka::builder()
        .recipients(MemorySource::new(crowd))
        .store_shared(store.clone())
        .clock(Arc::new(ManualClock::starting_at(at(
            "2026-11-22T07:00:30Z",
        ))))
        .ledger(ledger.clone())
        .channel(telegram.clone())
        .concurrency(100)
        .build()
        .unwrap();
    let telegram_only = one_channel(
        "telegram",
        "[ИМЯ], дарим [БОН2]!",
        r#", "bonus": {"amount": 300}"#,
    );
    dispatcher.save(&telegram_only).await.unwrap();
    dispatcher.confirm("m-1").await.unwrap();
    let failed = dispatcher.run_mailing("m-1").await.unwrap_err();
    assert!(
        matches!(failed, DispatchError::Ledger(_)),
        "the ledger's failure is the run's: {failed}"
    );
    let occurrence = store.occurrences(Some("m-1")).await.unwrap()[0].clone();
    let counts = store.counts(occurrence.id).await.unwrap();
    assert_eq!(counts.sending, 0, "nothing claimed is left stranded");
    assert!(counts.queued > 0, "the run stopped before sending everyone");
    assert!(ledger.asked.lock().unwrap().is_empty());

    ledger
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    dispatcher.run_mailing("m-1").await.unwrap();
    let counts = store.counts(occurrence.id).await.unwrap();
    assert_eq!(counts.sent, 10_000);
    assert_eq!(telegram.sent().len(), 10_000, "each message went out once");
    let mut asked = ledger.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 10_000, "one accrual per recipient");
    asked.sort();
    asked.dedup();
    assert_eq!(asked.len(), 10_000, "and never twice");
}

#[tokio::test]
async fn a_recipient_listed_twice_is_sent_once_and_the_second_entry_journaled() {
    let mut twice = people();
    let mut again = twice[1].clone();
    again.first_name = Some("Борис второй".into());
    twice.push(again);
    let sms = Arc::new(MemoryChannel::new(ChannelKind::Sms));
    let store = Arc::new(SqliteStore::temporary().await.unwrap());
    let dispatcher = Rassylka::builder()
        .recipients(MemorySource::new(twice))
        .store_shared(store.clone())
        .clock(Arc::new(ManualClock::starting_at(at(
            "2026-11-22T07:00:30Z",
        ))))
        .ledger(Arc::new(MemoryLedger::default()))
        .channel(sms.clone())
        .build()
        .unwrap();
    let sms_only = one_channel("sms", "[ИМЯ], привет!", "");
    dispatcher.save(&sms_only).await.unwrap();
    dispatcher.confirm("m-1").await.unwrap();
    let report = dispatcher.run_due().await.unwrap();
    assert_eq!(report.listed_again, 1);
    let texts: Vec<String> = sms.sent().iter().map(|m| m.message.text.clone()).collect();
    assert_eq!(
        texts,
        ["Анна, привет!", "Борис, привет!"],
        "b once, as first listed"
    );
    let occurrence = store.occurrences(Some("m-1")).await.unwrap().remove(0);
    let journal = store.deliveries(occurrence.id, 0, 100).await.unwrap();
    let b: Vec<_> = journal
        .iter()
        .filter(|d| d.planned.recipient_id == "b")
        .map(|d| (d.planned.status, d.planned.error.clone()))
        .collect();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].0, DeliveryStatus::Sent);
    assert_eq!(b[1].0, DeliveryStatus::Skipped);
    assert!(
        b[1].1
            .as_deref()
            .unwrap()
            .contains("lists this recipient again")
    );
}

/// A source whose CRM refuses to hear that a contact is gone.
struct DeafSource(MemorySource);

#[async_trait::async_trait]
impl rassylka::RecipientSource for DeafSource {
    async fn scan(
        &self,
    ) -> Result<
        futures_util::stream::BoxStream<'_, rassylka::SourceItem>,
        Box<dyn std::error::Error + Send + Sync>,
    > {
        self.0.scan().await
    }

    async fn set_no_mailings(
        &self,
        recipient_id: &str,
        value: bool,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.set_no_mailings(recipient_id, value).await
    }

    async fn mark_unreachable(
        &self,
        _recipient_id: &str,
        _channel: ChannelKind,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err("the CRM timed out".into())
    }
}

#[tokio::test]
async fn an_error_after_a_batch_is_recorded_puts_the_next_claimed_batch_back_unsent() {
    let telegram = Arc::new(MemoryChannel::new(ChannelKind::Telegram));
    telegram.fail_for(Address::TelegramChat(1), ErrorClass::RecipientGone);
    let store = Arc::new(SqliteStore::temporary().await.unwrap());
    let dispatcher = Rassylka::builder()
        .recipients(DeafSource(MemorySource::new(people())))
        .store_shared(store.clone())
        .clock(Arc::new(ManualClock::starting_at(at(
            "2026-11-22T07:00:30Z",
        ))))
        .ledger(Arc::new(MemoryLedger::default()))
        .channel(telegram.clone())
        .concurrency(1)
        .build()
        .unwrap();
    let telegram_only = one_channel("telegram", "[ИМЯ], привет!", "");
    dispatcher.save(&telegram_only).await.unwrap();
    dispatcher.confirm("m-1").await.unwrap();
    // a's chat is gone; telling the CRM fails after c's delivery was already claimed.
    let failed = dispatcher.run_mailing("m-1").await.unwrap_err();
    assert!(matches!(failed, DispatchError::Source(_)), "{failed}");
    let occurrence = store.occurrences(Some("m-1")).await.unwrap().remove(0);
    let counts = store.counts(occurrence.id).await.unwrap();
    assert_eq!((counts.sending, counts.failed, counts.queued), (0, 1, 1));
    assert!(telegram.sent().is_empty());
}

#[tokio::test]
async fn in_priority_mode_a_recipient_listed_again_brings_no_second_channel() {
    // b first with a phone only, then again with Telegram too.
    let mut again = people()[1].clone();
    again.contacts.telegram_chat_id = Some(7);
    let twice = vec![people()[1].clone(), again];
    let w = world_with(
        SqliteStore::temporary().await.unwrap(),
        "2026-11-22T07:00:30Z",
        |b| b.recipients(MemorySource::new(twice)),
    )
    .await;
    w.dispatcher.save(&mailing("priority", "")).await.unwrap();
    w.dispatcher.confirm("m-1").await.unwrap();
    let report = w.dispatcher.run_due().await.unwrap();
    assert_eq!(
        report.listed_again, 2,
        "the second entry's telegram and sms"
    );
    assert_eq!(w.sms.sent().len(), 1);
    assert!(
        w.telegram.sent().is_empty(),
        "the first entry had no telegram"
    );
    assert_eq!(report.counts.sent, 1);
}

#[tokio::test]
async fn a_line_that_is_not_utf8_is_one_malformed_line_and_the_rest_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.jsonl");
    let mut bytes = Vec::new();
    for i in 1..=200 {
        if i == 3 {
            bytes.extend_from_slice(b"{\"id\": \"c-3\", \"first_name\": \"\xff\xfe\"}\n");
        } else {
            bytes.extend_from_slice(
                format!("{{\"id\": \"c-{i}\", \"contacts\": {{\"telegram_chat_id\": {i}}}}}\n")
                    .as_bytes(),
            );
        }
    }
    std::fs::write(&file, bytes).unwrap();
    let m = Mailing::from_json(r#"{"id": "m-1", "class": "service", "channels": ["telegram"], "content": {"default": {"text": "hi"}}}"#).unwrap();
    for skip in [false, true] {
        let telegram = Arc::new(MemoryChannel::new(ChannelKind::Telegram));
        let d = Rassylka::builder()
            .recipients(rassylka::JsonlFile::new(&file))
            .store(SqliteStore::temporary().await.unwrap())
            .channel(telegram.clone())
            .skip_malformed(skip)
            .build()
            .unwrap();
        d.save(&m).await.unwrap();
        d.confirm("m-1").await.unwrap();
        let result = d.run_mailing("m-1").await;
        if skip {
            let report = result.unwrap();
            assert_eq!((report.counts.sent, report.counts.skipped), (199, 1));
            assert_eq!(
                telegram.sent().len(),
                199,
                "every line after the bad one too"
            );
        } else {
            let text = result.unwrap_err().to_string();
            assert!(
                text.contains("line 3: not UTF-8 (byte 30 of the line)"),
                "{text}"
            );
            assert!(telegram.sent().is_empty());
        }
    }
}

#[tokio::test]
async fn a_recipient_listed_twice_is_previewed_and_priced_once_as_the_run_sends_once() {
    let anna: Recipient = serde_json::from_str(
        r#"{"id": "a", "first_name": "Анна", "consent": {"advertising": true}, "contacts": {"telegram_chat_id": 1, "phone": "+79160000001"}}"#,
    )
    .unwrap();
    let boris: Recipient = serde_json::from_str(
        r#"{"id": "b", "consent": {"advertising": true}, "contacts": {"phone": "+79160000002"}}"#,
    )
    .unwrap();
    let telegram = Arc::new(MemoryChannel::new(ChannelKind::Telegram));
    let sms = Arc::new(MemoryChannel::new(ChannelKind::Sms));
    let d = Rassylka::builder()
        .recipients(MemorySource::new(vec![anna.clone(), boris, anna]))
        .store(SqliteStore::temporary().await.unwrap())
        .channel(telegram.clone())
        .channel(sms.clone())
        .tariff(ChannelKind::Sms, "4.5".parse().unwrap())
        .build()
        .unwrap();
    let m = Mailing::from_json(r#"{"id": "m-1", "channels": ["telegram", "sms"], "mode": "all", "content": {"default": {"text": "привет"}}}"#).unwrap();
    d.save(&m).await.unwrap();
    let preview = d.preview(&m, None).await.unwrap();
    assert_eq!(preview.matched, 2);
    assert_eq!(preview.per_channel[&ChannelKind::Sms], 2);
    assert_eq!(preview.per_channel[&ChannelKind::Telegram], 1);
    let cost = d.cost(&m, None).await.unwrap();
    assert_eq!(cost.total.to_string(), "9.0");
    d.confirm("m-1").await.unwrap();
    let report = d.run_mailing("m-1").await.unwrap();
    assert_eq!(report.counts.sent, 3);
    assert_eq!(sms.sent().len() + telegram.sent().len(), 3);
}

#[tokio::test]
async fn a_wrong_number_is_journaled_with_why_and_gets_nothing() {
    let people: Vec<Recipient> = [
        r#"{"id": "a", "contacts": {"phone": "+8 916 765-43-21"}}"#,
        r#"{"id": "b", "contacts": {"phone": "8 916 765-43-2", "email": "b@example.com"}}"#,
        r#"{"id": "c", "contacts": {"phone": "+44 (0)20 7946 0958"}}"#,
    ]
    .iter()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    let sms = Arc::new(MemoryChannel::new(ChannelKind::Sms));
    let store = Arc::new(SqliteStore::temporary().await.unwrap());
    let d = Rassylka::builder()
        .recipients(MemorySource::new(people))
        .store_shared(store.clone())
        .channel(sms.clone())
        .build()
        .unwrap();
    let m = Mailing::from_json(r#"{"id": "m-1", "class": "service", "channels": ["sms"], "content": {"default": {"text": "hi"}}}"#).unwrap();
    d.save(&m).await.unwrap();
    d.confirm("m-1").await.unwrap();
    d.run_mailing("m-1").await.unwrap();
    let to: Vec<String> = sms.sent().iter().map(|s| s.to.to_string()).collect();
    assert_eq!(to, ["+442079460958"]);
    let occurrence = d.occurrences("m-1").await.unwrap().remove(0);
    let rows = store.deliveries(occurrence.id, 0, 10).await.unwrap();
    let reason = |id: &str| {
        rows.iter()
            .find(|r| r.planned.recipient_id == id)
            .and_then(|r| r.planned.error.clone())
            .unwrap_or_default()
    };
    assert!(
        reason("a").starts_with("invalid_contact: sms: invalid phone number `+8 916 765-43-21`"),
        "{}",
        reason("a")
    );
    assert!(reason("b").contains("8 916 765-43-2"), "{}", reason("b"));
}

#[tokio::test]
async fn an_email_with_its_own_html_does_not_take_the_sms_text_as_its_text_part() {
    let anna: Recipient = serde_json::from_str(
        r#"{"id": "a", "first_name": "Анна", "consent": {"advertising": true}, "contacts": {"email": "a@example.com", "phone": "+79160000001"}}"#,
    )
    .unwrap();
    let email = Arc::new(MemoryChannel::new(ChannelKind::Email));
    let sms = Arc::new(MemoryChannel::new(ChannelKind::Sms));
    let d = Rassylka::builder()
        .recipients(MemorySource::new(vec![anna]))
        .store(SqliteStore::temporary().await.unwrap())
        .channel(email.clone())
        .channel(sms.clone())
        .build()
        .unwrap();
    let m = Mailing::from_json(
        r#"{"id": "m-1", "channels": ["sms", "email"], "mode": "all",
            "content": {"default": {"text": "{first_name}, скидка 20% по SMS"},
                        "email": {"subject": "Скидка", "html": "<p>{first_name}, скидка 20% на всё</p>"}}}"#,
    )
    .unwrap();
    d.save(&m).await.unwrap();
    d.confirm("m-1").await.unwrap();
    d.run_mailing("m-1").await.unwrap();
    assert_eq!(sms.sent()[0].message.text, "Анна, скидка 20% по SMS");
    let mail = &email.sent()[0].message;
    let html = mail.html.as_deref().unwrap_or_default();
    assert!(html.starts_with("<p>Анна, скидка 20% на всё</p>"), "{html}");
    assert!(
        html.contains("Отписаться от рассылки"),
        "advertising: {html}"
    );
    assert!(
        mail.text.is_empty(),
        "the adapter derives the text part from the HTML, not from the SMS text: {}",
        mail.text
    );
}

#[tokio::test]
async fn a_recipient_file_keeps_the_last_unsubscribe_or_resubscribe_for_later_scans() {
    use futures_util::StreamExt;
    use rassylka::RecipientSource;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.jsonl");
    std::fs::write(
        &file,
        "{\"id\": \"a\"}\n{\"id\": \"b\", \"no_mailings\": true}\n{\"id\": \"c\"}\n",
    )
    .unwrap();
    let source = rassylka::JsonlFile::new(&file);
    source.set_no_mailings("a", true).await.unwrap();
    source.set_no_mailings("a", false).await.unwrap();
    source.set_no_mailings("b", false).await.unwrap();
    source.set_no_mailings("c", true).await.unwrap();
    let flags: Vec<(String, bool)> = source
        .scan()
        .await
        .unwrap()
        .map(|item| {
            let r = item.unwrap();
            (r.id, r.no_mailings)
        })
        .collect()
        .await;
    assert_eq!(
        flags,
        [
            ("a".to_owned(), false),
            ("b".to_owned(), false),
            ("c".to_owned(), true)
        ]
    );
}
