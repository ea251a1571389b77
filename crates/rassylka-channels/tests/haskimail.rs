//! HaskiMail adapter against a local wiremock server answering as the Postmark-compatible API.
#![cfg(feature = "haskimail")]

use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use rassylka_channels::{Channel, ErrorClass, HaskiMailChannel, HaskiMailSettings, Image, Message};
use rassylka_model::{Address, EmailAddress};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn settings(server: &MockServer, extra: Value) -> HaskiMailSettings {
    let mut base = json!({"server_token": "HM-SERVER-TOKEN", "from": "news@shop.example",
        "from_name": "Магазин", "api_base": server.uri(), "message_stream": "broadcast"});
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(base).unwrap()
}

fn channel(server: &MockServer) -> HaskiMailChannel {
    HaskiMailChannel::new(settings(server, json!({})), None).unwrap()
}

fn email(n: usize) -> Address {
    Address::Email(EmailAddress::parse(&format!("user{n}@example.com")).unwrap())
}

fn ok_answer(id: &str) -> Value {
    json!({"ErrorCode": 0, "Message": "OK", "To": "x", "SubmittedAt": "2026-11-22T10:00:00Z", "MessageID": id})
}

#[tokio::test]
async fn single_send_with_headers_stream_and_inline_image() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .and(header("X-Haskimail-Server-Token", "HM-SERVER-TOKEN"))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_answer("b7bc2f4a-e38e")))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, b"png").unwrap();
    let message = Message::new("k-1", "Здравствуйте")
        .with_subject("Подарок")
        .with_html("<p>Здравствуйте</p><img src=\"cid:image\">")
        .with_image(Image::Path(logo))
        .with_header("List-Unsubscribe", "<https://crm.example/u/t>")
        .with_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        .with_header("List-Id", "m-1");
    let receipt = channel(&server).send(&email(1), &message).await.unwrap();
    assert_eq!(receipt.provider_id, "b7bc2f4a-e38e");
    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["From"], "\"Магазин\" <news@shop.example>");
    assert_eq!(body["To"], "user1@example.com");
    assert_eq!(body["Subject"], "Подарок");
    assert_eq!(body["TextBody"], "Здравствуйте");
    assert_eq!(body["MessageStream"], "broadcast");
    assert_eq!(
        body["Headers"][1],
        json!({"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"})
    );
    assert_eq!(
        body["Headers"][2],
        json!({"Name": "List-Id", "Value": "<m-1.shop.example>"})
    );
    assert_eq!(body["Attachments"][0]["ContentID"], "cid:image");
    assert_eq!(body["Attachments"][0]["Content"], "cG5n");
    assert_eq!(body["Attachments"][0]["ContentType"], "image/png");
}

#[tokio::test]
async fn token_header_name_is_configurable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .and(header("X-Haski-Server-Token", "HM-SERVER-TOKEN"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_answer("id")))
        .expect(1)
        .mount(&server)
        .await;
    let channel = HaskiMailChannel::new(
        settings(&server, json!({"token_header": "X-Haski-Server-Token"})),
        None,
    )
    .unwrap();
    channel
        .send(&email(1), &Message::new("k", "hi"))
        .await
        .unwrap();
}

#[tokio::test]
async fn error_answers_map_to_classes() {
    use ErrorClass::*;
    let cases = [
        (
            422,
            json!({"ErrorCode": 300, "Message": "Invalid email request"}),
            Rejected,
        ),
        (
            422,
            json!({"ErrorCode": 406, "Message": "You tried to send to a recipient that has been marked as inactive."}),
            RecipientGone,
        ),
        (
            422,
            json!({"ErrorCode": 10, "Message": "No Account or Server API tokens were supplied"}),
            Configuration,
        ),
        (
            422,
            json!({"ErrorCode": 400, "Message": "Sender signature not found"}),
            Configuration,
        ),
        (
            422,
            json!({"ErrorCode": 401, "Message": "Sender signature not confirmed"}),
            Configuration,
        ),
        (
            422,
            json!({"ErrorCode": 405, "Message": "Not enough credits"}),
            Quota,
        ),
        (
            422,
            json!({"ErrorCode": 409, "Message": "JSON required"}),
            Rejected,
        ),
        (
            422,
            json!({"ErrorCode": 410, "Message": "Too many batch messages"}),
            Rejected,
        ),
        (
            401,
            json!({"ErrorCode": 10, "Message": "Bad or missing API token"}),
            Configuration,
        ),
        (
            429,
            json!({"ErrorCode": 429, "Message": "Rate limit exceeded"}),
            Transient,
        ),
        (
            500,
            json!({"ErrorCode": 500, "Message": "Internal Server Error"}),
            Transient,
        ),
        (503, json!(null), Transient),
        (408, json!(null), Transient),
    ];
    for (status, body, class) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/email"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body.clone()))
            .mount(&server)
            .await;
        let error = channel(&server)
            .send(&email(1), &Message::new("k", "hi"))
            .await
            .unwrap_err();
        assert_eq!(error.class(), class, "{status} {body}");
    }
}

#[tokio::test]
async fn too_many_requests_then_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"ErrorCode": 429, "Message": "Rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_answer("after")))
        .mount(&server)
        .await;
    let channel = channel(&server);
    let error = channel
        .send(&email(1), &Message::new("k", "hi"))
        .await
        .unwrap_err();
    assert!(error.is_transient() && error.retry_after().is_some());
    let started = std::time::Instant::now();
    assert_eq!(
        channel
            .send(&email(1), &Message::new("k", "hi"))
            .await
            .unwrap()
            .provider_id,
        "after"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
}

