//! History, journal views, copy and XLSX export through the public API, on real SQLite, with
//! workbooks read back by calamine.

use std::sync::Arc;

use calamine::{Data, DataType, Reader, Xlsx, open_workbook};
use chrono::{DateTime, NaiveDate, Utc};
use rassylka::channels::{Channel, MemoryChannel};
use rassylka::model::{ChannelKind, Recipient};
use rassylka::store::DeliveryStatus;
use rassylka::{
    DispatchError, Dispatcher, ExportOptions, HistoryQuery, JournalQuery, JournalRow, Mailing,
    MailingKind, ManualClock, MemorySource, Rassylka, SqliteStore,
};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn people() -> Vec<Recipient> {
    [
        r#"{"id": "a/1", "first_name": "Анна", "consent": {"advertising": true}, "contacts": {"telegram_chat_id": 1, "phone": "+79160000001"}}"#,
        r#"{"id": "b", "first_name": "Борис", "consent": {"advertising": true}, "contacts": {"phone": "+79160000002"}}"#,
        r#"{"id": "c", "first_name": "Вера", "consent": {"advertising": false}, "contacts": {"phone": "+79160000003"}}"#,
    ]
    .iter()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

/// Daily at 08:00 in Vladivostok: 22:00 UTC of the day before.
const DAILY: &str = r#"{"id": "m-daily", "name": "Утро", "kind": "periodic",
    "schedule": {"start": "2026-12-02T08:00", "tz": "Asia/Vladivostok", "every": "day"},
    "channels": ["telegram", "sms"], "mode": "priority",
    "content": {"default": {"text": "{first_name|Гость}, доброе утро"}}}"#;

const ONCE: &str = r#"{"id": "m-once", "name": "Разовая", "class": "advertising",
    "schedule": {"start": "2026-12-02T12:00", "tz": "Europe/Moscow", "every": "once"},
    "channels": ["sms"], "content": {"default": {"text": "{first_name|Гость}, скидка"}}}"#;

struct World {
    dispatcher: Rassylka,
    clock: Arc<ManualClock>,
    sms: Arc<MemoryChannel>,
}

/// Both mailings run: the daily one twice (local 2 and 3 December), the one-time one once.
async fn world() -> World {
    let clock = Arc::new(ManualClock::starting_at(at("2026-12-01T21:00:00Z")));
    let telegram = Arc::new(MemoryChannel::new(ChannelKind::Telegram));
    let sms = Arc::new(MemoryChannel::new(ChannelKind::Sms));
    let dispatcher = Rassylka::builder()
        .recipients(MemorySource::new(people()))
        .store(SqliteStore::temporary().await.unwrap())
        .clock(clock.clone())
        .channel(telegram as Arc<dyn Channel>)
        .channel(sms.clone() as Arc<dyn Channel>)
        .tariff(ChannelKind::Sms, "4.5".parse().unwrap())
        .build()
        .unwrap();
    for json in [DAILY, ONCE] {
        let mailing = Mailing::from_json(json).unwrap();
        dispatcher.save(&mailing).await.unwrap();
        dispatcher.confirm(&mailing.id).await.unwrap();
    }
    for now in [
        "2026-12-01T22:00:30Z",
        "2026-12-02T09:00:30Z",
        "2026-12-02T22:00:30Z",
    ] {
        clock.set(at(now));
        dispatcher.run_due().await.unwrap();
    }
    World {
        dispatcher,
        clock,
        sms,
    }
}

fn day(text: &str) -> Option<NaiveDate> {
    Some(text.parse().unwrap())
}

async fn history_json(w: &World, query: HistoryQuery) -> Vec<serde_json::Value> {
    let rows = w.dispatcher.history(&query).await.unwrap();
    rows.iter().map(rassylka::HistoryRow::to_json).collect()
}

