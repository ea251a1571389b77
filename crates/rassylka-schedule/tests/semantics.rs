//! SPEC §5a, one test (or a few) per row.

use std::collections::HashSet;

use crate::common::{instant, local, rfc3339, schedule};
use chrono::{Datelike, NaiveDate, Timelike, Weekday};
use rassylka_schedule::{Grace, Misfire, OccurrenceKey, SendWindow, Tz};

const FAR_PAST: &str = "2000-01-01T00:00:00Z";

fn only_occurrence(fields: &str) -> String {
    let schedule = schedule(fields);
    let all = rfc3339(schedule.between(instant(FAR_PAST), instant("2100-01-01T00:00:00Z")));
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

#[test]
fn once_in_a_gap_moves_forward_by_the_gap() {
    let cases = [
        (
            "2025-03-30T02:30",
            "Europe/Berlin",
            "2025-03-30T03:30:00+02:00",
        ),
        (
            "2025-03-09T02:30",
            "America/New_York",
            "2025-03-09T03:30:00-04:00",
        ),
        (
            "2024-09-08T00:30",
            "America/Santiago",
            "2024-09-08T01:30:00-03:00",
        ),
        (
            "2024-10-06T02:15",
            "Australia/Lord_Howe",
            "2024-10-06T02:45:00+11:00",
        ),
    ];
    for (start, tz, expected) in cases {
        let fields = format!(r#""start": "{start}", "tz": "{tz}", "every": "once""#);
        assert_eq!(only_occurrence(&fields), expected, "{tz}");
    }
}

#[test]
fn once_in_an_overlap_is_the_first_instant_exactly_once() {
    let cases = [
        ("2025-10-26T02:30", "Europe/Berlin", "2025-10-26T00:30:00Z"),
        (
            "2025-11-02T01:30",
            "America/New_York",
            "2025-11-02T05:30:00Z",
        ),
        (
            "2025-04-06T01:45",
            "Australia/Lord_Howe",
            "2025-04-05T14:45:00Z",
        ),
    ];
    for (start, tz, expected) in cases {
        let schedule = schedule(&format!(
            r#""start": "{start}", "tz": "{tz}", "every": "once""#
        ));
        let all: Vec<_> = schedule
            .between(instant(FAR_PAST), instant("2100-01-01T00:00:00Z"))
            .collect();
        assert_eq!(all.len(), 1, "{tz}");
        assert_eq!(all[0].utc(), instant(expected), "{tz}");
        assert_eq!(all[0].instant().naive_local(), local(start), "{tz}");
        assert_eq!(schedule.next_after(all[0].utc()), None, "{tz}");
    }
}

#[test]
fn daily_across_both_berlin_transitions_is_once_a_day() {
    let daily = schedule(r#""start": "2025-03-28T02:30", "tz": "Europe/Berlin", "every": "day""#);
    assert_eq!(
        rfc3339(daily.between(
            instant("2025-03-28T00:00:00Z"),
            instant("2025-04-01T00:00:00Z")
        )),
        [
            "2025-03-28T02:30:00+01:00",
            "2025-03-29T02:30:00+01:00",
            "2025-03-30T03:30:00+02:00",
            "2025-03-31T02:30:00+02:00",
        ]
    );
    assert_eq!(
        rfc3339(daily.between(
            instant("2025-10-24T00:00:00Z"),
            instant("2025-10-28T00:00:00Z")
        )),
        [
            "2025-10-24T02:30:00+02:00",
            "2025-10-25T02:30:00+02:00",
            "2025-10-26T02:30:00+02:00",
            "2025-10-27T02:30:00+01:00",
        ]
    );
}

#[test]
fn daily_across_gaps_elsewhere_never_drops_a_day() {
    let cases = [
        (
            "America/Santiago",
            "2024-09-06T00:30",
            [
                "2024-09-06T00:30:00-04:00",
                "2024-09-07T00:30:00-04:00",
                "2024-09-08T01:30:00-03:00",
                "2024-09-09T00:30:00-03:00",
            ],
        ),
        (
            "America/New_York",
            "2025-03-07T02:30",
            [
                "2025-03-07T02:30:00-05:00",
                "2025-03-08T02:30:00-05:00",
                "2025-03-09T03:30:00-04:00",
                "2025-03-10T02:30:00-04:00",
            ],
        ),
        (
            "Australia/Lord_Howe",
            "2024-10-04T02:15",
            [
                "2024-10-04T02:15:00+10:30",
                "2024-10-05T02:15:00+10:30",
                "2024-10-06T02:45:00+11:00",
                "2024-10-07T02:15:00+11:00",
            ],
        ),
    ];
    for (tz, start, expected) in cases {
        let daily = schedule(&format!(
            r#""start": "{start}", "tz": "{tz}", "every": "day""#
        ));
        assert_eq!(
            rfc3339(daily.next_n_after(instant(FAR_PAST), 4)),
            expected,
            "{tz}"
        );
    }
}

#[test]
fn monthly_from_the_31st_is_clamped_and_computed_from_the_start() {
    let monthly =
        schedule(r#""start": "2027-01-31T10:00", "tz": "Europe/Moscow", "every": "month""#);
    assert_eq!(
        rfc3339(monthly.next_n_after(instant(FAR_PAST), 6)),
        [
            "2027-01-31T10:00:00+03:00",
            "2027-02-28T10:00:00+03:00",
            "2027-03-31T10:00:00+03:00",
            "2027-04-30T10:00:00+03:00",
            "2027-05-31T10:00:00+03:00",
            "2027-06-30T10:00:00+03:00",
        ]
    );
    let leap = schedule(r#""start": "2028-01-31T10:00", "tz": "Europe/Moscow", "every": "month""#);
    let february = leap
        .next_after(instant("2028-02-01T00:00:00Z"))
        .map(|o| o.scheduled_local());
    assert_eq!(february, Some(local("2028-02-29T10:00")));
    let from_30th =
        schedule(r#""start": "2024-01-30T09:00", "tz": "Asia/Vladivostok", "every": "month""#);
    assert_eq!(
        rfc3339(from_30th.next_n_after(instant(FAR_PAST), 3)),
        [
            "2024-01-30T09:00:00+10:00",
            "2024-02-29T09:00:00+10:00",
            "2024-03-30T09:00:00+10:00"
        ]
    );
}

#[test]
fn yearly_from_february_29_falls_on_february_28_in_common_years() {
    let yearly = schedule(r#""start": "2024-02-29T10:00", "tz": "Europe/Berlin", "every": "year""#);
    let dates: Vec<_> = yearly
        .next_n_after(instant(FAR_PAST), 5)
        .map(|o| o.scheduled_local().date())
        .collect();
    let expected = [(2024, 29), (2025, 28), (2026, 28), (2027, 28), (2028, 29)]
        .map(|(year, day)| NaiveDate::from_ymd_opt(year, 2, day).unwrap());
    assert_eq!(dates, expected);
}

#[test]
fn weekly_keeps_weekday_and_local_time_while_the_utc_instant_moves() {
    let weekly =
        schedule(r#""start": "2025-03-03T10:00", "tz": "America/New_York", "every": "week""#);
    let spring: Vec<_> = weekly.next_n_after(instant(FAR_PAST), 3).collect();
    assert!(spring.iter().all(|o| o.instant().weekday() == Weekday::Mon));
    assert!(spring.iter().all(|o| o.instant().hour() == 10));
    let utc_hours: Vec<_> = spring.iter().map(|o| o.utc().hour()).collect();
    assert_eq!(utc_hours, [15, 14, 14]);

    let berlin = schedule(r#""start": "2025-10-20T10:00", "tz": "Europe/Berlin", "every": "week""#);
    assert_eq!(
        rfc3339(berlin.next_n_after(instant(FAR_PAST), 3)),
        [
            "2025-10-20T10:00:00+02:00",
            "2025-10-27T10:00:00+01:00",
            "2025-11-03T10:00:00+01:00"
        ]
    );
}

#[test]
fn russian_zones_have_fixed_offsets_all_year() {
    for (tz, offset) in [
        ("Europe/Moscow", "+03:00"),
        ("Asia/Yekaterinburg", "+05:00"),
        ("Asia/Vladivostok", "+10:00"),
    ] {
        let daily = schedule(&format!(
            r#""start": "2027-01-01T10:00", "tz": "{tz}", "every": "day""#
        ));
        let year = rfc3339(daily.between(
            instant("2026-12-31T00:00:00Z"),
            instant("2028-01-01T00:00:00Z"),
        ));
        assert_eq!(year.len(), 365, "{tz}");
        assert!(
            year.iter()
                .all(|text| text.ends_with(&format!("T10:00:00{offset}"))),
            "{tz}"
        );
    }
}

#[test]
fn thirty_minute_dst_does_not_move_a_morning_send() {
    let daily =
        schedule(r#""start": "2025-01-01T09:00", "tz": "Australia/Lord_Howe", "every": "day""#);
    let year: Vec<_> = daily
        .between(
            instant("2024-12-31T00:00:00Z"),
            instant("2025-12-31T00:00:00Z"),
        )
        .collect();
    assert_eq!(year.len(), 365);
    assert!(
        year.iter()
            .all(|o| o.instant().time() == local("2025-01-01T09:00").time())
    );
    let offsets: HashSet<_> = year
        .iter()
        .map(|o| o.instant().offset().to_string())
        .collect();
    assert_eq!(offsets.len(), 2, "{offsets:?}");
}

#[test]
fn next_after_is_strict_and_between_is_half_open() {
    let daily = schedule(r#""start": "2027-01-01T10:00", "tz": "Europe/Berlin", "every": "day""#);
    let second = instant("2027-01-02T09:00:00Z");
    let third = instant("2027-01-03T09:00:00Z");
    assert_eq!(daily.next_after(second).map(|o| o.utc()), Some(third));
    let just_before = second - chrono::TimeDelta::nanoseconds(1);
    assert_eq!(daily.next_after(just_before).map(|o| o.utc()), Some(second));
    let window: Vec<_> = daily.between(second, third).map(|o| o.utc()).collect();
    assert_eq!(window, [second]);
    assert_eq!(daily.between(third, second).count(), 0);
    assert_eq!(daily.between(second, second).count(), 0);
}

#[test]
fn iterators_are_bounded() {
    let daily = schedule(
        r#""start": "2027-01-01T10:00", "tz": "Europe/Berlin", "every": "day", "until": "2027-01-10T10:00""#,
    );
    assert_eq!(daily.next_n_after(instant(FAR_PAST), 1000).count(), 10);
    assert_eq!(
        daily
            .between(instant(FAR_PAST), instant("2100-01-01T00:00:00Z"))
            .count(),
        10
    );
    assert_eq!(daily.next_after(instant("2027-01-10T09:00:00Z")), None);

    let endless = schedule(r#""start": "2027-01-01T10:00", "tz": "Europe/Berlin", "every": "day""#);
    assert_eq!(endless.next_n_after(instant(FAR_PAST), 7).count(), 7);
    assert_eq!(endless.next_n_after(instant(FAR_PAST), 0).count(), 0);
    let days = (NaiveDate::from_ymd_opt(2127, 1, 1).unwrap()
        - NaiveDate::from_ymd_opt(2027, 1, 1).unwrap())
    .num_days();
    let century = endless.between(
        instant("2027-01-01T00:00:00Z"),
        instant("2127-01-01T00:00:00Z"),
    );
    assert_eq!(i64::try_from(century.count()).unwrap(), days);
    let last = endless
        .next_after(instant("9999-12-30T00:00:00Z"))
        .map(|o| o.scheduled_local());
    assert_eq!(last, Some(local("9999-12-30T10:00")));
    assert_eq!(endless.next_after(instant("9999-12-31T12:00:00Z")), None);
}

#[test]
fn start_in_the_past_does_not_backfill() {
    let daily = schedule(r#""start": "2020-01-01T10:00", "tz": "Europe/Moscow", "every": "day""#);
    let now = instant("2027-03-01T12:00:00+03:00");
    assert_eq!(daily.due(None, now), Default::default());
    assert_eq!(
        daily.next_after(now).map(|o| o.instant().to_rfc3339()),
        Some("2027-03-02T10:00:00+03:00".to_owned())
    );
}

#[test]
fn a_late_one_time_mailing_is_missed_beyond_its_grace() {
    let once = schedule(r#""start": "2027-03-01T10:00", "tz": "Europe/Moscow", "every": "once""#);
    assert_eq!(once.grace(), "1h".parse().unwrap());
    let on_time = once.due(None, instant("2027-03-01T10:30:00+03:00"));
    assert_eq!((on_time.fire.len(), on_time.missed.len()), (1, 0));
    let at_the_limit = once.due(None, instant("2027-03-01T11:00:00+03:00"));
    assert_eq!((at_the_limit.fire.len(), at_the_limit.missed.len()), (1, 0));
    let late = once.due(None, instant("2027-03-01T11:01:00+03:00"));
    assert_eq!((late.fire.len(), late.missed.len()), (0, 1));
    assert_eq!(late.missed[0].scheduled_local(), local("2027-03-01T10:00"));
    let early = once.due(None, instant("2027-03-01T09:59:00+03:00"));
    assert_eq!(early, Default::default());
    let already_checked = once.due(
        Some(instant("2027-03-01T10:00:00+03:00")),
        instant("2027-03-01T10:10:00+03:00"),
    );
    assert_eq!(already_checked, Default::default());
}

#[test]
fn send_now_is_due_at_the_now_it_was_made_with() {
    let now = instant("2027-03-01T07:42:31Z");
    let schedule = rassylka_schedule::Schedule::send_now(now, Tz::Europe__Moscow).unwrap();
    let due = schedule.due(None, now);
    assert_eq!(due.missed, []);
    assert_eq!(rfc3339(due.fire.clone()), ["2027-03-01T10:42:00+03:00"]);
    let key = due.fire[0].key("m-sale", 1).unwrap();
    assert_eq!(key.to_string(), "m-sale/v1/2027-03-01T10:42");

    // The second pass of Berlin's repeated hour: 02:10 CET is 01:10Z.
    let repeated = instant("2025-10-26T01:10:00Z");
    let schedule = rassylka_schedule::Schedule::send_now(repeated, Tz::Europe__Berlin).unwrap();
    let due = schedule.due(None, repeated);
    assert_eq!(due.fire.len(), 1);
    assert_eq!(due.fire[0].scheduled_local(), local("2025-10-26T02:10"));
}

#[test]
fn a_started_occurrence_can_be_found_from_its_key_however_late() {
    let daily = schedule(r#""start": "2027-01-01T10:00", "tz": "Europe/Moscow", "every": "day""#);
    let journal_key: OccurrenceKey = "m-daily/v1/2027-03-01T10:00".parse().unwrap();
    let now = instant("2027-03-04T12:00:00+03:00");
    let due = daily.due(Some(instant("2027-03-01T09:59:00+03:00")), now);
    assert!(
        due.missed
            .iter()
            .any(|o| o.scheduled_local() == journal_key.local())
    );
    let started = daily.occurrence_at(journal_key.local()).unwrap();
    assert_eq!(started.utc(), instant("2027-03-01T07:00:00Z"));
    assert_eq!(started.key("m-daily", 1).unwrap(), journal_key);
    assert_eq!(daily.occurrence_at(local("2027-03-01T10:05")), None);
    assert_eq!(daily.occurrence_at(local("2026-12-31T10:00")), None);

    let gap = schedule(r#""start": "2025-03-28T02:30", "tz": "Europe/Berlin", "every": "day""#);
    let shifted = gap.occurrence_at(local("2025-03-30T02:30")).unwrap();
    assert_eq!(shifted.instant().to_rfc3339(), "2025-03-30T03:30:00+02:00");
}

#[test]
fn downtime_fires_the_latest_within_grace_and_reports_the_rest() {
    let daily = schedule(
        r#""start": "2027-01-01T10:00", "tz": "Europe/Moscow", "every": "day", "misfire": {"latest_within": "6h"}"#,
    );
    let down_since = Some(instant("2027-03-01T09:00:00+03:00"));
    let due = daily.due(down_since, instant("2027-03-04T12:00:00+03:00"));
    assert_eq!(rfc3339(due.fire), ["2027-03-04T10:00:00+03:00"]);
    assert_eq!(
        rfc3339(due.missed),
        [
            "2027-03-01T10:00:00+03:00",
            "2027-03-02T10:00:00+03:00",
            "2027-03-03T10:00:00+03:00"
        ]
    );
    assert!(!due.missed_truncated);

    // Restarted at night: yesterday's slot is too old, today's runs at its own time.
    let night = instant("2027-03-04T03:00:00+03:00");
    let due = daily.due(down_since, night);
    assert_eq!(due.fire, []);
    assert_eq!(due.missed.len(), 3);
    assert_eq!(
        daily.next_after(night).map(|o| o.instant().to_rfc3339()),
        Some("2027-03-04T10:00:00+03:00".to_owned())
    );
}

#[test]
fn the_default_grace_is_half_the_period_capped_at_six_hours() {
    let daily = schedule(r#""start": "2027-01-01T10:00", "tz": "Europe/Moscow", "every": "day""#);
    assert_eq!(daily.misfire(), Misfire::LatestWithin(None));
    assert_eq!(daily.grace(), "6h".parse().unwrap());
    let checked = Some(instant("2027-03-01T09:00:00+03:00"));
    assert_eq!(
        daily
            .due(checked, instant("2027-03-01T16:00:00+03:00"))
            .fire
            .len(),
        1
    );
    assert_eq!(
        daily
            .due(checked, instant("2027-03-01T16:01:00+03:00"))
            .missed
            .len(),
        1
    );
}

#[test]
fn skip_fires_only_what_is_found_on_time() {
    let daily = schedule(
        r#""start": "2027-01-01T10:00", "tz": "Europe/Moscow", "every": "day", "misfire": "skip""#,
    );
    let checked = Some(instant("2027-03-01T09:59:00+03:00"));
    assert_eq!(
        daily
            .due(checked, instant("2027-03-01T10:04:00+03:00"))
            .fire
            .len(),
        1
    );
    let late = daily.due(checked, instant("2027-03-01T10:06:00+03:00"));
    assert_eq!((late.fire.len(), late.missed.len()), (0, 1));
}

#[test]
fn all_within_replays_up_to_max_of_the_latest() {
    let replay = |misfire: &str| {
        let fields = format!(
            r#""start": "2027-01-01T10:00", "tz": "Europe/Moscow", "every": "day", "misfire": {misfire}"#
        );
        schedule(&fields).due(
            Some(instant("2027-03-01T09:00:00+03:00")),
            instant("2027-03-04T12:00:00+03:00"),
        )
    };
    let capped = replay(r#"{"all_within": {"grace": "3d", "max": 2}}"#);
    assert_eq!(
        rfc3339(capped.fire),
        ["2027-03-03T10:00:00+03:00", "2027-03-04T10:00:00+03:00"]
    );
    assert_eq!(
        rfc3339(capped.missed),
        ["2027-03-01T10:00:00+03:00", "2027-03-02T10:00:00+03:00"]
    );
    let short = replay(r#"{"all_within": {"grace": "1d", "max": 5}}"#);
    assert_eq!(rfc3339(short.fire), ["2027-03-04T10:00:00+03:00"]);
    assert_eq!(short.missed.len(), 3);
}

#[test]
fn missed_occurrences_are_bounded() {
    let daily = schedule(r#""start": "2020-01-01T10:00", "tz": "Europe/Moscow", "every": "day""#);
    let due = daily.due(
        Some(instant("2020-01-01T00:00:00Z")),
        instant("2027-03-04T12:00:00+03:00"),
    );
    assert_eq!(due.fire.len(), 1);
    assert_eq!(due.missed.len(), rassylka_schedule::MISSED_LIMIT);
    assert!(due.missed_truncated);
    assert_eq!(
        due.missed.last().map(|o| o.scheduled_local()),
        Some(local("2027-03-03T10:00"))
    );
}

#[test]
fn a_fired_misfire_still_waits_for_the_send_window() {
    let daily = schedule(r#""start": "2027-01-01T07:00", "tz": "Europe/Moscow", "every": "day""#);
    let window: SendWindow = serde_json::from_str(r#"{"from": "09:00", "to": "21:00"}"#).unwrap();
    let now = instant("2027-03-04T08:30:00+03:00");
    let due = daily.due(Some(instant("2027-03-03T20:00:00+03:00")), now);
    assert_eq!(due.fire.len(), 1);
    let delivery = window.earliest_delivery_for(now, None, daily.tz());
    assert_eq!(delivery, Some(instant("2027-03-04T09:00:00+03:00")));
}

#[test]
fn date_rule_catch_up_evaluates_each_missed_run_with_its_own_date() {
    let daily = schedule(r#""start": "2027-01-01T10:00", "tz": "Europe/Moscow", "every": "day""#);
    let last = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
    let dates = |now: &str, limit: usize| {
        let catch_up = daily.catch_up(last, instant(now), limit);
        let dates: Vec<_> = catch_up
            .runs
            .iter()
            .map(|run| run.evaluation_date.to_string())
            .collect();
        (dates, catch_up.truncated)
    };
    assert_eq!(
        dates("2027-03-04T12:00:00+03:00", 10),
        (
            vec![
                "2027-03-02".into(),
                "2027-03-03".into(),
                "2027-03-04".into()
            ],
            false
        )
    );
    assert_eq!(
        dates("2027-03-04T09:00:00+03:00", 10),
        (vec!["2027-03-02".into(), "2027-03-03".into()], false)
    );
    assert_eq!(
        dates("2027-03-04T12:00:00+03:00", 2),
        (vec!["2027-03-03".into(), "2027-03-04".into()], true)
    );
    assert_eq!(dates("2027-03-01T12:00:00+03:00", 10), (vec![], false));

    // Vladivostok's 08:00 is the previous day in UTC; D is the local date.
    let east = schedule(r#""start": "2027-01-01T08:00", "tz": "Asia/Vladivostok", "every": "day""#);
    let runs = east
        .catch_up(last, instant("2027-03-01T23:00:00Z"), 10)
        .runs;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].evaluation_date,
        NaiveDate::from_ymd_opt(2027, 3, 2).unwrap()
    );
    assert_eq!(runs[0].occurrence.utc(), instant("2027-03-01T22:00:00Z"));

    let santiago =
        schedule(r#""start": "2024-09-01T00:30", "tz": "America/Santiago", "every": "day""#);
    let runs = santiago
        .catch_up(
            NaiveDate::from_ymd_opt(2024, 9, 7).unwrap(),
            instant("2024-09-08T12:00:00Z"),
            10,
        )
        .runs;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].evaluation_date,
        NaiveDate::from_ymd_opt(2024, 9, 8).unwrap()
    );
}

#[test]
fn two_schedulers_compute_one_key_for_one_occurrence() {
    let daily = schedule(r#""start": "2027-01-01T10:00", "tz": "Europe/Moscow", "every": "day""#);
    let now = instant("2027-03-01T10:01:00+03:00");
    let first = daily.due(Some(instant("2027-03-01T09:59:00+03:00")), now);
    let second = daily.due(Some(instant("2027-03-01T09:00:00+03:00")), now);
    let mut journal = HashSet::new();
    for occurrence in first.fire.iter().chain(&second.fire) {
        journal.insert(occurrence.key("m-daily", 7).unwrap());
    }
    let keys: Vec<_> = journal.iter().map(ToString::to_string).collect();
    assert_eq!(keys, ["m-daily/v7/2027-03-01T10:00"]);
}

#[test]
fn keys_hold_the_scheduled_local_time_not_the_shifted_instant() {
    let gap = schedule(r#""start": "2025-03-28T02:30", "tz": "Europe/Berlin", "every": "day""#);
    let shifted = gap.next_after(instant("2025-03-29T12:00:00Z")).unwrap();
    assert_eq!(shifted.instant().time(), local("2025-03-30T03:30").time());
    assert_eq!(
        shifted.key("m", 1).unwrap().to_string(),
        "m/v1/2025-03-30T02:30"
    );
}

#[test]
fn an_edited_schedule_does_not_repeat_what_was_sent() {
    let v3 = schedule(r#""start": "2027-01-01T10:00", "tz": "Europe/Moscow", "every": "day""#);
    let sent = v3
        .due(
            Some(instant("2027-03-01T09:59:00+03:00")),
            instant("2027-03-01T10:00:00+03:00"),
        )
        .fire;
    assert_eq!(sent.len(), 1);
    let edited_at = instant("2027-03-01T10:30:00+03:00");

    let v4 = schedule(
        r#""start": "2027-01-01T10:00", "tz": "Europe/Moscow", "every": "day", "until": "2027-06-30T10:00""#,
    );
    assert_eq!(
        v4.due(Some(edited_at), instant("2027-03-01T10:45:00+03:00"))
            .fire,
        []
    );
    let same_slot = v4.occurrence_at(local("2027-03-01T10:00")).unwrap();
    assert_ne!(same_slot.key("m", 4).unwrap(), sent[0].key("m", 3).unwrap());

    let moved = schedule(r#""start": "2027-01-01T12:00", "tz": "Europe/Moscow", "every": "day""#);
    let fired = moved
        .due(Some(edited_at), instant("2027-03-01T12:05:00+03:00"))
        .fire;
    assert_eq!(fired.len(), 1);
    assert_eq!(
        fired[0].key("m", 4).unwrap().to_string(),
        "m/v4/2027-03-01T12:00"
    );
}

#[test]
fn graces_are_configurable_in_code_too() {
    let daily = schedule(r#""start": "2027-01-01T10:00", "tz": "Europe/Moscow", "every": "day""#)
        .with_misfire(Misfire::LatestWithin(Some("30m".parse::<Grace>().unwrap())));
    let checked = Some(instant("2027-03-01T09:00:00+03:00"));
    assert_eq!(
        daily
            .due(checked, instant("2027-03-01T10:30:00+03:00"))
            .fire
            .len(),
        1
    );
    assert_eq!(
        daily
            .due(checked, instant("2027-03-01T10:31:00+03:00"))
            .fire
            .len(),
        0
    );
}

#[test]
fn a_day_a_zone_skipped_is_folded_into_the_next() {
    // Samoa moved across the date line: 2011-12-29 was followed by 2011-12-31.
    let daily = schedule(r#""start": "2011-12-28T10:00", "tz": "Pacific/Apia", "every": "day""#);
    let occurrences: Vec<_> = daily.next_n_after(instant(FAR_PAST), 3).collect();
    let scheduled: Vec<_> = occurrences.iter().map(|o| o.scheduled_local()).collect();
    assert_eq!(
        scheduled,
        [
            local("2011-12-28T10:00"),
            local("2011-12-29T10:00"),
            local("2011-12-31T10:00")
        ]
    );
    assert_eq!(
        rfc3339(occurrences.iter().copied()),
        [
            "2011-12-28T10:00:00-10:00",
            "2011-12-29T10:00:00-10:00",
            "2011-12-31T10:00:00+14:00"
        ]
    );
    assert_eq!(daily.next_after(occurrences[1].utc()), Some(occurrences[2]));
}
