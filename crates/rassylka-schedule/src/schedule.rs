//! Schedules and their occurrences, computed from the start and never accumulated.

use std::fmt;
use std::iter::FusedIterator;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::field::named_fields;
use crate::local::{
    LAST_YEAR, check_local_minute, format_local_minute, parse_local_minute, resolve,
};
use crate::{Error, Grace, Misfire, OccurrenceKey};

/// How often a schedule repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Every {
    /// A single occurrence at the start.
    Once,
    /// Every day at the start's local time.
    Day,
    /// Every week on the start's weekday and local time.
    Week,
    /// Every month on the start's day, clamped to the month's last day.
    Month,
    /// Every year on the start's month and day, Feb 29 clamped to Feb 28.
    Year,
}

impl Every {
    const ALL: [Self; 5] = [Self::Once, Self::Day, Self::Week, Self::Month, Self::Year];

    /// The JSON name: `once`, `day`, `week`, `month` or `year`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    /// The shortest interval between two occurrences; `None` for [`Every::Once`].
    #[must_use]
    pub const fn shortest_period(self) -> Option<TimeDelta> {
        match self {
            Self::Once => None,
            Self::Day => Some(TimeDelta::days(1)),
            Self::Week => Some(TimeDelta::days(7)),
            Self::Month => Some(TimeDelta::days(28)),
            Self::Year => Some(TimeDelta::days(365)),
        }
    }
}

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Every {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|every| every.as_str() == text)
            .ok_or_else(|| {
                Error::invalid(
                    "every",
                    format!(
                        "unknown periodicity `{text}`, expected one of once, day, week, month, year"
                    ),
                )
            })
    }
}

impl Serialize for Every {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Every {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text: String = crate::field::named(deserializer, "every")?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// When a mailing fires: a start (a local date-time to the minute) in an IANA zone, a
/// periodicity, an optional inclusive end and a misfire policy.
///
/// JSON: `{"start": "2027-01-31T10:00", "tz": "Europe/Moscow", "every": "month",
/// "until": "2027-12-31T23:59", "misfire": {"latest_within": "6h"}}`; `until` and `misfire` may
/// be left out, any other key is an error.
///
/// Occurrence `n` is `start + n periods` in civil local time (months and years clamped to the
/// month's end), resolved to an instant by the DST rule in the [crate docs](crate). `until` is
/// compared with the scheduled local date-time. Occurrences end with the year 9999.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSchedule", into = "RawSchedule")]
pub struct Schedule {
    start: NaiveDateTime,
    tz: Tz,
    every: Every,
    until: Option<NaiveDateTime>,
    misfire: Misfire,
}

/// Reads an IANA zone name such as `Europe/Moscow`, as in a schedule's `tz` or a recipient's
/// `timezone`.
///
/// # Errors
/// [`Error::InvalidField`] naming `tz`, with the zone database's error as its source, when the
/// name is unknown.
pub fn parse_zone(name: &str) -> Result<Tz, Error> {
    name.parse::<Tz>().map_err(|error| {
        Error::invalid_because(
            "tz",
            format!("unknown time zone `{name}`, expected an IANA name like `Europe/Moscow`"),
            error,
        )
    })
}

/// How a scheduled slot turned out.
enum Slot {
    /// No slot at this index or any later one.
    End,
    /// A day that a zone skipped entirely (Pacific/Apia, 2011-12-30) resolves onto the next
    /// day's instant; the skipped day's slot is folded into the next so instants strictly
    /// increase and the key names the day that happened.
    Merged,
    At(Occurrence),
}

impl Schedule {
    /// A schedule from `start` in `tz`, repeating `every`, with no end and the default misfire
    /// policy.
    ///
    /// # Errors
    /// [`Error::InvalidField`] naming `start` when it has seconds or lies outside the years
    /// 0000–9999.
    pub fn new(start: NaiveDateTime, tz: Tz, every: Every) -> Result<Self, Error> {
        check_local_minute(start, "start")?;
        Ok(Self {
            start,
            tz,
            every,
            until: None,
            misfire: Misfire::default(),
        })
    }

