use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use crate::email_text::{header_value, plain_part};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rassylka_model::{Address, ChannelKind};
use sha2::{Digest, Sha256};

use crate::channel::wrong_address;
use crate::{Channel, ChannelError, Image, Message, Receipt, SmtpSettings, SmtpTls, Verification};

/// The SMTP adapter (lettre, tokio, rustls): one pooled transport per channel, plain text or
/// `multipart/alternative` text + HTML, a local image inline as `cid:image` (the HTML refers
/// to it as `<img src="cid:image">`; without HTML it is attached), the message's headers
/// (`List-Unsubscribe` …) and a `Message-ID` on the sender's domain derived from the delivery
/// key, which is also the receipt's provider id.
///
/// Replies: 4xx transient; 535/530/534 and enhanced 5.7.x (authentication, policy, DMARC)
/// configuration; 550/551/553 and 5.1.x recipient gone; other 5xx rejected. An image given by
/// URL is left to the HTML.
pub struct SmtpChannel {
    // lettre's pool spawns tokio tasks when it is created and dropped, so the transport is
    // built on first use, inside the runtime.
    builder: AsyncSmtpTransportBuilder,
    transport: tokio::sync::OnceCell<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    domain: String,
    settings: SmtpSettings,
}

impl std::fmt::Debug for SmtpChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpChannel")
            .field("settings", &self.settings)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// A domain as its A-label (punycode); an ASCII one as it is.
fn ascii_domain(domain: &str) -> String {
    if domain.is_ascii() {
        domain.to_owned()
    } else {
        idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_owned())
    }
}

/// The first `d.d.d` enhanced status code in a reply text.
fn enhanced_code(text: &str) -> Option<(u8, u16)> {
    text.split_whitespace().find_map(|word| {
        let mut parts = word.split('.');
        let class: u8 = parts.next()?.parse().ok()?;
        let subject: u16 = parts.next()?.parse().ok()?;
        let _detail: u16 = parts.next()?.parse().ok()?;
        (parts.next().is_none() && matches!(class, 2 | 4 | 5)).then_some((class, subject))
    })
}

/// Whether the connection itself could not be made (refused, no route, unknown host): then the
/// server cannot have the message.
fn nothing_was_written(error: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
                    | std::io::ErrorKind::NotFound
            ) || io.to_string().contains("failed to lookup address");
        }
        source = cause.source();
    }
    false
}

fn classify(error: lettre::transport::smtp::Error) -> ChannelError {
    let Some(code) = error.status() else {
        // No reply code: the server could not be reached or stopped talking. That is about
        // the channel, not the recipient (SPEC §7b); after the conversation began, the server
        // may have the message (SPEC §6).
        let failure = if error.is_tls() {
            ChannelError::outage("smtp: tls handshake failed (is the certificate trusted?)")
        } else if error.is_client() {
            ChannelError::configuration("smtp: the client cannot talk to this server")
        } else if nothing_was_written(&error) {
            ChannelError::outage("smtp: cannot connect to the server")
        } else if error.is_timeout() {
            ChannelError::ambiguous("smtp: the server did not answer in time").with_outage()
        } else {
            ChannelError::ambiguous("smtp: the connection failed before the server answered")
                .with_outage()
        };
        return failure.with_source(error);
    };
    let code = code.to_string();
    let text = std::error::Error::source(&error)
        .map(|s| s.to_string())
        .unwrap_or_default();
    let reason = format!("smtp: {code} {}", text.to_lowercase().trim());
    let enhanced = enhanced_code(&text);
    let result = if code.starts_with('4') {
        ChannelError::transient(reason)
    } else if matches!(code.as_str(), "530" | "534" | "535" | "538")
        || enhanced.is_some_and(|(_, subject)| subject == 7)
    {
        ChannelError::configuration(reason)
    } else if enhanced.is_some_and(|(_, subject)| subject == 1)
        || (enhanced.is_none() && matches!(code.as_str(), "550" | "551" | "553"))
    {
        ChannelError::recipient_gone(reason)
    } else {
        ChannelError::rejected(reason)
    };
    result.with_provider_code(code).with_source(error)
}

impl Drop for SmtpChannel {
    fn drop(&mut self) {
        // Dropping the pool outside a runtime would panic; leaking it there is the lesser harm
        // (the process is usually exiting).
        let outside_runtime = tokio::runtime::Handle::try_current().is_err();
        match self.transport.take() {
            Some(transport) if outside_runtime => std::mem::forget(transport),
            _ => {}
        }
    }
}

