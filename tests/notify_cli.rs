//! `campaign notify` as the host system calls it (SPEC §8), and `campaign cost` with the SMS
//! gateway's balance from a local server answering as SMS.ru does.

use std::process::{Command, Output};

use rassylka_workspace::write_file as write;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::crash::campaign_binary;

fn data(name: &str) -> String {
    format!("{}/examples/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn notify(db: &str, outbox: &str, event: &str, sender: &str) -> Output {
    Command::new(campaign_binary())
        .args([
            "--db",
            db,
            "notify",
            "--notices",
            &data("notices.json"),
            "--event",
            event,
            "--sender",
            sender,
            "--recipients",
            &data("recipients.jsonl"),
            "--outbox",
            outbox,
        ])
        .output()
        .unwrap()
}

#[test]
fn notify_prints_its_line_once_per_event_and_refuses_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("j.db");
    let db = db.to_str().unwrap();
    let outbox = dir.path().join("out");
    let outbox = outbox.to_str().unwrap();
    let seller = data("sender-seller.json");
    let first = notify(db, outbox, &data("event-order-ready.json"), &seller);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(line["event"], "ev-1");
    assert_eq!(line["status"], "sent");
    assert_eq!(line["channel"], "sms");
    assert_eq!(line["cost"], 0);
    let key = line["key"].as_str().unwrap();
    assert!(
        key.starts_with("notice:ev-1/v1/") && key.ends_with("/c-1001/sms"),
        "{key}"
    );
    let keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["event", "status", "channel", "key", "cost"]);
    let sms = std::fs::read_to_string(dir.path().join("out/sms.jsonl")).unwrap();
    assert!(sms.contains("Уважаемая Анна Сергеевна, ваш заказ A-553 готов. Тел. +7 343 000-00-00"));

    let again = notify(db, outbox, &data("event-order-ready.json"), &seller);
    assert!(again.status.success());
    assert_eq!(
        again.stdout, first.stdout,
        "the same event prints the same line"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/sms.jsonl")).unwrap(),
        sms
    );

    let refused = notify(db, outbox, &data("event-bonus.json"), &seller);
    assert_eq!(refused.status.code(), Some(2));
    assert!(refused.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("bonus_accrued"), "{stderr}");
    let manager = write(
        dir.path(),
        "manager.json",
        r#"{"user": "u-1", "role": "manager", "department": "salon-1"}"#,
    );
    let allowed = notify(db, outbox, &data("event-bonus.json"), &manager);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let sms = std::fs::read_to_string(dir.path().join("out/sms.jsonl")).unwrap();
    assert!(
        sms.contains("Анна, начислено 300 бонусов до 01.01.2027. Баланс: 1 550"),
        "{sms}"
    );

    let bad_event = write(
        dir.path(),
        "bad.json",
        r#"{"id": "ev-9", "event": "order_ready", "recipient_id": "c-1001"}"#,
    );
    let bad = notify(db, outbox, &bad_event, &seller);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("order: required"));
}

#[test]
fn an_sms_gateway_without_an_alpha_name_is_refused_for_notices() {
    let dir = tempfile::tempdir().unwrap();
    let channels = write(
        dir.path(),
        "channels.json",
        r#"{"sms": {"provider": "smsru", "api_id": "env:SMSRU_KEY", "api_base": "http://127.0.0.1:9"}}"#,
    );
    let db = dir.path().join("j.db");
    let out = Command::new(campaign_binary())
        .args([
            "--db",
            db.to_str().unwrap(),
            "notify",
            "--notices",
            &data("notices.json"),
            "--event",
            &data("event-order-ready.json"),
            "--sender",
            &data("sender-seller.json"),
            "--recipients",
            &data("recipients.jsonl"),
            "--outbox",
            dir.path().to_str().unwrap(),
            "--channels",
            &channels,
        ])
        .env("SMSRU_KEY", "key-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("channels.sms.sender"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_adds_the_sms_gateways_balance_and_warns_when_it_is_short() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/my/balance"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"status": "OK", "status_code": 100, "balance": 1.25}),
        ))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let channels = write(
        dir.path(),
        "channels.json",
        &serde_json::json!({
            "sms": {"provider": "smsru", "api_id": "env:SMSRU_KEY", "sender": "MYSHOP", "api_base": server.uri()},
            "tariffs": {"sms": 4.5}
        })
        .to_string(),
    );
    let db = dir.path().join("j.db");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(campaign_binary())
            .args([
                "--db",
                db.to_str().unwrap(),
                "cost",
                "--mailing",
                &data("mailing.json"),
                "--recipients",
                &data("recipients.jsonl"),
                "--channels",
                &channels,
            ])
            .env("SMSRU_KEY", "key-1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(line["sms_balance"], 1.25);
    let sms_cost = line["per_channel"]["sms"]["cost"].as_f64().unwrap();
    assert!(sms_cost > 1.25, "{line}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: the SMS cost 9 exceeds the gateway's balance 1.25"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("key-1"),
        "the API key stays secret: {stderr}"
    );
}
