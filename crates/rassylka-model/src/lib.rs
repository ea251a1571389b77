//! The recipient of a mailing: who a person is and how to reach them.
//!
//! This is the small shared vocabulary of rassylka. Segments filter [`Recipient`]s, templates
//! print them, channels deliver to their [`Address`]es and the dispatcher journals them. The JSON
//! shape is the contract of the specification (§2): one object per line in `.jsonl` files, every
//! field but `id` optional, unknown keys kept under `fields`, money as decimals.
//!
//! ```
//! use rassylka_model::{ChannelKind, Recipient, Address};
//!
//! let anna: Recipient = serde_json::from_str(r#"{
//!     "id": "c-1001", "first_name": "Анна", "balance": 1250.5,
//!     "contacts": {"phone": "8 (916) 765-43-21", "email": "not an address"},
//!     "order_id": "A-553"
//! }"#)?;
//! assert_eq!(anna.balance.unwrap().to_string(), "1250.5");
//! assert_eq!(anna.address(ChannelKind::Sms)?.to_string(), "+79167654321");
//! assert!(anna.address(ChannelKind::Email).is_err());
//! assert_eq!(anna.fields["order_id"], "A-553");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Decisions where the specification is silent:
//! - Phones: Russian numbers written as `8…`, `7…`, `+7…` or ten bare digits become `+7…`; other
//!   countries need the `+` prefix ([`PhoneNumber`]).
//! - E-mail: what an SMTP server takes without SMTPUTF8 ([`EmailAddress`]).
//! - Country codes are upper-cased; a blank one counts as missing.
//!
//! JSON Lines: [`read_jsonl`] reads one line at a time; [`read_jsonl_parallel`] and
//! [`read_jsonl_mapped`] parse quarter-megabyte chunks on threads of their own and hand the
//! results on in the file's order (same items, same line numbers). Both take the common line
//! shape by a direct reader and hand anything else, and every error, to serde.
//!
//! The crate has no features and does no I/O besides reading the reader it is given.

mod civil;
mod email;
mod error;
mod jsonl;
mod money;
mod phone;
mod recipient;

use std::fmt;
use std::str::FromStr;

pub use civil::{deserialize_instant, parse_date, parse_instant};
pub use email::EmailAddress;
pub use error::{ModelError, Unreachable};
pub use jsonl::{
    ParallelLines, RecipientItem, RecipientLines, read_jsonl, read_jsonl_mapped,
    read_jsonl_parallel,
};
pub use money::Money;
pub use phone::PhoneNumber;
pub use recipient::{Address, Booking, Consent, Contacts, Gender, Purchase, Recipient};
pub use rust_decimal::Decimal;

/// The kinds of channel a mailing can use, in the order the specification lists them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// E-mail (SMTP or an HTTP provider).
    Email,
    /// SMS through a gateway.
    Sms,
    /// Telegram bot.
    Telegram,
    /// VK community bot.
    Vk,
    /// Wallet card push.
    Push,
}

impl ChannelKind {
    /// Every kind, in the specification's order.
    pub const ALL: [ChannelKind; 5] = [
        ChannelKind::Email,
        ChannelKind::Sms,
        ChannelKind::Telegram,
        ChannelKind::Vk,
        ChannelKind::Push,
    ];

    /// The lower-case name used in JSON and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Vk => "vk",
            ChannelKind::Push => "push",
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown channel name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel `{0}`: expected email, sms, telegram, vk or push")]
pub struct UnknownChannel(pub String);

impl FromStr for ChannelKind {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

/// Advertising messages need consent and respect `no_mailings`; service messages (order
/// ready, bonuses accrued) only need a contact.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MessageClass {
    /// Marketing.
    Advertising,
    /// Transactional.
    #[default]
    Service,
}

impl Recipient {
    /// Whether a message of `class` may go to this person at all, whatever the channel:
    /// `None` when allowed, otherwise the reason.
    pub fn opt_out(&self, class: MessageClass) -> Option<OptOut> {
        match class {
            MessageClass::Service => None,
            MessageClass::Advertising if self.no_mailings => Some(OptOut::NoMailings),
            MessageClass::Advertising if !self.consent.advertising => Some(OptOut::NoConsent),
            MessageClass::Advertising => None,
        }
    }
}

/// Why an advertising message may not go to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOut {
    /// The «no mailings» flag is set (unsubscribed).
    NoMailings,
    /// No advertising consent.
    NoConsent,
}
