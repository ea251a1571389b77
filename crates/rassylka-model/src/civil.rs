//! Dates and instants as JSON exports write them, read without chrono's general format
//! machinery in the common case.
//!
//! A recipients export holds a date or an instant in nearly every purchase; chrono's
//! `FromStr` walks a format description for each and took a fifth of the time of reading a
//! file. The shapes exports actually use (`2026-11-22`, `2026-11-22T12:00:00+03:00`, `…Z`) are
//! read here directly; anything else (spaces, fractions, other offsets, errors) goes to chrono,
//! so what is accepted and what it means never differs from chrono's own reading.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use serde::Deserializer;
use serde::de::{self, Visitor};

/// Reads a civil date as chrono's `NaiveDate::from_str` does.
///
/// # Errors
/// chrono's error for text that is not a date.
pub fn parse_date(text: &str) -> Result<NaiveDate, chrono::ParseError> {
    match quick_date(text.as_bytes()) {
        Some(date) => Ok(date),
        None => NaiveDate::from_str(text),
    }
}

/// Reads an instant with its offset as chrono's `DateTime<FixedOffset>::from_str` does.
///
/// # Errors
/// chrono's error for text that is not an instant with an offset.
pub fn parse_instant(text: &str) -> Result<DateTime<FixedOffset>, chrono::ParseError> {
    match quick_instant(text.as_bytes()) {
        Some(instant) => Ok(instant),
        None => DateTime::<FixedOffset>::from_str(text),
    }
}

fn digits<const N: usize>(bytes: &[u8]) -> Option<u32> {
    let mut value = 0;
    for &b in bytes.get(..N)? {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(b - b'0');
    }
    Some(value)
}

/// `YYYY-MM-DD` exactly.
fn quick_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits::<4>(b)?).ok()?;
    NaiveDate::from_ymd_opt(year, digits::<2>(&b[5..])?, digits::<2>(&b[8..])?)
}

/// `YYYY-MM-DDTHH:MM:SS` followed by `Z` or `±HH:MM`, exactly.
fn quick_instant(b: &[u8]) -> Option<DateTime<FixedOffset>> {
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = quick_date(&b[..10])?;
    // Second 60 (a leap second) is chrono's to judge.
    let time = NaiveTime::from_hms_opt(
        digits::<2>(&b[11..])?,
        digits::<2>(&b[14..])?,
        digits::<2>(&b[17..]).filter(|s| *s < 60)?,
    )?;
    let offset = match &b[19..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits::<2>(&[*h1, *h2])?;
            let minutes = digits::<2>(&[*m1, *m2])?;
            if minutes >= 60 {
                return None;
            }
            let seconds = i32::try_from(hours * 3600 + minutes * 60).ok()?;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let offset = FixedOffset::east_opt(offset)?;
    let utc = NaiveDateTime::new(date, time).checked_sub_offset(offset)?;
    Some(DateTime::from_naive_utc_and_offset(utc, offset))
}

struct CivilVisitor<T>(fn(&str) -> Result<T, chrono::ParseError>, &'static str);

impl<'de, T> Visitor<'de> for CivilVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_str(self)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
        (self.0)(v).map(Some).map_err(E::custom)
    }
}

/// An optional date as a value to deserialize (`null` is `None`).
pub(crate) struct OptionalDate(pub(crate) Option<NaiveDate>);

impl<'de> serde::Deserialize<'de> for OptionalDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        date_or_null(d).map(OptionalDate)
    }
}

/// An optional instant as a value to deserialize (`null` is `None`).
pub(crate) struct OptionalInstant(pub(crate) Option<DateTime<FixedOffset>>);

impl<'de> serde::Deserialize<'de> for OptionalInstant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        instant_or_null(d).map(OptionalInstant)
    }
}

/// Serde reader of a required instant with an offset, read as [`parse_instant`] reads it:
/// `#[serde(deserialize_with = "rassylka_model::deserialize_instant")]`.
///
/// # Errors
/// chrono's error for text that is not an instant, serde's for a value that is not a string.
pub fn deserialize_instant<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<DateTime<FixedOffset>, D::Error> {
    let visitor = CivilVisitor(
        parse_instant,
        "an instant such as 2026-11-22T12:00:00+03:00",
    );
    // A string always gives `Some`.
    d.deserialize_str(visitor)?
        .ok_or_else(|| de::Error::custom("expected an instant"))
}

/// Serde reader of an optional date (`null` or missing is `None`).
pub(crate) fn date_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    d.deserialize_option(CivilVisitor(parse_date, "a date such as 2026-11-22"))
}

/// Serde reader of an optional instant with an offset.
pub(crate) fn instant_or_null<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
    d.deserialize_option(CivilVisitor(
        parse_instant,
        "an instant such as 2026-11-22T12:00:00+03:00",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_shapes_and_what_falls_through_to_chrono() {
        for text in [
            "2026-11-22T12:00:00+03:00",
            "2026-11-22T12:00:00Z",
            "2026-11-22T23:59:59-09:30",
            "2026-11-22 12:00:00+03:00",
            "2026-11-22T12:00:00.250+03:00",
            "2026-11-22T12:00:00+0300",
            "2016-12-31T23:59:60Z",
        ] {
            assert_eq!(
                parse_instant(text).ok(),
                DateTime::<FixedOffset>::from_str(text).ok(),
                "{text}"
            );
        }
        assert!(quick_instant(b"2026-11-22T12:00:00+03:00").is_some());
        for bad in [
            "2026-02-30T12:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T12:00:00+03:60",
        ] {
            assert!(quick_instant(bad.as_bytes()).is_none(), "{bad}");
            assert_eq!(
                parse_instant(bad).is_err(),
                DateTime::<FixedOffset>::from_str(bad).is_err()
            );
        }
        assert_eq!(parse_date("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert!(parse_date("2023-02-29").is_err());
        assert_eq!(
            parse_date(" 2024-02-29").ok(),
            NaiveDate::from_str(" 2024-02-29").ok()
        );
    }
}
