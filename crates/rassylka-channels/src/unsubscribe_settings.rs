//! The channels file's `"unsubscribe"` and `"frequency_cap"` (SPEC §7c): how advertising
//! e-mail offers an unsubscribe, and how often one recipient may get advertising.

use serde::Deserialize;

use crate::{ChannelError, EnvLookup, Secret};

/// `{"url": "https://shop.example/u/{token}", "mailto": "unsubscribe@shop.example",
/// "footer": "…", "secret": "env:NAME", "previous_secrets": ["env:OLD"]}`; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeSettings {
    /// The link, with `{token}` where the signed token goes (default
    /// `http://localhost:8080/u/{token}`, the `unsubscribe` example's address).
    #[serde(default)]
    pub url: Option<String>,
    /// An address for `List-Unsubscribe: <mailto:…>`, beside the URL.
    #[serde(default)]
    pub mailto: Option<String>,
    /// The footer's text before the link (default «Вы получили это письмо, потому что
    /// подписаны на рассылку. Отписаться:»).
    #[serde(default)]
    pub footer: Option<String>,
    /// The signing secret; without one the journal generates and keeps one.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Earlier secrets whose tokens are still honoured (key rotation).
    #[serde(default)]
    pub previous_secrets: Vec<Secret>,
}

/// `{"max": 2, "days": 7}`: at most `max` advertising occurrences per recipient in any `days`
/// rolling days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    /// Occurrences allowed in the window (at least 1).
    pub max: u32,
    /// The window's length in days (at least 1).
    pub days: u32,
}

impl UnsubscribeSettings {
    /// The same settings with `"env:NAME"` secrets read from `env`.
    ///
    /// # Errors
    /// A configuration error naming the first variable `env` does not know.
    pub fn resolve(&self, env: EnvLookup<'_>) -> Result<Self, ChannelError> {
        Ok(UnsubscribeSettings {
            secret: self.secret.as_ref().map(|s| s.resolve(env)).transpose()?,
            previous_secrets: self
                .previous_secrets
                .iter()
                .map(|s| s.resolve(env))
                .collect::<Result<_, _>>()?,
            ..self.clone()
        })
    }
}
