//! Every row of SPEC §4a, through the public API.

use chrono::NaiveDate;
use chrono_tz::Tz;
use rassylka_model::{MessageClass, Recipient};
use rassylka_segment::{
    BookingMatch, CompileOptions, LeapDay, Outcome, Rule, Segment, SegmentError, Snapshot,
};
use serde_json::{Value, json};

const MOSCOW: Tz = chrono_tz::Europe::Moscow;

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn person(value: Value) -> Recipient {
    serde_json::from_value(value).unwrap()
}

fn compile_in(rule: Value, today: &str, zone: Tz, leap_day: LeapDay) -> Segment {
    let rule = Rule::from_value(&rule).unwrap();
    let options = CompileOptions::new(day(today), zone).with_leap_day(leap_day);
    Segment::compile(&rule, &options).unwrap()
}

fn compile(rule: Value, today: &str) -> Segment {
    compile_in(rule, today, MOSCOW, LeapDay::Feb28)
}

/// Evaluates directly and through a snapshot, checks they agree, returns the direct answer.
fn matches(segment: &Segment, recipient: &Recipient) -> bool {
    let direct = segment.matches(recipient);
    let snapshot = Snapshot::from_recipients([recipient], segment.options().zone);
    assert_eq!(segment.bind(&snapshot).unwrap().matches(0), direct);
    direct
}

fn ids(segment: &Segment, people: &[Recipient]) -> Vec<String> {
    people
        .iter()
        .filter(|r| matches(segment, r))
        .map(|r| r.id.clone())
        .collect()
}

fn born(id: &str, birth_date: &str) -> Recipient {
    person(json!({"id": id, "birth_date": birth_date}))
}

// --- logic -------------------------------------------------------------------------------

#[test]
fn a_leaf_on_missing_data_is_false_and_not_is_the_exact_complement() {
    let nobody = person(json!({"id": "x"}));
    for leaf in [
        json!({"gender": "female"}),
        json!({"age": {"gte": 0}}),
        json!({"country": {"in": ["RU"]}}),
        json!({"loyalty_group": "Gold"}),
        json!({"balance": {"lte": 1000000}}),
        json!({"registered": {"from": "2000-01-01"}}),
        json!({"last_purchase": {"older_than_days": 0}}),
        json!({"date": {"interval": {"field": "birthday", "from": "01-01", "to": "12-31"}}}),
        json!({"date": {"dynamic": {"field": "check_in", "days": 0, "when": "before"}}}),
        json!({"reachable": "email"}),
        json!({"is_set": "email"}),
        json!({"segment": "Командировочные"}),
    ] {
        let segment = compile(leaf.clone(), "2026-06-01");
        assert!(!matches(&segment, &nobody), "{leaf}");
        let negated = compile(json!({"not": leaf}), "2026-06-01");
        assert!(matches(&negated, &nobody), "not {leaf}");
    }
}

#[test]
fn not_in_with_an_unknown_country_includes_it_and_is_set_excludes_it() {
    let people = [
        person(json!({"id": "ru", "country": "RU"})),
        person(json!({"id": "kz", "country": "KZ"})),
        person(json!({"id": "unknown"})),
        person(json!({"id": "blank", "country": "  "})),
    ];
    let not_in = compile(json!({"country": {"not_in": ["ru"]}}), "2026-06-01");
    assert_eq!(ids(&not_in, &people), ["kz", "unknown", "blank"]);
    let known_not_in = compile(
        json!({"all": [{"country": {"is_set": true}}, {"country": {"not_in": ["RU"]}}]}),
        "2026-06-01",
    );
    assert_eq!(ids(&known_not_in, &people), ["kz"]);
    let unknown = compile(json!({"country": {"is_set": false}}), "2026-06-01");
    assert_eq!(ids(&unknown, &people), ["unknown", "blank"]);
}

