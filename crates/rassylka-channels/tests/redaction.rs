//! Secrets never leave in errors: gateways that echo the request, and transport errors that
//! name the URL, through every adapter a channels file builds.

use std::error::Error as _;

use rassylka_channels::{ChannelError, ChannelsFile, Message};
use rassylka_model::{Address, PhoneNumber};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "123456:AAHsecretTOKENvalue";
const SMSRU: &str = "9F2B6C1E-SMSRU-KEY";

/// Answers every request with an error that repeats the request's URL and body, in lower case
/// as some gateways do.
struct Echo;

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let echoed = format!(
            "bad request to {} with {}",
            request.url,
            String::from_utf8_lossy(&request.body)
        )
        .to_lowercase();
        ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "ok": false, "error_code": 400, "description": echoed,
            "status": "ERROR", "status_code": 200, "status_text": echoed
        }))
    }
}

fn whole(e: &ChannelError) -> String {
    let mut text = format!("{e} {e:?}");
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    text
}

fn leaks(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower.contains(&TOKEN.to_lowercase()) || lower.contains(&SMSRU.to_lowercase())
}

#[tokio::test]
async fn echoed_and_transport_errors_carry_no_secret_in_any_case() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(Echo).mount(&server).await;
    let env = |name: &str| match name {
        "TG" => Some(TOKEN.to_owned()),
        "SMSRU" => Some(SMSRU.to_owned()),
        _ => None,
    };
    for base in [server.uri(), "http://127.0.0.1:9".to_owned()] {
        let file = ChannelsFile::from_json(
            &serde_json::json!({
                "telegram": {"bot_token": "env:TG", "api_base": base},
                "sms": {"provider": "smsru", "api_id": "env:SMSRU", "sender": "SHOP", "api_base": base}
            })
            .to_string(),
        )
        .unwrap();
        let channels = file.build(&env).unwrap();
        let message = Message::new("k-1", "привет");
        let telegram = &channels[&rassylka_model::ChannelKind::Telegram];
        let error = telegram
            .send(&Address::TelegramChat(42), &message)
            .await
            .unwrap_err();
        assert!(!leaks(&whole(&error)), "{base}: {}", whole(&error));
        assert!(
            whole(&error).contains("<redacted>") || base.ends_with(":9"),
            "{}",
            whole(&error)
        );
        let sms = &channels[&rassylka_model::ChannelKind::Sms];
        let phone = Address::Phone(PhoneNumber::parse("+79161234567").unwrap());
        let error = sms.send(&phone, &message).await.unwrap_err();
        assert!(!leaks(&whole(&error)), "{base}: {}", whole(&error));
        let error = sms.verify().await.unwrap_err();
        assert!(!leaks(&whole(&error)), "{base}: {}", whole(&error));
    }
}

#[test]
fn redaction_replaces_every_case_and_leaves_short_values_alone() {
    let secrets = vec!["AbCdEf123".to_owned(), "ab".to_owned()];
    assert_eq!(
        rassylka_channels::redact("x abcdef123 y ABCDEF123 z AbCdEf123", &secrets),
        "x <redacted> y <redacted> z <redacted>"
    );
    assert_eq!(rassylka_channels::redact("cab", &secrets), "cab");
    assert_eq!(
        rassylka_channels::redact("ключ AbCdEf123!", &secrets),
        "ключ <redacted>!"
    );
}
