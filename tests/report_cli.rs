//! `campaign report` (SPEC §8): the JSON line exactly as the spec prints it, the HTML page,
//! and bad input, after a real run on a SQLite journal with a holdout.

use std::path::Path;
use std::process::{Command, Output};

use crate::crash::campaign_binary;

fn campaign(dir: &Path, args: &[&str]) -> Output {
    Command::new(campaign_binary())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// 300 recipients by SMS through the outbox, a fifth held out, promotion `p-5`.
fn run_with_holdout(dir: &Path) {
    let people: String = (0..300)
        .map(|i| {
            format!(
                "{{\"id\": \"c-{i:03}\", \"consent\": {{\"advertising\": true}}, \"contacts\": {{\"phone\": \"+7916{i:07}\"}}}}\n"
            )
        })
        .collect();
    std::fs::write(dir.join("people.jsonl"), people).unwrap();
    std::fs::write(
        dir.join("mailing.json"),
        r#"{"id": "m-1", "class": "advertising", "channels": ["sms"], "activity_id": "winter",
            "promotion_id": "p-5", "holdout": {"percent": 20},
            "schedule": {"start": "2026-12-01T10:00", "tz": "UTC", "every": "once"},
            "content": {"default": {"text": "Скидка 20% до воскресенья"}}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("channels.json"), r#"{"tariffs": {"sms": 2.5}}"#).unwrap();
    let output = campaign(
        dir,
        &[
            "--db",
            "journal.db",
            "run",
            "--mailing",
            "mailing.json",
            "--recipients",
            "people.jsonl",
            "--outbox",
            "out",
            "--channels",
            "channels.json",
            "--now",
            "2026-12-01T10:00:00Z",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// (sent, held out) ids from the journal.
fn audience(dir: &Path) -> (Vec<String>, Vec<String>) {
    let output = campaign(
        dir,
        &["--db", "journal.db", "journal", "--mailing-id", "m-1"],
    );
    let (mut sent, mut held) = (Vec::new(), Vec::new());
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = row["recipient_id"].as_str().unwrap().to_owned();
        match (row["status"].as_str(), row["reason"].as_str()) {
            (Some("sent"), _) => sent.push(id),
            (Some("skipped"), Some("holdout")) => held.push(id),
            other => panic!("{other:?}"),
        }
    }
    (sent, held)
}

#[test]
fn the_report_line_is_the_specs_and_the_page_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    run_with_holdout(dir);
    let (sent, held) = audience(dir);
    assert_eq!(sent.len() + held.len(), 300);
    let preview = campaign(
        dir,
        &[
            "--db",
            "journal.db",
            "preview",
            "--mailing",
            "mailing.json",
            "--recipients",
            "people.jsonl",
        ],
    );
    let preview: serde_json::Value = serde_json::from_slice(&preview.stdout).unwrap();
    assert_eq!(
        preview["held_out"],
        held.len(),
        "the preview holds out whom the run did"
    );
    assert_eq!(preview["per_channel"]["sms"], sent.len());
    assert!((30..90).contains(&held.len()), "{}", held.len());
    // Ten treated buy on day 2 (four with the promotion), five of the control group.
    let mut purchases = String::new();
    for (i, id) in sent.iter().take(10).enumerate() {
        let promotion = if i < 4 {
            ", \"promotion_id\": \"p-5\""
        } else {
            ""
        };
        purchases.push_str(&format!(
            "{{\"recipient_id\": \"{id}\", \"at\": \"2026-12-03T10:00:00Z\", \"amount\": \"1000.10\"{promotion}}}\n"
        ));
    }
    for id in held.iter().take(5) {
        purchases.push_str(&format!(
            "{{\"recipient_id\": \"{id}\", \"at\": \"2026-12-02T10:00:00Z\", \"amount\": 500}}\n"
        ));
    }
    std::fs::write(dir.join("purchases.jsonl"), purchases).unwrap();
    let output = campaign(
        dir,
        &[
            "--db",
            "journal.db",
            "report",
            "--mailing-id",
            "m-1",
            "--purchases",
            "purchases.jsonl",
            "--bonus-value",
            "0.5",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    let keys: Vec<&String> = report.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "reached",
            "converted",
            "conversion",
            "revenue",
            "purchases",
            "average_check",
            "average_check_before",
            "cost",
            "roi",
            "promotion",
            "holdout"
        ]
    );
    let reached = sent.len() as f64;
    assert_eq!(report["reached"], sent.len());
    assert_eq!(report["converted"], 10);
    // serde_json reads floats back to within an ulp (no `float_roundtrip`).
    let close = |v: &serde_json::Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-12;
    assert!(close(&report["conversion"], 10.0 / reached));
    assert_eq!(report["revenue"].as_f64().unwrap(), 10001.0);
    assert_eq!(report["average_check"].as_f64().unwrap(), 1000.1);
    assert!(report["average_check_before"].is_null());
    let sending = 2.5 * reached;
    assert_eq!(report["cost"]["sending"].as_f64().unwrap(), sending);
    assert_eq!(report["cost"]["bonus"], 0);
    assert!(close(&report["roi"], (10001.0 - sending) / sending));
    assert_eq!(report["promotion"]["id"], "p-5");
    assert_eq!(report["promotion"]["used"], 4);
    assert_eq!(report["promotion"]["sum"].as_f64().unwrap(), 4000.4);
    let holdout = &report["holdout"];
    let control = held.len() as f64;
    assert_eq!(holdout["size"], held.len());
    assert_eq!(holdout["converted"], 5);
    let lift = 10.0 / reached - 5.0 / control;
    assert!((holdout["lift"].as_f64().unwrap() - lift).abs() < 1e-12);
    let ci: Vec<f64> = holdout["lift_ci95"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(ci[0] < lift && lift < ci[1], "{ci:?}");
    let incremental = 10001.0 - 2500.0 * reached / control;
    assert!(
        (holdout["incremental_revenue"].as_f64().unwrap() - (incremental * 100.0).round() / 100.0)
            .abs()
            < 0.006
    );

    // The activity gives the same here: it has one mailing.
    let activity = campaign(
        dir,
        &[
            "--db",
            "journal.db",
            "report",
            "--activity-id",
            "winter",
            "--purchases",
            "purchases.jsonl",
            "--bonus-value",
            "0.5",
        ],
    );
    assert_eq!(String::from_utf8(activity.stdout).unwrap(), text);

    let html = campaign(
        dir,
        &[
            "--db",
            "journal.db",
            "report",
            "--mailing-id",
            "m-1",
            "--purchases",
            "purchases.jsonl",
            "--format",
            "html",
        ],
    );
    assert!(html.status.success());
    let page = String::from_utf8(html.stdout).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("<svg") && page.contains("<polyline"),
        "{page}"
    );
    for external in ["src=", "href=", "url(", "@import", "<script"] {
        assert!(!page.contains(external), "`{external}` in the page");
    }
    assert!(page.contains("Контрольная группа"));
}

#[test]
fn bad_input_exits_2_with_where() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    run_with_holdout(dir);
    std::fs::write(
        dir.join("bad.jsonl"),
        "{\"recipient_id\": \"c-001\", \"at\": \"2026-12-03T10:00:00Z\", \"amount\": 1}\n{\"recipient_id\": \"c-002\", \"at\": \"2026-12-03\", \"amount\": 1}\n",
    )
    .unwrap();
    let refused = |args: &[&str], expected: &str| {
        let output = campaign(dir, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    };
    refused(
        &[
            "--db",
            "journal.db",
            "report",
            "--mailing-id",
            "m-1",
            "--purchases",
            "bad.jsonl",
        ],
        "bad.jsonl:2: column ",
    );
    refused(
        &[
            "--db",
            "journal.db",
            "report",
            "--mailing-id",
            "m-9",
            "--purchases",
            "bad.jsonl",
        ],
        "no mailing `m-9`",
    );
    refused(
        &[
            "--db",
            "journal.db",
            "report",
            "--activity-id",
            "summer",
            "--purchases",
            "bad.jsonl",
        ],
        "no mailing has activity_id `summer`",
    );
    refused(
        &[
            "--db",
            "journal.db",
            "report",
            "--mailing-id",
            "m-1",
            "--purchases",
            "missing.jsonl",
        ],
        "missing.jsonl",
    );
    refused(
        &[
            "--db",
            "journal.db",
            "report",
            "--mailing-id",
            "m-1",
            "--purchases",
            "bad.jsonl",
            "--bonus-value",
            "x",
        ],
        "--bonus-value",
    );
    refused(
        &["--db", "journal.db", "report", "--purchases", "bad.jsonl"],
        "--mailing-id",
    );
}
