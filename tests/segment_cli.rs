//! The `segment` example's command line (SPEC §8): output, `--ids`, options and exit codes.

use std::path::{Path, PathBuf};
use std::process::Output;

const RECIPIENTS: &str = r#"{"id": "anna", "gender": "female", "country": "RU", "consent": {"advertising": true}, "contacts": {"email": "anna@example.com", "phone": "+79161234567"}, "registered_at": "2024-05-01T22:30:00+00:00"}
{"id": "bob", "gender": "male", "country": "KZ", "consent": {"advertising": true}, "contacts": {"telegram_chat_id": 42}, "bookings": [{"id": "b-1", "check_in": "2026-12-01"}]}

{"id": "carla", "gender": "female", "contacts": {"email": "broken"}, "no_mailings": true, "bookings": [{"id": "b-2", "check_in": "2026-12-02"}]}
{"id": "dmitry", "gender": "male", "country": "BY", "contacts": {"vk_user_id": 7, "wallet_push": "card-1"}}
{"id": "eva", "gender": "female", "country": "KZ", "consent": {"advertising": true}}
"#;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        let files = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        files.write("recipients.jsonl", RECIPIENTS);
        files
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn segment(args: &[&str]) -> Output {
    rassylka_workspace::run_example("segment", args)
}

fn run_with(files: &Files, rule: &str, extra: &[&str]) -> Output {
    let rule = files.write("rule.json", rule);
    let recipients = files.path("recipients.jsonl");
    let mut args = vec![
        "--rule",
        path_str(&rule),
        "--recipients",
        path_str(&recipients),
        "--today",
        "2026-11-28",
    ];
    args.extend_from_slice(extra);
    segment(&args)
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn failure(output: &Output) -> (i32, String) {
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn prints_one_json_line_of_counts_service_by_default() {
    let files = Files::new();
    let out = stdout(&run_with(&files, r#"{"everyone": true}"#, &[]));
    assert_eq!(
        out,
        "{\"total\":5,\"matched\":5,\"per_channel\":{\"email\":1,\"sms\":1,\"telegram\":1,\"vk\":1,\"push\":1},\"excluded\":{\"no_mailings\":0,\"no_consent\":0,\"invalid_contact\":1,\"unreachable\":1}}\n"
    );
}

#[test]
fn advertising_applies_consent_and_no_mailings() {
    let files = Files::new();
    let rule = r#"{"country": {"not_in": ["RU"]}}"#;
    let out = stdout(&run_with(&files, rule, &["--class", "advertising"]));
    let counts: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(counts["matched"], 4);
    assert_eq!(counts["per_channel"]["telegram"], 1);
    assert_eq!(counts["per_channel"]["vk"], 0);
    assert_eq!(
        counts["excluded"],
        serde_json::json!({"no_mailings": 1, "no_consent": 1, "invalid_contact": 0, "unreachable": 1})
    );
}

#[test]
fn ids_are_listed_in_input_order() {
    let files = Files::new();
    let rule = r#"{"any": [{"gender": "female"}, {"date": {"dynamic": {"field": "check_in", "days": 3, "when": "before"}}}]}"#;
    let out = stdout(&run_with(&files, rule, &["--ids"]));
    assert_eq!(out, "anna\nbob\ncarla\neva\n");
}

#[test]
fn the_zone_decides_the_local_date_of_instants() {
    let files = Files::new();
    // 2024-05-01T22:30Z is May 2 in Moscow (the default) and May 1 in UTC.
    let rule = r#"{"registered": {"from": "2024-05-02", "to": "2024-05-02"}}"#;
    assert_eq!(stdout(&run_with(&files, rule, &["--ids"])), "anna\n");
    assert_eq!(
        stdout(&run_with(&files, rule, &["--ids", "--tz", "UTC"])),
        ""
    );
}

#[test]
fn a_bad_rule_exits_2_with_its_json_path() {
    let files = Files::new();
    let (code, err) = failure(&run_with(
        &files,
        r#"{"all": [{"vip": true}, {"gender": "female"}, {"age": {"gte": -1}}]}"#,
        &[],
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("all[2].age.gte: expected a non-negative integer"),
        "{err}"
    );
    let (code, err) = failure(&run_with(&files, r#"{"all": [{"vipp": true}]}"#, &[]));
    assert_eq!(code, 2);
    assert!(err.contains("all[0].vipp: unknown rule"), "{err}");
}

#[test]
fn a_malformed_recipients_line_exits_2_with_its_line_number() {
    let files = Files::new();
    files.write(
        "recipients.jsonl",
        "{\"id\": \"a\"}\n\n{\"id\": \"b\", \"gender\": \"robot\"}\n",
    );
    let (code, err) = failure(&run_with(&files, r#"{"everyone": true}"#, &["--ids"]));
    assert_eq!(code, 2);
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn bad_arguments_exit_2() {
    let files = Files::new();
    for extra in [&["--class", "spam"][..], &["--tz", "Mars/Olympus"][..]] {
        let output = run_with(&files, r#"{"everyone": true}"#, extra);
        assert_eq!(output.status.code(), Some(2), "{extra:?}");
    }
    let output = segment(&[
        "--rule",
        "x.json",
        "--recipients",
        "y.jsonl",
        "--today",
        "28.11.2026",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let missing = files.path("missing.json");
    let output = segment(&[
        "--rule",
        path_str(&missing),
        "--recipients",
        path_str(&files.path("recipients.jsonl")),
        "--today",
        "2026-11-28",
    ]);
    let (code, err) = failure(&output);
    assert_eq!(code, 2);
    assert!(err.contains("cannot open rule"), "{err}");
}