/// Answers a batch with one result per message: ErrorCode 406 for addresses starting "gone".
struct BatchAnswer {
    sizes: Mutex<Vec<usize>>,
}

impl Respond for BatchAnswer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let items: Vec<Value> = serde_json::from_slice(&request.body).unwrap();
        self.sizes.lock().unwrap().push(items.len());
        let results: Vec<Value> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                if item["To"].as_str().unwrap().starts_with("gone") {
                    json!({"ErrorCode": 406, "Message": "inactive recipient"})
                } else {
                    ok_answer(&format!("id-{i}"))
                }
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(results)
    }
}

#[tokio::test]
async fn batch_of_501_goes_in_two_chunks_with_per_message_results() {
    let server = MockServer::start().await;
    let answer = Arc::new(BatchAnswer {
        sizes: Mutex::new(Vec::new()),
    });
    struct Shared(Arc<BatchAnswer>);
    impl Respond for Shared {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            self.0.respond(request)
        }
    }
    Mock::given(method("POST"))
        .and(path("/email/batch"))
        .and(header("X-Haskimail-Server-Token", "HM-SERVER-TOKEN"))
        .respond_with(Shared(answer.clone()))
        .mount(&server)
        .await;
    let mut items: Vec<(Address, Message)> = (0..501)
        .map(|n| (email(n), Message::new(format!("k{n}"), "hi")))
        .collect();
    items[3].0 = Address::Email(EmailAddress::parse("gone@example.com").unwrap());
    items[7].0 = Address::TelegramChat(1);
    let results = channel(&server).send_batch(&items).await;
    assert_eq!(results.len(), 501);
    assert_eq!(*answer.sizes.lock().unwrap(), [499, 1]);
    assert_eq!(
        results[3].as_ref().unwrap_err().class(),
        ErrorClass::RecipientGone
    );
    assert_eq!(
        results[7].as_ref().unwrap_err().class(),
        ErrorClass::Rejected
    );
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 499);
    assert_eq!(results[500].as_ref().unwrap().provider_id, "id-0");
}

#[tokio::test]
async fn daily_and_monthly_limits_are_enforced_locally() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_answer("id")))
        .mount(&server)
        .await;
    let date = Arc::new(Mutex::new(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()));
    let clock = date.clone();
    let channel = HaskiMailChannel::new(
        settings(&server, json!({"daily_limit": 2, "monthly_limit": 3})),
        None,
    )
    .unwrap()
    .with_date_source(Arc::new(move || *clock.lock().unwrap()));
    let message = Message::new("k", "hi");
    channel.send(&email(1), &message).await.unwrap();
    channel.send(&email(2), &message).await.unwrap();
    let daily = channel.send(&email(3), &message).await.unwrap_err();
    assert_eq!(daily.class(), ErrorClass::Quota);
    assert!(daily.to_string().contains("daily"));
    *date.lock().unwrap() = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    channel.send(&email(3), &message).await.unwrap();
    let monthly = channel.send(&email(4), &message).await.unwrap_err();
    assert!(monthly.to_string().contains("monthly"));
    *date.lock().unwrap() = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    channel.send(&email(4), &message).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 4);

    // A failed send gives its reservation back; usage can be seeded from the journal.
    let seeded = HaskiMailChannel::new(settings(&server, json!({"daily_limit": 5})), None)
        .unwrap()
        .with_usage(5, 5);
    let refused = seeded.send(&email(1), &message).await.unwrap_err();
    assert_eq!(refused.class(), ErrorClass::Quota);
    // A daily limit renews at the provider's midnight, which the dispatcher waits for in the
    // zone the channel names; a monthly one says how long until the next month.
    assert_eq!(refused.retry_after(), None);
    let this_month = HaskiMailChannel::new(settings(&server, json!({"monthly_limit": 1})), None)
        .unwrap()
        .with_usage(1, 1);
    let monthly = this_month.send(&email(1), &message).await.unwrap_err();
    let wait = monthly.retry_after().unwrap();
    assert!(
        wait.as_secs() > 0 && wait.as_secs() <= 31 * 86_400,
        "{wait:?}"
    );
    let limits = seeded.account_limits().unwrap();
    assert_eq!((limits.daily, limits.monthly), (Some(5), None));
    assert_eq!(limits.zone, chrono_tz::Europe::Moscow);
    let elsewhere = HaskiMailChannel::new(
        settings(
            &server,
            json!({"monthly_limit": 9, "limits_tz": "Asia/Vladivostok"}),
        ),
        None,
    )
    .unwrap();
    assert_eq!(
        elsewhere.account_limits().unwrap().zone,
        chrono_tz::Asia::Vladivostok
    );
    // The journal's count starts the counters: another process's sends use up the limit.
    seeded.start_usage(4, 4);
    seeded.send(&email(1), &message).await.unwrap();
    assert!(seeded.send(&email(2), &message).await.is_err());
    let unlimited = HaskiMailChannel::new(settings(&server, json!({})), None).unwrap();
    assert!(unlimited.account_limits().is_none());
}

#[tokio::test]
async fn verify_reads_the_server() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/server"))
        .and(header("X-Haskimail-Server-Token", "HM-SERVER-TOKEN"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ID": 1, "Name": "Shop news"})),
        )
        .mount(&server)
        .await;
    assert_eq!(
        channel(&server).verify().await.unwrap().account.as_deref(),
        Some("Shop news")
    );
    let bad = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/server"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"ErrorCode": 10, "Message": "Bad or missing Server API token"}),
            ),
        )
        .mount(&bad)
        .await;
    let error = channel(&bad).verify().await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Configuration);
    assert!(!format!("{error:?} {:?}", channel(&bad)).contains("HM-SERVER-TOKEN"));
}
