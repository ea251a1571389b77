//! Crash safety of `campaign run` (SPEC §7): the process is killed with SIGKILL at random
//! moments and started again until it finishes. Against a local server shaped like the Telegram
//! Bot API no chat may get the message twice and every delivery must end sent, failed or
//! «unknown» (at most the concurrency limit per kill); through the file outbox, which takes the
//! delivery key, every message must be written exactly once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const RECIPIENTS: usize = 20_000;
const CONCURRENCY: usize = 32;
const KILLS: usize = 4;

pub(crate) fn campaign_binary() -> PathBuf {
    example_binary("campaign")
}

/// An example's binary, built first if `cargo test` did not build it.
pub(crate) fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().and_then(Path::parent).unwrap();
    let binary = target.join("examples").join(name);
    if !binary.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success());
    }
    binary
}

pub(crate) fn write_inputs(dir: &Path, recipients_count: usize) -> (PathBuf, PathBuf) {
    let recipients = dir.join("people.jsonl");
    let mut text = String::with_capacity(recipients_count * 80);
    for i in 1..=recipients_count {
        text.push_str(&format!(
            "{{\"id\": \"c-{i}\", \"first_name\": \"Гость {i}\", \"contacts\": {{\"telegram_chat_id\": {i}}}}}\n"
        ));
    }
    std::fs::write(&recipients, text).unwrap();
    let mailing = dir.join("mailing.json");
    std::fs::write(
        &mailing,
        r#"{"id": "m-crash", "kind": "one_time", "class": "service",
            "schedule": {"start": "2026-11-22T10:00", "tz": "Europe/Moscow", "every": "once"},
            "channels": ["telegram"],
            "content": {"default": {"text": "{first_name}, ваш заказ готов"}}}"#,
    )
    .unwrap();
    (recipients, mailing)
}

/// A cheap deterministic pseudo-random sequence, seeded from the clock.
pub(crate) struct Dice(pub(crate) u64);

impl Dice {
    pub(crate) fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// Runs `campaign run` and kills it after a random moment, `KILLS` times, then lets it finish.
/// Returns how many times it was really killed mid-run.
/// `campaign --db DB run` for the mailing and recipients, into `outbox`, at a fixed instant.
pub(crate) fn run_args(db: &str, mailing: &Path, recipients: &Path, outbox: &Path) -> Vec<String> {
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    vec![
        "--db".into(),
        db.to_owned(),
        "run".into(),
        "--mailing".into(),
        path(mailing),
        "--recipients".into(),
        path(recipients),
        "--outbox".into(),
        path(outbox),
        "--now".into(),
        "2026-11-22T10:00:30+03:00".into(),
        // A killed run's claims come back to the next run two seconds later.
        "--lease-secs".into(),
        "2".into(),
    ]
}

fn run_with_kills(args: &[String], envs: &[(&str, &str)]) -> usize {
    let binary = campaign_binary();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut dice = Dice(seed | 1);
    let mut killed = 0;
    for _ in 0..KILLS {
        let mut child = Command::new(&binary)
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + dice.next(900)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
    }
    let started = Instant::now();
    let output = Command::new(&binary)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the last run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(300));
    killed
}

pub(crate) fn journal_statuses(db: &str) -> HashMap<String, usize> {
    let output = Command::new(campaign_binary())
        .args(["--db", db, "journal", "--mailing-id", "m-crash"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let mut statuses = HashMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        *statuses
            .entry(row["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    statuses
}

/// Answers `sendMessage` like the Bot API, a little slowly so kills land mid-request.
pub(crate) struct TelegramLike(pub(crate) Duration);

impl Respond for TelegramLike {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({
                "ok": true,
                "result": {"message_id": 1, "date": 1_763_800_000, "chat": {"id": body["chat_id"], "type": "private"}, "text": body["text"]}
            }))
            .set_delay(self.0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_never_send_a_chat_twice_and_forget_nobody() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/bot[^/]+/sendMessage$"))
        .respond_with(TelegramLike(Duration::from_millis(2)))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (recipients, mailing) = write_inputs(dir.path(), RECIPIENTS);
    let channels = dir.path().join("channels.json");
    std::fs::write(
        &channels,
        serde_json::json!({
            "telegram": {"bot_token": "env:TG_TOKEN", "api_base": server.uri(), "rate_per_sec": 0, "per_chat_per_sec": 0},
            "concurrency": CONCURRENCY
        })
        .to_string(),
    )
    .unwrap();
    let db = dir.path().join("journal.db");
    let mut args = run_args(
        db.to_str().unwrap(),
        &mailing,
        &recipients,
        &dir.path().join("outbox"),
    );
    args.extend(["--channels".into(), channels.to_str().unwrap().into()]);
    let killed =
        tokio::task::spawn_blocking(move || run_with_kills(&args, &[("TG_TOKEN", "123:secret")]))
            .await
            .unwrap();
    assert!(
        killed >= 1,
        "no run was killed mid-way, so nothing was tested"
    );

    let mut per_chat: HashMap<i64, usize> = HashMap::new();
    for request in server.received_requests().await.unwrap() {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        *per_chat
            .entry(body["chat_id"].as_i64().unwrap())
            .or_default() += 1;
    }
    let twice: Vec<_> = per_chat.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "chats that got the message twice: {twice:?}"
    );

    let statuses = journal_statuses(db.to_str().unwrap());
    eprintln!(
        "{killed} kills; journal: {statuses:?}; chats reached: {}",
        per_chat.len()
    );
    let (sent, failed, unknown) = (
        statuses.get("sent").copied().unwrap_or(0),
        statuses.get("failed").copied().unwrap_or(0),
        statuses.get("unknown").copied().unwrap_or(0),
    );
    assert_eq!(
        sent + failed + unknown,
        RECIPIENTS,
        "every delivery ended: {statuses:?}"
    );
    assert!(
        unknown <= CONCURRENCY * killed,
        "{unknown} unknown after {killed} kills"
    );
    assert!(
        per_chat.len() >= sent,
        "every delivery journaled as sent reached the server"
    );
    assert!(
        per_chat.len() <= sent + unknown,
        "the server saw nothing the journal does not account for"
    );
}

#[test]
fn killed_runs_through_the_outbox_write_every_message_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (recipients, mailing) = write_inputs(dir.path(), RECIPIENTS);
    let db = dir.path().join("journal.db");
    let outbox = dir.path().join("outbox");
    let args = run_args(db.to_str().unwrap(), &mailing, &recipients, &outbox);
    let killed = run_with_kills(&args, &[]);
    assert!(
        killed >= 1,
        "no run was killed mid-way, so nothing was tested"
    );
    let written = std::fs::read_to_string(outbox.join("telegram.jsonl")).unwrap();
    let mut keys: HashMap<String, usize> = HashMap::new();
    for line in written.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        *keys
            .entry(row["delivery_key"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(keys.len(), RECIPIENTS);
    assert!(
        keys.values().all(|n| *n == 1),
        "a message was written twice"
    );
    let statuses = journal_statuses(db.to_str().unwrap());
    assert_eq!(
        statuses.get("sent").copied(),
        Some(RECIPIENTS),
        "{statuses:?}"
    );
}