#[tokio::test]
async fn history_rows_are_exact_newest_first_and_filtered_by_local_date_and_kind() {
    let w = world().await;
    let all = history_json(&w, HistoryQuery::default()).await;
    let daily = |date: &str, fired: &str| {
        serde_json::json!({"mailing_id": "m-daily", "name": "Утро", "kind": "periodic",
            "class": "advertising", "occurrence": format!("m-daily/v1/{date}T08:00"),
            "fired_at": fired, "state": "done", "recipients": 3, "sent": 2, "failed": 0,
            "skipped": 2, "unknown": 0, "queued": 0, "cost": 4.5,
            "per_channel": {"sms": {"sent": 1, "failed": 0, "skipped": 1, "cost": 4.5},
                            "telegram": {"sent": 1, "failed": 0, "skipped": 0, "cost": 0}}})
    };
    let once = serde_json::json!({"mailing_id": "m-once", "name": "Разовая", "kind": "one_time",
        "class": "advertising", "occurrence": "m-once/v1/2026-12-02T12:00",
        "fired_at": "2026-12-02T12:00:00+03:00", "state": "done", "recipients": 3, "sent": 2,
        "failed": 0, "skipped": 1, "unknown": 0, "queued": 0, "cost": 9,
        "per_channel": {"sms": {"sent": 2, "failed": 0, "skipped": 0, "cost": 9}}});
    assert_eq!(
        all,
        vec![
            daily("2026-12-03", "2026-12-03T08:00:00+10:00"),
            once.clone(),
            daily("2026-12-02", "2026-12-02T08:00:00+10:00"),
        ]
    );
    // The first daily run fired on 1 December in UTC, on the 2nd in its zone.
    let on_the_2nd = HistoryQuery {
        from: day("2026-12-02"),
        to: day("2026-12-02"),
        ..HistoryQuery::default()
    };
    assert_eq!(
        history_json(&w, on_the_2nd).await,
        vec![
            once.clone(),
            daily("2026-12-02", "2026-12-02T08:00:00+10:00")
        ]
    );
    let on_the_1st = HistoryQuery {
        to: day("2026-12-01"),
        ..HistoryQuery::default()
    };
    assert!(history_json(&w, on_the_1st).await.is_empty());
    let from_the_3rd = HistoryQuery {
        from: day("2026-12-03"),
        ..HistoryQuery::default()
    };
    assert_eq!(history_json(&w, from_the_3rd).await.len(), 1);
    let one_time = HistoryQuery {
        kind: Some(MailingKind::OneTime),
        ..HistoryQuery::default()
    };
    assert_eq!(history_json(&w, one_time).await, vec![once]);
}

async fn journal(w: &World, query: JournalQuery) -> Vec<JournalRow> {
    let mut pages = w.dispatcher.journal_rows(&query).await.unwrap();
    let mut rows = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        rows.extend(page);
    }
    rows
}

