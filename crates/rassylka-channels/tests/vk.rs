//! VK adapter against a local wiremock server answering as the VK API does (HTTP 200, errors in
//! the body).
#![cfg(feature = "vk")]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rassylka_channels::{Channel, ErrorClass, Image, Message, VkChannel, VkSettings, vk_random_id};
use rassylka_model::Address;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn form(body: &[u8]) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(
                    u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16)
                        .unwrap(),
                );
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
    std::str::from_utf8(body)
        .unwrap()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn channel(server: &MockServer) -> VkChannel {
    let mut settings = VkSettings::new("vk1.a.community-token");
    settings.api_base = server.uri();
    settings.intent = Some("promo_newsletter".into());
    VkChannel::new(settings).unwrap()
}

fn vk(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn vk_error(code: i64, text: &str) -> ResponseTemplate {
    vk(json!({"error": {"error_code": code, "error_msg": text,
        "request_params": [{"key": "method", "value": "messages.send"}]}}))
}

async fn on(server: &MockServer, method_name: &str, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(format!("/method/{method_name}")))
        .respond_with(response)
        .mount(server)
        .await;
}

#[tokio::test]
async fn send_posts_the_documented_form() {
    let server = MockServer::start().await;
    on(&server, "messages.send", vk(json!({"response": 123}))).await;
    let message = Message::new("m-1/occ/c-7/vk", "Анна, дарим 300 бонусов & скидку");
    let receipt = channel(&server)
        .send(&Address::VkUser(4321), &message)
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, "123");
    let requests = server.received_requests().await.unwrap();
    let sent = form(&requests[0].body);
    assert_eq!(sent["v"], "5.199");
    assert_eq!(sent["access_token"], "vk1.a.community-token");
    assert_eq!(sent["peer_id"], "4321");
    assert_eq!(sent["message"], "Анна, дарим 300 бонусов & скидку");
    assert_eq!(sent["intent"], "promo_newsletter");
    let random_id: i32 = sent["random_id"].parse().unwrap();
    assert_eq!(random_id, vk_random_id("m-1/occ/c-7/vk"));
    assert!(random_id > 0);
}

#[test]
fn random_id_is_deterministic_and_spread() {
    assert_eq!(vk_random_id("a"), vk_random_id("a"));
    assert_ne!(vk_random_id("a"), vk_random_id("b"));
    assert!((0..1000).all(|i| vk_random_id(&format!("k{i}")) > 0));
}

#[tokio::test]
async fn every_listed_error_code_maps_to_its_class() {
    use ErrorClass::*;
    let cases = [
        (900, RecipientGone),
        (901, RecipientGone),
        (902, RecipientGone),
        (18, RecipientGone),
        (113, RecipientGone),
        (936, RecipientGone),
        (950, RecipientGone),
        (914, Rejected),
        (911, Rejected),
        (913, Rejected),
        (100, Rejected),
        (943, Rejected),
        (944, Quota),
        (29, Quota),
        (985, Configuration),
        (5, Configuration),
        (27, Configuration),
        (28, Configuration),
        (15, Configuration),
        (14, Configuration),
        (6, Transient),
        (9, Transient),
        (1, Transient),
        (10, Transient),
    ];
    for (code, class) in cases {
        let server = MockServer::start().await;
        on(&server, "messages.send", vk_error(code, "Some VK Error")).await;
        let error = channel(&server)
            .send(&Address::VkUser(1), &Message::new("k", "hi"))
            .await
            .unwrap_err();
        assert_eq!(error.class(), class, "code {code}");
        assert_eq!(error.provider_code(), Some(code.to_string().as_str()));
    }
}

