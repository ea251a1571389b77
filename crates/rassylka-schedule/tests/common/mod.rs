//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, NaiveDateTime, Utc};
use rassylka_schedule::{Occurrence, Schedule};

/// An instant from RFC 3339 text.
pub fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("bad instant {text}: {error}"))
        .with_timezone(&Utc)
}

/// A local date-time from `YYYY-MM-DDTHH:MM`.
pub fn local(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .unwrap_or_else(|error| panic!("bad local date-time {text}: {error}"))
}

/// A schedule from its JSON fields, e.g. `"start": "…", "tz": "…", "every": "day"`.
pub fn schedule(fields: &str) -> Schedule {
    let json = format!("{{{fields}}}");
    Schedule::from_json(&json).unwrap_or_else(|error| panic!("bad schedule {json}: {error}"))
}

/// Occurrences as RFC 3339 text with the zone's offset.
pub fn rfc3339(occurrences: impl IntoIterator<Item = Occurrence>) -> Vec<String> {
    occurrences
        .into_iter()
        .map(|occurrence| occurrence.instant().to_rfc3339())
        .collect()
}
