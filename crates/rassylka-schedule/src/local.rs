//! Civil local time: strict text forms, and turning a local date-time into one instant.
//!
//! Resolution follows RFC 5545 §3.3.5: a local time that happens twice (an overlap) means the
//! first instant; a local time that never happens (a gap) is read with the offset in force before
//! the gap, which moves it forward by the length of the gap (Berlin 02:30 → 03:30 CEST).

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

use crate::Error;

/// The last year an occurrence may fall in: keys and schedule files use four-digit years.
pub(crate) const LAST_YEAR: i32 = 9999;

/// Parses exactly `YYYY-MM-DDTHH:MM`; anything looser would make two texts name one key.
pub(crate) fn parse_local_minute(text: &str, field: &'static str) -> Result<NaiveDateTime, Error> {
    let malformed = || {
        Error::invalid(
            field,
            format!("expected a local date-time `YYYY-MM-DDTHH:MM`, found `{text}`"),
        )
    };
    let (date, time) = text.split_once('T').ok_or_else(malformed)?;
    let mut parts = date.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let (Some(year), Some(month), Some(day)) = (
        fixed_digits(year, 4),
        fixed_digits(month, 2),
        fixed_digits(day, 2),
    ) else {
        return Err(malformed());
    };
    let time = parse_clock_digits(time).ok_or_else(malformed)?;
    let year = i32::try_from(year).map_err(|_| malformed())?;
    let date = NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| Error::invalid(field, format!("`{text}` is not a date of the calendar")))?;
    Ok(date.and_time(time))
}

/// Formats a local date-time the way [`parse_local_minute`] reads it.
pub(crate) fn format_local_minute(local: NaiveDateTime) -> String {
    local.format("%Y-%m-%dT%H:%M").to_string()
}

/// Parses exactly `HH:MM` (00:00–23:59).
pub(crate) fn parse_clock(text: &str, field: &'static str) -> Result<NaiveTime, Error> {
    parse_clock_digits(text).ok_or_else(|| {
        Error::invalid(
            field,
            format!("expected a time of day `HH:MM` from 00:00 to 23:59, found `{text}`"),
        )
    })
}

/// Formats a time of day the way [`parse_clock`] reads it.
pub(crate) fn format_clock(time: NaiveTime) -> String {
    time.format("%H:%M").to_string()
}

/// Checks that a local date-time is a whole minute of a four-digit year.
pub(crate) fn check_local_minute(local: NaiveDateTime, field: &'static str) -> Result<(), Error> {
    if local.second() != 0 || local.nanosecond() != 0 {
        return Err(Error::invalid(
            field,
            format!("`{local}` is not a whole minute; schedules are kept to the minute"),
        ));
    }
    if !(0..=LAST_YEAR).contains(&local.year()) {
        return Err(Error::invalid(
            field,
            format!("year {} is outside 0000–{LAST_YEAR}", local.year()),
        ));
    }
    Ok(())
}

fn parse_clock_digits(text: &str) -> Option<NaiveTime> {
    let (hour, minute) = text.split_once(':')?;
    NaiveTime::from_hms_opt(fixed_digits(hour, 2)?, fixed_digits(minute, 2)?, 0)
}

fn fixed_digits(text: &str, width: usize) -> Option<u32> {
    if text.len() != width || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The instant a scheduled local time means (RFC 5545 §3.3.5, see the module docs).
///
/// `None` only at the edges of the representable time range.
pub(crate) fn resolve(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at),
        LocalResult::Ambiguous(first, second) => Some(first.min(second)),
        LocalResult::None => {
            let transition = gap_end(tz, local)?;
            let before = offset_seconds(tz, transition.checked_sub_signed(TimeDelta::seconds(1))?);
            let utc = local.checked_sub_signed(TimeDelta::seconds(i64::from(before)))?;
            Some(tz.from_utc_datetime(&utc))
        }
    }
}

/// Every instant at which the wall clock first shows `local` or a later time after having shown
/// an earlier one: both passes of an overlap, or the end of a gap that swallows `local`.
pub(crate) fn wall_clock_arrivals(tz: Tz, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => vec![at.with_timezone(&Utc)],
        LocalResult::Ambiguous(first, second) => {
            vec![first.with_timezone(&Utc), second.with_timezone(&Utc)]
        }
        LocalResult::None => gap_end(tz, local).into_iter().collect(),
    }
}

/// The transition instant that ends the gap `local` falls in: the first instant whose wall
/// clock reads `local` or later.
///
/// chrono-tz does not expose its transitions, so this bisects on the wall clock: offsets are
/// within ±16 h, so 18 h either side of `local` read as UTC brackets the transition.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let local_seconds = local.and_utc().timestamp();
    let bracket = 18 * 3_600;
    first_second_where(
        local_seconds.checked_sub(bracket)?,
        local_seconds.checked_add(bracket)?,
        |at| wall_clock(tz, at).is_some_and(|wall| wall >= local),
    )
}

/// The first whole second in `(before, after]` where `holds` starts to hold, by bisection;
/// `holds` must be false at `before` and true at `after`.
fn first_second_where(
    mut before: i64,
    mut after: i64,
    holds: impl Fn(DateTime<Utc>) -> bool,
) -> Option<DateTime<Utc>> {
    while after - before > 1 {
        let middle = before + (after - before) / 2;
        if holds(DateTime::from_timestamp(middle, 0)?) {
            after = middle;
        } else {
            before = middle;
        }
    }
    DateTime::from_timestamp(after, 0)
}

fn wall_clock(tz: Tz, at: DateTime<Utc>) -> Option<NaiveDateTime> {
    at.naive_utc()
        .checked_add_signed(TimeDelta::seconds(i64::from(offset_seconds(tz, at))))
}

fn offset_seconds(tz: Tz, at: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The instants in `(from, to]` at which `tz` changes its offset.
///
/// Sampled every 12 hours and bisected where the offset differs; no zone has changed its
/// offset twice within 12 hours.
pub(crate) fn offset_changes(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    const STEP: i64 = 12 * 3_600;
    let end = to.timestamp();
    let mut changes = Vec::new();
    let mut sample = from.timestamp();
    while sample < end {
        let next = sample.saturating_add(STEP).min(end);
        let (Some(sample_at), Some(next_at)) = (
            DateTime::from_timestamp(sample, 0),
            DateTime::from_timestamp(next, 0),
        ) else {
            break;
        };
        let after = offset_seconds(tz, next_at);
        if offset_seconds(tz, sample_at) != after {
            changes.extend(first_second_where(sample, next, |at| {
                offset_seconds(tz, at) == after
            }));
        }
        sample = next;
    }
    changes
}
