use std::str::FromStr;
use std::sync::LazyLock;

use chrono::NaiveDate;
use rassylka_model::{Booking, Money, Recipient};
use rust_decimal::Decimal;

use crate::format::parse_iso_date;
use crate::variable::Kind;
use crate::{Formatting, Variable};

/// A mailing-level value given by the caller (`bonus_accrued`, `bonus_expires_on`, a promo
/// code …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Printed as is (escaped for the output format).
    Text(String),
    /// Printed as money.
    Money(Decimal),
    /// Printed as a date.
    Date(NaiveDate),
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<Decimal> for Value {
    fn from(value: Decimal) -> Self {
        Value::Money(value)
    }
}

impl From<Money> for Value {
    fn from(value: Money) -> Self {
        Value::Money(value.0)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Money(Decimal::from(value))
    }
}

impl From<NaiveDate> for Value {
    fn from(value: NaiveDate) -> Self {
        Value::Date(value)
    }
}

/// The mailing-level values of one mailing, looked up by name after the recipient's profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    entries: Vec<(String, Value)>,
}

impl Values {
    /// No values.
    pub fn new() -> Self {
        Values::default()
    }

    /// Sets `name` to `value`, replacing an earlier one.
    pub fn insert(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        let value = value.into();
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name.to_owned(), value)),
        }
        self
    }

    /// Sets `name` from text, typed by the canonical variable of that name: `bonus_accrued=300`
    /// becomes money, `bonus_expires_on=2026-12-06` a date; text that does not parse as its
    /// type, and every custom name, stays text.
    pub fn insert_text(&mut self, name: &str, text: &str) -> &mut Self {
        let value = match Variable::from_name(name).map(Variable::kind) {
            Some(Kind::Money) => {
                Money::from_str(text).map_or_else(|_| Value::from(text), Value::from)
            }
            Some(Kind::Date) => parse_iso_date(text).map_or_else(|| Value::from(text), Value::Date),
            _ => Value::from(text),
        };
        self.insert(name, value)
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

static NO_VALUES: Values = Values {
    entries: Vec::new(),
};
static DEFAULT_FORMATTING: LazyLock<Formatting> = LazyLock::new(Formatting::default);

/// Everything one render reads: the recipient, the date the mailing fired, the mailing's values,
/// the booking that matched and the formatting.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub(crate) recipient: &'a Recipient,
    pub(crate) today: NaiveDate,
    pub(crate) values: &'a Values,
    pub(crate) booking: Option<&'a Booking>,
    pub(crate) formatting: &'a Formatting,
    pub(crate) unsubscribe_url: Option<&'a str>,
}

impl<'a> Context<'a> {
    /// A context for `recipient` on `today`, with no mailing values, the recipient's first
    /// booking, and the default formatting.
    pub fn new(recipient: &'a Recipient, today: NaiveDate) -> Self {
        Context {
            recipient,
            today,
            values: &NO_VALUES,
            booking: recipient.bookings.first(),
            formatting: &DEFAULT_FORMATTING,
            unsubscribe_url: None,
        }
    }

    /// With mailing-level values.
    pub fn values(mut self, values: &'a Values) -> Self {
        self.values = values;
        self
    }

    /// With the booking a segment rule matched (instead of the first one).
    pub fn booking(mut self, booking: Option<&'a Booking>) -> Self {
        self.booking = booking;
        self
    }

    /// With other formatting.
    pub fn formatting(mut self, formatting: &'a Formatting) -> Self {
        self.formatting = formatting;
        self
    }

    /// With the recipient's unsubscribe link, the value of `{unsubscribe_url}`.
    pub fn unsubscribe_url(mut self, url: Option<&'a str>) -> Self {
        self.unsubscribe_url = url;
        self
    }
}