#[tokio::test]
async fn too_many_per_second_pauses_the_token_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/method/messages.send"))
        .respond_with(vk_error(6, "Too many requests per second"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    on(&server, "messages.send", vk(json!({"response": 5}))).await;
    let channel = channel(&server);
    let started = Instant::now();
    let error = channel
        .send(&Address::VkUser(1), &Message::new("k", "hi"))
        .await
        .unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    channel
        .send(&Address::VkUser(1), &Message::new("k", "hi"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    // The retry carried the same random_id.
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        form(&requests[0].body)["random_id"],
        form(&requests[1].body)["random_id"]
    );
}

#[tokio::test]
async fn flood_control_asks_for_a_long_wait_without_pausing_others() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/method/messages.send"))
        .respond_with(vk_error(9, "Flood control"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    on(&server, "messages.send", vk(json!({"response": 6}))).await;
    let channel = channel(&server);
    let error = channel
        .send(&Address::VkUser(1), &Message::new("k1", "hi"))
        .await
        .unwrap_err();
    assert!(error.is_transient());
    assert!(error.retry_after().unwrap() >= Duration::from_secs(60));
    let started = Instant::now();
    channel
        .send(&Address::VkUser(2), &Message::new("k2", "hi"))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn photo_upload_chain_then_attachment_reused() {
    let server = MockServer::start().await;
    on(
        &server,
        "photos.getMessagesUploadServer",
        vk(
            json!({"response": {"upload_url": format!("{}/upload/abc", server.uri()),
            "album_id": -64, "group_id": 555}}),
        ),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/upload/abc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"server": 8123, "photo": "[{\"photo\":\"abc\"}]", "hash": "h4sh"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    on(
        &server,
        "photos.saveMessagesPhoto",
        vk(json!({"response": [{"id": 4567, "owner_id": -555, "access_key": "k3y"}]})),
    )
    .await;
    on(&server, "messages.send", vk(json!({"response": 99}))).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gift.jpg");
    std::fs::write(&file, b"\xff\xd8 fake jpeg").unwrap();
    let channel = channel(&server);
    let message = Message::new("k", "Подарок").with_image(Image::Path(file));
    channel.send(&Address::VkUser(10), &message).await.unwrap();
    channel.send(&Address::VkUser(11), &message).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let paths: Vec<&str> = requests.iter().map(|r| r.url.path()).collect();
    assert_eq!(
        paths,
        [
            "/method/photos.getMessagesUploadServer",
            "/upload/abc",
            "/method/photos.saveMessagesPhoto",
            "/method/messages.send",
            "/method/messages.send",
        ]
    );
    assert_eq!(form(&requests[0].body)["peer_id"], "10");
    let upload = String::from_utf8_lossy(&requests[1].body);
    assert!(
        upload.contains("name=\"photo\"; filename=\"gift.jpg\""),
        "{upload}"
    );
    let save = form(&requests[2].body);
    assert_eq!(
        (save["server"].as_str(), save["hash"].as_str()),
        ("8123", "h4sh")
    );
    assert_eq!(save["photo"], "[{\"photo\":\"abc\"}]");
    for send in &requests[3..] {
        assert_eq!(form(&send.body)["attachment"], "photo-555_4567_k3y");
    }
}

#[tokio::test]
async fn verify_checks_the_messages_right() {
    let server = MockServer::start().await;
    on(
        &server,
        "groups.getTokenPermissions",
        vk(json!({"response": {"mask": 4096, "permissions": [{"setting": 4096, "name": "messages"}]}})),
    )
    .await;
    assert!(channel(&server).verify().await.is_ok());

    let without = MockServer::start().await;
    on(
        &without,
        "groups.getTokenPermissions",
        vk(json!({"response": {"mask": 4, "permissions": [{"setting": 4, "name": "photos"}]}})),
    )
    .await;
    assert_eq!(
        channel(&without).verify().await.unwrap_err().class(),
        ErrorClass::Configuration
    );

    let bad = MockServer::start().await;
    on(
        &bad,
        "groups.getTokenPermissions",
        vk_error(5, "User authorization failed"),
    )
    .await;
    let error = channel(&bad).verify().await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Configuration);
    assert!(!format!("{error:?}").contains("community-token"));
}
