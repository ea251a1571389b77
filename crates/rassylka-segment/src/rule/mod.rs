//! The rule tree: its types, validation and writing back; reading from JSON is `parse.rs`.

use std::str::FromStr;

use chrono::NaiveDate;
use rassylka_model::{ChannelKind, Gender};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Number, Value};

use crate::SegmentError;
use crate::dates::MonthDay;

/// An audience rule (SPEC §4): a tree of `all` / `any` / `not` over leaf predicates.
///
/// Parse it with [`Rule::from_json`] or [`Rule::from_value`] (or serde, which goes through the
/// same parser), write it back with serde; the JSON shape survives the round trip.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `{"everyone": true}`: the empty filter.
    Everyone,
    /// `{"all": [..]}`: every rule holds (a booking must satisfy every booking leaf).
    All(Vec<Rule>),
    /// `{"any": [..]}`: at least one rule holds.
    Any(Vec<Rule>),
    /// `{"not": rule}`: the exact complement, recipient by recipient.
    Not(Box<Rule>),
    /// `{"gender": "female"}`.
    Gender(Gender),
    /// `{"age": {"gte": 18, "lt": 35}}`: completed years on the evaluation date.
    Age(IntRange),
    /// `{"country": {"in": [..]}}`, `{"country": {"not_in": [..]}}`, `{"country": {"is_set": true}}`.
    Country(CountryRule),
    /// `{"is_set": "birth_date"}`: the field (or contact, or `fields.NAME`) is present.
    IsSet(Field),
    /// `{"segment": "Командировочные"}` or `{"segment": {"in": [..]}}`: has one of the tags.
    Segment(Names),
    /// `{"vip": true}` (or `false`: not VIP).
    Vip(bool),
    /// `{"loyalty_group": "Gold"}` or `{"loyalty_group": {"in": [..]}}`.
    LoyaltyGroup(Names),
    /// `{"balance": {"gte": 100}}`.
    Balance(DecimalRange),
    /// `{"registered": {"from": "2024-01-01", "to": "2024-12-31"}}`: inclusive local dates.
    Registered(DateSpan),
    /// `{"purchases": {"within_days": 90, "count": {..}, "sum": {..}}}`.
    Purchases(PurchasesRule),
    /// `{"last_purchase": {"older_than_days": 180}}`.
    LastPurchase(LastPurchaseRule),
    /// `{"date": {"dynamic": {..}}}` or `{"date": {"interval": {..}}}`.
    Date(DateRule),
    /// `{"reachable": "telegram"}`: has a valid contact for the channel.
    Reachable(ChannelKind),
}

/// Comparisons on a non-negative integer; all given ones must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntRange {
    /// `>=`.
    pub gte: Option<u64>,
    /// `>`.
    pub gt: Option<u64>,
    /// `<=`.
    pub lte: Option<u64>,
    /// `<`.
    pub lt: Option<u64>,
    /// `==`.
    pub eq: Option<u64>,
}

/// Comparisons on a decimal amount; all given ones must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecimalRange {
    /// `>=`.
    pub gte: Option<Decimal>,
    /// `>`.
    pub gt: Option<Decimal>,
    /// `<=`.
    pub lte: Option<Decimal>,
    /// `<`.
    pub lt: Option<Decimal>,
    /// `==`.
    pub eq: Option<Decimal>,
}

/// The forms of the country rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountryRule {
    /// The country is one of these (a missing country is not).
    In(Vec<String>),
    /// The exact complement of `In`: a missing country matches.
    NotIn(Vec<String>),
    /// The country is known (`true`) or unknown (`false`).
    IsSet(bool),
}

/// One name or a list of names (segment tags, loyalty groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// `"Gold"`.
    One(String),
    /// `{"in": ["Gold", "Silver"]}`.
    In(Vec<String>),
}

impl Names {
    /// The names, in order.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Names::One(name) => std::slice::from_ref(name),
            Names::In(names) => names,
        }
    }
}

