//! Telegram Bot API adapter against a local wiremock server answering as the Bot API docs say.
#![cfg(feature = "telegram")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rassylka_channels::{Channel, ErrorClass, Image, Message, TelegramChannel, TelegramSettings};
use rassylka_model::Address;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "123456:AA-TopSecretToken";

fn channel(server: &MockServer) -> TelegramChannel {
    let mut settings = TelegramSettings::new(TOKEN);
    settings.api_base = server.uri();
    settings.per_chat_per_sec = 0;
    TelegramChannel::new(settings).unwrap()
}

fn api(method_name: &str) -> String {
    format!("/bot{TOKEN}/{method_name}")
}

fn ok(result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": result}))
}

fn fail(status: u16, description: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"ok": false, "error_code": status, "description": description}))
}

async fn answer_send_message(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(api("sendMessage")))
        .respond_with(response)
        .mount(server)
        .await;
}

#[tokio::test]
async fn send_message_in_html_mode() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("sendMessage")))
        .and(body_partial_json(
            json!({"chat_id": 42, "text": "<b>Анна</b>, бонусы!", "parse_mode": "HTML"}),
        ))
        .respond_with(ok(json!({"message_id": 777})))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = channel(&server)
        .send(
            &Address::TelegramChat(42),
            &Message::new("k", "<b>Анна</b>, бонусы!"),
        )
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, "777");
}

#[tokio::test]
async fn error_answers_map_to_classes() {
    let cases = [
        (
            403,
            "Forbidden: bot was blocked by the user",
            ErrorClass::RecipientGone,
        ),
        (
            403,
            "Forbidden: user is deactivated",
            ErrorClass::RecipientGone,
        ),
        (
            403,
            "Forbidden: bot can't initiate conversation with a user",
            ErrorClass::RecipientGone,
        ),
        (
            403,
            "Forbidden: bot was kicked from the supergroup chat",
            ErrorClass::RecipientGone,
        ),
        (
            400,
            "Bad Request: chat not found",
            ErrorClass::RecipientGone,
        ),
        (
            400,
            "Bad Request: user not found",
            ErrorClass::RecipientGone,
        ),
        (
            400,
            "Bad Request: PEER_ID_INVALID",
            ErrorClass::RecipientGone,
        ),
        (
            400,
            "Bad Request: can't parse entities: Unsupported start tag \"br\"",
            ErrorClass::Rejected,
        ),
        (
            400,
            "Bad Request: message is too long",
            ErrorClass::Rejected,
        ),
        (
            400,
            "Bad Request: message text is empty",
            ErrorClass::Rejected,
        ),
        (
            400,
            "Bad Request: wrong file identifier/HTTP URL specified",
            ErrorClass::Rejected,
        ),
        (
            400,
            "Bad Request: failed to get HTTP URL content",
            ErrorClass::Rejected,
        ),
        (
            400,
            "Bad Request: IMAGE_PROCESS_FAILED",
            ErrorClass::Rejected,
        ),
        (
            400,
            "Bad Request: PHOTO_INVALID_DIMENSIONS",
            ErrorClass::Rejected,
        ),
        (401, "Unauthorized", ErrorClass::Configuration),
        (404, "Not Found", ErrorClass::Configuration),
        (500, "Internal Server Error", ErrorClass::Transient),
        (502, "Bad Gateway", ErrorClass::Transient),
    ];
    for (status, description, class) in cases {
        let server = MockServer::start().await;
        answer_send_message(&server, fail(status, description)).await;
        let error = channel(&server)
            .send(&Address::TelegramChat(1), &Message::new("k", "hi"))
            .await
            .unwrap_err();
        assert_eq!(error.class(), class, "{status} {description}");
        assert_eq!(error.provider_code(), Some(status.to_string().as_str()));
        assert!(!error.to_string().contains(TOKEN));
    }
}

