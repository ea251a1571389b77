//! Unsubscribe end to end over real sockets (SPEC §7c): a mailing through a loopback SMTP
//! server carries the headers and the footer; the `unsubscribe` endpoint takes the one-click
//! POST; the next advertising mailing skips the recipient while a service one still reaches
//! them. Then the frequency cap and HaskiMail's daily limit across separate `campaign run`
//! processes.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::crash::{campaign_binary, example_binary};
use crate::smtp_server::{Security, SmtpServer};

const PEOPLE: &str = r#"{"id": "a", "first_name": "Анна", "consent": {"advertising": true}, "contacts": {"email": "anna@example.com"}}
{"id": "b", "first_name": "Борис", "consent": {"advertising": true}, "contacts": {"email": "boris@example.com"}}
{"id": "c", "first_name": "Вера", "consent": {"advertising": true}, "contacts": {"email": "vera@example.com"}}
{"id": "d", "first_name": "Глеб", "consent": {"advertising": true}, "contacts": {"email": "gleb@example.com"}}
"#;

fn write_mailing(dir: &Path, id: &str, class: &str, start: &str) -> String {
    let file = dir.join(format!("{id}.json"));
    std::fs::write(
        &file,
        serde_json::json!({
            "id": id, "class": class, "channels": ["email"],
            "schedule": {"start": start, "tz": "Europe/Moscow", "every": "once"},
            "content": {"email": {"subject": "Новости", "html": "<html><body><p>{first_name}, скидка 20%</p></body></html>"}}
        })
        .to_string(),
    )
    .unwrap();
    file.to_str().unwrap().to_owned()
}

fn campaign(dir: &Path, args: &[&str]) -> Output {
    Command::new(campaign_binary())
        .args(args)
        .current_dir(dir)
        .env("SMTP_PASS", "pw-secret")
        .env("HM_TOKEN", "hm-token-secret")
        .output()
        .unwrap()
}

fn run(dir: &Path, mailing: &str, now: &str) -> Output {
    campaign(
        dir,
        &[
            "--db",
            "journal.db",
            "run",
            "--mailing",
            mailing,
            "--recipients",
            "people.jsonl",
            "--outbox",
            "out",
            "--channels",
            "channels.json",
            "--now",
            now,
        ],
    )
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The journal of a mailing as (recipient, status, reason).
fn journal(dir: &Path, mailing_id: &str) -> Vec<(String, String, String)> {
    let output = campaign(
        dir,
        &["--db", "journal.db", "journal", "--mailing-id", mailing_id],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = |k: &str| row[k].as_str().unwrap_or_default().to_owned();
            (text("recipient_id"), text("status"), text("reason"))
        })
        .collect()
}

fn to_anna(rcpt_to: &[String]) -> bool {
    rcpt_to.iter().any(|r| r.contains("anna@example.com"))
}

/// A message's header, unfolded.
fn header(data: &str, name: &str) -> Option<String> {
    let unfolded = data.replace("\r\n ", " ").replace("\r\n\t", " ");
    let head = unfolded.split("\r\n\r\n").next()?;
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
}

/// The decoded base64 parts of a message (its text and HTML).
fn parts(data: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for piece in data
        .split("Content-Transfer-Encoding: base64\r\n\r\n")
        .skip(1)
    {
        let body: String = piece
            .lines()
            .take_while(|l| !l.is_empty() && !l.starts_with("--"))
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        parts.push(String::from_utf8(bytes).unwrap());
    }
    parts
}

/// One HTTP/1.1 request on a fresh connection: status and body.
async fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `unsubscribe` example, stopped with Ctrl-C (SIGINT) when dropped.
struct Endpoint(Child);

