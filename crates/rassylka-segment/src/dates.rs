//! Calendar arithmetic shared by compile and evaluation: day numbers, the «leap ordinal» of a
//! month-day, the Feb 29 policy, age bounds and instants seen as civil dates.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate};
use chrono_tz::Tz;

/// How a Feb 29 birthday (or interval bound) is read in a year without Feb 29.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LeapDay {
    /// The last day of February (art. 192 ГК РФ reads month-counted terms this way).
    #[default]
    Feb28,
    /// The day after February.
    Mar1,
}

/// The ordinal of Feb 29 in a leap year; every month-day keeps one fixed ordinal (1..=366), so
/// a month-day range is two integer comparisons whatever the year.
pub(crate) const FEB29: u16 = 60;

/// Days since 0001-01-01 (day 1); dates compare as integers.
pub(crate) fn day_number(date: NaiveDate) -> i32 {
    date.num_days_from_ce()
}

pub(crate) fn date_of_day(day: i64) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(day).ok()?)
}

/// The civil date of an instant in `zone`, as a day number.
pub(crate) fn local_day(instant: &DateTime<FixedOffset>, zone: Tz) -> i32 {
    day_number(instant.with_timezone(&zone).date_naive())
}

/// The ordinal of a month-day in a leap year (Feb 29 = 60, Dec 31 = 366).
pub(crate) fn leap_ordinal(month: u32, day: u32) -> Option<u16> {
    NaiveDate::from_ymd_opt(2000, month, day).and_then(|d| u16::try_from(d.ordinal()).ok())
}

pub(crate) fn ordinal_of(date: NaiveDate) -> u16 {
    leap_ordinal(date.month(), date.day()).unwrap_or(0)
}

pub(crate) fn is_leap(year: i32) -> bool {
    NaiveDate::from_ymd_opt(year, 2, 29).is_some()
}

/// Where a Feb 29 birthday falls in `year`, as a leap ordinal.
pub(crate) fn feb29_in(year: i32, leap_day: LeapDay) -> u16 {
    match (is_leap(year), leap_day) {
        (true, _) => FEB29,
        (false, LeapDay::Feb28) => FEB29 - 1,
        (false, LeapDay::Mar1) => FEB29 + 1,
    }
}

/// The birthday of someone born on `birth` in `year`, with the Feb 29 policy.
fn anniversary(birth: NaiveDate, year: i32, leap_day: LeapDay) -> Option<NaiveDate> {
    if birth.month() == 2 && birth.day() == 29 && !is_leap(year) {
        match leap_day {
            LeapDay::Feb28 => NaiveDate::from_ymd_opt(year, 2, 28),
            LeapDay::Mar1 => NaiveDate::from_ymd_opt(year, 3, 1),
        }
    } else {
        NaiveDate::from_ymd_opt(year, birth.month(), birth.day())
    }
}

/// Completed years on `today`; negative for a birth date after `today`.
fn age(birth: NaiveDate, today: NaiveDate, leap_day: LeapDay) -> i64 {
    let years = i64::from(today.year()) - i64::from(birth.year());
    match anniversary(birth, today.year(), leap_day) {
        Some(birthday) if today < birthday => years - 1,
        _ => years,
    }
}

/// The latest birth day number of a person who is at least `years` old on `today`.
///
/// `None` when that birth date is before the calendar's first day (nobody is that old).
/// Age never increases as the birth date moves later, so the answer is found by stepping from
/// the same month-day `years` earlier; the steps are at most a couple of days.
pub(crate) fn latest_birth_for_age(today: NaiveDate, years: u32, leap_day: LeapDay) -> Option<i32> {
    let year = today.year().checked_sub(i32::try_from(years).ok()?)?;
    let mut candidate = NaiveDate::from_ymd_opt(year, today.month(), today.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))?;
    let old_enough = |d: NaiveDate| age(d, today, leap_day) >= i64::from(years);
    for _ in 0..8 {
        if !old_enough(candidate) {
            candidate = candidate.pred_opt()?;
            continue;
        }
        match candidate.succ_opt() {
            Some(next) if old_enough(next) => candidate = next,
            _ => return Some(day_number(candidate)),
        }
    }
    Some(day_number(candidate))
}

/// A day of the year without a year: `MM-DD`, Feb 29 allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonthDay {
    month: u8,
    day: u8,
}

impl MonthDay {
    /// A month-day, if it exists in a leap year.
    pub fn new(month: u32, day: u32) -> Option<MonthDay> {
        leap_ordinal(month, day)?;
        Some(MonthDay {
            month: u8::try_from(month).ok()?,
            day: u8::try_from(day).ok()?,
        })
    }

    /// The month, 1..=12.
    pub fn month(self) -> u32 {
        u32::from(self.month)
    }

    /// The day of the month.
    pub fn day(self) -> u32 {
        u32::from(self.day)
    }

    pub(crate) fn ordinal(self) -> u16 {
        leap_ordinal(self.month(), self.day()).unwrap_or(0)
    }
}

impl fmt::Display for MonthDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

/// A text that is not `MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a month and day as MM-DD, such as 12-25")]
pub struct InvalidMonthDay;

impl FromStr for MonthDay {
    type Err = InvalidMonthDay;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 5 || bytes[2] != b'-' {
            return Err(InvalidMonthDay);
        }
        let number = |part: &str| {
            part.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| part.parse::<u32>().ok())
                .flatten()
        };
        let (Some(month), Some(day)) = (number(&s[..2]), number(&s[3..])) else {
            return Err(InvalidMonthDay);
        };
        MonthDay::new(month, day).ok_or(InvalidMonthDay)
    }
}