#[test]
fn the_ecvi_pair_for_russia_and_not_for_russia_covers_everyone_exactly_once() {
    let people: Vec<Recipient> = ["RU", "KZ", "", "BY", "RU"]
        .iter()
        .enumerate()
        .map(|(i, c)| person(json!({"id": i.to_string(), "country": c})))
        .chain([person(json!({"id": "none"}))])
        .collect();
    let russia = compile(json!({"country": {"in": ["RU"]}}), "2026-06-01");
    let abroad = compile(json!({"country": {"not_in": ["RU"]}}), "2026-06-01");
    for r in &people {
        assert_ne!(matches(&russia, r), matches(&abroad, r), "{}", r.id);
    }
    let both = russia.count(&people, MessageClass::Service).matched
        + abroad.count(&people, MessageClass::Service).matched;
    assert_eq!(both, people.len() as u64);
}

// --- «today» and dates -----------------------------------------------------------------

#[test]
fn today_is_the_date_passed_in() {
    let guest = person(json!({"id": "g", "bookings": [{"check_in": "2026-12-01"}]}));
    let rule = json!({"date": {"dynamic": {"field": "check_in", "days": 3, "when": "before"}}});
    assert!(matches(&compile(rule.clone(), "2026-11-28"), &guest));
    assert!(!matches(&compile(rule.clone(), "2026-11-27"), &guest));
    assert!(!matches(&compile(rule, "2026-11-29"), &guest));
}

#[test]
fn instants_become_civil_dates_in_the_mailing_zone() {
    // 2025-03-01T22:30Z is 03-02 01:30 in Moscow, still 03-01 in UTC.
    let guest = person(json!({"id": "g", "registered_at": "2025-03-01T22:30:00Z",
        "bookings": [{"paid_at": "2025-03-01T22:30:00Z"}]}));
    let registered = json!({"registered": {"from": "2025-03-02", "to": "2025-03-02"}});
    assert!(matches(&compile(registered.clone(), "2025-06-01"), &guest));
    assert!(!matches(
        &compile_in(registered, "2025-06-01", chrono_tz::UTC, LeapDay::Feb28),
        &guest
    ));
    let after_payment =
        json!({"date": {"dynamic": {"field": "paid_at", "days": 1, "when": "after"}}});
    assert!(matches(
        &compile(after_payment.clone(), "2025-03-03"),
        &guest
    ));
    assert!(matches(
        &compile_in(after_payment, "2025-03-02", chrono_tz::UTC, LeapDay::Feb28),
        &guest
    ));
}

#[test]
fn instant_to_date_at_local_midnight_on_dst_days() {
    let berlin = chrono_tz::Europe::Berlin;
    // Spring forward 2025-03-30 (CET +1 until 02:00): local midnight is 23:00Z the day before.
    // Fall back 2025-10-26 (CEST +2 until 03:00): local midnight is 22:00Z the day before.
    for (before, at_midnight, local_day) in [
        ("2025-03-29T22:59:59Z", "2025-03-29T23:00:00Z", "2025-03-30"),
        ("2025-10-25T21:59:59Z", "2025-10-25T22:00:00Z", "2025-10-26"),
        // The evening of the DST days themselves: the next midnight is at the new offset.
        ("2025-03-30T21:59:59Z", "2025-03-30T22:00:00Z", "2025-03-31"),
        ("2025-10-26T22:59:59Z", "2025-10-26T23:00:00Z", "2025-10-27"),
    ] {
        let guest = person(json!({"id": "g", "bookings": [
            {"id": "late", "booked_at": before}, {"id": "midnight", "booked_at": at_midnight}]}));
        let rule = json!({"date": {"interval": {"field": "booked_at", "from": local_day, "to": local_day}}});
        let segment = compile_in(rule, "2025-12-01", berlin, LeapDay::Feb28);
        let mut found = Vec::new();
        assert_eq!(segment.evaluate(&guest, &mut found), Outcome::Bookings);
        assert_eq!(
            found,
            [BookingMatch {
                index: 1,
                anchor: Some(day(local_day))
            }],
            "{at_midnight}"
        );
    }
}

