use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate};
use chrono_tz::Tz;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::civil::{self, OptionalDate, OptionalInstant};
use crate::{ChannelKind, EmailAddress, ModelError, Money, PhoneNumber, Unreachable};

/// A person a mailing may reach, in the JSON shape of the specification (§2).
///
/// Every field but `id` may be missing or `null`. Keys the contract does not name are kept in
/// [`Recipient::fields`] (an explicit `fields` object wins over a top-level key of the same name),
/// so templates can print them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Recipient {
    /// The caller's identifier (a JSON number is read as its decimal text).
    pub id: String,
    /// Имя.
    pub first_name: Option<String>,
    /// Фамилия.
    pub last_name: Option<String>,
    /// Отчество.
    pub middle_name: Option<String>,
    /// Gender, when known.
    pub gender: Option<Gender>,
    /// Birth date (a civil date).
    pub birth_date: Option<NaiveDate>,
    /// The recipient's own IANA time zone, for send windows.
    pub timezone: Option<Tz>,
    /// When the person joined the programme.
    pub registered_at: Option<DateTime<FixedOffset>>,
    /// ISO 3166-1 alpha-2 country code, upper-cased.
    pub country: Option<String>,
    /// VIP guest.
    pub vip: bool,
    /// Segment tags (`Командировочные`).
    pub segments: Vec<String>,
    /// Loyalty group name (`Gold`).
    pub loyalty_group: Option<String>,
    /// Bonus balance.
    pub balance: Option<Money>,
    /// How to reach the person.
    pub contacts: Contacts,
    /// What the person agreed to.
    pub consent: Consent,
    /// The «без рассылок» flag: set by unsubscribing.
    pub no_mailings: bool,
    /// Hotel bookings.
    pub bookings: Vec<Booking>,
    /// Purchases, for purchase rules and attribution.
    pub purchases: Vec<Purchase>,
    /// Custom values for templates (`order_id`, `salon_phone`, anything else).
    pub fields: Map<String, Value>,
}

/// Gender as the source systems record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gender {
    /// Мужской.
    Male,
    /// Женский.
    Female,
}

/// Contacts as given; validation happens when a channel needs them
/// ([`Recipient::address`]), so one bad phone never hides a good e-mail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Contacts {
    /// E-mail address as typed.
    pub email: Option<String>,
    /// Phone as typed; normalised to E.164 when used.
    pub phone: Option<String>,
    /// Chat id of the person's private chat with the bot.
    pub telegram_chat_id: Option<i64>,
    /// VK user id that wrote to the community.
    pub vk_user_id: Option<i64>,
    /// Serial of the Wallet loyalty card.
    pub wallet_push: Option<String>,
}

/// Consents the person gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Consent {
    /// Agreed to advertising messages.
    #[serde(deserialize_with = "null_as_false")]
    pub advertising: bool,
}

/// A hotel booking.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Booking {
    /// Booking id.
    pub id: Option<String>,
    /// Check-in date.
    #[serde(deserialize_with = "civil::date_or_null")]
    pub check_in: Option<NaiveDate>,
    /// Check-out date.
    #[serde(deserialize_with = "civil::date_or_null")]
    pub check_out: Option<NaiveDate>,
    /// When the booking was made.
    #[serde(deserialize_with = "civil::instant_or_null")]
    pub booked_at: Option<DateTime<FixedOffset>>,
    /// When it was first paid.
    #[serde(deserialize_with = "civil::instant_or_null")]
    pub paid_at: Option<DateTime<FixedOffset>>,
    /// Room number or name.
    pub room: Option<String>,
}

/// A purchase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Purchase {
    /// When it happened.
    #[serde(deserialize_with = "civil::instant_or_null")]
    pub at: Option<DateTime<FixedOffset>>,
    /// Amount paid.
    pub amount: Option<Money>,
    /// The promotion the purchase used.
    pub promotion_id: Option<String>,
}

/// A validated address on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// E-mail.
    Email(EmailAddress),
    /// Phone for SMS.
    Phone(PhoneNumber),
    /// Telegram chat.
    TelegramChat(i64),
    /// VK user.
    VkUser(i64),
    /// Wallet card serial.
    WalletCard(String),
}

impl Address {
    /// Reads back an address written with its `Display` form for `channel` (as a journal
    /// keeps it), validating it again.
    ///
    /// # Errors
    /// [`ModelError::InvalidEmail`] or [`ModelError::InvalidPhone`] for a bad address,
    /// [`ModelError::InvalidAddress`] for a chat or user id that is not a number.
    pub fn parse(channel: ChannelKind, text: &str) -> Result<Address, ModelError> {
        let id = |what: &'static str| {
            text.parse::<i64>().map_err(|_| ModelError::InvalidAddress {
                input: text.to_owned(),
                reason: what,
            })
        };
        Ok(match channel {
            ChannelKind::Email => Address::Email(EmailAddress::parse(text)?),
            ChannelKind::Sms => Address::Phone(PhoneNumber::parse(text)?),
            ChannelKind::Telegram => Address::TelegramChat(id("a telegram chat id is a number")?),
            ChannelKind::Vk => Address::VkUser(id("a vk user id is a number")?),
            ChannelKind::Push => Address::WalletCard(text.to_owned()),
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Email(email) => email.fmt(f),
            Address::Phone(phone) => phone.fmt(f),
            Address::TelegramChat(id) | Address::VkUser(id) => id.fmt(f),
            Address::WalletCard(serial) => f.write_str(serial),
        }
    }
}

