//! The channel-independent parts: errors, secrets, SMS segment math, settings, the in-memory
//! channel and the file outbox.
#![cfg(feature = "outbox")]

use std::collections::HashMap;
use std::error::Error as _;
use std::time::Duration;

use rassylka_channels::{
    Channel, ChannelError, ChannelsFile, ErrorClass, FileOutbox, Image, MemoryChannel, Message,
    Secret, SmsEncoding, SmsSettings, SmtpTls, sms_segments,
};
use rassylka_model::{Address, ChannelKind, EmailAddress, PhoneNumber};

fn phone() -> Address {
    Address::Phone(PhoneNumber::parse("+79161234567").unwrap())
}

#[test]
fn segment_vectors_from_the_reference() {
    let a = |n: usize| "a".repeat(n);
    let cyr = |n: usize| "А".repeat(n);
    let smile = |n: usize| "😀".repeat(n);
    let cases: Vec<(String, SmsEncoding, u32, u32)> = vec![
        ("Привет".into(), SmsEncoding::Ucs2, 6, 1),
        (cyr(70), SmsEncoding::Ucs2, 70, 1),
        (cyr(71), SmsEncoding::Ucs2, 71, 2),
        (cyr(134), SmsEncoding::Ucs2, 134, 2),
        (cyr(135), SmsEncoding::Ucs2, 135, 3),
        (a(160), SmsEncoding::Gsm7, 160, 1),
        (a(161), SmsEncoding::Gsm7, 161, 2),
        (a(306), SmsEncoding::Gsm7, 306, 2),
        (a(307), SmsEncoding::Gsm7, 307, 3),
        (format!("{}€", a(159)), SmsEncoding::Gsm7, 161, 2),
        (
            format!("{}{}", a(80), "{".repeat(40)),
            SmsEncoding::Gsm7,
            160,
            1,
        ),
        ("Sale «-20%»".into(), SmsEncoding::Ucs2, 11, 1),
        (smile(35), SmsEncoding::Ucs2, 70, 1),
        (smile(36), SmsEncoding::Ucs2, 72, 2),
        (format!("{}€{}", a(152), a(152)), SmsEncoding::Gsm7, 306, 3),
        (
            format!("{}😀{}", cyr(66), cyr(66)),
            SmsEncoding::Ucs2,
            134,
            3,
        ),
    ];
    for (text, encoding, units, parts) in cases {
        let got = sms_segments(&text);
        assert_eq!(
            (got.encoding, got.units, got.parts),
            (encoding, units, parts),
            "{text}"
        );
    }
    assert_eq!(sms_segments("").parts, 0);
    assert_eq!(sms_segments("Цена 100 ₽").encoding, SmsEncoding::Ucs2);
    assert_eq!(sms_segments("x\u{000C}").units, 3);
}

#[test]
fn error_classes_predicates_and_messages() {
    let e = ChannelError::transient("provider answered http 429")
        .with_retry_after(Duration::from_secs(2))
        .with_provider_code(429);
    assert!(e.is_transient());
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(e.provider_code(), Some("429"));
    assert_eq!(
        e.to_string(),
        "transient error: provider answered http 429 (code 429); retry after 2000 ms"
    );
    let gone =
        ChannelError::recipient_gone("blocked").with_source(std::io::Error::other("inner cause"));
    assert!(!gone.is_transient());
    assert_eq!(gone.source().unwrap().to_string(), "inner cause");
    for (error, class) in [
        (ChannelError::rejected("x"), ErrorClass::Rejected),
        (ChannelError::quota("x"), ErrorClass::Quota),
        (ChannelError::configuration("x"), ErrorClass::Configuration),
    ] {
        assert_eq!(error.class(), class);
        let text = error.to_string();
        assert_eq!(text, text.to_lowercase());
    }
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<ChannelError>();
}