#[tokio::test]
async fn journal_rows_filter_and_cost_only_what_was_spent() {
    let w = world().await;
    let daily = |q: JournalQuery| JournalQuery {
        mailing_id: "m-daily".into(),
        ..q
    };
    let all = journal(&w, daily(JournalQuery::default())).await;
    // Anna: telegram sent, sms standby skipped; Boris: sms; Vera: no consent, on no channel.
    assert_eq!(all.len(), 8, "four rows per occurrence");
    let first = journal(
        &w,
        daily(JournalQuery {
            occurrence: Some("m-daily/v1/2026-12-02T08:00".into()),
            ..JournalQuery::default()
        }),
    )
    .await;
    assert_eq!(first.len(), 4);
    let anna_sms = first
        .iter()
        .find(|r| r.recipient_id == "a/1" && r.channel == Some(ChannelKind::Sms))
        .unwrap();
    assert_eq!(anna_sms.status, DeliveryStatus::Skipped);
    assert_eq!(
        anna_sms.reason.as_deref(),
        Some("delivered through telegram")
    );
    assert_eq!(
        anna_sms.cost,
        rust_decimal::Decimal::ZERO,
        "a standby row spent nothing"
    );
    let line = anna_sms.to_json();
    assert_eq!(line["cost"], 0);
    assert_eq!(line["sent_at"], serde_json::Value::Null);
    let updated = line["updated_at"].as_str().unwrap();
    assert!(
        updated.starts_with("2026-12-02T08:00:30") && updated.ends_with("+10:00"),
        "{updated}"
    );
    let sent_to_boris = journal(
        &w,
        daily(JournalQuery {
            status: Some(DeliveryStatus::Sent),
            recipient_id: Some("b".into()),
            ..JournalQuery::default()
        }),
    )
    .await;
    assert_eq!(sent_to_boris.len(), 2);
    let line = sent_to_boris[0].to_json();
    let keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "delivery_key",
            "occurrence",
            "recipient_id",
            "channel",
            "booking",
            "address",
            "status",
            "reason",
            "error_class",
            "attempts",
            "provider_message_id",
            "units",
            "cost",
            "sent_at",
            "updated_at"
        ]
    );
    assert_eq!(line["cost"], 4.5);
    assert_eq!(line["address"], "+79160000002");
    let sent_at = line["sent_at"].as_str().unwrap();
    assert!(
        sent_at.starts_with("2026-12-02T08:00:30") && sent_at.ends_with("+10:00"),
        "{sent_at}"
    );
    let missing = w
        .dispatcher
        .journal_rows(&daily(JournalQuery {
            occurrence: Some("m-daily/v1/2030-01-01T08:00".into()),
            ..JournalQuery::default()
        }))
        .await;
    assert!(matches!(missing, Err(DispatchError::Refused(_))));
    let unknown = w
        .dispatcher
        .journal_rows(&JournalQuery {
            mailing_id: "m-none".into(),
            ..JournalQuery::default()
        })
        .await;
    assert!(matches!(unknown, Err(DispatchError::UnknownMailing(_))));
}

#[tokio::test]
async fn a_copy_is_a_new_draft_for_now_that_runs_on_its_own() {
    let w = world().await;
    w.clock.set(at("2026-12-05T10:15:20Z"));
    let copy = w.dispatcher.copy("m-once", "m-once-2").await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&copy.to_json()).unwrap();
    assert_eq!(json["id"], "m-once-2");
    assert_eq!(json["name"], "Разовая");
    assert_eq!(
        json["schedule"],
        serde_json::json!({"start": "2026-12-05T13:16", "tz": "Europe/Moscow", "every": "once"})
    );
    assert_eq!(
        json["content"],
        serde_json::json!({"default": {"text": "{first_name|Гость}, скидка"}})
    );
    let before = w.sms.sent().len();
    w.dispatcher.confirm("m-once-2").await.unwrap();
    w.clock.set(at("2026-12-05T10:16:30Z"));
    let report = w.dispatcher.run_due().await.unwrap();
    assert_eq!(report.counts.sent, 2);
    assert_eq!(w.sms.sent().len(), before + 2);
    let copies = journal(
        &w,
        JournalQuery {
            mailing_id: "m-once-2".into(),
            ..JournalQuery::default()
        },
    )
    .await;
    assert_eq!(copies.len(), 3);
    assert!(
        copies
            .iter()
            .all(|r| r.occurrence == "m-once-2/v1/2026-12-05T13:16")
    );
    let periodic = w.dispatcher.copy("m-daily", "m-daily-2").await;
    let Err(DispatchError::Refused(reason)) = periodic else {
        panic!("a periodic mailing was copied: {periodic:?}");
    };
    assert!(reason.contains("periodic"), "{reason}");
    let taken = w.dispatcher.copy("m-once", "m-daily").await;
    assert!(matches!(taken, Err(DispatchError::Refused(_))), "{taken:?}");
}

fn part(zip: &mut zip::ZipArchive<std::fs::File>, name: &str) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
    text
}

