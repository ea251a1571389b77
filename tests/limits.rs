//! A provider's daily limit shared by two workers sending one mailing at once (SPEC §7c), over
//! real sockets: each worker has its own HaskiMail channel and counter, as separate processes
//! do, and reads the journal's count of the other's sends while it sends. Counted at the
//! HaskiMail-shaped server.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rassylka::channels::{HaskiMailChannel, HaskiMailSettings};
use rassylka::model::Recipient;
use rassylka::store::{MailingState, MailingStore};
use rassylka::{Dispatcher, Mailing, ManualClock, MemorySource, Rassylka, SqliteStore};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LIMIT: usize = 60;
const PEOPLE: usize = 240;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn people() -> Vec<Recipient> {
    (0..PEOPLE)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "id": format!("p-{i:03}"), "first_name": "Анна",
                "consent": {"advertising": true},
                "contacts": {"email": format!("p{i}@example.com")}
            }))
            .unwrap()
        })
        .collect()
}

/// One worker: its own store handle, channel (and so its own limit counter) and source.
async fn worker(server: &MockServer, journal: &std::path::Path, name: &str) -> Rassylka {
    let settings: HaskiMailSettings = serde_json::from_value(serde_json::json!({
        "server_token": "HM-SECRET", "from": "news@shop.example", "api_base": server.uri(),
        "daily_limit": LIMIT
    }))
    .unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let channel = HaskiMailChannel::new(settings, None)
        .unwrap()
        .with_date_source(Arc::new(move || today));
    Rassylka::builder()
        .store(SqliteStore::open(journal).await.unwrap())
        .recipients(MemorySource::new(people()))
        .clock(Arc::new(ManualClock::starting_at(at(
            "2026-12-01T10:01:00+03:00",
        ))))
        .channel(Arc::new(channel))
        .concurrency(2)
        .usage_refresh(Duration::from_millis(50))
        .worker_id(name)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_account_stop_near_its_daily_limit_not_at_twice_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"ErrorCode": 0, "Message": "OK", "MessageID": "hm-1", "To": "x"}))
                .set_delay(Duration::from_millis(20)),
        )
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let first = worker(&server, &journal, "first").await;
    let second = worker(&server, &journal, "second").await;
    let mailing = Mailing::from_json(
        r#"{"id": "sale", "class": "advertising", "channels": ["email"],
            "schedule": {"start": "2026-12-01T10:00", "tz": "Europe/Moscow", "every": "once"},
            "content": {"email": {"subject": "Скидки", "text": "{first_name}, скидка 20%"}}}"#,
    )
    .unwrap();
    first.save(&mailing).await.unwrap();
    first.confirm("sale").await.unwrap();
    let (a, b) = tokio::join!(first.run_mailing("sale"), second.run_mailing("sale"));
    a.unwrap();
    b.unwrap();
    let sent = server.received_requests().await.unwrap().len();
    // Each worker alone would send up to the limit (twice it together). Reading the other's
    // count every 50 ms, they overshoot by what they send meanwhile: a few at 2 × 2 in flight
    // with 20 ms answers.
    assert!(sent >= LIMIT, "the limit was reached: {sent}");
    assert!(
        sent <= LIMIT + 30,
        "{sent} sent on a daily limit of {LIMIT}"
    );
    let store = SqliteStore::open(&journal).await.unwrap();
    let record = store.mailing("sale").await.unwrap().unwrap();
    assert_eq!(record.state, MailingState::Paused, "{record:?}");
    assert!(
        record
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("daily limit"),
        "{record:?}"
    );
}
