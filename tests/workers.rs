//! Several `campaign run` workers on one SQLite journal (SPEC §7a): started at once, one
//! killed mid-run, one stalled past its lease. A local server shaped like the Telegram Bot API
//! counts messages per chat; the file outbox (which takes the delivery key) shows that the
//! worker taking over resends nothing twice.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::crash::{TelegramLike, campaign_binary, journal_statuses, run_args, write_inputs};

const RECIPIENTS: usize = 5_000;
const CONCURRENCY: usize = 16;

/// A Telegram-shaped server answering after `delay`, and a channels file pointing at it.
pub(crate) async fn telegram(dir: &Path, delay: Duration) -> (MockServer, String) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/bot[^/]+/sendMessage$"))
        .respond_with(TelegramLike(delay))
        .mount(&server)
        .await;
    let channels = dir.join("channels.json");
    std::fs::write(
        &channels,
        serde_json::json!({
            "telegram": {"bot_token": "env:TG_TOKEN", "api_base": server.uri(), "rate_per_sec": 0, "per_chat_per_sec": 0},
            "concurrency": CONCURRENCY
        })
        .to_string(),
    )
    .unwrap();
    (server, channels.to_str().unwrap().to_owned())
}

/// The SQLite journal of a test's folder.
fn sqlite(dir: &Path) -> String {
    dir.join("journal.db").to_str().unwrap().to_owned()
}

/// `campaign run` on the journal `db`, with a lease of `lease` seconds.
pub(crate) fn worker(dir: &Path, db: &str, channels: Option<&str>, lease: &str) -> Child {
    let (recipients, mailing) = (dir.join("people.jsonl"), dir.join("mailing.json"));
    let mut args = run_args(db, &mailing, &recipients, &dir.join("outbox"));
    // The crash test's lease, replaced by this test's.
    args.truncate(args.len() - 2);
    args.extend(["--lease-secs".into(), lease.into()]);
    if let Some(channels) = channels {
        args.extend(["--channels".into(), channels.into()]);
    }
    Command::new(campaign_binary())
        .args(&args)
        .env("TG_TOKEN", "123:secret")
        .env("VK_TOKEN", "vk1.a.token")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub(crate) fn finished(child: Child) -> Output {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "a worker failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub(crate) fn report(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap()
}

pub(crate) async fn per_chat(server: &MockServer) -> HashMap<i64, usize> {
    let mut counts = HashMap::new();
    for request in server.received_requests().await.unwrap() {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        *counts.entry(body["chat_id"].as_i64().unwrap()).or_default() += 1;
    }
    counts
}

pub(crate) fn twice(counts: &HashMap<i64, usize>) -> Vec<(i64, usize)> {
    counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(c, n)| (*c, *n))
        .collect()
}