    /// «Send now»: a one-time schedule whose only occurrence is the minute of `now` in `tz`,
    /// so it is due at once and its key is the creation minute.
    ///
    /// In the repeated hour of a fall-back that minute resolves to its first pass, an hour before
    /// `now`; the grace is widened by that hour so the send is still due.
    ///
    /// # Errors
    /// [`Error::InvalidField`] naming `start` when `now` lies outside the years 0000–9999.
    pub fn send_now(now: DateTime<Utc>, tz: Tz) -> Result<Self, Error> {
        let local = now.with_timezone(&tz).naive_local();
        let minute = local
            .date()
            .and_hms_opt(local.hour(), local.minute(), 0)
            .unwrap_or(local);
        let mut schedule = Self::new(minute, tz, Every::Once)?;
        if let Some(at) = resolve(tz, minute) {
            let lateness = now - at.with_timezone(&Utc);
            if lateness > TimeDelta::minutes(1) {
                let widened = lateness + crate::misfire::ONCE_GRACE.length();
                let minutes = widened.num_minutes() + 1;
                schedule.misfire =
                    Misfire::LatestWithin(Grace::new(TimeDelta::minutes(minutes)).ok());
            }
        }
        Ok(schedule)
    }

    /// The same schedule ending at `until` (inclusive, local, to the minute).
    ///
    /// # Errors
    /// [`Error::InvalidField`] naming `until` when it has seconds, lies outside the years
    /// 0000–9999, or is before the start.
    pub fn with_until(mut self, until: NaiveDateTime) -> Result<Self, Error> {
        check_local_minute(until, "until")?;
        if until < self.start {
            return Err(Error::invalid(
                "until",
                format!(
                    "{} is before `start` {}",
                    format_local_minute(until),
                    format_local_minute(self.start)
                ),
            ));
        }
        self.until = Some(until);
        Ok(self)
    }

    /// The same schedule with another misfire policy.
    #[must_use]
    pub fn with_misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = misfire;
        self
    }

    /// Reads a schedule from JSON, validating every field.
    ///
    /// # Errors
    /// [`Error::Json`] whose message names the offending field: an unknown zone, a malformed
    /// date-time, an end before the start, a zero or negative grace, an unknown `every`, an
    /// unknown key, a missing key or malformed JSON.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(Error::Json)
    }

    /// The first occurrence's scheduled local date-time.
    #[must_use]
    pub const fn start(&self) -> NaiveDateTime {
        self.start
    }

    /// The zone the schedule's local times are in.
    #[must_use]
    pub const fn tz(&self) -> Tz {
        self.tz
    }

    /// The periodicity.
    #[must_use]
    pub const fn every(&self) -> Every {
        self.every
    }

    /// The inclusive end, a local date-time, if any.
    #[must_use]
    pub const fn until(&self) -> Option<NaiveDateTime> {
        self.until
    }

    /// The misfire policy.
    #[must_use]
    pub const fn misfire(&self) -> Misfire {
        self.misfire
    }

    /// The first occurrence strictly after `after`.
    #[must_use]
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<Occurrence> {
        match self.first_slot_from(after, false).1 {
            Slot::At(occurrence) => Some(occurrence),
            Slot::End | Slot::Merged => None,
        }
    }

