//! Occurrence keys: the identity of one scheduled slot, unique in the journal.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::local::{check_local_minute, format_local_minute, parse_local_minute};

/// `(mailing id, schedule version, scheduled local date-time)`, written
/// `m-birthday/v3/2027-01-31T10:00`.
///
/// The local date-time is the one the schedule names, before any DST shift, so the key does not
/// change when the tz database changes a zone's offsets, and two schedulers that compute the same
/// occurrence compute the same key. Keys order by mailing, then version, then local time.
///
/// The mailing id may contain `/` (the text is split from the right) but no whitespace or control
/// characters, so that `Display` and `FromStr` are exact inverses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OccurrenceKey {
    mailing: String,
    version: u32,
    local: NaiveDateTime,
}

impl OccurrenceKey {
    /// The key of the occurrence scheduled at `local` in version `version` of `mailing`'s schedule.
    ///
    /// # Errors
    /// [`Error::InvalidField`] naming `mailing` when it is empty or holds whitespace or control
    /// characters, or naming `local` when it is not a whole minute of a four-digit year.
    pub fn new(
        mailing: impl Into<String>,
        version: u32,
        local: NaiveDateTime,
    ) -> Result<Self, Error> {
        let mailing = mailing.into();
        if mailing.is_empty() {
            return Err(Error::invalid("mailing", "a mailing id must not be empty"));
        }
        if mailing.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid(
                "mailing",
                format!(
                    "mailing id `{}` holds whitespace or control characters",
                    mailing.escape_debug()
                ),
            ));
        }
        check_local_minute(local, "local")?;
        Ok(Self {
            mailing,
            version,
            local,
        })
    }

    /// The mailing's id.
    #[must_use]
    pub fn mailing(&self) -> &str {
        &self.mailing
    }

    /// The schedule version; editing a schedule makes a new version.
    #[must_use]
    pub const fn version(&self) -> u32 {
        self.version
    }

    /// The scheduled local date-time in the schedule's zone, before any DST shift.
    #[must_use]
    pub const fn local(&self) -> NaiveDateTime {
        self.local
    }
}

impl fmt::Display for OccurrenceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/v{}/{}",
            self.mailing,
            self.version,
            format_local_minute(self.local)
        )
    }
}

impl FromStr for OccurrenceKey {
    type Err = Error;

    /// Reads what `Display` writes.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.rsplitn(3, '/');
        let (Some(local), Some(version), Some(mailing)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::invalid(
                "key",
                format!("expected `MAILING/vVERSION/YYYY-MM-DDTHH:MM`, found `{text}`"),
            ));
        };
        let version = version
            .strip_prefix('v')
            .filter(|digits| {
                !digits.is_empty()
                    && digits.bytes().all(|byte| byte.is_ascii_digit())
                    && (digits == &"0" || !digits.starts_with('0'))
            })
            .and_then(|digits| digits.parse().ok())
            .ok_or_else(|| {
                Error::invalid(
                    "version",
                    format!("expected `v` and a number without leading zeros, found `{version}`"),
                )
            })?;
        Self::new(mailing, version, parse_local_minute(local, "local")?)
    }
}

impl Serialize for OccurrenceKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OccurrenceKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text: String = crate::field::named(deserializer, "key")?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
