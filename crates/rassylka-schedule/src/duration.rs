//! Grace durations written as `30m`, `6h`, `1h30m`, `2d`.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// A positive duration of whole seconds, written as days, hours, minutes and seconds in that
/// order, each at most once: `2d`, `6h`, `1h30m`, `90s`.
///
/// Zero and negative durations are refused: a grace of nothing would make every occurrence
/// missed, which is what [`Misfire::Skip`](crate::Misfire::Skip) says more plainly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grace(TimeDelta);

/// The longest grace accepted: a year is already far beyond any sensible catch-up.
const LONGEST: TimeDelta = TimeDelta::days(366);

impl Grace {
    /// A grace of this length.
    ///
    /// # Errors
    /// [`Error::InvalidField`] naming `grace` when `length` is not positive, has a fraction of a
    /// second, or is longer than 366 days.
    pub fn new(length: TimeDelta) -> Result<Self, Error> {
        Self::checked(length, "grace")
    }

    pub(crate) const fn from_minutes(minutes: i64) -> Self {
        Self(TimeDelta::minutes(minutes))
    }

    pub(crate) fn checked(length: TimeDelta, field: &'static str) -> Result<Self, Error> {
        if length <= TimeDelta::zero() {
            return Err(Error::invalid(field, "a grace must be longer than zero"));
        }
        if length.subsec_nanos() != 0 {
            return Err(Error::invalid(field, "a grace is kept to whole seconds"));
        }
        if length > LONGEST {
            return Err(Error::invalid(field, "a grace may be at most 366d"));
        }
        Ok(Self(length))
    }

    /// Parses `30m`, `6h`, `1h30m`, `2d`, naming `field` in the error.
    pub(crate) fn parse(text: &str, field: &'static str) -> Result<Self, Error> {
        let malformed = || {
            Error::invalid(
                field,
                format!("expected a duration like `30m`, `6h`, `1h30m` or `2d`, found `{text}`"),
            )
        };
        if text.starts_with('-') {
            return Err(Error::invalid(field, "a grace must be longer than zero"));
        }
        const UNITS: [(char, i64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
        let mut rest = text;
        let mut next_unit = 0;
        let mut seconds: i64 = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(malformed());
            }
            let (number, tail) = rest.split_at(digits);
            let mut chars = tail.chars();
            let unit = chars.next().ok_or_else(malformed)?;
            let position = UNITS[next_unit..]
                .iter()
                .position(|(name, _)| *name == unit)
                .ok_or_else(malformed)?;
            let (_, unit_seconds) = UNITS[next_unit + position];
            next_unit += position + 1;
            let amount = number
                .parse::<i64>()
                .ok()
                .and_then(|amount| amount.checked_mul(unit_seconds))
                .and_then(|amount| seconds.checked_add(amount))
                .ok_or_else(|| Error::invalid(field, "a grace may be at most 366d"))?;
            seconds = amount;
            rest = chars.as_str();
        }
        if text.is_empty() {
            return Err(malformed());
        }
        // `TimeDelta::seconds` panics past about 292 million years: a typed-in
        // `9999999999999999s` must be an error, not a crash.
        let length = TimeDelta::try_seconds(seconds)
            .ok_or_else(|| Error::invalid(field, "a grace may be at most 366d"))?;
        Self::checked(length, field)
    }

    /// The length of the grace.
    #[must_use]
    pub const fn length(self) -> TimeDelta {
        self.0
    }
}

impl fmt::Display for Grace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut seconds = self.0.num_seconds();
        for (unit, unit_seconds) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            let amount = seconds / unit_seconds;
            if amount > 0 {
                write!(f, "{amount}{unit}")?;
            }
            seconds %= unit_seconds;
        }
        Ok(())
    }
}

impl FromStr for Grace {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text, "grace")
    }
}

impl Serialize for Grace {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Grace {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text: String = crate::field::named(deserializer, "grace")?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
