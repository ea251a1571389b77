//! Misfires: what happens to occurrences that came due while nobody was checking.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Every, Grace, Occurrence, Schedule};

/// How late an occurrence may be found and still count as on time under [`Misfire::Skip`]:
/// a dispatcher polling every minute or so is not «down».
pub const ON_TIME: Grace = Grace::from_minutes(5);

/// The default grace of a one-time mailing.
pub const ONCE_GRACE: Grace = Grace::from_minutes(60);

/// The cap of the default grace of a repeating mailing (the default is min(period / 2, 6 h)).
pub const REPEATING_GRACE_CAP: Grace = Grace::from_minutes(6 * 60);

/// At most this many missed occurrences are listed by [`Schedule::due`]; older ones are only
/// flagged by [`Due::missed_truncated`].
pub const MISSED_LIMIT: usize = 100;

/// What to do with occurrences found late.
///
/// JSON: `"skip"`, `"latest_within"` (default grace), `{"latest_within": "6h"}` or
/// `{"all_within": {"grace": "1d", "max": 3}}`. Left out, it is `latest_within` with the
/// default grace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Misfire {
    /// Fire only an occurrence found within [`ON_TIME`] of its instant; never catch up.
    Skip,
    /// Fire the latest late occurrence if it is no older than the grace; `None` is the default
    /// grace: 1 h for a one-time schedule, min(period / 2, 6 h) for a repeating one.
    LatestWithin(Option<Grace>),
    /// Fire every late occurrence no older than `grace`, at most the `max` latest of them.
    AllWithin {
        /// How old an occurrence may be and still fire.
        grace: Grace,
        /// How many occurrences fire at most; at least 1.
        max: u32,
    },
}

impl Default for Misfire {
    fn default() -> Self {
        Self::LatestWithin(None)
    }
}

/// What a check of the schedule found: the occurrences to fire now and those missed for good.
///
/// Both lists are in time order and bounded: `fire` by the policy, `missed` by
/// [`MISSED_LIMIT`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Occurrences to start now.
    pub fire: Vec<Occurrence>,
    /// Occurrences found too late by the policy: journal them as missed, never send them.
    pub missed: Vec<Occurrence>,
    /// Older missed occurrences exist that are not in `missed`.
    pub missed_truncated: bool,
}

/// One missed run of a date-rule mailing, to evaluate with its own «today».
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CatchUpRun {
    /// The run's civil date in the schedule's zone: the audience rules' `D`.
    pub evaluation_date: NaiveDate,
    /// The occurrence the run belongs to; its key deduplicates the deliveries.
    pub occurrence: Occurrence,
}

/// The runs a date-rule mailing missed, oldest first, at most the limit asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// The runs to evaluate, each with its own evaluation date.
    pub runs: Vec<CatchUpRun>,
    /// Older missed runs exist beyond the limit; they are given up.
    pub truncated: bool,
}

impl Schedule {
    /// The grace the misfire policy gives this schedule.
    #[must_use]
    pub fn grace(&self) -> Grace {
        match self.misfire() {
            Misfire::Skip => ON_TIME,
            Misfire::LatestWithin(Some(grace)) | Misfire::AllWithin { grace, .. } => grace,
            Misfire::LatestWithin(None) => self
                .every()
                .shortest_period()
                .and_then(|period| Grace::new(period / 2).ok())
                .map_or(ONCE_GRACE, |half| half.min(REPEATING_GRACE_CAP)),
        }
    }

