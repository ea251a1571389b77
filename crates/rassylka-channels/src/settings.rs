//! The channels file (SPEC §8): which adapters to use and their settings. Every struct
//! deserialises from the JSON shape shown there; secrets may be written `"env:NAME"`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rassylka_model::{ChannelKind, Money};
use serde::Deserialize;

use crate::{Channel, ChannelError, Secret};

/// An environment lookup: `|name| std::env::var(name).ok()` for the process, a map in tests.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn telegram_base() -> String {
    "https://api.telegram.org".to_owned()
}
fn vk_base() -> String {
    "https://api.vk.com".to_owned()
}
fn vk_version() -> String {
    "5.199".to_owned()
}
fn smsru_base() -> String {
    "https://sms.ru".to_owned()
}
fn smsc_base() -> String {
    "https://smsc.ru".to_owned()
}
fn moscow() -> chrono_tz::Tz {
    chrono_tz::Europe::Moscow
}

fn haskimail_base() -> String {
    "https://api.haskimail.ru".to_owned()
}
fn haskimail_header() -> String {
    "X-Haskimail-Server-Token".to_owned()
}
fn push_path() -> String {
    "/marketing/pushmessage".to_owned()
}
fn push_verify_path() -> String {
    "/templates".to_owned()
}
fn thirty() -> u32 {
    30
}
fn twenty() -> u32 {
    20
}
fn ten() -> u32 {
    10
}
fn one() -> u32 {
    1
}
fn timeout() -> u64 {
    30
}
fn smtp_timeout() -> u64 {
    60
}
fn pool_size() -> u32 {
    10
}

/// Telegram bot settings: `{"bot_token": "...", "api_base": "...", "rate_per_sec": 30}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {
    /// The bot token from BotFather.
    pub bot_token: Secret,
    /// Base URL of the Bot API (default `https://api.telegram.org`).
    #[serde(default = "telegram_base")]
    pub api_base: String,
    /// Messages per second for the whole bot (default 30; 0 = unlimited).
    #[serde(default = "thirty")]
    pub rate_per_sec: u32,
    /// Messages per second to one chat (default 1; 0 = unlimited).
    #[serde(default = "one")]
    pub per_chat_per_sec: u32,
    /// Seconds before a request is given up (default 30).
    #[serde(default = "timeout")]
    pub timeout_secs: u64,
}

impl TelegramSettings {
    /// Settings with the defaults and `bot_token`.
    pub fn new(bot_token: impl Into<Secret>) -> Self {
        TelegramSettings {
            bot_token: bot_token.into(),
            api_base: telegram_base(),
            rate_per_sec: thirty(),
            per_chat_per_sec: one(),
            timeout_secs: timeout(),
        }
    }

    fn resolve(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
        Ok(TelegramSettings {
            bot_token: self.bot_token.resolve(env)?,
            ..self.clone()
        })
    }
}

/// VK community bot settings: `{"token": "...", "api_base": "...", "rate_per_sec": 20}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VkSettings {
    /// The community access token (rights `messages`, `photos`).
    pub token: Secret,
    /// Base URL (default `https://api.vk.com`); methods are under `/method/`.
    #[serde(default = "vk_base")]
    pub api_base: String,
    /// API version sent as `v` (default `5.199`).
    #[serde(default = "vk_version")]
    pub api_version: String,
    /// Requests per second for the token (default 20; 0 = unlimited).
    #[serde(default = "twenty")]
    pub rate_per_sec: u32,
    /// The `intent` of `messages.send` (`promo_newsletter`, `non_promo_newsletter` …); not
    /// sent when absent.
    #[serde(default)]
    pub intent: Option<String>,
    /// `subscribe_id` for newsletter intents.
    #[serde(default)]
    pub subscribe_id: Option<u32>,
    /// Seconds before a request is given up (default 30).
    #[serde(default = "timeout")]
    pub timeout_secs: u64,
}

impl VkSettings {
    /// Settings with the defaults and `token`.
    pub fn new(token: impl Into<Secret>) -> Self {
        VkSettings {
            token: token.into(),
            api_base: vk_base(),
            api_version: vk_version(),
            rate_per_sec: twenty(),
            intent: None,
            subscribe_id: None,
            timeout_secs: timeout(),
        }
    }