/// Fields whose presence `is_set` tests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// `first_name`.
    FirstName,
    /// `last_name`.
    LastName,
    /// `middle_name`.
    MiddleName,
    /// `gender`.
    Gender,
    /// `birth_date`.
    BirthDate,
    /// `timezone`.
    Timezone,
    /// `registered_at`.
    RegisteredAt,
    /// `country`.
    Country,
    /// `segments` (at least one tag).
    Segments,
    /// `loyalty_group`.
    LoyaltyGroup,
    /// `balance`.
    Balance,
    /// `bookings` (at least one).
    Bookings,
    /// `purchases` (at least one).
    Purchases,
    /// The e-mail contact.
    Email,
    /// The phone contact.
    Phone,
    /// The Telegram chat id.
    TelegramChatId,
    /// The VK user id.
    VkUserId,
    /// The Wallet card serial.
    WalletPush,
    /// `fields.NAME`: a custom field.
    Custom(String),
}

impl Field {
    /// The built-in fields, in the order of their names in [`Field::name`].
    pub const BUILT_IN: [Field; 18] = [
        Field::FirstName,
        Field::LastName,
        Field::MiddleName,
        Field::Gender,
        Field::BirthDate,
        Field::Timezone,
        Field::RegisteredAt,
        Field::Country,
        Field::Segments,
        Field::LoyaltyGroup,
        Field::Balance,
        Field::Bookings,
        Field::Purchases,
        Field::Email,
        Field::Phone,
        Field::TelegramChatId,
        Field::VkUserId,
        Field::WalletPush,
    ];

    /// The name used in JSON (`fields.NAME` for a custom field).
    pub fn name(&self) -> String {
        match self {
            Field::Custom(name) => format!("fields.{name}"),
            built_in => built_in.built_in_name().to_owned(),
        }
    }

    fn built_in_name(&self) -> &'static str {
        match self {
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::MiddleName => "middle_name",
            Field::Gender => "gender",
            Field::BirthDate => "birth_date",
            Field::Timezone => "timezone",
            Field::RegisteredAt => "registered_at",
            Field::Country => "country",
            Field::Segments => "segments",
            Field::LoyaltyGroup => "loyalty_group",
            Field::Balance => "balance",
            Field::Bookings => "bookings",
            Field::Purchases => "purchases",
            Field::Email => "email",
            Field::Phone => "phone",
            Field::TelegramChatId => "telegram_chat_id",
            Field::VkUserId => "vk_user_id",
            Field::WalletPush => "wallet_push",
            Field::Custom(_) => "fields",
        }
    }

    /// Position in [`Field::BUILT_IN`]; `None` for a custom field.
    pub(crate) fn built_in_index(&self) -> Option<usize> {
        Field::BUILT_IN.iter().position(|f| f == self)
    }
}

/// An inclusive range of civil dates; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateSpan {
    /// First day, inclusive.
    pub from: Option<NaiveDate>,
    /// Last day, inclusive.
    pub to: Option<NaiveDate>,
}

/// Count and sum of the purchases in the last `within_days` days, today included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchasesRule {
    /// The window: `[D − (N−1), D]`; at least 1.
    pub within_days: u32,
    /// How many purchases; when neither this nor `sum` is given, at least one.
    pub count: Option<IntRange>,
    /// Their total amount (a purchase without an amount adds nothing).
    pub sum: Option<DecimalRange>,
}

/// The latest purchase is more than `older_than_days` days before the evaluation date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastPurchaseRule {
    /// N: matches when `D − date > N`.
    pub older_than_days: u32,
}

/// The date rules of the hotel PMS (SPEC §4a).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateRule {
    /// N days before or after a date.
    Dynamic(DynamicDate),
    /// The date falls in an inclusive interval.
    Interval(DateInterval),
}

/// The date a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateField {
    /// Booking check-in (civil date).
    CheckIn,
    /// Booking check-out (civil date).
    CheckOut,
    /// When the booking was made (instant, read in the mailing's zone).
    BookedAt,
    /// When the booking was paid (instant, read in the mailing's zone).
    PaidAt,
    /// The recipient's birthday.
    Birthday,
}