#[test]
fn secrets_are_redacted_and_resolved_from_a_lookup() {
    let secret = Secret::new("123456:AA-super-secret");
    assert!(!format!("{secret:?} {secret}").contains("super"));
    let env: HashMap<&str, &str> = [("TG_TOKEN", "42:from-env")].into();
    let lookup = |name: &str| env.get(name).map(|v| (*v).to_owned());
    let from_env = Secret::new("env:TG_TOKEN").resolve(&lookup).unwrap();
    assert_eq!(from_env.expose(), "42:from-env");
    assert_eq!(
        secret.resolve(&lookup).unwrap().expose(),
        "123456:AA-super-secret"
    );
    let missing = Secret::new("env:NOPE").resolve(&lookup).unwrap_err();
    assert_eq!(missing.class(), ErrorClass::Configuration);
    assert!(missing.to_string().contains("NOPE"));
}

const CHANNELS_JSON: &str = r#"{
 "telegram": {"bot_token": "env:TG_TOKEN", "api_base": "http://127.0.0.1:8081", "rate_per_sec": 30},
 "vk": {"token": "env:VK_TOKEN", "api_base": "http://127.0.0.1:8082"},
 "sms": {"provider": "smsru", "api_id": "env:SMSRU_KEY", "sender": "MYSHOP", "api_base": "http://127.0.0.1:8083"},
 "email": {"smtp": {"host": "127.0.0.1", "port": 2525, "tls": "none", "user": "u", "password": "env:SMTP_PASS"},
           "from": "Shop <news@shop.example>"},
 "push": {"provider": "http", "api_base": "http://127.0.0.1:8084", "token": "env:PUSH_TOKEN"},
 "tariffs": {"sms": 4.5, "telegram": 0, "vk": 0, "push": 0.1, "email": 0.05},
 "concurrency": 32}"#;

#[test]
fn the_spec_channels_file_parses_resolves_and_builds() {
    let file = ChannelsFile::from_json(CHANNELS_JSON).unwrap();
    let telegram = file.telegram.as_ref().unwrap();
    assert_eq!(telegram.rate_per_sec, 30);
    assert_eq!(telegram.per_chat_per_sec, 1);
    assert_eq!(file.vk.as_ref().unwrap().api_version, "5.199");
    assert!(
        matches!(&file.sms, Some(SmsSettings::Smsru(s)) if s.sender.as_deref() == Some("MYSHOP"))
    );
    let smtp = file.email.as_ref().unwrap().smtp.as_ref().unwrap();
    assert_eq!((smtp.port, smtp.tls), (Some(2525), SmtpTls::None));
    assert_eq!(file.tariffs[&ChannelKind::Sms].to_string(), "4.5");
    assert_eq!(file.concurrency, Some(32));
    // Debug output of the settings names the variables, never a value.
    let env: HashMap<&str, &str> = [
        ("TG_TOKEN", "1:tg-secret"),
        ("VK_TOKEN", "vk-secret"),
        ("SMSRU_KEY", "smsru-secret"),
        ("SMTP_PASS", "smtp-secret"),
        ("PUSH_TOKEN", "push-secret"),
    ]
    .into();
    let lookup = |name: &str| env.get(name).map(|v| (*v).to_owned());
    let resolved = file.resolve_secrets(&lookup).unwrap();
    let debug = format!("{resolved:?}");
    assert!(!debug.contains("secret"), "{debug}");
    #[cfg(all(
        feature = "smtp",
        feature = "telegram",
        feature = "vk",
        feature = "sms",
        feature = "push"
    ))]
    {
        let channels = file.build(&lookup).unwrap();
        let kinds: Vec<ChannelKind> = channels.keys().copied().collect();
        assert_eq!(kinds, ChannelKind::ALL.to_vec());
        for (kind, channel) in &channels {
            assert_eq!(channel.kind(), *kind);
        }
        let err = file.build(&|_| None).err().unwrap();
        assert_eq!(err.class(), ErrorClass::Configuration);
    }
}