    fn resolve(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
        Ok(VkSettings {
            token: self.token.resolve(env)?,
            ..self.clone()
        })
    }
}

/// SMS gateway settings, chosen by `"provider"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum SmsSettings {
    /// SMS.ru.
    Smsru(SmsRuSettings),
    /// SMSC.ru.
    Smsc(SmscSettings),
}

impl SmsSettings {
    fn resolve(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
        Ok(match self {
            SmsSettings::Smsru(s) => SmsSettings::Smsru(SmsRuSettings {
                api_id: s.api_id.resolve(env)?,
                ..s.clone()
            }),
            SmsSettings::Smsc(s) => SmsSettings::Smsc(SmscSettings {
                password: s.password.as_ref().map(|p| p.resolve(env)).transpose()?,
                api_key: s.api_key.as_ref().map(|p| p.resolve(env)).transpose()?,
                ..s.clone()
            }),
        })
    }
}

/// SMS.ru: `{"provider": "smsru", "api_id": "...", "sender": "MYSHOP", "api_base": "..."}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsRuSettings {
    /// The `api_id` key.
    pub api_id: Secret,
    /// The approved alpha name; the account's default when absent.
    #[serde(default)]
    pub sender: Option<String>,
    /// Base URL (default `https://sms.ru`).
    #[serde(default = "smsru_base")]
    pub api_base: String,
    /// Sends with `test=1`: SMS.ru checks and bills nothing.
    #[serde(default)]
    pub test: bool,
    /// Requests per second (default 10; 0 = unlimited).
    #[serde(default = "ten")]
    pub rate_per_sec: u32,
    /// Seconds before a request is given up (default 30).
    #[serde(default = "timeout")]
    pub timeout_secs: u64,
}

/// SMSC.ru: `{"provider": "smsc", "login": "...", "password": "...", "sender": "...", "api_base": "..."}`
/// (or `"api_key"` instead of login and password).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmscSettings {
    /// The account login.
    #[serde(default)]
    pub login: Option<String>,
    /// The password (`psw`).
    #[serde(default, alias = "psw")]
    pub password: Option<Secret>,
    /// An API key, instead of login and password.
    #[serde(default, alias = "apikey")]
    pub api_key: Option<Secret>,
    /// The approved alpha name.
    #[serde(default)]
    pub sender: Option<String>,
    /// Base URL (default `https://smsc.ru`).
    #[serde(default = "smsc_base")]
    pub api_base: String,
    /// Requests per second (default 10; 0 = unlimited).
    #[serde(default = "ten")]
    pub rate_per_sec: u32,
    /// Seconds before a request is given up (default 30).
    #[serde(default = "timeout")]
    pub timeout_secs: u64,
}

/// E-mail settings: `{"smtp": {...}, "from": "Shop <news@shop.example>"}` or
/// `{"haskimail": {...}, "from": ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The `From` mailbox, `"Name <address>"` or a bare address.
    #[serde(default)]
    pub from: Option<String>,
    /// Send through an SMTP server.
    #[serde(default)]
    pub smtp: Option<SmtpSettings>,
    /// Send through HaskiMail.
    #[serde(default)]
    pub haskimail: Option<HaskiMailSettings>,
}

