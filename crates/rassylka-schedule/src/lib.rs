//! Mailing schedules: when a mailing fires, in real time zones.
//!
//! A [`Schedule`] fires once or repeats every day, week, month or year from a start given as a
//! local date-time to the minute in an IANA zone, optionally until an end. Its occurrences are
//! computed from the start, never accumulated, so any one of them can be found again after a
//! restart: [`Schedule::next_after`], [`Schedule::between`], [`Schedule::next_n_after`], every
//! iterator bounded. Each occurrence has a stable [`OccurrenceKey`] for the journal.
//! [`Schedule::due`] applies the [`Misfire`] policy after downtime, [`Schedule::catch_up`] lists
//! the missed runs of date-rule mailings, and a [`SendWindow`] holds deliveries to the hours a
//! recipient is awake in their own zone.
//!
//! The crate never reads the clock: «now» is always passed in.
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use rassylka_schedule::Schedule;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let schedule = Schedule::from_json(
//!     r#"{"start": "2027-01-31T10:00", "tz": "Europe/Moscow", "every": "month",
//!         "until": "2027-12-31T23:59", "misfire": {"latest_within": "6h"}}"#,
//! )?;
//! let after: DateTime<Utc> = "2027-01-31T07:00:00Z".parse()?;
//! let next: Vec<String> = schedule
//!     .next_n_after(after, 3)
//!     .map(|occurrence| occurrence.instant().to_rfc3339())
//!     .collect();
//! assert_eq!(
//!     next,
//!     ["2027-02-28T10:00:00+03:00", "2027-03-31T10:00:00+03:00", "2027-04-30T10:00:00+03:00"]
//! );
//!
//! let key = schedule.next_after(after).ok_or("no occurrence")?.key("m-birthday", 3)?;
//! assert_eq!(key.to_string(), "m-birthday/v3/2027-02-28T10:00");
//! assert_eq!(key, "m-birthday/v3/2027-02-28T10:00".parse()?);
//! # Ok(())
//! # }
//! ```
//!
//! # Policies
//!
//! - **Months and years** are counted from the start and clamped to the month's last day:
//!   monthly from Jan 31 gives Jan 31, Feb 28 (29), Mar 31, Apr 30; yearly from Feb 29 gives
//!   Feb 28 in common years. Never chained, so the 31st never drifts to the 28th.
//! - **DST gap**: a local time that does not exist is moved forward by the length of the gap
//!   (Berlin 2025-03-30 02:30 → 03:30 CEST; Santiago's midnight gap 00:30 → 01:30).
//! - **DST overlap**: a local time that happens twice means its first instant, once
//!   (Berlin 2025-10-26 02:30 → 02:30 CEST = 00:30Z). Both are RFC 5545 §3.3.5.
//! - **Keys** hold the scheduled local date-time, not the instant, so they survive tz database
//!   updates; the schedule version in the key separates an edited schedule's occurrences.
//! - **Misfire** (see [`Schedule::due`]): `skip` fires only occurrences found within
//!   [`ON_TIME`]; `latest_within(grace)` fires the latest missed occurrence if it is no older
//!   than the grace (default min(period / 2, 6 h), 1 h for a one-time mailing);
//!   `all_within(grace, max)` fires up to `max` of the latest within the grace. Everything else
//!   is reported missed, never sent silently. An occurrence already started is always finished:
//!   that is the dispatcher's decision, made from its journal, and [`Schedule::occurrence_at`]
//!   turns a journal key back into its occurrence.
//! - **Send windows** are read on the wall clock of the recipient's zone (the mailing's when the
//!   recipient has none); an opening time inside a DST gap opens at the end of the gap.
//! - **Bounds**: `next_after(t)` is strictly after `t`; `between(a, b)` is `[a, b)`; `until` is
//!   inclusive and compared with the scheduled local time; occurrences end with the year 9999.

mod duration;
mod error;
mod field;
mod key;
mod local;
mod misfire;
mod schedule;
mod window;

pub use duration::Grace;
pub use error::Error;
pub use key::OccurrenceKey;
pub use misfire::{
    CatchUp, CatchUpRun, Due, MISSED_LIMIT, Misfire, ON_TIME, ONCE_GRACE, REPEATING_GRACE_CAP,
};
pub use schedule::{Every, Occurrence, Occurrences, Schedule, parse_zone};
pub use window::{SendWindow, local_day_start, next_local_midnight, recipient_zone};

// Re-exported so callers name zones with the same type the crate takes.
pub use chrono_tz::Tz;