#[test]
fn all_bounds_are_inclusive() {
    let people: Vec<Recipient> = [
        "2024-01-01",
        "2024-01-02",
        "2024-12-31",
        "2025-01-01",
        "2023-12-31",
    ]
    .iter()
    .map(|d| person(json!({"id": d, "registered_at": format!("{d}T00:00:00+03:00")})))
    .collect();
    let year = compile(
        json!({"registered": {"from": "2024-01-01", "to": "2024-12-31"}}),
        "2026-01-01",
    );
    assert_eq!(
        ids(&year, &people),
        ["2024-01-01", "2024-01-02", "2024-12-31"]
    );
    let guests: Vec<Recipient> = ["2026-11-30", "2026-12-01", "2026-12-31", "2027-01-01"]
        .iter()
        .map(|d| person(json!({"id": d, "bookings": [{"check_in": d}]})))
        .collect();
    let december = compile(
        json!({"date": {"interval": {"field": "check_in", "from": "2026-12-01", "to": "2026-12-31"}}}),
        "2026-06-01",
    );
    assert_eq!(ids(&december, &guests), ["2026-12-01", "2026-12-31"]);
}

// --- dynamic rules ---------------------------------------------------------------------

#[test]
fn dynamic_rules_before_and_after_with_n_zero_the_day_itself() {
    let guest = person(
        json!({"id": "g", "bookings": [{"check_in": "2025-07-10", "check_out": "2025-07-14"}]}),
    );
    let rule = |field: &str, days: u32, when: &str| json!({"date": {"dynamic": {"field": field, "days": days, "when": when}}});
    assert!(matches(
        &compile(rule("check_in", 3, "before"), "2025-07-07"),
        &guest
    ));
    assert!(!matches(
        &compile(rule("check_in", 3, "after"), "2025-07-07"),
        &guest
    ));
    assert!(matches(
        &compile(rule("check_in", 0, "before"), "2025-07-10"),
        &guest
    ));
    assert!(matches(
        &compile(rule("check_in", 0, "after"), "2025-07-10"),
        &guest
    ));
    assert!(matches(
        &compile(rule("check_out", 2, "after"), "2025-07-16"),
        &guest
    ));
    assert!(!matches(
        &compile(rule("check_out", 2, "after"), "2025-07-15"),
        &guest
    ));
}

#[test]
fn before_birthday_across_new_year() {
    let jan2 = born("jan2", "1990-01-02");
    let rule = json!({"date": {"dynamic": {"field": "birthday", "days": 5, "when": "before"}}});
    assert!(matches(&compile(rule.clone(), "2025-12-28"), &jan2));
    assert!(!matches(&compile(rule.clone(), "2025-12-27"), &jan2));
    assert!(!matches(&compile(rule.clone(), "2026-01-02"), &jan2));
    let dec30 = born("dec30", "1985-12-30");
    let after = json!({"date": {"dynamic": {"field": "birthday", "days": 5, "when": "after"}}});
    assert!(matches(&compile(after, "2026-01-04"), &dec30));
}

// --- birthday intervals and Feb 29 -------------------------------------------------------

#[test]
fn birthday_interval_wraps_new_year() {
    let people: Vec<Recipient> = [
        "1990-12-24",
        "1990-12-25",
        "1991-01-05",
        "1992-01-10",
        "1993-01-11",
    ]
    .iter()
    .map(|d| born(d, d))
    .collect();
    let wrap = compile(
        json!({"date": {"interval": {"field": "birthday", "from": "12-25", "to": "01-10"}}}),
        "2025-12-20",
    );
    assert_eq!(
        ids(&wrap, &people),
        ["1990-12-25", "1991-01-05", "1992-01-10"]
    );
    let one_day = compile(
        json!({"date": {"interval": {"field": "birthday", "from": "01-05", "to": "01-05"}}}),
        "2025-12-20",
    );
    assert_eq!(ids(&one_day, &people), ["1991-01-05"]);
    let whole_year = compile(
        json!({"date": {"interval": {"field": "birthday", "from": "03-01", "to": "02-29"}}}),
        "2025-06-01",
    );
    let leapling = born("leap", "2000-02-29");
    assert_eq!(ids(&whole_year, &people).len(), people.len());
    assert!(matches(&whole_year, &leapling));
}