impl DateField {
    /// The JSON name.
    pub fn name(self) -> &'static str {
        match self {
            DateField::CheckIn => "check_in",
            DateField::CheckOut => "check_out",
            DateField::BookedAt => "booked_at",
            DateField::PaidAt => "paid_at",
            DateField::Birthday => "birthday",
        }
    }

    /// The booking field, unless this is the birthday.
    pub fn booking_field(self) -> Option<BookingField> {
        match self {
            DateField::CheckIn => Some(BookingField::CheckIn),
            DateField::CheckOut => Some(BookingField::CheckOut),
            DateField::BookedAt => Some(BookingField::BookedAt),
            DateField::PaidAt => Some(BookingField::PaidAt),
            DateField::Birthday => None,
        }
    }
}

/// The dates of a booking that rules can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookingField {
    /// Check-in.
    CheckIn,
    /// Check-out.
    CheckOut,
    /// Booking time, as a local date.
    BookedAt,
    /// Payment time, as a local date.
    PaidAt,
}

impl BookingField {
    /// The four fields, in column order.
    pub const ALL: [BookingField; 4] = [
        BookingField::CheckIn,
        BookingField::CheckOut,
        BookingField::BookedAt,
        BookingField::PaidAt,
    ];

    /// The JSON name.
    pub fn name(self) -> &'static str {
        self.date_field().name()
    }

    /// The same field as a [`DateField`].
    pub fn date_field(self) -> DateField {
        match self {
            BookingField::CheckIn => DateField::CheckIn,
            BookingField::CheckOut => DateField::CheckOut,
            BookingField::BookedAt => DateField::BookedAt,
            BookingField::PaidAt => DateField::PaidAt,
        }
    }

    pub(crate) fn column(self) -> usize {
        self as usize
    }
}

/// Before or after the date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum When {
    /// `date − N == D`.
    Before,
    /// `date + N == D`.
    After,
}

/// `{"field": "check_in", "days": 3, "when": "before"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicDate {
    /// Which date.
    pub field: DateField,
    /// N ≥ 0; 0 is the day itself.
    pub days: u32,
    /// Before or after it.
    pub when: When,
}

/// An inclusive interval: full dates for booking fields, month-days for the birthday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateInterval {
    /// `{"field": "check_in", "from": "2026-12-01", "to": "2026-12-31"}`; `from ≤ to`.
    Booking {
        /// Which booking date.
        field: BookingField,
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
    /// `{"field": "birthday", "from": "12-25", "to": "01-10"}`; `from > to` wraps New Year.
    Birthday {
        /// First month-day.
        from: MonthDay,
        /// Last month-day.
        to: MonthDay,
    },
}

mod parse;

use parse::{
    MAX_AGE, Parsed, RANGE_KEYS, check_decimal_range, check_int_range, check_names, child, fail,
    item, parse,
};

impl Rule {
    /// Whether a date leaf (`{"date": …}`) appears anywhere in the tree: such a rule picks
    /// different people on different days, so a periodic mailing catches up every missed run.
    pub fn has_date_leaf(&self) -> bool {
        match self {
            Rule::Date(_) => true,
            Rule::All(rules) | Rule::Any(rules) => rules.iter().any(Rule::has_date_leaf),
            Rule::Not(rule) => rule.has_date_leaf(),
            _ => false,
        }
    }

