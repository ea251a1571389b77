//! `campaign history`, `journal`, `copy` and `export` as scripts call them (SPEC §8): the
//! documented JSON lines, filters, exit 2 for what cannot be done, a workbook on disk.

use std::process::Output;

use rassylka_workspace::write_file as write;

fn campaign(args: &[&str]) -> Output {
    rassylka_workspace::run_example("campaign", args)
}

const PEOPLE: &str = r#"{"id": "a", "first_name": "Анна", "consent": {"advertising": true}, "contacts": {"telegram_chat_id": 1, "phone": "+79160000001"}}
{"id": "b", "first_name": "Борис", "consent": {"advertising": true}, "contacts": {"phone": "+79160000002"}}
"#;

/// Daily at 08:00 in Vladivostok: 22:00 UTC of the day before.
const DAILY: &str = r#"{"id": "m-daily", "name": "Утро", "kind": "periodic",
 "schedule": {"start": "2026-12-02T08:00", "tz": "Asia/Vladivostok", "every": "day"},
 "channels": ["telegram", "sms"], "mode": "priority",
 "content": {"default": {"text": "{first_name|Гость}, доброе утро"}}}"#;

const ONCE: &str = r#"{"id": "m-once", "name": "Разовая",
 "schedule": {"start": "2026-12-02T12:00", "tz": "Europe/Moscow", "every": "once"},
 "channels": ["sms"], "content": {"default": {"text": "{first_name|Гость}, скидка"}}}"#;

