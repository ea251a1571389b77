use std::fmt;
use std::str::FromStr;

use crate::ModelError;

/// A phone number in E.164 form (`+79161234567`).
///
/// Russian numbers are normalised from the forms people type: `8 (916) 765-43-21`,
/// `+7 916 765 43 21`, `7-916-765-43-21` and the bare ten digits `9167654321` all become
/// `+79167654321`. Other countries are accepted when written with `+` and their country code.
/// Spaces, non-breaking spaces, dashes, dots and one pair of parentheses may separate digits;
/// anything else is refused with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Normalises `input` to E.164.
    ///
    /// # Errors
    /// [`ModelError::InvalidPhone`] when the text has letters or other symbols, too few or too many
    /// digits, or a Russian number of the wrong length.
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        let fail = |reason| ModelError::InvalidPhone {
            input: input.to_owned(),
            reason,
        };
        let trimmed = input.trim();
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(16);
        let mut open_paren = false;
        let mut seen_paren = false;
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '\u{a0}' | '-' | '.' => {}
                '(' if !seen_paren => {
                    open_paren = true;
                    seen_paren = true;
                }
                ')' if open_paren => open_paren = false,
                _ => {
                    return Err(fail(
                        "only digits, spaces, dashes, dots and parentheses are allowed",
                    ));
                }
            }
        }
        if open_paren {
            return Err(fail("unbalanced parenthesis"));
        }
        if digits.is_empty() {
            return Err(fail("no digits"));
        }
        let national = if plus {
            if let Some(national) = digits.strip_prefix('7') {
                national
            } else {
                if digits.starts_with('0') {
                    return Err(fail("a country code never starts with 0"));
                }
                if !(8..=15).contains(&digits.len()) {
                    return Err(fail("an international number has 8 to 15 digits"));
                }
                return Ok(PhoneNumber(format!("+{digits}")));
            }
        } else {
            match digits.len() {
                11 if digits.starts_with('8') || digits.starts_with('7') => &digits[1..],
                10 => &digits[..],
                _ => {
                    return Err(fail(
                        "a Russian number has 10 digits after +7 or 8; write others with + and the country code",
                    ));
                }
            }
        };
        if national.len() != 10 {
            return Err(fail("a number after +7 has exactly 10 digits"));
        }
        if national.starts_with(['0', '1', '2']) {
            return Err(fail(
                "a number after +7 starts with an area or mobile code from 3 to 9",
            ));
        }
        Ok(PhoneNumber(format!("+7{national}")))
    }

    /// The E.164 text, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+`, as most SMS gateways take them.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

impl serde::Serialize for PhoneNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for PhoneNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        PhoneNumber::parse(&text).map_err(serde::de::Error::custom)
    }
}