#[test]
fn feb29_policy_matrix_for_birthdays() {
    let on_birthday =
        json!({"date": {"dynamic": {"field": "birthday", "days": 0, "when": "before"}}});
    let people = [
        born("feb28", "1999-02-28"),
        born("feb29", "2000-02-29"),
        born("mar1", "1999-03-01"),
    ];
    // (policy, today, who has a birthday that day)
    let cases: [(LeapDay, &str, &[&str]); 10] = [
        (LeapDay::Feb28, "2025-02-28", &["feb28", "feb29"]),
        (LeapDay::Feb28, "2025-03-01", &["mar1"]),
        (LeapDay::Feb28, "2028-02-28", &["feb28"]),
        (LeapDay::Feb28, "2028-02-29", &["feb29"]),
        (LeapDay::Feb28, "2028-03-01", &["mar1"]),
        (LeapDay::Mar1, "2025-02-28", &["feb28"]),
        (LeapDay::Mar1, "2025-03-01", &["feb29", "mar1"]),
        (LeapDay::Mar1, "2028-02-28", &["feb28"]),
        (LeapDay::Mar1, "2028-02-29", &["feb29"]),
        (LeapDay::Mar1, "2028-03-01", &["mar1"]),
    ];
    for (policy, today, expected) in cases {
        let segment = compile_in(on_birthday.clone(), today, MOSCOW, policy);
        assert_eq!(ids(&segment, &people), expected, "{policy:?} {today}");
    }
    // The interval form, as in the reference's worked example.
    let leapling = born("feb29", "2000-02-29");
    let feb = json!({"date": {"interval": {"field": "birthday", "from": "02-20", "to": "02-28"}}});
    let mar = json!({"date": {"interval": {"field": "birthday", "from": "03-01", "to": "03-31"}}});
    assert!(matches(
        &compile_in(feb.clone(), "2025-01-15", MOSCOW, LeapDay::Feb28),
        &leapling
    ));
    assert!(!matches(
        &compile_in(feb.clone(), "2025-01-15", MOSCOW, LeapDay::Mar1),
        &leapling
    ));
    assert!(!matches(
        &compile_in(feb, "2028-01-15", MOSCOW, LeapDay::Feb28),
        &leapling
    ));
    assert!(matches(
        &compile_in(mar.clone(), "2025-01-15", MOSCOW, LeapDay::Mar1),
        &leapling
    ));
    assert!(!matches(
        &compile_in(mar, "2025-01-15", MOSCOW, LeapDay::Feb28),
        &leapling
    ));
}

#[test]
fn a_feb29_interval_bound_in_a_non_leap_year_moves_inward() {
    let people = [born("feb28", "1999-02-28"), born("mar1", "1999-03-01")];
    let from_feb29 =
        json!({"date": {"interval": {"field": "birthday", "from": "02-29", "to": "03-05"}}});
    let to_feb29 =
        json!({"date": {"interval": {"field": "birthday", "from": "02-20", "to": "02-29"}}});
    // 2025: from → Mar 1, to → Feb 28.
    assert_eq!(
        ids(&compile(from_feb29.clone(), "2025-01-10"), &people),
        ["mar1"]
    );
    assert_eq!(
        ids(&compile(to_feb29.clone(), "2025-01-10"), &people),
        ["feb28"]
    );
    // 2028 is leap: the bounds stay.
    assert_eq!(ids(&compile(from_feb29, "2028-01-10"), &people), ["mar1"]);
    assert_eq!(ids(&compile(to_feb29, "2028-01-10"), &people), ["feb28"]);
    // A wrapping interval is read in the year of the February it covers: run in Dec 2027,
    // «Nov 1 – Feb 29» covers Feb 2028 (leap), so a leapling is inside under either policy,
    // and run in Dec 2024 it covers Feb 2025, where Mar1 puts the leapling outside.
    let leapling = born("feb29", "2000-02-29");
    let winter =
        json!({"date": {"interval": {"field": "birthday", "from": "11-01", "to": "02-29"}}});
    assert!(matches(
        &compile_in(winter.clone(), "2027-12-10", MOSCOW, LeapDay::Mar1),
        &leapling
    ));
    assert!(!matches(
        &compile_in(winter.clone(), "2024-12-10", MOSCOW, LeapDay::Mar1),
        &leapling
    ));
    assert!(matches(
        &compile_in(winter, "2024-12-10", MOSCOW, LeapDay::Feb28),
        &leapling
    ));
}

