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
        // The common shapes of a Russian mobile number (+7 9xx …, 8 9xx …, 9xx … without a
        // prefix) need no metadata: every 9xx number of ten digits is a mobile number there.
        let mobile = match (plus, digits.len()) {
            (true, 11) if digits.starts_with("79") => Some(&digits[1..]),
            (false, 11) if digits.starts_with("89") || digits.starts_with("79") => {
                Some(&digits[1..])
            }
            (false, 10) if digits.starts_with('9') => Some(&digits[..]),
            _ => None,
        };
        if let Some(national) = mobile {
            return Ok(PhoneNumber(format!("+7{national}")));
        }
        // Everything else by libphonenumber's metadata; a number without `+` is Russian.
        if !plus && digits.len() > 11 {
            return Err(fail(
                "a Russian number has 10 digits after +7 or 8; write others with + and the country code",
            ));
        }
        // Ten digits, or eleven after 7 or 8, are a Russian national number as written: read
        // with the region alone, a leading 8 would be taken for the trunk prefix.
        let national = match digits.len() {
            10 if !plus => Some(&digits[..]),
            11 if !plus && (digits.starts_with('7') || digits.starts_with('8')) => {
                Some(&digits[1..])
            }
            _ => None,
        };
        // `+44 (0)20 …`: the «(0)» is the trunk prefix written for national callers and
        // never dialled after a country code.
        let text = match national {
            Some(national) => std::borrow::Cow::Owned(format!("+7{national}")),
            None if plus && trimmed.contains("(0)") => {
                std::borrow::Cow::Owned(trimmed.replacen("(0)", "", 1))
            }
            None => std::borrow::Cow::Borrowed(trimmed),
        };
        let parsed = phonenumber::parse(Some(phonenumber::country::Id::RU), text.as_ref())
            .map_err(|_| fail("not a phone number libphonenumber can read"))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(fail(if plus {
                "not a valid number for its country code (libphonenumber's metadata)"
            } else {
                "not a valid Russian number (libphonenumber's metadata); write others with + and the country code"
            }));
        }
        Ok(PhoneNumber(
            parsed.format().mode(phonenumber::Mode::E164).to_string(),
        ))
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