#[tokio::test]
async fn too_many_requests_pauses_the_bot_for_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("sendMessage")))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "ok": false, "error_code": 429,
            "description": "Too Many Requests: retry after 2",
            "parameters": {"retry_after": 2}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    answer_send_message(&server, ok(json!({"message_id": 1}))).await;
    let channel = channel(&server);
    let started = Instant::now();
    let error = channel
        .send(&Address::TelegramChat(1), &Message::new("k", "hi"))
        .await
        .unwrap_err();
    assert!(error.is_transient());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
    // Another chat waits too: the pause is for the whole bot.
    channel
        .send(&Address::TelegramChat(2), &Message::new("k2", "hi"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn bad_gateway_twice_then_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("sendMessage")))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    answer_send_message(&server, ok(json!({"message_id": 9}))).await;
    let channel = channel(&server);
    let to = Address::TelegramChat(5);
    let message = Message::new("k", "hi");
    for _ in 0..2 {
        let error = channel.send(&to, &message).await.unwrap_err();
        assert!(error.is_transient(), "{error}");
    }
    assert_eq!(channel.send(&to, &message).await.unwrap().provider_id, "9");
}

#[tokio::test]
async fn photo_is_uploaded_once_then_sent_by_file_id() {
    let server = MockServer::start().await;
    let photo_result = json!({"message_id": 10, "photo": [
        {"file_id": "small-id", "width": 90, "height": 90},
        {"file_id": "big-id", "width": 800, "height": 800}]});
    Mock::given(method("POST"))
        .and(path(api("sendPhoto")))
        .respond_with(ok(photo_result))
        .expect(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gift.png");
    std::fs::write(&file, b"\x89PNG fake image bytes").unwrap();
    let channel = channel(&server);
    let message = Message::new("k", "Подарок <b>300</b> бонусов").with_image(Image::Path(file));
    channel
        .send(&Address::TelegramChat(1), &message)
        .await
        .unwrap();
    channel
        .send(&Address::TelegramChat(2), &message)
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    let upload = String::from_utf8_lossy(&requests[0].body).into_owned();
    let content_type = requests[0]
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(content_type.starts_with("multipart/form-data"));
    assert!(
        upload.contains("name=\"photo\"; filename=\"gift.png\""),
        "{upload}"
    );
    assert!(upload.contains("Content-Type: image/png"));
    assert!(upload.contains("name=\"caption\"\r\n\r\nПодарок <b>300</b> бонусов"));
    assert!(upload.contains("name=\"chat_id\"\r\n\r\n1"));
    let reuse: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(reuse["photo"], "big-id");
    assert_eq!(reuse["chat_id"], 2);
}

#[tokio::test]
async fn photo_by_url_goes_as_json_string_and_long_text_follows() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("sendPhoto")))
        .and(body_partial_json(
            json!({"photo": "https://cdn.example/gift.jpg"}),
        ))
        .respond_with(ok(json!({"message_id": 20, "photo": [{"file_id": "f"}]})))
        .expect(1)
        .mount(&server)
        .await;
    answer_send_message(&server, ok(json!({"message_id": 21}))).await;
    let long = "б".repeat(1500);
    let message =
        Message::new("k", long.clone()).with_image(Image::parse("https://cdn.example/gift.jpg"));
    let receipt = channel(&server)
        .send(&Address::TelegramChat(3), &message)
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, "20,21");
    let requests = server.received_requests().await.unwrap();
    let photo: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert!(photo.get("caption").is_none());
    let text: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(text["text"], long.as_str());
}

#[tokio::test]
async fn text_over_4096_is_rejected_before_sending() {
    let server = MockServer::start().await;
    let error = channel(&server)
        .send(
            &Address::TelegramChat(3),
            &Message::new("k", "x".repeat(4097)),
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Rejected);
    // Markup does not count.
    answer_send_message(&server, ok(json!({"message_id": 1}))).await;
    let marked = format!("<b>{}</b> &amp;", "x".repeat(4094));
    channel(&server)
        .send(&Address::TelegramChat(3), &Message::new("k", marked))
        .await
        .unwrap();
}

#[tokio::test]
async fn migrated_group_is_retried_at_its_new_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("sendMessage")))
        .and(body_partial_json(json!({"chat_id": -100})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "ok": false, "error_code": 400,
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": -1001234}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(api("sendMessage")))
        .and(body_partial_json(json!({"chat_id": -1001234})))
        .respond_with(ok(json!({"message_id": 5})))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = channel(&server)
        .send(&Address::TelegramChat(-100), &Message::new("k", "hi"))
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, "5");
}

