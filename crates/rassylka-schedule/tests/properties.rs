//! Properties over random schedules and zones: `next_after` agrees with `between`, occurrences
//! strictly increase, and each keeps the start's time of day unless a DST gap moved it.

use chrono::{DateTime, LocalResult, NaiveDate, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use rassylka_schedule::{Every, Schedule, Tz};

const ZONES: [Tz; 12] = [
    Tz::Europe__Berlin,
    Tz::America__New_York,
    Tz::America__Santiago,
    Tz::Australia__Lord_Howe,
    Tz::Europe__Moscow,
    Tz::Asia__Vladivostok,
    Tz::UTC,
    Tz::Pacific__Chatham,
    Tz::America__Sao_Paulo,
    Tz::Asia__Tehran,
    Tz::America__Havana,
    Tz::Asia__Kolkata,
];

const EVERY: [Every; 5] = [
    Every::Once,
    Every::Day,
    Every::Week,
    Every::Month,
    Every::Year,
];

/// Months and times of day weighted towards DST transitions, which are the interesting cases.
fn months() -> impl Strategy<Value = u32> {
    prop_oneof![3 => prop::sample::select(vec![3u32, 4, 9, 10, 11]), 1 => 1u32..=12]
}

fn hours() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0u32..4, 1 => 0u32..24]
}

fn minutes() -> impl Strategy<Value = u32> {
    prop_oneof![3 => prop::sample::select(vec![0u32, 15, 30, 45]), 1 => 0u32..60]
}

fn schedules() -> impl Strategy<Value = Schedule> {
    (
        0..ZONES.len(),
        0..EVERY.len(),
        (1990i32..2040, months(), 1u32..=31, hours(), minutes()),
        proptest::option::of(0u64..4000),
    )
        .prop_filter_map(
            "a calendar date",
            |(zone, every, (year, month, day, hour, minute), until)| {
                let start =
                    NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, 0)?;
                let schedule = Schedule::new(start, ZONES[zone], EVERY[every]).ok()?;
                match until {
                    None => Some(schedule),
                    Some(days) => schedule
                        .with_until(start.checked_add_days(chrono::Days::new(days))?)
                        .ok(),
                }
            },
        )
}

/// A span holding a few dozen occurrences, whatever the periodicity.
fn span(every: Every) -> TimeDelta {
    match every {
        Every::Once | Every::Year => TimeDelta::days(366 * 40),
        Every::Day => TimeDelta::days(400),
        Every::Week => TimeDelta::days(7 * 40),
        Every::Month => TimeDelta::days(31 * 40),
    }
}

fn around_start(schedule: &Schedule, offset_minutes: i64) -> DateTime<Utc> {
    schedule.start().and_utc() + TimeDelta::minutes(offset_minutes)
}

proptest! {
    #[test]
    fn next_after_walks_exactly_through_between(
        schedule in schedules(),
        offset_minutes in -100_000i64..1_000_000,
    ) {
        let from = around_start(&schedule, offset_minutes);
        let to = from + span(schedule.every());
        let listed: Vec<_> = schedule.between(from, to).collect();

        let just_before = from - TimeDelta::nanoseconds(1);
        let mut walked = Vec::new();
        let mut cursor = schedule.next_after(just_before);
        while let Some(occurrence) = cursor.filter(|o| o.utc() < to) {
            prop_assert!(walked.len() <= listed.len(), "next_after ran past between");
            walked.push(occurrence);
            cursor = schedule.next_after(occurrence.utc());
        }
        prop_assert_eq!(&walked, &listed);

        for pair in listed.windows(2) {
            prop_assert!(pair[0].utc() < pair[1].utc(), "{:?} then {:?}", pair[0], pair[1]);
            prop_assert!(pair[0].scheduled_local() < pair[1].scheduled_local());
        }
        for occurrence in &listed {
            prop_assert!(occurrence.utc() >= from && occurrence.utc() < to);
            prop_assert_eq!(schedule.occurrence_at(occurrence.scheduled_local()), Some(*occurrence));
        }
    }

    #[test]
    fn next_n_after_is_the_head_of_between(
        schedule in schedules(),
        offset_minutes in -100_000i64..1_000_000,
        count in 0usize..20,
    ) {
        let after = around_start(&schedule, offset_minutes);
        let head: Vec<_> = schedule.next_n_after(after, count).collect();
        let far = after + span(schedule.every()) * 2;
        let listed: Vec<_> = schedule
            .between(after + TimeDelta::nanoseconds(1), far)
            .take(count)
            .collect();
        prop_assert!(head.len() <= count);
        prop_assert_eq!(&head[..listed.len()], &listed[..]);
        prop_assert_eq!(head.first().copied(), schedule.next_after(after).filter(|_| count > 0));
    }

    #[test]
    fn occurrences_keep_the_start_time_of_day_except_in_a_gap(
        schedule in schedules(),
        offset_minutes in -100_000i64..1_000_000,
    ) {
        let from = around_start(&schedule, offset_minutes);
        let tz = schedule.tz();
        for occurrence in schedule.between(from, from + span(schedule.every())) {
            let scheduled = occurrence.scheduled_local();
            prop_assert_eq!(scheduled.time(), schedule.start().time());
            let actual = occurrence.instant().naive_local();
            match tz.from_local_datetime(&scheduled) {
                LocalResult::Single(at) => prop_assert_eq!(at, occurrence.instant()),
                LocalResult::Ambiguous(first, _) => prop_assert_eq!(first, occurrence.instant()),
                LocalResult::None => {
                    let shift = actual - scheduled;
                    prop_assert!(
                        shift > TimeDelta::zero() && shift <= TimeDelta::hours(1),
                        "gap shift {shift} at {scheduled}"
                    );
                }
            }
            if let Some(until) = schedule.until() {
                prop_assert!(scheduled <= until);
            }
        }
    }

    #[test]
    fn due_never_fires_more_than_the_policy_allows(
        schedule in schedules(),
        offset_minutes in -100_000i64..1_000_000,
        down_minutes in 0i64..20_000,
    ) {
        let now = around_start(&schedule, offset_minutes);
        let checked = now - TimeDelta::minutes(down_minutes);
        let due = schedule.due(Some(checked), now);
        prop_assert!(due.fire.len() <= 1);
        let grace = schedule.grace().length();
        for occurrence in due.fire.iter().chain(&due.missed) {
            prop_assert!(occurrence.utc() > checked && occurrence.utc() <= now);
        }
        for occurrence in &due.fire {
            prop_assert!(now - occurrence.utc() <= grace);
        }
        let all: Vec<_> = schedule.between(checked + TimeDelta::nanoseconds(1), now + TimeDelta::nanoseconds(1)).collect();
        if all.len() <= rassylka_schedule::MISSED_LIMIT {
            let mut reported: Vec<_> = due.fire.iter().chain(&due.missed).copied().collect();
            reported.sort_by_key(|o| o.utc());
            prop_assert_eq!(reported, all);
        }
    }
}