impl EmailSettings {
    fn resolve(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
        let smtp = match &self.smtp {
            Some(s) => Some(SmtpSettings {
                password: s.password.as_ref().map(|p| p.resolve(env)).transpose()?,
                ..s.clone()
            }),
            None => None,
        };
        let haskimail = match &self.haskimail {
            Some(h) => Some(HaskiMailSettings {
                server_token: h.server_token.resolve(env)?,
                ..h.clone()
            }),
            None => None,
        };
        Ok(EmailSettings {
            from: self.from.clone(),
            smtp,
            haskimail,
        })
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (local relays and tests); default port 25.
    None,
    /// STARTTLS required; default port 587.
    #[default]
    Starttls,
    /// Implicit TLS from the first byte (SMTPS); default port 465.
    #[serde(alias = "ssl", alias = "smtps")]
    Tls,
    /// STARTTLS when offered, plain otherwise (downgradable; discouraged); default port 587.
    Opportunistic,
}

/// SMTP server settings: `{"host": ..., "port": 2525, "tls": "none", "user": ..., "password": ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// Server host name.
    pub host: String,
    /// Port; by default 25, 587 or 465 after `tls`.
    #[serde(default)]
    pub port: Option<u16>,
    /// TLS mode (default `starttls`).
    #[serde(default)]
    pub tls: SmtpTls,
    /// Login; no AUTH when absent.
    #[serde(default)]
    pub user: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Pooled connections (default 10).
    #[serde(default = "pool_size")]
    pub pool_size: u32,
    /// Seconds per SMTP command (default 60).
    #[serde(default = "smtp_timeout")]
    pub timeout_secs: u64,
    /// Accepts self-signed certificates (test servers only).
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// The name given in EHLO (default: the sender's domain, which receiving servers check
    /// against their records better than a machine's short host name).
    #[serde(default)]
    pub hello_name: Option<String>,
}

/// HaskiMail settings: `{"server_token": ..., "from": ..., "from_name": ..., "daily_limit": N, ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaskiMailSettings {
    /// The server token («API key»).
    #[serde(alias = "api_key", alias = "token")]
    pub server_token: Secret,
    /// The «client ID» of the account screen; the send API does not use it, it is kept for
    /// display.
    #[serde(default)]
    pub client_id: Option<String>,
    /// From address; overrides the e-mail `from`.
    #[serde(default)]
    pub from: Option<String>,
    /// Display name for the from address.
    #[serde(default)]
    pub from_name: Option<String>,
    /// Base URL (default `https://api.haskimail.ru`).
    #[serde(default = "haskimail_base")]
    pub api_base: String,
    /// The token header (default `X-Haskimail-Server-Token`; older SDKs use `X-Haski-Server-Token`).
    #[serde(default = "haskimail_header")]
    pub token_header: String,
    /// `MessageStream`; marketing mail must name a broadcast stream.
    #[serde(default)]
    pub message_stream: Option<String>,
    /// Messages per day the channel lets through.
    #[serde(default)]
    pub daily_limit: Option<u64>,
    /// Messages per calendar month the channel lets through.
    #[serde(default)]
    pub monthly_limit: Option<u64>,
    /// The zone of the provider's day and month for the limits (default `Europe/Moscow`).
    #[serde(default = "moscow")]
    pub limits_tz: chrono_tz::Tz,
    /// Seconds before a request is given up (default 30).
    #[serde(default = "timeout")]
    pub timeout_secs: u64,
}

/// Wallet push settings: `{"provider": "http", "api_base": ..., "token": ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum PushSettings {
    /// A pass platform with an OSMI-like HTTP API.
    Http(HttpPushSettings),
}

impl PushSettings {
    fn resolve(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
        Ok(match self {
            PushSettings::Http(h) => PushSettings::Http(HttpPushSettings {
                token: h.token.resolve(env)?,
                ..h.clone()
            }),
        })
    }
}

/// A pass platform reached over HTTP with a bearer token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpPushSettings {
    /// Base URL of the platform, e.g. `https://api.osmicards.com/v2t`.
    pub api_base: String,
    /// Bearer token.
    pub token: Secret,
    /// Path of the push call (default `/marketing/pushmessage`).
    #[serde(default = "push_path")]
    pub push_path: String,
    /// Path of a cheap authenticated GET for verification (default `/templates`).
    #[serde(default = "push_verify_path")]
    pub verify_path: String,
    /// Requests per second (default 10; 0 = unlimited).
    #[serde(default = "ten")]
    pub rate_per_sec: u32,
    /// Seconds before a request is given up (default 30).
    #[serde(default = "timeout")]
    pub timeout_secs: u64,
}