fn cell_text(data: &Data) -> String {
    match data {
        Data::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn workbooks_read_back_with_typed_cells_dates_and_links() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.xlsx");
    let query = JournalQuery {
        mailing_id: "m-daily".into(),
        ..JournalQuery::default()
    };
    let options = ExportOptions {
        account_url: Some("https://crm.example/clients/{id}".into()),
    };
    let written = w
        .dispatcher
        .export_journal(&query, &path, &options)
        .await
        .unwrap();
    assert_eq!(written, 8);
    let mut book: Xlsx<_> = open_workbook(&path).unwrap();
    assert_eq!(book.sheet_names(), ["journal"]);
    let range = book.worksheet_range("journal").unwrap();
    assert_eq!(range.height(), 9, "a header and one row per journal row");
    let header: Vec<String> = range.rows().next().unwrap().iter().map(cell_text).collect();
    assert_eq!(
        header,
        [
            "delivery_key",
            "occurrence",
            "recipient_id",
            "channel",
            "booking",
            "address",
            "status",
            "reason",
            "error_class",
            "attempts",
            "provider_message_id",
            "units",
            "cost",
            "sent_at",
            "updated_at"
        ]
    );
    let boris_sent = range
        .rows()
        .find(|r| cell_text(&r[2]) == "b" && cell_text(&r[6]) == "sent")
        .unwrap();
    assert_eq!(boris_sent[9], Data::Float(1.0), "attempts are a number");
    assert_eq!(boris_sent[12], Data::Float(4.5), "cost is a number");
    let sent_at = boris_sent[13].as_datetime().expect("sent_at is a date");
    assert_eq!(
        sent_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        "2026-12-02 08:00:30",
        "in the mailing's zone"
    );
    assert!(boris_sent[14].is_datetime());
    let formulas = book.worksheet_formula("journal").unwrap();
    let links: Vec<&String> = formulas.used_cells().map(|(_, _, f)| f).collect();
    assert!(
        links
            .iter()
            .any(|f| f.contains("https://crm.example/clients/a%2F1") && f.contains("\"a/1\"")),
        "{links:?}"
    );

    // What calamine does not read: the header's look, and the widths.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let sheet = part(&mut zip, "xl/worksheets/sheet1.xml");
    assert!(
        sheet.contains(
            r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#
        ),
        "{sheet}"
    );
    assert!(sheet.contains(r#"<autoFilter ref="A1:O9"/>"#), "{sheet}");
    assert!(sheet.contains("<cols>"), "widths are set");
    let styles = part(&mut zip, "xl/styles.xml");
    assert!(
        styles.contains("<b/>") && styles.contains("#,##0.00"),
        "{styles}"
    );

    let history = dir.path().join("history.xlsx");
    w.dispatcher
        .export_history(&HistoryQuery::default(), &history)
        .await
        .unwrap();
    let mut book: Xlsx<_> = open_workbook(&history).unwrap();
    let range = book.worksheet_range("history").unwrap();
    assert_eq!(range.height(), 4);
    let header: Vec<String> = range.rows().next().unwrap().iter().map(cell_text).collect();
    assert_eq!(
        header[13..],
        [
            "cost",
            "sms sent",
            "sms failed",
            "sms skipped",
            "sms cost",
            "telegram sent",
            "telegram failed",
            "telegram skipped",
            "telegram cost"
        ]
    );
    let newest = range.rows().nth(1).unwrap();
    assert_eq!(cell_text(&newest[4]), "m-daily/v1/2026-12-03T08:00");
    assert_eq!(
        newest[5].as_datetime().unwrap().to_string(),
        "2026-12-03 08:00:00"
    );
    assert_eq!(newest[7], Data::Float(3.0));
    assert_eq!(newest[13], Data::Float(4.5));
    let once = range.rows().nth(2).unwrap();
    assert_eq!(
        once[19],
        Data::Float(0.0),
        "no telegram for the one-time mailing"
    );

    let bad = ExportOptions {
        account_url: Some("https://crm.example/clients/".into()),
    };
    let refused = w
        .dispatcher
        .export_journal(&query, &dir.path().join("x.xlsx"), &bad)
        .await;
    assert!(matches!(refused, Err(DispatchError::Refused(_))));
    assert!(!dir.path().join("x.xlsx").exists());
}
