//! A small SMTP server on loopback (RFC 5321 subset: EHLO, AUTH PLAIN and LOGIN, STARTTLS or
//! implicit TLS with a self-signed certificate, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that records
//! what it receives. Recipients starting `nobody`, `busy` or `dmarc` get 550 5.1.1, 451 4.3.0
//! or 550 5.7.26 at RCPT; `reply-452-4.2.2@…` gets exactly `452 4.2.2`.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// How the server secures connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    Plain,
    StartTls,
    Implicit,
}

/// One accepted transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Received {
    pub(crate) tls: bool,
    pub(crate) auth: Option<(String, String)>,
    pub(crate) mail_from: String,
    pub(crate) rcpt_to: Vec<String>,
    pub(crate) data: String,
    /// The name the client gave in EHLO.
    pub(crate) ehlo: String,
}

pub(crate) struct SmtpServer {
    pub(crate) port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = BufReader<Box<dyn Io>>;

fn acceptor() -> TlsAcceptor {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let chain: Vec<CertificateDer<'static>> = vec![certified.cert.der().clone()];
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

impl SmtpServer {
    /// Starts the server; `credentials` are the only ones AUTH accepts.
    pub(crate) async fn start(security: Security, credentials: (&str, &str)) -> SmtpServer {
        SmtpServer::start_on(0, security, credentials).await
    }

    /// Starts the server on `port` of the loopback (0: any free one).
    pub(crate) async fn start_on(
        port: u16,
        security: Security,
        credentials: (&str, &str),
    ) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        let credentials = (credentials.0.to_owned(), credentials.1.to_owned());
        let tls = (security != Security::Plain).then(acceptor);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let store = store.clone();
                let credentials = credentials.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let (stream, secured): (Box<dyn Io>, bool) = match (&tls, security) {
                        (Some(acceptor), Security::Implicit) => match acceptor.accept(tcp).await {
                            Ok(stream) => (Box::new(stream), true),
                            Err(_) => return,
                        },
                        _ => (Box::new(tcp), false),
                    };
                    let starttls = if security == Security::StartTls {
                        tls
                    } else {
                        None
                    };
                    session(
                        BufReader::new(stream),
                        secured,
                        starttls,
                        store,
                        credentials,
                    )
                    .await;
                });
            }
        });
        SmtpServer { port, received }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn decode(text: &str) -> String {
    String::from_utf8(BASE64.decode(text.trim()).unwrap_or_default()).unwrap_or_default()
}

async fn send(stream: &mut Stream, text: &str) -> bool {
    stream.write_all(text.as_bytes()).await.is_ok() && stream.flush().await.is_ok()
}

