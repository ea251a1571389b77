use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::ModelError;

/// A decimal amount of money or bonus points; never binary floating point in arithmetic.
///
/// From JSON it takes a number (`1250.5`) or a string (`"1250.50"`, `"1250,50"`). A JSON number
/// is read through its shortest round-trip text, so `1250.5` is exactly 1250.5, not the nearest
/// binary fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Money(pub Decimal);

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// The decimal value.
    pub fn decimal(self) -> Decimal {
        self.0
    }
}

impl From<Decimal> for Money {
    fn from(value: Decimal) -> Self {
        Money(value)
    }
}

impl From<i64> for Money {
    fn from(value: i64) -> Self {
        Money(Decimal::from(value))
    }
}

impl FromStr for Money {
    type Err = ModelError;

    /// Parses `1250.50`, `1250,50`, `-3` or `1e3`; surrounding spaces are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = || ModelError::InvalidMoney {
            input: s.to_owned(),
        };
        let text = s.trim();
        if text.is_empty() {
            return Err(fail());
        }
        let parsed = if text.contains(',') && !text.contains('.') {
            Decimal::from_str(&text.replacen(',', ".", 1))
        } else {
            Decimal::from_str(text)
        };
        parsed
            .or_else(|_| Decimal::from_scientific(text))
            .map(Money)
            .map_err(|_| fail())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.normalize(), f)
    }
}

impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;
        impl serde::de::Visitor<'_> for MoneyVisitor {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal number or a string with one")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Money, E> {
                Ok(Money(Decimal::from(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Money, E> {
                Ok(Money(Decimal::from(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Money, E> {
                // The shortest text that reads back as the same f64 is what the author wrote.
                Money::from_str(&v.to_string()).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Money, E> {
                Money::from_str(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(MoneyVisitor)
    }
}