impl SmtpChannel {
    async fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.transport
            .get_or_init(|| async { self.builder.clone().build() })
            .await
    }

    /// A channel for the server in `settings`, sending as `from` (`"Name <address>"` or an
    /// address). The password must already be resolved. No connection is made until the first
    /// send or [`Channel::verify`].
    ///
    /// # Errors
    /// A configuration error when `from` is not a mailbox or the TLS settings are invalid.
    pub fn new(settings: SmtpSettings, from: &str) -> Result<Self, ChannelError> {
        let from: Mailbox = from.parse().map_err(|e| {
            ChannelError::configuration(format!("smtp: invalid from address `{from}`"))
                .with_source(e)
        })?;
        let domain = from.email.domain().to_owned();
        let tls_parameters = || {
            TlsParameters::builder(settings.host.clone())
                .dangerous_accept_invalid_certs(settings.accept_invalid_certs)
                .build()
                .map_err(|e| {
                    ChannelError::configuration("smtp: invalid tls settings").with_source(e)
                })
        };
        let (tls, default_port) = match settings.tls {
            SmtpTls::None => (Tls::None, 25),
            SmtpTls::Starttls => (Tls::Required(tls_parameters()?), 587),
            SmtpTls::Tls => (Tls::Wrapper(tls_parameters()?), 465),
            SmtpTls::Opportunistic => (Tls::Opportunistic(tls_parameters()?), 587),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
                .port(settings.port.unwrap_or(default_port))
                .tls(tls)
                .timeout(Some(Duration::from_secs(settings.timeout_secs)))
                .hello_name(ClientId::Domain(
                    settings
                        .hello_name
                        .clone()
                        .unwrap_or_else(|| ascii_domain(&domain)),
                ))
                .pool_config(PoolConfig::new().max_size(settings.pool_size.max(1)));
        if let Some(user) = &settings.user {
            let password = settings
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpChannel {
            builder,
            transport: tokio::sync::OnceCell::new(),
            from,
            domain,
            settings,
        })
    }

    async fn build(
        &self,
        to: &Address,
        message: &Message,
    ) -> Result<(lettre::Message, String), ChannelError> {
        let Address::Email(email) = to else {
            return Err(wrong_address(ChannelKind::Email, to));
        };
        // The domain as its A-label (punycode): every server takes it, with or without
        // SMTPUTF8 (SPEC §7d).
        let ascii = format!("{}@{}", email.local_part(), ascii_domain(email.domain()));
        let to: Mailbox = ascii.parse().map_err(|e| {
            ChannelError::rejected("smtp: the recipient address is not valid").with_source(e)
        })?;
        let hash: String = Sha256::digest(message.delivery_key.as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        let message_id = format!("<{hash}@{}>", self.domain);
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(header_value(message.subject.as_deref().unwrap_or_default()))
            .message_id(Some(message_id.clone()));
        for (name, value) in &message.headers {
            let name = HeaderName::new_from_ascii(name.clone()).map_err(|e| {
                ChannelError::rejected(format!("smtp: invalid header name `{name}`")).with_source(e)
            })?;
            builder = builder.raw_header(HeaderValue::new(name, header_value(value)));
        }
        let image = match &message.image {
            Some(image @ Image::Path(path)) => {
                let bytes = tokio::fs::read(path).await.map_err(|e| {
                    ChannelError::rejected("smtp: cannot read the image file").with_source(e)
                })?;
                let content_type = ContentType::parse(image.mime_type())
                    .map_err(|e| ChannelError::rejected("smtp: bad image type").with_source(e))?;
                Some((image.file_name(), bytes, content_type))
            }
            _ => None,
        };
        let text = plain_part(&message.text, message.html.as_deref());
        let plain = SinglePart::plain(text.clone());
        let built = match (&message.html, image) {
            (None, None) => builder.singlepart(plain),
            (Some(html), None) => {
                builder.multipart(MultiPart::alternative_plain_html(text, html.clone()))
            }
            (Some(html), Some((name, bytes, content_type))) => builder.multipart(
                MultiPart::alternative().singlepart(plain).multipart(
                    MultiPart::related()
                        .singlepart(SinglePart::html(html.clone()))
                        .singlepart(
                            Attachment::new_inline_with_name("image".to_owned(), name)
                                .body(bytes, content_type),
                        ),
                ),
            ),
            (None, Some((name, bytes, content_type))) => builder.multipart(
                MultiPart::mixed()
                    .singlepart(plain)
                    .singlepart(Attachment::new(name).body(bytes, content_type)),
            ),
        };
        let built = built
            .map_err(|e| ChannelError::rejected("smtp: cannot build the message").with_source(e))?;
        Ok((built, message_id))
    }
}

#[async_trait]
impl Channel for SmtpChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    async fn send(&self, to: &Address, message: &Message) -> Result<Receipt, ChannelError> {
        let (email, message_id) = self.build(to, message).await?;
        self.transport().await.send(email).await.map_err(classify)?;
        Ok(Receipt::new(message_id))
    }

    async fn verify(&self) -> Result<Verification, ChannelError> {
        match self.transport().await.test_connection().await {
            Ok(true) => Ok(Verification {
                account: Some(self.from.to_string()),
                balance: None,
            }),
            Ok(false) => Err(ChannelError::configuration(
                "smtp: the server did not accept a test connection",
            )),
            Err(error) => Err(classify(error)),
        }
    }
}
