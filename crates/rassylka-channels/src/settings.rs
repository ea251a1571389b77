//! The channels file (SPEC §8): which adapters to use and their settings. Every struct
//! deserialises from the JSON shape shown there; secrets may be written `"env:NAME"`.

use serde::Deserialize;

use crate::{ChannelError, Secret};

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

    pub(crate) fn resolve(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
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

    pub(crate) fn resolve(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
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
    pub(crate) fn resolve(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
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
    pub(crate) fn resolve(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
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
    pub(crate) fn resolve(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
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