// --- age ------------------------------------------------------------------------------------

/// Completed years, written plainly.
fn age(birth: NaiveDate, today: NaiveDate, policy: LeapDay) -> i64 {
    use chrono::Datelike;
    let birthday = if (birth.month(), birth.day()) == (2, 29)
        && NaiveDate::from_ymd_opt(today.year(), 2, 29).is_none()
    {
        match policy {
            LeapDay::Feb28 => NaiveDate::from_ymd_opt(today.year(), 2, 28),
            LeapDay::Mar1 => NaiveDate::from_ymd_opt(today.year(), 3, 1),
        }
    } else {
        NaiveDate::from_ymd_opt(today.year(), birth.month(), birth.day())
    }
    .unwrap();
    i64::from(today.year() - birth.year()) - i64::from(today < birthday)
}

#[test]
fn age_is_completed_years_with_the_feb29_policy() {
    let leapling = born("x", "2000-02-29");
    let eighteen = json!({"age": {"gte": 18}});
    assert!(!matches(
        &compile(eighteen.clone(), "2018-02-27"),
        &leapling
    ));
    assert!(matches(&compile(eighteen.clone(), "2018-02-28"), &leapling));
    assert!(!matches(
        &compile_in(eighteen.clone(), "2018-02-28", MOSCOW, LeapDay::Mar1),
        &leapling
    ));
    assert!(matches(
        &compile_in(eighteen, "2018-03-01", MOSCOW, LeapDay::Mar1),
        &leapling
    ));
}

#[test]
fn compiled_age_bounds_agree_with_the_direct_formula_brute_force() {
    let births: Vec<NaiveDate> = (0..1200)
        .map(|i| day("1996-12-20") + chrono::Days::new(i * 3 + i % 3))
        .chain([
            day("2000-02-29"),
            day("2004-02-29"),
            day("1999-02-28"),
            day("1999-03-01"),
        ])
        .collect();
    let people: Vec<Recipient> = births
        .iter()
        .map(|b| born(&b.to_string(), &b.to_string()))
        .collect();
    let todays = [
        "2023-02-28",
        "2023-03-01",
        "2024-02-28",
        "2024-02-29",
        "2024-03-01",
        "2025-12-31",
        "2026-01-01",
        "2027-06-15",
    ];
    for policy in [LeapDay::Feb28, LeapDay::Mar1] {
        for today in todays {
            for (lo, hi) in [(18, 25), (20, 20), (23, 27), (0, 26)] {
                let segment = compile_in(
                    json!({"age": {"gte": lo, "lte": hi}}),
                    today,
                    MOSCOW,
                    policy,
                );
                let snapshot = Snapshot::from_recipients(&people, MOSCOW);
                let bound = segment.bind(&snapshot).unwrap();
                let mut expected_rows = Vec::new();
                for (i, (r, b)) in people.iter().zip(&births).enumerate() {
                    let a = age(*b, day(today), policy);
                    let expected = lo <= a && a <= hi;
                    assert_eq!(
                        segment.matches(r),
                        expected,
                        "{policy:?} {today} {b} {lo}..{hi}"
                    );
                    assert_eq!(bound.matches(i), expected);
                    if expected {
                        expected_rows.push(i);
                    }
                }
                assert_eq!(bound.matching_rows(), expected_rows);
            }
        }
    }
}

