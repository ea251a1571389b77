//! Fault injection over real sockets: a Telegram-shaped server that answers a share of
//! requests with 429 and `retry_after`, with 5xx, by dropping the connection before reading
//! the request, by dropping it after taking the message, or slower than the client waits —
//! counting the messages it took per chat. Runs are repeated (a streak of outage failures
//! pauses the mailing; the next run comes after the pause) until the mailing is done.
//! Never twice: no chat took two messages. Never lost: every recipient is sent, failed with a
//! reason, or unknown, and there are no more unknowns than sends that ended with no answer.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::crash::{campaign_binary, journal_statuses, write_inputs};

/// (peer or chat id, status) of every journal row of `m-crash`; recipients are `c-<id>`.
fn journal_rows(db: &str) -> Vec<(i64, String)> {
    let output = Command::new(campaign_binary())
        .args(["--db", db, "journal", "--mailing-id", "m-crash"])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = row["recipient_id"]
                .as_str()
                .unwrap()
                .trim_start_matches("c-");
            (
                id.parse().unwrap(),
                row["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const PEOPLE: usize = 1_500;

/// What the server did, by kind of fault.
#[derive(Default)]
struct Tally {
    /// Messages taken, per chat.
    taken: HashMap<i64, usize>,
    /// VK: the `random_id` of each message taken, so a repeat is answered, not delivered.
    seen: HashMap<(i64, i64), i64>,
    /// VK: repeats answered without delivering again.
    repeats: usize,
    /// Sends that ended with no answer: dropped after the request was read or answered late.
    silent: usize,
    throttled: usize,
    failed_5xx: usize,
    dropped_unread: usize,
}

/// Reads one HTTP/1.1 request: its head and a Content-Length body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            return Some(buffer[end + 4..end + 4 + length].to_vec());
        }
    }
}

async fn answer(stream: &mut tokio::net::TcpStream, status: &str, body: &str) {
    let text = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Which provider the server plays.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// `sendMessage` with a JSON body; no idempotency key.
    Telegram,
    /// `messages.send` with a form body and `random_id`: a repeat is answered with the first
    /// message's id and not delivered again, as VK does.
    Vk,
}

/// Who and which message a request is about: (chat or peer, random_id).
fn addressed(shape: Shape, body: &[u8]) -> (i64, i64) {
    match shape {
        Shape::Telegram => {
            let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            (request["chat_id"].as_i64().unwrap_or(-1), 0)
        }
        Shape::Vk => {
            let form: HashMap<String, String> =
                url::form_urlencoded::parse(body).into_owned().collect();
            let number = |k: &str| form.get(k).and_then(|v| v.parse().ok()).unwrap_or(-1);
            (number("peer_id"), number("random_id"))
        }
    }
}

/// Takes the message unless it is a VK repeat; the message id to answer with.
fn take(shape: Shape, tally: &Mutex<Tally>, chat: i64, random_id: i64, silent: bool) -> i64 {
    let mut t = tally.lock().unwrap();
    if silent {
        t.silent += 1;
    }
    if shape == Shape::Vk {
        if let Some(id) = t.seen.get(&(chat, random_id)) {
            let id = *id;
            t.repeats += 1;
            return id;
        }
        t.seen.insert((chat, random_id), chat);
    }
    *t.taken.entry(chat).or_default() += 1;
    chat
}

