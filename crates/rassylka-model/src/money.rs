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

/// The amount of a JSON number written with at most six decimals and fewer than 16 digits,
/// as amounts are: the fewest decimals whose value reads back as `v`, which is what its
/// shortest text says, found with a multiplication and a division instead of writing and
/// reading text.
fn few_decimals(v: f64) -> Option<Money> {
    // Cents first: if fewer decimals read back as `v`, so does the same value in cents (its
    // nearest whole number of cents), and the trailing zeros are taken off after.
    for (scale, power) in [(2_u32, 100.0), (3, 1e3), (4, 1e4), (5, 1e5), (6, 1e6)] {
        let scaled = v * power;
        // NaN and infinities fail this too.
        if scaled.abs().partial_cmp(&1e15) != Some(std::cmp::Ordering::Less) {
            return None;
        }
        // Rounded half away from zero by a cast (the nearest whole number unless exactly
        // half way, where the check below fails and a longer scale is tried).
        let whole = (scaled + 0.5_f64.copysign(scaled)) as i64;
        // Both exact below 2^53, and the division is rounded once, as reading the decimal
        // text `whole / 10^scale` would round it.
        if whole as f64 / power == v {
            let (mut whole, mut scale) = (whole, scale);
            while scale > 0 && whole % 10 == 0 {
                whole /= 10;
                scale -= 1;
            }
            return Some(Money(Decimal::new(whole, scale)));
        }
    }
    None
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
                if let Some(money) = few_decimals(v) {
                    return Ok(money);
                }
                // The shortest text that reads back as the same f64 is what the author wrote.
                // ryu finds it several times faster than `f64::to_string` (a tenth of the time
                // of reading an export went there); a value it writes with an exponent (large
                // or tiny) is read from Rust's plain text, which rounds tiny ones as before, and
                // so is one of 16 digits or more, where two shortest texts can exist and ryu
                // may pick the other one.
                let mut buffer = ryu::Buffer::new();
                let text = buffer.format(v);
                if text.len() > 16 || text.contains(['e', 'N', 'i']) {
                    return Money::from_str(&v.to_string()).map_err(E::custom);
                }
                Money::from_str(text.strip_suffix(".0").unwrap_or(text)).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Money, E> {
                Money::from_str(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(MoneyVisitor)
    }
}