impl Recipient {
    /// The recipient's address on `channel`, validated.
    ///
    /// # Errors
    /// [`Unreachable::NoContact`] when the contact is missing or blank,
    /// [`Unreachable::InvalidContact`] when it fails validation.
    pub fn address(&self, channel: ChannelKind) -> Result<Address, Unreachable> {
        fn text(value: &Option<String>) -> Result<&str, Unreachable> {
            match value.as_deref().map(str::trim) {
                Some(t) if !t.is_empty() => Ok(t),
                _ => Err(Unreachable::NoContact),
            }
        }
        let c = &self.contacts;
        match channel {
            ChannelKind::Email => EmailAddress::parse(text(&c.email)?)
                .map(Address::Email)
                .map_err(|_| Unreachable::InvalidContact),
            ChannelKind::Sms => PhoneNumber::parse(text(&c.phone)?)
                .map(Address::Phone)
                .map_err(|_| Unreachable::InvalidContact),
            ChannelKind::Telegram => c
                .telegram_chat_id
                .map(Address::TelegramChat)
                .ok_or(Unreachable::NoContact),
            ChannelKind::Vk => c
                .vk_user_id
                .map(Address::VkUser)
                .ok_or(Unreachable::NoContact),
            ChannelKind::Push => text(&c.wallet_push).map(|s| Address::WalletCard(s.to_owned())),
        }
    }

    /// «Фамилия Имя Отчество» without the missing parts and without double spaces.
    pub fn full_name(&self) -> Option<String> {
        let mut out = String::new();
        for part in [&self.last_name, &self.first_name, &self.middle_name] {
            if let Some(part) = part.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(part);
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

fn null_as_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// The recipient's id may be a JSON string or number.
struct IdText(String);

impl<'de> Deserialize<'de> for IdText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if !s.is_empty() => Ok(IdText(s)),
            Value::Number(n) => Ok(IdText(n.to_string())),
            _ => Err(de::Error::custom(
                "`id` must be a non-empty string or a number",
            )),
        }
    }
}

enum Key {
    Known(&'static str),
    Other(String),
}

const KNOWN_KEYS: &[&str] = &[
    "id",
    "first_name",
    "last_name",
    "middle_name",
    "gender",
    "birth_date",
    "timezone",
    "registered_at",
    "country",
    "vip",
    "segments",
    "loyalty_group",
    "balance",
    "contacts",
    "consent",
    "no_mailings",
    "bookings",
    "purchases",
    "fields",
];

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match KNOWN_KEYS.iter().find(|k| **k == v) {
                    Some(known) => Key::Known(known),
                    None => Key::Other(v.to_owned()),
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RecipientVisitor;
        impl<'de> Visitor<'de> for RecipientVisitor {
            type Value = Recipient;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a recipient object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Recipient, A::Error> {
                let mut r = Recipient::default();
                let mut id = None;
                let mut extra = Map::new();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Known("id") => id = Some(map.next_value::<IdText>()?.0),
                        Key::Known("first_name") => r.first_name = map.next_value()?,
                        Key::Known("last_name") => r.last_name = map.next_value()?,
                        Key::Known("middle_name") => r.middle_name = map.next_value()?,
                        Key::Known("gender") => r.gender = map.next_value()?,
                        Key::Known("birth_date") => {
                            r.birth_date = map.next_value::<OptionalDate>()?.0;
                        }
                        Key::Known("timezone") => r.timezone = map.next_value()?,
                        Key::Known("registered_at") => {
                            r.registered_at = map.next_value::<OptionalInstant>()?.0;
                        }
                        Key::Known("country") => {
                            r.country = map
                                .next_value::<Option<String>>()?
                                .map(|c| c.trim().to_ascii_uppercase())
                                .filter(|c| !c.is_empty());
                        }
                        Key::Known("vip") => {
                            r.vip = map.next_value::<Option<bool>>()?.unwrap_or(false)
                        }
                        Key::Known("segments") => {
                            r.segments =
                                map.next_value::<Option<Vec<String>>>()?.unwrap_or_default();
                        }
                        Key::Known("loyalty_group") => r.loyalty_group = map.next_value()?,
                        Key::Known("balance") => r.balance = map.next_value()?,
                        Key::Known("contacts") => {
                            r.contacts = map.next_value::<Option<Contacts>>()?.unwrap_or_default();
                        }
                        Key::Known("consent") => {
                            r.consent = map.next_value::<Option<Consent>>()?.unwrap_or_default();
                        }
                        Key::Known("no_mailings") => {
                            r.no_mailings = map.next_value::<Option<bool>>()?.unwrap_or(false);
                        }
                        Key::Known("bookings") => {
                            r.bookings = map
                                .next_value::<Option<Vec<Booking>>>()?
                                .unwrap_or_default();
                        }
                        Key::Known("purchases") => {
                            r.purchases = map
                                .next_value::<Option<Vec<Purchase>>>()?
                                .unwrap_or_default();
                        }
                        Key::Known(_) => {
                            r.fields = map
                                .next_value::<Option<Map<String, Value>>>()?
                                .unwrap_or_default();
                        }
                        Key::Other(name) => {
                            extra.insert(name, map.next_value()?);
                        }
                    }
                }
                r.id = id.ok_or_else(|| de::Error::missing_field("id"))?;
                for (name, value) in extra {
                    r.fields.entry(name).or_insert(value);
                }
                Ok(r)
            }
        }
        d.deserialize_map(RecipientVisitor)
    }
}