fn ok(shape: Shape, id: i64) -> String {
    match shape {
        Shape::Telegram => ok_body(id),
        Shape::Vk => format!(r#"{{"response":{id}}}"#),
    }
}

/// Starts the faulty server; one fault in five, spread over the five kinds.
async fn faulty_server(shape: Shape, tally: Arc<Mutex<Tally>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dice = Arc::new(AtomicU64::new(0x9e37_79b9_7f4a_7c15));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tally = tally.clone();
            let dice = dice.clone();
            tokio::spawn(async move {
                let mut x = dice.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
                x ^= x >> 31;
                x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
                x ^= x >> 29;
                let roll = x % 25;
                if roll == 0 {
                    // Dropped before the request is read.
                    tally.lock().unwrap().dropped_unread += 1;
                    return;
                }
                let Some(body) = read_request(&mut stream).await else {
                    return;
                };
                let (chat, random_id) = addressed(shape, &body);
                match roll {
                    1 => {
                        tally.lock().unwrap().throttled += 1;
                        let throttled = match shape {
                            Shape::Telegram => (
                                "429 Too Many Requests",
                                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#,
                            ),
                            Shape::Vk => (
                                "200 OK",
                                r#"{"error":{"error_code":6,"error_msg":"Too many requests per second"}}"#,
                            ),
                        };
                        answer(&mut stream, throttled.0, throttled.1).await;
                    }
                    2 => {
                        tally.lock().unwrap().failed_5xx += 1;
                        answer(
                            &mut stream,
                            "502 Bad Gateway",
                            r#"{"ok":false,"error_code":502,"description":"Bad Gateway"}"#,
                        )
                        .await;
                    }
                    3 | 4 => {
                        // Took the message; the answer is lost (a reset) or comes too late.
                        let id = take(shape, &tally, chat, random_id, true);
                        if roll == 4 {
                            tokio::time::sleep(Duration::from_millis(1_500)).await;
                            answer(&mut stream, "200 OK", &ok(shape, id)).await;
                        }
                    }
                    _ => {
                        let id = take(shape, &tally, chat, random_id, false);
                        answer(&mut stream, "200 OK", &ok(shape, id)).await;
                    }
                }
            });
        }
    });
    port
}

fn ok_body(chat: i64) -> String {
    format!(
        r#"{{"ok":true,"result":{{"message_id":{chat},"date":1763800000,"chat":{{"id":{chat},"type":"private"}},"text":"ok"}}}}"#
    )
}