/// The whole channels file. A channel it does not name goes to the outbox (the dispatcher's
/// rule); `tariffs` and `concurrency` are read for the dispatcher.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsFile {
    /// Telegram.
    #[serde(default)]
    pub telegram: Option<TelegramSettings>,
    /// VK.
    #[serde(default)]
    pub vk: Option<VkSettings>,
    /// SMS.
    #[serde(default)]
    pub sms: Option<SmsSettings>,
    /// E-mail.
    #[serde(default)]
    pub email: Option<EmailSettings>,
    /// Wallet push.
    #[serde(default)]
    pub push: Option<PushSettings>,
    /// Price per SMS segment or per message of the other channels.
    #[serde(default)]
    pub tariffs: BTreeMap<ChannelKind, Money>,
    /// How many sends the dispatcher keeps in flight.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// How advertising e-mail offers an unsubscribe (read by the dispatcher).
    #[serde(default)]
    pub unsubscribe: Option<crate::UnsubscribeSettings>,
    /// At most so many advertising occurrences per recipient (read by the dispatcher).
    #[serde(default)]
    pub frequency_cap: Option<crate::FrequencyCap>,
}

impl ChannelsFile {
    /// Parses a channels file.
    ///
    /// # Errors
    /// A configuration error naming the JSON problem.
    pub fn from_json(text: &str) -> Result<Self, ChannelError> {
        let mut reader = serde_json::Deserializer::from_str(text);
        let file: ChannelsFile = serde_path_to_error::deserialize(&mut reader).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            ChannelError::configuration(format!("invalid channels file: {at}{inner}"))
        })?;
        if let Some(cap) = &file.frequency_cap {
            for (name, value) in [("max", cap.max), ("days", cap.days)] {
                if value == 0 {
                    return Err(ChannelError::configuration(format!(
                        "invalid channels file: frequency_cap.{name}: must be at least 1"
                    )));
                }
            }
        }
        if let Some(url) = file.unsubscribe.as_ref().and_then(|u| u.url.as_deref())
            && !url.contains("{token}")
        {
            return Err(ChannelError::configuration(
                "invalid channels file: unsubscribe.url: must contain `{token}`",
            ));
        }
        Ok(file)
    }

    /// The same settings with every `"env:NAME"` secret replaced by `env(NAME)`.
    ///
    /// # Errors
    /// A configuration error naming the first variable `env` does not know.
    pub fn resolve_secrets(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
        Ok(ChannelsFile {
            telegram: self.telegram.as_ref().map(|s| s.resolve(env)).transpose()?,
            vk: self.vk.as_ref().map(|s| s.resolve(env)).transpose()?,
            sms: self.sms.as_ref().map(|s| s.resolve(env)).transpose()?,
            email: self.email.as_ref().map(|s| s.resolve(env)).transpose()?,
            push: self.push.as_ref().map(|s| s.resolve(env)).transpose()?,
            tariffs: self.tariffs.clone(),
            concurrency: self.concurrency,
            unsubscribe: self
                .unsubscribe
                .as_ref()
                .map(|u| u.resolve(env))
                .transpose()?,
            frequency_cap: self.frequency_cap,
        })
    }

    /// Resolves the secrets and builds an adapter for every channel the file names.
    ///
    /// # Errors
    /// A configuration error when a secret cannot be resolved, settings are inconsistent
    /// (e-mail with neither or both of `smtp` and `haskimail`), or the adapter's cargo feature
    /// is off.
    pub fn build(
        &self,
        env: EnvLookup<'_>,
    ) -> Result<BTreeMap<ChannelKind, Arc<dyn Channel>>, ChannelError> {
        let resolved = self.resolve_secrets(env)?;
        let mut channels: BTreeMap<ChannelKind, Arc<dyn Channel>> = BTreeMap::new();
        let mut add = |kind: ChannelKind, channel: Arc<dyn Channel>, secrets: Vec<&Secret>| {
            let secrets = secrets.iter().map(|s| s.expose().to_owned()).collect();
            let redacting = crate::redact::Redacting {
                inner: channel,
                secrets,
            };
            channels.insert(kind, Arc::new(redacting) as Arc<dyn Channel>);
        };
        if let Some(settings) = resolved.telegram {
            let secrets = [settings.bot_token.clone()];
            add(
                ChannelKind::Telegram,
                build::telegram(settings)?,
                secrets.iter().collect(),
            );
        }
        if let Some(settings) = resolved.vk {
            let secrets = [settings.token.clone()];
            add(
                ChannelKind::Vk,
                build::vk(settings)?,
                secrets.iter().collect(),
            );
        }
        if let Some(settings) = resolved.sms {
            let secrets: Vec<Secret> = match &settings {
                SmsSettings::Smsru(s) => vec![s.api_id.clone()],
                SmsSettings::Smsc(s) => s.password.iter().chain(&s.api_key).cloned().collect(),
            };
            add(
                ChannelKind::Sms,
                build::sms(settings)?,
                secrets.iter().collect(),
            );
        }
        if let Some(settings) = resolved.email {
            let secrets: Vec<Secret> = settings
                .smtp
                .iter()
                .filter_map(|s| s.password.clone())
                .chain(settings.haskimail.iter().map(|h| h.server_token.clone()))
                .collect();
            add(
                ChannelKind::Email,
                build::email(settings)?,
                secrets.iter().collect(),
            );
        }
        if let Some(settings) = resolved.push {
            let secrets: Vec<Secret> = match &settings {
                PushSettings::Http(h) => vec![h.token.clone()],
            };
            add(
                ChannelKind::Push,
                build::push(settings)?,
                secrets.iter().collect(),
            );
        }
        Ok(channels)
    }
}