#[test]
fn ranges_combine_and_a_missing_value_is_false() {
    let people: Vec<Recipient> = [
        json!(99.99),
        json!("100"),
        json!(100.5),
        json!(500),
        json!(null),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, b)| person(json!({"id": i.to_string(), "balance": b})))
    .collect();
    let segment = |range: Value| compile(json!({"balance": range}), "2026-01-01");
    assert_eq!(ids(&segment(json!({"gte": 100})), &people), ["1", "2", "3"]);
    assert_eq!(ids(&segment(json!({"gt": "100"})), &people), ["2", "3"]);
    assert_eq!(
        ids(&segment(json!({"gte": 100, "lt": 500})), &people),
        ["1", "2"]
    );
    assert_eq!(
        ids(&segment(json!({"lte": 100.5})), &people),
        ["0", "1", "2"]
    );
    assert_eq!(ids(&segment(json!({"eq": "100.50"})), &people), ["2"]);
    assert_eq!(
        ids(&segment(json!({"gt": 99.999, "lt": 100.00001})), &people),
        ["1"]
    );
    let ages = compile(json!({"age": {"gt": 17, "lt": 35}}), "2026-06-01");
    assert_eq!(
        ids(
            &ages,
            &[
                born("17", "2008-06-02"),
                born("18", "2008-06-01"),
                born("34", "1991-06-02"),
                born("35", "1991-06-01")
            ]
        ),
        ["18", "34"]
    );
}

// --- purchases ----------------------------------------------------------------------------

fn shopper(purchases: &[(&str, Value)]) -> Recipient {
    let purchases: Vec<Value> = purchases
        .iter()
        .map(|(at, amount)| json!({"at": at, "amount": amount}))
        .collect();
    person(json!({"id": "s", "purchases": purchases}))
}

#[test]
fn last_n_days_include_today() {
    // D = 2026-03-31; the last 30 days are 03-02 ..= 03-31 in Moscow.
    let edge = shopper(&[("2026-03-02T00:00:00+03:00", json!(1000))]);
    let outside = shopper(&[("2026-03-01T23:59:59+03:00", json!(1000))]);
    let today = shopper(&[("2026-03-31T23:59:00+03:00", json!(1000))]);
    let tomorrow = shopper(&[("2026-04-01T00:00:00+03:00", json!(1000))]);
    let within = compile(json!({"purchases": {"within_days": 30}}), "2026-03-31");
    assert!(matches(&within, &edge));
    assert!(!matches(&within, &outside));
    assert!(matches(&within, &today));
    assert!(!matches(&within, &tomorrow));
    let only_today = compile(json!({"purchases": {"within_days": 1}}), "2026-03-31");
    assert!(matches(&only_today, &today));
    assert!(!matches(&only_today, &edge));
}

#[test]
fn purchase_count_and_sum_within_the_window() {
    let s = shopper(&[
        ("2026-03-30T12:00:00+03:00", json!(3200)),
        ("2026-03-10T12:00:00+03:00", json!("1800.50")),
        ("2025-12-01T12:00:00+03:00", json!(9000)),
        ("2026-03-11T12:00:00+03:00", json!(null)),
    ]);
    let rule = |count: Value, sum: Value| {
        compile(
            json!({"purchases": {"within_days": 90, "count": count, "sum": sum}}),
            "2026-03-31",
        )
    };
    assert!(matches(
        &rule(json!({"eq": 3}), json!({"eq": "5000.5"})),
        &s
    ));
    assert!(!matches(&rule(json!({"gte": 4}), json!({"gte": 0})), &s));
    assert!(!matches(
        &rule(json!({"gte": 1}), json!({"gt": 5000.5})),
        &s
    ));
    let nobody = person(json!({"id": "n"}));
    let none_lately = compile(
        json!({"purchases": {"within_days": 90, "count": {"eq": 0}}}),
        "2026-03-31",
    );
    assert!(matches(&none_lately, &nobody));
    assert!(!matches(&none_lately, &s));
}

