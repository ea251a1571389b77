use std::fmt;
use std::str::FromStr;

use crate::ModelError;

/// An e-mail address that an SMTP server would take in `RCPT TO` without SMTPUTF8.
///
/// The local part is an RFC 5321 dot-atom of ASCII (at most 64 octets; no leading, trailing or
/// double dots; quoted local parts are refused because bulk senders and providers refuse them
/// too). The domain has at least two labels of letters, digits and inner hyphens, each at most
/// 63 characters, a top-level label that is not all digits; internationalised labels (`почта.рф`)
/// are accepted. The whole address is at most 254 characters. Surrounding spaces are trimmed;
/// the domain is lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress {
    text: String,
    at: usize,
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b)
}

impl EmailAddress {
    /// Validates `input` as an address.
    ///
    /// # Errors
    /// [`ModelError::InvalidEmail`] naming the rule the address breaks.
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        let fail = |reason| ModelError::InvalidEmail {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        let Some(at) = text.rfind('@') else {
            return Err(fail("no `@`"));
        };
        let (local, domain) = (&text[..at], &text[at + 1..]);
        if local.is_empty() {
            return Err(fail("empty local part"));
        }
        if local.len() > 64 {
            return Err(fail("the local part is longer than 64 characters"));
        }
        if text.chars().count() > 254 {
            return Err(fail("longer than 254 characters"));
        }
        if !local.bytes().all(|b| is_atext(b) || b == b'.') {
            return Err(fail(
                "the local part has a character outside letters, digits and !#$%&'*+/=?^_`{|}~.-",
            ));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(fail(
                "a dot at the start or end of the local part, or two dots in a row",
            ));
        }
        if domain.is_empty() {
            return Err(fail("empty domain"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(fail("the domain needs a dot (name.tld)"));
        }
        for label in &labels {
            if label.is_empty() {
                return Err(fail("an empty label in the domain"));
            }
            if label.chars().count() > 63 {
                return Err(fail("a domain label is longer than 63 characters"));
            }
            if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
                return Err(fail(
                    "the domain has a character outside letters, digits and hyphens",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(fail("a domain label starts or ends with a hyphen"));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(fail("the top-level domain is all digits"));
        }
        // Internationalised domains by the IDNA rules (UTS 46: punycode labels, bidi, hyphens,
        // DNS lengths of the ASCII form, which is what servers without SMTPUTF8 get).
        if !domain.is_ascii() || domain.to_ascii_lowercase().contains("xn--") {
            let ascii = idna::domain_to_ascii_strict(domain).map_err(|_| {
                fail("the domain breaks the IDNA rules (punycode, bidi or label length)")
            })?;
            if local.len() + 1 + ascii.len() > 254 {
                return Err(fail(
                    "longer than 254 characters with the domain in ASCII form",
                ));
            }
        }
        let text = format!("{local}@{}", domain.to_lowercase());
        Ok(EmailAddress {
            at: local.len(),
            text,
        })
    }

    /// The whole address.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        &self.text[..self.at]
    }

    /// The part after `@`, lower-cased.
    pub fn domain(&self) -> &str {
        &self.text[self.at + 1..]
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for EmailAddress {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailAddress::parse(s)
    }
}

impl serde::Serialize for EmailAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        EmailAddress::parse(&text).map_err(serde::de::Error::custom)
    }
}
