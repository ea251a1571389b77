//! SMS.ru and SMSC.ru adapters against a local wiremock server answering as their docs say.
#![cfg(feature = "sms")]

use std::time::Duration;

use rassylka_channels::{
    Channel, ErrorClass, Message, SmsChannel, SmsRuSettings, SmsSettings, SmscSettings,
};
use rassylka_model::{Address, PhoneNumber};
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn smsru(server: &MockServer) -> SmsChannel {
    let settings: SmsRuSettings = serde_json::from_value(json!({
        "api_id": "SMSRU-KEY-1", "sender": "MYSHOP", "api_base": server.uri()}))
    .unwrap();
    SmsChannel::new(SmsSettings::Smsru(settings)).unwrap()
}

fn smsc(server: &MockServer) -> SmsChannel {
    let settings: SmscSettings = serde_json::from_value(json!({
        "login": "shop", "password": "SMSC-PSW", "sender": "MYSHOP", "api_base": server.uri()}))
    .unwrap();
    SmsChannel::new(SmsSettings::Smsc(settings)).unwrap()
}

fn to(number: &str) -> Address {
    Address::Phone(PhoneNumber::parse(number).unwrap())
}

fn json_answer(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

async fn on(server: &MockServer, at: &str, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(response)
        .mount(server)
        .await;
}

#[tokio::test]
async fn smsru_mixed_per_number_answer() {
    let server = MockServer::start().await;
    let answer = json!({"status": "OK", "status_code": 100,
        "sms": {"79255070602": {"status": "OK", "status_code": 100, "sms_id": "000000-10000000"},
                "74993221627": {"status": "ERROR", "status_code": 207,
                                "status_text": "На этот номер нельзя отправлять сообщения"}},
        "balance": 4122.56});
    Mock::given(method("POST"))
        .and(path("/sms/send"))
        .and(body_string_contains("api_id=SMSRU-KEY-1"))
        .and(body_string_contains("json=1"))
        .and(body_string_contains("from=MYSHOP"))
        .respond_with(json_answer(answer))
        .mount(&server)
        .await;
    let channel = smsru(&server);
    let message = Message::new("k", "Привет");
    let receipt = channel.send(&to("+79255070602"), &message).await.unwrap();
    assert_eq!(receipt.provider_id, "000000-10000000");
    assert_eq!(receipt.parts, Some(1));
    let gone = channel
        .send(&to("+74993221627"), &message)
        .await
        .unwrap_err();
    assert_eq!(gone.class(), ErrorClass::RecipientGone);
    assert_eq!(gone.provider_code(), Some("207"));
    let requests = server.received_requests().await.unwrap();
    let body = String::from_utf8_lossy(&requests[0].body);
    assert!(body.contains("to=79255070602"), "{body}");
}

#[tokio::test]
async fn smsru_codes_map_to_classes() {
    use ErrorClass::*;
    let cases = [
        (200, Configuration),
        (201, Quota),
        (202, RecipientGone),
        (203, Rejected),
        (204, Configuration),
        (205, Rejected),
        (206, Quota),
        (207, RecipientGone),
        (208, Rejected),
        (209, RecipientGone),
        (210, Configuration),
        (211, Configuration),
        (212, Rejected),
        (213, Rejected),
        (220, Transient),
        (230, Transient),
        (231, Transient),
        (232, Transient),
        (233, Rejected),
        (300, Configuration),
        (301, Configuration),
        (302, Configuration),
        (500, Transient),
    ];
    for (code, class) in cases {
        let server = MockServer::start().await;
        on(
            &server,
            "/sms/send",
            json_answer(json!({"status": "ERROR", "status_code": code, "status_text": "Ошибка"})),
        )
        .await;
        let error = smsru(&server)
            .send(&to("+79255070602"), &Message::new("k", "hi"))
            .await
            .unwrap_err();
        assert_eq!(error.class(), class, "code {code}");
    }
}

#[tokio::test]
async fn smsru_insufficient_funds_pauses_and_unavailable_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/send"))
        .respond_with(json_answer(json!({"status": "ERROR", "status_code": 220,
            "status_text": "Сервис временно недоступен"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    on(
        &server,
        "/sms/send",
        json_answer(json!({"status": "OK", "status_code": 100,
        "sms": {"79255070602": {"status": "OK", "status_code": 100, "sms_id": "1-2"}}})),
    )
    .await;
    let channel = smsru(&server);
    let message = Message::new("k", "hi");
    assert!(
        channel
            .send(&to("+79255070602"), &message)
            .await
            .unwrap_err()
            .is_transient()
    );
    assert_eq!(
        channel
            .send(&to("+79255070602"), &message)
            .await
            .unwrap()
            .provider_id,
        "1-2"
    );

    let broke = MockServer::start().await;
    on(
        &broke,
        "/sms/send",
        json_answer(json!({"status": "ERROR", "status_code": 201,
        "status_text": "Не хватает средств на лицевом счету"})),
    )
    .await;
    let error = smsru(&broke)
        .send(&to("+79255070602"), &message)
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Quota);
}

#[tokio::test]
async fn smsru_cost_and_balance() {
    let server = MockServer::start().await;
    on(
        &server,
        "/sms/cost",
        json_answer(json!({"status": "OK", "status_code": 100,
        "sms": {"79255070602": {"status": "OK", "status_code": 100, "cost": 2.5, "sms": 2}},
        "total_cost": 2.5, "total_sms": 2})),
    )
    .await;
    on(
        &server,
        "/my/balance",
        json_answer(json!({"status": "OK", "status_code": 100, "balance": 123.45})),
    )
    .await;
    let channel = smsru(&server);
    let message = Message::new("k", "А".repeat(71));
    assert_eq!(channel.estimate(&message).units, 2);
    let quote = channel.quote(&to("+79255070602"), &message).await.unwrap();
    assert_eq!(quote.units, 2);
    assert_eq!(quote.price.unwrap().to_string(), "2.5");
    let verified = channel.verify().await.unwrap();
    assert_eq!(verified.balance.unwrap().to_string(), "123.45");
}

#[tokio::test]
async fn smsc_send_with_parts_cost_and_utf8() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sys/send.php"))
        .and(body_string_contains("charset=utf-8"))
        .and(body_string_contains("fmt=3"))
        .and(body_string_contains("login=shop"))
        .and(body_string_contains("psw=SMSC-PSW"))
        .and(body_string_contains("sender=MYSHOP"))
        .and(body_string_contains("cost=3"))
        .respond_with(json_answer(
            json!({"id": 5, "cnt": 2, "cost": "6.4", "balance": "93.6"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = smsc(&server)
        .send(&to("+79255070602"), &Message::new("k", "А".repeat(80)))
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, "5");
    assert_eq!(receipt.parts, Some(2));
    assert_eq!(receipt.cost.unwrap().to_string(), "6.4");
}

#[tokio::test]
async fn smsc_codes_map_to_classes_and_nine_backs_off_a_minute() {
    use ErrorClass::*;
    let cases = [
        (1, Rejected),
        (2, Configuration),
        (3, Quota),
        (4, Transient),
        (5, Rejected),
        (6, Rejected),
        (7, RecipientGone),
        (8, RecipientGone),
        (9, Transient),
    ];
    for (code, class) in cases {
        let server = MockServer::start().await;
        on(
            &server,
            "/sys/send.php",
            json_answer(json!({"error": "some error", "error_code": code})),
        )
        .await;
        let error = smsc(&server)
            .send(&to("+79255070602"), &Message::new("k", "hi"))
            .await
            .unwrap_err();
        assert_eq!(error.class(), class, "code {code}");
        if code == 9 {
            assert!(error.retry_after().unwrap() >= Duration::from_secs(60));
        }
    }
}

#[tokio::test]
async fn smsc_cost_only_and_balance_as_strings() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sys/send.php"))
        .and(body_string_contains("cost=1"))
        .respond_with(json_answer(json!({"cost": "3.2", "cnt": 1})))
        .mount(&server)
        .await;
    on(
        &server,
        "/sys/balance.php",
        json_answer(json!({"balance": "84.75", "currency": "RUB"})),
    )
    .await;
    let channel = smsc(&server);
    let quote = channel
        .quote(&to("+79255070602"), &Message::new("k", "hi"))
        .await
        .unwrap();
    assert_eq!(
        (quote.units, quote.price.unwrap().to_string()),
        (1, "3.2".to_owned())
    );
    assert_eq!(
        channel.verify().await.unwrap().balance.unwrap().to_string(),
        "84.75"
    );

    let wrong = MockServer::start().await;
    on(
        &wrong,
        "/sys/balance.php",
        json_answer(json!({"error": "authorise error", "error_code": 2})),
    )
    .await;
    let error = smsc(&wrong).verify().await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Configuration);
    assert!(!format!("{error:?}").contains("SMSC-PSW"));
}

#[tokio::test]
async fn an_unreadable_2xx_answer_is_ambiguous_not_a_retry() {
    // The gateway read the request and answered 200: it may hold the message.
    let server = MockServer::start().await;
    on(
        &server,
        "/sms/send",
        ResponseTemplate::new(200).set_body_string("<html>gateway busy</html>"),
    )
    .await;
    let error = smsru(&server)
        .send(&to("+79255070602"), &Message::new("k", "Привет"))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Ambiguous);
}

#[tokio::test]
async fn a_request_that_times_out_after_it_was_written_is_ambiguous() {
    let server = MockServer::start().await;
    on(
        &server,
        "/sms/send",
        json_answer(json!({"status": "OK"})).set_delay(Duration::from_secs(5)),
    )
    .await;
    let settings: SmsRuSettings = serde_json::from_value(json!({
        "api_id": "SMSRU-KEY-1", "sender": "MYSHOP", "api_base": server.uri(), "timeout_secs": 1}))
    .unwrap();
    let error = SmsChannel::new(SmsSettings::Smsru(settings))
        .unwrap()
        .send(&to("+79255070602"), &Message::new("k", "Привет"))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Ambiguous, "{error}");
    // Nothing listens here: the request was never written, so trying again is safe.
    let closed: SmsRuSettings = serde_json::from_value(json!({
        "api_id": "SMSRU-KEY-1", "sender": "MYSHOP", "api_base": "http://127.0.0.1:9"}))
    .unwrap();
    let refused = SmsChannel::new(SmsSettings::Smsru(closed))
        .unwrap()
        .send(&to("+79255070602"), &Message::new("k", "Привет"))
        .await
        .unwrap_err();
    assert_eq!(refused.class(), ErrorClass::Transient, "{refused}");
}