#[test]
fn email_settings_need_exactly_one_transport() {
    let file = ChannelsFile::from_json(r#"{"email": {"from": "a@b.example"}}"#).unwrap();
    let err = file.build(&|_| None).err().unwrap();
    assert_eq!(err.class(), ErrorClass::Configuration);
    assert!(ChannelsFile::from_json(r#"{"sms": {"provider": "nope"}}"#).is_err());
}

#[test]
fn images_from_the_mailing_json() {
    let url = Image::parse("https://cdn.example/promo/gift.PNG?v=2");
    assert_eq!(
        url,
        Image::Url("https://cdn.example/promo/gift.PNG?v=2".into())
    );
    assert_eq!(url.file_name(), "gift.PNG");
    assert_eq!(url.mime_type(), "image/png");
    let path = Image::parse("images/gift.jpg");
    assert_eq!(path, Image::Path("images/gift.jpg".into()));
    assert_eq!(
        (path.file_name().as_str(), path.mime_type()),
        ("gift.jpg", "image/jpeg")
    );
    assert_eq!(Image::parse("https://cdn.example/").file_name(), "image");
}

#[tokio::test]
async fn memory_channel_records_and_fails_on_request() {
    let channel = MemoryChannel::new(ChannelKind::Sms);
    let to = phone();
    let message = Message::new("k1", "Привет");
    let receipt = channel.send(&to, &message).await.unwrap();
    assert_eq!(receipt.parts, Some(1));
    channel.fail_next(ErrorClass::Transient);
    assert!(
        channel
            .send(&to, &message)
            .await
            .unwrap_err()
            .is_transient()
    );
    let other = Address::Phone(PhoneNumber::parse("+79160000000").unwrap());
    channel.fail_for(other.clone(), ErrorClass::RecipientGone);
    let gone = channel.send(&other, &message).await.unwrap_err();
    assert_eq!(gone.class(), ErrorClass::RecipientGone);
    channel.fail_always(Some(ErrorClass::Quota));
    assert_eq!(
        channel.send(&to, &message).await.unwrap_err().class(),
        ErrorClass::Quota
    );
    channel.fail_always(None);
    channel.send(&to, &message).await.unwrap();
    let sent = channel.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].to, to);
    assert_eq!(sent[0].message, message);
    // dyn-compatible
    let dynamic: &dyn Channel = &channel;
    assert_eq!(dynamic.kind(), ChannelKind::Sms);
}

#[tokio::test]
async fn outbox_writes_one_line_per_key_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let to = phone();
    let outbox = FileOutbox::open(dir.path(), ChannelKind::Sms).unwrap();
    let first =
        Message::new("k-1", "Анна, дарим 300 бонусов!").with_image(Image::parse("gift.png"));
    let long = Message::new("k-2", "А".repeat(71));
    outbox.send(&to, &first).await.unwrap();
    assert_eq!(outbox.send(&to, &long).await.unwrap().parts, Some(2));
    outbox.send(&to, &first).await.unwrap();
    drop(outbox);

    let reopened = FileOutbox::open(dir.path(), ChannelKind::Sms).unwrap();
    assert!(reopened.contains("k-1").await);
    reopened.send(&to, &first).await.unwrap();
    let records = reopened.records().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].delivery_key, "k-1");
    assert_eq!(records[0].recipient, "+79161234567");
    assert_eq!(records[0].channel, ChannelKind::Sms);
    assert_eq!(records[0].image.as_deref(), Some("gift.png"));
    assert!(records[0].time.ends_with('Z'));
    let raw = std::fs::read_to_string(dir.path().join("sms.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    for field in [
        "delivery_key",
        "recipient",
        "channel",
        "subject",
        "text",
        "html",
        "image",
        "time",
    ] {
        assert!(line.get(field).is_some(), "{field}");
    }
}

#[tokio::test]
async fn outbox_cuts_a_torn_last_line_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = FileOutbox::open(dir.path(), ChannelKind::Telegram).unwrap();
    let to = Address::TelegramChat(42);
    outbox.send(&to, &Message::new("a", "one")).await.unwrap();
    drop(outbox);
    let path = dir.path().join("telegram.jsonl");
    let mut raw = std::fs::read(&path).unwrap();
    raw.extend_from_slice(br#"{"delivery_key":"b","recip"#);
    std::fs::write(&path, raw).unwrap();

    let outbox = FileOutbox::open(dir.path(), ChannelKind::Telegram).unwrap();
    assert!(!outbox.contains("b").await);
    outbox.send(&to, &Message::new("b", "two")).await.unwrap();
    let keys: Vec<String> = outbox
        .records()
        .unwrap()
        .into_iter()
        .map(|r| r.delivery_key)
        .collect();
    assert_eq!(keys, ["a", "b"]);
}