#[test]
fn last_purchase_older_than_n_days() {
    let s = shopper(&[
        ("2025-10-01T12:00:00+03:00", json!(10)),
        ("2025-09-01T12:00:00+03:00", json!(10)),
    ]);
    // D − 2025-10-01 = 181 days on 2026-03-31.
    let older =
        |n: u32, today: &str| compile(json!({"last_purchase": {"older_than_days": n}}), today);
    assert!(matches(&older(180, "2026-03-31"), &s));
    assert!(!matches(&older(181, "2026-03-31"), &s));
    assert!(!matches(
        &older(0, "2026-03-31"),
        &person(json!({"id": "never"}))
    ));
}

// --- bookings -----------------------------------------------------------------------------

#[test]
fn one_delivery_per_matching_booking_keyed_by_its_anchor() {
    let guest = person(json!({"id": "g", "vip": true, "bookings": [
        {"id": "b-1", "check_in": "2025-07-10", "paid_at": "2025-06-01T12:00:00+03:00"},
        {"id": "b-2", "check_in": "2025-07-20"},
        {"id": "b-3", "check_in": "2025-07-10"}
    ]}));
    let three_days =
        json!({"date": {"dynamic": {"field": "check_in", "days": 3, "when": "before"}}});
    let segment = compile(three_days.clone(), "2025-07-07");
    let mut out = Vec::new();
    assert_eq!(segment.evaluate(&guest, &mut out), Outcome::Bookings);
    let anchor = Some(day("2025-07-10"));
    assert_eq!(
        out,
        [
            BookingMatch { index: 0, anchor },
            BookingMatch { index: 2, anchor }
        ]
    );
    // Under `all`, one booking must satisfy every booking leaf.
    let paid = json!({"date": {"interval": {"field": "paid_at", "from": "2025-05-01", "to": "2025-06-30"}}});
    let both = compile(
        json!({"all": [three_days.clone(), paid.clone(), {"vip": true}]}),
        "2025-07-07",
    );
    assert_eq!(both.evaluate(&guest, &mut out), Outcome::Bookings);
    assert_eq!(out, [BookingMatch { index: 0, anchor }]);
    assert_eq!(
        both.anchor_field(),
        Some(rassylka_segment::BookingField::CheckIn)
    );
    let apart = person(json!({"id": "a", "bookings": [
        {"check_in": "2025-07-10"}, {"check_in": "2025-08-01", "paid_at": "2025-06-01T12:00:00+03:00"}]}));
    assert!(!matches(&both, &apart));
    // `not` is recipient-level and carries no booking.
    let not_paid = compile(
        json!({"all": [three_days.clone(), {"not": paid}]}),
        "2025-07-07",
    );
    assert!(!matches(&not_paid, &guest));
    assert!(matches(
        &not_paid,
        &person(json!({"id": "x", "bookings": [{"check_in": "2025-07-10"}]}))
    ));
    // `any` with a true plain child matches the recipient as a whole.
    let any = compile(json!({"any": [{"vip": true}, three_days]}), "2025-07-07");
    assert_eq!(any.evaluate(&guest, &mut out), Outcome::Recipient);
    assert!(out.is_empty());
}

#[test]
fn a_moved_check_in_gets_a_new_anchor() {
    let rule = json!({"date": {"dynamic": {"field": "check_in", "days": 3, "when": "before"}}});
    let before = person(json!({"id": "g", "bookings": [{"id": "b", "check_in": "2025-07-10"}]}));
    let moved = person(json!({"id": "g", "bookings": [{"id": "b", "check_in": "2025-07-12"}]}));
    let mut first = Vec::new();
    let mut second = Vec::new();
    compile(rule.clone(), "2025-07-07").evaluate(&before, &mut first);
    compile(rule, "2025-07-09").evaluate(&moved, &mut second);
    assert_eq!(first.len(), 1);
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].anchor, second[0].anchor);
}

