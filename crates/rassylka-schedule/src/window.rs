//! Send windows: «deliver between 09:00 and 21:00 in the recipient's own zone».

use chrono::{DateTime, NaiveTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::field::named_fields;
use crate::local::{format_clock, offset_changes, parse_clock, wall_clock_arrivals};

/// The zone a recipient's window is read in: their own, or the mailing's when they have none.
#[must_use]
pub fn recipient_zone(recipient: Option<Tz>, mailing: Tz) -> Tz {
    recipient.unwrap_or(mailing)
}

/// A daily window of wall-clock time, `[opens, closes)`, in some zone; it wraps midnight when
/// `closes` is earlier than `opens` (22:00–06:00).
///
/// JSON: `{"from": "09:00", "to": "21:00"}`. Whether an instant is inside is read from the wall
/// clock at that instant, so on DST days the window is shorter or longer in real time. When the
/// opening time falls in a DST gap, the window opens at the first instant after the gap; in the
/// repeated hour of a fall-back the wall clock may enter the window twice, and each entry is an
/// opening.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawWindow", into = "RawWindow")]
pub struct SendWindow {
    opens: NaiveTime,
    closes: NaiveTime,
}

/// How far ahead openings are looked for: a window opens at least once every calendar day, and
/// no zone has skipped more than one.
const SEARCH_DAYS: u64 = 4;

impl SendWindow {
    /// The window from `opens` (inclusive) to `closes` (exclusive), both whole minutes.
    ///
    /// # Errors
    /// [`Error::InvalidField`] naming `from` or `to` when a time has seconds, or naming `to`
    /// when it equals `from` (an empty window would never open).
    pub fn new(opens: NaiveTime, closes: NaiveTime) -> Result<Self, Error> {
        for (time, field) in [(opens, "from"), (closes, "to")] {
            if time.second() != 0 || time.nanosecond() != 0 {
                return Err(Error::invalid(
                    field,
                    format!("`{time}` is not a whole minute"),
                ));
            }
        }
        if opens == closes {
            return Err(Error::invalid(
                "to",
                "equals `from`: the window would be empty; leave the window out to send at any time",
            ));
        }
        Ok(Self { opens, closes })
    }

    /// The wall-clock time the window opens at.
    #[must_use]
    pub const fn opens(&self) -> NaiveTime {
        self.opens
    }

    /// The wall-clock time the window closes at (not included).
    #[must_use]
    pub const fn closes(&self) -> NaiveTime {
        self.closes
    }

    /// Whether the window spans midnight.
    #[must_use]
    pub fn wraps_midnight(&self) -> bool {
        self.closes < self.opens
    }

    /// Whether the wall clock in `tz` at `at` is inside the window.
    #[must_use]
    pub fn contains(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        let time = at.with_timezone(&tz).time();
        if self.wraps_midnight() {
            time >= self.opens || time < self.closes
        } else {
            self.opens <= time && time < self.closes
        }
    }

    /// The first instant after `at` at which the window opens in `tz`, whether or not `at` is
    /// inside. `None` only at the end of representable time.
    #[must_use]
    pub fn next_opening(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let today = at.with_timezone(&tz).date_naive();
        let first_day = today.pred_opt().unwrap_or(today);
        let arrivals = first_day
            .iter_days()
            .take(usize::try_from(SEARCH_DAYS + 2).unwrap_or(usize::MAX))
            .flat_map(|day| wall_clock_arrivals(tz, day.and_time(self.opens)));
        let horizon = at.checked_add_signed(TimeDelta::days(i64::try_from(SEARCH_DAYS).ok()?))?;
        arrivals
            .chain(offset_changes(tz, at, horizon))
            .filter(|&candidate| candidate > at && self.opens_at(candidate, tz))
            .min()
    }

    /// When a delivery due at `at` may go: `at` itself inside the window, else the next opening.
    /// `None` only at the end of representable time.
    #[must_use]
    pub fn earliest_delivery(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        if self.contains(at, tz) {
            Some(at)
        } else {
            self.next_opening(at, tz)
        }
    }

    /// [`SendWindow::earliest_delivery`] in the recipient's zone, or the mailing's when the
    /// recipient has none.
    #[must_use]
    pub fn earliest_delivery_for(
        &self,
        at: DateTime<Utc>,
        recipient: Option<Tz>,
        mailing: Tz,
    ) -> Option<DateTime<Utc>> {
        self.earliest_delivery(at, recipient_zone(recipient, mailing))
    }

    /// Whether the window is entered at `at`: inside then, outside the second before.
    fn opens_at(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        self.contains(at, tz)
            && at
                .checked_sub_signed(TimeDelta::seconds(1))
                .is_some_and(|before| !self.contains(before, tz))
    }
}

named_fields! {
    from_text: String = "from";
    to_text: String = "to";
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    #[serde(deserialize_with = "from_text")]
    from: String,
    #[serde(deserialize_with = "to_text")]
    to: String,
}

impl TryFrom<RawWindow> for SendWindow {
    type Error = Error;

    fn try_from(raw: RawWindow) -> Result<Self, Error> {
        Self::new(parse_clock(&raw.from, "from")?, parse_clock(&raw.to, "to")?)
    }
}

impl From<SendWindow> for RawWindow {
    fn from(window: SendWindow) -> Self {
        Self {
            from: format_clock(window.opens),
            to: format_clock(window.closes),
        }
    }
}

/// The first instant of the civil day after the one `at` falls on in `zone`: when a daily
/// quota renews. Midnight may fall in a DST gap somewhere; the first valid hour is taken.
pub fn next_local_midnight(at: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    let tomorrow = at.with_timezone(&zone).date_naive() + chrono::Days::new(1);
    local_day_start(tomorrow, zone).unwrap_or(at + chrono::TimeDelta::days(1))
}

/// The first instant of `date` in `zone`: its midnight, or the first whole hour after a DST
/// gap that swallowed midnight; `None` only for a date outside chrono's range.
pub fn local_day_start(date: chrono::NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
    (0..24).find_map(|h| {
        date.and_hms_opt(h, 0, 0)
            .and_then(|t| t.and_local_timezone(zone).earliest())
            .map(|t| t.with_timezone(&Utc))
    })
}
