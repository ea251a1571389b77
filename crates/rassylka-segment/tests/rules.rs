//! Parsing rules: every leaf, errors with JSON paths, unknown keys, and the round trip.

use rassylka_model::ChannelKind;
use rassylka_segment::{CountryRule, DecimalRange, Field, Names, Rule, SegmentError};
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn error(rule: Value) -> String {
    Rule::from_value(&rule).unwrap_err().to_string()
}

#[test]
fn the_spec_example_parses_and_round_trips() {
    let spec = json!({"all": [
        {"gender": "female"},
        {"age": {"gte": 18, "lt": 35}},
        {"country": {"not_in": ["RU"]}},
        {"any": [{"vip": true}, {"segment": "Командировочные"}]},
        {"not": {"loyalty_group": {"in": ["Blocked"]}}},
        {"balance": {"gte": 100}},
        {"registered": {"from": "2024-01-01", "to": "2024-12-31"}},
        {"purchases": {"within_days": 90, "count": {"gte": 2}, "sum": {"gte": 5000}}},
        {"last_purchase": {"older_than_days": 180}},
        {"date": {"dynamic": {"field": "check_in", "days": 3, "when": "before"}}},
        {"date": {"interval": {"field": "birthday", "from": "12-25", "to": "01-10"}}},
        {"reachable": "telegram"}
    ]});
    let rule = Rule::from_value(&spec).unwrap();
    let Rule::All(leaves) = &rule else {
        panic!("expected all, got {rule:?}")
    };
    assert_eq!(leaves.len(), 12);
    assert_eq!(leaves[11], Rule::Reachable(ChannelKind::Telegram));
    assert_eq!(serde_json::to_value(&rule).unwrap(), spec);
    let text = serde_json::to_string(&rule).unwrap();
    assert_eq!(Rule::from_json(&text).unwrap(), rule);
}

#[test]
fn every_other_leaf_round_trips() {
    for leaf in [
        json!({"everyone": true}),
        json!({"gender": "male"}),
        json!({"age": {"eq": 30}}),
        json!({"country": {"in": ["RU", "BY"]}}),
        json!({"country": {"is_set": true}}),
        json!({"country": {"is_set": false}}),
        json!({"is_set": "birth_date"}),
        json!({"is_set": "email"}),
        json!({"is_set": "fields.order_id"}),
        json!({"segment": {"in": ["A", "B"]}}),
        json!({"vip": false}),
        json!({"loyalty_group": "Gold"}),
        json!({"balance": {"gt": 0.5, "lte": "12345678901234567890.123456789"}}),
        json!({"balance": {"eq": -3}}),
        json!({"registered": {"from": "2024-01-01"}}),
        json!({"registered": {"to": "2024-01-01"}}),
        json!({"purchases": {"within_days": 30}}),
        json!({"purchases": {"within_days": 30, "sum": {"lt": 100.25}}}),
        json!({"date": {"dynamic": {"field": "birthday", "days": 0, "when": "after"}}}),
        json!({"date": {"dynamic": {"field": "paid_at", "days": 1, "when": "after"}}}),
        json!({"date": {"interval": {"field": "booked_at", "from": "2026-01-01", "to": "2026-01-01"}}}),
        json!({"date": {"interval": {"field": "birthday", "from": "02-29", "to": "02-29"}}}),
        json!({"reachable": "push"}),
    ] {
        let rule = Rule::from_value(&leaf).unwrap();
        assert_eq!(rule.to_value(), leaf);
        let back: Rule = serde_json::from_value(serde_json::to_value(&rule).unwrap()).unwrap();
        assert_eq!(back, rule);
    }
}

#[test]
fn decimals_are_read_exactly_from_numbers_and_strings() {
    let number = Rule::from_value(&json!({"balance": {"gte": 1250.5}})).unwrap();
    let string = Rule::from_value(&json!({"balance": {"gte": "1250.50"}})).unwrap();
    let expected = Rule::Balance(DecimalRange {
        gte: Some(Decimal::new(12505, 1)),
        ..DecimalRange::default()
    });
    assert_eq!(number, expected);
    assert_eq!(string, expected);
}

#[test]
fn names_take_a_string_or_an_in_list_and_countries_are_upper_cased() {
    assert_eq!(
        Rule::from_value(&json!({"loyalty_group": "Gold"})).unwrap(),
        Rule::LoyaltyGroup(Names::One("Gold".into()))
    );
    assert_eq!(
        Rule::from_value(&json!({"loyalty_group": {"in": ["Gold", "Silver"]}})).unwrap(),
        Rule::LoyaltyGroup(Names::In(vec!["Gold".into(), "Silver".into()]))
    );
    assert_eq!(
        Rule::from_value(&json!({"country": {"not_in": [" ru"]}})).unwrap(),
        Rule::Country(CountryRule::NotIn(vec!["RU".into()]))
    );
    assert_eq!(
        Rule::from_value(&json!({"is_set": "fields.salon_phone"})).unwrap(),
        Rule::IsSet(Field::Custom("salon_phone".into()))
    );
}