async fn line(stream: &mut Stream) -> Option<String> {
    let mut line = String::new();
    match stream.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

async fn session(
    mut stream: Stream,
    mut secured: bool,
    mut starttls: Option<TlsAcceptor>,
    store: Arc<Mutex<Vec<Received>>>,
    credentials: (String, String),
) {
    if !send(&mut stream, "220 localhost ESMTP test\r\n").await {
        return;
    }
    let mut current = Received::default();
    let mut authenticated: Option<(String, String)> = None;
    let mut ehlo = String::new();
    while let Some(raw) = line(&mut stream).await {
        let command = raw.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        current.ehlo.clone_from(&ehlo);
        let answer: String = if upper.starts_with("EHLO") {
            ehlo = command.get(5..).unwrap_or_default().trim().to_owned();
            current.ehlo.clone_from(&ehlo);
            let tls = if starttls.is_some() && !secured {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            format!(
                "250-localhost\r\n{tls}250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n"
            )
        } else if upper == "STARTTLS" {
            let Some(acceptor) = starttls.take() else {
                send(&mut stream, "502 5.5.1 STARTTLS not offered\r\n").await;
                continue;
            };
            if !send(&mut stream, "220 2.0.0 Ready to start TLS\r\n").await {
                return;
            }
            let Ok(tls) = acceptor.accept(stream.into_inner()).await else {
                return;
            };
            stream = BufReader::new(Box::new(tls));
            secured = true;
            // RFC 3207: the client starts over with EHLO and forgets what it knew.
            authenticated = None;
            continue;
        } else if upper.starts_with("HELO") || upper == "NOOP" || upper == "RSET" {
            if upper == "RSET" {
                current = Received::default();
            }
            "250 OK\r\n".into()
        } else if upper.starts_with("AUTH PLAIN") {
            let mut payload = command[10..].trim().to_owned();
            if payload.is_empty() {
                send(&mut stream, "334 \r\n").await;
                payload = line(&mut stream).await.unwrap_or_default();
            }
            let decoded = decode(&payload);
            let mut parts = decoded.split('\0').skip(1);
            let user = parts.next().unwrap_or_default().to_owned();
            let pass = parts.next().unwrap_or_default().to_owned();
            check(&mut authenticated, &credentials, user, pass)
        } else if upper.starts_with("AUTH LOGIN") {
            send(&mut stream, "334 VXNlcm5hbWU6\r\n").await;
            let user = line(&mut stream).await.unwrap_or_default();
            send(&mut stream, "334 UGFzc3dvcmQ6\r\n").await;
            let pass = line(&mut stream).await.unwrap_or_default();
            check(
                &mut authenticated,
                &credentials,
                decode(&user),
                decode(&pass),
            )
        } else if upper.starts_with("MAIL FROM:") {
            current = Received {
                tls: secured,
                auth: authenticated.clone(),
                mail_from: command[10..].trim().to_owned(),
                ..Received::default()
            };
            "250 2.1.0 OK\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = command[8..].trim().trim_start_matches('<').to_owned();
            if let Some(spec) = rcpt.strip_prefix("reply-") {
                // reply-<code>[-<enhanced>]@… answers exactly that.
                let spec = spec.split('@').next().unwrap_or_default();
                let (code, enhanced) = spec.split_once('-').unwrap_or((spec, ""));
                format!("{code} {enhanced} scripted reply\r\n").replace("  ", " ")
            } else if rcpt.starts_with("nobody") {
                "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown\r\n"
                    .into()
            } else if rcpt.starts_with("busy") {
                "451 4.3.0 Temporary local problem, try later\r\n".into()
            } else if rcpt.starts_with("dmarc") {
                "550 5.7.26 Unauthenticated email is not accepted from this domain\r\n".into()
            } else {
                current.rcpt_to.push(command[8..].trim().to_owned());
                "250 2.1.5 OK\r\n".into()
            }
        } else if upper == "DATA" {
            send(&mut stream, "354 End data with <CR><LF>.<CR><LF>\r\n").await;
            let mut data = String::new();
            loop {
                let Some(part) = line(&mut stream).await else {
                    return;
                };
                if part == ".\r\n" {
                    break;
                }
                // Dot-unstuffing (RFC 5321 §4.5.2).
                data.push_str(
                    part.strip_prefix('.')
                        .filter(|_| part.starts_with(".."))
                        .unwrap_or(&part),
                );
            }
            current.data = data;
            let stall = current.rcpt_to.iter().any(|r| r.contains("stall@"));
            store.lock().unwrap().push(std::mem::take(&mut current));
            if stall {
                // Took the message and never says so: the client's timeout ends it.
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                return;
            }
            "250 2.0.0 Ok: queued as 4F2A1\r\n".into()
        } else if upper == "QUIT" {
            send(&mut stream, "221 2.0.0 Bye\r\n").await;
            return;
        } else {
            "502 5.5.2 Command not recognized\r\n".into()
        };
        if !send(&mut stream, &answer).await {
            return;
        }
    }
}

fn check(
    authenticated: &mut Option<(String, String)>,
    credentials: &(String, String),
    user: String,
    pass: String,
) -> String {
    if (user.as_str(), pass.as_str()) == (credentials.0.as_str(), credentials.1.as_str()) {
        *authenticated = Some((user, pass));
        "235 2.7.0 Authentication successful\r\n".into()
    } else {
        "535 5.7.8 Authentication credentials invalid\r\n".into()
    }
}
