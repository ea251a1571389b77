use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::ChannelError;

/// A password, API key or bot token. Its `Debug` and `Display` print `<redacted>`, and it is
/// not serialisable, so settings can be logged without leaking it.
///
/// In a channels file a secret may be written `"env:NAME"`; [`Secret::resolve`] then reads it
/// from the environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call it only where the provider needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The environment variable this secret refers to, when written `"env:NAME"`.
    pub fn env_name(&self) -> Option<&str> {
        self.0.strip_prefix("env:")
    }

    /// Replaces an `"env:NAME"` reference by the value `lookup(NAME)` gives; any other value
    /// is kept as written. Pass `|name| std::env::var(name).ok()` for the process environment.
    ///
    /// # Errors
    /// A configuration error naming the variable (never its value) when `lookup` finds
    /// nothing or an empty value.
    pub fn resolve(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Secret, ChannelError> {
        match self.env_name() {
            None => Ok(self.clone()),
            Some(name) => match lookup(name) {
                Some(value) if !value.is_empty() => Ok(Secret(value)),
                _ => Err(ChannelError::configuration(format!(
                    "environment variable `{name}` is not set"
                ))),
            },
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.env_name() {
            Some(name) => write!(f, "Secret(env:{name})"),
            None => f.write_str("Secret(<redacted>)"),
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}