#[tokio::test]
async fn outbox_writes_email_as_eml_too() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = FileOutbox::open(dir.path(), ChannelKind::Email).unwrap();
    let to = Address::Email(EmailAddress::parse("anna@example.com").unwrap());
    let message = Message::new("m/1/c-1/email", "Здравствуйте, Анна")
        .with_subject("Подарок")
        .with_html("<p>Здравствуйте, Анна</p>")
        .with_header("List-Unsubscribe", "<https://crm.example/u/t0k>")
        .with_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        .with_header("List-Id", "spring sale/2026");
    outbox.send(&to, &message).await.unwrap();
    let eml = std::fs::read_to_string(outbox.eml_path("m/1/c-1/email")).unwrap();
    assert!(eml.contains("To: anna@example.com\r\n"));
    assert!(eml.to_ascii_lowercase().contains("subject: =?utf-8?b?"));
    assert!(eml.contains("List-Unsubscribe: <https://crm.example/u/t0k>\r\n"));
    assert!(eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    // A bare mailing id goes under the sender's domain (RFC 2919), its other characters `-`.
    assert!(
        eml.contains("List-Id: <spring-sale-2026.rassylka.invalid>\r\n"),
        "{eml}"
    );
    assert!(eml.contains("multipart/alternative"));
    assert!(eml.contains("text/plain") && eml.contains("text/html"));
    assert!(outbox.verify().await.is_ok());
}

#[tokio::test]
async fn two_outboxes_on_one_folder_write_each_key_once() {
    // Two workers (processes) appending to one outbox: each sees what the other wrote, and a
    // torn line one of them left when it died is cut before the other appends.
    let dir = tempfile::tempdir().unwrap();
    let to = Address::TelegramChat(42);
    let one = FileOutbox::open(dir.path(), ChannelKind::Telegram).unwrap();
    let two = FileOutbox::open(dir.path(), ChannelKind::Telegram).unwrap();
    one.send(&to, &Message::new("k-1", "one")).await.unwrap();
    two.send(&to, &Message::new("k-1", "one")).await.unwrap();
    two.send(&to, &Message::new("k-2", "two")).await.unwrap();
    let path = dir.path().join("telegram.jsonl");
    let mut raw = std::fs::read(&path).unwrap();
    raw.extend_from_slice(br#"{"delivery_key":"k-3","recip"#);
    std::fs::write(&path, raw).unwrap();
    one.send(&to, &Message::new("k-2", "two")).await.unwrap();
    one.send(&to, &Message::new("k-3", "three")).await.unwrap();
    two.send(&to, &Message::new("k-3", "three")).await.unwrap();
    let keys: Vec<String> = one
        .records()
        .unwrap()
        .into_iter()
        .map(|r| r.delivery_key)
        .collect();
    assert_eq!(keys, ["k-1", "k-2", "k-3"]);
}

#[test]
fn unknown_keys_anywhere_in_a_channels_file_are_refused_with_their_path() {
    for (json, path) in [
        (
            r#"{"email": {"smtp": {"host": "h", "prot": 2525}, "from": "a@b.example"}}"#,
            "email.smtp.prot: unknown field `prot`",
        ),
        (
            r#"{"sms": {"provider": "smsru", "api_id": "k", "sendr": "SHOP"}}"#,
            "unknown field `sendr`",
        ),
        (
            r#"{"telegram": {"bot_token": "t", "rate": 5}}"#,
            "telegram.rate: unknown field `rate`",
        ),
        (
            r#"{"tarifs": {"sms": 4.5}}"#,
            "tarifs: unknown field `tarifs`",
        ),
        (
            r#"{"unsubscribe": {"url": "https://s.example/u/{token}", "mail_to": "u@s.example"}}"#,
            "unsubscribe.mail_to: unknown field `mail_to`",
        ),
        (
            r#"{"frequency_cap": {"max": 2, "day": 7}}"#,
            "frequency_cap.day: unknown field `day`",
        ),
        (
            r#"{"frequency_cap": {"max": 0, "days": 7}}"#,
            "frequency_cap.max: must be at least 1",
        ),
        (
            r#"{"unsubscribe": {"url": "https://s.example/unsubscribe"}}"#,
            "unsubscribe.url: must contain `{token}`",
        ),
        (
            r#"{"email": {"haskimail": {"server_token": "t", "limits_tz": "Mars/Olympus"}}}"#,
            "email.haskimail.limits_tz",
        ),
    ] {
        let err = ChannelsFile::from_json(json).unwrap_err().to_string();
        assert!(err.contains(path), "{json}: {err}");
    }
    let no_from = ChannelsFile::from_json(r#"{"email": {"smtp": {"host": "h"}}}"#)
        .unwrap()
        .build(&|_| None)
        .err()
        .unwrap()
        .to_string();
    assert!(no_from.contains("email.from: required"), "{no_from}");
    let consent = ChannelsFile::from_json(
        r#"{"unsubscribe": {"url": "https://s.example/u/{token}", "mailto": "u@s.example",
            "secret": "env:UNSUB_KEY", "previous_secrets": ["an older secret value"]},
            "frequency_cap": {"max": 2, "days": 7}}"#,
    )
    .unwrap();
    assert_eq!(
        consent.frequency_cap,
        Some(rassylka_channels::FrequencyCap { max: 2, days: 7 })
    );
    let resolved = consent
        .resolve_secrets(&|name| (name == "UNSUB_KEY").then(|| "the key from env".to_owned()))
        .unwrap();
    let unsubscribe = resolved.unsubscribe.unwrap();
    assert_eq!(unsubscribe.secret.unwrap().expose(), "the key from env");
    assert!(!format!("{:?}", consent.unsubscribe).contains("an older secret value"));
    let missing = consent.resolve_secrets(&|_| None).unwrap_err().to_string();
    assert!(missing.contains("UNSUB_KEY"), "{missing}");
    // Known keys still read, the provider tag included.
    assert!(
        ChannelsFile::from_json(
            r#"{"sms": {"provider": "smsru", "api_id": "k", "sender": "SHOP"}}"#
        )
        .is_ok()
    );
}

