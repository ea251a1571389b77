//! Reading schedules, graces, windows and keys: bad input is an error naming the field.

use std::error::Error as _;

use crate::common::local;
use chrono::{NaiveTime, TimeDelta};
use rassylka_schedule::{Error, Every, Grace, Misfire, OccurrenceKey, Schedule, SendWindow, Tz};

fn schedule_error(json: &str) -> String {
    match Schedule::from_json(json) {
        Ok(schedule) => panic!("accepted {json}: {schedule:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn the_spec_schedule_file_reads_and_round_trips() {
    let json = r#"{"start": "2027-01-31T10:00", "tz": "Europe/Moscow", "every": "month",
                   "until": "2027-12-31T23:59", "misfire": {"latest_within": "6h"}}"#;
    let schedule: Schedule = json.parse().unwrap();
    assert_eq!(schedule.start(), local("2027-01-31T10:00"));
    assert_eq!(schedule.tz(), Tz::Europe__Moscow);
    assert_eq!(schedule.every(), Every::Month);
    assert_eq!(schedule.until(), Some(local("2027-12-31T23:59")));
    assert_eq!(
        schedule.misfire(),
        Misfire::LatestWithin(Some("6h".parse().unwrap()))
    );
    let written = serde_json::to_string(&schedule).unwrap();
    assert_eq!(
        written,
        r#"{"start":"2027-01-31T10:00","tz":"Europe/Moscow","every":"month","until":"2027-12-31T23:59","misfire":{"latest_within":"6h"}}"#
    );
    assert_eq!(Schedule::from_json(&written).unwrap(), schedule);
}

#[test]
fn every_periodicity_and_misfire_form_reads() {
    for every in ["once", "day", "week", "month", "year"] {
        let json = format!(r#"{{"start": "2027-01-01T10:00", "tz": "UTC", "every": "{every}"}}"#);
        let schedule = Schedule::from_json(&json).unwrap();
        assert_eq!(schedule.every().as_str(), every);
        assert_eq!(schedule.misfire(), Misfire::LatestWithin(None));
    }
    for (misfire, expected) in [
        (r#""skip""#, Misfire::Skip),
        (r#""latest_within""#, Misfire::LatestWithin(None)),
        (
            r#"{"all_within": {"grace": "1d", "max": 3}}"#,
            Misfire::AllWithin {
                grace: "1d".parse().unwrap(),
                max: 3,
            },
        ),
    ] {
        let json = format!(
            r#"{{"start": "2027-01-01T10:00", "tz": "UTC", "every": "day", "misfire": {misfire}}}"#
        );
        let schedule = Schedule::from_json(&json).unwrap();
        assert_eq!(schedule.misfire(), expected);
        let again: Schedule =
            serde_json::from_str(&serde_json::to_string(&schedule).unwrap()).unwrap();
        assert_eq!(again, schedule);
    }
}

#[test]
fn bad_schedules_are_errors_naming_the_field() {
    let cases = [
        (
            r#"{"start": "2027-01-31T10:00", "tz": "Europe/Mosco", "every": "day"}"#,
            "`tz`",
        ),
        (
            r#"{"start": "2027-01-31 10:00", "tz": "UTC", "every": "day"}"#,
            "`start`",
        ),
        (
            r#"{"start": "2027-02-30T10:00", "tz": "UTC", "every": "day"}"#,
            "`start`",
        ),
        (
            r#"{"start": "2027-01-31T10:00:00", "tz": "UTC", "every": "day"}"#,
            "`start`",
        ),
        (
            r#"{"start": "2027-01-31T24:00", "tz": "UTC", "every": "day"}"#,
            "`start`",
        ),
        (r#"{"start": 2027, "tz": "UTC", "every": "day"}"#, "`start`"),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": "day", "until": "2027-01-31T09:59"}"#,
            "`until`",
        ),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": "day", "until": "tomorrow"}"#,
            "`until`",
        ),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": "fortnight"}"#,
            "`every`",
        ),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": 7}"#,
            "`every`",
        ),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": "day", "at": "10:00"}"#,
            "`at`",
        ),
        (r#"{"tz": "UTC", "every": "day"}"#, "`start`"),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": "day", "misfire": {"latest_within": "0m"}}"#,
            "`misfire.latest_within`",
        ),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": "day", "misfire": {"latest_within": "-1h"}}"#,
            "`misfire.latest_within`",
        ),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": "day", "misfire": {"latest_within": 6}}"#,
            "`misfire.latest_within`",
        ),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": "day", "misfire": {"all_within": {"grace": "6x", "max": 2}}}"#,
            "`misfire.all_within.grace`",
        ),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": "day", "misfire": {"all_within": {"grace": "6h", "max": 0}}}"#,
            "`misfire.all_within.max`",
        ),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": "day", "misfire": "sometimes"}"#,
            "`misfire`",
        ),
        (
            r#"{"start": "2027-01-31T10:00", "tz": "UTC", "every": "day", "misfire": {"skip": true, "latest_within": "1h"}}"#,
            "`misfire`",
        ),
    ];
    for (json, field) in cases {
        let message = schedule_error(json);
        assert!(message.contains(field), "{json}: {message}");
    }
}

