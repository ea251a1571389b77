//! The endpoint over a real socket: pages, one-click POSTs, bad tokens, health.

use std::sync::Arc;

use rassylka::channels::MemoryChannel;
use rassylka::model::{ChannelKind, Recipient};
use rassylka::{Dispatcher, Mailing, MemorySource, Rassylka, SqliteStore, UnsubscribeKeys};
use rassylka_unsubscribe::UnsubscribeServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request on a fresh connection: the status and the body.
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

struct Running {
    addr: std::net::SocketAddr,
    dispatcher: Rassylka,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A journal in which `ads` reached Anna by e-mail, and the endpoint over it.
async fn running() -> Running {
    let anna: Recipient = serde_json::from_str(
        r#"{"id": "c-1", "first_name": "Анна", "consent": {"advertising": true}, "contacts": {"email": "anna@example.com"}}"#,
    )
    .unwrap();
    let dispatcher = Rassylka::builder()
        .recipients(MemorySource::new(vec![anna]))
        .store(SqliteStore::temporary().await.unwrap())
        .channel(Arc::new(MemoryChannel::new(ChannelKind::Email)))
        .build()
        .unwrap();
    let ads = Mailing::from_json(
        r#"{"id": "ads", "class": "advertising", "channels": ["email"],
            "content": {"email": {"subject": "Скидки", "html": "<p>Скидка 20%</p>"}}}"#,
    )
    .unwrap();
    dispatcher.save(&ads).await.unwrap();
    dispatcher.confirm("ads").await.unwrap();
    dispatcher.run_mailing("ads").await.unwrap();
    let server = UnsubscribeServer::bind("127.0.0.1:0", dispatcher.clone())
        .await
        .unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve_until(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        dispatcher,
        stop: Some(stop),
    }
}

async fn token(r: &Running) -> String {
    let link = r.dispatcher.unsubscribe_link("ads", "c-1").await.unwrap();
    link.rsplit('/').next().unwrap().to_owned()
}

/// Nothing on the page loads from anywhere: no `src`, no `href` but the page's own, no
/// `url(` or `@import`.
fn self_contained(html: &str) {
    for bad in ["src=", "href=", "url(", "@import", "<script"] {
        assert!(!html.contains(bad), "`{bad}` in {html}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_shows_the_masked_address_and_changes_nothing_post_unsubscribes_once() {
    let r = running().await;
    let token = token(&r).await;
    let path = format!("/u/{token}");
    let (status, head, page) = request(r.addr, "GET", &path, "").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/html; charset=utf-8")
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store")
    );
    assert!(page.contains("a***@example.com"), "{page}");
    assert!(!page.contains("anna@example.com"), "the address is masked");
    assert!(page.contains("<form method=\"post\">") && page.contains("<button"));
    assert_eq!(page.matches("<button").count(), 1, "one button");
    self_contained(&page);
    // A mail scanner opening the link twice unsubscribes nobody.
    request(r.addr, "GET", &path, "").await;
    assert!(r.dispatcher.unsubscribes(None).await.unwrap().is_empty());

    let (status, _, page) = request(r.addr, "POST", &path, "List-Unsubscribe=One-Click").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Ваш адрес удалён из рассылки"), "{page}");
    self_contained(&page);
    let kept = r.dispatcher.unsubscribes(None).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].recipient_id, "c-1");
    assert_eq!(kept[0].mailing_id, "ads");
    assert_eq!(kept[0].channel, Some(ChannelKind::Email));
    assert_eq!(kept[0].source, "one_click");

    // The page's own form, again: harmless, the first record stays.
    let (status, _, page) = request(r.addr, "POST", &path, "confirm=1").await;
    assert_eq!(status, 200);
    assert!(page.contains("Ваш адрес удалён из рассылки"));
    assert_eq!(r.dispatcher.unsubscribes(None).await.unwrap(), kept);
    let (status, _, page) = request(r.addr, "GET", &path, "").await;
    assert_eq!(status, 200);
    assert!(page.contains("уже удалён"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_altered_truncated_and_other_key_tokens_answer_400_and_record_nothing() {
    let r = running().await;
    let token = token(&r).await;
    let mut altered = token.clone().into_bytes();
    altered[10] = if altered[10] == b'x' { b'y' } else { b'x' };
    let other_key = UnsubscribeKeys::new(&["somebody else's secret key"]).unwrap();
    // Anna's token with another recipient's id spliced in (her signature kept): the
    // signature covers the ids, so it cannot be reused for anyone else.
    let other_recipient = {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let bytes = engine.decode(&token).unwrap();
        let (signed, mac) = bytes.split_at(bytes.len() - 32);
        let mut spliced = signed[..signed.len() - "c-1".len()].to_vec();
        spliced.extend_from_slice(b"c-2");
        spliced.extend_from_slice(mac);
        engine.encode(spliced)
    };
    for bad in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        String::from_utf8(altered).unwrap(),
        token[..token.len() / 2].to_owned(),
        other_key.sign("ads", "c-1"),
        other_recipient,
        "%3Cscript%3E".to_owned(),
    ] {
        for method in ["GET", "POST"] {
            let (status, _, page) = request(
                r.addr,
                method,
                &format!("/u/{bad}"),
                "List-Unsubscribe=One-Click",
            )
            .await;
            assert_eq!(status, 400, "{method} {bad}: {page}");
            assert!(page.contains("Ссылка недействительна"), "{page}");
            assert!(!page.contains("<script"), "{page}");
            self_contained(&page);
        }
    }
    assert!(r.dispatcher.unsubscribes(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_ok_and_unknown_paths_404() {
    let r = running().await;
    let (status, _, body) = request(r.addr, "GET", "/healthz", "").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, _) = request(r.addr, "GET", "/nothing", "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_busy_address_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dispatcher = Rassylka::builder()
        .recipients(MemorySource::default())
        .store(SqliteStore::temporary().await.unwrap())
        .build()
        .unwrap();
    let error = UnsubscribeServer::bind(&address, dispatcher)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot listen on {address}")),
        "{error}"
    );
    assert!(error.is_transient());
}
