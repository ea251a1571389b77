//! How a mailing travels: the [`Channel`] trait, its classified [`ChannelError`], and the
//! adapters for e-mail (SMTP, HaskiMail), Telegram, VK, SMS (SMS.ru, SMSC.ru), Wallet push, the
//! file outbox and an in-memory channel for tests.
//!
//! The dispatcher renders a [`Message`] per recipient and channel and hands it to
//! [`Channel::send`] with the recipient's [`Address`](rassylka_model::Address). A failure comes
//! back with an [`ErrorClass`] the dispatcher acts on: retry later (transient, maybe with a
//! retry-after), drop the contact (recipient gone), journal the reason (rejected), pause until
//! the limit renews (quota) or stop the mailing (configuration). Channels never retry by
//! themselves; when a provider throttles, the channel pauses its whole account for the
//! retry-after so the dispatcher's retry and every other send wait for it.
//!
//! Secrets in settings are [`Secret`]s: redacted in `Debug`/`Display`, never serialised,
//! written `"env:NAME"` in a channels file and resolved with a lookup closure. Errors of the
//! HTTP client are stripped of their URL, since Telegram puts the bot token in the path.
//!
//! ```
//! use rassylka_channels::{Channel, FileOutbox, Message};
//! use rassylka_model::{Address, ChannelKind, PhoneNumber};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("rassylka-doc-{}", std::process::id()));
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let outbox = FileOutbox::open(&dir, ChannelKind::Sms)?;
//!     let to = Address::Phone(PhoneNumber::parse("8 916 123-45-67")?);
//!     let message = Message::new("m-1/2027-01-01/c-1001/sms", "Анна, дарим 300 бонусов!");
//!     assert_eq!(outbox.estimate(&message).units, 1);
//!     outbox.send(&to, &message).await?;
//!     // The same delivery key is not written twice, even after a restart.
//!     let reopened = FileOutbox::open(&dir, ChannelKind::Sms)?;
//!     reopened.send(&to, &message).await?;
//!     assert_eq!(reopened.records()?.len(), 1);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! Every adapter is behind its own feature; all are on by default.
//!
//! | feature | adapter | provider |
//! |---|---|---|
//! | `smtp` | `SmtpChannel` | any SMTP server, through lettre (pooled, rustls) |
//! | `haskimail` | `HaskiMailChannel` | HaskiMail (Postmark-compatible HTTP API) |
//! | `telegram` | `TelegramChannel` | Telegram Bot API |
//! | `vk` | `VkChannel` | VK community bot, `messages.send` v5.199 |
//! | `sms` | `SmsChannel` | SMS.ru and SMSC.ru |
//! | `push` | `PushChannel` | Wallet card push through an HTTP pass platform |
//! | `outbox` | [`FileOutbox`] | files: `DIR/<channel>.jsonl` and `.eml` |
//!
//! [`MemoryChannel`], [`sms_segments`] and the settings model are always there.
//!
//! # Decisions
//!
//! - **Retries belong to the dispatcher.** A channel answers one attempt. The exceptions are
//!   protocol steps, not retries: a Telegram group migrated to a supergroup is sent to its new
//!   id once.
//! - **Throttling pauses the account.** A 429 / VK error 6 / SMSC error 4 pauses every later send
//!   of that channel instance for the retry-after, and the error carries the same retry-after.
//!   One channel instance is one provider account: share it (`Arc<dyn Channel>`) rather than
//!   building two for one token, or their limiters will not know about each other.
//! - **Limits**: governor limiters, evenly spaced (burst 1), so no one-second window holds
//!   more than the rate: Telegram 30/s per bot and 1/s per chat, VK 20/s per token, SMS and
//!   push 10/s; all configurable, 0 = unlimited.
//! - **Classes where the reference hesitates**: VK 14 (captcha) is configuration; VK 9 (flood
//!   control) is transient with a one-hour retry-after and does not pause the token; SMS.ru
//!   230/232 are transient until tomorrow and 231 for a minute (not «recipient gone», so the
//!   contact survives); insufficient balance and daily limits (SMS.ru 201/206, SMSC 3,
//!   HaskiMail 405, VK 29/944) are quota; SMTP 5.7.x is configuration, 5.1.x and a bare
//!   550/551/553 recipient gone, other 5xx rejected.
//! - **Idempotency**: VK `random_id` is a positive `i32` from SHA-256 of the delivery key; the
//!   outbox skips keys it holds; the SMTP `Message-ID` is derived from the key, so a resend
//!   can be recognised downstream. Telegram, SMS and HaskiMail take no key.
//! - **Lengths**: Telegram counts UTF-16 units of the text without tags (4096 text, 1024
//!   caption); VK 9000 characters. Longer texts are rejected before any request.
//! - **Wall clock**: only the outbox's `time`, the rate limiters, and HaskiMail's default date
//!   source for its daily/monthly counters (replaceable) read it.

mod channel;
mod channels_file;
#[cfg(any(feature = "smtp", feature = "outbox"))]
mod compose;
#[cfg(any(feature = "smtp", feature = "outbox"))]
mod email_text;
mod error;
mod gate;
#[cfg(any(feature = "smtp", feature = "outbox", feature = "haskimail"))]
mod headers;
#[cfg(feature = "http")]
mod http;
mod memory;
mod message;
mod redact;
mod secret;
mod segments;
mod settings;
mod unsubscribe_settings;

#[cfg(feature = "haskimail")]
mod haskimail;
#[cfg(feature = "outbox")]
mod outbox;
#[cfg(feature = "push")]
mod push;
#[cfg(feature = "sms")]
mod sms;
#[cfg(feature = "smtp")]
mod smtp;
#[cfg(feature = "telegram")]
mod telegram;
#[cfg(feature = "vk")]
mod vk;

pub use channel::{AccountLimits, Channel};
pub use channels_file::ChannelsFile;
pub use error::{ChannelError, ErrorClass};
pub use memory::{MemoryChannel, SentMessage};
pub use message::{CostEstimate, Image, Message, Receipt, Verification};
pub use redact::redact;
pub use secret::Secret;
pub use segments::{SmsEncoding, SmsSegments, sms_segments};
pub use settings::*;
pub use unsubscribe_settings::{FrequencyCap, UnsubscribeSettings};

#[cfg(feature = "haskimail")]
pub use haskimail::{DateSource, HaskiMailChannel};
#[cfg(feature = "outbox")]
pub use outbox::{FileOutbox, OutboxRecord};
#[cfg(feature = "push")]
pub use push::PushChannel;
#[cfg(feature = "sms")]
pub use sms::SmsChannel;
#[cfg(feature = "smtp")]
pub use smtp::SmtpChannel;
#[cfg(feature = "telegram")]
pub use telegram::TelegramChannel;
#[cfg(feature = "vk")]
pub use vk::{VkChannel, vk_random_id};
