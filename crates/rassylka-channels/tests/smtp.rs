//! SMTP adapter against a real SMTP server on loopback (tests/support/smtp.rs).
#![cfg(feature = "smtp")]

use crate::support::smtp::{Security, SmtpServer};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rassylka_channels::{Channel, ErrorClass, Image, Message, SmtpChannel, SmtpSettings};
use rassylka_model::{Address, EmailAddress};
use serde_json::json;

fn channel(port: u16, password: &str) -> SmtpChannel {
    channel_with_tls(port, password, "none")
}

fn channel_with_tls(port: u16, password: &str, tls: &str) -> SmtpChannel {
    let settings: SmtpSettings = serde_json::from_value(json!({
        "host": "127.0.0.1", "port": port, "tls": tls, "user": "mailer", "password": password,
        "accept_invalid_certs": true}))
    .unwrap();
    SmtpChannel::new(settings, "Магазин <news@shop.example>").unwrap()
}

fn to(address: &str) -> Address {
    Address::Email(EmailAddress::parse(address).unwrap())
}

#[tokio::test]
async fn multipart_message_with_headers_and_inline_image_arrives() {
    let server = SmtpServer::start(Security::Plain, ("mailer", "s3cret-pass")).await;
    let channel = channel(server.port, "s3cret-pass");
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, b"\x89PNG logo bytes").unwrap();
    let message = Message::new("m-1/2027-01-01/c-1001/email", "Здравствуйте, Анна!")
        .with_subject("Подарок на день рождения")
        .with_html("<p>Здравствуйте, Анна!</p><img src=\"cid:image\">")
        .with_image(Image::Path(logo))
        .with_header("List-Unsubscribe", "<https://crm.example/u/tok3n>")
        .with_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
    let receipt = channel
        .send(&to("anna@example.com"), &message)
        .await
        .unwrap();
    assert!(
        receipt.provider_id.ends_with("@shop.example>"),
        "{}",
        receipt.provider_id
    );

    let received = server.received();
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(
        mail.auth,
        Some(("mailer".to_owned(), "s3cret-pass".to_owned()))
    );
    assert_eq!(mail.mail_from, "<news@shop.example>");
    assert_eq!(mail.rcpt_to, ["<anna@example.com>"]);
    let data = &mail.data;
    let headers = &data[..data.find("\r\n\r\n").unwrap()];
    assert!(
        headers.contains(&format!("Message-ID: {}", receipt.provider_id)),
        "{headers}"
    );
    assert!(
        headers.contains("List-Unsubscribe: <https://crm.example/u/tok3n>"),
        "{headers}"
    );
    assert!(headers.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert!(headers.contains("To: anna@example.com"));
    assert!(headers.contains("Subject: =?utf-8?"), "{headers}");
    assert!(headers.contains("Date: "));
    assert!(headers.contains("multipart/alternative"));
    assert!(data.contains("multipart/related"));
    assert!(data.contains("Content-Type: text/plain; charset=utf-8"));
    assert!(data.contains("Content-Type: text/html; charset=utf-8"));
    assert!(data.contains("Content-ID: <image>"));
    assert!(data.contains("Content-Disposition: inline"));
    let base64 = |bytes: &[u8]| BASE64.encode(bytes);
    assert!(
        data.contains(&base64("Здравствуйте, Анна!".as_bytes())),
        "{data}"
    );
    assert!(data.contains(&base64(b"\x89PNG logo bytes")));
    assert!(data.contains("Content-Type: image/png"));
    // The plain part comes before the HTML part.
    assert!(data.find("text/plain").unwrap() < data.find("text/html").unwrap());

    // The same delivery key gives the same Message-ID: a resend can be recognised.
    let again = channel
        .send(&to("anna@example.com"), &message)
        .await
        .unwrap();
    assert_eq!(again.provider_id, receipt.provider_id);
}

#[tokio::test]
async fn rcpt_replies_map_to_classes() {
    let server = SmtpServer::start(Security::Plain, ("mailer", "pw")).await;
    let channel = channel(server.port, "pw");
    let message = Message::new("k", "hi").with_subject("s");
    let gone = channel
        .send(&to("nobody@example.com"), &message)
        .await
        .unwrap_err();
    assert_eq!(gone.class(), ErrorClass::RecipientGone);
    assert_eq!(gone.provider_code(), Some("550"));
    let busy = channel
        .send(&to("busy@example.com"), &message)
        .await
        .unwrap_err();
    assert_eq!(busy.class(), ErrorClass::Transient);
    let dmarc = channel
        .send(&to("dmarc@example.com"), &message)
        .await
        .unwrap_err();
    assert_eq!(dmarc.class(), ErrorClass::Configuration);
    // The pooled connection is still usable after the refusals.
    channel.send(&to("ok@example.com"), &message).await.unwrap();
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn verify_authenticates_and_bad_password_is_configuration() {
    let server = SmtpServer::start(Security::Plain, ("mailer", "right")).await;
    let verified = channel(server.port, "right").verify().await.unwrap();
    assert!(verified.account.unwrap().contains("news@shop.example"));
    let wrong = channel(server.port, "wrong-password");
    let error = wrong.verify().await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Configuration, "{error}");
    let shown = format!("{error} {error:?} {wrong:?}");
    assert!(!shown.contains("wrong-password"), "{shown}");
}

#[tokio::test]
async fn nobody_listening_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let error = channel(port, "pw")
        .send(&to("a@example.com"), &Message::new("k", "hi"))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
}