pub(crate) fn count(statuses: &HashMap<String, usize>, status: &str) -> usize {
    statuses.get(status).copied().unwrap_or(0)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// «Never twice, never lost», counted at the server and in the journal `db`: no chat got the
/// message twice, each of `recipients` deliveries ended (sent, failed or unknown), and the
/// server saw every sent one and nothing the journal does not account for. Returns the sent
/// and unknown counts.
pub(crate) async fn never_twice_never_lost(
    server: &MockServer,
    db: &str,
    recipients: usize,
) -> (usize, usize) {
    let counts = per_chat(server).await;
    assert!(
        twice(&counts).is_empty(),
        "chats messaged twice: {:?}",
        twice(&counts)
    );
    let statuses = journal_statuses(db);
    eprintln!("journal: {statuses:?}; chats reached: {}", counts.len());
    let (sent, unknown, failed) = (
        count(&statuses, "sent"),
        count(&statuses, "unknown"),
        count(&statuses, "failed"),
    );
    assert_eq!(
        sent + unknown + failed,
        recipients,
        "every delivery ended: {statuses:?}"
    );
    assert!(
        counts.len() >= sent && counts.len() <= sent + unknown,
        "the server saw {} chats for {sent} sent and {unknown} unknown",
        counts.len()
    );
    (sent, unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_started_at_once_message_every_chat_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), RECIPIENTS);
    let (server, channels) = telegram(dir.path(), Duration::from_millis(1)).await;
    let path = dir.path().to_owned();
    let (one, two) = tokio::task::spawn_blocking(move || {
        let (a, b) = (
            worker(&path, &sqlite(&path), Some(&channels), "60"),
            worker(&path, &sqlite(&path), Some(&channels), "60"),
        );
        (finished(a), finished(b))
    })
    .await
    .unwrap();
    let counts = per_chat(&server).await;
    assert!(
        twice(&counts).is_empty(),
        "chats messaged twice: {:?}",
        twice(&counts)
    );
    assert_eq!(counts.len(), RECIPIENTS, "every chat messaged");
    eprintln!("worker reports: {} / {}", report(&one), report(&two));
    let statuses = journal_statuses(&sqlite(dir.path()));
    assert_eq!(count(&statuses, "sent"), RECIPIENTS, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_leaves_its_rows_to_the_other_once_its_lease_expires() {
    const LEASE: Duration = Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), RECIPIENTS);
    // Slow answers: each batch of 16 takes 20 ms, so the kill lands with sends in flight.
    let (server, channels) = telegram(dir.path(), Duration::from_millis(20)).await;
    let path = dir.path().to_owned();
    let (survivor, killed_at, done_at) = tokio::task::spawn_blocking(move || {
        let mut doomed = worker(&path, &sqlite(&path), Some(&channels), "3");
        let survivor = worker(&path, &sqlite(&path), Some(&channels), "3");
        std::thread::sleep(Duration::from_millis(1500));
        if let Some(status) = doomed.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut doomed.stderr.take().unwrap(), &mut stderr).unwrap();
            panic!("the worker to kill ended first ({status}): {stderr}");
        }
        doomed.kill().unwrap();
        let killed_at = Instant::now();
        doomed.wait().unwrap();
        let survivor = finished(survivor);
        (survivor, killed_at, Instant::now())
    })
    .await
    .unwrap();
    eprintln!("survivor: {}", report(&survivor));
    let (_, unknown) = never_twice_never_lost(&server, &sqlite(dir.path()), RECIPIENTS).await;
    assert!(
        unknown <= 2 * CONCURRENCY,
        "{unknown} unknown: at most the killed worker's claims"
    );
    assert_eq!(
        report(&survivor)["recovered_unknown"].as_u64().unwrap() as usize,
        unknown
    );
    if unknown > 0 {
        assert!(
            done_at.duration_since(killed_at) >= LEASE - Duration::from_millis(500),
            "the killed worker's rows were taken before its lease expired"
        );
    }
}

/// Runs a worker, stops it with SIGSTOP mid-run past its lease while a second worker takes
/// over, then continues it. Returns both workers' reports.
pub(crate) fn stalled_and_continued(
    dir: &Path,
    db: &str,
    channels: Option<&str>,
) -> (serde_json::Value, serde_json::Value) {
    let stalled = worker(dir, db, channels, "1");
    std::thread::sleep(Duration::from_millis(700));
    assert!(stalled.id() > 0);
    signal(&stalled, "-STOP");
    // A process stopped inside an SQLite write transaction holds the file's lock until it
    // runs again, and no other process can write (SQLite's locking, not the lease's): such a
    // stop is let go and made again a moment later, so the test stops the worker between
    // transactions, as a stall past the lease means here.
    for _ in 0..20 {
        if !sqlite_write_locked(db) {
            break;
        }
        signal(&stalled, "-CONT");
        std::thread::sleep(Duration::from_millis(37));
        signal(&stalled, "-STOP");
    }
    let rescuer = finished(worker(dir, db, channels, "1"));
    signal(&stalled, "-CONT");
    let stalled = finished(stalled);
    (report(&stalled), report(&rescuer))
}

/// Whether the SQLite journal at `db` is locked for writing now (never for PostgreSQL).
fn sqlite_write_locked(db: &str) -> bool {
    use sqlx::{Connection, SqliteConnection};
    if db.starts_with("postgres") {
        return false;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .busy_timeout(Duration::ZERO);
        let Ok(mut conn) = SqliteConnection::connect_with(&options).await else {
            return true;
        };
        let locked = sqlx::raw_sql("BEGIN IMMEDIATE; ROLLBACK;")
            .execute(&mut conn)
            .await
            .is_err();
        let _ = conn.close().await;
        locked
    })
}

