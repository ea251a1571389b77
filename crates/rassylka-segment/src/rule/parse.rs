//! Reading a rule from JSON: every node checked, every error with the exact JSON path.

use std::str::FromStr;

use chrono::NaiveDate;
use rassylka_model::{ChannelKind, Gender};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::*;
use crate::SegmentError;
use crate::dates::MonthDay;

const RULE_KEYS: &str = "everyone, all, any, not, gender, age, country, is_set, segment, vip, \
     loyalty_group, balance, registered, purchases, last_purchase, date, reachable";
pub(super) const RANGE_KEYS: &[&str] = &["gte", "gt", "lte", "lt", "eq"];
/// Ages above this are refused: they are typos, and they keep the year arithmetic in range.
pub(super) const MAX_AGE: u64 = 200;

pub(super) type Parsed<T> = Result<T, SegmentError>;

pub(super) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

pub(super) fn fail<T>(path: &str, message: impl Into<String>) -> Parsed<T> {
    Err(SegmentError::rule(path, message))
}

fn object<'v>(value: &'v Value, path: &str, what: &str) -> Parsed<&'v Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| SegmentError::rule(path, format!("expected {what}")))
}

/// Refuses keys outside `allowed`: a typo must not silently widen an audience.
fn only_keys(map: &Map<String, Value>, path: &str, allowed: &[&str]) -> Parsed<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => fail(
            &child(path, key),
            format!("unknown key (expected {})", allowed.join(", ")),
        ),
        None => Ok(()),
    }
}

fn string<'v>(value: &'v Value, path: &str) -> Parsed<&'v str> {
    match value.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => fail(path, "expected a non-empty string"),
    }
}

fn non_negative(value: &Value, path: &str) -> Parsed<u64> {
    value
        .as_u64()
        .ok_or_else(|| SegmentError::rule(path, "expected a non-negative integer"))
}

fn days(value: &Value, path: &str) -> Parsed<u32> {
    let n = non_negative(value, path)?;
    u32::try_from(n).map_err(|_| SegmentError::rule(path, "expected at most 4294967295 days"))
}

fn boolean(value: &Value, path: &str) -> Parsed<bool> {
    value
        .as_bool()
        .ok_or_else(|| SegmentError::rule(path, "expected true or false"))
}

fn date(value: &Value, path: &str) -> Parsed<NaiveDate> {
    value
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .ok_or_else(|| SegmentError::rule(path, "expected a date as YYYY-MM-DD"))
}

fn month_day(value: &Value, path: &str) -> Parsed<MonthDay> {
    value
        .as_str()
        .and_then(|s| MonthDay::from_str(s).ok())
        .ok_or_else(|| SegmentError::rule(path, "expected a month and day as MM-DD, such as 12-25"))
}

fn decimal(value: &Value, path: &str) -> Parsed<Decimal> {
    let parsed = match value {
        // A JSON number is read through its shortest text, so 1250.5 is exactly 1250.5.
        Value::Number(n) => {
            let text = n.to_string();
            Decimal::from_str(&text).or_else(|_| Decimal::from_scientific(&text))
        }
        Value::String(s) => {
            let text = s.trim();
            Decimal::from_str(text).or_else(|_| Decimal::from_scientific(text))
        }
        _ => return fail(path, "expected a decimal number or a string with one"),
    };
    parsed.map_err(|_| SegmentError::rule(path, "expected a decimal number or a string with one"))
}

fn string_list(value: &Value, path: &str, upper: bool) -> Parsed<Vec<String>> {
    let Some(items) = value.as_array() else {
        return fail(path, "expected a non-empty array of strings");
    };
    if items.is_empty() {
        return fail(path, "expected a non-empty array of strings");
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = string(v, &item(path, i))?;
            Ok(if upper {
                s.trim().to_uppercase()
            } else {
                s.to_owned()
            })
        })
        .collect()
}

fn int_range(value: &Value, path: &str) -> Parsed<IntRange> {
    let map = object(value, path, "an object with gte, gt, lte, lt or eq")?;
    only_keys(map, path, RANGE_KEYS)?;
    let field = |key: &str| {
        map.get(key)
            .map(|v| non_negative(v, &child(path, key)))
            .transpose()
    };
    Ok(IntRange {
        gte: field("gte")?,
        gt: field("gt")?,
        lte: field("lte")?,
        lt: field("lt")?,
        eq: field("eq")?,
    })
}

fn decimal_range(value: &Value, path: &str) -> Parsed<DecimalRange> {
    let map = object(value, path, "an object with gte, gt, lte, lt or eq")?;
    only_keys(map, path, RANGE_KEYS)?;
    let field = |key: &str| {
        map.get(key)
            .map(|v| decimal(v, &child(path, key)))
            .transpose()
    };
    Ok(DecimalRange {
        gte: field("gte")?,
        gt: field("gt")?,
        lte: field("lte")?,
        lt: field("lt")?,
        eq: field("eq")?,
    })
}