    /// The occurrences in `[from, to)`, in order.
    #[must_use]
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Occurrences<'_> {
        Occurrences {
            schedule: self,
            next: self.first_index_from(from, true),
            before: Some(to),
            remaining: usize::MAX,
        }
    }

    /// At most `count` occurrences strictly after `after`, in order.
    #[must_use]
    pub fn next_n_after(&self, after: DateTime<Utc>, count: usize) -> Occurrences<'_> {
        Occurrences {
            schedule: self,
            next: self.first_index_from(after, false),
            before: None,
            remaining: count,
        }
    }

    /// The occurrence scheduled at `local`, if the schedule has one: how a dispatcher maps a key
    /// from its journal back to the occurrence, however late it is.
    #[must_use]
    pub fn occurrence_at(&self, local: NaiveDateTime) -> Option<Occurrence> {
        let near = self.period_index(local);
        (near.saturating_sub(1)..=near.saturating_add(1)).find_map(|index| match self.slot(index) {
            Slot::At(occurrence) if occurrence.scheduled == local => Some(occurrence),
            _ => None,
        })
    }

    /// The occurrences at or before `until_instant`, newest first, beginning with the latest.
    pub(crate) fn newest_first(
        &self,
        until_instant: DateTime<Utc>,
    ) -> impl Iterator<Item = Occurrence> + '_ {
        let (stop, _) = self.first_slot_from(until_instant, false);
        let last = self.last_index().map_or(0, |last| last.saturating_add(1));
        let mut index = stop.min(last);
        std::iter::from_fn(move || {
            while index > 0 {
                index -= 1;
                if let Slot::At(occurrence) = self.slot(index) {
                    return Some(occurrence);
                }
            }
            None
        })
    }

    /// The scheduled local date-time of slot `index`, before `until` is applied.
    fn scheduled(&self, index: u64) -> Option<NaiveDateTime> {
        let first = self.start.date();
        let date = match self.every {
            Every::Once => (index == 0).then_some(first)?,
            Every::Day => first.checked_add_days(Days::new(index))?,
            Every::Week => first.checked_add_days(Days::new(index.checked_mul(7)?))?,
            Every::Month => first.checked_add_months(Months::new(u32::try_from(index).ok()?))?,
            Every::Year => first
                .checked_add_months(Months::new(u32::try_from(index.checked_mul(12)?).ok()?))?,
        };
        (date.year() <= LAST_YEAR).then(|| date.and_time(self.start.time()))
    }

    fn slot(&self, index: u64) -> Slot {
        let Some(local) = self.scheduled(index) else {
            return Slot::End;
        };
        if self.until.is_some_and(|until| local > until) {
            return Slot::End;
        }
        let Some(at) = resolve(self.tz, local) else {
            return Slot::End;
        };
        let next = index
            .checked_add(1)
            .and_then(|next| self.scheduled(next))
            .and_then(|next| resolve(self.tz, next));
        if next.is_some_and(|next| at >= next) {
            return Slot::Merged;
        }
        Slot::At(Occurrence {
            scheduled: local,
            at,
        })
    }

    /// The index of the period `moment` (any date-time near the schedule's) falls in.
    fn period_index(&self, moment: NaiveDateTime) -> u64 {
        let first = self.start.date();
        let date = moment.date();
        let periods = match self.every {
            Every::Once => 0,
            Every::Day => (date - first).num_days(),
            Every::Week => (date - first).num_days().div_euclid(7),
            Every::Month => months_between(first, date),
            Every::Year => i64::from(date.year()) - i64::from(first.year()),
        };
        u64::try_from(periods).unwrap_or(0)
    }

    /// The index of the last slot, counting `until` and the year 9999.
    fn last_index(&self) -> Option<u64> {
        let end_of_years = NaiveDate::from_ymd_opt(LAST_YEAR, 12, 31)?.and_hms_opt(23, 59, 0)?;
        let limit = self
            .until
            .map_or(end_of_years, |until| until.min(end_of_years));
        let mut index = self.period_index(limit).saturating_add(2);
        loop {
            if self.scheduled(index).is_some_and(|local| local <= limit) {
                return Some(index);
            }
            index = index.checked_sub(1)?;
        }
    }

    /// The first slot at or after the instant (`inclusive`) or strictly after it, with its
    /// index; `Slot::End` when there is none.
    fn first_slot_from(&self, instant: DateTime<Utc>, inclusive: bool) -> (u64, Slot) {
        let passes = |at: DateTime<Utc>| {
            if inclusive {
                at >= instant
            } else {
                at > instant
            }
        };
        // Local and UTC dates differ by at most a day or so; two periods of slack cover it.
        let mut index = self.period_index(instant.naive_utc()).saturating_sub(2);
        while index > 0
            && self
                .scheduled(index - 1)
                .and_then(|local| resolve(self.tz, local))
                .is_some_and(|at| passes(at.with_timezone(&Utc)))
        {
            index -= 1;
        }
        loop {
            match self.slot(index) {
                Slot::End => return (index, Slot::End),
                Slot::At(occurrence) if passes(occurrence.utc()) => {
                    return (index, Slot::At(occurrence));
                }
                Slot::At(_) | Slot::Merged => {}
            }
            match index.checked_add(1) {
                Some(next) => index = next,
                None => return (index, Slot::End),
            }
        }
    }

    fn first_index_from(&self, instant: DateTime<Utc>, inclusive: bool) -> Option<u64> {
        match self.first_slot_from(instant, inclusive) {
            (index, Slot::At(_)) => Some(index),
            (_, Slot::End | Slot::Merged) => None,
        }
    }
}

