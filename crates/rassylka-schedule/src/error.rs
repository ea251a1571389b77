//! The crate's one error type.

use std::error::Error as StdError;

/// Everything that can go wrong in this crate: a value that cannot be used, named by its field.
///
/// Messages are lowercase and always name the offending field, e.g.
/// ``invalid `tz`: unknown time zone `Europe/Mosco` ``.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of a schedule, misfire policy, send window or occurrence key has a bad value.
    #[error("invalid `{field}`: {reason}")]
    InvalidField {
        /// The field as it is spelled in JSON, e.g. `until` or `misfire.latest_within`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
        /// The lower-level error, where there is one.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    },
    /// A schedule could not be read from JSON; the message names the field and the position.
    #[error(transparent)]
    Json(serde_json::Error),
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn invalid_because(
        field: &'static str,
        reason: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::InvalidField {
            field,
            reason: reason.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The field this error is about, when the crate knows it without parsing a message.
    #[must_use]
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::InvalidField { field, .. } => Some(field),
            Self::Json(_) => None,
        }
    }
}