#[tokio::test]
async fn a_server_silent_after_taking_the_message_is_ambiguous_not_retried() {
    let server = SmtpServer::start(Security::Plain, ("mailer", "pw")).await;
    let settings: SmtpSettings = serde_json::from_value(json!({
        "host": "127.0.0.1", "port": server.port, "tls": "none", "user": "mailer",
        "password": "pw", "timeout_secs": 1}))
    .unwrap();
    let channel = SmtpChannel::new(settings, "news@shop.example").unwrap();
    let error = channel
        .send(&to("stall@example.com"), &Message::new("k", "hi"))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Ambiguous, "{error}");
    assert_eq!(server.received().len(), 1, "the server has the message");
}

#[tokio::test]
async fn starttls_and_implicit_tls_with_a_self_signed_certificate() {
    for (security, mode) in [
        (Security::StartTls, "starttls"),
        (Security::StartTls, "opportunistic"),
        (Security::Implicit, "tls"),
    ] {
        let server = SmtpServer::start(security, ("mailer", "pw")).await;
        let channel = channel_with_tls(server.port, "pw", mode);
        channel.verify().await.unwrap();
        channel
            .send(
                &to("anna@example.com"),
                &Message::new("k", "hi").with_subject("s"),
            )
            .await
            .unwrap();
        let received = server.received();
        assert_eq!(received.len(), 1, "{mode}");
        assert!(received[0].tls, "{mode}");
        assert_eq!(
            received[0].auth,
            Some(("mailer".to_owned(), "pw".to_owned()))
        );
    }
    // STARTTLS required but not offered: refused before any credentials go out in plain text.
    let plain = SmtpServer::start(Security::Plain, ("mailer", "pw")).await;
    let error = channel_with_tls(plain.port, "pw", "starttls")
        .verify()
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Configuration, "{error}");
}

#[tokio::test]
async fn every_reply_code_of_the_reference_maps_to_its_class() {
    use ErrorClass::*;
    let server = SmtpServer::start(Security::Plain, ("mailer", "pw")).await;
    let channel = channel(server.port, "pw");
    let cases = [
        ("421-4.7.28", Transient),
        ("450-4.2.1", Transient),
        ("451-4.3.0", Transient),
        ("452-4.2.2", Transient),
        ("550-5.1.1", RecipientGone),
        ("551-5.1.6", RecipientGone),
        ("553-5.1.3", RecipientGone),
        ("550", RecipientGone),
        ("550-5.7.26", Configuration),
        ("554-5.7.1", Configuration),
        ("552-5.3.4", Rejected),
        ("554", Rejected),
    ];
    for (reply, class) in cases {
        let error = channel
            .send(
                &to(&format!("reply-{reply}@example.com")),
                &Message::new("k", "hi"),
            )
            .await
            .unwrap_err();
        assert_eq!(error.class(), class, "{reply}: {error}");
        assert_eq!(error.provider_code(), Some(&reply[..3]));
    }
}

#[tokio::test]
async fn html_only_mail_gets_a_text_part_and_header_values_stay_on_their_line() {
    let server = SmtpServer::start(Security::Plain, ("mailer", "pw")).await;
    let channel = channel(server.port, "pw");
    let message = Message::new("k-html", "")
        .with_subject("Hello\r\nBcc: victim@evil.example\0")
        .with_html(r#"<style>p{color:red}</style><p>Hello, <a href="https://shop.example/sale">our sale</a>!</p>"#);
    channel
        .send(&to("anna@example.com"), &message)
        .await
        .unwrap();
    let data = &server.received()[0].data;
    assert!(
        data.contains("Subject: Hello  Bcc: victim@evil.example \r\n"),
        "{data}"
    );
    assert!(
        !data
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{data}"
    );
    let plain = data
        .split("Content-Type: text/plain")
        .nth(1)
        .and_then(|p| p.split("\r\n--").next())
        .unwrap_or_default();
    assert!(
        plain.contains("Hello, our sale (https://shop.example/sale)!"),
        "the text part: {plain}"
    );
    assert!(!plain.contains("color"), "{plain}");
}

#[tokio::test]
async fn an_idn_recipient_goes_out_as_its_a_label_and_ehlo_names_the_sender_domain() {
    let server = SmtpServer::start(Security::Plain, ("mailer", "pw")).await;
    channel(server.port, "pw")
        .send(&to("ivan@почта.рф"), &Message::new("k-idn", "Привет"))
        .await
        .unwrap();
    let received = &server.received()[0];
    assert_eq!(received.rcpt_to, ["<ivan@xn--80a1acny.xn--p1ai>"]);
    assert_eq!(
        received.ehlo, "shop.example",
        "the sender's domain by default"
    );
    let settings: SmtpSettings = serde_json::from_value(json!({
        "host": "127.0.0.1", "port": server.port, "tls": "none", "user": "mailer",
        "password": "pw", "hello_name": "mx1.shop.example"}))
    .unwrap();
    SmtpChannel::new(settings, "news@shop.example")
        .unwrap()
        .send(&to("a@example.com"), &Message::new("k-2", "hi"))
        .await
        .unwrap();
    assert_eq!(server.received()[1].ehlo, "mx1.shop.example");
}

#[tokio::test]
async fn a_very_long_subject_is_folded_into_lines_a_server_takes() {
    let server = SmtpServer::start(Security::Plain, ("mailer", "pw")).await;
    let name = "Анна-Мария ".repeat(110);
    channel(server.port, "pw")
        .send(
            &to("a@example.com"),
            &Message::new("k-long", "hi").with_subject(format!("{name}, подарок для вас")),
        )
        .await
        .unwrap();
    let data = &server.received()[0].data;
    for line in data.split("\r\n") {
        assert!(line.len() <= 998, "a line of {} bytes", line.len());
    }
    for word in data.split_whitespace().filter(|w| w.starts_with("=?")) {
        assert!(
            word.len() <= 75,
            "an encoded word of {} characters: {word}",
            word.len()
        );
    }
}
