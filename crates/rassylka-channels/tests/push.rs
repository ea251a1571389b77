//! Wallet push through an HTTP pass platform, against a local wiremock server.
#![cfg(feature = "push")]

use std::time::{Duration, Instant};

use rassylka_channels::{Channel, ErrorClass, Message, PushChannel, PushSettings};
use rassylka_model::Address;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn channel(server: &MockServer) -> PushChannel {
    let settings: PushSettings = serde_json::from_value(json!({
        "provider": "http", "api_base": format!("{}/v2t", server.uri()), "token": "PUSH-TOKEN"}))
    .unwrap();
    PushChannel::new(settings).unwrap()
}

fn card() -> Address {
    Address::WalletCard("pass-serial-1".into())
}

#[tokio::test]
async fn push_posts_serials_and_message_with_bearer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2t/marketing/pushmessage"))
        .and(header("authorization", "Bearer PUSH-TOKEN"))
        .and(body_json(
            json!({"serials": ["pass-serial-1"], "message": "Новая акция: -20%"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 321})))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = channel(&server)
        .send(&card(), &Message::new("k", "Новая акция: -20%"))
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, "321");
}

#[tokio::test]
async fn statuses_map_to_classes() {
    use ErrorClass::*;
    for (status, class) in [
        (400, Rejected),
        (422, Rejected),
        (401, Configuration),
        (403, Configuration),
        (402, Quota),
        (404, RecipientGone),
        (410, RecipientGone),
        (429, Transient),
        (500, Transient),
        (503, Transient),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status).set_body_json(json!({"message": "Some Error"})),
            )
            .mount(&server)
            .await;
        let error = channel(&server)
            .send(&card(), &Message::new("k", "hi"))
            .await
            .unwrap_err();
        assert_eq!(error.class(), class, "{status}");
        assert!(error.to_string().contains("some error"));
    }
}

#[tokio::test]
async fn too_many_requests_pauses_then_sends() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let channel = channel(&server);
    let started = Instant::now();
    let error = channel
        .send(&card(), &Message::new("k", "hi"))
        .await
        .unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(
        channel
            .send(&card(), &Message::new("k", "hi"))
            .await
            .unwrap()
            .provider_id,
        "pass-serial-1"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn verify_makes_an_authenticated_get() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2t/templates"))
        .and(header("authorization", "Bearer PUSH-TOKEN"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    channel(&server).verify().await.unwrap();
    let bad = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&bad)
        .await;
    assert_eq!(
        channel(&bad).verify().await.unwrap_err().class(),
        ErrorClass::Configuration
    );
}