fn names(value: &Value, path: &str) -> Parsed<Names> {
    match value {
        Value::String(_) => Ok(Names::One(string(value, path)?.to_owned())),
        Value::Object(map) => {
            only_keys(map, path, &["in"])?;
            let list = map
                .get("in")
                .ok_or_else(|| SegmentError::rule(path, "expected a name or {\"in\": [names]}"))?;
            Ok(Names::In(string_list(list, &child(path, "in"), false)?))
        }
        _ => fail(path, "expected a name or {\"in\": [names]}"),
    }
}

fn field(value: &Value, path: &str) -> Parsed<Field> {
    let name = string(value, path)?;
    if let Some(custom) = name.strip_prefix("fields.") {
        if custom.is_empty() {
            return fail(path, "expected a custom field name after `fields.`");
        }
        return Ok(Field::Custom(custom.to_owned()));
    }
    Field::BUILT_IN
        .into_iter()
        .find(|f| f.built_in_name() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = Field::BUILT_IN.iter().map(Field::built_in_name).collect();
            SegmentError::rule(
                path,
                format!(
                    "unknown field `{name}` (expected {} or fields.NAME)",
                    known.join(", ")
                ),
            )
        })
}

fn date_field(value: &Value, path: &str) -> Parsed<DateField> {
    let fields = [
        DateField::CheckIn,
        DateField::CheckOut,
        DateField::BookedAt,
        DateField::PaidAt,
        DateField::Birthday,
    ];
    value
        .as_str()
        .and_then(|s| fields.into_iter().find(|f| f.name() == s))
        .ok_or_else(|| {
            SegmentError::rule(
                path,
                "expected one of check_in, check_out, booked_at, paid_at, birthday",
            )
        })
}

fn required<'v>(map: &'v Map<String, Value>, path: &str, key: &str) -> Parsed<&'v Value> {
    map.get(key)
        .ok_or_else(|| SegmentError::rule(path, format!("missing key `{key}`")))
}

fn date_rule(value: &Value, path: &str) -> Parsed<DateRule> {
    let map = object(value, path, "{\"dynamic\": {..}} or {\"interval\": {..}}")?;
    only_keys(map, path, &["dynamic", "interval"])?;
    if map.len() != 1 {
        return fail(path, "expected exactly one of dynamic or interval");
    }
    if let Some(dynamic) = map.get("dynamic") {
        let path = child(path, "dynamic");
        let map = object(dynamic, &path, "{\"field\", \"days\", \"when\"}")?;
        only_keys(map, &path, &["field", "days", "when"])?;
        let field = date_field(required(map, &path, "field")?, &child(&path, "field"))?;
        let days = days(required(map, &path, "days")?, &child(&path, "days"))?;
        let when = match required(map, &path, "when")?.as_str() {
            Some("before") => When::Before,
            Some("after") => When::After,
            _ => return fail(&child(&path, "when"), "expected before or after"),
        };
        return Ok(DateRule::Dynamic(DynamicDate { field, days, when }));
    }
    let path = child(path, "interval");
    let interval = required(map, &path, "interval").unwrap_or(&Value::Null);
    let map = object(interval, &path, "{\"field\", \"from\", \"to\"}")?;
    only_keys(map, &path, &["field", "from", "to"])?;
    let field = date_field(required(map, &path, "field")?, &child(&path, "field"))?;
    let (from, to) = (required(map, &path, "from")?, required(map, &path, "to")?);
    Ok(DateRule::Interval(match field.booking_field() {
        Some(field) => DateInterval::Booking {
            field,
            from: date(from, &child(&path, "from"))?,
            to: date(to, &child(&path, "to"))?,
        },
        None => DateInterval::Birthday {
            from: month_day(from, &child(&path, "from"))?,
            to: month_day(to, &child(&path, "to"))?,
        },
    }))
}

fn rule_list(value: &Value, path: &str) -> Parsed<Vec<Rule>> {
    match value.as_array() {
        Some(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, v)| parse(v, &item(path, i)))
            .collect(),
        _ => fail(path, "expected a non-empty array of rules"),
    }
}