impl Endpoint {
    async fn start(dir: &Path, port: u16) -> Endpoint {
        let child = Command::new(example_binary("unsubscribe"))
            .args([
                "--db",
                "journal.db",
                "--channels",
                "channels.json",
                "--listen",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(dir)
            .spawn()
            .unwrap();
        let endpoint = Endpoint(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
                && http(port, "GET", "/healthz", "").await == (200, "ok".into())
            {
                return endpoint;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the endpoint did not come up on {port}");
    }

    fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status()
            .unwrap();
        self.0.wait().unwrap()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_click_unsubscribe_from_a_received_email_stops_advertising_but_not_service() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("people.jsonl"), PEOPLE).unwrap();
    let smtp = SmtpServer::start(Security::Plain, ("mailer", "pw-secret")).await;
    let port = free_port();
    std::fs::write(
        dir.join("channels.json"),
        serde_json::json!({
            "email": {"smtp": {"host": "127.0.0.1", "port": smtp.port, "tls": "none",
                               "user": "mailer", "password": "env:SMTP_PASS"},
                      "from": "Shop <news@shop.example>"},
            "unsubscribe": {"url": format!("http://127.0.0.1:{port}/u/{{token}}"),
                            "mailto": "unsubscribe@shop.example"}
        })
        .to_string(),
    )
    .unwrap();
    let ads = write_mailing(dir, "ads-1", "advertising", "2026-12-01T10:00");
    let first = run(dir, &ads, "2026-12-01T10:01:00+03:00");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let received = smtp.received();
    assert_eq!(received.len(), 4);
    let anna = received.iter().find(|m| to_anna(&m.rcpt_to)).unwrap();
    let list = header(&anna.data, "List-Unsubscribe").unwrap();
    let prefix = format!("<http://127.0.0.1:{port}/u/");
    assert!(list.starts_with(&prefix), "{list}");
    let url = list[1..list.find('>').unwrap()].to_owned();
    assert!(
        list.contains(", <mailto:unsubscribe@shop.example?subject=unsubscribe-"),
        "{list}"
    );
    assert_eq!(
        header(&anna.data, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        header(&anna.data, "List-Id").as_deref(),
        Some("<ads-1.shop.example>")
    );
    let parts = parts(&anna.data);
    assert_eq!(parts.len(), 2, "text and HTML");
    assert!(
        parts[0].contains(&format!("({url})")),
        "text part: {}",
        parts[0]
    );
    assert!(
        parts[1].contains(&format!("href=\"{url}\"")),
        "html part: {}",
        parts[1]
    );

    let endpoint = Endpoint::start(dir, port).await;
    let path = &url[url.find("/u/").unwrap()..];
    let (status, page) = http(port, "GET", path, "").await;
    assert_eq!(status, 200);
    assert!(page.contains("a***@example.com"), "{page}");
    let (status, page) = http(port, "POST", path, "List-Unsubscribe=One-Click").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Ваш адрес удалён из рассылки"));
    let (status, _) = http(
        port,
        "POST",
        &format!("{path}x"),
        "List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        endpoint.stop().success(),
        "Ctrl-C ends the endpoint cleanly"
    );

    let listed = campaign(dir, &["--db", "journal.db", "unsubscribes"]);
    assert!(listed.status.success());
    let lines: Vec<serde_json::Value> = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["recipient_id"], "a");
    assert_eq!(lines[0]["mailing_id"], "ads-1");
    assert_eq!(lines[0]["channel"], "email");
    assert_eq!(lines[0]["source"], "one_click");
    let later = campaign(
        dir,
        &[
            "--db",
            "journal.db",
            "unsubscribes",
            "--since",
            "2099-01-01T00:00:00Z",
        ],
    );
    assert_eq!(stdout(&later).trim(), "");

    let ads = write_mailing(dir, "ads-2", "advertising", "2026-12-02T10:00");
    assert!(run(dir, &ads, "2026-12-02T10:01:00+03:00").status.success());
    let to: Vec<Vec<String>> = smtp
        .received()
        .into_iter()
        .skip(4)
        .map(|m| m.rcpt_to)
        .collect();
    assert_eq!(to.len(), 3);
    assert!(!to.iter().any(|rcpt| to_anna(rcpt)), "{to:?}");
    let rows = journal(dir, "ads-2");
    assert!(
        rows.contains(&("a".into(), "skipped".into(), "unsubscribed".into())),
        "{rows:?}"
    );

    let service = write_mailing(dir, "receipt", "service", "2026-12-02T11:00");
    assert!(
        run(dir, &service, "2026-12-02T11:01:00+03:00")
            .status
            .success()
    );
    let receipts: Vec<_> = smtp.received().into_iter().skip(7).collect();
    let to_anna = receipts.iter().find(|m| to_anna(&m.rcpt_to)).unwrap();
    assert_eq!(
        header(&to_anna.data, "List-Unsubscribe"),
        None,
        "service mail has no list headers"
    );

    let resubscribed = campaign(
        dir,
        &["--db", "journal.db", "resubscribe", "--recipient-id", "a"],
    );
    assert!(resubscribed.status.success());
    assert_eq!(
        stdout(&campaign(dir, &["--db", "journal.db", "unsubscribes"])).trim(),
        ""
    );
}

#[tokio::test]
async fn the_frequency_cap_holds_across_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("people.jsonl"), PEOPLE).unwrap();
    std::fs::write(
        dir.join("channels.json"),
        r#"{"frequency_cap": {"max": 1, "days": 7}}"#,
    )
    .unwrap();
    let first = write_mailing(dir, "ads-1", "advertising", "2026-12-01T10:00");
    let output = run(dir, &first, "2026-12-01T10:01:00+03:00");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let second = write_mailing(dir, "ads-2", "advertising", "2026-12-03T10:00");
    let preview = campaign(
        dir,
        &[
            "--db",
            "journal.db",
            "preview",
            "--mailing",
            &second,
            "--recipients",
            "people.jsonl",
            "--channels",
            "channels.json",
        ],
    );
    assert!(
        preview.status.success(),
        "{}",
        String::from_utf8_lossy(&preview.stderr)
    );
    assert!(
        stdout(&preview).contains("\"email\":0"),
        "{}",
        stdout(&preview)
    );
    let output = run(dir, &second, "2026-12-03T10:01:00+03:00");
    assert!(output.status.success());
    let rows = journal(dir, "ads-2");
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .all(|r| r.1 == "skipped" && r.2 == "frequency_cap"),
        "{rows:?}"
    );
    let service = write_mailing(dir, "receipt", "service", "2026-12-03T11:00");
    assert!(
        run(dir, &service, "2026-12-03T11:01:00+03:00")
            .status
            .success()
    );
    assert!(journal(dir, "receipt").iter().all(|r| r.1 == "sent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haskimails_daily_limit_is_shared_by_runs_an_hour_apart() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"ErrorCode": 0, "Message": "OK", "MessageID": "hm-1", "To": "x"}),
        ))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("people.jsonl"), PEOPLE).unwrap();
    std::fs::write(
        dir.join("channels.json"),
        serde_json::json!({
            "email": {"haskimail": {"server_token": "env:HM_TOKEN", "api_base": server.uri(), "daily_limit": 5},
                      "from": "news@shop.example"}
        })
        .to_string(),
    )
    .unwrap();
    let first = write_mailing(dir, "ads-1", "advertising", "2026-12-01T10:00");
    let output = run(dir, &first, "2026-12-01T10:01:00+03:00");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4);
    // Advertising through HaskiMail carries the list headers in its `Headers` field.
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    let names: Vec<&str> = body["Headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["Name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"]
    );
    assert_eq!(body["Headers"][2]["Value"], "<ads-1.shop.example>");
    assert!(
        body["HtmlBody"]
            .as_str()
            .unwrap()
            .contains("Отписаться от рассылки")
    );
    // Another process an hour later: one more fits in the provider's day.
    let second = write_mailing(dir, "ads-2", "advertising", "2026-12-01T11:00");
    let output = run(dir, &second, "2026-12-01T11:01:00+03:00");
    assert_eq!(
        output.status.code(),
        Some(3),
        "paused until the limit renews: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("daily limit"));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("hm-token-secret"));
    assert_eq!(server.received_requests().await.unwrap().len(), 5);
    let sent = journal(dir, "ads-2")
        .iter()
        .filter(|r| r.1 == "sent")
        .count();
    assert_eq!(sent, 1);
    // After Moscow midnight (21:00 UTC) the rest go.
    let output = run(dir, &second, "2026-12-02T00:01:00+03:00");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 8);
    assert!(journal(dir, "ads-2").iter().all(|r| r.1 == "sent"));
}