#[test]
fn an_unknown_zone_keeps_its_cause() {
    let error = Schedule::from_json(
        r#"{"start": "2027-01-31T10:00", "tz": "Mars/Olympus", "every": "day"}"#,
    )
    .unwrap_err();
    assert!(matches!(error, Error::Json(_)));
    assert!(error.to_string().contains("Mars/Olympus"), "{error}");
}

#[test]
fn the_builder_checks_its_fields_too() {
    let error = Schedule::new(
        local("2027-01-31T10:00") + TimeDelta::seconds(5),
        Tz::UTC,
        Every::Day,
    )
    .unwrap_err();
    assert_eq!(error.field(), Some("start"));
    let schedule = Schedule::new(local("2027-01-31T10:00"), Tz::UTC, Every::Day).unwrap();
    let error = schedule.with_until(local("2027-01-30T10:00")).unwrap_err();
    assert_eq!(error.field(), Some("until"));
    assert_eq!(
        error.to_string(),
        "invalid `until`: 2027-01-30T10:00 is before `start` 2027-01-31T10:00"
    );
}

#[test]
fn graces_read_and_print_compactly() {
    for (text, minutes) in [
        ("30m", 30),
        ("6h", 360),
        ("1h30m", 90),
        ("2d", 2880),
        ("1d2h3m", 1563),
    ] {
        let grace: Grace = text.parse().unwrap();
        assert_eq!(grace.length(), TimeDelta::minutes(minutes), "{text}");
        assert_eq!(grace.to_string(), text);
    }
    assert_eq!("90m".parse::<Grace>().unwrap().to_string(), "1h30m");
    assert_eq!(
        "45s".parse::<Grace>().unwrap().length(),
        TimeDelta::seconds(45)
    );
    for bad in [
        "",
        "0m",
        "0h0m",
        "-1h",
        "6",
        "h",
        "1m1h",
        "1h1h",
        "1.5h",
        "6 h",
        "400d",
        "99999999999999999999d",
    ] {
        let error = bad.parse::<Grace>().unwrap_err();
        assert_eq!(error.field(), Some("grace"), "{bad}");
    }
    assert!(Grace::new(TimeDelta::zero()).is_err());
    assert!(Grace::new(TimeDelta::milliseconds(1500)).is_err());
}