#[allow(unused_variables)]
mod build {
    use super::*;

    #[allow(dead_code)]
    fn missing(feature: &str) -> ChannelError {
        ChannelError::configuration(format!(
            "the `{feature}` feature of rassylka-channels is not enabled"
        ))
    }

    pub(super) fn telegram(settings: TelegramSettings) -> Result<Arc<dyn Channel>, ChannelError> {
        #[cfg(feature = "telegram")]
        return Ok(Arc::new(crate::TelegramChannel::new(settings)?));
        #[cfg(not(feature = "telegram"))]
        Err(missing("telegram"))
    }

    pub(super) fn vk(settings: VkSettings) -> Result<Arc<dyn Channel>, ChannelError> {
        #[cfg(feature = "vk")]
        return Ok(Arc::new(crate::VkChannel::new(settings)?));
        #[cfg(not(feature = "vk"))]
        Err(missing("vk"))
    }

    pub(super) fn sms(settings: SmsSettings) -> Result<Arc<dyn Channel>, ChannelError> {
        #[cfg(feature = "sms")]
        return Ok(Arc::new(crate::SmsChannel::new(settings)?));
        #[cfg(not(feature = "sms"))]
        Err(missing("sms"))
    }

    pub(super) fn push(settings: PushSettings) -> Result<Arc<dyn Channel>, ChannelError> {
        #[cfg(feature = "push")]
        return Ok(Arc::new(crate::PushChannel::new(settings)?));
        #[cfg(not(feature = "push"))]
        Err(missing("push"))
    }

    pub(super) fn email(settings: EmailSettings) -> Result<Arc<dyn Channel>, ChannelError> {
        match (settings.smtp, settings.haskimail) {
            (Some(smtp), None) => {
                let Some(from) = settings.from.as_deref().filter(|f| !f.trim().is_empty()) else {
                    return Err(ChannelError::configuration(
                        "email.from: required for smtp: the sender, e.g. \"Shop <news@shop.example>\"",
                    ));
                };
                #[cfg(feature = "smtp")]
                return Ok(Arc::new(crate::SmtpChannel::new(smtp, from)?));
                #[cfg(not(feature = "smtp"))]
                Err(missing("smtp"))
            }
            (None, Some(haski)) => {
                #[cfg(feature = "haskimail")]
                return Ok(Arc::new(crate::HaskiMailChannel::new(
                    haski,
                    settings.from.as_deref(),
                )?));
                #[cfg(not(feature = "haskimail"))]
                Err(missing("haskimail"))
            }
            _ => Err(ChannelError::configuration(
                "email settings need exactly one of `smtp` and `haskimail`",
            )),
        }
    }
}