    /// Parses a rule from JSON text.
    ///
    /// # Errors
    /// [`SegmentError::Syntax`] for text that is not JSON, [`SegmentError::Rule`] with the JSON
    /// path of the first bad node otherwise.
    pub fn from_json(text: &str) -> Result<Rule, SegmentError> {
        let value: Value = serde_json::from_str(text).map_err(|e| SegmentError::Syntax {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Rule::from_value(&value)
    }

    /// Parses a rule from a JSON value.
    ///
    /// # Errors
    /// [`SegmentError::Rule`] with the JSON path of the first bad node: an unknown key, a wrong
    /// type, an empty list, an interval with `from` after `to` …
    pub fn from_value(value: &Value) -> Result<Rule, SegmentError> {
        let rule = parse(value, "")?;
        rule.validate()?;
        Ok(rule)
    }

    /// Checks what the types alone cannot: non-empty lists and ranges, ordered intervals,
    /// bounded ages. Parsing does it; call it on rules built in code before compiling (compiling
    /// does too).
    ///
    /// # Errors
    /// [`SegmentError::Rule`] with the JSON path of the first bad node.
    pub fn validate(&self) -> Result<(), SegmentError> {
        self.validate_at("")
    }

    fn validate_at(&self, path: &str) -> Parsed<()> {
        let here = child(path, self.key());
        let here = here.as_str();
        match self {
            Rule::Everyone | Rule::Gender(_) | Rule::Vip(_) | Rule::Reachable(_) => Ok(()),
            Rule::All(rules) | Rule::Any(rules) => {
                if rules.is_empty() {
                    return fail(here, "expected a non-empty array of rules");
                }
                for (i, rule) in rules.iter().enumerate() {
                    rule.validate_at(&item(here, i))?;
                }
                Ok(())
            }
            Rule::Not(rule) => rule.validate_at(here),
            Rule::Age(range) => check_int_range(range, here, Some(MAX_AGE)),
            Rule::Country(CountryRule::In(codes) | CountryRule::NotIn(codes)) => {
                let key = if matches!(self, Rule::Country(CountryRule::In(_))) {
                    "in"
                } else {
                    "not_in"
                };
                check_names(codes, &child(here, key))
            }
            Rule::Country(CountryRule::IsSet(_)) => Ok(()),
            Rule::IsSet(Field::Custom(name)) if name.is_empty() => {
                fail(here, "expected a custom field name after `fields.`")
            }
            Rule::IsSet(_) => Ok(()),
            Rule::Segment(names) | Rule::LoyaltyGroup(names) => match names {
                Names::One(name) => check_names(std::slice::from_ref(name), here),
                Names::In(list) => check_names(list, &child(here, "in")),
            },
            Rule::Balance(range) => check_decimal_range(range, here),
            Rule::Registered(span) => match (span.from, span.to) {
                (None, None) => fail(here, "expected from, to or both"),
                (Some(from), Some(to)) if from > to => {
                    fail(here, format!("from {from} is after to {to}"))
                }
                _ => Ok(()),
            },
            Rule::Purchases(purchases) => {
                if purchases.within_days == 0 {
                    return fail(&child(here, "within_days"), "expected at least 1 day");
                }
                if let Some(count) = &purchases.count {
                    check_int_range(count, &child(here, "count"), None)?;
                }
                if let Some(sum) = &purchases.sum {
                    check_decimal_range(sum, &child(here, "sum"))?;
                }
                Ok(())
            }
            Rule::LastPurchase(_) => Ok(()),
            Rule::Date(DateRule::Interval(DateInterval::Booking { from, to, .. })) if from > to => {
                fail(
                    &child(here, "interval"),
                    format!("from {from} is after to {to}; booking-date intervals do not wrap"),
                )
            }
            Rule::Date(_) => Ok(()),
        }
    }

    /// The JSON key of this node.
    pub fn key(&self) -> &'static str {
        match self {
            Rule::Everyone => "everyone",
            Rule::All(_) => "all",
            Rule::Any(_) => "any",
            Rule::Not(_) => "not",
            Rule::Gender(_) => "gender",
            Rule::Age(_) => "age",
            Rule::Country(_) => "country",
            Rule::IsSet(_) => "is_set",
            Rule::Segment(_) => "segment",
            Rule::Vip(_) => "vip",
            Rule::LoyaltyGroup(_) => "loyalty_group",
            Rule::Balance(_) => "balance",
            Rule::Registered(_) => "registered",
            Rule::Purchases(_) => "purchases",
            Rule::LastPurchase(_) => "last_purchase",
            Rule::Date(_) => "date",
            Rule::Reachable(_) => "reachable",
        }
    }

    /// The rule as JSON, in the shape it was parsed from.
    pub fn to_value(&self) -> Value {
        let inner = match self {
            Rule::Everyone => Value::Bool(true),
            Rule::All(rules) | Rule::Any(rules) => {
                Value::Array(rules.iter().map(Rule::to_value).collect())
            }
            Rule::Not(rule) => rule.to_value(),
            Rule::Gender(Gender::Male) => "male".into(),
            Rule::Gender(Gender::Female) => "female".into(),
            Rule::Age(range) => int_range_value(range),
            Rule::Country(CountryRule::In(codes)) => single("in", strings(codes)),
            Rule::Country(CountryRule::NotIn(codes)) => single("not_in", strings(codes)),
            Rule::Country(CountryRule::IsSet(flag)) => single("is_set", Value::Bool(*flag)),
            Rule::IsSet(field) => Value::String(field.name()),
            Rule::Segment(names) | Rule::LoyaltyGroup(names) => match names {
                Names::One(name) => Value::String(name.clone()),
                Names::In(list) => single("in", strings(list)),
            },
            Rule::Vip(flag) => Value::Bool(*flag),
            Rule::Balance(range) => decimal_range_value(range),
            Rule::Registered(span) => {
                let mut map = Map::new();
                if let Some(from) = span.from {
                    map.insert("from".into(), from.to_string().into());
                }
                if let Some(to) = span.to {
                    map.insert("to".into(), to.to_string().into());
                }
                Value::Object(map)
            }
            Rule::Purchases(p) => {
                let mut map = Map::new();
                map.insert("within_days".into(), p.within_days.into());
                if let Some(count) = &p.count {
                    map.insert("count".into(), int_range_value(count));
                }
                if let Some(sum) = &p.sum {
                    map.insert("sum".into(), decimal_range_value(sum));
                }
                Value::Object(map)
            }
            Rule::LastPurchase(p) => single("older_than_days", p.older_than_days.into()),
            Rule::Date(DateRule::Dynamic(d)) => {
                let mut map = Map::new();
                map.insert("field".into(), d.field.name().into());
                map.insert("days".into(), d.days.into());
                let when = match d.when {
                    When::Before => "before",
                    When::After => "after",
                };
                map.insert("when".into(), when.into());
                single("dynamic", Value::Object(map))
            }
            Rule::Date(DateRule::Interval(interval)) => {
                let (field, from, to) = match interval {
                    DateInterval::Booking { field, from, to } => {
                        (field.name(), from.to_string(), to.to_string())
                    }
                    DateInterval::Birthday { from, to } => {
                        ("birthday", from.to_string(), to.to_string())
                    }
                };
                let mut map = Map::new();
                map.insert("field".into(), field.into());
                map.insert("from".into(), from.into());
                map.insert("to".into(), to.into());
                single("interval", Value::Object(map))
            }
            Rule::Reachable(channel) => channel.as_str().into(),
        };
        single(self.key(), inner)
    }
}

fn single(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    Value::Object(map)
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().cloned().map(Value::String).collect())
}