    /// The occurrences that came due in `(checked, now]` and what the misfire policy makes of
    /// them.
    ///
    /// `checked` is the instant the dispatcher last looked at this schedule (or, the first
    /// time, confirmed the mailing). `None` means no history at all: a repeating schedule then
    /// does not backfill (its first occurrence is the first one after `now`), while a one-time
    /// schedule whose instant has passed fires within its grace and is otherwise missed.
    ///
    /// An occurrence is late by `now − instant`. The latest occurrence, or the `max` latest for
    /// [`Misfire::AllWithin`], fires when it is no later than [`Schedule::grace`]; every other
    /// occurrence in the interval is missed. The crate never reads the clock.
    ///
    /// This decides only about occurrences that never started. An occurrence the dispatcher has
    /// already started (its audience frozen in the journal under its [`Occurrence::key`]) is
    /// finished whatever its age: the dispatcher finds it with [`Schedule::occurrence_at`] from
    /// the key and skips keys it already holds, which also makes two schedulers firing the same
    /// occurrence deliver once. Deliveries of a fired occurrence still wait for the send window
    /// ([`SendWindow`](crate::SendWindow)).
    #[must_use]
    pub fn due(&self, checked: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Due {
        let since = match (checked, self.every()) {
            (Some(checked), _) => Some(checked),
            (None, Every::Once) => None,
            (None, _) => return Due::default(),
        };
        let grace = self.grace().length();
        let fire_limit = match self.misfire() {
            Misfire::AllWithin { max, .. } => usize::try_from(max).unwrap_or(usize::MAX),
            Misfire::Skip | Misfire::LatestWithin(_) => 1,
        };
        let mut due = Due::default();
        let mut fire_closed = false;
        for occurrence in self.newest_first(now) {
            if since.is_some_and(|since| occurrence.utc() <= since) {
                break;
            }
            if due.missed.len() == MISSED_LIMIT {
                due.missed_truncated = true;
                break;
            }
            let in_grace = now - occurrence.utc() <= grace;
            if in_grace && !fire_closed && due.fire.len() < fire_limit {
                due.fire.push(occurrence);
            } else {
                due.missed.push(occurrence);
            }
            // Only the newest occurrences may fire: once one is passed over, all older ones are.
            fire_closed |= !in_grace || due.fire.len() == fire_limit;
        }
        due.fire.reverse();
        due.missed.reverse();
        due
    }

    /// The runs a date-rule mailing missed since the run date `last_completed` up to `now`:
    /// each occurrence whose evaluation date is after `last_completed`, with that date, the
    /// `limit` newest of them, oldest first.
    ///
    /// Each run is evaluated with its own «today» so that no cohort is skipped by downtime; its
    /// deliveries are keyed by the occurrence, so re-evaluating a run sends nothing twice.
    #[must_use]
    pub fn catch_up(&self, last_completed: NaiveDate, now: DateTime<Utc>, limit: usize) -> CatchUp {
        let mut catch_up = CatchUp::default();
        for occurrence in self.newest_first(now) {
            let evaluation_date = occurrence.evaluation_date();
            if evaluation_date <= last_completed {
                break;
            }
            if catch_up.runs.len() == limit {
                catch_up.truncated = true;
                break;
            }
            catch_up.runs.push(CatchUpRun {
                evaluation_date,
                occurrence,
            });
        }
        catch_up.runs.reverse();
        catch_up
    }
}

const SKIP: &str = "skip";
const LATEST_WITHIN: &str = "latest_within";
const ALL_WITHIN: &str = "all_within";

impl Serialize for Misfire {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Skip => serializer.serialize_str(SKIP),
            Self::LatestWithin(None) => serializer.serialize_str(LATEST_WITHIN),
            Self::LatestWithin(Some(grace)) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(LATEST_WITHIN, grace)?;
                map.end()
            }
            Self::AllWithin { grace, max } => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(
                    ALL_WITHIN,
                    &RawAllWithin {
                        grace: grace.to_string(),
                        max: *max,
                    },
                )?;
                map.end()
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllWithin {
    grace: String,
    max: u32,
}

impl<'de> Deserialize<'de> for Misfire {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MisfireVisitor)
    }
}

struct MisfireVisitor;

fn unknown_policy<E: de::Error>(name: &str) -> E {
    E::custom(format_args!(
        "invalid `misfire`: unknown policy `{name}`, expected `skip`, `latest_within` or `all_within`"
    ))
}

impl<'de> Visitor<'de> for MisfireVisitor {
    type Value = Misfire;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(
            "a `misfire` policy: \"skip\", \"latest_within\", {\"latest_within\": \"6h\"} or \
             {\"all_within\": {\"grace\": \"1d\", \"max\": 3}}",
        )
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Misfire, E> {
        match name {
            SKIP => Ok(Misfire::Skip),
            LATEST_WITHIN => Ok(Misfire::LatestWithin(None)),
            ALL_WITHIN => Err(E::custom(
                "invalid `misfire.all_within`: needs a grace and a max, e.g. \
                 {\"all_within\": {\"grace\": \"1d\", \"max\": 3}}",
            )),
            other => Err(unknown_policy(other)),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Misfire, A::Error> {
        let Some(name) = map.next_key::<String>()? else {
            return Err(de::Error::custom("invalid `misfire`: names no policy"));
        };
        let misfire = match name.as_str() {
            LATEST_WITHIN => {
                let text: String = map.next_value().map_err(|error| {
                    de::Error::custom(format_args!("invalid `misfire.latest_within`: {error}"))
                })?;
                Misfire::LatestWithin(Some(
                    Grace::parse(&text, "misfire.latest_within").map_err(de::Error::custom)?,
                ))
            }
            ALL_WITHIN => {
                let raw: RawAllWithin = map.next_value().map_err(|error| {
                    de::Error::custom(format_args!("invalid `misfire.all_within`: {error}"))
                })?;
                let grace = Grace::parse(&raw.grace, "misfire.all_within.grace")
                    .map_err(de::Error::custom)?;
                if raw.max == 0 {
                    return Err(de::Error::custom(
                        "invalid `misfire.all_within.max`: must be at least 1",
                    ));
                }
                Misfire::AllWithin {
                    grace,
                    max: raw.max,
                }
            }
            other => return Err(unknown_policy(other)),
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "invalid `misfire`: takes exactly one policy",
            ));
        }
        Ok(misfire)
    }
}