#[test]
fn errors_name_the_json_path_of_the_bad_node() {
    let cases = [
        (
            json!({"all": [{"vip": true}, {"gender": "female"}, {"age": {"gte": -1}}]}),
            "all[2].age.gte: expected a non-negative integer",
        ),
        (
            json!({"all": [{"age": {"gte": 1.5}}]}),
            "all[0].age.gte: expected a non-negative integer",
        ),
        (
            json!({"any": [{"not": {"gender": "f"}}]}),
            "any[0].not.gender: expected male or female",
        ),
        (
            json!({"balance": {"gte": "a lot"}}),
            "balance.gte: expected a decimal number or a string with one",
        ),
        (
            json!({"date": {"interval": {"field": "birthday", "from": "2026-12-25", "to": "01-10"}}}),
            "date.interval.from: expected a month and day as MM-DD, such as 12-25",
        ),
        (
            json!({"date": {"interval": {"field": "check_in", "from": "12-25", "to": "2026-01-10"}}}),
            "date.interval.from: expected a date as YYYY-MM-DD",
        ),
        (
            json!({"date": {"interval": {"field": "birthday", "from": "02-30", "to": "03-01"}}}),
            "date.interval.from: expected a month and day as MM-DD, such as 12-25",
        ),
        (
            json!({"date": {"dynamic": {"field": "check_in", "days": 3}}}),
            "date.dynamic: missing key `when`",
        ),
        (
            json!({"purchases": {"within_days": 0}}),
            "purchases.within_days: expected at least 1 day",
        ),
        (json!({"age": {"lt": 201}}), "age.lt: expected at most 200"),
        (
            json!({"age": {}}),
            "age: expected at least one of gte, gt, lte, lt, eq",
        ),
        (
            json!({"all": []}),
            "all: expected a non-empty array of rules",
        ),
        (
            json!({"country": {"in": []}}),
            "country.in: expected a non-empty array of strings",
        ),
        (
            json!({"reachable": "fax"}),
            "reachable: expected one of email, sms, telegram, vk, push",
        ),
        (json!({"everyone": false}), "everyone: expected true"),
        (
            json!({}),
            "(root): expected exactly one key in a rule, found 0",
        ),
        (
            json!({"vip": true, "gender": "male"}),
            "(root): expected exactly one key in a rule, found 2",
        ),
        (
            json!([1]),
            "(root): expected a rule: an object with one key such as {\"all\": [..]}",
        ),
        (
            json!({"registered": {"from": "2024-12-31", "to": "2024-01-01"}}),
            "registered: from 2024-12-31 is after to 2024-01-01",
        ),
    ];
    for (rule, expected) in cases {
        assert_eq!(error(rule.clone()), expected, "{rule}");
    }
}

#[test]
fn unknown_keys_are_errors_not_wider_audiences() {
    assert!(
        error(json!({"al": [{"vip": true}]}))
            .starts_with("al: unknown rule (expected one of everyone, all")
    );
    assert!(
        error(json!({"all": [{"balance": {"gtee": 5}}]}))
            .starts_with("all[0].balance.gtee: unknown key")
    );
    assert!(
        error(json!({"purchases": {"within_days": 5, "cnt": {"gte": 1}}}))
            .starts_with("purchases.cnt: unknown key")
    );
    assert!(
        error(json!({"country": {"in": ["RU"], "not_in": ["KZ"]}}))
            .starts_with("country: expected exactly one of")
    );
    assert!(error(json!({"is_set": "birthdate"})).starts_with("is_set: unknown field `birthdate`"));
    assert!(error(json!({"date": {"dynamic": {"field": "check_in", "days": 1, "when": "before", "tz": "UTC"}}}))
        .starts_with("date.dynamic.tz: unknown key"));
    assert!(
        error(json!({"loyalty_group": {"any": ["Gold"]}}))
            .starts_with("loyalty_group.any: unknown key")
    );
}

#[test]
fn text_that_is_not_json_is_a_syntax_error_with_its_position() {
    let err = Rule::from_json("{\"all\": [\n  {\"vip\": tru}]}").unwrap_err();
    assert!(
        matches!(err, SegmentError::Syntax { line: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("invalid json at line 2"));
}

#[test]
fn serde_deserialisation_goes_through_the_same_parser() {
    #[derive(serde::Deserialize)]
    struct Mailing {
        #[allow(dead_code)]
        audience: Rule,
    }
    let err = serde_json::from_value::<Mailing>(json!({"audience": {"all": [{"ag": {}}]}}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("all[0].ag: unknown rule"), "{err}");
}

#[test]
fn rules_built_in_code_are_validated_when_compiled() {
    use chrono::NaiveDate;
    use rassylka_segment::{CompileOptions, DateInterval, DateRule, Segment};
    let from = NaiveDate::from_ymd_opt(2026, 12, 10).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let rule = Rule::Not(Box::new(Rule::Date(DateRule::Interval(
        DateInterval::Booking {
            field: rassylka_segment::BookingField::CheckIn,
            from,
            to,
        },
    ))));
    let options = CompileOptions::new(from, chrono_tz::Europe::Moscow);
    let err = Segment::compile(&rule, &options).unwrap_err();
    assert_eq!(err.path(), Some("not.date.interval"));
    assert!(Segment::compile(&Rule::All(vec![]), &options).is_err());
}

#[test]
fn the_error_type_crosses_threads_and_month_days_parse_strictly() {
    fn send_sync<T: Send + Sync + std::error::Error + 'static>() {}
    send_sync::<SegmentError>();
    use rassylka_segment::{LeapDay, MonthDay};
    assert_eq!("02-29".parse::<MonthDay>().unwrap().to_string(), "02-29");
    for bad in [
        "2-29", "02-30", "13-01", "00-10", "12_25", "1225", "+1-01", "é-123",
    ] {
        assert!(bad.parse::<MonthDay>().is_err(), "{bad}");
    }
    assert_eq!(serde_json::to_value(LeapDay::Mar1).unwrap(), json!("mar1"));
    assert_eq!(LeapDay::default(), LeapDay::Feb28);
}