#[tokio::test]
async fn the_outbox_eml_has_a_from_a_message_id_on_its_domain_and_short_lines() {
    use rassylka_channels::{Channel, FileOutbox};
    let dir = tempfile::tempdir().unwrap();
    let outbox = FileOutbox::open(dir.path(), rassylka_model::ChannelKind::Email)
        .unwrap()
        .with_from("Магазин «Уют» <news@shop.example>")
        .unwrap();
    let to = rassylka_model::Address::Email(
        rassylka_model::EmailAddress::parse("anna@example.com").unwrap(),
    );
    let subject = format!(
        "{}, подарок для вас\r\nBcc: x@evil.example",
        "Анна-Мария ".repeat(110)
    );
    outbox
        .send(
            &to,
            &Message::new("m-1/k-1", "")
                .with_subject(subject)
                .with_html("<p>Привет, <a href=\"https://shop.example/\">магазин</a></p>"),
        )
        .await
        .unwrap();
    let eml = std::fs::read_to_string(outbox.eml_path("m-1/k-1")).unwrap();
    assert!(
        eml.to_ascii_lowercase().contains("from: =?utf-8?b?"),
        "{eml}"
    );
    assert!(eml.contains(" <news@shop.example>\r\n"), "{eml}");
    assert!(
        eml.contains("@shop.example>\r\n"),
        "Message-ID on the sender's domain: {eml}"
    );
    for line in eml.split("\r\n") {
        assert!(line.len() <= 998, "a line of {} bytes", line.len());
        assert!(!line.to_ascii_lowercase().starts_with("bcc:"), "{line}");
    }
    for word in eml.split_whitespace().filter(|w| w.starts_with("=?")) {
        assert!(word.len() <= 75, "{word}");
    }
}
