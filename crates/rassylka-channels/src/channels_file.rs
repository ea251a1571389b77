//! The whole channels file: every channel's settings, tariffs, concurrency, and the
//! dispatcher's consent settings; read with JSON paths, secrets resolved, adapters built.

use std::collections::BTreeMap;
use std::sync::Arc;

use rassylka_model::{ChannelKind, Money};
use serde::Deserialize;

use crate::settings::{
    EmailSettings, EnvLookup, PushSettings, SmsSettings, TelegramSettings, VkSettings,
};
use crate::{Channel, ChannelError, Secret};

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
        // Each adapter is wrapped so that its errors never carry its own secrets, read out
        // before its settings move into it.
        let exposed = |secrets: Vec<&Secret>| -> Vec<String> {
            secrets.iter().map(|s| s.expose().to_owned()).collect()
        };
        let mut add = |kind: ChannelKind, channel: Arc<dyn Channel>, secrets: Vec<String>| {
            let redacting = crate::redact::Redacting {
                inner: channel,
                secrets,
            };
            channels.insert(kind, Arc::new(redacting) as Arc<dyn Channel>);
        };
        if let Some(settings) = resolved.telegram {
            let secrets = exposed(vec![&settings.bot_token]);
            add(ChannelKind::Telegram, build::telegram(settings)?, secrets);
        }
        if let Some(settings) = resolved.vk {
            let secrets = exposed(vec![&settings.token]);
            add(ChannelKind::Vk, build::vk(settings)?, secrets);
        }
        if let Some(settings) = resolved.sms {
            let secrets = exposed(match &settings {
                SmsSettings::Smsru(s) => vec![&s.api_id],
                SmsSettings::Smsc(s) => s.password.iter().chain(&s.api_key).collect(),
            });
            add(ChannelKind::Sms, build::sms(settings)?, secrets);
        }
        if let Some(settings) = resolved.email {
            let secrets = exposed(
                settings
                    .smtp
                    .iter()
                    .filter_map(|s| s.password.as_ref())
                    .chain(settings.haskimail.iter().map(|h| &h.server_token))
                    .collect(),
            );
            add(ChannelKind::Email, build::email(settings)?, secrets);
        }
        if let Some(settings) = resolved.push {
            let secrets = exposed(match &settings {
                PushSettings::Http(h) => vec![&h.token],
            });
            add(ChannelKind::Push, build::push(settings)?, secrets);
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
