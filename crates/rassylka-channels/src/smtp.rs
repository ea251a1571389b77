use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rassylka_model::{Address, ChannelKind};

use crate::{Channel, ChannelError, Message, Receipt, SmtpSettings, SmtpTls, Verification};

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
                        .unwrap_or_else(|| crate::compose::ascii_domain(&domain)),
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
        crate::compose::compose(&self.from, &self.domain, to, message).await
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