#[test]
fn more_than_64_bookings_are_all_evaluated() {
    let bookings: Vec<Value> = (0..130)
        .map(|i| json!({"id": format!("b{i}"), "check_in": if i % 40 == 7 { "2025-07-10" } else { "2025-09-01" }}))
        .collect();
    let guest = person(json!({"id": "g", "bookings": bookings}));
    let segment = compile(
        json!({"all": [{"date": {"dynamic": {"field": "check_in", "days": 3, "when": "before"}}},
                       {"not": {"vip": true}}]}),
        "2025-07-07",
    );
    let mut out = Vec::new();
    assert_eq!(segment.evaluate(&guest, &mut out), Outcome::Bookings);
    let indices: Vec<usize> = out.iter().map(|m| m.index).collect();
    assert_eq!(indices, [7, 47, 87, 127]);
    let snapshot = Snapshot::from_recipients([&guest], MOSCOW);
    let mut from_snapshot = Vec::new();
    segment
        .bind(&snapshot)
        .unwrap()
        .evaluate(0, &mut from_snapshot);
    assert_eq!(from_snapshot, out);
}

#[test]
fn a_booking_interval_with_from_after_to_is_an_error_naming_its_path() {
    let err = Rule::from_value(&json!({"all": [{"vip": true}, {"any": [{"gender": "male"},
        {"date": {"interval": {"field": "check_in", "from": "2026-12-10", "to": "2026-12-01"}}}]}]}))
    .unwrap_err();
    assert_eq!(err.path(), Some("all[1].any[1].date.interval"));
    assert!(
        err.to_string()
            .starts_with("all[1].any[1].date.interval: from 2026-12-10 is after to 2026-12-01")
    );
    let wraps = Rule::from_value(
        &json!({"date": {"interval": {"field": "birthday", "from": "12-10", "to": "12-01"}}}),
    );
    assert!(wraps.is_ok());
}

#[test]
fn a_segment_and_a_snapshot_of_another_zone_do_not_bind() {
    let segment = compile(json!({"everyone": true}), "2026-01-01");
    let snapshot = Snapshot::from_recipients(&[], chrono_tz::UTC);
    assert!(matches!(
        segment.bind(&snapshot),
        Err(SegmentError::ZoneMismatch { .. })
    ));
}

#[test]
fn purchase_counts_beyond_four_purchases_and_future_ones() {
    let on = |days: &[u32]| {
        let purchases: Vec<(String, Value)> = days
            .iter()
            .map(|d| (format!("2026-03-{d:02}T12:00:00+03:00"), json!(100)))
            .collect();
        let refs: Vec<(&str, Value)> = purchases
            .iter()
            .map(|(at, a)| (at.as_str(), a.clone()))
            .collect();
        shopper(&refs)
    };
    // D = 2026-03-20; the last 10 days are 03-11 ..= 03-20.
    let six_inside = on(&[11, 12, 14, 15, 18, 20, 2]);
    let future_heavy = on(&[21, 22, 25, 28, 12, 15, 1]);
    let count = |range: Value| {
        compile(
            json!({"purchases": {"within_days": 10, "count": range}}),
            "2026-03-20",
        )
    };
    assert!(matches(&count(json!({"eq": 6})), &six_inside));
    assert!(!matches(&count(json!({"lte": 5})), &six_inside));
    assert!(matches(&count(json!({"gte": 2})), &six_inside));
    assert!(!matches(&count(json!({"gte": 7})), &six_inside));
    assert!(matches(&count(json!({"eq": 2})), &future_heavy));
    assert!(!matches(&count(json!({"gte": 3})), &future_heavy));
    assert!(matches(&count(json!({"lt": 3})), &future_heavy));
}