fn int_range_value(range: &IntRange) -> Value {
    let mut map = Map::new();
    for (key, value) in RANGE_KEYS
        .iter()
        .zip([range.gte, range.gt, range.lte, range.lt, range.eq])
    {
        if let Some(v) = value {
            map.insert((*key).to_owned(), v.into());
        }
    }
    Value::Object(map)
}

fn decimal_range_value(range: &DecimalRange) -> Value {
    let mut map = Map::new();
    for (key, value) in RANGE_KEYS
        .iter()
        .zip([range.gte, range.gt, range.lte, range.lt, range.eq])
    {
        if let Some(v) = value {
            map.insert((*key).to_owned(), decimal_value(v));
        }
    }
    Value::Object(map)
}

/// A decimal as a JSON number when the number reads back as the same decimal, else as a string
/// (so no digit is lost either way).
fn decimal_value(value: Decimal) -> Value {
    let normal = value.normalize();
    if normal.scale() == 0
        && let Some(int) = normal.to_i64()
    {
        return Value::Number(int.into());
    }
    if let Some(number) = normal.to_f64().and_then(Number::from_f64)
        && Decimal::from_str(&number.to_string()).ok() == Some(normal)
    {
        return Value::Number(number);
    }
    Value::String(normal.to_string())
}

impl FromStr for Rule {
    type Err = SegmentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rule::from_json(s)
    }
}

impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Rule::from_value(&value).map_err(serde::de::Error::custom)
    }
}