/// A worker on the journal `db` stopped past its lease while another finishes its work, then
/// continued, on a slow Telegram-shaped server: its late results are refused, no chat gets the
/// message twice, and every delivery ends.
pub(crate) async fn a_stalled_worker_is_fenced_off(db: String) {
    const PEOPLE: usize = 1_500;
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), PEOPLE);
    // Answers slower than anything else the worker does: a stop lands with sends in flight.
    let (server, channels) = telegram(dir.path(), Duration::from_millis(150)).await;
    let path = dir.path().to_owned();
    let journal = db.clone();
    let (stalled, rescuer) = tokio::task::spawn_blocking(move || {
        stalled_and_continued(&path, &journal, Some(&channels))
    })
    .await
    .unwrap();
    eprintln!("stalled: {stalled}\nrescuer: {rescuer}");
    assert!(
        stalled["lease_lost"].as_u64().unwrap() >= 1,
        "the stalled worker's late results were refused"
    );
    assert!(rescuer["recovered_unknown"].as_u64().unwrap() >= 1);
    never_twice_never_lost(&server, &db, PEOPLE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_past_its_lease_has_its_late_results_refused() {
    let dir = tempfile::tempdir().unwrap();
    a_stalled_worker_is_fenced_off(sqlite(dir.path())).await;
}

/// Answers `messages.send` as VK does: a `random_id` seen before from the same peer returns
/// the earlier message id and delivers nothing new. Slow, so a stop lands mid-request.
struct VkLike;

impl Respond for VkLike {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        let id = form
            .get("random_id")
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0);
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"response": id}))
            .set_delay(Duration::from_millis(150))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_on_vk_is_replaced_without_a_message_delivered_twice() {
    const PEOPLE: usize = 1_500;
    let dir = tempfile::tempdir().unwrap();
    let mut people = String::new();
    for i in 1..=PEOPLE {
        people.push_str(&format!(
            "{{\"id\": \"c-{i}\", \"contacts\": {{\"vk_user_id\": {i}}}}}\n"
        ));
    }
    std::fs::write(dir.path().join("people.jsonl"), people).unwrap();
    std::fs::write(
        dir.path().join("mailing.json"),
        r#"{"id": "m-crash", "kind": "one_time", "class": "service",
            "schedule": {"start": "2026-11-22T10:00", "tz": "Europe/Moscow", "every": "once"},
            "channels": ["vk"], "content": {"default": {"text": "ваш заказ готов"}}}"#,
    )
    .unwrap();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/method/messages.send$"))
        .respond_with(VkLike)
        .mount(&server)
        .await;
    let channels = dir.path().join("channels.json");
    std::fs::write(
        &channels,
        serde_json::json!({
            "vk": {"token": "env:VK_TOKEN", "api_base": server.uri(), "rate_per_sec": 0},
            "concurrency": CONCURRENCY
        })
        .to_string(),
    )
    .unwrap();
    let path = dir.path().to_owned();
    let channels = channels.to_str().unwrap().to_owned();
    let (stalled, rescuer) = tokio::task::spawn_blocking(move || {
        stalled_and_continued(&path, &sqlite(&path), Some(&channels))
    })
    .await
    .unwrap();
    eprintln!("stalled: {stalled}\nrescuer: {rescuer}");
    // What VK delivered: one message per (peer, random_id).
    let mut delivered: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    for request in server.received_requests().await.unwrap() {
        let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        delivered
            .entry(form["peer_id"].clone())
            .or_default()
            .insert(form["random_id"].clone());
    }
    assert_eq!(delivered.len(), PEOPLE, "every peer reached");
    assert!(
        delivered.values().all(|ids| ids.len() == 1),
        "a peer got two different messages"
    );
    let statuses = journal_statuses(&sqlite(dir.path()));
    assert_eq!(
        count(&statuses, "sent"),
        PEOPLE,
        "resent with the same key: {statuses:?}"
    );
}