fn lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn history_journal_copy_and_export_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let people = write(dir.path(), "people.jsonl", PEOPLE);
    let channels = write(dir.path(), "channels.json", r#"{"tariffs": {"sms": 4.5}}"#);
    let db = dir.path().join("j.db");
    let db = db.to_str().unwrap();
    let outbox = dir.path().join("out");
    let outbox = outbox.to_str().unwrap();
    for (file, mailing, now) in [
        ("daily.json", DAILY, "2026-12-01T22:00:30Z"),
        ("once.json", ONCE, "2026-12-02T09:00:30Z"),
    ] {
        let mailing = write(dir.path(), file, mailing);
        let out = campaign(&[
            "--db",
            db,
            "run",
            "--mailing",
            &mailing,
            "--recipients",
            &people,
            "--channels",
            &channels,
            "--outbox",
            outbox,
            "--now",
            now,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let history = lines(&campaign(&["--db", db, "history"]));
    assert_eq!(
        history,
        vec![
            serde_json::json!({"mailing_id": "m-once", "name": "Разовая", "kind": "one_time",
                "class": "advertising", "occurrence": "m-once/v1/2026-12-02T12:00",
                "fired_at": "2026-12-02T12:00:00+03:00", "state": "done", "recipients": 2,
                "sent": 2, "failed": 0, "skipped": 0, "unknown": 0, "queued": 0, "cost": 9,
                "per_channel": {"sms": {"sent": 2, "failed": 0, "skipped": 0, "cost": 9}}}),
            serde_json::json!({"mailing_id": "m-daily", "name": "Утро", "kind": "periodic",
                "class": "advertising", "occurrence": "m-daily/v1/2026-12-02T08:00",
                "fired_at": "2026-12-02T08:00:00+10:00", "state": "done", "recipients": 2,
                "sent": 2, "failed": 0, "skipped": 1, "unknown": 0, "queued": 0, "cost": 4.5,
                "per_channel": {"sms": {"sent": 1, "failed": 0, "skipped": 1, "cost": 4.5},
                                "telegram": {"sent": 1, "failed": 0, "skipped": 0, "cost": 0}}}),
        ]
    );
    // Dates are the occurrence's own: the daily run fired on 1 December in UTC.
    let on_the_1st = campaign(&[
        "--db",
        db,
        "history",
        "--from",
        "2026-12-01",
        "--to",
        "2026-12-01",
    ]);
    assert!(lines(&on_the_1st).is_empty());
    let periodic = lines(&campaign(&[
        "--db",
        db,
        "history",
        "--kind",
        "periodic",
        "--to",
        "2026-12-02",
    ]));
    assert_eq!(periodic.len(), 1);
    assert_eq!(periodic[0]["mailing_id"], "m-daily");

    let skipped = lines(&campaign(&[
        "--db",
        db,
        "journal",
        "--mailing-id",
        "m-daily",
        "--status",
        "skipped",
    ]));
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["recipient_id"], "a");
    assert_eq!(skipped[0]["channel"], "sms");
    assert_eq!(skipped[0]["reason"], "delivered through telegram");
    assert_eq!(skipped[0]["cost"], 0);
    let of_boris = lines(&campaign(&[
        "--db",
        db,
        "journal",
        "--mailing-id",
        "m-once",
        "--recipient-id",
        "b",
    ]));
    assert_eq!(of_boris.len(), 1);
    assert_eq!(
        of_boris[0]["provider_message_id"],
        "m-once/v1/2026-12-02T12:00/b/sms"
    );
    assert_eq!(of_boris[0]["cost"], 4.5);

    let copy = campaign(&[
        "--db",
        db,
        "copy",
        "--mailing-id",
        "m-once",
        "--new-id",
        "m-once-2",
        "--now",
        "2026-12-05T10:15:00Z",
    ]);
    let copy = lines(&copy);
    assert_eq!(copy[0]["id"], "m-once-2");
    assert_eq!(
        copy[0]["schedule"],
        serde_json::json!({"start": "2026-12-05T13:15", "tz": "Europe/Moscow", "every": "once"})
    );
    let refused = campaign(&[
        "--db",
        db,
        "copy",
        "--mailing-id",
        "m-daily",
        "--new-id",
        "m-daily-2",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("periodic"));
    assert!(refused.stdout.is_empty());

    let workbook = dir.path().join("journal.xlsx");
    let out = campaign(&[
        "--db",
        db,
        "export",
        "--what",
        "journal",
        "--mailing-id",
        "m-daily",
        "--out",
        workbook.to_str().unwrap(),
        "--account-url",
        "https://crm.example/clients/{id}",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert!(std::fs::metadata(&workbook).unwrap().len() > 0);
    let history_book = dir.path().join("history.xlsx");
    let out = campaign(&[
        "--db",
        db,
        "export",
        "--what",
        "history",
        "--kind",
        "one_time",
        "--out",
        history_book.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(history_book.exists());
}

#[test]
fn bad_filters_exit_2_and_say_which() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("j.db");
    let db = db.to_str().unwrap();
    for (args, says) in [
        // A write first: it creates the journal the reads below open read-only.
        (
            vec!["copy", "--mailing-id", "m-none", "--new-id", "x"],
            "no mailing `m-none`",
        ),
        (vec!["history", "--kind", "weekly"], "--kind `weekly`"),
        (
            vec!["history", "--from", "2026-13-01"],
            "--from `2026-13-01`",
        ),
        (
            vec!["history", "--from", "2026-12-02", "--to", "2026-12-01"],
            "is after",
        ),
        (
            vec!["journal", "--mailing-id", "m", "--status", "lost"],
            "--status `lost`",
        ),
        (
            vec!["journal", "--mailing-id", "m-none"],
            "no mailing `m-none`",
        ),
        (
            vec!["export", "--what", "both", "--out", "x.xlsx"],
            "--what `both`",
        ),
        (
            vec![
                "export", "--what", "history", "--status", "sent", "--out", "x.xlsx",
            ],
            "--what history takes",
        ),
    ] {
        let mut full = vec!["--db", db];
        full.extend(args.iter());
        let out = campaign(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn an_empty_journal_file_is_refused_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("j.db");
    std::fs::write(&db, b"").unwrap();
    let db = db.to_str().unwrap();
    let people = write(dir.path(), "people.jsonl", PEOPLE);
    let mailing = write(dir.path(), "once.json", ONCE);
    let outbox = dir.path().join("out");
    for args in [
        vec!["history"],
        vec!["journal", "--mailing-id", "m-once"],
        vec![
            "run",
            "--mailing",
            &mailing,
            "--recipients",
            &people,
            "--outbox",
            outbox.to_str().unwrap(),
        ],
    ] {
        let mut full = vec!["--db", db];
        full.extend(args.iter());
        let out = campaign(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("the journal file is empty"), "{stderr}");
    }
    let sent = std::fs::metadata(outbox.join("sms.jsonl")).map_or(0, |m| m.len());
    assert_eq!(sent, 0, "nothing was sent");
}

#[test]
fn a_reader_that_goes_away_ends_the_journal_quietly() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let people: String = (1..=3_000)
        .map(|i| format!("{{\"id\": \"c-{i}\", \"contacts\": {{\"phone\": \"+7916{i:07}\"}}}}\n"))
        .collect();
    let people = write(dir.path(), "people.jsonl", &people);
    let mailing = write(dir.path(), "once.json", ONCE);
    let db = dir.path().join("j.db");
    let db = db.to_str().unwrap();
    let outbox = dir.path().join("out");
    let run = campaign(&[
        "--db",
        db,
        "run",
        "--mailing",
        &mailing,
        "--recipients",
        &people,
        "--outbox",
        outbox.to_str().unwrap(),
        "--now",
        "2026-12-02T09:00:30Z",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // `campaign journal … | head -1`.
    let mut child = std::process::Command::new(crate::crash::campaign_binary())
        .args(["--db", db, "journal", "--mailing-id", "m-once"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("\"delivery_key\""), "{first}");
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