/// Runs `campaign run` until the mailing is done, two minutes later each time (after a pause
/// or with retries waiting); the number of runs and the last summary.
async fn run_until_done(
    db: &str,
    dir: &std::path::Path,
    mailing: &std::path::Path,
    recipients: &std::path::Path,
    channels: &std::path::Path,
) -> (usize, serde_json::Value) {
    let outbox = dir.join("out");
    let mut runs = 0;
    let mut minute = 0;
    loop {
        runs += 1;
        assert!(runs < 40, "the mailing never finished");
        let now = format!("2026-11-22T10:{minute:02}:30+03:00");
        let args = [
            "--db",
            db,
            "run",
            "--mailing",
            mailing.to_str().unwrap(),
            "--recipients",
            recipients.to_str().unwrap(),
            "--outbox",
            outbox.to_str().unwrap(),
            "--channels",
            channels.to_str().unwrap(),
            "--now",
            &now,
        ]
        .map(str::to_owned);
        let output = tokio::task::spawn_blocking(move || {
            Command::new(campaign_binary())
                .args(&args)
                .env("TG_TOKEN", "123:secret")
                .env("VK_TOKEN", "vk1.a.secret")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let code = output.status.code();
        assert!(
            matches!(code, Some(0 | 3)),
            "{code:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        if summary["state"] == "done" {
            return (runs, summary);
        }
        minute += 2;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_telegram_gets_no_message_twice_and_loses_nobody() {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let port = faulty_server(Shape::Telegram, tally.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (recipients, mailing) = write_inputs(dir.path(), PEOPLE);
    let channels = dir.path().join("channels.json");
    std::fs::write(
        &channels,
        serde_json::json!({
            "telegram": {"bot_token": "env:TG_TOKEN", "api_base": format!("http://127.0.0.1:{port}"),
                         "rate_per_sec": 0, "per_chat_per_sec": 0, "timeout_secs": 1},
            "concurrency": 16
        })
        .to_string(),
    )
    .unwrap();
    let db = dir.path().join("journal.db").to_str().unwrap().to_owned();
    let (runs, summary) = run_until_done(&db, dir.path(), &mailing, &recipients, &channels).await;
    let tally = tally.lock().unwrap();
    let twice: Vec<(&i64, &usize)> = tally.taken.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "chats messaged twice: {twice:?}");
    let statuses = journal_statuses(&db);
    let sent = statuses.get("sent").copied().unwrap_or(0);
    let unknown = statuses.get("unknown").copied().unwrap_or(0);
    let failed = statuses.get("failed").copied().unwrap_or(0);
    assert_eq!(sent + unknown + failed, PEOPLE, "nobody lost: {statuses:?}");
    assert_eq!(statuses.values().sum::<usize>(), PEOPLE, "{statuses:?}");
    // Every message the server took and answered is journaled sent; each it took in silence
    // is unknown; no unknown without a send that ended with no answer.
    assert_eq!(sent + tally.silent, tally.taken.len());
    assert!(
        unknown <= tally.silent + tally.dropped_unread,
        "unknown {unknown}, silent {}, dropped unread {}",
        tally.silent,
        tally.dropped_unread
    );
    eprintln!(
        "faults: runs {runs}, taken {}, silent {}, 429 {}, 5xx {}, dropped unread {}; journal: sent {sent}, unknown {unknown}, failed {failed}; summary {summary}",
        tally.taken.len(),
        tally.silent,
        tally.throttled,
        tally.failed_5xx,
        tally.dropped_unread
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_vk_delivers_each_message_exactly_once_through_random_id() {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let port = faulty_server(Shape::Vk, tally.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let recipients = dir.path().join("people.jsonl");
    let people: String = (1..=PEOPLE)
        .map(|i| format!("{{\"id\": \"c-{i}\", \"contacts\": {{\"vk_user_id\": {i}}}}}\n"))
        .collect();
    std::fs::write(&recipients, people).unwrap();
    let mailing = dir.path().join("mailing.json");
    std::fs::write(
        &mailing,
        r#"{"id": "m-crash", "kind": "one_time", "class": "service",
            "schedule": {"start": "2026-11-22T10:00", "tz": "Europe/Moscow", "every": "once"},
            "channels": ["vk"], "content": {"default": {"text": "ваш заказ готов"}}}"#,
    )
    .unwrap();
    let channels = dir.path().join("channels.json");
    std::fs::write(
        &channels,
        serde_json::json!({
            "vk": {"token": "env:VK_TOKEN", "api_base": format!("http://127.0.0.1:{port}"),
                   "rate_per_sec": 0, "timeout_secs": 1},
            "concurrency": 16
        })
        .to_string(),
    )
    .unwrap();
    let db = dir.path().join("journal.db").to_str().unwrap().to_owned();
    let (runs, _) = run_until_done(&db, dir.path(), &mailing, &recipients, &channels).await;
    let tally = tally.lock().unwrap();
    let twice: Vec<(&i64, &usize)> = tally.taken.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "peers messaged twice: {twice:?}");
    // Each peer: sent and delivered once; unknown (out of attempts after one that may have
    // arrived); or failed and never delivered.
    let rows = journal_rows(&db);
    let mut unknown = 0;
    for (peer, status) in &rows {
        let delivered = tally.taken.contains_key(peer);
        match status.as_str() {
            "sent" => assert!(delivered, "peer {peer} journaled sent, never delivered"),
            "failed" => assert!(!delivered, "peer {peer} journaled failed, but delivered"),
            "unknown" => unknown += 1,
            other => panic!("peer {peer} left {other}"),
        }
    }
    assert_eq!(rows.len(), PEOPLE, "nobody lost");
    assert!(
        unknown <= tally.silent,
        "unknown {unknown}, silent {}",
        tally.silent
    );
    assert!(
        tally.repeats > 0,
        "some messages were sent again and answered as repeats"
    );
    eprintln!(
        "vk faults: runs {runs}, delivered {}, repeats answered {}, silent {}, throttled {}, 5xx {}, dropped unread {}",
        tally.taken.len(),
        tally.repeats,
        tally.silent,
        tally.throttled,
        tally.failed_5xx,
        tally.dropped_unread
    );
}