#[test]
fn windows_read_and_check_their_fields() {
    let window: SendWindow = serde_json::from_str(r#"{"from": "22:00", "to": "06:00"}"#).unwrap();
    assert_eq!(window.opens(), NaiveTime::from_hms_opt(22, 0, 0).unwrap());
    assert!(window.wraps_midnight());
    assert_eq!(
        serde_json::to_string(&window).unwrap(),
        r#"{"from":"22:00","to":"06:00"}"#
    );
    for (json, field) in [
        (r#"{"from": "9:00", "to": "21:00"}"#, "`from`"),
        (r#"{"from": "09:00", "to": "21:60"}"#, "`to`"),
        (r#"{"from": "09:00", "to": "09:00"}"#, "`to`"),
        (r#"{"from": "09:00"}"#, "`to`"),
        (r#"{"from": "09:00", "to": "21:00", "tz": "UTC"}"#, "`tz`"),
        (r#"{"from": 9, "to": "21:00"}"#, "`from`"),
    ] {
        let message = serde_json::from_str::<SendWindow>(json)
            .unwrap_err()
            .to_string();
        assert!(message.contains(field), "{json}: {message}");
    }
}

#[test]
fn keys_round_trip_through_text_and_serde() {
    let key = OccurrenceKey::new("m-birthday", 3, local("2027-01-31T10:00")).unwrap();
    assert_eq!(key.to_string(), "m-birthday/v3/2027-01-31T10:00");
    assert_eq!(key.to_string().parse::<OccurrenceKey>().unwrap(), key);
    let nested = OccurrenceKey::new("tenant/m-1", 0, local("2027-01-31T10:00")).unwrap();
    assert_eq!(nested.to_string().parse::<OccurrenceKey>().unwrap(), nested);
    assert_eq!(nested.mailing(), "tenant/m-1");
    let json = serde_json::to_string(&key).unwrap();
    assert_eq!(json, r#""m-birthday/v3/2027-01-31T10:00""#);
    assert_eq!(serde_json::from_str::<OccurrenceKey>(&json).unwrap(), key);

    let earlier = OccurrenceKey::new("m-birthday", 3, local("2027-01-30T10:00")).unwrap();
    let older_version = OccurrenceKey::new("m-birthday", 2, local("2028-01-31T10:00")).unwrap();
    assert!(earlier < key);
    assert!(older_version < earlier);
}

#[test]
fn bad_keys_are_errors_naming_the_part() {
    for (text, field) in [
        ("m-birthday/v3/2027-01-31T10:00:00", "local"),
        ("m-birthday/3/2027-01-31T10:00", "version"),
        ("m-birthday/v03/2027-01-31T10:00", "version"),
        ("m-birthday/v+3/2027-01-31T10:00", "version"),
        ("/v3/2027-01-31T10:00", "mailing"),
        ("m birthday/v3/2027-01-31T10:00", "mailing"),
        ("v3/2027-01-31T10:00", "key"),
    ] {
        let error = text.parse::<OccurrenceKey>().unwrap_err();
        assert_eq!(error.field(), Some(field), "{text}: {error}");
    }
    let error = OccurrenceKey::new("", 1, local("2027-01-31T10:00")).unwrap_err();
    assert_eq!(error.field(), Some("mailing"));
}

#[test]
fn errors_carry_their_cause() {
    let error = rassylka_schedule::parse_zone("Europe/Mosco").unwrap_err();
    assert_eq!(error.field(), Some("tz"));
    assert!(
        error
            .to_string()
            .starts_with("invalid `tz`: unknown time zone `Europe/Mosco`"),
        "{error}"
    );
    let cause = error.source().expect("the zone parser's error");
    assert!(cause.downcast_ref::<chrono_tz::ParseError>().is_some());
    assert_eq!(
        rassylka_schedule::parse_zone("Asia/Yekaterinburg").unwrap(),
        Tz::Asia__Yekaterinburg
    );

    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Error>();
}

#[test]
fn extreme_instants_give_answers_not_panics() {
    use chrono::{DateTime, NaiveDate, Utc};
    let extremes = [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC];
    for every in ["once", "day", "week", "month", "year"] {
        let json = format!(
            r#"{{"start": "9999-12-31T23:59", "tz": "Pacific/Kiritimati", "every": "{every}"}}"#
        );
        let schedule = Schedule::from_json(&json).unwrap();
        for at in extremes {
            let _ = schedule.next_after(at);
            let _ = schedule.due(Some(at), at);
            let _ = schedule.due(None, at);
            let _ = schedule.catch_up(NaiveDate::MIN, at, 3);
            let _ = schedule.next_n_after(at, 3).count();
        }
        assert_eq!(
            schedule.between(extremes[0], extremes[1]).count(),
            1,
            "{every}"
        );
    }
    let window: SendWindow = serde_json::from_str(r#"{"from": "09:00", "to": "21:00"}"#).unwrap();
    for at in extremes {
        let _ = window.contains(at, Tz::Pacific__Kiritimati);
        let _ = window.earliest_delivery(at, Tz::Pacific__Kiritimati);
    }
    assert!(
        window
            .next_opening(extremes[0], Tz::Europe__Moscow)
            .is_some()
    );
}

#[test]
fn a_grace_too_long_for_any_clock_is_an_error_not_a_panic() {
    for grace in [
        "9999999999999999s",
        "9223372036854775807s",
        "106751991167301d",
        "99999999999999h",
    ] {
        let json = format!(
            r#"{{"start":"2027-01-31T10:00","tz":"Europe/Moscow","every":"month","misfire":{{"latest_within":"{grace}"}}}}"#
        );
        let error = schedule_error(&json);
        assert!(error.contains("at most 366d"), "{grace}: {error}");
    }
}