fn months_between(from: NaiveDate, to: NaiveDate) -> i64 {
    (i64::from(to.year()) - i64::from(from.year())) * 12 + i64::from(to.month())
        - i64::from(from.month())
}

impl FromStr for Schedule {
    type Err = Error;

    /// The same as [`Schedule::from_json`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_json(text)
    }
}

/// One scheduled slot: its scheduled local date-time (the key's) and the instant it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Occurrence {
    scheduled: NaiveDateTime,
    at: DateTime<Tz>,
}

impl Occurrence {
    /// The local date-time the schedule names, before any DST shift; the key's local time.
    #[must_use]
    pub const fn scheduled_local(&self) -> NaiveDateTime {
        self.scheduled
    }

    /// The instant, in the schedule's zone: it prints with the zone's offset.
    #[must_use]
    pub const fn instant(&self) -> DateTime<Tz> {
        self.at
    }

    /// The instant in UTC.
    #[must_use]
    pub fn utc(&self) -> DateTime<Utc> {
        self.at.with_timezone(&Utc)
    }

    /// The civil date of the instant in the schedule's zone: «today» (`D`) for the audience
    /// rules evaluated for this occurrence.
    #[must_use]
    pub fn evaluation_date(&self) -> NaiveDate {
        self.at.date_naive()
    }

    /// The journal key of this occurrence in version `version` of `mailing`'s schedule.
    ///
    /// # Errors
    /// [`Error::InvalidField`] naming `mailing` when the id is empty or holds whitespace or
    /// control characters.
    pub fn key(&self, mailing: &str, version: u32) -> Result<OccurrenceKey, Error> {
        OccurrenceKey::new(mailing, version, self.scheduled)
    }
}

/// A bounded iterator over occurrences, from [`Schedule::between`] or [`Schedule::next_n_after`].
#[derive(Clone, Debug)]
pub struct Occurrences<'a> {
    schedule: &'a Schedule,
    next: Option<u64>,
    before: Option<DateTime<Utc>>,
    remaining: usize,
}

impl Iterator for Occurrences<'_> {
    type Item = Occurrence;

    fn next(&mut self) -> Option<Occurrence> {
        if self.remaining == 0 {
            self.next = None;
        }
        while let Some(index) = self.next {
            self.next = index.checked_add(1);
            match self.schedule.slot(index) {
                Slot::End => self.next = None,
                Slot::Merged => {}
                Slot::At(occurrence) => {
                    if self.before.is_some_and(|before| occurrence.utc() >= before) {
                        self.next = None;
                    } else {
                        self.remaining -= 1;
                        return Some(occurrence);
                    }
                }
            }
        }
        None
    }
}

impl FusedIterator for Occurrences<'_> {}

named_fields! {
    start_text: String = "start";
    tz_text: String = "tz";
    every_text: String = "every";
    until_text: Option<String> = "until";
}

/// The JSON form, validated into a [`Schedule`] by `TryFrom`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    #[serde(deserialize_with = "start_text")]
    start: String,
    #[serde(deserialize_with = "tz_text")]
    tz: String,
    #[serde(deserialize_with = "every_text")]
    every: String,
    #[serde(
        default,
        deserialize_with = "until_text",
        skip_serializing_if = "Option::is_none"
    )]
    until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    misfire: Option<Misfire>,
}

impl TryFrom<RawSchedule> for Schedule {
    type Error = Error;

    fn try_from(raw: RawSchedule) -> Result<Self, Error> {
        let start = parse_local_minute(&raw.start, "start")?;
        let tz = parse_zone(&raw.tz)?;
        let every = raw.every.parse()?;
        let mut schedule = Self::new(start, tz, every)?;
        if let Some(until) = raw.until {
            schedule = schedule.with_until(parse_local_minute(&until, "until")?)?;
        }
        Ok(schedule.with_misfire(raw.misfire.unwrap_or_default()))
    }
}

impl From<Schedule> for RawSchedule {
    fn from(schedule: Schedule) -> Self {
        Self {
            start: format_local_minute(schedule.start),
            tz: schedule.tz.name().to_owned(),
            every: schedule.every.as_str().to_owned(),
            until: schedule.until.map(format_local_minute),
            misfire: (schedule.misfire != Misfire::default()).then_some(schedule.misfire),
        }
    }
}
