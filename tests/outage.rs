//! A channel outage pauses instead of failing (SPEC §7b), over real sockets: the Telegram
//! server is down (connection refused), the run sends nothing, burns nobody and exits 3; the
//! server comes back on the same port and the next run after the pause sends everyone once.

use std::process::Command;
use std::time::Duration;

use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer};

use crate::crash::{TelegramLike, campaign_binary, journal_statuses, write_inputs};
use crate::workers::{per_chat, twice};

const PEOPLE: usize = 60;

fn run(db: &str, dir: &std::path::Path, channels: &str, now: &str) -> std::process::Output {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    Command::new(campaign_binary())
        .args([
            "--db",
            db,
            "run",
            "--mailing",
            &path("mailing.json"),
            "--recipients",
            &path("people.jsonl"),
            "--outbox",
            &path("out"),
            "--channels",
            channels,
            "--now",
            now,
        ])
        .env("TG_TOKEN", "123:secret")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_pauses_the_mailing_and_the_next_run_sends_everyone_once() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), PEOPLE);
    // A port nobody listens on: every connection is refused.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let channels = dir.path().join("channels.json");
    std::fs::write(
        &channels,
        serde_json::json!({
            "telegram": {"bot_token": "env:TG_TOKEN", "api_base": format!("http://127.0.0.1:{port}"),
                         "rate_per_sec": 0, "per_chat_per_sec": 0},
            "concurrency": 8
        })
        .to_string(),
    )
    .unwrap();
    let db = dir.path().join("journal.db");
    let db = db.to_str().unwrap().to_owned();
    let channels = channels.to_str().unwrap().to_owned();
    let (dir_path, db_at, channels_at) = (dir.path().to_owned(), db.clone(), channels.clone());
    let down = tokio::task::spawn_blocking(move || {
        run(&db_at, &dir_path, &channels_at, "2026-11-22T10:00:30+03:00")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert_eq!(down.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("the telegram channel is down"), "{stderr}");
    assert!(stderr.contains("paused until"), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&down.stdout).unwrap();
    assert_eq!(summary["state"], "paused");
    assert_eq!(summary["sent"], 0);
    assert_eq!(summary["failed"], 0, "nobody is burnt");
    assert_eq!(summary["queued"], PEOPLE);
    assert_eq!(
        journal_statuses(&db),
        [("queued".to_owned(), PEOPLE)].into_iter().collect()
    );

    // Back on the same port.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let server = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/bot[^/]+/sendMessage$"))
        .respond_with(TelegramLike(Duration::from_millis(1)))
        .mount(&server)
        .await;
    // Before the pause ends: nothing is tried.
    let (dir_path, db_at, channels_at) = (dir.path().to_owned(), db.clone(), channels.clone());
    let early = tokio::task::spawn_blocking(move || {
        run(&db_at, &dir_path, &channels_at, "2026-11-22T10:00:50+03:00")
    })
    .await
    .unwrap();
    assert_eq!(
        early.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    assert!(server.received_requests().await.unwrap().is_empty());
    // After it: everyone, once.
    let (dir_path, db_at, channels_at) = (dir.path().to_owned(), db.clone(), channels.clone());
    let back = tokio::task::spawn_blocking(move || {
        run(&db_at, &dir_path, &channels_at, "2026-11-22T10:05:00+03:00")
    })
    .await
    .unwrap();
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&back.stdout).unwrap();
    assert_eq!(summary["state"], "done");
    let counts = per_chat(&server).await;
    assert_eq!(counts.len(), PEOPLE, "every chat reached");
    assert!(twice(&counts).is_empty(), "{:?}", twice(&counts));
    assert_eq!(
        journal_statuses(&db),
        [("sent".to_owned(), PEOPLE)].into_iter().collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_pauses_and_the_run_after_it_finishes() {
    use crate::smtp_server::{Security, SmtpServer};
    const MAILBOXES: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    let people: String = (1..=MAILBOXES)
        .map(|i| {
            format!(
                "{{\"id\": \"c-{i}\", \"contacts\": {{\"email\": \"guest{i}@example.com\"}}}}\n"
            )
        })
        .collect();
    std::fs::write(dir.path().join("people.jsonl"), people).unwrap();
    std::fs::write(
        dir.path().join("mailing.json"),
        r#"{"id": "m-crash", "kind": "one_time", "class": "service",
            "schedule": {"start": "2026-11-22T10:00", "tz": "Europe/Moscow", "every": "once"},
            "channels": ["email"],
            "content": {"default": {"subject": "Заказ готов", "text": "Ваш заказ готов"}}}"#,
    )
    .unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let channels = dir.path().join("channels.json");
    std::fs::write(
        &channels,
        serde_json::json!({
            "email": {"smtp": {"host": "127.0.0.1", "port": port, "tls": "none", "user": "mailer",
                               "password": "env:SMTP_PASS", "timeout_secs": 2},
                      "from": "Магазин <news@shop.example>"},
            "concurrency": 4
        })
        .to_string(),
    )
    .unwrap();
    let db = dir.path().join("journal.db").to_str().unwrap().to_owned();
    let channels = channels.to_str().unwrap().to_owned();
    let smtp_run = |now: &'static str| {
        let (dir, db, channels) = (dir.path().to_owned(), db.clone(), channels.clone());
        tokio::task::spawn_blocking(move || {
            let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
            Command::new(campaign_binary())
                .args([
                    "--db",
                    &db,
                    "run",
                    "--mailing",
                    &path("mailing.json"),
                    "--recipients",
                    &path("people.jsonl"),
                    "--outbox",
                    &path("out"),
                    "--channels",
                    &channels,
                    "--now",
                    now,
                ])
                .env("SMTP_PASS", "s3cret-pass")
                .output()
                .unwrap()
        })
    };
    let down = smtp_run("2026-11-22T10:00:30+03:00").await.unwrap();
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert_eq!(down.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("the email channel is down"), "{stderr}");
    assert!(!stderr.contains("s3cret-pass"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&down.stdout).unwrap();
    assert_eq!(
        (summary["failed"].as_u64(), summary["queued"].as_u64()),
        (Some(0), Some(MAILBOXES as u64))
    );

    let server = SmtpServer::start_on(port, Security::Plain, ("mailer", "s3cret-pass")).await;
    let back = smtp_run("2026-11-22T10:05:00+03:00").await.unwrap();
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    let mut to: Vec<String> = server
        .received()
        .into_iter()
        .flat_map(|r| r.rcpt_to)
        .collect();
    to.sort();
    to.dedup();
    assert_eq!(server.received().len(), MAILBOXES, "each message once");
    assert_eq!(to.len(), MAILBOXES);
    assert_eq!(
        journal_statuses(&db),
        [("sent".to_owned(), MAILBOXES)].into_iter().collect()
    );
}