pub(super) fn parse(value: &Value, path: &str) -> Parsed<Rule> {
    let map = object(
        value,
        path,
        "a rule: an object with one key such as {\"all\": [..]}",
    )?;
    let mut entries = map.iter();
    let (Some((key, value)), None) = (entries.next(), entries.next()) else {
        return fail(
            path,
            format!("expected exactly one key in a rule, found {}", map.len()),
        );
    };
    let path = &child(path, key);
    Ok(match key.as_str() {
        "everyone" => match value {
            Value::Bool(true) => Rule::Everyone,
            _ => return fail(path, "expected true"),
        },
        "all" => Rule::All(rule_list(value, path)?),
        "any" => Rule::Any(rule_list(value, path)?),
        "not" => Rule::Not(Box::new(parse(value, path)?)),
        "gender" => Rule::Gender(match value.as_str() {
            Some("male") => Gender::Male,
            Some("female") => Gender::Female,
            _ => return fail(path, "expected male or female"),
        }),
        "age" => Rule::Age(int_range(value, path)?),
        "country" => {
            let map = object(
                value,
                path,
                "{\"in\": [..]}, {\"not_in\": [..]} or {\"is_set\": true}",
            )?;
            only_keys(map, path, &["in", "not_in", "is_set"])?;
            if map.len() != 1 {
                return fail(path, "expected exactly one of in, not_in, is_set");
            }
            Rule::Country(if let Some(list) = map.get("in") {
                CountryRule::In(string_list(list, &child(path, "in"), true)?)
            } else if let Some(list) = map.get("not_in") {
                CountryRule::NotIn(string_list(list, &child(path, "not_in"), true)?)
            } else {
                let flag = map.get("is_set").unwrap_or(&Value::Null);
                CountryRule::IsSet(boolean(flag, &child(path, "is_set"))?)
            })
        }
        "is_set" => Rule::IsSet(field(value, path)?),
        "segment" => Rule::Segment(names(value, path)?),
        "vip" => Rule::Vip(boolean(value, path)?),
        "loyalty_group" => Rule::LoyaltyGroup(names(value, path)?),
        "balance" => Rule::Balance(decimal_range(value, path)?),
        "registered" => {
            let map = object(value, path, "{\"from\": date, \"to\": date}")?;
            only_keys(map, path, &["from", "to"])?;
            let bound = |key: &str| map.get(key).map(|v| date(v, &child(path, key))).transpose();
            Rule::Registered(DateSpan {
                from: bound("from")?,
                to: bound("to")?,
            })
        }
        "purchases" => {
            let map = object(
                value,
                path,
                "{\"within_days\": N, \"count\": {..}, \"sum\": {..}}",
            )?;
            only_keys(map, path, &["within_days", "count", "sum"])?;
            let within = required(map, path, "within_days")?;
            Rule::Purchases(PurchasesRule {
                within_days: days(within, &child(path, "within_days"))?,
                count: map
                    .get("count")
                    .map(|v| int_range(v, &child(path, "count")))
                    .transpose()?,
                sum: map
                    .get("sum")
                    .map(|v| decimal_range(v, &child(path, "sum")))
                    .transpose()?,
            })
        }
        "last_purchase" => {
            let map = object(value, path, "{\"older_than_days\": N}")?;
            only_keys(map, path, &["older_than_days"])?;
            let n = required(map, path, "older_than_days")?;
            Rule::LastPurchase(LastPurchaseRule {
                older_than_days: days(n, &child(path, "older_than_days"))?,
            })
        }
        "date" => Rule::Date(date_rule(value, path)?),
        "reachable" => Rule::Reachable(
            value
                .as_str()
                .and_then(|s| ChannelKind::from_str(s).ok())
                .ok_or_else(|| {
                    SegmentError::rule(path, "expected one of email, sms, telegram, vk, push")
                })?,
        ),
        _ => return fail(path, format!("unknown rule (expected one of {RULE_KEYS})")),
    })
}

pub(super) fn check_int_range(range: &IntRange, path: &str, max: Option<u64>) -> Parsed<()> {
    let given = [range.gte, range.gt, range.lte, range.lt, range.eq];
    if given.iter().all(Option::is_none) {
        return fail(path, "expected at least one of gte, gt, lte, lt, eq");
    }
    if let Some(max) = max {
        for (key, value) in RANGE_KEYS.iter().zip(given) {
            if value.is_some_and(|v| v > max) {
                return fail(&child(path, key), format!("expected at most {max}"));
            }
        }
    }
    Ok(())
}

pub(super) fn check_decimal_range(range: &DecimalRange, path: &str) -> Parsed<()> {
    if [range.gte, range.gt, range.lte, range.lt, range.eq]
        .iter()
        .all(Option::is_none)
    {
        return fail(path, "expected at least one of gte, gt, lte, lt, eq");
    }
    Ok(())
}

pub(super) fn check_names(names: &[String], path: &str) -> Parsed<()> {
    if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
        return fail(path, "expected non-empty names");
    }
    Ok(())
}
