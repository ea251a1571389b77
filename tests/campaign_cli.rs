//! The `campaign` example binary as scripts call it (SPEC §8): preview, cost and run print
//! the documented JSON; bad input exits 2.

use std::process::Output;

use rassylka_workspace::write_file as write;

fn campaign(args: &[&str]) -> Output {
    rassylka_workspace::run_example("campaign", args)
}

const PEOPLE: &str = r#"{"id": "a", "first_name": "Анна", "consent": {"advertising": true}, "contacts": {"telegram_chat_id": 1, "phone": "+79160000001"}}
{"id": "b", "first_name": "Константин", "consent": {"advertising": true}, "contacts": {"phone": "8 916 000-00-02", "email": "b@example.com"}}
{"id": "c", "consent": {"advertising": false}, "contacts": {"phone": "+79160000003"}}
"#;

const MAILING: &str = r#"{"id": "m-cli", "kind": "one_time", "class": "advertising",
 "schedule": {"start": "2026-11-22T10:00", "tz": "Europe/Moscow", "every": "once"},
 "channels": ["telegram", "sms", "email"], "mode": "priority",
 "content": {"default": {"text": "{first_name|Гость}, ваш бонус ждёт вас в салоне на Ленина до конца недели, ждём!"},
             "email": {"subject": "Бонус", "html": "<p>{first_name}</p>"}}}"#;

#[test]
fn preview_cost_and_run_print_the_documented_json() {
    let dir = tempfile::tempdir().unwrap();
    let (people, mailing) = (
        write(dir.path(), "people.jsonl", PEOPLE),
        write(dir.path(), "m.json", MAILING),
    );
    let channels = write(
        dir.path(),
        "channels.json",
        r#"{"tariffs": {"sms": 4.5, "email": 0.05}}"#,
    );
    let db = dir.path().join("j.db");
    let db = db.to_str().unwrap();

    let out = campaign(&[
        "--db",
        db,
        "preview",
        "--mailing",
        &mailing,
        "--recipients",
        &people,
        "--today",
        "2026-11-22",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"matched\":3,\"per_channel\":{\"email\":0,\"sms\":1,\"telegram\":1,\"vk\":0,\"push\":0}}\n"
    );

    let out = campaign(&[
        "--db",
        db,
        "cost",
        "--mailing",
        &mailing,
        "--recipients",
        &people,
        "--channels",
        &channels,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // b: 72 UCS-2 characters, two SMS segments (67 + 5) at 4.5 each.
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"per_channel\":{\"email\":{\"messages\":0,\"cost\":0},\"sms\":{\"messages\":1,\"segments\":2,\"cost\":9},\"telegram\":{\"messages\":1,\"cost\":0}},\"total\":9}\n"
    );

    let outbox = dir.path().join("outbox");
    let run_args = [
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
        "2026-11-22T10:00:30+03:00",
    ];
    let out = campaign(&run_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["sent"], 2);
    assert_eq!(summary["state"], "done");
    assert_eq!(summary["occurrences"][0], "m-cli/v1/2026-11-22T10:00");
    let sms = std::fs::read_to_string(outbox.join("sms.jsonl")).unwrap();
    assert!(sms.contains("Константин, ваш бонус"), "{sms}");
    // Again: nothing more is sent.
    let out = campaign(&run_args);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(outbox.join("sms.jsonl")).unwrap(),
        sms
    );

    let out = campaign(&["--db", db, "journal", "--mailing-id", "m-cli"]);
    let journal = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        journal
            .lines()
            .filter(|l| l.contains("\"status\":\"sent\""))
            .count(),
        2
    );
    assert!(journal.contains("no_consent"));
}

#[test]
fn bad_input_exits_2_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let people = write(
        dir.path(),
        "people.jsonl",
        "{\"id\": \"a\"}\n{\"id\": \"b\", \"gender\": \"robot\"}\n",
    );
    let bad_mailing = write(
        dir.path(),
        "m.json",
        r#"{"id": "m", "channels": ["fax"], "content": {"default": {"text": "{frist_name}"}}}"#,
    );
    let db = dir.path().join("j.db");
    let out = campaign(&[
        "--db",
        db.to_str().unwrap(),
        "preview",
        "--mailing",
        &bad_mailing,
        "--recipients",
        &people,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("channels[0]"), "{stderr}");

    let mailing = write(
        dir.path(),
        "ok.json",
        r#"{"id": "m", "class": "service", "channels": ["sms"], "content": {"default": {"text": "hi"}}}"#,
    );
    let outbox = dir.path().join("outbox");
    let out = campaign(&[
        "--db",
        db.to_str().unwrap(),
        "run",
        "--mailing",
        &mailing,
        "--recipients",
        &people,
        "--outbox",
        outbox.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    // SPEC §8: `FILE:LINE: what is wrong`, and how to go on.
    assert!(stderr.contains(&format!("{people}:2: column ")), "{stderr}");
    assert!(stderr.contains("--skip-malformed"), "{stderr}");
    let missing = campaign(&[
        "--db",
        db.to_str().unwrap(),
        "run",
        "--mailing",
        &mailing,
        "--recipients",
        "nope.jsonl",
        "--outbox",
        outbox.to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("nope.jsonl: no such recipients file")
    );
    let now = campaign(&[
        "--db",
        db.to_str().unwrap(),
        "run",
        "--mailing",
        &mailing,
        "--recipients",
        &people,
        "--outbox",
        outbox.to_str().unwrap(),
        "--now",
        "2026-11-22",
    ]);
    assert_eq!(now.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&now.stderr).contains("RFC 3339"));
    assert!(
        !outbox.join("sms.jsonl").exists()
            || std::fs::read_to_string(outbox.join("sms.jsonl"))
                .unwrap()
                .is_empty()
    );
}