#[tokio::test]
async fn verify_calls_get_me() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("getMe")))
        .respond_with(ok(
            json!({"id": 123456, "is_bot": true, "username": "shop_bot"}),
        ))
        .mount(&server)
        .await;
    let verified = channel(&server).verify().await.unwrap();
    assert_eq!(verified.account.as_deref(), Some("@shop_bot"));

    let revoked = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("getMe")))
        .respond_with(fail(401, "Unauthorized"))
        .mount(&revoked)
        .await;
    let error = channel(&revoked).verify().await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Configuration);
}

#[tokio::test]
async fn the_token_never_shows_in_errors_or_debug() {
    // A port nobody listens on: the connection error of reqwest would carry the URL.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut settings = TelegramSettings::new(TOKEN);
    settings.api_base = format!("http://127.0.0.1:{port}");
    let channel = TelegramChannel::new(settings).unwrap();
    let error = channel
        .send(&Address::TelegramChat(1), &Message::new("k", "hi"))
        .await
        .unwrap_err();
    assert!(error.is_transient());
    let mut everything = format!("{error} {error:?} {channel:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        everything.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    assert!(!everything.contains("TopSecret"), "{everything}");
    assert!(!everything.contains("123456"), "{everything}");
}

/// Answers 429 whenever more than 30 requests arrived within the last second, as Telegram's
/// bulk limit does, and counts the accepted messages by text.
struct ThirtyPerSecond {
    arrivals: Mutex<Vec<Instant>>,
    delivered: Mutex<HashMap<String, u32>>,
    throttled: Mutex<u32>,
}

impl Respond for ThirtyPerSecond {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut arrivals = self.arrivals.lock().unwrap();
        arrivals.push(now);
        let recent = arrivals
            .iter()
            .filter(|t| now.duration_since(**t) < Duration::from_secs(1))
            .count();
        if recent > 30 {
            *self.throttled.lock().unwrap() += 1;
            return ResponseTemplate::new(429).set_body_json(json!({
                "ok": false, "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1}}));
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let text = body["text"].as_str().unwrap().to_owned();
        *self.delivered.lock().unwrap().entry(text).or_default() += 1;
        ok(json!({"message_id": 1}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ninety_messages_under_a_thirty_per_second_limit_all_arrive_once() {
    let server = MockServer::start().await;
    let responder = Arc::new(ThirtyPerSecond {
        arrivals: Mutex::new(Vec::new()),
        delivered: Mutex::new(HashMap::new()),
        throttled: Mutex::new(0),
    });
    struct Shared(Arc<ThirtyPerSecond>);
    impl Respond for Shared {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            self.0.respond(request)
        }
    }
    Mock::given(method("POST"))
        .and(path(api("sendMessage")))
        .respond_with(Shared(responder.clone()))
        .mount(&server)
        .await;
    let channel = Arc::new(channel(&server));
    let mut tasks = Vec::new();
    for i in 0..90_i64 {
        let channel = channel.clone();
        tasks.push(tokio::spawn(async move {
            let message = Message::new(format!("k{i}"), format!("message {i}"));
            // The dispatcher's retry loop, reduced: retry transient errors; the channel itself
            // holds every send until the retry-after is over.
            for _ in 0..10 {
                match channel.send(&Address::TelegramChat(i), &message).await {
                    Ok(_) => return,
                    Err(e) if e.is_transient() => continue,
                    Err(e) => panic!("{e}"),
                }
            }
            panic!("message {i} never arrived");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let delivered = responder.delivered.lock().unwrap();
    assert_eq!(delivered.len(), 90);
    assert!(delivered.values().all(|&n| n == 1));
    let throttled = *responder.throttled.lock().unwrap();
    assert!(
        throttled <= 9,
        "the limiter let {throttled} requests run into 429"
    );
}

#[tokio::test]
async fn a_retry_after_the_text_failed_does_not_resend_the_photo() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("sendPhoto")))
        .respond_with(ok(json!({"message_id": 30, "photo": [{"file_id": "f"}]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(api("sendMessage")))
        .respond_with(fail(502, "Bad Gateway"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    answer_send_message(&server, ok(json!({"message_id": 31}))).await;
    let channel = channel(&server);
    let message = Message::new("k", "т".repeat(1100))
        .with_image(Image::parse("https://cdn.example/gift.jpg"));
    let to = Address::TelegramChat(4);
    assert!(
        channel
            .send(&to, &message)
            .await
            .unwrap_err()
            .is_transient()
    );
    assert_eq!(
        channel.send(&to, &message).await.unwrap().provider_id,
        "30,31"
    );
}
